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
int -seed every layer / ROI gets the same folds and permutations.

Outputs in -out DIR:
  decoding.csv           source, n_features, model, accuracy, balanced_accuracy,
                         chance, p  (regressors: source, ..., target, r, r2, p)
  per_class.csv          source, class, n, accuracy (classifiers)
  confusion_SOURCE.csv   true class (rows) x predicted class counts (classifiers)
  predictions.csv        sample, stimID, [group], fold, true, one column per source
  decoding.png           accuracy (or r) per source, chance marked

example: db_decode -act alexnet.act.h5 -layer conv5_relu fc2_relu -stim imgs.stim.csv -target label -model logistic -cv 10 -n-perm 1000 -out dec/
"""
import numpy as np

from ..errors import InputError
from ._common import add_force_arg, add_option, cli_main, make_parser
from .encode import add_cv_args, parse_cv
from .roi import add_roi_args, rois_from_args


def get_parser():
    from ..algo.decoding import MODELS

    p = make_parser("db_decode", __doc__)
    g = p.add_argument_group("features (one of -act / -resp)")
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
    add_option(g, "model", default="logistic", choices=sorted(MODELS),
               help="classifiers: logistic, svm (linear); regressors: ridge, lasso, glm")
    add_cv_args(g)
    add_option(p, "out", required=True, metavar="DIR", help="output directory")
    add_option(p, "no-plot", action="store_true", help="write no figure")
    add_force_arg(p)
    return p


def _safe(name):
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in str(name))


def _sources(args, n_stim):
    """[(name, X or callable reading X)] of the chosen features, checked against -stim."""
    from ..pipelines import LayerFeatures, layer_mask
    from ..pipelines import load_responses

    if bool(args.act) == bool(args.resp):
        raise InputError("give the features: -act FILE (DNN layers) or -resp FILE "
                         "(brain data), not both.")
    if args.act:
        from ..base.activation import Activation

        if args.roi or args.bmask or args.meas:
            raise InputError("-roi/-bmask/-meas select brain features of -resp; with "
                             "-act use -layer/-chn/-dmask.")
        act = Activation.load(args.act)
        if act.n_stim != n_stim:
            raise InputError(f"{args.act} has {act.n_stim} stimuli but {args.stim} has "
                             f"{n_stim}; give the table the activation was made from.")
        mask = layer_mask(act, layers=args.layer, chn=args.chn, dmask=args.dmask)
        return [(layer, lambda layer=layer: LayerFeatures(
            act, layer, mask=mask).data) for layer in mask.layers]
    if args.layer or args.chn or args.dmask:
        raise InputError("-layer/-chn/-dmask select DNN features of -act; with -resp use "
                         "-roi/-bmask.")
    responses = load_responses(args.resp, rois=rois_from_args(args, required=False),
                               columns=args.meas)
    if responses.n_samples != n_stim:
        raise InputError(f"{args.resp} has {responses.n_samples} samples but {args.stim} "
                         f"has {n_stim} stimuli; they must match one to one.")
    responses.report_skipped("they are left out of the features")
    name = "all" if responses.brain is not None else _safe(args.resp.split("/")[-1])
    return responses.sources(name)


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


@cli_main(get_parser)
def main(args):
    from ..pipelines import decode_sources, decoding_tables
    from ..base.stimulus import Stimulus
    from ..io import prepare_output_dir
    from ..io.table import write_table

    if args.n_perm < 0 or args.n_jobs == 0:
        raise InputError("-n-perm must be >= 0 and -n-jobs non-zero.")
    args.cv = parse_cv(args.cv)
    out = prepare_output_dir(args.out, force=args.force)
    stim = Stimulus.load(args.stim)
    y = np.asarray(stim[args.target])
    classifier = args.model in ("logistic", "svm")
    if not classifier and y.dtype.kind not in "iuf":
        raise InputError(f"-model {args.model} predicts numbers but column {args.target!r} "
                         f"of {args.stim} holds text; use -model logistic or svm.")
    groups = np.asarray(stim[args.groups]) if args.groups else None
    sources = _sources(args, len(stim))
    results = decode_sources(sources, y if classifier else y.astype(np.float64),
                             model=args.model, cv=args.cv, groups=groups,
                             n_perm=args.n_perm, seed=args.seed, n_jobs=args.n_jobs,
                             progress=not args.quiet)

    tables = decoding_tables(results, target_names=None if classifier else [args.target])
    write_table(out / "decoding.csv", tables["summary"], force=True)
    written = ["decoding.csv"]
    if classifier:
        write_table(out / "per_class.csv", tables["per_class"], force=True)
        written.append("per_class.csv")
        for name, table in tables["confusion"].items():
            write_table(out / f"confusion_{_safe(name)}.csv", table, force=True)
            written.append(f"confusion_{_safe(name)}.csv")
    pred = {"sample": np.arange(1, len(stim) + 1), "stimID": stim.ids}
    if groups is not None:
        pred["group"] = groups
    pred.update(fold=results[0][2].folds + 1, true=y)
    pred.update({name: res.predictions for name, _, res in results})
    write_table(out / "predictions.csv", pred, force=True)
    written.append("predictions.csv")
    if not args.no_plot:
        from ..viz import plot_decoding_summary
        plot_decoding_summary(out / "decoding.png", tables["summary"], force=True)
        written.append("decoding.png")
    _print(results)
    print(f"wrote {out}: {', '.join(written)}")
