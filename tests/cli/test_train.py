"""db_train end to end on a tiny separable image set with a custom network file:
loss goes down, resume after an interruption gives the uninterrupted weights,
frozen layers stay put, the weights load in db_act; mistakes -> exit 2."""
import functools

import numpy as np
import pytest
import torch
from PIL import Image

from dnnsparse.base.activation import Activation
from dnnsparse.base.stimulus import Stimulus
from dnnsparse.cli import act as db_act
from dnnsparse.cli import train as db_train
from dnnsparse.io.table import read_table
from dnnsparse.model import _train as training
from dnnsparse.model import load_dnn

NET = """from torch import nn


def build():
    return nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, {n_out}))
"""


@pytest.fixture
def setup(tmp_path):
    """Striped images: horizontal, vertical or none (3 classes x 8), a net file."""
    gen = np.random.default_rng(1)
    for c, kind in enumerate(("flat", "horizontal", "vertical")):
        (tmp_path / "img" / kind).mkdir(parents=True)
        for i in range(8):
            a = np.full((16, 16), 60.0)
            if kind == "horizontal":
                a[::4] = 220
            elif kind == "vertical":
                a[:, ::4] = 220
            a = np.clip(a[..., None] + gen.normal(0, 15, (16, 16, 3)), 0, 255)
            Image.fromarray(a.astype(np.uint8)).save(tmp_path / "img" / kind / f"{i}.png")
    stim = tmp_path / "train.stim.csv"
    Stimulus.from_folder(tmp_path / "img").save(stim)
    (tmp_path / "net3.py").write_text(NET.format(n_out=3))
    (tmp_path / "net5.py").write_text(NET.format(n_out=5))
    return tmp_path, stim


def _args(tmp_path, stim, out, *extra):
    return ["-net", f"{tmp_path / 'net3.py'}:build", "-weights", "random", "-stim", stim,
            "-input-size", "16", "-batch-size", "6", "-workers", "0", "-threads", "1",
            "-augment", "none", "-lr", "0.1", "-seed", "2", "-out", out, "-q", *extra]


def test_db_train_reduces_loss_and_weights_load_in_db_act(run_cli, setup):
    tmp_path, stim = setup
    out = tmp_path / "run"
    status, stdout, err = run_cli(db_train.main, *_args(tmp_path, stim, out, "-epochs", "5"))
    assert status == 0, err
    assert "5 epochs" in stdout
    h = read_table(out / "history.csv")
    assert h["epoch"].tolist() == [1, 2, 3, 4, 5]
    assert h["train_loss"][-1] < h["train_loss"][0]
    assert (out / "history.png").read_bytes()[:4] == b"\x89PNG"
    # K = 3 = the net's own outputs: weights.pth is a plain state dict for -net net3.py
    act = tmp_path / "a.act.h5"
    status, _, err = run_cli(db_act.main, "-net", f"{tmp_path / 'net3.py'}:build", "-weights",
                             out / "weights.pth", "-layer", "5", "-stim", stim, "-out", act,
                             "-workers", "0", "-q")
    assert status == 0, err
    trained = training.load_finetuned(out)
    trained.input_size = (224, 224)        # db_act runs custom networks at 224 x 224
    with Activation.load(act) as a:
        assert a.shape("5") == (24, 3, 1, 1)
        ref = trained.extract(Stimulus.load(stim), ["5"], workers=0, show_progress=False)
        np.testing.assert_array_equal(a["5"], ref["5"])


def test_db_train_resume_after_interruption_is_exact(run_cli, setup, monkeypatch):
    tmp_path, stim = setup
    argv = ["-epochs", "4", "-topk", "2=0.25", "-augment", "crop-flip"]
    status, _, err = run_cli(db_train.main, *_args(tmp_path, stim, tmp_path / "full", *argv))
    assert status == 0, err

    def interrupt_after_two(record):
        if record["epoch"] == 2:
            raise KeyboardInterrupt
    original = training.train_classifier
    monkeypatch.setattr(training, "train_classifier",
                        functools.partial(original, callback=interrupt_after_two))
    part = tmp_path / "part"
    status, _, err = run_cli(db_train.main, *_args(tmp_path, stim, part, *argv))
    assert status == 130 and "-resume" in err and "checkpoint.pth" in err
    assert len(read_table(part / "history.csv")["epoch"]) == 2
    assert not (part / "weights.pth").exists()
    monkeypatch.setattr(training, "train_classifier", original)
    status, _, err = run_cli(db_train.main, *_args(tmp_path, stim, part, *argv, "-resume"))
    assert status == 0, err
    a = torch.load(tmp_path / "full" / "weights.pth", weights_only=True)
    b = torch.load(part / "weights.pth", weights_only=True)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert (part / "history.csv").read_text() == (tmp_path / "full" / "history.csv").read_text()
    ckpt = torch.load(part / "checkpoint.pth", weights_only=True)
    assert ckpt["epoch"] == 4 and ckpt["settings"]["topk"] == {"2": 0.25}


def test_db_train_freeze_and_new_classifier(run_cli, setup):
    tmp_path, stim = setup
    net = f"{tmp_path / 'net5.py'}:build"
    out = tmp_path / "run"
    argv = _args(tmp_path, stim, out, "-epochs", "2", "-freeze", "0", "-optimizer", "adam",
                 "-lr", "0.01")
    argv[1] = net
    status, _, err = run_cli(db_train.main, *argv)
    assert status == 0, err
    start = load_dnn(net, weights="random", seed=0).module.state_dict()
    end = torch.load(out / "weights.pth", weights_only=True)
    assert torch.equal(end["0.weight"], start["0.weight"])
    assert torch.equal(end["0.bias"], start["0.bias"])
    assert not torch.equal(end["1.weight"], start["1.weight"])
    assert end["5.weight"].shape == (3, 6)            # 5 outputs replaced by K = 3
    info = training.finetuned_info(out)
    assert info["classifier"] == "5" and info["class_names"] == ["flat", "horizontal",
                                                                 "vertical"]


def test_db_train_user_errors(cli_error, setup):
    error = functools.partial(cli_error, db_train.main)
    tmp_path, stim = setup
    out = tmp_path / "o"
    unlabelled = tmp_path / "nolabel.csv"
    unlabelled.write_text("stimID\nimg/flat/0.png\nimg/flat/1.png\n")
    msg = error(*_args(tmp_path, unlabelled, out))
    assert "'label' column" in msg
    msg = error(*_args(tmp_path, stim, out, "-resume"))
    assert "checkpoint" in msg and "not found" in msg
    msg = error(*_args(tmp_path, stim, out, "-freeze", "conv1"))
    assert "unknown layer 'conv1'" in msg
    msg = error(*_args(tmp_path, stim, out, "-topk", "2=1.5"))
    assert "fraction=1.5" in msg
    msg = error(*_args(tmp_path, stim, out, "-topk", "2"))
    assert "LAYER=FRACTION" in msg
    msg = error(*_args(tmp_path, stim, out, "-epochs", "0"))
    assert "epochs" in msg
    val = tmp_path / "val.csv"
    val.write_text("stimID,label\nimg/flat/0.png,0\nimg/flat/1.png,7\n")
    msg = error(*_args(tmp_path, stim, out, "-val-stim", val))
    assert "label 7" in msg and "row 2" in msg
    msg = error(*_args(tmp_path, stim, out, "-val-stim", val, "-val-fraction", "0.1"))
    assert "not allowed with" in msg
    out.mkdir()
    (out / "notes.txt").write_text("x")
    msg = error(*_args(tmp_path, stim, out))
    assert "--force" in msg and "-resume" in msg
