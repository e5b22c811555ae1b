"""Shape-versus-texture bias on cue-conflict images, and plain accuracy.

Shape bias follows Geirhos et al. (ICLR 2019) as computed by the
model-vs-human benchmark: each cue-conflict image has the shape of one of 16
entry-level categories and the texture of another. A network's ImageNet-1k
softmax probabilities are averaged within each category's ImageNet classes
(:func:`probabilities_to_16`), and the category with the largest average is the
decision. Images whose shape and texture category coincide carry no conflict
and are left out. Then::

    shape bias = shape decisions / (shape decisions + texture decisions)

The 16 categories, in the fixed (alphabetical) order used for every
``(n, 16)`` array here, are :data:`CATEGORIES`; their ImageNet class indices
ship with the package (``dnnsparse/data/imagenet16-categories.json``).
"""
import json
import numbers
import os
import re
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from importlib import resources
from types import MappingProxyType

import numpy as np

from ..errors import InputError
from ..utils.validation import (check_array, check_consistent_length, check_random_state,
                                check_scalar)

__all__ = ["CATEGORIES", "ShapeBiasResult", "check_category_names", "cue_conflict_shape_bias",
           "decision_accuracy", "decisions_16", "imagenet16_categories", "imagenet_accuracy",
           "label_ranks", "parse_cue_conflict_name", "probabilities_to_16"]

_CATEGORY_FILE = "imagenet16-categories.json"
_BOOT_CHUNK = 1000   # bootstrap replicates drawn at once (bounds memory)


@lru_cache(maxsize=None)
def imagenet16_categories():
    """The 16 entry-level categories and their ImageNet-1k class indices.

    Returns
    -------
    mapping of str to tuple of int
        Read-only, in alphabetical order of the category names.

    Examples
    --------
    >>> imagenet16_categories()["airplane"]
    (404,)
    """
    text = resources.files("dnnsparse").joinpath("data", _CATEGORY_FILE).read_text()
    raw = json.loads(text)
    return MappingProxyType({name: tuple(int(i) for i in raw[name]) for name in sorted(raw)})


CATEGORIES = tuple(imagenet16_categories())
"""The 16 category names in the column order of ``(n, 16)`` arrays."""


def _to_numpy(x):
    """Accept torch tensors (any device, with grad) without importing torch."""
    if hasattr(x, "detach") and hasattr(x, "cpu"):
        return x.detach().cpu().numpy()
    return x


# ------------------------------------------------------------------- decisions
def probabilities_to_16(probs):
    """Average ImageNet-1k probabilities within each of the 16 categories.

    Parameters
    ----------
    probs : array-like of shape (n_images, 1000)
        Softmax probabilities (not logits: averaging logits gives other decisions).

    Returns
    -------
    numpy.ndarray of shape (n_images, 16), float64
        Columns in the order of :data:`CATEGORIES`.

    Examples
    --------
    >>> p = np.full((1, 1000), 1e-4); p[0, 404] = 0.9
    >>> CATEGORIES[int(probabilities_to_16(p).argmax())]
    'airplane'
    """
    probs = check_array(_to_numpy(probs), name="probabilities", ndim=2)
    if probs.shape[1] != 1000:
        raise InputError(f"probabilities must have 1000 columns (ImageNet-1k classes); "
                         f"got shape {probs.shape}.")
    if probs.min() < -1e-6 or probs.max() > 1 + 1e-6:
        raise InputError(f"probabilities must lie in [0, 1]; got values in "
                         f"[{probs.min():.3g}, {probs.max():.3g}]. Apply a softmax to logits "
                         f"first (e.g. scipy.special.softmax(logits, axis=1)).")
    # a loop over 16 categories, not over units: np.mean per category, as the benchmark
    return np.stack([probs[:, idx].mean(axis=1)
                     for idx in imagenet16_categories().values()], axis=1)


def decisions_16(scores):
    """16-category decisions: the category with the largest (averaged) probability.

    Parameters
    ----------
    scores : array-like of shape (n_images, 1000) or (n_images, 16)
        ImageNet-1k softmax probabilities (averaged with
        :func:`probabilities_to_16`) or scores already in the 16 categories
        (columns in the order of :data:`CATEGORIES`).

    Returns
    -------
    numpy.ndarray of str, shape (n_images,)
        Ties go to the category earlier in :data:`CATEGORIES`.

    Examples
    --------
    >>> decisions_16(np.eye(16)[[3, 10]]).tolist()
    ['bird', 'dog']
    """
    scores = check_array(_to_numpy(scores), name="scores", ndim=2)
    if scores.shape[1] == 1000:
        scores = probabilities_to_16(scores)
    elif scores.shape[1] != len(CATEGORIES):
        raise InputError(f"scores must have 1000 (ImageNet) or 16 (categories) columns; got "
                         f"shape {scores.shape}.")
    return np.asarray(CATEGORIES)[scores.argmax(axis=1)]


def _as_decisions(decisions):
    """Category names from names, (n, 1000) probabilities or (n, 16) scores."""
    arr = np.asarray(_to_numpy(decisions))
    if arr.ndim == 2:
        return decisions_16(arr)
    return check_category_names(arr, "decisions")


def check_category_names(names, what):
    """Names of the 16 categories, cleaned (stripped, lower case) and checked.

    ``what`` names the input in the error message, which gives the first row that
    is not a category.

    >>> check_category_names([" Cat", "dog"], "decisions").tolist()
    ['cat', 'dog']
    """
    names = np.asarray(names, dtype=object)
    if names.ndim != 1:
        raise InputError(f"{what} must be a 1-D sequence of category names; got shape "
                         f"{names.shape}.")
    cleaned = np.array([str(n).strip().lower() for n in names], dtype=object)
    bad = np.flatnonzero(~np.isin(cleaned, CATEGORIES))
    if bad.size:
        raise InputError(f"{what}: {bad.size} name(s) are not one of the 16 categories, first "
                         f"at row {bad[0]}: {names[bad[0]]!r}; use one of "
                         f"{', '.join(CATEGORIES)}.")
    return cleaned.astype(str)


_PART = re.compile(r"^([a-z]+)\d*$")


def parse_cue_conflict_name(name):
    """Shape and texture category from a cue-conflict image name.

    The benchmark's names are ``<shape><n>-<texture><m>.png``; a directory and a
    prefix ending in ``_`` (as in the benchmark's result files) are ignored.

    Parameters
    ----------
    name : str or path

    Returns
    -------
    (shape, texture) : tuple of str

    Examples
    --------
    >>> parse_cue_conflict_name("stimuli/cat/cat3-elephant1.png")
    ('cat', 'elephant')
    """
    stem = os.path.splitext(os.path.basename(str(name)))[0].split("_")[-1].lower()
    parts = stem.split("-")
    matches = [_PART.match(p) for p in parts]
    if len(parts) != 2 or not all(matches):
        raise InputError(f"Cannot read shape and texture from image name {str(name)!r}; "
                         f"expected '<shape><n>-<texture><m>.png', e.g. 'cat3-elephant1.png'.")
    shape, texture = (m.group(1) for m in matches)
    for cat in (shape, texture):
        if cat not in CATEGORIES:
            raise InputError(f"Image name {str(name)!r}: {cat!r} is not one of the 16 "
                             f"categories ({', '.join(CATEGORIES)}).")
    return shape, texture


# ------------------------------------------------------------------ shape bias
@dataclass(frozen=True)
class ShapeBiasResult:
    """Outcome of :func:`cue_conflict_shape_bias`.

    Attributes
    ----------
    shape_bias : float
        Shape decisions / (shape + texture decisions); NaN when there are none.
    ci_low, ci_high : float
        Percentile bootstrap confidence interval of ``shape_bias`` (images
        resampled with replacement); NaN when ``n_boot=0``.
    confidence : float
    n_boot : int
    n_images : int
        Rows given.
    n_excluded : int
        Rows whose shape and texture category coincide (left out).
    n_conflict : int
        Cue-conflict rows used: ``n_images - n_excluded``.
    n_shape, n_texture : int
        Decisions for the shape category, for the texture category.
    shape_or_texture_fraction : float
        ``(n_shape + n_texture) / n_conflict``: how often the decision was
        either cue at all. (model-vs-human's "fraction correct" values divide
        by all rows instead; the shape bias is the same either way.)
    per_category : dict
        Column table by shape category (all 16, in :data:`CATEGORIES` order):
        ``category, n_conflict, n_shape, n_texture, shape_bias,
        shape_or_texture_fraction``; ready for ``dnnsparse.io.table.write_table``.
    """

    shape_bias: float
    ci_low: float
    ci_high: float
    confidence: float
    n_boot: int
    n_images: int
    n_excluded: int
    n_conflict: int
    n_shape: int
    n_texture: int
    shape_or_texture_fraction: float
    per_category: dict = field(repr=False)

    def summary(self):
        """The scalar fields as one table row (a dict)."""
        row = asdict(self)
        row.pop("per_category")
        return row


def _ratio(num, den):
    """num / den as float64, NaN where den is 0 (no warning)."""
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    out = np.full(np.broadcast(num, den).shape, np.nan)
    np.divide(num, den, out=out, where=den > 0)
    return out


def _bootstrap(is_shape, is_texture, n_boot, confidence, rng):
    """Percentile CI of the shape bias, resampling images with replacement."""
    n = is_shape.size
    if n_boot == 0 or n == 0:
        return np.nan, np.nan
    shape_i = is_shape.astype(np.int64)
    texture_i = is_texture.astype(np.int64)
    stats = np.empty(n_boot)
    for start in range(0, n_boot, _BOOT_CHUNK):
        stop = min(start + _BOOT_CHUNK, n_boot)
        idx = rng.integers(0, n, size=(stop - start, n))     # (replicates, images)
        s, t = shape_i[idx].sum(axis=1), texture_i[idx].sum(axis=1)
        stats[start:stop] = _ratio(s, s + t)
    if np.isnan(stats).all():
        return np.nan, np.nan
    alpha = (1 - confidence) / 2
    low, high = np.nanquantile(stats, [alpha, 1 - alpha])
    return float(low), float(high)


def cue_conflict_shape_bias(decisions, *, shape=None, texture=None, image_names=None,
                            n_boot=1000, confidence=0.95, seed=0):
    """Shape bias of a network's decisions on cue-conflict images.

    Parameters
    ----------
    decisions : array-like
        One entry per image: category names ``(n,)``, ImageNet-1k softmax
        probabilities ``(n, 1000)`` or 16-category scores ``(n, 16)`` (see
        :func:`decisions_16`).
    shape, texture : sequence of str, optional
        Each image's shape and texture category (e.g. stimulus-table columns).
    image_names : sequence of str, optional
        Instead of ``shape``/``texture``: names ``<shape><n>-<texture><m>.png``.
    n_boot : int, default=1000
        Bootstrap replicates for the confidence interval (0: none).
    confidence : float in (0, 1), default=0.95
    seed : int, numpy Generator or None, default=0
        Seed of the bootstrap; the same seed gives the same interval.

    Returns
    -------
    ShapeBiasResult

    Raises
    ------
    InputError
        For unknown category names, unreadable image names, mismatched lengths,
        or when neither (or both) of the category sources is given.

    Examples
    --------
    >>> r = cue_conflict_shape_bias(["cat", "dog", "car", "car"],
    ...                             image_names=["cat1-dog1.png", "cat2-dog2.png",
    ...                                          "car1-bird1.png", "car2-car3.png"])
    >>> r.shape_bias, r.n_shape, r.n_texture, r.n_excluded
    (0.6666666666666666, 2, 1, 1)
    """
    if image_names is not None:
        if shape is not None or texture is not None:
            raise InputError("Give either shape and texture categories or image_names, "
                             "not both.")
        names = list(image_names)
        parsed = [parse_cue_conflict_name(n) for n in names]
        shape = [p[0] for p in parsed]
        texture = [p[1] for p in parsed]
    elif shape is None or texture is None:
        raise InputError("Give the shape and texture category of every image (shape=, "
                         "texture=) or their image names (image_names=).")
    shape = check_category_names(list(shape), "shape")
    texture = check_category_names(list(texture), "texture")
    decisions = _as_decisions(decisions)
    check_consistent_length(decisions, shape, texture, names=["decisions", "shape", "texture"])
    n_boot = check_scalar(n_boot, name="n_boot", kind=numbers.Integral, min_val=0)
    check_scalar(confidence, name="confidence", min_val=0, max_val=1, include_min=False,
                 include_max=False)
    rng = check_random_state(seed)

    conflict = shape != texture
    shape, texture, decisions = shape[conflict], texture[conflict], decisions[conflict]
    is_shape = decisions == shape
    is_texture = decisions == texture
    n_shape, n_texture, n_conflict = int(is_shape.sum()), int(is_texture.sum()), shape.size

    # per shape category, vectorised with category codes
    codes = np.searchsorted(CATEGORIES, shape)
    k = len(CATEGORIES)
    cat_n = np.bincount(codes, minlength=k)
    cat_s = np.bincount(codes, weights=is_shape, minlength=k).astype(np.int64)
    cat_t = np.bincount(codes, weights=is_texture, minlength=k).astype(np.int64)
    per_category = {
        "category": list(CATEGORIES),
        "n_conflict": cat_n.tolist(),
        "n_shape": cat_s.tolist(),
        "n_texture": cat_t.tolist(),
        "shape_bias": _ratio(cat_s, cat_s + cat_t).tolist(),
        "shape_or_texture_fraction": _ratio(cat_s + cat_t, cat_n).tolist(),
    }
    ci_low, ci_high = _bootstrap(is_shape, is_texture, int(n_boot), confidence, rng)
    return ShapeBiasResult(
        shape_bias=float(_ratio(n_shape, n_shape + n_texture)),
        ci_low=ci_low, ci_high=ci_high, confidence=float(confidence), n_boot=int(n_boot),
        n_images=int(conflict.size), n_excluded=int((~conflict).sum()),
        n_conflict=int(n_conflict), n_shape=n_shape, n_texture=n_texture,
        shape_or_texture_fraction=float(_ratio(n_shape + n_texture, n_conflict)),
        per_category=per_category)


# -------------------------------------------------------------------- accuracy
def imagenet_accuracy(scores, labels, *, top=(1, 5)):
    """Top-k accuracy of class scores (logits or probabilities).

    A label counts as found within the top k when fewer than k classes rank
    above it, ranking by score and, among equal scores, by lower class index
    (so ties never inflate the accuracy).

    Parameters
    ----------
    scores : array-like of shape (n_images, n_classes)
    labels : array-like of int, shape (n_images,)
        True class indices in ``[0, n_classes)``.
    top : tuple of int, default=(1, 5)

    Returns
    -------
    dict
        ``{"top1": float, "top5": float, ...}``.

    Examples
    --------
    >>> imagenet_accuracy([[0.1, 0.7, 0.2], [0.5, 0.3, 0.2]], [2, 0], top=(1, 2))
    {'top1': 0.5, 'top2': 1.0}
    """
    scores = check_array(_to_numpy(scores), name="scores", ndim=2)
    labels = np.asarray(_to_numpy(labels))
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise InputError(f"labels must be a 1-D array of class indices; got dtype "
                         f"{labels.dtype}, shape {labels.shape}.")
    check_consistent_length(scores, labels, names=["scores", "labels"])
    n_classes = scores.shape[1]
    if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
        raise InputError(f"labels must lie in [0, {n_classes}); got values in "
                         f"[{labels.min()}, {labels.max()}].")
    for k in top:
        check_scalar(k, name="top", kind=numbers.Integral, min_val=1, max_val=n_classes)
    rank = label_ranks(scores, labels)
    return {f"top{int(k)}": float(np.mean(rank < k)) for k in top}


def label_ranks(scores, labels):
    """0-based rank of each image's true class among its scores (the rule of
    :func:`imagenet_accuracy`: higher scores, then equal scores of lower index, rank above).

    Parameters
    ----------
    scores : ndarray of shape (n_images, n_classes)
    labels : ndarray of int, shape (n_images,)
        In ``[0, n_classes)`` (not checked here; :func:`imagenet_accuracy` checks).

    Returns
    -------
    ndarray of int, shape (n_images,)
        ``rank < k``: the label is within the top k.

    Examples
    --------
    >>> label_ranks(np.array([[0.1, 0.7, 0.2], [0.5, 0.5, 0.2]]), np.array([2, 1])).tolist()
    [1, 1]
    """
    n_classes = scores.shape[1]
    own = scores[np.arange(labels.size), labels][:, None]          # (n, 1)
    before = np.arange(n_classes)[None, :] < labels[:, None]         # (n, classes)
    return (scores > own).sum(axis=1) + ((scores == own) & before).sum(axis=1)


def decision_accuracy(decisions, categories):
    """Fraction of 16-category decisions equal to the true category.

    Parameters
    ----------
    decisions : array-like
        Names ``(n,)``, ImageNet probabilities ``(n, 1000)`` or 16-category
        scores ``(n, 16)`` (see :func:`decisions_16`).
    categories : sequence of str, length n
        The true category of each image.

    Returns
    -------
    float

    Examples
    --------
    >>> decision_accuracy(["cat", "dog", "car"], ["cat", "dog", "boat"])
    0.6666666666666666
    """
    decisions = _as_decisions(decisions)
    categories = check_category_names(list(categories), "categories")
    check_consistent_length(decisions, categories, names=["decisions", "categories"])
    return float(np.mean(decisions == categories))
