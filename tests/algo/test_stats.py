"""The paper's statistics against scipy / scikit-learn reference computations."""
import doctest
import itertools

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy import stats
from sklearn.linear_model import LinearRegression

from dnnsparse.algo import stats as stats_module
from dnnsparse.algo.stats import (category_trend, hierarchy_trend, is_fc_layer,
                                  kendall_tau_columns, psi_accuracy_correlation,
                                  stepwise_by_stage, stepwise_regression)
from dnnsparse.errors import InputError


@pytest.fixture
def psi(rng):
    """7 layers x 40 categories, rising along the hierarchy with noise."""
    return 0.2 + 0.03 * np.arange(7)[:, None] + 0.05 * rng.random((7, 40))


# ---------------------------------------------------------------------------
# Hierarchy trend
# ---------------------------------------------------------------------------
def test_trend_pools_all_categories(psi):
    res = hierarchy_trend(psi)
    tau, p = stats.kendalltau(np.repeat(np.arange(1, 8), 40), psi.reshape(-1))
    assert res.tau == pytest.approx(tau, abs=1e-12) and res.pvalue == pytest.approx(p, rel=1e-9)
    assert res.tau > 0.5 and res.on == "categories"
    assert_allclose(res.median, [np.median(row) for row in psi])
    q75 = np.percentile(psi, 75, axis=1, method="midpoint")
    q25 = np.percentile(psi, 25, axis=1, method="midpoint")
    assert_allclose(res.iqr, q75 - q25)
    linear = hierarchy_trend(psi, percentile_method="linear")
    assert_allclose(linear.q25, [np.percentile(row, 25) for row in psi])


def test_trend_on_medians_with_positions(psi):
    pos = [1, 2, 3, 4, 5, 7, 8]
    res = hierarchy_trend(psi[::-1], positions=pos, on="medians")
    tau, p = stats.kendalltau(pos, np.median(psi[::-1], axis=1))
    assert res.tau == pytest.approx(tau) and res.pvalue == pytest.approx(p)
    assert res.tau == pytest.approx(-1.0)
    assert_array_equal(res.positions, pos)
    with pytest.raises(InputError, match="positions has 3 entries but there are 7 layers"):
        hierarchy_trend(psi, positions=[1, 2, 3])
    with pytest.raises(InputError, match="choose from"):
        hierarchy_trend(psi, on="layers")


def test_kendall_tau_columns_equal_scipy(rng):
    """tau-b with ties in x and in the columns, and a constant column (NaN)."""
    x = np.array([1, 2, 2, 3, 4, 5, 5, 6.0])
    Y = np.round(rng.normal(size=(8, 30)), 1)
    Y[:, 3] = 0.7
    Y[:, 4] = Y[:, 5]
    got = kendall_tau_columns(x, Y)
    for k in range(30):
        ref = stats.kendalltau(x, Y[:, k]).statistic
        if k == 3:
            assert np.isnan(got[k]) and np.isnan(ref)
        else:
            assert got[k] == pytest.approx(ref, abs=1e-14)
    with pytest.raises(InputError, match="x has 3 values but Y has 8 rows"):
        kendall_tau_columns([1, 2, 3], Y)


def slow_signed_rank_p(t):
    """Exact two-sided p of the signed-rank sum by enumerating all 2**n sign patterns
    of the ranks of |t| (no ties, no zeros)."""
    ranks = stats.rankdata(np.abs(t))
    observed = ranks[t > 0].sum()
    mean = ranks.sum() / 2
    hits = sum(abs(np.dot(signs, ranks) - mean) >= abs(observed - mean) - 1e-9
               for signs in itertools.product([0, 1], repeat=t.size))
    return hits / 2 ** t.size


def slow_signflip_p(t):
    """Exact two-sided sign-flip p of the mean, by a loop over every pattern."""
    observed = abs(sum(t))
    hits = sum(abs(sum(s * v for s, v in zip(signs, t))) >= observed - 1e-12
               for signs in itertools.product([-1, 1], repeat=len(t)))
    return hits / 2 ** len(t)


def test_category_trend_against_scipy_and_loops(psi, rng):
    """Per-category taus = scipy's kendalltau column by column; Wilcoxon = scipy's; the
    sign-flip p = a loop over every sign pattern; n = categories (not 7 x 40 values)."""
    noisy = psi[:, :14] + 0.1 * rng.normal(size=(7, 14))         # some taus negative
    res = category_trend(noisy)
    ref = np.array([stats.kendalltau(np.arange(1, 8), noisy[:, c]).statistic
                    for c in range(14)])
    assert_allclose(res.taus, ref, rtol=0, atol=1e-14)
    assert res.n == 14 and res.n_positive == np.sum(ref > 0) and res.n_negative == np.sum(ref < 0)
    assert res.mean_tau == pytest.approx(ref.mean()) and res.median_tau == np.median(ref)
    nonzero = ref[ref != 0]
    ties = np.unique(np.abs(nonzero)).size < nonzero.size
    w = stats.wilcoxon(nonzero, method="asymptotic" if ties else "exact", correction=False)
    assert (res.wilcoxon_statistic, res.wilcoxon_pvalue) == pytest.approx(
        (w.statistic, w.pvalue), rel=1e-12)
    assert res.signflip_exact and res.n_signflips == 2 ** 14
    assert res.signflip_pvalue == pytest.approx(slow_signflip_p(ref), abs=1e-15)


def test_wilcoxon_exact_against_enumeration():
    """Distinct non-zero taus: the exact signed-rank p equals a brute-force enumeration."""
    taus = np.array([0.9, -0.1, 0.45, 0.3, 0.7, -0.25, 0.8, 0.6, 0.05, 0.55])
    w, p, method = stats_module._wilcoxon(taus)
    ranks = stats.rankdata(np.abs(taus))
    assert method == "exact"
    assert p == pytest.approx(slow_signed_rank_p(taus), rel=1e-12)
    assert w == min(ranks[taus > 0].sum(), ranks[taus < 0].sum())


def test_category_trend_known_answers():
    """16 categories all rising along 18 layers: every tau is 1 and only the all-plus and
    all-minus sign patterns are as extreme (p = 2 / 2**16); one constant category has
    no tau and is left out; the authors' pooled test sees 288 values."""
    rng = np.random.default_rng(5)
    psi = np.sort(rng.random((18, 16)), axis=0)
    psi[:, 7] = 0.4                                               # constant: tau undefined
    res = category_trend(psi)
    assert np.isnan(res.taus[7]) and np.all(np.delete(res.taus, 7) == 1.0)
    assert res.n == 15 and res.signflip_pvalue == 2 / 2 ** 15
    # ties (all |tau| = 1): normal approximation, W = 0
    assert res.wilcoxon_method == "asymptotic" and res.wilcoxon_statistic == 0
    z = np.sqrt(15 * 16 * 31 / 24 - 15 ** 3 / 48 + 15 / 48)      # sd with the tie correction
    assert res.wilcoxon_pvalue == pytest.approx(2 * stats.norm.sf((15 * 16 / 4) / z))
    assert hierarchy_trend(psi).pvalue < 1e-30                    # n = 288 "independent" values
    flat = category_trend(np.full((5, 4), 0.3))
    assert flat.n == 0 and np.isnan(flat.wilcoxon_pvalue) and np.isnan(flat.signflip_pvalue)


def test_random_sign_flips_are_seeded_and_close_to_exact(rng):
    """Beyond exact_max categories the flips are random: the same seed gives the same p,
    and p lies within 4 standard errors of the exact one."""
    t = rng.uniform(-0.3, 0.5, 12)
    exact = slow_signflip_p(t)
    p1, n1, ex1 = stats_module._signflip(t, 20000, 3, 0)
    p2, _, _ = stats_module._signflip(t, 20000, 3, 0)
    p3, _, _ = stats_module._signflip(t, 20000, 4, 0)
    assert not ex1 and n1 == 20000 and p1 == p2 and p1 != p3
    assert abs(p1 - exact) < 4 * np.sqrt(exact * (1 - exact) / 20000) + 1e-4
    psi = np.vstack([np.zeros(12), t])                            # 2 layers: taus +-1
    a = category_trend(psi, exact_max=0, n_permutations=500, seed=9)
    b = category_trend(psi, exact_max=0, n_permutations=500, seed=9)
    assert a.signflip_pvalue == b.signflip_pvalue and a.n_signflips == 500 and a.seed == 9


# ---------------------------------------------------------------------------
# Correlation of PSI with accuracy
# ---------------------------------------------------------------------------
def test_correlations_equal_scipy(psi, rng):
    acc = psi[-1] * 2 + 0.02 * rng.normal(size=40)
    res = psi_accuracy_correlation(psi, acc)
    for i, row in enumerate(psi):
        r, p = stats.pearsonr(row, acc)
        rs, ps = stats.spearmanr(row, acc)
        assert res.pearson_r[i] == pytest.approx(r, abs=1e-12)
        assert res.pearson_p[i] == pytest.approx(p, rel=1e-8, abs=1e-300)
        assert res.spearman_r[i] == pytest.approx(rs, abs=1e-12)
        assert res.spearman_p[i] == pytest.approx(ps, rel=1e-8, abs=1e-300)
    assert_allclose(res.pearson_p_bonferroni, np.minimum(res.pearson_p * 7, 1))
    assert_allclose(res.spearman_p_bonferroni, np.minimum(res.spearman_p * 7, 1))
    assert np.any(res.pearson_p * 7 > 1) and res.pearson_p_bonferroni.max() == 1.0  # capped
    tau, p = stats.kendalltau(np.arange(1, 8), res.pearson_r)
    assert res.tau == pytest.approx(tau) and res.tau_pvalue == pytest.approx(p)
    stau, _ = stats.kendalltau(np.arange(1, 8), res.spearman_r)
    assert res.spearman_tau == pytest.approx(stau) and res.n == 40


def test_correlation_errors(psi):
    with pytest.raises(InputError, match="accuracy has 39 categories but psi has 40"):
        psi_accuracy_correlation(psi, np.ones(39))
    with pytest.raises(InputError, match="at least 3 categories"):
        psi_accuracy_correlation(psi[:, :2], [0.1, 0.2])
    flat = psi.copy()
    flat[2] = 0.3
    res = psi_accuracy_correlation(flat, psi[-1])
    assert np.isnan(res.pearson_r[2]) and np.isfinite(np.delete(res.pearson_r, 2)).all()


# ---------------------------------------------------------------------------
# Stepwise regression
# ---------------------------------------------------------------------------
@pytest.fixture
def two_of_five(rng):
    """y depends on columns 1 and 3 only. The noise is made orthogonal to every column
    (and the intercept), so the other three add exactly nothing: partial F = 0."""
    n = 150
    X = rng.normal(size=(n, 5))
    design = np.c_[np.ones(n), X]
    noise = rng.normal(size=n)
    noise -= design @ np.linalg.lstsq(design, noise, rcond=None)[0]
    return X, 1.0 * X[:, 1] - 2.0 * X[:, 3] + noise


def reference_fit(X, y, cols):
    """Overall F test of y on X[:, cols], written out with sklearn's R²."""
    n, k = len(y), len(cols)
    lr = LinearRegression().fit(X[:, cols], y)
    r2 = lr.score(X[:, cols], y)
    F = (r2 / k) / ((1 - r2) / (n - k - 1))
    return dict(r2=r2, adj=1 - (1 - r2) * (n - 1) / (n - k - 1), F=F,
                p=stats.f.sf(F, k, n - k - 1), coef=lr.coef_, intercept=lr.intercept_)


def test_stepwise_selects_true_predictors(two_of_five):
    X, y = two_of_five
    names = ["conv1", "conv2", "conv3", "conv4", "conv5"]
    res = stepwise_regression(X, y, names=names)
    assert res.selected == ("conv4", "conv2")       # the stronger effect enters first
    ref = reference_fit(X, y, [3, 1])
    assert (res.df1, res.df2, res.n) == (2, 147, 150)
    assert res.F == pytest.approx(ref["F"], rel=1e-10)
    assert res.pvalue == pytest.approx(ref["p"], rel=1e-8, abs=1e-300)
    assert res.r2 == pytest.approx(ref["r2"], rel=1e-12)
    assert res.adj_r2 == pytest.approx(ref["adj"], rel=1e-12)
    assert_allclose(res.coef, ref["coef"], rtol=1e-10)
    assert res.intercept == pytest.approx(ref["intercept"], abs=1e-12)
    # first step's partial F equals the simple regression's F
    first = reference_fit(X, y, [3])
    assert res.steps[0][:2] == ("enter", "conv4")
    assert res.steps[0][2] == pytest.approx(first["F"], rel=1e-10)
    # z-scoring the variables (as the authors did) changes neither F nor R²
    z = stepwise_regression(stats.zscore(X), stats.zscore(y), names=names)
    assert z.selected == res.selected and z.F == pytest.approx(res.F, rel=1e-10)
    assert z.adj_r2 == pytest.approx(res.adj_r2, rel=1e-10)


def test_stepwise_removes_redundant_predictor(rng):
    n = 120
    x2, x3 = rng.normal(size=n), rng.normal(size=n)
    x1 = x2 + x3 + 0.3 * rng.normal(size=n)        # strongest alone, redundant with x2 and x3
    y = x2 + x3 + 0.5 * rng.normal(size=n)
    X = np.c_[x1, x2, x3, rng.normal(size=n)]
    res = stepwise_regression(X, y, names=["x1", "x2", "x3", "x4"])
    assert res.steps[0][:2] == ("enter", "x1")
    assert ("remove", "x1") in [s[:2] for s in res.steps]
    assert set(res.selected) == {"x2", "x3"}
    kept = stepwise_regression(X, y, names=["x1", "x2", "x3", "x4"], remove=False)
    assert kept.selected[0] == "x1" and len(kept.selected) == 3


def authors_forward(X, y):
    """Forward selection by adjusted R² (the authors' rule), with sklearn fits."""
    n = len(y)
    remaining, selected, current = list(range(X.shape[1])), [], 0.0
    while remaining:
        scores = []
        for j in remaining:
            cols = selected + [j]
            r2 = LinearRegression().fit(X[:, cols], y).score(X[:, cols], y)
            scores.append((1 - (1 - r2) * (n - 1) / (n - len(cols) - 1), j))
        best, j = max(scores)
        if best <= current:
            break
        selected.append(j)
        remaining.remove(j)
        current = best
    return selected


def test_stepwise_adjusted_r2_rule(two_of_five, rng):
    X, y = two_of_five
    names = [f"x{j}" for j in range(5)]
    res = stepwise_regression(X, y, names=names, criterion="adj_r2")
    assert list(res.selected) == [names[j] for j in authors_forward(X, y)]
    assert res.selected[:2] == ("x3", "x1")
    noise = stepwise_regression(rng.normal(size=(40, 3)), rng.normal(size=40))
    assert noise.df1 == len(noise.selected)
    if not noise.selected:
        assert np.isnan(noise.F) and noise.r2 == 0.0


def test_stepwise_by_stage(psi, rng):
    names = ["conv1", "conv2", "conv3", "conv4", "conv5", "fc1", "fc2"]
    acc = psi[4] + psi[6] + 0.01 * rng.normal(size=40)
    res = stepwise_by_stage(psi, acc, names)
    assert set(res) == {"conv", "fc"}
    direct = stepwise_regression(psi[:5].T, acc, names=names[:5])
    assert res["conv"].selected == direct.selected and res["conv"].F == direct.F
    assert res["fc"].selected[0] == "fc2" and set(res["fc"].selected) <= {"fc1", "fc2"}
    assert res["conv"].selected[0] == "conv5"
    custom = stepwise_by_stage(psi, acc, names, is_fc=lambda s: s in ("conv5", "fc1", "fc2"))
    assert custom["fc"].n == 40 and "conv5" not in custom["conv"].selected
    assert is_fc_layer("FC1") and not is_fc_layer("conv1_relu")
    with pytest.raises(InputError, match="layer_names has 2 entries but psi has 7"):
        stepwise_by_stage(psi, acc, names[:2])


def test_stepwise_errors(two_of_five):
    X, y = two_of_five
    with pytest.raises(InputError, match="p_remove"):
        stepwise_regression(X, y, p_enter=0.1, p_remove=0.05)
    with pytest.raises(InputError, match="choose from"):
        stepwise_regression(X, y, criterion="aic")
    with pytest.raises(InputError, match="names has 2 entries"):
        stepwise_regression(X, y, names=["a", "b"])


def test_docstring_examples():
    result = doctest.testmod(stats_module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 5 and result.failed == 0


def test_stepwise_constant_response_is_an_error():
    with pytest.raises(InputError, match="same for every sample"):
        stepwise_regression(np.arange(12.0).reshape(6, 2), np.ones(6))
