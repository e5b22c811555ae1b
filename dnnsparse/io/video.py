"""Movie files through PyAV (FFmpeg): frame timestamps, and frames by index, streamed.

:func:`probe_video` reads a movie's packets (no decoding) and returns a
:class:`VideoIndex`: every frame's presentation timestamp (``pts * time_base``,
seconds), in presentation order, and which frames are keyframes. Times are the
stream's real ones -- a variable-frame-rate movie keeps its irregular times -- never
frame count x nominal rate. :class:`VideoReader` then decodes the frames asked for,
in any order: forward decoding while the next frame is close, a seek by timestamp to
the nearest keyframe before it otherwise (FFmpeg's decoder threads do the decoding).
Only the current frame is held, so a two-hour movie costs the memory of one frame.

Frames are numbered 0-based here; a ``.stim.csv`` of ``type=video`` numbers them
from 1 (DNNBrain), which :mod:`dnnsparse.base.stimulus` translates.

PyAV is an extra (``pip install 'dnnsparse[video]'``); it is imported on first use,
and its absence is one clear error. No torch here.
"""
import logging
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..errors import FileFormatError, InputError
from ._files import check_input_file

__all__ = ["VIDEO_EXTRA", "VideoIndex", "VideoReader", "probe_video", "require_av",
           "SEEK_GAP", "TIME_TOLERANCE"]

log = logging.getLogger(__name__)

#: How to install the optional video support, as error messages say it.
VIDEO_EXTRA = "pip install 'dnnsparse[video]'"

#: Seconds an onset may fall before a frame's timestamp and still select that
#: frame (onsets written as decimal text round the exact rational timestamps).
TIME_TOLERANCE = 1e-6

#: A reader seeks instead of decoding forward when that skips more than this many
#: frames (a seek costs about as much as decoding a few dozen small frames).
SEEK_GAP = 32


def require_av():
    """The ``av`` module, or an :class:`InputError` naming the extra to install."""
    try:
        import av
    except ImportError:
        raise InputError(f"reading video needs PyAV, which is not installed: "
                         f"{VIDEO_EXTRA}.") from None
    return av


def _ffmpeg_message(exc):
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return " ".join(str(text).split())[:160]


def _open(av, path):
    """An opened container and its first video stream, or one-line errors."""
    try:
        container = av.open(str(path), "r")
    except av.error.FFmpegError as exc:
        raise FileFormatError(f"cannot open movie {path} ({_ffmpeg_message(exc)}); the file "
                              f"is damaged, truncated or not a movie.") from None
    if not container.streams.video:
        container.close()
        raise FileFormatError(f"{path} holds no video stream; give a movie file.")
    stream = container.streams.video[0]
    if stream.codec_context is None:
        tag = getattr(stream, "codec_tag", "") or "unknown"
        container.close()
        raise FileFormatError(f"cannot decode movie {path}: FFmpeg (PyAV) has no decoder for "
                              f"its video codec ({tag}); re-encode it, e.g. 'ffmpeg -i "
                              f"{Path(path).name} -c:v libx264 out.mp4'.")
    return container, stream


@dataclass(frozen=True)
class VideoIndex:
    """Frame timing of one movie's first video stream, in presentation order.

    Attributes
    ----------
    path : Path
    pts : ndarray of int64, shape (n_frames,)
        Presentation timestamps in units of ``time_base``, increasing.
    times : ndarray of float64, shape (n_frames,)
        ``pts * time_base``: seconds.
    keyframe : ndarray of bool, shape (n_frames,)
    end : float
        Seconds at which the last frame stops being shown (its timestamp plus its
        duration, or plus the median frame interval when the file gives none).
    end_pts : int
        :attr:`end` in units of ``time_base``.
    time_base : Fraction
    width, height : int
    codec : str
    """
    path: Path
    pts: np.ndarray
    times: np.ndarray
    keyframe: np.ndarray
    end: float
    end_pts: int
    time_base: Fraction
    width: int
    height: int
    codec: str

    @property
    def n_frames(self):
        return len(self.pts)

    @property
    def durations(self):
        """Seconds each frame is shown: to the next timestamp (the last: to :attr:`end`)."""
        return _seconds(np.diff(np.append(self.pts, self.end_pts)), self.time_base)

    def spans(self, frames):
        """Seconds from each of ``frames`` (0-based, increasing) to the next one (the
        last: to :attr:`end`), computed on the integer timestamps."""
        pts = np.append(self.pts[np.asarray(frames, dtype=np.int64)], self.end_pts)
        return _seconds(np.diff(pts), self.time_base)

    def frames_at(self, onsets, *, where="onset"):
        """0-based index of the frame shown at each of ``onsets`` (seconds).

        Frame ``i`` is shown from ``times[i]`` until ``times[i + 1]`` (the last one
        until :attr:`end`); an onset before the first timestamp gives frame 0.

        Raises
        ------
        InputError
            For a negative or non-finite onset, or one at or after :attr:`end`,
            naming the first such row (``where`` names the values).

        Examples
        --------
        >>> index.frames_at([0.0, 0.5])                          # doctest: +SKIP
        array([ 0, 12])
        """
        onsets = np.asarray(onsets, dtype=np.float64)
        bad = np.flatnonzero(~np.isfinite(onsets) | (onsets < 0) | (onsets >= self.end))
        if bad.size:
            i = int(bad[0])
            raise InputError(f"{where} {onsets[i]:g} s (row {i + 1}) is outside the movie "
                             f"{self.path.name}, which runs from 0 to {self.end:g} s "
                             f"({self.n_frames} frames); give onsets within it.")
        idx = np.searchsorted(self.times, onsets + TIME_TOLERANCE, side="right") - 1
        return np.maximum(idx, 0)

    def check_frames(self, frames, *, where="frame"):
        """Refuse 0-based frame indices outside ``[0, n_frames - 1]`` (one line)."""
        frames = np.asarray(frames, dtype=np.int64)
        bad = np.flatnonzero((frames < 0) | (frames >= self.n_frames))
        if bad.size:
            i = int(bad[0])
            raise InputError(f"{where} {frames[i] + 1} (row {i + 1}) is past the end of "
                             f"{self.path.name}, which has {self.n_frames} frames "
                             f"(1..{self.n_frames}).")
        return frames


def probe_video(path):
    """Read the frame timing of ``path`` from its packets (nothing is decoded).

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    VideoIndex

    Raises
    ------
    FileFormatError
        A damaged, truncated or unknown file, a stream without timestamps, a codec
        FFmpeg cannot decode, or a movie without frames.

    Examples
    --------
    >>> index = probe_video("movie.mp4")                        # doctest: +SKIP
    >>> index.n_frames, index.times[:3]                         # doctest: +SKIP
    (300, array([0.  , 0.04, 0.08]))
    """
    av = require_av()
    path = check_input_file(path, what="movie")
    container, stream = _open(av, path)
    pts, key, durations = [], [], []
    try:
        for packet in container.demux(stream):
            # the demuxer's final empty packet; packets an edit list drops (the decoder
            # outputs no frame for them, so they are no frame of the movie)
            if packet.size == 0 or packet.is_discard:
                continue
            if packet.pts is None:
                raise FileFormatError(f"{path}: the video stream has no presentation "
                                      f"timestamps; remux it into an .mp4 or .mkv (e.g. "
                                      f"'ffmpeg -i {path.name} -c copy out.mkv').")
            pts.append(packet.pts)
            key.append(packet.is_keyframe)
            durations.append(packet.duration or 0)
    except av.error.FFmpegError as exc:
        raise FileFormatError(f"cannot read movie {path} ({_ffmpeg_message(exc)}); the "
                              f"file is damaged or truncated.") from None
    finally:
        time_base = stream.time_base
        width, height = stream.codec_context.width, stream.codec_context.height
        codec = stream.codec_context.name
        container.close()
    if not pts:
        raise FileFormatError(f"{path}: the video stream has no frames.")
    pts = np.asarray(pts, dtype=np.int64)
    order = np.argsort(pts, kind="stable")        # decode order -> presentation order
    pts, key = pts[order], np.asarray(key, dtype=bool)[order]
    durations = np.asarray(durations, dtype=np.int64)[order]
    if np.any(np.diff(pts) == 0):
        raise FileFormatError(f"{path}: two frames share a timestamp; the file's timing "
                              f"is broken (remux it with ffmpeg).")
    times = _seconds(pts, time_base)
    last = int(durations[-1]) if durations[-1] > 0 else \
        (int(np.median(np.diff(pts))) if len(pts) > 1 else 0)
    end_pts = int(pts[-1]) + max(last, 1)
    return VideoIndex(path=path, pts=pts, times=times, keyframe=key,
                      end=float(end_pts * time_base), end_pts=end_pts, time_base=time_base, width=width, height=height, codec=codec)


def _seconds(pts, time_base):
    """``pts * time_base`` in float64, exact up to the float's rounding."""
    return pts.astype(np.float64) * time_base.numerator / time_base.denominator


class VideoReader:
    """Decode frames of one movie by 0-based index, in any order, one at a time.

    Forward decoding continues while no keyframe lies between the current frame and
    the next one asked for; otherwise (and for any frame before the current one) it
    seeks by timestamp to the keyframe before the frame and decodes forward from
    there. FFmpeg's decoder threads (``thread_type="AUTO"``) do the decoding.

    Parameters
    ----------
    index : VideoIndex
        From :func:`probe_video`.
    threads : int, optional
        Decoder threads (0 or None: FFmpeg's choice).

    Examples
    --------
    >>> index = probe_video("movie.mp4")                        # doctest: +SKIP
    >>> with VideoReader(index) as reader:                      # doctest: +SKIP
    ...     rgb = reader.frame(12)                             # (height, width, 3) uint8
    """

    def __init__(self, index, *, threads=None):
        self.index = index
        self._av = require_av()
        self._container, self._stream = _open(self._av, index.path)
        self._stream.thread_type = "AUTO"
        if threads:
            self._stream.thread_count = int(threads)
        self._frames = None            # the decoding iterator
        self._pos = -1                 # index of the last decoded frame
        self._last = None              # that frame (an av.VideoFrame)
        self._keys = np.flatnonzero(index.keyframe)
        self.seeks = 0                 # how often it seeked (for tests and benchmarks)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def close(self):
        self._frames = self._last = None
        if self._container is not None:
            self._container.close()
            self._container = None

    def _seek(self, i):
        before = self._keys[self._keys <= i]
        key = int(before[-1]) if before.size else 0
        self._container.seek(int(self.index.pts[key]), stream=self._stream, backward=True,
                             any_frame=False)
        self._frames = self._container.decode(self._stream)
        self._pos, self._last = -1, None
        self.seeks += 1
        return key

    def _needs_seek(self, i):
        if self._frames is None or i < self._pos:
            return True
        # jump when decoding forward would go through many frames that a keyframe
        # nearer to i lets us skip (a seek restarts the decoder threads: not for a few)
        before = self._keys[self._keys <= i]
        return before.size > 0 and int(before[-1]) - self._pos > SEEK_GAP

    def _decode_to(self, i):
        target = int(self.index.pts[i])
        if self._needs_seek(i):
            self._seek(i)
        try:
            for frame in self._frames:
                if frame.pts is None:
                    continue
                if frame.pts >= target:
                    if frame.pts != target:
                        break
                    self._pos, self._last = i, frame
                    return frame
        except self._av.error.FFmpegError as exc:
            raise FileFormatError(f"cannot decode frame {i + 1} of {self.index.path} "
                                  f"({_ffmpeg_message(exc)}); the movie is damaged.") from None
        raise FileFormatError(f"{self.index.path}: frame {i + 1} (at "
                              f"{self.index.times[i]:g} s) could not be decoded; the movie "
                              f"is damaged or truncated.")

    def frame(self, i):
        """Frame ``i`` (0-based) as RGB ``uint8`` array of shape (height, width, 3)."""
        return self.video_frame(i).to_ndarray(format="rgb24")

    def image(self, i):
        """Frame ``i`` (0-based) as a PIL RGB image."""
        return self.video_frame(i).to_image()

    def video_frame(self, i):
        """Frame ``i`` (0-based) as PyAV's ``VideoFrame``."""
        i = int(i)
        if not 0 <= i < self.index.n_frames:
            raise InputError(f"frame {i + 1} is past the end of {self.index.path.name}, "
                             f"which has {self.index.n_frames} frames.")
        if i == self._pos and self._last is not None:
            return self._last
        return self._decode_to(i)
