"""In-sample correlation maps: the best-correlated unit of a layer for every target.

:func:`max_correlation` is DNNBrain's ``db_corr``: for every target (voxel, vertex,
ROI, behavioural column) the largest Pearson r over the units of a layer, and which
unit gives it. Nothing is held out -- the unit is chosen on the same samples the r
is computed on -- so the r is biased upward (more so the more units a layer has):
it is a descriptive map, not evidence of encoding (use cross-validated encoding for
that).

The computation is one standardised matrix product per chunk of targets, in
float64, never a loop over units or targets::

    r_chunk = Zx.T @ Zy_chunk            # (n_units, chunk), Zx, Zy unit-norm columns

Examples
--------
>>> rng = np.random.default_rng(0)
>>> X = rng.standard_normal((50, 6))
>>> Y = np.column_stack([X[:, 4] + 0.1 * rng.standard_normal(50), -X[:, 1]])
>>> res = max_correlation(X, Y)
>>> res.best_unit.tolist()
[4, 3]
>>> res = max_correlation(X, Y, absolute=True)
>>> res.best_unit.tolist(), bool(res.r[1] < -0.99)
([4, 1], True)
"""
import logging
from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from ..utils.validation import check_array

__all__ = ["CorrelationMap", "max_correlation", "standardize_columns"]

log = logging.getLogger(__name__)

#: float64 elements of a chunk's correlation block kept in memory at a time.
_BLOCK_ELEMENTS = 1 << 24


def standardize_columns(X):
    """Columns centred and scaled to unit Euclidean norm, in float64.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_columns)

    Returns
    -------
    Z : ndarray of shape (n_samples, n_columns)
        ``Z[:, j] @ Z[:, k]`` is the Pearson r of columns j and k; constant
        columns are all zero.
    constant : ndarray of bool, shape (n_columns,)

    Examples
    --------
    >>> Z, const = standardize_columns([[1., 2.], [3., 2.], [5., 2.]])
    >>> round(float(Z[:, 0] @ Z[:, 0]), 12), const.tolist()
    (1.0, [False, True])
    """
    Z = np.array(X, dtype=np.float64)
    if Z.ndim != 2:
        raise InputError(f"expected a 2-D array (n_samples, n_columns); got shape {Z.shape}.")
    scale = np.abs(Z).max(axis=0) if len(Z) else np.zeros(Z.shape[1])
    Z -= Z.mean(axis=0)
    norm = np.sqrt(np.einsum("ij,ij->j", Z, Z))
    # constant: the spread is rounding error of the column's own magnitude
    constant = norm <= 1e-13 * scale * np.sqrt(max(len(Z), 1))
    norm[constant] = 1.0
    Z /= norm
    Z[:, constant] = 0.0
    return Z, constant


@dataclass
class CorrelationMap:
    """Best unit per target, chosen and scored on the same samples (in-sample).

    Attributes
    ----------
    r : ndarray of shape (n_targets,)
        Pearson r of the best unit (NaN for constant targets, or when every unit
        is constant).
    best_unit : ndarray of int, shape (n_targets,)
        0-based column of X giving ``r`` (-1 where ``r`` is NaN).
    n_units : int
        Units searched (constant units are never chosen).
    absolute : bool
        Whether units were ranked by ``|r|`` (``r`` keeps its sign).
    insample : bool
        Always True: a reminder that nothing was held out.
    """

    r: np.ndarray
    best_unit: np.ndarray
    n_units: int
    absolute: bool = False
    insample: bool = True


def max_correlation(X, Y, *, absolute=False, chunk=None):
    """For every column of Y, the largest Pearson r over the columns of X (in-sample).

    Parameters
    ----------
    X : array-like of shape (n_samples, n_units)
        Units of a layer.
    Y : array-like of shape (n_samples, n_targets)
        Targets (voxels, ROIs, columns); must be finite.
    absolute : bool, default=False
        Rank units by ``|r|`` (DNNBrain takes the signed maximum; anti-correlated
        units then lose). The reported r keeps its sign.
    chunk : int, optional
        Targets per matrix product (default: bounded so a chunk's
        ``n_units x chunk`` block holds about 16M float64 values).

    Returns
    -------
    CorrelationMap
    """
    X = check_array(X, name="X", ndim=2, dtype="float")
    Y = check_array(Y, name="Y", ndim=2, dtype="float")
    if len(X) != len(Y):
        raise InputError(f"X has {len(X)} samples but Y has {len(Y)}; they must match.")
    if len(X) < 3:
        raise InputError(f"a correlation needs at least 3 samples; got {len(X)}.")
    if not (np.isfinite(X).all() and np.isfinite(Y).all()):
        raise InputError("X and Y must be finite to correlate them.")
    Zx, const_x = standardize_columns(X)
    n_units, n_targets = X.shape[1], Y.shape[1]
    if chunk is None:
        chunk = max(1, _BLOCK_ELEMENTS // max(n_units, 1))
    elif chunk < 1:
        raise InputError(f"chunk {chunk}: give at least 1 target per chunk.")
    r = np.full(n_targets, np.nan)
    best = np.full(n_targets, -1, dtype=np.int64)
    if const_x.all():
        log.warning("every unit is constant; no correlation can be computed.")
        return CorrelationMap(r, best, n_units, absolute)
    for start in range(0, n_targets, chunk):
        cols = slice(start, start + chunk)
        Zy, const_y = standardize_columns(Y[:, cols])
        R = Zx.T @ Zy                                   # (n_units, chunk) Pearson r
        key = np.abs(R) if absolute else R              # no copy: R is read only at idx
        if const_x.any():
            key[const_x] = -np.inf                      # constant units are never best
        idx = np.argmax(key, axis=0)
        val = np.clip(R[idx, np.arange(R.shape[1])], -1.0, 1.0)
        idx[const_y], val[const_y] = -1, np.nan
        r[cols], best[cols] = val, idx
    return CorrelationMap(r, best, n_units, absolute)
