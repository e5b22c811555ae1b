"""Superpixel parcels and fills: equal to scikit-image / SciPy called directly, numbered
0..n-1 in order of first appearance, seeded, and bad parameters refused."""
import numpy as np
import pytest
from scipy import ndimage
from skimage import segmentation as sks

from dnnsparse.algo.segmentation import (SEGMENTATIONS, fill_image, relabel, segment,
                                         segmentation_params)
from dnnsparse.errors import InputError


def _image(seed=0, size=(40, 48)):
    rng = np.random.default_rng(seed)
    img = np.zeros(size + (3,), np.uint8)
    for _ in range(7):
        r, c = rng.integers(0, size[0] - 8, 2)
        img[r:r + rng.integers(8, 20), c:c + rng.integers(8, 20)] = rng.integers(0, 256, 3)
    noise = rng.integers(-10, 11, img.shape)
    return np.clip(img.astype(int) + noise, 0, 255).astype(np.uint8)


def _same_partition(a, b):
    """a and b split the pixels identically (a bijection between their labels)."""
    pairs = set(zip(a.ravel().tolist(), b.ravel().tolist()))
    return len(pairs) == len(np.unique(a)) == len(np.unique(b))


def _first_appearance_order(labels):
    flat = labels.ravel()
    _, first = np.unique(flat, return_index=True)
    return flat[np.sort(first)].tolist()


@pytest.mark.parametrize("method, direct", [
    ("slic", lambda im: sks.slic(im, n_segments=50, compactness=10, sigma=1, start_label=0)),
    ("felzenszwalb", lambda im: sks.felzenszwalb(im, scale=100, sigma=0.5, min_size=50)),
    ("quickshift", lambda im: sks.quickshift(im, kernel_size=3, max_dist=6, ratio=0.5,
                                             rng=0)),
])
def test_segment_equals_skimage_with_dnnbrain_defaults(method, direct):
    img = _image()
    labels = segment(img, method)
    ref = direct(img)
    assert labels.shape == img.shape[:2] and labels.dtype == np.int32
    assert _same_partition(labels, ref)
    n = labels.max() + 1
    assert n >= 2 and set(np.unique(labels)) == set(range(n))
    assert _first_appearance_order(labels) == list(range(n))


def test_parameters_reach_skimage():
    img = _image(1)
    assert _same_partition(segment(img, "slic", n_segments=8, compactness=3, sigma=0),
                           sks.slic(img, n_segments=8, compactness=3, sigma=0))
    assert _same_partition(segment(img, "felzenszwalb", scale=20, min_size=10, sigma=0.2),
                           sks.felzenszwalb(img, scale=20, min_size=10, sigma=0.2))
    few = segment(img, "quickshift", max_dist=20, kernel_size=5)
    many = segment(img, "quickshift", max_dist=2, kernel_size=2)
    assert few.max() < many.max()


def test_quickshift_is_seeded():
    img = _image(2)
    a = segment(img, "quickshift", kernel_size=2, max_dist=4, seed=3)
    assert np.array_equal(a, segment(img, "quickshift", kernel_size=2, max_dist=4, seed=3))
    assert _same_partition(a, sks.quickshift(img, kernel_size=2, max_dist=4, ratio=0.5,
                                             rng=3))


def test_relabel():
    labels = np.array([[5, 5, 2], [9, 2, 0]])
    assert relabel(labels).tolist() == [[0, 0, 1], [2, 1, 3]]
    assert relabel(relabel(labels)).tolist() == relabel(labels).tolist()


def test_params_defaults_and_refusals():
    assert segmentation_params("slic") == SEGMENTATIONS["slic"][1]
    assert segmentation_params("slic", n_segments=9, sigma=None)["n_segments"] == 9
    with pytest.raises(InputError, match="-scale is a parameter of felzenszwalb, not of slic"):
        segmentation_params("slic", scale=4)
    with pytest.raises(InputError, match="-ratio is a parameter of quickshift"):
        segmentation_params("felzenszwalb", ratio=0.1)
    with pytest.raises(InputError, match="n-segments"):
        segmentation_params("slic", n_segments=1)
    with pytest.raises(InputError, match="max-dist"):
        segmentation_params("quickshift", max_dist=0.0)
    with pytest.raises(InputError, match="sigma"):
        segmentation_params("slic", sigma=float("nan"))
    with pytest.raises(InputError, match="segmentation"):
        segmentation_params("watershed")
    with pytest.raises(InputError, match="RGB"):
        segment(np.zeros((5, 5)), "slic")


def test_fills():
    img = _image(3)
    mean = fill_image(img, "mean")
    assert np.all(mean == np.round(img.reshape(-1, 3).mean(axis=0)).astype(np.uint8))
    grey = fill_image(img, "grey", dataset_mean=(0.485, 0.456, 0.406))
    assert grey[0, 0].tolist() == [124, 116, 104] and np.all(grey == grey[0, 0])
    assert not fill_image(img, "black").any()
    blur = fill_image(img, "blur", sigma=2.5)
    ref = ndimage.gaussian_filter(img.astype(np.float64), sigma=(2.5, 2.5, 0), mode="nearest",
                                  truncate=4.0)
    np.testing.assert_array_equal(blur, np.clip(np.round(ref), 0, 255).astype(np.uint8))
    assert blur.dtype == np.uint8 and blur.shape == img.shape
    with pytest.raises(InputError, match="dataset mean"):
        fill_image(img, "grey")
    with pytest.raises(InputError, match="fill"):
        fill_image(img, "noise")
    with pytest.raises(InputError, match="blur sigma"):
        fill_image(img, "blur", sigma=0)
