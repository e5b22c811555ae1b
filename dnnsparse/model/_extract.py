"""One-pass activation extraction: images → ``.act.h5`` (or memory), batch by batch.

For every batch the network runs ONCE, under ``torch.inference_mode()``, with
forward hooks on all requested layers (:class:`~._hooks.LayerCapture`); the pass
stops as soon as the deepest requested layer has been seen. Each hook copies its
layer's output, applies the layer's channel/row/column mask and spatial pooling on
the device (:class:`_LayerPlan`), and the batch loop (:func:`_run_batches`) hands
the rows to a *sink*, which alone knows where they go:

- :class:`_FileSink` streams them into an ``.act.h5`` file (:class:`~dnnsparse.io.act.ActWriter`),
  so peak memory does not grow with the number of stimuli;
- :class:`_MemorySink` keeps them in arrays;
- :class:`_CategoryMeans` (``aggregate="label"``) sums them per category in float64
  and stores only the means in one of the two.

Where the rows' inputs come from depends on the stimulus type: :data:`STIM_SOURCES`
maps each ``type=`` to a function that checks the rows (before any computation) and
returns their batches (:class:`Rows`): image files, frames of a movie (image
networks) or clips (clip networks, :mod:`._video`).
"""
import logging
import os
import queue
import threading
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import torch

from ..base.activation import POOLS, Activation
from ..errors import InputError
from ..io import check_output_path
from ..io.act import ActWriter
from ..io.video import probe_video
from ..utils.progress import progress
from ..utils.registry import Registry
from ..utils.validation import check_choice, check_scalar
from ._audio import audio_batches, audio_plan
from ._hooks import LayerCapture, as_4d
from ._images import ImageDataset, image_batches, network_inputs
from ._video import check_clip_rows, clip_batches, clip_indexes, frame_batches, video_rows

__all__ = ["extract", "Rows", "StimSource", "STIM_SOURCES", "TORCH_POOLS"]

log = logging.getLogger(__name__)


def _median(x):
    # numpy's median (mean of the two middle values), not torch.median's lower one
    s = x.flatten(2).sort(dim=-1).values
    n = s.shape[-1]
    return ((s[..., (n - 1) // 2] + s[..., n // 2]) / 2)[..., None, None]


# The tensor twins of :data:`dnnsparse.base.activation.POOLS`, keyed by its names.
# Reductions run in the layer's own dtype: torch sums float32 by cascade summation,
# which is as accurate as the float32 values stored (float64 reductions are ~50x
# slower on CPU). Per-category accumulation (``aggregate="label"``) is float64.
_TORCH_POOL_IMPL = {
    "mean": lambda x: x.mean(dim=(2, 3), keepdim=True),
    "max": lambda x: x.amax(dim=(2, 3), keepdim=True),
    "median": _median,
    "l1": lambda x: x.abs().sum(dim=(2, 3), keepdim=True),
    "l2": lambda x: x.square().sum(dim=(2, 3), keepdim=True).sqrt(),
}


def _torch_pools(impl):
    """``{name: tensor pooling}`` in the order of base's POOLS, which owns the names."""
    if set(impl) != set(POOLS):
        raise RuntimeError(f"spatial pools of dnnsparse.base.activation.POOLS {sorted(POOLS)} "
                           f"and their torch versions {sorted(impl)} differ; give every "
                           f"pool both implementations.")
    return {name: impl[name] for name in POOLS}


#: Spatial pooling on tensors (n, c, h, w) → (n, c, 1, 1): the methods of
#: :data:`dnnsparse.base.activation.POOLS` (same names, same definitions; l1/l2 are
#: element-wise norms), computed on the device.
TORCH_POOLS = _torch_pools(_TORCH_POOL_IMPL)




class _LayerPlan:
    """What to keep of one layer: mask indices (0-based), pooling, stored shape.

    ``view`` turns the layer's output into ``(n, chn, row, col)`` (the network's
    ``layer_view``: :func:`~._hooks.as_4d`, or time folded into rows for clip
    networks); ``time_steps`` is recorded for a folded 5-D output.
    """

    def __init__(self, name, raw_shape, sel, pool, *, view=as_4d, time_steps=None):
        self.name, self.raw_shape, self.pool = name, tuple(raw_shape), pool
        self.view, self.time_steps = view, time_steps
        self.sel = sel or {"chn": None, "row": None, "col": None}
        shape = [len(self.sel[a]) if self.sel[a] is not None else n
                 for a, n in zip(("chn", "row", "col"), raw_shape)]
        self.shape = (shape[0], 1, 1) if pool else tuple(shape)
        self._index = None

    def attrs(self):
        a = {"raw_shape": np.asarray(self.raw_shape), "pool": self.pool or ""}
        if self.time_steps:
            a["time_steps"] = int(self.time_steps)
        for axis in ("chn", "row", "col"):
            if self.sel[axis] is not None:
                a[axis] = np.asarray(self.sel[axis]) + 1     # 1-based, as in .dmask.csv
        return a

    def reduce(self, out):
        """Masked, pooled float32 CPU copy of a layer output."""
        t = self.view(out).detach()
        if self._index is None or self._index[0] != t.device:
            self._index = (t.device, {a: torch.as_tensor(v, device=t.device)
                                      for a, v in self.sel.items() if v is not None})
        for dim, axis in ((1, "chn"), (2, "row"), (3, "col")):
            if axis in self._index[1]:
                t = t.index_select(dim, self._index[1][axis])
        if self.pool:
            t = TORCH_POOLS[self.pool](t)
        # copy=True: the stored values must not alias the network's tensor,
        # which an in-place ReLU later in the forward pass would overwrite.
        return t.to("cpu", torch.float32, copy=True)


def _plan(dnn, layers, mask, pool):
    if layers is None:
        if mask is None:
            raise InputError("give the layers to extract (or a dmask listing them).")
        layers = mask.layers
    layers = list(dict.fromkeys(list(layers) + ([l for l in mask.layers if l not in layers]
                                                if mask is not None else [])))
    if not layers:
        raise InputError("no layers to extract.")
    for l in layers:
        dnn.resolve(l)                                  # UnknownLayerError lists names
    if pool is not None:
        pool = check_choice(str(pool).lower(), TORCH_POOLS, name="pool")
    raw = dnn.layer_shapes(layers)
    view = getattr(dnn, "layer_view", as_4d)
    time_steps = getattr(dnn, "time_steps", {})
    plans = []
    for l in layers:
        sel = None
        if mask is not None and l in mask:
            mask.check(l, raw[l])
            sel = mask.get(l)
        plans.append(_LayerPlan(l, raw[l], sel, pool, view=view,
                                time_steps=time_steps.get(l)))
    return plans


# ------------------------------------------------------------------------- sinks
# A sink takes the rows of each layer, batch by batch: ``write(layer, start, rows)``
# with rows (batch, *shape) as NumPy; ``finish()`` after the last batch (inside the
# ``with`` block), then ``result()`` gives the Activation.

class _Layout:
    """What a sink stores: ``{layer: shape}``, the row IDs, dtype and attributes."""

    def __init__(self, shapes, row_ids, dtype, attrs, layer_attrs):
        self.shapes, self.row_ids, self.dtype = shapes, row_ids, dtype
        self.attrs, self.layer_attrs = attrs, layer_attrs
        self.n_rows = len(row_ids)


class _FileSink(ActWriter):
    """Rows streamed into an ``.act.h5`` file (written atomically, see ActWriter).

    The rows are compressed and written by a writer thread while the network runs
    the next batch (HDF5's filters and h5py's writes release the GIL, as torch does),
    at most ``_IN_FLIGHT`` batches behind; the same writes in the same order as
    without it, so the file's values are the same. An error of the writer thread (a
    full disk) is raised in the caller's thread at its next :meth:`write`, at
    :meth:`finish` or on leaving the ``with`` block; the file is then removed as
    after any error. ``background=False`` writes in the caller's thread.

    The thread pays only where a core is free while the network runs: on a GPU, or
    when torch uses fewer threads than there are CPUs (:func:`_writer_thread_pays`,
    the default). On a CPU that torch keeps busy it gains nothing (benchmarks/video.py
    (c), 2 cores: 1.70 vs 1.67 x the bare loop).
    """

    _IN_FLIGHT = 2
    #: ``background`` when not given: None decides by :func:`_writer_thread_pays`
    #: (benchmarks/video.py sets True/False to time both).
    BACKGROUND = None

    def __init__(self, path, layout, *, compression, force, batch_rows, background=None,
                 device="cpu"):
        self._device = torch.device(device)
        super().__init__(path, layout.shapes, layout.n_rows, attrs=layout.attrs,
                         layer_attrs=layout.layer_attrs, stim_ids=layout.row_ids,
                         compression=compression, force=force, dtype=layout.dtype,
                         batch_rows=batch_rows)
        self.layout = layout
        self._background = self.BACKGROUND if background is None else background
        if self._background is None:
            self._background = _writer_thread_pays(self._device)
        self._thread = self._queue = self._error = None
        self._discard = False

    def __enter__(self):
        super().__enter__()
        if self._background:
            self._queue = queue.Queue(maxsize=self._IN_FLIGHT * max(len(self.shapes), 1))
            self._thread = threading.Thread(target=self._drain, name="act-writer",
                                            daemon=True)
            self._thread.start()
        return self

    def _drain(self):
        while True:
            item = self._queue.get()
            if item is None:
                return
            if self._error is None and not self._discard:
                try:
                    ActWriter.write(self, *item)
                except BaseException as exc:        # raised in the caller's thread
                    self._error = exc

    def _raise_error(self):
        if self._error is not None:
            raise self._error

    def write(self, layer, start, data):
        if self._thread is None:
            return super().write(layer, start, data)
        self._raise_error()
        self._queue.put((layer, start, data))

    def _stop(self, *, discard=False):
        """Let the writer thread write (or, with ``discard``, drop) what it holds."""
        if self._thread is not None:
            self._discard = discard
            self._queue.put(None)
            self._thread.join()
            self._thread = None

    def write_meta(self, name, values):
        self._stop()
        self._raise_error()
        super().write_meta(name, values)

    def finish(self):
        self._stop()
        self._raise_error()

    def __exit__(self, exc_type, exc, tb):
        self._stop(discard=exc_type is not None)
        if exc_type is None and self._error is not None:
            error = self._error
            super().__exit__(type(error), error, error.__traceback__)
            raise error
        return super().__exit__(exc_type, exc, tb)

    def result(self):
        """The written file, opened lazily."""
        return Activation.load(self.path)


class _MemorySink:
    """Rows kept in memory arrays (the write interface of :class:`_FileSink`)."""

    def __init__(self, layout):
        self.layout = layout
        self.data = {l: np.empty((layout.n_rows,) + s, dtype=layout.dtype)
                     for l, s in layout.shapes.items()}
        self.meta = {}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def write(self, layer, start, data):
        self.data[layer][start:start + len(data)] = data

    def write_meta(self, name, values):
        self.meta[name] = values

    def finish(self):
        pass

    def result(self):
        act = Activation(self.data, stim_ids=self.layout.row_ids, attrs=self.layout.attrs,
                         layer_attrs=self.layout.layer_attrs)
        if "label" in self.meta:
            act.category_labels, act.category_counts = self.meta["label"], self.meta["count"]
        return act


class _CategoryMeans:
    """Per-category means of the stimulus rows (float64 sums), stored in ``inner``.

    ``inverse`` gives each stimulus row's category (an index into ``labels``);
    ``counts`` the stimuli per category. ``inner`` is a file or memory sink with one
    row per category; :meth:`finish` writes the means there, with ``label`` and
    ``count``.
    """

    def __init__(self, inner, labels, inverse, counts):
        self.inner, self.labels, self.counts = inner, labels, counts
        self._inverse = torch.as_tensor(inverse)
        self._sums = {l: torch.zeros((len(labels), int(np.prod(s))), dtype=torch.float64)
                      for l, s in inner.layout.shapes.items()}

    def __enter__(self):
        self.inner.__enter__()
        return self

    def __exit__(self, *exc):
        return self.inner.__exit__(*exc)

    def write(self, layer, start, data):
        rows = torch.from_numpy(data).reshape(len(data), -1).double()
        self._sums[layer].index_add_(0, self._inverse[start:start + len(data)], rows)

    def finish(self):
        counts = torch.as_tensor(self.counts, dtype=torch.float64)[:, None]
        for name, s in self._sums.items():
            mean = s / counts
            self.inner.write(name, 0, mean.reshape((len(self.labels),)
                                                   + self.inner.layout.shapes[name]).numpy())
        self.inner.write_meta("label", self.labels)
        self.inner.write_meta("count", self.counts)

    def result(self):
        return self.inner.result()


def _writer_thread_pays(device):
    """Whether a writer thread has a free core: a GPU runs the network, or torch uses
    fewer threads than the CPUs this process may run on."""
    try:
        n_cpus = len(os.sched_getaffinity(0))
    except AttributeError:                       # not on Linux
        n_cpus = os.cpu_count() or 1
    return torch.device(device).type != "cpu" or torch.get_num_threads() < n_cpus


def _make_sink(layout, *, out, compression, force, batch_rows, device="cpu"):
    if out is None:
        return _MemorySink(layout)
    return _FileSink(out, layout, compression=compression, force=force, batch_rows=batch_rows,
                     device=device)


# ---------------------------------------------------------------- stimulus rows
@dataclass
class Rows:
    """The inputs of a stimulus table's rows, ready for the batch loop.

    ``batches`` yields ``(row indices, uint8 batch, errors)`` as
    :func:`~._images.image_batches` does; ``names[i]`` names row ``i``'s data in
    errors; ``unit`` names a row in the progress bar (its rate is ``unit``/s);
    ``onsets``/``durations`` (seconds, or None) are stored with the activations;
    ``attrs`` are further file attributes. ``ids``/``stim_rows`` are given when the
    activation rows are not the table's rows (audio: several examples per row): each
    activation row's ID and its table row (0-based).
    """
    batches: object
    names: list
    unit: str
    onsets: object = None
    durations: object = None
    attrs: dict = field(default_factory=dict)
    ids: object = None
    stim_rows: object = None


class StimSource(NamedTuple):
    """How the rows of one stimulus type become network input.

    ``rows(dnn, stim, transform, *, batch_size, workers, device) -> Rows`` checks
    everything about the rows (files readable, onsets inside the movie, clips long
    enough) before returning; the batches are then read lazily.
    """
    description: str
    rows: object


def _table_timing(stim):
    """The table's ``onset``/``duration`` columns as float64 (None where absent)."""
    def column(name):
        values = stim.columns.get(name)
        return None if values is None or values.dtype.kind not in "iuf" \
            else values.astype(np.float64)
    return column("onset"), column("duration")


def _is_clip_network(dnn):
    # duck-typed: a VideoDNN (model._clipnet) has a clip length; importing it here would
    # make an import cycle (it is a DNN, whose extract() imports this module)
    return getattr(dnn, "clip_len", 0) > 0


def _refuse_audio_network(dnn, stim):
    if getattr(dnn, "front_end", None) is not None:      # an AudioDNN (model._audio)
        raise InputError(f"{dnn.name} is an audio network; it needs type=audio stimuli, "
                         f"not {stim.type}.")


def _image_rows(dnn, stim, transform, *, batch_size, workers, device):
    _refuse_audio_network(dnn, stim)
    if _is_clip_network(dnn):
        raise InputError(f"{dnn.name} is a clip network; it needs type=video or "
                         f"type=video_clip stimuli, not images.")
    onsets, durations = _table_timing(stim)
    batches = image_batches(ImageDataset(stim.paths, transform), batch_size,
                            workers=workers, device=device)
    return Rows(batches, stim.paths, "img", onsets, durations)


def _video_rows(dnn, stim, transform, *, batch_size, workers, device):
    _refuse_audio_network(dnn, stim)
    index = probe_video(stim.root)
    frames, onsets, durations = video_rows(stim, index)
    names = [f"frame {f + 1} of {index.path}" for f in frames]
    if _is_clip_network(dnn):
        check_clip_rows(stim, dnn, frames, index)
        batches = clip_batches([index] * len(frames), frames, dnn, transform, batch_size)
        attrs = {"clip_len": dnn.clip_len, "clip_stride": dnn.clip_stride}
        return Rows(batches, names, "clip", onsets, durations, attrs)
    return Rows(frame_batches(index, frames, transform, batch_size), names, "frame",
                onsets, durations)


def _video_clip_rows(dnn, stim, transform, *, batch_size, workers, device):
    _refuse_audio_network(dnn, stim)
    if not _is_clip_network(dnn):
        raise InputError(f"{dnn.name} is an image network; type=video_clip stimuli need a "
                         f"clip network (e.g. -net r3d_18, or -clip-len N for a custom "
                         f"one), or a type=video table to see frames one by one.")
    indexes = clip_indexes(stim, dnn)
    onsets, durations = _table_timing(stim)
    batches = clip_batches(indexes, np.zeros(len(stim), dtype=np.int64), dnn, transform,
                           batch_size)
    return Rows(batches, stim.paths, "clip", onsets, durations,
                {"clip_len": dnn.clip_len, "clip_stride": dnn.clip_stride})


def _audio_rows(dnn, stim, transform, *, batch_size, workers, device):
    if getattr(dnn, "front_end", None) is None:      # duck-typed AudioDNN, as clip networks
        raise InputError(f"{dnn.name} is not an audio network; type=audio stimuli need "
                         f"-net vggish, or a custom network on log-mel examples (n, 1, 96, "
                         f"64) wrapped by dnnsparse.model.as_audio_dnn (db_act does that).")
    sources, counts, starts, names = audio_plan(stim, dnn)
    stim_rows = np.repeat(np.arange(len(stim)), counts)
    k = np.arange(len(stim_rows)) - np.repeat(np.cumsum(counts) - counts, counts)
    step = dnn.front_end.example_seconds
    ids = np.array([f"{stim.ids[r]}#{j + 1}" for r, j in zip(stim_rows, k)])
    example_names = [f"example {j + 1} of {names[r]}" for r, j in zip(stim_rows, k)]
    return Rows(audio_batches(sources, dnn.front_end, batch_size), example_names, "example",
                starts[stim_rows] + k * step, np.full(len(stim_rows), step),
                {"sample_rate": dnn.sample_rate, "example_seconds": step}, ids, stim_rows)


#: Stimulus type (``type=`` of the table) -> how its rows are read. Audio plugs in
#: here: ``STIM_SOURCES["audio"] = StimSource("...", rows)`` with a ``rows`` function
#: returning its batches (after its entries in io.stim.STIM_TYPES and
#: base.stimulus.STIMULUS_TYPES).
STIM_SOURCES = Registry(
    image=StimSource("image files, decoded by threads or worker processes", _image_rows),
    video=StimSource("frames (image networks) or clips (clip networks) of one movie",
                     _video_rows),
    video_clip=StimSource("one clip per movie file (clip networks)", _video_clip_rows),
    audio=StimSource("log-mel examples (0.96 s) of audio files or segments (audio "
                     "networks)", _audio_rows),
)


# -------------------------------------------------------------------- extraction
def _check_request(stim, *, out, force, batch_size, workers, aggregate, device):
    """Every check that needs no network, before any computation; the torch device."""
    if out is not None:
        check_output_path(out, force=force)       # fail before any computation
    check_scalar(batch_size, name="batch_size", kind=int, min_val=1)
    if workers is not None:
        check_scalar(workers, name="workers", kind=int, min_val=0)
    if aggregate not in (None, "label"):
        raise InputError(f"Unknown aggregate={aggregate!r}; choose 'label' or none.")
    if stim.type not in STIM_SOURCES:
        raise InputError(f"stimulus type {stim.type!r} is not supported for extraction; "
                         f"use one of {', '.join(STIM_SOURCES)}.")
    if len(stim) == 0:
        raise InputError("the stimulus table has no rows.")
    stim.check_files()
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError("device 'cuda' was requested but CUDA is not available; use "
                         "-device cpu.")
    return device


def _categories(stim, stim_rows=None):
    """``(labels, inverse, counts)`` of the stimulus table's label column (of the table
    row of each activation row, ``stim_rows``, when given)."""
    if stim.labels is None:
        raise InputError("aggregate='label' needs a 'label' column in the stimulus table.")
    labels = stim.labels if stim_rows is None else stim.labels[stim_rows]
    return np.unique(labels, return_inverse=True, return_counts=True)


def _run_batches(dnn, plans, batches, sink, *, device, paths, bar):
    """Run the network once per batch; hand each layer's reduced rows to ``sink``.

    ``batches`` yields ``(indices, uint8 inputs, errors)`` (:func:`image_batches`,
    :attr:`Rows.batches`); ``paths`` name the rows in errors. Calls
    ``sink.finish()`` after the last batch.
    """
    capture = LayerCapture(dnn.register_layer_hook, {p.name: p.reduce for p in plans})
    with capture, sink, torch.inference_mode():
        for idx, x in network_inputs(dnn, batches, paths, device):
            for name, value in capture.run(dnn.module, x).items():
                sink.write(name, idx[0], value.numpy())
            bar.update(len(idx))
        sink.finish()


def extract(dnn, stim, layers=None, *, mask=None, pool=None, aggregate=None, out=None,
            force=False, batch_size=32, device="cpu", workers=None, preprocess=None,
            compression="lzf", attrs=None, show_progress=True):
    """Extract activations of ``stim`` in ``layers`` with one forward pass per batch.

    Parameters
    ----------
    dnn : DNN
    stim : Stimulus
        Image files, a movie's frames (``type="video"``; clips for a clip network) or
        clip files (``type="video_clip"``, clip networks), or audio files or segments
        (``type="audio"``, audio networks: one row per 0.96 s log-mel example, see
        :mod:`._audio`), see :data:`STIM_SOURCES`; missing files, onsets outside the
        movie or audio file and clips shorter than the network's input are reported
        before any computation.
    layers : list of str, optional
        Friendly layer names (or module paths). Default: the mask's layers.
    mask : Mask, optional
        Channels/rows/cols to keep per layer (layers not in the mask: all).
    pool : {"mean", "max", "median", "l1", "l2"}, optional
        Spatial pooling per channel → ``(n, n_chn, 1, 1)`` (:data:`TORCH_POOLS`).
    aggregate : {None, "label"}
        ``"label"``: store per-category means (float64 accumulation) of the
        ``label`` column instead of per-image activations.
    out : path, optional
        Stream into this ``.act.h5`` file (returned lazily); otherwise in memory.
    force : bool
        Overwrite ``out``.
    batch_size, device, workers : computing options
        ``workers`` DataLoader processes decode images alongside the network;
        0: threads decode each batch between forward passes (see
        :func:`image_batches`); None (default): 0 on a CPU, 4 on a GPU.
    preprocess : {"squash", "crop"}, optional
        Overrides the network's default preprocessing.
    compression : {"lzf", "gzip", "none"}
    attrs : dict, optional
        Extra file attributes (e.g. the stimulus file name). The network's
        provenance is recorded whatever they say: ``lesion`` (``dnn.lesions``) and,
        with Top-K in place, ``topk``/``topk_mode`` (:meth:`DNN.topk_attrs`), with
        ablations ``ablate``/``ablate_mode`` (:meth:`DNN.ablation_attrs`).
    show_progress : bool
        tqdm bar with images/s (frames/s, clips/s).

    Returns
    -------
    Activation
        Shape per layer ``(n_stim or n_categories, n_chn, n_row, n_col)`` (clip
        networks: time steps folded into rows, see :mod:`._video`). Per-stimulus
        files carry the rows' ``onset``/``duration`` (seconds) as attributes when the
        table has them, and always for movie frames (their timestamps).

    Examples
    --------
    >>> act = dnn.extract(stim, ["conv5_relu", "fc2_relu"], pool="mean")   # doctest: +SKIP
    """
    device = _check_request(stim, out=out, force=force, batch_size=batch_size,
                            workers=workers, aggregate=aggregate, device=device)
    transform = dnn.image_transform(preprocess)
    # every row checked (files, onsets, clip lengths) before the network runs
    rows = STIM_SOURCES[stim.type].rows(dnn, stim, transform, batch_size=batch_size,
                                        workers=workers, device=device)
    row_ids = stim.ids if rows.ids is None else rows.ids
    dnn.to(device)
    plans = _plan(dnn, layers, mask, pool)
    categories = _categories(stim, rows.stim_rows) if aggregate == "label" else None
    file_attrs = {"net": dnn.name, "weights": dnn.weights,
                  "weights_sha256": dnn.weights_sha256, "pool": pool or "",
                  "preprocess": preprocess or dnn.preprocess,
                  "aggregate": aggregate or "", "lesion": "; ".join(dnn.lesions),
                  "stim_type": stim.type, **rows.attrs,
                  **(attrs or {}), **dnn.topk_attrs(),
                  **dnn.ablation_attrs()}
    if categories is None:
        # rows are stimuli: their timing travels with them (db_hrf reads it)
        for name, values in (("onset", rows.onsets), ("duration", rows.durations)):
            if values is not None:
                file_attrs[name] = np.asarray(values, dtype=np.float64)
    shapes = {p.name: p.shape for p in plans}
    layer_attrs = {p.name: p.attrs() for p in plans}
    if categories is None:
        layout = _Layout(shapes, row_ids, np.float32, file_attrs, layer_attrs)
    else:   # per-category means are few rows: keep their float64 precision
        layout = _Layout(shapes, categories[0].astype(str), np.float64, file_attrs,
                         layer_attrs)
    sink = _make_sink(layout, out=out, compression=compression, force=force,
                      batch_rows=batch_size if categories is None else None, device=device)
    if categories is not None:
        sink = _CategoryMeans(sink, *categories)
    with progress(total=len(row_ids), desc=f"{dnn.name} activations", unit=rows.unit,
                  enabled=show_progress) as bar:
        _run_batches(dnn, plans, rows.batches, sink, device=device, paths=rows.names,
                     bar=bar)
    return sink.result()
