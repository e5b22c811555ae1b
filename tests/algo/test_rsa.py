"""RSA against independent references: scipy pdist/pearsonr/spearmanr/kendalltau,
direct O(n^2) loops, and exact enumeration of stimulus permutations."""
import itertools
import math

import numpy as np
import pytest
from scipy import stats
from scipy.spatial.distance import cosine as cosine_distance
from scipy.spatial.distance import pdist, squareform

from dnnsparse.algo.rsa import (average_by_label, compare_rdms, compute_rdm, kendall_tau_a,
                                layer_rdms)
from dnnsparse.algo.sparseness import category_means
from dnnsparse.algo.rsa import noise_ceiling, rdm_bootstrap, rdm_permutation_test
from dnnsparse.base.rdm import RDM
from dnnsparse.errors import InputError


@pytest.fixture
def patterns(rng):
    # an offset like raw BOLD, and unequal sizes
    return rng.standard_normal((41, 23)) * 3 + 100


@pytest.mark.parametrize("metric", ["correlation", "euclidean", "cosine", "sqeuclidean",
                                    "cityblock", "chebyshev"])
@pytest.mark.parametrize("chunk_size", [None, 1, 7, 40, 1000])
def test_rdm_equals_pdist(patterns, metric, chunk_size):
    got = compute_rdm(patterns, metric=metric, chunk_size=chunk_size)
    ref = pdist(patterns, metric=metric)
    assert got.shape == ref.shape and got.dtype == np.float64
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-10 * max(1.0, ref.max()))


def test_float32_input_accumulates_in_float64(rng):
    X = rng.standard_normal((30, 500)).astype(np.float32)
    np.testing.assert_allclose(compute_rdm(X), pdist(X.astype(np.float64), "correlation"),
                               rtol=0, atol=1e-10)


def test_identical_and_close_rows(rng):
    X = rng.standard_normal((5, 64)) + 1e4          # large offset: cancellation-prone
    X[3] = X[1]
    X[4] = X[0] + 1e-6 * rng.standard_normal(64)
    for metric in ("correlation", "cosine", "euclidean", "sqeuclidean"):
        d = squareform(compute_rdm(X, metric=metric))
        assert (d >= 0).all() and d[1, 3] <= 1e-15
    # close pairs are recomputed from differences: relative accuracy kept
    d = compute_rdm(X, metric="euclidean")
    ref = pdist(X)
    np.testing.assert_allclose(d, ref, rtol=1e-9, atol=0)
    assert squareform(d)[1, 3] == 0.0


def test_zero_variance_pattern_is_nan_like_scipy(rng):
    X = rng.standard_normal((4, 6))
    X[2] = 5.0
    with np.errstate(invalid="ignore"):
        ref = pdist(X, "correlation")
    got = compute_rdm(X)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(ref))


def test_category_average(rng):
    X = rng.standard_normal((12, 5))
    labels = np.array([3, 1, 2] * 4)
    rdm, rows = compute_rdm(X, labels=labels, metric="euclidean", return_labels=True)
    np.testing.assert_array_equal(rows, [1, 2, 3])        # sorted, as DNNBrain's -cate
    means = np.stack([X[labels == k].mean(0) for k in (1, 2, 3)])
    np.testing.assert_allclose(rdm, pdist(means), atol=1e-12)
    np.testing.assert_allclose(average_by_label(X, labels)[0], means, atol=1e-15)


def test_category_average_keeps_its_arithmetic(rng):
    """average_by_label now goes through utils.extmath.group_means: bit for bit the
    old np.add.at sums (so every RDM of label-averaged patterns is unchanged) and the
    category means of the sparseness measures."""
    X = rng.standard_normal((200, 9)) * 10.0 ** rng.uniform(-3, 3, (200, 1))
    labels = rng.choice(["b", "a", "c", "d"], size=200, p=[.5, .3, .15, .05])
    unique, inverse = np.unique(labels, return_inverse=True)
    sums = np.zeros((len(unique), X.shape[1]))
    np.add.at(sums, inverse, X)                                    # the old code
    means, rows = average_by_label(X, labels)
    np.testing.assert_array_equal(means, sums / np.bincount(inverse)[:, None])
    np.testing.assert_array_equal(rows, unique)
    np.testing.assert_array_equal(means, category_means(X, labels).means)


def test_layer_rdms_per_channel_and_position(rng):
    act = rng.standard_normal((9, 4, 3, 2))
    whole = layer_rdms(act, metric="euclidean")
    np.testing.assert_allclose(whole[0], pdist(act.reshape(9, -1)), atol=1e-10)
    per_chn = layer_rdms(act, iter_axis="channel")
    for c in range(4):
        np.testing.assert_allclose(per_chn[c], pdist(act[:, c].reshape(9, -1), "correlation"),
                                   atol=1e-10)
    per_pos = layer_rdms(act, iter_axis="row_col", metric="cosine")
    assert per_pos.shape == (6, 36)
    for k, (r, c) in enumerate(itertools.product(range(3), range(2))):
        np.testing.assert_allclose(per_pos[k], pdist(act[:, :, r, c], "cosine"), atol=1e-10)


def test_rdm_errors(patterns):
    with pytest.raises(InputError, match="Unknown or unusable metric='nope'"):
        compute_rdm(patterns, metric="nope")
    with pytest.raises(InputError, match="at least 2 patterns"):
        compute_rdm(patterns[:1])
    with pytest.raises(InputError, match="NaN"):
        compute_rdm(np.full((3, 3), np.nan))
    with pytest.raises(InputError, match="chunk_size"):
        compute_rdm(patterns, chunk_size=0)


# -- comparison ----------------------------------------------------------------
def tau_a_loop(x, y):
    """Direct O(n^2) Kendall tau-a."""
    n, s = len(x), 0
    for i in range(n):
        for j in range(i + 1, n):
            s += np.sign(x[i] - x[j]) * np.sign(y[i] - y[j])
    return s / (n * (n - 1) / 2)


@pytest.fixture
def rdm_pair(rng):
    a = pdist(rng.standard_normal((15, 8)))
    b = a + rng.standard_normal(a.shape)
    return a, b


def test_compare_equals_scipy(rdm_pair):
    a, b = rdm_pair
    assert compare_rdms(a, b) == pytest.approx(stats.pearsonr(a, b).statistic, abs=1e-12)
    assert compare_rdms(a, b, method="spearman") == pytest.approx(
        stats.spearmanr(a, b).statistic, abs=1e-12)
    assert compare_rdms(a, b, method="kendall_tau_b") == pytest.approx(
        stats.kendalltau(a, b).statistic, abs=1e-12)
    assert compare_rdms(a, b, method="cosine") == pytest.approx(
        1 - cosine_distance(a, b), abs=1e-12)
    assert compare_rdms(a, b, method="kendall_tau_a") == pytest.approx(
        tau_a_loop(a, b), abs=1e-12)


def test_tau_a_with_ties_differs_from_tau_b(rng):
    x = rng.integers(0, 4, 60).astype(float)          # many ties
    y = np.clip(x + rng.integers(-1, 2, 60), 0, 3)
    ref = tau_a_loop(x, y)
    assert kendall_tau_a(x, y) == pytest.approx(ref, abs=1e-12)
    assert abs(ref - stats.kendalltau(x, y).statistic) > 1e-3
    assert kendall_tau_a(np.ones(10), y[:10]) == 0.0


def test_compare_many_models_and_rdm_objects(rdm_pair, rng):
    a, b = rdm_pair
    models = np.stack([b, -b, rng.standard_normal(a.shape)])
    for method in ("pearson", "spearman", "kendall_tau_a", "cosine"):
        many = compare_rdms(RDM(a), models, method=method)
        one = [compare_rdms(a, m, method=method) for m in models]
        np.testing.assert_allclose(many, one, atol=1e-12)
    with pytest.raises(InputError, match="differ in size"):
        compare_rdms(a, b[:-1])
    with pytest.raises(InputError, match="Unknown method"):
        compare_rdms(a, b, method="r2")


# -- permutation test ------------------------------------------------------------
def sub_rdm(square, p):
    """Condensed RDM of the stimuli relabelled by p: entry (i, j) = square[p[i], p[j]]."""
    return squareform(square[np.ix_(p, p)], checks=False)


def test_exact_null_is_all_row_column_permutations(rng):
    n = 5
    sq_a = squareform(pdist(rng.standard_normal((n, 3))))
    b = pdist(rng.standard_normal((n, 3)))
    res = rdm_permutation_test(squareform(sq_a), b, exact=True)
    ref = np.array([stats.pearsonr(sub_rdm(sq_a, np.array(p)), b).statistic
                    for p in itertools.permutations(range(n))])
    assert res.n_perm == math.factorial(n) == len(res.null_distribution)
    np.testing.assert_allclose(res.null_distribution, ref, atol=1e-12)
    observed = stats.pearsonr(squareform(sq_a), b).statistic
    by_hand = np.sum(ref >= observed - 1e-12) / len(ref)
    assert res.pvalue == pytest.approx(by_hand) and res.exact


def test_permuted_copy_is_recovered_once(rng):
    """RDM vs a row/column-permuted copy of itself: exactly one relabelling gives r = 1."""
    n = 6
    sq = squareform(pdist(rng.standard_normal((n, 4))))
    q = np.array([2, 0, 5, 1, 3, 4])
    copy = sub_rdm(sq, q)
    res = rdm_permutation_test(squareform(sq), copy, exact=True)
    assert np.isclose(res.null_distribution, 1.0, atol=1e-12).sum() == 1
    best = list(itertools.permutations(range(n)))[int(np.argmax(res.null_distribution))]
    np.testing.assert_array_equal(best, q)
    # shuffling condensed entries instead would essentially never reach 1
    entry_null = [stats.pearsonr(rng.permutation(copy), copy).statistic for _ in range(720)]
    assert max(entry_null) < 0.999


def test_random_permutations_known_answer_and_seed(rng):
    a = pdist(rng.standard_normal((30, 5)))
    res = rdm_permutation_test(a, a, n_perm=199, seed=3)
    assert res.statistic == pytest.approx(1.0)
    assert res.pvalue == pytest.approx(1 / 200)          # nothing reaches r = 1 by chance
    again = rdm_permutation_test(a, a, n_perm=199, seed=3)
    np.testing.assert_array_equal(res.null_distribution, again.null_distribution)
    other = rdm_permutation_test(a, a, n_perm=199, seed=4)
    assert not np.array_equal(res.null_distribution, other.null_distribution)
    # the null is that of independently drawn relabellings of the stimuli
    gen = np.random.default_rng(3)
    sq = squareform(a)
    ref = [stats.pearsonr(sub_rdm(sq, gen.permutation(30)), a).statistic for _ in range(199)]
    np.testing.assert_allclose(res.null_distribution, ref, atol=1e-12)


@pytest.mark.parametrize("method", ["spearman", "kendall_tau_a", "kendall_tau_b", "cosine"])
def test_permutation_methods_match_loop(rng, method):
    a = pdist(rng.standard_normal((9, 3)))
    b = a + rng.standard_normal(a.shape)
    res = rdm_permutation_test(a, b, method=method, n_perm=50, seed=1,
                               alternative="two-sided")
    gen = np.random.default_rng(1)
    sq = squareform(a)
    ref = [compare_rdms(sub_rdm(sq, gen.permutation(9)), b, method=method) for _ in range(50)]
    np.testing.assert_allclose(res.null_distribution, ref, atol=1e-12)
    extreme = np.sum(np.abs(ref) >= abs(res.statistic) - 1e-12)
    assert res.pvalue == pytest.approx((1 + extreme) / 51)


def test_permutation_many_models_share_permutations(rng):
    a = pdist(rng.standard_normal((12, 3)))
    models = np.stack([a + rng.standard_normal(a.shape) for _ in range(3)])
    res = rdm_permutation_test(a, models, n_perm=40, seed=7, alternative="less")
    assert res.null_distribution.shape == (40, 3) and res.pvalue.shape == (3,)
    for m in range(3):
        one = rdm_permutation_test(a, models[m], n_perm=40, seed=7, alternative="less")
        np.testing.assert_allclose(res.null_distribution[:, m], one.null_distribution,
                                   atol=1e-12)
        assert res.pvalue[m] == pytest.approx(one.pvalue)


def test_permutation_errors(rng):
    a = pdist(rng.standard_normal((12, 3)))
    with pytest.raises(InputError, match="too large"):
        rdm_permutation_test(a, a, exact=True)
    with pytest.raises(InputError, match="n_perm"):
        rdm_permutation_test(a, a, n_perm=0)
    with pytest.raises(InputError, match="alternative"):
        rdm_permutation_test(a, a, alternative="bigger")


# -- bootstrap and noise ceiling ----------------------------------------------------
def test_bootstrap_matches_slow_resampling(rng):
    n = 12
    a = pdist(rng.standard_normal((n, 4)))
    b = a + rng.standard_normal(a.shape)
    res = rdm_bootstrap(a, b, n_boot=25, seed=11, ci=0.9)
    gen = np.random.default_rng(11)
    sa, sb = squareform(a), squareform(b)
    ref = []
    for _ in range(25):
        s = gen.integers(0, n, n)
        xs, ys = [], []
        for i in range(n):
            for j in range(i + 1, n):
                if s[i] != s[j]:          # self-pairs of a duplicated stimulus dropped
                    xs.append(sa[s[i], s[j]])
                    ys.append(sb[s[i], s[j]])
        ref.append(stats.pearsonr(xs, ys).statistic)
    np.testing.assert_allclose(res.distribution, ref, atol=1e-12)
    assert res.ci_low == pytest.approx(np.quantile(ref, 0.05))
    assert res.ci_high == pytest.approx(np.quantile(ref, 0.95))
    again = rdm_bootstrap(a, b, n_boot=25, seed=11, ci=0.9)
    np.testing.assert_array_equal(res.distribution, again.distribution)


def test_noise_ceiling_against_loop(rng):
    base = pdist(rng.standard_normal((10, 4)))
    subjects = np.stack([base + 0.5 * rng.standard_normal(base.shape) for _ in range(4)])
    z = (subjects - subjects.mean(1, keepdims=True)) / subjects.std(1, keepdims=True)
    upper = np.mean([stats.pearsonr(s, z.mean(0)).statistic for s in subjects])
    lower = np.mean([stats.pearsonr(subjects[i], np.delete(z, i, 0).mean(0)).statistic
                     for i in range(4)])
    nc = noise_ceiling(subjects)
    assert nc.upper == pytest.approx(upper, abs=1e-12)
    assert nc.lower == pytest.approx(lower, abs=1e-12)
    assert nc.lower < nc.upper < 1
    same = noise_ceiling(np.stack([base, base, base]), method="spearman")
    assert same.lower == pytest.approx(1.0) and same.upper == pytest.approx(1.0)
    with pytest.raises(InputError, match="at least 2 subjects"):
        noise_ceiling(base[None])
