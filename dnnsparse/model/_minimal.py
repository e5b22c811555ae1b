"""Minimal images: remove an image's parcels greedily while a target keeps its value.

DNNBrain's ``MinimalParcelImage`` (after Ullman et al.'s minimal recognisable images):
the image is cut into parcels (superpixels, :func:`dnnsparse.algo.segmentation.segment`);
parcels are then removed one at a time -- replaced by a fill image (grey, the image's
mean colour, black, or a blurred copy) -- for as long as the target keeps at least
``keep`` times its value on the whole image.

Greedy search (:func:`minimal_image`): at each step, the removal of every remaining
parcel is evaluated -- all these candidate images go through the network together,
``batch_size`` per forward pass (:func:`removal_values`), and the pass stops at the
target's layer -- and the parcel whose removal leaves the target's value highest is
removed (ties: the lowest parcel number). The search stops when every further single
removal would take the value below the threshold (or when no parcel is left). So the
result keeps >= ``keep`` of the value, and removing any one more of its parcels does
not: it is minimal for single removals (not necessarily the smallest such image).
The cost is about ``n_parcels ** 2 / 2`` candidate images in the worst case. For a
unit target, only parcels that touch the unit's theoretical receptive field are
evaluated, on the crop of the image holding the field (as :func:`occlusion_maps` does):
removing any other parcel leaves the unit's value exactly as it is.

Everything happens in the network's input geometry (the image after the network's
resize/crop, :meth:`DNN.image_transform`), on ``uint8`` pixels: the minimal image is
exactly what the network saw. Batched and one-candidate-per-pass evaluation are the
same arithmetic per image: in float64 they agree exactly; in float32 the convolution
library may choose different algorithms for different batch sizes, so values agree to
rounding and a near-tie may be broken differently.
"""
import logging
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import InputError
from ..utils.validation import check_scalar
from ._occlusion import _crop_plan, _net_dtype
from ._targets import target_responses

__all__ = ["MinimalResult", "check_keep", "minimal_image", "removal_values"]

log = logging.getLogger(__name__)


def check_keep(keep):
    """``keep`` as a float if it is a fraction in (0, 1]; else :class:`InputError`.

    >>> check_keep(0.5)
    0.5
    """
    if isinstance(keep, bool) or not isinstance(keep, (int, float, np.floating, np.integer)) \
            or not np.isfinite(keep) or not 0 < keep <= 1:
        raise InputError(f"-keep {keep!r}: give the fraction of the target's value the "
                         f"minimal image must keep, a number in (0, 1], e.g. 0.5.")
    return float(keep)


@dataclass
class MinimalResult:
    """The greedy search of one image and one target.

    Attributes
    ----------
    target : Target
    n_parcels : int
    keep : float
    reference : float
        The target's value on the whole image.
    threshold : float
        ``keep * reference``: removals must leave at least this.
    order : ndarray of int, shape (n_removed,)
        Parcels in the order they were removed.
    values : ndarray of float64, shape (n_removed,)
        The target's value after each removal (all >= ``threshold``).
    next_best : float
        The highest value any one further removal would leave (below ``threshold``);
        NaN when every parcel was removed or the search did not run.
    next_parcel : int
        The parcel giving ``next_best`` (-1 when none).
    image : ndarray of uint8, shape (H, W, 3)
        The minimal image (removed parcels show the fill).
    n_evaluated : int
        Candidate images that went through the network (for a unit, only the removals
        of parcels that touch its receptive field).
    status : str
        "minimal", "all removed" (even the fill image alone keeps the value), or
        "not positive" (the target's value on the whole image is <= 0: no fraction of
        it to keep; nothing was removed).
    """
    target: object
    n_parcels: int
    keep: float
    reference: float
    threshold: float
    order: np.ndarray
    values: np.ndarray
    next_best: float
    next_parcel: int
    image: np.ndarray
    n_evaluated: int
    status: str

    @property
    def kept(self):
        """Parcels still shown in the minimal image, in increasing order."""
        return np.setdiff1d(np.arange(self.n_parcels), self.order)

    @property
    def final_value(self):
        """The target's value on the minimal image."""
        return float(self.values[-1]) if len(self.values) else self.reference

    def curve(self):
        """``(n_removed + 1,)`` values from the whole image (step 0) to the minimal one."""
        return np.concatenate([[self.reference], self.values])


def _pixels_first(image, name):
    """A ``uint8`` tensor ``(3, H, W)`` from ``(3, H, W)`` or ``(H, W, 3)`` pixels."""
    x = torch.as_tensor(np.asarray(image) if not torch.is_tensor(image) else image)
    if x.dtype != torch.uint8 or x.ndim != 3 or 3 not in (x.shape[0], x.shape[-1]):
        raise InputError(f"{name} must be uint8 pixels (3, H, W) or (H, W, 3); got "
                         f"{x.dtype} of shape {tuple(x.shape)}.")
    return (x if x.shape[0] == 3 else x.permute(2, 0, 1)).cpu()


def _network_input(dnn, pixels, dtype):
    """``uint8 (3, H, W)`` → the network's normalised input ``(3, H, W)`` on its device."""
    return dnn.normalize(pixels[None].to(dnn.device))[0].to(dtype)


def removal_values(dnn, current, fill, labels, parcels, targets, *, batch_size=32):
    """The targets' values after removing each of ``parcels`` (one at a time) from ``current``.

    Candidate ``i`` is ``current`` with the pixels of parcel ``parcels[i]`` taken from
    ``fill``; the candidates go through the network ``batch_size`` at a time.

    Parameters
    ----------
    dnn : DNN
    current, fill : tensor of shape (3, H, W)
        Normalised network inputs (on ``dnn``'s device, in its dtype).
    labels : tensor of shape (H, W), int
        Parcel of each pixel (same device).
    parcels : sequence of int
    targets : list of Target
    batch_size : int, default=32
        Candidates per forward pass (1: one per pass).

    Returns
    -------
    ndarray of float64, shape (len(parcels), len(targets))

    Examples
    --------
    >>> v = removal_values(dnn, x, f, labels, [0, 1, 2], targets)   # doctest: +SKIP
    """
    check_scalar(batch_size, name="batch_size", kind=(int, np.integer), min_val=1)
    parcels = torch.as_tensor(np.asarray(parcels, dtype=np.int64), device=labels.device)
    out = np.empty((len(parcels), len(targets)))
    with torch.inference_mode():
        for start in range(0, len(parcels), batch_size):
            chunk = parcels[start:start + batch_size]
            inside = labels[None] == chunk[:, None, None]                 # (k, H, W)
            batch = torch.where(inside[:, None], fill, current)           # (k, 3, H, W)
            values = target_responses(dnn, batch, targets)
            out[start:start + len(chunk)] = values.to("cpu", torch.float64).numpy()
    return out


def _check_labels(labels, shape):
    labels = np.asarray(labels)
    if labels.shape != shape or labels.dtype.kind not in "iu":
        raise InputError(f"the parcel labels must be integers of the image's shape {shape}; "
                         f"got {labels.dtype} of shape {labels.shape}.")
    n = int(labels.max()) + 1 if labels.size else 0
    if labels.min(initial=0) < 0 or len(np.unique(labels)) != n:
        raise InputError("parcel labels must be numbered 0 .. n_parcels - 1 without gaps "
                         "(dnnsparse.algo.segmentation.relabel).")
    if n < 2:
        raise InputError(f"the segmentation has {n} parcel{'s' if n != 1 else ''}; a minimal "
                         f"image needs at least 2. Ask for more segments (e.g. a larger "
                         f"-n-segments, a smaller -scale or -max-dist).")
    return labels, n


def minimal_image(dnn, image, labels, target, *, keep=0.5, fill=None, batch_size=32,
                  crop=True, progress_bar=None):
    """Greedy minimal image of ``image`` for ``target``.

    Parameters
    ----------
    dnn : DNN
    image : uint8 array or tensor, shape (3, H, W) or (H, W, 3)
        The image at the network's input size (:func:`dnnsparse.pipelines.load_images`).
    labels : ndarray of int, shape (H, W)
        Parcel of each pixel, ``0 .. n_parcels - 1`` (at least 2 parcels).
    target : Target
        Resolved against ``dnn`` (:func:`resolve_targets`).
    keep : float in (0, 1], default=0.5
        Fraction of the target's value on the whole image that must remain.
    fill : uint8 array or tensor like ``image``, optional
        What removed parcels show (:func:`dnnsparse.algo.segmentation.fill_image`);
        default: the network's mean colour, rounded to whole pixel levels.
    batch_size : int, default=32
        Candidate images per forward pass.
    crop : bool, default=True
        For a unit target (``LAYER:CHN,ROW,COL``), compute only what can change it: the
        network runs on the crop of the image that holds the unit's theoretical receptive
        field (:func:`theoretical_rf`), and the removal of a parcel with no pixel in the
        field leaves the value as it is, without a forward pass. Ignored for channel and
        class targets, or when the field is not exact (adaptive pooling before the layer).
    progress_bar : tqdm-like, optional
        ``update(1)`` after each removal.

    Returns
    -------
    MinimalResult

    Examples
    --------
    >>> res = minimal_image(dnn, img, segment(img.permute(1, 2, 0).numpy()),  # doctest: +SKIP
    ...                     resolve_targets(["conv5:3"], dnn)[0], keep=0.5)
    >>> res.final_value >= res.threshold                                    # doctest: +SKIP
    True
    """
    keep = check_keep(keep)
    check_scalar(batch_size, name="batch_size", kind=(int, np.integer), min_val=1)
    pixels = _pixels_first(image, "image")
    labels, n = _check_labels(labels, tuple(pixels.shape[1:]))
    if fill is None:
        grey = torch.as_tensor(np.round(255 * np.asarray(dnn.mean)), dtype=torch.uint8)
        fill = grey[:, None, None].expand_as(pixels)
    fill = _pixels_first(fill, "fill")
    if fill.shape != pixels.shape:
        raise InputError(f"the fill image has shape {tuple(fill.shape)}; the image "
                         f"{tuple(pixels.shape)}.")
    dtype, device = _net_dtype(dnn), dnn.device
    current, filled = _network_input(dnn, pixels, dtype), _network_input(dnn, fill, dtype)
    lab = torch.as_tensor(labels, dtype=torch.int64, device=device)
    run_target, relevant = target, np.ones(n, dtype=bool)
    plan = _crop_plan(dnn, [target], tuple(pixels.shape[1:])) if crop else None
    if plan is not None:
        (top, bottom, left, right), (run_target,), (box,) = plan
        current, filled = current[:, top:bottom, left:right], filled[:, top:bottom, left:right]
        lab = lab[top:bottom, left:right]
        rows, cols = np.arange(labels.shape[0]), np.arange(labels.shape[1])
        field = labels[np.ix_((rows >= box[0]) & (rows <= box[1]),
                              (cols >= box[2]) & (cols <= box[3]))]
        relevant[:] = False
        relevant[np.unique(field)] = True
    with torch.inference_mode():
        reference = float(target_responses(dnn, current[None], [run_target])[0, 0].double())
    threshold = keep * reference
    order, values, remaining = [], [], list(range(n))
    next_best, next_parcel, evaluated = float("nan"), -1, 0
    status = "not positive" if not reference > 0 else "all removed"
    value = reference
    while remaining and reference > 0:
        # a parcel outside the unit's field leaves its value as it is: no pass needed
        vals = np.full(len(remaining), value)
        todo = [k for k, p in enumerate(remaining) if relevant[p]]
        if todo:
            vals[todo] = removal_values(dnn, current, filled, lab, [remaining[k] for k in todo],
                                        [run_target], batch_size=batch_size)[:, 0]
        evaluated += len(todo)
        best = int(np.argmax(vals))                  # first maximum: the lowest parcel
        if not vals[best] >= threshold:
            next_best, next_parcel, status = float(vals[best]), remaining[best], "minimal"
            break
        parcel = remaining.pop(best)
        current = torch.where(lab == parcel, filled, current)
        value = float(vals[best])
        order.append(parcel)
        values.append(value)
        log.debug("%s: removed parcel %d, value %.6g (%.3f of %.6g)", target, parcel,
                  value, value / reference, reference)
        if progress_bar is not None:
            progress_bar.update(1)
    removed = np.isin(labels, order)
    img = np.where(removed[None], fill.numpy(), pixels.numpy()).transpose(1, 2, 0)
    return MinimalResult(target=target, n_parcels=n, keep=keep, reference=reference,
                         threshold=threshold, order=np.asarray(order, dtype=np.int64),
                         values=np.asarray(values, dtype=np.float64), next_best=next_best,
                         next_parcel=int(next_parcel), image=np.ascontiguousarray(img),
                         n_evaluated=evaluated, status=status)
