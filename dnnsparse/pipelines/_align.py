"""Line up a stimulus table with the rows of an activation file, by stimulus ID.

An ``.act.h5`` file stores the IDs of its rows; a ``.stim.csv`` table its own. A table
given with its rows in another order (sorted by category, reversed, shuffled) would
silently pair every activation with the wrong label, so commands never match rows by
position when both sides carry IDs: the table is reordered to the file's rows, or
refused when the two hold different stimuli, naming the first row that differs.

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

__all__ = ["activation_order", "align_stimuli"]

log = logging.getLogger(__name__)


def align_stimuli(stim, act, *, stim_path="the stimulus table", act_path=None):
    """``stim`` with its rows in the order of ``act``'s rows.

    Parameters
    ----------
    stim : Stimulus
        The table, e.g. the one the activations were extracted from.
    act : Activation
        Its rows' stimulus IDs decide the order (when the file stores IDs).
    stim_path, act_path : str, optional
        Names of the two inputs in messages.

    Returns
    -------
    Stimulus
        ``stim`` itself when the rows already match, else a reordered copy.

    Raises
    ------
    InputError
        When the numbers of rows differ, or both sides carry IDs and hold different
        stimuli (naming the first differing row), or the table repeats an ID.
    """
    act_path = act_path or getattr(act, "path", None) or "the activation file"
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
