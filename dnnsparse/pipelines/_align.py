"""Line up a stimulus table with the rows of an activation file, by stimulus ID.

An ``.act.h5`` file stores the IDs of its rows; a ``.stim.csv`` table its own. A table
given with its rows in another order (sorted by category, reversed, shuffled) would
silently pair every activation with the wrong label, so commands never match rows by
position when both sides carry IDs: the table is reordered to the file's rows, or
refused when the two hold different stimuli, naming the first row that differs.

Audio activation files have one row per 0.96 s VGGish example: their IDs are
``ID#k``, the k-th example of the table's row ``ID`` (db_act on ``type=audio``).
Such a file is matched to its table example by example (:func:`example_rows`): every
row of the table must have examples, and every example a row. Commands then either
*map* each example to its row (:func:`align_stimuli` with ``examples=True``: the
example takes its row's label and other columns, so per-category measures count
examples; db_psi, and db_rsa -cate, where a category's pattern is the mean of its
examples) or *aggregate* the examples of each row into one row, their mean
(:func:`activation_rows`; db_decode, and db_rsa without -cate: their decoding targets,
brain data and RDM items follow the table's rows, and examples of one sound, being
alike, would otherwise fall on both sides of a cross-validation split).

Examples
--------
>>> import numpy as np
>>> from dnnsparse.base import Activation, Stimulus
>>> act = Activation({"conv": np.zeros((3, 2))}, stim_ids=["a", "b", "c"])
>>> stim = Stimulus(np.array(["c", "a", "b"]), columns={"label": np.array([2, 0, 1])})
>>> align_stimuli(stim, act).labels.tolist()
[0, 1, 2]
"""
import logging

import numpy as np

from ..errors import InputError

__all__ = ["activation_order", "activation_rows", "align_stimuli", "example_rows"]

log = logging.getLogger(__name__)


def align_stimuli(stim, act, *, stim_path="the stimulus table", act_path=None,
                  examples=False):
    """``stim`` with its rows in the order of ``act``'s rows.

    Parameters
    ----------
    stim : Stimulus
        The table, e.g. the one the activations were extracted from.
    act : Activation
        Its rows' stimulus IDs decide the order (when the file stores IDs).
    stim_path, act_path : str, optional
        Names of the two inputs in messages.
    examples : bool, default=False
        Accept an activation file whose rows are examples ``ID#k`` of the table's rows
        (:func:`example_rows`): the result then has one row per example, with the
        example's ID and its row's columns. Without it such a file is refused.

    Returns
    -------
    Stimulus
        ``stim`` itself when the rows already match, else a reordered (or, with
        ``examples``, expanded) copy.

    Raises
    ------
    InputError
        When the numbers of rows differ, or both sides carry IDs and hold different
        stimuli (naming the first differing row), or the table repeats an ID.
    """
    act_path = act_path or getattr(act, "path", None) or "the activation file"
    if examples:
        rows = example_rows(act, stim.ids, stim_path=stim_path, act_path=act_path)
        if rows is not None:
            log.info("%s: %d examples of the %d rows of %s.", act_path, len(rows),
                     len(stim), stim_path)
            return _expanded(stim, rows, act.stim_ids)
    act_ids = _matched_ids(act, stim.ids, stim_path, act_path)
    if act_ids is None:
        return stim
    order = _reorder(np.asarray(stim.ids, dtype=str), act_ids)
    if order is None:
        _refuse(act_ids, stim.ids, act_path, stim_path)
    log.info("rows of %s reordered by stimulus ID to match %s.", stim_path, act_path)
    return stim[order]


def activation_order(act, stim_ids, *, stim_path="the stimulus table", act_path=None):
    """Indices putting ``act``'s rows in the order of ``stim_ids``, or None if they are.

    The other direction of :func:`align_stimuli`, for commands whose other inputs (brain
    responses, groups, outputs) follow the table's rows: ``X[order]`` lines an
    activation matrix up with the table. Same checks and messages.

    Examples
    --------
    >>> import numpy as np
    >>> from dnnsparse.base import Activation
    >>> act = Activation({"conv": np.zeros((3, 2))}, stim_ids=["a", "b", "c"])
    >>> activation_order(act, ["c", "a", "b"]).tolist()
    [2, 0, 1]
    """
    act_path = act_path or getattr(act, "path", None) or "the activation file"
    act_ids = _matched_ids(act, stim_ids, stim_path, act_path)
    if act_ids is None:
        return None
    order = _reorder(act_ids, np.asarray(stim_ids, dtype=str))
    if order is None:
        _refuse(act_ids, stim_ids, act_path, stim_path)
    log.info("rows of %s reordered by stimulus ID to match %s.", act_path, stim_path)
    return order


def example_rows(act, stim_ids, *, stim_path="the stimulus table", act_path=None):
    """The table row of each of ``act``'s rows when they are examples ``ID#k``, else None.

    An activation file made from a ``type=audio`` table has one row per 0.96 s example,
    with ID ``ID#k`` for the k-th example of the table's row ``ID``. The file is taken as
    such when its IDs are not the table's and every one ends in ``#`` and a positive
    integer.

    Parameters
    ----------
    act : Activation
    stim_ids : sequence of str
        The table's stimulus IDs, shape (n_stim,).
    stim_path, act_path : str, optional
        Names of the two inputs in messages.

    Returns
    -------
    ndarray of shape (act.n_stim,), int, or None
        ``rows[i]`` is the 0-based table row of example ``i``; None when ``act``'s rows
        are not examples (then :func:`align_stimuli` / :func:`activation_order` apply).

    Raises
    ------
    InputError
        An example of an ID the table does not hold (naming the first), a table row
        without examples, or a table repeating an ID.

    Examples
    --------
    >>> import numpy as np
    >>> from dnnsparse.base import Activation
    >>> act = Activation({"fc": np.zeros((3, 2))}, stim_ids=["b#1", "a#1", "a#2"])
    >>> example_rows(act, ["a", "b"]).tolist()
    [1, 0, 0]
    """
    if not getattr(act, "has_stim_ids", True):
        return None
    act_path = act_path or getattr(act, "path", None) or "the activation file"
    act_ids = np.asarray(act.stim_ids, dtype=str)
    table = np.asarray(stim_ids, dtype=str)
    if act_ids.size == 0 or np.isin(act_ids, table).all():
        return None
    base, sep, k = np.char.rpartition(act_ids, "#").T
    if not (sep == "#").all() or not all(v.isdigit() and int(v) > 0 for v in k):
        return None
    if len(np.unique(table)) != len(table):
        _, index, counts = np.unique(table, return_index=True, return_counts=True)
        first = int(index[counts > 1].min())
        raise InputError(f"{stim_path} repeats stimulus ID {str(table[first])!r} (row "
                         f"{first + 1}); the examples of {act_path} need one row per ID.")
    sorter = np.argsort(table, kind="stable")
    pos = np.minimum(np.searchsorted(table, base, sorter=sorter), len(table) - 1)
    rows = sorter[pos]
    unknown = np.flatnonzero(table[rows] != base)
    if unknown.size:
        i = int(unknown[0])
        raise InputError(f"{act_path}: row {i + 1} is example {str(act_ids[i])!r} of "
                         f"{str(base[i])!r}, which {stim_path} does not hold; give the "
                         "table the activations were made from.")
    missing = np.setdiff1d(np.arange(len(table)), rows)
    if missing.size:
        r = int(missing[0])
        raise InputError(f"{stim_path}: row {r + 1} ({str(table[r])!r}) has no examples in "
                         f"{act_path}; give the table the activations were made from.")
    return rows


def activation_rows(act, stim_ids, *, stim_path="the stimulus table", act_path=None):
    """A function putting ``act``'s rows on the table's rows, or None if they are.

    For commands needing one row per stimulus of the table: rows matched by ID are
    reordered (:func:`activation_order`); examples ``ID#k`` (:func:`example_rows`) are
    averaged within their row, in float64, cast back to the data's float type.

    Returns
    -------
    callable or None
        ``rows(X)``, ``X`` of shape (act.n_stim, ...) → shape (len(stim_ids), ...).

    Examples
    --------
    >>> import numpy as np
    >>> from dnnsparse.base import Activation
    >>> act = Activation({"fc": np.zeros((3, 1))}, stim_ids=["b#1", "a#1", "a#2"])
    >>> rows = activation_rows(act, ["a", "b"])
    >>> rows(np.array([[4.0], [1.0], [2.0]])).ravel().tolist()
    [1.5, 4.0]
    """
    rows = example_rows(act, stim_ids, stim_path=stim_path, act_path=act_path)
    if rows is not None:
        return lambda X: _row_means(X, rows)
    order = activation_order(act, stim_ids, stim_path=stim_path, act_path=act_path)
    return None if order is None else (lambda X: X[order])


def _row_means(X, rows):
    from ..utils.extmath import group_means

    X = np.asarray(X)
    means = group_means(X.reshape(len(X), -1), rows).means
    dtype = X.dtype if np.issubdtype(X.dtype, np.floating) else np.float64
    return means.reshape((-1,) + X.shape[1:]).astype(dtype, copy=False)


def _expanded(stim, rows, ids):
    """``stim`` with row ``rows[i]`` as row ``i``, IDs ``ids`` (the examples)."""
    from ..base.stimulus import Stimulus

    return Stimulus(np.asarray(ids, dtype=str), root=stim.root, type=stim.type,
                    columns={k: np.asarray(v)[rows] for k, v in stim.columns.items()},
                    header=dict(stim.header))


def _matched_ids(act, stim_ids, stim_path, act_path):
    """``act``'s stimulus IDs when they must be matched to ``stim_ids`` by ID, else None.

    None means nothing to do: the rows already agree, or the file stores no IDs (then
    rows are matched by position, with a warning). Different row counts are refused.
    """
    if act.n_stim != len(stim_ids):
        raise InputError(f"{act_path} has {act.n_stim} stimuli but {stim_path} has "
                         f"{len(stim_ids)}; give the table the activations were made from.")
    if not getattr(act, "has_stim_ids", True):
        log.warning("%s stores no stimulus IDs; its rows are matched to %s by position.",
                    act_path, stim_path)
        return None
    act_ids = np.asarray(act.stim_ids, dtype=str)
    return None if np.array_equal(act_ids, np.asarray(stim_ids, dtype=str)) else act_ids


def _refuse(act_ids, stim_ids, act_path, stim_path):
    stim_ids = np.asarray(stim_ids, dtype=str)
    row = int(np.flatnonzero(act_ids != stim_ids)[0])
    raise InputError(f"{act_path} and {stim_path} hold different stimuli: row {row + 1} is "
                     f"{str(act_ids[row])!r} in the activations but "
                     f"{str(stim_ids[row])!r} in the table; give the table the activations "
                     "were made from.")


def _reorder(ids, target):
    """Indices putting ``ids`` in ``target``'s order, or None when the IDs differ."""
    if len(np.unique(ids)) != len(ids) or len(np.unique(target)) != len(target):
        return None
    sorter = np.argsort(ids, kind="stable")
    pos = np.searchsorted(ids, target, sorter=sorter)
    pos = np.minimum(pos, len(ids) - 1)
    order = sorter[pos]
    return order if np.array_equal(ids[order], target) else None
