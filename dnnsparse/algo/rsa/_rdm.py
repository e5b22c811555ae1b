"""Representational similarity analysis: RDMs and their comparison.

RDMs are condensed vectors in scipy ``pdist`` order (strict upper triangle,
row-major). The common metrics are computed from one Gram matrix (a BLAS
matrix product) of suitably centred/normalised patterns, in float64, in row
blocks when there are many stimuli; any other scipy ``pdist`` metric falls back
to scipy. Inference (permutation test, bootstrap, noise ceiling) lives in
:mod:`dnnsparse.algo.rsa._inference`.

Examples
--------
>>> X = np.random.default_rng(0).standard_normal((20, 50))
>>> d = compute_rdm(X, metric="correlation")
>>> d.shape
(190,)
>>> round(compare_rdms(d, d, method="spearman"), 12)
1.0
"""
import logging

import numpy as np
from scipy import stats
from scipy.spatial.distance import pdist

from ...errors import InputError
from ...utils.extmath import group_means
from ...utils.progress import progress
from ...utils.validation import check_array, check_choice, check_consistent_length
from ...utils.xp import is_numpy, to_namespace, to_numpy
from ._model_rdms import zscore_patterns
from ._xp_rsa import XP_COMPARISONS, xp_compare, xp_rdm

__all__ = [
    "GRAM_METRICS", "COMPARISONS", "ITER_AXES",
    "average_by_label", "compute_rdm", "layer_rdms", "compare_rdms",
    "kendall_tau_a", "rank_transform", "check_comparison", "rdm_vector",
]

log = logging.getLogger(__name__)

#: Rows per block target: keeps one Gram block near 2**25 float64 (256 MiB),
#: e.g. 5000 stimuli in one block; larger blocks keep BLAS efficient.
_BLOCK_ELEMENTS = 1 << 25


# -- RDM computation ---------------------------------------------------------
def _unit_rows(Y):
    norms = np.sqrt(np.einsum("ij,ij->i", Y, Y))
    bad = np.flatnonzero(norms == 0)
    if len(bad):
        log.warning("%d pattern(s) have zero norm/variance (rows %s%s); their "
                    "distances are NaN, as in scipy.", len(bad), bad[:5].tolist(),
                    " ..." if len(bad) > 5 else "")
    with np.errstate(invalid="ignore", divide="ignore"):
        Y /= norms[:, None]
    return Y


def _prep_correlation(X):
    return _unit_rows(X - X.mean(axis=1, keepdims=True)), None


def _prep_cosine(X):
    return _unit_rows(X.copy()), None


def _prep_euclidean(X):
    # Centring the columns leaves distances unchanged but shrinks |x|^2, which
    # keeps the Gram formula accurate for data with a large offset (BOLD ~1e4).
    Y = X - X.mean(axis=0)
    return Y, np.einsum("ij,ij->i", Y, Y)


def _one_minus(G, Yi, Yj, aux_i, aux_j):
    # In place (G can be 200 MB). Round-off can push 1 - G slightly outside
    # [0, 2]; clip it back.
    np.subtract(1.0, G, out=G)
    return np.clip(G, 0.0, 2.0, out=G)


#: Squared distances below this fraction of |x|^2 + |y|^2 are recomputed from
#: the differences: there the Gram formula loses digits to cancellation.
_CANCEL_RATIO = 1e-4
_PAIR_ELEMENTS = 1 << 22


def _squared(G, Yi, Yj, sq_i, sq_j):
    scale = sq_i[:, None] + sq_j[None, :]
    G *= -2.0
    G += scale
    rows, cols = np.nonzero(G < _CANCEL_RATIO * scale)
    step = max(1, _PAIR_ELEMENTS // max(Yi.shape[1], 1))
    for k in range(0, len(rows), step):               # close pairs only, in batches
        r, c = rows[k:k + step], cols[k:k + step]
        diff = Yi[r] - Yj[c]
        G[r, c] = np.einsum("ij,ij->i", diff, diff)
    return np.maximum(G, 0.0, out=G)


def _euclid(G, Yi, Yj, sq_i, sq_j):
    return np.sqrt(_squared(G, Yi, Yj, sq_i, sq_j), out=G)


#: metric -> (prepare rows, turn a Gram block into distances)
GRAM_METRICS = {
    "correlation": (_prep_correlation, _one_minus),
    "cosine": (_prep_cosine, _one_minus),
    "euclidean": (_prep_euclidean, _euclid),
    "sqeuclidean": (_prep_euclidean, _squared),
}


def _gram_rdm(Y, aux, finish, chunk_size):
    """Condensed distances from the Gram matrix ``Y @ Y.T``, one row block at a time.

    Each block of rows [i0, i1) needs its diagonal block ``Y_b @ Y_b.T``
    (numpy hands this to BLAS syrk, which computes one triangle) and the block
    to its right ``Y_b @ Y[i1:].T`` (gemm); the lower triangle is never
    computed, so blocking costs no extra flops over one syrk of all rows.
    """
    n = len(Y)
    out = np.empty(n * (n - 1) // 2)
    if chunk_size is None:
        chunk_size = max(1, _BLOCK_ELEMENTS // max(n, 1))
    starts = np.concatenate([[0], np.cumsum(np.arange(n - 1, 0, -1))])  # row offsets
    aux = np.zeros(n) if aux is None else aux
    for i0 in range(0, n - 1, chunk_size):
        i1 = min(n, i0 + chunk_size)
        Yb, ab = Y[i0:i1], aux[i0:i1]
        diag = finish(Yb @ Yb.T, Yb, Yb, ab, ab)                      # (b, b)
        right = finish(Yb @ Y[i1:].T, Yb, Y[i1:], ab, aux[i1:])        # (b, n - i1)
        for r in range(i0, min(i1, n - 1)):                           # copy row tails
            k = r - i0
            mid = starts[r] + (i1 - r - 1)
            out[starts[r]:mid] = diag[k, k + 1:]
            out[mid:starts[r + 1]] = right[k]
    return out


def average_by_label(X, labels):
    """Average the rows of ``X`` within each label.

    Parameters
    ----------
    X : array, shape (n_stim, n_features)
    labels : array, shape (n_stim,)

    Returns
    -------
    means : ndarray, shape (n_labels, n_features), float64
        :func:`~dnnsparse.utils.extmath.group_means` (the category means of the
        sparseness measures, bit for bit).
    unique : ndarray, shape (n_labels,)
        Sorted labels (row order of ``means``, as DNNBrain's ``-cate``).

    >>> average_by_label([[0.], [2.], [5.]], ["b", "a", "b"])[0].ravel()
    array([2. , 2.5])
    """
    X = check_array(X, name="patterns", ndim=2)
    labels = np.asarray(labels)
    check_consistent_length(X, labels, names=["patterns", "labels"])
    means, unique, _ = group_means(X, labels)
    return means, unique


def compute_rdm(X, *, metric="correlation", labels=None, chunk_size=None,
                return_labels=False, zscore=None):
    """RDM of the rows of a pattern matrix, in scipy ``pdist`` order.

    Parameters
    ----------
    X : array, shape (n_stim, n_features)
        One pattern per stimulus: a flattened layer, a channel, a position, or
        an ROI's voxels.
    metric : str, default="correlation"
        "correlation", "cosine", "euclidean", "sqeuclidean" (one Gram matrix)
        or any other :func:`scipy.spatial.distance.pdist` metric (slower).
    labels : array, shape (n_stim,), optional
        Average the patterns within each label first; the RDM's rows are then
        the sorted unique labels.
    chunk_size : int, optional
        Rows per Gram block (memory ~ chunk_size * n_stim * 8 bytes); default
        keeps each block near 256 MiB. Blocking adds no flops (see
        ``_gram_rdm``) but small blocks run BLAS less efficiently.
    return_labels : bool, default=False
        Also return the row labels (sorted unique labels, or None).
    zscore : {None, "pattern", "unit"}
        Standardise the patterns first, before any label averaging
        (:func:`~dnnsparse.algo.rsa.zscore_patterns`; "pattern" is DNNBrain's
        ``brain_rsa -zscore``: each stimulus across its features).

    Returns
    -------
    rdm : ndarray, shape (n_items * (n_items - 1) / 2,), float64
        Distances; round-off negatives are clipped to 0. Zero-norm patterns
        give NaN for correlation/cosine, as in scipy.
    row_labels : ndarray or None
        Only with ``return_labels``.

    Examples
    --------
    >>> compute_rdm([[0., 0.], [3., 4.], [6., 8.]], metric="euclidean")
    array([ 5., 10.,  5.])
    """
    if not is_numpy(X):             # a torch tensor (GPU): the same maths on its device
        return _device_rdm(X, metric, labels, chunk_size, return_labels, zscore)
    if zscore is not None:
        X = zscore_patterns(X, axis=zscore)
    if labels is not None:
        X, row_labels = average_by_label(X, labels)
    else:
        X, row_labels = check_array(X, name="patterns", ndim=2), None
    if len(X) < 2:
        raise InputError(f"an RDM needs at least 2 patterns; got {len(X)}.")
    if chunk_size is not None and (int(chunk_size) != chunk_size or chunk_size < 1):
        raise InputError(f"chunk_size must be a positive integer; got {chunk_size!r}.")
    if metric in GRAM_METRICS:
        prepare, finish = GRAM_METRICS[metric]
        Y, aux = prepare(np.asarray(X, dtype=np.float64))
        rdm = _gram_rdm(Y, aux, finish, None if chunk_size is None else int(chunk_size))
    else:
        try:
            rdm = pdist(X, metric=metric)
        except (ValueError, TypeError) as exc:
            raise InputError(f"Unknown or unusable metric={metric!r} ({exc}); use "
                             f"{sorted(GRAM_METRICS)} or a scipy pdist metric.") from None
    return (rdm, row_labels) if return_labels else rdm


def _device_rdm(X, metric, labels, chunk_size, return_labels, zscore):
    """:func:`compute_rdm` of an array-API array; z-scoring and label means on the host."""
    row_labels = None
    if zscore is not None or labels is not None:
        host = to_numpy(X)
        if zscore is not None:
            host = zscore_patterns(host, axis=zscore)
        if labels is not None:
            host, row_labels = average_by_label(host, labels)
        X = to_namespace(host, X)
    if X.ndim != 2 or X.shape[0] < 2:
        raise InputError(f"an RDM needs at least 2 patterns (n_stim, n_features); got "
                         f"shape {tuple(X.shape)}.")
    rdm = xp_rdm(X, metric, None if chunk_size is None else int(chunk_size))
    return (rdm, row_labels) if return_labels else rdm


#: How a 4-D layer (n_stim, n_chn, n_row, n_col) is split into RDMs.
ITER_AXES = {None: "whole layer", "channel": "one RDM per channel",
             "position": "one RDM per (row, col) position"}


def layer_rdms(act, *, iter_axis=None, metric="correlation", labels=None,
               chunk_size=None, show_progress=False, zscore=None, like=None):
    """RDMs of a DNN layer, whole or per channel / per position (as DNNBrain).

    Parameters
    ----------
    act : array, shape (n_stim, n_chn, n_row, n_col) or (n_stim, n_units)
    iter_axis : {None, "channel", "position"} (``"row_col"`` is DNNBrain's name)
        None: one RDM of the flattened layer; "channel": each channel's
        (row, col) map; "position": each position's channel vector.
    metric, labels, chunk_size, zscore
        As in :func:`compute_rdm` (z-scoring is of each RDM's own patterns).
    like : array, optional
        A torch tensor (e.g. empty, on ``cuda``): each RDM is computed in its namespace,
        device and dtype; the result is NumPy all the same.

    Returns
    -------
    ndarray, shape (n_iter, n_pairs)
        n_iter = 1, n_chn or n_row * n_col (positions in row-major order).
    """
    act = np.asarray(act)
    if act.ndim == 2:
        act = act[:, :, None, None]
    if act.ndim != 4:
        raise InputError(f"layer activation must be (n_stim, n_chn, n_row, n_col) or "
                         f"(n_stim, n_units); got shape {act.shape}.")
    iter_axis = "position" if iter_axis == "row_col" else iter_axis
    check_choice(iter_axis, ITER_AXES, name="iter_axis")
    n_stim, n_chn = act.shape[:2]
    if iter_axis is None:
        parts = act.reshape(n_stim, 1, -1)
    elif iter_axis == "channel":
        parts = act.reshape(n_stim, n_chn, -1)
    else:
        parts = act.reshape(n_stim, n_chn, -1).transpose(0, 2, 1)   # (n_stim, n_pos, n_chn)
    rows = [to_numpy(compute_rdm(parts[:, i] if like is None else to_namespace(parts[:, i], like),
                                 metric=metric, labels=labels, chunk_size=chunk_size,
                                 zscore=zscore))
            for i in progress(range(parts.shape[1]), desc="RDMs", unit="rdm",
                              enabled=show_progress)]
    return np.stack(rows)


# -- comparison ----------------------------------------------------------------
def rank_transform(v):
    """Average ranks along the last axis (ties share their mean rank)."""
    return stats.rankdata(v, axis=-1)


def _dots(a, b):
    """(b @ a, |a|^2, |b|^2) without BLAS: OpenBLAS threads slow down 1-D dots."""
    return (np.einsum("...i,i->...", b, a), np.einsum("i,i->", a, a),
            np.einsum("...i,...i->...", b, b))


def _cosine(a, b):
    ba, aa, bb = _dots(a, b)
    with np.errstate(invalid="ignore", divide="ignore"):
        return ba / np.sqrt(aa * bb)


def _pearson(a, b):
    return _cosine(a - a.mean(), b - b.mean(axis=-1, keepdims=True))


def _spearman(a, b):
    return _pearson(rank_transform(a), rank_transform(b))


def _tie_pairs(v):
    _, counts = np.unique(v, return_counts=True)
    counts = counts.astype(np.float64)
    return float(np.sum(counts * (counts - 1) / 2))


def kendall_tau_a(a, b):
    """Kendall's tau-a = (concordant - discordant) / (n (n - 1) / 2).

    Computed in O(n log n) from scipy's tau-b and the tie counts:
    tau_b = (C - D) / sqrt((n0 - n1) (n0 - n2)) with n0 = n(n-1)/2 and
    n1, n2 the pairs tied in ``a`` and in ``b``.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    n0 = len(a) * (len(a) - 1) / 2
    denom = np.sqrt((n0 - _tie_pairs(a)) * (n0 - _tie_pairs(b)))
    if denom == 0:                       # one side constant: no concordance at all
        return 0.0
    tau_b = stats.kendalltau(a, b, variant="b").statistic
    return float(tau_b * denom / n0)


def _kendall_b(a, b):
    return stats.kendalltau(a, b, variant="b").statistic


def _per_row(func):
    def compare(a, b):
        if b.ndim == 1:
            return func(a, b)
        return np.array([func(a, row) for row in b])
    return compare


#: method -> f(a (n_pairs,), b (n_pairs,) or (n_models, n_pairs))
COMPARISONS = {
    "pearson": _pearson,
    "spearman": _spearman,
    "kendall_tau_a": _per_row(kendall_tau_a),
    "kendall_tau_b": _per_row(_kendall_b),
    "cosine": _cosine,
}
_ALIASES = {"kendall": "kendall_tau_b", "tau_b": "kendall_tau_b", "tau_a": "kendall_tau_a",
            "kendalltau": "kendall_tau_b"}


def check_comparison(method):
    """The :data:`COMPARISONS` key of ``method``, aliases resolved ("kendall" -> "kendall_tau_b").

    Raises InputError for an unknown method, naming the valid ones.

    >>> check_comparison("tau_a")
    'kendall_tau_a'
    """
    method = _ALIASES.get(method, method)
    return check_choice(method, COMPARISONS, name="method")


def rdm_vector(x, name):
    """An RDM's condensed vector (n_pairs,), or a stack of them (n_rdms, n_pairs), checked.

    ``x`` is an :class:`~dnnsparse.base.rdm.RDM` (its ``vector``) or an array;
    ``name`` names it in error messages.
    """
    x = getattr(x, "vector", x)
    return check_array(x, name=name, ndim=(1, 2))


def compare_rdms(a, b, *, method="pearson"):
    """Similarity of two RDMs (or of one RDM with several).

    Parameters
    ----------
    a : array, shape (n_pairs,) or RDM
    b : array, shape (n_pairs,) or (n_models, n_pairs), or RDM
    method : {"pearson", "spearman", "kendall_tau_a", "kendall_tau_b", "cosine"}
        ("kendall" and "tau_b" mean tau-b, "tau_a" tau-a.)

    Returns
    -------
    float, or ndarray of shape (n_models,)

    Examples
    --------
    >>> compare_rdms([1., 2., 3.], [1., 3., 2.], method="kendall_tau_a")
    0.3333333333333333
    """
    method = check_comparison(method)
    a, b = getattr(a, "vector", a), getattr(b, "vector", b)
    if not (is_numpy(a) and is_numpy(b)):           # torch tensors: on their device
        if method not in XP_COMPARISONS:            # Kendall: scipy on the host
            a, b = to_numpy(a), to_numpy(b)
        elif a.ndim == 1 and b.shape[-1] == a.shape[0]:
            out = to_numpy(xp_compare(a, b, method)).astype(np.float64)
            return float(out) if out.ndim == 0 else out
    a = rdm_vector(to_numpy(a), "first RDM")
    b = rdm_vector(to_numpy(b), "second RDM")
    if a.ndim != 1:
        raise InputError(f"the first RDM must be one vector (n_pairs,); got {a.shape}.")
    if b.shape[-1] != a.shape[0]:
        raise InputError(f"RDMs differ in size: {a.shape[0]} vs {b.shape[-1]} entries "
                         "(different numbers of stimuli?).")
    out = COMPARISONS[method](a, b)
    return float(out) if np.ndim(out) == 0 else np.asarray(out, dtype=np.float64)
