"""Compiled one-pass kernel for the normalised category sums behind PSI (optional numba).

:func:`dnnsparse.algo.sparseness.population_sparseness` needs, for every
category (row), the minimum ``low`` of its unit-wise z-scores and the sums
``A = sum(z - low)`` and ``B = sum((z - low)**2)``. In NumPy that takes about ten
passes over each cache-sized block (convert, mean, centre, square, divide, min,
shift, two sums). Here one compiled loop nest reads each block of columns from
memory once and does all of it while the block is in the CPU cache, which makes
the computation about as fast as reading the matrix (see benchmarks/psi.py).

The arithmetic is the NumPy path's, step for step: float64 accumulation,
two-pass column mean and variance, constant columns detected exactly, each
row's block shifted by its block minimum before summing (no cancellation), and
blocks merged by shifting to the common minimum. Only the summation order
differs, so results agree with the NumPy path to ~1e-15 (tested).

That order is fixed: nothing is compiled with fastmath (which lets the compiler
reassociate sums, and it did so differently when a function was compiled in the
process than when it came from the disk cache), and the row sums get their SIMD
from explicit vectors (:func:`_vector_sums`, in the order of
:func:`shifted_sums_reference`). Identical input gives identical bits whether
the kernel was just compiled or loaded from the cache, on one thread or many
(the column ranges are fixed by the shape: see ``_measures._column_ranges``).

Without numba (it is an optional dependency, installed by the ``fast`` and
``all`` extras) ``AVAILABLE`` is False and the NumPy path is used.
"""
import numpy as np

try:                                  # optional: the NumPy path is used without it
    import numba
    import numba.extending
except ImportError:                   # pragma: no cover - exercised where numba is absent
    numba = None

AVAILABLE = numba is not None

# Columns whose first value lies more than sqrt(_SHIFT_LIMIT) standard deviations
# from their mean get the exact two-pass variance (shifted sums keep ~1e-14).
_SHIFT_LIMIT = 100.0
_INT64_MAX = np.int64(0x7FFFFFFFFFFFFFFF)
# The row sums run in _VECTORS independent vectors of _LANES float64 (4 x 8: one
# AVX-512 register each, enough of them to hide the latency of an addition).
_LANES = 8
_VECTORS = 4


def _column_scales(data, start, nb, n_rows, mu, iv):  # pragma: no cover - compiled
    """Means ``mu`` and reciprocal standard deviations ``iv`` (0 for constant columns)
    of ``data[:, start:start + nb]``; -1, or the first column whose mean is not finite.

    One pass: sums of ``d = x - x[0]`` and ``d**2`` (the shifted-data algorithm),
    so ``var = (sum(d**2) - sum(d)**2 / n) / n``. That loses precision only when
    the first row lies far from the mean (relative error ~ 1e-16 * (mean -
    x[0])**2 / var); such columns, and columns with no spread, are recomputed
    with the exact two-pass formula, which also decides exactly whether a column
    is constant. Compiled without fastmath: the finiteness test must see NaN/inf.
    """
    first = data[0, start:start + nb]
    mu[:] = 0.0                     # sum of d, then the mean
    iv[:] = 0.0                     # sum of d**2, then 1 / sd
    # Four rows per sweep: the running sums are loaded and stored once per four values.
    n4 = 1 + (n_rows - 1) // 4 * 4
    for i in range(1, n4, 4):
        r0 = data[i, start:start + nb]
        r1 = data[i + 1, start:start + nb]
        r2 = data[i + 2, start:start + nb]
        r3 = data[i + 3, start:start + nb]
        for j in range(nb):
            f = np.float64(first[j])
            d0 = np.float64(r0[j]) - f
            d1 = np.float64(r1[j]) - f
            d2 = np.float64(r2[j]) - f
            d3 = np.float64(r3[j]) - f
            mu[j] += (d0 + d1) + (d2 + d3)
            iv[j] += (d0 * d0 + d1 * d1) + (d2 * d2 + d3 * d3)
    for i in range(n4, n_rows):
        row = data[i, start:start + nb]
        for j in range(nb):
            d = np.float64(row[j]) - np.float64(first[j])
            mu[j] += d
            iv[j] += d * d
    for j in range(nb):
        shift = mu[j] / n_rows
        if not np.isfinite(shift):
            return start + j
        var = (iv[j] - mu[j] * shift) / n_rows
        mu[j] = first[j] + shift
        if var > 0.0 and shift * shift <= _SHIFT_LIMIT * var:
            iv[j] = 1.0 / np.sqrt(var)
        else:
            mu[j], iv[j] = _exact_column_scale(data, start + j, n_rows)
    return -1


def _exact_column_scale(data, col, n_rows):  # pragma: no cover - compiled
    """``(mean, 1 / sd)`` of one column, two-pass; ``1 / sd`` is 0 if the column is
    constant (checked exactly: rounding in the mean leaves a few ulps of sd)."""
    total = 0.0
    for i in range(n_rows):
        total += data[i, col]
    mean = total / n_rows
    sq = 0.0
    constant = True
    for i in range(n_rows):
        d = data[i, col] - mean
        sq += d * d
        constant = constant and data[i, col] == data[0, col]
    if constant:
        return mean, 0.0
    return mean, 1.0 / np.sqrt(sq / n_rows)


def shifted_sums_reference(z, m):
    """``(sum(z - m), sum((z - m)**2))`` in the kernel's fixed order, in plain Python.

    The order (what the compiled :func:`_vector_sums` and :func:`_shifted_sums`
    do, vector lane by vector lane): ``_VECTORS`` vectors of ``_LANES`` running
    sums, element ``j`` of each run of ``_VECTORS * _LANES`` values going to
    vector ``j // _LANES``, lane ``j % _LANES``; the remaining whole runs of
    ``_LANES`` values go to vector 0; the vectors are added pairwise (0+1,
    2+3, then the two), the lanes of the result pairwise ((0+1)+(2+3)) +
    ((4+5)+(6+7)); the last ``len(z) % _LANES`` values are added in order.
    Tests compare the compiled kernel with it bit for bit.
    """
    z = [float(v) for v in z]
    big, n = _VECTORS * _LANES, len(z)
    acc = [[[0.0] * _LANES for _ in range(_VECTORS)] for _ in range(2)]
    n_big, n_small = n // big * big, n // _LANES * _LANES
    for j in range(n_small):
        v, k = ((j % big) // _LANES, j % _LANES) if j < n_big else (0, j % _LANES)
        d = z[j] - m
        acc[0][v][k] += d
        acc[1][v][k] += d * d
    sums = []
    for vectors in acc:
        while len(vectors) > 1:
            vectors = [[x + y for x, y in zip(vectors[i], vectors[i + 1])]
                       for i in range(0, len(vectors), 2)]
        lanes = vectors[0]
        while len(lanes) > 1:
            lanes = [lanes[i] + lanes[i + 1] for i in range(0, len(lanes), 2)]
        sums.append(lanes[0])
    s1, s2 = sums
    for j in range(n_small, n):
        d = z[j] - m
        s1 += d
        s2 += d * d
    return s1, s2


def _vector_sums_codegen(context, builder, signature, args):  # pragma: no cover - compiled
    """LLVM IR of :func:`_vector_sums`: explicit vectors, so the order of every
    addition is the one of :func:`shifted_sums_reference` whatever the compiler does
    (plain vector ``fadd``, no fast-math flags: lane-wise IEEE additions)."""
    from llvmlite import ir
    from numba.core import cgutils, types

    z, n, m = args
    ptr = context.make_array(signature.args[0])(context, builder, z).data
    i32, intp = ir.IntType(32), context.get_value_type(types.intp)
    vec = ir.VectorType(ir.DoubleType(), _LANES)
    zero = ir.Constant(vec, [0.0] * _LANES)
    acc = [[cgutils.alloca_once_value(builder, zero) for _ in range(_VECTORS)]
           for _ in range(2)]
    shift = builder.insert_element(ir.Constant(vec, ir.Undefined), m, ir.Constant(i32, 0))
    shift = builder.shuffle_vector(shift, ir.Constant(vec, ir.Undefined),
                                   ir.Constant(ir.VectorType(i32, _LANES), [0] * _LANES))

    def const(value):
        return ir.Constant(intp, value)

    def add_run(j, v):              # acc[.][v] += z[j:j + _LANES] - m (and its square)
        d = builder.fsub(builder.load(builder.bitcast(builder.gep(ptr, [j]),
                                                      vec.as_pointer()), align=8), shift)
        builder.store(builder.fadd(builder.load(acc[0][v]), d), acc[0][v])
        builder.store(builder.fadd(builder.load(acc[1][v]), builder.fmul(d, d)), acc[1][v])

    big = _VECTORS * _LANES
    n_big = builder.mul(builder.sdiv(n, const(big)), const(big))
    n_small = builder.mul(builder.sdiv(n, const(_LANES)), const(_LANES))
    with cgutils.for_range_slice(builder, const(0), n_big, const(big), intp) as (j, _):
        for v in range(_VECTORS):
            add_run(builder.add(j, const(v * _LANES)), v)
    with cgutils.for_range_slice(builder, n_big, n_small, const(_LANES), intp) as (j, _):
        add_run(j, 0)

    def fold(vectors):              # vectors added pairwise: (0+1) + (2+3)
        vectors = [builder.load(a) for a in vectors]
        while len(vectors) > 1:
            vectors = [builder.fadd(vectors[i], vectors[i + 1])
                       for i in range(0, len(vectors), 2)]
        return vectors[0]

    # The lanes of both sums at once: [s1 lanes, s2 lanes] -> adjacent pairs added
    # (even + odd shuffles) until one value of each is left: (0+1)+(2+3), ...
    v = builder.shuffle_vector(fold(acc[0]), fold(acc[1]),
                               ir.Constant(ir.VectorType(i32, 2 * _LANES),
                                           list(range(2 * _LANES))))
    width = 2 * _LANES
    while width > 2:
        width //= 2
        undef = ir.Constant(v.type, ir.Undefined)
        pick = [ir.Constant(ir.VectorType(i32, width), [2 * i + odd for i in range(width)])
                for odd in (0, 1)]
        v = builder.fadd(builder.shuffle_vector(v, undef, pick[0]),
                         builder.shuffle_vector(v, undef, pick[1]))
    return context.make_tuple(builder, signature.return_type,
                              [builder.extract_element(v, ir.Constant(i32, k)) for k in (0, 1)])


def _vector_sums_typer(typingctx, z, n, m):  # pragma: no cover - compiled
    """``(s1, s2)`` over the first ``n // _LANES * _LANES`` values of ``z`` (float64,
    1-D, C-contiguous), see :func:`shifted_sums_reference`."""
    from numba.core import types

    if not (isinstance(z, types.Array) and z.dtype == types.float64 and z.ndim == 1
            and z.layout == "C"):
        return None
    return types.UniTuple(types.float64, 2)(z, types.intp, types.float64), \
        _vector_sums_codegen


def _shifted_sums(zb, nb, m):  # pragma: no cover - compiled
    """``(sum(zb[:nb] - m), sum((zb[:nb] - m)**2))`` in the order of
    :func:`shifted_sums_reference`: vectors of lanes (:func:`_vector_sums`), then the
    last ``nb % _LANES`` values in order."""
    s1, s2 = _vector_sums(zb, nb, m)
    for j in range(nb // _LANES * _LANES, nb):
        d = zb[j] - m
        s1 += d
        s2 += d * d
    return s1, s2


def _merge_block_rows(data, start, nb, first, n_rows, mu, iv, zb, cell, low, total,
                      total_sq):  # pragma: no cover - compiled
    """Each row: z-scores of the block and their minimum, sums shifted to that minimum,
    merged into the running sums by shifting both to the common minimum.

    ``zb`` (``nb`` float64) and ``cell`` (1 float64) are scratch buffers.
    """
    for i in range(n_rows):
        row = data[i, start:start + nb]
        # The minimum is taken over integer keys with the floats' order (negative
        # floats: all bits but the sign flipped): a float running minimum is one
        # long dependency chain that is not vectorised, an integer one is
        # (1.6x faster than four float chains, measured).
        keys = zb.view(np.int64)
        key = _INT64_MAX
        for j in range(nb):
            zb[j] = (row[j] - mu[j]) * iv[j]
            b = keys[j]
            key = min(key, b ^ ((b >> 63) & _INT64_MAX))
        cell.view(np.int64)[0] = key ^ ((key >> 63) & _INT64_MAX)
        m = cell[0]
        s1, s2 = _shifted_sums(zb, nb, m)
        if start == first:
            low[i], total[i], total_sq[i] = m, s1, s2
        else:
            n_a = start - first
            new_low = min(low[i], m)
            d_a = low[i] - new_low
            d_b = m - new_low
            total_sq[i] = (total_sq[i] + 2.0 * d_a * total[i] + n_a * d_a * d_a
                           + s2 + 2.0 * d_b * s1 + nb * d_b * d_b)
            total[i] = total[i] + n_a * d_a + s1 + nb * d_b
            low[i] = new_low


def _normalized_sums(data, first, last, width, low, total, total_sq):  # pragma: no cover
    """Fill ``low``, ``total``, ``total_sq`` (each ``(n_rows,)``) for ``data[:, first:last]``.

    Returns -1, or the first column whose mean is not finite (NaN/inf in the
    data): the caller raises the error.
    """
    n_rows = data.shape[0]
    mean = np.empty(width)
    inv = np.empty(width)
    z = np.empty(width)
    cell = np.empty(1)
    for start in range(first, last, width):
        nb = min(width, last - start)
        bad = _column_scales(data, start, nb, n_rows, mean[:nb], inv[:nb])
        if bad >= 0:
            return bad
        _merge_block_rows(data, start, nb, first, n_rows, mean[:nb], inv[:nb], z[:nb], cell,
                          low, total, total_sq)
    return -1


def _compile(func, **options):
    """``numba.njit`` with the machine code cached on disk (compiling takes ~1 s)."""
    try:
        return numba.njit(nogil=True, cache=True, error_model="numpy", **options)(func)
    except RuntimeError:        # no writable cache location: compile in each process
        return numba.njit(nogil=True, error_model="numpy", **options)(func)


if AVAILABLE:
    _exact_column_scale = _compile(_exact_column_scale)
    _column_scales = _compile(_column_scales)
    # No fastmath anywhere: reassociation and contraction (FMA) let the compiler
    # choose the order of additions, and it chose differently when a function was
    # compiled in the process than when it was loaded from the disk cache (last
    # digits of PSI differed between a first and later runs). _shifted_sums
    # gets SIMD from explicit vectors instead (an intrinsic: without fastmath the
    # compiler would not vectorise a sum).
    _vector_sums = numba.extending.intrinsic(_vector_sums_typer)
    _shifted_sums = _compile(_shifted_sums)
    _merge_block_rows = _compile(_merge_block_rows)
    _normalized_sums = _compile(_normalized_sums)


def normalized_sums(data, first, last, width):
    """``(low, total, total_sq, bad_column)`` over ``data[:, first:last]``.

    ``data`` is a C-contiguous float32 or float64 array of shape (n_rows, n_cols);
    columns are processed ``width`` at a time. ``low`` is each row's minimum
    z-score, ``total`` and ``total_sq`` the sums of ``z - low`` and its square
    (each of shape (n_rows,), float64). ``bad_column`` is -1, or the first
    column holding NaN/inf (the other results are then meaningless). Compiled
    on the first call and cached on disk.
    """
    n_rows = data.shape[0]
    low, total, total_sq = np.empty(n_rows), np.empty(n_rows), np.empty(n_rows)
    bad = _normalized_sums(data, first, last, width, low, total, total_sq)
    return low, total, total_sq, bad
