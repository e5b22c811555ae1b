"""RDM files (``.rdm.h5``) in DNNBrain's layout.

Layout (DNNBrain ``RdmFile``)::

    /               attribute ``type``: "bRDM" (brain) or "dRDM" (DNN)
    /<name>         one dataset per ROI (bRDM) or layer (dRDM), gzip-compressed
                    and Fletcher-32 checksummed (standard HDF5 filters)
                    bRDM: (n_pairs,)           one RDM
                    dRDM: (n_iter, n_pairs)    one RDM per channel/position
                    (n_iter = 1 for a whole layer)

``n_pairs = n_items * (n_items - 1) / 2``: the strict upper triangle of the
square RDM in row-major order (DNNBrain's ``np.tri(n, k=-1).T`` index), which
is scipy's ``pdist`` condensed order. dnnsparse may add attributes that
DNNBrain's reader ignores: root ``items`` (stimulus or category labels) and a
per-dataset ``metric``. Model RDMs (hypotheses, ``db_rsa -model-rdm``) are written
as type ``"mRDM"`` (one ``(n_pairs,)`` dataset per model).

:func:`read_model_rdm` reads a model RDM from a ``.rdm.h5`` file, a ``.npy`` array
or a CSV/TSV table (square or condensed) and checks it is a dissimilarity matrix.
"""
from pathlib import Path

import h5py
import numpy as np

from ..errors import FileFormatError, InputError
from ._files import atomic_output, h5_read_error, open_h5

__all__ = ["MODEL_RDM_SUFFIXES", "RDM_TYPES", "n_items_from_pairs", "read_model_rdm",
           "read_rdm_file", "write_rdm_file"]

#: rdm type -> ndim of each dataset (mRDM: model RDMs, ours only)
RDM_TYPES = {"bRDM": 1, "dRDM": 2, "mRDM": 1}


def n_items_from_pairs(n_pairs, *, what="RDM"):
    """Number of items ``n`` with ``n (n - 1) / 2 == n_pairs``.

    >>> n_items_from_pairs(10)
    5
    """
    n = int(round((1 + np.sqrt(1 + 8 * n_pairs)) / 2))
    if n * (n - 1) // 2 != n_pairs or n < 2:
        raise InputError(f"{what} has {n_pairs} entries, which is not n(n-1)/2 for any "
                         "n >= 2; is it a condensed (upper-triangle) vector?")
    return n


def _decode(values):
    arr = np.asarray(values)
    if arr.dtype.kind in "OS":
        return np.array([v.decode("utf-8") if isinstance(v, bytes) else v for v in arr.ravel()])
    return arr


def write_rdm_file(path, rdm_type, rdms, *, items=None, metrics=None, force=False):
    """Write RDM vectors to a ``.rdm.h5`` file, atomically.

    Parameters
    ----------
    path : str or Path
    rdm_type : {"bRDM", "dRDM"}
    rdms : mapping str -> array
        bRDM: ``(n_pairs,)`` per ROI; dRDM: ``(n_iter, n_pairs)`` per layer
        (a 1-D vector is stored as ``(1, n_pairs)``).
    items : sequence, optional
        Labels of the RDM's rows (stimuli or categories), length n_items.
    metrics : mapping str -> str, optional
        Distance metric of each RDM.
    force : bool, default=False
    """
    if rdm_type not in RDM_TYPES:
        raise InputError(f"rdm_type must be one of {sorted(RDM_TYPES)}; got {rdm_type!r}.")
    if not rdms:
        raise InputError("no RDM to write.")
    arrays, n_items = {}, None
    for name, arr in rdms.items():
        name = str(name)
        if "/" in name or not name:
            raise InputError(f"RDM name {name!r} cannot be an HDF5 dataset name "
                             "(empty or contains '/').")
        arr = np.asarray(arr, dtype=np.float64)
        if rdm_type == "dRDM" and arr.ndim == 1:
            arr = arr[None, :]
        if arr.ndim != RDM_TYPES[rdm_type]:
            want = "(n_pairs,)" if rdm_type == "bRDM" else "(n_iter, n_pairs)"
            raise InputError(f"{rdm_type} {name!r} has shape {arr.shape}; expected {want}.")
        n = n_items_from_pairs(arr.shape[-1], what=f"RDM {name!r}")
        if n_items is not None and n != n_items:
            raise InputError(f"RDM {name!r} has {n} items but others have {n_items}; one "
                             "file holds RDMs of the same stimuli.")
        n_items = n
        arrays[name] = arr
    if items is not None and len(items) != n_items:
        raise InputError(f"{len(items)} item labels for RDMs of {n_items} items.")
    with atomic_output(path, force=force) as tmp:
        # track_order keeps the RDMs in the caller's order (layers in network
        # order) instead of HDF5's default alphabetical listing.
        # No chunk cache: HDF5 crashes flushing it after a failed write (full disk).
        with h5py.File(tmp, "w", track_order=True, rdcc_nbytes=0) as f:
            f.attrs["type"] = rdm_type
            if items is not None:
                items = np.asarray(items)
                f.attrs["items"] = ([str(i) for i in items] if items.dtype.kind in "OUS"
                                    else items)
            for name, arr in arrays.items():
                ds = f.create_dataset(name, data=arr, compression="gzip", fletcher32=True)
                if metrics and name in metrics:
                    ds.attrs["metric"] = str(metrics[name])
    return path


def read_rdm_file(path):
    """Read a ``.rdm.h5`` file (ours or DNNBrain's).

    Returns
    -------
    rdm_type : {"bRDM", "dRDM"}
    rdms : dict str -> ndarray
        In writing order for our files (alphabetical for DNNBrain's); bRDM ``(n_pairs,)``, dRDM ``(n_iter, n_pairs)``.
    meta : dict
        ``{"items": labels or None, "metrics": {name: metric}}``.
    """
    path = Path(path)
    with open_h5(path, what="RDM file") as f:
        rdm_type = f.attrs.get("type")
        if isinstance(rdm_type, bytes):
            rdm_type = rdm_type.decode()
        if rdm_type not in RDM_TYPES:
            raise FileFormatError(f"{path}: root attribute 'type' is {rdm_type!r}; expected "
                                  "'bRDM', 'dRDM' or 'mRDM' (is this a .rdm.h5 file?).")
        rdms, metrics, n_items = {}, {}, None
        for name, ds in f.items():
            if not isinstance(ds, h5py.Dataset) or ds.ndim != RDM_TYPES[rdm_type]:
                raise FileFormatError(f"{path}: {rdm_type} entry {name!r} has shape "
                                      f"{getattr(ds, 'shape', 'group')}; expected "
                                      f"{RDM_TYPES[rdm_type]}-D.")
            try:
                n = n_items_from_pairs(ds.shape[-1], what=f"{path}: RDM {name!r}")
            except InputError as exc:
                raise FileFormatError(str(exc)) from None
            if n_items is not None and n != n_items:
                raise FileFormatError(f"{path}: RDMs have different numbers of items "
                                      f"({n_items} and {n} in {name!r}).")
            n_items = n
            try:
                rdms[name] = ds[()]
            except OSError as exc:      # a failed checksum
                raise h5_read_error(path, f"RDM {name!r}", exc, dataset=ds) from None
            if "metric" in ds.attrs:
                metrics[name] = str(_decode(ds.attrs["metric"]))
        items = _decode(f.attrs["items"]) if "items" in f.attrs else None
    return rdm_type, rdms, {"items": items, "metrics": metrics}


# -- model RDMs ------------------------------------------------------------------------
#: file suffixes read by :func:`read_model_rdm`
MODEL_RDM_SUFFIXES = (".rdm.h5", ".npy", ".csv", ".tsv")


def _stem(path):
    name = path.name
    for sfx in (".rdm.h5", ".npy", ".csv", ".tsv", ".txt"):
        if name.lower().endswith(sfx):
            return name[:-len(sfx)]
    return path.stem


def _number(text):
    try:
        return float(text)
    except ValueError:
        return None


def _parse_table(path):
    """Numbers of a CSV/TSV model RDM and its item labels (header row or first column)."""
    from .table import _delimiter, csv_rows, read_text_lines

    path, lines = read_text_lines(path, "model RDM")
    rows = [(i, r) for i, r in csv_rows(lines, first_line=1, where=str(path),
                                        delimiter=_delimiter(path)) if any(f.strip() for f in r)]
    if not rows:
        raise FileFormatError(f"{path}: no numbers in this model RDM.")
    # Item names: a header row of names (all text, an empty corner allowed) and/or a
    # first column of names. Names that are numbers cannot be told from data.
    first = rows[0][1]
    index_below = len(rows) > 1 and len(first) > 1 and all(
        _number(r[0]) is None for _, r in rows[1:])
    rest = first[1:] if index_below else first
    has_header = len(rows) > 1 and all(_number(f) is None for f in rest)
    header = [f.strip() for f in rest] if has_header else None
    if has_header:
        rows = rows[1:]
    has_index = index_below and (has_header or _number(first[0]) is None)
    index = None
    if has_index:
        index = [r[0].strip() for _, r in rows]
        rows = [(i, r[1:]) for i, r in rows]
    if index is not None and header is not None and index != header:
        raise FileFormatError(f"{path}: the header names the items {header[:4]}... but the "
                              f"first column {index[:4]}...; a square RDM has one order of "
                              "items for rows and columns.")
    labels = index if index is not None else header
    width = len(rows[0][1])
    values = np.empty((len(rows), width))
    for k, (line, fields) in enumerate(rows):
        if len(fields) != width:
            raise FileFormatError(f"{path}, line {line}: {len(fields)} values, but the first "
                                  f"row has {width}; a model RDM is a square matrix or one "
                                  "row/column of its upper triangle.")
        for c, f in enumerate(fields):
            v = _number(f)
            if v is None:
                raise FileFormatError(f"{path}, line {line}: {f.strip()!r} is not a number.")
            values[k, c] = v
    return values, labels


def _condensed_from(values, path):
    """A checked condensed vector from a 1-D vector, a row/column or a square matrix."""
    values = np.asarray(values, dtype=np.float64)
    if values.ndim == 2 and 1 in values.shape and values.shape != (1, 1) \
            and values.shape[0] != values.shape[1]:
        values = values.ravel()
    bad = np.argwhere(~np.isfinite(values))
    if len(bad):
        where = "entry " + ", ".join(str(int(b)) for b in bad[0])
        raise FileFormatError(f"{path}: {where} is NaN or infinite; a model RDM needs a "
                              "dissimilarity for every pair.")
    if values.ndim == 1:
        try:
            n_items_from_pairs(len(values), what=f"{path}: condensed model RDM")
        except InputError as exc:
            raise FileFormatError(str(exc)) from None
        return values
    if values.ndim != 2 or values.shape[0] != values.shape[1]:
        raise FileFormatError(f"{path}: a model RDM must be a square matrix or a condensed "
                              f"vector; got shape {values.shape} (not square).")
    n = len(values)
    scale = max(1.0, float(np.abs(values).max()))
    diag = np.abs(np.diag(values))
    if (diag > 1e-12 * scale).any():
        k = int(np.flatnonzero(diag > 1e-12 * scale)[0])             # the first one
        raise FileFormatError(f"{path}: diagonal entry ({k + 1}, {k + 1}) is "
                              f"{values[k, k]:g}; a dissimilarity matrix has zeros on its "
                              "diagonal.")
    asym = np.abs(values - values.T)
    if (asym > 1e-10 * scale).any():
        i, j = np.argwhere(asym > 1e-10 * scale)[0]                 # the first one
        raise FileFormatError(f"{path}: not symmetric: entry ({i + 1}, {j + 1}) is "
                              f"{values[i, j]:g} but ({j + 1}, {i + 1}) is {values[j, i]:g}.")
    iu = np.triu_indices(n, k=1)
    return values[iu]


def read_model_rdm(path, *, name=None, n_items=None):
    """Model RDM(s) of a file: ``.rdm.h5``, ``.npy`` or CSV/TSV, square or condensed.

    Parameters
    ----------
    path : str or Path
        ``.rdm.h5``: one model per dataset (each must be a single RDM; our files and
        DNNBrain's). ``.npy``: a square ``(n, n)`` array or a condensed
        ``(n (n - 1) / 2,)`` vector. CSV/TSV: a square table (optionally with a header
        row and/or a first column of item names) or one row/column of the upper
        triangle in scipy ``pdist`` order.
    name : str, optional
        The model's name (default: the dataset names of an ``.rdm.h5`` file, else the
        file name without its suffix); a file with several RDMs names them
        ``NAME:dataset``.
    n_items : int, optional
        The number of items (stimuli or categories) of the analysis: checked, and
        the error names the file, its size and the expected one.

    Returns
    -------
    list of (str, ndarray (n_pairs,), labels or None)
        Square matrices must be symmetric with a zero diagonal; NaN is refused.

    Raises
    ------
    MissingFileError, FileFormatError
    """
    from ._files import check_input_file

    path = check_input_file(path, what="model RDM")
    lower = path.name.lower()
    stem = name or _stem(path)
    if lower.endswith(".h5"):
        rdm_type, arrays, meta = read_rdm_file(path)
        models = []
        for ds, arr in arrays.items():
            arr = np.asarray(arr)
            if arr.ndim == 2 and arr.shape[0] != 1:
                raise FileFormatError(f"{path}: {ds!r} holds {arr.shape[0]} RDMs (one per "
                                      "channel or position); a model RDM is one RDM.")
            label = ds if name is None else (name if len(arrays) == 1 else f"{name}:{ds}")
            models.append((label, _condensed_from(arr.ravel(), f"{path} ({ds})"),
                           meta["items"]))
    elif lower.endswith(".npy"):
        try:
            arr = np.load(path, allow_pickle=False)
        except (ValueError, OSError) as exc:
            raise FileFormatError(f"{path}: not a NumPy .npy array ({exc}).") from None
        if arr.dtype.kind not in "biuf":
            raise FileFormatError(f"{path}: holds {arr.dtype} values; a model RDM holds "
                                  "numbers.")
        models = [(stem, _condensed_from(arr, path), None)]
    elif lower.endswith((".csv", ".tsv", ".txt")):
        values, labels = _parse_table(path)
        vector = _condensed_from(values, path)
        if values.shape[0] != values.shape[1]:
            labels = None                      # names of a condensed row's pairs: not items
        models = [(stem, vector, labels)]
    else:
        raise FileFormatError(f"{path}: unknown model RDM format; use one of "
                              f"{', '.join(MODEL_RDM_SUFFIXES)}.")
    if n_items is not None:
        for label, vector, _ in models:
            n = n_items_from_pairs(len(vector))
            if n != n_items:
                raise InputError(f"model RDM {path} ({label}) is {n} x {n} ({len(vector)} "
                                 f"pairs) but the analysis has {n_items} items "
                                 f"({n_items * (n_items - 1) // 2} pairs); give an RDM of "
                                 "the same stimuli (or categories, with -cate).")
    return models
