"""db_act on type=audio tables (segments of one file, one file per row, a network given
as file.py:function) -> db_hrf from the stored example onsets; bad audio input gives one
line, exit 2, nothing written."""
import re

import numpy as np
import pytest
import soundfile as sf
import torch
from scipy.signal import resample_poly
from scipy.stats import gamma

from dnnsparse.base.activation import Activation
from dnnsparse.cli import act as db_act
from dnnsparse.cli import hrf as db_hrf
from dnnsparse.utils.audio import log_mel_examples

RATE = 44100
NET = """import torch
def build():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(1, 2, 5, stride=4), torch.nn.ReLU(),
                               torch.nn.AdaptiveAvgPool2d(1))
"""


def _table(folder, path, rows, columns=("onset", "duration")):
    lines = ["type=audio", f"path={path}", "data=" + ",".join(("stimID",) + columns)]
    lines += [",".join(str(v) for v in row) for row in rows]
    (folder / "a.stim.csv").write_text("\n".join(lines) + "\n")
    return folder / "a.stim.csv"


@pytest.fixture(scope="module")
def sounds(tmp_path_factory):
    folder = tmp_path_factory.mktemp("audio")
    t = np.arange(int(12 * RATE)) / RATE
    # a tone whose loudness steps every 2 s; 16-bit stereo (mixed down to mono)
    x = 0.05 * (1 + np.floor(t / 2)) * np.sin(2 * np.pi * 600 * t)
    sf.write(folder / "long.wav", np.stack([x, x], 1), RATE, subtype="PCM_16")
    sf.write(folder / "short.wav", x[:int(0.5 * RATE)], RATE)
    sf.write(folder / "odd.wav", x[:3 * 7919], 7919)
    good = (folder / "long.wav").read_bytes()
    (folder / "corrupt.wav").write_bytes(b"RIFF\x00\x00garbage" + bytes(300))
    sf.write(folder / "t.flac", x[:4 * RATE], RATE)
    flac = (folder / "t.flac").read_bytes()
    (folder / "truncated.flac").write_bytes(flac[:len(flac) // 3])
    (folder / "truncated.wav").write_bytes(good[:len(good) // 2])
    (folder / "net.py").write_text(NET)
    return folder


def _ok(run_cli, main, *argv):
    status, out, err = run_cli(main, *argv, "-q")
    assert status == 0, err
    return out


def test_segments_to_hrf(run_cli, sounds, tmp_path):
    table = _table(tmp_path, sounds / "long.wav", [("s1", 0, 5), ("s2", 6, 5.5)])
    out = _ok(run_cli, db_act.main, "-net", f"{sounds / 'net.py'}:build", "-weights",
              "random", "-layer", "1", "-stim", table, "-batch-size", 3, "-out",
              tmp_path / "a.act.h5")
    assert "wrote" in out
    x = sf.read(sounds / "long.wav")[0].mean(axis=1)
    want = np.concatenate([log_mel_examples(resample_poly(x[a * RATE // 2:b * RATE // 2],
                                                          160, 441))
                           for a, b in ((0, 10), (12, 23))])
    with Activation.load(tmp_path / "a.act.h5") as act:
        assert act.stim_ids.tolist() == [f"s1#{k}" for k in range(1, 6)] + \
            [f"s2#{k}" for k in range(1, 6)]
        onsets = act.attrs["onset"]
        np.testing.assert_allclose(onsets, np.r_[np.arange(5) * 0.96, 6 + np.arange(5) * .96])
        np.testing.assert_allclose(act.attrs["duration"], 0.96)
        assert act.attrs["stim_type"] == "audio" and act.attrs["sample_rate"] == 16000
        got = act.get("1")
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 5, stride=4), torch.nn.ReLU())
    with torch.inference_mode():
        direct = net(torch.from_numpy(want.astype(np.float32))[:, None]).numpy()
    np.testing.assert_allclose(got, direct, rtol=1e-5, atol=1e-6)

    # db_hrf without -stim: boxcars at the stored example onsets, * SPM's HRF (slow loop)
    tr, n_scans, over = 0.96, 20, 4                      # every onset on the fine grid
    _ok(run_cli, db_hrf.main, "-act", tmp_path / "a.act.h5", "-tr", tr, "-n-scans", n_scans,
        "-oversampling", over, "-layer", "1", "-out", tmp_path / "h.act.h5")
    dt = tr / over
    t = np.arange(0, 32 + dt / 2, dt)
    h = gamma.pdf(t, 6) - gamma.pdf(t, 16) / 6
    h /= h.sum()
    amp = got[:, 0].mean(axis=(1, 2))
    fine = np.zeros(n_scans * over)
    for onset, a in zip(onsets, amp):
        box = np.zeros_like(fine)
        first = int(round(onset / dt))
        box[first:first + int(round(0.96 / dt))] = a
        fine += np.convolve(box, h)[:len(fine)]
    with Activation.load(tmp_path / "h.act.h5") as hrf:
        assert hrf.n_stim == n_scans
        res = hrf.to_matrix("1")
    np.testing.assert_allclose(res.reshape(n_scans, 2, -1)[:, 0].mean(axis=1),
                               fine[::over], rtol=1e-4, atol=1e-6 * np.abs(fine).max())


def test_one_file_per_row(run_cli, sounds, tmp_path):
    table = _table(tmp_path, sounds, [("long.wav",), ("t.flac",)], columns=())
    _ok(run_cli, db_act.main, "-net", f"{sounds / 'net.py'}:build", "-weights", "random",
        "-layer", "2", "-stim", table, "-out", tmp_path / "f.act.h5")
    with Activation.load(tmp_path / "f.act.h5") as act:
        assert act.n_stim == 12 + 4 and act.stim_ids[-1] == "t.flac#4"


BAD = {
    "corrupt file": (lambda s: (s, [("corrupt.wav",)], ()), r"cannot open audio file"),
    "truncated file": (lambda s: (s, [("truncated.flac",)], ()), r"truncated\.flac"),
    "truncated wav": (lambda s: (s, [("truncated.wav",)], ()), r"truncated.wav is truncated"),
    "segment past the end": (lambda s: (s / "long.wav", [("a", 10, 3)], ("onset", "duration")),
                             r"row 1: segment 10-13 s runs past the end"),
    "shorter than one example": (lambda s: (s, [("short.wav",)], ()),
                                 r"lasts 0.500 s; .* needs at least 0.975 s"),
    "rate that cannot be resampled": (lambda s: (s, [("odd.wav",)], ()),
                                      r"7919 Hz cannot be resampled to 16000 Hz"),
    "missing file": (lambda s: (s, [("nope.wav",)], ()), r"missing"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_audio_exit_2_nothing_written(cli_error, sounds, tmp_path, case):
    make, pattern = BAD[case]
    path, rows, columns = make(sounds)
    table = _table(tmp_path, path, rows, columns)
    message = cli_error(db_act.main, "-net", f"{sounds / 'net.py'}:build", "-weights",
                        "random", "-layer", "1", "-stim", table, "-out", tmp_path / "o.act.h5")
    assert re.search(pattern, message), message
    assert not (tmp_path / "o.act.h5").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".partial")]
