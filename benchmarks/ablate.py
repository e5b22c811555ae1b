"""Channel sweep (db_ablate -sweep): dnnsparse versus the naive loop.

AlexNet with random weights (nothing is downloaded), ``--images`` random PNG images
(64 x 64, resized to 224 x 224 like any stimulus), the 256 channels of conv5 ablated one
at a time (hook mode), targets ``fc3:class=1`` and the fc3 scores (accuracy against a
label column):

- ``naive``: per channel, the hook is set and the whole stimulus set is extracted
  again (:meth:`DNN.extract` of fc3: images decoded and the whole network run, once per
  channel), after one intact extraction. It runs for ``--naive-channels`` channels;
  its time per channel is multiplied by 256 (the loop costs the same for every
  channel) and the intact extraction added;
- ``dnnsparse``: :func:`dnnsparse.pipelines.ablation_effects` with ``sweep="conv5"``:
  each batch decoded once, conv1..conv5 run once per image, and only the network after
  conv5 runs on the 256 ablated copies (``max_rows`` copies per pass).

Prints the wall and process CPU times, the ratio, and the largest difference between
the two on the channels both ran (fc3 scores' RMS change and the target's mean).

example: python benchmarks/ablate.py --images 100 --naive-channels 8
"""
import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from dnnsparse.base.stimulus import Stimulus
from dnnsparse.model import ablate, load_dnn, resolve_targets
from dnnsparse.pipelines import ablation_effects


def _timed(fn):
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - wall, time.process_time() - cpu


def _images(folder, n, seed=0):
    gen = np.random.default_rng(seed)
    for i in range(n):
        Image.fromarray(gen.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(
            folder / f"{i:04d}.png")
    stim = Stimulus([f"{i:04d}.png" for i in range(n)], root=folder,
                    columns={"label": gen.integers(0, 1000, n)})
    return stim


def _baseline(dnn, stim, batch_size):
    act = dnn.extract(stim, ["fc3"], batch_size=batch_size, show_progress=False)
    return act.to_matrix("fc3").astype(np.float64)


def _naive(dnn, stim, channels, target, batch_size, base):
    """One full extraction per channel; returns ``{channel: (rms change, target mean)}``."""
    out = {}
    for c in channels:
        handle = ablate(dnn, [f"conv5:{c}"], mode="hook")
        try:
            act = dnn.extract(stim, ["fc3"], batch_size=batch_size, show_progress=False)
            scores = act.to_matrix("fc3").astype(np.float64)
        finally:
            handle.remove()
        out[c] = (np.sqrt(np.mean((scores - base) ** 2, axis=1)).mean(),
                  scores[:, target.channel - 1].mean())
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--images", type=int, default=500)
    p.add_argument("--naive-channels", type=int, default=8)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--max-rows", type=int, default=512)
    p.add_argument("--device", default="cpu")
    args = p.parse_args()
    torch.manual_seed(0)
    dnn = load_dnn("alexnet", weights="random", seed=0)
    target = resolve_targets(["fc3:class=1"], dnn)[0]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device "
          f"{args.device}, {args.images} images, conv5 (256 channels)")
    with tempfile.TemporaryDirectory() as tmp:
        stim = _images(Path(tmp), args.images)
        dnn.to(args.device)
        res, wall, cpu = _timed(lambda: ablation_effects(
            dnn, stim, sweep="conv5", mode="hook", targets=["fc3:class=1"],
            batch_size=args.batch_size, device=args.device, max_rows=args.max_rows,
            show_progress=False))
        print(f"dnnsparse sweep, 256 channels: {wall:8.1f} s wall, {cpu:8.1f} s CPU")
        channels = np.linspace(1, 256, args.naive_channels).round().astype(int).tolist()
        base, bwall, _ = _timed(lambda: _baseline(dnn, stim, args.batch_size))
        naive, nwall, ncpu = _timed(lambda: _naive(dnn, stim, channels, target,
                                                   args.batch_size, base))
        total = bwall + nwall * 256 / len(channels)
        print(f"naive loop: intact extraction {bwall:.1f} s, {len(channels)} channels "
              f"{nwall:.1f} s wall ({ncpu:.1f} s CPU) -> intact + 256 channels: "
              f"{total:.1f} s wall")
        print(f"ratio naive / dnnsparse (wall): {total / wall:.2f}x")
        t = res.table
        diff = max(max(abs(t["output_change"][c - 1] - naive[c][0]),
                       abs(t[f"{target.name}_after"][c - 1] - naive[c][1])) for c in channels)
        print(f"largest difference on the {len(channels)} shared channels: {diff:.2e} "
              f"(output RMS change there: {min(t['output_change']):.3g} .. "
              f"{max(t['output_change']):.3g})")


if __name__ == "__main__":
    main()
