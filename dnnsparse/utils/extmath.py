"""Numerics shared by several layers of the package (NumPy only, no torch).

:func:`group_means` is the package's one implementation of "the mean of the rows
within each label": category means of activations (``algo.sparseness``,
``base.Activation.aggregate``) and label-averaged patterns (``algo.rsa``) all go
through :func:`group_sums`, so they agree bit for bit.

The arithmetic is fixed on purpose: each group's rows are added in float64, one
after another in row order, starting from 0 (a sparse one-hot matrix times the
rows: O(n_rows * n_features), any label order, no sort). Streaming callers add
the sums of consecutive blocks of rows, block after block.
"""
from typing import NamedTuple

import numpy as np

from ..errors import InputError
from .validation import check_consistent_length

__all__ = ["GroupMeans", "group_means", "group_sums"]


class GroupMeans(NamedTuple):
    """Result of :func:`group_means` (unpacks as a 3-tuple)."""

    means: np.ndarray   #: (n_groups, n_features) float64
    groups: np.ndarray  #: (n_groups,) sorted unique labels
    counts: np.ndarray  #: (n_groups,) rows per group


def group_sums(X, index, n_groups):
    """Sum the rows of ``X`` within groups, in float64 and in row order.

    Parameters
    ----------
    X : array-like of shape (n_rows, n_features)
        Any real dtype; converted to float64 (exactly) before adding.
    index : array-like of int, shape (n_rows,)
        Group of each row, in ``0 .. n_groups - 1`` (e.g. the ``inverse`` of
        :func:`numpy.unique`).
    n_groups : int

    Returns
    -------
    sums : ndarray of shape (n_groups, n_features), float64
        ``sums[g] = (((0 + X[i0]) + X[i1]) + ...)`` over the rows ``i0 < i1 < ...``
        of group ``g``: bit for bit ``np.add.at(zeros, index, X)``, but vectorised.

    Examples
    --------
    >>> group_sums([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], [1, 0, 1], 2).tolist()
    [[3.0, 4.0], [6.0, 8.0]]
    """
    # scipy.sparse is imported here, not at module level: base imports this module
    # and does not need scipy's import time otherwise.
    from scipy import sparse

    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise InputError(f"rows to sum by group must be 2-D (n_rows, n_features); got "
                         f"shape {X.shape}.")
    index = np.asarray(index)
    # One-hot (n_groups, n_rows) in CSR: each row lists its stimuli in increasing
    # order, and scipy's CSR x dense product adds 1.0 * X[i] to a zeroed output in
    # that order (the fixed arithmetic of the module docstring).
    onehot = sparse.csr_matrix((np.ones(index.size), (index, np.arange(index.size))),
                               shape=(n_groups, index.size))
    return np.asarray(onehot @ X)


def group_means(X, labels):
    """Mean of the rows of ``X`` within each label, accumulated in float64.

    Parameters
    ----------
    X : array-like of shape (n_rows, n_features)
    labels : array-like of shape (n_rows,)
        Group of each row (ints or strings), in any order; groups may differ in size.

    Returns
    -------
    GroupMeans
        ``(means, groups, counts)``: ``means[k]`` is the mean of the rows labelled
        ``groups[k]`` (:func:`group_sums` divided by ``counts[k]``); ``groups``
        are the sorted unique labels.

    Examples
    --------
    >>> means, groups, counts = group_means([[0.0], [2.0], [5.0]], ["b", "a", "b"])
    >>> means.ravel().tolist(), groups.tolist(), counts.tolist()
    ([2.0, 2.5], ['a', 'b'], [1, 2])
    """
    labels = np.asarray(labels)
    check_consistent_length(X, labels, names=["rows", "labels"])
    groups, index, counts = np.unique(labels, return_inverse=True, return_counts=True)
    return GroupMeans(group_sums(X, index, groups.size) / counts[:, None], groups, counts)
