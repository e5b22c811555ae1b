"""One-pass activation extraction: images → ``.act.h5`` (or memory), batch by batch.

For every batch the network runs ONCE, under ``torch.inference_mode()``, with
forward hooks on all requested layers; the pass stops as soon as the deepest
requested layer has been seen. Each hook copies its layer's output, applies the
layer's channel/row/column mask and spatial pooling on the device, and the
result is streamed to the output file, so peak memory does not grow with the
number of stimuli. With ``aggregate="label"`` only per-category means are kept
(accumulated in float64).
"""
import logging
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from ..base.activation import Activation
from ..errors import FileFormatError, InputError
from ..io import check_output_path
from ..io.act import ActWriter
from ..utils.memory import release_free_memory
from ..utils.progress import progress
from ..utils.validation import check_choice, check_scalar
from ._dnn import StopForward, as_4d

__all__ = ["extract", "ImageDataset", "TORCH_POOLS", "collate_images", "default_workers", "image_batches"]

log = logging.getLogger(__name__)


def _median(x):
    # numpy's median (mean of the two middle values), not torch.median's lower one
    s = x.flatten(2).sort(dim=-1).values
    n = s.shape[-1]
    return ((s[..., (n - 1) // 2] + s[..., n // 2]) / 2)[..., None, None]


#: Spatial pooling on tensors (n, c, h, w) → (n, c, 1, 1); same definitions as
#: :data:`dnnsparse.base.activation.POOLS` (element-wise l1/l2 norms). Reductions
#: run in the layer's own dtype: torch sums float32 by cascade summation, which is
#: as accurate as the float32 values stored (float64 reductions are ~50x slower
#: on CPU). Per-category accumulation (``aggregate="label"``) is float64.
TORCH_POOLS = {
    "mean": lambda x: x.mean(dim=(2, 3), keepdim=True),
    "max": lambda x: x.amax(dim=(2, 3), keepdim=True),
    "median": _median,
    "l1": lambda x: x.abs().sum(dim=(2, 3), keepdim=True),
    "l2": lambda x: x.square().sum(dim=(2, 3), keepdim=True).sqrt(),
}


# Return freed heap memory to the system every this many batches: often enough to keep
# the peak flat (measured flat from 500 to 1000 images with 8), rarely enough that
# re-faulting the freed pages costs nothing measurable.
_TRIM_EVERY = 8


class ImageDataset(Dataset):
    """Decode images from ``paths`` with ``transform``; errors are returned, not raised.

    Returning the error text (instead of raising inside a worker process) lets
    the main process report the file in one clean line.
    """

    def __init__(self, paths, transform):
        self.paths = [str(p) for p in paths]
        self.transform = transform

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        try:
            with Image.open(self.paths[i]) as img:
                return i, self.transform(img), None
        except Exception as exc:   # any decoding problem is reported with the file name
            return i, None, f"{exc.__class__.__name__}: {exc}"


def default_workers(workers, device):
    """``workers``, or for None: 0 on a CPU (see :func:`image_batches`), min(4, cores)
    on a GPU."""
    if workers is not None:
        return workers
    return min(4, os.cpu_count() or 1) if torch.device(device).type == "cuda" else 0


def image_batches(dataset, batch_size, *, workers=None, device="cpu"):
    """Iterate over ``(indices, uint8 batch, errors)`` of an :class:`ImageDataset`.

    Parameters
    ----------
    dataset : ImageDataset
    batch_size : int
    workers : int, optional
        > 0: that many DataLoader processes decode ahead, alongside the network
        -- right when the network runs on a GPU and the CPU is free. 0: the
        batch is decoded by threads of this process (Pillow releases the GIL)
        *between* forward passes. On a CPU the network already keeps every core
        busy; decoding beside it takes cores from it, and each of its layers
        waits for its slowest thread (measured on 2 cores: AlexNet, 500 images,
        1.46x the bare forward time with a worker process, see
        docs/benchmarks.md). None: 0 on a CPU, min(4, cores) on a GPU.
    device : str or torch.device
        Where the batches go (pinned memory for CUDA with worker processes).

    Yields
    ------
    indices, x, errors
        As :func:`collate_images` returns them.
    """
    device = torch.device(device)
    workers = default_workers(workers, device)
    if workers:
        yield from DataLoader(dataset, batch_size=batch_size, shuffle=False,
                              num_workers=workers, collate_fn=collate_images,
                              pin_memory=device.type == "cuda", prefetch_factor=4)
        return
    n = len(dataset)
    with ThreadPoolExecutor(max(1, torch.get_num_threads())) as pool:
        for start in range(0, n, batch_size):
            yield collate_images(list(pool.map(dataset.__getitem__,
                                               range(start, min(start + batch_size, n)))))


def collate_images(items):
    """``collate_fn`` of a DataLoader over an :class:`ImageDataset`.

    Parameters
    ----------
    items : list of (index, tensor or None, error or None)
        What :class:`ImageDataset` returns for each image of the batch.

    Returns
    -------
    indices : list of int
    x : tensor of shape (n, 3, H, W), or None when an image could not be read
    errors : list of (index, str)
        The images that could not be read, with the reason.
    """
    idx = [i for i, _, _ in items]
    errors = [(i, e) for i, _, e in items if e is not None]
    x = None if errors else torch.stack([t for _, t, _ in items])
    return idx, x, errors


class _LayerPlan:
    """What to keep of one layer: mask indices (0-based), pooling, stored shape."""

    def __init__(self, name, raw_shape, sel, pool):
        self.name, self.raw_shape, self.pool = name, tuple(raw_shape), pool
        self.sel = sel or {"chn": None, "row": None, "col": None}
        shape = [len(self.sel[a]) if self.sel[a] is not None else n
                 for a, n in zip(("chn", "row", "col"), raw_shape)]
        self.shape = (shape[0], 1, 1) if pool else tuple(shape)
        self._index = None

    def attrs(self):
        a = {"raw_shape": np.asarray(self.raw_shape), "pool": self.pool or ""}
        for axis in ("chn", "row", "col"):
            if self.sel[axis] is not None:
                a[axis] = np.asarray(self.sel[axis]) + 1     # 1-based, as in .dmask.csv
        return a

    def reduce(self, out):
        """Masked, pooled float32 CPU copy of a layer output."""
        t = as_4d(out).detach()
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
    plans = []
    for l in layers:
        sel = None
        if mask is not None and l in mask:
            mask.check(l, raw[l])
            sel = mask.get(l)
        plans.append(_LayerPlan(l, raw[l], sel, pool))
    return plans


def extract(dnn, stim, layers=None, *, mask=None, pool=None, aggregate=None, out=None,
            force=False, batch_size=32, device="cpu", workers=None, preprocess=None,
            compression="lzf", attrs=None, show_progress=True):
    """Extract activations of ``stim`` in ``layers`` with one forward pass per batch.

    Parameters
    ----------
    dnn : DNN
    stim : Stimulus
        Image stimuli; missing files are reported before any computation.
    layers : list of str, optional
        Friendly layer names (or module paths). Default: the mask's layers.
    mask : Mask, optional
        Channels/rows/cols to keep per layer (layers not in the mask: all).
    pool : {"mean", "max", "median", "l1", "l2"}, optional
        Spatial pooling per channel → ``(n, n_chn, 1, 1)``.
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
        Extra file attributes (e.g. the stimulus file name).
    show_progress : bool
        tqdm bar with images/s.

    Returns
    -------
    Activation
        Shape per layer ``(n_stim or n_categories, n_chn, n_row, n_col)``.

    Examples
    --------
    >>> act = dnn.extract(stim, ["conv5_relu", "fc2_relu"], pool="mean")   # doctest: +SKIP
    """
    if out is not None:
        check_output_path(out, force=force)       # fail before any computation
    check_scalar(batch_size, name="batch_size", kind=int, min_val=1)
    if workers is not None:
        check_scalar(workers, name="workers", kind=int, min_val=0)
    if aggregate not in (None, "label"):
        raise InputError(f"Unknown aggregate={aggregate!r}; choose 'label' or none.")
    if stim.type != "image":
        raise InputError(f"stimulus type {stim.type!r} is not supported for extraction; "
                         f"only image stimuli are.")
    if len(stim) == 0:
        raise InputError("the stimulus table has no rows.")
    stim.check_files()
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError("device 'cuda' was requested but CUDA is not available; use "
                         "-device cpu.")
    dnn.to(device)
    plans = _plan(dnn, layers, mask, pool)

    if aggregate == "label":
        labels = stim.labels
        if labels is None:
            raise InputError("aggregate='label' needs a 'label' column in the stimulus table.")
        cats, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
        inverse_t = torch.as_tensor(inverse)
        n_rows, row_ids = len(cats), cats.astype(str)
        sums = {p.name: torch.zeros((n_rows, int(np.prod(p.shape))), dtype=torch.float64)
                for p in plans}
    else:
        n_rows, row_ids = len(stim), stim.ids

    file_attrs = {"net": dnn.name, "weights": dnn.weights,
                  "weights_sha256": dnn.weights_sha256, "pool": pool or "",
                  "preprocess": preprocess or dnn.preprocess,
                  "aggregate": aggregate or "", "lesion": "; ".join(dnn.lesions),
                  **(attrs or {})}
    layer_attrs = {p.name: p.attrs() for p in plans}
    shapes = {p.name: p.shape for p in plans}
    loader = image_batches(ImageDataset(stim.paths, dnn.image_transform(preprocess)),
                           batch_size, workers=workers, device=device)

    # per-category means are few rows: keep their float64 precision
    dtype = np.float64 if aggregate else np.float32
    if out is not None:
        sink = ActWriter(out, shapes, n_rows, attrs=file_attrs, layer_attrs=layer_attrs,
                         stim_ids=row_ids, compression=compression, force=force, dtype=dtype,
                         batch_rows=None if aggregate else batch_size)
    else:
        sink = _MemorySink(shapes, n_rows, dtype)

    captured = {}
    n_batches = 0
    inputs = None         # the float input batch, reused (the network does not modify it)

    def make_hook(plan):
        def hook(module, inputs, output):
            captured[plan.name] = plan.reduce(output)
            if len(captured) == len(plans):
                raise StopForward       # nothing deeper is needed for this batch
        return hook

    handles = [dnn.register_layer_hook(p.name, make_hook(p)) for p in plans]
    bar = progress(total=len(stim), desc=f"{dnn.name} activations", unit="img",
                   enabled=show_progress)
    try:
        with sink, torch.inference_mode():
            for idx, x, errors in loader:
                if errors:
                    i, msg = errors[0]
                    raise FileFormatError(f"cannot read image {stim.paths[i]} (row {i + 1} "
                                          f"of the stimulus table): {msg}. Fix or remove it.")
                captured.clear()
                try:
                    x = x.to(device, non_blocking=True)
                    if inputs is None or inputs.shape != x.shape:
                        inputs = torch.empty(x.shape, dtype=torch.float32, device=device)
                    dnn.module(dnn.normalize(x, out=inputs))
                except StopForward:
                    pass
                start = idx[0]
                for name, value in captured.items():
                    if aggregate == "label":
                        sums[name].index_add_(0, inverse_t[start:start + len(idx)],
                                              value.reshape(len(idx), -1).double())
                    else:
                        sink.write(name, start, value.numpy())
                bar.update(len(idx))
                n_batches += 1
                if n_batches % _TRIM_EVERY == 0:
                    release_free_memory()   # peak memory must not grow with the stimuli
            if aggregate == "label":
                for name, s in sums.items():
                    mean = (s / torch.as_tensor(counts, dtype=torch.float64)[:, None])
                    sink.write(name, 0, mean.reshape((n_rows,) + shapes[name]).numpy())
                sink.write_meta("label", cats)
                sink.write_meta("count", counts)
    finally:
        bar.close()
        for h in handles:
            h.remove()

    if out is not None:
        return Activation.load(out)
    act = Activation(sink.data, stim_ids=row_ids, attrs=file_attrs, layer_attrs=layer_attrs)
    if aggregate == "label":
        act.category_labels, act.category_counts = cats, counts
    return act


class _MemorySink:
    """In-memory stand-in for :class:`ActWriter` (same write interface)."""

    def __init__(self, shapes, n_rows, dtype):
        self.data = {l: np.empty((n_rows,) + s, dtype=dtype) for l, s in shapes.items()}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def write(self, layer, start, data):
        self.data[layer][start:start + len(data)] = data

    def write_meta(self, name, values):
        pass
