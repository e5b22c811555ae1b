"""Audio networks: VGGish, :class:`AudioDNN`, and the log-mel example batches of
``type=audio`` stimuli.

A row of a ``type=audio`` table is one audio file (``path=`` a folder) or a segment
``[onset, onset + duration)`` of one long file (``path=`` the file). Each row is read
(a segment alone: a seek and a read, never the whole file), mixed down to mono (the
mean of the channels), resampled to the network's rate with
:func:`scipy.signal.resample_poly` at the exact rational ratio (each row on its own),
and cut into VGGish log-mel examples (:mod:`dnnsparse.utils.audio`): 96 frames x 64
mel bands, one every 0.96 s. The rows of the activations are these examples:
``stimID#k`` is the k-th (1-based) example of a row, with onset
``row onset + (k - 1) * 0.96`` s (row onset: the segment's ``onset``, or the table's
``onset`` column for files, else 0) and duration 0.96 s.

VGGish is the torchvggish (harritaylor) port layout of Hershey et al. (2017):
``features`` = conv64-pool-conv128-pool-conv256-conv256-pool-conv512-conv512-pool
(3x3 convolutions, ReLU), ``embeddings`` = fc 12288-4096-4096-128 with ReLU. The
postprocessing of the released embeddings (PCA whitening, 8-bit quantisation) is not
applied: layers give the raw activations.
"""
import logging

import numpy as np
import torch
from torch import nn

from ..errors import InputError
from ..io.audio import probe_audio, read_audio
from ..utils.audio import (VGGISH_FRONT_END, log_mel_examples, n_examples, resample,
                           resample_length, resample_ratio)
from ._dnn import DNN
from ._hooks import LayerCapture, as_4d

__all__ = ["AudioDNN", "VGGish", "VGGISH_URL", "as_audio_dnn", "audio_batches",
           "audio_plan", "vggish_names"]

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


# --------------------------------------------------------------------- rows
def _number_column(stim, name):
    values = stim.columns.get(name)
    if values is None:
        return None
    if values.dtype.kind not in "iuf":
        raise InputError(f"the {name} column of an audio table must hold seconds; got "
                         f"{values[0]!r}.")
    values = values.astype(np.float64)
    bad = np.flatnonzero(~np.isfinite(values) | (values < 0))
    if bad.size:
        raise InputError(f"row {bad[0] + 1}: {name} {values[bad[0]]} is not a time >= 0 s.")
    return values


def audio_plan(stim, dnn):
    """Check every row of a ``type=audio`` table and say what to read.

    Returns
    -------
    sources : list of (AudioInfo, start frame, n frames), one per table row
    counts : ndarray of int64, shape (n_rows,)
        Examples per row (each >= 1).
    onsets : ndarray of float64, shape (n_rows,)
        Each row's start (seconds), the onset of its first example.
    names : list of str
        Each row's data in messages.
    """
    fe = dnn.front_end
    onset_col, duration_col = _number_column(stim, "onset"), _number_column(stim, "duration")
    if stim.layout == "stream":
        if onset_col is None or duration_col is None:
            raise InputError(f"a type=audio table on one file ({stim.root}) needs 'onset' "
                             f"and 'duration' columns (seconds) for its segments.")
        info = probe_audio(stim.root)
        infos = [info] * len(stim)
        starts = np.rint(onset_col * info.rate).astype(np.int64)
        lengths = np.rint(duration_col * info.rate).astype(np.int64)
        past = np.flatnonzero(starts + lengths > info.frames)
        if past.size:
            i = int(past[0])
            raise InputError(f"row {i + 1}: segment {onset_col[i]:g}-"
                             f"{onset_col[i] + duration_col[i]:g} s runs past the end of "
                             f"{info.path} ({info.seconds:g} s); shorten or drop it.")
        names = [f"{stim.root} at {o:g} s" for o in onset_col]
        onsets = onset_col
    else:
        infos = [probe_audio(p) for p in stim.paths]
        starts = np.zeros(len(stim), dtype=np.int64)
        lengths = np.array([i.frames for i in infos], dtype=np.int64)
        names = [str(p) for p in stim.paths]
        onsets = onset_col if onset_col is not None else np.zeros(len(stim))
    counts = np.empty(len(stim), dtype=np.int64)
    for r, (info, n) in enumerate(zip(infos, lengths)):
        up, down = resample_ratio(info.rate, fe.sample_rate, where=f"{names[r]} (row {r + 1})")
        counts[r] = n_examples(resample_length(int(n), up, down), fe)
        if counts[r] == 0:
            raise InputError(f"{names[r]} (row {r + 1}) lasts {n / info.rate:.3f} s; "
                             f"{dnn.name} needs at least {fe.min_samples / fe.sample_rate:g} s "
                             f"for one {fe.example_seconds:g} s example.")
    return list(zip(infos, starts.tolist(), lengths.tolist())), counts, onsets, names


def audio_examples(source, front_end=VGGISH_FRONT_END):
    """Log-mel examples ``(k, 96, 64)`` float64 of one row ``(info, start, n)``."""
    info, start, n = source
    x = read_audio(info, start, n)
    return log_mel_examples(resample(x, info.rate, front_end.sample_rate,
                                     where=str(info.path)), front_end)


def audio_batches(sources, front_end, batch_size):
    """``(example indices, float32 batch (b, 1, 96, 64), [])`` over all rows' examples.

    One row's waveform and the examples of at most one batch (plus one row) are in
    memory at a time.
    """
    pending, done = [], 0
    for source in sources:
        pending.append(torch.from_numpy(audio_examples(source, front_end)
                                        .astype(np.float32))[:, None])
        while sum(len(p) for p in pending) >= batch_size:
            x = torch.cat(pending)
            pending = [x[batch_size:]] if len(x) > batch_size else []
            yield list(range(done, done + batch_size)), x[:batch_size], []
            done += batch_size
    if pending:
        x = torch.cat(pending)
        if len(x):
            yield list(range(done, done + len(x))), x, []
