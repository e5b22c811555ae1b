"""Benchmark CKA (db_rsa -method cka) against the textbook formula in a loop.

Prints, for L layers x R ROIs of N stimuli (default 4 x 20, N = 300; float64 patterns):

(a) every layer x ROI linear CKA with ``cka_matrix`` (the Gram matrices centred once
    and every score one matrix product) -- our time -- against a loop over pairs of
    ``tr(K H L H) / sqrt(tr(K H K H) tr(L H L H))`` with explicit centring matrices
    H = I - 11'/n (the published formula as written): ratio and the largest difference;
(b) a 1000-permutation test of one ROI against the L layers with
    ``cka_permutation_test`` against re-centring and re-scoring each permuted Gram
    matrix in a loop: ratio and the largest difference of the null distributions.

Best of ``--repeat`` runs for our code; the loops run once.

usage: python benchmarks/cka.py [--quick] [--repeat 3]
"""
import argparse
import time

import numpy as np

from dnnsparse.algo.rsa import cka_matrix, cka_permutation_test


def best_time(fn, repeat):
    best, out = np.inf, None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def textbook(K, L):
    n = len(K)
    H = np.eye(n) - np.ones((n, n)) / n
    hsic = lambda A, B: np.trace(A @ H @ B @ H)
    return hsic(K, L) / np.sqrt(hsic(K, K) * hsic(L, L))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="2 x 6 pairs, N = 120")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    n_layers, n_rois, n = (2, 6, 120) if args.quick else (4, 20, 300)
    rng = np.random.default_rng(0)
    layers = [rng.standard_normal((n, 256)) for _ in range(n_layers)]
    rois = [rng.standard_normal((n, 80)) for _ in range(n_rois)]
    A = np.stack([x @ x.T for x in layers])
    B = np.stack([x @ x.T for x in rois])

    ours, scores = best_time(lambda: cka_matrix(A, B), args.repeat)
    t0 = time.perf_counter()
    ref = np.array([[textbook(K, L) for L in B] for K in A])
    loop = time.perf_counter() - t0
    print(f"(a) {n_layers} layers x {n_rois} ROIs, N={n}: cka_matrix {ours:.3f} s, "
          f"textbook loop {loop:.3f} s, ratio {loop / ours:.1f}x, max |diff| "
          f"{np.abs(scores - ref).max():.2e}")

    n_perm = 1000 if not args.quick else 200
    ours, res = best_time(lambda: cka_permutation_test(B[0], A, n_perm=n_perm, seed=0),
                          args.repeat)
    perm_rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    H = np.eye(n) - np.ones((n, n)) / n
    Lc = [H @ K @ H for K in A]
    null = np.empty((n_perm, n_layers))
    for k in range(n_perm):
        p = perm_rng.permutation(n)
        Kp = H @ B[0][np.ix_(p, p)] @ H
        null[k] = [np.sum(Kp * L) / np.sqrt(np.sum(Kp * Kp) * np.sum(L * L)) for L in Lc]
    loop = time.perf_counter() - t0
    print(f"(b) {n_perm}-permutation test, 1 ROI x {n_layers} layers, N={n}: ours "
          f"{ours:.3f} s, loop {loop:.3f} s, ratio {loop / ours:.1f}x, max |diff| "
          f"{np.abs(res.null_distribution - null).max():.2e}")


if __name__ == "__main__":
    main()
