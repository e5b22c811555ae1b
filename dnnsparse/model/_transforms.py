"""Image preprocessing per network.

- ``"squash"`` (default; DNNBrain and the sparse-coding paper): resize the whole
  image to the network's input size (aspect ratio not kept), then normalise
  with the network's mean/std (ImageNet statistics for torchvision networks).
- ``"crop"`` (torchvision's evaluation transform): resize the shorter side to
  ``resize_size`` (256 for 224 inputs), centre-crop to the input size, normalise.

Images are converted to RGB first (grayscale and RGBA images work). Resizing
uses PIL with antialiasing. The transform is split in two: decoding and
resizing give a ``uint8`` tensor (in decoding threads or worker processes), and
:func:`normalize` turns a whole batch into floats on the compute device —
the same float32 operations as torchvision's ``ToTensor`` + ``Normalize``,
but vectorised over the batch.
"""
import torch
from torchvision import transforms as T

from ..utils.validation import check_choice

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "PREPROCESS", "make_image_transform",
           "make_transform", "normalize", "to_rgb"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _squash(size, resize_size):
    return [T.Resize(tuple(size), antialias=True)]


def _crop(size, resize_size):
    return [T.Resize(resize_size, antialias=True), T.CenterCrop(tuple(size))]


PREPROCESS = {"squash": _squash, "crop": _crop}


def to_rgb(img):
    """A PIL image in RGB mode (greyscale, palette, RGBA and CMYK images are converted)."""
    return img if img.mode == "RGB" else img.convert("RGB")


def make_image_transform(mode="squash", *, size=(224, 224), resize_size=None):
    """PIL image → resized ``uint8`` tensor ``(3, H, W)`` (no normalisation)."""
    check_choice(mode, PREPROCESS, name="preprocess")
    resize_size = resize_size or int(round(max(size) * 256 / 224))
    return T.Compose([T.Lambda(to_rgb), *PREPROCESS[mode](size, resize_size),
                      T.PILToTensor()])


def normalize(x, mean, std, *, out=None):
    """``uint8`` images ``(n, 3, H, W)`` → float32 ``(x / 255 - mean) / std``.

    ``out``, a float32 tensor of the same shape, receives the result (a buffer
    reused across batches spares a batch-sized allocation each time).
    """
    mean = torch.as_tensor(mean, dtype=torch.float32, device=x.device)[:, None, None]
    std = torch.as_tensor(std, dtype=torch.float32, device=x.device)[:, None, None]
    y = x.float() if out is None else out.copy_(x)
    # in place after the one conversion: allocating three more batch-sized
    # tensors costs more than the arithmetic (same operations, same bits)
    return y.div_(255).sub_(mean).div_(std)


class _Normalize:
    def __init__(self, mean, std):
        self.mean, self.std = mean, std

    def __call__(self, x):
        return normalize(x, self.mean, self.std)


def make_transform(mode="squash", *, size=(224, 224), resize_size=None,
                   mean=IMAGENET_MEAN, std=IMAGENET_STD):
    """PIL image → normalised float tensor ``(3, H, W)``.

    >>> make_transform("crop", size=(224, 224))        # doctest: +ELLIPSIS
    Compose(...)
    """
    return T.Compose([make_image_transform(mode, size=size, resize_size=resize_size),
                      _Normalize(mean, std)])
