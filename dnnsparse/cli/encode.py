"""Encode brain or behavioural responses from DNN layers or from brain data
(DNNBrain's db_encode).

For every layer of -act (-layer, default all; -chn or -dmask select units), a
cross-validated model predicts every target of -resp from the layer's units.
-act may instead be brain data (NIfTI/MGH, CIFTI, GIFTI): then each ROI of
-act-roi ATLAS / -act-bmask MASK (all voxels, "brain", without them; -layer
picks ROIs by name) is one feature set in place of a layer; or a .roi.h5 file:
its ROI signals together are one feature set (-layer picks ROIs). So behaviour
(a -resp table column) or brain data can be encoded from brain responses:
  -anal mv  all units together (-iteraxis channel | row_col: one model per
            channel or per (row, col) position);
  -anal uv  per target, the single unit most correlated with it in each training
            set, fitted by least squares (the unit is chosen on training data only).
Models: ridge (penalty per target chosen by inner CV over -alphas), glm (least
squares), lasso, pls (-n-components). -reduce N fits a PCA inside every
training fold. Scores are Pearson r and R^2 of the concatenated held-out
predictions; -n-perm N permutations of the responses give p (within -groups),
-max-stat adds the max-statistic p corrected across targets. -groups COL (a
column of -stim, e.g. run) keeps every group in one fold. With an int -seed
every layer gets the same folds and permutations.

-resp is brain data (NIfTI/MGH, CIFTI dscalar/dtseries, GIFTI; -roi ATLAS or
-bmask MASK restrict the voxels to ROIs and summarise per ROI), a .roi.h5 file
(its ROIs are the targets) or a CSV/TSV table (numeric columns, or -meas COL...).
Its samples must be the stimuli of -act, in order (for a run's time series,
make the activation with db_hrf, and use -contiguous or -groups: shuffled folds
of autocorrelated scans overstate the scores, and permutations of scans assume
exchangeable samples). Constant voxels are skipped (score NaN).

Outputs in -out DIR:
  scores.tsv    layer, [chn | row, col], target (voxel, i, j, k / grayordinate,
                structure / vertex; roi), r, r2, [p, p_fwer], [alpha: median over
                outer folds], [best_unit, best_chn, best_row, best_col]
  summary.csv   layer, [chn | row, col], roi, n_targets, n_encoded, score (mean
                of -scoring), median, max, [n_sig, frac_sig at -p-thr]
  folds.csv     sample, stimID, [group], fold: the outer fold testing each stimulus
  (with brain -act, best_chn/row/col are best_i/j/k, best_vertex or
  best_grayordinate: the feature voxel's index; with a .roi.h5 -act, best_unit
  numbers its ROIs in -layer / file order; the "layer" column names the ROI)
  LAYER/r.EXT, r2, p, p_fwer, alpha, best_unit, best_chn, best_row, best_col:
                maps in the input's format (EXT: the input's volume suffix,
                .dscalar.nii or .func.gii; one map per channel/position)
  LAYER/model.npz (LAYER/<block>.npz with -iteraxis): the model refitted on all
                stimuli as plain arrays (dnnsparse.pipelines.load_model)
  encoding.png  mean score per layer and ROI

example: db_encode -anal mv -act alexnet.act.h5 -layer conv5_relu fc2_relu -resp beta.nii.gz -bmask vtc.nii.gz -model ridge -cv 10 -n-perm 1000 -max-stat -out enc/
example: db_encode -act beta.nii.gz -act-roi atlas.nii.gz -resp imgs.stim.csv -meas rt -model ridge -cv 10 -n-perm 1000 -out brain2rt/
"""
from ..errors import InputError
from ..utils.validation import finite_float
from ._args import add_cv_args, add_roi_args, parse_cv, rois_from_args
from ._common import (add_force_arg, add_linalg_device_args, add_option, add_scheduler_arg,
                      cli_main, make_parser, open_scheduler, output_path, parse_linalg_device)


def get_parser():
    from ..algo.encoding import MODELS
    from ..pipelines import SCORINGS

    p = make_parser("db_encode", __doc__)
    g = p.add_argument_group("DNN")
    add_option(g, "act", required=True, metavar="FILE",
               help="features: activation file (.act.h5), brain data (NIfTI/MGH, CIFTI, "
                    "GIFTI) or a .roi.h5 file, one row per stimulus")
    add_option(g, "layer", nargs="+", metavar="L",
               help="layers (ROIs of a .roi.h5 or of -act-roi); default: all in the file")
    add_option(g, "chn", nargs="+", type=int, metavar="N",
               help="1-based channels kept in every -layer")
    add_option(g, "dmask", metavar="FILE", help=".dmask.csv: channels/rows/cols per layer")
    add_option(g, "iteraxis", choices=["channel", "row_col", "position"],
               help="one model per channel or per (row, col) position")
    add_option(g, "act-roi", metavar="ATLAS",
               help="brain -act: label image; each ROI is one feature set")
    add_option(g, "act-bmask", nargs="+", metavar="MASK",
               help="brain -act: binary masks, one feature set each")
    g = p.add_argument_group("responses")
    add_option(g, "resp", required=True, metavar="FILE",
               help="brain data, a .roi.h5 file or a CSV/TSV table, one row per stimulus")
    add_option(g, "meas", nargs="+", metavar="COL",
               help="table columns (or .roi.h5 ROIs) to encode; default all numeric")
    add_option(g, "stim", metavar="FILE", help="stimulus table (needed for -groups)")
    add_roi_args(p, title="ROIs of brain -resp (-roi ATLAS or -bmask MASK; default all)")
    g = p.add_argument_group("model")
    add_option(g, "anal", default="mv", choices=["mv", "uv"],
               help="mv: all units together; uv: best single unit per target")
    add_option(g, "model", choices=sorted(MODELS),
               help="default: ridge for mv, glm for uv (the only uv model)")
    add_option(g, "alphas", nargs="+", type=finite_float, metavar="A",
               help="ridge penalties tried per target (default 1e-2..1e7, one per "
                    "decade); lasso: one value")
    add_option(g, "inner-cv", default="5", metavar="K",
               help="ridge: folds choosing the penalty inside each training set")
    add_option(g, "n-components", type=int, metavar="N", help="pls: components (default 2)")
    add_option(g, "reduce", type=finite_float, metavar="N",
               help="PCA fitted in every training fold: N components (or a variance "
                    "fraction < 1)")
    add_option(g, "batch", type=int, metavar="N",
               help="targets per solver batch (default: chosen to bound memory)")
    g = p.add_argument_group("evaluation")
    add_option(g, "scoring", default="r", choices=SCORINGS,
               help="summary score and permutation statistic")
    add_cv_args(g)
    add_option(g, "contiguous", action="store_true",
               help="outer folds are contiguous blocks of samples, not shuffled (time "
                    "series)")
    add_option(g, "max-stat", action="store_true",
               help="also write max-statistic (FWER) p-values; n_sig then counts them")
    add_option(g, "p-thr", type=finite_float, default=0.05, metavar="P",
               help="p threshold of the summary's n_sig")
    g = p.add_argument_group("output")
    add_option(g, "out", type=output_path, required=True, metavar="DIR", help="output directory")
    add_option(g, "no-model", action="store_true",
               help="do not refit and save the models on all stimuli")
    add_option(g, "no-plot", action="store_true", help="write no figure")
    add_force_arg(p)
    add_linalg_device_args(p, what="the ridge / GLM solvers")
    g = add_scheduler_arg(p, what="layers x blocks x voxel batches")
    add_option(g, "voxel-batch", type=int, default=None, metavar="N",
               help="targets per task (default: all targets of a block in one task); "
                    "the tables do not depend on it")
    return p


def _model_settings(args):
    """(model, model_params, reduce) after checking the combination of options."""
    model = args.model or ("glm" if args.anal == "uv" else "ridge")
    if args.anal == "uv" and model != "glm":
        raise InputError(f"-anal uv fits each target's best unit by least squares; use "
                         f"-model glm (or -anal mv for -model {model}).")
    if args.anal == "uv" and args.reduce:
        raise InputError("-reduce replaces units by components; -anal uv picks single "
                         "units. Use one or the other.")
    params = None
    if args.n_components is not None:
        if model != "pls":
            raise InputError("-n-components applies to -model pls.")
        if args.n_components < 1:
            raise InputError(f"-n-components {args.n_components}: give at least 1 "
                             "component.")
        params = {"n_components": args.n_components}
    if args.alphas and model not in ("ridge", "lasso"):
        raise InputError(f"-alphas applies to -model ridge or lasso, not {model}.")
    if args.alphas and min(args.alphas) <= 0:
        raise InputError(f"-alphas {' '.join(f'{a:g}' for a in args.alphas)}: penalties "
                         "must be positive (e.g. -alphas 0.1 10 1000).")
    if args.batch is not None and args.batch < 1:
        raise InputError(f"-batch {args.batch}: give at least 1 target per batch (or leave "
                         "it out to bound memory automatically).")
    if model == "lasso" and args.alphas:
        if len(args.alphas) != 1:
            raise InputError("-model lasso takes one -alphas value (its penalty).")
        params = {"alpha": args.alphas[0]}
    reduce = args.reduce
    if reduce is not None:
        if reduce <= 0 or (reduce >= 1 and reduce != int(reduce)):
            raise InputError(f"-reduce {reduce:g}: give a number of components or a "
                             "variance fraction between 0 and 1.")
        reduce = int(reduce) if reduce >= 1 else reduce
    return model, params, reduce


def _groups(args, act):
    """The -groups column of -stim (checked against the features), or None."""
    from ..pipelines import stimulus_groups

    if not args.stim:
        if args.groups:
            raise InputError("-groups names a column of the stimulus table; give -stim.")
        return None
    return stimulus_groups(args.stim, args.groups, n_stim=act.n_stim, source=args.act)


def _feature_rois(args):
    """The ROISet of -act-roi / -act-bmask (brain -act), or None."""
    from types import SimpleNamespace

    if not (args.act_roi or args.act_bmask):
        return None
    ns = SimpleNamespace(roi=args.act_roi, bmask=args.act_bmask, lut=None, map=1,
                         merge=[], select=None, resample_atlas=args.resample_atlas)
    return rois_from_args(ns)


def _features(args):
    """-act as a feature source: DNN layers, ROI signals or brain ROIs."""
    from ..pipelines import feature_kind, load_feature_source

    kind = feature_kind(args.act)
    if kind != "dnn" and args.iteraxis:
        raise InputError(f"-iteraxis splits DNN layers; -act {args.act} is not an .act.h5 "
                         "file.")
    if kind != "brain" and (args.act_roi or args.act_bmask):
        raise InputError(f"-act-roi/-act-bmask define ROIs of brain -act; {args.act} is "
                         "not a brain image.")
    return load_feature_source(args.act, layers=args.layer, chn=args.chn, dmask=args.dmask,
                               rois=_feature_rois(args))


def _print_summary(summary, scoring):
    n_sig = summary.get("n_sig")
    for i, layer in enumerate(summary["layer"]):
        block = "".join(f" {k}{summary[k][i]}" for k in ("chn", "row", "col") if k in summary)
        roi = summary["roi"][i]
        line = (f"{layer}{block}{'' if roi == 'all' else ' ' + roi}: mean {scoring} "
                f"{summary['score'][i]:.4f}, max {summary['max'][i]:.4f} over "
                f"{summary['n_encoded'][i]} target(s)")
        if n_sig is not None:
            line += f"; {n_sig[i]} significant"
        print(line)


@cli_main(get_parser)
def main(args):
    from ..algo.model_selection import make_splits
    from ..pipelines import load_targets, run_encoding
    from ..io import atomic_output_dir, check_output_dir
    from ..io.table import write_table

    model, params, reduce = _model_settings(args)
    args.cv, args.inner_cv = parse_cv(args.cv), parse_cv(args.inner_cv, "-inner-cv")
    if args.n_perm < 0 or args.n_jobs == 0 or not 0 < args.p_thr < 1:
        raise InputError("-n-perm must be >= 0, -n-jobs non-zero and -p-thr in (0, 1).")
    if args.max_stat and not args.n_perm:
        raise InputError("-max-stat corrects permutation p-values; give -n-perm too.")
    if args.voxel_batch is not None and args.voxel_batch < 1:
        raise InputError(f"-voxel-batch {args.voxel_batch}: give 1 or more targets per task.")
    device = parse_linalg_device(args)
    out = check_output_dir(args.out, force=args.force)      # refuse before any work
    act = _features(args)
    groups = _groups(args, act)
    if args.contiguous and groups is not None:
        raise InputError("-contiguous and -groups both define the folds; use one.")
    # refuse bad folds before any work; -contiguous passes these folds on
    folds = make_splits(args.cv, n_samples=act.n_stim, groups=groups,
                        shuffle=not args.contiguous)
    responses = load_targets(args.resp, rois=rois_from_args(args, required=False),
                               columns=args.meas)
    if responses.n_samples != act.n_stim:
        raise InputError(f"{args.resp} has {responses.n_samples} samples but {args.act} has "
                         f"{act.n_stim} stimuli; they must match one to one (for a run's "
                         "time series, convolve the activation with db_hrf).")
    responses.report_skipped()

    # the folder as a whole: a run failing at any layer leaves nothing behind
    with open_scheduler(args, n_jobs=args.n_jobs) as engine, \
            atomic_output_dir(out, force=args.force) as tmp:
        run = run_encoding(act, None, responses, out=tmp, iter_axis=args.iteraxis,
                           groups=groups, save_models=not args.no_model,
                           max_stat=args.max_stat, p_threshold=args.p_thr,
                           scoring=args.scoring, progress=not args.quiet, model=model,
                           analysis=args.anal,
                           alphas=args.alphas if model == "ridge" else None,
                           cv=folds if args.contiguous else args.cv, inner_cv=args.inner_cv,
                           reduce=reduce, n_perm=args.n_perm, seed=args.seed,
                           model_params=params, n_targets_batch=args.batch,
                           engine=engine, voxel_batch=args.voxel_batch, device=device,
                           dtype=args.dtype)
        act.close()
        write_table(tmp / "scores.tsv", run.scores, force=True)
        write_table(tmp / "summary.csv", run.summary, force=True)
        write_table(tmp / "folds.csv", run.folds, force=True)
        if not args.no_plot:
            from ..viz import plot_encoding_summary
            plot_encoding_summary(tmp / "encoding.png", run.summary, scoring=args.scoring,
                                  force=True)
    _print_summary(run.summary, args.scoring)
    print(f"wrote {out}: scores.tsv, summary.csv, folds.csv"
          f"{', encoding.png' if not args.no_plot else ''}"
          f"{f', {len(run.maps)} map(s)' if run.maps else ''}"
          f"{'' if args.no_model else ', models'}")
