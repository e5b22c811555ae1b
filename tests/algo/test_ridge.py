"""Ridge solvers against scikit-learn on the same folds (primal and dual, intercept on/off)."""
import numpy as np
import pytest
from sklearn.linear_model import LinearRegression, Ridge, RidgeCV
from sklearn.model_selection import GridSearchCV, KFold

from dnnsparse.algo.encoding import _solvers as _ridge
from dnnsparse.errors import InputError

ALPHAS = np.logspace(-2, 3, 6)
SHAPES = {"primal": (48, 12), "dual": (40, 70)}


def _data(rng, n, p, t=4, dtype=np.float64):
    X = rng.standard_normal((n, p)) + 2.0
    W = rng.standard_normal((p, t)) * np.array([0.05, 0.3, 1.0, 3.0])[:t]
    Y = X @ W + rng.standard_normal((n, t)) + 5.0
    return X.astype(dtype), Y.astype(dtype)


def _folds(n, n_outer=3, n_inner=3):
    outer = list(KFold(n_outer, shuffle=True, random_state=1).split(np.zeros(n)))
    inner = [[(tr[a], tr[b]) for a, b in KFold(n_inner).split(tr)] for tr, _ in outer]
    return outer, inner


def _features(X):
    return lambda tr, te: (X[tr], X[te])


@pytest.mark.parametrize("shape, fit_intercept, scoring", [
    ("primal", True, "neg_mean_squared_error"), ("primal", False, "neg_mean_squared_error"),
    ("dual", True, "neg_mean_squared_error"), ("dual", False, "neg_mean_squared_error"),
    ("primal", True, "r2"), ("dual", False, "r2")])
def test_nested_kfold_equals_gridsearch_per_voxel(rng, shape, fit_intercept, scoring):
    X, Y = _data(rng, *SHAPES[shape])
    Y_before = Y.copy()
    outer, inner = _folds(len(X), n_outer=2)
    pred, best = _ridge.ridge_nested_cv(_features(X), Y, ALPHAS, outer, inner,
                                        fit_intercept=fit_intercept, scoring=scoring)
    np.testing.assert_array_equal(Y, Y_before)      # blocks are centred on copies
    ref = np.empty_like(Y)
    ref_best = np.empty_like(best)
    for o, (tr, te) in enumerate(outer):
        for j in range(Y.shape[1]):
            search = GridSearchCV(Ridge(fit_intercept=fit_intercept), {"alpha": ALPHAS},
                                  cv=KFold(3), scoring=scoring).fit(X[tr], Y[tr, j])
            ref[te, j] = search.predict(X[te])
            ref_best[o, j] = search.best_index_
    np.testing.assert_array_equal(best, ref_best)
    np.testing.assert_allclose(pred, ref, rtol=0, atol=1e-6)
    # the data were built so that different voxels prefer different penalties
    assert len(np.unique(best)) > 1


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_loo_equals_ridgecv_gcv(rng, shape, fit_intercept):
    X, Y = _data(rng, *SHAPES[shape])
    outer, _ = _folds(len(X))
    pred, best = _ridge.ridge_nested_cv(_features(X), Y, ALPHAS, outer, "loo",
                                        fit_intercept=fit_intercept)
    for o, (tr, te) in enumerate(outer):
        ref = RidgeCV(ALPHAS, alpha_per_target=True, fit_intercept=fit_intercept).fit(X[tr], Y[tr])
        np.testing.assert_array_equal(ALPHAS[best[o]], ref.alpha_)
        np.testing.assert_allclose(pred[te], ref.predict(X[te]), rtol=0, atol=1e-6)


def test_loo_scores_equal_explicit_leave_one_out(rng):
    X, Y = _data(rng, 20, 6, t=2)
    dec = _ridge.RidgeDecomposition(X)
    scores = _ridge.loo_alpha_scores(dec, Y, ALPHAS)
    slow = np.zeros_like(scores)
    for a, alpha in enumerate(ALPHAS):
        for i in range(len(X)):
            keep = np.arange(len(X)) != i
            fit = Ridge(alpha).fit(X[keep], Y[keep])
            slow[a] -= (Y[i] - fit.predict(X[i:i + 1])[0]) ** 2 / len(X)
    np.testing.assert_allclose(scores, slow, rtol=1e-9)


@pytest.mark.parametrize("shape", SHAPES)
def test_solve_ridge_per_target_alphas_equals_sklearn(rng, shape):
    X, Y = _data(rng, *SHAPES[shape])
    alphas = np.array([0.1, 10.0, 10.0, 1000.0])
    coef, intercept, x_mean = _ridge.solve_ridge(X, Y, alphas)
    ref = Ridge(alpha=alphas).fit(X, Y)
    np.testing.assert_allclose(coef.T, ref.coef_, atol=1e-8)
    np.testing.assert_allclose(intercept, ref.intercept_, atol=1e-8)
    np.testing.assert_allclose(x_mean, X.mean(0))


@pytest.mark.parametrize("shape", SHAPES)
def test_least_squares_equals_linear_regression(rng, shape):
    X, Y = _data(rng, *SHAPES[shape])
    outer, _ = _folds(len(X))
    pred, _ = _ridge.ridge_nested_cv(_features(X), Y, np.zeros(1), outer, None, method="svd")
    for tr, te in outer:       # dual shape: minimum-norm solution, as lstsq gives
        np.testing.assert_allclose(pred[te], LinearRegression().fit(X[tr], Y[tr]).predict(X[te]),
                                   atol=1e-8)


def test_batches_and_routes_give_the_same_predictions(rng):
    X, Y = _data(rng, 48, 12)
    outer, inner = _folds(len(X))
    full, best = _ridge.ridge_nested_cv(_features(X), Y, ALPHAS, outer, inner)
    one, best1 = _ridge.ridge_nested_cv(_features(X), Y, ALPHAS, outer, inner, n_targets_batch=1)
    np.testing.assert_array_equal(best, best1)
    np.testing.assert_allclose(one, full, rtol=1e-12, atol=1e-12)
    # hat-matrix route and B = R Y route of one operator agree
    dec = _ridge.RidgeDecomposition(X[:30])
    op = _ridge.FoldOperator(dec, X[30:], ALPHAS)
    Yc = Y[:30] - Y[:30].mean(0)
    hat = op.predict_all(Yc)
    op.hat_all = not op.hat_all
    if not hasattr(op, "H"):
        op.H = (op.Lf.reshape(-1, op.k) @ op.R)
    np.testing.assert_allclose(op.predict_all(Yc), hat, atol=1e-10)
    op.hat_one = not op.hat_one
    np.testing.assert_allclose(op.predict_one(2, Yc), hat[2], atol=1e-10)


def test_float32_stays_float32_and_close_to_float64(rng):
    X, Y = _data(rng, 48, 12)
    outer, inner = _folds(len(X))
    p64, b64 = _ridge.ridge_nested_cv(_features(X), Y, ALPHAS, outer, inner)
    X32, Y32 = X.astype(np.float32), Y.astype(np.float32)
    p32, b32 = _ridge.ridge_nested_cv(_features(X32), Y32, ALPHAS, outer, inner)
    assert p32.dtype == np.float32
    same = (b32 == b64).all(0)
    assert same.mean() >= 0.75
    np.testing.assert_allclose(p32[:, same], p64[:, same], rtol=1e-4, atol=1e-3)


def test_cache_reuses_and_respects_budget(rng):
    X, Y = _data(rng, 48, 12)
    outer, inner = _folds(len(X))
    calls = []

    def features(tr, te):
        calls.append(1)
        return X[tr], X[te]
    cache = _ridge.OperatorCache(max_bytes=1 << 30)
    a, _ = _ridge.ridge_nested_cv(features, Y, ALPHAS, outer, inner, cache=cache)
    n_first = len(calls)
    assert n_first == len(outer) * (1 + 3)
    b, _ = _ridge.ridge_nested_cv(features, Y, ALPHAS, outer, inner, cache=cache)
    assert len(calls) == n_first                      # nothing recomputed
    np.testing.assert_array_equal(a, b)
    tiny = _ridge.OperatorCache(max_bytes=0)
    _ridge.ridge_nested_cv(features, Y, ALPHAS, outer, inner, cache=tiny)
    _ridge.ridge_nested_cv(features, Y, ALPHAS, outer, inner, cache=tiny)
    assert len(calls) == 3 * n_first and tiny.used == 0


def test_ties_pick_the_first_alpha_and_several_alphas_need_cv(rng):
    np.testing.assert_array_equal(_ridge.select_alphas(np.array([[1.0, 2.0], [1.0, 3.0]])),
                                  [0, 1])
    X, Y = _data(rng, 20, 3)
    outer, _ = _folds(len(X))
    with pytest.raises(InputError, match="inner CV"):
        _ridge.ridge_nested_cv(_features(X), Y, ALPHAS, outer, None)
    with pytest.raises(InputError, match="n_targets_batch"):
        _ridge.auto_batch(10, 2, 5, 8, 0)
