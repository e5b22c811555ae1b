"""Audio networks: VGGish and :class:`AudioDNN`, a DNN on log-mel examples.

VGGish is the torchvggish (harritaylor) port layout of Hershey et al. (2017):
``features`` = conv64-pool-conv128-pool-conv256-conv256-pool-conv512-conv512-pool
(3x3 convolutions, ReLU), ``embeddings`` = fc 12288-4096-4096-128 with ReLU. The
postprocessing of the released embeddings (PCA whitening, 8-bit quantisation) is not
applied: layers give the raw activations. Its input examples are made by
:mod:`._audio` with the front end of :mod:`dnnsparse.utils.audio`.
"""
import logging

import torch
from torch import nn

from ..errors import InputError
from ..utils.audio import VGGISH_FRONT_END
from ._dnn import DNN

__all__ = ["AudioDNN", "VGGish", "VGGISH_URL", "as_audio_dnn", "vggish_names"]

log = logging.getLogger(__name__)

#: The torchvggish port's weights (harritaylor/torchvggish release v0.1).
VGGISH_URL = "https://github.com/harritaylor/torchvggish/releases/download/v0.1/vggish-10086976.pth"


class VGGish(nn.Module):
    """VGGish (torchvggish layout) on log-mel examples ``(n, 1, 96, 64)`` → ``(n, 128)``.

    Examples
    --------
    >>> VGGish()(torch.zeros(2, 1, 96, 64)).shape
    torch.Size([2, 128])
    """

    def __init__(self):
        super().__init__()
        layers, c = [], 1
        for v in (64, "M", 128, "M", 256, 256, "M", 512, 512, "M"):
            if v == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                layers += [nn.Conv2d(c, v, kernel_size=3, padding=1), nn.ReLU(inplace=True)]
                c = v
        self.features = nn.Sequential(*layers)
        self.embeddings = nn.Sequential(
            nn.Linear(512 * 4 * 6, 4096), nn.ReLU(True), nn.Linear(4096, 4096), nn.ReLU(True),
            nn.Linear(4096, 128), nn.ReLU(True))

    def forward(self, x):
        x = self.features(x)
        # (n, c, t, f) -> (n, t, f, c) before flattening, as the TensorFlow original
        x = x.permute(0, 2, 3, 1).contiguous().flatten(1)
        return self.embeddings(x)


def vggish_names(model):
    """DNNBrain-style names: ``conv1..conv6`` (+``_relu``, ``_maxpool``), ``fc1..fc3``
    (+``_relu``)."""
    names, n_conv, n_fc = {}, 0, 0
    for i, m in enumerate(model.features):
        if isinstance(m, nn.Conv2d):
            n_conv += 1
            names[f"conv{n_conv}"] = f"features.{i}"
        elif isinstance(m, nn.ReLU):
            names[f"conv{n_conv}_relu"] = f"features.{i}"
        elif isinstance(m, nn.MaxPool2d):
            names[f"conv{n_conv}_maxpool"] = f"features.{i}"
    for i, m in enumerate(model.embeddings):
        if isinstance(m, nn.Linear):
            n_fc += 1
            names[f"fc{n_fc}"] = f"embeddings.{i}"
        elif isinstance(m, nn.ReLU):
            names[f"fc{n_fc}_relu"] = f"embeddings.{i}"
    return names


class AudioDNN(DNN):
    """A network on log-mel examples ``(n, 1, 96, 64)`` (float32), with layer names.

    Parameters
    ----------
    module : torch.nn.Module
    front_end : FrontEnd, default=VGGish's
        How waveforms become examples (:mod:`dnnsparse.utils.audio`).
    **kwargs
        As :class:`~dnnsparse.model.DNN` (``input_size``, mean/std unused).

    Examples
    --------
    >>> dnn = AudioDNN(VGGish(), layer_names=vggish_names(VGGish()))
    >>> dnn.layer_shapes(["conv6_maxpool", "fc3"])
    {'conv6_maxpool': (512, 6, 4), 'fc3': (128, 1, 1)}
    """

    def __init__(self, module, *, front_end=VGGISH_FRONT_END, **kwargs):
        kwargs.setdefault("input_size", (front_end.example_frames, front_end.n_mels))
        super().__init__(module, **kwargs)
        self.front_end = front_end

    def __repr__(self):
        return (f"<AudioDNN {self.name} weights={self.weights} layers={len(self.layer_map)} "
                f"input=1x{self.input_size} at {self.sample_rate} Hz>")

    @property
    def sample_rate(self):
        return self.front_end.sample_rate

    def image_transform(self, preprocess=None):
        """None: audio rows are not images (:func:`audio_batches` makes the input)."""
        return None

    def normalize(self, x, *, out=None):
        """Log-mel examples are the input as they are (float32, copied into ``out``)."""
        return x.float() if out is None else out.copy_(x)

    def layer_shapes(self, layers=None):
        """``{layer: (n_chn, n_row, n_col)}`` from one pass of a blank example."""
        layers = self.layers if layers is None else layers
        x = torch.zeros((1, 1) + tuple(self.input_size), device=self.device)
        with torch.inference_mode():
            try:
                out = self.forward_layers(x, layers, stop_early=True)
            except RuntimeError as exc:      # e.g. an image network given audio
                first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
                raise InputError(f"{self.name} cannot run on log-mel examples of shape "
                                 f"(n, 1, {self.input_size[0]}, {self.input_size[1]}) "
                                 f"({first}); give an audio network (e.g. -net vggish).") \
                    from None
        return {l: tuple(out[l].shape[1:]) for l in layers}


def as_audio_dnn(dnn):
    """``dnn`` as an audio network: an :class:`AudioDNN` as it is; any other network
    (e.g. a custom ``file.py:function`` module) wrapped with its names and provenance."""
    if isinstance(dnn, AudioDNN):
        return dnn
    if getattr(dnn, "clip_len", 0):
        raise InputError(f"{dnn.name} is a clip network; type=audio stimuli need an audio "
                         f"network (e.g. -net vggish) or a custom one on (n, 1, 96, 64).")
    audio = AudioDNN(dnn.module, name=dnn.name, layer_names=dnn.layer_map,
                     weights=dnn.weights, weights_sha256=dnn.weights_sha256)
    audio.lesions, audio.topk, audio.ablations = dnn.lesions, dnn.topk, dnn.ablations
    return audio
