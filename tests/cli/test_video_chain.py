"""The movie chain end to end: a synthetic movie -> db_stim -video -fps -> db_act (frames
streamed through a network given as file.py:function) -> db_hrf (onsets stored in the
.act.h5) -> db_encode on a 4-D NIfTI run (real header) whose planted voxel follows one
channel's HRF-convolved time course, computed here with a slow loop; the voxel is
recovered. Bad movies and tables: one line, exit 2, nothing written."""
import importlib.util
import re
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from scipy.stats import gamma

from dnnsparse.base.activation import Activation
from dnnsparse.base.stimulus import Stimulus
from dnnsparse.cli import act as db_act
from dnnsparse.cli import encode as db_encode
from dnnsparse.cli import hrf as db_hrf
from dnnsparse.cli import stim as db_stim
from dnnsparse.io.table import read_table

_spec = importlib.util.spec_from_file_location(
    "video_files", Path(__file__).parents[1] / "io" / "video_files.py")
vf = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(vf)

pytestmark = pytest.mark.usefixtures("one_blas_thread")

RATE, SECONDS, SIZE = 5, 150, 32          # movie: 5 frames/s, 150 s, 32 x 32 pixels
TR, OVERSAMPLING = 2.0, 4
N_SCANS = int(SECONDS / TR)
GRID = (2, 3, 4)
PLANTED, CHANNEL = 9, 3                   # voxel 9 follows channel 3 (1-based)

NET = """import torch
def build():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(),
                               torch.nn.AdaptiveAvgPool2d(1))
"""
CLIP_NET = """import torch
def build():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv3d(3, 2, 3), torch.nn.AdaptiveAvgPool3d(1))
"""


def _hrf(dt):
    """SPM's canonical HRF (peak 6 s, undershoot 16 s, ratio 1/6), 0..32 s, sum 1."""
    t = np.arange(0, 32 + dt / 2, dt)
    h = gamma.pdf(t, 6) - gamma.pdf(t, 16) / 6
    return h / h.sum()


def _convolved(onsets, durations, amplitude):
    """Slow loop: each row a boxcar of its height on a TR/OVERSAMPLING grid, * HRF."""
    dt = TR / OVERSAMPLING
    n_fine = N_SCANS * OVERSAMPLING
    out = np.zeros(n_fine)
    for onset, duration, a in zip(onsets, durations, amplitude):
        box = np.zeros(n_fine)
        first = int(round(onset / dt))
        box[first:first + max(1, int(round(duration / dt)))] = a
        out += np.convolve(box, _hrf(dt))[:n_fine]
    return out[::OVERSAMPLING]


@pytest.fixture(scope="module")
def movie(tmp_path_factory):
    folder = tmp_path_factory.mktemp("movie")
    colours = np.random.default_rng(7).integers(0, 256, (SECONDS, 3))  # one per second

    def image(i):
        img = np.empty((SIZE, SIZE, 3), np.uint8)
        img[:] = colours[i // RATE]
        img[:, : SIZE // 2, 0] = 255 - colours[i // RATE, 0]           # some structure
        return img

    vf.write_movie(folder / "movie.mp4", SECONDS * RATE, codec="mpeg4", rate=RATE,
                   size=SIZE, image=image)
    (folder / "net.py").write_text(NET)
    (folder / "clipnet.py").write_text(CLIP_NET)
    return folder


def _ok(run_cli, main, *argv):
    status, out, err = run_cli(main, *argv, "-q")
    assert status == 0, err
    return out


def test_movie_to_encoding_recovers_the_planted_voxel(run_cli, movie, tmp_path, rng):
    stim_file = tmp_path / "movie.stim.csv"
    printed = _ok(run_cli, db_stim.main, "-video", movie / "movie.mp4", "-fps", 1,
                  "-out", stim_file)
    assert f"{SECONDS} frames" in printed
    stim = Stimulus.load(stim_file)
    np.testing.assert_allclose(stim["onset"], np.arange(SECONDS), atol=1e-9)
    assert stim.ids.tolist() == [str(RATE * k + 1) for k in range(SECONDS)]

    _ok(run_cli, db_act.main, "-net", f"{movie / 'net.py'}:build", "-weights", "random",
        "-layer", "2", "-stim", stim_file, "-batch-size", 16, "-out", tmp_path / "m.act.h5")
    with Activation.load(tmp_path / "m.act.h5") as act:
        X = act.to_matrix("2")                                    # (150, 4)
        np.testing.assert_allclose(act.attrs["onset"], stim["onset"])
        np.testing.assert_allclose(act.attrs["duration"], stim["duration"])
    assert X[:, CHANNEL - 1].std() > 0

    regressor = _convolved(stim["onset"], stim["duration"], X[:, CHANNEL - 1])
    bold = rng.standard_normal((N_SCANS, int(np.prod(GRID))))
    bold[:, PLANTED] += 2 * (regressor - regressor.mean()) / regressor.std()
    img = nib.Nifti1Image(np.moveaxis(bold.reshape((N_SCANS,) + GRID), 0, -1)
                          .astype(np.float32), np.diag([3.0, 3.0, 3.5, 1.0]))
    img.header.set_xyzt_units("mm", "sec")
    img.header["pixdim"][4] = TR
    nib.save(img, str(tmp_path / "bold.nii.gz"))

    # no -stim: the onsets stored by db_act
    _ok(run_cli, db_hrf.main, "-act", tmp_path / "m.act.h5", "-tr", TR, "-resp",
        tmp_path / "bold.nii.gz", "-oversampling", OVERSAMPLING, "-out",
        tmp_path / "h.act.h5")
    with Activation.load(tmp_path / "h.act.h5") as hrf:
        assert hrf.n_stim == N_SCANS and "onset" not in hrf.attrs
        got = hrf.to_matrix("2")[:, CHANNEL - 1]
    np.testing.assert_allclose(got, regressor, rtol=1e-5, atol=1e-6 * np.abs(regressor).max())

    _ok(run_cli, db_encode.main, "-act", tmp_path / "h.act.h5", "-resp",
        tmp_path / "bold.nii.gz", "-anal", "uv", "-cv", 5, "-contiguous", "-no-plot",
        "-out", tmp_path / "enc")
    table = read_table(tmp_path / "enc" / "scores.tsv")
    assert table["best_unit"][PLANTED] == CHANNEL and table["r"][PLANTED] > 0.8
    assert np.all(np.abs(np.delete(table["r"], PLANTED)) < 0.5)


# ------------------------------------------------------------------ bad input
def _table(tmp, movie_path, ids, columns=None, kind="video"):
    Stimulus(ids, root=movie_path, type=kind, columns=columns).save(tmp / "t.stim.csv")
    return tmp / "t.stim.csv"


def _corrupt(tmp, movie):
    (tmp / "bad.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 200)
    return _table(tmp, tmp / "bad.mp4", ["1", "2"])


def _truncated(tmp, movie):
    data = (movie / "movie.mp4").read_bytes()
    (tmp / "cut.mp4").write_bytes(data[: len(data) // 3])
    return _table(tmp, tmp / "cut.mp4", ["1", "2"])


def _undecodable(tmp, movie):
    vf.write_movie(tmp / "ok.mkv", 5, codec="libx264", size=SIZE)
    data = (tmp / "ok.mkv").read_bytes().replace(b"V_MPEG4/ISO/AVC", b"V_ZZZZZ/ISO/AVC")
    (tmp / "x.mkv").write_bytes(data)
    return _table(tmp, tmp / "x.mkv", ["1"])


def _onset_past_end(tmp, movie):
    return _table(tmp, movie / "movie.mp4", ["a", "b"],
                  columns={"onset": [1.0, SECONDS + 5.0]})


def _frame_past_end(tmp, movie):
    return _table(tmp, movie / "movie.mp4", ["1", str(SECONDS * RATE + 1)])


def _missing_movie(tmp, movie):
    return _table(tmp, tmp / "nowhere.mp4", ["1"])


ACT_ERRORS = {
    "corrupt movie": (_corrupt, [], r"cannot open movie .*bad\.mp4"),
    "truncated movie": (_truncated, [], r"cut\.mp4.*(damaged|truncated)"),
    "undecodable codec": (_undecodable, [], r"no decoder for its video codec"),
    "onset past the end": (_onset_past_end, [], r"onset 155 s \(row 2\) is outside"),
    "frame past the end": (_frame_past_end, [], r"frame 751 \(row 2\) is past the end"),
    "missing movie": (_missing_movie, [], r"video file not found"),
    "clip past the end": (lambda t, m: _table(t, m / "movie.mp4", ["1", "748"]),
                          ["clip"], r"row 2 \(frame 748\).*needs frames up to 751"),
    "clip too short": (lambda t, m: (vf.write_movie(t / "c.mp4", 3, size=SIZE),
                                     _table(t, t, ["c.mp4"], kind="video_clip"))[1],
                       ["clip"], r"c\.mp4 \(row 1\) has 3 frames"),
    "clip table, image network": (lambda t, m: (vf.write_movie(t / "c.mp4", 9, size=SIZE),
                                                _table(t, t, ["c.mp4"],
                                                       kind="video_clip"))[1],
                                  [], r"image network; type=video_clip"),
}


@pytest.mark.parametrize("case", sorted(ACT_ERRORS))
def test_db_act_bad_input_exit_2_nothing_written(cli_error, movie, tmp_path, case):
    make, kind, pattern = ACT_ERRORS[case]
    table = make(tmp_path, movie)
    net = (["-net", f"{movie / 'clipnet.py'}:build", "-clip-len", 4, "-layer", "1"] if kind
           else ["-net", f"{movie / 'net.py'}:build", "-layer", "2"])
    message = cli_error(db_act.main, *net, "-weights", "random", "-stim", table,
                        "-out", tmp_path / "o.act.h5")
    assert re.search(pattern, message), message
    assert not (tmp_path / "o.act.h5").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".partial")]


def test_db_hrf_without_stored_onsets_needs_stim(cli_error, tmp_path, rng):
    Activation({"fc": rng.standard_normal((4, 3))}).save(tmp_path / "a.act.h5")
    message = cli_error(db_hrf.main, "-act", tmp_path / "a.act.h5", "-tr", 2, "-n-scans", 5,
                        "-out", tmp_path / "h.act.h5")
    assert "stores no onsets; give -stim" in message
    assert not (tmp_path / "h.act.h5").exists()


@pytest.mark.parametrize("argv, pattern", [
    (["-fps", 0], r"-fps 0: give a rate > 0"),
    (["-fps", -2], r"-fps -2: give a rate > 0"),
])
def test_db_stim_bad_rate(cli_error, movie, tmp_path, argv, pattern):
    message = cli_error(db_stim.main, "-video", movie / "movie.mp4", *argv, "-out",
                        tmp_path / "s.stim.csv")
    assert re.search(pattern, message), message
    assert not (tmp_path / "s.stim.csv").exists()


def test_db_stim_fps_needs_video(cli_error, movie, tmp_path):
    message = cli_error(db_stim.main, "-folder", movie, "-fps", 2, "-out",
                        tmp_path / "s.stim.csv")
    assert "-fps samples a movie" in message


def test_db_act_clip_network_on_a_dnnbrain_clip_table(run_cli, movie, tmp_path):
    (tmp_path / "clips").mkdir()
    for i in range(3):
        vf.write_movie(tmp_path / "clips" / f"c{i}.mp4", 7 + i, size=SIZE,
                       image=lambda k, i=i: vf.frame_image(50 * i + 3 * k, size=SIZE))
    (tmp_path / "c.stim.csv").write_text(          # as DNNBrain writes it: floats
        "type=video_clip\npath=clips\ndata=stimID,label,onset,duration\n"
        "c0.mp4,0.0,0.0,2.0\nc1.mp4,1.0,2.0,2.0\nc2.mp4,1.0,4.0,2.0\n")
    printed = _ok(run_cli, db_act.main, "-net", f"{movie / 'clipnet.py'}:build", "-weights",
                  "random", "-clip-len", 4, "-clip-stride", 2, "-layer", "0", "1", "-stim",
                  tmp_path / "c.stim.csv", "-out", tmp_path / "c.act.h5")
    assert "3 stimuli" in printed
    with Activation.load(tmp_path / "c.act.h5") as act:
        assert act.attrs["clip_len"] == 4 and act.attrs["clip_stride"] == 2
        assert act.attrs["stim_type"] == "video_clip"
        np.testing.assert_array_equal(act.attrs["onset"], [0.0, 2.0, 4.0])
        # Conv3d(3, 2, 3) on 4 frames of 224 x 224: (2, 2, 222, 222), time folded in rows
        assert act.shape("0") == (3, 2, 2 * 222, 222)
        assert act.layer_attrs("0")["time_steps"] == 2
        assert act.shape("1") == (3, 2, 1, 1)
