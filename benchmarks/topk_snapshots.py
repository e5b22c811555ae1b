"""Cost of ``db_train -snapshot-topk``: training with per-epoch Top-K snapshots versus without.

A random-weight ResNet-18 (nothing is downloaded) fine-tuned on small random images
with Top-K at layer2_2; the snapshot run also saves, before training and after every
epoch, the Top-K masks of layer2_2 and layer3_2 for a probe set (HDF5), the epoch's
weights and the figures. Both runs are made in the same process, alternating (ABBA)
over the repeats; the script prints the median wall-clock times and the ratio
with / without snapshots.

example: python benchmarks/topk_snapshots.py --quick --threads 1
"""
import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from dnnsparse.base.stimulus import Stimulus
from dnnsparse.model import load_dnn, train_classifier
from dnnsparse.pipelines import TopKSnapshots


def images(folder, n_per_class, size):
    gen = np.random.default_rng(0)
    for c in ("a", "b"):
        (folder / c).mkdir(parents=True)
        for i in range(n_per_class):
            Image.fromarray(gen.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(
                folder / c / f"{i}.png")
    return Stimulus.from_folder(folder)


def one_run(stim, probe, out, *, epochs, size, snapshots):
    dnn = load_dnn("resnet18", weights="random", seed=0)
    dnn.input_size = (size, size)
    snap = TopKSnapshots(probe, {"layer2_2": 0.2, "layer3_2": 0.2},
                         workers=0) if snapshots else None
    t = time.perf_counter()
    train_classifier(dnn, stim, out=out, epochs=epochs, batch_size=16, topk={"layer2_2": 0.2},
                     val_fraction=0.25, workers=0, snapshot=snap, show_progress=False,
                     force=True)
    return time.perf_counter() - t


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="fewer images and repeats")
    p.add_argument("--threads", type=int, default=None)
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    n, repeats, epochs, size = (16, 2, 2, 64) if a.quick else (64, 3, 3, 112)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        stim = images(tmp / "img", n, size)
        probe = stim[np.arange(0, len(stim), max(1, len(stim) // 8))[:8]]
        times = {False: [], True: []}
        for r in range(repeats):
            for snaps in ((False, True) if r % 2 == 0 else (True, False)):
                times[snaps].append(one_run(stim, probe, tmp / f"run{r}{snaps}", epochs=epochs,
                                            size=size, snapshots=snaps))
    plain, snap = statistics.median(times[False]), statistics.median(times[True])
    print(f"ResNet-18 {size}x{size}, {2 * n} training images, {epochs} epochs, {len(probe)} "
          f"probe images, 2 snapshot layers, {torch.get_num_threads()} thread(s)")
    print(f"without snapshots {plain:.2f} s, with {snap:.2f} s: ratio {snap / plain:.2f} "
          f"({(snap - plain) / (epochs + 1):.2f} s per snapshot)")


if __name__ == "__main__":
    main()
