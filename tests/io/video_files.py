"""Movies written with PyAV for the video tests: each frame's index drawn as 8 black or
white blocks (bit b of the index: block b), which survives lossy codecs, at frame
timestamps the test chooses (constant or variable frame rate).

Imported by the video tests of tests/io, tests/model and tests/cli (by file path).
"""
from fractions import Fraction

import av
import numpy as np

SIZE = 64
N_BITS = 8


def frame_image(i, size=SIZE):
    """RGB frame (size, size, 3) uint8 showing index ``i`` (0..255) as blocks, plus a
    slow colour ramp so that frames differ in every channel."""
    img = np.zeros((size, size, 3), np.uint8)
    h, w = size // 2, size // 4
    for b in range(N_BITS):
        if (i >> b) & 1:
            img[(b // 4) * h:(b // 4 + 1) * h, (b % 4) * w:(b % 4 + 1) * w] = 255
    img[..., 2] = np.clip(img[..., 2].astype(int) // 2 + (i * 7) % 100, 0, 255)
    return img


def frame_index(rgb):
    """The index :func:`frame_image` drew, read back from a decoded frame."""
    size = rgb.shape[0]
    h, w = size // 2, size // 4
    bits = [rgb[(b // 4) * h + h // 4:(b // 4) * h + 3 * h // 4,
                (b % 4) * w + w // 4:(b % 4) * w + 3 * w // 4, 0].mean() > 128
            for b in range(N_BITS)]
    return sum(int(bit) << b for b, bit in enumerate(bits))


#: (container suffix, encoder) pairs the tests use, where the wheel ships the encoder.
CODECS = [(suffix, codec) for suffix, codec in
          ((".mp4", "mpeg4"), (".mkv", "libx264"), (".webm", "libvpx"))
          if codec in av.codecs_available]


def write_movie(path, n_frames, *, codec="mpeg4", pts_ms=None, rate=25, size=SIZE,
                gop=None, image=frame_image):
    """Write ``n_frames`` frames; ``pts_ms`` (ints, milliseconds) gives a variable frame
    rate, else ``rate`` frames per second. Returns the frames' times in seconds."""
    container = av.open(str(path), "w")
    stream = container.add_stream(codec, rate=rate)
    stream.width = stream.height = size
    stream.pix_fmt = "yuv420p"
    if gop:
        stream.codec_context.gop_size = gop
    if codec == "libx264":
        stream.options = {"crf": "10"}
    elif codec == "mpeg4":
        stream.codec_context.qmin = stream.codec_context.qmax = 2
    if pts_ms is not None:
        stream.codec_context.time_base = Fraction(1, 1000)
        stream.time_base = Fraction(1, 1000)
    for i in range(n_frames):
        frame = av.VideoFrame.from_ndarray(image(i), format="rgb24")
        if pts_ms is not None:
            frame.pts, frame.time_base = int(pts_ms[i]), Fraction(1, 1000)
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
    container.close()
    if pts_ms is not None:
        return np.asarray(pts_ms, dtype=np.float64) / 1000
    return np.arange(n_frames) / rate


def decode_all(path):
    """Every frame of ``path`` in order, decoded straight through (no seeking): RGB
    arrays and their times (seconds) -- the independent reference."""
    with av.open(str(path)) as container:
        frames = [(f.to_ndarray(format="rgb24"), float(f.pts * f.time_base))
                  for f in container.decode(video=0)]
    return [f for f, _ in frames], np.array([t for _, t in frames])


#: Milliseconds of a variable-frame-rate movie: intervals 40, 80, 20, 120, ... ms.
def vfr_pts(n_frames):
    steps = np.resize([40, 80, 20, 120, 60], n_frames - 1)
    return np.concatenate([[0], np.cumsum(steps)]).astype(int)
