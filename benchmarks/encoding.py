"""Benchmark: per-voxel ridge encoding (nested CV) against scikit-learn and himalaya.

Same data, same outer folds (shuffled KFold) and inner folds (KFold, no shuffle),
same alpha grid, intercept fitted, inner score = mean squared error:

- ours:     dnnsparse.algo.encoding.encode(model="ridge") on all voxels;
- sklearn:  a per-voxel loop of RidgeCV(alphas, cv=inner, scoring=neg MSE) per outer
            fold on a voxel subsample, its time scaled up to all voxels;
- himalaya: himalaya.ridge.RidgeCV(alphas, cv=inner, fit_intercept=True), numpy
            backend, per outer fold on all voxels (when himalaya is installed).

Prints wall times, the peak resident-memory increase of each phase (psutil, sampled
every 0.25 s: a faster sampler slows OpenBLAS on a 2-core machine), the BLAS in use,
speed ratios and how far the chosen alphas and held-out predictions agree.

usage: python benchmarks/encoding.py [--quick] [--dtype float32] [--sk-voxels 10]
"""
import argparse
import os
import platform
import sys
import threading
import time

import numpy as np
import psutil
import threadpoolctl
from sklearn.linear_model import RidgeCV
from sklearn.model_selection import KFold

from dnnsparse.algo.encoding import _solvers as _ridge
from dnnsparse.algo.encoding import encode

FULL = dict(n_samples=2000, n_features=1000, n_targets=20000, sk_voxels=2, repeat=1)
QUICK = dict(n_samples=500, n_features=200, n_targets=2000, sk_voxels=10, repeat=3)


class PeakRSS:
    """Peak increase of resident memory over the block (sampled by a thread)."""

    def __init__(self, interval=0.25):
        self.proc = psutil.Process()
        self.interval = interval

    def __enter__(self):
        self.base = self.peak = self.proc.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        self.t0 = time.perf_counter()
        return self

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self.proc.memory_info().rss)
            time.sleep(self.interval)

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.t0
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.proc.memory_info().rss)
        self.mib = (self.peak - self.base) / 2 ** 20


def make_data(n, p, t, dtype, seed=0):
    """Features, and voxels = low-rank linear map of them + noise, SNR varying by voxel."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p))
    signal = (X @ rng.standard_normal((p, 20))) @ rng.standard_normal((20, t))
    signal /= signal.std(0)
    snr = 10 ** rng.uniform(-1.5, 0.5, t)          # from almost noise to clear signal
    Y = signal * snr + rng.standard_normal((n, t))
    return X.astype(dtype), Y.astype(dtype)


def blas_info():
    libs = threadpoolctl.threadpool_info()
    blas = [f"{d['internal_api']} {d.get('version')} ({d.get('architecture')}, "
            f"{d['num_threads']} threads)" for d in libs if d["user_api"] == "blas"]
    core = os.environ.get("OPENBLAS_CORETYPE")
    return "; ".join(blas) + (f"; OPENBLAS_CORETYPE={core}" if core else "")


def measure(func, *args, **kwargs):
    with PeakRSS() as m:
        out = func(*args, **kwargs)
    return m, out


def best(runs):
    """Fastest run's timing and output (the machine may be shared), largest memory peak."""
    m, out = min(runs, key=lambda run: run[0].seconds)
    m.mib = max(run[0].mib for run in runs)
    return m, out


def times(runs):
    return ", ".join(f"{m.seconds:.1f}" for m, _ in runs) + " s"


def run_sklearn(X, Y, alphas, splits, inner, voxels):
    pred = np.empty((len(X), len(voxels)), dtype=Y.dtype)
    chosen = np.empty((len(splits), len(voxels)))
    for k, j in enumerate(voxels):
        for o, (tr, te) in enumerate(splits):
            est = RidgeCV(alphas, cv=inner, scoring="neg_mean_squared_error")
            est.fit(X[tr], Y[tr, j])
            pred[te, k] = est.predict(X[te])
            chosen[o, k] = est.alpha_
    return pred, chosen


def run_himalaya(X, Y, alphas, splits, inner, batch):
    from himalaya.backend import set_backend
    from himalaya.ridge import RidgeCV as HimalayaRidgeCV
    set_backend("numpy")
    pred = np.empty_like(Y)
    chosen = np.empty((len(splits), Y.shape[1]))
    for o, (tr, te) in enumerate(splits):
        est = HimalayaRidgeCV(alphas=alphas.astype(Y.dtype), fit_intercept=True, cv=inner,
                              solver_params=dict(n_targets_batch=batch,
                                                 n_targets_batch_refit=batch))
        est.fit(X[tr], Y[tr])
        pred[te] = est.predict(X[te])
        chosen[o] = est.best_alphas_
    return pred, chosen


def agreement(name, ours_pred, ours_alpha, ref_pred, ref_alpha):
    same = np.isclose(ours_alpha, ref_alpha, rtol=1e-4)
    full = same.all(0)                              # same alpha in every outer fold
    diff = np.abs(ours_pred[:, full] - ref_pred[:, full])
    scale = np.abs(ref_pred).max()
    print(f"  vs {name}: same alpha in {same.mean():.2%} of voxel-folds; on voxels with the "
          f"same alphas ({full.sum()}) max |pred diff| = "
          f"{diff.max() if diff.size else float('nan'):.2e} (predictions up to {scale:.2f})")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small problem")
    parser.add_argument("--n-samples", type=int)
    parser.add_argument("--n-features", type=int)
    parser.add_argument("--n-targets", type=int)
    parser.add_argument("--sk-voxels", type=int, help="voxels in the scikit-learn loop")
    parser.add_argument("--n-alphas", type=int, default=10)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--inner", type=int, default=5)
    parser.add_argument("--dtype", default="float64", choices=["float32", "float64"])
    parser.add_argument("--repeat", type=int, help="runs of ours and himalaya; best time kept")
    parser.add_argument("--no-himalaya", action="store_true")
    args = parser.parse_args(argv)
    size = dict(QUICK if args.quick else FULL)
    for key in size:
        if getattr(args, key) is not None:
            size[key] = getattr(args, key)
    n, p, t = size["n_samples"], size["n_features"], size["n_targets"]
    alphas = np.logspace(-1, 5, args.n_alphas)

    X, Y = make_data(n, p, t, np.dtype(args.dtype))
    splits = list(KFold(args.folds, shuffle=True, random_state=0).split(X))
    inner = KFold(args.inner)
    n_test_inner = (n - n // args.folds) // args.inner
    batch = _ridge.auto_batch(t, len(alphas), n_test_inner + 1, Y.dtype.itemsize)
    print(f"python {platform.python_version()}, numpy {np.__version__}, "
          f"{psutil.cpu_count()} cpus; BLAS: {blas_info()}")
    print(f"data: {n} stimuli x {p} features -> {t} voxels ({args.dtype}; Y is "
          f"{Y.nbytes / 2**20:.0f} MiB), {len(alphas)} alphas, {args.folds} outer folds, "
          f"{args.inner}-fold inner CV, voxel batch {batch}")
    sys.stdout.flush()

    try:
        import himalaya
    except ImportError:
        himalaya = None
    use_him = himalaya is not None and not args.no_himalaya
    # ours and himalaya alternate, so that both meet the same load on a shared machine
    ours_runs, him_runs = [], []
    for _ in range(size["repeat"]):
        ours_runs.append(measure(encode, X, Y, alphas=alphas, cv=splits, inner_cv=inner))
        print(f"  ours run: {ours_runs[-1][0].seconds:.1f} s", file=sys.stderr)
        if use_him:
            him_runs.append(measure(run_himalaya, X, Y, alphas, splits, inner, batch))
            print(f"  himalaya run: {him_runs[-1][0].seconds:.1f} s", file=sys.stderr)
    ours_m, res = best(ours_runs)
    print(f"ours:     {ours_m.seconds:9.1f} s   peak +{ours_m.mib:7.0f} MiB"
          f"   (best of {size['repeat']}: {times(ours_runs)}; median r {np.nanmedian(res.r):.3f})")
    sys.stdout.flush()

    voxels = np.sort(np.random.default_rng(1).choice(t, size["sk_voxels"], replace=False))
    with PeakRSS() as sk_m:
        sk_pred, sk_alpha = run_sklearn(X, Y, alphas, splits, inner, voxels)
    sk_total = sk_m.seconds / len(voxels) * t
    print(f"sklearn:  {sk_total:9.1f} s   (loop over {len(voxels)} voxels took "
          f"{sk_m.seconds:.1f} s, scaled x{t / len(voxels):.0f})   peak +{sk_m.mib:.0f} MiB")
    print(f"  ratio sklearn / ours = {sk_total / ours_m.seconds:.1f}x  (goal >= 20x)")
    agreement("sklearn", res.predictions[:, voxels], res.alphas[:, voxels], sk_pred, sk_alpha)
    sys.stdout.flush()

    if not use_him:
        print("himalaya: skipped (not installed)" if himalaya is None else "himalaya: skipped")
        return 0
    him_m, (him_pred, him_alpha) = best(him_runs)
    print(f"himalaya: {him_m.seconds:9.1f} s   peak +{him_m.mib:7.0f} MiB   "
          f"(best of {size['repeat']}: {times(him_runs)}; himalaya {himalaya.__version__}, "
          f"numpy backend, n_targets_batch={batch})")
    print(f"  ratio ours / himalaya = {ours_m.seconds / him_m.seconds:.2f}  (goal <= 1.0)")
    agreement("himalaya", res.predictions, res.alphas, him_pred, him_alpha)
    return 0


if __name__ == "__main__":
    sys.exit(main())
