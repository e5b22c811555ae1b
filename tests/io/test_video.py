"""io.video against movies written here with PyAV (frame index drawn in each frame):
timestamps are the stream's real ones (also at a variable frame rate), the frames read
at onsets -- in any order, with seeks -- are exactly the intended ones, for several
codecs; damaged, truncated and undecodable movies, onsets past the end and a missing
PyAV are one clean error. Stimulus tables of type video / video_clip (DNNBrain's)."""
import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from dnnsparse.base.stimulus import Stimulus
from dnnsparse.errors import FileFormatError, InputError
from dnnsparse.io import video
from dnnsparse.io.video import VideoReader, probe_video

_spec = importlib.util.spec_from_file_location("video_files",
                                               Path(__file__).with_name("video_files.py"))
vf = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(vf)

N = 30


@pytest.fixture(params=[(s, c, rate) for s, c in vf.CODECS for rate in ("cfr", "vfr")],
                ids=lambda p: f"{p[1]}-{p[2]}")
def movie(request, tmp_path):
    suffix, codec, rate = request.param
    path = tmp_path / f"m{suffix}"
    pts = vf.vfr_pts(N) if rate == "vfr" else None
    times = vf.write_movie(path, N, codec=codec, pts_ms=pts, gop=7)
    return path, times


def test_at_least_two_codecs_are_tested():
    assert len(vf.CODECS) >= 2


def test_timestamps_are_the_streams_own(movie):
    path, times = movie
    index = probe_video(path)
    _, decoded = vf.decode_all(path)
    assert index.n_frames == N
    np.testing.assert_allclose(index.times, times, atol=1e-9)
    np.testing.assert_allclose(index.times, decoded, atol=1e-9)
    assert index.end > index.times[-1]
    np.testing.assert_allclose(index.durations[:-1], np.diff(times), atol=1e-9)


def test_frames_at_onsets_are_the_intended_ones(movie, rng):
    path, times = movie
    index = probe_video(path)
    # at each frame's time, just after it, and just before the next one
    gaps = np.diff(times)
    onsets = np.concatenate([times, times[:-1] + 0.3 * gaps, times[1:] - 1e-4])
    intended = np.concatenate([np.arange(N), np.arange(N - 1), np.arange(N - 1)])
    got = index.frames_at(onsets)
    np.testing.assert_array_equal(got, intended)
    # decoding them, shuffled (backward seeks and forward jumps), shows those indices
    order = rng.permutation(len(onsets))
    with VideoReader(index) as reader:
        shown = [vf.frame_index(reader.frame(i)) for i in got[order]]
        assert reader.seeks > 1
    np.testing.assert_array_equal(shown, intended[order])


def test_frames_equal_a_straight_decode(movie):
    path, _ = movie
    frames, _ = vf.decode_all(path)
    index = probe_video(path)
    with VideoReader(index) as reader:
        for i in (N - 1, 0, 5, 6, 20, 3):
            np.testing.assert_array_equal(reader.frame(i), frames[i])


def test_onsets_past_the_end_and_negative_are_refused(movie):
    path, _ = movie
    index = probe_video(path)
    with pytest.raises(InputError, match=r"onset .* \(row 2\) is outside the movie"):
        index.frames_at([0.0, index.end + 0.01])
    with pytest.raises(InputError, match=r"row 1"):
        index.frames_at([-0.5])
    with pytest.raises(InputError, match=r"frame 31 \(row 2\) is past the end .* 30 frames"):
        index.check_frames([0, 30])


def _undecodable(tmp_path):
    """An H.264 .mkv whose codec ID is changed to one FFmpeg does not know."""
    good = tmp_path / "good.mkv"
    vf.write_movie(good, 5, codec="libx264")
    data = good.read_bytes()
    assert data.count(b"V_MPEG4/ISO/AVC") == 1
    bad = tmp_path / "bad.mkv"
    bad.write_bytes(data.replace(b"V_MPEG4/ISO/AVC", b"V_ZZZZZ/ISO/AVC"))
    return bad


def _truncated(tmp_path):
    good = tmp_path / "good.mp4"
    vf.write_movie(good, 20, codec="mpeg4")
    bad = tmp_path / "cut.mp4"
    bad.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    return bad


def _junk(tmp_path):
    bad = tmp_path / "junk.mp4"
    bad.write_bytes(b"not a movie at all " * 50)
    return bad


@pytest.mark.parametrize("make, pattern", [
    (_undecodable, r"no decoder for its video codec"),
    (_truncated, r"cannot (open|read) movie .*cut\.mp4.*(damaged|truncated)"),
    (_junk, r"cannot open movie .*junk\.mp4"),
], ids=["undecodable", "truncated", "corrupt"])
def test_bad_movies_are_one_line_errors(tmp_path, make, pattern):
    if make is _undecodable and "libx264" not in vf.av.codecs_available:
        pytest.skip("the PyAV wheel has no H.264 encoder")
    with pytest.raises(FileFormatError, match=pattern) as err:
        probe_video(make(tmp_path))
    assert "\n" not in str(err.value)


def test_missing_pyav_names_the_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "av", None)          # import av -> ImportError
    with pytest.raises(InputError, match=r"pip install 'dnnsparse\[video\]'"):
        video.require_av()
    path = tmp_path / "m.mp4"
    path.write_bytes(b"x")
    with pytest.raises(InputError, match=r"dnnsparse\[video\]"):
        probe_video(path)


# --------------------------------------------------------------------- tables
def test_dnnbrain_video_clip_table_with_float_labels_loads(tmp_path):
    (tmp_path / "clips").mkdir()
    for name in ("a.mp4", "b.mp4"):
        (tmp_path / "clips" / name).write_bytes(b"")
    # DNNBrain's writer prints the numbers of a numeric table as floats
    (tmp_path / "c.stim.csv").write_text(
        "type=video_clip\npath=clips\ntitle=two clips\ndata=stimID,label,onset,duration\n"
        "a.mp4,0.0,0.0,2.0\nb.mp4,1.0,2.0,2.0\n")
    stim = Stimulus.load(tmp_path / "c.stim.csv")
    assert stim.type == "video_clip" and stim.layout == "files"
    assert stim.labels.tolist() == [0, 1] and stim.labels.dtype.kind == "i"
    assert [p.name for p in stim.check_files()] == ["a.mp4", "b.mp4"]
    stim.save(tmp_path / "again.stim.csv")
    assert Stimulus.load(tmp_path / "again.stim.csv").type == "video_clip"


def test_dnnbrain_video_table_frame_numbers(tmp_path):
    vf.write_movie(tmp_path / "m.mp4", 10)
    (tmp_path / "v.stim.csv").write_text(
        "type=video\npath=m.mp4\ndata=stimID,label,onset,duration\n"
        "1.0,0.0,0.0,1.0\n3.0,1.0,1.0,1.0\n10,1,2.0,1.0\n")
    stim = Stimulus.load(tmp_path / "v.stim.csv")
    assert stim.type == "video" and stim.layout == "stream"
    assert stim.frame_numbers().tolist() == [0, 2, 9]
    assert stim.check_files() == [tmp_path / "m.mp4"]
    with pytest.raises(InputError, match="no file per row"):
        stim.paths
    assert Stimulus(["a", "2"], type="video").frame_numbers() is None
    assert Stimulus(["0", "2"], type="video").frame_numbers() is None   # 1-based


@pytest.mark.parametrize("rate", ["cfr", "vfr"])
def test_table_from_video_has_real_onsets(tmp_path, rate):
    n = 40
    pts = vf.vfr_pts(n) if rate == "vfr" else None
    times = vf.write_movie(tmp_path / "m.mkv", n, codec=vf.CODECS[-1][1], pts_ms=pts)
    end = probe_video(tmp_path / "m.mkv").end
    every = Stimulus.from_video(tmp_path / "m.mkv")
    assert every.ids.tolist() == [str(i) for i in range(1, n + 1)]
    np.testing.assert_allclose(every["onset"], times, atol=1e-9)
    np.testing.assert_allclose(every["duration"], np.diff(np.append(times, end)), atol=1e-9)

    fps = 4.0
    sampled = Stimulus.from_video(tmp_path / "m.mkv", fps=fps)
    # slow loop: the frame shown at k / fps is the last one starting at or before it
    expected = []
    for k in range(int(np.ceil(end * fps))):
        if k / fps < end:
            f = max(i for i in range(n) if times[i] <= k / fps + 1e-9)
            if f not in expected:
                expected.append(f)
    assert sampled.ids.tolist() == [str(f + 1) for f in expected]
    np.testing.assert_allclose(sampled["onset"], times[expected], atol=1e-9)
    if rate == "vfr":       # not frame count x nominal rate
        assert not np.allclose(sampled["onset"], (np.array(expected)) / 25)
    sampled.save(tmp_path / "s.stim.csv")
    back = Stimulus.load(tmp_path / "s.stim.csv")
    np.testing.assert_array_equal(back["onset"], sampled["onset"])
    np.testing.assert_array_equal(back.frame_numbers(), expected)
