"""db_act, db_info, db_mask, db_pool end to end, with every user mistake → exit 2."""
from functools import partial

import numpy as np
import pytest
import torch
import torchvision

from dnnsparse.base.activation import Activation
from dnnsparse.base.stimulus import Stimulus
from dnnsparse.cli import act as db_act
from dnnsparse.cli import info as db_info
from dnnsparse.cli import mask as db_mask
from dnnsparse.cli import pool as db_pool


@pytest.fixture
def weights(tmp_path):
    path = tmp_path / "alex.pth"
    torch.manual_seed(0)
    torch.save(torchvision.models.alexnet(weights=None).state_dict(), path)
    return path


def test_db_act_writes_file(run_cli, image_stim, weights, tmp_path):
    out = tmp_path / "a.act.h5"
    status, stdout, err = run_cli(db_act.main, "-net", "alexnet", "-weights", weights,
                                  "-layer", "conv5_relu", "fc2_relu", "-stim", image_stim,
                                  "--pool", "MAX", "-out", out, "-batch-size", "4", "-q")
    assert status == 0, err
    assert "wrote" in stdout and "conv5_relu (256, 1, 1)" in stdout
    with Activation.load(out) as act:
        assert act.layers == ["conv5_relu", "fc2_relu"] and act.n_stim == 9
        assert act.attrs["pool"] == "max" and act.attrs["stim_file"] == str(image_stim)
    # an existing output needs --force, and the old file is untouched
    mtime = out.stat().st_mtime_ns
    status, _, err = run_cli(db_act.main, "-net", "alexnet", "-weights", weights, "-layer",
                             "fc2", "-stim", image_stim, "-out", out)
    assert status == 2 and "--force" in err and out.stat().st_mtime_ns == mtime
    status, _, err = run_cli(db_act.main, "-net", "alexnet", "-weights", weights, "-layer",
                             "fc2", "-stim", image_stim, "-out", out, "--force", "-q")
    assert status == 0, err


def test_db_act_chn_and_dmask(run_cli, image_stim, weights, tmp_path):
    (tmp_path / "m.dmask.csv").write_text("conv2=chn,row\n3,1\n2\nfc1=\n")
    out = tmp_path / "m.act.h5"
    status, _, err = run_cli(db_act.main, "-net", "alexnet", "-weights", weights, "-dmask",
                             tmp_path / "m.dmask.csv", "-stim", image_stim, "-out", out, "-q")
    assert status == 0, err
    with Activation.load(out) as act:
        assert act.shape("conv2") == (9, 2, 1, 27) and act.shape("fc1") == (9, 4096, 1, 1)
        np.testing.assert_array_equal(act.layer_attrs("conv2")["chn"], [3, 1])
    status, _, err = run_cli(db_act.main, "-net", "alexnet", "-weights", weights, "-layer",
                             "conv1", "-chn", "2", "64", "-stim", image_stim, "-out",
                             tmp_path / "c.act.h5", "-q")
    assert status == 0, err
    with Activation.load(tmp_path / "c.act.h5") as act:
        assert act.shape("conv1")[1] == 2


def test_db_act_user_errors(cli_error, image_stim, weights, tmp_path):
    error = partial(cli_error, db_act.main)
    base = ["-net", "alexnet", "-weights", weights, "-stim", image_stim, "-q"]
    msg = error(*base, "-layer", "conv9", "-out", tmp_path / "x.act.h5")
    assert "unknown layer 'conv9'" in msg and "conv5_relu" in msg
    (tmp_path / "big.dmask.csv").write_text("conv1=chn\n1,65\n")
    msg = error(*base, "-dmask", tmp_path / "big.dmask.csv", "-out", tmp_path / "x.act.h5")
    assert "conv1" in msg and "chn index 65 is out of range 1..64" in msg
    msg = error("-net", "alexnet", "-weights", tmp_path / "none.pth", "-layer",
                "fc1", "-stim", image_stim, "-out", tmp_path / "x.act.h5")
    assert "none.pth" in msg
    msg = error("-net", "alexnet", "-layer", "fc1", "-stim", tmp_path / "no.stim.csv",
                "-out", tmp_path / "x.act.h5")
    assert "no.stim.csv" in msg
    msg = error(*base, "-out", tmp_path / "x.act.h5")
    assert "-layer" in msg
    assert not (tmp_path / "x.act.h5").exists()


def test_missing_images_listed_before_compute(cli_error, image_stim, weights, tmp_path):
    stim = Stimulus.load(image_stim)
    for p in stim.paths[:3] + stim.paths[-2:]:
        p.unlink()
    msg = cli_error(db_act.main, "-net", "alexnet", "-weights", weights, "-layer", "fc1",
                    "-stim", image_stim, "-out", tmp_path / "x.act.h5")
    assert "5 of 9 stimulus files are missing" in msg and "cat/0.png" in msg


@pytest.mark.parametrize("workers", ["1", "0"])   # a decoding process; threads
def test_corrupt_image_named_and_no_partial_output(cli_error, image_stim, weights, tmp_path,
                                                   workers):
    stim = Stimulus.load(image_stim)
    stim.paths[7].write_bytes(b"\x89PNG broken")
    out = tmp_path / "x.act.h5"
    msg = cli_error(db_act.main, "-net", "alexnet", "-weights", weights, "-layer", "conv1",
                    "fc1", "-stim", image_stim, "-out", out, "-batch-size", "2", "-workers",
                    workers)
    assert str(stim.paths[7]) in msg and "row 8" in msg
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".act.h5")]


def test_db_info(run_cli, tmp_path):
    status, out, _ = run_cli(db_info.main)
    assert status == 0 and "efficientnet_lite0" in out
    status, out, _ = run_cli(db_info.main, "-net", "alexnet")
    assert status == 0
    row = next(l for l in out.splitlines() if l.startswith("conv1_relu "))
    assert "features.1" in row and "(64, 55, 55)" in row and "193600" in row
    status, _, err = run_cli(db_info.main, "-net", "alexnett")
    assert status == 2 and "unknown network" in err


def test_db_mask_and_db_pool(run_cli, tmp_path, rng):
    src = tmp_path / "in.act.h5"
    x = rng.standard_normal((4, 3, 5, 6)).astype(np.float32)
    Activation({"conv": x, "fc": rng.standard_normal((4, 2))}).save(src)
    (tmp_path / "m.dmask.csv").write_text("conv=chn,col\n3,1\n6\n")
    status, _, err = run_cli(db_mask.main, "-act", src, "-dmask", tmp_path / "m.dmask.csv",
                             "-out", tmp_path / "m.act.h5")
    assert status == 0, err
    with Activation.load(tmp_path / "m.act.h5") as a:
        assert a.layers == ["conv"]
        np.testing.assert_array_equal(a["conv"], x[:, [2, 0]][:, :, :, [5]])
    status, _, err = run_cli(db_pool.main, "-act", src, "-method", "L1", "-out",
                             tmp_path / "p.act.h5")
    assert status == 0, err
    with Activation.load(tmp_path / "p.act.h5") as a:
        np.testing.assert_allclose(a["conv"][..., 0, 0], np.abs(x).sum((2, 3)), rtol=1e-6)
    (tmp_path / "bad.dmask.csv").write_text("conv=chn\n4\n")
    status, _, err = run_cli(db_mask.main, "-act", src, "-dmask", tmp_path / "bad.dmask.csv",
                             "-out", tmp_path / "b.act.h5")
    assert status == 2 and "out of range 1..3" in err


@pytest.mark.parametrize("module", [db_act, db_info, db_mask, db_pool])
def test_help_has_example(module, capsys):
    assert module.main(["--help"]) == 0
    assert "example:" in capsys.readouterr().out


def test_db_act_lesion_and_topk(run_cli, image_stim, weights, tmp_path):
    base = ["-net", "alexnet", "-weights", weights, "-stim", image_stim, "-layer", "conv1",
            "conv1_relu", "conv5_relu", "-q"]
    assert run_cli(db_act.main, *base, "-out", tmp_path / "r.act.h5",
                   "-lesion", "relu")[0] == 0
    with Activation.load(tmp_path / "r.act.h5") as act:
        np.testing.assert_array_equal(act["conv1"], act["conv1_relu"])   # ReLU removed
        assert act.attrs["lesion"] == "relu(seed=0)"
    # seeded weight permutation, on a small custom network (AlexNet's 61M weights are slow)
    (tmp_path / "small.py").write_text(
        "import torch.nn as nn\n"
        "def build():\n"
        "    return nn.Sequential(nn.Conv2d(3, 8, 5, stride=4), nn.ReLU(), nn.Conv2d(8, 8, 3),\n"
        "                         nn.ReLU(), nn.AdaptiveAvgPool2d(1))\n")
    small = ["-net", f"{tmp_path / 'small.py'}:build", "-weights", "random", "-stim",
             image_stim, "-layer", "3", "-q", "-lesion", "weights"]
    for name, seed in [("a", "4"), ("b", "4"), ("c", "5")]:
        assert run_cli(db_act.main, *small, "-seed", seed, "-out",
                       tmp_path / f"{name}.act.h5")[0] == 0
    a, b, c = (Activation.load(tmp_path / f"{n}.act.h5", lazy=False) for n in "abc")
    np.testing.assert_array_equal(a["3"], b["3"])                        # same seed
    assert not np.array_equal(a["3"], c["3"])
    status, _, err = run_cli(db_act.main, *base, "-out", tmp_path / "t.act.h5",
                             "-topk", "conv5_relu=0.1")
    assert status == 0, err
    with Activation.load(tmp_path / "t.act.h5") as act:
        nonzero = (act["conv5_relu"].reshape(9, 256, -1) != 0).sum(-1)
        assert nonzero.max() <= int(0.1 * 13 * 13) and act.attrs["topk"] == "conv5_relu=0.1"
    status, _, err = run_cli(db_act.main, *base, "-out", tmp_path / "u.act.h5",
                             "-topk", "conv5_relu:0.1")
    assert status == 2 and "LAYER=FRACTION" in err
