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

__all__ = ["convolve_activation", "stimulus_timing", "stored_timing", "TIMING_ATTRS"]

#: File attributes of an ``.act.h5`` giving its rows' timing (seconds), one value per
#: row: written by extraction for movie frames and for tables with these columns.
TIMING_ATTRS = ("onset", "duration")


def convolve_activation(act, onsets, durations, *, tr, n_scans, out, layers=None,
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
    if len(onsets) != act.n_stim:
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
            X = act.to_matrix(layer).astype(np.float64, copy=False)   # (n_events, n_units)
            writer.write(layer, 0, (design @ X).reshape((n_scans,) + shapes[layer]))
    return Path(out)


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
