"""Benchmark volume searchlight RSA (db_searchlight) against rsatoolbox's searchlight.

A 64 x 64 x 40 grid (every voxel in the mask: 163,840 centres), 200 stimuli, spheres of
3 voxels radius (1 mm voxels, 3 mm: 123 voxels inside the grid), correlation-distance
RDMs compared with one model RDM (a random "layer"), float64:

- ours: :func:`dnnsparse.algo.searchlight.searchlight_scores` on the full grid (one
  thread unless ``--n-jobs``), and on an evenly spaced subset of ``--subset`` centres;
- rsatoolbox: ``get_volume_searchlight`` (radius 3 + 1e-6: rsatoolbox keeps distances
  < radius, ours <= radius; squared distances on the grid are integers, so the spheres
  are the same, which is checked), ``get_searchlight_RDMs`` and
  ``evaluate_models_searchlight(eval_fixed)`` on the same subset of centres (its
  neighbourhood search runs over that subset only); its full-grid time is the subset
  time per centre times 163,840 (extrapolated: the full grid takes hours).

Prints, per method (pearson = rsatoolbox's 'corr', spearman), the times, the ratio
(rsatoolbox per centre / ours per centre, full grid and subset) and the largest score
difference on the subset.

usage: python benchmarks/searchlight.py [--quick] [--subset 1000] [--methods pearson spearman]
       [--no-full] [--n-jobs 1]
"""
import argparse
import contextlib
import io
import time

import numpy as np

from dnnsparse.algo.rsa import compute_rdm
from dnnsparse.algo.searchlight import VolumeSearchlight, searchlight_scores

RSA_METHOD = {"pearson": "corr", "spearman": "spearman"}


def rsatoolbox_scores(mask, data_full, centres_flat, model, method):
    """rsatoolbox's searchlight on the given centres (flat grid indices); (scores, s)."""
    from rsatoolbox.inference import eval_fixed
    from rsatoolbox.model import ModelFixed
    from rsatoolbox.rdm import RDMs
    from rsatoolbox.util.searchlight import (_get_searchlight_neighbors,
                                             evaluate_models_searchlight,
                                             get_searchlight_RDMs)

    t0 = time.perf_counter()
    # get_volume_searchlight, restricted to the subset's centres (it loops over centres)
    neighbours = []
    for c in centres_flat:
        nb = _get_searchlight_neighbors(mask, np.unravel_index(c, mask.shape), 3 + 1e-6,
                                        True)
        neighbours.append(np.ravel_multi_index(nb, mask.shape))
    with contextlib.redirect_stderr(io.StringIO()):          # its tqdm bars
        sl = get_searchlight_RDMs(data_full, np.asarray(centres_flat), neighbours,
                                  np.arange(len(data_full)), method="correlation",
                                  verbose=False)
        res = evaluate_models_searchlight(sl, ModelFixed("layer", RDMs(model[None])),
                                          eval_fixed, method=RSA_METHOD[method])
    elapsed = time.perf_counter() - t0
    return np.array([np.asarray(r.evaluations).reshape(-1)[0] for r in res]), \
        neighbours, elapsed


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="24 x 24 x 16 grid, 60 stimuli")
    ap.add_argument("--subset", type=int, default=1000, help="centres timed on both sides")
    ap.add_argument("--methods", nargs="+", default=["pearson", "spearman"])
    ap.add_argument("--no-full", action="store_true", help="skip our full-grid run")
    ap.add_argument("--n-jobs", type=int, default=1)
    args = ap.parse_args()
    shape, n = ((24, 24, 16), 60) if args.quick else ((64, 64, 40), 200)
    rng = np.random.default_rng(0)
    mask = np.ones(shape, dtype=bool)
    data = rng.standard_normal((n, mask.sum()))
    model = compute_rdm(rng.standard_normal((n, 500)))          # a random layer's RDM
    sl = VolumeSearchlight(mask, np.eye(4), 3.0)
    subset = np.unique(np.linspace(0, sl.n_centres - 1, args.subset).astype(int))
    print(f"grid {shape} ({sl.n_centres} centres), {n} stimuli, radius 3 voxels "
          f"({len(sl.offsets)} in a full sphere), subset {len(subset)} centres, "
          f"n_jobs {args.n_jobs}")
    for method in args.methods:
        t0 = time.perf_counter()
        ours_sub = searchlight_scores(data, sl, model[None], method=method, centres=subset,
                                      n_jobs=args.n_jobs, min_features=1)[0]
        t_sub = time.perf_counter() - t0
        theirs, neighbours, t_rsa = rsatoolbox_scores(mask, data, subset, model, method)
        same = all(set(nb) == set(sl.members([c])[0][sl.members([c])[0] >= 0])
                   for c, nb in zip(subset, neighbours))
        diff = np.nanmax(np.abs(ours_sub - theirs))
        per_rsa = t_rsa / len(subset)
        line = (f"{method}: subset ours {t_sub:.2f} s, rsatoolbox {t_rsa:.1f} s "
                f"({per_rsa * 1e3:.1f} ms/centre), ratio {t_rsa / t_sub:.1f}x; same spheres "
                f"{same}; max |diff| {diff:.2e}")
        if not args.no_full:
            t0 = time.perf_counter()
            full = searchlight_scores(data, sl, model[None], method=method,
                                      n_jobs=args.n_jobs, min_features=1)[0]
            t_full = time.perf_counter() - t0
            est = per_rsa * sl.n_centres
            line += (f"\n  full grid: ours {t_full:.1f} s; rsatoolbox (extrapolated) "
                     f"{est:.0f} s; ratio {est / t_full:.1f}x; full = subset run "
                     f"{np.allclose(full[subset], ours_sub, rtol=0, atol=1e-13)}")
        print(line, flush=True)


if __name__ == "__main__":
    main()
