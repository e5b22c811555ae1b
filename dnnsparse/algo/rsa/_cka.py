"""Centred kernel alignment (CKA): a second similarity of two representations.

For the patterns ``X`` (n, p) and ``Y`` (n, q) of the same n stimuli, with Gram
matrices ``K = k(X)`` and ``L = k(Y)`` (Kornblith et al., 2019, ICML)::

    HSIC(K, L) = tr(K H L H) / (n - 1)^2          H = I - 11'/n  (centring)
    CKA(K, L)  = HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L))

Kernels: linear ``K = X X'``; RBF ``K_ij = exp(-|x_i - x_j|^2 / (2 sigma^2 m))``
with ``m`` the median squared distance over all n^2 pairs (the diagonal
included, as Kornblith et al.'s code) and ``sigma`` a fraction of it.

The debiased CKA (Nguyen et al., 2021, ICLR; Kornblith et al.'s ``debiased``)
replaces HSIC by the unbiased estimator of Song et al. (2012, JMLR)::

    HSIC_1(K, L) = [tr(K~ L~) + (1'K~1)(1'L~1) / ((n-1)(n-2)) - 2/(n-2) 1'K~L~1] / (n(n-3))

with ``K~``, ``L~`` the Gram matrices with their diagonals set to zero. It is
computed as ``<K_u, L_u>_F / (n(n-3))`` of the U-centred Gram matrices
(Szekely & Rizzo, 2014), which is the same number in O(n^2).

Everything is NumPy, float64, and vectorised over stacks of Gram matrices
(:func:`cka_matrix`): every layer x ROI score is one matrix product.

Examples
--------
>>> X = np.random.default_rng(0).standard_normal((20, 5))
>>> round(cka(X, X @ np.linalg.qr(np.ones((5, 5)) + np.eye(5))[0]), 12)
1.0
"""
import logging
from dataclasses import dataclass

import numpy as np

from ...errors import InputError
from ...utils.validation import (check_array, check_choice, check_random_state,
                                 check_scalar)
from ._inference import ALTERNATIVES, PermutationResult, _count_extreme, _permutations

__all__ = ["KERNELS", "CKASpec", "center_gram", "cka", "cka_matrix", "cka_permutation_test",
           "gram_matrix", "hsic"]

log = logging.getLogger(__name__)

#: Elements per gathered batch of permuted Gram matrices (64 MiB of float64).
_BATCH_ELEMENTS = 1 << 23


def _linear_gram(X, sigma):
    return X @ X.T


def _rbf_gram(X, sigma):
    Xc = X - X.mean(axis=0)                    # distances unchanged; less cancellation
    sq = np.einsum("ij,ij->i", Xc, Xc)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2.0 * (Xc @ Xc.T), 0.0)
    np.fill_diagonal(d2, 0.0)
    median = np.median(d2)
    if median == 0:
        raise InputError("RBF kernel: the median squared distance of the patterns is 0 "
                         "(most patterns are identical); use -kernel linear.")
    return np.exp(-d2 / (2.0 * sigma ** 2 * median))


#: kernel -> f(X (n, p) float64, sigma) -> Gram (n, n)
KERNELS = {"linear": _linear_gram, "rbf": _rbf_gram}


@dataclass(frozen=True)
class CKASpec:
    """What a CKA score is: kernel, RBF width (fraction of the median distance), debiased."""
    kernel: str = "linear"
    sigma: float = 1.0
    debiased: bool = False

    @property
    def name(self):
        """E.g. ``"cka_linear"``, ``"cka_rbf0.5_debiased"`` (the table's method column)."""
        width = f"{self.sigma:g}" if self.kernel == "rbf" else ""
        return f"cka_{self.kernel}{width}" + ("_debiased" if self.debiased else "")


def gram_matrix(X, *, kernel="linear", sigma=1.0):
    """Gram matrix of the rows of ``X``.

    Parameters
    ----------
    X : array, shape (n_stim, n_features)
    kernel : {"linear", "rbf"}
    sigma : float, default=1.0
        RBF width as a fraction of the median distance (see the module docstring).

    Returns
    -------
    ndarray, shape (n_stim, n_stim), float64
    """
    check_choice(kernel, KERNELS, name="kernel")
    check_scalar(sigma, name="sigma", min_val=0, include_min=False)
    X = check_array(X, name="patterns", ndim=2).astype(np.float64, copy=False)
    if not np.isfinite(X).all():
        raise InputError("CKA: the patterns hold NaN or infinite values (a constant "
                         "pattern z-scored with -zscore pattern?).")
    return KERNELS[kernel](X, float(sigma))


def center_gram(K, *, debiased=False):
    """Centred Gram matrix: ``H K H`` or, with ``debiased``, the U-centred one.

    Parameters
    ----------
    K : array, shape (..., n, n)
        Symmetric Gram matrix (or a stack).
    debiased : bool, default=False
        U-centring (Szekely & Rizzo, 2014): diagonal set to 0, then
        ``K_ij - r_i - r_j`` with ``r_i = sum_j K_ij / (n-2) - sum K / (2 (n-1)(n-2))``,
        diagonal 0 again; needs n >= 4.

    Returns
    -------
    ndarray, shape (..., n, n)
    """
    K = np.array(K, dtype=np.float64)          # a copy: changed in place below
    n = K.shape[-1]
    if K.ndim < 2 or K.shape[-2] != n:
        raise InputError(f"a Gram matrix must be (..., n, n); got {K.shape}.")
    if debiased:
        if n < 4:
            raise InputError(f"debiased CKA needs at least 4 stimuli; got {n}.")
        diag = np.arange(n)
        K[..., diag, diag] = 0.0
        means = K.sum(axis=-1) / (n - 2)
        means -= means.sum(axis=-1, keepdims=True) / (2 * (n - 1))
        K -= means[..., :, None]
        K -= means[..., None, :]
        K[..., diag, diag] = 0.0
        return K
    K -= K.mean(axis=-1, keepdims=True)
    K -= K.mean(axis=-2, keepdims=True)
    return K


def _inner(a, b):
    return np.einsum("...ij,...ij->...", a, b)


def hsic(K, L, *, debiased=False):
    """HSIC of two Gram matrices: ``tr(KHLH) / (n-1)^2``, or Song et al.'s unbiased one.

    >>> K = np.eye(4) + 1
    >>> round(hsic(K, K), 12)
    0.333333333333
    """
    n = np.shape(K)[-1]
    Kc, Lc = center_gram(K, debiased=debiased), center_gram(L, debiased=debiased)
    norm = n * (n - 3) if debiased else (n - 1) ** 2
    return float(_inner(Kc, Lc) / norm)


def _normalised_rows(centred):
    flat = centred.reshape(len(centred), -1)
    norms = np.sqrt(np.einsum("ij,ij->i", flat, flat))
    with np.errstate(invalid="ignore", divide="ignore"):
        return flat / norms[:, None]


def cka_matrix(grams_a, grams_b, *, debiased=False):
    """CKA of every Gram matrix of one stack with every one of another.

    Parameters
    ----------
    grams_a : array, shape (n_a, n, n)
    grams_b : array, shape (n_b, n, n)
    debiased : bool, default=False

    Returns
    -------
    ndarray, shape (n_a, n_b)
        NaN where a representation has no variance (HSIC(K, K) = 0); with
        ``debiased`` scores can be slightly negative.
    """
    A = _normalised_rows(center_gram(grams_a, debiased=debiased))
    B = _normalised_rows(center_gram(grams_b, debiased=debiased))
    if A.shape[1] != B.shape[1]:
        raise InputError(f"CKA needs the same stimuli on both sides; got Gram matrices of "
                         f"{int(np.sqrt(A.shape[1]))} and {int(np.sqrt(B.shape[1]))}.")
    return A @ B.T


def cka(X, Y, *, kernel="linear", sigma=1.0, debiased=False):
    """CKA of two pattern matrices of the same stimuli.

    Parameters
    ----------
    X : array, shape (n_stim, p)
    Y : array, shape (n_stim, q)
    kernel : {"linear", "rbf"}
    sigma : float
        RBF width (fraction of the median distance).
    debiased : bool, default=False

    Returns
    -------
    float
        1 for identical representations (and, with the linear kernel, for any
        orthogonal transform or isotropic scaling of one side).
    """
    X = check_array(X, name="first patterns", ndim=2)
    Y = check_array(Y, name="second patterns", ndim=2)
    if len(X) != len(Y):
        raise InputError(f"CKA needs the same stimuli on both sides; got {len(X)} and "
                         f"{len(Y)} rows.")
    K = gram_matrix(X, kernel=kernel, sigma=sigma)
    L = gram_matrix(Y, kernel=kernel, sigma=sigma)
    return float(cka_matrix(K[None], L[None], debiased=debiased)[0, 0])


def cka_permutation_test(gram_a, grams_b, *, debiased=False, n_perm=1000,
                         alternative="greater", seed=None):
    """Stimulus-label permutation test of CKA (rows and columns of ``gram_a`` permuted).

    Centring commutes with relabelling the stimuli, so each permutation is a
    gather of the centred matrix and one matrix product with all of
    ``grams_b``. The permutations are those of
    :func:`~dnnsparse.algo.rsa.rdm_permutation_test` with the same seed.

    Parameters
    ----------
    gram_a : array, shape (n, n)
    grams_b : array, shape (n_models, n, n)
    debiased : bool
    n_perm : int
    alternative : {"greater", "less", "two-sided"}
    seed : None, int or Generator

    Returns
    -------
    PermutationResult
        ``p = (1 + #extreme) / (1 + n_perm)``; method ``"cka"``.
    """
    check_choice(alternative, ALTERNATIVES, name="alternative")
    check_scalar(n_perm, name="n_perm", kind=int, min_val=1)
    gram_a = np.asarray(gram_a, dtype=np.float64)
    n = gram_a.shape[-1]
    a = _normalised_rows(center_gram(gram_a[None], debiased=debiased))[0]
    B = _normalised_rows(center_gram(grams_b, debiased=debiased))
    if B.shape[1] != a.shape[0]:
        raise InputError("CKA permutation test: Gram matrices of different sizes.")
    observed = B @ a
    null = np.empty((n_perm, len(B)))
    batch = max(1, _BATCH_ELEMENTS // (n * n))
    perms = _permutations(check_random_state(seed), n, n_perm)
    permuted = np.empty((min(batch, n_perm), n * n))
    done = 0
    while done < n_perm:
        k = 0
        for _ in range(min(batch, n_perm - done)):
            p = next(perms)
            np.take(a, (p[:, None] * n + p[None, :]).ravel(), out=permuted[k])
            k += 1
        null[done:done + k] = permuted[:k] @ B.T
        done += k
    count = _count_extreme(null, observed, alternative)
    pvalue = (1.0 + count) / (1.0 + n_perm)
    return PermutationResult(observed, pvalue, null, n_perm, False, "cka", alternative)
