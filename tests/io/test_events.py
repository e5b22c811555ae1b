"""io.events: BIDS events parsing, entities, sidecars and a run's timing from real
nibabel headers (NIfTI-1, NIfTI-2, CIFTI-2)."""
import json

import nibabel as nib
import numpy as np
import pytest
from nibabel import cifti2

from dnnsparse.errors import FileFormatError, InputError
from dnnsparse.io.events import (bids_entities, events_table, read_events, run_timing,
                                 sidecar_path, stimulus_column)


def _tsv(path, text):
    path.write_text(text)
    return path


def test_read_events_keeps_columns_and_reads_na(tmp_path):
    p = _tsv(tmp_path / "e_events.tsv",
             "onset\tduration\ttrial_type\tstim_file\n"
             "0.5\t2\tface\tf1.png\n"
             "3.25\tn/a\tresponse\tn/a\n"
             "\n"
             "7\t0\thouse\th1.png\n")
    ev = read_events(p)
    assert ev["onset"].dtype == np.float64 and ev["onset"].tolist() == [0.5, 3.25, 7.0]
    assert ev["duration"].tolist() == [2.0, 0.0, 0.0]
    assert ev["stim_file"].tolist() == ["f1.png", "n/a", "h1.png"]
    assert stimulus_column(ev, p) == "stim_file"
    assert stimulus_column({k: v for k, v in ev.items() if k != "stim_file"}, p) == "trial_type"


@pytest.mark.parametrize("text, pattern", [
    ("duration\tstim_file\n1\ta\n", r"no onset column"),
    ("onset\tstim_file\n1\ta\n", r"no duration column"),
    ("onset\tduration\n1\t2\t3\n", r"line 2: 3 fields, expected 2"),
    ("onset\tduration\nx\t2\n", r"line 2: onset 'x'"),
    ("onset\tduration\n1\tinf\n", r"line 2: duration 'inf'"),
    ("onset,duration\n1,2\n", r"no onset or duration column"),
])
def test_bad_events_files(tmp_path, text, pattern):
    with pytest.raises(FileFormatError, match=pattern):
        read_events(_tsv(tmp_path / "e_events.tsv", text))


def test_entities_and_sidecar_names():
    assert bids_entities("a/sub-01_task-x_run-12_bold.nii.gz") == {"sub": "01", "task": "x",
                                                                   "run": "12"}
    assert bids_entities("events.tsv") == {}
    assert sidecar_path("a/sub-01_bold.dtseries.nii").name == "sub-01_bold.json"


def test_run_timing_nifti_units(tmp_path):
    for klass, unit, step, tr in [(nib.Nifti1Image, "sec", 0.72, 0.72),
                                  (nib.Nifti1Image, "msec", 800.0, 0.8),
                                  (nib.Nifti1Image, "usec", 2.0e6, 2.0),
                                  (nib.Nifti2Image, "sec", 1.25, 1.25)]:
        img = klass(np.zeros((2, 2, 1, 7), np.float32), np.eye(4))
        img.header.set_zooms((2.0, 2.0, 2.0, step))
        img.header.set_xyzt_units("mm", unit)
        path = tmp_path / f"{unit}{klass.__name__}_bold.nii"
        nib.save(img, str(path))
        got_tr, n, source = run_timing(path)
        assert (n, source) == (7, "header") and np.isclose(got_tr, tr), (unit, klass)


def test_run_timing_cifti_and_sidecar(tmp_path):
    bm = cifti2.BrainModelAxis.from_surface(np.arange(3), 4, "CortexLeft")
    path = tmp_path / "r_bold.dtseries.nii"
    nib.save(cifti2.Cifti2Image(np.zeros((9, 3), np.float32), cifti2.Cifti2Header.from_axes(
        (cifti2.SeriesAxis(0, 1.5, 9), bm))), str(path))
    assert run_timing(path) == (1.5, 9, "header")
    (tmp_path / "r_bold.json").write_text(json.dumps({"RepetitionTime": 1.5}))
    assert run_timing(path) == (1.5, 9, "sidecar")
    assert run_timing(path, tr=3.0) == (3.0, 9, "given")
    (tmp_path / "r_bold.json").write_text(json.dumps({"RepetitionTime": "2"}))
    with pytest.raises(InputError, match=r"RepetitionTime '2'"):
        run_timing(path)
    (tmp_path / "r_bold.json").write_text("{not json")
    with pytest.raises(FileFormatError, match=r"not a readable JSON sidecar"):
        run_timing(path)


def test_run_timing_dscalar_is_not_a_series(tmp_path):
    bm = cifti2.BrainModelAxis.from_surface(np.arange(3), 4, "CortexLeft")
    path = tmp_path / "m.dscalar.nii"
    nib.save(cifti2.Cifti2Image(np.zeros((2, 3), np.float32), cifti2.Cifti2Header.from_axes(
        (cifti2.ScalarAxis(["a", "b"]), bm))), str(path))
    with pytest.raises(InputError, match=r"not a series"):
        run_timing(path)


def test_events_table_two_runs(tmp_path):
    a = _tsv(tmp_path / "sub-01_run-1_events.tsv",
             "onset\tduration\ttrial_type\textra\n0\t1\tface\t1\n2\t1\tn/a\t2\n")
    b = _tsv(tmp_path / "sub-01_run-02_events.tsv",
             "onset\tduration\ttrial_type\n5\t1\thouse\n")
    ids, cols, column = events_table([a, b])
    assert column == "trial_type" and ids.tolist() == ["face", "house"]
    assert cols["run"].tolist() == [1, 2] and cols["onset"].tolist() == [0.0, 5.0]
    assert "extra" not in cols                          # not in every file
    with pytest.raises(InputError, match=r"n/a on every row"):
        events_table([_tsv(tmp_path / "c_events.tsv",
                           "onset\tduration\ttrial_type\n0\t1\tn/a\n")])
