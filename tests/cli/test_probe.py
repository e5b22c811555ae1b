"""db_probe against scikit-learn's cross_val_predict with the same estimator and folds."""
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, balanced_accuracy_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC

from dnnsparse.base.activation import Activation
from dnnsparse.base.stimulus import Stimulus
from dnnsparse.cli.probe import main
from dnnsparse.io.table import read_table


@pytest.fixture
def files(tmp_path, rng):
    """40 stimuli of 3 interleaved categories (sizes 12, 16, 12) with overlapping clusters,
    a conv layer (flattened for decoding) and an fc layer."""
    labels = rng.permutation(np.repeat([4, 1, 7], [12, 16, 12]))
    centres = rng.standard_normal((8, 3, 2, 2))
    conv = (centres[labels] + 1.5 * rng.standard_normal((40, 3, 2, 2))).astype(np.float32)
    fc = rng.standard_normal((40, 5)).astype(np.float32)
    names = {1: "cat", 4: "dog", 7: "owl"}
    ids = [f"{names[lab]}/{i}.png" for i, lab in enumerate(labels)]
    Activation({"conv": conv, "fc": fc}, stim_ids=ids).save(tmp_path / "x.act.h5")
    Stimulus(ids, columns={"label": labels, "condition": [names[lab] for lab in labels]}).save(
        tmp_path / "x.stim.csv")
    return tmp_path, labels, conv.reshape(40, -1)


def reference(X, y, seed, estimator):
    """sklearn's cross_val_predict with StratifiedKFold shuffled by the seed that decode()
    draws from its generator (documented in dnnsparse.algo.model_selection: an int32 from
    numpy.random.default_rng(seed))."""
    state = int(np.random.default_rng(seed).integers(np.iinfo(np.int32).max))
    cv = StratifiedKFold(2, shuffle=True, random_state=state)
    return cross_val_predict(make_pipeline(StandardScaler(), estimator), X, y, cv=cv)


@pytest.mark.parametrize("model,estimator", [
    ("logistic", LogisticRegression(max_iter=1000)), ("svm", LinearSVC(max_iter=10000))])
def test_per_category_accuracy_equals_sklearn(run_cli, files, model, estimator):
    tmp, labels, X = files
    status, stdout, err = run_cli(main, "-act", tmp / "x.act.h5", "-stim", tmp / "x.stim.csv",
                                  "-layer", "conv", "-model", model, "-seed", 3, "-out",
                                  tmp / "acc.csv", "-q")
    assert status == 0, err
    pred = reference(X, labels, 3, estimator)
    table = read_table(tmp / "acc.csv")
    assert list(table) == ["label", "category", "n", "accuracy"]
    assert table["label"].tolist() == [1, 4, 7]
    assert table["category"].tolist() == ["cat", "dog", "owl"]
    assert table["n"].tolist() == [16, 12, 12]
    for lab, acc in zip(table["label"], table["accuracy"]):
        rows = labels == lab
        assert acc == pytest.approx(np.count_nonzero(pred[rows] == lab) / rows.sum())
    assert 0 < table["accuracy"].min() < 1                       # not a trivial data set
    assert f"accuracy {accuracy_score(labels, pred):.4f}" in stdout
    assert f"balanced accuracy {balanced_accuracy_score(labels, pred):.4f}" in stdout


def test_errors_exit_2(run_cli, files):
    tmp, labels, _ = files
    act, stim, out = tmp / "x.act.h5", tmp / "x.stim.csv", tmp / "acc.csv"
    status, _, err = run_cli(main, "-act", act, "-stim", stim, "-layer", "fc9", "-out", out)
    assert status == 2 and "conv, fc" in err
    with Activation.load(act) as a:
        a.aggregate(labels).save(tmp / "cat.act.h5")
    status, _, err = run_cli(main, "-act", tmp / "cat.act.h5", "-stim", stim, "-layer", "fc",
                             "-out", out)
    assert status == 2 and "per-category" in err
    Stimulus([f"{i}.png" for i in range(7)], columns={"label": np.arange(7) % 2}).save(
        tmp / "short.stim.csv")
    status, _, err = run_cli(main, "-act", act, "-stim", tmp / "short.stim.csv", "-layer", "fc",
                             "-out", out)
    assert status == 2 and "40 stimuli" in err and "short.stim.csv has 7" in err
    status, _, err = run_cli(main, "-act", act, "-stim", stim, "-layer", "fc", "-out", out, "-q")
    assert status == 0, err
    status, _, err = run_cli(main, "-act", act, "-stim", stim, "-layer", "fc", "-out", out)
    assert status == 2 and "--force" in err
    assert err.count("\n") == 1
