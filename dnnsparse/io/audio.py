"""Audio files through soundfile (libsndfile): probe, and read segments by frame.

:func:`probe_audio` reads a file's header (rate, frames, channels) without decoding
it; :func:`read_audio` decodes ``n`` frames from ``start`` (a seek, then a read: a long
file is never held whole) as float64 in [-1, 1] and mixes the channels down to mono
by their mean (as VGGish's ``vggish_input`` does). A file that holds fewer frames
than its header says (truncated) is refused: a WAV whose ``data`` chunk is cut short
(which libsndfile would read as a shorter file) when probed, other formats when their
frames cannot all be read.

soundfile is an extra (``pip install 'dnnsparse[audio]'``), imported on first use.
No torch here.
"""
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import FileFormatError, InputError
from ._files import check_input_file

__all__ = ["AUDIO_EXTRA", "AudioInfo", "check_audio", "probe_audio", "read_audio",
           "require_soundfile"]

log = logging.getLogger(__name__)

#: How to install the optional audio support, as error messages say it.
AUDIO_EXTRA = "pip install 'dnnsparse[audio]'"


def require_soundfile():
    """The ``soundfile`` module, or an :class:`InputError` naming the extra."""
    try:
        import soundfile
    except (ImportError, OSError):        # OSError: the wheel's libsndfile is missing
        raise InputError(f"reading audio needs soundfile, which is not installed: "
                         f"{AUDIO_EXTRA}.") from None
    return soundfile


def _message(exc):
    return " ".join(str(exc).split())[:160] or type(exc).__name__


@dataclass(frozen=True)
class AudioInfo:
    """Header of one audio file: ``path``, ``rate`` (Hz), ``frames``, ``channels``."""
    path: Path
    rate: int
    frames: int
    channels: int

    @property
    def seconds(self):
        return self.frames / self.rate


def _wav_data_missing(path):
    """Bytes of a RIFF/WAVE file's ``data`` chunk that its header declares but the file
    lacks (0 when complete; libsndfile would silently read such a file as shorter)."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return 0
        pos = 12
        while pos + 8 <= size:
            f.seek(pos)
            chunk = f.read(8)
            n = int.from_bytes(chunk[4:], "little")
            if chunk[:4] == b"data":
                return max(0, pos + 8 + n - size) if n not in (0, 0xFFFFFFFF) else 0
            pos += 8 + n + (n & 1)
    return 0


def probe_audio(path):
    """:class:`AudioInfo` of ``path`` (one-line :class:`FileFormatError` if unreadable).

    Examples
    --------
    >>> probe_audio("sweep.wav").rate          # doctest: +SKIP
    44100
    """
    sf = require_soundfile()
    path = check_input_file(path, what="audio file")
    try:
        info = sf.info(str(path))
    except Exception as exc:         # LibsndfileError / RuntimeError: not audio
        raise FileFormatError(f"cannot open audio file {path} ({_message(exc)}); the file "
                              f"is damaged, truncated or not an audio format libsndfile "
                              f"reads (WAV, FLAC, OGG, MP3, ...).") from None
    missing = _wav_data_missing(Path(path))
    if missing:
        raise FileFormatError(f"audio file {path} is truncated: its header declares "
                              f"{missing} more bytes of samples than the file holds; "
                              f"re-export it.")
    if info.frames <= 0 or info.samplerate <= 0:
        raise FileFormatError(f"audio file {path} holds no samples (rate {info.samplerate} "
                              f"Hz, {info.frames} frames).")
    return AudioInfo(Path(path), int(info.samplerate), int(info.frames), int(info.channels))


def read_audio(info, start=0, n=None):
    """Mono float64 samples ``[start, start + n)`` of the file of ``info``.

    Parameters
    ----------
    info : AudioInfo
    start : int
        First frame (0-based).
    n : int, optional
        Frames to read (default: to the end).

    Returns
    -------
    ndarray of float64, shape (n,)
        The mean of the channels, in [-1, 1].
    """
    sf = require_soundfile()
    n = info.frames - start if n is None else int(n)
    if start < 0 or n < 0 or start + n > info.frames:
        raise InputError(f"frames {start}..{start + n} are outside {info.path} "
                         f"({info.frames} frames).")
    try:
        with sf.SoundFile(str(info.path)) as f:
            f.seek(int(start))
            data = f.read(n, dtype="float64", always_2d=True)
    except Exception as exc:
        raise FileFormatError(f"cannot decode audio file {info.path} ({_message(exc)}); "
                              f"the file is damaged or truncated.") from None
    if len(data) != n:
        raise FileFormatError(f"audio file {info.path} is truncated: its header says "
                              f"{info.frames} frames but only {start + len(data)} could be "
                              f"read; re-export it.")
    return data.mean(axis=1)


def check_audio(path, *, block=1 << 16):
    """:func:`probe_audio` of ``path``, after decoding every sample once, block by block.

    For building tables (db_stim): a file whose header reads but whose samples do not
    (a cut FLAC or MP3) is refused now, naming it, rather than when activations are
    extracted. At most ``block`` frames are in memory.

    Returns
    -------
    AudioInfo

    Raises
    ------
    FileFormatError
        As :func:`probe_audio` and :func:`read_audio`.

    Examples
    --------
    >>> check_audio("sweep.wav").frames        # doctest: +SKIP
    44100
    """
    sf = require_soundfile()
    info = probe_audio(path)
    read = 0
    try:
        with sf.SoundFile(str(info.path)) as f:
            while True:
                n = len(f.read(block, dtype="float32", always_2d=True))
                read += n
                if n < block:
                    break
    except Exception as exc:
        raise FileFormatError(f"cannot decode audio file {info.path} ({_message(exc)}); "
                              f"the file is damaged or truncated.") from None
    if read != info.frames:
        raise FileFormatError(f"audio file {info.path} is truncated: its header says "
                              f"{info.frames} frames but only {read} could be read; "
                              f"re-export it.")
    return info
