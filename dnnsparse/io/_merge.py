"""The HDF5 side of joining ``.act.h5`` shards: a virtual file, or a streamed copy.

- :func:`write_virtual_act` writes an ``.act.h5`` whose layers are HDF5 *virtual
  datasets* (HDF5 >= 1.10): each maps its rows onto the same layer of the shard
  files, so nothing is copied and the file is a few kilobytes. The shards are
  named by paths relative to the merged file: they must stay next to it (move the
  folder as a whole). Virtual datasets carry no filters, so the Fletcher-32 checksums
  are those of the shards' own chunks, which HDF5 still checks when it reads them.
  A row whose shard cannot be found reads as NaN; :class:`~dnnsparse.io.act.ActFile`
  refuses such a file on opening instead (naming the missing shard).
- :func:`copy_act` streams the shards' rows into one standalone file (the usual
  chunked, compressed, checksummed layers), a block of rows at a time, so memory
  stays at one block whatever the size of the shards.

Which files may be joined, and in which order, is decided by the caller
(:func:`dnnsparse.pipelines.merge_shards`); these functions only write.
"""
import os
from pathlib import Path

import h5py
import numpy as np

from ..errors import InputError
from ..utils.progress import progress
from ._files import atomic_output
from .act import (META_DATASETS, ActFile, ActWriter, _attr_value, _write_file_attrs,
                  _write_meta_attr)

__all__ = ["VDS_LIBVER", "copy_act", "vds_source_name", "write_virtual_act"]

#: Object header versions of a virtual file: the virtual layout needs HDF5 1.10's.
VDS_LIBVER = ("v108", "v110")
# rows copied at a time: about this many bytes per block
_BLOCK_BYTES = 1 << 26


def vds_source_name(source, target):
    """Name under which the virtual file ``target`` refers to the shard ``source``.

    The path relative to the folder of ``target`` (HDF5 looks for a relative source
    there first), with ``%`` doubled (HDF5 reads ``%b`` in a source name as a block
    number).

    >>> vds_source_name("/data/run/a%1.act.h5", "/data/run/all.act.h5")
    'a%%1.act.h5'
    """
    target_dir = os.path.dirname(os.path.abspath(target))
    try:
        name = os.path.relpath(os.path.abspath(source), target_dir)
    except ValueError:              # another drive (Windows): only an absolute path works
        name = os.path.abspath(source)
    return Path(name).as_posix().replace("%", "%%")


def _write_root(f, attrs, stim_ids, layers):
    reserved = sorted(set(attrs) & set(META_DATASETS))
    if reserved:
        raise InputError(f"file attribute(s) {reserved} are reserved for the stimulus IDs "
                         f"and category metadata.")
    _write_file_attrs(f, layers, attrs)
    _write_meta_attr(f, "stimID", [str(s) for s in stim_ids])


def write_virtual_act(path, sources, *, layers, attrs=None, layer_attrs=None, stim_ids,
                      force=False):
    """Write an ``.act.h5`` whose layers are virtual datasets over ``sources``.

    Parameters
    ----------
    path : str or Path
        The merged file (written atomically).
    sources : list of (path, int)
        The shard files in row order and their numbers of rows.
    layers : dict of str to (tuple, dtype)
        ``{layer: (stored shape without the row axis, dtype)}``, in layer order; every
        shard holds each layer with that shape and dtype.
    attrs, layer_attrs : dict, optional
        Root attributes and ``{layer: attributes}`` of the merged file.
    stim_ids : sequence of str
        One per row of the merged file (the shards' IDs, concatenated).
    force : bool, default=False

    Returns
    -------
    Path

    Examples
    --------
    >>> write_virtual_act("all.act.h5", [("s1.act.h5", 5), ("s2.act.h5", 4)],
    ...                   layers={"fc1": ((4096, 1, 1), np.float32)},
    ...                   stim_ids=ids)                              # doctest: +SKIP
    """
    n_total = sum(int(n) for _, n in sources)
    if len(stim_ids) != n_total:
        raise InputError(f"{len(stim_ids)} stimulus IDs for {n_total} rows of shards.")
    with atomic_output(path, force=force) as tmp:
        with h5py.File(tmp, "w", libver=VDS_LIBVER) as f:
            _write_root(f, dict(attrs or {}), stim_ids, layers)
            for layer, (shape, dtype) in layers.items():
                shape, dtype = tuple(int(s) for s in shape), np.dtype(dtype)
                vlayout = h5py.VirtualLayout((n_total,) + shape, dtype)
                start = 0
                for src, n in sources:
                    n = int(n)
                    vlayout[start:start + n] = h5py.VirtualSource(
                        vds_source_name(src, path), layer, shape=(n,) + shape, dtype=dtype)
                    start += n
                # a shard that goes missing reads as NaN, never as believable zeros
                fill = np.nan if dtype.kind == "f" else 0
                ds = f.create_virtual_dataset(layer, vlayout, fillvalue=fill)
                for k, v in (layer_attrs or {}).get(layer, {}).items():
                    ds.attrs[k] = _attr_value(v)
    return Path(path)


def copy_act(path, sources, *, attrs=None, layer_attrs=None, stim_ids, compression="lzf",
             force=False, show_progress=True):
    """Copy the rows of ``sources`` (``.act.h5`` files, in row order) into one new file.

    Parameters
    ----------
    path : str or Path
        The merged file (written atomically; chunked, compressed, checksummed).
    sources : list of path
        Shard files with the same layers (names, shapes), in row order.
    attrs, layer_attrs : dict, optional
        Root attributes and ``{layer: attributes}`` of the merged file.
    stim_ids : sequence of str
        One per row of the merged file.
    compression : {"lzf", "gzip", "none"}
    force, show_progress : bool

    Returns
    -------
    Path

    Examples
    --------
    >>> copy_act("all.act.h5", ["s1.act.h5", "s2.act.h5"], stim_ids=ids)  # doctest: +SKIP
    """
    files = [ActFile(s) for s in sources]
    try:
        first = files[0]
        shapes = {l: first.file[l].shape[1:] for l in first.layers}
        dtype = np.result_type(*[first.file[l].dtype for l in first.layers])
        n_rows = [f.n_stim for f in files]
        total_bytes = sum(n_rows) * sum(int(np.prod(s)) for s in shapes.values()) * dtype.itemsize
        block = {l: max(1, _BLOCK_BYTES // max(1, int(np.prod(s)) * dtype.itemsize))
                 for l, s in shapes.items()}
        with ActWriter(path, shapes, sum(n_rows), attrs=attrs, layer_attrs=layer_attrs,
                       stim_ids=stim_ids, compression=compression, dtype=dtype,
                       force=force) as w, \
                progress(total=total_bytes, desc="copying shards", unit="B", unit_scale=True,
                         enabled=show_progress) as bar:
            for layer, shape in shapes.items():
                offset = 0
                row_bytes = int(np.prod(shape)) * dtype.itemsize
                for f, n in zip(files, n_rows):
                    for lo in range(0, n, block[layer]):
                        hi = min(n, lo + block[layer])
                        rows = f.read(layer, stim=slice(lo, hi))     # checksums checked
                        w.write(layer, offset + lo, rows.reshape((hi - lo,) + tuple(shape)))
                        bar.update((hi - lo) * row_bytes)
                    offset += n
    finally:
        for f in files:
            f.close()
    return Path(path)
