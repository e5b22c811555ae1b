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
per-dataset ``metric``.
"""
from pathlib import Path

import h5py
import numpy as np

from ..errors import FileFormatError, InputError
from ._files import atomic_output, h5_read_error, open_h5

__all__ = ["RDM_TYPES", "read_rdm_file", "write_rdm_file", "n_items_from_pairs"]

#: rdm type -> ndim of each dataset
RDM_TYPES = {"bRDM": 1, "dRDM": 2}


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
                                  "'bRDM' or 'dRDM' (is this a .rdm.h5 file?).")
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
