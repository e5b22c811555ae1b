"""db_stim -folder -type video_clip / audio: sub-folders are categories, as for images;
every clip is read with PyAV and every sound decoded with soundfile first (a damaged
file: one line naming it, exit 2, nothing written); the table feeds db_act."""
import importlib.util
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from dnnsparse.base.activation import Activation
from dnnsparse.base.stimulus import Stimulus
from dnnsparse.cli import act as db_act
from dnnsparse.cli.stim import main
from dnnsparse.io.stim import read_stim

_spec = importlib.util.spec_from_file_location(
    "video_files", Path(__file__).parents[1] / "io" / "video_files.py")
vf = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(vf)

SIZE, RATE = 16, 16000
CLIP_NET = """import torch
def build():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv3d(3, 2, 3), torch.nn.AdaptiveAvgPool3d(1))
"""
AUDIO_NET = """import torch
def build():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(1, 2, 5, stride=4), torch.nn.ReLU())
"""


def _clips(root):
    for rel, n in (("run/b.mp4", 5), ("run/a.mp4", 6), ("jump/c.mp4", 4)):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        vf.write_movie(root / rel, n, size=SIZE)
    (root / "run" / "notes.txt").write_text("not a clip")
    (root / "empty").mkdir()
    return root


def _sounds(root):
    t = np.arange(int(1.2 * RATE)) / RATE
    for rel, f in (("tone/hi.wav", 880), ("tone/lo.flac", 220), ("noise/n.wav", 0)):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        x = 0.2 * np.sin(2 * np.pi * f * t) if f else \
            0.1 * np.random.default_rng(0).standard_normal(t.size)
        sf.write(root / rel, x, RATE)
    return root


def _ok(run_cli, *argv):
    status, out, err = run_cli(main, *argv)
    assert status == 0, err
    return out


def test_clip_folder_to_table_to_db_act(run_cli, tmp_path):
    folder = _clips(tmp_path / "clips")
    out = tmp_path / "actions.stim.csv"
    printed = _ok(run_cli, "-folder", folder, "-type", "video_clip", "-out", out)
    assert printed.strip() == f"{out}: 3 stimuli, 2 categories"
    rec = read_stim(out)
    assert rec["type"] == "video_clip" and rec["path"] == "clips"
    assert rec["columns"]["stimID"].tolist() == ["jump/c.mp4", "run/a.mp4", "run/b.mp4"]
    assert rec["columns"]["label"].tolist() == [0, 1, 1]
    assert rec["columns"]["condition"].tolist() == ["jump", "run", "run"]
    (tmp_path / "clipnet.py").write_text(CLIP_NET)
    status, _, err = run_cli(db_act.main, "-net", f"{tmp_path / 'clipnet.py'}:build",
                             "-weights", "random", "-clip-len", 4, "-layer", "1", "-stim",
                             out, "-out", tmp_path / "c.act.h5", "-q")
    assert status == 0, err
    with Activation.load(tmp_path / "c.act.h5") as act:
        assert act.stim_ids.tolist() == rec["columns"]["stimID"].tolist()
        assert act.attrs["stim_type"] == "video_clip" and act.shape("1") == (3, 2, 1, 1)


def test_audio_folder_to_table_to_db_act(run_cli, tmp_path):
    folder = _sounds(tmp_path / "sounds")
    out = tmp_path / "s.stim.csv"
    _ok(run_cli, "-folder", folder, "-type", "audio", "-out", out)
    stim = Stimulus.load(out)
    assert stim.type == "audio" and stim.ids.tolist() == ["noise/n.wav", "tone/hi.wav",
                                                         "tone/lo.flac"]
    assert stim.labels.tolist() == [0, 1, 1]
    (tmp_path / "net.py").write_text(AUDIO_NET)
    status, _, err = run_cli(db_act.main, "-net", f"{tmp_path / 'net.py'}:build", "-weights",
                             "random", "-layer", "1", "-stim", out, "-out",
                             tmp_path / "a.act.h5", "-q")
    assert status == 0, err
    with Activation.load(tmp_path / "a.act.h5") as act:       # 1.2 s: one 0.96 s example
        assert act.stim_ids.tolist() == [f"{i}#1" for i in stim.ids]


def test_loose_files_give_no_labels(run_cli, tmp_path):
    folder = tmp_path / "loose"
    folder.mkdir()
    sf.write(folder / "x.wav", np.zeros(RATE), RATE)
    _ok(run_cli, "-folder", folder, "-type", "audio", "-out", tmp_path / "l.stim.csv")
    stim = Stimulus.load(tmp_path / "l.stim.csv")
    assert stim.ids.tolist() == ["x.wav"] and stim.labels is None


def _damage(kind, root):
    if kind == "video_clip":
        folder = _clips(root / "clips")
        good = (folder / "run" / "a.mp4").read_bytes()
        (folder / "run" / "a.mp4").write_bytes(good[:len(good) // 3])
        return folder, r"clips/run/a\.mp4"
    folder = _sounds(root / "sounds")
    flac = (folder / "tone" / "lo.flac").read_bytes()
    (folder / "tone" / "lo.flac").write_bytes(flac[:len(flac) // 3])
    return folder, r"sounds/tone/lo\.flac"


@pytest.mark.parametrize("kind", ["video_clip", "audio"])
def test_damaged_file_named_nothing_written(cli_error, tmp_path, kind):
    folder, name = _damage(kind, tmp_path)
    message = cli_error(main, "-folder", folder, "-type", kind, "-out", tmp_path / "o.stim.csv")
    assert re.search(name, message), message
    assert not (tmp_path / "o.stim.csv").exists()


@pytest.mark.parametrize("argv, pattern", [
    (["-type", "audio"], r"no audio files \(\.wav.*\) found in"),
    (["-type", "video_clip"], r"no movie clips \(\.mp4.*\) found in"),
    (["-type", "video"], r"invalid choice: 'video'"),
])
def test_folder_without_such_files(cli_error, tmp_path, argv, pattern):
    (tmp_path / "d" / "cat").mkdir(parents=True)
    (tmp_path / "d" / "cat" / "x.png").write_bytes(b"")
    message = cli_error(main, "-folder", tmp_path / "d", *argv, "-out", tmp_path / "o.stim.csv")
    assert re.search(pattern, message), message
    assert not (tmp_path / "o.stim.csv").exists()


def test_type_needs_folder_and_folder_must_exist(cli_error, tmp_path):
    (tmp_path / "t.csv").write_text("stimID\na.png\n")
    message = cli_error(main, "-table", tmp_path / "t.csv", "-type", "audio", "-out",
                        tmp_path / "o.stim.csv")
    assert "-type audio says what the files of a folder are; give it with -folder" in message
    message = cli_error(main, "-folder", tmp_path / "nope", "-type", "video_clip", "-out",
                        tmp_path / "o.stim.csv")
    assert "folder of movie clips not found" in message
    assert not (tmp_path / "o.stim.csv").exists()


def test_existing_output_refused_before_reading_files(cli_error, tmp_path):
    folder, _ = _damage("audio", tmp_path)
    (tmp_path / "o.stim.csv").write_text("keep")
    message = cli_error(main, "-folder", folder, "-type", "audio", "-out", tmp_path / "o.stim.csv")
    assert "exists" in message and (tmp_path / "o.stim.csv").read_text() == "keep"
