"""Model RDMs, z-scoring, MDS and the split-half ceiling against independent references:
rsatoolbox's compare, scipy's zscore/squareform, sklearn's MDS and slow loops."""
import itertools

import numpy as np
import pytest
from scipy import stats
from scipy.spatial.distance import pdist, squareform

from dnnsparse.algo.rsa import (categorical_rdm, compare_rdms, compute_rdm, mds_embedding,
                                noisy_rdm, patterned_rdm, random_rdm, rdm_permutation_test,
                                spearman_brown, split_half_ceiling, zscore_patterns)
from dnnsparse.errors import InputError


def _loop_categorical(values):
    n = len(values)
    out = []
    for i in range(n):
        for j in range(i + 1, n):
            out.append(0.0 if values[i] == values[j] else 1.0)
    return np.array(out)


def test_categorical_rdm_equals_slow_loop(rng):
    values = rng.choice(["animate", "inanimate", "face"], size=17)
    np.testing.assert_array_equal(categorical_rdm(values), _loop_categorical(values))
    np.testing.assert_array_equal(categorical_rdm([3, 1, 3]), [1.0, 0.0, 1.0])


def test_patterned_random_and_noisy_rdms(rng):
    n = 9
    square = np.abs(np.subtract.outer(np.arange(n), np.arange(n))).astype(float)
    np.testing.assert_array_equal(squareform(patterned_rdm(n)), square)
    np.testing.assert_array_equal(squareform(patterned_rdm(n, pattern="inverse"))
                                  + np.eye(n) * (n - 1), n - 1 - square)
    r1, r2 = random_rdm(n, seed=4), random_rdm(n, seed=4)
    np.testing.assert_array_equal(r1, r2)
    assert not np.array_equal(r1, random_rdm(n, seed=5))
    assert r1.shape == (n * (n - 1) // 2,) and ((r1 >= 0) & (r1 < 1)).all()
    base = patterned_rdm(200)
    noisy = noisy_rdm(base, noise=0.5, seed=1)
    np.testing.assert_array_equal(noisy, noisy_rdm(base, noise=0.5, seed=1))
    # DNNBrain symmetrises N(0, 0.5^2) cell noise: each pair gets N(0, 0.5^2 / 2)
    assert np.std(noisy - base) == pytest.approx(0.5 / np.sqrt(2), rel=0.02)
    # power check: a noisy copy of the pattern is found, a random RDM is not
    small = patterned_rdm(10)
    hit = rdm_permutation_test(noisy_rdm(small, noise=0.5, seed=2), small, n_perm=200,
                               seed=0, method="spearman")
    miss = rdm_permutation_test(random_rdm(10, seed=2), small, n_perm=200, seed=0,
                                method="spearman")
    assert hit.pvalue < 0.01 < miss.pvalue


@pytest.mark.parametrize("ours,theirs", [("spearman", "spearman"), ("kendall_tau_a", "tau-a"),
                                         ("cosine", "cosine"), ("pearson", "corr"),
                                         ("kendall_tau_b", "kendall")])
def test_model_rdm_comparison_equals_rsatoolbox(rng, ours, theirs):
    pytest.importorskip("rsatoolbox")
    from rsatoolbox.rdm import RDMs, compare

    n = 14
    labels = rng.integers(0, 3, n)
    model = categorical_rdm(labels)                      # many ties
    brain = pdist(rng.standard_normal((n, 30)) + 2.0 * labels[:, None], "correlation")
    layer = compute_rdm(rng.standard_normal((n, 8)))
    for a, b in ((brain, model), (layer, model), (model, patterned_rdm(n))):
        ref = compare(RDMs(a[None]), RDMs(b[None]), method=theirs)[0, 0]
        assert compare_rdms(a, b, method=ours) == pytest.approx(ref, abs=1e-12)


def test_zscore_equals_scipy(rng):
    X = rng.standard_normal((6, 11)) * 4 + 3
    np.testing.assert_allclose(zscore_patterns(X), stats.zscore(X, axis=1), atol=1e-13)
    np.testing.assert_allclose(zscore_patterns(X, axis="unit"), stats.zscore(X, axis=0),
                               atol=1e-13)
    # DNNBrain's order: z-score, then average by category, then the distance
    labels = np.array([0, 1, 0, 1, 2, 2])
    z = stats.zscore(X, axis=1)
    means = np.array([z[labels == k].mean(0) for k in range(3)])
    np.testing.assert_allclose(compute_rdm(X, labels=labels, metric="euclidean",
                                           zscore="pattern"), pdist(means), atol=1e-12)
    with pytest.raises(InputError, match="zscore axis"):
        zscore_patterns(X, axis="voxel")
    # a dead unit drops out (0, as StandardScaler); a constant pattern is undefined (NaN)
    X[:, 4] = 2.0
    z = zscore_patterns(X, axis="unit")
    assert (z[:, 4] == 0).all()
    np.testing.assert_allclose(np.delete(z, 4, axis=1),
                               stats.zscore(np.delete(X, 4, axis=1), axis=0), atol=1e-13)
    X[2] = 1.0
    assert np.isnan(zscore_patterns(X)[2]).all() and np.isfinite(zscore_patterns(X)[3]).all()


def test_mds_equals_sklearn_and_is_seeded(rng):
    from sklearn.manifold import MDS

    X = rng.standard_normal((12, 4))
    d = pdist(X)
    coords, stress = mds_embedding(d, seed=3)
    again, _ = mds_embedding(d, seed=3)
    np.testing.assert_array_equal(coords, again)
    assert coords.shape == (12, 2) and stress >= 0
    # the embedding keeps the distances nearly (4-D points in 2-D)
    assert stats.pearsonr(pdist(coords), d).statistic > 0.8
    try:
        ref = MDS(n_components=2, metric="precomputed", init="classical_mds",
                  random_state=3).fit_transform(squareform(d))
    except TypeError:
        ref = MDS(n_components=2, dissimilarity="precomputed", n_init=4,
                  random_state=3).fit_transform(squareform(d))
    np.testing.assert_allclose(coords, ref, atol=1e-12)


def _direct_split_half(X, items, runs, splits, method):
    rs = []
    for half in splits:
        a = np.isin(runs, half)
        mean_a = np.array([X[a & (items == k)].mean(0) for k in np.unique(items)])
        mean_b = np.array([X[~a & (items == k)].mean(0) for k in np.unique(items)])
        da, db = pdist(mean_a, "correlation"), pdist(mean_b, "correlation")
        rs.append(stats.pearsonr(da, db).statistic if method == "pearson"
                  else stats.spearmanr(da, db).statistic)
    r = np.mean(rs)
    return r, 2 * r / (1 + r)


@pytest.mark.parametrize("n_runs,splits", [
    (4, [(0, 1), (0, 2), (0, 3)]),                       # {0,1}|{2,3}, {0,2}|{1,3}, ...
    (3, [(0,), (1,), (2,)]),
    (2, [(0,)]),
])
@pytest.mark.parametrize("method", ["pearson", "spearman"])
def test_split_half_ceiling_equals_formula(rng, n_runs, splits, method):
    n_items, n_vox = 7, 25
    true = rng.standard_normal((n_items, n_vox))
    items = np.tile(np.arange(n_items), 2 * n_runs)       # each item twice per run
    runs = np.repeat(np.arange(n_runs), 2 * n_items)
    order = rng.permutation(len(items))                   # rows in any order
    items, runs = items[order], runs[order]
    X = true[items] + 1.5 * rng.standard_normal((len(items), n_vox))
    res = split_half_ceiling(X, items, runs, method=method)
    r, reliability = _direct_split_half(X, items, runs, splits, method)
    assert res.n_splits == len(splits)
    assert res.split_half_r == pytest.approx(r, abs=1e-12)
    assert res.reliability == pytest.approx(reliability, abs=1e-12)
    assert res.ceiling == pytest.approx(np.sqrt(reliability), abs=1e-12)


def test_split_half_many_runs_are_sampled_with_the_seed(rng):
    items = np.tile(np.arange(5), 12)
    runs = np.repeat(np.arange(12), 5)
    X = rng.standard_normal((60, 10)) + np.repeat(rng.standard_normal((1, 5, 10)), 12,
                                                  axis=0).reshape(60, 10)
    full = split_half_ceiling(X, items, runs)
    assert full.n_splits == len(list(itertools.combinations(range(1, 12), 5)))   # 462
    a = split_half_ceiling(X, items, runs, max_splits=50, seed=1)
    b = split_half_ceiling(X, items, runs, max_splits=50, seed=1)
    assert a.n_splits == 50 and a.split_half_r == b.split_half_r
    assert a.split_half_r == pytest.approx(full.split_half_r, abs=0.05)


def test_split_half_refuses_incomplete_runs(rng):
    items = np.array([0, 1, 2, 0, 1])
    runs = np.array([1, 1, 1, 2, 2])
    with pytest.raises(InputError, match="run 2 has no pattern of item 2"):
        split_half_ceiling(rng.standard_normal((5, 4)), items, runs)
    with pytest.raises(InputError, match="at least 2 runs"):
        split_half_ceiling(rng.standard_normal((5, 4)), items, np.ones(5))
    assert spearman_brown(0.5) == pytest.approx(2 / 3)
