"""Brain image IO: files written by dnnsparse reload in nibabel unchanged.

Each format is written through our ``save_brain`` and read back with plain
nibabel (the independent reader), comparing data and geometry exactly.
"""
import nibabel as nib
import numpy as np
import pytest
from nibabel import cifti2, gifti

from dnnsparse.errors import FileFormatError, InputError, MissingFileError, OutputExistsError
from dnnsparse.io.brain import (CiftiSpace, GiftiSpace, VolumeSpace, brain_format,
                                load_brain, load_labels, save_brain, transfer_values)

SHAPE = (7, 8, 9)          # unequal sizes catch axis mix-ups


@pytest.fixture
def affine():
    aff = np.diag([2.0, 2.5, 3.0, 1.0])
    aff[:3, 3] = [-10.0, -20.0, 5.0]
    return aff


def brain_models(rng, affine):
    """A real BrainModelAxis: two surfaces (part of their vertices) + a voxel structure."""
    left = cifti2.BrainModelAxis.from_surface(np.arange(0, 40, 3), 41, "CortexLeft")
    right = cifti2.BrainModelAxis.from_surface(np.arange(5, 30), 32, "CortexRight")
    vox = cifti2.BrainModelAxis.from_mask(rng.random((4, 5, 6)) > 0.6, "thalamus_left", affine)
    return left + right + vox


def write_cifti(path, data, row_axis, bm, intent):
    img = cifti2.Cifti2Image(data, cifti2.Cifti2Header.from_axes((row_axis, bm)))
    img.nifti_header.set_intent(intent)
    nib.save(img, str(path))
    return path


@pytest.mark.parametrize("klass,suffix", [(nib.Nifti1Image, ".nii.gz"),
                                          (nib.Nifti2Image, ".nii"),
                                          (nib.MGHImage, ".mgz"),
                                          (nib.MGHImage, ".mgh")])
def test_volume_4d_roundtrip(tmp_path, rng, affine, klass, suffix):
    data4 = rng.standard_normal(SHAPE + (5,)).astype(np.float32)
    src = tmp_path / f"in{suffix}"
    nib.save(klass(data4, affine), str(src))
    data, space = load_brain(src)
    assert isinstance(space, VolumeSpace) and space.image_class is klass
    assert data.shape == (5, np.prod(SHAPE)) and data.dtype == np.float32
    # sample i is volume i, features in C order of the grid
    np.testing.assert_array_equal(data[3], data4[..., 3].ravel())

    out = tmp_path / f"out{suffix}"
    save_brain(out, data[1:4], space)
    back = nib.load(str(out))
    assert type(back) is klass
    np.testing.assert_array_equal(back.get_fdata(dtype=np.float32), data4[..., 1:4])
    np.testing.assert_allclose(back.affine, affine, atol=1e-6)
    if klass is not nib.MGHImage:
        assert back.header.get_zooms()[:3] == (2.0, 2.5, 3.0)


def test_volume_3d_is_one_sample_and_mask(tmp_path, rng, affine):
    vol = rng.standard_normal(SHAPE)            # float64 stays float64
    nib.save(nib.Nifti1Image(vol, affine), str(tmp_path / "v.nii.gz"))
    mask = rng.random(SHAPE) > 0.5
    nib.save(nib.Nifti1Image(mask.astype(np.uint8), affine), str(tmp_path / "m.nii.gz"))
    data, space = load_brain(tmp_path / "v.nii.gz", mask=tmp_path / "m.nii.gz")
    assert data.shape == (1, mask.sum()) and data.dtype == np.float64
    np.testing.assert_array_equal(data[0], vol[mask])
    # writing back: voxels outside the mask get the fill value
    save_brain(tmp_path / "w.nii.gz", data[0], space, fill=-1, dtype=np.float64)
    back = nib.load(str(tmp_path / "w.nii.gz")).get_fdata()
    np.testing.assert_array_equal(back[mask], vol[mask])
    assert (back[~mask] == -1).all()


def test_nifti2_header_kept(tmp_path, rng, affine):
    img = nib.Nifti2Image(rng.standard_normal(SHAPE + (2,)).astype(np.float32), affine)
    img.header.set_xyzt_units("mm", "sec")
    nib.save(img, str(tmp_path / "a.nii"))
    data, space = load_brain(tmp_path / "a.nii")
    save_brain(tmp_path / "label.nii", (data[0] > 0).astype(int), space,
               label_table={1: "pos"})
    back = nib.load(str(tmp_path / "label.nii"))
    assert isinstance(back, nib.Nifti2Image)
    assert back.header.get_xyzt_units() == ("mm", "sec")
    assert back.get_data_dtype() == np.int32
    assert back.header.get_intent()[0] == "label"
    np.testing.assert_array_equal(back.get_fdata().ravel(), (data[0] > 0))


def test_scaled_nifti_reads_scaled_values(tmp_path, affine):
    raw = np.arange(np.prod(SHAPE), dtype=np.int16).reshape(SHAPE)
    img = nib.Nifti1Image(raw, affine)
    img.header.set_slope_inter(0.5, 10.0)
    nib.save(img, str(tmp_path / "s.nii"))
    data, _ = load_brain(tmp_path / "s.nii")
    np.testing.assert_allclose(data[0], raw.ravel() * 0.5 + 10.0)


@pytest.mark.parametrize("suffix,axis,intent", [
    (".dscalar.nii", lambda n: cifti2.ScalarAxis([f"m{i}" for i in range(n)]), "ConnDenseScalar"),
    (".dtseries.nii", lambda n: cifti2.SeriesAxis(2.0, 0.8, n), "ConnDenseSeries"),
])
def test_cifti_roundtrip(tmp_path, rng, affine, suffix, axis, intent):
    bm = brain_models(rng, affine)
    values = rng.standard_normal((4, len(bm))).astype(np.float32)
    src = write_cifti(tmp_path / f"in{suffix}", values, axis(4), bm, intent)
    data, space = load_brain(src)
    assert isinstance(space, CiftiSpace)
    np.testing.assert_array_equal(data, values)

    out = tmp_path / f"out{suffix}"
    save_brain(out, data[:3], space, names=["a", "b", "c"])
    back = nib.load(str(out))
    assert back.nifti_header.get_intent()[0] == intent
    np.testing.assert_array_equal(back.get_fdata(dtype=np.float32), values[:3])
    rows, cols = back.header.get_axis(0), back.header.get_axis(1)
    assert cols == bm                                   # identical geometry
    np.testing.assert_allclose(cols.affine, affine)
    assert cols.nvertices == {"CIFTI_STRUCTURE_CORTEX_LEFT": 41,
                              "CIFTI_STRUCTURE_CORTEX_RIGHT": 32}
    if suffix == ".dscalar.nii":
        assert list(rows.name) == ["a", "b", "c"]
    else:
        assert (rows.start, rows.step, rows.size) == (2.0, 0.8, 3)


def test_cifti_dlabel_roundtrip(tmp_path, rng, affine):
    bm = brain_models(rng, affine)
    labels = rng.integers(0, 4, len(bm))
    table = {0: ("???", (0, 0, 0, 0)), 1: ("V1", (1, 0, 0, 1)), 2: ("V2", (0, 1, 0, 1)),
             3: ("FFC", (0, 0, 1, 1))}
    src = write_cifti(tmp_path / "atlas.dlabel.nii", labels[None].astype(np.float32),
                      cifti2.LabelAxis(["parc"], table), bm, "ConnDenseLabel")
    got, names, space = load_labels(src)
    np.testing.assert_array_equal(got, labels)
    assert names == {0: "???", 1: "V1", 2: "V2", 3: "FFC"}

    # dnnsparse writes a dlabel map (e.g. best-layer index) with its own table
    save_brain(tmp_path / "best.dlabel.nii", labels, space, names=["best"],
               label_table={1: "conv1", 2: "conv2"})
    back = nib.load(str(tmp_path / "best.dlabel.nii"))
    rows = back.header.get_axis(0)
    assert isinstance(rows, cifti2.LabelAxis) and back.header.get_axis(1) == bm
    assert back.nifti_header.get_intent()[0] == "ConnDenseLabel"
    assert {k: v[0] for k, v in rows.label[0].items()} == {0: "???", 1: "conv1",
                                                           2: "conv2", 3: "3"}
    np.testing.assert_array_equal(np.asanyarray(back.dataobj)[0], labels)


def test_cifti_subset_brain_models_match_by_location(tmp_path, rng, affine):
    """A cortex-only file maps onto full data by structure + vertex."""
    bm = brain_models(rng, affine)
    cortex = bm[: 14 + 25]                    # the two surfaces only
    data = rng.standard_normal((1, len(bm))).astype(np.float32)
    write_cifti(tmp_path / "full.dscalar.nii", data, cifti2.ScalarAxis(["x"]), bm,
                "ConnDenseScalar")
    write_cifti(tmp_path / "ctx.dscalar.nii", data[:, :39][:, ::-1].copy(),
                cifti2.ScalarAxis(["x"]), cortex[::-1], "ConnDenseScalar")
    full, full_space = load_brain(tmp_path / "full.dscalar.nii")
    ctx, ctx_space = load_brain(tmp_path / "ctx.dscalar.nii")
    moved = transfer_values(ctx, ctx_space, full_space, fill=np.nan)
    np.testing.assert_array_equal(moved[0, :39], full[0, :39])
    assert np.isnan(moved[0, 39:]).all()


def test_gifti_func_and_label_roundtrip(tmp_path, rng):
    n_vert = 37
    meta = {"AnatomicalStructurePrimary": "CortexLeft"}
    img = gifti.GiftiImage(meta=gifti.GiftiMetaData(meta))
    samples = rng.standard_normal((3, n_vert)).astype(np.float32)
    for i, row in enumerate(samples):
        img.add_gifti_data_array(gifti.GiftiDataArray(row, intent="NIFTI_INTENT_SHAPE",
                                                      meta={"Name": f"s{i}"}))
    nib.save(img, str(tmp_path / "in.func.gii"))
    data, space = load_brain(tmp_path / "in.func.gii")
    assert isinstance(space, GiftiSpace) and space.n_vertices == n_vert
    np.testing.assert_array_equal(data, samples)
    assert space.map_names == ["s0", "s1", "s2"]

    save_brain(tmp_path / "out.func.gii", data[::-1], space, names=["c", "b", "a"])
    back = nib.load(str(tmp_path / "out.func.gii"))
    np.testing.assert_array_equal(np.stack([d.data for d in back.darrays]), samples[::-1])
    assert [d.meta["Name"] for d in back.darrays] == ["c", "b", "a"]
    assert dict(back.meta) == meta

    labels = rng.integers(0, 3, n_vert)
    save_brain(tmp_path / "lab.label.gii", labels, space, label_table={1: "V1", 2: "V2"})
    back = nib.load(str(tmp_path / "lab.label.gii"))
    assert back.darrays[0].intent == nib.nifti1.intent_codes["NIFTI_INTENT_LABEL"]
    np.testing.assert_array_equal(back.darrays[0].data, labels)
    assert back.labeltable.get_labels_as_dict() == {0: "???", 1: "V1", 2: "V2"}
    got, names, _ = load_labels(tmp_path / "lab.label.gii")
    np.testing.assert_array_equal(got, labels)
    assert names == {0: "???", 1: "V1", 2: "V2"}


def test_gifti_single_2d_array(tmp_path, rng):
    arr = rng.standard_normal((20, 4)).astype(np.float32)       # (n_vertices, n_samples)
    img = gifti.GiftiImage(darrays=[gifti.GiftiDataArray(arr)])
    nib.save(img, str(tmp_path / "ts.func.gii"))
    data, _ = load_brain(tmp_path / "ts.func.gii")
    np.testing.assert_array_equal(data, arr.T)


def test_gifti_surface_geometry_refused(tmp_path, rng):
    coords = gifti.GiftiDataArray(rng.random((5, 3)).astype(np.float32),
                                  intent="NIFTI_INTENT_POINTSET")
    nib.save(gifti.GiftiImage(darrays=[coords]), str(tmp_path / "lh.surf.gii"))
    with pytest.raises(FileFormatError, match="geometry"):
        load_brain(tmp_path / "lh.surf.gii")


def test_grid_mismatch_names_both_files(tmp_path, rng, affine):
    nib.save(nib.Nifti1Image(np.ones(SHAPE, np.float32), affine), str(tmp_path / "d.nii.gz"))
    nib.save(nib.Nifti1Image(np.ones((7, 8, 10), np.uint8), affine), str(tmp_path / "m.nii.gz"))
    shifted = affine.copy()
    shifted[0, 3] += 2
    nib.save(nib.Nifti1Image(np.ones(SHAPE, np.uint8), shifted), str(tmp_path / "s.nii.gz"))
    with pytest.raises(InputError, match=r"d\.nii\.gz.*m\.nii\.gz|m\.nii\.gz.*d\.nii\.gz"):
        load_brain(tmp_path / "d.nii.gz", mask=tmp_path / "m.nii.gz")
    with pytest.raises(InputError, match="affine"):
        load_brain(tmp_path / "d.nii.gz", mask=tmp_path / "s.nii.gz")


def test_cifti_mismatch_and_kind_mismatch(tmp_path, rng, affine):
    bm = brain_models(rng, affine)
    other = cifti2.BrainModelAxis.from_surface(np.arange(10), 50, "CortexLeft")
    write_cifti(tmp_path / "a.dscalar.nii", np.ones((1, len(bm)), np.float32),
                cifti2.ScalarAxis(["x"]), bm, "ConnDenseScalar")
    write_cifti(tmp_path / "b.dscalar.nii", np.ones((1, 10), np.float32),
                cifti2.ScalarAxis(["x"]), other, "ConnDenseScalar")
    _, a = load_brain(tmp_path / "a.dscalar.nii")
    _, b = load_brain(tmp_path / "b.dscalar.nii")
    with pytest.raises(InputError, match="CORTEX_LEFT has 50 vs 41 vertices"):
        b.map_features(a)
    nib.save(nib.Nifti1Image(np.ones(SHAPE, np.float32), affine), str(tmp_path / "v.nii"))
    _, v = load_brain(tmp_path / "v.nii")
    with pytest.raises(InputError, match="cifti data cannot be matched with volume"):
        a.map_features(v)


def test_write_errors(tmp_path, rng, affine):
    nib.save(nib.Nifti1Image(np.ones(SHAPE, np.float32), affine), str(tmp_path / "v.nii"))
    data, space = load_brain(tmp_path / "v.nii")
    with pytest.raises(InputError, match="cannot write volume data"):
        save_brain(tmp_path / "x.dscalar.nii", data, space)
    with pytest.raises(InputError, match="expected"):
        save_brain(tmp_path / "x.nii", data[:, :5], space)
    save_brain(tmp_path / "x.nii", data, space)
    with pytest.raises(OutputExistsError):
        save_brain(tmp_path / "x.nii", data, space)
    save_brain(tmp_path / "x.nii", data * 2, space, force=True)
    assert nib.load(str(tmp_path / "x.nii")).get_fdata().max() == 2
    assert not list(tmp_path.glob(".partial*"))


def test_read_errors(tmp_path):
    with pytest.raises(MissingFileError):
        load_brain(tmp_path / "none.nii.gz")
    (tmp_path / "bad.nii.gz").write_bytes(b"not an image")
    with pytest.raises(FileFormatError, match="bad.nii.gz"):
        load_brain(tmp_path / "bad.nii.gz")
    (tmp_path / "x.png").write_bytes(b"x")
    with pytest.raises(FileFormatError, match="unknown brain image type"):
        load_brain(tmp_path / "x.png")
    assert brain_format("A.DSCALAR.NII") == ".dscalar.nii"


def test_non_integer_atlas_refused(tmp_path, rng, affine):
    nib.save(nib.Nifti1Image(rng.random(SHAPE), affine), str(tmp_path / "a.nii.gz"))
    with pytest.raises(FileFormatError, match="integer"):
        load_labels(tmp_path / "a.nii.gz")


@pytest.mark.parametrize("klass,suffix", [(nib.Nifti1Image, ".nii.gz"),
                                          (nib.Nifti2Image, ".nii")])
def test_map_display_range_and_description_are_its_own(tmp_path, rng, affine, klass, suffix):
    # a BOLD-like source: display range 0..1000 and a scanner description
    bold = rng.integers(200, 1000, SHAPE + (3,)).astype(np.int16)
    src = klass(bold, affine)
    src.header["cal_min"], src.header["cal_max"] = 0, 1000
    src.header["descrip"] = b"BOLD run 1, TR 2 s"
    nib.save(src, str(tmp_path / f"bold{suffix}"))
    mask = rng.random(SHAPE) > 0.3
    data, space = load_brain(tmp_path / f"bold{suffix}", mask=mask)
    r = np.tanh(rng.standard_normal(data.shape[1])).astype(np.float32) * 0.9
    save_brain(tmp_path / f"r{suffix}", r, space, names=["conv5_relu"], fill=np.nan)
    back = nib.load(str(tmp_path / f"r{suffix}"))
    written = back.get_fdata()
    assert np.isnan(written[~mask]).all()
    assert back.header["cal_min"] == np.float32(np.nanmin(written)) == r.min()
    assert back.header["cal_max"] == np.float32(np.nanmax(written)) == r.max()
    assert back.header["descrip"].item() == b"dnnsparse: conv5_relu"
    # two maps, no names: the range covers both, no description; the source's geometry stays
    two = np.stack([r, 2 * r - 3])
    save_brain(tmp_path / f"two{suffix}", two, space)
    back = nib.load(str(tmp_path / f"two{suffix}"))
    written = back.get_fdata()
    assert (back.header["cal_min"], back.header["cal_max"]) == (
        np.float32(written.min()), np.float32(written.max()))
    assert written.min() == (2 * r - 3).min() and written.max() == max(r.max(), 0)  # fill 0
    assert back.header["descrip"].item() == b""
    np.testing.assert_allclose(back.affine, affine, atol=1e-6)
    # nothing finite: no range (0, 0), as viewers read "compute it yourself"
    save_brain(tmp_path / f"nan{suffix}", np.full(data.shape[1], np.nan), space,
               fill=np.nan)
    back = nib.load(str(tmp_path / f"nan{suffix}"))
    assert (back.header["cal_min"], back.header["cal_max"]) == (0, 0)
    # a long list of names is cut to the 80 characters NIfTI has
    save_brain(tmp_path / f"long{suffix}", np.stack([r] * 20), space,
               names=[f"block{i}_relu" for i in range(20)])
    descrip = nib.load(str(tmp_path / f"long{suffix}")).header["descrip"].item()
    assert len(descrip) == 80 and descrip.startswith(b"dnnsparse: block0_relu, ")
    assert descrip.endswith(b"...")


def test_cifti_map_does_not_inherit_display_range(tmp_path, rng, affine):
    bm = brain_models(rng, affine)
    src = cifti2.Cifti2Image(rng.integers(200, 1000, (3, len(bm))).astype(np.float32),
                             cifti2.Cifti2Header.from_axes((cifti2.SeriesAxis(0, 2, 3), bm)))
    src.nifti_header.set_intent("ConnDenseSeries")
    src.nifti_header["cal_max"], src.nifti_header["descrip"] = 1000, b"BOLD"
    nib.save(src, str(tmp_path / "bold.dtseries.nii"))
    data, space = load_brain(tmp_path / "bold.dtseries.nii")
    save_brain(tmp_path / "r.dscalar.nii", data[0] / 1000, space, names=["r"])
    back = nib.load(str(tmp_path / "r.dscalar.nii"))
    # the CIFTI writer builds a new header: the source's range and text do not come along
    assert back.nifti_header["cal_max"] == 0 and back.nifti_header["descrip"].item() == b""
