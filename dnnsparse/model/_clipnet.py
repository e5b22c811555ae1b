"""Clip networks: :class:`VideoDNN`, a :class:`~dnnsparse.model.DNN` on clips
``(n, 3, clip_len, H, W)`` (torchvision's ``r3d_18``, ``mc3_18``, ``r2plus1d_18``,
``s3d``, ``mvit_*``, or any ``nn.Module`` taking 5-D input).

A 5-D layer output ``(n, c, t, h, w)`` is stored as ``(n, c, t*h, w)``
(:func:`video_as_4d`): row ``r`` is time step ``r // h``, image row ``r % h`` (layer
attribute ``time_steps`` = t), so spatial pooling pools over time and space. The
clips themselves are read by :mod:`._video`.
"""
import logging

import torch

from ..errors import InputError
from ..utils.validation import check_scalar
from ._dnn import DNN
from ._hooks import as_4d

__all__ = ["VideoDNN", "as_video_dnn", "video_as_4d", "KINETICS_MEAN", "KINETICS_STD"]

log = logging.getLogger(__name__)

#: Kinetics-400 statistics of torchvision's video ResNets and S3D.
KINETICS_MEAN = (0.43216, 0.394666, 0.37645)
KINETICS_STD = (0.22803, 0.22145, 0.216989)


def video_as_4d(output):
    """A layer output as ``(n, c, rows, cols)``; 5-D ``(n, c, t, h, w)`` → ``(n, c, t*h, w)``.

    >>> tuple(video_as_4d(torch.zeros(2, 4, 3, 5, 6)).shape)
    (2, 4, 15, 6)
    """
    if isinstance(output, (tuple, list)):
        output = output[0]
    if torch.is_tensor(output) and output.ndim == 5:
        n, c, t, h, w = output.shape
        return output.reshape(n, c, t * h, w)
    return as_4d(output)


class VideoDNN(DNN):
    """A network on clips ``(n, 3, clip_len, H, W)``, with DNNBrain-style layer names.

    Parameters
    ----------
    module : torch.nn.Module
    clip_len : int, default=16
        Frames per clip.
    clip_stride : int, default=1
        Take every ``clip_stride``-th frame of the movie.
    min_clip_len : int, default=1
        The fewest frames the network accepts (e.g. 16 for MViT).
    **kwargs
        As :class:`~dnnsparse.model.DNN` (``input_size`` is the frames' (H, W)).

    Examples
    --------
    >>> import torchvision
    >>> dnn = VideoDNN(torchvision.models.video.r3d_18(), clip_len=4, input_size=(32, 32))
    >>> dnn.layer_shapes(["layer4"])["layer4"]
    (512, 2, 2)
    """

    def __init__(self, module, *, clip_len=16, clip_stride=1, min_clip_len=1, **kwargs):
        super().__init__(module, **kwargs)
        self.min_clip_len = int(min_clip_len)
        self.clip_len, self.clip_stride = 16, 1
        self.set_clip(clip_len, clip_stride)
        self.time_steps = {}        # {layer: t} of 5-D layers, from layer_shapes()

    def __repr__(self):
        return (f"<VideoDNN {self.name} weights={self.weights} layers={len(self.layer_map)} "
                f"input={self.clip_len}x{self.input_size} stride={self.clip_stride}>")

    def set_clip(self, clip_len=None, clip_stride=None):
        """Change the clip length and/or stride (checked)."""
        if clip_len is not None:
            check_scalar(clip_len, name="clip_len", kind=int, min_val=1)
            if clip_len < self.min_clip_len:
                raise InputError(f"{self.name} takes clips of at least {self.min_clip_len} "
                                 f"frames; -clip-len {clip_len} is too short.")
            self.clip_len = int(clip_len)
        if clip_stride is not None:
            check_scalar(clip_stride, name="clip_stride", kind=int, min_val=1)
            self.clip_stride = int(clip_stride)
        return self

    @property
    def clip_span(self):
        """Movie frames one clip covers: ``(clip_len - 1) * clip_stride + 1``."""
        return (self.clip_len - 1) * self.clip_stride + 1

    @staticmethod
    def layer_view(output):
        """How a layer's output is stored (:func:`video_as_4d`)."""
        return video_as_4d(output)

    def normalize(self, x, *, out=None):
        """``uint8`` clips ``(n, T, 3, H, W)`` → float input ``(n, 3, T, H, W)``."""
        return super().normalize(x, out=out).transpose(1, 2)

    def _layer_reducer(self, layer):
        """A detached 4-D copy (see :func:`video_as_4d`); records 5-D outputs' time steps."""
        def reduce(output):
            out = output[0] if isinstance(output, (tuple, list)) else output
            if torch.is_tensor(out) and out.ndim == 5:
                self.time_steps[layer] = out.shape[2]
            return video_as_4d(output).detach().clone()
        return reduce

    def layer_shapes(self, layers=None):
        """``{layer: (n_chn, n_row, n_col)}`` from one pass of a blank clip."""
        layers = self.layers if layers is None else layers
        x = torch.zeros((1, 3, self.clip_len) + tuple(self.input_size), device=self.device)
        with torch.inference_mode():
            try:
                out = self.forward_layers(x, layers, stop_early=True)
            except RuntimeError as exc:   # e.g. a kernel larger than the clip
                first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
                raise InputError(f"{self.name} cannot run on clips of {self.clip_len} frames "
                                 f"of {self.input_size[0]}x{self.input_size[1]} ({first}); "
                                 f"use a longer -clip-len.") from None
        return {l: tuple(out[l].shape[1:]) for l in layers}


def as_video_dnn(dnn, *, clip_len=None, clip_stride=None):
    """``dnn`` as a clip network: a :class:`VideoDNN` gets the new clip settings; an
    image network (e.g. a custom ``file.py:function`` module taking 5-D input) is
    wrapped with its layer names, normalisation and provenance."""
    if isinstance(dnn, VideoDNN):
        return dnn.set_clip(clip_len, clip_stride)
    video = VideoDNN(dnn.module, name=dnn.name, layer_names=dnn.layer_map,
                     input_size=dnn.input_size, mean=dnn.mean, std=dnn.std,
                     resize_size=dnn.resize_size, preprocess=dnn.preprocess,
                     weights=dnn.weights, weights_sha256=dnn.weights_sha256,
                     clip_len=clip_len or 16, clip_stride=clip_stride or 1)
    video.lesions, video.topk, video.ablations = dnn.lesions, dnn.topk, dnn.ablations
    return video
