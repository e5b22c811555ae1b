"""Top stimuli of targets (``db_topstim``; DNNBrain's dnn_topstim and Fig. 7A).

- :func:`network_top_stimuli` -- run the network over the stimuli once, batch by
  batch, keeping only a running top-N (and bottom-N) per target
  (:class:`dnnsparse.algo.ranking.RunningTopN`): memory is flat in the number of
  stimuli.
- :func:`act_top_stimuli` -- the same ranking from an ``.act.h5`` file, read layer by
  layer in chunks of rows; targets name channels/positions of the network's layer and
  are mapped onto what the file stores (masked channels, pooled maps).
- :func:`write_topstim_outputs` -- the tidy table (``target, end, rank, stimID,
  value``), its provenance (a JSON sidecar of the same name, :func:`run_provenance`)
  and one figure per target with its images in rank order.

Ties are broken by stimulus order (the earlier stimulus ranks first), as a stable
argsort of all values would.
"""
import datetime
import json
import logging
import math
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from PIL import Image

from .. import __version__
from ..algo.ranking import RunningTopN
from ..base.activation import Activation
from ..errors import FileFormatError, InputError, UnknownLayerError
from ..io import atomic_output_dir
from ..io.table import write_table
from ..model import (parse_target, resolve_network_targets, resolve_targets,
                     stored_target_values, target_value_batches)
from ..utils.filehash import sha256_file
from ..utils.progress import progress
from ..utils.validation import check_scalar
from ..viz import plot_top_stimuli
from ._align import align_stimuli
from ._rf import _file_stem

__all__ = ["TABLE_SUFFIXES", "TopStimResult", "act_top_stimuli", "check_topstim_request",
           "network_attrs", "network_top_stimuli", "run_provenance", "write_topstim_outputs"]

log = logging.getLogger(__name__)

TABLE_SUFFIXES = (".csv", ".tsv")

# rows of an .act.h5 layer read at once: about this many bytes
_CHUNK_BYTES = 1 << 25


@dataclass
class TopStimResult:
    """Each target's best (and worst) stimuli.

    Attributes
    ----------
    targets : list of Target
    ranks : dict of str to (values, indices)
        ``{"top": ..., "bottom": ...}``; arrays ``(k, n_targets)`` in rank order,
        ``k = min(n, n_stim)``; indices are rows of the stimulus table (or file).
    stim_ids : ndarray of str
        Of every stimulus, in the order ranked.
    attrs : dict
        Where the values came from (network or file, options).
    paths : list of Path or None
        The image of every ranked row (for the figures), when known.
    """
    targets: list
    ranks: dict
    stim_ids: np.ndarray
    attrs: dict = field(default_factory=dict)
    paths: list = None

    def table(self):
        """Tidy columns ``target, end, rank, stimID, value`` (rank 1 is the best)."""
        cols = {k: [] for k in ("target", "end", "rank", "stimID", "value")}
        for j, t in enumerate(self.targets):
            for end, (values, indices) in self.ranks.items():
                for r in range(len(values)):
                    cols["target"].append(t.name)
                    cols["end"].append(end)
                    cols["rank"].append(r + 1)
                    cols["stimID"].append(str(self.stim_ids[indices[r, j]]))
                    cols["value"].append(float(values[r, j]))
        return cols


def check_topstim_request(n, *, table_name="topstim.csv"):
    """Checks needing no input file: ``n`` >= 1 and a ``.csv``/``.tsv`` table name."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise InputError(f"-top {n}: give the number of stimuli to keep per target, a whole "
                         f"number >= 1.")
    name = Path(table_name)
    if name.suffix.lower() not in TABLE_SUFFIXES or name.name != str(table_name):
        raise InputError(f"-table {table_name}: give a file name ending in .csv or .tsv "
                         f"(written inside -out).")
    return n


def _ends(n, n_targets, bottom):
    ends = {"top": RunningTopN(n, n_targets=n_targets, largest=True)}
    if bottom:
        ends["bottom"] = RunningTopN(n, n_targets=n_targets, largest=False)
    return ends


def _unique(targets):
    return list({t.name: t for t in targets}.values())


def _warn_short(n, n_stim):
    if n > n_stim:
        log.warning("-top %d is more than the %d stimuli; every stimulus is ranked.", n, n_stim)


def network_top_stimuli(dnn, stim, specs, *, n, stat="mean", bottom=False, batch_size=32,
                        device="cpu", workers=None, show_progress=True):
    """The ``n`` stimuli with the largest (and smallest) value of each target.

    Parameters
    ----------
    dnn : DNN
    stim : Stimulus
        Image stimuli (missing files are reported before any computation).
    specs : sequence of str or Target
        Targets (:func:`dnnsparse.model.parse_target`).
    n : int
        Stimuli per target and end (all of them when there are fewer).
    stat : str, default="mean"
        Statistic of channel targets written without ``@STAT``.
    bottom : bool, default=False
        Also keep the ``n`` smallest values.
    batch_size, device, workers, show_progress
        As in :func:`dnnsparse.model.extract`.

    Returns
    -------
    TopStimResult
    """
    check_topstim_request(n)
    check_scalar(batch_size, name="batch_size", kind=int, min_val=1)
    if len(stim) == 0:
        raise InputError("the stimulus table has no rows.")
    paths = stim.check_files()
    dnn.to(device)
    targets = _unique(resolve_network_targets(specs, dnn, stat=stat))
    _warn_short(n, len(stim))
    ends = _ends(n, len(targets), bottom)
    with progress(total=len(stim), desc=f"{dnn.name} top stimuli", unit="img",
                  enabled=show_progress) as bar:
        for start, values in target_value_batches(dnn, paths, targets, batch_size=batch_size,
                                                  device=device, workers=workers):
            for running in ends.values():
                running.update(values, start)
            bar.update(len(values))
    return TopStimResult(targets, {k: (e.values, e.indices) for k, e in ends.items()},
                         np.asarray(stim.ids, dtype=str), network_attrs(dnn),
                         paths=list(paths))


#: What a result records of the network or file its values came from.
_SOURCE_ATTRS = ("net", "weights", "weights_sha256", "preprocess", "lesion", "topk",
                 "topk_mode", "ablate", "ablate_mode")


def network_attrs(dnn):
    """``{"source": "network", net, weights, ..., lesion, topk, ablate}`` of ``dnn``.

    The network's provenance as ``db_act`` writes it into an ``.act.h5`` file
    (keys :data:`_SOURCE_ATTRS`; ``topk*``/``ablate*`` only when in place).
    """
    return {"source": "network", "net": dnn.name, "weights": dnn.weights,
            "weights_sha256": dnn.weights_sha256, "preprocess": dnn.preprocess,
            "lesion": "; ".join(dnn.lesions), **dnn.topk_attrs(), **dnn.ablation_attrs()}


def _plain(value):
    """``value`` as JSON can hold it (NumPy scalars/arrays from HDF5 attributes)."""
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def _file_record(path):
    if path is None:
        return None
    return {"path": str(Path(path).resolve()), "sha256": sha256_file(path)}


def run_provenance(attrs, *, command=None, files=None, **request):
    """What a run did, for the JSON sidecar of its table.

    Parameters
    ----------
    attrs : dict
        Where the values came from (:func:`network_attrs`, or an ``.act.h5`` file's
        attributes; ``source`` is the file or ``"network"``).
    command : str, optional
        The command line as typed.
    files : dict of str to path, optional
        Input files (``{"stim": ..., "act": ...}``; None values skipped), recorded with
        their absolute path and SHA-256 (:func:`dnnsparse.utils.filehash.sha256_file`).
    **request
        The options of the run (targets, statistic, N, ...).

    Returns
    -------
    dict
        JSON-serialisable.

    Examples
    --------
    >>> run_provenance({"source": "network", "net": "alexnet"}, n=5)["n"]
    5
    """
    record = {"command": command, "dnnsparse_version": __version__,
              "created": datetime.datetime.now(datetime.timezone.utc)
                                          .isoformat(timespec="seconds"),
              **{k: _plain(v) for k, v in attrs.items()},
              **{k: _plain(v) for k, v in request.items()}}
    for name, path in (files or {}).items():
        if path is not None:
            record[name] = _file_record(path)
    return record


class _StoredLayers:
    """What :func:`resolve_targets` needs of a network, answered by an activation file."""

    def __init__(self, act, path):
        self.name, self.layers, self._path = str(path), list(act.layers), path

    def resolve(self, layer):
        if layer not in self.layers:
            raise UnknownLayerError(f"layer {layer!r} is not in {self._path}; it holds "
                                    f"{', '.join(self.layers)}.")
        return layer


def _selection(attrs):
    """The stored 1-based channels/rows/cols of a layer (absent: all)."""
    return {a: [int(v) for v in np.atleast_1d(attrs[a])] for a in ("chn", "row", "col")
            if a in attrs and np.size(attrs[a])}


def _raw_shape(act, layer):
    raw = act.layer_attrs(layer).get("raw_shape")
    if raw is not None and np.size(raw) == 3:
        return tuple(int(v) for v in np.asarray(raw))
    return tuple(act.shape(layer)[1:])


def _stored_target(t, act, path):
    """``t`` with channel/row/col as indices of what ``path`` stores of its layer."""
    attrs = act.layer_attrs(t.layer)
    sel, pool = _selection(attrs), str(attrs.get("pool") or "")
    words = {"chn": "channel", "row": "row", "col": "column"}

    def index(axis, value):
        if axis not in sel:
            return value
        if value not in sel[axis]:
            raise InputError(f"target {t.name}: {words[axis]} {value} of layer {t.layer!r} is "
                             f"not stored in {path} (it holds {words[axis]}s "
                             f"{sel[axis][:10]}{'...' if len(sel[axis]) > 10 else ''}); "
                             f"extract it with db_act, or run the network (-net).")
        return sel[axis].index(value) + 1

    chn = index("chn", t.channel)
    if pool and _raw_shape(act, t.layer)[1:] != (1, 1):
        if t.row is not None:
            raise InputError(f"target {t.name}: {path} stores layer {t.layer!r} pooled "
                             f"({pool}), without positions; use an unpooled file or -net.")
        if t.stat != pool:
            raise InputError(f"target {t.name}: {path} stores layer {t.layer!r} pooled by "
                             f"{pool}; only {t.layer}:CHN@{pool} targets can be read from it "
                             f"(or run the network, -net).")
        return replace(t, channel=chn, stat="mean")       # the stored value itself
    row = index("row", t.row) if t.row is not None else None
    col = index("col", t.col) if t.col is not None else None
    return replace(t, channel=chn, row=row, col=col)


def _resolve_stored(specs, act, path, stat):
    parsed = [s if not isinstance(s, str) else parse_target(s, stat=stat) for s in specs]
    for spec, t in zip(specs, parsed):
        if t.layer not in act.layers:
            raise UnknownLayerError(f"target {spec}: layer {t.layer!r} is not in {path}; it "
                                    f"holds {', '.join(act.layers)}.")
    shapes = {t.layer: _raw_shape(act, t.layer) for t in parsed}
    return _unique(resolve_targets(specs, _StoredLayers(act, path), stat=stat, shapes=shapes))


def act_top_stimuli(path, specs, *, n, stat="mean", bottom=False, stim=None, stim_path=None,
                    chunk_rows=None, show_progress=True):
    """The top (and bottom) ``n`` stimuli of each target from an ``.act.h5`` file.

    Each target layer is read once, ``chunk_rows`` rows at a time (default: about
    32 MB), and its targets' values computed as the network path computes them
    (:func:`dnnsparse.model.stored_target_values`); the ranking is the file's row
    order. Targets are given in the network's terms (1-based channel, position) and
    mapped onto the file's stored channels; a pooled layer answers only targets of
    its own statistic. ``stim`` (optional, for the figures) is lined up with the
    file's rows by stimulus ID before any work (:func:`align_stimuli`).

    Returns
    -------
    TopStimResult
    """
    check_topstim_request(n)
    with Activation.load(path) as act:
        targets = _resolve_stored(specs, act, path, stat)
        if act.n_stim == 0:
            raise InputError(f"{path} holds no stimuli.")
        if act.category_labels is not None or act.attrs.get("aggregate"):
            raise InputError(f"{path} holds per-category means, not one row per stimulus; "
                             f"extract without -aggregate to rank stimuli.")
        paths = None
        if stim is not None:
            paths = align_stimuli(stim, act, stim_path=stim_path or "the stimulus table",
                                  act_path=str(path)).check_files()
        _warn_short(n, act.n_stim)
        stored = [_stored_target(t, act, path) for t in targets]
        layers = list(dict.fromkeys(t.layer for t in targets))
        ends = {k: (np.empty((min(n, act.n_stim), len(targets))),
                    np.empty((min(n, act.n_stim), len(targets)), dtype=np.int64))
                for k in (("top", "bottom") if bottom else ("top",))}
        with progress(total=act.n_stim * len(layers), desc="top stimuli", unit="row",
                      enabled=show_progress) as bar:
            for layer in layers:
                cols = [j for j, t in enumerate(targets) if t.layer == layer]
                running = _ends(n, len(cols), bottom)
                shape = act.shape(layer)
                rows = chunk_rows or max(1, _CHUNK_BYTES // (4 * math.prod(shape[1:])))
                for start in range(0, act.n_stim, rows):
                    data = act.get(layer, stim=slice(start, start + rows))
                    if data.ndim == 2:
                        data = data[:, :, None, None]
                    values = stored_target_values(np.ascontiguousarray(data),
                                                  [stored[j] for j in cols])
                    for r in running.values():
                        r.update(values, start)
                    bar.update(len(data))
                for k, r in running.items():
                    ends[k][0][:, cols], ends[k][1][:, cols] = r.values, r.indices
        attrs = {"source": str(path), **{k: v for k, v in act.attrs.items()
                                         if k in _SOURCE_ATTRS}}
        stim_ids = np.asarray(act.stim_ids, dtype=str)
    return TopStimResult(targets, ends, stim_ids, attrs, paths=paths)


def _thumbnail(path, size=160):
    try:
        with Image.open(path) as img:
            img = img.convert("RGB")
            img.thumbnail((size, size))
            return np.asarray(img)
    except (OSError, ValueError) as exc:
        raise FileFormatError(f"cannot read image {path} for the figures: {exc}.") from None


def _short(stim_id, width=24):
    text = str(stim_id)
    return text if len(text) <= width else "..." + text[-(width - 3):]


def _figure_sections(result, j, paths):
    sections = {}
    for end, (values, indices) in result.ranks.items():
        sections[end] = [(_thumbnail(paths[indices[r, j]]),
                          f"{r + 1}. {_short(result.stim_ids[indices[r, j]])}\n"
                          f"{values[r, j]:.4g}") for r in range(len(values))]
    return sections


def write_topstim_outputs(result, out_dir, *, table_name="topstim.csv", figures=True,
                          provenance=None, force=False):
    """Write the table and (with ``figures``) ``topstim_<target>.png`` into ``out_dir``.

    Parameters
    ----------
    result : TopStimResult
    out_dir : path
        Written as a whole (:func:`~dnnsparse.io.atomic_output_dir`).
    figures : bool, default=True
        One figure per target; needs ``result.paths``.
    table_name : str, default="topstim.csv"
        ``.csv`` or ``.tsv``.
    provenance : dict, optional
        Written as JSON beside the table (``topstim.json`` for ``topstim.csv``),
        e.g. :func:`run_provenance`; the targets and their order are added.

    Returns
    -------
    list of Path
        The files under their final names.
    """
    check_topstim_request(1, table_name=table_name)
    paths = result.paths
    if figures and paths is None:
        raise InputError("figures need the images: give -stim, or -no-figures.")
    with atomic_output_dir(out_dir, force=force) as tmp:
        written = [write_table(tmp / table_name, result.table(), force=True)]
        if provenance is not None:
            record = {**provenance, "targets": [t.name for t in result.targets],
                      "table": table_name}
            sidecar = tmp / f"{Path(table_name).stem}.json"
            sidecar.write_text(json.dumps(record, indent=2) + "\n")
            written.append(sidecar)
        stems = set()
        for j, t in enumerate(result.targets if figures else []):
            stem = base = f"topstim_{_file_stem(t.name)}"
            k = 1
            while stem in stems:             # conv1:2@1,1 and conv1:2,1,1 share a stem
                k += 1
                stem = f"{base}_{k}"
            stems.add(stem)
            written.append(plot_top_stimuli(tmp / f"{stem}.png",
                                            _figure_sections(result, j, paths),
                                            title=t.name, force=True))
    return [Path(out_dir) / Path(p).relative_to(tmp) for p in written]
