"""The ridge solver on torch tensors (CPU torch here; the same code runs on CUDA) equals
the NumPy path: float64 to 1e-10, float32 to 1e-4 relative."""
import numpy as np
import pytest
from sklearn.linear_model import Ridge

from dnnsparse.algo.encoding import _solvers as ridge

torch = pytest.importorskip("torch")

ALPHAS = np.logspace(-2, 3, 6)


def _data(n=40, p=12, t=9, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p))
    Y = X @ rng.standard_normal((p, t)) * rng.uniform(0.1, 3, t) + rng.standard_normal((n, t))
    return X, Y


def _kfold(n, k, offset=0):
    idx = np.arange(n)
    return [(np.setdiff1d(idx, te), te) for te in np.array_split(idx, k)]


def _tt(a, dtype=torch.float64):
    return torch.asarray(a, dtype=dtype)


@pytest.mark.parametrize("p", [12, 60])                 # primal and dual
@pytest.mark.parametrize("method", ["eigh", "svd"])
def test_solve_ridge_matches_numpy_and_sklearn(p, method):
    X, Y = _data(p=p)
    alphas = ALPHAS[np.arange(Y.shape[1]) % len(ALPHAS)]   # one penalty per target
    coef, icpt, _ = ridge.solve_ridge(X, Y, alphas, method=method)
    tcoef, ticpt, _ = ridge.solve_ridge(X, _tt(Y), alphas, method=method)
    assert isinstance(tcoef, torch.Tensor) and tcoef.dtype == torch.float64
    np.testing.assert_allclose(tcoef.numpy(), coef, rtol=0, atol=1e-10)
    np.testing.assert_allclose(ticpt.numpy(), icpt, rtol=0, atol=1e-10)
    for j in (0, 4):                                     # and both are ridge
        ref = Ridge(alpha=alphas[j]).fit(X, Y[:, j])
        np.testing.assert_allclose(tcoef[:, j].numpy(), ref.coef_, atol=1e-8)


@pytest.mark.parametrize("p", [12, 60])
def test_kfold_and_loo_scores_and_best_alpha(p):
    X, Y = _data(p=p)
    folds = _kfold(len(X), 4)
    for scoring in ridge.INNER_SCORES:


        def make(i, tr, te, like=None):
            dec = ridge.RidgeDecomposition(X[tr], like=like)
            return ridge.FoldOperator(dec, X[te], ALPHAS,
                                      np.float64 if like is None else like.dtype)
        s_np = ridge.kfold_alpha_scores(make, folds, Y, scoring=scoring)
        Yt = _tt(Y)
        s_t = ridge.kfold_alpha_scores(lambda i, tr, te: make(i, tr, te, Yt), folds, Yt,
                                       scoring=scoring, n_targets_batch=4)
        np.testing.assert_allclose(s_t.numpy(), s_np, rtol=1e-10, atol=1e-10)
        np.testing.assert_array_equal(ridge.select_alphas(s_t), ridge.select_alphas(s_np))

    dec = ridge.RidgeDecomposition(X)
    tdec = ridge.RidgeDecomposition(X, like=_tt(Y))
    np.testing.assert_allclose(tdec.lam.numpy(), dec.lam, rtol=1e-10)
    loo = ridge.loo_alpha_scores(dec, Y, ALPHAS)
    tloo = ridge.loo_alpha_scores(tdec, _tt(Y), ALPHAS)
    np.testing.assert_allclose(tloo.numpy(), loo, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("inner", ["loo", "kfold"])
def test_nested_cv_predictions_and_alphas(inner):
    X, Y = _data(n=48, p=30, t=11, seed=1)
    outer = _kfold(len(X), 4)
    inn = "loo" if inner == "loo" else [
        [(tr[a], tr[b]) for a, b in _kfold(len(tr), 3)] for tr, _ in outer]
    feats = lambda tr, te: (X[tr], X[te])                           # noqa: E731
    rows = np.random.default_rng(3).permutation(len(X))            # a permutation refit
    pred, best = ridge.ridge_nested_cv(feats, Y, ALPHAS, outer, inn, rows=rows)
    tpred, tbest = ridge.ridge_nested_cv(feats, _tt(Y), ALPHAS, outer, inn, rows=rows,
                                         n_targets_batch=5)
    assert isinstance(tpred, torch.Tensor)
    np.testing.assert_array_equal(tbest, best)
    assert len(np.unique(best)) > 1                      # per-target choice is exercised
    np.testing.assert_allclose(tpred.numpy(), pred, rtol=0, atol=1e-10)


def test_float32_within_stated_tolerance():
    X, Y = _data(n=48, p=30, t=11, seed=2)
    outer = _kfold(len(X), 4)
    feats = lambda tr, te: (X[tr], X[te])                           # noqa: E731
    pred, _ = ridge.ridge_nested_cv(feats, Y, ALPHAS[2:3], outer, None)
    tpred, _ = ridge.ridge_nested_cv(feats, _tt(Y, torch.float32), ALPHAS[2:3], outer, None)
    assert tpred.dtype == torch.float32
    # float32 products after a float64 decomposition: ~1e-6 relative, stated as 1e-4
    np.testing.assert_allclose(tpred.double().numpy(), pred, rtol=1e-4,
                               atol=1e-4 * np.abs(pred).max())
