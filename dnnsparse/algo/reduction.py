"""Feature reduction of activation matrices: components, clusters, histograms, spectra.

- :func:`incremental_pca` -- PCA fitted chunk by chunk (scikit-learn's
  ``IncrementalPCA.partial_fit``), so a layer larger than memory is reduced; fed a
  single chunk it is the exact PCA.
- :func:`fast_ica`, :func:`nmf` -- FastICA and non-negative matrix factorisation
  (non-negative data only), seeded.
- :class:`Reduction` -- a fitted reduction as plain arrays (:meth:`Reduction.to_arrays`,
  no pickles) that projects new samples with the same components.
- :func:`cluster` -- k-means or agglomerative labels of the rows of a matrix (units or
  stimuli, whichever the caller puts in rows); a k-means fit keeps its centres as a
  :class:`Clustering` (plain arrays) that assigns new rows to the same clusters.
- :func:`map_histograms`, :func:`map_spectra` -- per-map histograms and power spectra
  of channel maps (DNNBrain's ``dnn_fe -meth hist|psd``).

Component signs are arbitrary in PCA and ICA; every component here is flipped so that
its largest absolute loading is positive (scikit-learn's convention for PCA), which
makes results comparable across runs and chunkings.

Examples
--------
>>> X = np.random.default_rng(0).normal(size=(20, 5))
>>> red = incremental_pca([X[:10], X[10:]], 2)
>>> red.transform(X).shape
(20, 2)
"""
import logging
import numbers
import warnings
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
from scipy.signal import periodogram
from sklearn.cluster import AgglomerativeClustering, KMeans
from sklearn.decomposition import NMF, FastICA, IncrementalPCA
from sklearn.exceptions import ConvergenceWarning

from ..errors import InputError
from ..utils.validation import check_array, check_choice, check_scalar

__all__ = ["CLUSTERINGS", "LINKAGES", "MAX_AGGLOMERATIVE", "REDUCTIONS", "ClusterResult",
           "Clustering", "Reduction", "check_n_components", "chunk_slices", "cluster", "fast_ica",
           "histogram_edges", "incremental_pca", "map_histograms", "map_range", "map_spectra",
           "nmf", "standardize_rows"]

logger = logging.getLogger(__name__)

#: Reductions whose fitted form projects new samples (components become channels).
REDUCTIONS = ("pca", "ica", "nmf")
#: Clustering methods of :func:`cluster`.
CLUSTERINGS = ("kmeans", "agglomerative")
LINKAGES = ("ward", "complete", "average", "single")
_FORMAT = "dnnsparse-feature-reduction-1"
_CLUSTER_FORMAT = "dnnsparse-clustering-1"
#: NMF settings kept with the components: re-solving W for new samples needs them.
_NMF_PARAMS = ("init", "solver", "beta_loss", "max_iter", "tol", "seed")


def check_n_components(n_components, n_samples, n_features=None, *, what="components",
                       samples="samples (stimuli)"):
    """Check that ``n_components`` is an int in ``1..min(n_samples, n_features)``.

    >>> check_n_components(3, 10, 5)
    3
    """
    check_scalar(n_components, name=f"number of {what}", kind=numbers.Integral, min_val=1)
    most = n_samples if n_features is None else min(n_samples, n_features)
    if n_samples < n_components:
        raise InputError(f"{n_samples} {samples} but {n_components} {what} asked; "
                         f"ask for at most {most} or give more.")
    if n_features is not None and n_features < n_components:
        raise InputError(f"{n_features} features (units) but {n_components} {what} asked; "
                         f"ask for at most {min(n_samples, n_features)}.")
    return int(n_components)


def _check_seed(seed):
    return int(check_scalar(seed, name="seed", kind=numbers.Integral, min_val=0))


def chunk_slices(n_samples, chunk_size, *, min_size=1):
    """Consecutive slices of ``chunk_size`` rows; a last chunk shorter than ``min_size``
    joins the one before (as scikit-learn's ``IncrementalPCA.fit`` batches).

    >>> chunk_slices(10, 4, min_size=3)
    [slice(0, 4, None), slice(4, 10, None)]
    """
    check_scalar(chunk_size, name="chunk size", kind=numbers.Integral, min_val=1)
    starts = list(range(0, int(n_samples), int(chunk_size)))
    if len(starts) > 1 and n_samples - starts[-1] < min_size:
        starts.pop()
    return [slice(a, b) for a, b in zip(starts, starts[1:] + [int(n_samples)])]


def _sign_flip(components):
    """+1/-1 per row making each row's largest absolute entry positive."""
    if components.size == 0:
        return np.ones(len(components))
    top = components[np.arange(len(components)), np.argmax(np.abs(components), axis=1)]
    return np.where(top < 0, -1.0, 1.0)


@dataclass
class Reduction:
    """A fitted reduction: ``transform(X)`` gives ``(n_samples, n_components)`` scores.

    Linear methods (PCA, ICA) project ``(X - mean) @ components.T / scale``; NMF solves
    for non-negative scores with ``components`` held fixed (scikit-learn's
    ``NMF.transform``), using the settings in ``params``.

    Attributes
    ----------
    method : {"pca", "ica", "nmf"}
    components : ndarray (n_components, n_features)
    mean : ndarray (n_features,), or None for NMF
    scale : ndarray (n_components,), or None (whitened PCA: sqrt of the variances)
    n_samples : int
        Samples the reduction was fitted on.
    explained_variance, explained_variance_ratio, singular_values : ndarray, PCA only
    mixing : ndarray (n_features, n_components), ICA only
    params : dict of str to scalar
        Method settings (seed, tolerances, ...).
    """

    method: str
    components: np.ndarray
    mean: Optional[np.ndarray] = None
    scale: Optional[np.ndarray] = None
    n_samples: int = 0
    explained_variance: Optional[np.ndarray] = None
    explained_variance_ratio: Optional[np.ndarray] = None
    singular_values: Optional[np.ndarray] = None
    mixing: Optional[np.ndarray] = None
    params: dict = field(default_factory=dict)

    @property
    def n_components(self):
        return self.components.shape[0]

    @property
    def n_features(self):
        return self.components.shape[1]

    def transform(self, X):
        """Scores of ``X`` (n_samples, n_features) → ndarray (n_samples, n_components)."""
        X = check_array(X, name="X", ndim=2)
        if X.shape[1] != self.n_features:
            raise InputError(f"X has {X.shape[1]} features; the reduction was fitted on "
                             f"{self.n_features}.")
        if self.method == "nmf":
            return self._nmf_model().transform(_check_nonnegative(X))
        scores = (X - self.mean) @ self.components.T
        return scores if self.scale is None else scores / self.scale

    def _nmf_model(self):
        p = self.params
        beta = p["beta_loss"]
        model = NMF(self.n_components, init=None if p["init"] == "" else p["init"],
                    solver=p["solver"], beta_loss=beta, max_iter=int(p["max_iter"]),
                    tol=float(p["tol"]), random_state=int(p["seed"]))
        model.components_ = self.components
        model.n_components_ = self.n_components
        model.n_features_in_ = self.n_features
        return model

    def to_arrays(self):
        """The reduction as a dict of plain arrays (for ``np.savez``; no object arrays).

        >>> red = incremental_pca([np.eye(4)], 2)
        >>> sorted(Reduction.from_arrays(red.to_arrays()).to_arrays()) == sorted(red.to_arrays())
        True
        """
        arrays = {"format": np.array(_FORMAT), "method": np.array(self.method),
                  "components": np.asarray(self.components, dtype=np.float64),
                  "n_samples": np.array(int(self.n_samples))}
        for name in ("mean", "scale", "explained_variance", "explained_variance_ratio",
                     "singular_values", "mixing"):
            value = getattr(self, name)
            if value is not None:
                arrays[name] = np.asarray(value, dtype=np.float64)
        for key, value in self.params.items():
            arrays[f"param_{key}"] = np.array(value)
        return arrays

    @classmethod
    def from_arrays(cls, arrays):
        """Rebuild a reduction from :meth:`to_arrays` output (e.g. an ``np.load`` result)."""
        if str(arrays.get("format", "")) != _FORMAT:
            raise InputError(f"not a dnnsparse feature reduction (missing format {_FORMAT!r}).")
        method = str(arrays["method"])
        check_choice(method, REDUCTIONS, name="method")
        kw = {name: np.asarray(arrays[name]) for name in (
            "mean", "scale", "explained_variance", "explained_variance_ratio",
            "singular_values", "mixing") if name in arrays}
        params = {k[len("param_"):]: np.asarray(v).item() for k, v in arrays.items()
                  if k.startswith("param_")}
        return cls(method=method, components=np.asarray(arrays["components"]),
                   n_samples=int(arrays["n_samples"]), params=params, **kw)


def incremental_pca(chunks, n_components, *, whiten=False):
    """PCA fitted over ``chunks`` of samples, one ``IncrementalPCA.partial_fit`` each.

    Parameters
    ----------
    chunks : iterable of ndarray (n_i, n_features)
        Every chunk needs at least ``n_components`` rows (see :func:`chunk_slices`).
        Accumulated in float64.
    n_components : int
    whiten : bool, default=False
        Divide the scores by the square root of the component variances.

    Returns
    -------
    Reduction
        Fitted on one chunk it equals the exact PCA of that matrix.
    """
    check_scalar(n_components, name="number of components", kind=numbers.Integral, min_val=1)
    model = IncrementalPCA(n_components=int(n_components), whiten=whiten)
    n_features = None
    for i, chunk in enumerate(chunks):
        chunk = check_array(chunk, name=f"chunk {i}", ndim=2)
        if n_features is None:
            n_features = chunk.shape[1]
            if n_features < n_components:
                check_n_components(n_components, n_components, n_features)   # raises
        if len(chunk) < n_components:
            raise InputError(f"chunk {i} has {len(chunk)} samples, fewer than the "
                             f"{n_components} components; use larger chunks.")
        model.partial_fit(chunk)
    if n_features is None:
        raise InputError("no samples to fit PCA on.")
    signs = _sign_flip(model.components_)
    scale = None
    if whiten:     # as scikit-learn: tiny variances are not divided by (almost) zero
        scale = np.maximum(np.sqrt(model.explained_variance_), np.finfo(np.float64).eps)
    return Reduction("pca", model.components_ * signs[:, None], mean=model.mean_, scale=scale,
                     n_samples=int(model.n_samples_seen_),
                     explained_variance=model.explained_variance_,
                     explained_variance_ratio=model.explained_variance_ratio_,
                     singular_values=model.singular_values_,
                     params={"whiten": bool(whiten)})


def _fit_quietly(name, fit):
    """Run ``fit()``; a convergence warning becomes one log line saying what to change."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        result = fit()
    for w in caught:
        if issubclass(w.category, ConvergenceWarning):
            logger.warning("%s: %s", name, w.message)
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return result


def fast_ica(X, n_components, *, seed=0, max_iter=200, tol=1e-4, fun="logcosh"):
    """FastICA (unit-variance whitening) of ``X`` (n_samples, n_features), seeded.

    Returns
    -------
    scores : ndarray (n_samples, n_components)
        The sources, ``reduction.transform(X)``.
    reduction : Reduction
        ``components`` is the unmixing matrix, ``mixing`` its pseudo-inverse.

    Examples
    --------
    >>> t = np.linspace(0, 8, 200)
    >>> X = np.c_[np.sin(3 * t), np.sign(np.cos(5 * t))] @ [[1, 1, 0], [0.5, 2, 1]]
    >>> fast_ica(X, 2, seed=0)[0].shape
    (200, 2)
    """
    X = check_array(X, name="X", ndim=2)
    n_components = check_n_components(n_components, *X.shape)
    model = FastICA(n_components, whiten="unit-variance", whiten_solver="svd", fun=fun,
                    max_iter=int(max_iter), tol=float(tol), random_state=_check_seed(seed))
    scores = _fit_quietly("FastICA", lambda: model.fit_transform(X))
    signs = _sign_flip(model.components_)
    red = Reduction("ica", model.components_ * signs[:, None], mean=model.mean_,
                    n_samples=len(X), mixing=model.mixing_ * signs,
                    params={"seed": int(seed), "max_iter": int(max_iter), "tol": float(tol),
                            "fun": fun, "n_iter": int(model.n_iter_)})
    return scores * signs, red


def _check_nonnegative(X):
    if X.size and X.min() < 0:
        raise InputError(f"{int(np.count_nonzero(X < 0))} negative value(s) (minimum "
                         f"{X.min():.4g}); NMF needs non-negative activations: use a ReLU "
                         f"layer or PCA/ICA.")
    return X


def nmf(X, n_components, *, seed=0, init="nndsvda", solver="cd", beta_loss="frobenius",
        max_iter=200, tol=1e-4):
    """Non-negative matrix factorisation ``X ≈ W @ H`` of non-negative ``X``, seeded.

    Parameters
    ----------
    X : ndarray (n_samples, n_features), no negative values
    n_components : int
    seed : int, default=0
        Seeds the random initialisations (``init="random"``, ``"nndsvdar"``).
    init, solver, beta_loss, max_iter, tol
        As scikit-learn's :class:`~sklearn.decomposition.NMF`.

    Returns
    -------
    W : ndarray (n_samples, n_components)
        ``NMF.fit_transform(X)``.
    reduction : Reduction
        ``components`` is ``H``; ``reduction.transform`` solves W for new samples.

    Examples
    --------
    >>> W, red = nmf(np.arange(12.).reshape(4, 3), 2)
    >>> W.shape, red.components.shape
    ((4, 2), (2, 3))
    """
    X = _check_nonnegative(check_array(X, name="X", ndim=2))
    n_components = check_n_components(n_components, *X.shape)
    params = {"init": init or "", "solver": solver, "beta_loss": beta_loss,
              "max_iter": int(max_iter), "tol": float(tol), "seed": _check_seed(seed)}
    red = Reduction("nmf", np.zeros((n_components, X.shape[1])), n_samples=len(X),
                    params=params)
    model = red._nmf_model()
    try:
        W = _fit_quietly("NMF", lambda: model.fit_transform(X))
    except ValueError as exc:          # e.g. beta_loss kullback-leibler with solver cd
        raise InputError(f"NMF: {exc}") from None
    red.components = model.components_
    red.params["reconstruction_err"] = float(model.reconstruction_err_)
    red.params["n_iter"] = int(model.n_iter_)
    return W, red


def standardize_rows(X):
    """Each row minus its mean, divided by its standard deviation (constant rows: 0).

    >>> standardize_rows([[1., 2., 3.], [2., 2., 2.]])
    array([[-1.22474487,  0.        ,  1.22474487],
           [ 0.        ,  0.        ,  0.        ]])
    """
    X = check_array(X, name="X", ndim=2)
    centred = X - X.mean(axis=1, keepdims=True)
    sd = centred.std(axis=1, keepdims=True)
    return np.divide(centred, sd, out=np.zeros_like(centred), where=sd > 0)


@dataclass
class Clustering:
    """Fitted k-means centres: :meth:`predict` assigns new rows to the same clusters.

    Attributes
    ----------
    centers : ndarray (n_clusters, n_features)
    standardize : bool
        New rows are z-scored (:func:`standardize_rows`) first, as the fitted ones were.
    n_samples : int
        Rows the clustering was fitted on.
    params : dict of str to scalar
        Settings of the fit (seed, n_init, inertia).
    method : str
        ``"kmeans"``.
    """

    centers: np.ndarray
    standardize: bool = False
    n_samples: int = 0
    params: dict = field(default_factory=dict)
    method: str = "kmeans"

    @property
    def n_clusters(self):
        return self.centers.shape[0]

    @property
    def n_features(self):
        return self.centers.shape[1]

    def predict(self, X):
        """Nearest centre of every row (scikit-learn's ``KMeans.predict``).

        Parameters
        ----------
        X : array-like (n_samples, n_features)

        Returns
        -------
        labels : ndarray of int (n_samples,)
            0-based; equal distances go to the lower cluster index.
        distance : ndarray (n_samples,)
            Euclidean distance of each row to its centre.

        Examples
        --------
        >>> Clustering(np.array([[0., 0.], [5., 5.]])).predict([[4., 6.]])[0].tolist()
        [1]
        """
        X = check_array(X, name="X", ndim=2)
        if X.shape[1] != self.n_features:
            raise InputError(f"X has {X.shape[1]} features; the clustering was fitted on "
                             f"{self.n_features}.")
        if self.standardize:
            X = standardize_rows(X)
        c = self.centers
        # |x - c|^2 = |x|^2 - 2 x.c + |c|^2 (as scikit-learn), (n, k) without an (n, k, f)
        d2 = (X * X).sum(axis=1)[:, None] - 2 * X @ c.T + (c * c).sum(axis=1)[None, :]
        labels = np.argmin(d2, axis=1)
        distance = np.sqrt(np.square(X - c[labels]).sum(axis=1))
        return labels.astype(np.int64), distance

    def to_arrays(self):
        """The clustering as a dict of plain arrays (for ``np.savez``; no object arrays).

        >>> cl = Clustering(np.eye(2), params={"seed": 0})
        >>> Clustering.from_arrays(cl.to_arrays()).params
        {'seed': 0}
        """
        arrays = {"format": np.array(_CLUSTER_FORMAT), "method": np.array(self.method),
                  "centers": np.asarray(self.centers, dtype=np.float64),
                  "standardize": np.array(bool(self.standardize)),
                  "n_samples": np.array(int(self.n_samples))}
        arrays.update({f"param_{k}": np.array(v) for k, v in self.params.items()})
        return arrays

    @classmethod
    def from_arrays(cls, arrays):
        """Rebuild a clustering from :meth:`to_arrays` output (e.g. an ``np.load`` result)."""
        if str(arrays.get("format", "")) != _CLUSTER_FORMAT:
            raise InputError(f"not a dnnsparse clustering (missing format "
                             f"{_CLUSTER_FORMAT!r}).")
        params = {k[len("param_"):]: np.asarray(v).item() for k, v in arrays.items()
                  if k.startswith("param_")}
        return cls(np.asarray(arrays["centers"], dtype=np.float64),
                   standardize=bool(arrays["standardize"]), n_samples=int(arrays["n_samples"]),
                   params=params, method=str(arrays["method"]))


@dataclass
class ClusterResult:
    """Labels of the rows of a clustered matrix.

    Attributes
    ----------
    labels : ndarray of int (n_samples,)
        0-based cluster of each row.
    centers : ndarray (n_clusters, n_features)
        Mean of each cluster's rows (k-means: its final centres).
    distance : ndarray (n_samples,)
        Euclidean distance of each row to its cluster's centre.
    inertia : float
        Sum of squared distances.
    model : Clustering or None
        k-means: the fitted centres, to assign new rows (agglomerative clustering
        has no rule for new rows: None).
    """

    labels: np.ndarray
    centers: np.ndarray
    distance: np.ndarray
    inertia: float
    model: Optional[Clustering] = None


#: Largest number of rows agglomerative clustering accepts (its distances are n²).
MAX_AGGLOMERATIVE = 20000


def cluster(X, n_clusters, *, method="kmeans", seed=0, linkage="ward", n_init=10,
            standardize=False):
    """Cluster the rows of ``X`` (n_samples, n_features).

    Put units in rows (``X.T`` of an activation matrix) to group units by their
    responses to the stimuli, or stimuli in rows to group stimuli by their patterns.

    Parameters
    ----------
    X : array-like (n_samples, n_features)
    n_clusters : int
    method : {"kmeans", "agglomerative"}, default="kmeans"
    seed : int, default=0
        Seeds k-means' initialisations (agglomerative clustering is deterministic).
    linkage : {"ward", "complete", "average", "single"}, default="ward"
        Agglomerative only.
    n_init : int, default=10
        k-means restarts; the best is kept.
    standardize : bool, default=False
        z-score every row first, so rows group by the shape of their profile, not
        its magnitude.

    Returns
    -------
    ClusterResult

    Examples
    --------
    >>> X = np.r_[np.zeros((3, 2)), np.ones((2, 2)) * 5]
    >>> cluster(X, 2, seed=0).labels.tolist() in ([0, 0, 0, 1, 1], [1, 1, 1, 0, 0])
    True
    """
    X = check_array(X, name="X", ndim=2)
    check_choice(method, CLUSTERINGS, name="clustering method")
    n_clusters = check_n_components(n_clusters, len(X), what="clusters", samples="rows")
    if standardize:
        X = standardize_rows(X)
    if method == "kmeans":
        model = KMeans(n_clusters, n_init=int(n_init), random_state=_check_seed(seed))
        labels = _fit_quietly("k-means", lambda: model.fit_predict(X))
        centers = model.cluster_centers_
        fitted = Clustering(centers, standardize=bool(standardize), n_samples=len(X),
                            params={"seed": int(seed), "n_init": int(n_init),
                                    "inertia": float(model.inertia_)})
    else:
        check_choice(linkage, LINKAGES, name="linkage")
        if len(X) > MAX_AGGLOMERATIVE:
            raise InputError(f"agglomerative clustering of {len(X)} rows needs about "
                             f"{len(X) ** 2 * 4 / 2 ** 30:.1f} GiB of distances (at most "
                             f"{MAX_AGGLOMERATIVE} rows); cluster fewer units (db_mask, "
                             f"db_pool) or use kmeans.")
        labels = AgglomerativeClustering(n_clusters, linkage=linkage).fit_predict(X)
        sums = np.zeros((n_clusters, X.shape[1]))
        np.add.at(sums, labels, X)
        centers = sums / np.bincount(labels, minlength=n_clusters)[:, None]
        fitted = None
    distance = np.sqrt(np.square(X - centers[labels]).sum(axis=1))
    return ClusterResult(np.asarray(labels, dtype=np.int64), centers, distance,
                         float(np.square(distance).sum()), fitted)


def map_range(blocks):
    """Minimum and maximum of every channel over all stimuli and positions.

    Parameters
    ----------
    blocks : iterable of ndarray (n_i, n_chn, n_pos)

    Returns
    -------
    low, high : ndarray (n_chn,)

    >>> map_range([np.arange(8.).reshape(2, 2, 2)])
    (array([0., 2.]), array([5., 7.]))
    """
    low = high = None
    for block in blocks:
        block = np.asarray(block)
        lo, hi = block.min(axis=(0, 2)), block.max(axis=(0, 2))
        low = lo if low is None else np.minimum(low, lo)
        high = hi if high is None else np.maximum(high, hi)
    if low is None:
        raise InputError("no stimuli to take channel ranges from.")
    return low.astype(np.float64), high.astype(np.float64)


def histogram_edges(low, high, bins):
    """np.histogram's ``bins`` equal-width edges for ranges ``low..high`` (any shape).

    >>> histogram_edges([0., 1.], [2., 1.], 2)
    array([[0. , 1. , 2. ],
           [0.5, 1. , 1.5]])
    """
    low, high = np.asarray(low, dtype=np.float64), np.asarray(high, dtype=np.float64)
    flat = low == high                  # as np.histogram: widen an empty range by 0.5
    low, high = np.where(flat, low - 0.5, low), np.where(flat, high + 0.5, high)
    return np.linspace(low, high, bins + 1, axis=-1)


def map_histograms(maps, bins, *, low=None, high=None):
    """Histogram of every map: counts of the values of each (stimulus, channel) map.

    Parameters
    ----------
    maps : ndarray (n_stim, n_chn, n_pos)
        Channel maps with positions flattened.
    bins : int
        Equal-width bins.
    low, high : ndarray (n_chn,), optional
        Range of each channel (shared by all stimuli, so counts compare across
        stimuli; :func:`map_range`). Default: each map's own min..max, as DNNBrain.

    Returns
    -------
    counts : ndarray (n_stim, n_chn, bins)
        Equal to ``np.histogram(maps[i, c], bins, range=(low[c], high[c]))[0]``.
    edges : ndarray (n_chn, bins + 1), or (n_stim, n_chn, bins + 1) per map

    Examples
    --------
    >>> map_histograms(np.array([[[0., 1., 1., 3.]]]), 3)[0]
    array([[[1., 2., 1.]]])
    """
    maps = check_array(maps, name="maps", ndim=3)
    bins = int(check_scalar(bins, name="bins", kind=numbers.Integral, min_val=1))
    if (low is None) != (high is None):
        raise InputError("give both low and high, or neither.")
    if low is None:
        low, high = maps.min(axis=2), maps.max(axis=2)
    edges = histogram_edges(low, high, bins)
    e = np.broadcast_to(edges if edges.ndim == 3 else edges[None], maps.shape[:2] + (bins + 1,))
    first, last = e[..., :1], e[..., -1:]
    inside = (maps >= first) & (maps <= last)
    # np.histogram's bin search: a scaled index, then corrected against the edges
    idx = ((maps - first) * (bins / (last - first))).astype(np.intp)
    idx = np.clip(idx, 0, bins - 1)
    idx -= np.take_along_axis(e, idx, axis=2) > maps
    idx = np.clip(idx, 0, bins - 1)
    idx += (np.take_along_axis(e, idx + 1, axis=2) <= maps) & (idx != bins - 1)
    group = np.arange(maps.shape[0] * maps.shape[1]).reshape(maps.shape[:2] + (1,))
    counts = np.bincount((group * bins + idx)[inside], minlength=group.size * bins)
    return counts.reshape(maps.shape[:2] + (bins,)).astype(np.float64), edges


def map_spectra(maps, n_freq=None):
    """Power spectral density of every flattened map (``scipy.signal.periodogram``).

    As DNNBrain's ``dnn_fe -meth psd``: each (stimulus, channel) map is read row by
    row as one signal (constant detrend, boxcar window, density scaling, one sample
    per position).

    Parameters
    ----------
    maps : ndarray (n_stim, n_chn, n_pos)
    n_freq : int, optional
        Keep the first ``n_freq`` frequencies (default all, ``n_pos // 2 + 1``).

    Returns
    -------
    power : ndarray (n_stim, n_chn, n_freq)
    freqs : ndarray (n_freq,)
        Cycles per position.

    >>> map_spectra(np.array([[[1., -1., 1., -1.]]]))[0].round(6)
    array([[[0., 0., 4.]]])
    """
    maps = check_array(maps, name="maps", ndim=3)
    n_pos = maps.shape[2]
    if n_pos < 2:
        raise InputError(f"maps of {n_pos} position have no spectrum; use a layer that "
                         f"was not spatially pooled.")
    freqs, power = periodogram(maps, axis=2)
    if n_freq is not None:
        check_scalar(n_freq, name="number of frequencies", kind=numbers.Integral, min_val=1,
                     max_val=len(freqs))
        freqs, power = freqs[:n_freq], power[..., :n_freq]
    return power, freqs
