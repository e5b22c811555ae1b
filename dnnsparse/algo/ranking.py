"""Ranking stimuli by a response: the top-N (or bottom-N) of many targets at once.

- :func:`rank_order` -- the full ranking of one or more columns of values, as a stable
  argsort gives it (the reference).
- :class:`RunningTopN` -- the same first ``n`` ranks kept while values arrive in
  chunks of stimuli, so memory holds ``n`` candidates per target, never every value.

Ties are broken by stimulus order (the earlier stimulus ranks first), in both
directions; NaN ranks after every number (as NumPy sorts it). The running version
gives exactly ``rank_order(values)[:n]`` whatever the chunk sizes.

Examples
--------
>>> top = RunningTopN(2, n_targets=1)
>>> _ = top.update(np.array([[1.0], [3.0]]))
>>> _ = top.update(np.array([[3.0], [2.0]]))
>>> top.indices[:, 0].tolist(), top.values[:, 0].tolist()
([1, 2], [3.0, 3.0])
"""
import numbers

import numpy as np

from ..errors import InputError
from ..utils.validation import check_scalar

__all__ = ["RunningTopN", "rank_order"]


def _key(values, largest):
    # negation maps the largest first and keeps NaN a NaN (sorted last)
    return -values if largest else values


def rank_order(values, *, largest=True):
    """Stimulus indices of each column from best to worst rank.

    Parameters
    ----------
    values : array of shape (n_stim,) or (n_stim, n_targets)
    largest : bool, default=True
        True: the largest value first; False: the smallest first.

    Returns
    -------
    ndarray of int64, same shape as ``values``
        Column ``j`` lists the stimuli of target ``j``; ties keep stimulus order.

    >>> rank_order(np.array([2.0, 5.0, 2.0])).tolist()
    [1, 0, 2]
    """
    values = np.asarray(values, dtype=np.float64)
    return np.argsort(_key(values, largest), axis=0, kind="stable")


class RunningTopN:
    """The ``n`` best-ranked stimuli of each target, updated chunk by chunk.

    Parameters
    ----------
    n : int
        Ranks to keep (>= 1); fewer while fewer stimuli have been seen.
    n_targets : int
    largest : bool, default=True
        True: top-N (largest values); False: bottom-N (smallest values).

    Attributes
    ----------
    values : ndarray of shape (k, n_targets), float64
        The kept values in rank order, ``k = min(n, n_seen)``.
    indices : ndarray of shape (k, n_targets), int64
        Their stimulus indices (0-based, in the order the stimuli were given).
    n_seen : int
    """

    def __init__(self, n, *, n_targets, largest=True):
        self.n = int(check_scalar(n, name="n", kind=numbers.Integral, min_val=1))
        self.n_targets = int(check_scalar(n_targets, name="n_targets", kind=numbers.Integral,
                                          min_val=1))
        self.largest = bool(largest)
        self.values = np.empty((0, self.n_targets), dtype=np.float64)
        self.indices = np.empty((0, self.n_targets), dtype=np.int64)
        self.n_seen = 0

    def update(self, values, start=None):
        """Add a chunk of stimuli.

        Parameters
        ----------
        values : array of shape (n_chunk, n_targets)
            The targets' values of ``n_chunk`` stimuli.
        start : int, optional
            Index of the chunk's first stimulus; default: right after those seen.
            Chunks may come in any order (ties still go by stimulus index).
        """
        values = np.asarray(values, dtype=np.float64)
        if values.ndim != 2 or values.shape[1] != self.n_targets:
            raise InputError(f"a chunk of values must be (n_stimuli, {self.n_targets}); got "
                             f"shape {values.shape}.")
        start = self.n_seen if start is None else int(start)
        idx = np.broadcast_to(np.arange(start, start + len(values))[:, None], values.shape)
        all_values = np.concatenate([self.values, values])
        all_idx = np.concatenate([self.indices, idx])
        # rank by value, then by stimulus index: one sort of (n + n_chunk) rows per target
        order = np.lexsort((all_idx.T, _key(all_values, self.largest).T), axis=-1).T
        order = order[:self.n]
        self.values = np.take_along_axis(all_values, order, axis=0)
        self.indices = np.take_along_axis(all_idx, order, axis=0)
        self.n_seen += len(values)
        return self
