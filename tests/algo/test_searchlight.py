"""Searchlight RSA against slow loops (scipy pdist + pearsonr/spearmanr/kendalltau),
brute-force neighbourhoods (mm distances, heapq Dijkstra) and rsatoolbox's searchlight."""
import heapq
import itertools

import numpy as np
import pytest
from scipy import stats
from scipy.spatial.distance import pdist

from dnnsparse.algo.searchlight import (SurfaceSearchlight, VolumeSearchlight, mesh_graph,
                                        searchlight_rdms, searchlight_scores, sphere_offsets)
from dnnsparse.errors import InputError

# Non-isotropic and oblique: voxel sizes 2 x 2.5 x 3.5 mm, a rotation about z, a shear.
ROT = np.array([[np.cos(0.3), -np.sin(0.3), 0], [np.sin(0.3), np.cos(0.3), 0], [0, 0, 1]])
AFFINE = np.eye(4)
AFFINE[:3, :3] = ROT @ np.diag([2.0, 2.5, 3.5]) @ np.array([[1, 0.2, 0], [0, 1, 0],
                                                            [0, 0, 1]])
AFFINE[:3, 3] = [-10, 4, 7]
SHAPE = (7, 6, 5)


def _members(sl, k):
    row = sl.members([k])[0]
    return row[row >= 0]


def _brute_sphere(mask, affine, radius):
    """Per feature (C order), the features within radius mm: all pairwise distances."""
    ijk = np.argwhere(mask)
    xyz = ijk @ affine[:3, :3].T + affine[:3, 3]
    dist = np.linalg.norm(xyz[:, None] - xyz[None], axis=-1)
    return [set(np.flatnonzero(row <= radius)) for row in dist]


@pytest.fixture
def volume(rng):
    mask = rng.random(SHAPE) > 0.25
    data = rng.standard_normal((9, mask.sum())) + rng.standard_normal(mask.sum()) * 3
    return mask, data


@pytest.mark.parametrize("radius", [2.2, 4.1, 6.3])    # no distance within 1e-9 of r
def test_sphere_members_equal_brute_force_mm_distances(volume, radius):
    mask, _ = volume
    sl = VolumeSearchlight(mask, AFFINE, radius)
    brute = _brute_sphere(mask, AFFINE, radius)
    assert sl.n_centres == mask.sum()
    for k in range(sl.n_centres):
        got = _members(sl, k)
        assert len(got) == len(set(got)) and set(got) == brute[k], k


def test_sphere_offsets_isotropic_counts():
    # voxels of a 1 mm grid with |d| <= r: 1, 7, 19, 27, 33, 57, 81, 93, 123 (r=3)
    counts = [len(sphere_offsets(np.eye(4), r)) for r in (0.5, 1, 1.5, 2, 2.1, 2.5, 3)]
    assert counts == [1, 7, 19, 33, 33, 81, 123]
    assert np.array_equal(sphere_offsets(np.eye(4), 3)[0], [0, 0, 0])


def _slow_score(x, model, method):
    if method == "pearson":
        return stats.pearsonr(x, model)[0]
    if method == "spearman":
        return stats.spearmanr(x, model)[0]
    if method == "kendall_tau_b":
        return stats.kendalltau(x, model)[0]
    return x @ model / np.linalg.norm(x) / np.linalg.norm(model)


@pytest.mark.parametrize("metric,method", [("correlation", "pearson"),
                                           ("correlation", "spearman"),
                                           ("euclidean", "pearson"),
                                           ("sqeuclidean", "spearman"),
                                           ("cosine", "cosine"),
                                           ("correlation", "kendall_tau_b")])
def test_scores_equal_slow_loop(volume, rng, metric, method):
    mask, data = volume
    n = data.shape[0]
    models = rng.random((2, n * (n - 1) // 2))
    models[1, :5] = models[1, 5]                                # ties in a model
    sl = VolumeSearchlight(mask, AFFINE, 4.0)
    scores, counts = searchlight_scores(data, sl, models, metric=metric, method=method,
                                        min_features=3, chunk_size=7, return_counts=True)
    assert scores.shape == (2, sl.n_centres)
    for k in range(sl.n_centres):
        members = _members(sl, k)
        assert counts[k] == len(members)
        if len(members) < 3:
            assert np.isnan(scores[:, k]).all()
            continue
        rdm = pdist(data[:, members], metric)
        want = [_slow_score(rdm, m, method) for m in models]
        np.testing.assert_allclose(scores[:, k], want, rtol=0, atol=1e-10)


def test_rdms_equal_pdist(volume):
    mask, data = volume
    sl = VolumeSearchlight(mask, AFFINE, 5.0)
    members = sl.members(np.arange(sl.n_centres))
    for metric in ("correlation", "cosine", "euclidean", "sqeuclidean"):
        got = searchlight_rdms(data, members, metric=metric)
        for k in range(0, sl.n_centres, 5):
            row = members[k][members[k] >= 0]
            np.testing.assert_allclose(got[k], pdist(data[:, row], metric), rtol=0,
                                       atol=1e-10)


def test_close_patterns_keep_euclidean_digits(rng):
    # Two nearly equal patterns on a large offset: the Gram formula alone loses digits.
    base = 1e4 + rng.standard_normal(20)
    data = np.stack([base, base + 1e-6 * rng.standard_normal(20), base[::-1]])
    members = np.arange(20)[None]
    got = searchlight_rdms(data, members, metric="euclidean")[0]
    np.testing.assert_allclose(got, pdist(data, "euclidean"), rtol=1e-9)


def test_chunks_and_threads_do_not_change_scores(volume, rng):
    mask, data = volume
    models = rng.random((3, 36))
    sl = VolumeSearchlight(mask, AFFINE, 4.0)
    one = searchlight_scores(data, sl, models, method="spearman", chunk_size=1)
    many = searchlight_scores(data, sl, models, method="spearman", chunk_size=50, n_jobs=2)
    default = searchlight_scores(data, sl, models, method="spearman")
    np.testing.assert_array_equal(np.isnan(one), np.isnan(many))
    np.testing.assert_allclose(one, many, rtol=0, atol=1e-13)
    np.testing.assert_allclose(one, default, rtol=0, atol=1e-13)
    sub = searchlight_scores(data, sl, models, method="spearman", centres=[4, 0, 9])
    np.testing.assert_allclose(sub, one[:, [4, 0, 9]], rtol=0, atol=1e-13)


def test_constant_pattern_gives_nan_not_a_crash(rng):
    mask = np.ones((3, 3, 3), bool)
    data = rng.standard_normal((5, 27))
    data[2] = 1.0                                       # stimulus 2: same value everywhere
    sl = VolumeSearchlight(mask, np.eye(4), 1.0)
    scores = searchlight_scores(data, sl, rng.random((1, 10)))
    assert np.isnan(scores).all()


# -- surfaces ---------------------------------------------------------------------
@pytest.fixture
def mesh(rng):
    """A bumpy 7 x 6 triangulated sheet (spacing 2 mm)."""
    nx, ny = 7, 6
    xy = np.array(list(itertools.product(range(nx), range(ny))), dtype=float) * 2.0
    coords = np.column_stack([xy, rng.normal(0, 0.8, len(xy))])
    idx = np.arange(nx * ny).reshape(nx, ny)
    faces = []
    for i in range(nx - 1):
        for j in range(ny - 1):
            a, b, c, d = idx[i, j], idx[i + 1, j], idx[i, j + 1], idx[i + 1, j + 1]
            faces += [[a, b, c], [b, d, c]]
    return coords, np.array(faces)


def _heap_dijkstra(coords, faces, source, radius):
    """Textbook Dijkstra over the triangle edges, from scratch (no scipy)."""
    nbrs = {v: set() for v in range(len(coords))}
    for tri in faces:
        for a, b in ((tri[0], tri[1]), (tri[1], tri[2]), (tri[0], tri[2])):
            nbrs[a].add(b)
            nbrs[b].add(a)
    best, heap, done = {source: 0.0}, [(0.0, source)], set()
    while heap:
        d, v = heapq.heappop(heap)
        if v in done:
            continue
        done.add(v)
        for w in nbrs[v]:
            nd = d + float(np.linalg.norm(coords[v] - coords[w]))
            if nd <= radius and nd < best.get(w, np.inf):
                best[w] = nd
                heapq.heappush(heap, (nd, w))
    return done


@pytest.mark.parametrize("radius", [2.5, 4.5, 7.0])
def test_geodesic_members_equal_heapq_dijkstra(mesh, rng, radius):
    coords, faces = mesh
    vertices = np.sort(rng.choice(len(coords), 30, replace=False))   # a masked surface
    sl = SurfaceSearchlight(coords, faces, radius, vertices=vertices, distance="geodesic")
    for k, v in enumerate(vertices):
        want = {int(np.flatnonzero(vertices == w)[0])
                for w in _heap_dijkstra(coords, faces, v, radius) if w in set(vertices)}
        assert set(_members(sl, k)) == want, k


def test_euclidean_surface_members_equal_brute_force(mesh):
    coords, faces = mesh
    sl = SurfaceSearchlight(coords, faces, 4.5, distance="euclidean")
    dist = np.linalg.norm(coords[:, None] - coords[None], axis=-1)
    for v in range(len(coords)):
        assert set(_members(sl, v)) == set(np.flatnonzero(dist[v] <= 4.5))
    geo = SurfaceSearchlight(coords, faces, 4.5, distance="geodesic")
    for v in range(len(coords)):                     # a path is never shorter than a line
        assert set(_members(geo, v)) <= set(_members(sl, v))


def test_mesh_graph_is_symmetric_edge_lengths(mesh):
    coords, faces = mesh
    g = mesh_graph(coords, faces).toarray()
    assert np.array_equal(g, g.T)
    a, b = faces[0, 0], faces[0, 1]
    assert g[a, b] == pytest.approx(np.linalg.norm(coords[a] - coords[b]))
    assert (g > 0).sum() == 2 * len({tuple(sorted(e)) for t in faces
                                     for e in ((t[0], t[1]), (t[1], t[2]), (t[0], t[2]))})


# -- rsatoolbox --------------------------------------------------------------------
def test_scores_equal_rsatoolbox_searchlight(rng):
    rsl = pytest.importorskip("rsatoolbox.util.searchlight")
    from rsatoolbox.inference import eval_fixed
    from rsatoolbox.model import ModelFixed
    from rsatoolbox.rdm import RDMs

    mask = rng.random((7, 6, 5)) > 0.2
    n = 10
    data = rng.standard_normal((n, mask.sum()))
    full = np.zeros((n, mask.size))
    full[:, mask.ravel()] = data
    models = rng.random((2, n * (n - 1) // 2))
    # rsatoolbox keeps voxels at distance < radius (in voxels); ours <= radius (mm).
    # On a 1 mm grid, squared distances are integers, so radius 2 + 1e-6 there is the
    # same sphere as radius 2 here; truncate_at_boundary keeps only mask voxels, as ours.
    centres, neighbours = rsl.get_volume_searchlight(mask, radius=2 + 1e-6, threshold=1.0,
                                                     truncate_at_boundary=True)
    sl = VolumeSearchlight(mask, np.eye(4), 2.0)
    lut = np.full(mask.size, -1)
    lut[np.flatnonzero(mask)] = np.arange(mask.sum())
    assert np.array_equal(lut[centres], np.arange(mask.sum()))
    for k, nb in enumerate(neighbours):
        assert set(lut[nb]) == set(_members(sl, k))
    sl_rdms = rsl.get_searchlight_RDMs(full, centres, neighbours, np.arange(n),
                                       method="correlation", verbose=False)
    ours_rdm = searchlight_rdms(data, sl.members(np.arange(sl.n_centres)))
    np.testing.assert_allclose(ours_rdm, sl_rdms.dissimilarities, rtol=0, atol=1e-10)
    fixed = [ModelFixed(f"m{i}", RDMs(m[None])) for i, m in enumerate(models)]
    for theirs_name, ours_name in (("corr", "pearson"), ("spearman", "spearman")):
        res = rsl.evaluate_models_searchlight(sl_rdms, fixed, eval_fixed, method=theirs_name)
        theirs = np.array([np.asarray(r.evaluations).reshape(-1) for r in res]).T
        ours = searchlight_scores(data, sl, models, method=ours_name, min_features=1)
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-10)


# -- bad input -----------------------------------------------------------------------
@pytest.mark.parametrize("radius", [0, -1.0, np.nan, np.inf])
def test_bad_radius_is_refused(radius, mesh):
    with pytest.raises(InputError, match="radius"):
        VolumeSearchlight(np.ones((2, 2, 2), bool), np.eye(4), radius)
    with pytest.raises(InputError, match="radius"):
        SurfaceSearchlight(mesh[0], mesh[1], radius)


def test_models_of_another_size_are_refused(volume):
    mask, data = volume
    sl = VolumeSearchlight(mask, AFFINE, 3.0)
    with pytest.raises(InputError, match="9 stimuli"):
        searchlight_scores(data, sl, np.ones((1, 10)))


def test_singular_affine_and_bad_faces_are_refused(mesh):
    with pytest.raises(InputError, match="singular"):
        VolumeSearchlight(np.ones((2, 2, 2), bool), np.diag([1, 0, 1, 1]), 2.0)
    with pytest.raises(InputError, match="faces"):
        SurfaceSearchlight(mesh[0], mesh[1] + 100, 2.0, distance="geodesic")
