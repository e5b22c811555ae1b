"""Benchmark: db_encode on a local Dask cluster (``-scheduler local:2``) vs one process.

Same data and the same tasks (a layer of ``n_units`` float32 units, ``n_stim`` stimuli,
``n_vox`` voxels split into ``voxel_batch``-voxel tasks; ridge with inner-CV alphas):

- one process, ``n_jobs=1``: the tasks one after another, 1 BLAS thread (db_encode runs
  its tasks with 1 BLAS thread so that its tables do not depend on the thread count);
- one process, ``n_jobs=2``: 2 threads over the tasks, 1 BLAS thread each
  (``db_encode -n-jobs 2``);
- one process, the same tasks called directly with 2 BLAS threads (what multithreaded
  BLAS would give; its tables differ in the last bits, which is why db_encode does not
  do this);
- ``local:2``: a LocalCluster of 2 worker processes, 1 thread and 1 BLAS thread each
  (OMP/MKL/OPENBLAS_NUM_THREADS=1 in the workers, threadpoolctl in every task, both
  printed as the workers report them); the cluster's start-up is timed separately.

Prints wall times (``--repeats`` interleaved rounds of n_jobs=1, n_jobs=2, local:2 on
one cluster started once; best of them), the speed-up of local:2 over each baseline
(goal >= 1.7x on a 2-core machine), whether the tables are byte-identical, the load average (the machine
may be shared), the measured time of one task without and with permutations, and a
paper estimate for 100k voxels x 8 layers x 1,000 permutations on 20 SLURM nodes.

usage: python benchmarks/scale.py [--quick] [--n-vox N]
(full: about 6 min on an idle 2-core machine; --quick: about 1 min)
"""
import argparse
import os
import tempfile
import time

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

FULL = dict(n_stim=2000, n_units=256, n_vox=20000, voxel_batch=2500, cv=5, inner_cv=3)
QUICK = dict(n_stim=400, n_units=256, n_vox=2000, voxel_batch=500, cv=5, inner_cv=3)
ALPHAS = [1.0, 100.0, 10000.0]
N_PERM_TIMED = 2              # permutations of the one task timed for the estimate
NODES, CORES = 20, 32         # the paper estimate's SLURM allocation


def make_data(n_stim, n_units, n_vox, seed=0):
    from dnnsparse.base.activation import Activation
    from dnnsparse.pipelines import Responses

    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_stim, n_units)).astype(np.float32)
    W = rng.standard_normal((n_units, n_vox)).astype(np.float32) / np.sqrt(n_units)
    Y = X @ W + rng.standard_normal((n_stim, n_vox)).astype(np.float32)
    return Activation({"fc": X}), Responses(Y, source="synthetic"), X, Y


def run(act, resp, cfg, out, engine=None, n_jobs=1):
    from dnnsparse.pipelines import layer_mask, run_encoding

    t0 = time.perf_counter()
    res = run_encoding(act, layer_mask(act), resp, out=out, save_models=False,
                       alphas=ALPHAS, cv=cfg["cv"], inner_cv=cfg["inner_cv"], seed=0,
                       engine=engine, n_jobs=n_jobs, voxel_batch=cfg["voxel_batch"])
    return time.perf_counter() - t0, res.scores


def run_blas2(X, Y, cfg):
    """The same tasks, called directly with 2 BLAS threads; r per voxel."""
    from dnnsparse.algo.encoding import encode
    from dnnsparse.pipelines._encoding_tasks import voxel_batches

    t0 = time.perf_counter()
    r = []
    with threadpool_limits(limits=2, user_api="blas"):
        for a, b in voxel_batches(Y.shape[1], cfg["voxel_batch"]):
            r.append(encode(X, np.asfortranarray(Y[:, a:b]), alphas=ALPHAS, cv=cfg["cv"],
                            inner_cv=cfg["inner_cv"], seed=0).r)
    return time.perf_counter() - t0, np.concatenate(r)


def time_one_task(X, Y, cfg, n_perm, repeats=2):
    """Seconds of one voxel batch's task with 1 BLAS thread (as on a worker); the best
    of ``repeats`` runs (the least disturbed by other processes)."""
    from dnnsparse.algo.encoding import encode

    y = np.asfortranarray(Y[:, :cfg["voxel_batch"]])
    best = np.inf
    with threadpool_limits(limits=1, user_api="blas"):
        for _ in range(repeats):
            t0 = time.perf_counter()
            encode(X, y, alphas=ALPHAS, cv=cfg["cv"], inner_cv=cfg["inner_cv"], seed=0,
                   n_perm=n_perm)
            best = min(best, time.perf_counter() - t0)
    return best


def same(a, b):
    return sorted(a) == sorted(b) and all(np.array_equal(np.asarray(a[k]), np.asarray(b[k]))
                                          for k in a)


def _blas_threads():
    """BLAS libraries and their thread counts, as seen by the caller (a worker's task)."""
    env = {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                          "MKL_NUM_THREADS")}
    libs = {os.path.basename(i["filepath"]).split("-")[0]: i["num_threads"]
            for i in threadpool_info() if i["user_api"] == "blas"}
    return env, libs


def load():
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def main():
    from dnnsparse.utils.engine import open_engine

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="a small configuration (~1 min)")
    p.add_argument("--n-vox", type=int, help="voxels (default 20000, quick 2000)")
    p.add_argument("--repeats", type=int, default=2,
                   help="interleaved rounds of the three runs; best of them (default 2)")
    args = p.parse_args()
    cfg = dict(QUICK if args.quick else FULL)
    if args.n_vox:
        cfg["n_vox"] = args.n_vox
    act, resp, X, Y = make_data(cfg["n_stim"], cfg["n_units"], cfg["n_vox"])
    n_tasks = -(-cfg["n_vox"] // cfg["voxel_batch"])
    print(f"db_encode: {cfg['n_stim']} stimuli x {cfg['n_units']} float32 units -> "
          f"{cfg['n_vox']} voxels, ridge ({len(ALPHAS)} alphas, {cfg['inner_cv']}-fold "
          f"inner CV), {cfg['cv']} outer folds, {n_tasks} tasks of {cfg['voxel_batch']} "
          f"voxels")
    print(f"machine: {os.cpu_count()} cores; load average (1/5/15 min) before: {load()}")
    print(f"this process's BLAS threads by default: {_blas_threads()[1]}")
    warm_act, warm_resp, _, _ = make_data(cfg["n_stim"], cfg["n_units"], 64, seed=1)
    warm_cfg = dict(cfg, voxel_batch=32)       # imports and first calls, not timed
    times = {"n_jobs=1": [], "n_jobs=2": [], "local:2": []}
    with tempfile.TemporaryDirectory() as out:
        run(warm_act, warm_resp, warm_cfg, out)
        tb, r_b = run_blas2(X, Y, cfg)
        print(f"one process, tasks with 2 BLAS threads:       {tb:8.2f} s")
        t0 = time.perf_counter()
        engine = open_engine("local:2")
        print(f"local:2 start-up (not counted; + a warm-up run): "
              f"{time.perf_counter() - t0:5.2f} s")
        with engine:
            run(warm_act, warm_resp, warm_cfg, out, engine=engine)   # workers' imports
            env, libs = engine.gather([engine.submit(_blas_threads)])[0]
            print(f"local:2 worker: 1 thread; environment {env}; BLAS threads inside a "
                  f"task {libs}")
            for k in range(args.repeats):        # interleaved: the same load for each
                t1, ref = run(act, resp, cfg, out)
                tj, ref_j = run(act, resp, cfg, out, n_jobs=2)
                t2, got = run(act, resp, cfg, out, engine=engine)
                for name, t in zip(times, (t1, tj, t2)):
                    times[name].append(t)
                print(f"round {k + 1}: one process n_jobs=1 {t1:6.2f} s, n_jobs=2 threads "
                      f"{tj:6.2f} s, local:2 {t2:6.2f} s (speed-up {t1 / t2:.2f}x; "
                      f"load {load()})", flush=True)
    t1, tj, t2 = (min(v) for v in times.values())
    print(f"best of {args.repeats}: one process n_jobs=1 (1 BLAS thread) {t1:.2f} s, "
          f"n_jobs=2 {tj:.2f} s, local:2 (2 workers x 1 BLAS thread) {t2:.2f} s")
    print(f"speed-up of local:2: {t1 / t2:.2f}x vs one process n_jobs=1; {tj / t2:.2f}x vs "
          f"n_jobs=2; {tb / t2:.2f}x vs 2 BLAS threads (goal >= 1.7x vs one process); "
          f"per round {', '.join(f'{a / b:.2f}x' for a, b in zip(times['n_jobs=1'], times['local:2']))}")
    r_ref = np.asarray(ref["r"], dtype=np.float64)
    print(f"tables byte-identical to one process n_jobs=1: local:2 {same(ref, got)}, "
          f"n_jobs=2 {same(ref, ref_j)}; 2 BLAS threads: r identical "
          f"{np.array_equal(r_b.astype(np.float64), r_ref)}, max |dr| "
          f"{np.abs(r_b - r_ref).max():.2g}")
    print(f"load average after: {load()}")

    # paper estimate from the time of one task (1 core), without and with permutations
    t_fit = time_one_task(X, Y, cfg, 0)
    t_perm = (time_one_task(X, Y, cfg, N_PERM_TIMED) - t_fit) / N_PERM_TIMED
    vb = cfg["voxel_batch"]
    workers = NODES * CORES
    task_s = t_fit + 1000 * t_perm                # one task: fit + 1,000 refits
    tasks = -(-100_000 // vb) * 8
    core_s = tasks * task_s
    print(f"paper estimate, 100k voxels x 8 layers x 1,000 permutations ({cfg['n_stim']} "
          f"stimuli x {cfg['n_units']} units, {cfg['cv']} folds): {tasks} tasks of {vb} "
          f"voxels x ({t_fit:.1f} + 1000 x {t_perm:.2f}) s = {core_s / 3600:.0f} "
          f"core-hours")
    # wall time on the nodes: rounds of `workers` tasks; a task's time ~ its voxels
    for batch in (vb, -(-100_000 * 8 // workers)):      # as run; one task per worker
        n = -(-100_000 // batch) * 8
        t = task_s * batch / vb
        print(f"  on {NODES} SLURM nodes x {CORES} cores ({workers} workers), "
              f"-voxel-batch {batch}: {n} tasks of {t / 3600:.2f} h in "
              f"{-(-n // workers)} round(s) = {-(-n // workers) * t / 3600:.2f} h "
              f"(ideal {core_s / workers / 3600:.2f} h)")


if __name__ == "__main__":
    main()
