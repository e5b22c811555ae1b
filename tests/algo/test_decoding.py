"""decode() against scikit-learn's cross_val_predict and metrics on the same folds."""
import numpy as np
import pytest
from sklearn.linear_model import Lasso, LogisticRegression, Ridge
from sklearn.metrics import balanced_accuracy_score, confusion_matrix, r2_score, recall_score
from sklearn.model_selection import GroupKFold, StratifiedKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC

from dnnsparse.algo.model_selection import make_splits
from dnnsparse.algo.decoding import decode
from dnnsparse.errors import InputError

pytestmark = pytest.mark.usefixtures("one_blas_thread")


@pytest.fixture
def categories(rng):
    """90 stimuli of 3 unequal categories; "face" is separable, "car"/"dog" overlap."""
    y = np.array(["face"] * 40 + ["car"] * 30 + ["dog"] * 20)
    X = rng.standard_normal((90, 12))
    X[y == "face", 0] += 4.0
    X[y == "car", 1] += 0.4
    return X, y


@pytest.mark.parametrize("model, reference", [
    ("logistic", LogisticRegression(max_iter=1000)),
    ("svm", LinearSVC(max_iter=10000)),
])
def test_classification_equals_cross_val_predict(categories, model, reference):
    X, y = categories
    folds = StratifiedKFold(5, shuffle=True, random_state=0)
    res = decode(X, y, model=model, cv=folds)
    ref = cross_val_predict(make_pipeline(StandardScaler(), reference), X, y, cv=folds)
    np.testing.assert_array_equal(res.predictions, ref)
    assert res.accuracy == pytest.approx(np.mean(ref == y))
    assert res.balanced_accuracy == pytest.approx(balanced_accuracy_score(y, ref))
    np.testing.assert_array_equal(res.classes, ["car", "dog", "face"])
    np.testing.assert_array_equal(res.confusion, confusion_matrix(y, ref, labels=res.classes))
    np.testing.assert_allclose(res.per_class, recall_score(y, ref, average=None,
                                                           labels=res.classes))
    np.testing.assert_allclose(res.per_class, np.diag(res.confusion) / res.confusion.sum(1))
    for f, (_, te) in enumerate(folds.split(X, y)):
        assert res.fold_accuracy[f] == pytest.approx(np.mean(ref[te] == y[te]))
    # the separable category is decoded best
    assert res.per_class[2] == res.per_class.max() and res.per_class[2] > 0.9


def test_sparseness_paper_call_two_fold_per_category(categories):
    X, y = categories
    res = decode(X, y, model="logistic", cv=2, seed=0)
    table = res.per_class_table()
    assert list(table) == ["class", "accuracy", "n"]
    np.testing.assert_array_equal(table["n"], [30, 20, 40])
    # int cv is stratified: each fold holds half of every category
    for f in range(2):
        _, counts = np.unique(y[res.folds == f], return_counts=True)
        np.testing.assert_array_equal(counts, [15, 10, 20])
    again = decode(X, y, model="logistic", cv=2, seed=0)
    np.testing.assert_array_equal(res.predictions, again.predictions)


def test_no_scaling_and_custom_estimator(categories):
    X, y = categories
    folds = StratifiedKFold(3, shuffle=True, random_state=1)
    est = LogisticRegression(C=0.5, max_iter=500)
    res = decode(X, y, model=est, cv=folds, scale=False)
    np.testing.assert_array_equal(res.predictions, cross_val_predict(est, X, y, cv=folds))
    assert res.model == "LogisticRegression" and not hasattr(est, "coef_")


@pytest.mark.parametrize("model, reference", [("ridge", Ridge()), ("lasso", Lasso(alpha=0.1))])
def test_regression_equals_cross_val_predict(rng, model, reference):
    X = rng.standard_normal((60, 6))
    Y = X[:, :2] @ [[1.0, 0.5], [-1.0, 2.0]] + 0.5 * rng.standard_normal((60, 2))
    res = decode(X, Y, model=model, cv=4, seed=3,
                 model_params={"alpha": 0.1} if model == "lasso" else None)
    folds = make_splits(4, n_samples=60, seed=np.random.default_rng(3))
    ref = cross_val_predict(make_pipeline(StandardScaler(), reference), X, Y, cv=folds)
    np.testing.assert_allclose(res.predictions, ref)
    np.testing.assert_allclose(res.r, [np.corrcoef(Y[:, j], ref[:, j])[0, 1] for j in range(2)])
    np.testing.assert_allclose(res.r2, r2_score(Y, ref, multioutput="raw_values"))
    assert res.accuracy is None and np.all(res.r > 0.8)


def test_grouped_decoding_never_splits_a_group(categories, rng):
    X, y = categories
    runs = np.tile(np.arange(6), 15)
    res = decode(X, y, cv=3, groups=runs, seed=0)
    for g in range(6):
        assert len(np.unique(res.folds[runs == g])) == 1
    ridge = decode(X, X[:, 0], model="ridge", cv=3, groups=runs)
    ref = list(GroupKFold(3).split(X, groups=runs))
    for f, (_, te) in enumerate(ref):
        assert np.all(ridge.folds[te] == f)


def test_permutation_p_values(categories, rng):
    X, y = categories
    res = decode(X, y, cv=3, n_perm=9, seed=0)
    assert res.p == 1 / 10 and res.null.shape == (9,)
    # the null accuracies sit near chance (the majority class is 40 / 90)
    assert 0.2 < np.mean(res.null) < 0.5 and res.null.max() < res.accuracy
    again = decode(X, y, cv=3, n_perm=9, seed=0)
    np.testing.assert_array_equal(res.null, again.null)
    Y = np.column_stack([X[:, 0], rng.standard_normal(90)])
    reg = decode(X, Y, model="ridge", cv=3, n_perm=19, seed=0)
    assert reg.p[0] == 1 / 20 and reg.p_fwer[0] == 1 / 20
    assert np.all(reg.p_fwer >= reg.p) and abs(reg.r[1]) < 0.3


def test_bad_input(categories):
    X, y = categories
    with pytest.raises(InputError, match="Unknown model"):
        decode(X, y, model="forest")
    with pytest.raises(InputError, match="single class"):
        decode(X, np.zeros(90, dtype=int))
    with pytest.raises(InputError, match="Inconsistent"):
        decode(X[:-1], y)
    with pytest.raises(InputError, match="bad model_params"):
        decode(X, y, model_params={"not_a_param": 1})
    with pytest.raises(InputError, match="must be 1-D"):
        decode(X, np.column_stack([y, y]))



def test_permuted_folds_with_one_class_predict_that_class():
    """Few samples per class: some permuted training folds hold one class only.

    scikit-learn refuses to fit them (a traceback in db_decode -n-perm); such a fold
    predicts its single class, checked against a slow loop over the same folds.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from dnnsparse.algo.model_selection import make_splits, permutation_indices

    rng = np.random.default_rng(3)
    X = rng.standard_normal((6, 4))
    y = np.array([0, 0, 0, 1, 1, 1])
    res = decode(X, y, cv=2, n_perm=40, seed=0)
    # the same folds and permutations, drawn as decode draws them
    gen = np.random.default_rng(0)
    splits = make_splits(2, n_samples=6, groups=None, y=y, classifier=True, shuffle=True,
                         seed=gen)
    perms = permutation_indices(6, 40, groups=None, seed=gen)
    single = 0
    null = []
    for perm in perms:
        yp = y[perm]
        pred = np.empty(6, dtype=y.dtype)
        for tr, te in splits:
            if len(np.unique(yp[tr])) == 1:
                single += 1
                pred[te] = yp[tr][0]
            else:
                model = make_pipeline(StandardScaler(), LogisticRegression())
                pred[te] = model.fit(X[tr], yp[tr]).predict(X[te])
        null.append(np.mean(pred == yp))
    assert single > 0                       # the case this test is about occurs
    np.testing.assert_allclose(np.sort(res.null.ravel()), np.sort(null))
    assert res.p == (1 + np.sum(np.array(null) >= res.accuracy)) / (1 + 40)
