"""Memory during long streaming runs: how much to read at once, and giving freed heap back."""
import ctypes
import ctypes.util
import functools
import logging
import sys

__all__ = ["READ_VALUES", "items_per_read", "release_free_memory"]

log = logging.getLogger(__name__)

#: Values per read of an array-like (an HDF5 dataset, a memmap) that is streamed in
#: pieces: 2**24 (128 MiB as float64). Every HDF5 read has a fixed cost, so pieces
#: are large; the float64 work on them is done in smaller, cache-sized blocks.
READ_VALUES = 2 ** 24


def items_per_read(values_per_item):
    """How many items (stimuli, units) of ``values_per_item`` values make one read.

    >>> items_per_read(64 * 55 * 55), items_per_read(2 ** 30)
    (86, 1)
    """
    return max(1, READ_VALUES // max(int(values_per_item), 1))


@functools.lru_cache(maxsize=None)
def _malloc_trim():
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):      # not glibc (e.g. musl): nothing to do
        log.debug("malloc_trim is not available")
        return None


def release_free_memory():
    """Return freed heap memory to the system (glibc's ``malloc_trim``; elsewhere a no-op).

    Layer-sized tensors are allocated and freed for every batch; glibc keeps the
    freed blocks and its heap fragments, so over a long extraction the peak RSS
    grows with the number of stimuli (measured: 1.33 GB for 500 AlexNet images,
    1.68 GB for 1000). Trimming every few batches keeps it flat (1.17 GB for
    both).
    """
    trim = _malloc_trim()
    if trim is not None:
        trim(0)
