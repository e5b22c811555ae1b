"""db_decode end to end, checked against scikit-learn's cross_val_predict on folds
built here independently (StratifiedGroupKFold / GroupKFold by run)."""
import re

import nibabel as nib
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import confusion_matrix
from sklearn.model_selection import GroupKFold, StratifiedGroupKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler


from dnnsparse.base.activation import Activation
from dnnsparse.base.stimulus import Stimulus
from dnnsparse.cli.decode import main
from dnnsparse.io.table import read_table

pytestmark = pytest.mark.usefixtures("one_blas_thread")

N = 72
RUNS = np.repeat(np.arange(6), 12)
GRID = (3, 4, 2)
AFFINE = np.diag([2.0, 2.0, 2.0, 1.0])



@pytest.fixture
def data(tmp_path, rng):
    labels = np.tile(np.arange(3), N // 3)                     # 3 classes in every run
    means = rng.standard_normal((3, 10))
    layers = {"conv": rng.standard_normal((N, 2, 3, 2)).astype(np.float32),
              "fc": (means[labels] + 1.5 * rng.standard_normal((N, 10))).astype(np.float32)}
    Activation(layers).save(tmp_path / "a.act.h5")
    rt = layers["fc"][:, 0] * 2 + 0.5 * rng.standard_normal(N)
    Stimulus([f"s{i}.png" for i in range(N)],
             columns={"label": labels, "run": RUNS, "rt": rt,
                      "condition": np.array(["cat", "dog", "owl"])[labels]}
             ).save(tmp_path / "s.stim.csv")
    brain = rng.standard_normal((N, int(np.prod(GRID)))).astype(np.float32)
    brain[:, :6] += 2 * means[labels][:, :6]                    # class information in ROI 1
    nib.save(nib.Nifti1Image(np.moveaxis(brain.reshape((N,) + GRID), 0, -1), AFFINE),
             str(tmp_path / "beta.nii.gz"))
    atlas = np.zeros(brain.shape[1], dtype=np.int16)
    atlas[:8], atlas[12:20] = 1, 2
    nib.save(nib.Nifti1Image(atlas.reshape(GRID), AFFINE), str(tmp_path / "atlas.nii.gz"))
    return {"dir": tmp_path, "act": tmp_path / "a.act.h5", "stim": tmp_path / "s.stim.csv",
            "nii": tmp_path / "beta.nii.gz", "atlas": atlas, "labels": labels, "rt": rt,
            "layers": layers, "brain": brain}


def _sklearn_folds(splitter, X, y):
    return list(splitter.split(X, y, groups=RUNS))


def _check_classification(out_dir, name, X, y):
    """decoding.csv, confusion and per-class tables equal scikit-learn's."""
    folds = _sklearn_folds(StratifiedGroupKFold(3), X, y)
    est = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    pred = cross_val_predict(est, X, y, cv=folds)
    summary = read_table(out_dir / "decoding.csv")
    row = list(summary["source"].astype(str)).index(name)
    assert summary["accuracy"][row] == pytest.approx(np.mean(pred == y), abs=1e-12)
    conf = confusion_matrix(y, pred)
    table = read_table(out_dir / f"confusion_{name}.csv")
    assert table["true"].tolist() == [0, 1, 2]
    np.testing.assert_array_equal(np.column_stack([table[f"pred_{c}"] for c in range(3)]),
                                  conf)
    per_class = np.diag(conf) / conf.sum(1)
    assert summary["balanced_accuracy"][row] == pytest.approx(per_class.mean(), abs=1e-12)
    pc = read_table(out_dir / "per_class.csv")
    np.testing.assert_allclose(pc["accuracy"][pc["source"].astype(str) == name], per_class)
    predictions = read_table(out_dir / "predictions.csv")
    np.testing.assert_array_equal(predictions[name], pred)
    expected = np.empty(N, dtype=int)
    for k, (_, test) in enumerate(folds):
        expected[test] = k + 1
    np.testing.assert_array_equal(predictions["fold"], expected)
    return summary["accuracy"][row]


def test_layer_accuracy_equals_cross_val_predict(run_cli, data):
    out_dir = data["dir"] / "dec"
    status, out, err = run_cli(main, "-act", data["act"], "-stim", data["stim"], "-groups",
                               "run", "-cv", 3, "-n-perm", 19, "-q", "-out", out_dir)
    assert status == 0, err
    y = data["labels"]
    acc_fc = _check_classification(out_dir, "fc", data["layers"]["fc"], y)
    acc_conv = _check_classification(out_dir, "conv", data["layers"]["conv"].reshape(N, -1), y)
    summary = read_table(out_dir / "decoding.csv")
    assert summary["source"].tolist() == ["conv", "fc"]
    assert acc_fc > 0.6 and acc_conv < 0.55                  # information only in fc
    assert summary["p"][1] == 1 / 20 and summary["p"][0] > 0.05
    np.testing.assert_allclose(summary["chance"], 1 / 3)
    assert f"fc (10 features): accuracy {acc_fc:.4f}" in out
    assert (out_dir / "decoding.png").stat().st_size > 0


def test_brain_roi_accuracy_equals_cross_val_predict(run_cli, data):
    out_dir = data["dir"] / "dec"
    status, _, err = run_cli(main, "-resp", data["nii"], "-roi", data["dir"] / "atlas.nii.gz",
                             "-stim", data["stim"], "-groups", "run", "-cv", 3, "-q",
                             "-out", out_dir)
    assert status == 0, err
    summary = read_table(out_dir / "decoding.csv")
    assert summary["source"].tolist() == [1, 2]                # atlas labels name the ROIs
    assert summary["n_features"].tolist() == [8, 8]
    for name, label in (("1", 1), ("2", 2)):
        X = data["brain"][:, data["atlas"] == label]
        _check_classification(out_dir, name, X, data["labels"])
    assert summary["accuracy"][0] > 0.8 > summary["accuracy"][1]


def test_regression_target_equals_cross_val_predict(run_cli, data):
    out_dir = data["dir"] / "dec"
    status, _, err = run_cli(main, "-act", data["act"], "-layer", "fc", "-stim", data["stim"],
                             "-target", "rt", "-model", "ridge", "-groups", "run", "-cv", 4,
                             "-q", "-out", out_dir)
    assert status == 0, err
    X, y = data["layers"]["fc"], data["rt"]
    folds = list(GroupKFold(4).split(X, y, groups=RUNS))
    pred = cross_val_predict(make_pipeline(StandardScaler(), Ridge()), X, y, cv=folds)
    summary = read_table(out_dir / "decoding.csv")
    assert summary["target"].tolist() == ["rt"]
    assert summary["r"][0] == pytest.approx(np.corrcoef(pred, y)[0, 1], abs=1e-6)
    assert summary["r2"][0] == pytest.approx(
        1 - np.sum((y - pred) ** 2) / np.sum((y - y.mean()) ** 2), abs=1e-6)
    np.testing.assert_allclose(read_table(out_dir / "predictions.csv")["fc"], pred,
                               rtol=1e-6)
    assert not (out_dir / "per_class.csv").exists()


ERRORS = {
    "classifier for units": (lambda d: ["-act", d["act"], "-resp", d["nii"], "-model",
                                        "logistic"], r"is a classifier"),
    "no input": (lambda d: [], r"give the features"),
    "unknown target": (lambda d: ["-act", d["act"], "-target", "species"],
                       r"no column 'species'"),
    "text target for a regressor": (lambda d: ["-act", d["act"], "-target", "condition",
                                               "-model", "ridge"], r"holds text"),
    "unknown layer": (lambda d: ["-act", d["act"], "-layer", "fc9"], r"'fc9'.*conv, fc"),
    "roi with act": (lambda d: ["-act", d["act"], "-roi", d["nii"]], r"with -act use"),
    "bad cv": (lambda d: ["-act", d["act"], "-cv", "two"], r"-cv two"),
}


@pytest.mark.parametrize("case", sorted(ERRORS))
def test_user_mistakes_exit_2_with_one_line(run_cli, data, case):
    make, pattern = ERRORS[case]
    status, _, err = run_cli(main, *make(data), "-stim", data["stim"], "-q",
                             "-out", data["dir"] / "dec")
    assert status == 2
    assert len(err.strip().splitlines()) == 1, err
    assert re.search(pattern, err), err


def test_samples_must_match_the_stimuli(run_cli, data, tmp_path):
    Stimulus([f"s{i}.png" for i in range(N - 2)],
             columns={"label": data["labels"][:-2]}).save(tmp_path / "short.stim.csv")
    for features in (["-act", data["act"]], ["-resp", data["nii"]]):
        status, _, err = run_cli(main, *features, "-stim", tmp_path / "short.stim.csv", "-q",
                                 "-out", tmp_path / "dec")
        assert status == 2 and len(err.strip().splitlines()) == 1
        assert f"has {N}" in err and "short.stim.csv has 70" in err


def test_help_has_an_example(run_cli):
    status, out, _ = run_cli(main, "--help")
    assert status == 0 and "example: db_decode" in out
