"""Benchmark activation extraction (db_act) on CPU.

Prints, for AlexNet with the paper's 7 layers (conv1_relu..conv5_relu, fc1_relu,
fc2_relu) on N generated images:

(a) db_act's wall time / a bare ``inference_mode`` forward loop over the same
    decoded batches (goal <= 1.2), best of 2 runs each. db_act's time includes
    loading the weights, decoding the images, masking/pooling, and writing the
    .act.h5 file (run in this process: Python's and torch's start-up are not
    counted; the weights' SHA-256 is cached after the first run, see
    dnnsparse/utils/filehash.py).
(b) DNNBrain's scheme (one full pass per layer, batch 8, no inference mode,
    images decoded again for every pass) / db_act (goal >= 5x).
(c) peak RSS of db_act extracting conv1 unpooled for N and 2N images
    (goal: within 10% of each other).

usage: python benchmarks/extract.py [--n 500] [--quick]
"""
import argparse
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
    stim_file = folder.parent / f"{folder.name}.stim.csv"
    Stimulus.from_folder(folder).save(stim_file, force=True)
    return stim_file


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


def measure_speed(args, n, tmp, stim_file, stim, dnn, weights, variants):
    """(a): db_act against a bare forward loop over the same decoded batches."""
    tf = dnn.transform()
    batches = list(torch.stack([tf(Image.open(p)) for p in stim.paths]).split(args.batch_size))
    bare_loop(dnn, batches[:1])                  # warm-up
    common = ["-net", "alexnet", "-weights", weights, "-stim", stim_file, "-layer",
              *LAYERS, "-batch-size", args.batch_size, "-q", "--force"]
    if args.workers is not None:
        common += ["-workers", args.workers]
    times = {}
    for label, extra in variants:
        argv = [str(a) for a in common + extra + ["-out", tmp / "a.act.h5"]]
        # best of 2 for both, interleaved, so a slow moment of a shared machine
        # does not count against either
        t_bare = timed(lambda: bare_loop(dnn, batches))
        t_act = timed(lambda: db_act.main(argv))
        t_bare = min(t_bare, timed(lambda: bare_loop(dnn, batches)))
        t_act = min(t_act, timed(lambda: db_act.main(argv)))
        times[label] = t_act
        print(f"(a) {label:20s} db_act {t_act:7.2f} s | bare forward loop {t_bare:7.2f} s"
              f" | ratio {t_act / t_bare:5.2f} (goal <= 1.2)")
    loader = DataLoader(ImageDataset(stim.paths, dnn.image_transform()),
                        batch_size=args.batch_size, collate_fn=collate_images)
    t_decode = timed(lambda: [b for b in loader])
    t_load = timed(lambda: load_dnn("alexnet", weights=str(weights)))
    print(f"    where the time goes: decoding + resizing the {n} images {t_decode:5.2f} s "
          f"(one process), loading the weights {t_load:5.2f} s; both are outside the bare loop")
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
    ap.add_argument("--parts", default="abc", help="measurements to run: any of a, b, c")
    ap.add_argument("--pooled-only", action="store_true", help="(a) without the unpooled run")
    args = ap.parse_args()
    n = 64 if args.quick else args.n
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, N={n} images, "
          f"AlexNet (random weights), layers {', '.join(LAYERS)}")
    variants = [("pooled (-pool mean)", ["-pool", "mean"])]
    if not args.pooled_only:
        variants.append(("unpooled", []))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        stim_file = make_images(tmp / "imgs", n)
        stim = Stimulus.load(stim_file)
        dnn = load_dnn("alexnet", weights="random")
        weights = tmp / "alexnet.pth"
        dnn.save(weights)
        if "a" in args.parts or "b" in args.parts:
            times = measure_speed(args, n, tmp, stim_file, stim, dnn, weights, variants)
        if "b" in args.parts:
            t_pooled = times[variants[0][0]]
            t_dnnbrain = timed(lambda: dnnbrain_scheme(dnn, stim, LAYERS))
            print(f"(b) DNNBrain scheme (7 passes, batch 8, no inference mode) "
                  f"{t_dnnbrain:7.2f} s | db_act pooled {t_pooled:7.2f} s | db_act is "
                  f"{t_dnnbrain / t_pooled:5.1f}x faster (goal >= 5x)")
        if "c" in args.parts:
            measure_memory(args, n, tmp, weights)


if __name__ == "__main__":
    main()
