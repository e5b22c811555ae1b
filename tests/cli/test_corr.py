"""db_corr end to end: the in-sample best-unit maps equal a slow scipy.stats.pearsonr
loop over units and voxels, written in the input's format and labelled in-sample."""
import h5py
import nibabel as nib
import numpy as np
import pytest
from scipy.stats import pearsonr

from dnnsparse.base.activation import Activation
from dnnsparse.base.stimulus import Stimulus
from dnnsparse.cli.corr import main
from dnnsparse.io.roi import write_roi_file
from dnnsparse.io.table import read_table

N = 40
GRID = (3, 4, 2)
AFFINE = np.diag([2.0, 2.0, 2.0, 1.0])
CONV = (3, 2, 2)


@pytest.fixture
def data(tmp_path, rng):
    layers = {"conv": rng.standard_normal((N,) + CONV).astype(np.float32),
              "fc": rng.standard_normal((N, 5)).astype(np.float32)}
    Activation(layers, stim_ids=[f"s{i}.png" for i in range(N)]).save(tmp_path / "a.act.h5")
    n_vox = int(np.prod(GRID))
    Y = rng.standard_normal((N, n_vox))
    Y[:, 3] = 2 * layers["conv"][:, 2, 1, 0] + 0.1 * rng.standard_normal(N)   # unit 11
    Y[:, 6] = 1.0                                                             # constant
    nib.save(nib.Nifti1Image(np.moveaxis(Y.reshape((N,) + GRID), 0, -1).astype(np.float32),
                             AFFINE), str(tmp_path / "beta.nii.gz"))
    Y = np.moveaxis(np.asarray(nib.load(str(tmp_path / "beta.nii.gz")).dataobj), -1, 0)
    mask = np.zeros(n_vox, dtype=np.uint8)
    mask[:12] = 1
    nib.save(nib.Nifti1Image(mask.reshape(GRID), AFFINE), str(tmp_path / "mask.nii.gz"))
    Stimulus([f"s{i}.png" for i in range(N)],
             columns={"rt": layers["fc"][:, 1] - layers["fc"][:, 4]}).save(tmp_path / "s.stim.csv")
    return {"dir": tmp_path, "act": tmp_path / "a.act.h5", "nii": tmp_path / "beta.nii.gz",
            "mask": tmp_path / "mask.nii.gz", "Y": Y.reshape(N, -1).astype(np.float64),
            "layers": layers, "stim": tmp_path / "s.stim.csv"}


def _slow(X, Y):
    """Best unit (0-based) and its r for every column of Y, by a loop of pearsonr."""
    best, r = [], []
    for j in range(Y.shape[1]):
        rs = [pearsonr(X[:, u], Y[:, j])[0] for u in range(X.shape[1])]
        best.append(int(np.argmax(rs)))
        r.append(rs[best[-1]])
    return np.array(best), np.array(r)


def test_nifti_maps_equal_slow_loop(run_cli, data):
    out = data["dir"] / "corr"
    status, printed, err = run_cli(main, "-act", data["act"], "-resp", data["nii"],
                                   "-bmask", data["mask"], "-q", "-out", out)
    assert status == 0, err
    assert "WARNING: db_corr: correlations are IN-SAMPLE" in err and "IN-SAMPLE" in printed
    table = read_table(out / "corr_insample.tsv")
    assert np.all(table["insample"].astype(str) == "True")
    inside = np.arange(12)
    for layer in ("conv", "fc"):
        rows = table["layer"] == layer
        np.testing.assert_array_equal(table["voxel"][rows], inside)
        X = data["layers"][layer].reshape(N, -1).astype(np.float64)
        ok = inside != 6
        best, r = _slow(X, data["Y"][:, inside[ok]])
        np.testing.assert_allclose(table["r"][rows][ok], r, atol=1e-6)   # 6 digits in TSV
        np.testing.assert_array_equal(table["best_unit"][rows][ok], best + 1)
        assert np.isnan(table["r"][rows][6]) and table["best_unit"][rows][6] == 0
        chn, row, col = np.unravel_index(best, data["layers"][layer].shape[1:] + (1, 1)[
            :4 - data["layers"][layer].ndim])
        np.testing.assert_array_equal(table["best_chn"][rows][ok], chn + 1)
        if layer == "conv":
            np.testing.assert_array_equal(table["best_row"][rows][ok], row + 1)
            np.testing.assert_array_equal(table["best_col"][rows][ok], col + 1)
            assert (table["best_chn"][rows][3], table["best_row"][rows][3],
                    table["best_col"][rows][3]) == (3, 2, 1)
        # maps in the input's format, NaN / 0 outside the mask and where constant
        r_map = np.asarray(nib.load(str(out / layer / "r_insample.nii.gz")).dataobj).reshape(-1)
        np.testing.assert_allclose(r_map[inside[ok]], r, atol=1e-6)
        assert np.isnan(r_map[12:]).all() and np.isnan(r_map[6])
        unit_map = np.asarray(nib.load(str(out / layer / "best_unit_insample.nii.gz")).dataobj)
        np.testing.assert_array_equal(unit_map.reshape(-1)[inside[ok]], best + 1)
        assert (out / layer / "best_chn_insample.nii.gz").exists()
        assert (out / layer / "best_row_insample.nii.gz").exists() == (layer == "conv")


def test_table_and_roi_file_targets(run_cli, data):
    out = data["dir"] / "beh"
    status, _, err = run_cli(main, "-act", data["act"], "-layer", "fc", "-resp", data["stim"],
                             "-meas", "rt", "-abs", "-q", "-out", out)
    assert status == 0, err
    table = read_table(out / "corr_insample.tsv")
    assert "best_row" not in table                      # only a pooled layer
    X = data["layers"]["fc"].astype(np.float64)
    rt = np.asarray(Stimulus.load(data["stim"])["rt"], dtype=float)
    rs = np.array([pearsonr(X[:, u], rt)[0] for u in range(5)])
    u = int(np.argmax(np.abs(rs)))
    assert table["best_unit"][0] == u + 1 and table["r"][0] == pytest.approx(rs[u], abs=1e-6)
    roi = data["dir"] / "sig.roi.h5"
    write_roi_file(roi, ["V1", "FFA"], data["Y"][:, [3, 0]])
    status, _, err = run_cli(main, "-act", data["act"], "-layer", "conv", "-resp", roi, "-q",
                             "-out", data["dir"] / "roi")
    assert status == 0, err
    table = read_table(data["dir"] / "roi" / "corr_insample.tsv")
    assert list(table["target"]) == ["V1", "FFA"] and table["best_unit"][0] == 11


def test_bad_inputs_write_nothing(cli_error, data, tmp_path, rng):
    out = tmp_path / "never"
    short = tmp_path / "short.roi.h5"
    write_roi_file(short, ["A"], rng.standard_normal((N - 2, 1)))
    msg = cli_error(main, "-act", data["act"], "-resp", short, "-out", out)
    assert str(short) in msg and str(data["act"]) in msg
    msg = cli_error(main, "-act", data["act"], "-resp", data["stim"], "-meas", "nosuch",
                    "-out", out)
    assert "nosuch" in msg
    empty = tmp_path / "empty.roi.h5"
    with h5py.File(empty, "w") as f:
        f.attrs["roi"] = np.array([], dtype="S1")
        f.create_dataset("data", data=np.zeros((N, 0)))
    msg = cli_error(main, "-act", data["act"], "-resp", empty, "-out", out)
    assert str(empty) in msg and "no ROIs" in msg
    msg = cli_error(main, "-act", data["act"], "-layer", "nope", "-resp", data["nii"],
                    "-out", out)
    assert "nope" in msg
    msg = cli_error(main, "-act", data["act"], "-resp", data["nii"], "-chunk", 0, "-out", out)
    assert "-chunk" in msg
    assert not out.exists()


def test_help_says_insample(capsys):
    assert main(["--help"]) == 0
    text = capsys.readouterr().out
    assert "IN-SAMPLE" in text and "NOT CROSS-VALIDATED" in text and "example:" in text


def test_gifti_maps_in_gifti(run_cli, data, tmp_path):
    from nibabel import gifti

    n_vert = 10
    Y = data["Y"][:, :n_vert].astype(np.float32)
    img = gifti.GiftiImage(meta=gifti.GiftiMetaData({"AnatomicalStructurePrimary": "CortexLeft"}))
    for row in Y:
        img.add_gifti_data_array(gifti.GiftiDataArray(row, datatype="NIFTI_TYPE_FLOAT32"))
    nib.save(img, str(tmp_path / "beta.func.gii"))
    out = tmp_path / "surf"
    status, _, err = run_cli(main, "-act", data["act"], "-layer", "conv", "-resp",
                             tmp_path / "beta.func.gii", "-q", "-out", out)
    assert status == 0, err
    r_img = nib.load(str(out / "conv" / "r_insample.func.gii"))
    assert "in-sample" in str(r_img.darrays[0].meta.get("Name", ""))
    X = data["layers"]["conv"].reshape(N, -1).astype(np.float64)
    ok = np.arange(n_vert) != 6
    best, r = _slow(X, Y[:, ok].astype(np.float64))
    np.testing.assert_allclose(r_img.darrays[0].data[ok], r, atol=1e-6)
    units = nib.load(str(out / "conv" / "best_unit_insample.func.gii")).darrays[0].data
    np.testing.assert_array_equal(units[ok], best + 1)
    assert list(read_table(out / "corr_insample.tsv")["vertex"]) == list(range(n_vert))
