"""Decode a stimulus-table column from DNN layers or brain data (DNNBrain's db_decode).

Features are the units of every layer of -act (-layer, default all; -chn or
-dmask select units), or brain data -resp: the voxels of every ROI of -roi /
-bmask (all voxels without them), the ROI signals of a .roi.h5 file together, or
the numeric columns of a table. The target is the -target column of -stim
(default label). Classifiers (logistic, svm) report accuracy, balanced accuracy,
the confusion matrix and per-class accuracy; regressors (ridge, lasso, glm)
Pearson r and R^2 of the held-out predictions. Features are standardised inside
every training fold; folds are stratified for classifiers and keep -groups
whole; -n-perm N label permutations (same folds, model refitted) give p. With an
int -seed every layer / ROI gets the same folds and permutations. An audio
activation file (one row per 0.96 s example, ID#k) is averaged over each
stimulus's examples first: one sample per row of -stim, as the target and -resp.

DNN units from brain (DNNBrain's db_decode direction): give both -resp (the
features: brain ROIs, .roi.h5 signals or table columns) and -act (the targets):
every unit of every -layer (-chn / -dmask select units; db_pool first to decode
channel means) is predicted from each feature source by a regressor (-model
ridge, the default here, lasso or glm), with the same folds, standardisation and
permutations; p per unit and max-statistic p_fwer across the layer's units.
-target is not used then; -stim names the stimuli (and -groups).

Outputs in -out DIR:
  decoding.csv           source, n_features, model, accuracy, balanced_accuracy,
                         chance, p  (regressors: source, ..., target, r, r2, p)
  per_class.csv          source, class, n, accuracy (classifiers)
  confusion_SOURCE.csv   true class (rows) x predicted class counts (classifiers)
  predictions.csv        sample, stimID, [group], fold, true, one column per source
  decoding.png           accuracy (or r) per source, chance marked
 with -act and -resp:
  units.tsv              source, layer, chn, row, col, n_features, model, r, r2,
                         [p, p_fwer]
  summary.csv            source, layer, n_features, model, n_units, n_decoded,
                         mean_r, median_r, max_r, [n_sig, n_sig_fwer at p < 0.05]
  folds.csv              sample, stimID, [group], fold

example: db_decode -act alexnet.act.h5 -layer conv5_relu fc2_relu -stim imgs.stim.csv -target label -model logistic -cv 10 -n-perm 1000 -out dec/
example: db_decode -resp beta.nii.gz -roi atlas.nii.gz -act alexnet.act.h5 -layer fc2_relu -stim imgs.stim.csv -model ridge -cv 10 -n-perm 1000 -out units/
"""
import numpy as np

from ..errors import InputError
from ._args import add_cv_args, add_roi_args, parse_cv, rois_from_args
from ._common import (add_force_arg, add_option, add_scheduler_arg, cli_main, make_parser,
                      open_scheduler, output_path)


def get_parser():
    from ..algo.decoding import MODELS

    p = make_parser("db_decode", __doc__)
    g = p.add_argument_group("features (one of -act / -resp; both: decode -act's units)")
    add_option(g, "act", metavar="FILE", help="activation file (.act.h5)")
    add_option(g, "layer", nargs="+", metavar="L", help="layers; default: all in the file")
    add_option(g, "chn", nargs="+", type=int, metavar="N",
               help="1-based channels kept in every -layer")
    add_option(g, "dmask", metavar="FILE", help=".dmask.csv: channels/rows/cols per layer")
    add_option(g, "resp", metavar="FILE",
               help="brain data (NIfTI/MGH, CIFTI, GIFTI), a .roi.h5 file or a CSV/TSV "
                    "table, one row per stimulus")
    add_option(g, "meas", nargs="+", metavar="COL",
               help="table columns (or .roi.h5 ROIs) to use; default all numeric")
    add_roi_args(p, title="ROIs of brain -resp (-roi ATLAS or -bmask MASK; default all)")
    g = p.add_argument_group("target")
    add_option(g, "stim", required=True, metavar="FILE", help="stimulus table")
    add_option(g, "target", default="label", metavar="COL",
               help="column of -stim to decode")
    g = p.add_argument_group("model")
    add_option(g, "model", choices=sorted(MODELS),
               help="classifiers: logistic (the default for a column), svm (linear); "
                    "regressors: ridge (for units), lasso, glm")
    add_cv_args(g)
    add_option(p, "out", type=output_path, required=True, metavar="DIR", help="output directory")
    add_option(p, "no-plot", action="store_true", help="write no figure")
    add_force_arg(p)
    add_scheduler_arg(p, what="layers / ROIs decoded (with their folds and permutations)")
    return p


def _sources(args, stim):
    """[(name, X or callable reading X)] of the chosen features, checked against -stim."""
    n_stim = len(stim)
    from ..pipelines import layer_sources, response_sources

    if not (args.act or args.resp):
        raise InputError("give the features: -act FILE (DNN layers) or -resp FILE "
                         "(brain data); both decode -act's units from -resp.")
    if args.act:
        if args.roi or args.bmask or args.meas:
            raise InputError("-roi/-bmask/-meas select brain features of -resp; with "
                             "-act use -layer/-chn/-dmask.")
        return layer_sources(args.act, n_stim=n_stim, stim=args.stim, layers=args.layer,
                             chn=args.chn, dmask=args.dmask, stim_ids=stim.ids)
    if args.layer or args.chn or args.dmask:
        raise InputError("-layer/-chn/-dmask select DNN features of -act; with -resp use "
                         "-roi/-bmask.")
    return response_sources(args.resp, n_stim=n_stim, stim=args.stim,
                            rois=rois_from_args(args, required=False), columns=args.meas)


def _print(results):
    for name, n_features, res in results:
        if res.task == "classification":
            p = "" if res.p is None else f", p={res.p:.4g}"
            print(f"{name} ({n_features} features): accuracy {res.accuracy:.4f}, balanced "
                  f"accuracy {res.balanced_accuracy:.4f} (chance {1 / len(res.classes):.4f})"
                  f"{p}")
        else:
            p = "" if res.p is None else f", p={float(np.atleast_1d(res.p)[0]):.4g}"
            print(f"{name} ({n_features} features): r {res.r[0]:.4f}, R^2 {res.r2[0]:.4f}{p}")


def _decode_units(args, stim, out, groups):
    """-act and -resp: every unit of -act's layers predicted from -resp's features."""
    from ..io import atomic_output_dir
    from ..io.table import write_table
    from ..pipelines import (UNIT_MODELS, decode_units, layer_sources, response_sources,
                             unit_decoding_tables)

    model = args.model or "ridge"
    if model not in UNIT_MODELS:
        raise InputError(f"-model {model} is a classifier; DNN units are decoded with "
                         f"-model {' / '.join(UNIT_MODELS)}.")
    if args.target != "label":
        raise InputError("-target names a column to decode from -act or -resp alone; "
                         "with both, the targets are -act's units.")
    sources = response_sources(args.resp, n_stim=len(stim), stim=args.stim,
                               rois=rois_from_args(args, required=False), columns=args.meas)
    layers = layer_sources(args.act, n_stim=len(stim), stim=args.stim, layers=args.layer,
                           chn=args.chn, dmask=args.dmask, stim_ids=stim.ids, coords=True)
    results = decode_units(sources, layers, model=model, cv=args.cv, groups=groups,
                           n_perm=args.n_perm, seed=args.seed, progress=not args.quiet)
    units, summary = unit_decoding_tables(results)
    folds = {"sample": np.arange(1, len(stim) + 1), "stimID": stim.ids}
    if groups is not None:
        folds["group"] = groups
    folds["fold"] = results[0].folds + 1
    with atomic_output_dir(out, force=args.force) as tmp:
        write_table(tmp / "units.tsv", units, force=True)
        write_table(tmp / "summary.csv", summary, force=True)
        write_table(tmp / "folds.csv", folds, force=True)
    for i, layer in enumerate(summary["layer"]):
        sig = "" if "n_sig" not in summary else f", {summary['n_sig'][i]} with p < 0.05"
        print(f"{summary['source'][i]} -> {layer}: mean r {summary['mean_r'][i]:.4f}, max r "
              f"{summary['max_r'][i]:.4f} over {summary['n_decoded'][i]} unit(s){sig}")
    print(f"wrote {out}: units.tsv, summary.csv, folds.csv")


@cli_main(get_parser)
def main(args):
    from ..pipelines import decode_sources, decoding_outputs
    from ..base.stimulus import Stimulus
    from ..io import atomic_output_dir, check_output_dir
    from ..io.table import write_table

    if args.n_perm < 0 or args.n_jobs == 0:
        raise InputError("-n-perm must be >= 0 and -n-jobs non-zero.")
    args.cv = parse_cv(args.cv)
    out = check_output_dir(args.out, force=args.force)      # refuse before any work
    stim = Stimulus.load(args.stim)
    groups = np.asarray(stim[args.groups]) if args.groups else None
    if args.act and args.resp:
        return _decode_units(args, stim, out, groups)
    args.model = args.model or "logistic"
    y = np.asarray(stim[args.target])
    classifier = args.model in ("logistic", "svm")
    if not classifier and y.dtype.kind not in "iuf":
        raise InputError(f"-model {args.model} predicts numbers but column {args.target!r} "
                         f"of {args.stim} holds text; use -model logistic or svm.")
    sources = _sources(args, stim)
    with open_scheduler(args, n_jobs=args.n_jobs) as engine:
        results = decode_sources(sources, y if classifier else y.astype(np.float64),
                                 model=args.model, cv=args.cv, groups=groups,
                                 n_perm=args.n_perm, seed=args.seed, n_jobs=args.n_jobs,
                                 progress=not args.quiet, engine=engine)

    files = decoding_outputs(results, y, stim_ids=stim.ids, groups=groups,
                             target=None if classifier else args.target)
    with atomic_output_dir(out, force=args.force) as tmp:     # the folder as a whole
        for name, table in files:
            write_table(tmp / name, table, force=True)
        written = [name for name, _ in files]
        if not args.no_plot:
            from ..viz import plot_decoding_summary
            plot_decoding_summary(tmp / "decoding.png", files[0][1], force=True)
            written.append("decoding.png")
    _print(results)
    print(f"wrote {out}: {', '.join(written)}")
