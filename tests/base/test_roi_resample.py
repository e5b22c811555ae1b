"""ROISet.resample_to / -resample-atlas against nilearn's resample_to_img and maskers."""
import warnings

import nibabel as nib
import numpy as np
import pytest
from nibabel import gifti

from dnnsparse.base.brain import BrainData
from dnnsparse.base.roi import ROISet, roi_signals
from dnnsparse.errors import InputError

nilearn_image = pytest.importorskip("nilearn.image")

ATLAS_AFFINE = np.array([[2.0, 0, 0, -9], [0, 2.2, 0, -10], [0, 0, 1.8, -6], [0, 0, 0, 1]])
# an oblique, finer, shifted grid of another shape
DATA_AFFINE = np.array([[1.5, 0.1, 0, -8], [0, 1.6, 0.05, -9], [0.04, 0, 1.4, -5],
                        [0, 0, 0, 1]])
ATLAS_SHAPE, DATA_SHAPE = (9, 10, 8), (12, 13, 10)


def blocks(shape, n_labels, rng):
    """A label image of large blobs (so that no label vanishes on another grid)."""
    coarse = rng.integers(0, n_labels + 1, (3, 3, 2))
    idx = [np.minimum(np.arange(s) * c // s, c - 1) for s, c in zip(shape, coarse.shape)]
    return coarse[np.ix_(*idx)]


@pytest.fixture
def files(tmp_path, rng):
    labels = blocks(ATLAS_SHAPE, 4, rng)
    img = nib.Nifti1Image(labels.astype(np.int16), ATLAS_AFFINE)
    img.header.set_xyzt_units("mm", "sec")
    nib.save(img, str(tmp_path / "atlas.nii.gz"))
    data = rng.standard_normal(DATA_SHAPE + (6,))
    nib.save(nib.Nifti1Image(data, DATA_AFFINE), str(tmp_path / "bold.nii.gz"))
    return tmp_path, labels, data


def nilearn_labels(atlas_path, data_path):
    out = nilearn_image.resample_to_img(nib.load(str(atlas_path)), nib.load(str(data_path)),
                                        interpolation="nearest", force_resample=True,
                                        copy_header=True)
    return np.asarray(out.dataobj)


def test_resampled_atlas_equals_nilearn(files):
    tmp, labels, _ = files
    brain = BrainData.load(tmp / "bold.nii.gz")
    rois = ROISet.from_atlas(tmp / "atlas.nii.gz", names={1: "V1", 3: "FFA"})
    moved = ROISet(rois.names, rois.members, rois.space, labels=rois.labels,
                   resample=True).to_space(brain.space)
    expected = nilearn_labels(tmp / "atlas.nii.gz", tmp / "bold.nii.gz")
    assert expected.shape == DATA_SHAPE and moved.space.full_shape == DATA_SHAPE
    # label table survives: names and labels as in the atlas
    assert moved.names == rois.names and moved.labels == rois.labels
    assert "V1" in moved.names and "FFA" in moved.names
    painted = moved.paint(np.array(moved.labels))
    np.testing.assert_array_equal(painted, expected.reshape(-1))
    assert set(np.unique(expected)) - {0} == set(moved.labels)
    # and resampling an atlas already on the grid changes nothing
    again = ROISet.from_atlas(tmp / "atlas.nii.gz")
    same = again.resample_to(again.space)
    assert all(np.array_equal(a, b) for a, b in zip(same.members, again.members))


def test_overlapping_masks_are_resampled_one_by_one(files, tmp_path):
    tmp, labels, _ = files
    paths = []
    for k, inside in enumerate([labels >= 1, labels >= 3], start=1):   # mask 2 inside 1
        paths.append(tmp / f"m{k}.nii.gz")
        nib.save(nib.Nifti1Image(inside.astype(np.uint8), ATLAS_AFFINE), str(paths[-1]))
    brain = BrainData.load(tmp / "bold.nii.gz")
    rois = ROISet.from_masks(paths)
    moved = ROISet(rois.names, rois.members, rois.space, resample=True).to_space(brain.space)
    for path, members in zip(paths, moved.members):
        expected = np.flatnonzero(nilearn_labels(path, tmp / "bold.nii.gz").reshape(-1))
        np.testing.assert_array_equal(members, expected)
    assert np.isin(moved.members[1], moved.members[0]).all()       # still overlapping


def test_signals_equal_nifti_labels_masker_resampling_to_data(files):
    from nilearn.maskers import NiftiLabelsMasker

    tmp, _, _ = files
    brain = BrainData.load(tmp / "bold.nii.gz")
    rois = ROISet.from_atlas(tmp / "atlas.nii.gz")
    rois = ROISet(rois.names, rois.members, rois.space, labels=rois.labels, resample=True)
    ours = roi_signals(brain, rois)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        masker = NiftiLabelsMasker(str(tmp / "atlas.nii.gz"), resampling_target="data")
        theirs = masker.fit_transform(str(tmp / "bold.nii.gz"))
    assert theirs.shape == ours.shape
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-12)


def test_without_resampling_the_error_names_the_option(files):
    tmp, _, _ = files
    brain = BrainData.load(tmp / "bold.nii.gz")
    with pytest.raises(InputError, match="not in the same space.*-resample-atlas"):
        roi_signals(brain, ROISet.from_atlas(tmp / "atlas.nii.gz"))


def test_surface_atlas_cannot_be_resampled(tmp_path, rng):
    lt = gifti.GiftiLabelTable()
    for key, name in [(0, "bg"), (1, "FFA")]:
        label = gifti.GiftiLabel(key)
        label.label = name
        lt.labels.append(label)
    img = gifti.GiftiImage(labeltable=lt, darrays=[gifti.GiftiDataArray(
        rng.integers(0, 2, 20).astype(np.int32), intent="NIFTI_INTENT_LABEL")])
    nib.save(img, str(tmp_path / "a.label.gii"))
    rois = ROISet.from_atlas(tmp_path / "a.label.gii")
    with pytest.raises(InputError, match="only volume atlases.*NIfTI/MGH.*can be resampled"):
        ROISet(rois.names, rois.members, rois.space, resample=True)
    vol = ROISet.from_label_array(np.array([0, 1, 1, 2] * 6), BrainData.load(
        _volume(tmp_path)).space)
    with pytest.raises(InputError, match="only volumes"):
        vol.resample_to(rois.space)


def _volume(tmp_path):
    nib.save(nib.Nifti1Image(np.zeros((2, 3, 4), np.float32), np.eye(4)),
             str(tmp_path / "v.nii.gz"))
    return tmp_path / "v.nii.gz"
