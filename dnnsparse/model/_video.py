"""Video: clip networks (:class:`VideoDNN`) and the frame/clip batches of movie stimuli.

Two kinds of network read movies:

- an **image network** (any :class:`~dnnsparse.model.DNN`) sees one frame per row of
  a ``type=video`` table (:func:`frame_batches`);
- a **clip network** (:class:`VideoDNN`: torchvision's ``r3d_18``, ``mc3_18``,
  ``r2plus1d_18``, ``s3d``, ``mvit_*``, or any ``nn.Module`` taking
  ``(n, 3, T, H, W)``) sees a clip per row (:func:`clip_batches`): ``clip_len``
  frames, ``clip_stride`` frames apart, starting at the row's frame of a
  ``type=video`` movie, or at the first frame of a ``type=video_clip`` file.

Frames are decoded by :mod:`dnnsparse.io.video` one at a time and resized by the
network's image transform (the same PIL steps as for image files, so a frame saved
as a PNG gives the same activations), so a movie of any length costs the memory of
one batch. A 5-D layer output ``(n, c, t, h, w)`` is stored as ``(n, c, t*h, w)``:
row ``r`` is time step ``r // h``, image row ``r % h`` (layer attribute
``time_steps`` = t), so spatial pooling pools over time and space.
"""
import logging

import numpy as np
import torch

from ..errors import InputError, UnknownLayerError
from ..io.video import probe_video, VideoReader
from ..utils.memory import release_free_memory
from ..utils.validation import check_scalar
from ._dnn import DNN
from ._hooks import LayerCapture, as_4d
from ._images import _TRIM_EVERY     # heap trims as often as for image batches

__all__ = ["VideoDNN", "as_video_dnn", "check_clip_rows", "clip_batches", "clip_indexes",
           "frame_batches", "video_as_4d", "video_rows", "KINETICS_MEAN", "KINETICS_STD"]

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
    (512, 1, 1)
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

    def forward_layers(self, x, layers, *, stop_early=True):
        """``{layer: output}`` (4-D, see :func:`video_as_4d`) of one pass on clips ``x``."""
        layers = list(dict.fromkeys(layers))
        captured, raw = {}, {}

        def reducer(layer):
            def reduce(output):
                out = output[0] if isinstance(output, (tuple, list)) else output
                raw[layer] = tuple(out.shape) if torch.is_tensor(out) else ()
                return video_as_4d(output).detach().clone()
            return reduce

        with LayerCapture(self.register_layer_hook, {l: reducer(l) for l in layers},
                          stop_early=stop_early) as capture:
            captured = capture.run(self.module, x)
        for layer, shape in raw.items():
            if len(shape) == 5:
                self.time_steps[layer] = shape[2]
        missing = [l for l in layers if l not in captured]
        if missing:
            raise UnknownLayerError(f"layers {missing} were not reached in a forward pass of "
                             f"{self.name}; they are not used by its forward().")
        return captured

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


# --------------------------------------------------------------------- rows
def video_rows(stim, index):
    """``(frames, onsets, durations)`` of the rows of a ``type=video`` table.

    Rows are placed by their ``stimID`` frame numbers (1-based, DNNBrain) when all of
    them are whole numbers, else by their ``onset`` (seconds into the movie, the frame
    shown then). ``onsets``/``durations`` are the table's columns when it has them,
    else the frames' timestamps and the time to the next row (the last row: its
    frame's display time).

    Returns
    -------
    frames : ndarray of int64, shape (n_rows,)
        0-based frame indices.
    onsets, durations : ndarray of float64, shape (n_rows,)
    """
    where = f"{stim.root.name}"
    frames = stim.frame_numbers()
    if frames is not None:
        frames = index.check_frames(frames, where=f"stimID frame")
    elif "onset" in stim.columns:
        frames = index.frames_at(stim["onset"].astype(np.float64), where="onset")
    else:
        raise InputError(f"the rows of a type=video table must give frame numbers (stimID "
                         f"1, 2, ...) or an 'onset' column (seconds into {where}); got "
                         f"stimID {stim.ids[0]!r} and no onset.")
    onsets = (stim["onset"].astype(np.float64) if "onset" in stim.columns
              else index.times[frames])
    if "duration" in stim.columns:
        durations = stim["duration"].astype(np.float64)
    else:
        durations = index.durations[frames]
        following = np.diff(onsets)
        ahead = following > 0                    # rows in time order: up to the next row
        durations[:-1][ahead] = following[ahead]
    return frames, onsets, durations


def check_clip_rows(stim, dnn, frames, index):
    """Refuse rows whose clip runs past the end of the movie (one line)."""
    last = frames + dnn.clip_span - 1
    bad = np.flatnonzero(last >= index.n_frames)
    if bad.size:
        i = int(bad[0])
        raise InputError(f"row {i + 1} (frame {frames[i] + 1}): a clip of {dnn.clip_len} "
                         f"frames every {dnn.clip_stride} needs frames up to "
                         f"{last[i] + 1}, but {index.path.name} has {index.n_frames}; use "
                         f"a shorter -clip-len/-clip-stride or drop the last rows.")


def clip_indexes(stim, dnn):
    """:class:`~dnnsparse.io.video.VideoIndex` of every clip file of a ``type=video_clip``
    table, each checked to hold one clip of ``dnn`` (before any computation)."""
    indexes = []
    for i, path in enumerate(stim.paths):
        index = probe_video(path)
        if index.n_frames < dnn.clip_span:
            raise InputError(f"clip {path} (row {i + 1}) has {index.n_frames} frames; "
                             f"{dnn.name} takes {dnn.clip_len} frames every "
                             f"{dnn.clip_stride} ({dnn.clip_span} frames); use a shorter "
                             f"-clip-len/-clip-stride or longer clips.")
        indexes.append(index)
    return indexes


# ------------------------------------------------------------------- batches


def frame_batches(index, frames, transform, batch_size):
    """``(indices, uint8 batch (n, 3, H, W), [])`` of movie ``frames``, row by row.

    ``transform`` maps a PIL image to a ``uint8`` tensor (the network's image
    transform); one batch of frames is in memory at a time.
    """
    with VideoReader(index) as reader:
        for n, start in enumerate(range(0, len(frames), batch_size), 1):
            rows = range(start, min(start + batch_size, len(frames)))
            x = torch.stack([transform(reader.image(frames[r])) for r in rows])
            yield list(rows), x, []
            if n % _TRIM_EVERY == 0:
                release_free_memory()


class _ClipFrames:
    """Transformed frames of one movie, each decoded once while clips overlap."""

    def __init__(self, reader, transform):
        self.reader, self.transform, self.cache = reader, transform, {}

    def clip(self, frames):
        cache = {f: self.cache[f] if f in self.cache else
                 self.transform(self.reader.image(f)) for f in frames}
        self.cache = cache                   # only the latest clip's frames are kept
        return torch.stack([cache[f] for f in frames])


def clip_batches(sources, starts, dnn, transform, batch_size):
    """``(indices, uint8 clips (n, T, 3, H, W), [])``, one clip per row.

    ``sources[r]`` is the :class:`~dnnsparse.io.video.VideoIndex` of row ``r``'s movie
    (the same object for every row of a ``type=video`` table) and ``starts[r]`` its
    first frame (0-based); a clip takes ``dnn.clip_len`` frames ``dnn.clip_stride``
    apart.
    """
    offsets = np.arange(dnn.clip_len) * dnn.clip_stride
    reader = frames = None
    try:
        for n, start in enumerate(range(0, len(starts), batch_size), 1):
            rows = range(start, min(start + batch_size, len(starts)))
            clips = []
            for r in rows:
                if reader is None or reader.index is not sources[r]:
                    if reader is not None:
                        reader.close()
                    reader = VideoReader(sources[r])
                    frames = _ClipFrames(reader, transform)
                clips.append(frames.clip((starts[r] + offsets).tolist()))
            yield list(rows), torch.stack(clips), []
            if n % _TRIM_EVERY == 0:
                release_free_memory()
    finally:
        if reader is not None:
            reader.close()
