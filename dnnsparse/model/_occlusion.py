"""Empirical receptive fields: occlusion discrepancy maps and upsampled activation maps.

**Occlusion** (Zhou, Khosla, Lapedriza, Oliva & Torralba 2014, "Object detectors emerge
in deep scene CNNs"; DNNBrain's ``OccluderDiscrepancyMapping``): a square occluder
slides over the network's input; the discrepancy is the change of a target's value
between the original and each occluded image. Many occluded copies of one image go
through the network in one forward pass (``batch_size`` of them), which stops at the
deepest target layer. The grid of discrepancies (one per occluder placement) becomes
an image-sized map: each pixel takes the mean discrepancy of the placements covering
it. Maps are averaged over the images (float64). For unit targets only what can change
them is computed: the network runs on the crop of the image that holds the units'
theoretical receptive fields, and placements outside every field are exactly 0
(``crop=True``; on AlexNet's conv5 this does a third of the work).

**Upsampling** (DNNBrain's ``UpsamplingActivationMapping``): the target channel's
activation map, interpolated to the input size, averaged over the images.

:func:`map_extent` gives a map's peak and its extent at half the peak value.

For channel targets of networks whose modules up to the target layer form one chain
(AlexNet, VGG), each layer is computed only where the occluder changes it
(``incremental=True``; :mod:`._incremental`): on AlexNet's conv3 about an eighth of the
multiply-adds of a full pass.

The batched and one-image-per-pass computations are the same arithmetic per image; in
float64 with one thread full passes agree exactly. Crops (of units' fields, of the
incremental windows) and, in float32, different batch sizes may make the convolution
library sum in another order, so results can differ at rounding level.
"""
import logging
import math
from dataclasses import dataclass, field, replace

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import InputError
from ..utils.progress import progress
from ..utils.validation import check_choice, check_scalar
from ._hooks import LayerCapture, as_4d
from ._incremental import OcclusionChain, _net_dtype
from ._receptive_field import theoretical_rf
from ._targets import target_responses

__all__ = ["DISCREPANCIES", "INTERPOLATIONS", "OCCLUDER_FILLS", "OcclusionResult",
           "map_extent", "occluder_starts", "occlusion_maps", "upsampling_maps"]

log = logging.getLogger(__name__)

#: Discrepancy between the original value and the occluded ones.
DISCREPANCIES = {
    "drop": lambda ref, occ: ref - occ,            # DNNBrain: activ_ori - activ_occ
    "abs": lambda ref, occ: (ref - occ).abs(),     # Zhou et al.: size of the change
}


def _constant(value):
    def fill(shape, generator):
        return torch.full(shape, value, dtype=torch.uint8)
    return fill


def _noise(shape, generator):
    return torch.randint(0, 256, shape, dtype=torch.uint8, generator=generator)


#: What the occluder shows, as ``uint8`` pixels (normalised like the images):
#: "mean": grey at the dataset mean (0 after normalisation), "black", "white", or
#: "noise": uniform random pixels (Zhou et al.; seeded).
OCCLUDER_FILLS = {"mean": None, "black": _constant(0), "white": _constant(255),
                  "noise": _noise}

INTERPOLATIONS = ("bicubic", "bilinear", "nearest", "area")


def occluder_starts(n, size, stride):
    """First pixels of the occluder placements along an axis of ``n`` pixels.

    Every ``stride`` pixels, plus a last placement flush with the far edge so that
    every pixel is covered.

    >>> occluder_starts(10, 4, 3).tolist()
    [0, 3, 6]
    >>> occluder_starts(11, 4, 3).tolist()
    [0, 3, 6, 7]
    """
    starts = list(range(0, n - size + 1, stride))
    if starts[-1] != n - size:
        starts.append(n - size)
    return np.asarray(starts)


def _coverage(starts, size, n):
    """``(n_placements, n)`` indicator: placement i covers pixel p."""
    p = np.arange(n)
    return ((p >= starts[:, None]) & (p < starts[:, None] + size)).astype(np.float64)


@dataclass
class OcclusionResult:
    """Occlusion discrepancies of several targets, averaged over images.

    Attributes
    ----------
    grid : ndarray of shape (n_targets, n_placement_rows, n_placement_cols)
        Mean discrepancy per occluder placement (float64).
    row_starts, col_starts : ndarray of int
        First pixel of each placement row / column.
    size : int
        Occluder side (pixels).
    image_size : (int, int)
    reference : ndarray of shape (n_images, n_targets)
        The targets' values on the unoccluded images.
    per_image : ndarray of shape (n_images, n_targets, n_rows, n_cols), optional
    """
    grid: np.ndarray
    row_starts: np.ndarray
    col_starts: np.ndarray
    size: int
    image_size: tuple
    reference: np.ndarray
    per_image: np.ndarray = field(default=None, repr=False)

    def pixel_maps(self, grid=None):
        """Image-sized maps ``(n_targets, H, W)``: each pixel's mean over the placements
        covering it (computed as ``R.T @ grid @ C / R.T @ 1 @ C`` with coverage matrices)."""
        grid = self.grid if grid is None else grid
        r = _coverage(self.row_starts, self.size, self.image_size[0])
        c = _coverage(self.col_starts, self.size, self.image_size[1])
        count = r.sum(axis=0)[:, None] * c.sum(axis=0)[None, :]
        return np.einsum("ph,...pq,qw->...hw", r, grid, c) / count


def _fill_image(dnn, fill, shape, seed):
    check_choice(fill, OCCLUDER_FILLS, name="fill")
    make = OCCLUDER_FILLS[fill]
    if make is None:
        return torch.zeros(shape, dtype=torch.float32)
    gen = torch.Generator().manual_seed(int(seed))
    return dnn.normalize(make(shape, gen)[None])[0]


def _inputs(dnn, images, dtype, device):
    """``uint8`` images are normalised for the network; float images are taken as they are."""
    x = torch.as_tensor(images)
    if x.ndim != 4 or x.shape[1] != 3:
        raise InputError(f"images must be a batch (n, 3, H, W); got shape {tuple(x.shape)}.")
    if x.dtype == torch.uint8:
        x = dnn.normalize(x)
    return x.to(device=device, dtype=dtype)


def _crop_plan(dnn, targets, image_size):
    """For unit targets: the crop of the input holding all their fields, the targets'
    positions in the cropped network and their fields (pixel boxes); else None.

    The crop starts a multiple of every target layer's jump from the corner, so each
    layer's grid on the crop is the original grid, shifted by whole units; a unit's
    value then depends only on pixels inside its field, all of which the crop keeps.
    """
    if any(t.row is None for t in targets):
        return None
    rf = theoretical_rf(dnn, list(dict.fromkeys(t.layer for t in targets)))
    geoms = [rf[t.layer][0] for t in targets]
    if not all(g.scope == "local" and g.exact and g.croppable
               and all(float(j).is_integer() for j in g.jump) for g in geoms):
        return None
    boxes = [g.box(t.row, t.col) for g, t in zip(geoms, targets)]
    window = []
    for axis, n in enumerate(image_size):
        step = math.lcm(*(int(g.jump[axis]) for g in geoms))
        lo = max(0, math.floor(min(b[2 * axis] for b in boxes)))
        hi = min(n, math.ceil(max(b[2 * axis + 1] for b in boxes)) + 1)
        window += [lo // step * step, hi]
    top, left = window[0], window[2]
    shifted = [replace(t, row=t.row - top // int(g.jump[0]), col=t.col - left // int(g.jump[1]))
               for t, g in zip(targets, geoms)]
    return tuple(window), shifted, boxes


def occlusion_maps(dnn, images, targets, *, size=11, stride=4, fill="mean",
                   discrepancy="drop", batch_size=64, seed=0, crop=True, incremental=True,
                   keep_per_image=False, show_progress=False):
    """Occlusion discrepancy of each target, batched over occluder placements.

    Parameters
    ----------
    dnn : DNN
    images : tensor of shape (n, 3, H, W)
        ``uint8`` pixels at the network's input size (normalised here), or a float
        batch already normalised.
    targets : list of Target
        From :func:`resolve_targets`; all are computed from the same forward passes.
    size, stride : int
        Occluder side and step, in input pixels.
    fill : {"mean", "black", "white", "noise"}
    discrepancy : {"drop", "abs"}
        ``original - occluded`` (DNNBrain) or its absolute value (Zhou et al.).
    batch_size : int
        Occluded copies per forward pass (1: one occluded image per pass).
    seed : int
        Seed of the "noise" occluder (one noise image, shared by all placements).
    crop : bool, default=True
        For unit targets (``LAYER:CHN,ROW,COL``), compute only what can change them:
        the network runs on the crop of the images that holds the units' theoretical
        receptive fields (:func:`theoretical_rf`), and placements that overlap none of
        the fields get their exact discrepancy, 0, without a forward pass. Ignored
        (the whole image is used) for other targets, or when adaptive pooling before
        the target layer makes units depend on the map's size.
    incremental : bool, default=True
        For channel targets (``LAYER:CHN[@STAT]``) of networks whose modules up to the
        target layers form one chain of convolutions, max/average poolings and
        position-wise modules (AlexNet, VGG): compute each layer only where the
        occluder changes it (:class:`~._incremental.OcclusionChain`). Otherwise, and
        with Top-K or hook ablations on those modules, full forward passes.
    keep_per_image : bool
        Also return each image's grid.

    Returns
    -------
    OcclusionResult

    Examples
    --------
    >>> res = occlusion_maps(dnn, x, resolve_targets(["conv5:3,7,7"], dnn))  # doctest: +SKIP
    >>> res.pixel_maps().shape                                               # doctest: +SKIP
    (1, 224, 224)
    """
    check_scalar(batch_size, name="batch_size", kind=int, min_val=1)
    check_scalar(size, name="occluder size", kind=int, min_val=1)
    check_scalar(stride, name="occluder stride", kind=int, min_val=1)
    check_choice(discrepancy, DISCREPANCIES, name="discrepancy")
    dtype, device = _net_dtype(dnn), dnn.device
    x = _inputs(dnn, images, dtype, device)
    n, _, height, width = x.shape
    if size > min(height, width):
        raise InputError(f"the occluder ({size}x{size} pixels) is larger than the "
                         f"{height}x{width} input image; choose a size up to "
                         f"{min(height, width)}.")
    rows, cols = occluder_starts(height, size, stride), occluder_starts(width, size, stride)
    pr, pc = np.repeat(rows, len(cols)), np.tile(cols, len(rows))
    fill_img = _fill_image(dnn, fill, (3, height, width), seed).to(device=device, dtype=dtype)
    plan = _crop_plan(dnn, targets, (height, width)) if crop else None
    top, bottom, left, right = (0, height, 0, width) if plan is None else plan[0]
    run_targets = targets if plan is None else plan[1]
    needed = np.ones(len(pr), dtype=bool)
    if plan is not None:
        needed[:] = False
        for b in plan[2]:
            needed |= ((pr + size > b[0]) & (pr <= b[1]) & (pc + size > b[2]) & (pc <= b[3]))
    todo = np.flatnonzero(needed)
    x = x[:, :, top:bottom, left:right]
    fill_img = fill_img[:, top:bottom, left:right]
    yy = torch.arange(top, bottom, device=device)
    xx = torch.arange(left, right, device=device)
    chain = None
    if incremental and plan is None:
        chain = OcclusionChain.build(dnn, targets)
        if chain is not None and not chain.check(x[:1]):
            chain = None
        if chain is not None:
            chain.plan(x[:1], pr[todo], pc[todo], size)
    diff = DISCREPANCIES[discrepancy]
    grids = np.zeros((n, len(targets), len(pr)))
    ref = np.zeros((n, len(targets)))
    bar = progress(total=n * len(todo), desc=f"occlusion {dnn.name}", unit="img",
                   enabled=show_progress)
    try:
        with torch.inference_mode():
            for i in range(n):
                xi = x[i]
                r0 = target_responses(dnn, xi[None], run_targets)[0]
                ref[i] = r0.double().cpu().numpy()
                originals = chain.originals(xi[None]) if chain is not None else None
                for start in range(0, len(todo), batch_size):
                    k = todo[start:start + batch_size]
                    r = torch.as_tensor(pr[k], device=device)[:, None]
                    c = torch.as_tensor(pc[k], device=device)[:, None]
                    if chain is not None:
                        span = torch.arange(size, device=device)
                        box = fill_img.permute(1, 2, 0)[(r + span)[:, :, None],
                                                        (c + span)[:, None, :]]
                        vals = chain.values(xi[None], originals, box.permute(0, 3, 1, 2),
                                            pr[k], pc[k], size, run_targets)
                        grids[i][:, k] = diff(r0[None], vals).double().cpu().numpy().T
                        bar.update(len(k))
                        continue
                    inside = (((yy >= r) & (yy < r + size))[:, :, None]
                              & ((xx >= c) & (xx < c + size))[:, None, :])
                    batch = torch.where(inside[:, None], fill_img, xi)
                    vals = target_responses(dnn, batch, run_targets)
                    grids[i][:, k] = diff(r0[None], vals).double().cpu().numpy().T
                    bar.update(len(k))
    finally:
        bar.close()
    grids = grids.reshape(n, len(targets), len(rows), len(cols))
    return OcclusionResult(grid=grids.mean(axis=0), row_starts=rows, col_starts=cols,
                           size=int(size), image_size=(height, width), reference=ref,
                           per_image=grids if keep_per_image else None)


def upsampling_maps(dnn, images, targets, *, interp="bicubic", threshold=None, batch_size=32):
    """Each target channel's activation map upsampled to the input size, averaged over images.

    Parameters
    ----------
    dnn : DNN
    images : tensor of shape (n, 3, H, W)
        As for :func:`occlusion_maps`.
    targets : list of Target
        Channel or unit targets (a unit gives its channel's map).
    interp : {"bicubic", "bilinear", "nearest", "area"}
        :func:`torch.nn.functional.interpolate` mode (DNNBrain's ``interp_meth``).
    threshold : float in [0, 1), optional
        DNNBrain's ``interp_threshold``: each image's map is clipped from below at
        this quantile of its values before averaging.

    Returns
    -------
    ndarray of shape (n_targets, H, W)
        float64.
    """
    check_choice(interp, INTERPOLATIONS, name="interpolation")
    if threshold is not None:
        check_scalar(threshold, name="threshold", min_val=0, max_val=1,
                     include_max=False)
    for t in targets:
        if t.kind == "class":
            raise InputError(f"target {t.name}: an output class has no spatial map to "
                             f"upsample; use a channel or unit target.")
    dtype, device = _net_dtype(dnn), dnn.device
    x = _inputs(dnn, images, dtype, device)
    size = tuple(x.shape[-2:])
    by_layer = {}
    for i, t in enumerate(targets):
        by_layer.setdefault(t.layer, []).append(i)
    total = torch.zeros((len(targets),) + size, dtype=torch.float64)
    kwargs = {"align_corners": False} if interp in ("bilinear", "bicubic") else {}

    def reducer(idx):
        # copies: a later in-place ReLU must not change the captured maps
        return lambda output: [as_4d(output)[:, targets[i].channel - 1].clone() for i in idx]

    with torch.inference_mode(), LayerCapture(
            dnn.register_layer_hook,
            {layer: reducer(idx) for layer, idx in by_layer.items()}) as capture:
        for start in range(0, len(x), batch_size):
            captured = capture.run(dnn.module, x[start:start + batch_size])
            for layer, idx in by_layer.items():
                for i, m in zip(idx, captured[layer]):
                    up = F.interpolate(m[:, None].double(), size=size, mode=interp,
                                       **kwargs)[:, 0]
                    if threshold is not None:
                        q = torch.quantile(up.flatten(1), threshold, dim=1)
                        up = torch.maximum(up, q[:, None, None])
                    total[i] += up.sum(dim=0).cpu()
    return (total / len(x)).numpy()


def map_extent(m):
    """Peak of a map and its extent at half the peak value.

    The extent is the 4-connected region around the peak where the map is at least
    half the peak (0 being "no effect": occlusion discrepancies and ReLU maps).

    Parameters
    ----------
    m : ndarray of shape (H, W)

    Returns
    -------
    dict
        ``peak_row, peak_col`` (0-based pixels, first maximum in row-major order),
        ``peak_value``, ``half_max_area`` (pixels), ``half_max_height``,
        ``half_max_width`` (bounding box) and ``half_max_size`` (sqrt of the area,
        DNNBrain's empirical RF size); extents are NaN when the peak is not positive.

    Examples
    --------
    >>> m = np.zeros((5, 5)); m[1:4, 2] = [1, 2, 1]
    >>> {k: map_extent(m)[k] for k in ("peak_row", "peak_col", "half_max_area")}
    {'peak_row': 2, 'peak_col': 2, 'half_max_area': 3}
    """
    from scipy import ndimage
    m = np.asarray(m, dtype=np.float64)
    r, c = np.unravel_index(int(np.argmax(m)), m.shape)
    peak = float(m[r, c])
    out = {"peak_row": int(r), "peak_col": int(c), "peak_value": peak}
    if not peak > 0:
        return {**out, "half_max_area": np.nan, "half_max_height": np.nan,
                "half_max_width": np.nan, "half_max_size": np.nan}
    labels, _ = ndimage.label(m >= peak / 2)
    region = labels == labels[r, c]
    rows, cols = np.nonzero(region)
    area = int(region.sum())
    return {**out, "half_max_area": area, "half_max_height": int(rows.max() - rows.min() + 1),
            "half_max_width": int(cols.max() - cols.min() + 1),
            "half_max_size": float(np.sqrt(area))}
