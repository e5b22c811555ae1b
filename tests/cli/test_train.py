"""db_train end to end on a tiny separable image set with a custom network file:
loss goes down, resume after an interruption gives the uninterrupted weights,
frozen layers stay put, the weights load in db_act; Top-K snapshots per epoch equal
Top-K recomputed from that epoch's weights (also across a resume); mistakes -> exit 2."""
import functools
import importlib.util

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
from dnnsparse.model import load_dnn, topk_mask, topk_sparsify
from dnnsparse.pipelines import read_topk_snapshot

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


# ------------------------------------------------------------------ Top-K snapshots
MEAN = torch.tensor([0.485, 0.456, 0.406])[:, None, None]
STD = torch.tensor([0.229, 0.224, 0.225])[:, None, None]


def _probe(tmp_path):
    """Three 16 x 16 training images as the snapshot set (no resizing needed)."""
    probe = tmp_path / "probe.stim.csv"
    Stimulus([f"img/{k}/{i}.png" for k, i in (("flat", 0), ("horizontal", 1),
                                              ("vertical", 2))], root=tmp_path).save(probe)
    return probe


def _direct_masks(tmp_path, weights, layers, topk):
    """Masks from the plain module: weights loaded, Top-K hooks at ``topk``, the raw output
    of each of ``layers`` recorded before any Top-K at it, and topk_mask on it."""
    spec = importlib.util.spec_from_file_location("net3_direct", tmp_path / "net3.py")
    code = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(code)
    net = code.build()
    net.load_state_dict(torch.load(weights, weights_only=True))
    net.eval()
    x = torch.stack([torch.from_numpy(np.array(Image.open(tmp_path / p).convert("RGB")))
                     .permute(2, 0, 1) for p in ("img/flat/0.png", "img/horizontal/1.png",
                                                 "img/vertical/2.png")])
    x = x.float().div(255).sub(MEAN).div(STD)
    raw = {}
    hooks = [net.get_submodule(l).register_forward_hook(
        lambda m, i, o, f=f: topk_sparsify(o, f)) for l, f in topk.items()]
    hooks += [net.get_submodule(l).register_forward_hook(
        lambda m, i, o, l=l: raw.__setitem__(l, o.detach().clone()), prepend=True)
        for l in layers]
    with torch.no_grad():
        net(x)
    for h in hooks:
        h.remove()
    return raw


def test_db_train_snapshots_are_topk_of_each_epochs_weights(run_cli, setup):
    tmp_path, stim = setup
    out = tmp_path / "run"
    status, stdout, err = run_cli(db_train.main, *_args(
        tmp_path, stim, out, "-epochs", "2", "-topk", "2=0.25", "-snapshot-topk",
        _probe(tmp_path), "-snapshot-layers", "0", "2", "-snapshot-fraction", "0.1"))
    assert status == 0, err
    assert "topk_snapshots/" in stdout
    snaps = out / "topk_snapshots"
    for e in range(3):                     # the initial network and each epoch
        for suffix in (".topk.h5", ".pth", ".png"):
            assert (snaps / f"epoch_{e:03d}{suffix}").is_file(), (e, suffix)
    assert not (snaps / "epoch_003.topk.h5").exists()
    end = torch.load(out / "weights.pth", weights_only=True)
    last = torch.load(snaps / "epoch_002.pth", weights_only=True)
    assert all(torch.equal(end[k], last[k]) for k in end)
    previous = None
    for e in range(3):
        snap = read_topk_snapshot(snaps / f"epoch_{e:03d}.topk.h5")
        assert snap["epoch"] == e and snap["fractions"] == {"0": 0.1, "2": 0.1}
        assert snap["stimID"] == ["img/flat/0.png", "img/horizontal/1.png",
                                  "img/vertical/2.png"]
        raw = _direct_masks(tmp_path, snaps / f"epoch_{e:03d}.pth", ["0", "2"], {"2": 0.25})
        for layer in ("0", "2"):
            m = snap["masks"][layer]
            assert m.dtype == bool and m.shape == (3, 6, 16, 16)
            np.testing.assert_array_equal(m, topk_mask(raw[layer], 0.1).numpy())
        # conv outputs have no ties: the mask is the top-25 |x| per channel (torch.topk)
        rows = raw["0"].abs().reshape(18, 256)
        ref = torch.zeros_like(rows, dtype=torch.bool)
        ref.scatter_(1, rows.topk(25, dim=1).indices, True)
        np.testing.assert_array_equal(snap["masks"]["0"].reshape(18, 256), ref.numpy())
        if previous is not None:
            for layer in ("0", "2"):
                assert snap["changed"][layer] == pytest.approx(
                    np.mean(previous[layer] != snap["masks"][layer]))
        previous = snap["masks"]
    changes = read_table(snaps / "changes.csv")
    assert changes["epoch"].tolist() == [1, 1, 2, 2]
    assert changes["layer"].astype(str).tolist() == ["0", "2", "0", "2"]
    assert changes["changed_fraction"][2] == pytest.approx(snap["changed"]["0"])
    assert (snaps / "changes.png").read_bytes()[:4] == b"\x89PNG"
    assert (snaps / "epoch_001.png").read_bytes()[:4] == b"\x89PNG"


def test_db_train_snapshots_resume_and_leave_training_alone(run_cli, setup, monkeypatch):
    """Interrupted after epoch 2's snapshot, before its checkpoint: the resumed run redoes
    epoch 2 and ends with the snapshots and weights of an uninterrupted run, which are
    those of a run without snapshots."""
    tmp_path, stim = setup
    probe = _probe(tmp_path)
    argv = ["-epochs", "3", "-topk", "2=0.25", "-augment", "crop-flip"]
    status, _, err = run_cli(db_train.main, *_args(tmp_path, stim, tmp_path / "plain", *argv))
    assert status == 0, err
    full = tmp_path / "full"
    status, _, err = run_cli(db_train.main, *_args(tmp_path, stim, full, *argv,
                                                   "-snapshot-topk", probe))
    assert status == 0, err
    original = training._save_checkpoint

    def interrupted(path, settings, dnn, opt, sched, epoch, history):
        if epoch == 2:
            raise KeyboardInterrupt
        original(path, settings, dnn, opt, sched, epoch, history)
    monkeypatch.setattr(training, "_save_checkpoint", interrupted)
    part = tmp_path / "part"
    status, _, err = run_cli(db_train.main, *_args(tmp_path, stim, part, *argv,
                                                   "-snapshot-topk", probe))
    assert status == 130
    assert torch.load(part / "checkpoint.pth", weights_only=True)["epoch"] == 1
    assert (part / "topk_snapshots" / "epoch_002.topk.h5").is_file()
    monkeypatch.setattr(training, "_save_checkpoint", original)
    # other snapshot settings are refused on resume
    msg = cli_error_message(run_cli, *_args(tmp_path, stim, part, *argv, "-snapshot-topk",
                                            probe, "-snapshot-fraction", "0.5", "-resume"))
    assert "-resume" in msg and "snapshot" in msg
    status, _, err = run_cli(db_train.main, *_args(tmp_path, stim, part, *argv,
                                                   "-snapshot-topk", probe, "-resume"))
    assert status == 0, err
    plain = torch.load(tmp_path / "plain" / "weights.pth", weights_only=True)
    for run in (full, part):
        w = torch.load(run / "weights.pth", weights_only=True)
        assert all(torch.equal(plain[k], w[k]) for k in plain)
    names = sorted(p.name for p in (full / "topk_snapshots").iterdir())
    assert names == sorted(p.name for p in (part / "topk_snapshots").iterdir())
    assert [n for n in names if n.endswith(".topk.h5")] == [
        f"epoch_{e:03d}.topk.h5" for e in range(4)]
    for e in range(4):
        a = read_topk_snapshot(full / "topk_snapshots" / f"epoch_{e:03d}.topk.h5")
        b = read_topk_snapshot(part / "topk_snapshots" / f"epoch_{e:03d}.topk.h5")
        assert list(a["masks"]) == ["2"] and a["fractions"] == {"2": 0.25}   # from -topk
        np.testing.assert_array_equal(a["masks"]["2"], b["masks"]["2"])
        assert a["changed"] == pytest.approx(b["changed"], nan_ok=True)
        raw = _direct_masks(tmp_path, part / "topk_snapshots" / f"epoch_{e:03d}.pth", ["2"],
                            {"2": 0.25})
        np.testing.assert_array_equal(b["masks"]["2"], topk_mask(raw["2"], 0.25).numpy())
    assert (full / "topk_snapshots" / "changes.csv").read_text() == \
        (part / "topk_snapshots" / "changes.csv").read_text()


def cli_error_message(run_cli, *argv):
    status, _, err = run_cli(db_train.main, *argv)
    lines = [l for l in err.splitlines() if "error:" in l]
    assert status == 2 and len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_db_train_snapshot_user_errors(cli_error, setup):
    error = functools.partial(cli_error, db_train.main)
    tmp_path, stim = setup
    out = tmp_path / "o"
    probe = _probe(tmp_path)
    topk = ["-topk", "2=0.25"]
    msg = error(*_args(tmp_path, stim, out, *topk, "-snapshot-topk", tmp_path / "nope.csv"))
    assert "nope.csv" in msg
    msg = error(*_args(tmp_path, stim, out, *topk, "-snapshot-topk", probe,
                       "-snapshot-layers", "conv9", "-snapshot-fraction", "0.1"))
    assert "unknown layer 'conv9'" in msg
    for bad in ("1.5", "0"):
        msg = error(*_args(tmp_path, stim, out, *topk, "-snapshot-topk", probe,
                           "-snapshot-fraction", bad))
        assert "-snapshot-fraction" in msg and "(0, 1]" in msg or "outside" in msg
    msg = error(*_args(tmp_path, stim, out, *topk, "-snapshot-topk", probe,
                       "-snapshot-fraction", "nan"))
    assert "snapshot-fraction" in msg
    msg = error(*_args(tmp_path, stim, out, *topk, "-snapshot-layers", "0"))
    assert "-snapshot-topk" in msg
    msg = error(*_args(tmp_path, stim, out, "-snapshot-topk", probe))
    assert "-snapshot-layers" in msg
    msg = error(*_args(tmp_path, stim, out, *topk, "-snapshot-topk", probe,
                       "-snapshot-layers", "0"))
    assert "'0'" in msg and "-snapshot-fraction" in msg
    missing = tmp_path / "missing.stim.csv"
    missing.write_text("stimID\nimg/flat/0.png\nimg/flat/99.png\n")
    msg = error(*_args(tmp_path, stim, out, *topk, "-snapshot-topk", missing))
    assert "99.png" in msg
    msg = error(*_args(tmp_path, stim, out, *topk, "-snapshot-topk", probe,
                       "-snapshot-layers", "5", "-snapshot-fraction", "0.5"))
    assert "'5'" in msg and "(n, C, H, W)" in msg
    assert not out.exists()
