"""Ridge and RDMs on NumPy vs torch-CPU vs torch-CUDA (the array-API paths).

- ``ridge``: one training set of ``--stim`` x ``--features`` (80 % train, 20 % test),
  ``--targets`` targets, 6 alphas: the decomposition
  (:class:`~dnnsparse.algo.encoding._solvers.RidgeDecomposition`), every alpha's held-out
  score for every target (:func:`kfold_alpha_scores`, one fold) and the best alpha per
  target -- the inner loop of db_encode.  Default 2000 x 4096 -> 20k targets.
- ``rdm``: :func:`~dnnsparse.algo.rsa.compute_rdm` (correlation) of ``--rdm-stim`` x
  ``--rdm-features`` patterns.  Default 1000 x 50k.

The same data goes to every backend; the largest difference from NumPy is printed
(float64 everywhere).  torch-CUDA runs only when ``torch.cuda.is_available()``;
otherwise the script says "no GPU present".  Times are the best of ``--repeat`` runs
(CUDA timings synchronise; the first CUDA run is a warm-up).

example: OMP_NUM_THREADS=1 python benchmarks/gpu_linalg.py --targets 5000
"""
import argparse
import time

import numpy as np
import torch

from dnnsparse.algo.encoding import _solvers as ridge
from dnnsparse.algo.rsa import compute_rdm
from dnnsparse.utils.xp import to_numpy

ALPHAS = np.logspace(-1, 4, 6)


def _best(fn, repeat, sync=None):
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        if sync:
            sync()
        times.append(time.perf_counter() - t)
    return out, min(times)


def _ridge(X, Y, like=None):
    n = len(X)
    tr, te = np.arange(int(0.8 * n)), np.arange(int(0.8 * n), n)
    y = Y if like is None else torch.as_tensor(Y, dtype=like.dtype, device=like.device)

    def make(i, a, b):
        dec = ridge.RidgeDecomposition(X[a], like=None if like is None else y)
        return ridge.FoldOperator(dec, X[b], ALPHAS, y.dtype)
    scores = ridge.kfold_alpha_scores(make, [(tr, te)], y)
    return to_numpy(scores), ridge.select_alphas(scores)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--stim", type=int, default=2000)
    p.add_argument("--features", type=int, default=4096)
    p.add_argument("--targets", type=int, default=20000)
    p.add_argument("--rdm-stim", type=int, default=1000)
    p.add_argument("--rdm-features", type=int, default=50000)
    p.add_argument("--repeat", type=int, default=2)
    args = p.parse_args(argv)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((args.stim, args.features))
    Y = X[:, :64] @ rng.standard_normal((64, args.targets)) * 0.05 \
        + rng.standard_normal((args.stim, args.targets))
    P = rng.standard_normal((args.rdm_stim, args.rdm_features))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU thread(s)")
    backends = [("numpy", None), ("torch-cpu", torch.empty(0, dtype=torch.float64))]
    if torch.cuda.is_available():
        backends.append(("torch-cuda", torch.empty(0, dtype=torch.float64, device="cuda")))
        print(f"GPU: {torch.cuda.get_device_name(0)}")
    else:
        print("no GPU present: torch-CUDA not timed")

    ref_scores = ref_rdm = None
    t_np = {}
    for name, like in backends:
        sync = torch.cuda.synchronize if name == "torch-cuda" else None
        if sync:                                    # warm-up: CUDA context, kernels
            _ridge(X[:200, :256], Y[:200, :100], like)
            compute_rdm(torch.as_tensor(P[:50, :100], device="cuda"))
        (scores, best), t_ridge = _best(lambda: _ridge(X, Y, like), args.repeat, sync)
        conv = (lambda: P) if like is None else (
            lambda: torch.as_tensor(P, dtype=like.dtype, device=like.device))
        rdm, t_rdm = _best(lambda: to_numpy(compute_rdm(conv(), metric="correlation")),
                           args.repeat, sync)
        if ref_scores is None:
            ref_scores, ref_best, ref_rdm = scores, best, rdm
            t_np = {"ridge": t_ridge, "rdm": t_rdm}
        d_s = float(np.max(np.abs(scores - ref_scores) / np.maximum(1, np.abs(ref_scores))))
        d_r = float(np.max(np.abs(rdm - ref_rdm)))
        print(f"{name:>10}: ridge {args.stim}x{args.features}->{args.targets} "
              f"{t_ridge:7.2f} s (x{t_np['ridge'] / t_ridge:5.2f} vs numpy; max rel diff "
              f"{d_s:.1e}, best alpha equal {np.mean(best == ref_best):.4f})  |  rdm "
              f"{args.rdm_stim}x{args.rdm_features} {t_rdm:6.2f} s "
              f"(x{t_np['rdm'] / t_rdm:5.2f}; max diff {d_r:.1e})")


if __name__ == "__main__":
    main()
