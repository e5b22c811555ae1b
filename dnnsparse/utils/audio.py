"""VGGish's log-mel front end in NumPy, and exact rational resampling.

The front end is a transcription of the published VGGish ``mel_features.py`` /
``vggish_input.py`` (Hershey et al. 2017, tensorflow/models research/audioset) with
its parameters (:data:`VGGISH_FRONT_END`): 16 kHz mono input; frames of 25 ms (400
samples) every 10 ms (160), periodic Hann window, FFT of 512 points, magnitude
spectrum; 64 triangular mel bands between 125 and 7500 Hz on the HTK mel scale
``1127 ln(1 + f / 700)`` (the DC bin weighted 0); ``log(mel + 0.01)``; examples of
96 frames (0.96 s) taken every 96 frames, without overlap. A waveform of ``n``
samples gives ``1 + (n - 400) // 160`` frames and ``1 + (frames - 96) // 96``
examples; trailing frames that do not fill an example are dropped, as VGGish does.
The embedding postprocessing (PCA and 8-bit quantisation of the 128-D output) is not
part of this front end; networks see the log-mel examples.

No torch and no files here (it lives in utils, not algo, because extraction in
:mod:`dnnsparse.model` computes it and model never imports algo).
"""
import math
from fractions import Fraction

import numpy as np

from ..errors import InputError

__all__ = ["VGGISH_FRONT_END", "FrontEnd", "periodic_hann", "frame_signal",
           "hertz_to_mel", "mel_matrix", "log_mel_spectrogram", "log_mel_examples",
           "n_examples", "resample", "resample_length", "resample_ratio",
           "MAX_RESAMPLE_TERM"]

#: Largest numerator/denominator of the reduced rate ratio :func:`resample` accepts
#: (the polyphase filter has about 20 x max(up, down) taps).
MAX_RESAMPLE_TERM = 1000


class FrontEnd:
    """Parameters of a log-mel front end (defaults: VGGish's published ones)."""

    def __init__(self, *, sample_rate=16000, window=400, hop=160, n_fft=512, n_mels=64,
                 fmin=125.0, fmax=7500.0, log_offset=0.01, example_frames=96,
                 example_hop=96):
        self.sample_rate, self.window, self.hop, self.n_fft = sample_rate, window, hop, n_fft
        self.n_mels, self.fmin, self.fmax, self.log_offset = n_mels, fmin, fmax, log_offset
        self.example_frames, self.example_hop = example_frames, example_hop

    @property
    def example_seconds(self):
        """Seconds between example onsets (0.96 for VGGish)."""
        return self.example_hop * self.hop / self.sample_rate

    @property
    def min_samples(self):
        """Samples one example needs: ``window + (example_frames - 1) * hop`` (15600)."""
        return self.window + (self.example_frames - 1) * self.hop


#: VGGish's front end (``vggish_params.py``).
VGGISH_FRONT_END = FrontEnd()


def periodic_hann(n):
    """The periodic Hann window of length ``n`` (as ``mel_features.periodic_hann``)."""
    return 0.5 - 0.5 * np.cos(2 * np.pi / n * np.arange(n))


def frame_signal(x, length, hop):
    """Frames ``(n_frames, length, ...)`` of ``x`` every ``hop`` along axis 0 (a view)."""
    n = 1 + (x.shape[0] - length) // hop
    if n < 1:
        return np.empty((0, length) + x.shape[1:], dtype=x.dtype)
    strides = (x.strides[0] * hop,) + x.strides
    return np.lib.stride_tricks.as_strided(x, (n, length) + x.shape[1:], strides,
                                           writeable=False)


def hertz_to_mel(f):
    """HTK mel scale: ``1127 ln(1 + f / 700)``."""
    return 1127.0 * np.log(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def mel_matrix(fe=VGGISH_FRONT_END):
    """Weights ``(n_fft // 2 + 1, n_mels)`` from spectrum bins to mel bands."""
    n_bins = fe.n_fft // 2 + 1
    bins = hertz_to_mel(np.linspace(0.0, fe.sample_rate / 2, n_bins))[:, None]
    edges = np.linspace(hertz_to_mel(fe.fmin), hertz_to_mel(fe.fmax), fe.n_mels + 2)
    lo, mid, hi = edges[:-2], edges[1:-1], edges[2:]
    w = np.maximum(0.0, np.minimum((bins - lo) / (mid - lo), (hi - bins) / (hi - mid)))
    w[0] = 0.0        # the DC bin, as mel_features does
    return w


def log_mel_spectrogram(x, fe=VGGISH_FRONT_END):
    """``log(mel + offset)`` frames ``(n_frames, n_mels)`` of a mono waveform ``x``."""
    frames = frame_signal(np.asarray(x, dtype=np.float64), fe.window, fe.hop)
    spectrum = np.abs(np.fft.rfft(frames * periodic_hann(fe.window), fe.n_fft))
    return np.log(spectrum @ mel_matrix(fe) + fe.log_offset)


def n_examples(n_samples, fe=VGGISH_FRONT_END):
    """Examples a waveform of ``n_samples`` (at ``fe.sample_rate``) gives."""
    if n_samples < fe.window:
        return 0
    frames = 1 + (n_samples - fe.window) // fe.hop
    return max(0, 1 + (frames - fe.example_frames) // fe.example_hop)


def log_mel_examples(x, fe=VGGISH_FRONT_END):
    """VGGish input examples ``(n_examples, n_frames=96, n_mels=64)`` of mono ``x``.

    ``x`` is a 1-D waveform at ``fe.sample_rate`` (floats in [-1, 1]).

    Examples
    --------
    >>> t = np.arange(32000) / 16000
    >>> log_mel_examples(np.sin(2 * np.pi * 440 * t)).shape
    (2, 96, 64)
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 1:
        raise InputError(f"log_mel_examples takes a 1-D mono waveform; got shape {x.shape}.")
    mel = log_mel_spectrogram(x, fe)
    return np.ascontiguousarray(frame_signal(mel, fe.example_frames, fe.example_hop))


def resample_ratio(rate_in, rate_out, *, where="audio"):
    """``(up, down)``: the reduced ratio ``rate_out / rate_in``, checked."""
    try:
        ratio = Fraction(rate_out) / Fraction(rate_in)
    except (ValueError, TypeError, ZeroDivisionError, OverflowError):
        ratio = None
    if ratio is None or ratio <= 0 or not math.isfinite(float(rate_in)):
        raise InputError(f"{where}: sample rate {rate_in!r} Hz cannot be resampled to "
                         f"{rate_out} Hz; give a positive whole rate.")
    if max(ratio.numerator, ratio.denominator) > MAX_RESAMPLE_TERM:
        raise InputError(f"{where}: sample rate {rate_in:g} Hz cannot be resampled to "
                         f"{rate_out} Hz by a polyphase filter of reasonable length "
                         f"(ratio {ratio.numerator}/{ratio.denominator}); convert it to a "
                         f"common rate (e.g. 16000, 44100 or 48000 Hz) first.")
    return ratio.numerator, ratio.denominator


def resample_length(n, up, down):
    """Samples :func:`resample` returns for ``n`` input samples: ``ceil(n * up / down)``."""
    return -(-n * up // down)


def resample(x, rate_in, rate_out, *, where="audio"):
    """``x`` (axis 0 = time) resampled from ``rate_in`` to ``rate_out`` Hz by
    :func:`scipy.signal.resample_poly` with the exact reduced ratio."""
    up, down = resample_ratio(rate_in, rate_out, where=where)
    if up == down:
        return np.asarray(x, dtype=np.float64)
    from scipy.signal import resample_poly
    return resample_poly(np.asarray(x, dtype=np.float64), up, down, axis=0)
