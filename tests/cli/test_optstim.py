"""db_optstim end to end: outputs and their metadata, repeatability, manipulations, bad input."""
import json

import numpy as np
import pytest
import torch
from PIL import Image

from dnnsparse.cli import optstim as db_optstim
from dnnsparse.io.table import read_table

NET = '''
import torch
from torch import nn


def net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 5, stride=2, padding=2), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Conv2d(4, 6, 3, padding=1), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 5))
'''

TARGETS = ["3:2", "7:class=1", "3:1,2,2", "1:3@max"]
STEMS = ["optstim_3_2", "optstim_7_class_1", "optstim_3_1_2_2", "optstim_1_3_max"]


@pytest.fixture
def net(tmp_path):
    path = tmp_path / "small.py"
    path.write_text(NET)
    return f"{path}:net"


def _args(net, out, *extra):
    return ["-net", net, "-weights", "random", "-size", "40", "-steps", "6", "-jitter", "3",
            "-out", out, "-q", *extra]


def test_outputs_metadata_and_tables(run_cli, net, tmp_path):
    out = tmp_path / "opt"
    status, stdout, err = run_cli(db_optstim.main, *_args(net, out, "-target", *TARGETS,
                                                           "-l1", "0.1", "-tv", "0.2",
                                                           "-blur-every", "2", "-no-figures"))
    assert status == 0, err
    assert "4 target(s)" in stdout
    expected = {".dnnsparse-output", "optstim.csv"}
    for stem in STEMS:
        expected |= {f"{stem}.png", f"{stem}.json", f"{stem}_steps.csv"}
    assert {p.name for p in out.iterdir()} == expected
    summary = read_table(out / "optstim.csv")
    assert list(summary["target"]) == TARGETS
    for j, (target, stem) in enumerate(zip(TARGETS, STEMS)):
        with Image.open(out / f"{stem}.png") as img:
            meta = json.loads(img.text["dnnsparse"])
            pixels = np.asarray(img)
        assert pixels.shape == (40, 40, 3) and pixels.dtype == np.uint8
        assert meta == json.loads((out / f"{stem}.json").read_text())
        assert meta["target"] == target and meta["image"] == f"{stem}.png"
        params = meta["parameters"]
        assert params["steps"] == 6 and params["l1"] == 0.1 and params["tv"] == 0.2
        assert params["blur_every"] == 2 and params["size"] == [40, 40]
        assert params["param"] == "fourier" and params["seed"] == 0
        assert params["weights"] == "random(seed=0)"
        steps = read_table(out / f"{stem}_steps.csv")
        assert list(steps) == ["step", "activation", "penalty"]
        assert list(steps["step"]) == list(range(1, 7))
        assert np.all(steps["penalty"] > 0)
        np.testing.assert_allclose(summary["activation"][j], meta["activation"])


def test_saved_activation_is_the_network_value_of_the_png(run_cli, net, tmp_path):
    out = tmp_path / "opt"
    assert run_cli(db_optstim.main, *_args(net, out, "-target", "3:2", "7:class=1"))[0] == 0
    from dnnsparse.model import load_dnn
    dnn = load_dnn(net, weights="random")
    module = dnn.module
    for stem, layer_out in (("optstim_3_2", lambda y: module[:4](y)[:, 1].mean()),
                            ("optstim_7_class_1", lambda y: module(y)[:, 1].sum())):
        with Image.open(out / f"{stem}.png") as img:
            x = torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1)[None]
        meta = json.loads((out / f"{stem}.json").read_text())
        with torch.no_grad():
            value = float(layer_out(dnn.normalize(x)))
        np.testing.assert_allclose(meta["activation"], value, rtol=1e-4, atol=1e-6)


def test_two_runs_are_identical_bit_for_bit(run_cli, net, tmp_path):
    outs = [tmp_path / "a", tmp_path / "b", tmp_path / "c"]
    for out, seed in zip(outs, (4, 4, 5)):
        status, _, err = run_cli(db_optstim.main, *_args(net, out, "-target", "3:2", "1:1",
                                                          "-seed", seed, "-patience", "3",
                                                          "-no-figures"))
        assert status == 0, err
    for name in ("optstim_3_2.png", "optstim_1_1.png", "optstim_3_2_steps.csv", "optstim.csv"):
        assert (outs[0] / name).read_bytes() == (outs[1] / name).read_bytes(), name
    assert (outs[0] / "optstim_3_2.png").read_bytes() != (outs[2] / "optstim_3_2.png").read_bytes()
    assert not (outs[0] / "optstim_3_2_steps.png").exists()


def test_from_an_image_pixel_parameterisation(run_cli, net, tmp_path):
    start = np.random.default_rng(0).integers(0, 256, (50, 60, 3), dtype=np.uint8)
    Image.fromarray(start).save(tmp_path / "start.png")
    out = tmp_path / "opt"
    status, _, err = run_cli(db_optstim.main, *_args(net, out, "-target", "3:2", "-init",
                                                     tmp_path / "start.png", "-param", "pixel",
                                                     "-lr", "1e-4", "-steps", "1"))
    assert status == 0, err
    squashed = np.asarray(Image.fromarray(start).resize((40, 40), Image.BILINEAR))
    with Image.open(out / "optstim_3_2.png") as img:
        got = np.asarray(img).astype(int)
        assert json.loads(img.text["dnnsparse"])["parameters"]["init"].endswith("start.png")
    # one tiny step from the (squashed) start image: the start image, within a grey level
    # or two (PIL's antialiased squash vs torchvision's is not bit-exact either)
    assert np.abs(got - squashed.astype(int)).mean() < 2


def test_manipulations_are_applied_and_recorded(run_cli, net, tmp_path):
    out = tmp_path / "opt"
    status, _, err = run_cli(db_optstim.main, *_args(net, out, "-target", "3:2", "-topk",
                                                     "1=0.5", "-ablate", "3:4",
                                                     "-lesion", "weights"))
    assert status == 0, err
    params = json.loads((out / "optstim_3_2.json").read_text())["parameters"]
    assert params["topk"] == "1=0.5" and params["ablate"] == "3:4"
    assert "weights" in params["lesion"]


def test_force_replaces_and_refuses_without(run_cli, cli_error, net, tmp_path):
    out = tmp_path / "opt"
    assert run_cli(db_optstim.main, *_args(net, out, "-target", "3:2"))[0] == 0
    for figure in ("optstim_3_2_steps.png", "optstim_images.png"):   # figures by default
        with Image.open(out / figure) as img:
            assert img.size[0] > 200
    before = (out / "optstim_3_2.png").read_bytes()
    assert "not empty" in cli_error(db_optstim.main, *_args(net, out, "-target", "3:1"))
    assert (out / "optstim_3_2.png").read_bytes() == before
    assert run_cli(db_optstim.main, *_args(net, out, "-target", "3:1", "-force"))[0] == 0
    assert not (out / "optstim_3_2.png").exists() and (out / "optstim_3_1.png").exists()


@pytest.mark.parametrize("extra, message", [
    (["-target", "7:class=no_such_class"], "class"),
    (["-target", "3:7"], "out of range"),
    (["-target", "9:1"], "unknown layer"),
    (["-target", "3:1,11,11"], "outside"),
    (["-target", "3:1", "-l1", "nan"], "finite"),
    (["-target", "3:1", "-tv", "-1"], "-tv"),
    (["-target", "3:1", "-l2", "inf"], "finite"),
    (["-target", "3:1", "-lr", "nan"], "finite"),
    (["-target", "3:1", "-lr", "-0.1"], "-lr"),
    (["-target", "3:1", "-lr", "0"], "-lr"),
    (["-target", "3:1", "-steps", "0"], "-steps"),
    (["-target", "3:1", "-patience", "0"], "-patience"),
    (["-target", "3:1", "-blur-sigma", "nan"], "finite"),
    (["-target", "3:1", "-scale", "1.1,0.9"], "LOW <= HIGH"),
    (["-target", "3:1", "-scale", "2"], "LO,HI"),
    (["-target", "3:1", "-size", "2", "-jitter", "0"], "too small"),
    (["-target", "3:1", "-size", "10x10"], "-size"),
    (["-target", "3:1", "-size", "0"], "image size"),
    (["-target", "3:1", "-jitter", "40"], "-jitter"),
    (["-target", "3:1", "-init", "missing.png"], "not found"),
])
def test_bad_input_is_one_line_and_writes_nothing(cli_error, net, tmp_path, extra, message):
    out = tmp_path / "opt"
    assert message in cli_error(db_optstim.main, *_args(net, out, *extra))
    assert not out.exists()


def test_unknown_imagenet_class_on_a_zoo_net(cli_error, tmp_path):
    out = tmp_path / "opt"
    msg = cli_error(db_optstim.main, "-net", "alexnet", "-weights", "random", "-target",
                    "fc3:class=goldfsh", "-size", "64", "-out", out)
    assert "goldfish" in msg and not out.exists()            # the close name is suggested


def test_unreadable_init_image(cli_error, net, tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    out = tmp_path / "opt"
    assert "cannot read" in cli_error(db_optstim.main, *_args(net, out, "-target", "3:1",
                                                              "-init", bad))
    assert not out.exists()
