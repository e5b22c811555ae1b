"""Inference for RSA: permutation test, bootstrap CI and noise ceiling.

All random steps take ``seed`` (see
:func:`~dnnsparse.utils.validation.check_random_state`) and are bit-for-bit
repeatable with it.

The permutation test shuffles *stimulus labels*: rows and columns of one
square RDM are permuted together, which keeps the RDM a valid dissimilarity
matrix of the same stimuli. Shuffling the condensed entries independently (as
DNNBrain did) breaks the dependence between entries that share a stimulus and
gives a null distribution that is too narrow, hence p-values that are too small.
"""
import itertools
import logging
import math
from dataclasses import dataclass

import numpy as np

from ...base.rdm import condensed_to_square
from ...errors import InputError
from ...utils.validation import check_choice, check_random_state, check_scalar
from ...utils.xp import is_numpy, to_namespace, to_numpy
from ._rdm import COMPARISONS, check_comparison, compare_rdms, rank_transform, rdm_vector
from ._xp_rsa import xp_permutation_null

__all__ = ["PermutationResult", "BootstrapResult", "NoiseCeiling",
           "rdm_permutation_test", "rdm_bootstrap", "noise_ceiling", "ALTERNATIVES"]

log = logging.getLogger(__name__)

ALTERNATIVES = ("greater", "less", "two-sided")
#: Relative tolerance when counting null values as extreme as the observed one,
#: so that round-off in a tie (e.g. the identity permutation) still counts.
_REL_TOL = 1e-12
#: Largest n for exact enumeration of all n! permutations.
_EXACT_MAX_N = 10
#: Elements per gathered batch of permuted RDMs (64 MiB of float64).
_BATCH_ELEMENTS = 1 << 23


@dataclass(frozen=True)
class PermutationResult:
    """Outcome of :func:`rdm_permutation_test`.

    Attributes
    ----------
    statistic : float or ndarray (n_models,)
    pvalue : float or ndarray (n_models,)
    null_distribution : ndarray (n_perm,) or (n_perm, n_models)
    n_perm : int
        Number of permutations (n! when exact).
    exact : bool
    method, alternative : str
    """
    statistic: object
    pvalue: object
    null_distribution: np.ndarray
    n_perm: int
    exact: bool
    method: str
    alternative: str


@dataclass(frozen=True)
class BootstrapResult:
    """Outcome of :func:`rdm_bootstrap`: statistic, percentile CI and distribution."""
    statistic: object
    ci_low: object
    ci_high: object
    distribution: np.ndarray
    ci: float
    method: str


@dataclass(frozen=True)
class NoiseCeiling:
    """Leave-one-subject-out noise ceiling (Nili et al., 2014)."""
    lower: float
    upper: float
    method: str


def _pair_inputs(rdm_a, rdm_b):
    a = rdm_vector(rdm_a, "first RDM")
    b = rdm_vector(rdm_b, "second RDM")
    if a.ndim != 1:
        raise InputError(f"the permuted RDM must be one vector (n_pairs,); got {a.shape}.")
    if b.shape[-1] != a.shape[0]:
        raise InputError(f"RDMs differ in size: {a.shape[0]} vs {b.shape[-1]} entries.")
    return a, b


def _unit_centred(v):
    v = v - v.mean(axis=-1, keepdims=True)
    norm = np.sqrt(np.einsum("...i,...i->...", v, v))
    with np.errstate(invalid="ignore", divide="ignore"):
        return v / np.asarray(norm)[..., None]


def _unit(v):
    norm = np.sqrt(np.einsum("...i,...i->...", v, v))
    with np.errstate(invalid="ignore", divide="ignore"):
        return v / np.asarray(norm)[..., None]


#: Comparisons that are one dot product after a transform that commutes with
#: permuting stimuli (mean, norm and ranks of the entries do not change when
#: rows and columns are permuted together).
_DOT_TRANSFORMS = {
    "pearson": _unit_centred,
    "spearman": lambda v: _unit_centred(rank_transform(v)),
    "cosine": _unit,
}


def _permutations(rng, n, n_perm):
    # One permutation per call: the stream does not depend on batch sizes.
    for _ in range(n_perm):
        yield rng.permutation(n)


def _count_extreme(null, observed, alternative):
    tol = _REL_TOL * np.maximum(1.0, np.abs(observed))
    if alternative == "greater":
        hits = null >= observed - tol
    elif alternative == "less":
        hits = null <= observed + tol
    else:
        hits = np.abs(null) >= np.abs(observed) - tol
    return hits.sum(axis=0)


def rdm_permutation_test(rdm_a, rdm_b, *, method="pearson", n_perm=1000,
                         alternative="greater", exact=False, seed=None):
    """Stimulus-label permutation test of the similarity of two RDMs.

    Rows and columns of ``rdm_a``'s square form are permuted together (the
    stimuli are relabelled), the permuted RDM is compared with ``rdm_b``, and
    the observed similarity is ranked in that null distribution.

    Parameters
    ----------
    rdm_a : array, shape (n_pairs,) or RDM
        The RDM whose stimulus labels are permuted (e.g. the brain RDM).
    rdm_b : array, shape (n_pairs,) or (n_models, n_pairs), or RDM
        One or several RDMs (e.g. layers); every model sees the same permutations.
    method : str, default="pearson"
        See :func:`~dnnsparse.algo.rsa.compare_rdms`. Pearson, Spearman and
        cosine are one matrix product per batch of permutations; Kendall's tau
        calls scipy once per permutation (slow for big RDMs).
    n_perm : int, default=1000
        Random permutations (ignored when ``exact``).
    alternative : {"greater", "less", "two-sided"}, default="greater"
    exact : bool, default=False
        Enumerate all n! permutations (n <= 10); the p-value is then the exact
        fraction of permutations (identity included) at least as extreme.
    seed : None, int or numpy Generator

    Returns
    -------
    PermutationResult
        Random permutations give ``p = (1 + #extreme) / (1 + n_perm)``, never 0.

    Examples
    --------
    >>> res = rdm_permutation_test(brain_rdm, layer_rdms, seed=0)   # doctest: +SKIP
    >>> res.pvalue                                                # doctest: +SKIP
    """
    method = check_comparison(method)
    check_choice(alternative, ALTERNATIVES, name="alternative")
    rdm_a, rdm_b = getattr(rdm_a, "vector", rdm_a), getattr(rdm_b, "vector", rdm_b)
    # torch tensors: permutations drawn here as always, the null's products on the device
    device = next((v for v in (rdm_a, rdm_b) if not is_numpy(v)), None)
    a, b = _pair_inputs(to_numpy(rdm_a), to_numpy(rdm_b))
    square = condensed_to_square(a)
    n = square.shape[0]
    if exact:
        if n > _EXACT_MAX_N:
            raise InputError(f"exact enumeration needs n! permutations; n={n} is too large "
                             f"(at most {_EXACT_MAX_N}); use random permutations.")
        n_perm = math.factorial(n)
        perms = (np.array(p) for p in itertools.permutations(range(n)))
    else:
        check_scalar(n_perm, name="n_perm", kind=int, min_val=1)
        perms = _permutations(check_random_state(seed), n, n_perm)
    iu0, iu1 = np.triu_indices(n, k=1)
    observed = compare_rdms(a, b, method=method)

    null = np.empty((n_perm,) + np.shape(observed))
    if device is not None and method in _DOT_TRANSFORMS:
        null[:] = xp_permutation_null(to_namespace(a, device), b, method, perms, n_perm)
    elif method in _DOT_TRANSFORMS:
        transform = _DOT_TRANSFORMS[method]
        flat = condensed_to_square(transform(a)).ravel()
        tb = transform(b)
        batch = max(1, _BATCH_ELEMENTS // len(a))
        permuted = np.empty((min(batch, n_perm), len(a)))
        done = 0
        while done < n_perm:
            k = 0
            for p in itertools.islice(perms, batch):
                # Rows and columns permuted together: entry (i, j) of the
                # relabelled RDM is entry (p[i], p[j]) of the square matrix.
                np.take(flat, p[iu0] * n + p[iu1], out=permuted[k])
                k += 1
            null[done:done + k] = permuted[:k] @ tb.T
            done += k
    else:
        if len(a) > 50_000:
            log.info("Kendall's tau per permutation on %d pairs is slow; Pearson or "
                     "Spearman are one matrix product.", len(a))
        flat = square.ravel()
        for k, p in enumerate(perms):
            null[k] = COMPARISONS[method](flat[p[iu0] * n + p[iu1]], b)
    count = _count_extreme(null, observed, alternative)
    pvalue = count / n_perm if exact else (1.0 + count) / (1.0 + n_perm)
    if np.ndim(pvalue) == 0:
        pvalue = float(pvalue)
    return PermutationResult(observed, pvalue, null, n_perm, bool(exact), method,
                             alternative)


def rdm_bootstrap(rdm_a, rdm_b, *, method="pearson", n_boot=1000, ci=0.95, seed=None):
    """Bootstrap confidence interval of an RDM similarity, resampling stimuli.

    Each bootstrap sample draws n stimuli with replacement and takes the
    sub-RDMs of both RDMs on them. A stimulus drawn twice would create pairs
    of a stimulus with itself, whose dissimilarity is 0 by construction in both
    RDMs; these pairs are dropped (they would inflate the similarity). Pairs of
    two different stimuli that recur because a stimulus was drawn more than
    once are kept, which is what weights them in the bootstrap.

    Parameters
    ----------
    rdm_a : array, shape (n_pairs,) or RDM
    rdm_b : array, shape (n_pairs,) or (n_models, n_pairs), or RDM
    method : str, default="pearson"
    n_boot : int, default=1000
    ci : float, default=0.95
        Central percentile interval.
    seed : None, int or numpy Generator

    Returns
    -------
    BootstrapResult
        ``distribution`` has shape (n_boot,) or (n_boot, n_models); samples
        with an undefined similarity (constant sub-RDM) are NaN and ignored
        by the interval.
    """
    method = check_comparison(method)
    check_scalar(n_boot, name="n_boot", kind=int, min_val=1)
    check_scalar(ci, name="ci", min_val=0, max_val=1, include_min=False, include_max=False)
    a, b = _pair_inputs(rdm_a, rdm_b)
    observed = compare_rdms(a, b, method=method)
    sq_a = condensed_to_square(a)
    sq_b = condensed_to_square(b)                        # (n, n) or (n_models, n, n)
    n = sq_a.shape[0]
    rng = check_random_state(seed)
    iu0, iu1 = np.triu_indices(n, k=1)
    dist = np.empty((n_boot,) + np.shape(observed))
    for k in range(n_boot):                              # loop over bootstrap samples
        s = rng.integers(0, n, n)
        i, j = s[iu0], s[iu1]
        keep = i != j                                    # drop self-pairs of duplicates
        i, j = i[keep], j[keep]
        if len(i) < 3:
            dist[k] = np.nan
            continue
        with np.errstate(invalid="ignore", divide="ignore"):
            dist[k] = COMPARISONS[method](sq_a[i, j], sq_b[..., i, j])
    n_bad = int(np.isnan(dist).any(axis=tuple(range(1, dist.ndim))).sum())
    if n_bad:
        log.warning("%d of %d bootstrap samples gave an undefined similarity and are "
                    "left out of the interval.", n_bad, n_boot)
    low, high = np.nanquantile(dist, [(1 - ci) / 2, 1 - (1 - ci) / 2], axis=0)
    if np.ndim(low) == 0:
        low, high = float(low), float(high)
    return BootstrapResult(observed, low, high, dist, ci, method)


#: How subjects' RDMs are made comparable before averaging (Nili et al., 2014).
_CEILING_TRANSFORMS = {
    "pearson": _unit_centred,
    "spearman": rank_transform,
    "kendall_tau_a": rank_transform,
    "kendall_tau_b": rank_transform,
    "cosine": _unit,
}


def noise_ceiling(rdms, *, method="pearson"):
    """Leave-one-subject-out noise ceiling of the group-average RDM.

    upper = mean over subjects of similarity(subject, mean of all subjects);
    lower = mean over subjects of similarity(subject, mean of the others).
    Subjects' RDMs are z-scored (Pearson), rank-transformed (Spearman,
    Kendall) or unit-normalised (cosine) before averaging (Nili et al., 2014).

    Parameters
    ----------
    rdms : array, shape (n_subjects, n_pairs), n_subjects >= 2
    method : str, default="pearson"

    Returns
    -------
    NoiseCeiling
    """
    method = check_comparison(method)
    rdms = np.stack([rdm_vector(r, "subject RDM") for r in rdms]) \
        if not isinstance(rdms, np.ndarray) else rdm_vector(rdms, "subject RDMs")
    if rdms.ndim != 2 or len(rdms) < 2:
        raise InputError(f"a noise ceiling needs RDMs of at least 2 subjects as "
                         f"(n_subjects, n_pairs); got shape {rdms.shape}.")
    t = _CEILING_TRANSFORMS[method](rdms)
    total = t.sum(axis=0)
    n_sub = len(rdms)
    upper = np.mean([compare_rdms(r, total / n_sub, method=method) for r in rdms])
    lower = np.mean([compare_rdms(r, (total - ts) / (n_sub - 1), method=method)
                     for r, ts in zip(rdms, t)])
    return NoiseCeiling(float(lower), float(upper), method)
