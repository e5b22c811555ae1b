"""db_minstim end to end: files, -ablate applied, repeatable runs, and bad input."""
import numpy as np
import pytest
import torch
from PIL import Image

from dnnsparse.base.stimulus import Stimulus
from dnnsparse.cli import minstim as db_minstim
from dnnsparse.io.table import read_table
from dnnsparse.model import ablate, load_dnn, resolve_targets, target_responses
from dnnsparse.pipelines import load_images

NET = '''
from torch import nn


def net():
    return nn.Sequential(nn.Conv2d(3, 4, 5, stride=2, padding=2), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Conv2d(4, 6, 3, padding=1), nn.ReLU())


def huge():
    return nn.Sequential(nn.Conv2d(3, 2, 300), nn.ReLU())
'''


@pytest.fixture
def setup(tmp_path):
    path = tmp_path / "small.py"
    path.write_text(NET)
    rng = np.random.default_rng(0)
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(3):
        img = np.zeros((48, 48, 3), np.uint8)
        for _ in range(6):
            r, c = rng.integers(0, 40, 2)
            img[r:r + rng.integers(8, 24), c:c + rng.integers(8, 24)] = rng.integers(0, 256, 3)
        Image.fromarray(img).save(folder / f"b{i}.png")
    Image.fromarray(np.full((20, 20, 3), 128, np.uint8)).save(folder / "flat.png")
    Stimulus.from_folder(folder).save(tmp_path / "s.stim.csv")
    return f"{path}:net", tmp_path / "s.stim.csv"


def _base(net, stim, out):
    return ["-net", net, "-weights", "random", "-stim", stim, "-n-segments", "10",
            "-out", out, "-q"]


def test_files_ablation_and_repeat(run_cli, setup, tmp_path):
    net, stim = setup
    out = tmp_path / "out"
    args = _base(net, stim, out) + ["-target", "4:2", "4:5,20,20", "-stim-id", "b2.png",
                                    "b0.png", "-keep", "0.7", "-ablate", "0:3",
                                    "-batch-size", "8"]
    status, stdout, err = run_cli(db_minstim.main, *args)
    assert status == 0, err
    assert "2 stimuli x 2 target(s)" in stdout
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted([".dnnsparse-output", "minstim.csv", "minstim.json"]
                           + [f"b{i}.png.segments.{e}" for i in (0, 2) for e in ("npy", "png")]
                           + [f"b{i}.png__{t}.{e}" for i in (0, 2) for t in ("4_2", "4_5_20_20")
                              for e in ("minimal.png", "order.csv", "curve.png")])
    summary = read_table(out / "minstim.csv")
    assert list(summary["stimID"]) == ["b2.png", "b2.png", "b0.png", "b0.png"]
    assert set(summary["keep"]) == {0.7}
    # the values are those of the hand-ablated network on the network-sized images
    dnn = load_dnn(net, weights="random")
    ablate(dnn, ["0:3"])
    sub = Stimulus.load(stim)[np.array([2, 0])]
    images = load_images(dnn, sub)
    targets = resolve_targets(["4:2", "4:5,20,20"], dnn)
    with torch.inference_mode():
        ref = target_responses(dnn, dnn.normalize(images), targets).double().numpy()
    np.testing.assert_allclose(np.asarray(summary["original"]).reshape(2, 2), ref, rtol=1e-6)
    record = (out / "minstim.json").read_text()
    assert '"ablate": "0:3"' in record and '"segment": "slic"' in record
    # a minimal image keeps >= 0.7 of the value, read back from its PNG
    for k, (i, j) in enumerate([(0, 0), (0, 1), (1, 0), (1, 1)]):
        stem = f"{sub.ids[i]}__{['4_2', '4_5_20_20'][j]}"
        with Image.open(out / f"{stem}.minimal.png") as im:
            png = torch.as_tensor(np.array(im)).permute(2, 0, 1)[None]
        assert png.shape[-2:] == (224, 224)
        with torch.inference_mode():
            v = float(target_responses(dnn, dnn.normalize(png), [targets[j]])[0, 0])
        if summary["status"][k] == "minimal":
            assert v >= 0.7 * ref[i, j] * (1 - 1e-6)
            np.testing.assert_allclose(v, summary["final"][k], rtol=1e-5)
    assert "minimal" in set(summary["status"])
    # the same command again gives the same tables and images
    first = {p.name: p.read_bytes() for p in out.iterdir()
             if p.suffix in (".csv", ".npy") or p.name.endswith(".minimal.png")}
    status, _, err = run_cli(db_minstim.main, *args)
    assert status == 2 and "--force" in err
    status, _, err = run_cli(db_minstim.main, *args, "-force", "-no-figures")
    assert status == 0, err
    again = {p.name: p.read_bytes() for p in out.iterdir() if p.name in first}
    assert again == first
    assert not list(out.glob("*.curve.png"))


def test_bad_input_is_one_line_and_writes_nothing(cli_error, setup, tmp_path):
    net, stim = setup
    out = tmp_path / "out"
    base = _base(net, stim, out) + ["-stim-id", "b0.png"]
    msg = cli_error(db_minstim.main, *base, "-target", "4:7")
    assert "channel 7 is out of range" in msg and "6 channels" in msg
    msg = cli_error(db_minstim.main, *base, "-target", "conv5:1")
    assert "unknown layer 'conv5'" in msg
    for keep in ("0", "1.5", "-0.2"):
        msg = cli_error(db_minstim.main, *base, "-target", "4:1", "-keep", keep)
        assert "-keep" in msg and "(0, 1]" in msg
    msg = cli_error(db_minstim.main, *base, "-target", "4:1", "-keep", "nan")
    assert "not a finite number" in msg
    msg = cli_error(db_minstim.main, *base[:-2], "-stim-id", "flat.png", "-target", "4:1",
                    "-segment", "felzenszwalb", "-n-segments", "10")
    assert "-n-segments is a parameter of slic, not of felzenszwalb" in msg
    msg = cli_error(db_minstim.main, "-net", net, "-weights", "random", "-stim", stim,
                    "-stim-id", "flat.png", "-target", "4:1", "-segment", "felzenszwalb",
                    "-out", out)
    assert "stimulus flat.png" in msg and "1 parcel" in msg and "at least 2" in msg
    msg = cli_error(db_minstim.main, "-net", net.replace(":net", ":huge"), "-weights",
                    "random", "-stim", stim, "-target", "1:1", "-out", out)
    assert "224x224" in msg and "too small" in msg
    msg = cli_error(db_minstim.main, *base[:-2], "-stim-id", "b9.png", "-target", "4:1")
    assert "b9.png" in msg and "did you mean" in msg
    msg = cli_error(db_minstim.main, *base, "-target", "4:1", "-batch-size", "0")
    assert "-batch-size" in msg
    msg = cli_error(db_minstim.main, *base, "-target", "4:1", "-fill", "blur",
                    "-blur-sigma", "0")
    assert "-blur-sigma" in msg
    assert not out.exists()
