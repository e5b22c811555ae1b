"""db_synth texture / reconstruct end to end: outputs, metadata, repeatability, bad input."""
import json

import numpy as np
import pytest
from PIL import Image

from dnnsparse.cli import synth as db_synth
from dnnsparse.io.table import read_table

NET = '''
import torch
from torch import nn


def net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 6, 5, stride=2, padding=2), nn.ReLU(),
                         nn.Conv2d(6, 8, 3, padding=1), nn.ReLU())
'''


@pytest.fixture
def files(tmp_path):
    net = tmp_path / "small.py"
    net.write_text(NET)
    rng = np.random.default_rng(0)
    img = tmp_path / "src.png"
    Image.fromarray(rng.integers(40, 220, (36, 36, 3), dtype=np.uint8)).save(img)
    return f"{net}:net", img


def _texture(net, img, out, *extra):
    return ["texture", "-net", net, "-weights", "random", "-source", img, "-layers", "1", "3",
            "-size", "32", "-steps", "25", "-out", out, "-q", *extra]


def _reconstruct(net, img, out, *extra):
    return ["reconstruct", "-net", net, "-weights", "random", "-image", img, "-layer", "0",
            "-size", "32", "-steps", "30", "-out", out, "-q", *extra]


def test_texture_outputs_metadata_and_repeatability(run_cli, files, tmp_path):
    net, img = files
    a, b = tmp_path / "a", tmp_path / "b"
    status, stdout, err = run_cli(db_synth.main, *_texture(net, img, a, "-seed", "2"))
    assert status == 0, err
    assert "Gram loss" in stdout
    first = {p.name: p.read_bytes() for p in a.iterdir()}
    # the same command again (-force): every file byte-identical
    status, _, err = run_cli(db_synth.main, *_texture(net, img, a, "-seed", "2", "-force"))
    assert status == 0, err
    assert {p.name: p.read_bytes() for p in a.iterdir()} == first
    status, _, err = run_cli(db_synth.main, *_texture(net, img, b, "-seed", "3"))
    assert status == 0, err
    assert {p.name for p in a.iterdir()} == {".dnnsparse-output", "texture.png",
                                             "texture.json", "texture_loss.csv",
                                             "texture_loss.png"}
    assert (a / "texture_loss.csv").read_bytes() != (b / "texture_loss.csv").read_bytes()
    meta = json.loads((a / "texture.json").read_text())
    with Image.open(a / "texture.png") as im:
        assert json.loads(im.text["dnnsparse"]) == meta
        assert im.size == (32, 32)
    p = meta["parameters"]
    assert p["task"] == "texture" and p["layers"] == ["1", "3"] and p["seed"] == 2
    assert p["optimizer"] == "lbfgs" and p["lr"] == 1.0 and p["steps"] == 25
    assert meta["final_loss"] <= 0.01 * meta["initial_loss"]
    loss = read_table(a / "texture_loss.csv")
    assert len(loss["step"]) == 25 and float(loss["loss"][-1]) < float(loss["loss"][0])


def test_texture_with_topk_records_it(run_cli, files, tmp_path):
    net, img = files
    status, _, err = run_cli(db_synth.main, *_texture(net, img, tmp_path / "t", "-topk",
                                                      "1=0.2", "-topk-mode", "inverse",
                                                      "-no-figures", "-method", "adam",
                                                      "-lr", "0.05"))
    assert status == 0, err
    p = json.loads((tmp_path / "t" / "texture.json").read_text())["parameters"]
    assert p["topk"] == "1=0.2" and p["topk_mode"] == "inverse"
    assert p["optimizer"] == "adam" and not (tmp_path / "t" / "texture_loss.png").exists()


def test_reconstruct_identity_and_masks(run_cli, files, tmp_path):
    net, img = files
    status, stdout, err = run_cli(db_synth.main, *_reconstruct(net, img, tmp_path / "id"))
    assert status == 0, err
    meta = json.loads((tmp_path / "id" / "reconstruct.json").read_text())
    assert meta["relative_error"] < 0.05   # conv (pre-ReLU) of the small net, 30 steps
    assert meta["parameters"]["mask"] == "identity"
    mask = np.load(tmp_path / "id" / "reconstruct_mask.npy")
    assert mask.shape == (6, 16, 16) and mask.all()
    counts = {}
    for kind in ("topk", "nontopk", "random"):
        out = tmp_path / kind
        status, _, err = run_cli(db_synth.main, *_reconstruct(net, img, out, "-mask", kind,
                                                              "-fraction", "0.25",
                                                              "-no-figures"))
        assert status == 0, err
        counts[kind] = np.load(out / "reconstruct_mask.npy").sum(axis=(1, 2))
        assert json.loads((out / "reconstruct.json").read_text())["parameters"][
            "mask_positions"] == counts[kind].sum()
    assert (counts["topk"] == 64).all() and (counts["random"] == 64).all()
    assert (counts["nontopk"] == 256 - 64).all()


@pytest.mark.parametrize("extra,match", [
    (["-layers", "conv9"], "unknown layer"),
    (["-steps", "0"], "-steps"),
    (["-topk", "1=0"], "fraction"),
    (["-topk", "1=1.5"], "fraction"),
    (["-topk", "1=nan"], "finite"),
    (["-topk", "7=0.1"], "7"),
    (["-lr", "nan"], "-lr"),
    (["-size", "0"], "size"),
])
def test_texture_bad_input(cli_error, files, tmp_path, extra, match):
    net, img = files
    out = tmp_path / "bad"
    msg = cli_error(db_synth.main, *_texture(net, img, out), *extra)
    assert match in msg
    assert not out.exists()


@pytest.mark.parametrize("extra,match", [
    (["-fraction", "0"], "-fraction"),
    (["-fraction", "1.2"], "-fraction"),
    (["-fraction", "nan"], "-fraction"),
    (["-layer", "nope"], "nope"),
    (["-steps", "-3"], "-steps"),
])
def test_reconstruct_bad_input(cli_error, files, tmp_path, extra, match):
    net, img = files
    out = tmp_path / "bad"
    msg = cli_error(db_synth.main, *_reconstruct(net, img, out), *extra)
    assert match in msg
    assert not out.exists()


def test_missing_source_and_existing_output(cli_error, run_cli, files, tmp_path):
    net, img = files
    out = tmp_path / "o"
    assert "-source" in cli_error(db_synth.main, *_texture(net, tmp_path / "no.png", out))
    assert not out.exists()
    assert "-image" in cli_error(db_synth.main, *_reconstruct(net, tmp_path / "no.png", out))
    assert not out.exists()
    (tmp_path / "bad.png").write_text("not an image")
    msg = cli_error(db_synth.main, *_texture(net, tmp_path / "bad.png", out))
    assert "cannot read the -source image" in msg and not out.exists()
    assert run_cli(db_synth.main, *_reconstruct(net, img, out, "-steps", "1"))[0] == 0
    before = (out / "reconstruct.png").read_bytes()
    cli_error(db_synth.main, *_reconstruct(net, img, out, "-steps", "2"))
    assert (out / "reconstruct.png").read_bytes() == before


def test_help_lists_tasks(run_cli):
    status, out, _ = run_cli(db_synth.main, "--help")
    assert status == 0 and "texture" in out and "reconstruct" in out
    status, out, _ = run_cli(db_synth.main, "texture", "--help")
    assert status == 0 and "-source" in out and "-topk-mode" in out
