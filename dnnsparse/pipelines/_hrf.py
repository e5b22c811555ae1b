"""HRF convolution of whole files: the library behind db_hrf.

The haemodynamic model lives in :mod:`dnnsparse.algo.hrf`; :func:`convolve_activation` turns an
activation with one row per stimulus presentation into one with a row per scan.
"""
import numbers
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..utils.progress import progress as progress_bar
from ..utils.validation import check_scalar

__all__ = ["convolve_activation", "events_timing", "stimulus_timing", "stored_timing",
           "TIMING_ATTRS"]

#: File attributes of an ``.act.h5`` giving its rows' timing (seconds), one value per
#: row: written by extraction for movie frames and for tables with these columns.
TIMING_ATTRS = ("onset", "duration")


def convolve_activation(act, onsets, durations, *, tr, n_scans, out, layers=None, rows=None,
                        oversampling=16, frame_time="start", force=False, progress=False):
    """Write an ``.act.h5`` whose rows are scans: every layer convolved with the HRF.

    The regressors of all events (:func:`dnnsparse.algo.hrf.event_regressors`,
    shape (n_scans, n_events)) are built once; each layer is then read on its own
    and multiplied by them (all units at once), so memory holds one layer.

    Parameters
    ----------
    act : Activation
        One row per event (stimulus presentation), in the order of ``onsets``.
    onsets, durations : array-like of shape (n_events,)
        Seconds from the start of the first scan.
    tr : float
    n_scans : int
    out : str or Path
        Output ``.act.h5``; its stimulus IDs are the scan indices 0..n_scans-1.
    layers : list of str, optional
        Default: every layer.
    rows : array-like of int, shape (n_events,), optional
        Row of ``act`` shown at each event (:func:`events_timing`; a stimulus may be
        shown several times). Default: row ``e`` for event ``e``.
    oversampling, frame_time
        As :func:`dnnsparse.algo.hrf.convolve_events`.
    force : bool
    progress : bool

    Returns
    -------
    Path
    """
    from ..io.act import ActWriter
    from ..algo.hrf import event_regressors

    layers = list(act.layers if layers is None else layers)
    shapes = {layer: act.shape(layer)[1:] for layer in layers}
    onsets = np.asarray(onsets, dtype=np.float64)
    if rows is not None:
        rows = np.asarray(rows, dtype=np.int64)
        if rows.shape != onsets.shape or np.any((rows < 0) | (rows >= act.n_stim)):
            raise InputError(f"rows: one activation row (0..{act.n_stim - 1}) per event "
                             f"expected, got shape {rows.shape}.")
    elif len(onsets) != act.n_stim:
        raise InputError(f"{len(onsets)} onsets for {act.n_stim} stimuli of the activation; "
                         "give the stimulus table the activation was made from.")
    n_scans = check_scalar(n_scans, name="n_scans", kind=numbers.Integral, min_val=1)
    design = event_regressors(onsets, durations, tr=tr, n_scans=n_scans,
                              oversampling=oversampling, frame_time=frame_time)
    # the writer sets layers/version/date itself; keep the rest of the provenance
    # (and the events' timing: the output's rows are scans)
    attrs = {k: v for k, v in act.attrs.items()
             if k not in ("layers", "created", "dnnsparse_version", *TIMING_ATTRS)}
    attrs.update(hrf="spm", tr=float(tr), n_scans=int(n_scans),
                 oversampling=int(oversampling), frame_time=str(frame_time),
                 source=str(act.path or ""))
    with ActWriter(out, shapes, n_scans, attrs=attrs,
                   layer_attrs={layer: act.layer_attrs(layer) for layer in layers},
                   stim_ids=np.arange(n_scans).astype(str), force=force) as writer:
        for layer in progress_bar(layers, desc="hrf", unit="layer", enabled=progress):
            X = act.to_matrix(layer).astype(np.float64, copy=False)   # (n_stim, n_units)
            if rows is not None:
                X = X[rows]                                           # (n_events, n_units)
            writer.write(layer, 0, (design @ X).reshape((n_scans,) + shapes[layer]))
    return Path(out)


def events_timing(path, stim_ids, *, column=None, where="the activation"):
    """Onsets, durations and activation rows of the stimulus events of a BIDS events file.

    Each event's stimulus (its ``column`` value, default ``stim_file`` then
    ``trial_type``: :func:`dnnsparse.io.events.stimulus_column`) is looked up among
    ``stim_ids``. Events whose stimulus is ``n/a`` (responses, fixation: no stimulus)
    are left out, as BIDS uses ``n/a`` for "does not apply".

    Parameters
    ----------
    path : str or Path
        ``*_events.tsv``.
    stim_ids : sequence of str, shape (n_stim,)
        The activation's stimulus IDs.
    column : str, optional
    where : str
        Names the activation in messages.

    Returns
    -------
    onsets, durations : ndarray of shape (n_events,)
    rows : ndarray of int, shape (n_events,)
        Index into ``stim_ids`` of each event's stimulus.
    column : str

    Raises
    ------
    InputError
        A stimulus of the events not in ``stim_ids`` (the first few are named), or no
        stimulus event at all.

    Examples
    --------
    >>> on, dur, rows, col = events_timing("run-1_events.tsv", act.stim_ids)  # doctest: +SKIP
    """
    from ..io.events import NA, read_events, stimulus_column

    events = read_events(path)
    column = stimulus_column(events, path, column)
    names = events[column]
    keep = names != NA
    index = {}
    for k, sid in enumerate(np.asarray(stim_ids).astype(str).tolist()):
        index.setdefault(sid, k)              # a repeated ID: its first row
    missing = list(dict.fromkeys(n for n in names[keep].tolist() if n not in index))
    if missing:
        shown = ", ".join(missing[:5]) + (f" (and {len(missing) - 5} more)"
                                          if len(missing) > 5 else "")
        raise InputError(f"{path}: {len(missing)} stimulus name(s) of column {column!r} "
                         f"are not stimuli of {where}: {shown}; choose the column with "
                         "-events-col, or extract the activation from the matching table.")
    if not keep.any():
        raise InputError(f"{path}: column {column!r} is n/a on every row; no stimulus "
                         "events to convolve.")
    rows = np.array([index[n] for n in names[keep].tolist()], dtype=np.int64)
    return events["onset"][keep], events["duration"][keep], rows, column


def stimulus_timing(stim, path):
    """``(onsets, durations)`` in seconds from ``stim``'s ``onset``/``duration`` columns.

    ``path`` names the table in the one-line error raised when a column is missing or
    holds something other than numbers.
    """
    missing = [c for c in ("onset", "duration") if c not in stim.columns]
    if missing:
        raise InputError(f"{path} has no {' or '.join(missing)} column; db_hrf needs "
                         "'onset' and 'duration' (seconds) for every stimulus.")
    try:
        return (stim["onset"].astype(float), stim["duration"].astype(float))
    except ValueError:
        raise InputError(f"{path}: the onset and duration columns must hold numbers "
                         "(seconds).") from None


def stored_timing(act):
    """``(onsets, durations)`` stored with the activation's rows, or None.

    Extraction stores them as the file attributes ``onset``/``duration`` (movie
    frames' timestamps, or a table's columns). Present but not one number per row
    (e.g. after rows were selected by another program) is an error naming the file.
    """
    values = [act.attrs.get(name) for name in TIMING_ATTRS]
    if any(v is None for v in values):
        return None
    where = act.path or "the activation"
    out = []
    for name, v in zip(TIMING_ATTRS, values):
        v = np.atleast_1d(np.asarray(v))
        if v.dtype.kind not in "iuf" or v.shape != (act.n_stim,):
            raise InputError(f"{where}: its '{name}' attribute holds {v.size} value(s) for "
                             f"{act.n_stim} rows; give -stim with the table of these rows.")
        out.append(v.astype(np.float64))
    return tuple(out)
