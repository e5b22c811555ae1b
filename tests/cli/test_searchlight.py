"""db_searchlight end to end: NIfTI, GIFTI and CIFTI inputs, maps against a slow loop
(brute-force neighbourhoods, scipy pdist and spearmanr/pearsonr), bad input."""
import itertools

import nibabel as nib
import numpy as np
import pytest
from nibabel import cifti2, gifti
from scipy import stats
from scipy.sparse.csgraph import dijkstra
from scipy.spatial.distance import pdist

from dnnsparse.algo.searchlight import mesh_graph
from dnnsparse.base.activation import Activation
from dnnsparse.base.stimulus import Stimulus
from dnnsparse.cli.searchlight import main
from dnnsparse.io.table import read_table

N = 8
SHAPE = (5, 4, 4)
AFFINE = np.diag([2.0, 3.0, 2.5, 1.0])
LABELS = np.array([1, 2, 1, 3, 2, 3, 1, 2])


@pytest.fixture
def files(tmp_path, rng):
    ids = [f"img{i}.png" for i in range(N)]
    layers = {"conv": rng.standard_normal((N, 3, 2, 2)), "fc": rng.standard_normal((N, 6))}
    Activation(layers, stim_ids=ids).save(tmp_path / "a.act.h5")
    Stimulus(ids, columns={"label": LABELS}).save(tmp_path / "s.stim.csv")
    bold = rng.standard_normal(SHAPE + (N,))
    mask = rng.random(SHAPE) > 0.3
    nib.save(nib.Nifti1Image(bold, AFFINE), str(tmp_path / "bold.nii.gz"))
    nib.save(nib.Nifti1Image(mask.astype(np.uint8), AFFINE), str(tmp_path / "mask.nii.gz"))
    nib.save(nib.Nifti1Image(mask.astype(np.uint8), np.diag([2.0, 3.0, 3.0, 1.0])),
             str(tmp_path / "other_grid.nii.gz"))
    nib.save(nib.Nifti1Image(bold[..., :N - 1], AFFINE), str(tmp_path / "short.nii.gz"))
    return tmp_path, layers, bold, mask


def _slow_map(patterns, neighbours, layer_rdm, score, min_voxels=2):
    """Score of every centre: pdist of its neighbours' patterns, then scipy's statistic."""
    out = np.full(len(neighbours), np.nan)
    for k, members in enumerate(neighbours):
        if len(members) >= min_voxels:
            out[k] = score(pdist(patterns[:, members], "correlation"), layer_rdm)[0]
    return out


def test_volume_maps_equal_slow_loop(run_cli, files):
    tmp, layers, bold, mask = files
    status, out, err = run_cli(main, "-act", tmp / "a.act.h5", "-stim", tmp / "s.stim.csv",
                               "-nif", tmp / "bold.nii.gz", "-mask", tmp / "mask.nii.gz",
                               "-radius", 3.1, "-method", "spearman", "-min-voxels", 3,
                               "-out", tmp / "o", "-q")
    assert status == 0, err
    assert {p.name for p in (tmp / "o").iterdir()} == {
        "score.nii.gz", "n_features.nii.gz", "searchlight.csv", ".dnnsparse-output"}
    img = nib.load(str(tmp / "o/score.nii.gz"))
    assert img.shape == SHAPE + (2,)
    np.testing.assert_allclose(img.affine, AFFINE)
    score = np.asarray(img.dataobj, dtype=np.float64)
    assert np.isnan(score[~mask]).all()
    # brute force: every mask voxel within 3.1 mm (voxel sizes 2 x 3 x 2.5)
    ijk = np.argwhere(mask)
    xyz = ijk * np.diag(AFFINE)[:3]
    near = np.linalg.norm(xyz[:, None] - xyz[None], axis=-1) <= 3.1
    neighbours = [np.flatnonzero(row) for row in near]
    patterns = bold[mask].T                                           # (N, n_voxels)
    # -min-voxels 3: the correlation distances of 2-voxel patterns are all 0 or 2, ties
    # that round-off breaks differently here and in scipy, so their ranks are arbitrary.
    for i, (name, act) in enumerate(layers.items()):
        want = _slow_map(patterns, neighbours, pdist(act.reshape(N, -1), "correlation"),
                         stats.spearmanr, min_voxels=3)
        got = score[..., i][mask]
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)      # float32 file
    counts = np.asarray(nib.load(str(tmp / "o/n_features.nii.gz")).dataobj)
    np.testing.assert_array_equal(counts[mask], near.sum(axis=1))
    assert (counts[~mask] == 0).all()
    table = read_table(tmp / "o/searchlight.csv")
    assert list(table["layer"]) == ["conv", "fc"]
    i_best = np.nanargmax(score[..., 1][mask])
    assert table["peak"][1] == "voxel " + ",".join(map(str, ijk[i_best]))
    assert "fc: max spearman" in out


def test_categories_average_the_brain_samples(run_cli, files):
    tmp, layers, bold, mask = files
    status, _, err = run_cli(main, "-act", tmp / "a.act.h5", "-stim", tmp / "s.stim.csv",
                             "-nif", tmp / "bold.nii.gz", "-mask", tmp / "mask.nii.gz",
                             "-cate", "-radius", 4, "-layer", "fc", "-metric", "euclidean",
                             "-out", tmp / "c", "-q")
    assert status == 0, err
    score = np.asarray(nib.load(str(tmp / "c/score.nii.gz")).dataobj, dtype=np.float64)
    cats = np.unique(LABELS)
    patterns = np.stack([bold[mask].T[LABELS == c].mean(0) for c in cats])
    layer = np.stack([layers["fc"][LABELS == c].mean(0) for c in cats])
    ijk = np.argwhere(mask) * np.diag(AFFINE)[:3]
    near = np.linalg.norm(ijk[:, None] - ijk[None], axis=-1) <= 4
    k = int(np.argmax(near.sum(1)))
    want = stats.pearsonr(pdist(patterns[:, near[k]], "euclidean"),
                          pdist(layer, "euclidean"))[0]
    assert score[tuple(np.argwhere(mask)[k])] == pytest.approx(want, abs=1e-6)


def test_without_mask_constant_voxels_are_left_out(run_cli, files):
    tmp, layers, bold, _ = files
    flat = bold.copy()
    flat[0, 0, 0] = 0.0                                      # outside the brain
    flat[2, 1, 1] = 5.0                                      # constant signal
    nib.save(nib.Nifti1Image(flat, AFFINE), str(tmp / "flat.nii.gz"))
    status, _, err = run_cli(main, "-act", tmp / "a.act.h5", "-nif", tmp / "flat.nii.gz",
                             "-radius", 3.1, "-layer", "fc", "-out", tmp / "f", "-q")
    assert status == 0, err
    score = np.asarray(nib.load(str(tmp / "f/score.nii.gz")).dataobj)
    counts = np.asarray(nib.load(str(tmp / "f/n_features.nii.gz")).dataobj)
    inside = np.ones(SHAPE, bool)
    inside[0, 0, 0] = inside[2, 1, 1] = False
    assert np.isnan(score[~inside]).all() and np.isfinite(score[inside]).all()
    ijk = np.argwhere(inside) * np.diag(AFFINE)[:3]
    near = np.linalg.norm(ijk[:, None] - ijk[None], axis=-1) <= 3.1
    np.testing.assert_array_equal(counts[inside], near.sum(axis=1))


def _sheet(rng, nx=6, ny=5):
    xy = np.array(list(itertools.product(range(nx), range(ny))), dtype=float) * 2.0
    coords = np.column_stack([xy, rng.normal(0, 0.5, len(xy))]).astype(np.float32)
    idx = np.arange(nx * ny).reshape(nx, ny)
    faces = [[idx[i, j], idx[i + 1, j], idx[i, j + 1]] for i in range(nx - 1)
             for j in range(ny - 1)]
    faces += [[idx[i + 1, j], idx[i + 1, j + 1], idx[i, j + 1]] for i in range(nx - 1)
              for j in range(ny - 1)]
    return coords, np.array(faces, dtype=np.int32)


def _save_surface(path, coords, faces, structure="CortexLeft"):
    img = gifti.GiftiImage(meta=gifti.GiftiMetaData({"AnatomicalStructurePrimary": structure}))
    img.add_gifti_data_array(gifti.GiftiDataArray(coords, intent="NIFTI_INTENT_POINTSET"))
    img.add_gifti_data_array(gifti.GiftiDataArray(faces, intent="NIFTI_INTENT_TRIANGLE"))
    nib.save(img, str(path))


def _save_func(path, data):
    img = gifti.GiftiImage()
    for row in data.astype(np.float32):
        img.add_gifti_data_array(gifti.GiftiDataArray(row, intent="NIFTI_INTENT_NONE"))
    nib.save(img, str(path))


def _geodesic_neighbours(coords, faces, radius):
    dist = dijkstra(mesh_graph(coords.astype(np.float64), faces), directed=False)
    return [np.flatnonzero(row <= radius) for row in dist]


def test_gifti_geodesic_maps_equal_slow_loop(run_cli, files, rng):
    tmp, layers, _, _ = files
    coords, faces = _sheet(rng)
    data = rng.standard_normal((N, len(coords)))
    _save_surface(tmp / "lh.surf.gii", coords, faces)
    _save_func(tmp / "lh.func.gii", data)
    status, _, err = run_cli(main, "-act", tmp / "a.act.h5", "-nif", tmp / "lh.func.gii",
                             "-surf", tmp / "lh.surf.gii", "-distance", "geodesic",
                             "-radius", 4.5, "-out", tmp / "g", "-q")
    assert status == 0, err
    img = nib.load(str(tmp / "g/score.func.gii"))
    assert [d.meta["Name"] for d in img.darrays] == ["conv", "fc"]
    neighbours = _geodesic_neighbours(coords, faces, 4.5)
    patterns = data.astype(np.float32).astype(np.float64)
    for darray, (name, act) in zip(img.darrays, layers.items()):
        want = _slow_map(patterns, neighbours, pdist(act.reshape(N, -1), "correlation"),
                         stats.pearsonr)
        np.testing.assert_allclose(darray.data, want, rtol=0, atol=1e-6)
    counts = nib.load(str(tmp / "g/n_features.func.gii")).darrays[0].data
    np.testing.assert_array_equal(counts, [len(n) for n in neighbours])


def test_cifti_structure_surface(run_cli, files, rng):
    tmp, layers, _, _ = files
    coords, faces = _sheet(rng)
    nv = len(coords)
    keep = np.ones(nv, bool)
    keep[[0, 7]] = False                                   # medial wall: not in the file
    bm = (cifti2.BrainModelAxis.from_mask(keep, name="CortexLeft")
          + cifti2.BrainModelAxis.from_mask(np.ones(nv, bool), name="CortexRight"))
    data = rng.standard_normal((N, len(bm))).astype(np.float32)
    hdr = cifti2.Cifti2Header.from_axes((cifti2.ScalarAxis([f"s{i}" for i in range(N)]), bm))
    nib.save(cifti2.Cifti2Image(data, hdr), str(tmp / "d.dscalar.nii"))
    _save_surface(tmp / "lh.surf.gii", coords, faces)
    status, _, err = run_cli(main, "-act", tmp / "a.act.h5", "-nif", tmp / "d.dscalar.nii",
                             "-surf", tmp / "lh.surf.gii", "-radius", 3.0, "-layer", "fc",
                             "-out", tmp / "x", "-q")
    assert status == 0, err
    img = nib.load(str(tmp / "x/score.dscalar.nii"))
    out = np.asarray(img.dataobj)[0]
    left = bm.name == "CIFTI_STRUCTURE_CORTEX_LEFT"
    assert np.isnan(out[~left]).all() and np.isfinite(out[left]).all()
    assert list(img.header.get_axis(0).name) == ["fc"]
    vert = bm.vertex[left]                                   # Euclidean, among file vertices
    dist = np.linalg.norm(coords[vert][:, None].astype(float) - coords[vert][None], axis=-1)
    neighbours = [np.flatnonzero(row <= 3.0) for row in dist]
    want = _slow_map(data[:, left].astype(np.float64), neighbours,
                     pdist(layers["fc"], "correlation"), stats.pearsonr)
    np.testing.assert_allclose(out[left], want, rtol=0, atol=1e-6)


# -- bad input: one line, exit 2, nothing written ------------------------------------
def _refused(cli_error, tmp, *argv):
    msg = cli_error(main, "-act", tmp / "a.act.h5", *argv, "-out", tmp / "bad")
    assert not (tmp / "bad").exists()
    return msg


def test_surface_without_geometry_is_refused(cli_error, files, rng):
    tmp = files[0]
    coords, faces = _sheet(rng)
    _save_func(tmp / "lh.func.gii", rng.standard_normal((N, len(coords))))
    msg = _refused(cli_error, tmp, "-nif", tmp / "lh.func.gii", "-radius", 3)
    assert "without geometry" in msg and "-surf" in msg
    msg = _refused(cli_error, tmp, "-nif", tmp / "lh.func.gii", "-surf", tmp / "lh.func.gii",
                   "-radius", 3)
    assert "no surface geometry" in msg
    img = gifti.GiftiImage()
    img.add_gifti_data_array(gifti.GiftiDataArray(coords, intent="NIFTI_INTENT_POINTSET"))
    nib.save(img, str(tmp / "points.surf.gii"))
    msg = _refused(cli_error, tmp, "-nif", tmp / "lh.func.gii", "-surf",
                   tmp / "points.surf.gii", "-distance", "geodesic", "-radius", 3)
    assert "TRIANGLE" in msg
    _save_surface(tmp / "small.surf.gii", coords[:-1], faces[:2])
    msg = _refused(cli_error, tmp, "-nif", tmp / "lh.func.gii", "-surf",
                   tmp / "small.surf.gii", "-radius", 3)
    assert "29 vertices" in msg


@pytest.mark.parametrize("radius", ["0", "-2", "nan", "inf"])
def test_bad_radius_is_refused(cli_error, files, radius):
    tmp = files[0]
    msg = _refused(cli_error, tmp, "-nif", tmp / "bold.nii.gz", "-radius", radius)
    assert "radius" in msg or "finite" in msg


def test_mask_on_another_grid_is_refused(cli_error, files):
    tmp = files[0]
    msg = _refused(cli_error, tmp, "-nif", tmp / "bold.nii.gz", "-mask",
                   tmp / "other_grid.nii.gz", "-radius", 3)
    assert "not in the same space" in msg


def test_stimulus_count_mismatch_is_refused(cli_error, files):
    tmp = files[0]
    msg = _refused(cli_error, tmp, "-stim", tmp / "s.stim.csv", "-nif", tmp / "short.nii.gz",
                   "-radius", 3)
    assert "7 samples" in msg and "8 stimuli" in msg
    msg = _refused(cli_error, tmp, "-nif", tmp / "short.nii.gz", "-radius", 3)
    assert "7 samples" in msg


def test_volume_options_refused_on_volumes(cli_error, files):
    tmp = files[0]
    msg = _refused(cli_error, tmp, "-nif", tmp / "bold.nii.gz", "-radius", 3,
                   "-distance", "geodesic")
    assert "surfaces" in msg
    msg = _refused(cli_error, tmp, "-nif", tmp / "bold.nii.gz", "-radius", 3, "-min-voxels", 0)
    assert "-min-voxels" in msg


def test_existing_output_needs_force(run_cli, cli_error, files):
    tmp = files[0]
    args = ["-act", tmp / "a.act.h5", "-nif", tmp / "bold.nii.gz", "-radius", 3,
            "-out", tmp / "o", "-q"]
    assert run_cli(main, *args)[0] == 0
    before = (tmp / "o/score.nii.gz").read_bytes()
    assert "not empty" in cli_error(main, *args)
    assert run_cli(main, *args, "-force", "-method", "cosine")[0] == 0
    assert (tmp / "o/score.nii.gz").read_bytes() != before
