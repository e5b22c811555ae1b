"""Feature maps back onto the photograph (what ``db_view`` draws).

- :func:`input_window` -- the part of an image the network sees after its
  preprocessing (:mod:`._transforms`): the whole image for ``"squash"``, the centre
  crop of the resized image for ``"crop"``, as fractions of the image.
- :func:`maps_on_image` -- feature maps ``(n, h, w)`` resampled bilinearly onto an
  image's own pixel grid (any size: the photograph or a thumbnail of it), so that
  each map lines up with what the network saw; pixels the network did not see
  (outside a centre crop) are NaN.
- :func:`layer_map_batches` -- one forward pass per batch of images, yielding the
  requested layers' maps as stored by ``db_act`` (float32).
- :func:`view_geometry` -- the preprocessing geometry of a network (or of a zoo
  network named in an ``.act.h5`` file).

Geometry: a map of ``w`` columns covers the network's input of ``S`` columns evenly
(column ``j`` of the map is centred at input column ``(j + 0.5) S / w - 0.5``, the
convention of ``torch.nn.functional.interpolate(..., align_corners=False)``), and the
input covers the window of the image. For ``"squash"`` the result is exactly
``interpolate(maps, size=(H, W), mode="bilinear", align_corners=False)``.
"""
import torch
import torch.nn.functional as F
from torchvision import transforms as T

from ..errors import InputError
from ._images import ImageDataset, _resized, image_batches, network_inputs
from ._transforms import PREPROCESS

__all__ = ["input_window", "layer_map_batches", "maps_on_image", "view_geometry"]


def _resize_size(input_size, resize_size):
    # the default of make_image_transform: 256 for 224 inputs
    return resize_size or int(round(max(input_size) * 256 / 224))


def input_window(image_size, *, preprocess="squash", input_size=(224, 224),
                 resize_size=None):
    """Where the network's input lies in an image, as fractions of its width and height.

    Parameters
    ----------
    image_size : (int, int)
        ``(width, height)`` of the image file (PIL's ``size``).
    preprocess : {"squash", "crop"}
        As in :func:`dnnsparse.model.make_image_transform`.
    input_size : (int, int)
        ``(height, width)`` of the network's input.
    resize_size : int, optional
        Shorter side before the centre crop (default 256 for 224 inputs).

    Returns
    -------
    (left, top, width, height) : tuple of float
        ``(0, 0, 1, 1)`` for ``"squash"``.

    Examples
    --------
    >>> input_window((320, 256), preprocess="crop")
    (0.15, 0.0625, 0.7, 0.875)
    """
    if preprocess not in PREPROCESS:
        raise InputError(f"preprocess {preprocess!r}: give one of {', '.join(PREPROCESS)}.")
    if preprocess == "squash":
        return (0.0, 0.0, 1.0, 1.0)
    width, height = (int(v) for v in image_size)
    crop_h, crop_w = (int(v) for v in input_size)
    new_w, new_h = _resized(T.Resize(_resize_size(input_size, resize_size)), width, height)
    if crop_w > new_w or crop_h > new_h:
        raise InputError(f"a {width}x{height} image resized to {new_w}x{new_h} is smaller "
                         f"than the {crop_w}x{crop_h} crop; this preprocessing pads it.")
    # torchvision's center_crop: int(round((size - crop) / 2)) pixels off the top/left
    top, left = int(round((new_h - crop_h) / 2.0)), int(round((new_w - crop_w) / 2.0))
    return (left / new_w, top / new_h, crop_w / new_w, crop_h / new_h)


def maps_on_image(maps, size, window=(0.0, 0.0, 1.0, 1.0)):
    """Resample feature maps bilinearly onto an image of ``size`` pixels.

    Parameters
    ----------
    maps : array or tensor of shape (n, h, w)
        Feature maps over the network's input.
    size : (int, int)
        ``(width, height)`` of the image to draw on (the photograph, or a thumbnail
        of it: the window is in fractions).
    window : (left, top, width, height)
        Where the network's input lies in the image (:func:`input_window`).

    Returns
    -------
    ndarray of shape (n, height, width), float64
        NaN where the image lies outside the window.

    Examples
    --------
    >>> maps_on_image(np.ones((1, 2, 2)), (4, 3)).shape      # doctest: +SKIP
    (1, 3, 4)
    """
    m = torch.as_tensor(maps).to("cpu", torch.float64)
    if m.ndim != 3:
        raise InputError(f"maps must be (n, rows, cols); got shape {tuple(m.shape)}.")
    width, height = (int(v) for v in size)
    left, top, win_w, win_h = (float(v) for v in window)
    # pixel centres of the image, as positions in the window from -1 to 1 (grid_sample's
    # coordinates with align_corners=False: -1 and 1 are the outer edges of the map)
    gx = 2 * ((torch.arange(width, dtype=torch.float64) + 0.5) / width - left) / win_w - 1
    gy = 2 * ((torch.arange(height, dtype=torch.float64) + 0.5) / height - top) / win_h - 1
    grid = torch.stack(torch.meshgrid(gx, gy, indexing="xy"), dim=-1)        # (H, W, 2)
    grid = grid.expand(m.shape[0], height, width, 2)
    out = F.grid_sample(m[:, None], grid, mode="bilinear", padding_mode="border",
                        align_corners=False)[:, 0]
    outside = (gx.abs() > 1)[None, :] | (gy.abs() > 1)[:, None]
    out[:, outside] = float("nan")
    return out.numpy()


def view_geometry(dnn=None, *, net=None, preprocess=None):
    """``{"preprocess", "input_size", "resize_size"}`` of ``dnn`` or of zoo network ``net``.

    For an ``.act.h5`` file give the ``net`` and ``preprocess`` it records; a network
    not in the zoo (``file.py:function``) takes :class:`DNN`'s defaults (224 x 224).
    """
    if dnn is not None:
        return {"preprocess": preprocess or dnn.preprocess, "input_size": dnn.input_size,
                "resize_size": dnn.resize_size}
    from ._zoo import NETS
    spec = NETS.get(net) if isinstance(net, str) else None
    return {"preprocess": preprocess or "squash",
            "input_size": tuple(spec.input_size) if spec is not None else (224, 224),
            "resize_size": None}


def layer_map_batches(dnn, paths, layers, *, batch_size=32, device="cpu", workers=None):
    """Yield ``(start, {layer: ndarray (n_batch, n_chn, n_row, n_col) float32})``.

    One forward pass per batch of the images at ``paths`` (stopping after the deepest
    requested layer); the maps are copied to the CPU as float32, as ``db_act`` stores
    them, so both give the same numbers.
    """
    device = torch.device(device)
    dnn.to(device)
    dataset = ImageDataset(paths, dnn.image_transform())
    batches = image_batches(dataset, batch_size, workers=workers, device=device)
    with torch.inference_mode():
        for idx, x in network_inputs(dnn, batches, paths, device):
            out = dnn.forward_layers(x, layers)
            yield idx[0], {l: out[l].to("cpu", torch.float32).numpy() for l in layers}
