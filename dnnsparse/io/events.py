"""BIDS inputs: ``*_events.tsv`` tables, ``*_bold.json`` sidecars, and a run's timing.

A BIDS events file is tab-separated with a header line; ``onset`` (seconds from the
first volume's acquisition) and ``duration`` (seconds) are required, further columns
(``trial_type``, ``stim_file``, ``response_time``, ...) are optional; missing values
are written ``n/a``. :func:`read_events` parses one, :func:`run_timing` gives a run's
repetition time and number of volumes from its NIfTI/CIFTI header and its JSON sidecar
(``RepetitionTime`` there wins over the header when both exist and disagree, as BIDS
makes the sidecar the reference), and :func:`bids_entities` reads ``key-value`` pairs
(``sub``, ``ses``, ``task``, ``run``, ...) from a file name.
"""
import json
import logging
import re
from pathlib import Path

import numpy as np

from ..errors import FileFormatError, InputError
from ._files import check_input_file
from .table import csv_rows, read_text_lines

__all__ = ["read_events", "events_table", "stimulus_column", "bids_entities", "sidecar_path",
           "run_timing", "EVENT_STIM_COLUMNS", "NA"]

log = logging.getLogger(__name__)

#: BIDS' marker for a missing value.
NA = "n/a"
#: Columns that can name each event's stimulus, in the order tried by default.
EVENT_STIM_COLUMNS = ("stim_file", "trial_type")
#: NIfTI ``xyzt_units`` time codes -> seconds.
_TIME_UNITS = {"sec": 1.0, "msec": 1e-3, "usec": 1e-6}
_ENTITY = re.compile(r"([a-zA-Z0-9]+)-([a-zA-Z0-9]+)")
_N_LISTED = 5


def read_events(path):
    """Read a BIDS ``*_events.tsv``.

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    dict of str to ndarray, each of shape (n_events,)
        ``onset`` and ``duration`` as float64 (a ``n/a`` duration -- unknown, which
        BIDS allows -- becomes 0 s, an impulse, with a warning); every other column
        as an object array of str, ``n/a`` kept as written.

    Raises
    ------
    FileFormatError
        No ``onset``/``duration`` column, a row of the wrong length, or an onset
        that is not a number (``n/a`` included: BIDS requires every onset).

    Examples
    --------
    >>> ev = read_events("sub-01_task-x_run-1_events.tsv")     # doctest: +SKIP
    >>> ev["onset"][:2], ev["trial_type"][:2]                   # doctest: +SKIP
    """
    path, lines = read_text_lines(path, "events file")
    rows = [(i, r) for i, r in csv_rows(lines, first_line=1, where=str(path), delimiter="\t")
            if any(field.strip() for field in r)]
    if not rows:
        raise FileFormatError(f"{path}: empty; a BIDS events file starts with a header "
                              "line naming its columns (onset, duration, ...).")
    header = [h.strip() for h in rows[0][1]]
    missing = [c for c in ("onset", "duration") if c not in header]
    if missing:
        raise FileFormatError(f"{path}: no {' or '.join(missing)} column (the header is "
                              f"{', '.join(header)}); BIDS events need 'onset' and "
                              "'duration' in seconds, tab-separated.")
    body = rows[1:]
    for i, r in body:
        if len(r) != len(header):
            raise FileFormatError(f"{path}, line {i}: {len(r)} fields, expected "
                                  f"{len(header)} ({', '.join(header)}); BIDS events are "
                                  "tab-separated.")
    columns = {name: np.array([r[j].strip() for _, r in body], dtype=object)
               for j, name in enumerate(header)}
    lines_of = [i for i, _ in body]
    columns["onset"] = _seconds(columns["onset"], path, lines_of, "onset", allow_na=False)
    duration = _seconds(columns["duration"], path, lines_of, "duration", allow_na=True)
    unknown = np.isnan(duration)
    if unknown.any():
        log.warning("%s: %d event(s) with duration n/a (unknown) are taken as impulses "
                    "(0 s).", path, int(unknown.sum()))
    columns["duration"] = np.where(unknown, 0.0, duration)
    return columns


def _seconds(values, path, lines, name, *, allow_na):
    out = np.empty(len(values))
    for k, v in enumerate(values):
        if allow_na and v == NA:
            out[k] = np.nan
            continue
        try:
            out[k] = float(v)
        except ValueError:
            out[k] = np.nan
        if not np.isfinite(out[k]) or (name == "duration" and out[k] < 0):
            need = "a duration >= 0 or n/a" if allow_na else "a number (BIDS requires every onset)"
            raise FileFormatError(f"{path}, line {lines[k]}: {name} {v!r}; give {need}, "
                                  "in seconds.")
    return out


def stimulus_column(events, path, column=None):
    """Name of the column of ``events`` that names each event's stimulus.

    ``column`` if given (must exist), else the first of :data:`EVENT_STIM_COLUMNS`
    present. Raises InputError naming the file and its columns when none is found.
    """
    have = [c for c in events if c not in ("onset", "duration")]
    if column is not None:
        if column not in events or column in ("onset", "duration"):
            raise InputError(f"{path} has no column {column!r} to match stimuli with; its "
                             f"columns are {', '.join(have) or 'only onset, duration'}.")
        return column
    for name in EVENT_STIM_COLUMNS:
        if name in events:
            return name
    raise InputError(f"{path} has no {' or '.join(EVENT_STIM_COLUMNS)} column naming each "
                     f"event's stimulus; name one of {', '.join(have) or '(none)'} with "
                     "-events-col.")


def bids_entities(path):
    """``{key: value}`` of the BIDS entities in a file name.

    >>> bids_entities("sub-01_ses-2_task-faces_run-03_events.tsv")
    {'sub': '01', 'ses': '2', 'task': 'faces', 'run': '03'}
    """
    stem = Path(path).name.split(".")[0]
    return {m.group(1): m.group(2) for part in stem.split("_")
            for m in [_ENTITY.fullmatch(part)] if m}


def sidecar_path(path):
    """The JSON sidecar of a BIDS data file: its name with ``.json`` for the extension.

    >>> sidecar_path("func/sub-01_task-x_bold.nii.gz").as_posix()
    'func/sub-01_task-x_bold.json'
    """
    path = Path(path)
    return path.with_name(path.name.split(".")[0] + ".json")


def _sidecar_tr(sidecar):
    try:
        meta = json.loads(sidecar.read_text(encoding="utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FileFormatError(f"{sidecar}: not a readable JSON sidecar ({exc}).") from None
    if not isinstance(meta, dict) or "RepetitionTime" not in meta:
        raise InputError(f"{sidecar}: no RepetitionTime; BIDS requires it for BOLD runs "
                         "(seconds) -- add it, or give -tr.")
    tr = meta["RepetitionTime"]
    if isinstance(tr, bool) or not isinstance(tr, (int, float)) or not tr > 0 \
            or not np.isfinite(tr):
        raise InputError(f"{sidecar}: RepetitionTime {tr!r}; it must be a number of "
                         "seconds > 0.")
    return float(tr)


def _header_timing(path):
    """``(tr or None, n_scans, why)`` from a NIfTI or CIFTI header (no data read)."""
    import nibabel as nib

    try:
        img = nib.load(str(path))
    except Exception as exc:       # nibabel raises several types for bad files
        raise FileFormatError(f"{path}: not a readable NIfTI/CIFTI image ({exc}).") from None
    if isinstance(img, nib.Cifti2Image):
        axis = img.header.get_axis(0)
        n_scans = int(img.shape[0])
        if not isinstance(axis, nib.cifti2.SeriesAxis):
            return None, n_scans, "its first axis is not a series (not a dtseries)"
        if axis.unit != "SECOND" or not axis.step > 0:
            return None, n_scans, f"its series step is {axis.step:g} {axis.unit}, not seconds"
        return float(axis.step), n_scans, ""
    if not isinstance(img, (nib.Nifti1Image, nib.Nifti2Image)):
        raise FileFormatError(f"{path}: -bold takes a NIfTI (.nii, .nii.gz) or CIFTI "
                              f"dtseries (.dtseries.nii) run, not a {type(img).__name__}.")
    shape = img.shape
    n_scans = int(shape[3]) if len(shape) > 3 else 1
    unit = img.header.get_xyzt_units()[1]
    step = float(img.header["pixdim"][4])
    if unit not in _TIME_UNITS:
        return None, n_scans, f"its header has no time unit (xyzt_units time: {unit})"
    if not step > 0:
        return None, n_scans, f"its header's TR (pixdim[4]) is {step:g}"
    return step * _TIME_UNITS[unit], n_scans, ""


def run_timing(path, *, sidecar=None, tr=None):
    """Repetition time (s) and number of volumes of a BOLD run.

    The volumes come from the header (NIfTI 4th dimension, CIFTI rows). The TR comes
    from the JSON sidecar's ``RepetitionTime`` when the sidecar exists, else from the
    header (NIfTI ``pixdim[4]`` in its ``xyzt_units`` time unit; the CIFTI series
    step in seconds). Both present and different: the sidecar wins, with a warning.

    Parameters
    ----------
    path : str or Path
        ``.nii``, ``.nii.gz`` or ``.dtseries.nii``.
    sidecar : str or Path, optional
        Default: :func:`sidecar_path` of ``path``, used if it exists.
    tr : float, optional
        A TR given by the user: used as is (only the volumes are read; a warning
        when it differs from the sidecar's or the header's).

    Returns
    -------
    tr : float
    n_scans : int
    source : str
        ``"sidecar"``, ``"header"`` or ``"given"``.

    Examples
    --------
    >>> run_timing("sub-01_task-x_bold.nii.gz")                 # doctest: +SKIP
    (2.0, 240, 'sidecar')
    """
    path = check_input_file(path, what="BOLD run")
    header_tr, n_scans, why = _header_timing(path)
    side = Path(sidecar) if sidecar is not None else sidecar_path(path)
    if sidecar is not None:
        check_input_file(side, what="JSON sidecar")
    if tr is not None:
        try:
            known = _sidecar_tr(side) if side.is_file() else header_tr
        except InputError:
            known = header_tr
        if known is not None and not np.isclose(tr, known, rtol=1e-6, atol=1e-9):
            log.warning("-tr %g s differs from the %g s of %s; using -tr.", tr, known, path)
        return float(tr), n_scans, "given"
    if side.is_file():
        tr = _sidecar_tr(side)
        if header_tr is not None and not np.isclose(tr, header_tr, rtol=1e-6, atol=1e-9):
            log.warning("%s: RepetitionTime %g s differs from the header's TR %g s of %s; "
                        "using the sidecar's.", side, tr, header_tr, path)
        return tr, n_scans, "sidecar"
    if header_tr is None:
        raise InputError(f"{path}: no repetition time: {why}, and no JSON sidecar "
                         f"{side.name} next to it; add the sidecar or give -tr.")
    return header_tr, n_scans, "header"


def events_table(paths, *, column=None):
    """One stimulus table from the stimulus events of one or more BIDS events files.

    Rows are the events whose stimulus (``column``, default ``stim_file`` then
    ``trial_type``) is not ``n/a``, file after file, in file order.

    Parameters
    ----------
    paths : sequence of str or Path
    column : str, optional

    Returns
    -------
    ids : ndarray of str, shape (n_events,)
        Each event's stimulus.
    columns : dict of str to ndarray, each of shape (n_events,)
        ``onset``, ``duration`` (float seconds within the run), ``run`` (int, from
        the file name's ``run-`` entity; left out for a single file without one) and
        every other column that all files have (numbers where every value is one).
    column : str
        The stimulus column used.

    Raises
    ------
    InputError
        Several files and one without a ``run-`` entity; files choosing different
        default stimulus columns; no stimulus event at all.

    Examples
    --------
    >>> ids, cols, col = events_table(["sub-01_run-1_events.tsv",
    ...                                "sub-01_run-2_events.tsv"])  # doctest: +SKIP
    """
    from .table import _convert

    paths = [Path(p) for p in paths]
    parsed = [read_events(p) for p in paths]
    names = [stimulus_column(ev, p, column) for ev, p in zip(parsed, paths)]
    if len(set(names)) > 1:
        raise InputError(f"the events files name their stimuli in different columns "
                         f"({', '.join(f'{p.name}: {n}' for p, n in zip(paths, names))}); "
                         "choose one with -events-col.")
    column = names[0]
    runs = [bids_entities(p).get("run") for p in paths]
    if len(paths) > 1 and None in runs:
        bad = paths[runs.index(None)]
        raise InputError(f"{bad}: no run-<index> entity in the file name; with several "
                         "events files each needs one (BIDS: sub-01_task-x_run-1_events.tsv)"
                         " to fill the run column.")
    for p, r in zip(paths, runs):
        if r is not None and not r.isdigit():
            raise InputError(f"{p}: run-{r}; a BIDS run entity is a number (run-1).")
    if len(set(runs)) < len(runs):
        log.warning("several events files have the same run number (%s); the run column "
                    "does not tell them apart.", ", ".join(map(str, runs)))
    shared = [c for c in parsed[0] if c not in ("onset", "duration", column)
              and c != "stimID" and all(c in ev for ev in parsed[1:])]
    keeps = [ev[column] != NA for ev in parsed]
    if not any(k.any() for k in keeps):
        raise InputError(f"{', '.join(map(str, paths))}: column {column!r} is n/a on every "
                         "row; no stimulus events.")
    ids = np.concatenate([ev[column][k] for ev, k in zip(parsed, keeps)]).astype(str)
    columns = {name: np.concatenate([ev[name][k] for ev, k in zip(parsed, keeps)])
               .astype(np.float64) for name in ("onset", "duration")}
    if runs[0] is not None:
        columns["run"] = np.concatenate([np.full(int(k.sum()), int(r))
                                         for r, k in zip(runs, keeps)])
    for name in shared:
        values = np.concatenate([ev[name][k] for ev, k in zip(parsed, keeps)]).tolist()
        columns[name] = _convert(values)
    return ids, columns, column
