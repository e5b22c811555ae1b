"""DNN activation files (``.act.h5``), DNNBrain-compatible and self-describing.

Layout (HDF5, read with h5py)::

    /<layer>          float32 dataset (n_stim, n_chn, n_row, n_col) per layer;
                      FC layers (n_stim, n_unit, 1, 1). Chunked along stimuli,
                      compressed, Fletcher-32 checksummed, written batch by batch.
      attrs: chn, row, col   1-based indices kept by a channel/row/col mask
                             (absent: all), as in a .dmask.csv
             raw_shape       (n_chn, n_row, n_col) of the layer before masking/pooling
             pool            spatial pooling applied ('' for none)
    file attrs: stimID       the stimulus IDs (UTF-8 strings), one per row
                label, count only in per-category files (aggregate='label')
                layers (layer order), net, weights, weights_sha256, pool,
                preprocess, stim_file, aggregate, dnnsparse_version, created, ...

The root holds layers and nothing else, because DNNBrain's reader
(``ActivationFile.read``) returns every root entry as a layer: our metadata are
attributes, which it does not look at. Files of earlier dnnsparse versions kept
``stimID``/``label``/``count`` as root datasets; they are read as well. A file
written by DNNBrain (layers only, no attributes) is read here with the layer
order of the file and stimulus IDs ``0..n-1``.

Files are written with HDF5 1.8 object headers (readable by any HDF5 since
2008), which lets an attribute hold the IDs of many thousands of stimuli.

A file merged from ``db_act -shard`` outputs (``db_merge``, :mod:`._merge`) may hold
its layers as HDF5 virtual datasets over the shard files (HDF5 >= 1.10), named by
paths relative to it. :class:`ActFile` refuses such a file when a shard is missing
or does not hold the rows the map expects (HDF5 alone would read them as NaN).
"""
import contextlib
import datetime
import os
import sys
from pathlib import Path

import h5py
import numpy as np

from .. import __version__
from ..errors import FileFormatError, InputError, UnknownLayerError
from ..utils.signals import raise_if_terminated
from ._files import atomic_output, h5_read_error, open_h5

__all__ = ["ActWriter", "ActFile", "read_act", "write_act", "META_DATASETS"]

#: Metadata that are not layers: root attributes (root datasets in files
#: written before version 0.2).
META_DATASETS = ("stimID", "label", "count")

_STR = h5py.string_dtype("utf-8")
# lzf without the byte shuffle: on ReLU activations (half zeros) shuffling makes lzf
# 1.3-1.7x slower and its files 8% larger (benchmarks/video.py (c)); deflate gains
# from it.
_COMPRESSION = {"gzip": dict(compression="gzip", compression_opts=1, shuffle=True),
                "lzf": dict(compression="lzf"),
                "none": {}, None: {}}
# HDF5 1.8 object headers: attributes beyond 64 kB (stimID of a large set).
_LIBVER = ("v108", "v108")


def _attr_value(v):
    """Attributes h5py can store: str, numbers, and arrays of them."""
    if v is None:
        return ""
    if isinstance(v, (list, tuple)) and v and all(isinstance(x, str) for x in v):
        return np.array(v, dtype=_STR)
    if isinstance(v, Path):
        return str(v)
    return v


def _meta_attr(values):
    """``values`` as an attribute: numbers as they are, text as fixed-length UTF-8."""
    values = np.asarray(values)
    if values.dtype.kind not in "UOS":
        return values, None
    encoded = [str(v).encode("utf-8") for v in values.ravel()]
    width = max([len(e) for e in encoded] + [1])
    return (np.array(encoded, dtype=f"S{width}").reshape(values.shape),
            h5py.string_dtype("utf-8", width))


def _decode(v):
    if isinstance(v, bytes):
        return v.decode("utf-8")
    if isinstance(v, np.ndarray) and v.dtype.kind in "OS":
        return [x.decode("utf-8") if isinstance(x, bytes) else str(x) for x in v]
    if isinstance(v, np.generic):
        return v.item()
    return v


def _describe(value):
    """Short text of an attribute value for messages."""
    value = np.asarray(value)
    text = " ".join(repr(_decode(value.item() if value.ndim == 0 else value)).split())
    return f"{value.dtype} {text[:60]}" if value.ndim == 0 else \
        f"an array of shape {value.shape} ({value.dtype})"


def _chunks(n_stim, shape, itemsize, batch_rows=None, target_bytes=1 << 21):
    """Chunk shape: whole layer maps, about ``target_bytes`` per chunk.

    With ``batch_rows`` (the rows written at a time) a chunk holds whole
    batches, or a batch is tiled by whole chunks, so that writing a batch never
    re-compresses a chunk that is already on disk.
    """
    per_stim = int(np.prod(shape)) * itemsize
    if per_stim > target_bytes:          # huge maps: split channels too
        n_chn = max(1, int(shape[0] * target_bytes // per_stim))
        return (1, n_chn) + tuple(shape[1:])
    rows = max(1, target_bytes // max(per_stim, 1))
    if batch_rows:
        if rows >= batch_rows:
            rows -= rows % batch_rows
        else:
            rows = max(d for d in range(1, rows + 1) if batch_rows % d == 0)
    return (int(min(rows, n_stim)),) + tuple(shape)


class _ChunkRows:
    """Rows of one dataset gathered into whole chunks before HDF5 sees them.

    The files are written without HDF5's chunk cache: after a failed write (a
    full disk) HDF5 crashes when it flushes that cache on closing. Handing it
    whole chunks keeps the cache's benefit -- a chunk is compressed once, not
    once per batch that touches it -- with the cache switched off.
    """

    def __init__(self, ds):
        self.ds = ds
        self.rows = ds.chunks[0] if ds.chunks else max(len(ds), 1)
        self.block = None

    def write(self, start, data):
        stop, n, r = start + len(data), len(self.ds), self.rows
        if start < 0 or stop > n:
            raise InputError(f"rows {start}:{stop} of {self.ds.name.lstrip('/')!r} are outside "
                             f"its {n} stimuli.")
        i = start
        while i < stop:
            b_start = (i // r) * r
            b_stop = min(b_start + r, n)
            j = min(stop, b_stop)
            if i == b_start and j == b_stop:               # whole chunks: write now
                if self.block is not None and self.block[0] == b_start:
                    self.block = None                      # superseded
                self.ds[i:j] = data[i - start:j - start]
            else:
                if self.block is None or self.block[0] != b_start:
                    self.flush()
                    self.block = (b_start, np.empty((b_stop - b_start,) + self.ds.shape[1:],
                                                    dtype=self.ds.dtype),
                                  np.zeros(b_stop - b_start, dtype=bool))
                _, buf, filled = self.block
                buf[i - b_start:j - b_start] = data[i - start:j - start]
                filled[i - b_start:j - b_start] = True
                if filled.all():
                    self.flush()
            i = j

    def flush(self):
        """Write the rows gathered so far (a partly filled chunk only at the end)."""
        if self.block is None:
            return
        b_start, buf, filled = self.block
        self.block = None
        edges = np.flatnonzero(np.diff(np.concatenate(([0], filled.view(np.int8), [0]))))
        for lo, hi in zip(edges[::2], edges[1::2]):
            self.ds[b_start + lo:b_start + hi] = buf[lo:hi]


def _write_file_attrs(f, layers, attrs):
    """Root attributes of a new file: layer order, version, time, then ``attrs``."""
    attrs = {"layers": list(layers), "dnnsparse_version": __version__,
             "created": datetime.datetime.now().isoformat(timespec="seconds"), **attrs}
    for k, v in attrs.items():
        f.attrs[k] = _attr_value(v)


def _write_meta_attr(f, name, values):
    """Store metadata ``name`` (``stimID``, ``label`` or ``count``) as a file attribute."""
    if name not in META_DATASETS:
        raise InputError(f"metadata {name!r} is not one of {', '.join(META_DATASETS)}.")
    data, dtype = _meta_attr(values)
    f.attrs.create(name, data=data, dtype=dtype)


class ActWriter:
    """Stream activations into a new ``.act.h5`` file, batch by batch.

    The file is written under a temporary name and renamed when the ``with``
    block ends without error; on error (or Ctrl-C) the partial file is deleted.

    Parameters
    ----------
    path : str or Path
    shapes : dict of str to tuple
        ``{layer: (n_chn, n_row, n_col)}`` in layer order, as stored.
    n_stim : int
    attrs : dict, optional
        File attributes (network, weights, ...).
    layer_attrs : dict of str to dict, optional
        Per-layer attributes (``chn``/``row``/``col`` 1-based, ``raw_shape``, ``pool``).
    stim_ids : sequence of str, optional
    compression : {"gzip", "lzf", "none"}, default="lzf"
        "lzf" is fast and built into h5py; "gzip" (level 1, byte-shuffled) is readable
        by every HDF5 tool; "none" writes at disk speed. Every choice keeps the
        checksum.
    checksum : bool, default=True
        Store a Fletcher-32 checksum with every chunk (a standard HDF5 filter):
        reading damaged data then fails instead of returning wrong values.
    dtype : default=float32
    batch_rows : int, optional
        Rows written per :meth:`write` call; chunks are aligned to them.
    force : bool, default=False

    Examples
    --------
    >>> with ActWriter("a.act.h5", {"fc1": (8, 1, 1)}, n_stim=2) as w:   # doctest: +SKIP
    ...     w.write("fc1", 0, np.zeros((2, 8, 1, 1)))
    """

    def __init__(self, path, shapes, n_stim, *, attrs=None, layer_attrs=None, stim_ids=None,
                 compression="lzf", checksum=True, dtype=np.float32, batch_rows=None,
                 force=False):
        if compression not in _COMPRESSION:
            raise InputError(f"Unknown compression={compression!r}; choose gzip, lzf or none.")
        self.path = Path(path)
        self.shapes = {k: tuple(int(s) for s in v) for k, v in shapes.items()}
        self.n_stim = int(n_stim)
        self._attrs = dict(attrs or {})
        self._layer_attrs = dict(layer_attrs or {})
        self._stim_ids = stim_ids
        self._compression = dict(_COMPRESSION[compression], fletcher32=bool(checksum))
        self._dtype = np.dtype(dtype)
        self._batch_rows = batch_rows
        self._force = force
        self._datasets = {}
        self._stack = None
        self.file = None

    def __enter__(self):
        reserved = sorted(set(self._attrs) & set(META_DATASETS))
        if reserved:
            raise InputError(f"file attribute(s) {reserved} are reserved for the stimulus "
                             f"IDs and category metadata; give them as stim_ids/meta.")
        self._stack = contextlib.ExitStack()
        tmp = self._stack.enter_context(atomic_output(self.path, force=self._force))
        try:
            # No chunk cache (see _ChunkRows); old object headers as DNNBrain's h5py reads.
            self.file = h5py.File(tmp, "w", rdcc_nbytes=0, libver=_LIBVER)
            self._create()
        except BaseException:
            self._abort(*sys.exc_info())
            raise
        return self

    def _create(self):
        f = self.file
        _write_file_attrs(f, self.shapes, self._attrs)
        for layer, shape in self.shapes.items():
            if not layer or layer in META_DATASETS or "/" in layer:
                raise InputError(f"layer name {layer!r} cannot be stored in an .act.h5 file.")
            ds = f.create_dataset(layer, shape=(self.n_stim,) + shape, dtype=self._dtype,
                                  chunks=_chunks(self.n_stim, shape, self._dtype.itemsize,
                                                 self._batch_rows) if self.n_stim else None,
                                  **(self._compression if self.n_stim else {}))
            for k, v in self._layer_attrs.get(layer, {}).items():
                ds.attrs[k] = _attr_value(v)
            self._datasets[layer] = _ChunkRows(ds)
        if self._stim_ids is not None:
            self.write_meta("stimID", [str(s) for s in self._stim_ids])

    def write(self, layer, start, data):
        """Write ``data`` (batch, n_chn, n_row, n_col) at stimulus rows ``start:start+batch``."""
        raise_if_terminated()
        self._datasets[layer].write(start, data)

    def write_meta(self, name, values):
        """Store metadata ``name`` (``stimID``, ``label`` or ``count``) as a file attribute."""
        _write_meta_attr(self.file, name, values)

    def _close_quietly(self):
        """Close the HDF5 file after an error (its own errors would hide the first one)."""
        self._datasets = {}
        f, self.file = self.file, None
        if f is not None:
            with contextlib.suppress(Exception):
                f.close()

    def _abort(self, exc_type, exc, tb):
        """Close the file, then let atomic_output delete it; a full disk or read-only
        file system comes back from there as one OutputWriteError."""
        self._close_quietly()
        self._stack.__exit__(exc_type, exc, tb)

    def __exit__(self, exc_type, exc, tb):
        # Order matters: HDF5 objects are released and the file closed before
        # atomic_output renames (success) or deletes (error) the temporary file.
        if exc_type is None:
            try:
                for rows in self._datasets.values():
                    rows.flush()
                self._datasets = {}
                self.file.close()
                self.file = None
            except BaseException:
                exc_type, exc, tb = sys.exc_info()
                self._abort(exc_type, exc, tb)
                raise
            self._stack.__exit__(None, None, None)
            return False
        self._abort(exc_type, exc, tb)
        return False


def write_act(path, data, *, stim_ids=None, attrs=None, layer_attrs=None, meta=None,
              force=False, compression="lzf", checksum=True):
    """Write a whole ``{layer: array (n_stim, n_chn, n_row, n_col)}`` dict at once.

    ``meta`` holds category metadata such as ``{"label": ..., "count": ...}``.
    """
    data = {k: np.asarray(v) for k, v in data.items()}
    n = {v.shape[0] for v in data.values()}
    if len(n) > 1:
        raise InputError(f"layers have different numbers of stimuli: "
                         f"{ {k: v.shape[0] for k, v in data.items()} }")
    n_stim = n.pop() if n else 0
    shapes = {k: v.shape[1:] for k, v in data.items()}
    dtype = np.result_type(*data.values()) if data else np.float32
    with ActWriter(path, shapes, n_stim, attrs=attrs, layer_attrs=layer_attrs,
                   stim_ids=stim_ids, compression=compression, checksum=checksum,
                   dtype=dtype, force=force) as w:
        for k, v in data.items():
            w.write(k, 0, v)
        for k, v in (meta or {}).items():
            w.write_meta(k, v)
    return Path(path)


def _sorted_take(ds, axis, index):
    """Read ``index`` along ``axis`` of an h5py dataset in any order, with repeats."""
    index = np.asarray(index, dtype=np.int64)
    uniq, inverse = np.unique(index, return_inverse=True)
    sel = [slice(None)] * ds.ndim
    sel[axis] = uniq if len(uniq) > 1 else slice(int(uniq[0]), int(uniq[0]) + 1)
    block = ds[tuple(sel)]
    return np.take(block, inverse, axis=axis)


class ActFile:
    """Lazy read access to an ``.act.h5`` file (ours or DNNBrain's).

    Nothing is loaded until a layer (or a slice of it) is asked for.

    Examples
    --------
    >>> with ActFile("a.act.h5") as f:                     # doctest: +SKIP
    ...     conv5 = f.read("conv5_relu", stim=slice(0, 100))
    """

    def __init__(self, path):
        self.path = Path(path)
        self._sources = {}               # shards of virtual layers: {path: {name: shape}}
        self.file = open_h5(path, what="activation file")
        try:
            self._read_layout()
        except BaseException:
            self.file.close()            # a refused file is not left open
            raise

    def _read_layout(self):
        f = self.file
        # stimID/label/count are read on demand (stim_ids, meta), not as attributes
        self.attrs = {k: _decode(f.attrs[k]) for k in f.attrs if k not in META_DATASETS}
        if "layers" in f.attrs:
            layers = self._listed_layers(f.attrs["layers"])
        else:   # DNNBrain file: every dataset is a layer, in the file's order
            layers = [k for k in f.keys() if isinstance(f.get(k, getclass=True), type)
                      and issubclass(f.get(k, getclass=True), h5py.Dataset)
                      and k not in META_DATASETS]
        missing = [l for l in layers if l not in f]
        if missing:
            raise FileFormatError(f"{self.path}: layers {missing} are listed but missing; "
                                  f"the file is incomplete.")
        for l in layers:
            self._check_layer(l)
        self.layers = layers
        ns = {f[l].shape[0] for l in layers}
        if len(ns) > 1:
            raise FileFormatError(f"{self.path}: layers have different numbers of stimuli "
                                  f"{ {l: f[l].shape[0] for l in layers} }.")
        self.n_stim = ns.pop() if ns else 0

    def _listed_layers(self, value):
        """The ``layers`` attribute as a list of names; one line if it is not one."""
        names = np.asarray(value)
        if names.size == 0:
            return []
        if names.ndim > 1 or names.dtype.kind not in "OSU":
            raise FileFormatError(f"{self.path}: the 'layers' attribute must list the layer "
                                  f"names (text, one per layer); it holds "
                                  f"{_describe(value)}. Recreate the file or remove the "
                                  f"attribute (the datasets are then read as layers).")
        return [str(n) for n in _decode(np.atleast_1d(names))]

    def _check_layer(self, name):
        """A layer must be a numeric dataset of shape (n, units) or (n, chn, row, col)."""
        kind = self.file.get(name, getclass=True)
        if kind is None or not issubclass(kind, h5py.Dataset):
            raise FileFormatError(f"{self.path}: layer {name!r} is an HDF5 group, not a "
                                  f"dataset of activations; the file is not an activation "
                                  f"file (or was changed by another program).")
        ds = self.file[name]
        if ds.dtype.kind not in "biuf":
            what = "text" if ds.dtype.kind in "OSU" else f"{ds.dtype} values"
            raise FileFormatError(f"{self.path}: layer {name!r} holds {what}, not numbers; "
                                  f"a layer must be a numeric (n_stim, n_chn, n_row, n_col) "
                                  f"dataset.")
        if ds.ndim not in (2, 4):
            raise FileFormatError(f"{self.path}: dataset {name!r} has shape {ds.shape}; "
                                  f"expected (n_stim, n_chn, n_row, n_col).")
        if ds.is_virtual:
            self._check_virtual(name, ds)

    def _check_virtual(self, name, ds):
        """Every shard a virtual layer maps (``db_merge``) must be there, with the layer.

        HDF5 would read the rows of a missing shard as the fill value; here the file
        is refused instead, naming the shard. Relative names are looked up from the
        folder of this file, as HDF5 does first.
        """
        folder = Path(os.path.abspath(self.path)).parent
        for source in ds.virtual_sources():
            if source.file_name == ".":                  # this file itself
                continue
            name_on_disk = source.file_name.replace("%%", "%")
            where = Path(name_on_disk)
            where = where if where.is_absolute() else folder / where
            lo, hi = source.vspace.get_select_bounds()   # the rows it fills here
            shape = tuple(int(b) - int(a) + 1 for a, b in zip(lo, hi))
            found = self._source_shapes(where)
            if found is None:
                problem = "is missing" if not where.is_file() else "is not an HDF5 file"
            elif source.dset_name not in found:
                problem = f"has no dataset {source.dset_name!r}"
            elif found[source.dset_name] != shape:
                problem = (f"holds {source.dset_name!r} with shape "
                           f"{found[source.dset_name]}, not {shape}")
            else:
                problem = None
            if problem:
                raise FileFormatError(
                    f"{self.path}: layer {name!r} is a virtual dataset (db_merge) over "
                    f"shard files, and shard {where} {problem}; keep the shards next to "
                    f"the merged file as they were, or merge them with db_merge -copy.")

    def _source_shapes(self, path):
        """``{dataset: shape}`` at the root of the HDF5 file ``path`` (None: unreadable)."""
        cache = self._sources
        if path not in cache:
            try:
                with h5py.File(path, "r") as src:
                    cache[path] = {k: v.shape for k, v in src.items()
                                   if isinstance(v, h5py.Dataset)}
            except OSError:
                cache[path] = None
        return cache[path]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        if self.file is not None and self.file.id.valid:
            self.file.close()

    def _dataset(self, layer):
        if layer not in self.layers:
            raise UnknownLayerError(f"layer {layer!r} is not in {self.path}; it has "
                                    f"{', '.join(self.layers)}.")
        return self.file[layer]

    def shape(self, layer):
        """Stored shape ``(n_stim, n_chn, n_row, n_col)`` of ``layer``."""
        s = self._dataset(layer).shape
        return s if len(s) == 4 else (s[0], s[1], 1, 1)

    def layer_attrs(self, layer):
        return {k: _decode(v) for k, v in self._dataset(layer).attrs.items()}

    def _meta(self, name):
        """Metadata ``name``: a root attribute, or a root dataset in older files; or None."""
        if name in self.file.attrs:
            return self.file.attrs[name]
        if name in self.file and isinstance(self.file[name], h5py.Dataset):
            try:
                return self.file[name][()]
            except OSError as exc:
                raise h5_read_error(self.path, f"dataset {name!r}", exc,
                                    dataset=self.file[name]) from None
        return None

    @property
    def has_stim_ids(self):
        """Whether the file stores its rows' stimulus IDs (else :attr:`stim_ids` counts)."""
        return self._meta("stimID") is not None

    @property
    def stim_ids(self):
        ids = self._meta("stimID")
        if ids is None:
            return np.arange(self.n_stim).astype(str)
        ids = np.array(_decode(np.atleast_1d(ids)), dtype=str)
        if len(ids) != self.n_stim:
            raise FileFormatError(f"{self.path}: {len(ids)} stimulus IDs for {self.n_stim} "
                                  f"rows of activations; the file is inconsistent.")
        return ids

    def meta(self, name):
        """Category metadata (``label``, ``count``) as an array, or None.

        Text values come back as str (bytes in files of earlier versions).
        """
        value = self._meta(name)
        if isinstance(value, np.ndarray) and value.dtype.kind == "S" and name in self.file.attrs:
            return np.array(_decode(value), dtype=str)
        return value

    def read(self, layer, *, stim=None, chn=None, row=None, col=None):
        """Read ``layer`` as float array (n, n_chn, n_row, n_col).

        ``stim`` is a slice or index array of stimulus rows; ``chn``/``row``/``col``
        are 0-based index arrays (None: all). Only the needed part is read.
        """
        ds = self._dataset(layer)
        try:
            if stim is None or isinstance(stim, slice):
                data = ds[stim if stim is not None else slice(None)]
            else:
                data = _sorted_take(ds, 0, stim)
        except OSError as exc:        # a failed checksum, or a chunk that does not decode
            raise h5_read_error(self.path, f"layer {layer!r}", exc, dataset=ds) from None
        if data.ndim == 2:
            data = data[:, :, None, None]
        for axis, idx in ((1, chn), (2, row), (3, col)):
            if idx is not None:
                data = np.take(data, np.asarray(idx, dtype=np.int64), axis=axis)
        return data


def read_act(path, layers=None):
    """Read whole layers into memory: ``{layer: ndarray}`` in file order."""
    with ActFile(path) as f:
        return {l: f.read(l) for l in (layers or f.layers)}
