"""Single-subject noise ceiling from split halves of the runs (Spearman-Brown).

With one subject there is no leave-one-subject-out ceiling; the reliability of
its RDM is estimated from its runs instead. The runs are split into two halves
A and B (every balanced split, or ``max_splits`` seeded random ones); each half's
patterns are averaged within items (stimuli or categories), giving RDMs ``d_A``
and ``d_B``; their similarity is averaged over splits::

    r_half      = mean over splits of compare(d_A, d_B)        (the -method)
    reliability = 2 r_half / (1 + r_half)                      (Spearman-Brown)
    ceiling     = sqrt(reliability)                            (NaN if reliability < 0)

The Spearman-Brown prophecy formula ``rho_k = k r / (1 + (k - 1) r)`` with k = 2
predicts the reliability of the RDM of all runs (twice the data of a half) from
the agreement of the halves. If the measured RDM is the true one plus
independent noise, its reliability is ``var(true) / var(measured)`` and the
true RDM -- a perfect model -- correlates with it by ``sqrt(reliability)``:
that is the ceiling on a model's score. (Brain-Score-style analyses divide by
the reliability itself; both are reported.) For rank-based methods the formula
is the usual approximation.

Examples
--------
>>> rng = np.random.default_rng(0)
>>> true = rng.standard_normal((6, 40))
>>> runs = np.repeat(np.arange(4), 6)
>>> items = np.tile(np.arange(6), 4)
>>> X = true[items] + 0.1 * rng.standard_normal((24, 40))
>>> res = split_half_ceiling(X, items, runs)
>>> res.n_splits, res.ceiling > 0.9
(3, True)
"""
import itertools
import math
from dataclasses import dataclass

import numpy as np

from ...errors import InputError
from ...utils.validation import check_array, check_random_state, check_scalar
from ._rdm import check_comparison, compare_rdms, compute_rdm

__all__ = ["SplitHalfCeiling", "spearman_brown", "split_half_ceiling"]


@dataclass(frozen=True)
class SplitHalfCeiling:
    """Outcome of :func:`split_half_ceiling`.

    Attributes
    ----------
    split_half_r : float
        Mean similarity of the two halves' RDMs.
    reliability : float
        Spearman-Brown ``2 r / (1 + r)``.
    ceiling : float
        ``sqrt(reliability)``; NaN when the reliability is negative.
    n_splits : int
    per_split : ndarray (n_splits,)
    method : str
    """
    split_half_r: float
    reliability: float
    ceiling: float
    n_splits: int
    per_split: np.ndarray
    method: str


def spearman_brown(r, k=2.0):
    """Spearman-Brown prophecy ``k r / (1 + (k - 1) r)`` (reliability of k times the data).

    >>> spearman_brown(0.5)
    0.6666666666666666
    """
    r = np.asarray(r, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = k * r / (1.0 + (k - 1.0) * r)
    return float(out) if out.ndim == 0 else out


def _splits(n_groups, max_splits, rng):
    """Index sets of half A (size n_groups // 2), each split counted once."""
    size = n_groups // 2
    total = math.comb(n_groups, size) // (2 if 2 * size == n_groups else 1)
    if total <= max_splits:
        if 2 * size == n_groups:           # {A, B} and {B, A} are one split: fix group 0 in A
            return [(0,) + c for c in itertools.combinations(range(1, n_groups), size - 1)]
        return list(itertools.combinations(range(n_groups), size))
    return [tuple(sorted(rng.permutation(n_groups)[:size])) for _ in range(max_splits)]


def split_half_ceiling(patterns, items, groups, *, metric="correlation", method="pearson",
                       max_splits=1000, seed=None):
    """Split-half noise ceiling of one subject's RDM over its runs.

    Parameters
    ----------
    patterns : array, shape (n_rows, n_features)
        One pattern per trial (row), already z-scored if wanted.
    items : array, shape (n_rows,)
        The item (stimulus or category) of every row; the RDM's rows are the
        sorted unique items, as :func:`~dnnsparse.algo.rsa.compute_rdm` with labels.
    groups : array, shape (n_rows,)
        The run of every row; at least 2 runs, each holding every item.
    metric : str
        RDM distance.
    method : str
        RDM comparison (:func:`~dnnsparse.algo.rsa.compare_rdms`).
    max_splits : int, default=1000
        More balanced splits than this: that many random ones (seeded, may repeat).
    seed : None, int or Generator

    Returns
    -------
    SplitHalfCeiling
    """
    method = check_comparison(method)
    check_scalar(max_splits, name="max_splits", kind=int, min_val=1)
    X = check_array(patterns, name="patterns", ndim=2).astype(np.float64, copy=False)
    items, groups = np.asarray(items), np.asarray(groups)
    if items.shape != (len(X),) or groups.shape != (len(X),):
        raise InputError(f"items and groups need one value per pattern ({len(X)}); got "
                         f"{items.shape} and {groups.shape}.")
    unique_items, item_code = np.unique(items, return_inverse=True)
    unique_groups, group_code = np.unique(groups, return_inverse=True)
    if len(unique_groups) < 2:
        raise InputError(f"a split-half ceiling needs at least 2 runs (groups); got "
                         f"{len(unique_groups)}.")
    # Per run and item: sum of patterns and count (one pass; halves add them up).
    n_g, n_i = len(unique_groups), len(unique_items)
    sums = np.zeros((n_g, n_i, X.shape[1]))
    np.add.at(sums, (group_code, item_code), X)
    counts = np.zeros((n_g, n_i))
    np.add.at(counts, (group_code, item_code), 1.0)
    missing = np.argwhere(counts == 0)
    if len(missing):
        g, i = missing[0]
        raise InputError(f"run {unique_groups[g]} has no pattern of item "
                         f"{unique_items[i]}; every run must hold every item for a "
                         "split-half ceiling.")
    rng = check_random_state(seed)
    scores = []
    for half in _splits(n_g, max_splits, rng):
        in_a = np.zeros(n_g, dtype=bool)
        in_a[list(half)] = True
        rdm_a = compute_rdm(sums[in_a].sum(0) / counts[in_a].sum(0)[:, None], metric=metric)
        rdm_b = compute_rdm(sums[~in_a].sum(0) / counts[~in_a].sum(0)[:, None], metric=metric)
        with np.errstate(invalid="ignore", divide="ignore"):
            scores.append(compare_rdms(rdm_a, rdm_b, method=method))
    scores = np.asarray(scores, dtype=np.float64)
    r = float(np.mean(scores))
    reliability = spearman_brown(r)
    ceiling = float(np.sqrt(reliability)) if reliability >= 0 else float("nan")
    return SplitHalfCeiling(r, reliability, ceiling, len(scores), scores, method)
