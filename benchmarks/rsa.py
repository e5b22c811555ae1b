"""Benchmark RDM computation and the RSA permutation test.

Prints, on random float32 patterns (like layer activations):

(a) correlation RDM of N stimuli x F features (default 5000 x 4096) with
    ``dnnsparse.algo.rsa.compute_rdm``: our time (including the float32 ->
    float64 conversion and writing the condensed vector), the ratio to a bare
    BLAS product ``X @ X.T`` of the same float64 matrix (goal <= 1.5), the
    ratio of ``scipy.spatial.distance.pdist(X, "correlation")`` to ours
    (goal >= 5x faster), the largest difference from pdist, and our time in
    row blocks (``chunk_size``) that bound memory;
(b) a 1000-permutation stimulus-label test (rows and columns permuted
    together) for n = 500 stimuli, Pearson and Spearman: seconds.

Best of ``--repeat`` runs for our code and the BLAS baseline; pdist runs once.

usage: python benchmarks/rsa.py [--quick] [--repeat 3]
"""
import argparse
import time

import numpy as np
from scipy.spatial.distance import pdist

from dnnsparse.algo.rsa import compute_rdm
from dnnsparse.algo.rsa import rdm_permutation_test


def best_time(fn, repeat):
    best, out = np.inf, None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def bench_rdm(n, f, repeat, chunk):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, f)).astype(np.float32)
    X64 = X.astype(np.float64)
    t_blas, _ = best_time(lambda: X64 @ X64.T, repeat)
    t_ours, ours = best_time(lambda: compute_rdm(X, metric="correlation"), repeat)
    t_chunk, chunked = best_time(lambda: compute_rdm(X, metric="correlation",
                                                     chunk_size=chunk), repeat)
    t0 = time.perf_counter()
    ref = pdist(X64, "correlation")
    t_pdist = time.perf_counter() - t0
    print(f"(a) correlation RDM, {n} stimuli x {f} features (float32 in, float64 math)")
    print(f"    ours                 {t_ours:8.3f} s")
    print(f"    bare X @ X.T         {t_blas:8.3f} s   ratio ours/BLAS = "
          f"{t_ours / t_blas:.2f}  (goal <= 1.5)")
    print(f"    scipy pdist          {t_pdist:8.3f} s   speed-up pdist/ours = "
          f"{t_pdist / t_ours:.1f}x  (goal >= 5x)")
    print(f"    ours, chunk_size={chunk:<5d}{t_chunk:7.3f} s   ratio to BLAS = "
          f"{t_chunk / t_blas:.2f}")
    print(f"    max |ours - pdist| = {np.abs(ours - ref).max():.2e}, chunked vs whole "
          f"= {np.abs(chunked - ours).max():.2e}")


def bench_permutation(n, n_perm, repeat):
    rng = np.random.default_rng(1)
    a = compute_rdm(rng.standard_normal((n, 100)))
    b = compute_rdm(rng.standard_normal((n, 100)))
    print(f"(b) permutation test, n = {n} stimuli ({len(a)} pairs), {n_perm} permutations "
          f"of rows+columns")
    for method in ("pearson", "spearman"):
        t, res = best_time(lambda: rdm_permutation_test(a, b, method=method, n_perm=n_perm,
                                                        seed=0), repeat)
        print(f"    {method:9s} {t:8.3f} s   (r = {res.statistic:+.4f}, p = {res.pvalue:.3f})")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="1000 x 1024 and 200 permutations")
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args(argv)
    if args.quick:
        bench_rdm(1000, 1024, args.repeat, chunk=250)
        bench_permutation(500, 200, args.repeat)
    else:
        bench_rdm(5000, 4096, args.repeat, chunk=1000)
        bench_permutation(500, 1000, args.repeat)


if __name__ == "__main__":
    main()
