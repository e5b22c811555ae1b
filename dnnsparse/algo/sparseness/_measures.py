"""Sparseness of a layer's code: population sparseness (PSI) and friends.

All measures take ``responses`` of shape ``(n_categories, n_units)``: one row per
object category (the mean response of each unit to the category's stimuli, see
:func:`~dnnsparse.algo.sparseness.category_means`), one
column per unit. ``responses`` may be a NumPy array (float32 is fine), a
:class:`numpy.memmap`, or an HDF5 dataset (h5py) -- anything with a 2-D ``shape``
that supports ``responses[:, start:stop]``. Units are read ``chunk_size`` columns
at a time and converted to float64 chunk by chunk, so a layer of millions of units
never needs a float64 copy of the whole matrix. With numba installed (the ``fast``
extra) the paper's normalised PSI and Hoyer measures run through a compiled
one-pass kernel (:mod:`dnnsparse.algo.sparseness._kernel`); the results are those
of the NumPy code to ~1e-14.

Population sparseness follows Liu, Zhen & Liu (2020), *Hierarchical sparse
coding of objects in deep convolutional neural networks*, and reproduces the
authors' code (``scipy.stats.zscore`` then ``sklearn`` ``MinMaxScaler``):

1. ``responses`` are per-category means of per-image unit activations;
2. each unit is z-scored across categories (ddof 0); a unit whose response is
   the same for every category (a *dead* unit) gets 0 instead of NaN;
3. each category's vector is min-max scaled across units to [0, 1] (a constant
   vector becomes all zeros);
4. ``a = (sum(r) / N)**2 / (sum(r**2) / N)``, ``PSI = (1 - a) / (1 - 1/N)``; a
   category whose scaled vector is all zero gets PSI 0.
"""
import functools
import numbers
import os
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Callable

import numpy as np
from threadpoolctl import threadpool_limits

from ...errors import InputError
from ...utils.memory import items_per_read
from ...utils.registry import Registry
from ...utils.validation import check_array, check_choice, check_scalar
from . import _kernel as _sparseness_kernel
from ._category import UNIT_MODES, CategoryMeans, category_means

__all__ = [
    "MEASURES",
    "Measure",
    "active_fraction",
    "dead_units",
    "hoyer_sparseness",
    "kurtosis_sparseness",
    "lifetime_sparseness",
    "population_sparseness",
    "sparseness",
]

# Work is done on float64 blocks of about 2**18 values (2 MiB), which stay in the
# CPU cache through the ~10 passes each block needs; that is faster than large
# blocks and never allocates big temporaries. Data sets that are read
# (HDF5) are read in larger pieces of about utils.memory.READ_VALUES (2**24)
# values, because every read has a fixed cost.
_BLOCK_VALUES = 2 ** 18
# The compiled kernel does four passes per block, two of them over float32 or
# float64 input: its best block is smaller (measured on 2 MiB of L2 per core).
_KERNEL_BLOCK_VALUES = 160_000
# A category whose z-scores lie within this fraction of their magnitude (at
# least 1) of each other (root mean square) differ by rounding only: the
# category is constant (PSI 0).
_FLAT_RANGE = 1e-10
# Matrices of at least this many values are split into (at most this many) column
# ranges, summed by as many threads as there are CPUs.
_THREAD_VALUES = 2 ** 20
_MAX_THREADS = 8


# ---------------------------------------------------------------------------
# Reading responses chunk by chunk
# ---------------------------------------------------------------------------
def _as_matrix(responses, name):
    """Return a 2-D array-like without reading a dataset-like object into memory."""
    lazy = (not isinstance(responses, np.ndarray) and hasattr(responses, "shape")
            and hasattr(responses, "__getitem__"))
    if not lazy:
        # NaN is checked chunk by chunk (with the column range in the message).
        return check_array(responses, name=name, ndim=2, dtype="float", allow_nan=True)
    if len(responses.shape) != 2:
        raise InputError(f"{name} must be 2-D (n_categories, n_units); got shape "
                         f"{tuple(responses.shape)}.")
    if responses.shape[0] < 1:
        raise InputError(f"{name} needs at least 1 row(s); got shape {tuple(responses.shape)}.")
    return responses


def _widths(chunk_size, data, block_values=None):
    """Columns per read and per processed block (of about ``block_values`` values)."""
    n_rows = max(data.shape[0], 1)
    block = max(1, (block_values or _BLOCK_VALUES) // n_rows)
    if chunk_size is not None:
        check_scalar(chunk_size, name="chunk_size", kind=numbers.Integral, min_val=1)
        return int(chunk_size), min(block, int(chunk_size))
    if isinstance(data, np.ndarray):
        return block, block          # slicing an array reads nothing
    return max(block, items_per_read(n_rows)), block


def _raise_nonfinite(block, start, name="responses"):
    """Raise the InputError for a block known to hold NaN/inf (or to overflow)."""
    check_array(block, name=f"{name}[:, {start}:{start + block.shape[1]}]")
    raise InputError(f"{name}[:, {start}:{start + block.shape[1]}] has values too large "
                     "to sum in float64; rescale them.")


def _column_chunks(responses, chunk_size, *, name="responses", min_units=1,
                   check_finite=True):
    """Yield ``(start, block)``: ``responses[:, start:start + w]`` as float64.

    ``block`` is a view of one float64 buffer reused for every block (no
    allocation per block, and never the caller's array): consumers may modify
    it in place but must not keep it. With ``check_finite``, blocks are checked
    for NaN/inf, with the column range in the error message; consumers that
    pass False check a statistic of the block instead (a NaN or inf makes its
    column mean non-finite), which saves a pass over the data.
    """
    data = _as_matrix(responses, name)
    n_rows, n_cols = data.shape
    if n_cols < min_units:
        raise InputError(f"{name} needs at least {min_units} unit(s) (columns); got shape "
                         f"{tuple(data.shape)}.")
    read_width, block_width = _widths(chunk_size, data)
    buffer = np.empty((n_rows, min(block_width, n_cols)), dtype=np.float64)
    finite = np.empty(buffer.shape, dtype=bool)
    for read_start in range(0, n_cols, read_width):
        piece = data[:, read_start:read_start + read_width]
        for offset in range(0, piece.shape[1], block_width):
            part = piece[:, offset:offset + block_width]
            width = part.shape[1]
            block = buffer[:, :width]
            try:
                np.copyto(block, part, casting="same_kind")
            except TypeError as exc:
                raise InputError(f"{name} must be real numbers: {exc}") from None
            if check_finite and not np.isfinite(block, out=finite[:, :width]).all():
                _raise_nonfinite(block, read_start + offset, name)
            yield read_start + offset, block


def _constant_columns(centred, mean, sd):
    """Boolean mask of columns whose (centred) values are all equal.

    Rounding in the mean makes a constant column's standard deviation a few ulps
    instead of 0, which would z-score it to +-1; so columns whose spread is at
    rounding level are checked exactly. Centred values of such a column lie
    within a factor of 2 of each other, so the subtraction was exact (Sterbenz)
    and "centred values equal" means "raw values equal".
    """
    const = np.zeros(centred.shape[1], dtype=bool)
    suspect = np.flatnonzero(sd <= 1e-8 * np.abs(mean))
    if suspect.size:
        sub = centred[:, suspect]
        const[suspect] = (sub == sub[:1]).all(axis=0)
    return const


def _zscore_columns(block, start):
    """In place: z-score each column across rows (ddof 0); constant columns become 0.

    Raises InputError if the block holds NaN/inf (found through its means).
    """
    # BLAS matrix-vector products are the fastest column and row sums.
    mean = np.ones(block.shape[0]) @ block / block.shape[0]
    if not np.isfinite(mean).all():
        _raise_nonfinite(block, start)
    block -= mean
    sd = np.sqrt(np.einsum("ij,ij->j", block, block) / block.shape[0])
    const = _constant_columns(block, mean, sd)
    with np.errstate(divide="ignore"):
        inv = 1.0 / sd
    inv[const] = 0.0
    block *= inv
    return block


def _single_threaded_blas():
    """Context: one BLAS thread. Our matrix-vector products are small (one cache-sized
    block); OpenBLAS threads them above ~2**18 values, which on a busy 2-core
    machine made the whole computation 10x slower (measured)."""
    return threadpool_limits(limits=1, user_api="blas")


def _check_nonnegative(block, start, name, hint):
    if block.size and block.min() < 0:
        col = start + int(np.argmin(block.min(axis=0)))
        raise InputError(f"{name} has negative values (first in unit {col}); {hint}")


# ---------------------------------------------------------------------------
# Per-category sums shared by PSI and Hoyer
# ---------------------------------------------------------------------------
def _category_sums(responses, *, normalize, chunk_size, negative):
    """Per-category ``A = sum(r)``, ``B = sum(r**2)`` and ``N`` over all units.

    With ``normalize``, ``r = z - min(z)`` where ``z`` is the unit-wise z-score
    and the minimum is the category's minimum over *all* units. Both PSI and the
    Hoyer measure are invariant to scaling ``r``, so the division by the range in
    the min-max step (3) never has to be done. Chunks are merged by shifting
    their sums to the running minimum; every term of the merge is non-negative,
    so no precision is lost to cancellation.

    A category whose z-scores differ by no more than rounding error (root mean
    square distance from their minimum <= ``_FLAT_RANGE`` times their
    magnitude, at least 1) is constant: its sums are set to 0. (With two
    categories, for example, a category above the other in every unit has
    z = 1 in every unit; min-max scaling the ~1e-16 rounding differences would
    give an arbitrary PSI.)

    Without ``normalize``, ``r`` is the raw response; ``negative="error"`` raises
    on negative values, ``negative="abs"`` sums ``|r|`` (Hoyer's L1 norm).

    Large in-memory matrices are split into contiguous column ranges fixed by
    their shape, summed by threads (NumPy and the kernel release the GIL); the
    partial sums are merged in column order, so the result does not depend on
    thread timing or on the number of threads.
    """
    data = _as_matrix(responses, "responses")
    n_rows, n_cols = data.shape
    if n_cols < 2:
        raise InputError(f"responses needs at least 2 unit(s) (columns); got shape "
                         f"{tuple(data.shape)}.")
    if normalize and _sparseness_kernel.AVAILABLE:
        parts = _compiled_parts(data, chunk_size)
    else:
        with _single_threaded_blas():
            parts = _in_column_ranges(
                data, lambda a, b: _partial_sums(data[:, a:b], a, normalize, chunk_size,
                                                 negative))
    low, total, total_sq, n = functools.reduce(_merge_sums, parts)
    if normalize:
        # Root-mean-square distance from the minimum, against the z-scores'
        # magnitude (at least 1: z-scores have unit variance per unit). A range
        # r gives at most r here, so every category flat up to r is caught.
        spread = np.sqrt(total_sq / n)
        flat = spread <= _FLAT_RANGE * np.maximum(1.0, np.abs(low))
        total[flat] = 0.0
        total_sq[flat] = 0.0
    return total, total_sq, n


def _in_column_ranges(data, func):
    """``[func(start, stop) for each range of _column_ranges(data)]``, in that order.

    The ranges depend on ``data``'s shape only; up to :func:`_threads` threads
    take them one at a time, so which thread sums which range (and how many
    threads there are) changes nothing in the results, which the caller merges
    in range order.
    """
    ranges = _column_ranges(data)
    results = [None] * len(ranges)
    todo = iter(range(len(ranges)))
    lock = threading.Lock()
    failed = []

    def work():
        while not failed:
            with lock:
                i = next(todo, None)
            if i is None:
                return
            try:
                results[i] = func(*ranges[i])
            except BaseException:
                failed.append(i)            # the others stop taking ranges
                raise

    # The calling thread works too instead of waiting idle.
    others = [_thread_pool().submit(work) for _ in range(min(len(ranges), _threads()) - 1)]
    try:
        work()
    finally:
        wait(others)              # never leave work running on an error
    for f in others:
        f.result()                # re-raise a worker's error
    return results


def _threads():
    """Threads for the column ranges: the CPUs this process may run on (at most
    ``_MAX_THREADS``)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):           # not on Linux
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, _MAX_THREADS))


_POOL = (None, None)       # (process id, ThreadPoolExecutor)


def _thread_pool():
    """One pool for the process: starting threads on every call cost 0.2 ms, 10% of
    a 1000 x 4096 PSI (measured). Its threads only run our column ranges, which
    never wait on each other, so concurrent callers cannot deadlock. A process
    forked from this one (multiprocessing) has none of the pool's threads: it
    gets a pool of its own."""
    global _POOL
    pid, pool = _POOL
    if pid != os.getpid():
        pool = ThreadPoolExecutor(max_workers=_MAX_THREADS, thread_name_prefix="dnnsparse")
        _POOL = (os.getpid(), pool)
    return pool


def _compiled_parts(data, chunk_size):
    """``(low, A, B, N)`` states, in column order, from the compiled one-pass kernel.

    Arrays are processed in place (column ranges over threads); lazy datasets
    are read ``read_width`` columns at a time and each piece processed the same
    way. Same blocks and the same arithmetic as :func:`_partial_sums`.
    """
    read_width, width = _widths(chunk_size, data, _KERNEL_BLOCK_VALUES)
    pieces = ([(0, data)] if isinstance(data, np.ndarray) else
              ((start, np.asarray(data[:, start:start + read_width]))
               for start in range(0, data.shape[1], read_width)))
    parts = []
    for offset, piece in pieces:
        if piece.dtype not in (np.float32, np.float64) or not piece.flags.c_contiguous:
            try:
                piece = np.ascontiguousarray(
                    piece, dtype=np.float32 if piece.dtype == np.float32 else np.float64)
            except (TypeError, ValueError) as exc:
                raise InputError(f"responses must be real numbers: {exc}") from None

        def run(first, last, piece=piece, offset=offset):
            low, total, total_sq, bad = _sparseness_kernel.normalized_sums(
                piece, first, last, width)
            if bad >= 0:        # report the block holding it, as the NumPy path does
                start = first + (bad - first) // width * width
                _raise_nonfinite(piece[:, start:start + width].astype(np.float64),
                                 offset + start)
            return low, total, total_sq, last - first

        parts.extend(_in_column_ranges(piece, run))
    return parts


def _column_ranges(data):
    """Contiguous ``(start, stop)`` column ranges, fixed by the shape of ``data``.

    The ranges (up to ``_MAX_THREADS`` of at least 1024 columns for in-memory
    arrays of ``_THREAD_VALUES`` values or more; one otherwise, and for lazy
    datasets, which are read by one thread) never depend on the machine, so
    the partial sums and their merge -- and the last bits of the result -- are
    the same with one thread or eight.
    """
    n_rows, n_cols = data.shape
    n_ranges = 1
    if isinstance(data, np.ndarray) and data.size >= _THREAD_VALUES:
        n_ranges = max(1, min(_MAX_THREADS, n_cols // 1024))
    bounds = np.linspace(0, n_cols, n_ranges + 1).astype(int)
    return list(zip(bounds[:-1], bounds[1:]))


def _partial_sums(data, offset, normalize, chunk_size, negative):
    """``(low, A, B, N)`` over the columns of ``data`` (column ``offset`` onwards).

    ``low`` is each category's minimum z-score (None without ``normalize``).
    """
    state = None
    for start, block in _column_chunks(data, chunk_size, check_finite=not normalize):
        start += offset
        width = block.shape[1]
        chunk_low = None
        if normalize:
            _zscore_columns(block, start)
            chunk_low = block.min(axis=1)                       # (n_categories,)
            block -= chunk_low[:, None]
        elif negative == "error":
            _check_nonnegative(block, start, "responses",
                               "use normalize=True (the paper's z-score and min-max "
                               "scaling) or shift them to be non-negative.")
        else:
            np.abs(block, out=block)
        part = (chunk_low, block @ np.ones(width), np.einsum("ij,ij->i", block, block), width)
        state = part if state is None else _merge_sums(state, part)
    return state


def _merge_sums(a, b):
    """Merge two ``(low, A, B, N)`` states by shifting both to the common minimum.

    Every added term is non-negative, so nothing is lost to cancellation.
    """
    low_a, total_a, sq_a, n_a = a
    low_b, total_b, sq_b, n_b = b
    if low_a is None:                        # raw responses: plain sums
        return None, total_a + total_b, sq_a + sq_b, n_a + n_b
    low = np.minimum(low_a, low_b)
    d_a, d_b = low_a - low, low_b - low       # both >= 0
    total_sq = (sq_a + 2 * d_a * total_a + n_a * d_a ** 2
                + sq_b + 2 * d_b * total_b + n_b * d_b ** 2)
    total = total_a + n_a * d_a + total_b + n_b * d_b
    return low, total, total_sq, n_a + n_b


def _vinje_gallant(total, total_sq, n):
    """``(1 - a) / (1 - 1/n)`` with ``a = (total/n)**2 / (total_sq/n)``; 0 where all zero."""
    out = np.zeros(np.shape(total), dtype=np.float64)
    ok = total_sq > 0
    a = total[ok] ** 2 / (n * total_sq[ok])
    # (1 - a) >= 0 by Cauchy-Schwarz; clip the last-ulp rounding.
    out[ok] = np.clip((1.0 - a) / (1.0 - 1.0 / n), 0.0, 1.0)
    return out


def _warn_single_category(n_rows, normalize):
    if normalize and n_rows == 1:
        warnings.warn("Only one category: every unit's z-score is 0, so the "
                      "sparseness is 0. Use normalize=False on raw responses, or "
                      "pass several categories.", UserWarning, stacklevel=3)


def _n_rows(responses):
    return _as_matrix(responses, "responses").shape[0]


# ---------------------------------------------------------------------------
# Public measures
# ---------------------------------------------------------------------------
def population_sparseness(responses, *, normalize=True, chunk_size=None):
    """Population sparseness index (PSI) of each category, as in Liu et al. (2020).

    ``PSI = (1 - a) / (1 - 1/N)`` with ``a = (sum(r)/N)**2 / (sum(r**2)/N)``
    over the ``N`` units (Vinje & Gallant, 2000): 0 when all units respond
    equally, 1 when a single unit responds.

    Parameters
    ----------
    responses : array-like or h5py.Dataset of shape (n_categories, n_units)
        Mean response of each unit to each category. Float32 is read as is and
        accumulated in float64; a memmap or an HDF5 dataset is read in chunks.
    normalize : bool, default=True
        Apply the paper's preprocessing: z-score each unit across categories
        (ddof 0; dead units become 0), then min-max scale each category across
        units to [0, 1]. False uses the raw responses, which must then be
        non-negative (e.g. ReLU outputs).
    chunk_size : int, optional
        Units read at a time (they are processed in cache-sized blocks of at
        most that many). Default: about 2**18 values per block for an array,
        2**24 values per read for an HDF5 dataset. The result does not depend
        on it beyond rounding (~1e-15).

    Returns
    -------
    psi : ndarray of shape (n_categories,), float64
        In [0, 1].

    Raises
    ------
    InputError
        If ``responses`` is not 2-D, has a single unit (N = 1: PSI is undefined),
        contains NaN/inf, or has negative values with ``normalize=False``.

    Notes
    -----
    Edge cases, handled on purpose:

    - **N = 1 unit**: ``1 - 1/N = 0``, PSI is undefined: InputError.
    - **One category**: every z-score is 0, so every PSI is 0 (with a
      warning). Use ``normalize=False`` to measure a single raw pattern.
    - **Dead units** (the same response to every category, e.g. a ReLU unit
      that never fires): their z-score is 0, which after min-max scaling sits
      at an arbitrary middle level; many dead units pull PSI toward 0. Count
      them with :func:`dead_units` and report the number beside the PSI.
    - **A constant category** (all units equal after step 2) scales to all
      zeros and gets PSI 0, as in the authors' code. "Equal" allows for
      rounding (z-scores within 1e-10, root mean square, of their minimum;
      relative to their magnitude when that exceeds 1). E.g. with two
      categories, one above the other in every unit, every z-score is 1 up
      to ~1e-16; the authors' code returns an arbitrary PSI from min-max
      scaling that rounding noise, here it is 0.

    PSI is invariant to scaling ``r``, so step 3 is carried out as a shift by
    the category's minimum; the division by its range does not change PSI.
    For the same reason the z-score's ddof does not matter (it scales every
    z-score by one factor). Chunks are merged exactly (sums of non-negative
    terms), so the result agrees with the direct computation to ~1e-15.

    Examples
    --------
    >>> population_sparseness([[1.0, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0]],
    ...                       normalize=False)
    array([1., 0.])
    """
    _warn_single_category(_n_rows(responses), normalize)
    total, total_sq, n = _category_sums(responses, normalize=normalize,
                                        chunk_size=chunk_size, negative="error")
    return _vinje_gallant(total, total_sq, n)


def hoyer_sparseness(responses, *, normalize=False, chunk_size=None):
    """Hoyer (2004) sparseness of each category across units.

    ``(sqrt(N) - L1/L2) / (sqrt(N) - 1)``: 0 when all units respond equally
    (in absolute value), 1 when a single unit responds.

    Parameters
    ----------
    responses : array-like or h5py.Dataset of shape (n_categories, n_units)
    normalize : bool, default=False
        False: raw responses (signed values enter through ``|r|``). True: the
        paper's preprocessing, as in :func:`population_sparseness`.
    chunk_size : int, optional
        Units processed at a time (see :func:`population_sparseness`).

    Returns
    -------
    hoyer : ndarray of shape (n_categories,), float64
        An all-zero category gets 0.

    Examples
    --------
    >>> hoyer_sparseness([[3.0, 0.0, 0.0, 0.0], [2.0, 2.0, 2.0, 2.0]])
    array([1., 0.])
    """
    _warn_single_category(_n_rows(responses), normalize)
    total, total_sq, n = _category_sums(responses, normalize=normalize,
                                        chunk_size=chunk_size, negative="abs")
    out = np.zeros(total.shape, dtype=np.float64)
    ok = total_sq > 0
    root_n = np.sqrt(n)
    out[ok] = (root_n - total[ok] / np.sqrt(total_sq[ok])) / (root_n - 1.0)
    return np.clip(out, 0.0, 1.0)


def _merge_moments(state, block):
    """Merge per-row central moments of ``block`` into ``state`` (Pébay, 2008).

    ``state`` is ``(n, mean, M2, M3, M4)`` with ``Mk = sum((x - mean)**k)``.
    """
    n_b = block.shape[1]
    mean_b = block.mean(axis=1)
    dev = block - mean_b[:, None]
    dev2 = dev * dev
    m2_b = dev2.sum(axis=1)
    m3_b = np.einsum("ij,ij->i", dev2, dev)
    m4_b = np.einsum("ij,ij->i", dev2, dev2)
    if state is None:
        return n_b, mean_b, m2_b, m3_b, m4_b
    n_a, mean_a, m2_a, m3_a, m4_a = state
    n = n_a + n_b
    delta = mean_b - mean_a
    mean = mean_a + delta * n_b / n
    m2 = m2_a + m2_b + delta ** 2 * n_a * n_b / n
    m3 = (m3_a + m3_b + delta ** 3 * n_a * n_b * (n_a - n_b) / n ** 2
          + 3 * delta * (n_a * m2_b - n_b * m2_a) / n)
    m4 = (m4_a + m4_b
          + delta ** 4 * n_a * n_b * (n_a ** 2 - n_a * n_b + n_b ** 2) / n ** 3
          + 6 * delta ** 2 * (n_a ** 2 * m2_b + n_b ** 2 * m2_a) / n ** 2
          + 4 * delta * (n_a * m3_b - n_b * m3_a) / n)
    return n, mean, m2, m3, m4


def kurtosis_sparseness(responses, *, normalize=False, chunk_size=None):
    """Excess kurtosis of each category's responses across units.

    The (biased, Fisher) kurtosis ``N * M4 / M2**2 - 3`` of scipy's
    ``scipy.stats.kurtosis`` default: 0 for a Gaussian, large for a peaked
    (sparse) pattern. Moments are merged across chunks exactly (Pébay's
    formulas), so ``chunk_size`` does not change the result.

    Parameters
    ----------
    responses : array-like or h5py.Dataset of shape (n_categories, n_units)
    normalize : bool, default=False
        True z-scores each unit across categories first (the min-max step of
        the paper does not change kurtosis).
    chunk_size : int, optional

    Returns
    -------
    kurtosis : ndarray of shape (n_categories,), float64
        NaN for a category whose responses are all equal (undefined), with a
        warning.

    Examples
    --------
    >>> kurtosis_sparseness([[1.0, 0.0, 0.0, 0.0], [1.0, 2.0, 1.0, 2.0]]).round(3)
    array([-0.667, -2.   ])
    """
    _warn_single_category(_n_rows(responses), normalize)
    state = None
    with _single_threaded_blas():
        for start, block in _column_chunks(responses, chunk_size, min_units=2,
                                           check_finite=not normalize):
            if normalize:
                _zscore_columns(block, start)
            state = _merge_moments(state, block)
    n, _, m2, _, m4 = state
    flat = m2 == 0
    out = np.full(m2.shape, np.nan)
    out[~flat] = n * m4[~flat] / m2[~flat] ** 2 - 3.0
    if flat.any():
        warnings.warn(f"{int(flat.sum())} categor(y/ies) have the same response in every "
                      "unit; their kurtosis is undefined (NaN).", UserWarning, stacklevel=2)
    return out


def active_fraction(responses, *, threshold=0.0, chunk_size=None):
    """Fraction of units responding above ``threshold`` to each category.

    Parameters
    ----------
    responses : array-like or h5py.Dataset of shape (n_categories, n_units)
        Raw responses (no normalisation: the threshold is in their units).
    threshold : float, default=0.0
        A unit is active when its response is strictly greater.
    chunk_size : int, optional

    Returns
    -------
    fraction : ndarray of shape (n_categories,), float64 in [0, 1]

    Examples
    --------
    >>> active_fraction([[1.0, 0.0, 0.0, 2.0], [0.5, 0.5, 0.0, 0.0]], threshold=0.4)
    array([0.5, 0.5])
    """
    check_scalar(threshold, name="threshold")
    count = None
    n = 0
    for _, block in _column_chunks(responses, chunk_size):
        c = np.count_nonzero(block > threshold, axis=1)
        count = c if count is None else count + c
        n += block.shape[1]
    return count / float(n)


def lifetime_sparseness(responses, *, normalize=True, chunk_size=None):
    """Lifetime sparseness of each unit across categories (Vinje & Gallant, 2000).

    The PSI formula applied down the columns: ``(1 - a) / (1 - 1/M)`` with
    ``a = (sum(r)/M)**2 / (sum(r**2)/M)`` over the ``M`` categories. 0 for a unit
    that responds equally to every category, 1 for a unit that responds to one.

    Parameters
    ----------
    responses : array-like or h5py.Dataset of shape (n_categories, n_units)
    normalize : bool, default=True
        The unit-wise counterpart of the paper's preprocessing: each unit's
        responses are min-max scaled across categories to [0, 1] (z-scoring a
        unit first would not change the result, since min-max scaling undoes
        any affine map). This makes signed responses usable; a dead unit scales
        to all zeros and gets 0. False uses raw non-negative responses, the
        textbook definition for firing rates or ReLU outputs.
    chunk_size : int, optional

    Returns
    -------
    lifetime : ndarray of shape (n_units,), float64 in [0, 1]

    Raises
    ------
    InputError
        With fewer than 2 categories (undefined), NaN/inf, or negative values
        with ``normalize=False``.

    Examples
    --------
    >>> lifetime_sparseness([[1.0, 2.0], [0.0, 2.0], [0.0, 2.0]], normalize=False)
    array([1., 0.])
    """
    n_rows = _n_rows(responses)
    if n_rows < 2:
        raise InputError("Lifetime sparseness needs at least 2 categories (rows); got "
                         f"{n_rows}.")
    parts = []
    for start, block in _column_chunks(responses, chunk_size):
        if normalize:
            block -= block.min(axis=0)
        else:
            _check_nonnegative(block, start, "responses",
                               "use normalize=True or shift them to be non-negative.")
        parts.append(_vinje_gallant(block.sum(axis=0),
                                    np.einsum("ij,ij->j", block, block), n_rows))
    return np.concatenate(parts)


def dead_units(responses, *, chunk_size=None):
    """Mask of units whose response is the same for every category.

    Such units have zero variance: the paper's z-scoring maps them to 0 and
    they pull population sparseness toward 0, so report how many a layer has.

    Parameters
    ----------
    responses : array-like or h5py.Dataset of shape (n_categories, n_units)
    chunk_size : int, optional

    Returns
    -------
    dead : ndarray of shape (n_units,), bool

    Examples
    --------
    >>> dead_units([[0.0, 1.0, 2.0], [0.0, 3.0, 2.0]])
    array([ True, False,  True])
    """
    return np.concatenate([(block == block[:1]).all(axis=0)
                           for _, block in _column_chunks(responses, chunk_size)])


@dataclass(frozen=True)
class Measure:
    """One sparseness measure of :data:`MEASURES` and what its values are.

    Calling it calls ``func``. Everything that depends on the kind of measure
    (tables, trend tests, figures, help texts) reads these fields, so a new
    measure needs only its entry here.
    """

    func: Callable      #: ``func(responses, **options) -> ndarray``
    per_unit: bool      #: one value per unit (across categories), else per category
    bounded: bool       #: values lie in [0, 1]
    description: str    #: one phrase, for help texts

    def __call__(self, responses, **kwargs):
        return self.func(responses, **kwargs)


#: name -> :class:`Measure`; the ``measure=`` choices of :func:`sparseness`.
MEASURES = Registry(
    psi=Measure(population_sparseness, per_unit=False, bounded=True,
                description="population sparseness of each category (the paper)"),
    lifetime=Measure(lifetime_sparseness, per_unit=True, bounded=True,
                     description="lifetime sparseness of each unit across categories"),
    hoyer=Measure(hoyer_sparseness, per_unit=False, bounded=True,
                  description="Hoyer sparseness of each category"),
    kurtosis=Measure(kurtosis_sparseness, per_unit=False, bounded=False,
                     description="excess kurtosis of each category across units"),
    active=Measure(active_fraction, per_unit=False, bounded=True,
                   description="fraction of units active (above 0) for each category"),
)


def sparseness(responses, *, measure="psi", **kwargs):
    """Compute the sparseness ``measure`` (a key of :data:`MEASURES`).

    Parameters
    ----------
    responses : array-like or h5py.Dataset of shape (n_categories, n_units)
    measure : {"psi", "lifetime", "hoyer", "kurtosis", "active"}, default="psi"
    **kwargs
        Keyword options of the chosen measure.

    Returns
    -------
    ndarray
        Shape (n_categories,), or (n_units,) for a per-unit measure
        (``MEASURES[measure].per_unit``: ``"lifetime"``).

    Examples
    --------
    >>> sparseness([[2.0, 0.0], [1.0, 1.0]], measure="hoyer").round(12)
    array([1., 0.])
    """
    check_choice(measure, MEASURES, name="measure")
    return MEASURES[measure](responses, **kwargs)
