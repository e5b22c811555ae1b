"""Maps per target (``.h5``): e.g. the receptive-field maps of ``db_rf``.

Layout (HDF5, read with h5py)::

    /<group>/<target>   one dataset per target (floats as float64), e.g. (H, W) maps;
                        the group names the method ("occlusion", "upsampling", ...),
                        the dataset the target (``conv5:12,3,4``, ``fc3:class=goldfish``)
      attrs:            what describes that map (layer, channel, stimulus IDs, ...)
    file attrs:         groups (group order), net, weights, ..., dnnsparse_version,
                        created

Every dataset is written at once, gzip-compressed; the file appears complete or not at
all (:func:`~dnnsparse.io.atomic_output`).

Examples
--------
>>> write_maps("rf.h5", {"occlusion": {"conv5:3": m}}, attrs={"net": "alexnet"})  # doctest: +SKIP
>>> read_maps("rf.h5").groups["occlusion"]["conv5:3"].shape                       # doctest: +SKIP
(224, 224)
"""
import datetime
from dataclasses import dataclass, field

import h5py
import numpy as np

from .. import __version__
from ..errors import FileFormatError, InputError
from ._files import atomic_output, open_h5
from .act import _attr_value, _decode

__all__ = ["MapFile", "read_maps", "write_maps"]


@dataclass
class MapFile:
    """The contents of a maps file.

    Attributes
    ----------
    groups : dict of str to dict of str to ndarray
        ``{group: {target: array}}`` in file order.
    attrs : dict
        File attributes.
    dataset_attrs : dict of str to dict of str to dict
        ``{group: {target: attributes}}``.
    """
    groups: dict
    attrs: dict
    dataset_attrs: dict = field(default_factory=dict)


def _check_name(name, what):
    if not name or "/" in name or name in (".", ".."):
        raise InputError(f"{what} name {name!r} cannot be stored in HDF5 (no '/', not "
                         f"empty).")


def write_maps(path, groups, *, attrs=None, dataset_attrs=None, force=False):
    """Write ``{group: {target: array}}`` to an HDF5 file atomically.

    Parameters
    ----------
    path : str or Path
    groups : dict of str to dict of str to array-like
    attrs : dict, optional
        File attributes (str, numbers, arrays, lists of str).
    dataset_attrs : dict, optional
        ``{group: {target: {name: value}}}``.
    force : bool, default=False
        Overwrite an existing file.

    Returns
    -------
    Path
    """
    dataset_attrs = dataset_attrs or {}
    for g, maps in groups.items():
        _check_name(g, "group")
        for name in maps:
            _check_name(name, "target")
    with atomic_output(path, force=force) as tmp:
        with h5py.File(tmp, "w", track_order=True) as f:
            meta = {"groups": list(groups), **(attrs or {}), "dnnsparse_version": __version__,
                    "created": datetime.datetime.now().isoformat(timespec="seconds")}
            for k, v in meta.items():
                f.attrs[k] = _attr_value(v)
            for g, maps in groups.items():
                grp = f.create_group(g, track_order=True)
                for name, values in maps.items():
                    values = np.asarray(values)
                    if values.dtype.kind == "f":
                        values = values.astype(np.float64, copy=False)
                    ds = grp.create_dataset(name, data=values,
                                            compression="gzip", compression_opts=4,
                                            shuffle=True)
                    for k, v in dataset_attrs.get(g, {}).get(name, {}).items():
                        ds.attrs[k] = _attr_value(v)
    return path


def read_maps(path):
    """Read a file written by :func:`write_maps` into a :class:`MapFile`."""
    with open_h5(path, what="maps file") as f:
        attrs = {k: _decode(v) for k, v in f.attrs.items()}
        names = attrs.get("groups", [k for k in f if isinstance(f[k], h5py.Group)])
        names = [names] if isinstance(names, str) else list(names)
        groups, ds_attrs = {}, {}
        for g in names:
            if g not in f or not isinstance(f[g], h5py.Group):
                raise FileFormatError(f"{path}: group {g!r} listed in the file attributes is "
                                      f"missing; the file is not a complete maps file.")
            groups[g] = {k: f[g][k][()] for k in f[g]}
            ds_attrs[g] = {k: {a: _decode(v) for a, v in f[g][k].attrs.items()} for k in f[g]}
    return MapFile(groups, attrs, ds_attrs)
