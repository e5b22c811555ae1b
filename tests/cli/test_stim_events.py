"""db_stim -events: a stimulus table from BIDS events files, checked against the files
read here with the csv module; bad events files exit 2 with one line, writing nothing."""
import csv
import re

import numpy as np
import pytest

from dnnsparse.base.stimulus import Stimulus
from dnnsparse.cli.stim import main


def _tsv(path, header, rows):
    path.write_text("\t".join(header) + "\n"
                    + "".join("\t".join(str(v) for v in r) + "\n" for r in rows))
    return path


def _runs(tmp, rng):
    files = []
    for run in (1, 2):
        rows = []
        for i in range(5):
            t = 8.0 * i + round(float(rng.uniform(0, 1)), 3)
            rows.append([t, 2.0, f"cat{(i + run) % 2}", f"img/s{run}{i}.png", f"{i % 2}"])
            rows.append([t + 3.0, "n/a", "response", "n/a", "n/a"])
        files.append(_tsv(tmp / f"sub-01_task-x_run-{run}_events.tsv",
                          ["onset", "duration", "trial_type", "stim_file", "button"], rows))
    (tmp / "stimuli").mkdir()
    return files


def _expected(files, column):
    rows = []
    for run, f in enumerate(files, 1):
        with open(f, newline="") as fh:
            rows += [dict(r, run=run) for r in csv.DictReader(fh, delimiter="\t")
                     if r[column] != "n/a"]
    return rows


def test_two_runs_give_one_table_with_a_run_column(run_cli, tmp_path, rng):
    files = _runs(tmp_path, rng)
    out = tmp_path / "x.stim.csv"
    status, stdout, err = run_cli(main, "-events", *files, "-root", tmp_path / "stimuli",
                                  "-out", out)
    assert status == 0, err
    assert "10 stimulus events (10 distinct stim_file values) from 2 events file(s)" in stdout
    stim = Stimulus.load(out)
    exp = _expected(files, "stim_file")
    assert stim.ids.tolist() == [r["stim_file"] for r in exp]
    np.testing.assert_array_equal(stim["onset"], [float(r["onset"]) for r in exp])
    np.testing.assert_array_equal(stim["duration"], [float(r["duration"]) for r in exp])
    assert stim["run"].tolist() == [r["run"] for r in exp]
    assert stim["trial_type"].tolist() == [r["trial_type"] for r in exp]
    assert stim["button"].tolist() == [int(r["button"]) for r in exp]   # numbers again
    assert stim.root.resolve() == (tmp_path / "stimuli").resolve()


def test_trial_type_as_the_stimulus(run_cli, tmp_path, rng):
    files = _runs(tmp_path, rng)
    out = tmp_path / "c.stim.csv"
    status, stdout, err = run_cli(main, "-events", files[1], "-events-col", "trial_type",
                                  "-out", out)
    assert status == 0, err
    stim = Stimulus.load(out)
    exp = _expected(files[1:], "trial_type")
    assert stim.ids.tolist() == [r["trial_type"] for r in exp]        # responses included
    assert len(stim) == 10 and "response" in stim.ids.tolist()
    assert stim["run"].tolist() == [2] * 10
    # duration n/a (unknown) is an impulse, as db_hrf reads it
    assert stim["duration"][stim.ids == "response"].tolist() == [0.0] * 5


def _no_onset(t, files):
    return ["-events", _tsv(t / "sub-01_run-1_events.tsv", ["duration", "stim_file"],
                            [[1, "a.png"]])]


def _no_run(t, files):
    return ["-events", files[0], _tsv(t / "sub-01_task-x_events.tsv",
                                      ["onset", "duration", "stim_file"], [[0, 1, "a.png"]])]


def _bad_duration(t, files):
    return ["-events", _tsv(t / "sub-01_run-1_events.tsv", ["onset", "duration", "trial_type"],
                            [[0, 1, "a"], [3, -1, "b"]])]


def _no_stim_column(t, files):
    return ["-events", _tsv(t / "sub-01_run-1_events.tsv", ["onset", "duration", "rt"],
                            [[0, 1, 0.5]])]


ERRORS = {
    "events without onsets": (_no_onset, r"no onset column"),
    "several files, one without run": (_no_run, r"sub-01_task-x_events\.tsv: no run-<index>"),
    "negative duration": (_bad_duration, r"line 3: duration '-1'"),
    "no stimulus column": (_no_stim_column, r"no stim_file or trial_type column.*rt"),
    "unknown -events-col": (lambda t, f: ["-events", f[0], "-events-col", "nope"],
                            r"no column 'nope'"),
    "missing events file": (lambda t, f: ["-events", t / "x_events.tsv"], r"not found"),
    "missing root": (lambda t, f: ["-events", f[0], "-root", t / "nope"],
                     r"stimulus folder not found"),
    "-root without -events": (lambda t, f: ["-folder", t / "stimuli", "-root", t],
                              r"give -events TSV"),
}


@pytest.mark.parametrize("case", sorted(ERRORS))
def test_bad_events_exit_2_with_one_line_and_write_nothing(cli_error, tmp_path, rng, case):
    files = _runs(tmp_path, rng)
    make, pattern = ERRORS[case]
    message = cli_error(main, *make(tmp_path, files), "-out", tmp_path / "o.stim.csv")
    assert re.search(pattern, message), message
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("o.stim")]
