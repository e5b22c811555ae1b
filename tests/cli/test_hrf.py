"""db_hrf against a direct convolution: boxcars on a fine grid, np.convolve with a
double-gamma HRF computed here from scipy, read at the scan times; then db_encode on
the convolved activation recovers a planted voxel of a 4-D run."""
import re

import nibabel as nib
import numpy as np
import pytest
from nibabel import cifti2
from scipy.stats import gamma

from dnnsparse.base.activation import Activation
from dnnsparse.base.stimulus import Stimulus
from dnnsparse.cli import encode
from dnnsparse.cli.hrf import main
from dnnsparse.io.table import read_table

TR, OVERSAMPLING = 2.0, 4
DT = TR / OVERSAMPLING


def _hrf(dt):
    """SPM's canonical HRF (peak 6 s, undershoot 16 s, ratio 1/6), 0..32 s, sum 1."""
    t = np.arange(0, 32 + dt / 2, dt)
    h = gamma.pdf(t, 6) - gamma.pdf(t, 16) / 6
    return h / h.sum()


def _direct(onsets, durations, amplitudes, n_scans, frame):
    """sum over events of amplitude x (boxcar * hrf), read at the scans: a slow loop."""
    n_fine = n_scans * OVERSAMPLING
    h = _hrf(DT)
    out = np.zeros((n_scans, amplitudes.shape[1]))
    read = np.arange(n_scans) * OVERSAMPLING + int(frame * OVERSAMPLING)
    for onset, duration, amp in zip(onsets, durations, amplitudes):
        box = np.zeros(n_fine)
        first = int(round(onset / DT))
        box[first:first + max(1, int(round(duration / DT)))] = 1.0   # 0 s: one bin
        regressor = np.convolve(box, h)[:n_fine]
        out += regressor[read][:, None] * amp[None, :]
    return out


def _write(tmp, rng, n_events, *, spacing=5.0):
    onsets = np.arange(n_events) * spacing + rng.integers(0, 4, n_events) * DT
    durations = rng.integers(0, 5, n_events) * DT                 # includes 0 s events
    layers = {"conv": rng.standard_normal((n_events, 2, 2, 3)).astype(np.float32),
              "fc": rng.standard_normal((n_events, 5)).astype(np.float32)}
    Activation(layers).save(tmp / "a.act.h5")
    Stimulus([f"s{i}.png" for i in range(n_events)],
             columns={"onset": onsets, "duration": durations}).save(tmp / "run.stim.csv")
    return onsets, durations, layers


@pytest.mark.parametrize("frame", ["start", "middle"])
def test_equals_a_direct_convolution_for_two_layers(run_cli, tmp_path, rng, frame):
    onsets, durations, layers = _write(tmp_path, rng, 12)
    n_scans = 40
    status, out, err = run_cli(main, "-act", tmp_path / "a.act.h5", "-stim",
                               tmp_path / "run.stim.csv", "-tr", TR, "-n-scans", n_scans,
                               "-oversampling", OVERSAMPLING, "-frame-time", frame, "-q",
                               "-out", tmp_path / "hrf.act.h5")
    assert status == 0, err
    assert f"{n_scans} scans" in out
    act = Activation.load(tmp_path / "hrf.act.h5")
    assert act.layers == ["conv", "fc"] and act.n_stim == n_scans
    assert act.stim_ids.tolist() == [str(j) for j in range(n_scans)]
    for layer, a in layers.items():
        expected = _direct(onsets, durations, a.reshape(len(a), -1).astype(np.float64),
                           n_scans, {"start": 0.0, "middle": 0.5}[frame])
        got = act.get(layer)
        assert got.shape == ((n_scans,) + a.shape[1:] if a.ndim == 4 else (n_scans, 5, 1, 1))
        np.testing.assert_allclose(got.reshape(n_scans, -1), expected, rtol=1e-5,
                                   atol=1e-6 * np.abs(expected).max())
    assert float(act.attrs["tr"]) == TR


def test_scans_from_the_run_and_encoding_of_its_time_series(run_cli, tmp_path, rng):
    onsets, durations, layers = _write(tmp_path, rng, 40, spacing=6.0)
    n_scans = 130
    grid = (2, 3, 4)
    X = _direct(onsets, durations, layers["conv"].reshape(40, -1).astype(np.float64),
                n_scans, 0.0)
    bold = rng.standard_normal((n_scans, int(np.prod(grid))))
    bold[:, 5] += 2 * X[:, 7] / X[:, 7].std()                  # a voxel driven by unit 8
    nib.save(nib.Nifti1Image(np.moveaxis(bold.reshape((n_scans,) + grid), 0, -1)
                             .astype(np.float32), np.eye(4)), str(tmp_path / "bold.nii.gz"))
    status, _, err = run_cli(main, "-act", tmp_path / "a.act.h5", "-layer", "conv", "-stim",
                             tmp_path / "run.stim.csv", "-tr", TR, "-resp",
                             tmp_path / "bold.nii.gz", "-oversampling", OVERSAMPLING, "-q",
                             "-out", tmp_path / "hrf.act.h5")
    assert status == 0, err
    act = Activation.load(tmp_path / "hrf.act.h5")
    assert act.layers == ["conv"] and act.n_stim == n_scans
    status, _, err = run_cli(encode.main, "-act", tmp_path / "hrf.act.h5", "-resp",
                             tmp_path / "bold.nii.gz", "-anal", "uv", "-cv", 5,
                             "-contiguous", "-q", "-no-plot", "-out", tmp_path / "enc")
    assert status == 0, err
    folds = read_table(tmp_path / "enc" / "folds.csv")["fold"]
    assert folds.tolist() == np.repeat(np.arange(1, 6), n_scans // 5).tolist()  # blocks
    table = read_table(tmp_path / "enc" / "scores.tsv")
    assert table["best_unit"][5] == 8 and table["r"][5] > 0.8
    assert np.all(np.abs(np.delete(table["r"], 5)) < 0.4)


def test_number_of_scans_from_cifti_dtseries(run_cli, tmp_path, rng):
    _write(tmp_path, rng, 6)
    bm = cifti2.BrainModelAxis.from_surface(np.arange(10), 12, "CortexLeft")
    nib.save(cifti2.Cifti2Image(rng.standard_normal((33, 10)).astype(np.float32),
                                cifti2.Cifti2Header.from_axes(
                                    (cifti2.SeriesAxis(0, TR, 33), bm))),
             str(tmp_path / "run.dtseries.nii"))
    status, _, err = run_cli(main, "-act", tmp_path / "a.act.h5", "-stim",
                             tmp_path / "run.stim.csv", "-tr", TR, "-resp",
                             tmp_path / "run.dtseries.nii", "-q", "-out", tmp_path / "h.act.h5")
    assert status == 0, err
    assert Activation.load(tmp_path / "h.act.h5").n_stim == 33


def _no_onset(tmp):
    Stimulus([f"s{i}.png" for i in range(6)], columns={"duration": np.ones(6)}).save(
        tmp / "bad.stim.csv")
    return ["-stim", tmp / "bad.stim.csv", "-n-scans", 10]


def _short_stim(tmp):
    Stimulus([f"s{i}.png" for i in range(5)], columns={"onset": np.arange(5.0),
                                                       "duration": np.ones(5)}).save(
        tmp / "short.stim.csv")
    return ["-stim", tmp / "short.stim.csv", "-n-scans", 10]


ERRORS = {
    "missing onset column": (_no_onset, r"bad\.stim\.csv has no onset column"),
    "both scan counts": (lambda t: ["-stim", t / "run.stim.csv", "-n-scans", 10, "-resp",
                                    t / "x.nii.gz"], r"one of them"),
    "no scan count": (lambda t: ["-stim", t / "run.stim.csv"], r"-n-scans N, -resp BOLD_FILE or -bold"),
    "stimuli != events": (_short_stim, r"a\.act\.h5 has 6 stimuli but .*short\.stim\.csv "
                                       r"has 5"),
    "unknown layer": (lambda t: ["-stim", t / "run.stim.csv", "-n-scans", 10, "-layer",
                                 "fc7"], r"'fc7'.*conv, fc"),
    "missing run file": (lambda t: ["-stim", t / "run.stim.csv", "-resp", t / "x.nii.gz"],
                         r"not found"),
}


@pytest.mark.parametrize("case", sorted(ERRORS))
def test_user_mistakes_exit_2_with_one_line(run_cli, tmp_path, rng, case):
    _write(tmp_path, rng, 6)
    make, pattern = ERRORS[case]
    status, _, err = run_cli(main, "-act", tmp_path / "a.act.h5", "-tr", TR, *make(tmp_path),
                             "-q", "-out", tmp_path / "h.act.h5")
    assert status == 2
    assert len(err.strip().splitlines()) == 1, err
    assert re.search(pattern, err), err
    assert not (tmp_path / "h.act.h5").exists()


def test_output_name_and_overwrite(run_cli, tmp_path, rng):
    _write(tmp_path, rng, 6)
    args = ["-act", tmp_path / "a.act.h5", "-stim", tmp_path / "run.stim.csv", "-tr", TR,
            "-n-scans", 10, "-q"]
    status, _, err = run_cli(main, *args, "-out", tmp_path / "h.h5")
    assert status == 2 and "must end in .act.h5" in err
    assert run_cli(main, *args, "-out", tmp_path / "h.act.h5")[0] == 0
    status, _, err = run_cli(main, *args, "-out", tmp_path / "h.act.h5")
    assert status == 2 and "--force" in err
    assert run_cli(main, *args, "-out", tmp_path / "h.act.h5", "--force")[0] == 0


def test_help_has_an_example(run_cli):
    status, out, _ = run_cli(main, "--help")
    assert status == 0 and "example: db_hrf" in out
