"""Images → uint8 batches for the network: decoding by threads or worker processes.

Extraction (:mod:`._extract`) and training (:mod:`._train`) read their stimuli
through :func:`image_batches`; decoding errors come back with the image's row, so
the caller reports the file in one clean line.

Large JPEGs are decoded at reduced scale when the transform shrinks them a lot
anyway (:data:`DRAFT_MIN_RATIO`, :func:`draft_scale`): libjpeg's DCT-domain
scaling (Pillow's ``Image.draft``) decodes an 800 x 800 photograph at 400 x 400,
then the transform's own resize runs as always. Measured against a full decode on
photographs, the 224 x 224 result differs by at most 20 of 255 levels at isolated
high-contrast edges, by at most 0.6 levels on average (docs/models.md, Preprocessing).
"""
import logging
import os
from concurrent.futures import ThreadPoolExecutor

import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms as T

from ..errors import FileFormatError
from ..utils.memory import release_free_memory
from ._transforms import to_rgb

__all__ = ["DRAFT_MIN_RATIO", "ImageDataset", "collate_images", "default_workers",
           "draft_scale", "image_batches", "network_inputs"]

log = logging.getLogger(__name__)

#: A JPEG is decoded at 1/2, 1/4 or 1/8 scale only while the decoded image keeps at
#: least this many pixels per pixel of the resize target, along both sides. Measured
#: on photographs (skimage's, re-encoded as JPEG, 700 to 2048 pixels a side, quality
#: 75 to 95, squash and crop): from 1.75 on, the result differs from a full decode by
#: at most 20 of 255 levels (mean <= 0.6 per image); the largest difference is no
#: smaller at 2 than at 1.75 (it depends on where an edge falls on the 8 x 8 blocks),
#: and it grows quickly below 1.5 (34 levels, mean 1.2, at 1.12). Read at each call
#: (a benchmark sets it to ``inf`` to time full decoding).
DRAFT_MIN_RATIO = 1.75


def _steps(transform):
    """The transforms of a (nested) ``Compose``, in order."""
    if isinstance(transform, T.Compose):
        for t in transform.transforms:
            yield from _steps(t)
    else:
        yield transform


def _leading_resize(transform):
    """The ``Resize`` that is the first step of ``transform`` to change the image's size.

    Only an RGB conversion may come before it; anything else (a crop, an
    augmentation, a user's function) turns reduced-scale decoding off.
    """
    for t in _steps(transform):
        if isinstance(t, T.Resize):
            return t
        if not (isinstance(t, T.Lambda) and t.lambd is to_rgb):
            return None
    return None


def _resized(resize, width, height):
    """``(width, height)`` that ``resize`` (a torchvision ``Resize``) makes of an image."""
    size = [resize.size] if isinstance(resize.size, int) else list(resize.size)
    if len(size) == 2:
        return size[1], size[0]
    # torchvision's rule for a single size: the shorter side becomes it
    short, long = sorted((width, height))
    new_short, new_long = size[0], int(size[0] * long / short)
    if resize.max_size is not None and new_long > resize.max_size:
        new_short, new_long = int(resize.max_size * new_short / new_long), resize.max_size
    return (new_short, new_long) if width <= height else (new_long, new_short)


def draft_scale(width, height, target, *, min_ratio=None):
    """Largest JPEG decoding scale ``s`` in (8, 4, 2) that keeps the image detailed enough.

    ``s`` must divide both sides (so the reduced image has exactly the same geometry)
    and leave at least ``min_ratio`` (default :data:`DRAFT_MIN_RATIO`) decoded pixels
    per pixel of ``target`` (``(width, height)`` after the resize) along both sides;
    1 when none does.

    >>> draft_scale(800, 800, (224, 224)), draft_scale(256, 256, (224, 224))
    (2, 1)
    """
    min_ratio = DRAFT_MIN_RATIO if min_ratio is None else min_ratio
    for s in (8, 4, 2):
        if (width % s == 0 and height % s == 0 and width / s >= min_ratio * target[0]
                and height / s >= min_ratio * target[1]):
            return s
    return 1


def _open_image(path, resize=None):
    """Open ``path``; a JPEG that ``resize`` will shrink a lot is set to decode smaller."""
    img = Image.open(path)
    if resize is None or img.format != "JPEG":
        return img
    width, height = img.size
    s = draft_scale(width, height, _resized(resize, width, height))
    if s > 1:
        img.draft(img.mode, (width // s, height // s))
        if img.size != (width // s, height // s):   # not what was asked: decode in full
            log.debug("JPEG draft of %s gave %s; decoding it in full", path, img.size)
            img.close()
            img = Image.open(path)
    return img


class ImageDataset(Dataset):
    """Decode images from ``paths`` with ``transform``; errors are returned, not raised.

    Returning the error text (instead of raising inside a worker process) lets
    the main process report the file in one clean line.

    Parameters
    ----------
    paths : sequence of str or Path
    transform : callable
        PIL image -> tensor. When its first size-changing step is a torchvision
        ``Resize`` (as in :func:`~dnnsparse.model.make_image_transform`), large
        JPEGs are decoded at reduced scale first (:func:`draft_scale`).
    draft : bool, default=True
        False: always decode JPEGs in full.
    """

    def __init__(self, paths, transform, *, draft=True):
        self.paths = [str(p) for p in paths]
        self.transform = transform
        self._resize = _leading_resize(transform) if draft else None

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        try:
            with _open_image(self.paths[i], self._resize) as img:
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


# Return freed heap memory to the system every this many batches: often enough to keep
# the peak flat (measured flat from 500 to 1000 images with 8), rarely enough that
# re-faulting the freed pages costs nothing measurable.
_TRIM_EVERY = 8


def network_inputs(dnn, batches, paths, device):
    """``(indices, normalised input)`` of every batch of :func:`image_batches`.

    The first unreadable image of a batch is refused naming its file and table row; the
    float input buffer is reused across batches (the network does not modify it); the
    heap is trimmed every few batches. Run it inside the caller's inference context.
    """
    inputs = None
    for n_batches, (idx, x, errors) in enumerate(batches, 1):
        if errors:
            i, msg = errors[0]
            raise FileFormatError(f"cannot read image {paths[i]} (row {i + 1} of the "
                                  f"stimulus table): {msg}. Fix or remove it.")
        x = x.to(device, non_blocking=True)
        if inputs is None or inputs.shape != x.shape:
            inputs = torch.empty(x.shape, dtype=torch.float32, device=device)
        yield idx, dnn.normalize(x, out=inputs)
        if n_batches % _TRIM_EVERY == 0:
            release_free_memory()
