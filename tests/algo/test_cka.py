"""CKA against the published formulas written out directly: HSIC with centring
matrices (Kornblith et al., 2019), the unbiased HSIC of Song et al. (2012), scipy
distances for the RBF kernel, and a loop of single scores."""
import numpy as np
import pytest
from scipy.spatial.distance import cdist

from dnnsparse.algo.rsa import (CKASpec, center_gram, cka, cka_matrix, cka_permutation_test,
                                gram_matrix, hsic)
from dnnsparse.errors import InputError


def _direct_hsic(K, L):
    n = len(K)
    H = np.eye(n) - np.ones((n, n)) / n
    return np.trace(K @ H @ L @ H) / (n - 1) ** 2


def _song_unbiased_hsic(K, L):
    """Song et al. (2012), eq. 5, term by term."""
    n = len(K)
    Kt, Lt = K.copy(), L.copy()
    np.fill_diagonal(Kt, 0.0)
    np.fill_diagonal(Lt, 0.0)
    one = np.ones(n)
    return (np.trace(Kt @ Lt) + (one @ Kt @ one) * (one @ Lt @ one) / ((n - 1) * (n - 2))
            - 2.0 / (n - 2) * (one @ Kt @ Lt @ one)) / (n * (n - 3))


def _rbf(X, sigma):
    d2 = cdist(X, X, "sqeuclidean")
    return np.exp(-d2 / (2 * sigma ** 2 * np.median(d2)))


def _direct_cka(K, L, hsic_fn=_direct_hsic):
    return hsic_fn(K, L) / np.sqrt(hsic_fn(K, K) * hsic_fn(L, L))


@pytest.fixture
def XY(rng):
    X = rng.standard_normal((23, 7)) + 5.0
    Y = X @ rng.standard_normal((7, 11)) + 0.7 * rng.standard_normal((23, 11))
    return X, Y


def test_linear_cka_equals_direct_formula(XY):
    X, Y = XY
    K, L = X @ X.T, Y @ Y.T
    assert hsic(K, L) == pytest.approx(_direct_hsic(K, L), rel=1e-12)
    assert cka(X, Y) == pytest.approx(_direct_cka(K, L), rel=1e-12)
    assert 0 < cka(X, Y) < 1


@pytest.mark.parametrize("sigma", [0.5, 1.0, 2.0])
def test_rbf_cka_equals_direct_formula(XY, sigma):
    X, Y = XY
    np.testing.assert_allclose(gram_matrix(X, kernel="rbf", sigma=sigma), _rbf(X, sigma),
                               rtol=0, atol=1e-12)
    assert cka(X, Y, kernel="rbf", sigma=sigma) == pytest.approx(
        _direct_cka(_rbf(X, sigma), _rbf(Y, sigma)), rel=1e-10)


def test_debiased_hsic_equals_song_unbiased_estimator(XY):
    X, Y = XY
    for K, L in ((X @ X.T, Y @ Y.T), (_rbf(X, 1.0), _rbf(Y, 0.5))):
        assert hsic(K, L, debiased=True) == pytest.approx(_song_unbiased_hsic(K, L),
                                                          rel=1e-10)
    K, L = X @ X.T, Y @ Y.T
    assert cka(X, Y, debiased=True) == pytest.approx(
        _direct_cka(K, L, _song_unbiased_hsic), rel=1e-10)
    # the estimators differ (the bias is what debiasing removes)
    assert abs(cka(X, Y, debiased=True) - cka(X, Y)) > 1e-3


@pytest.mark.parametrize("debiased", [False, True])
def test_linear_cka_invariances(XY, rng, debiased):
    X, _ = XY
    Q, _ = np.linalg.qr(rng.standard_normal((7, 7)))
    assert cka(X, X, debiased=debiased) == pytest.approx(1.0, abs=1e-12)
    assert cka(X, X @ Q, debiased=debiased) == pytest.approx(1.0, abs=1e-12)
    assert cka(X, 3.7 * X, debiased=debiased) == pytest.approx(1.0, abs=1e-12)
    # RBF with a median-relative width: isotropic scaling and rotation invariant too
    assert cka(X, 3.7 * X @ Q, kernel="rbf", debiased=debiased) == pytest.approx(1.0,
                                                                                 abs=1e-12)
    # not invariant to an arbitrary invertible linear map
    A = rng.standard_normal((7, 7))
    assert cka(X, X @ A) < 1 - 1e-3


def test_unbiased_centring_has_zero_row_sums(XY):
    X, _ = XY
    Ku = center_gram(X @ X.T, debiased=True)
    np.testing.assert_allclose(Ku.sum(axis=1), 0.0, atol=1e-9)
    assert np.all(np.diag(Ku) == 0)
    Kc = center_gram(X @ X.T)
    n = len(X)
    H = np.eye(n) - 1.0 / n
    np.testing.assert_allclose(Kc, H @ X @ X.T @ H, atol=1e-9)


def test_cka_matrix_equals_single_scores(rng):
    reps = [rng.standard_normal((15, p)) for p in (3, 8, 20)]
    grams = np.stack([r @ r.T for r in reps])
    for debiased in (False, True):
        got = cka_matrix(grams, grams[:2], debiased=debiased)
        ref = np.array([[cka(a, b, debiased=debiased) for b in reps[:2]] for a in reps])
        np.testing.assert_allclose(got, ref, rtol=0, atol=1e-12)


def test_permutation_test_null_is_relabelled_cka(XY):
    X, Y = XY
    K, L = X @ X.T, Y @ Y.T
    res = cka_permutation_test(K, np.stack([L, K]), n_perm=20, seed=3)
    rng = np.random.default_rng(3)
    for k in range(3):
        p = rng.permutation(len(X))
        assert res.null_distribution[k, 0] == pytest.approx(
            _direct_cka(K[np.ix_(p, p)], L), abs=1e-12)
    np.testing.assert_allclose(res.statistic, [cka(X, Y), 1.0], atol=1e-12)
    assert res.pvalue[0] == pytest.approx(1 / 21)        # strong dependence: none as big
    again = cka_permutation_test(K, np.stack([L, K]), n_perm=20, seed=3)
    np.testing.assert_array_equal(res.null_distribution, again.null_distribution)


def test_spec_names_and_bad_input(XY):
    assert CKASpec().name == "cka_linear"
    assert CKASpec("rbf", 0.5, True).name == "cka_rbf0.5_debiased"
    X, Y = XY
    with pytest.raises(InputError, match="same stimuli"):
        cka(X, Y[:-1])
    with pytest.raises(InputError, match="at least 4 stimuli"):
        cka(X[:3], Y[:3], debiased=True)
    with pytest.raises(InputError, match="kernel"):
        cka(X, Y, kernel="poly")
    bad = X.copy()
    bad[0, 0] = np.nan
    with pytest.raises(InputError, match="NaN"):
        cka(bad, Y)
