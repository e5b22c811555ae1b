"""Searchlight RSA: the RDM of every small neighbourhood compared with model RDMs.

A *searchlight* is a neighbourhood of features (voxels, vertices) around each
centre: a sphere in millimetres in a volume (:class:`VolumeSearchlight`), a disc
of Euclidean or geodesic radius on a surface mesh (:class:`SurfaceSearchlight`).
Neighbourhoods hold only features (voxels inside the mask), centre included.

:func:`searchlight_scores` computes, chunk by chunk of centres, the RDMs of all
neighbourhoods at once (the Gram matrices of standardised patterns, one batched
matrix product per chunk, float64) and compares each with every model RDM
(Pearson and cosine as one matrix product with the normalised models, Spearman
the same on ranks; Kendall's tau through :func:`~dnnsparse.algo.rsa.compare_rdms`,
one centre at a time). RDMs and comparisons are those of :mod:`dnnsparse.algo.rsa`
(condensed scipy ``pdist`` order).

Examples
--------
>>> rng = np.random.default_rng(0)
>>> mask = np.ones((4, 4, 3), dtype=bool)
>>> sl = VolumeSearchlight(mask, np.diag([2., 2., 3., 1.]), radius=3.)
>>> data = rng.standard_normal((10, sl.n_centres))
>>> model = rng.random(45)
>>> scores = searchlight_scores(data, sl, model[None], method="spearman")
>>> scores.shape
(1, 48)
"""
import functools
import logging
import warnings

import numpy as np
from scipy import sparse, stats
from scipy.sparse.csgraph import dijkstra
from scipy.spatial import cKDTree

from ..errors import InputError
from ..utils.parallel import parallel_map
from ..utils.progress import progress
from ..utils.validation import check_array, check_choice, check_scalar
from .rsa import check_comparison, compare_rdms

__all__ = ["SEARCHLIGHT_METRICS", "SURFACE_DISTANCES", "SurfaceSearchlight",
           "VolumeSearchlight", "check_radius", "mesh_graph", "searchlight_rdms",
           "searchlight_scores", "sphere_offsets"]

log = logging.getLogger(__name__)

#: Relative slack on the radius: a neighbour at exactly ``radius`` mm is inside
#: even when the affine's float32 round-off puts it a hair further.
_RADIUS_RTOL = 1e-9
#: Elements of one chunk's gathered patterns / RDMs (float64: 16 MiB each).
_CHUNK_ELEMENTS = 1 << 21


def check_radius(radius, name="radius"):
    """``radius`` as a positive finite float (InputError otherwise).

    >>> check_radius(6)
    6.0
    """
    check_scalar(radius, name=name, min_val=0, include_min=False)
    return float(radius)


# -- neighbourhoods ------------------------------------------------------------------
def sphere_offsets(affine, radius):
    """Integer voxel offsets within ``radius`` mm of a voxel, for a voxel-to-mm affine.

    Parameters
    ----------
    affine : array, shape (4, 4) or (3, 3)
        Voxel-to-world transform; only its linear part matters (voxel sizes,
        rotation, shear).
    radius : float
        In mm; an offset ``d`` is inside when ``|A d| <= radius``.

    Returns
    -------
    ndarray of int64, shape (n_offsets, 3)
        Sorted by distance, then C order; the first row is (0, 0, 0).

    Examples
    --------
    >>> len(sphere_offsets(np.eye(4), 1.0))
    7
    """
    radius = check_radius(radius)
    lin = np.asarray(affine, dtype=np.float64)[:3, :3]
    if not np.all(np.isfinite(lin)) or abs(np.linalg.det(lin)) < 1e-12:
        raise InputError(f"the voxel-to-mm affine {lin.round(4).tolist()} is singular; "
                         "a searchlight needs voxel sizes.")
    # |d_k| <= radius * |row k of A^-1|: the sphere's bounding box in voxels.
    reach = np.floor(radius * np.linalg.norm(np.linalg.inv(lin), axis=1) + 1e-9)
    axes = [np.arange(-int(r), int(r) + 1) for r in reach]
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    dist = np.linalg.norm(grid @ lin.T, axis=1)
    keep = dist <= radius * (1 + _RADIUS_RTOL)
    order = np.argsort(dist[keep], kind="stable")
    return grid[keep][order].astype(np.int64)


class VolumeSearchlight:
    """Spheres of ``radius`` mm around every voxel of a mask.

    Parameters
    ----------
    mask : array of bool, shape (X, Y, Z)
        The features (centres and members), in C order (as a brain space's mask).
    affine : array, shape (4, 4)
        Voxel-to-mm transform (non-isotropic and oblique grids are fine).
    radius : float
        Sphere radius in mm (``<=``: a voxel at exactly ``radius`` is inside).

    Attributes
    ----------
    offsets : ndarray, shape (n_offsets, 3)
    n_centres : int
        Number of features (each one is a centre).

    Examples
    --------
    >>> sl = VolumeSearchlight(np.ones((3, 3, 3), bool), np.eye(4), radius=1.)
    >>> sl.members([13])          # the middle voxel and its 6 face neighbours
    array([[13,  4, 10, 12, 14, 16, 22]])
    """

    def __init__(self, mask, affine, radius):
        mask = np.asarray(mask, dtype=bool)
        if mask.ndim != 3:
            raise InputError(f"a volume searchlight needs a 3-D mask; got {mask.shape}.")
        self.shape = mask.shape
        self.radius = check_radius(radius)
        self.offsets = sphere_offsets(affine, radius)
        self.ijk = np.argwhere(mask)                            # C order = feature order
        self._lut = np.full(mask.size, -1, dtype=np.int64)
        self._lut[np.flatnonzero(mask)] = np.arange(len(self.ijk))

    @property
    def n_centres(self):
        return len(self.ijk)

    def members(self, centres):
        """Feature indices of the spheres of ``centres``, padded with -1.

        Parameters
        ----------
        centres : array of int, shape (n_centres,)
            Feature indices.

        Returns
        -------
        ndarray of int64, shape (n_centres, n_offsets)
            Row k: the features of centre k's sphere in offset order; -1 where
            the offset leaves the grid or the mask.
        """
        pts = self.ijk[np.asarray(centres)][:, None, :] + self.offsets[None]
        inside = np.all((pts >= 0) & (pts < np.asarray(self.shape)), axis=-1)
        flat = np.ravel_multi_index(tuple(np.where(inside[..., None], pts, 0)
                                          .transpose(2, 0, 1)), self.shape)
        return np.where(inside, self._lut[flat], -1)


#: Distances along a surface.
SURFACE_DISTANCES = {"euclidean": "straight line in mm between vertices",
                     "geodesic": "shortest path along the mesh edges (Dijkstra)"}


def mesh_graph(coords, faces):
    """Sparse symmetric graph of a triangle mesh's edges, weighted by their length (mm).

    Parameters
    ----------
    coords : array, shape (n_vertices, 3)
    faces : array of int, shape (n_faces, 3)

    Returns
    -------
    scipy.sparse.csr_matrix, shape (n_vertices, n_vertices)
    """
    coords = check_array(coords, name="vertex coordinates", ndim=2)
    faces = np.asarray(faces, dtype=np.int64)
    if faces.ndim != 2 or faces.shape[1] != 3 or (faces.size and (
            faces.min() < 0 or faces.max() >= len(coords))):
        raise InputError(f"mesh faces must be (n_faces, 3) vertex indices below "
                         f"{len(coords)}; got shape {faces.shape}.")
    edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [0, 2]]])
    edges = np.unique(np.sort(edges, axis=1), axis=0)
    length = np.linalg.norm(coords[edges[:, 0]] - coords[edges[:, 1]], axis=1)
    n = len(coords)
    graph = sparse.coo_matrix((length, (edges[:, 0], edges[:, 1])), shape=(n, n))
    return (graph + graph.T).tocsr()


def _pad(rows):
    width = max((len(r) for r in rows), default=0)
    out = np.full((len(rows), max(width, 1)), -1, dtype=np.int64)
    for k, r in enumerate(rows):
        out[k, :len(r)] = r
    return out


class SurfaceSearchlight:
    """Discs of ``radius`` mm around every feature vertex of a surface mesh.

    Parameters
    ----------
    coords : array, shape (n_vertices, 3)
        Vertex positions in mm (a ``.surf.gii`` POINTSET).
    faces : array of int, shape (n_faces, 3)
        Triangles (TRIANGLE); needed for ``distance="geodesic"``.
    radius : float
        In mm (``<=``).
    vertices : array of int, shape (n_features,), optional
        Mesh vertex of each feature, in feature order (default: every vertex).
        Members are features only; geodesic paths may cross other vertices.
    distance : {"euclidean", "geodesic"}

    Examples
    --------
    >>> coords = np.array([[0., 0, 0], [1, 0, 0], [0, 1, 0], [1, 1, 0]])
    >>> sl = SurfaceSearchlight(coords, [[0, 1, 2], [1, 3, 2]], 1.0, distance="geodesic")
    >>> sl.members([0])
    array([[0, 1, 2]])
    """

    def __init__(self, coords, faces, radius, *, vertices=None, distance="euclidean"):
        self.coords = check_array(coords, name="vertex coordinates", ndim=2)
        if self.coords.shape[1] != 3:
            raise InputError(f"vertex coordinates must be (n_vertices, 3); got "
                             f"{self.coords.shape}.")
        self.radius = check_radius(radius)
        self.distance = check_choice(distance, SURFACE_DISTANCES, name="distance")
        n = len(self.coords)
        self.vertices = (np.arange(n) if vertices is None
                         else np.asarray(vertices, dtype=np.int64))
        if self.vertices.size and (self.vertices.min() < 0 or self.vertices.max() >= n):
            raise InputError(f"feature vertices must lie below the mesh's {n} vertices.")
        self._lut = np.full(n, -1, dtype=np.int64)
        self._lut[self.vertices] = np.arange(len(self.vertices))
        if self.distance == "geodesic":
            if faces is None:
                raise InputError("geodesic distances need the mesh's triangles.")
            self.graph = mesh_graph(self.coords, faces)
        else:
            self._tree = cKDTree(self.coords[self.vertices])

    @property
    def n_centres(self):
        return len(self.vertices)

    def members(self, centres):
        """Feature indices of the discs of ``centres`` (feature indices), padded with -1.

        Returns
        -------
        ndarray of int64, shape (n_centres, max members in this chunk)
            Sorted feature indices per row.
        """
        centres = np.asarray(centres, dtype=np.int64)
        limit = self.radius * (1 + _RADIUS_RTOL)
        if self.distance == "euclidean":
            rows = self._tree.query_ball_point(self.coords[self.vertices[centres]], limit)
            return _pad([sorted(r) for r in rows])
        dist = dijkstra(self.graph, directed=False, indices=self.vertices[centres],
                        limit=limit)                              # (c, n_vertices)
        rows = []
        for d in dist:
            hit = np.flatnonzero(d <= limit)
            feat = self._lut[hit]
            rows.append(np.sort(feat[feat >= 0]))
        return _pad(rows)


# -- RDMs and scores -----------------------------------------------------------------
def _unit(Y):
    # Columns of each (v, n) block to unit length, in place; zero columns become NaN
    # (as scipy).
    norm = np.sqrt(np.einsum("cvn,cvn->cn", Y, Y))
    with np.errstate(invalid="ignore", divide="ignore"):
        Y /= norm[:, None, :]
    return Y


def _gram_correlation(P, w):
    # P (c, v, n): stimulus patterns are columns, padding rows are 0; centre each
    # pattern over its valid voxels (padding stays 0).
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = P.sum(axis=1) / w.sum(axis=1)[:, None]
    P -= mean[:, None, :]
    P *= w[..., None]
    Z = _unit(P)
    G = np.matmul(Z.transpose(0, 2, 1), Z)
    return np.subtract(1.0, G, out=G)


def _gram_cosine(P, w):
    Z = _unit(P)
    G = np.matmul(Z.transpose(0, 2, 1), Z)
    return np.subtract(1.0, G, out=G)


def _gram_squared(P, w):
    # Centre each voxel across stimuli (distances unchanged, less cancellation).
    P -= P.mean(axis=2, keepdims=True)
    P *= w[..., None]
    sq = np.einsum("cvn,cvn->cn", P, P)
    scale = sq[:, :, None] + sq[:, None, :]
    D = np.matmul(P.transpose(0, 2, 1), P)
    D *= -2.0
    D += scale
    k, i, j = np.nonzero(D < 1e-4 * scale)                        # close pairs: exactly
    if len(k):
        diff = P[k, :, i] - P[k, :, j]
        D[k, i, j] = np.einsum("pv,pv->p", diff, diff)
    return np.maximum(D, 0.0, out=D)


def _gram_euclidean(P, w):
    D = _gram_squared(P, w)
    return np.sqrt(D, out=D)


#: metric -> f(patterns (c, v, n), valid (c, v)) -> square RDMs (c, n, n)
SEARCHLIGHT_METRICS = {
    "correlation": _gram_correlation,
    "cosine": _gram_cosine,
    "euclidean": _gram_euclidean,
    "sqeuclidean": _gram_squared,
}


def _padded(data):
    """(n_features + 1, n_stim) float64: patterns of each feature, then a row of zeros."""
    DT = np.zeros((data.shape[1] + 1, data.shape[0]))
    DT[:-1] = data.T
    return DT


def _gather(DT, members):
    # -1 (no member) picks the zero row at the end of DT.
    P = np.take(DT, members, axis=0)                                       # (c, v, n)
    return P, (members >= 0).astype(np.float64)


def searchlight_rdms(data, members, *, metric="correlation"):
    """Condensed RDMs of the neighbourhoods in ``members``.

    Parameters
    ----------
    data : array, shape (n_stim, n_features)
    members : array of int, shape (n_centres, width)
        Feature indices per neighbourhood, -1 = none (:meth:`VolumeSearchlight.members`).
    metric : {"correlation", "cosine", "euclidean", "sqeuclidean"}

    Returns
    -------
    ndarray, shape (n_centres, n_stim * (n_stim - 1) / 2), float64
        scipy ``pdist`` order; equals :func:`~dnnsparse.algo.rsa.compute_rdm` of
        ``data[:, row]`` (NaN where a pattern has zero norm / variance).

    Examples
    --------
    >>> from scipy.spatial.distance import pdist
    >>> X = np.random.default_rng(0).standard_normal((5, 8))
    >>> np.allclose(searchlight_rdms(X, np.array([[0, 3, 4, -1]]))[0],
    ...             pdist(X[:, [0, 3, 4]], "correlation"))
    True
    """
    check_choice(metric, SEARCHLIGHT_METRICS, name="metric")
    data = check_array(data, name="brain data", ndim=2, allow_nan=True)
    return _condensed(*_rdm_blocks(_padded(data), np.asarray(members), metric))


def _rdm_blocks(DT, members, metric):
    P, w = _gather(DT, members)
    with np.errstate(invalid="ignore", divide="ignore"):
        D = SEARCHLIGHT_METRICS[metric](P, w)
    return D, DT.shape[1]


def _condensed(D, n):
    i, j = np.triu_indices(n, 1)
    return D[:, i, j]


def _ranks(R):
    """``scipy.stats.rankdata(R, axis=-1)`` (average ranks; a row with NaN all NaN).

    One argsort per row; only rows with ties go through rankdata's tie handling.
    """
    order = np.argsort(R, axis=-1)
    ranks = np.empty_like(R, dtype=np.float64)
    np.put_along_axis(ranks, order, np.arange(1.0, R.shape[-1] + 1), axis=-1)
    srt = np.take_along_axis(R, order, axis=-1)
    special = (np.diff(srt, axis=-1) == 0).any(axis=-1) | np.isnan(srt[..., -1])
    if special.any():
        ranks[special] = stats.rankdata(R[special], axis=-1)
    return ranks


def _normalised_models(models, method):
    M = np.asarray(models, dtype=np.float64)
    if method == "spearman":
        M = _ranks(M)
    if method in ("pearson", "spearman"):
        M = M - M.mean(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return M / np.linalg.norm(M, axis=-1, keepdims=True)


def _compare(R, models, Mn, method):
    """Scores (c, n_models) of condensed RDMs R (c, n_pairs) against the models."""
    if method in ("pearson", "spearman", "cosine"):
        if method == "spearman":
            R = _ranks(R)                           # a row with NaN becomes all NaN
        if method != "cosine":
            R = R - R.mean(axis=-1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            return (R @ Mn.T) / np.linalg.norm(R, axis=-1, keepdims=True)
    out = np.full((len(R), len(models)), np.nan)
    for k, r in enumerate(R):
        if np.all(np.isfinite(r)):
            out[k] = compare_rdms(r, models, method=method)
    return out


def _chunk_size(n_stim, width):
    return max(1, min(_CHUNK_ELEMENTS // max(n_stim * n_stim, 1),
                      _CHUNK_ELEMENTS // max(n_stim * width, 1)))


def _chunk_scores(shared, chunk):
    """Scores (c, n_models) and feature counts (c,) of one chunk of centres (a pure task)."""
    members = shared["searchlight"].members(chunk)
    counts = (members >= 0).sum(axis=1)
    remap = shared["remap"]
    if remap is not None:
        members = np.where(members >= 0, remap[members], -1)
    D, n = _rdm_blocks(shared["DT"], members, shared["metric"])
    scores = _compare(_condensed(D, n), shared["models"], shared["Mn"], shared["method"])
    scores[counts < shared["min_features"]] = np.nan
    return scores, counts


def _chunk_scores_one_thread(shared, chunk):
    """:func:`_chunk_scores` with one BLAS thread (a joblib worker process)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        return _chunk_scores(shared, chunk)


def searchlight_scores(data, searchlight, models, *, metric="correlation",
                       method="pearson", min_features=2, centres=None, chunk_size=None,
                       n_jobs=1, show_progress=False, return_counts=False, engine=None):
    """RDM-comparison score of every searchlight with every model RDM.

    Parameters
    ----------
    data : array, shape (n_stim, n_features)
        One pattern per stimulus (rows in the models' order).
    searchlight : VolumeSearchlight or SurfaceSearchlight
        Anything with ``n_centres`` and ``members(centres)``.
    models : array, shape (n_models, n_pairs)
        Condensed model RDMs (e.g. one per DNN layer).
    metric : {"correlation", "cosine", "euclidean", "sqeuclidean"}
        Distance of the searchlight RDMs.
    method : {"pearson", "spearman", "cosine", "kendall_tau_a", "kendall_tau_b"}
        As :func:`~dnnsparse.algo.rsa.compare_rdms` (Kendall: one centre at a time).
        Rank comparisons see exact ties only: distances equal in exact arithmetic
        but not after round-off (a 2-voxel searchlight's correlation distances are
        all 0 or 2) rank in an arbitrary order, here as in any implementation.
    min_features : int, default=2
        Centres whose neighbourhood holds fewer features get NaN.
    centres : array of int, optional
        Feature indices of the centres to compute (default: all).
    chunk_size : int, optional
        Centres per chunk (default: ~16 MiB of patterns and of RDMs per chunk).
    n_jobs : int, default=1
        Chunks in parallel (threads, :func:`~dnnsparse.utils.parallel.parallel_map`);
        each chunk's products use one BLAS thread, here and on any scheduler, so the
        scores do not depend on where the chunks ran.
    show_progress : bool, default=False
    return_counts : bool, default=False
        Also return the number of features of each neighbourhood.
    engine : Engine, optional
        :func:`~dnnsparse.utils.engine.open_engine`: one task per chunk there (the
        patterns, models and searchlight are sent to the workers once); the same
        chunks as here, so the same scores, byte for byte. ``n_jobs`` is then unused
        (a joblib backend's engine: the chunks run there, ``n_jobs`` of them at once).

    Returns
    -------
    scores : ndarray, shape (n_models, n_centres), float64
    counts : ndarray of int, shape (n_centres,)
        Only with ``return_counts``.
    """
    check_choice(metric, SEARCHLIGHT_METRICS, name="metric")
    method = check_comparison(method)
    data = check_array(data, name="brain data", ndim=2, allow_nan=True)
    n_stim = data.shape[0]
    models = check_array(models, name="model RDMs", ndim=2, allow_nan=True)
    if models.shape[1] != n_stim * (n_stim - 1) // 2:
        raise InputError(f"model RDMs have {models.shape[1]} entries but {n_stim} stimuli "
                         f"give {n_stim * (n_stim - 1) // 2}; they must match.")
    check_scalar(min_features, name="min_features", kind=(int, np.integer), min_val=1)
    centres = (np.arange(searchlight.n_centres) if centres is None
               else np.asarray(centres, dtype=np.int64))
    if chunk_size is None:
        width = searchlight.members(centres[:1]).shape[1] if len(centres) else 1
        chunk_size = _chunk_size(n_stim, width)
    check_scalar(chunk_size, name="chunk_size", kind=(int, np.integer), min_val=1)
    chunks = [centres[i:i + chunk_size] for i in range(0, len(centres), chunk_size)]
    remap = None
    if len(centres) < searchlight.n_centres:
        # Some centres only: transpose just the features their searchlights use.
        needed = np.unique(np.concatenate([m[m >= 0] for m in map(searchlight.members,
                                                                    chunks)] or [[]]))
        needed = needed.astype(np.int64)
        remap = np.full(searchlight.n_centres, -1, dtype=np.int64)
        remap[needed] = np.arange(len(needed))
        DT = _padded(data[:, needed])
    else:
        DT = _padded(data)
    shared = {"DT": DT, "searchlight": searchlight, "remap": remap, "metric": metric,
              "method": method, "models": models, "Mn": _normalised_models(models, method),
              "min_features": min_features}
    results = []
    bar = progress(total=len(centres), desc="searchlight", unit="centre",
                   enabled=show_progress)
    if engine is not None and engine.distributed:
        with warnings.catch_warnings():                # sent to the workers once
            warnings.filterwarnings("ignore", message="Sending large graph")
            held = engine.put(shared)
        pending = [engine.submit(_chunk_scores, held, chunk) for chunk in chunks]
        for chunk, handle in zip(chunks, pending):     # in order, as they finish
            results += engine.gather([handle])
            bar.update(len(chunk))
    else:
        # One BLAS thread per chunk, as on a Dask worker: the same numbers (BLAS threads
        # split the sums differently), and faster on these small products (threads
        # over chunks: n_jobs).
        from threadpoolctl import threadpool_limits

        if engine is not None and engine.backend is not None:        # joblib
            fan_out = engine.map
            run = functools.partial(_chunk_scores_one_thread, shared)
        else:
            fan_out = functools.partial(parallel_map, n_jobs=n_jobs)
            run = functools.partial(_chunk_scores, shared)
        batch = max(1, 4 * n_jobs)
        with threadpool_limits(limits=1, user_api="blas"):
            for b in range(0, len(chunks), batch):
                part = chunks[b:b + batch]
                results += fan_out(run, part)
                bar.update(sum(len(c) for c in part))
    bar.close()
    scores = (np.concatenate([r[0] for r in results]) if results
              else np.empty((0, len(models))))
    counts = (np.concatenate([r[1] for r in results]) if results
              else np.empty(0, dtype=np.int64))
    return (scores.T, counts) if return_counts else scores.T
