"""ROI signal files (``.roi.h5``) in DNNBrain's layout.

Layout (DNNBrain ``RoiFile``)::

    /            attribute ``roi``: ROI names, one per column of ``data``
    /data        dataset (n_samples, n_roi), Fletcher-32 checksummed (a standard
                 HDF5 filter, read by any HDF5 tool)

dnnsparse may add root attributes (``stat``, ``source``); DNNBrain's reader
ignores them.
"""
from pathlib import Path

import h5py
import numpy as np

from ..errors import FileFormatError, InputError
from ._files import atomic_output, h5_read_error, open_h5

__all__ = ["read_roi_file", "write_roi_file"]


def _as_str(values):
    """Names from an h5py attribute: str, bytes, or arrays of either."""
    values = np.atleast_1d(values)
    return [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in values.tolist()]


def write_roi_file(path, names, data, *, attrs=None, force=False):
    """Write ROI signals to ``path`` (``.roi.h5``), atomically.

    Parameters
    ----------
    path : str or Path
    names : list of str, length n_roi
    data : array, shape (n_samples, n_roi) or (n_samples,) for one ROI
    attrs : mapping, optional
        Extra root attributes (e.g. ``{"stat": "mean"}``).
    force : bool, default=False

    Examples
    --------
    >>> write_roi_file("v1.roi.h5", ["V1"], np.ones((10, 1)))   # doctest: +SKIP
    """
    names = [names] if isinstance(names, str) else [str(n) for n in names]
    data = np.asarray(data)
    if data.ndim == 1:
        data = data[:, None]
    if data.ndim != 2 or data.shape[1] != len(names):
        raise InputError(f"ROI data of shape {data.shape} do not match {len(names)} ROI "
                         f"name(s); expected (n_samples, {len(names)}).")
    if len(set(names)) != len(names):
        raise InputError(f"ROI names must be unique; got {names}.")
    with atomic_output(path, force=force) as tmp:
        # No chunk cache: HDF5 crashes flushing it after a failed write (full disk).
        with h5py.File(tmp, "w", rdcc_nbytes=0) as f:
            f.attrs["roi"] = names
            for key, value in (attrs or {}).items():
                f.attrs[key] = value
            # the checksum needs chunks, which an empty dataset cannot have
            f.create_dataset("data", data=data, fletcher32=data.size > 0)
    return path


def read_roi_file(path, *, rois=None):
    """Read ``(names, data)`` from a ``.roi.h5`` file (ours or DNNBrain's).

    Parameters
    ----------
    path : str or Path
    rois : list of str, optional
        Columns to read, in this order (default: all).

    Returns
    -------
    names : list of str
    data : ndarray, shape (n_samples, n_roi)
    """
    path = Path(path)
    with open_h5(path, what="ROI file") as f:
        if "roi" not in f.attrs or "data" not in f:
            raise FileFormatError(f"{path}: not a .roi.h5 file (needs a root attribute "
                                  "'roi' and a dataset 'data').")
        names = _as_str(f.attrs["roi"])
        ds = f["data"]
        if ds.ndim != 2 or ds.shape[1] != len(names):
            raise FileFormatError(f"{path}: 'data' has shape {ds.shape} but 'roi' names "
                                  f"{len(names)} ROI(s).")
        if rois is not None:
            rois = [rois] if isinstance(rois, str) else list(rois)
            missing = [r for r in rois if r not in names]
            if missing:
                raise InputError(f"{path} has no ROI {missing}; it has {names}.")
        try:
            data = ds[()]
        except OSError as exc:          # a failed checksum
            raise h5_read_error(path, "dataset 'data'", exc, dataset=ds) from None
        if rois is None:
            return names, data
        return rois, data[:, [names.index(r) for r in rois]]
