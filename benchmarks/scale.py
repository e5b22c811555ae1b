"""Benchmark: db_encode on a local Dask cluster (``-scheduler local:2``) vs one process.

Same data and the same tasks (a layer of ``n_units`` float32 units, ``n_stim`` stimuli,
``n_vox`` voxels split into ``voxel_batch``-voxel tasks; ridge with inner-CV alphas):

- one process, 1 BLAS thread (the tasks one after another);
- one process, BLAS threads left at their default (all cores);
- ``local:2``: a LocalCluster of 2 worker processes, 1 thread and 1 BLAS thread each
  (OMP/MKL/OPENBLAS_NUM_THREADS=1 in the workers, threadpoolctl in every task); the
  cluster's start-up is timed separately and not counted.

Prints wall times, the speed-up of local:2 over each baseline, whether the tables are
byte-identical, the load average (the machine may be shared), the measured time per
task and a paper estimate for 100k voxels x 8 layers x 1,000 permutations on 20 SLURM
nodes from it.

usage: python benchmarks/scale.py [--quick]
"""
import argparse
import os
import time

import numpy as np
from threadpoolctl import threadpool_limits

FULL = dict(n_stim=2000, n_units=256, n_vox=20000, voxel_batch=2500, cv=5, inner_cv=3)
QUICK = dict(n_stim=300, n_units=64, n_vox=2000, voxel_batch=250, cv=3, inner_cv=3)
ALPHAS = [1.0, 100.0, 10000.0]


def make_data(n_stim, n_units, n_vox, seed=0):
    from dnnsparse.base.activation import Activation
    from dnnsparse.pipelines import Responses

    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_stim, n_units)).astype(np.float32)
    W = rng.standard_normal((n_units, n_vox)).astype(np.float32) / np.sqrt(n_units)
    Y = X @ W + rng.standard_normal((n_stim, n_vox)).astype(np.float32)
    return Activation({"fc": X}), Responses(Y, source="synthetic")


def run(act, resp, cfg, out, engine=None):
    from dnnsparse.pipelines import layer_mask, run_encoding

    t0 = time.perf_counter()
    res = run_encoding(act, layer_mask(act), resp, out=out, save_models=False,
                       alphas=ALPHAS, cv=cfg["cv"], inner_cv=cfg["inner_cv"], seed=0,
                       engine=engine, voxel_batch=cfg["voxel_batch"])
    return time.perf_counter() - t0, res.scores


def same(a, b):
    return sorted(a) == sorted(b) and all(np.array_equal(np.asarray(a[k]), np.asarray(b[k]))
                                          for k in a)


def main():
    import tempfile

    from dnnsparse.utils.engine import open_engine

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true")
    cfg = QUICK if p.parse_args().quick else FULL
    act, resp = make_data(cfg["n_stim"], cfg["n_units"], cfg["n_vox"])
    n_tasks = -(-cfg["n_vox"] // cfg["voxel_batch"])
    print(f"db_encode: {cfg['n_stim']} stimuli x {cfg['n_units']} units -> {cfg['n_vox']} "
          f"voxels, ridge ({len(ALPHAS)} alphas, {cfg['inner_cv']}-fold inner CV), "
          f"{cfg['cv']} outer folds, {n_tasks} tasks of {cfg['voxel_batch']} voxels")
    print(f"load average before: {os.getloadavg()[0]:.2f} ({os.cpu_count()} cores)")
    with tempfile.TemporaryDirectory() as out:
        with threadpool_limits(limits=1):
            t1, ref = run(act, resp, cfg, out)
        print(f"one process, 1 BLAS thread:        {t1:8.2f} s")
        td, ref_d = run(act, resp, cfg, out)
        print(f"one process, default BLAS threads: {td:8.2f} s")
        t0 = time.perf_counter()
        engine = open_engine("local:2")
        print(f"local:2 start-up (not counted):    {time.perf_counter() - t0:8.2f} s")
        with engine:
            t2, got = run(act, resp, cfg, out, engine=engine)
        print(f"local:2 (2 workers x 1 BLAS thread): {t2:6.2f} s")
    print(f"speed-up local:2 vs 1 process 1 thread: {t1 / t2:.2f}x; vs default threads: "
          f"{td / t2:.2f}x (goal >= 1.7x)")
    print(f"tables byte-identical to one process (1 thread): {same(ref, got)}; "
          f"default threads: {same(ref_d, got)}")
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    per_task = t1 / n_tasks                  # seconds per task on one core
    per_vox = per_task / cfg["voxel_batch"]
    # paper estimate: a refit per permutation (the same folds), 8 layers of this size
    core_s = per_vox * 100_000 * 8 * 1001
    cores = 20 * 32
    print(f"per task (1 core): {per_task:.2f} s = {per_vox * 1e3:.3f} ms per voxel; "
          f"paper estimate for 100k voxels x 8 layers x 1,000 permutations: "
          f"{core_s / 3600:.0f} core-hours = {core_s / cores / 3600:.1f} h on 20 SLURM "
          f"nodes x 32 cores (ideal scaling, {cfg['voxel_batch']} voxels per task)")


if __name__ == "__main__":
    main()
