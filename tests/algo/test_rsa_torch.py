"""RDMs, comparisons and permutation p-values on torch tensors (CPU torch here; the same
code runs on CUDA) equal the NumPy path: float64 to 1e-10, float32 to 1e-5."""
import numpy as np
import pytest
from scipy import stats
from scipy.spatial.distance import pdist

from dnnsparse.algo.rsa import compare_rdms, compute_rdm, rdm_permutation_test
from dnnsparse.errors import InputError
from dnnsparse.utils.xp import get_namespace, rankdata

torch = pytest.importorskip("torch")


def _patterns(n=30, p=80, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p)) + 1e3               # a large offset (BOLD-like)
    X[5] = X[4] + 1e-7                                   # a near-duplicate: close pair
    return X


@pytest.mark.parametrize("metric", ["correlation", "cosine", "euclidean", "sqeuclidean"])
@pytest.mark.parametrize("chunk_size", [None, 7])
def test_rdm_matches_numpy_and_scipy(metric, chunk_size):
    X = _patterns()
    ref = compute_rdm(X, metric=metric)
    out = compute_rdm(torch.asarray(X), metric=metric, chunk_size=chunk_size)
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float64
    np.testing.assert_allclose(out.numpy(), ref, rtol=0, atol=1e-10)
    np.testing.assert_allclose(out.numpy(), pdist(X, metric), rtol=1e-7, atol=1e-9)


def test_rdm_labels_zscore_and_float32():
    X = _patterns(seed=1)
    labels = np.repeat(np.arange(10), 3)[::-1]
    ref, lab = compute_rdm(X, labels=labels, zscore="pattern", return_labels=True)
    out, tlab = compute_rdm(torch.asarray(X), labels=labels, zscore="pattern",
                            return_labels=True)
    np.testing.assert_array_equal(tlab, lab)
    np.testing.assert_allclose(out.numpy(), ref, atol=1e-10)
    Xc = X - X.mean(1, keepdims=True)                    # float32 without the offset
    out32 = compute_rdm(torch.asarray(Xc, dtype=torch.float32), metric="correlation")
    assert out32.dtype == torch.float32
    np.testing.assert_allclose(out32.numpy(), compute_rdm(Xc), atol=1e-5)
    with pytest.raises(InputError):
        compute_rdm(torch.asarray(X[:1]))


def test_rankdata_matches_scipy_with_ties():
    v = np.random.default_rng(2).integers(0, 6, (3, 40)).astype(float)
    t = torch.asarray(v)
    np.testing.assert_array_equal(rankdata(t, get_namespace(t)).numpy(),
                                  stats.rankdata(v, axis=-1))


@pytest.mark.parametrize("method", ["pearson", "spearman", "cosine", "kendall_tau_a"])
def test_compare_matches_numpy(method):
    rng = np.random.default_rng(3)
    a = np.round(rng.random(190), 2)                     # ties for the rank methods
    b = np.round(a + rng.random((4, 190)), 2)
    ref = compare_rdms(a, b, method=method)
    out = compare_rdms(torch.asarray(a), torch.asarray(b), method=method)
    assert isinstance(out, np.ndarray)
    np.testing.assert_allclose(out, ref, rtol=0, atol=1e-10)
    one = compare_rdms(torch.asarray(a), b[0], method=method)
    assert isinstance(one, float) and abs(one - ref[0]) < 1e-10


@pytest.mark.parametrize("method", ["pearson", "spearman", "cosine"])
@pytest.mark.parametrize("alternative", ["greater", "two-sided"])
def test_permutation_pvalues_identical(method, alternative):
    rng = np.random.default_rng(4)
    X = rng.standard_normal((25, 40))
    a = compute_rdm(X)
    b = np.stack([compute_rdm(X + s * rng.standard_normal(X.shape)) for s in (1, 3, 30)])
    ref = rdm_permutation_test(a, b, method=method, n_perm=300, alternative=alternative,
                               seed=7)
    out = rdm_permutation_test(torch.asarray(a), torch.asarray(b), method=method,
                               n_perm=300, alternative=alternative, seed=7)
    np.testing.assert_allclose(out.null_distribution, ref.null_distribution, atol=1e-10)
    np.testing.assert_array_equal(out.pvalue, ref.pvalue)      # same permutations
    np.testing.assert_allclose(out.statistic, ref.statistic, atol=1e-12)
    assert ref.pvalue[0] < 0.01 < ref.pvalue[2]                # the test has power


def test_permutation_float32_and_exact():
    rng = np.random.default_rng(5)
    a, b = rng.random(28), rng.random(28)                       # n = 8 stimuli
    ref = rdm_permutation_test(a, b, exact=True)
    out = rdm_permutation_test(torch.asarray(a), b, exact=True)
    assert out.n_perm == 40320 and out.pvalue == ref.pvalue
    ref = rdm_permutation_test(a, b, n_perm=200, seed=0)
    out = rdm_permutation_test(torch.asarray(a, dtype=torch.float32), b, n_perm=200, seed=0)
    np.testing.assert_allclose(out.null_distribution, ref.null_distribution, atol=1e-5)
