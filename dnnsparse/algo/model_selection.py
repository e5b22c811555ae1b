"""Cross-validation splits and permutations shared by encoding and decoding.

The scores computed on them (Pearson r, R², per-class accuracy) are in
:mod:`dnnsparse.algo.metrics`.

Everything random takes a ``seed`` (None, an int or a :class:`numpy.random.Generator`,
see :func:`dnnsparse.utils.validation.check_random_state`) and is bit-for-bit repeatable
with it.  Splits follow scikit-learn's splitters so that a result can be checked against
scikit-learn on the same folds:

============================  ==================================================
``cv`` given                  splitter used
============================  ==================================================
int k, no groups              ``KFold(k, shuffle=shuffle, random_state=<seed>)``
int k, no groups, classifier  ``StratifiedKFold(k, shuffle=..., random_state=...)``
int k, groups                 ``GroupKFold(k)`` (no group is split; deterministic)
int k, groups, classifier     ``StratifiedGroupKFold(k)``
``"loo"``                     ``LeaveOneOut()``, or ``LeaveOneGroupOut()`` with groups
splitter object               its ``split(X, y, groups)``
list of (train, test) pairs   used as given
============================  ==================================================
"""
import numbers

import numpy as np
from sklearn.model_selection import (GroupKFold, KFold, LeaveOneGroupOut, LeaveOneOut,
                                     StratifiedGroupKFold, StratifiedKFold)

from ..errors import InputError
from ..utils.validation import check_consistent_length, check_random_state, check_scalar

__all__ = [
    "make_splits",
    "check_resampling",
    "check_groups_not_split",
    "fold_ids",
    "permutation_indices",
    "PermutationTest",
]


def _int_seed(rng):
    """Draw an int seed for scikit-learn splitters from a Generator (repeatable)."""
    return int(rng.integers(np.iinfo(np.int32).max))


def make_splits(cv=5, *, n_samples, groups=None, y=None, classifier=False, shuffle=True,
                seed=None):
    """Turn a CV specification into a list of ``(train, test)`` index arrays.

    Parameters
    ----------
    cv : int, "loo", splitter or iterable of (train, test), default=5
        See the module docstring for the splitter each choice gives.
    n_samples : int
    groups : array-like of shape (n_samples,), optional
        Group labels (e.g. scanning run); no group is split between train and test.
    y : array-like of shape (n_samples,), optional
        Class labels, needed for stratified splits (``classifier=True``).
    classifier : bool, default=False
        Stratify integer ``cv`` by ``y``.
    shuffle : bool, default=True
        Shuffle before k-fold splitting (ungrouped integer ``cv`` only).
    seed : None, int or numpy.random.Generator

    Returns
    -------
    list of (ndarray, ndarray)
        Sorted integer train and test indices for each fold.

    Examples
    --------
    >>> [len(te) for _, te in make_splits(3, n_samples=10, seed=0)]
    [4, 3, 3]
    """
    if groups is not None:
        groups = np.asarray(groups)
        if groups.shape != (n_samples,):
            raise InputError(f"groups must have one label per sample ({n_samples}); got "
                             f"shape {groups.shape}.")
    if classifier and y is None:
        raise InputError("stratified splitting needs the class labels y.")
    dummy = np.zeros((n_samples, 1))
    if isinstance(cv, str):
        if cv != "loo":
            raise InputError(f"Unknown cv={cv!r}; give an int, 'loo', a scikit-learn "
                             f"splitter or a list of (train, test) pairs.")
        splitter = LeaveOneGroupOut() if groups is not None else LeaveOneOut()
        splits = splitter.split(dummy, y, groups)
    elif isinstance(cv, numbers.Integral) and not isinstance(cv, bool):
        if cv < 2:
            raise InputError(f"cv={cv} folds; need at least 2.")
        if groups is not None:
            n_groups = len(np.unique(groups))
            if n_groups < cv:
                raise InputError(f"cv={cv} grouped folds need at least {cv} groups; "
                                 f"got {n_groups}.")
            splitter = StratifiedGroupKFold(cv) if classifier else GroupKFold(cv)
        else:
            if cv > n_samples:
                raise InputError(f"cv={cv} folds but only {n_samples} samples.")
            kwargs = dict(shuffle=True, random_state=_int_seed(check_random_state(seed))) \
                if shuffle else {}
            splitter = (StratifiedKFold if classifier else KFold)(cv, **kwargs)
        splits = splitter.split(dummy, y, groups)
    elif hasattr(cv, "split"):
        splits = cv.split(dummy, y, groups)
    else:
        splits = cv
    try:
        out = [(np.sort(np.asarray(tr, dtype=np.intp)), np.sort(np.asarray(te, dtype=np.intp)))
               for tr, te in splits]
    except (TypeError, ValueError) as exc:
        raise InputError(f"cv must be an int, 'loo', a splitter or (train, test) pairs: "
                         f"{exc}") from None
    if not out:
        raise InputError("cv gave no folds.")
    for i, (tr, te) in enumerate(out):
        if len(tr) == 0 or len(te) == 0:
            raise InputError(f"fold {i} has an empty train or test set; use fewer folds.")
        if tr.min() < 0 or te.min() < 0 or max(tr.max(), te.max()) >= n_samples:
            raise InputError(f"fold {i} has indices outside 0..{n_samples - 1}.")
        if np.intersect1d(tr, te).size:
            raise InputError(f"fold {i} uses the same sample(s) for training and testing.")
    if groups is not None:
        check_groups_not_split(out, groups)
    return out


def check_groups_not_split(splits, groups):
    """Raise :class:`InputError` if any group is in both the train and test set of a fold."""
    groups = np.asarray(groups)
    for i, (tr, te) in enumerate(splits):
        both = np.intersect1d(groups[tr], groups[te])
        if both.size:
            raise InputError(f"fold {i} splits group(s) {both[:5].tolist()} between train "
                             f"and test; use a grouped splitter.")


def fold_ids(splits, n_samples):
    """Fold number of each sample's test set; requires that every sample is tested once.

    Held-out predictions are concatenated over folds, which needs the test sets to
    partition the samples (as scikit-learn's ``cross_val_predict`` does).

    >>> fold_ids([([2, 3], [0, 1]), ([0, 1], [2, 3])], 4).tolist()
    [0, 0, 1, 1]
    """
    ids = np.full(n_samples, -1, dtype=np.intp)
    for i, (_, te) in enumerate(splits):
        if np.any(ids[te] >= 0):
            raise InputError("the test sets overlap; held-out predictions need each "
                             "sample tested exactly once (use k-fold or leave-one-out).")
        ids[te] = i
    if np.any(ids < 0):
        raise InputError(f"{int(np.sum(ids < 0))} sample(s) are never tested; held-out "
                         f"predictions need each sample tested exactly once.")
    return ids


def check_resampling(X, *, groups=None, n_perm=0, seed=None):
    """Checked groups, permutation count and generator of a cross-validated fit.

    The inputs that :func:`~dnnsparse.algo.encoding.encode` and
    :func:`~dnnsparse.algo.decoding.decode` pass on to :func:`make_splits` and
    :func:`permutation_indices`.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
    groups : array-like of shape (n_samples,), optional
    n_perm : int, default=0
        Number of permutations (>= 0).
    seed : None, int or numpy.random.Generator

    Returns
    -------
    groups : ndarray of shape (n_samples,) or None
    n_perm : int
    rng : numpy.random.Generator
        One generator for the folds and then the permutations, so an int seed
        repeats both.

    Examples
    --------
    >>> groups, n_perm, rng = check_resampling(np.zeros((4, 2)), groups=[0, 0, 1, 1],
    ...                                        n_perm=10, seed=0)
    >>> groups.tolist(), n_perm
    ([0, 0, 1, 1], 10)
    """
    n_perm = check_scalar(n_perm, name="n_perm", kind=numbers.Integral, min_val=0)
    if groups is not None:
        groups = np.asarray(groups)
        check_consistent_length(X, groups, names=["X", "groups"])
    return groups, n_perm, check_random_state(seed)


def permutation_indices(n_samples, n_perm, *, groups=None, seed=None):
    """Row permutations for a permutation test, within groups when given.

    Parameters
    ----------
    n_samples, n_perm : int
    groups : array-like of shape (n_samples,), optional
        Rows are only exchanged with rows of the same group (e.g. within a run).
    seed : None, int or numpy.random.Generator

    Returns
    -------
    ndarray of shape (n_perm, n_samples)
        Row ``i`` holds a permutation ``perm``; ``Y[perm]`` is the permuted target.
    """
    rng = check_random_state(seed)
    out = np.empty((n_perm, n_samples), dtype=np.intp)
    if groups is None:
        for i in range(n_perm):
            out[i] = rng.permutation(n_samples)
        return out
    groups = np.asarray(groups)
    slots = np.argsort(groups, kind="stable")        # positions, grouped by label
    for i in range(n_perm):
        # same group order and sizes as `slots`, random order within each group
        shuffled = np.lexsort((rng.random(n_samples), groups))
        out[i, slots] = shuffled
    return out


class PermutationTest:
    """Count null scores at least as large as the observed ones, one permutation at a time.

    ``p = (1 + #{null >= observed}) / (1 + n_perm)`` per target; the max-statistic
    version compares each observed score with the maximum over targets of each null
    map, which controls the family-wise error rate across targets.  Keeps only counts
    and the per-permutation maxima, so memory does not grow with ``n_perm x n_targets``.

    Examples
    --------
    >>> test = PermutationTest(np.array([0.9, 0.1]))
    >>> test.update(np.array([0.2, 0.3])); test.update(np.array([0.1, 0.05]))
    >>> test.pvalues()[0].tolist()
    [0.3333333333333333, 0.6666666666666666]
    """

    def __init__(self, observed):
        self.observed = np.asarray(observed, dtype=np.float64)
        self.counts = np.zeros(self.observed.shape, dtype=np.int64)
        self.null_max = []

    def update(self, null):
        null = np.asarray(null, dtype=np.float64)
        with np.errstate(invalid="ignore"):
            self.counts += null >= self.observed
        finite = null[np.isfinite(null)]
        self.null_max.append(finite.max() if finite.size else np.nan)

    @property
    def n_perm(self):
        return len(self.null_max)

    def pvalues(self):
        """Return ``(p, p_fwer)``, each of shape like ``observed`` (NaN where observed is)."""
        n = self.n_perm
        p = (1.0 + self.counts) / (1.0 + n)
        null_max = np.asarray(self.null_max, dtype=np.float64)
        with np.errstate(invalid="ignore"):
            exceed = (null_max[:, None] >= self.observed.reshape(1, -1)).sum(0)
        p_fwer = ((1.0 + exceed) / (1.0 + n)).reshape(self.observed.shape)
        bad = ~np.isfinite(self.observed)
        p[bad] = np.nan
        p_fwer[bad] = np.nan
        return p, p_fwer
