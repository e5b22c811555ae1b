"""Activation maps as images (``db_view``; DNNBrain's dnn_view and Fig. 4B).

- :func:`network_view` -- run the network over the stimuli, batch by batch, and keep
  for each stimulus and layer the ``top`` channels of largest mean activation with
  their maps (and the maps of any given channels); nothing else of a layer is kept.
- :func:`act_view` -- the same from an ``.act.h5`` file of unpooled layers, read in
  chunks of rows (the channel numbers are the network's, also for a file of masked
  channels).
- :func:`write_view_outputs` -- the tidy table (``stimID, layer, rank, channel,
  mean``) with its provenance (a JSON sidecar), one figure per stimulus with its top
  channels' maps laid over the photograph in its own geometry (the resize and crop
  of the preprocessing undone, :func:`dnnsparse.model.maps_on_image`), a grid of the
  given channels per stimulus and layer, and contact sheets of the stimuli.

Channel means are computed in float64 from the float32 maps (as ``db_act`` stores
them); equal means rank the lower channel first (a stable argsort).
"""
import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from ..base.activation import Activation
from ..base.stimulus import IMAGE_EXTENSIONS
from ..errors import FileFormatError, InputError, UnknownLayerError
from ..io import atomic_output_dir
from ..io.table import write_table
from ..model import input_window, layer_map_batches, maps_on_image, view_geometry
from ..utils.progress import progress
from ..utils.validation import check_scalar
from ..viz import check_colormap, plot_activation_maps, plot_top_stimuli
from ._align import align_stimuli
from ._psi import category_names
from ._rf import _file_stem
from ._topstim import _SOURCE_ATTRS, TABLE_SUFFIXES, network_attrs

__all__ = ["ViewResult", "act_view", "check_view_request", "network_view", "top_channels",
           "write_view_outputs"]

log = logging.getLogger(__name__)

# rows of an .act.h5 layer read at once: about this many bytes
_CHUNK_BYTES = 1 << 25
#: Longer side of the images drawn in the figures (maps are resampled onto it).
THUMBNAIL = 256
#: Stimuli per contact sheet (more go on further pages).
SHEET_SIZE = 100
#: Channels per row of a channel grid.
GRID_COLUMNS = 8
#: Stimuli per page of the summary figure (top_channels.png).
SUMMARY_ROWS = 8


@dataclass
class ViewResult:
    """Each stimulus's top channels per layer, with their maps.

    Attributes
    ----------
    layers : list of str
    stim_ids : ndarray of str
    top : dict of str to (channels, means)
        Per layer: ``(n_stim, k)`` 1-based channel numbers (the network's) in rank
        order and their mean activations (float64).
    top_maps : dict of str to ndarray (n_stim, k, n_row, n_col)
        Their maps over the network's input (float32).
    channels : list of int
        The 1-based channels asked for by name (may be empty).
    channel_means, channel_maps : dict of str to ndarray
        Theirs, ``(n_stim, len(channels))`` and ``(n_stim, len(channels), n_row, n_col)``.
    geometry : dict
        ``preprocess``, ``input_size``, ``resize_size`` (:func:`dnnsparse.model.view_geometry`).
    attrs : dict
        Where the maps came from.
    paths : list of Path or None
        The image of every row (for the figures).
    """
    layers: list
    stim_ids: np.ndarray
    top: dict
    top_maps: dict
    channels: list = field(default_factory=list)
    channel_means: dict = field(default_factory=dict)
    channel_maps: dict = field(default_factory=dict)
    geometry: dict = field(default_factory=dict)
    attrs: dict = field(default_factory=dict)
    paths: list = None

    def table(self):
        """Tidy columns ``stimID, layer, rank, channel, mean`` (rank 1: largest mean)."""
        cols = {k: [] for k in ("stimID", "layer", "rank", "channel", "mean")}
        for i, stim_id in enumerate(self.stim_ids):
            for layer in self.layers:
                channels, means = self.top[layer]
                for r in range(channels.shape[1]):
                    cols["stimID"].append(str(stim_id))
                    cols["layer"].append(layer)
                    cols["rank"].append(r + 1)
                    cols["channel"].append(int(channels[i, r]))
                    cols["mean"].append(float(means[i, r]))
        return cols


def check_view_request(*, top=1, channels=None, alpha=0.6, cmap="jet",
                       table_name="view.csv"):
    """Checks needing no input file; returns the channels as a list of int."""
    if isinstance(top, bool) or not isinstance(top, (int, np.integer)) or top < 1:
        raise InputError(f"-top {top}: give the number of channels to show per layer, a "
                         f"whole number >= 1.")
    channels = list(channels or [])
    for c in channels:
        if isinstance(c, bool) or not isinstance(c, (int, np.integer)) or c < 1:
            raise InputError(f"-channel {c}: channels are numbered from 1.")
    if len(set(channels)) != len(channels):
        raise InputError(f"-channel {' '.join(map(str, channels))}: a channel is given "
                         f"twice.")
    check_scalar(alpha, name="-alpha", min_val=0, max_val=1)
    check_colormap(cmap)
    name = Path(table_name)
    if name.suffix.lower() not in TABLE_SUFFIXES or name.name != str(table_name):
        raise InputError(f"-table {table_name}: give a file name ending in .csv or .tsv "
                         f"(written inside -out).")
    return [int(c) for c in channels]


def top_channels(data, k):
    """Indices (0-based) and means of the ``k`` channels of largest mean, per row.

    Parameters
    ----------
    data : ndarray of shape (n, n_chn, n_row, n_col)
    k : int

    Returns
    -------
    order : ndarray of shape (n, min(k, n_chn)), int
    means : ndarray of shape (n, min(k, n_chn)), float64

    Examples
    --------
    >>> order, means = top_channels(np.arange(8.).reshape(1, 4, 2, 1), 2)
    >>> order.tolist(), means.tolist()
    ([[3, 2]], [[6.5, 4.5]])
    """
    means = np.asarray(data, dtype=np.float64).mean(axis=(2, 3))
    order = np.argsort(-means, axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(means, order, axis=1)


class _Maps:
    """Fills a :class:`ViewResult`'s arrays for one layer, block of rows by block."""

    def __init__(self, n_stim, shape, k, channels, numbers=None):
        n_chn, n_row, n_col = shape
        self.k = min(k, n_chn)
        numbers = np.arange(1, n_chn + 1) if numbers is None else np.asarray(numbers)
        # a file's masked channels in any stored order: rank them by channel number, so
        # that equal means go to the lower channel as for the whole layer
        self.order = None if np.all(np.diff(numbers) > 0) else np.argsort(numbers,
                                                                          kind="stable")
        self.numbers = numbers if self.order is None else numbers[self.order]
        # the index of each asked-for channel (in channel-number order)
        where = {int(c): i for i, c in enumerate(self.numbers)}
        self.asked = np.asarray([where[c] for c in channels], dtype=np.int64)
        self.channels = np.empty((n_stim, self.k), dtype=np.int64)
        self.means = np.empty((n_stim, self.k))
        self.maps = np.empty((n_stim, self.k, n_row, n_col), dtype=np.float32)
        self.asked_means = np.empty((n_stim, len(self.asked)))
        self.asked_maps = np.empty((n_stim, len(self.asked), n_row, n_col), dtype=np.float32)

    def update(self, start, data):
        if self.order is not None:
            data = data[:, self.order]
        rows = slice(start, start + len(data))
        order, self.means[rows] = top_channels(data, self.k)
        self.channels[rows] = self.numbers[order]
        self.maps[rows] = np.take_along_axis(data, order[:, :, None, None], axis=1)
        if len(self.asked):
            self.asked_maps[rows] = data[:, self.asked]
            self.asked_means[rows] = self.asked_maps[rows].astype(np.float64).mean(axis=(2, 3))


def _check_maps(layer, shape, channels, source, numbers=None):
    """Refuse a layer without maps and -channel numbers it lacks (one line each)."""
    n_chn, n_row, n_col = shape
    if n_row * n_col == 1:
        raise InputError(f"layer {layer!r} of {source} has one value per channel (no "
                         f"spatial map); give convolutional layers.")
    known = set(range(1, n_chn + 1)) if numbers is None else {int(c) for c in numbers}
    for c in channels:
        if c not in known:
            if numbers is None:
                raise InputError(f"-channel {c} is out of range for layer {layer!r} "
                                 f"({n_chn} channels, numbered from 1).")
            raise InputError(f"-channel {c} of layer {layer!r} is not stored in {source}; "
                             f"extract it with db_act, or run the network (-net).")


def _images_of(stim):
    """The image files of ``stim`` (checked to exist); other stimulus types refused."""
    if stim.type != "image":
        raise InputError(f"db_view draws images; this stimulus table holds {stim.type} "
                         f"stimuli.")
    return stim.check_files()


def _warn_top(k, shapes):
    for layer, shape in shapes.items():
        if k > shape[0]:
            log.warning("-top %d is more than the %d channels of %s; all are shown.", k,
                        shape[0], layer)


def _result(layers, accs, stim_ids, channels, geometry, attrs, paths):
    return ViewResult(layers, np.asarray(stim_ids, dtype=str),
                      {l: (accs[l].channels, accs[l].means) for l in layers},
                      {l: accs[l].maps for l in layers}, channels,
                      {l: accs[l].asked_means for l in layers},
                      {l: accs[l].asked_maps for l in layers}, geometry, attrs, paths)


def _network_shapes(dnn, layers):
    for layer in layers:
        dnn.resolve(layer)                         # UnknownLayerError lists the names
    try:
        return dnn.layer_shapes(layers)
    except RuntimeError as exc:
        height, width = dnn.input_size
        raise InputError(f"{dnn.name} cannot run on its {height}x{width} input images (the "
                         f"image is too small for the network): "
                         f"{' '.join(str(exc).split())[:200]}") from None


def network_view(dnn, stim, layers, *, top=1, channels=None, batch_size=32, device="cpu",
                 workers=None, show_progress=True):
    """Each stimulus's ``top`` channels of largest mean per layer, from the network.

    Parameters
    ----------
    dnn : DNN
    stim : Stimulus
        Image stimuli (missing files reported before any computation).
    layers : list of str
        Layers with spatial maps.
    top : int, default=1
    channels : list of int, optional
        1-based channels whose maps are also kept (every layer must have them).
    batch_size, device, workers, show_progress
        As in :func:`dnnsparse.model.extract`.

    Returns
    -------
    ViewResult
    """
    channels = check_view_request(top=top, channels=channels)
    check_scalar(batch_size, name="batch_size", kind=int, min_val=1)
    layers = list(dict.fromkeys(layers or []))
    if not layers:
        raise InputError("give the layers to view (-layer).")
    if len(stim) == 0:
        raise InputError("the stimulus table has no rows.")
    paths = _images_of(stim)
    dnn.to(device)
    shapes = _network_shapes(dnn, layers)
    for layer in layers:
        _check_maps(layer, shapes[layer], channels, dnn.name)
    _warn_top(top, shapes)
    accs = {l: _Maps(len(stim), shapes[l], top, channels) for l in layers}
    with progress(total=len(stim), desc=f"{dnn.name} maps", unit="img",
                  enabled=show_progress) as bar:
        for start, maps in layer_map_batches(dnn, paths, layers, batch_size=batch_size,
                                             device=device, workers=workers):
            for layer in layers:
                accs[layer].update(start, maps[layer])
            bar.update(len(maps[layers[0]]))
    return _result(layers, accs, stim.ids, channels, view_geometry(dnn), network_attrs(dnn),
                   list(paths))


def _pooled(act, layer):
    return str(act.layer_attrs(layer).get("pool") or "") or str(act.attrs.get("pool") or "")


def _stored_layer(act, layer, path):
    """``(raw shape, 1-based stored channel numbers or None)``; refuse what has no maps."""
    attrs = act.layer_attrs(layer)
    pool = _pooled(act, layer)
    shape = tuple(act.shape(layer)[1:])
    if pool:
        raise InputError(f"{path} stores layer {layer!r} pooled ({pool}): it holds no maps "
                         f"to view; extract it without -pool (db_act), or run the network "
                         f"(-net).")
    for axis, word in (("row", "rows"), ("col", "columns")):
        if axis in attrs and np.size(attrs[axis]):
            raise InputError(f"{path} stores only some {word} of layer {layer!r} (a mask): "
                             f"its maps do not cover the image; extract the whole layer "
                             f"(db_act without -dmask rows/columns), or run the network.")
    numbers = None
    if "chn" in attrs and np.size(attrs["chn"]):
        numbers = [int(c) for c in np.atleast_1d(attrs["chn"])]
    return shape, numbers


def act_view(path, layers=None, *, top=1, channels=None, stim=None, stim_path=None,
             chunk_rows=None, show_progress=True):
    """:func:`network_view` from an ``.act.h5`` file of unpooled layers.

    Parameters
    ----------
    path : path
    layers : list of str, optional
        Default: every layer of the file with maps (unpooled, more than one position).
    top, channels
        As in :func:`network_view`; channel numbers are the network's (a file of
        masked channels is searched among the channels it stores).
    stim : Stimulus, optional
        The images (for the figures), lined up with the file's rows by stimulus ID.
    chunk_rows : int, optional
        Rows read at once (default: about 32 MB).

    Returns
    -------
    ViewResult
    """
    channels = check_view_request(top=top, channels=channels)
    with Activation.load(path) as act:
        if not layers:
            layers = [l for l in act.layers if not _pooled(act, l)
                      and math.prod(act.shape(l)[2:]) > 1]
            if not layers:
                raise InputError(f"{path} holds no layer with maps (all are pooled or one "
                                 f"value per channel); extract convolutional layers without "
                                 f"-pool (db_act).")
        layers = list(dict.fromkeys(layers))
        for layer in layers:
            if layer not in act.layers:
                raise UnknownLayerError(f"layer {layer!r} is not in {path}; it holds "
                                        f"{', '.join(act.layers)}.")
        if act.category_labels is not None or act.attrs.get("aggregate"):
            raise InputError(f"{path} holds per-category means, not one row per stimulus; "
                             f"extract without -aggregate to view each stimulus.")
        stored = {l: _stored_layer(act, l, path) for l in layers}
        for layer, (shape, numbers) in stored.items():
            _check_maps(layer, shape, channels, path, numbers)
        if act.n_stim == 0:
            raise InputError(f"{path} holds no stimuli.")
        paths = None
        if stim is not None:
            paths = _images_of(align_stimuli(stim, act, act_path=str(path),
                                             stim_path=stim_path or "the stimulus table"))
        _warn_top(top, {l: s for l, (s, _) in stored.items()})
        accs = {l: _Maps(act.n_stim, s, top, channels, numbers)
                for l, (s, numbers) in stored.items()}
        with progress(total=act.n_stim * len(layers), desc="maps", unit="row",
                      enabled=show_progress) as bar:
            for layer in layers:
                shape = stored[layer][0]
                rows = chunk_rows or max(1, _CHUNK_BYTES // (4 * math.prod(shape)))
                for start in range(0, act.n_stim, rows):
                    data = np.ascontiguousarray(act.get(layer, stim=slice(start, start + rows)),
                                                dtype=np.float32)
                    accs[layer].update(start, data)
                    bar.update(len(data))
        attrs = {"source": str(path), **{k: v for k, v in act.attrs.items()
                                         if k in _SOURCE_ATTRS}}
        geometry = view_geometry(net=str(act.attrs.get("net", "")),
                                 preprocess=str(act.attrs.get("preprocess") or "squash"))
        stim_ids = act.stim_ids
    return _result(layers, accs, stim_ids, channels, geometry, attrs, paths)


# ----------------------------------------------------------------------- figures
def _image(path, size=THUMBNAIL):
    """``(thumbnail (h, w, 3) uint8, (width, height) of the file)``."""
    try:
        with Image.open(path) as img:
            full = img.size
            img = img.convert("RGB")
            img.thumbnail((size, size))
            return np.asarray(img), full
    except (OSError, ValueError) as exc:
        raise FileFormatError(f"cannot read image {path} for the figures: {exc}.") from None


def _short(text, width=28):
    text = str(text)
    return text if len(text) <= width else "..." + text[-(width - 3):]


class _Stems:
    """Unique file stems (two IDs may differ only in characters a file name drops)."""

    def __init__(self):
        self.seen = set()

    def __call__(self, name):
        name = Path(str(name))
        # cat/0.png -> cat_0 (the image suffix would only repeat in view_cat_0.png.png)
        name = name.with_suffix("") if name.suffix.lower() in IMAGE_EXTENSIONS else name
        stem = base = _file_stem(str(name)) or "stim"
        k = 1
        while stem in self.seen:
            k += 1
            stem = f"{base}_{k}"
        self.seen.add(stem)
        return stem


def _stimulus_figures(result, i, tmp, stem, *, alpha, cmap):
    """The top-channel figure of stimulus ``i`` and its channel grids.

    Returns the files and the stimulus's row of the summary figure: its thumbnail and
    its best channel's map in each layer.
    """
    thumb, full = _image(result.paths[i])
    window = input_window(full, **result.geometry)
    size = (thumb.shape[1], thumb.shape[0])
    rows = []
    for layer in result.layers:
        channels, means = result.top[layer]
        maps = maps_on_image(result.top_maps[layer][i], size, window)
        rows.append((layer, [(maps[r], f"chn {channels[i, r]} (rank {r + 1})\n"
                                       f"mean {means[i, r]:.4g}")
                             for r in range(channels.shape[1])]))
    title = f"{_short(result.stim_ids[i], 60)}: top channels by mean activation"
    written = [plot_activation_maps(tmp / f"view_{stem}.png", thumb, rows, title=title,
                                    alpha=alpha, cmap=cmap, force=True)]
    summary = (thumb, (_short(result.stim_ids[i], 24),
                       [(items[0][0], f"{layer}: chn {result.top[layer][0][i, 0]}")
                        for layer, items in rows]))
    for layer in result.layers if result.channels else []:
        maps = maps_on_image(result.channel_maps[layer][i], size, window)
        items = [(maps[j], f"chn {c}\nmean {result.channel_means[layer][i, j]:.4g}")
                 for j, c in enumerate(result.channels)]
        rows = [(layer, items[s:s + GRID_COLUMNS])
                for s in range(0, len(items), GRID_COLUMNS)]
        written.append(plot_activation_maps(
            tmp / f"channels_{stem}_{_file_stem(layer)}.png", thumb, rows,
            title=f"{_short(result.stim_ids[i], 60)}: channels of layer {layer}", alpha=alpha,
            cmap=cmap, scale="figure", force=True))
    return written, summary


def _all_figures(result, tmp, *, alpha, cmap, show_progress):
    """Every stimulus's figures, and the summary pages ``top_channels[_k].png`` (Fig. 4B:
    a row per stimulus, its image and its best channel in each layer)."""
    stems, written, page = _Stems(), [], []
    n_pages = math.ceil(len(result.stim_ids) / SUMMARY_ROWS)

    def flush():
        k = len(written_pages) + 1
        name = f"top_channels_{k}.png" if n_pages > 1 else "top_channels.png"
        title = "best channel per layer (largest mean activation)" + \
            (f", page {k} of {n_pages}" if n_pages > 1 else "")
        written_pages.append(plot_activation_maps(
            tmp / name, [im for im, _ in page], [row for _, row in page], title=title,
            alpha=alpha, cmap=cmap, scale="panel", force=True))
        page.clear()

    written_pages = []
    with progress(total=len(result.stim_ids), desc="figures", unit="img",
                  enabled=show_progress) as bar:
        for i, stim_id in enumerate(result.stim_ids):
            files, summary = _stimulus_figures(result, i, tmp, stems(stim_id), alpha=alpha,
                                               cmap=cmap)
            written += files
            page.append(summary)
            if len(page) == SUMMARY_ROWS:
                flush()
            bar.update(1)
    if page:
        flush()
    return written_pages + written


def _sheets(stim, paths, by_label, tmp):
    """Contact sheets of the stimuli (sections by label), :data:`SHEET_SIZE` a page."""
    items = [(_image(p, 160)[0], _short(s, 22)) for s, p in zip(stim.ids, paths)]
    if by_label:
        labels = stim.labels
        if labels is None:
            raise InputError("-by-label needs a label column in the stimulus table.")
        names = category_names(labels, stim.columns.get("condition"))
        sections = [(names[k], [items[i] for i in np.flatnonzero(labels == k)])
                    for k in names]
    else:
        sections = [("", items)]
    pages, page, count = [], {}, 0
    for name, group in sections:
        for s in range(0, len(group), SHEET_SIZE):
            part = group[s:s + SHEET_SIZE]
            if count + len(part) > SHEET_SIZE and page:
                pages.append(page)
                page, count = {}, 0
            key = name if name not in page else f"{name} ({s + 1}-)"
            page[key] = part
            count += len(part)
    pages.append(page)
    written = []
    for p, page in enumerate(pages, 1):
        longest = max(len(v) for v in page.values())
        # a square sheet; sections (labels) side by side up to 10 images a row
        n_cols = min(10, longest if by_label else math.ceil(math.sqrt(longest)))
        suffix = f"_{p}" if len(pages) > 1 else ""
        title = f"stimuli ({len(stim)})" + (f", page {p} of {len(pages)}" if suffix else "")
        written.append(plot_top_stimuli(tmp / f"stimuli{suffix}.png", page, title=title,
                                        n_cols=n_cols, force=True))
    return written


def write_view_outputs(out_dir, *, result=None, stim=None, stim_grid=False, by_label=False,
                       figures=True, table_name="view.csv", alpha=0.6, cmap="jet",
                       provenance=None, force=False, show_progress=True):
    """Write the table, figures and contact sheets of ``db_view`` into ``out_dir``.

    Parameters
    ----------
    out_dir : path
        Written as a whole (:func:`~dnnsparse.io.atomic_output_dir`).
    result : ViewResult, optional
        Gives ``table_name`` (+ its ``.json`` provenance) and, with ``figures``,
        ``view_<stim>.png`` (per layer the image and its top channels' maps over it)
        ``channels_<stim>_<layer>.png`` (the asked-for channels) and
        ``top_channels.png`` (pages of :data:`SUMMARY_ROWS` stimuli: each stimulus with
        its best channel in each layer, DNNBrain's Fig. 4B).
    stim : Stimulus, optional
        With ``stim_grid``: ``stimuli.png`` (pages ``stimuli_<k>.png`` beyond
        :data:`SHEET_SIZE` images), in sections by label with ``by_label``.
    alpha, cmap
        Opacity and colour map of the maps (:func:`dnnsparse.viz.plot_activation_maps`).
    provenance : dict, optional
        Written beside the table as JSON (:func:`run_provenance`).

    Returns
    -------
    list of Path
        The files under their final names.
    """
    check_view_request(alpha=alpha, cmap=cmap, table_name=table_name)
    if result is None and not (stim_grid and stim is not None):
        raise InputError("nothing to write: give layers to view or -stim-grid.")
    if result is not None and figures and result.paths is None:
        raise InputError("figures need the images: give -stim, or -no-figures.")
    sheet_paths = _images_of(stim) if stim_grid else None
    with atomic_output_dir(out_dir, force=force) as tmp:
        written = []
        if result is not None:
            written.append(write_table(tmp / table_name, result.table(), force=True))
            if provenance is not None:
                record = {**provenance, "layers": result.layers,
                          "geometry": {k: (list(v) if isinstance(v, tuple) else v)
                                       for k, v in result.geometry.items()},
                          "table": table_name}
                sidecar = tmp / f"{Path(table_name).stem}.json"
                sidecar.write_text(json.dumps(record, indent=2) + "\n")
                written.append(sidecar)
        if result is not None and figures:
            written += _all_figures(result, tmp, alpha=alpha, cmap=cmap,
                                    show_progress=show_progress)
        if stim_grid:
            written += _sheets(stim, sheet_paths, by_label, tmp)
    return [Path(out_dir) / Path(p).relative_to(tmp) for p in written]
