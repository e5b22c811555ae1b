"""Superpixel parcels of an image and what fills a removed parcel (``db_minstim``).

- :func:`segment` -- scikit-image superpixels (SLIC, Felzenszwalb, quick shift) as
  a label map with parcels numbered ``0 .. n_parcels - 1`` in order of first
  appearance (row-major), the same for every run with the same input and seed.
- :func:`fill_image` -- the image a removed parcel shows: the image's mean colour,
  a grey at the dataset mean, black (DNNBrain's ``MinimalParcelImage``), or a blurred
  copy of the image; ``uint8`` pixels, so what the network sees is a real image.

Defaults follow DNNBrain's ``MinimalParcelImage`` (``slic_decompose``: 250 segments,
compactness 10, sigma 1; ``felzenszwalb_decompose``: scale 100, sigma 0.5, min size
50; ``quickshift_decompose``: kernel 3, max distance 6, ratio 0.5), except SLIC's
number of segments (50 here): the greedy search costs about ``n_parcels ** 2 / 2``
forward passes.

Examples
--------
>>> img = np.zeros((20, 20, 3), np.uint8); img[:, 10:] = 255
>>> labels = segment(img, "felzenszwalb", scale=10, sigma=0, min_size=5)
>>> int(labels.max()) + 1, int(labels[0, 0]), int(labels[0, 19])
(2, 0, 1)
"""
import numpy as np

from ..errors import InputError
from ..utils.validation import check_choice, check_scalar

__all__ = ["FILLS", "SEGMENTATIONS", "fill_image", "relabel", "segment",
           "segmentation_params"]


def _slic(image, *, n_segments, compactness, sigma, seed):
    from skimage.segmentation import slic
    return slic(image, n_segments=n_segments, compactness=compactness, sigma=sigma,
                start_label=0, channel_axis=-1)


def _felzenszwalb(image, *, scale, sigma, min_size, seed):
    from skimage.segmentation import felzenszwalb
    return felzenszwalb(image, scale=scale, sigma=sigma, min_size=min_size, channel_axis=-1)


def _quickshift(image, *, kernel_size, max_dist, ratio, sigma, seed):
    from skimage.segmentation import quickshift
    # the seed breaks ties between equally dense neighbours (skimage's ``rng``)
    return quickshift(image, kernel_size=kernel_size, max_dist=max_dist, ratio=ratio,
                      sigma=sigma, rng=int(seed), channel_axis=-1)


#: name -> (function, its parameters with their defaults)
SEGMENTATIONS = {
    "slic": (_slic, {"n_segments": 50, "compactness": 10.0, "sigma": 1.0}),
    "felzenszwalb": (_felzenszwalb, {"scale": 100.0, "sigma": 0.5, "min_size": 50}),
    "quickshift": (_quickshift, {"kernel_size": 3.0, "max_dist": 6.0, "ratio": 0.5,
                                 "sigma": 0.0}),
}

# (kind, smallest value, whether the smallest value is allowed)
_CHECKS = {"n_segments": (int, 2, True), "compactness": (float, 0, False),
           "sigma": (float, 0, True), "scale": (float, 0, False), "min_size": (int, 1, True),
           "kernel_size": (float, 0, False), "max_dist": (float, 0, False),
           "ratio": (float, 0, True)}


def segmentation_params(method, **params):
    """The full, checked parameters of ``method``: its defaults updated by ``params``.

    Parameters given as None take the default. A parameter that ``method`` does not
    take is refused (naming the methods that take it), so that a mistyped command line
    does not silently run with the defaults.

    >>> segmentation_params("felzenszwalb", scale=50)
    {'scale': 50.0, 'sigma': 0.5, 'min_size': 50}
    """
    check_choice(method, SEGMENTATIONS, name="segmentation")
    defaults = SEGMENTATIONS[method][1]
    given = {k: v for k, v in params.items() if v is not None}
    foreign = [k for k in given if k not in defaults]
    if foreign:
        k = foreign[0]
        takes = [m for m, (_, d) in SEGMENTATIONS.items() if k in d]
        options = ", ".join("-" + p.replace("_", "-") for p in defaults)
        raise InputError(f"-{k.replace('_', '-')} is a parameter of "
                         f"{' and '.join(takes) or 'no segmentation'}, not of {method}; "
                         f"{method} takes {options}.")
    out = dict(defaults)
    for k, v in given.items():
        kind, low, include = _CHECKS[k]
        name = "-" + k.replace("_", "-")
        if kind is int:
            check_scalar(v, name=name, kind=(int, np.integer), min_val=low, include_min=include)
            out[k] = int(v)
        else:
            check_scalar(v, name=name, min_val=low, include_min=include)
            out[k] = float(v)
    return out


def relabel(labels):
    """Labels numbered from 0 to n - 1 in order of first appearance (row-major).

    >>> relabel(np.array([[7, 7, 3], [3, 9, 9]])).tolist()
    [[0, 0, 1], [1, 2, 2]]
    """
    labels = np.asarray(labels)
    _, first, inverse = np.unique(labels.ravel(), return_index=True, return_inverse=True)
    rank = np.empty(len(first), dtype=np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(len(first))
    return rank[inverse].reshape(labels.shape).astype(np.int32)


def segment(image, method="slic", *, seed=0, **params):
    """Superpixel label map of an RGB image.

    Parameters
    ----------
    image : ndarray of shape (H, W, 3), uint8
    method : {"slic", "felzenszwalb", "quickshift"}, default="slic"
    seed : int, default=0
        Seed of quick shift's tie-breaking (SLIC and Felzenszwalb are deterministic).
    **params
        The method's parameters (:data:`SEGMENTATIONS`; ``n_segments``, ``compactness``,
        ``sigma`` for SLIC; ``scale``, ``sigma``, ``min_size`` for Felzenszwalb;
        ``kernel_size``, ``max_dist``, ``ratio``, ``sigma`` for quick shift).

    Returns
    -------
    ndarray of shape (H, W), int32
        Parcel of each pixel, ``0 .. n_parcels - 1`` in order of first appearance.
    """
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3:
        raise InputError(f"segment needs an RGB image (H, W, 3); got shape {image.shape}.")
    params = segmentation_params(method, **params)
    check_scalar(seed, name="seed", kind=(int, np.integer))
    labels = SEGMENTATIONS[method][0](image, seed=seed, **params)
    return relabel(labels)


def _mean_colour(image, dataset_mean, sigma):
    return np.broadcast_to(image.reshape(-1, 3).mean(axis=0), image.shape)


def _grey(image, dataset_mean, sigma):
    if dataset_mean is None:
        raise InputError("fill 'grey' needs the dataset mean (the network's mean colour).")
    return np.broadcast_to(255 * np.asarray(dataset_mean, dtype=np.float64), image.shape)


def _black(image, dataset_mean, sigma):
    return np.zeros(image.shape)


def _blur(image, dataset_mean, sigma):
    from skimage.filters import gaussian
    return gaussian(image.astype(np.float64), sigma=sigma, channel_axis=-1,
                    preserve_range=True, mode="nearest")


#: What a removed parcel shows: "mean" (the image's own mean colour), "grey" (the
#: dataset mean, i.e. 0 for the network after normalisation, up to the rounding to whole
#: pixel levels), "black" (DNNBrain), "blur" (a Gaussian-blurred copy of the image).
FILLS = {"mean": _mean_colour, "grey": _grey, "black": _black, "blur": _blur}


def fill_image(image, kind="grey", *, dataset_mean=None, sigma=8.0):
    """The image that removed parcels show, ``uint8`` like the input.

    Parameters
    ----------
    image : ndarray of shape (H, W, 3), uint8
    kind : {"mean", "grey", "black", "blur"}, default="grey"
    dataset_mean : sequence of 3 floats, optional
        The network's mean colour in [0, 1] (ImageNet's for the zoo); needed by "grey".
    sigma : float, default=8.0
        Standard deviation (pixels) of the "blur" fill's Gaussian.

    Returns
    -------
    ndarray of shape (H, W, 3), uint8
        Rounded to whole pixel levels.

    Examples
    --------
    >>> img = np.full((2, 2, 3), 10, np.uint8); img[0, 0] = 30
    >>> fill_image(img, "mean")[1, 1].tolist()
    [15, 15, 15]
    """
    check_choice(kind, FILLS, name="fill")
    check_scalar(sigma, name="blur sigma", min_val=0, include_min=False)
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3:
        raise InputError(f"fill_image needs an RGB image (H, W, 3); got shape {image.shape}.")
    out = FILLS[kind](image, dataset_mean, sigma)
    return np.clip(np.round(out), 0, 255).astype(np.uint8)
