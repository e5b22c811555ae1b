"""Directory outputs are written as a whole (issue 11, items 9 and 11).

Every command writing a folder checks it before any work, writes into a hidden
temporary folder and renames it into place at the end: a failed, interrupted
(Ctrl-C or SIGTERM) run leaves nothing behind -- not even an empty -out -- and
--force replaces an earlier output entirely (but never a folder of the user's own
files). Messages name the final paths, never the temporary ones.
"""
import os
import signal

import nibabel as nib
import numpy as np
import pytest

from dnnsparse.base.activation import Activation
from dnnsparse.base.stimulus import Stimulus
from dnnsparse.cli import decode as db_decode
from dnnsparse.cli import demo as db_demo
from dnnsparse.cli import encode as db_encode
from dnnsparse.cli import map as db_map
from dnnsparse.cli import rsa as db_rsa
from dnnsparse.cli import topk as db_topk
from dnnsparse.cli import train as db_train
from dnnsparse.io.rdm import read_rdm_file

N = 12
SHAPE = (3, 4, 5)
MARKER = ".dnnsparse-output"


@pytest.fixture
def files(tmp_path, rng):
    ids = [f"img{i}.png" for i in range(N)]
    Activation({"conv": rng.standard_normal((N, 3, 2, 2)), "fc": rng.standard_normal((N, 6))},
               stim_ids=ids).save(tmp_path / "a.act.h5")
    Stimulus(ids, columns={"label": np.arange(N) % 3}).save(tmp_path / "s.stim.csv")
    atlas = (np.arange(np.prod(SHAPE)) % 3).reshape(SHAPE)
    nib.save(nib.Nifti1Image(atlas.astype(np.int16), np.eye(4)), str(tmp_path / "atlas.nii.gz"))
    bold = rng.standard_normal(SHAPE + (N,)).astype(np.float32)
    nib.save(nib.Nifti1Image(bold, np.eye(4)), str(tmp_path / "bold.nii.gz"))
    return tmp_path


def _partials(folder):
    return [p.name for p in folder.iterdir() if p.name.startswith(".partial-")]


# command, arguments (t: the data folder), part of the error: each fails after the
# output was checked, most of them after some work
FAILING = {
    "db_rsa unknown ROI": (db_rsa, lambda t: ["-act", t / "a.act.h5", "-nif", t / "bold.nii.gz",
                                              "-roi", t / "atlas.nii.gz", "-select", "V4"],
                           "no ROI 'V4'"),
    "db_map unknown metric": (db_map, lambda t: ["-act", t / "a.act.h5", "-stim", t / "s.stim.csv",
                                                 "-nif", t / "bold.nii.gz", "-roi",
                                                 t / "atlas.nii.gz", "-metric", "nosuch",
                                                 "-n-perm", "0"],
                              "nosuch"),
    "db_decode unknown layer": (db_decode, lambda t: ["-act", t / "a.act.h5", "-stim",
                                                      t / "s.stim.csv", "-layer", "conv9",
                                                      "-cv", "2"],
                                "'conv9'"),
    "db_topk no cue-conflict table": (db_topk, lambda t: ["-net", "alexnet", "-stim",
                                                          t / "s.stim.csv", "-layer", "conv5",
                                                          "-fraction", "0.1"],
                                      "cue-conflict"),
    "db_demo unknown category": (db_demo, lambda t: ["-categories", "nope", "nix",
                                                     "-n-per-category", "1"],
                                 "demo categories"),
}


@pytest.mark.parametrize("case", sorted(FAILING))
def test_a_failed_run_leaves_no_output_folder(cli_error, files, case):
    main, make, message = FAILING[case]
    out = files / "out"
    msg = cli_error(main.main, *make(files), "-out", out, "-q")
    assert message in msg
    assert not out.exists() and not _partials(files)


def test_nan_options_are_refused_at_parse_time(run_cli, files):
    for main, argv in ((db_rsa, ["-act", files / "a.act.h5", "-ci", "nan"]),
                       (db_map, ["-act", files / "a.act.h5", "-stim", files / "s.stim.csv",
                                 "-nif", files / "bold.nii.gz", "-roi", files / "atlas.nii.gz",
                                 "-alpha", "inf"]),
                       (db_encode, ["-act", files / "a.act.h5", "-resp", files / "bold.nii.gz",
                                    "-alphas", "1", "nan"]),
                       (db_topk, ["-net", "alexnet", "-stim", files / "s.stim.csv",
                                  "-layer", "conv5", "-fraction", "nan"])):
        status, _, err = run_cli(main.main, *argv, "-out", files / "out")
        assert status == 2 and "is not a finite number" in err and "Traceback" not in err
    assert not (files / "out").exists()


def test_force_replaces_an_earlier_output_as_a_whole(run_cli, files):
    out = files / "rsa"
    both = ["-act", files / "a.act.h5", "-nif", files / "bold.nii.gz", "-roi",
            files / "atlas.nii.gz", "-out", out, "-q", "-no-plot"]
    status, stdout, err = run_cli(db_rsa.main, *both)
    assert status == 0, err
    assert sorted(p.name for p in out.iterdir()) == [MARKER, "brain.rdm.h5", "dnn.rdm.h5",
                                                     "similarity.csv"]
    assert stdout.strip() == f"wrote dnn.rdm.h5, brain.rdm.h5, similarity.csv to {out}"
    # a refused rerun changes nothing
    status, _, err = run_cli(db_rsa.main, "-act", files / "a.act.h5", "-out", out, "-q")
    assert status == 2 and "--force" in err
    assert (out / "similarity.csv").is_file()
    # --force: the DNN-only result replaces the folder, no file of the first run stays
    status, _, err = run_cli(db_rsa.main, "-act", files / "a.act.h5", "-layer", "fc",
                             "-out", out, "-q", "--force", "-no-plot")
    assert status == 0, err
    assert sorted(p.name for p in out.iterdir()) == [MARKER, "dnn.rdm.h5"]
    assert list(read_rdm_file(out / "dnn.rdm.h5")[1]) == ["fc"]
    assert not _partials(files)


def test_force_never_deletes_the_users_own_folder(run_cli, files):
    mine = files / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    status, _, err = run_cli(db_rsa.main, "-act", files / "a.act.h5", "-out", mine, "-q",
                             "--force")
    assert status == 2 and "did not write" in err
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]


def test_sigterm_mid_run_exits_130_and_leaves_nothing(run_cli, files, monkeypatch):
    """db_encode killed by a scheduler (SIGTERM) after its first layer's maps."""
    from dnnsparse.pipelines import _encoding

    write_maps = _encoding.write_encoding_maps
    written = []

    def write_then_terminate(*args, **kwargs):
        written.extend(write_maps(*args, **kwargs))
        os.kill(os.getpid(), signal.SIGTERM)
        return written

    monkeypatch.setattr(_encoding, "write_encoding_maps", write_then_terminate)
    before = signal.getsignal(signal.SIGTERM)
    out = files / "enc"
    status, _, err = run_cli(db_encode.main, "-act", files / "a.act.h5", "-resp",
                             files / "bold.nii.gz", "-model", "glm", "-cv", "2", "-out", out,
                             "-q")
    assert status == 130 and "interrupted" in err and "Traceback" not in err
    assert written and not out.exists() and not _partials(files)
    assert signal.getsignal(signal.SIGTERM) is before          # the caller's handler is back


NET = """from torch import nn


def build():
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(4, 3))
"""


@pytest.fixture
def train_setup(tmp_path):
    from PIL import Image

    gen = np.random.default_rng(0)
    for kind in ("a", "b", "c"):
        (tmp_path / "img" / kind).mkdir(parents=True)
        for i in range(4):
            Image.fromarray(gen.integers(0, 256, (12, 12, 3), dtype=np.uint8)).save(
                tmp_path / "img" / kind / f"{i}.png")
    Stimulus.from_folder(tmp_path / "img").save(tmp_path / "t.stim.csv")
    (tmp_path / "net.py").write_text(NET)
    return tmp_path


def _train(t, out, *extra):
    return ["-net", f"{t / 'net.py'}:build", "-weights", "random", "-stim", t / "t.stim.csv",
            "-input-size", "12", "-batch-size", "4", "-workers", "0", "-threads", "1",
            "-augment", "none", "-epochs", "1", "-out", out, "-q", *extra]


def test_db_train_failing_in_its_first_epoch_leaves_nothing(cli_error, train_setup):
    out = train_setup / "run"
    msg = cli_error(db_train.main, *_train(train_setup, out, "-lr", "1e30"))
    assert "training loss" in msg and "lower -lr" in msg
    assert not out.exists() and not _partials(train_setup)


def test_db_train_force_replaces_the_earlier_run(run_cli, train_setup):
    out = train_setup / "run"
    status, stdout, err = run_cli(db_train.main, *_train(train_setup, out))
    assert status == 0, err
    assert f"wrote {out}:" in stdout and ".partial-" not in stdout
    first = {p.name for p in out.iterdir()}
    assert {MARKER, "checkpoint.pth", "history.csv", "history.png", "weights.pth",
            "model.json"} <= first
    (out / "stale.png").write_text("a file of the earlier run")
    status, _, err = run_cli(db_train.main, *_train(train_setup, out))
    assert status == 2 and "--force" in err and "-resume" in err
    status, _, err = run_cli(db_train.main, *_train(train_setup, out, "--force"))
    assert status == 0, err
    assert {p.name for p in out.iterdir()} == first          # stale.png went with the old run
