"""Benchmark: db_corr's in-sample best-unit map against DNNBrain-style loops.

Same data (float32 layer of ``n_units`` units, ``n_targets`` voxels, ``n_samples``
stimuli):

- ours:      dnnsparse.algo.correlation.max_correlation (one standardised float64
             matrix product per chunk of voxels);
- per-voxel: a loop over voxels, each correlated with all units at once (NumPy),
             timed on a subsample of voxels and scaled up;
- pearsonr:  DNNBrain's double loop (scipy.stats.pearsonr per unit and voxel), timed
             on a few voxels and scaled up.

Prints wall times, speed ratios and the largest difference of r (and whether the
chosen units agree) on the voxels both computed.

usage: python benchmarks/corr.py [--quick]
"""
import argparse
import time

import numpy as np
from scipy.stats import pearsonr

from dnnsparse.algo.correlation import max_correlation

FULL = dict(n_samples=200, n_units=4096, n_targets=20000, loop_voxels=200, scipy_voxels=2)
QUICK = dict(n_samples=100, n_units=512, n_targets=2000, loop_voxels=100, scipy_voxels=2)


def per_voxel(X, Y):
    Xc = X - X.mean(0)
    Xc /= np.linalg.norm(Xc, axis=0)
    best, r = [], []
    for j in range(Y.shape[1]):
        y = Y[:, j] - Y[:, j].mean()
        rs = Xc.T @ (y / np.linalg.norm(y))
        best.append(int(np.argmax(rs)))
        r.append(rs[best[-1]])
    return np.array(best), np.array(r)


def scipy_loop(X, Y):
    best, r = [], []
    for j in range(Y.shape[1]):
        rs = [pearsonr(X[:, u], Y[:, j])[0] for u in range(X.shape[1])]
        best.append(int(np.argmax(rs)))
        r.append(rs[best[-1]])
    return np.array(best), np.array(r)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    cfg = QUICK if ap.parse_args().quick else FULL
    rng = np.random.default_rng(0)
    X = rng.standard_normal((cfg["n_samples"], cfg["n_units"])).astype(np.float32)
    Y = rng.standard_normal((cfg["n_samples"], cfg["n_targets"])).astype(np.float32)
    print(f"{cfg['n_samples']} stimuli, {cfg['n_units']} units, {cfg['n_targets']} voxels")

    t = time.perf_counter()
    res = max_correlation(X, Y)
    ours = time.perf_counter() - t
    print(f"ours:      {ours:8.3f} s")

    k = cfg["loop_voxels"]
    t = time.perf_counter()
    best, r = per_voxel(X.astype(np.float64), Y[:, :k].astype(np.float64))
    loop = (time.perf_counter() - t) * cfg["n_targets"] / k
    print(f"per-voxel: {loop:8.3f} s (scaled from {k} voxels); ratio {loop / ours:.1f}x; "
          f"max |dr| {np.max(np.abs(r - res.r[:k])):.2e}; units agree "
          f"{np.array_equal(best, res.best_unit[:k])}")

    k = cfg["scipy_voxels"]
    t = time.perf_counter()
    best, r = scipy_loop(X.astype(np.float64), Y[:, :k].astype(np.float64))
    slow = (time.perf_counter() - t) * cfg["n_targets"] / k
    print(f"pearsonr:  {slow:8.1f} s (scaled from {k} voxels); ratio {slow / ours:.0f}x; "
          f"max |dr| {np.max(np.abs(r - res.r[:k])):.2e}; units agree "
          f"{np.array_equal(best, res.best_unit[:k])}")


if __name__ == "__main__":
    main()
