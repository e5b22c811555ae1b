"""Images → uint8 batches for the network: decoding by threads or worker processes.

Extraction (:mod:`._extract`) and training (:mod:`._train`) read their stimuli
through :func:`image_batches`; decoding errors come back with the image's row, so
the caller reports the file in one clean line.
"""
import os
from concurrent.futures import ThreadPoolExecutor

import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

__all__ = ["ImageDataset", "collate_images", "default_workers", "image_batches"]


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
