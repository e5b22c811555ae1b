"""Video: the frame and clip batches of movie stimuli.

Two kinds of network read movies:

- an **image network** (any :class:`~dnnsparse.model.DNN`) sees one frame per row of
  a ``type=video`` table (:func:`frame_batches`);
- a **clip network** (:class:`~._clipnet.VideoDNN`) sees a clip per row
  (:func:`clip_batches`): ``clip_len`` frames, ``clip_stride`` frames apart, starting
  at the row's frame of a ``type=video`` movie, or at the first frame of a
  ``type=video_clip`` file.

Frames are decoded by :mod:`dnnsparse.io.video` one at a time and resized by the
network's image transform (the same PIL steps as for image files, so a frame saved
as a PNG gives the same activations), so a movie of any length costs the memory of
one batch.
"""
import logging

import numpy as np
import torch

from ..errors import InputError
from ..io.video import VideoReader, probe_video
from ..utils.memory import release_free_memory
from ._images import _TRIM_EVERY     # heap trims as often as for image batches

__all__ = ["check_clip_rows", "clip_batches", "clip_indexes", "frame_batches",
           "video_rows"]

log = logging.getLogger(__name__)


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
