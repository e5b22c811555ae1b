"""Benchmark activation extraction (db_act) on CPU.

Prints, for AlexNet with the paper's 7 layers (conv1_relu..conv5_relu, fc1_relu,
fc2_relu) on N images of each size of ``--sizes`` (256: generated smooth colour
images; larger sizes: scikit-image's photographs, randomly cropped and flipped,
resized to size x size -- the decoding cost of a JPEG depends on its content):

(a) db_act's wall time / a bare ``inference_mode`` forward loop over the same
    decoded batches (goal <= 1.2 at 256, <= 1.1 at 800), best of 2 runs each
    (``--repeats``), the runs of the bare loop and of every variant interleaved.
    For sizes where db_act decodes JPEGs at reduced scale (model/_images.py,
    DRAFT_MIN_RATIO) it is also timed with full decoding, as before that
    change ("full decode"). db_act's time includes
    loading the weights, decoding the images, masking/pooling, and writing the
    .act.h5 file (run in this process: Python's and torch's start-up are not
    counted; the weights' SHA-256 is cached after the first run, see
    dnnsparse/utils/filehash.py).
(b) DNNBrain's scheme (one full pass per layer, batch 8, no inference mode,
    images decoded again for every pass) / db_act (goal >= 5x).
(c) peak RSS of db_act extracting conv1 unpooled for N and 2N images
    (goal: within 10% of each other).

(b) and (c) use the first size.

usage: python benchmarks/extract.py [--n 500] [--quick] [--sizes 256,800]
"""
import argparse
import contextlib
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from torch.utils.data import DataLoader

from dnnsparse.base.stimulus import Stimulus
from dnnsparse.cli import act as db_act
from dnnsparse.model import ImageDataset, collate_images
from dnnsparse.model import load_dnn
from dnnsparse.model import _images

LAYERS = ["conv1_relu", "conv2_relu", "conv3_relu", "conv4_relu", "conv5_relu",
          "fc1_relu", "fc2_relu"]


def make_images(folder, n, *, n_categories=10, size=256, seed=0):
    """Smooth random colour images (JPEG), ``n`` in ``n_categories`` sub-folders."""
    rng = np.random.default_rng(seed)
    for i in range(n):
        cat = folder / f"c{i % n_categories:02d}"
        cat.mkdir(parents=True, exist_ok=True)
        small = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
        Image.fromarray(small).resize((size, size), Image.BICUBIC).save(cat / f"{i:05d}.jpg",
                                                                         quality=90)
    return _stim_file(folder)


def _stim_file(folder):
    stim_file = folder.parent / f"{folder.name}.stim.csv"
    Stimulus.from_folder(folder).save(stim_file, force=True)
    return stim_file


PHOTOS = ["astronaut", "chelsea", "coffee", "rocket", "immunohistochemistry",
          "hubble_deep_field", "retina", "cat", "motorcycle_left"]


def make_photos(folder, n, *, n_categories=10, size=800, seed=0):
    """JPEGs (quality 90) of scikit-image's photographs: a random crop (at least 60%
    of each side) of one photograph, flipped at random, resized to ``size`` x ``size``."""
    try:
        import skimage.data
    except ImportError:
        print(f"    (scikit-image is not installed: generated images at {size} x {size} "
              f"instead of photographs; they decode faster than photographs)")
        return make_images(folder, n, n_categories=n_categories, size=size, seed=seed)
    photos = [np.asarray(Image.fromarray(getattr(skimage.data, name)()).convert("RGB"))
              for name in PHOTOS if hasattr(skimage.data, name)]
    rng = np.random.default_rng(seed)
    for i in range(n):
        cat = folder / f"c{i % n_categories:02d}"
        cat.mkdir(parents=True, exist_ok=True)
        photo = photos[rng.integers(len(photos))]
        h, w = photo.shape[:2]
        ch, cw = (int(rng.uniform(0.6, 1) * side) for side in (h, w))
        top, left = rng.integers(h - ch + 1), rng.integers(w - cw + 1)
        crop = photo[top:top + ch, left:left + cw]
        if rng.random() < 0.5:
            crop = crop[:, ::-1]
        Image.fromarray(np.ascontiguousarray(crop)).resize((size, size), Image.BICUBIC).save(
            cat / f"{i:05d}.jpg", quality=90)
    return _stim_file(folder)


@contextlib.contextmanager
def full_decoding(on):
    """With ``on``, db_act decodes every JPEG in full (as before reduced-scale decoding)."""
    saved = _images.DRAFT_MIN_RATIO
    if on:
        _images.DRAFT_MIN_RATIO = float("inf")
    try:
        yield
    finally:
        _images.DRAFT_MIN_RATIO = saved


def timed(fn):
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def bare_loop(dnn, batches):
    with torch.inference_mode():
        for x in batches:
            dnn.module(x)


def dnnbrain_scheme(dnn, stim, layers, batch_size=8):
    """One full forward pass over all images per layer, DNNBrain-style."""
    tf = dnn.transform()
    out = {}
    for layer in layers:
        held = []
        handle = dnn.register_layer_hook(
            layer, lambda m, i, o: held.extend(o.detach().numpy().copy()))
        loader = DataLoader(ImageDataset(stim.paths, tf), batch_size=batch_size,
                            collate_fn=lambda items: torch.stack([t for _, t, _ in items]))
        for x in loader:
            dnn.module(x)            # gradients tracked, as DNNBrain did
        handle.remove()
        out[layer] = np.asarray(held)
    return out


def peak_rss_mb(extra):
    """Run db_act in a fresh process; return its peak RSS in MB.

    Read from /proc/self/status (VmHWM: the high-water mark of this process's
    own memory). ``ru_maxrss`` would not do: Linux carries it over from the
    parent across fork and exec, so it would report this benchmark's own size.
    """
    code = ("import sys; from dnnsparse.cli.act import main; "
            f"s = main({list(map(str, extra))!r}); "
            "print([l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1]);"
            " sys.exit(s)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    return int(res.stdout.split()[-1]) / 1024


def measure_speed(args, n, size, tmp, stim_file, stim, dnn, weights, variants):
    """(a): db_act against a bare forward loop over the same decoded batches."""
    tf = dnn.transform()
    batches = list(torch.stack([tf(Image.open(p)) for p in stim.paths]).split(args.batch_size))
    bare_loop(dnn, batches[:1])                  # warm-up
    common = ["-net", "alexnet", "-weights", weights, "-stim", stim_file, "-layer",
              *LAYERS, "-batch-size", args.batch_size, "-q", "--force"]
    if args.workers is not None:
        common += ["-workers", args.workers]
    goal = 1.1 if size >= 800 else 1.2

    def act(argv, full):
        with full_decoding(full):
            db_act.main(argv)
    runs = [(label, [str(a) for a in common + extra + ["-out", tmp / "a.act.h5"]], full)
            for label, extra, full in variants]
    # best of --repeats for each, all interleaved (bare, variant 1, variant 2, ...,
    # bare, ...), so a slow moment of a shared machine does not count against one
    t_bare, times = float("inf"), {label: float("inf") for label, _, _ in runs}
    for _ in range(args.repeats):
        t_bare = min(t_bare, timed(lambda: bare_loop(dnn, batches)))
        for label, argv, full in runs:
            times[label] = min(times[label], timed(lambda: act(argv, full)))
    for label, _, _ in runs:
        print(f"(a) {size}px {label:32s} db_act {times[label]:7.2f} s | bare forward loop "
              f"{t_bare:7.2f} s | ratio {times[label] / t_bare:5.2f} (goal <= {goal})")
    decode = {}
    for draft in (True, False):
        loader = DataLoader(ImageDataset(stim.paths, dnn.image_transform(), draft=draft),
                            batch_size=args.batch_size, collate_fn=collate_images)
        decode[draft] = timed(lambda: [b for b in loader])
    t_load = timed(lambda: load_dnn("alexnet", weights=str(weights)))
    print(f"    where the time goes: decoding + resizing the {n} images {decode[True]:5.2f} s "
          f"(one process; decoding in full {decode[False]:5.2f} s), loading the weights "
          f"{t_load:5.2f} s; both are outside the bare loop")
    return times


def measure_memory(args, n, tmp, weights):
    """(c): peak RSS of db_act for N and 2N images."""
    mems = {}
    for k in (n, 2 * n):
        sf = make_images(tmp / f"mem{k}", k, seed=k)
        mems[k] = peak_rss_mb(["-net", "alexnet", "-weights", weights, "-stim", sf,
                               "-layer", "conv1", "-out", tmp / f"m{k}.act.h5", "-q",
                               *([] if args.workers is None else ["-workers", args.workers])])
    a, b = mems[n], mems[2 * n]
    print(f"(c) peak RSS of db_act (main process), conv1 unpooled: N={n}: {a:.0f} MB | "
          f"2N={2 * n}: {b:.0f} MB | 2N/N = {b / a:.3f} (goal within 10%); conv1 data "
          f"for 2N images = {2 * n * 64 * 55 * 55 * 4 / 2**20:.0f} MB")


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--quick", action="store_true", help="n=64")
    ap.add_argument("--workers", type=int, default=None,
                    help="db_act -workers (default: db_act's own, 0 on a CPU)")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=2, help="(a): best of this many runs")
    ap.add_argument("--parts", default="abc", help="measurements to run: any of a, b, c")
    ap.add_argument("--pooled-only", action="store_true", help="(a) without the unpooled run")
    ap.add_argument("--sizes", default="256,800",
                    help="JPEG sizes (pixels a side) for (a), comma-separated; (b) and (c) "
                         "use the first")
    args = ap.parse_args()
    n = 64 if args.quick else args.n
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, N={n} images, "
          f"AlexNet (random weights), layers {', '.join(LAYERS)}")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        dnn = load_dnn("alexnet", weights="random")
        weights = tmp / "alexnet.pth"
        dnn.save(weights)
        for k, size in enumerate(sizes):
            folder = tmp / f"imgs{size}"
            stim_file = (make_images(folder, n, size=size) if size <= 256 else
                         make_photos(folder, n, size=size))
            stim = Stimulus.load(stim_file)
            variants = [("pooled (-pool mean)", ["-pool", "mean"], False)]
            if _images.draft_scale(size, size, dnn.input_size) > 1:
                variants.append(("pooled, full decode (before)", ["-pool", "mean"], True))
            if not args.pooled_only and k == 0:
                variants.append(("unpooled", [], False))
            times = None
            if "a" in args.parts or ("b" in args.parts and k == 0):
                times = measure_speed(args, n, size, tmp, stim_file, stim, dnn, weights,
                                      variants)
            if k == 0:
                first = stim, times
        stim, times = first
        if "b" in args.parts:
            t_pooled = times["pooled (-pool mean)"]
            t_dnnbrain = timed(lambda: dnnbrain_scheme(dnn, stim, LAYERS))
            print(f"(b) DNNBrain scheme (7 passes, batch 8, no inference mode) "
                  f"{t_dnnbrain:7.2f} s | db_act pooled {t_pooled:7.2f} s | db_act is "
                  f"{t_dnnbrain / t_pooled:5.1f}x faster (goal >= 5x)")
        if "c" in args.parts:
            measure_memory(args, n, tmp, weights)


if __name__ == "__main__":
    main()
