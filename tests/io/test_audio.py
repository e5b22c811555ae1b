"""io.audio: headers, exact segments read by seek, mono mixdown, damaged files."""
import sys

import numpy as np
import pytest
import soundfile as sf

from dnnsparse.errors import FileFormatError, InputError
from dnnsparse.io.audio import probe_audio, read_audio, require_soundfile


@pytest.fixture
def ramp(tmp_path):
    """Stereo 16-bit WAV at 8 kHz whose left sample k is k (mod 2**15), right -k."""
    k = np.arange(20000) % 30000
    data = np.stack([k, -k], axis=1).astype(np.int16)
    sf.write(tmp_path / "ramp.wav", data, 8000, subtype="PCM_16")
    return tmp_path / "ramp.wav", data


def test_probe(ramp):
    info = probe_audio(ramp[0])
    assert (info.rate, info.frames, info.channels) == (8000, 20000, 2)
    assert info.seconds == pytest.approx(2.5)


def test_segments_are_the_exact_samples_mixed_to_mono(ramp):
    path, data = ramp
    info = probe_audio(path)
    got = read_audio(info, 12345, 321)
    want = data[12345:12345 + 321].astype(np.float64).mean(axis=1) / 32768
    np.testing.assert_array_equal(got, want)               # (k + -k) / 2 = 0
    mono = tmp = path.with_name("mono.wav")
    sf.write(tmp, data[:, 0], 8000, subtype="PCM_16")
    np.testing.assert_array_equal(read_audio(probe_audio(mono), 7000, 5),
                                  np.arange(7000, 7005) / 32768)
    assert len(read_audio(probe_audio(mono))) == 20000


def test_segment_outside_the_file(ramp):
    with pytest.raises(InputError, match="outside"):
        read_audio(probe_audio(ramp[0]), 19990, 11)


def test_corrupt_and_truncated_files(ramp, tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF this is not audio at all" * 10)
    with pytest.raises(FileFormatError, match="cannot open audio file .*bad.wav"):
        probe_audio(bad)
    wav = tmp_path / "cut.wav"
    wav.write_bytes(ramp[0].read_bytes()[:50000])
    with pytest.raises(FileFormatError, match=r"cut.wav is truncated: its header declares "
                                              r"30044 more bytes"):
        probe_audio(wav)
    flac = tmp_path / "t.flac"
    sf.write(flac, np.random.default_rng(0).uniform(-0.5, 0.5, 40000), 16000)
    cut = tmp_path / "cut.flac"
    cut.write_bytes(flac.read_bytes()[:len(flac.read_bytes()) // 2])
    with pytest.raises(FileFormatError, match="cut.flac"):
        read_audio(probe_audio(cut))


def test_missing_soundfile_is_one_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "soundfile", None)
    with pytest.raises(InputError, match=r"pip install 'dnnsparse\[audio\]'"):
        require_soundfile()
