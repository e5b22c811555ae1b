"""db_hrf with BIDS inputs: -events gives exactly the regressors of the table form built
from the same synthetic design; -bold reads TR and the number of scans from a real NIfTI
header, a CIFTI dtseries' series axis, and a JSON sidecar."""
import json
import re

import nibabel as nib
import numpy as np
import pytest
from nibabel import cifti2

from dnnsparse.base.activation import Activation
from dnnsparse.base.stimulus import Stimulus
from dnnsparse.cli.hrf import main

TR = 2.0


def _tsv(path, header, rows):
    path.write_text("\t".join(header) + "\n"
                    + "".join("\t".join(str(v) for v in r) + "\n" for r in rows))
    return path


def _design(tmp, rng, n=8):
    """An activation of n images, its one-row-per-event table, and the same events as a
    BIDS events.tsv with response rows (stim_file n/a) between them."""
    ids = [f"img/s{i}.png" for i in range(n)]
    onsets = np.round(np.arange(n) * 6.0 + rng.uniform(0, 2, n), 3)
    durations = rng.integers(1, 5, n) * 0.5
    durations[2] = 0.0
    Activation({"conv": rng.standard_normal((n, 2, 2, 3)).astype(np.float32),
                "fc": rng.standard_normal((n, 5)).astype(np.float32)},
               stim_ids=ids).save(tmp / "a.act.h5")
    Stimulus(ids, columns={"onset": onsets, "duration": durations}).save(tmp / "run.stim.csv")
    rows = []
    for i in range(n):
        rows.append([onsets[i], "n/a" if i == 2 else durations[i], f"cat{i % 3}", ids[i], 1.0])
        rows.append([onsets[i] + 1.5, 0, "response", "n/a", 0.7])
    _tsv(tmp / "sub-01_task-x_run-1_events.tsv",
         ["onset", "duration", "trial_type", "stim_file", "response_time"], rows)
    return ids, onsets, durations


def _hrf(run_cli, tmp, *args, out="h.act.h5"):
    status, stdout, err = run_cli(main, "-act", tmp / "a.act.h5", *args, "-q",
                                  "-out", tmp / out)
    assert status == 0, err
    return Activation.load(tmp / out), stdout + err


def test_events_give_exactly_the_regressors_of_the_table(run_cli, tmp_path, rng):
    _design(tmp_path, rng)
    table, _ = _hrf(run_cli, tmp_path, "-stim", tmp_path / "run.stim.csv", "-tr", TR,
                    "-n-scans", 40, out="table.act.h5")
    events, _ = _hrf(run_cli, tmp_path, "-events",
                     tmp_path / "sub-01_task-x_run-1_events.tsv", "-tr", TR, "-n-scans", 40,
                     out="events.act.h5")
    assert events.layers == table.layers == ["conv", "fc"] and events.n_stim == 40
    for layer in table.layers:
        assert np.array_equal(events.get(layer), table.get(layer)), layer
    assert np.abs(events.get("fc")).max() > 0


def test_repeated_stimuli_named_by_trial_type(run_cli, tmp_path, rng):
    """Three conditions shown three times each, matched by trial_type, equal the table
    form of an activation with the condition's row repeated at every presentation."""
    conds = ["face", "house", "chair"]
    a = rng.standard_normal((3, 4)).astype(np.float32)
    order = [0, 1, 2, 1, 0, 2, 2, 0, 1]
    onsets = np.arange(9) * 7.0 + 0.25
    Activation({"fc": a}, stim_ids=conds).save(tmp_path / "a.act.h5")
    _tsv(tmp_path / "ev_events.tsv", ["onset", "duration", "trial_type"],
         [[o, 2.0, conds[k]] for o, k in zip(onsets, order)])
    events, _ = _hrf(run_cli, tmp_path, "-events", tmp_path / "ev_events.tsv", "-tr", TR,
                     "-n-scans", 45, out="events.act.h5")
    Activation({"fc": a[order]}).save(tmp_path / "rep.act.h5")
    Stimulus([f"p{i}" for i in range(9)], columns={"onset": onsets,
                                                   "duration": np.full(9, 2.0)}).save(
        tmp_path / "rep.stim.csv")
    status, _, err = run_cli(main, "-act", tmp_path / "rep.act.h5", "-stim",
                             tmp_path / "rep.stim.csv", "-tr", TR, "-n-scans", 45, "-q",
                             "-out", tmp_path / "table.act.h5")
    assert status == 0, err
    assert np.array_equal(events.get("fc"), Activation.load(tmp_path / "table.act.h5")
                          .get("fc"))


def _nifti(path, n_scans, *, tr=TR, unit="sec", rng=None):
    img = nib.Nifti1Image(np.zeros((2, 2, 2, n_scans), np.float32), np.eye(4))
    img.header.set_zooms((3.0, 3.0, 3.0, tr))
    img.header.set_xyzt_units("mm", unit)
    nib.save(img, str(path))
    return path


@pytest.mark.parametrize("tr, unit", [(1.5, "sec"), (1500.0, "msec")])
def test_tr_and_scans_from_a_nifti_header(run_cli, tmp_path, rng, tr, unit):
    _design(tmp_path, rng)
    bold = _nifti(tmp_path / "sub-01_task-x_run-1_bold.nii.gz", 30, tr=tr, unit=unit)
    assert nib.load(str(bold)).header.get_xyzt_units()[1] == unit
    got, stdout = _hrf(run_cli, tmp_path, "-stim", tmp_path / "run.stim.csv", "-bold", bold)
    assert "30 scans (TR 1.5 s)" in stdout
    assert got.n_stim == 30 and float(got.attrs["tr"]) == 1.5
    ref, _ = _hrf(run_cli, tmp_path, "-stim", tmp_path / "run.stim.csv", "-tr", 1.5,
                  "-n-scans", 30, out="ref.act.h5")
    assert np.array_equal(got.get("conv"), ref.get("conv"))


def test_tr_and_scans_from_a_cifti_dtseries(run_cli, tmp_path, rng):
    _design(tmp_path, rng)
    bm = cifti2.BrainModelAxis.from_surface(np.arange(10), 12, "CortexLeft")
    nib.save(cifti2.Cifti2Image(np.zeros((33, 10), np.float32),
                                cifti2.Cifti2Header.from_axes(
                                    (cifti2.SeriesAxis(0, 0.8, 33, unit="SECOND"), bm))),
             str(tmp_path / "run.dtseries.nii"))
    got, stdout = _hrf(run_cli, tmp_path, "-events",
                       tmp_path / "sub-01_task-x_run-1_events.tsv", "-bold",
                       tmp_path / "run.dtseries.nii")
    assert got.n_stim == 33 and float(got.attrs["tr"]) == 0.8
    assert "33 scans (TR 0.8 s)" in stdout


def test_tr_from_the_json_sidecar_which_wins_over_the_header(run_cli, tmp_path, rng):
    _design(tmp_path, rng)
    bold = _nifti(tmp_path / "sub-01_run-1_bold.nii.gz", 24, tr=0.0, unit="unknown")
    (tmp_path / "sub-01_run-1_bold.json").write_text(json.dumps({"RepetitionTime": 2.5,
                                                                 "TaskName": "x"}))
    got, _ = _hrf(run_cli, tmp_path, "-stim", tmp_path / "run.stim.csv", "-bold", bold)
    assert got.n_stim == 24 and float(got.attrs["tr"]) == 2.5
    # a header TR that disagrees: the sidecar's is used, with a warning
    _nifti(bold, 24, tr=2.0)
    got, text = _hrf(run_cli, tmp_path, "-stim", tmp_path / "run.stim.csv", "-bold", bold,
                     out="h2.act.h5")
    assert float(got.attrs["tr"]) == 2.5
    assert "RepetitionTime 2.5 s differs from the header's TR 2 s" in text


def _no_onset(t):
    _tsv(t / "bad_events.tsv", ["duration", "stim_file"], [[1, "img/s0.png"]])
    return ["-events", t / "bad_events.tsv", "-tr", TR, "-n-scans", 10]


def _na_onset(t):
    _tsv(t / "bad_events.tsv", ["onset", "duration", "stim_file"],
         [[0, 1, "img/s0.png"], ["n/a", 1, "img/s1.png"]])
    return ["-events", t / "bad_events.tsv", "-tr", TR, "-n-scans", 10]


def _unknown_stimuli(t):
    _tsv(t / "x_events.tsv", ["onset", "duration", "stim_file"],
         [[i, 1, f"other/o{i}.png"] for i in range(7)] + [[9, 1, "img/s0.png"]])
    return ["-events", t / "x_events.tsv", "-tr", TR, "-n-scans", 10]


def _no_repetition_time(t):
    bold = _nifti(t / "r_bold.nii.gz", 20)
    (t / "r_bold.json").write_text(json.dumps({"TaskName": "x"}))
    return ["-stim", t / "run.stim.csv", "-bold", bold]


def _no_time_units(t):
    bold = _nifti(t / "r_bold.nii.gz", 20, unit="unknown")
    return ["-stim", t / "run.stim.csv", "-bold", bold]


def _zero_tr(t):
    bold = _nifti(t / "r_bold.nii.gz", 20, tr=0.0)
    return ["-stim", t / "run.stim.csv", "-bold", bold]


def _cifti_hertz(t):
    bm = cifti2.BrainModelAxis.from_surface(np.arange(4), 5, "CortexLeft")
    nib.save(cifti2.Cifti2Image(np.zeros((6, 4), np.float32), cifti2.Cifti2Header.from_axes(
        (cifti2.SeriesAxis(0, 1.0, 6, unit="HERTZ"), bm))), str(t / "r.dtseries.nii"))
    return ["-stim", t / "run.stim.csv", "-bold", t / "r.dtseries.nii"]


ERRORS = {
    "events without onsets": (_no_onset, r"bad_events\.tsv: no onset column"),
    "events with an n/a onset": (_na_onset, r"bad_events\.tsv, line 3: onset 'n/a'"),
    "events stimuli not in the activation": (
        _unknown_stimuli, r"7 stimulus name\(s\) of column 'stim_file' .*a\.act\.h5: "
                          r"other/o0\.png, other/o1\.png, .*other/o4\.png \(and 2 more\)"),
    "sidecar without RepetitionTime": (_no_repetition_time,
                                       r"r_bold\.json: no RepetitionTime"),
    "header without time units": (_no_time_units, r"r_bold\.nii\.gz: no repetition time: "
                                                  r"its header has no time unit"),
    "header with TR 0": (_zero_tr, r"TR \(pixdim\[4\]\) is 0"),
    "cifti series not in seconds": (_cifti_hertz, r"not seconds"),
    "unknown events column": (lambda t: ["-events", t / "sub-01_task-x_run-1_events.tsv",
                                         "-events-col", "stim", "-tr", TR, "-n-scans", 10],
                              r"no column 'stim'.*trial_type, stim_file, response_time"),
    "stim and events": (lambda t: ["-stim", t / "run.stim.csv", "-events",
                                   t / "sub-01_task-x_run-1_events.tsv", "-tr", TR,
                                   "-n-scans", 10], r"-stim TABLE or -events TSV"),
    "no TR": (lambda t: ["-stim", t / "run.stim.csv", "-n-scans", 10],
              r"-tr S, or -bold RUN"),
    "bold and n-scans": (lambda t: ["-stim", t / "run.stim.csv", "-n-scans", 10, "-bold",
                                    t / "x_bold.nii.gz"], r"one of them"),
    "missing bold": (lambda t: ["-stim", t / "run.stim.csv", "-bold", t / "x_bold.nii.gz"],
                     r"not found"),
}


@pytest.mark.parametrize("case", sorted(ERRORS))
def test_bad_bids_input_exits_2_with_one_line_and_writes_nothing(cli_error, tmp_path, rng,
                                                                 case):
    _design(tmp_path, rng)
    make, pattern = ERRORS[case]
    before = sorted(p.name for p in tmp_path.iterdir())
    message = cli_error(main, "-act", tmp_path / "a.act.h5", *make(tmp_path), "-q",
                        "-out", tmp_path / "h.act.h5")
    assert re.search(pattern, message), message
    assert not (tmp_path / "h.act.h5").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("h.act")]
    assert set(before) <= {p.name for p in tmp_path.iterdir()}


def test_explicit_tr_overrides_the_run_with_a_warning(run_cli, tmp_path, rng):
    _design(tmp_path, rng)
    bold = _nifti(tmp_path / "r_bold.nii.gz", 20, tr=1.0)
    got, text = _hrf(run_cli, tmp_path, "-stim", tmp_path / "run.stim.csv", "-bold", bold,
                     "-tr", 2.0)
    assert got.n_stim == 20 and float(got.attrs["tr"]) == 2.0
    assert "-tr 2 s differs from the 1 s" in text


def test_a_run_of_a_db_stim_events_table_equals_its_events_file(run_cli, tmp_path, rng):
    """db_stim -events of two runs, then db_hrf -stim TABLE -run 2, equals db_hrf -events
    on run 2's file: the same rows, onsets and regressors."""
    from dnnsparse.cli import stim as stim_cli

    files = []
    for run in (1, 2):
        files.append(_tsv(tmp_path / f"sub-01_task-x_run-{run}_events.tsv",
                          ["onset", "duration", "stim_file"],
                          [[round(7.0 * i + float(rng.uniform(0, 2)), 3), 1.5,
                            f"img/r{run}_{i}.png"] for i in range(6)]
                          + [[50.0, 0, "n/a"]]))
    status, _, err = run_cli(stim_cli.main, "-events", *files, "-out", tmp_path / "x.stim.csv")
    assert status == 0, err
    table = Stimulus.load(tmp_path / "x.stim.csv")
    assert len(table) == 12 and table["run"].tolist() == [1] * 6 + [2] * 6
    Activation({"fc": rng.standard_normal((12, 4)).astype(np.float32)},
               stim_ids=table.ids).save(tmp_path / "a.act.h5")
    by_run, _ = _hrf(run_cli, tmp_path, "-stim", tmp_path / "x.stim.csv", "-run", 2,
                     "-tr", TR, "-n-scans", 30, out="run.act.h5")
    by_events, _ = _hrf(run_cli, tmp_path, "-events", files[1], "-tr", TR, "-n-scans", 30,
                        out="events.act.h5")
    assert np.array_equal(by_run.get("fc"), by_events.get("fc"))
    run1, _ = _hrf(run_cli, tmp_path, "-stim", tmp_path / "x.stim.csv", "-run", 1,
                   "-tr", TR, "-n-scans", 30, out="run1.act.h5")
    assert not np.allclose(run1.get("fc"), by_run.get("fc"))
    for args, pattern in [(["-stim", tmp_path / "x.stim.csv", "-run", 3],
                           r"no row of run 3; its runs are 1, 2"),
                          (["-events", files[0], "-run", 1], r"-run selects rows of a -stim")]:
        message = _cli_error(run_cli, tmp_path, *args, "-tr", TR, "-n-scans", 30)
        assert re.search(pattern, message), message


def _cli_error(run_cli, tmp, *args):
    status, _, err = run_cli(main, "-act", tmp / "a.act.h5", *args, "-q",
                             "-out", tmp / "bad.act.h5")
    assert status == 2 and len(err.strip().splitlines()) == 1, err
    assert not (tmp / "bad.act.h5").exists()
    return err
