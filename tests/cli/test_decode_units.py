"""db_decode -act -resp: every DNN unit decoded from brain ROIs, checked against
scikit-learn (StandardScaler + Ridge / LinearRegression, GroupKFold by run) unit by
unit, with permutation p for a planted unit."""
import nibabel as nib
import numpy as np
import pytest
from sklearn.linear_model import LinearRegression, Ridge
from sklearn.model_selection import GroupKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from dnnsparse.base.activation import Activation
from dnnsparse.base.stimulus import Stimulus
from dnnsparse.cli.decode import main
from dnnsparse.io.roi import write_roi_file
from dnnsparse.io.table import read_table

pytestmark = pytest.mark.usefixtures("one_blas_thread")

N = 48
RUNS = np.repeat(np.arange(4), 12)
GRID = (3, 4, 2)
AFFINE = np.diag([2.0, 2.0, 2.0, 1.0])
CONV = (2, 2, 2)


@pytest.fixture
def data(tmp_path, rng):
    n_vox = int(np.prod(GRID))
    brain = rng.standard_normal((N, n_vox))
    atlas = np.zeros(n_vox, dtype=np.int16)
    atlas[:8], atlas[12:20] = 1, 2
    conv = rng.standard_normal((N,) + CONV)
    conv[:, 1, 0, 1] = brain[:, [0, 2, 5]] @ [1.0, -1.0, 0.5] + 0.2 * rng.standard_normal(N)
    conv[:, 0, 1, 1] = 4.0                                        # constant unit
    layers = {"conv": conv.astype(np.float32), "fc": rng.standard_normal((N, 3)).astype(
        np.float32)}
    ids = [f"s{i}.png" for i in range(N)]
    Activation(layers, stim_ids=ids).save(tmp_path / "a.act.h5")
    nib.save(nib.Nifti1Image(np.moveaxis(brain.reshape((N,) + GRID), 0, -1).astype(np.float32),
                             AFFINE), str(tmp_path / "beta.nii.gz"))
    nib.save(nib.Nifti1Image(atlas.reshape(GRID), AFFINE), str(tmp_path / "atlas.nii.gz"))
    brain = np.moveaxis(np.asarray(nib.load(str(tmp_path / "beta.nii.gz")).dataobj), -1, 0)
    Stimulus(ids, columns={"run": RUNS}).save(tmp_path / "s.stim.csv")
    return {"dir": tmp_path, "act": tmp_path / "a.act.h5", "nii": tmp_path / "beta.nii.gz",
            "atlas": atlas, "atlas_path": tmp_path / "atlas.nii.gz",
            "brain": brain.reshape(N, -1).astype(np.float64), "layers": layers,
            "stim": tmp_path / "s.stim.csv"}


def _sklearn_r(est, X, Y):
    folds = list(GroupKFold(4).split(X, groups=RUNS))
    pred = cross_val_predict(make_pipeline(StandardScaler(), est), X, Y, cv=folds)
    return np.array([np.corrcoef(pred[:, j], Y[:, j])[0, 1] for j in range(Y.shape[1])])


@pytest.mark.parametrize("model, est", [("ridge", Ridge()), ("glm", LinearRegression())])
def test_units_from_rois_equal_sklearn(run_cli, data, model, est):
    out = data["dir"] / model
    status, printed, err = run_cli(main, "-resp", data["nii"], "-roi", data["atlas_path"],
                                   "-act", data["act"], "-stim", data["stim"], "-model", model,
                                   "-groups", "run", "-cv", 4, "-q", "-out", out)
    assert status == 0, err
    units = read_table(out / "units.tsv")
    assert set(units["source"].astype(str)) == {"1", "2"}
    for label in (1, 2):
        X = data["brain"][:, data["atlas"] == label]
        for layer in ("conv", "fc"):
            rows = (units["source"].astype(str) == str(label)) & (units["layer"] == layer)
            Y = data["layers"][layer].reshape(N, -1).astype(np.float64)
            keep = np.ptp(Y, axis=0) > 0
            expect = np.full(Y.shape[1], np.nan)
            expect[keep] = _sklearn_r(est, X, Y[:, keep])
            np.testing.assert_allclose(units["r"][rows], expect, atol=1e-6, equal_nan=True)
            assert units["n_features"][rows][0] == X.shape[1]
    conv = (units["layer"] == "conv") & (units["source"].astype(str) == "1")
    chn, row, col = (units[k][conv] for k in ("chn", "row", "col"))
    assert list(zip(chn, row, col))[:4] == [(1, 1, 1), (1, 1, 2), (1, 2, 1), (1, 2, 2)]
    planted = (chn == 2) & (row == 1) & (col == 2)
    assert units["r"][conv][planted][0] > 0.8
    summary = read_table(out / "summary.csv")
    assert len(summary["source"]) == 4 and "ROI" not in printed
    np.testing.assert_array_equal(read_table(out / "folds.csv")["group"], RUNS)


def test_permutation_p_and_roi_file_features(run_cli, data):
    roi = data["dir"] / "sig.roi.h5"
    sig = np.column_stack([data["brain"][:, data["atlas"] == k].mean(1) for k in (1, 2)])
    sig = np.column_stack([sig, data["brain"][:, [0, 2, 5]]])
    write_roi_file(roi, ["V1", "FFA", "a", "b", "c"], sig)
    out = data["dir"] / "perm"
    status, _, err = run_cli(main, "-resp", roi, "-act", data["act"], "-layer", "conv",
                             "-chn", 2, "-stim", data["stim"], "-groups", "run", "-cv", 4,
                             "-n-perm", 39, "-seed", 1, "-q", "-out", out)
    assert status == 0, err
    units = read_table(out / "units.tsv")
    assert list(units["source"]) == ["sig.roi.h5"] * 4 and set(units["chn"]) == {2}
    planted = (units["row"] == 1) & (units["col"] == 2)
    assert units["p"][planted][0] == pytest.approx(1 / 40)
    assert units["p_fwer"][planted][0] == pytest.approx(1 / 40)
    assert np.all(units["p_fwer"] >= units["p"])
    summary = read_table(out / "summary.csv")
    assert summary["n_sig"][0] >= 1


def test_unit_decoding_mistakes(cli_error, data, tmp_path, rng):
    out = tmp_path / "never"
    short = tmp_path / "short.roi.h5"
    write_roi_file(short, ["A"], rng.standard_normal((N - 1, 1)))
    msg = cli_error(main, "-resp", short, "-act", data["act"], "-stim", data["stim"],
                    "-out", out)
    assert str(short) in msg and str(data["stim"]) in msg
    msg = cli_error(main, "-resp", data["nii"], "-act", data["act"], "-stim", data["stim"],
                    "-target", "run", "-out", out)
    assert "-target" in msg
    msg = cli_error(main, "-resp", data["nii"], "-act", data["act"], "-stim", data["stim"],
                    "-layer", "fc9", "-out", out)
    assert "fc9" in msg
    assert not out.exists()
