"""VGGish's log-mel front end against an independent transcription of the published
``mel_features.py`` / ``vggish_input.py`` (loops and direct formulas written here), and
exact rational resampling against scipy."""
import numpy as np
import pytest
from scipy.signal import chirp, resample_poly

from dnnsparse.errors import InputError
from dnnsparse.utils.audio import (VGGISH_FRONT_END, log_mel_examples, n_examples, resample,
                                   resample_length, resample_ratio)

RATE = 16000


def _reference_examples(x):
    """VGGish examples by the published recipe, computed the slow, obvious way."""
    window, hop, n_fft, n_mels = 400, 160, 512, 64            # 25 ms, 10 ms at 16 kHz
    n_frames = 1 + (len(x) - window) // hop
    hann = np.array([0.5 - 0.5 * np.cos(2 * np.pi * n / window) for n in range(window)])
    n_bins = n_fft // 2 + 1
    k = np.arange(n_bins)[:, None]
    n = np.arange(window)[None, :]
    dft = np.exp(-2j * np.pi * k * n / n_fft)                  # zero-padded to 512 points
    spectrum = np.empty((n_frames, n_bins))
    for f in range(n_frames):
        spectrum[f] = np.abs(dft @ (x[f * hop:f * hop + window] * hann))

    def mel(hz):
        return 1127.0 * np.log(1.0 + hz / 700.0)

    lo_mel, hi_mel = mel(125.0), mel(7500.0)
    edges = [lo_mel + (hi_mel - lo_mel) * i / (n_mels + 1) for i in range(n_mels + 2)]
    weights = np.zeros((n_bins, n_mels))
    for b in range(1, n_bins):                                 # bin 0 (DC) weighs 0
        m = mel(b * (RATE / 2) / (n_bins - 1))
        for j in range(n_mels):
            left, centre, right = edges[j], edges[j + 1], edges[j + 2]
            rise = (m - left) / (centre - left)
            fall = (right - m) / (right - centre)
            weights[b, j] = max(0.0, min(rise, fall))
    log_mel = np.log(spectrum @ weights + 0.01)
    n_ex = 1 + (n_frames - 96) // 96
    return np.stack([log_mel[e * 96:(e + 1) * 96] for e in range(n_ex)])


def _sweep(seconds, rate=RATE):
    t = np.arange(int(seconds * rate)) / rate
    return 0.5 * chirp(t, f0=100, t1=seconds, f1=7000, method="logarithmic")


def _clicks(seconds, at, rate=RATE):
    x = np.zeros(int(seconds * rate))
    for s in at:
        x[int(s * rate)] = 0.9
    return x


@pytest.mark.parametrize("signal", ["sweep", "clicks"])
def test_log_mel_examples_equal_the_published_recipe(signal):
    x = _sweep(3.1) if signal == "sweep" else _clicks(3.1, [0.3, 1.2, 2.5])
    got = log_mel_examples(x)
    want = _reference_examples(x)
    assert got.shape == want.shape == (3, 96, 64)
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)


def test_a_click_lands_in_its_example():
    got = log_mel_examples(_clicks(3.0, [1.5]))              # 1.5 s: example 2 (0.96-1.92)
    energy = (np.exp(got) - 0.01).sum(axis=(1, 2))          # the mel energy itself
    assert energy[1] > 1 and abs(energy[0]) < 1e-9 and abs(energy[2]) < 1e-9


def test_example_count_boundary():
    fe = VGGISH_FRONT_END
    assert fe.min_samples == 15600 and fe.example_seconds == pytest.approx(0.96)
    assert n_examples(15599) == 0 and n_examples(15600) == 1
    assert n_examples(15600 + 96 * 160 - 1) == 1 and n_examples(15600 + 96 * 160) == 2
    for n in (15600, 20000, 31200, 31360, 48000):
        assert len(log_mel_examples(np.zeros(n))) == n_examples(n)


def test_resampling_44k1_to_16k_is_scipys_resample_poly():
    x = _sweep(1.3, rate=44100)
    assert resample_ratio(44100, 16000) == (160, 441)
    got = resample(x, 44100, 16000)
    np.testing.assert_array_equal(got, resample_poly(x, 160, 441))
    assert len(got) == resample_length(len(x), 160, 441)
    np.testing.assert_array_equal(resample(x, 16000, 16000), x)


@pytest.mark.parametrize("rate, pattern", [(0, "cannot be resampled"),
                                           (-8000, "cannot be resampled"),
                                           (7919, "ratio 16000/7919"),
                                           ("fast", "cannot be resampled")])
def test_rates_that_cannot_be_resampled(rate, pattern):
    with pytest.raises(InputError, match=pattern):
        resample_ratio(rate, 16000)


def test_examples_need_a_mono_waveform():
    with pytest.raises(InputError, match="1-D mono"):
        log_mel_examples(np.zeros((16000, 2)))
