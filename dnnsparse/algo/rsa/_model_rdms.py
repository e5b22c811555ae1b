"""Model RDMs (hypotheses), pattern z-scoring and the MDS embedding of an RDM.

Simulated RDMs for power checks follow DNNBrain's ``brain/rsa.py``: a linear
pattern (dissimilarity ``|i - j|``), its inverse (``n - 1 - |i - j|``), a noisy
copy of a pattern (Gaussian noise, symmetrised) and a random RDM (uniform,
symmetrised). Unlike DNNBrain's, every random one takes a seed.

All RDMs are condensed vectors in scipy ``pdist`` order.

Examples
--------
>>> categorical_rdm(["a", "a", "b"])
array([0., 1., 1.])
>>> patterned_rdm(3)
array([1., 2., 1.])
"""
import numpy as np

from ...errors import InputError
from ...io.rdm import n_items_from_pairs
from ...utils.validation import check_array, check_choice, check_random_state, check_scalar

__all__ = ["PATTERNS", "ZSCORE_AXES", "categorical_rdm", "mds_embedding", "noisy_rdm",
           "patterned_rdm", "random_rdm", "zscore_patterns"]


def _pairs(n):
    return np.triu_indices(n, k=1)


def categorical_rdm(values):
    """0 for pairs of items with the same value, 1 for pairs with different values.

    Parameters
    ----------
    values : array, shape (n_items,)
        E.g. a stimulus column (animate / inanimate).

    Returns
    -------
    ndarray, shape (n_items * (n_items - 1) / 2,), float64
    """
    values = np.asarray(values)
    if values.ndim != 1 or len(values) < 2:
        raise InputError(f"a categorical RDM needs a 1-D column of at least 2 values; got "
                         f"shape {values.shape}.")
    _, codes = np.unique(values, return_inverse=True)
    i, j = _pairs(len(values))
    return (codes[i] != codes[j]).astype(np.float64)


#: pattern -> dissimilarity of items i < j of n
PATTERNS = {
    "linear": lambda i, j, n: (j - i).astype(np.float64),
    "inverse": lambda i, j, n: (n - 1 - (j - i)).astype(np.float64),
}


def patterned_rdm(n_items, *, pattern="linear"):
    """DNNBrain's patterned RDM: ``|i - j|`` ("linear") or ``n - 1 - |i - j|`` ("inverse").

    Parameters
    ----------
    n_items : int, >= 2
    pattern : {"linear", "inverse"}

    Returns
    -------
    ndarray, shape (n_pairs,)
    """
    check_scalar(n_items, name="n_items", kind=int, min_val=2)
    check_choice(pattern, PATTERNS, name="pattern")
    i, j = _pairs(n_items)
    return PATTERNS[pattern](i, j, n_items)


def noisy_rdm(base, *, noise=0.5, seed=None):
    """A base RDM plus symmetric Gaussian noise (DNNBrain's ``create_noisy_rdm``).

    DNNBrain adds N(0, noise^2) to every cell of the square matrix and averages it
    with its transpose; a pair's entry is then ``base + (e_ij + e_ji) / 2``, i.e.
    the base plus N(0, noise^2 / 2), which is what is drawn here (one value per pair).

    Parameters
    ----------
    base : array, shape (n_pairs,)
    noise : float, >= 0
        Standard deviation of the noise of each square-matrix cell.
    seed : None, int or Generator

    Returns
    -------
    ndarray, shape (n_pairs,)
    """
    base = check_array(base, name="base RDM", ndim=1)
    check_scalar(noise, name="noise", min_val=0)
    rng = check_random_state(seed)
    return base + rng.normal(0.0, noise / np.sqrt(2.0), base.shape)


def random_rdm(n_items, *, seed=None):
    """A random RDM: ``(U + U.T) / 2`` of a uniform [0, 1) matrix (DNNBrain's), condensed.

    Each pair's entry is the mean of two independent uniforms (a triangular
    distribution on [0, 1]).
    """
    check_scalar(n_items, name="n_items", kind=int, min_val=2)
    rng = check_random_state(seed)
    n_pairs = n_items * (n_items - 1) // 2
    return rng.random((2, n_pairs)).mean(axis=0)


#: -zscore axes: what is standardised before the RDM.
ZSCORE_AXES = {
    "pattern": "each pattern (stimulus) across its features, as DNNBrain's "
               "brain_rsa -zscore (scipy.stats.zscore(X, axis=1))",
    "unit": "each feature (unit, voxel) across stimuli",
}


def zscore_patterns(X, *, axis="pattern"):
    """Standardise patterns (mean 0, SD 1 with ddof=0) before an RDM.

    Parameters
    ----------
    X : array, shape (n_stim, n_features)
    axis : {"pattern", "unit"}
        "pattern": every row across its features (DNNBrain's ``brain_rsa -zscore``,
        ``zscore(X, 1)``); "unit": every column across stimuli.

    Returns
    -------
    ndarray, shape (n_stim, n_features), float64
        A constant pattern (row) gives NaN, as scipy's ``zscore`` (its distances are
        undefined, as without z-scoring); a constant unit (column: a dead channel,
        common in ReLU layers) gives 0, as scikit-learn's ``StandardScaler``, so that it
        drops out instead of making every distance NaN.

    >>> zscore_patterns([[1., 2., 3.]])
    array([[-1.22474487,  0.        ,  1.22474487]])
    """
    check_choice(axis, ZSCORE_AXES, name="zscore axis")
    X = check_array(X, name="patterns", ndim=2).astype(np.float64)
    ax = 1 if axis == "pattern" else 0
    centred = X - X.mean(axis=ax, keepdims=True)
    sd = np.sqrt(np.mean(centred * centred, axis=ax, keepdims=True))
    if axis == "unit":
        return centred / np.where(sd == 0, 1.0, sd)          # constant units stay 0
    with np.errstate(invalid="ignore", divide="ignore"):
        return centred / np.where(sd == 0, np.nan, sd)


def mds_embedding(rdm, *, n_components=2, seed=0):
    """Metric MDS coordinates of the items of an RDM (scikit-learn, precomputed).

    Parameters
    ----------
    rdm : array, shape (n_pairs,)
        Condensed dissimilarities (finite, >= 0).
    n_components : int, default=2
    seed : int, default=0
        ``random_state`` of :class:`sklearn.manifold.MDS` (bit-for-bit repeatable).
        SMACOF starts from classical (Torgerson) MDS where scikit-learn offers it
        (>= 1.8), else from 4 seeded random starts.

    Returns
    -------
    coords : ndarray, shape (n_items, n_components)
    stress : float
        sklearn's ``stress_`` of the embedding (raw stress for metric MDS).
    """
    import inspect

    from sklearn.manifold import MDS

    rdm = check_array(getattr(rdm, "vector", rdm), name="RDM", ndim=(1, 2))
    if rdm.ndim != 1 or not np.isfinite(rdm).all():
        raise InputError("MDS needs one finite RDM vector (n_pairs,).")
    n = n_items_from_pairs(len(rdm))
    square = np.zeros((n, n))
    i, j = _pairs(n)
    square[i, j] = square[j, i] = np.maximum(rdm, 0.0)
    if "metric_mds" in inspect.signature(MDS).parameters:
        # scikit-learn >= 1.8: metric= names the dissimilarity, dissimilarity= is deprecated
        mds = MDS(n_components=n_components, metric="precomputed", init="classical_mds",
                  n_init=1, random_state=seed)
        try:
            coords = mds.fit_transform(square)
        except ValueError:
            # the classical start takes square roots of the leading eigenvalues; with
            # fewer positive ones than components (e.g. 3 items) it is NaN: start from
            # seeded random configurations instead
            mds = MDS(n_components=n_components, metric="precomputed", init="random",
                      n_init=4, random_state=seed)
            coords = mds.fit_transform(square)
    else:
        mds = MDS(n_components=n_components, dissimilarity="precomputed", n_init=4,
                  random_state=seed)
        coords = mds.fit_transform(square)
    return coords, float(mds.stress_)
