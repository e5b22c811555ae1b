"""Sharded extraction: ``db_act -shard I/N`` and ``db_merge``.

A stimulus table of ``n`` rows is cut into ``N`` contiguous ranges exactly as
``numpy.array_split(np.arange(n), N)`` cuts it: the first ``n % N`` shards get
``n // N + 1`` rows, the others ``n // N``. Shard ``I`` (1-based) is extracted into
its own ``.act.h5`` -- each job of a SLURM array (or each GPU) needs only ``I`` and
``N``, no coordination -- and records where it belongs (:func:`shard_attrs`):

==============  ==========================================================
``shard_index`` ``I`` (1-based)
``shard_count`` ``N``
``shard_rows``  ``[start, stop)`` of the shard, 0-based rows of the table
``stim_rows``   ``n``, the rows of the whole table
``stim_sha256`` SHA-256 of the whole table (:func:`stimulus_digest`)
==============  ==========================================================

beside the network, weights, layers, masks, pooling and manipulations every
``.act.h5`` records. :func:`merge_shards` joins a complete set (``1..N``, each
once, in any order) into one ``.act.h5`` and refuses files of different runs. Rows
are joined as an HDF5 virtual dataset (:func:`dnnsparse.io.write_virtual_act`,
nothing copied) or copied into a standalone file. Per-category means
(``aggregate="label"``) are combined exactly from each shard's means and
per-category counts in float64 -- ``mean_c = sum_s mean_sc * n_sc / sum_s n_sc`` --
which needs new values, so they are always copied.
"""
import hashlib
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import FileFormatError, InputError
from ..io import check_input_file, check_output_path, copy_act, write_virtual_act
from ..io.act import ActFile, ActWriter
from ..utils.progress import progress

__all__ = ["SHARD_ATTRS", "MergeResult", "check_shards", "merge_shards", "parse_shard",
           "shard_attrs", "shard_rows", "shard_stimuli", "stimulus_digest"]

log = logging.getLogger(__name__)

#: Attributes a shard records about its place in the stimulus table.
SHARD_ATTRS = ("shard_index", "shard_count", "shard_rows", "stim_rows", "stim_sha256")
# attributes allowed to differ between the shards of one run (all others must agree)
_PER_SHARD = {"shard_index", "shard_rows", "created", "stim_file"}
# root attributes with one value per row (movie frames' and clips' timing): each
# shard holds its rows' values, the merged file their concatenation
_PER_ROW = ("onset", "duration")
# dropped from the merged file (it is no shard); it says what it was made from instead
_NOT_MERGED = {"shard_index", "shard_rows", "shard_count", "created"}
_SHARD_TEXT = re.compile(r"\s*(\d+)\s*/\s*(\d+)\s*")


def parse_shard(text):
    """``"I/N"`` → ``(I, N)``, with ``1 <= I <= N``.

    >>> parse_shard("2/8")
    (2, 8)
    """
    m = _SHARD_TEXT.fullmatch(str(text))
    if m is None:
        raise InputError(f"-shard {text!r}: write I/N with whole numbers, e.g. -shard 2/8 "
                         f"(the 2nd of 8 parts of the stimulus table).")
    i, n = int(m.group(1)), int(m.group(2))
    if n < 1:
        raise InputError(f"-shard {text}: the number of shards N must be at least 1.")
    if not 1 <= i <= n:
        raise InputError(f"-shard {text}: the shard number I counts from 1 to N={n}.")
    return i, n


def shard_rows(n_rows, index, count):
    """``(start, stop)`` of shard ``index`` (1-based) of ``count`` over ``n_rows`` rows.

    The ranges of ``numpy.array_split(np.arange(n_rows), count)``.

    >>> [shard_rows(10, i, 3) for i in (1, 2, 3)]
    [(0, 4), (4, 7), (7, 10)]
    """
    q, r = divmod(int(n_rows), int(count))
    i = int(index) - 1
    start = i * q + min(i, r)
    return start, start + q + (1 if i < r else 0)


def stimulus_digest(stim):
    """SHA-256 (hex) of a stimulus table's content: type, IDs and columns.

    The folder the table points to is left out (a cluster node may mount the images
    elsewhere); for stimuli that live in one file (a video) its name is included.

    >>> from dnnsparse.base.stimulus import Stimulus
    >>> a = Stimulus(["a.png", "b.png"], root="x", columns={"label": [1, 2]})
    >>> stimulus_digest(a) == stimulus_digest(Stimulus(["a.png", "b.png"], root="y",
    ...                                                columns={"label": [1, 2]}))
    True
    """
    h = hashlib.sha256()

    def feed(tag, values):
        h.update(f"{tag}\0{len(values)}\0".encode())
        h.update("\0".join(map(str, values)).encode("utf-8", "surrogatepass"))
        h.update(b"\1")

    feed("type", [stim.type])
    if stim.type != "image" and stim.root is not None:
        feed("source", [Path(stim.root).name])
    feed("stimID", stim.ids.tolist())
    for name in sorted(stim.columns):
        feed(f"column:{name}", np.asarray(stim.columns[name]).tolist())
    return h.hexdigest()


def shard_attrs(stim, index, count):
    """The provenance attributes (:data:`SHARD_ATTRS`) of shard ``index`` of ``stim``."""
    start, stop = shard_rows(len(stim), index, count)
    return {"shard_index": int(index), "shard_count": int(count),
            "shard_rows": np.array([start, stop], dtype=np.int64),
            "stim_rows": int(len(stim)), "stim_sha256": stimulus_digest(stim)}


def shard_stimuli(stim, shard):
    """The rows of shard ``(I, N)`` of ``stim`` and their attributes.

    Parameters
    ----------
    stim : Stimulus
        The whole table.
    shard : (int, int)
        ``(I, N)`` as from :func:`parse_shard`.

    Returns
    -------
    subset : Stimulus
        Rows ``shard_rows(len(stim), I, N)``.
    attrs : dict
        :func:`shard_attrs`, to be stored in the shard's ``.act.h5``.

    Examples
    --------
    >>> sub, attrs = shard_stimuli(stim, parse_shard("2/8"))        # doctest: +SKIP
    """
    index, count = shard
    if count > len(stim):
        raise InputError(f"-shard {index}/{count}: the stimulus table has only {len(stim)} "
                         f"rows; use at most {len(stim)} shards.")
    start, stop = shard_rows(len(stim), index, count)
    return stim[start:stop], shard_attrs(stim, index, count)


# ---------------------------------------------------------------------- merging
@dataclass
class _Shard:
    path: Path
    attrs: dict
    layers: dict            # {layer: (stored shape without rows, dtype)}
    layer_attrs: dict
    n_rows: int
    stim_ids: np.ndarray
    labels: np.ndarray = None
    counts: np.ndarray = None

    @property
    def index(self):
        return int(self.attrs["shard_index"])


@dataclass
class MergeResult:
    """What :func:`merge_shards` wrote.

    Attributes
    ----------
    path : Path
    mode : {"virtual", "copy"}
    n_shards, n_rows : int
        Shards joined, rows of the merged file (stimuli, or categories).
    layers : list of str
    aggregated : bool
        Per-category means (combined, copied).
    """
    path: Path
    mode: str
    n_shards: int
    n_rows: int
    layers: list = field(default_factory=list)
    aggregated: bool = False


def _read_shard(path):
    path = check_input_file(path, what="shard")
    with ActFile(path) as f:
        missing = [a for a in SHARD_ATTRS if a not in f.attrs]
        if missing:
            raise InputError(f"{path} is not a db_act -shard output (it has no "
                             f"{missing[0]!r} attribute); give the files written by "
                             f"db_act -shard I/N.")
        return _Shard(path=path, attrs=dict(f.attrs),
                      layers={l: (f.file[l].shape[1:], f.file[l].dtype) for l in f.layers},
                      layer_attrs={l: f.layer_attrs(l) for l in f.layers},
                      n_rows=f.n_stim, stim_ids=f.stim_ids,
                      labels=f.meta("label"), counts=f.meta("count"))


def _same(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return (a.shape == b.shape and (a.dtype.kind in "OSU") == (b.dtype.kind in "OSU")
            and bool(np.array_equal(a, b)))


def _show(value):
    text = " ".join(repr(value.tolist() if isinstance(value, np.ndarray) else value).split())
    return text if len(text) <= 60 else text[:57] + "..."


def _differ(a, b, what, va, vb):
    return InputError(f"{a.path} and {b.path} differ in {what} ({_show(va)} vs {_show(vb)}); "
                      f"shards of one run must come from the same network, weights, layers, "
                      f"masks, manipulations and stimulus table.")


def _compare(ref, other):
    """Refuse ``other`` unless it comes from the same run as ``ref``."""
    for key in sorted((set(ref.attrs) | set(other.attrs)) - _PER_SHARD):
        if key in _PER_ROW and key in ref.attrs and key in other.attrs:
            continue                                  # per-row values; checked per shard
        if key not in ref.attrs or key not in other.attrs:
            has, lacks = (ref, other) if key in ref.attrs else (other, ref)
            raise InputError(f"{has.path} has the attribute {key!r} "
                             f"({_show(has.attrs[key])}) and {lacks.path} has not; shards "
                             f"of one run must come from the same network, weights, layers, "
                             f"masks, manipulations and stimulus table.")
        if not _same(ref.attrs[key], other.attrs[key]):
            raise _differ(ref, other, f"attribute {key!r}", ref.attrs[key], other.attrs[key])
    for layer, (shape, dtype) in ref.layers.items():
        oshape, odtype = other.layers[layer]
        if tuple(shape) != tuple(oshape) or dtype != odtype:
            raise _differ(ref, other, f"the shape of layer {layer!r}", (shape, str(dtype)),
                          (oshape, str(odtype)))
        la, lb = ref.layer_attrs[layer], other.layer_attrs[layer]
        for key in sorted(set(la) | set(lb)):
            if key not in la or key not in lb or not _same(la[key], lb[key]):
                raise _differ(ref, other, f"attribute {key!r} of layer {layer!r}",
                              la.get(key), lb.get(key))


def _check_rows(shard, aggregated):
    """The shard's rows are those its attributes say."""
    start, stop = (int(x) for x in np.asarray(shard.attrs["shard_rows"]).ravel()[:2])
    expected = shard_rows(shard.attrs["stim_rows"], shard.index, shard.attrs["shard_count"])
    if (start, stop) != expected:
        raise FileFormatError(f"{shard.path}: shard {shard.index}/{shard.attrs['shard_count']} "
                              f"records rows {start}:{stop} but that shard is rows "
                              f"{expected[0]}:{expected[1]} of {shard.attrs['stim_rows']}; "
                              f"the file was changed after db_act wrote it.")
    if aggregated:
        if shard.labels is None or shard.counts is None or \
                int(np.sum(shard.counts)) != stop - start:
            raise FileFormatError(f"{shard.path}: per-category counts are missing or do not "
                                  f"add up to the shard's {stop - start} stimuli.")
    elif shard.n_rows != stop - start:
        raise FileFormatError(f"{shard.path}: {shard.n_rows} rows of activations for the "
                              f"{stop - start} stimuli of shard {shard.index}; the file is "
                              f"incomplete.")
    for key in _PER_ROW:
        if key in shard.attrs and np.size(shard.attrs[key]) != shard.n_rows:
            raise FileFormatError(f"{shard.path}: {np.size(shard.attrs[key])} values of "
                                  f"{key!r} for its {shard.n_rows} rows; the file was changed "
                                  f"after db_act wrote it.")


def check_shards(paths, out=None):
    """Read and check the shard files ``paths`` (any order); return them sorted by I.

    Refused (:class:`InputError`, one line naming the files): a file that is no
    shard; two shards that differ in any attribute but their place in the table
    (network, weights and their SHA-256, layers and their masks, pooling, lesion,
    Top-K, ablation, aggregation, stimulus table hash, number of shards, ...) or in
    a layer's shape or attributes; a shard given twice; a missing shard; ``out``
    being one of the shards.
    """
    if not paths:
        raise InputError("give the shard files to merge.")
    resolved = {}
    for p in paths:
        key = os.path.realpath(p)
        if key in resolved:
            raise InputError(f"{resolved[key]} and {p} are the same file; give each shard "
                             f"once.")
        resolved[key] = p
    if out is not None and os.path.realpath(out) in resolved:
        raise InputError(f"-out {out} is one of the shards; give a new file name.")
    shards = [_read_shard(p) for p in paths]
    ref = shards[0]
    seen = {}
    count = int(ref.attrs["shard_count"])
    for s in shards:
        _compare(ref, s)
        if not 1 <= s.index <= count:
            raise FileFormatError(f"{s.path} says it is shard {s.index} of {count}; the "
                                  f"file was changed after db_act wrote it.")
        if s.index in seen:
            raise InputError(f"{seen[s.index].path} and {s.path} are both shard "
                             f"{s.index}/{s.attrs['shard_count']}; give each shard once.")
        seen[s.index] = s
    missing = [i for i in range(1, count + 1) if i not in seen]
    if missing:
        listed = ", ".join(map(str, missing[:10])) + (", ..." if len(missing) > 10 else "")
        raise InputError(f"shard(s) {listed} of {count} are missing (given: "
                         f"{', '.join(str(s.path) for s in shards[:3])}"
                         f"{', ...' if len(shards) > 3 else ''}); give all {count} shards "
                         f"of the run.")
    aggregated = ref.attrs.get("aggregate") == "label"
    shards = [seen[i] for i in range(1, count + 1)]
    for s in shards:
        _check_rows(s, aggregated)
    return shards


def _merged_attrs(shards, mode, out):
    folder = os.path.dirname(os.path.abspath(out))
    attrs = {k: v for k, v in shards[0].attrs.items() if k not in _NOT_MERGED}
    for key in _PER_ROW:
        if key in attrs:
            attrs[key] = np.concatenate([np.ravel(s.attrs[key]).astype(np.float64)
                                         for s in shards])
    attrs.update(merged_shards=len(shards), merge=mode,
                 shard_files=[Path(os.path.relpath(os.path.abspath(s.path), folder)).as_posix()
                              for s in shards])
    return attrs


def _merge_means(shards, out, *, compression, force, show_progress):
    """Per-category means of all shards: ``sum_s mean_s * count_s / sum_s count_s``."""
    kinds = {np.asarray(s.labels).dtype.kind in "OSU" for s in shards}
    if len(kinds) > 1:
        raise InputError(f"{shards[0].path} and {shards[-1].path} store category labels "
                         f"of different kinds (numbers and names).")
    labels = np.unique(np.concatenate([np.asarray(s.labels) for s in shards]))
    where = [np.searchsorted(labels, np.asarray(s.labels)) for s in shards]
    total = np.zeros(len(labels), dtype=np.int64)
    for s, w in zip(shards, where):
        np.add.at(total, w, np.asarray(s.counts, dtype=np.int64))
    first = shards[0]
    shapes = {l: shape for l, (shape, _) in first.layers.items()}
    attrs = _merged_attrs(shards, "copy", out)
    with ActWriter(out, shapes, len(labels), attrs=attrs, layer_attrs=first.layer_attrs,
                   stim_ids=labels.astype(str), compression=compression, dtype=np.float64,
                   force=force) as w, \
            progress(total=len(shapes) * len(shards), desc="combining means", unit="part",
                     enabled=show_progress) as bar:
        for layer, shape in shapes.items():
            sums = np.zeros((len(labels), int(np.prod(shape))), dtype=np.float64)
            for s, idx in zip(shards, where):
                with ActFile(s.path) as f:
                    means = f.read(layer).reshape(len(idx), -1).astype(np.float64)
                # labels are unique within a shard: the fancy index adds each row once
                sums[idx] += means * np.asarray(s.counts, dtype=np.float64)[:, None]
                bar.update()
            w.write(layer, 0, (sums / total[:, None]).reshape((len(labels),) + tuple(shape)))
        w.write_meta("label", labels)
        w.write_meta("count", total)
    return len(labels)


def merge_shards(paths, out, *, copy=False, compression="lzf", force=False,
                 show_progress=True):
    """Join the shards of one ``db_act -shard I/N`` run into one ``.act.h5`` file.

    Parameters
    ----------
    paths : list of path
        All ``N`` shard files, in any order (:func:`check_shards` refuses the rest).
    out : path
        The merged file. Its stimulus IDs (or, for per-category files, labels and
        counts) are those of the whole table; its attributes are the shards' common
        provenance plus ``merged_shards``, ``merge`` and ``shard_files`` (paths
        relative to ``out``).
    copy : bool, default=False
        False: virtual datasets over the shards (no copy; the shards must stay
        next to ``out``); True: a standalone file. Per-category means are always
        combined into a new file.
    compression : {"lzf", "gzip", "none"}
        Of a copied file.
    force, show_progress : bool

    Returns
    -------
    MergeResult

    Examples
    --------
    >>> merge_shards(["a.1-of-2.act.h5", "a.2-of-2.act.h5"], "a.act.h5")  # doctest: +SKIP
    """
    check_output_path(out, force=force)
    shards = check_shards(paths, out)
    layers = list(shards[0].layers)
    if shards[0].attrs.get("aggregate") == "label":
        if not copy:
            log.info("per-category means are combined from each shard's means and counts "
                     "into a new file; a virtual dataset cannot add them")
        n = _merge_means(shards, out, compression=compression, force=force,
                         show_progress=show_progress)
        return MergeResult(Path(out), "copy", len(shards), n, layers, aggregated=True)
    stim_ids = np.concatenate([s.stim_ids for s in shards])
    layer_attrs = shards[0].layer_attrs
    if copy:
        copy_act(out, [s.path for s in shards], attrs=_merged_attrs(shards, "copy", out),
                 layer_attrs=layer_attrs, stim_ids=stim_ids, compression=compression,
                 force=force, show_progress=show_progress)
        mode = "copy"
    else:
        write_virtual_act(out, [(s.path, s.n_rows) for s in shards], layers=shards[0].layers,
                          attrs=_merged_attrs(shards, "virtual", out), layer_attrs=layer_attrs,
                          stim_ids=stim_ids, force=force)
        mode = "virtual"
    return MergeResult(Path(out), mode, len(shards), len(stim_ids), layers)
