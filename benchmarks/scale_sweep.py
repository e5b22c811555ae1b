"""Benchmark: db_ablate's channel sweep and db_searchlight on ``-scheduler local:2``
versus one process.

- sweep: AlexNet with random weights (nothing downloaded), ``--images`` random 64 x 64
  PNG images (resized to 224 x 224), the 256 channels of conv5 ablated one at a time
  (hook mode), target ``fc3:class=1``; one task per batch of ``--batch-size`` images;
- searchlight: a 32 x 32 x 20 grid (every voxel a centre), ``--stimuli`` stimuli,
  spheres of 2 mm (1 mm voxels), correlation RDMs against 2 model RDMs (Spearman); one
  task per chunk of ``--chunk-size`` centres.

Baselines in the same run: one process with torch / BLAS threads at their default (all
cores; the sweep with ``threads=None``) and with one thread (the sweep's default,
``threads=1``). The cluster (2 worker processes, 1 thread and 1 BLAS thread
each) is started once and its start-up is timed separately, not counted; the first task
of a fresh worker imports torch there: a warm-up sweep on 2 images runs first, not
counted. Prints the wall times, the speed-ups, whether the
tables / maps are byte-identical to each baseline and the load average (the machine may
be shared).

usage: python benchmarks/scale_sweep.py [--images 32] [--stimuli 60]
"""
import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from threadpoolctl import threadpool_limits


def _images(folder, n, seed=0):
    from dnnsparse.base.stimulus import Stimulus

    gen = np.random.default_rng(seed)
    for i in range(n):
        Image.fromarray(gen.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(
            folder / f"{i:04d}.png")
    return Stimulus([f"{i:04d}.png" for i in range(n)], root=folder,
                    columns={"label": gen.integers(0, 1000, n)})


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def _one_thread(fn):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(limits=1):
            return fn()
    finally:
        torch.set_num_threads(threads)


def _same(a, b):
    return sorted(a) == sorted(b) and all(
        np.asarray(a[k]).tobytes() == np.asarray(b[k]).tobytes() for k in a)


def main():
    from dnnsparse.algo.searchlight import VolumeSearchlight, searchlight_scores
    from dnnsparse.model import load_dnn
    from dnnsparse.pipelines import ablation_effects
    from dnnsparse.utils.engine import open_engine

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--images", type=int, default=32)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--stimuli", type=int, default=60)
    p.add_argument("--chunk-size", type=int, default=512)
    args = p.parse_args()
    dnn = load_dnn("alexnet", weights="random", seed=0)
    print(f"load average before: {os.getloadavg()[0]:.2f} ({os.cpu_count()} cores); torch "
          f"{torch.__version__}, {torch.get_num_threads()} threads by default")

    def sweep(stim, engine=None, threads=1):
        return ablation_effects(dnn, stim, sweep="conv5", mode="hook",
                                targets=["fc3:class=1"], batch_size=args.batch_size,
                                show_progress=False, engine=engine, threads=threads).table

    rng = np.random.default_rng(0)
    mask = np.ones((32, 32, 20), dtype=bool)
    sl = VolumeSearchlight(mask, np.eye(4), 2.0)
    data = rng.standard_normal((args.stimuli, sl.n_centres))
    models = rng.random((2, args.stimuli * (args.stimuli - 1) // 2))

    def maps(engine=None):
        return {"scores": searchlight_scores(data, sl, models, method="spearman",
                                             chunk_size=args.chunk_size, engine=engine)}

    with tempfile.TemporaryDirectory() as tmp:
        stim = _images(Path(tmp), args.images)
        n_tasks = -(-args.images // args.batch_size)
        print(f"sweep: AlexNet conv5 (256 channels), {args.images} images, {n_tasks} tasks "
              f"of {args.batch_size} images")
        ref_d, td = _timed(lambda: sweep(stim, threads=None))
        print(f"  one process, default threads: {td:8.2f} s")
        ref_1, t1 = _timed(lambda: _one_thread(lambda: sweep(stim)))
        print(f"  one process, 1 thread:        {t1:8.2f} s")
        engine, ts = _timed(lambda: open_engine("local:2"))
        print(f"  local:2 start-up (not counted): {ts:6.2f} s")
        with engine:
            (Path(tmp) / "warm").mkdir()
            sweep(_images(Path(tmp) / "warm", 2), engine)     # workers import torch
            got, t2 = _timed(lambda: sweep(stim, engine))
            print(f"  local:2 (2 workers x 1 thread): {t2:6.2f} s")
            print(f"  speed-up local:2 vs 1 thread: {t1 / t2:.2f}x; vs default threads: "
                  f"{td / t2:.2f}x")
            print(f"  table byte-identical to one process: default threads "
                  f"{_same(ref_d, got)}, 1 thread {_same(ref_1, got)}")
            n_chunks = -(-sl.n_centres // args.chunk_size)
            print(f"searchlight: {sl.n_centres} centres, {args.stimuli} stimuli, "
                  f"{len(sl.offsets)} voxels per sphere, {n_chunks} tasks of "
                  f"{args.chunk_size} centres")
            ref_d, td = _timed(maps)
            print(f"  one process, default threads: {td:8.2f} s")
            ref_1, t1 = _timed(lambda: _one_thread(maps))
            print(f"  one process, 1 thread:        {t1:8.2f} s")
            got, t2 = _timed(lambda: maps(engine))
            print(f"  local:2 (2 workers x 1 thread): {t2:6.2f} s")
            print(f"  speed-up local:2 vs 1 thread: {t1 / t2:.2f}x; vs default threads: "
                  f"{td / t2:.2f}x")
            print(f"  maps byte-identical to one process: default threads "
                  f"{_same(ref_d, got)}, 1 thread {_same(ref_1, got)}")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
