"""db_roi end to end on synthetic NIfTI and CIFTI files."""
import nibabel as nib
import numpy as np
import pytest
from nibabel import cifti2

from dnnsparse.cli.roi import main
from dnnsparse.io.roi import read_roi_file
from dnnsparse.io.table import read_table

SHAPE = (5, 6, 7)
AFFINE = np.diag([2.0, 2.0, 2.0, 1.0])


@pytest.fixture
def files(tmp_path, rng):
    atlas = rng.integers(0, 4, SHAPE)
    bold = rng.standard_normal(SHAPE + (8,)).astype(np.float32)
    nib.save(nib.Nifti1Image(atlas.astype(np.int16), AFFINE), str(tmp_path / "atlas.nii.gz"))
    nib.save(nib.Nifti1Image(bold, AFFINE), str(tmp_path / "bold.nii.gz"))
    (tmp_path / "lut.tsv").write_text("label\tname\n1\tV8\n2\tFFC\n3\tPIT\n")
    return tmp_path, atlas, bold


def test_signals_with_lut_merge_select_and_csv(run_cli, files):
    tmp, atlas, bold = files
    status, out, err = run_cli(main, "-nif", tmp / "bold.nii.gz", "-roi", tmp / "atlas.nii.gz",
                               "-lut", tmp / "lut.tsv", "-merge", "VTC=V8+FFC+3",
                               "-select", "VTC", "FFC", "-method", "median",
                               "-out", tmp / "s.roi.h5", "-csv", tmp / "s.csv")
    assert status == 0, err
    assert "2 ROI(s) x 8 sample(s)" in out
    names, data = read_roi_file(tmp / "s.roi.h5")
    assert names == ["VTC", "FFC"]
    np.testing.assert_allclose(data[:, 0], np.median(bold[atlas > 0], axis=0), rtol=1e-6)
    np.testing.assert_allclose(data[:, 1], np.median(bold[atlas == 2], axis=0), rtol=1e-6)
    table = read_table(tmp / "s.csv")
    assert list(table) == ["sample", "VTC", "FFC"]
    np.testing.assert_array_equal(table["sample"], np.arange(1, 9))
    np.testing.assert_allclose(table["FFC"], data[:, 1], rtol=1e-15)


def test_masks_and_force(run_cli, files):
    tmp, atlas, bold = files
    for k in (1, 2):
        nib.save(nib.Nifti1Image((atlas == k).astype(np.uint8), AFFINE),
                 str(tmp / f"roi{k}.nii.gz"))
    args = ["-nif", tmp / "bold.nii.gz", "-bmask", tmp / "roi1.nii.gz", tmp / "roi2.nii.gz",
            "-out", tmp / "m.roi.h5"]
    assert run_cli(main, *args)[0] == 0
    names, data = read_roi_file(tmp / "m.roi.h5")
    assert names == ["roi1", "roi2"]
    np.testing.assert_allclose(data[:, 0], bold[atlas == 1].astype(np.float64).mean(0),
                               rtol=1e-12)
    status, _, err = run_cli(main, *args)
    assert status == 2 and "output exists" in err and "--force" in err
    assert run_cli(main, *args, "--force")[0] == 0


def test_list_cifti_dlabel(run_cli, tmp_path):
    bm = cifti2.BrainModelAxis.from_surface(np.arange(10), 12, "CortexLeft")
    labels = np.array([0, 1, 1, 2, 2, 2, 0, 1, 2, 2], np.float32)
    table = {0: ("???", (0, 0, 0, 0)), 1: ("L_V1_ROI", (1, 0, 0, 1)),
             2: ("L_FFC_ROI", (0, 1, 0, 1))}
    nib.save(cifti2.Cifti2Image(labels[None], cifti2.Cifti2Header.from_axes(
        (cifti2.LabelAxis(["MMP"], table), bm))), str(tmp_path / "mmp.dlabel.nii"))
    status, out, err = run_cli(main, "-roi", tmp_path / "mmp.dlabel.nii", "-list",
                               "-merge", "both=1+L_FFC_ROI")
    assert status == 0, err
    assert out.splitlines() == ["label\tname\tsize", "1\tL_V1_ROI\t3", "2\tL_FFC_ROI\t5",
                                "\tboth\t8"]


@pytest.mark.parametrize("extra,message", [
    (["-bmask", "{tmp}/atlas.nii.gz"], "either -roi ATLAS or -bmask"),
    (["-select", "V1"], "no ROI 'V1'"),
    (["-merge", "VTC"], "expected NEW=A+B+C"),
    (["-map", "0"], "numbered from 1"),
    (["-map", "2"], "has 1 map(s); map 2 does not exist"),
])
def test_user_errors_exit_2(run_cli, files, extra, message):
    tmp = files[0]
    extra = [e.format(tmp=tmp) for e in extra]
    status, out, err = run_cli(main, "-nif", tmp / "bold.nii.gz", "-roi",
                               tmp / "atlas.nii.gz", "-out", tmp / "x.roi.h5", *extra)
    assert status == 2
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp / "x.roi.h5").exists()


def test_grid_mismatch_and_missing_args(run_cli, files):
    tmp = files[0]
    nib.save(nib.Nifti1Image(np.ones((5, 6, 8, 2), np.float32), AFFINE), str(tmp / "o.nii"))
    status, _, err = run_cli(main, "-nif", tmp / "o.nii", "-roi", tmp / "atlas.nii.gz",
                             "-out", tmp / "x.roi.h5")
    assert status == 2 and "atlas.nii.gz" in err and "o.nii" in err and "grid" in err
    status, _, err = run_cli(main, "-roi", tmp / "atlas.nii.gz", "-out", tmp / "x.roi.h5")
    assert status == 2 and "give -nif" in err
    status, _, err = run_cli(main, "-nif", tmp / "o.nii", "-roi", tmp / "atlas.nii.gz",
                             "-out", tmp / "x.h5")
    assert status == 2 and "must end in .roi.h5" in err
    status, _, err = run_cli(main, "-nif", tmp / "missing.nii", "-roi", tmp / "atlas.nii.gz",
                             "-out", tmp / "x.roi.h5")
    assert status == 2 and "missing.nii" in err
    status, _, err = run_cli(main, "-nif", tmp / "o.nii", "-method", "mode")
    assert status == 2 and "invalid choice" in err


def test_help_shows_example(run_cli):
    status, out, _ = run_cli(main, "--help")
    assert status == 0 and "example: db_roi -nif" in out and "-bmask" in out


def test_csv_rows_get_the_stimulus_ids(run_cli, cli_error, files):
    from dnnsparse.base.stimulus import Stimulus

    tmp, atlas, bold = files
    ids = [f"face{i}.png" for i in range(8)]
    Stimulus(ids).save(tmp / "s.stim.csv")
    args = ["-nif", tmp / "bold.nii.gz", "-roi", tmp / "atlas.nii.gz", "-select", "2",
            "-out", tmp / "s.roi.h5", "-csv", tmp / "s.tsv", "-stim", tmp / "s.stim.csv"]
    status, out, err = run_cli(main, *args)
    assert status == 0, err
    assert f"wrote {tmp / 's.roi.h5'} and {tmp / 's.tsv'}" in out
    table = read_table(tmp / "s.tsv")
    assert list(table) == ["sample", "stimID", "2"]
    assert list(table["stimID"]) == ids
    np.testing.assert_allclose(table["2"], bold[atlas == 2].astype(np.float64).mean(axis=0),
                               rtol=0, atol=1e-6)
    Stimulus(ids[:7]).save(tmp / "short.stim.csv")
    msg = cli_error(main, *args[:-1], tmp / "short.stim.csv", "-out", tmp / "t.roi.h5",
                    "-csv", tmp / "t.csv")
    assert "has 8 samples" in msg and "short.stim.csv has 7" in msg
    assert "-csv" in cli_error(main, *args[:6], "-out", tmp / "t.roi.h5", "-stim",
                               tmp / "s.stim.csv")
    assert not (tmp / "t.roi.h5").exists() and not (tmp / "t.csv").exists()


@pytest.mark.parametrize("csv", ["/proc/nope/x.csv", "{tmp}/bold.nii.gz/x.csv",
                                 "{tmp}/s.roi.h5"])
def test_every_output_is_checked_before_any_is_written(cli_error, files, csv):
    """An unwritable -csv used to fail after the .roi.h5 had been written."""
    tmp = files[0]
    msg = cli_error(main, "-nif", tmp / "bold.nii.gz", "-roi", tmp / "atlas.nii.gz",
                    "-out", tmp / "s.roi.h5", "-csv", csv.format(tmp=tmp))
    assert "cannot write" in msg or "is a file, not a folder" in msg or "same file" in msg
    assert not (tmp / "s.roi.h5").exists()
    assert not [p for p in tmp.iterdir() if p.name.startswith((".partial-", ".dnnsparse"))]
