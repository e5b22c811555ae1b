"""max_correlation against a slow loop of scipy.stats.pearsonr over units and targets."""
import numpy as np
import pytest
from scipy.stats import pearsonr

from dnnsparse.algo.correlation import max_correlation, standardize_columns
from dnnsparse.errors import InputError


def _slow(X, Y, absolute=False):
    r = np.full(Y.shape[1], np.nan)
    best = np.full(Y.shape[1], -1)
    for j in range(Y.shape[1]):
        if np.ptp(Y[:, j]) == 0:
            continue
        rs = [pearsonr(X[:, u], Y[:, j])[0] if np.ptp(X[:, u]) else np.nan
              for u in range(X.shape[1])]
        key = np.where(np.isnan(rs), -np.inf, np.abs(rs) if absolute else rs)
        best[j] = int(np.argmax(key))
        r[j] = rs[best[j]]
    return r, best


@pytest.mark.parametrize("absolute", [False, True])
@pytest.mark.parametrize("chunk", [None, 1, 4])
def test_equals_slow_pearsonr_loop(rng, absolute, chunk):
    X = rng.standard_normal((30, 12)) * rng.uniform(0.1, 100, 12) + rng.uniform(-5, 5, 12)
    Y = rng.standard_normal((30, 9))
    Y[:, 2] = -3 * X[:, 5] + 0.1 * rng.standard_normal(30)     # anti-correlated unit
    Y[:, 4] = 7.0                                                 # constant target
    X[:, 8] = 2.5                                                 # constant unit
    res = max_correlation(X.astype(np.float32), Y, absolute=absolute, chunk=chunk)
    r, best = _slow(X.astype(np.float32).astype(np.float64), Y, absolute)
    np.testing.assert_allclose(res.r, r, atol=1e-12, equal_nan=True)
    np.testing.assert_array_equal(res.best_unit, best)
    assert res.insample and res.n_units == 12
    assert (res.best_unit[2] == 5) == absolute                    # only |r| picks it
    assert 8 not in res.best_unit


def test_float64_accumulation_on_large_offsets(rng):
    base = rng.standard_normal((50, 3))
    X = 1e6 + base                                                # float32 would lose it
    Y = base[:, [1]] + 0.5 * rng.standard_normal((50, 1))
    res = max_correlation(X, Y)
    assert res.best_unit[0] == 1
    assert res.r[0] == pytest.approx(pearsonr(base[:, 1], Y[:, 0])[0], abs=1e-9)


def test_noise_max_r_is_biased_upward(rng):
    """The reason every output says in-sample: pure noise gets a clearly positive max r."""
    res = max_correlation(rng.standard_normal((40, 500)), rng.standard_normal((40, 20)))
    assert np.all(res.r > 0.3)


def test_standardize_columns_and_errors():
    Z, const = standardize_columns(np.array([[1.0, 4.0, 0.0], [2.0, 4.0, 0.0], [4.0, 4.0, 0.0]]))
    np.testing.assert_allclose(Z.sum(0), 0, atol=1e-15)
    np.testing.assert_allclose((Z * Z).sum(0), [1, 0, 0], atol=1e-15)
    assert const.tolist() == [False, True, True]
    with pytest.raises(InputError, match="samples"):
        max_correlation(np.ones((5, 2)), np.ones((4, 2)))
    with pytest.raises(InputError, match="finite"):
        max_correlation(np.array([[1.0], [np.nan], [2.0]]), np.ones((3, 1)))
    with pytest.raises(InputError, match="chunk"):
        max_correlation(np.eye(3), np.eye(3), chunk=0)
