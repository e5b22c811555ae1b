"""Analyses on a clip network (a tiny r3d-like 3-D convolution net, random weights) and a
type=video_clip table made by db_stim: db_topstim -act ranks = argsort of db_act's
activations; db_act -topk = TopK applied directly to the layer's 5-D output; db_rf
-theoretical and db_topstim -net on a clip network are refused in one line."""
import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from dnnsparse.base.activation import Activation
from dnnsparse.cli import act as db_act
from dnnsparse.cli import rf as db_rf
from dnnsparse.cli import stim as db_stim
from dnnsparse.cli import topstim as db_topstim
from dnnsparse.io.table import read_table
from dnnsparse.model import topk_sparsify

_spec = importlib.util.spec_from_file_location(
    "video_files", Path(__file__).parents[1] / "io" / "video_files.py")
vf = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(vf)

NET = """import torch
def build():
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv3d(3, 4, 3, stride=(1, 4, 4)), torch.nn.ReLU(),
        torch.nn.Conv3d(4, 3, (1, 3, 3), stride=(1, 2, 2)), torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool3d(1), torch.nn.Flatten(), torch.nn.Linear(3, 5))
"""
CLIPS = ["a/1.mp4", "a/2.mp4", "b/3.mp4", "b/4.mp4", "b/5.mp4"]


def _ok(run_cli, main, *argv):
    status, out, err = run_cli(main, *argv, "-q")
    assert status == 0, err
    return out


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("clip_analyses")
    for i, rel in enumerate(CLIPS):
        (tmp / "clips" / rel).parent.mkdir(parents=True, exist_ok=True)
        vf.write_movie(tmp / "clips" / rel, 5, size=16,
                       image=lambda k, i=i: vf.frame_image(37 * i + 5 * k, size=16))
    (tmp / "net.py").write_text(NET)
    assert db_stim.main([str(a) for a in ("-folder", tmp / "clips", "-type", "video_clip",
                                          "-out", tmp / "c.stim.csv", "-q")]) == 0
    net = ["-net", f"{tmp / 'net.py'}:build", "-weights", "random", "-clip-len", 4,
           "-stim", tmp / "c.stim.csv", "-layer", "1", "3", "6", "-batch-size", 2, "-q"]
    for out, extra in (("a.act.h5", []), ("k.act.h5", ["-topk", "1=0.25"])):
        assert db_act.main([str(a) for a in net + extra + ["-out", tmp / out]]) == 0
    return tmp


def _ranked(table, target):
    rows = np.asarray(table["target"]).astype(str) == target
    order = np.argsort(np.asarray(table["rank"])[rows], kind="stable")
    return (np.asarray(table["stimID"]).astype(str)[rows][order],
            np.asarray(table["value"], dtype=np.float64)[rows][order],
            np.asarray(table["end"]).astype(str)[rows][order])


@pytest.mark.parametrize("target, stat", [("3:2", np.mean), ("1:3@max", np.max),
                                          ("6:4", np.mean)])
def test_topstim_ranks_clip_activations(run_cli, clips, tmp_path, target, stat):
    _ok(run_cli, db_topstim.main, "-act", clips / "a.act.h5", "-target", target, "-stim",
        clips / "c.stim.csv", "-top", 5, "-no-figures", "-out", tmp_path / "top")
    with Activation.load(clips / "a.act.h5") as act:
        layer, chn = target.split("@")[0].split(":")
        data = act.get(layer).astype(np.float64)[:, int(chn) - 1]
        ids = act.stim_ids.astype(str)
    assert ids.tolist() == CLIPS
    values = stat(data.reshape(len(ids), -1), axis=1)
    order = np.argsort(-values, kind="stable")              # ties: the earlier clip
    got_ids, got_values, ends = _ranked(read_table(tmp_path / "top" / "topstim.csv"),
                                        target)
    assert set(ends) == {"top"}
    assert got_ids.tolist() == ids[order].tolist()
    np.testing.assert_allclose(got_values, values[order], rtol=1e-6)


def test_topk_on_clip_network_equals_direct_topk(clips):
    ns = {}
    exec(NET, ns)
    net = ns["build"]().eval()
    with Activation.load(clips / "a.act.h5") as plain, \
            Activation.load(clips / "k.act.h5") as sparse:
        steps = plain.layer_attrs("1")["time_steps"]
        assert steps == 2 and sparse.attrs["topk"]
        l1 = torch.from_numpy(plain.get("1").astype(np.float32))
        n, c, th, w = l1.shape
        l1 = l1.reshape(n, c, steps, th // steps, w)                 # back to (n, c, t, h, w)
        want1 = topk_sparsify(l1, 0.25)
        with torch.inference_mode():
            want3 = net[3](net[2](want1))
            want6 = net[6](net[5](net[4](want3)))
        got1 = torch.from_numpy(sparse.get("1")).reshape(want1.shape)
        np.testing.assert_array_equal(got1.numpy() != 0, want1.numpy() != 0)
        np.testing.assert_allclose(got1, want1, rtol=1e-6, atol=1e-7)
        # a quarter of each channel's t*h*w positions kept, per clip
        kept = (got1 != 0).reshape(n, c, -1).sum(-1)
        assert int(kept.max()) <= int(0.25 * steps * th // steps * w)
        np.testing.assert_allclose(sparse.get("3").reshape(want3.shape), want3,
                                   rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(sparse.get("6").reshape(n, -1), want6, rtol=1e-5,
                                   atol=1e-6)
        assert not np.allclose(plain.get("6"), sparse.get("6"))     # Top-K changed it


def test_theoretical_rf_of_a_clip_network_refused(cli_error, tmp_path):
    message = cli_error(db_rf.main, "-net", "r3d_18", "-theoretical", "-out",
                        tmp_path / "rf.csv")
    assert "r3d_18 is a clip network" in message and "image networks only" in message
    assert not (tmp_path / "rf.csv").exists()


def test_topstim_net_on_clip_table_refused_in_one_line(cli_error, clips, tmp_path):
    # db_topstim -net ranks images (no -clip-len): one line naming the table and the way
    message = cli_error(db_topstim.main, "-net", "alexnet", "-weights", "random", "-target",
                        "conv1:1", "-stim", clips / "c.stim.csv", "-no-figures", "-out",
                        tmp_path / "top")
    assert "c.stim.csv is a type=video_clip table" in message, message
    assert "db_topstim -act" in message
    assert not (tmp_path / "top").exists()
