"""Statistics of the hierarchical sparse-coding paper (Liu, Zhen & Liu, 2020).

- :func:`hierarchy_trend` -- Kendall's tau of PSI against layer position, with
  per-layer median and interquartile range (the paper's Fig. 1). Pooling every
  (layer, category) value is the authors' test; its p treats the values as
  independent, which they are not (each category appears in every layer).
- :func:`category_trend` -- the test of a trend a reviewer accepts: each
  category's Kendall tau along the layers, then a Wilcoxon signed-rank test and a
  (seeded) sign-flip permutation test of those taus across categories.
- :func:`psi_accuracy_correlation` -- per-layer Pearson/Spearman correlation of
  category PSI with category accuracy, Bonferroni-corrected, and the trend of
  those correlations along layers (Fig. 2).
- :func:`stepwise_regression` / :func:`stepwise_by_stage` -- forward (and
  backward) stepwise multiple regression of accuracy on per-layer PSI,
  separately for convolutional and fully connected layers.

All functions take plain arrays; layer-wise inputs are ``(n_layers,
n_categories)``. Nothing here needs statsmodels: least squares is NumPy's and
the distributions are scipy's.
"""
import numbers
from dataclasses import dataclass, field

import numpy as np
from scipy import stats

from ..errors import InputError
from ..utils.validation import (check_array, check_choice, check_consistent_length,
                                check_random_state, check_scalar)

__all__ = [
    "CategoryTrend",
    "HierarchyTrend",
    "LayerCorrelation",
    "StepwiseResult",
    "category_trend",
    "fdr_bh",
    "hierarchy_trend",
    "is_fc_layer",
    "kendall_tau_columns",
    "psi_accuracy_correlation",
    "stepwise_by_stage",
    "stepwise_regression",
]


def _layer_matrix(psi, name="psi"):
    return check_array(psi, name=name, ndim=2, min_rows=1)


def _positions(positions, n_layers):
    if positions is None:
        return np.arange(1, n_layers + 1, dtype=np.float64)
    positions = check_array(positions, name="positions", ndim=1)
    if positions.size != n_layers:
        raise InputError(f"positions has {positions.size} entries but there are {n_layers} "
                         "layers (rows of psi); give one position per layer.")
    return positions


# ---------------------------------------------------------------------------
# Hierarchy trend
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class HierarchyTrend:
    """Result of :func:`hierarchy_trend`; per-layer arrays have shape (n_layers,)."""

    tau: float              #: Kendall's tau-b of PSI against layer position
    pvalue: float           #: two-sided p-value of tau
    median: np.ndarray      #: median PSI of each layer
    q25: np.ndarray         #: 25th percentile of each layer
    q75: np.ndarray         #: 75th percentile of each layer
    iqr: np.ndarray         #: q75 - q25
    positions: np.ndarray   #: layer positions used
    on: str                 #: "categories" (pooled) or "medians"


TREND_TARGETS = ("categories", "medians")


def hierarchy_trend(psi, *, positions=None, on="categories", percentile_method="midpoint"):
    """Kendall's tau between sparseness and layer position, with layer summaries.

    Parameters
    ----------
    psi : array-like of shape (n_layers, n_categories)
        Sparseness of every category in every layer, layers in hierarchical
        order.
    positions : array-like of shape (n_layers,), optional
        Position of each layer along the hierarchy. Default 1, 2, ..., n_layers.
    on : {"categories", "medians"}, default="categories"
        "categories" pools every (layer, category) value against its layer's
        position, as the authors' code does (n_layers * n_categories pairs,
        ties handled by tau-b). "medians" correlates the n_layers medians with
        the positions.
    percentile_method : str, default="midpoint"
        ``numpy.percentile`` method for the quartiles; "midpoint" is what the
        authors used for the IQR.

    Returns
    -------
    HierarchyTrend

    Examples
    --------
    >>> res = hierarchy_trend([[0.1, 0.2, 0.3], [0.3, 0.4, 0.5]])
    >>> round(res.tau, 3), res.median.round(3).tolist(), res.iqr.round(3).tolist()
    (0.713, [0.2, 0.4], [0.1, 0.1])
    """
    psi = _layer_matrix(psi)
    check_choice(on, TREND_TARGETS, name="on")
    pos = _positions(positions, psi.shape[0])
    q25, median, q75 = np.percentile(psi, [25, 50, 75], axis=1, method=percentile_method)
    if on == "categories":
        x, y = np.repeat(pos, psi.shape[1]), psi.ravel()
    else:
        x, y = pos, np.median(psi, axis=1)
    tau, pvalue = stats.kendalltau(x, y)
    return HierarchyTrend(float(tau), float(pvalue), np.median(psi, axis=1), q25, q75,
                          q75 - q25, pos, on)


def kendall_tau_columns(x, Y):
    """Kendall's tau-b of ``x`` against every column of ``Y`` (as scipy's kendalltau).

    Parameters
    ----------
    x : array-like of shape (n,)
    Y : array-like of shape (n, k)

    Returns
    -------
    tau : ndarray of shape (k,)
        ``(concordant - discordant) / sqrt((n0 - ties_x) (n0 - ties_y))`` over the
        ``n0 = n (n - 1) / 2`` pairs; NaN for a constant column (or constant ``x``).

    Examples
    --------
    >>> kendall_tau_columns([1, 2, 3, 4], [[1, 4, 2], [2, 3, 2], [3, 2, 2], [5, 1, 2]])
    array([ 1., -1., nan])
    """
    x = check_array(x, name="x", ndim=1)
    Y = check_array(Y, name="Y", ndim=2)
    if Y.shape[0] != x.size:
        raise InputError(f"x has {x.size} values but Y has {Y.shape[0]} rows.")
    i, j = np.triu_indices(x.size, 1)
    dx = np.sign(x[j] - x[i])                       # (n_pairs,)
    dy = np.sign(Y[j] - Y[i])                       # (n_pairs, k)
    n0 = i.size
    ties_x = np.count_nonzero(dx == 0)
    ties_y = np.count_nonzero(dy == 0, axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        tau = (dx @ dy) / np.sqrt((n0 - ties_x) * (n0 - ties_y).astype(np.float64))
    tau[(n0 - ties_y == 0) | (n0 - ties_x == 0)] = np.nan
    return np.clip(tau, -1.0, 1.0)


@dataclass(frozen=True)
class CategoryTrend:
    """Result of :func:`category_trend`: per-category trends and their tests."""

    taus: np.ndarray            #: (n_categories,) Kendall tau-b along the layers; NaN: constant
    n: int                      #: categories with a defined tau (the tests' sample size)
    mean_tau: float
    median_tau: float
    n_positive: int             #: categories with tau > 0
    n_negative: int             #: categories with tau < 0
    wilcoxon_statistic: float   #: W = the smaller of the signed-rank sums (zeros dropped)
    wilcoxon_pvalue: float      #: two-sided
    wilcoxon_method: str        #: "exact" (no ties, no zeros, n <= 50) or "asymptotic"
    signflip_pvalue: float      #: two-sided, for the mean tau
    n_signflips: int            #: sign patterns used (all 2**n of them when exact)
    signflip_exact: bool
    seed: object                #: seed of the random sign flips (unused when exact)


#: Up to this many categories the sign-flip test enumerates all 2**n patterns.
SIGNFLIP_EXACT_MAX = 20
#: Sign patterns x categories per batch (16 MiB of float64 signs).
_SIGNFLIP_BATCH_VALUES = 2 ** 21


def _wilcoxon(taus):
    """(W, p, method) of the two-sided signed-rank test of ``taus`` (zeros dropped)."""
    t = taus[taus != 0]
    if t.size == 0:
        return np.nan, 1.0, "none"        # no category moves: no evidence of a trend
    ties = np.unique(np.abs(t)).size < t.size
    method = "exact" if t.size <= 50 and not ties else "asymptotic"
    res = stats.wilcoxon(t, method=method, correction=False)
    return float(res.statistic), float(res.pvalue), method


def _signflip(taus, n_permutations, seed, exact_max):
    """(p, patterns used, exact) of the two-sided sign-flip test of the mean of ``taus``.

    Under no trend every category's tau is as likely negative as positive; the
    p-value is the share of sign patterns whose mean is at least as far from 0
    as the observed one (all ``2**n`` patterns when ``n <= exact_max``, else
    ``n_permutations`` random ones and ``(1 + hits) / (1 + n_permutations)``).
    """
    n = taus.size
    observed = abs(taus.sum())
    tol = 1e-12 * max(1.0, observed)        # sums of the same values in another order
    batch = max(1, _SIGNFLIP_BATCH_VALUES // n)
    hits = 0
    if n <= exact_max:
        for start in range(0, 2 ** n, batch):
            codes = np.arange(start, min(start + batch, 2 ** n), dtype=np.int64)
            signs = 1.0 - 2.0 * ((codes[:, None] >> np.arange(n)) & 1)   # bits of the code
            hits += int(np.count_nonzero(np.abs(signs @ taus) >= observed - tol))
        return hits / 2 ** n, 2 ** n, True
    rng = check_random_state(seed)
    for start in range(0, n_permutations, batch):
        size = min(batch, n_permutations - start)
        signs = 1.0 - 2.0 * rng.integers(0, 2, size=(size, n))
        hits += int(np.count_nonzero(np.abs(signs @ taus) >= observed - tol))
    return (1 + hits) / (1 + n_permutations), n_permutations, False


def category_trend(psi, *, positions=None, n_permutations=10000, seed=0,
                   exact_max=SIGNFLIP_EXACT_MAX):
    """Trend along the layers with categories, not values, as the sample.

    Each category's Kendall tau-b against layer position is its own trend; under
    "no trend" the taus are symmetric around 0. Two tests of that across
    categories: the Wilcoxon signed-rank test (scipy; exact without ties or
    zero taus up to 50 categories, else the normal approximation with the tie
    correction) and a sign-flip permutation test of the mean tau (exact up to
    ``exact_max`` categories, else ``n_permutations`` random flips with
    ``seed``). Unlike the authors' pooled test (:func:`hierarchy_trend`), n is
    the number of categories.

    Parameters
    ----------
    psi : array-like of shape (n_layers, n_categories)
    positions : array-like of shape (n_layers,), optional
        Default 1..n_layers.
    n_permutations : int, default=10000
        Random sign patterns when there are more than ``exact_max`` categories.
    seed : int, Generator or None, default=0
    exact_max : int, default=20

    Returns
    -------
    CategoryTrend
        Categories whose values are the same in every layer (tau undefined) are
        left out of the tests (NaN tau); with none left the p-values are NaN.

    Examples
    --------
    >>> psi = [[0.1, 0.2, 0.3, 0.2], [0.2, 0.3, 0.2, 0.3], [0.3, 0.4, 0.4, 0.4]]
    >>> res = category_trend(psi)
    >>> res.taus.round(3).tolist(), res.n_positive, res.signflip_pvalue
    ([1.0, 1.0, 0.333, 1.0], 4, 0.125)
    """
    psi = _layer_matrix(psi)
    pos = _positions(positions, psi.shape[0])
    check_scalar(n_permutations, name="n_permutations", kind=numbers.Integral, min_val=1)
    check_scalar(exact_max, name="exact_max", kind=numbers.Integral, min_val=0, max_val=30)
    if psi.shape[0] < 2:
        taus = np.full(psi.shape[1], np.nan)
    else:
        taus = kendall_tau_columns(pos, psi)
    t = taus[np.isfinite(taus)]
    if t.size:
        w, wp, method = _wilcoxon(t)
        sp, n_flips, exact = _signflip(t, int(n_permutations), seed, int(exact_max))
        mean, median = float(t.mean()), float(np.median(t))
    else:
        w = wp = sp = mean = median = np.nan
        method, n_flips, exact = "none", 0, True
    return CategoryTrend(taus, int(t.size), mean, median, int(np.count_nonzero(t > 0)),
                         int(np.count_nonzero(t < 0)), w, wp, method, sp, n_flips, exact,
                         seed)


# ---------------------------------------------------------------------------
# PSI-accuracy correlation per layer
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class LayerCorrelation:
    """Result of :func:`psi_accuracy_correlation`; arrays have shape (n_layers,)."""

    pearson_r: np.ndarray
    pearson_p: np.ndarray
    pearson_p_bonferroni: np.ndarray   #: min(p * n_layers, 1)
    spearman_r: np.ndarray
    spearman_p: np.ndarray
    spearman_p_bonferroni: np.ndarray
    tau: float          #: Kendall's tau of ``pearson_r`` against layer position
    tau_pvalue: float
    spearman_tau: float  #: Kendall's tau of ``spearman_r`` against layer position
    spearman_tau_pvalue: float
    n: int              #: number of categories


def _rowwise_pearson(x, y):
    """Pearson r of every row of ``x`` (n_layers, n) with ``y`` (n,), and its p-value."""
    xc = x - x.mean(axis=1, keepdims=True)
    yc = y - y.mean()
    denom = np.sqrt(np.einsum("ij,ij->i", xc, xc) * (yc @ yc))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.clip(xc @ yc / denom, -1.0, 1.0)
        df = y.size - 2
        t = r * np.sqrt(df / ((1.0 - r) * (1.0 + r)))
    p = 2 * stats.t.sf(np.abs(t), df)
    return r, p


def psi_accuracy_correlation(psi, accuracy, *, positions=None):
    """Correlation between category PSI and category accuracy in each layer.

    Parameters
    ----------
    psi : array-like of shape (n_layers, n_categories)
    accuracy : array-like of shape (n_categories,)
        Accuracy of each category, e.g. from
        :func:`~dnnsparse.algo.metrics.per_category_accuracy` on a read-out of the
        last layer (the paper: FC2, 2-fold CV).
    positions : array-like of shape (n_layers,), optional
        Layer positions for the trend of the correlations (default 1..n_layers).

    Returns
    -------
    LayerCorrelation
        Pearson and Spearman r with two-sided p-values (t distribution with
        n - 2 df, as scipy), Bonferroni-corrected over layers, and Kendall's
        tau of the coefficients along the layers. A layer whose PSI is the same
        for every category has r = NaN.

    Raises
    ------
    InputError
        If sizes differ or there are fewer than 3 categories.

    Examples
    --------
    >>> res = psi_accuracy_correlation([[0.1, 0.2, 0.3, 0.4], [0.4, 0.1, 0.3, 0.2]],
    ...                                [0.2, 0.4, 0.5, 0.9])
    >>> res.pearson_r.round(3).tolist()
    [0.965, -0.439]
    """
    psi = _layer_matrix(psi)
    accuracy = check_array(accuracy, name="accuracy", ndim=1)
    if accuracy.size != psi.shape[1]:
        raise InputError(f"accuracy has {accuracy.size} categories but psi has "
                         f"{psi.shape[1]} columns; they must match.")
    if accuracy.size < 3:
        raise InputError(f"Correlations need at least 3 categories; got {accuracy.size}.")
    pos = _positions(positions, psi.shape[0])
    n_layers = psi.shape[0]
    r, p = _rowwise_pearson(psi, accuracy)
    rs, ps = _rowwise_pearson(stats.rankdata(psi, axis=1), stats.rankdata(accuracy))
    tau, tau_p = stats.kendalltau(pos, r) if n_layers > 1 else (np.nan, np.nan)
    stau, stau_p = stats.kendalltau(pos, rs) if n_layers > 1 else (np.nan, np.nan)
    return LayerCorrelation(r, p, np.minimum(p * n_layers, 1.0), rs, ps,
                            np.minimum(ps * n_layers, 1.0), float(tau), float(tau_p),
                            float(stau), float(stau_p), int(accuracy.size))


# ---------------------------------------------------------------------------
# Stepwise multiple regression
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class StepwiseResult:
    """Result of :func:`stepwise_regression` (the final model)."""

    selected: tuple     #: predictor names in order of entry
    F: float            #: overall F of the final model (NaN if nothing selected)
    df1: int            #: numerator df (number of selected predictors)
    df2: int            #: denominator df (n - df1 - 1)
    pvalue: float       #: p of F (NaN if nothing selected)
    r2: float
    adj_r2: float
    intercept: float
    coef: np.ndarray    #: (len(selected),) slopes, in the order of ``selected``
    steps: tuple = field(default=())  #: ("enter"/"remove", name, partial F, p) per step
    n: int = 0          #: number of observations


def _rss(X, y, cols):
    """Residual sum of squares of y on an intercept and X[:, cols] (X, y centred)."""
    if not cols:
        return float(y @ y)
    sub = X[:, cols]
    beta = np.linalg.lstsq(sub, y, rcond=None)[0]
    resid = y - sub @ beta
    return float(resid @ resid)


def _partial_f(rss_small, rss_big, n, k_big):
    """Partial F (1 df) for adding one predictor to reach a model with k_big predictors."""
    df2 = n - k_big - 1
    if df2 <= 0:
        return np.nan, np.nan
    if rss_big <= 0:
        return np.inf, 0.0
    f = (rss_small - rss_big) / (rss_big / df2)
    return float(f), float(stats.f.sf(f, 1, df2))


def _adj_r2(rss, tss, n, k):
    df2 = n - k - 1
    return 1.0 - (rss / df2) / (tss / (n - 1)) if df2 > 0 else np.nan


def _forward_p(X, y, names, p_enter, p_remove, remove):
    """Classical stepwise selection: enter the lowest partial-F p below p_enter,
    then remove the highest above p_remove, until nothing changes."""
    n, n_pred = X.shape
    selected, steps = [], []
    for _ in range(4 * n_pred + 4):     # guard: p_remove >= p_enter makes cycles impossible
        rss_now = _rss(X, y, selected)
        best = None
        for j in (j for j in range(n_pred) if j not in selected):
            f, p = _partial_f(rss_now, _rss(X, y, selected + [j]), n, len(selected) + 1)
            if np.isfinite(p) and (best is None or p < best[2]):
                best = (j, f, p)
        if best is None or best[2] >= p_enter:
            break
        selected.append(best[0])
        steps.append(("enter", names[best[0]], best[1], best[2]))
        while remove and len(selected) > 1:
            rss_full = _rss(X, y, selected)
            tests = [(j, *_partial_f(_rss(X, y, [s for s in selected if s != j]), rss_full,
                                     n, len(selected))) for j in selected]
            j, f, p = max(tests, key=lambda t: t[2])
            if not p > p_remove:
                break
            selected.remove(j)
            steps.append(("remove", names[j], f, p))
    return selected, steps


def _forward_adj_r2(X, y, names, p_enter, p_remove, remove):
    """The authors' rule: add the predictor that raises adjusted R² most; stop when
    none raises it (starting from 0, so a model must beat adjusted R² = 0)."""
    n, n_pred = X.shape
    tss = float(y @ y)
    selected, steps, current = [], [], 0.0
    while len(selected) < n_pred:
        scores = [(_adj_r2(_rss(X, y, selected + [j]), tss, n, len(selected) + 1), j)
                  for j in range(n_pred) if j not in selected]
        score, j = max(scores, key=lambda t: (t[0], names[t[1]]))
        if not score > current:
            break
        f, p = _partial_f(_rss(X, y, selected), _rss(X, y, selected + [j]), n,
                          len(selected) + 1)
        selected.append(j)
        steps.append(("enter", names[j], f, p))
        current = score
    return selected, steps


STEPWISE_CRITERIA = {"p": _forward_p, "adj_r2": _forward_adj_r2}


def stepwise_regression(X, y, *, names=None, criterion="p", p_enter=0.05, p_remove=0.10,
                        remove=True):
    """Stepwise multiple regression of ``y`` on the columns of ``X`` (with intercept).

    Parameters
    ----------
    X : array-like of shape (n_samples, n_predictors)
        Predictors, e.g. per-category PSI of each layer (``psi.T``).
    y : array-like of shape (n_samples,)
        Response, e.g. per-category accuracy.
    names : sequence of str, optional
        Predictor names (default ``"x0"``, ``"x1"``, ...).
    criterion : {"p", "adj_r2"}, default="p"
        "p": the classical (SPSS) procedure: at each step enter the predictor
        with the smallest partial-F p-value if below ``p_enter``; then, if
        ``remove``, drop the selected predictor with the largest p-value if
        above ``p_remove``. "adj_r2": the authors' code (forward only): add the
        predictor that raises adjusted R² most while it rises above 0.
    p_enter, p_remove : float, default=0.05, 0.10
        Thresholds for ``criterion="p"``; ``p_remove >= p_enter`` is required so
        that the procedure cannot cycle.
    remove : bool, default=True
        Allow removal steps (``criterion="p"`` only).

    Returns
    -------
    StepwiseResult
        Selected predictors in order of entry, and the final model's overall
        ``F`` with ``df1 = k``, ``df2 = n - k - 1``, its p-value, R² and adjusted
        R² ``1 - (1 - R²)(n - 1)/(n - k - 1)``. F, R² and adjusted R² do not
        depend on z-scoring the variables (the authors z-scored them).

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> X = rng.normal(size=(60, 3))
    >>> y = 2 * X[:, 1] + rng.normal(size=60)
    >>> res = stepwise_regression(X, y, names=["conv1", "conv2", "conv3"])
    >>> res.selected, res.df1, res.df2, round(res.adj_r2, 3)
    (('conv2',), 1, 58, 0.776)
    """
    X = check_array(X, name="X", ndim=2)
    y = check_array(y, name="y", ndim=1)
    check_consistent_length(X, y, names=["X", "y"])
    n, n_pred = X.shape
    if n < 3:
        raise InputError(f"Stepwise regression needs at least 3 observations; got {n}.")
    names = [f"x{j}" for j in range(n_pred)] if names is None else [str(s) for s in names]
    if len(names) != n_pred:
        raise InputError(f"names has {len(names)} entries but X has {n_pred} columns.")
    check_choice(criterion, STEPWISE_CRITERIA, name="criterion")
    check_scalar(p_enter, name="p_enter", min_val=0, max_val=1, include_min=False)
    check_scalar(p_remove, name="p_remove", min_val=p_enter, max_val=1)
    # Centring removes the intercept column from every fit (same RSS).
    Xc, yc = X - X.mean(axis=0), y - y.mean()
    if not np.any(yc):
        raise InputError("y is the same for every sample; a regression on it is undefined.")
    selected, steps = STEPWISE_CRITERIA[criterion](Xc, yc, names, p_enter, p_remove, remove)
    k = len(selected)
    tss = float(yc @ yc)
    rss = _rss(Xc, yc, selected)
    df2 = n - k - 1
    coef = (np.linalg.lstsq(Xc[:, selected], yc, rcond=None)[0] if k
            else np.zeros(0))
    intercept = float(y.mean() - X.mean(axis=0)[selected] @ coef)
    r2 = 1.0 - rss / tss if tss > 0 else np.nan
    if k and df2 > 0:
        F = ((tss - rss) / k) / (rss / df2)
        pvalue = float(stats.f.sf(F, k, df2))
    else:
        F = pvalue = np.nan
    adj = 1.0 - (1.0 - r2) * (n - 1) / df2 if df2 > 0 else np.nan
    return StepwiseResult(tuple(names[j] for j in selected), float(F), k, df2, pvalue,
                          float(r2), float(adj), intercept, coef, tuple(steps), n)


def is_fc_layer(name):
    """Default stage rule: a layer whose name starts with "fc" is fully connected.

    >>> is_fc_layer("fc2_relu"), is_fc_layer("conv5_relu")
    (True, False)
    """
    return str(name).lower().startswith("fc")


def stepwise_by_stage(psi, accuracy, layer_names, *, is_fc=is_fc_layer, **kwargs):
    """Run :func:`stepwise_regression` separately for conv and FC layers (the paper).

    Parameters
    ----------
    psi : array-like of shape (n_layers, n_categories)
    accuracy : array-like of shape (n_categories,)
    layer_names : sequence of str, length n_layers
    is_fc : callable, default=:func:`is_fc_layer`
        ``is_fc(name) -> bool`` decides a layer's stage.
    **kwargs
        Options of :func:`stepwise_regression`.

    Returns
    -------
    dict
        ``{"conv": StepwiseResult, "fc": StepwiseResult}``, a stage left out when
        it has no layers.

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> psi = rng.random((4, 50))
    >>> acc = psi[3] + 0.1 * rng.normal(size=50)
    >>> res = stepwise_by_stage(psi, acc, ["conv1", "conv2", "fc1", "fc2"])
    >>> res["fc"].selected
    ('fc2',)
    """
    psi = _layer_matrix(psi)
    layer_names = [str(s) for s in layer_names]
    if len(layer_names) != psi.shape[0]:
        raise InputError(f"layer_names has {len(layer_names)} entries but psi has "
                         f"{psi.shape[0]} layers (rows).")
    fc = np.array([bool(is_fc(s)) for s in layer_names], dtype=bool)
    out = {}
    for stage, mask in (("conv", ~fc), ("fc", fc)):
        if mask.any():
            out[stage] = stepwise_regression(psi[mask].T, accuracy,
                                             names=[s for s, m in zip(layer_names, mask) if m],
                                             **kwargs)
    return out


def fdr_bh(pvalues):
    """Benjamini-Hochberg adjusted p-values (q-values), vectorised.

    ``q_(i) = min_{k >= i} min(1, m p_(k) / k)`` over the ``m`` finite p-values
    sorted increasingly; rejecting ``q <= alpha`` controls the false discovery
    rate at ``alpha`` (Benjamini & Hochberg, 1995).

    Parameters
    ----------
    pvalues : array-like, any shape
        Values in [0, 1]; NaN entries are left out (and stay NaN).

    Returns
    -------
    ndarray of float64, the shape of ``pvalues``

    Examples
    --------
    >>> fdr_bh([0.01, 0.04, 0.03, 0.5]).round(4).tolist()
    [0.04, 0.0533, 0.0533, 0.5]
    """
    p = np.asarray(pvalues, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    flat_out = out.reshape(-1)
    flat = p.reshape(-1)
    keep = ~np.isnan(flat)
    q = flat[keep]
    if q.size and (q.min() < 0 or q.max() > 1):
        raise InputError(f"p-values must lie in [0, 1]; got values from {q.min()} to "
                         f"{q.max()}.")
    m = q.size
    order = np.argsort(q, kind="stable")
    scaled = q[order] * m / np.arange(1, m + 1)
    # Step-up: each sorted q is the smallest scaled value at or after it.
    adjusted = np.minimum.accumulate(scaled[::-1])[::-1]
    np.minimum(adjusted, 1.0, out=adjusted)
    ranked = np.empty(m)
    ranked[order] = adjusted
    flat_out[keep] = ranked
    return out
