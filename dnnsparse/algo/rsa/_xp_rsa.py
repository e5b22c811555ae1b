"""RDMs, RDM comparison and the permutation null on array-API arrays (torch, CUDA).

The same computations as :mod:`._rdm` and :mod:`._inference` written with array-API
operations (:mod:`dnnsparse.utils.xp`), so a torch tensor on a GPU is computed there:
the Gram-matrix metrics (correlation, cosine, euclidean, sqeuclidean, with the same
recomputation of close pairs), Pearson / Spearman / cosine comparisons (ranks with
averaged ties) and the batched matrix product of the permutation null. Permutations are
drawn on the host by the caller (NumPy, same seed, same stream) and only their gather
indices are moved, so the null distribution is that of the NumPy path. Nothing here
imports torch.

Examples
--------
>>> import torch                                                  # doctest: +SKIP
>>> X = torch.randn(100, 5000, dtype=torch.float64, device="cuda")  # doctest: +SKIP
>>> xp_rdm(X, "correlation").shape                                  # doctest: +SKIP
torch.Size([4950])
"""
import numpy as np

from ...errors import InputError
from ...utils.xp import device_of, get_namespace, is_numpy, rankdata, to_namespace, to_numpy

__all__ = ["XP_METRICS", "XP_COMPARISONS", "xp_rdm", "xp_compare", "xp_permutation_null"]

#: As in :mod:`._rdm`: squared distances below this fraction of |x|^2 + |y|^2 are
#: recomputed from the differences (the Gram formula loses digits there).
_CANCEL_RATIO = 1e-4
_PAIR_ELEMENTS = 1 << 22
_BLOCK_ELEMENTS = 1 << 25
_BATCH_ELEMENTS = 1 << 23


def _row_norms(xp, Y):
    return xp.sqrt(xp.sum(Y * Y, axis=1))


def _prep_correlation(xp, X):
    Y = X - xp.mean(X, axis=1, keepdims=True)
    return Y / _row_norms(xp, Y)[:, None], None


def _prep_cosine(xp, X):
    return X / _row_norms(xp, X)[:, None], None


def _prep_euclidean(xp, X):
    Y = X - xp.mean(X, axis=0)
    return Y, xp.sum(Y * Y, axis=1)


def _one_minus(xp, G, Yi, Yj, aux_i, aux_j):
    return xp.clip(1.0 - G, 0.0, 2.0)


def _squared(xp, G, Yi, Yj, sq_i, sq_j):
    scale = sq_i[:, None] + sq_j[None, :]
    G = scale - 2.0 * G
    rows, cols = xp.nonzero(G < _CANCEL_RATIO * scale)
    step = max(1, _PAIR_ELEMENTS // max(Yi.shape[1], 1))
    for k in range(0, rows.shape[0], step):             # close pairs only, in batches
        r, c = rows[k:k + step], cols[k:k + step]
        diff = xp.take(Yi, r, axis=0) - xp.take(Yj, c, axis=0)
        G[r, c] = xp.sum(diff * diff, axis=1)
    return xp.where(G < 0, 0.0, G)


def _euclid(xp, G, Yi, Yj, sq_i, sq_j):
    return xp.sqrt(_squared(xp, G, Yi, Yj, sq_i, sq_j))


#: metric -> (prepare rows, turn a Gram block into distances); the metrics of
#: :data:`~dnnsparse.algo.rsa.GRAM_METRICS`.
XP_METRICS = {
    "correlation": (_prep_correlation, _one_minus),
    "cosine": (_prep_cosine, _one_minus),
    "euclidean": (_prep_euclidean, _euclid),
    "sqeuclidean": (_prep_euclidean, _squared),
}


def xp_rdm(X, metric="correlation", chunk_size=None):
    """Condensed RDM (scipy ``pdist`` order) of the rows of array ``X``, in its namespace.

    Parameters
    ----------
    X : array of shape (n_stim, n_features)
        A torch tensor (any device) or other array-API array; float32 stays float32,
        anything else is computed in float64.
    metric : {"correlation", "cosine", "euclidean", "sqeuclidean"}
    chunk_size : int, optional
        Rows per Gram block (default: an eighth of the rows, at least 256, at most
        2**25 / n_stim).

    Returns
    -------
    array of shape (n_stim * (n_stim - 1) / 2,), same namespace and device as ``X``
    """
    if metric not in XP_METRICS:
        raise InputError(f"metric={metric!r} has no array-API (GPU) path; use one of "
                         f"{sorted(XP_METRICS)} or NumPy input.")
    xp = get_namespace(X)
    if X.dtype not in (xp.float32, xp.float64):
        X = xp.astype(X, xp.float64)
    n = X.shape[0]
    prepare, finish = XP_METRICS[metric]
    Y, aux = prepare(xp, X)
    if aux is None:
        aux = xp.zeros(n, dtype=Y.dtype, device=device_of(Y))
    if chunk_size is None:
        # eighths of the rows: the blocks cover ~56 % of the full Gram matrix (there is
        # no syrk in the array API), each block within the memory target
        chunk_size = max(1, min(_BLOCK_ELEMENTS // max(n, 1), max(256, -(-n // 8))))
    pieces = []
    for i0 in range(0, n - 1, chunk_size):
        i1 = min(n, i0 + chunk_size)
        # rows [i0, i1) against themselves and everything after: the upper triangle only
        G = finish(xp, Y[i0:i1] @ Y[i0:].T, Y[i0:i1], Y[i0:], aux[i0:i1], aux[i0:])
        pieces.extend(G[k, k + 1:] for k in range(min(i1, n - 1) - i0))
    return xp.concat(pieces)


def _unit_centred(xp, v):
    v = v - xp.mean(v, axis=-1, keepdims=True)
    return v / xp.sqrt(xp.sum(v * v, axis=-1, keepdims=True))


def _unit(xp, v):
    return v / xp.sqrt(xp.sum(v * v, axis=-1, keepdims=True))


#: Comparisons that are one dot product of transformed RDMs (transforms commute with
#: relabelling stimuli): as ``_DOT_TRANSFORMS`` in :mod:`._inference`.
XP_COMPARISONS = {
    "pearson": _unit_centred,
    "spearman": lambda xp, v: _unit_centred(xp, rankdata(v, xp)),
    "cosine": _unit,
}


def _check_method(method):
    if method not in XP_COMPARISONS:
        raise InputError(f"method={method!r} has no array-API (GPU) path; use one of "
                         f"{sorted(XP_COMPARISONS)}.")
    return XP_COMPARISONS[method]


def xp_compare(a, b, method="pearson"):
    """Similarity of RDM ``a`` (n_pairs,) with ``b`` (n_pairs,) or (n_models, n_pairs).

    Arrays in one namespace (``b`` is moved to ``a``'s); returns an array of shape ()
    or (n_models,) there.
    """
    transform = _check_method(method)
    if is_numpy(a):
        a = to_namespace(a, b)
    xp = get_namespace(a)
    a = xp.astype(a, xp.float64) if a.dtype not in (xp.float32, xp.float64) else a
    b = to_namespace(b, a)
    return transform(xp, b) @ transform(xp, a)


def xp_permutation_null(a, b, method, perms, n_perm):
    """Null distribution of ``method(a relabelled, b)`` for host permutations ``perms``.

    Parameters
    ----------
    a : array of shape (n_pairs,)
        The permuted RDM, on the device.
    b : array of shape (n_pairs,) or (n_models, n_pairs)
    method : {"pearson", "spearman", "cosine"}
    perms : iterable of ndarray of shape (n,)
        Permutations of the n stimuli (NumPy, on the host; drawn by the caller).
    n_perm : int

    Returns
    -------
    ndarray of shape (n_perm,) or (n_perm, n_models), float64, on the host
    """
    transform = _check_method(method)
    xp = get_namespace(a)
    b = to_namespace(b, a)
    n_pairs = a.shape[0]
    n = int(round((1 + np.sqrt(1 + 8 * n_pairs)) / 2))
    iu0, iu1 = np.triu_indices(n, k=1)
    ta = transform(xp, a)
    # square form of the transformed RDM, flattened, on the device
    flat = xp.zeros(n * n, dtype=ta.dtype, device=device_of(ta))
    upper = to_namespace(iu0 * n + iu1, ta, dtype=xp.int64)
    lower = to_namespace(iu1 * n + iu0, ta, dtype=xp.int64)
    flat[upper] = ta
    flat[lower] = ta
    tb = transform(xp, b)
    batch = max(1, _BATCH_ELEMENTS // n_pairs)
    out = []
    perms = iter(perms)
    done = 0
    while done < n_perm:
        idx = [p[iu0] * n + p[iu1] for _, p in zip(range(min(batch, n_perm - done)), perms)]
        gather = to_namespace(np.stack(idx).astype(np.int64), ta, dtype=xp.int64)
        permuted = xp.reshape(xp.take(flat, xp.reshape(gather, (-1,))), (len(idx), n_pairs))
        out.append(np.asarray(to_numpy(permuted @ (tb.T if tb.ndim == 2 else tb)),
                              dtype=np.float64))
        done += len(idx)
    return np.concatenate(out, axis=0)
