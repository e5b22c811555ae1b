"""Benchmark movie extraction (db_act on a type=video table) on CPU.

Prints:

(a) db_act's wall time on every frame of a generated movie (``--frames`` frames of
    ``--width`` x ``--height``, mpeg4) / a bare ``inference_mode`` forward loop over the
    same frames, already decoded, resized and normalised (goal <= 1.2), best of
    ``--repeats`` runs each, interleaved. AlexNet (random weights, seeded, saved once to
    a .pth file that db_act loads, as benchmarks/extract.py does) at 224 x 224, the
    paper's 7 layers with ``-pool mean`` (``--unpooled``: without); db_act runs in this process (Python and torch start-up not
    counted; loading the weights, decoding, resizing, the network, writing the .act.h5
    are). For comparison, db_act on the same frames saved as PNG images (type=image),
    and the time to decode + resize the frames alone (one thread).
(c) with ``--unpooled``, where the time goes: the bare loop; the loop with the 7 layers'
    outputs captured by hooks (as NumPy); writing those captured outputs alone into an
    .act.h5 file (fletcher32 on) with each ``-compression`` (lzf, the default; gzip;
    none); and db_act with the rows written in the caller's thread
    (``_FileSink.BACKGROUND = False``; db_act's choice when torch uses every CPU), with
    the writer thread (db_act's choice on a GPU or with a core free), and with
    ``-compression none``; each as a ratio to the bare loop, interleaved with it.
(b) peak RSS of db_act for movies of N and 2N frames (``--rss-frames``, 64 x 64 frames,
    a small convolution written unpooled, 8 x 55 x 55 per frame), each in a fresh process
    (VmHWM of that process, see benchmarks/extract.py): goal within 10%.

usage: python benchmarks/video.py [--frames 300] [--rss-frames 1000] [--repeats 2]
"""
import argparse
import sys
import tempfile
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
# db_act's benchmark: the same bare loop, timer and fresh-process peak RSS
from extract import bare_loop, peak_rss_mb, timed  # noqa: E402

from dnnsparse.base.stimulus import Stimulus
from dnnsparse.cli import act as db_act
from dnnsparse.io.act import ActWriter
from dnnsparse.io.video import VideoReader, probe_video
from dnnsparse.model import _extract, load_dnn
from dnnsparse.model._hooks import LayerCapture

# the paper's 7 layers, pooled, as benchmarks/extract.py (a) times db_act on images
LAYERS = ["conv1_relu", "conv2_relu", "conv3_relu", "conv4_relu", "conv5_relu",
          "fc1_relu", "fc2_relu"]
SMALL_NET = """import torch
def build():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 8, 7, stride=4), torch.nn.ReLU())
"""


def make_movie(path, n, *, width, height, rate=25, seed=0):
    """``n`` frames of smooth moving colour blobs (mpeg4), like a natural movie's content."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (8, 8, 3)).astype(np.float64)
    yy, xx = np.mgrid[0:height, 0:width]
    with av.open(str(path), "w") as c:
        s = c.add_stream("mpeg4", rate=rate)
        s.width, s.height, s.pix_fmt = width, height, "yuv420p"
        s.codec_context.time_base = Fraction(1, rate)
        for i in range(n):
            shift = i * 0.05
            img = base[((yy / height * 8 + shift) % 8).astype(int),
                       ((xx / width * 8 + 2 * shift) % 8).astype(int)]
            frame = av.VideoFrame.from_ndarray(img.astype(np.uint8), format="rgb24")
            for p in s.encode(frame):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path




def decoded_batches(dnn, movie, batch_size):
    """Every frame decoded, resized and normalised, in batches (outside any timing)."""
    index = probe_video(movie)
    tf = dnn.image_transform()
    with VideoReader(index) as r:
        x = torch.stack([tf(r.image(i)) for i in range(index.n_frames)])
    return [dnn.normalize(b) for b in x.split(batch_size)]




def captured_outputs(dnn, batches, layers):
    """The loop with the layers' outputs captured by hooks, as db_act's sink gets them."""
    capture = LayerCapture(dnn.register_layer_hook,
                           {name: (lambda o: o.detach().clone()) for name in layers})
    out = []
    with capture, torch.inference_mode():
        for x in batches:
            out.append({k: v.numpy() for k, v in capture.run(dnn.module, x).items()})
    return out


def write_only(path, outputs, compression, batch_size):
    """Write captured outputs into an .act.h5 file, in the caller's thread."""
    shapes = {k: v.shape[1:] for k, v in outputs[0].items()}
    n = sum(len(next(iter(o.values()))) for o in outputs)
    with ActWriter(path, shapes, n, compression=compression, batch_rows=batch_size,
                   force=True) as w:
        start = 0
        for o in outputs:
            for k, v in o.items():
                w.write(k, start, v)
            start += len(next(iter(o.values())))


def decode_only(dnn, movie):
    index = probe_video(movie)
    tf = dnn.image_transform()
    with VideoReader(index) as r:
        for i in range(index.n_frames):
            tf(r.image(i))


def save_frames(movie, folder):
    """Every frame as a PNG image, and a type=image table of them."""
    folder.mkdir()
    index = probe_video(movie)
    with VideoReader(index) as r:
        for i in range(index.n_frames):
            r.image(i).save(folder / f"{i:05d}.png")
    Stimulus([f"{i:05d}.png" for i in range(index.n_frames)], root=folder).save(
        folder.parent / "frames.stim.csv")
    return folder.parent / "frames.stim.csv"




def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=300)
    p.add_argument("--width", type=int, default=320)
    p.add_argument("--height", type=int, default=240)
    p.add_argument("--rss-frames", type=int, default=1000)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--unpooled", action="store_true")
    p.add_argument("--skip-speed", action="store_true")
    p.add_argument("--skip-rss", action="store_true")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if not args.skip_speed:
            movie = make_movie(tmp / "movie.mp4", args.frames, width=args.width,
                               height=args.height)
            Stimulus.from_video(movie).save(tmp / "movie.stim.csv")
            dnn = load_dnn("alexnet", weights="random")
            dnn.save(tmp / "alexnet.pth")
            batches = decoded_batches(dnn, movie, args.batch_size)
            images = save_frames(movie, tmp / "frames")
            bare_loop(dnn, batches[:1])                              # warm-up

            def act(stim):
                return ["-net", "alexnet", "-weights", tmp / "alexnet.pth", "-layer", *LAYERS,
                        "-stim", stim, "-batch-size", args.batch_size, "-q", "-force",
                        *([] if args.unpooled else ["-pool", "mean"]),
                        "-out", tmp / "a.act.h5"]
            runs = {"video": act(tmp / "movie.stim.csv"), "png": act(images)}
            for argv in runs.values():
                db_act.main([str(a) for a in argv])                  # warm-up
            t_bare, t_act = float("inf"), dict.fromkeys(runs, float("inf"))
            for _ in range(args.repeats):
                t_bare = min(t_bare, timed(lambda: bare_loop(dnn, batches)))
                for name, argv in runs.items():
                    t_act[name] = min(t_act[name],
                                      timed(lambda: db_act.main([str(a) for a in argv])))
            t_decode = timed(lambda: decode_only(dnn, movie))
            print(f"(a) {args.frames} frames {args.width}x{args.height} mpeg4, AlexNet "
                  f"7 layers{' unpooled' if args.unpooled else ' pooled'}, batch {args.batch_size}, {torch.get_num_threads()} "
                  f"threads: db_act {t_act['video']:.2f} s | bare forward loop {t_bare:.2f} s "
                  f"| ratio {t_act['video'] / t_bare:.2f} (goal <= 1.2); db_act on the same "
                  f"frames as PNG images {t_act['png']:.2f} s (ratio "
                  f"{t_act['png'] / t_bare:.2f}); decoding + resizing alone "
                  f"{t_decode:.2f} s ({args.frames / t_decode:.0f} frames/s)")
            if args.unpooled:
                breakdown(args, tmp, dnn, batches, act(tmp / "movie.stim.csv"), t_bare)
        if args.skip_rss:
            return
        (tmp / "net.py").write_text(SMALL_NET)
        mems = {}
        for k in (args.rss_frames, 2 * args.rss_frames):
            movie = make_movie(tmp / f"m{k}.mp4", k, width=64, height=64, seed=k)
            Stimulus.from_video(movie).save(tmp / f"m{k}.stim.csv")
            mems[k] = peak_rss_mb(["-net", f"{tmp / 'net.py'}:build", "-weights", "random",
                                   "-layer", "1", "-stim", tmp / f"m{k}.stim.csv", "-q",
                                   "-out", tmp / f"m{k}.act.h5"])
        a, b = mems[args.rss_frames], mems[2 * args.rss_frames]
        print(f"(b) peak RSS of db_act, every frame, 8x55x55 unpooled: "
              f"N={args.rss_frames}: {a:.0f} MB | 2N={2 * args.rss_frames}: {b:.0f} MB | "
              f"2N/N = {b / a:.3f} (goal within 10%); the 2N activations are "
              f"{2 * args.rss_frames * 8 * 55 * 55 * 4 / 2 ** 20:.0f} MB")


def breakdown(args, tmp, dnn, batches, argv, t_bare):
    """(c): the unpooled run's parts, each best of ``--repeats``, against the bare loop."""
    t = {"bare": t_bare}
    t["hooks"] = min(timed(lambda: captured_outputs(dnn, batches, LAYERS))
                     for _ in range(args.repeats))
    outputs = captured_outputs(dnn, batches, LAYERS)
    mb = sum(v.nbytes for o in outputs for v in o.values()) / 2 ** 20
    for comp in ("lzf", "gzip", "none"):
        t[f"write {comp}"] = min(timed(lambda: write_only(tmp / "w.act.h5", outputs, comp,
                                                          args.batch_size))
                                 for _ in range(args.repeats))
    del outputs
    runs = {"db_act, writes in caller's thread": (False, argv),
            "db_act, writer thread": (True, argv),
            "db_act -compression none, writer thread": (True, argv + ["-compression",
                                                                      "none"])}
    for _ in range(args.repeats):                  # interleaved with the bare loop
        t["bare"] = min(t["bare"], timed(lambda: bare_loop(dnn, batches)))
        for name, (background, a) in runs.items():
            _extract._FileSink.BACKGROUND = background
            t[name] = min(t.get(name, float("inf")),
                          timed(lambda: db_act.main([str(x) for x in a])))
    _extract._FileSink.BACKGROUND = None
    t_bare = t["bare"]
    print(f"(c) unpooled, {mb:.0f} MB of activations; seconds (ratio to the bare loop):")
    for name, value in t.items():
        print(f"    {name:42s} {value:6.2f} s  ({value / t_bare:.2f})")


if __name__ == "__main__":
    main()
