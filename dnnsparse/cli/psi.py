"""Population sparseness (PSI) of every category in every layer (Liu, Zhen & Liu, 2020).

Stimuli are grouped by the stimulus table's label column (any order, any category
sizes); every unit's mean response to each category is taken (a unit is a channel
averaged over its map, or every element with -unit position), and each category's
sparseness is measured across the units of a layer. A per-category activation file
(db_act -aggregate label) is used as it is (-stim then only names the categories).
Brain data work the same way: -roi-file treats the ROIs of a .roi.h5 file as one
population ("rois"); -nif with -roi/-bmask treats each ROI's voxels (vertices) as a
population. An audio activation file (one row per 0.96 s example, ID#k) is matched
example by example: every example takes its row's label, so the category means and
counts are over examples.

Outputs in -out DIR (written as a whole: nothing appears there unless the run
completes; -force replaces an earlier db_psi folder entirely):
  psi.csv (or <measure>.csv)  layer, layer_index, category, label, psi
                              (lifetime: layer, layer_index, unit, lifetime -- it
                              is per unit; unit = 1-based channel or element)
  summary.csv                 layer, layer_index, median, q25, q75, iqr, n_units,
                              dead_units, n_categories (also printed)
  trend.csv                   tests of a trend along the layers (test, tau, p, n,
                              n_of, description): psi_categories = the authors'
                              test (Kendall tau of all layer x category values
                              pooled as if independent: its p is far too small);
                              psi_category_taus_wilcoxon / _signflip = each
                              category's tau along the layers, tested across the
                              categories (n = categories); psi_medians = tau of
                              the layer medians (n = layers)
  distributions.png, medians.png   the paper's Fig. 1A (one row per layer) and 1B
With -accuracy (label, accuracy; e.g. from db_probe):
  correlation.csv             per layer Pearson/Spearman r, p, Bonferroni p
  stepwise.csv                stepwise regression of accuracy on PSI, conv and fc
                              layers separately (layers named fc* are fc)
  trend.csv                   + rows pearson_r, spearman_r (tau of r along layers)
  correlation.png             the paper's Fig. 2
An accuracy that is the same for every category has no correlation: the other
outputs are written and a warning says so.

Several activation files (-act A.act.h5 B.act.h5 ...: e.g. the intact and the
weight-permuted network, or several networks; one -stim for all, -layer applies
to every file, each file's name without .act.h5 must differ). With -scheduler
every (file, layer) is one task, all submitted at once. Outputs in -out DIR:
  <name>/                     per file: what db_psi writes for that file alone
  psi.csv (or <measure>.csv), summary.csv, trend.csv
                              the per-file tables stacked, a leading column file
  correlation.csv             with -accuracy: the same, files with a correlation
  medians.png                 every file's layer medians and IQR on one axes
                              (the paper's Fig. 3: intact vs permuted)

example: db_psi -act alexnet.act.h5 -stim imgs.stim.csv -out psi/ -accuracy acc.csv
         db_psi -act norelu.act.h5 -stim imgs.stim.csv -abs -out psi_abs/
         db_psi -act big.act.h5 -stim imgs.stim.csv -out psi/ -scheduler local:2
         db_psi -act intact.act.h5 permuted.act.h5 -stim imgs.stim.csv -out psi/ -scheduler local:2
"""
from ..errors import InputError
from ..utils.validation import finite_float
from ._common import (add_force_arg, add_label_col_arg, add_option, add_scheduler_arg,
                      cli_main, make_parser, open_scheduler, output_path)


def get_parser():
    from ..algo.sparseness import UNIT_MODES
    from ..algo.sparseness import MEASURES
    from ..algo.stats import STEPWISE_CRITERIA
    from ._args import add_roi_args

    p = make_parser("db_psi", __doc__)
    g = p.add_argument_group("inputs (one of -act, -roi-file, -nif)")
    add_option(g, "act", metavar="FILE", nargs="+",
               help="activation file(s) (.act.h5); several: a folder per file and the "
                    "tables of all of them")
    add_option(g, "roi-file", metavar="FILE",
               help=".roi.h5 signals: its ROIs are the units of one population 'rois'")
    add_option(g, "nif", metavar="FILE",
               help="brain data (.nii/.nii.gz/.mgz, .dscalar.nii, .func.gii); each ROI "
                    "of -roi/-bmask is a population of voxels/vertices")
    add_option(g, "stim", metavar="FILE",
               help="stimulus table whose 'label' column (or -label-col) groups the rows; "
                    "optional for a per-category file (rows are then the categories)")
    add_label_col_arg(g)
    add_option(g, "layer", nargs="+", metavar="L", help="layers; default: all in the file")
    add_roi_args(p)
    g = p.add_argument_group("sparseness")
    add_option(g, "measure", default="psi", choices=sorted(MEASURES),
               help=MEASURES.describe())
    add_option(g, "unit", default="channel", choices=sorted(UNIT_MODES),
               help=UNIT_MODES.describe())
    add_option(g, "abs", action="store_true",
               help="absolute value of every activation (voxel signal) before the category "
                    "means: the paper's control analysis, for layers with negative values; "
                    "needs per-image values (for -aggregate label files extract with -pool "
                    "l1: the same PSI)")
    g = p.add_argument_group("accuracy")
    add_option(g, "accuracy", metavar="TABLE",
               help="per-category accuracy (columns label, accuracy), e.g. from db_probe")
    add_option(g, "stepwise", default="p", choices=sorted(STEPWISE_CRITERIA),
               help="stepwise rule: p-to-enter 0.05 (the paper's text) or adjusted R^2 "
                    "(the authors' code)")
    add_option(g, "alpha", type=finite_float, default=0.05, metavar="A",
               help="significance level of the Bonferroni-corrected correlations "
                    "(default 0.05)")
    g = p.add_argument_group("trend test across categories")
    add_option(g, "permutations", type=int, default=10000, metavar="N",
               help="random sign flips when there are more than 20 categories (up to 20 "
                    "every sign pattern is tried; default 10000)")
    add_option(g, "seed", type=int, default=0, metavar="N",
               help="seed of the random sign flips (default 0)")
    add_option(p, "out", required=True, metavar="DIR", type=output_path,
               help="output directory")
    add_option(p, "no-figures", action="store_true", help="write the tables only")
    add_scheduler_arg(p, what="layers of -act (one task per file and layer, read by the "
                              "worker)")
    add_force_arg(p)
    return p


@cli_main(get_parser)
def main(args):
    from ..pipelines import (accuracy_analysis, activation_file_names,
                             activation_file_sparseness, brain_file_sparseness,
                             files_sparseness, format_accuracy, format_summary,
                             load_grouping_stimuli, write_files_outputs, write_psi_outputs)
    from ._args import build_rois
    from ..io import check_input_file, check_output_dir
    from ..io.table import read_table
    from ..utils.engine import check_scheduler
    from ..utils.validation import check_scalar

    given = [o for o in ("act", "roi_file", "nif") if getattr(args, o)]
    if len(given) != 1:
        raise InputError("give exactly one input: -act FILE, -roi-file FILE or -nif FILE.")
    if (args.roi or args.bmask) and not args.nif:
        raise InputError("-roi/-bmask select populations of -nif brain data; give -nif.")
    check_scalar(args.alpha, name="-alpha", min_val=0, max_val=1, include_min=False,
                 include_max=False)
    check_scalar(args.permutations, name="-permutations", min_val=1)
    several = bool(args.act) and len(args.act) > 1
    if several:
        activation_file_names(args.act)                   # distinct output folders
        for path in args.act:
            check_input_file(path, what="activation file")
    if args.accuracy:
        check_input_file(args.accuracy, what="accuracy table")
    check_scheduler(args.scheduler)                        # a bad spec: before any work
    check_output_dir(args.out, force=args.force)          # refuse early, before computing
    if args.layer and not args.act:
        raise InputError("-layer applies to -act; select ROIs with -select.")
    if args.label_col != "label" and not args.stim:
        raise InputError("-label-col names a column of -stim; give -stim too.")
    stim, names = load_grouping_stimuli(args.stim, label_col=args.label_col)
    options = dict(stim_path=args.stim, names=names, layers=args.layer,
                   measure=args.measure, unit=args.unit, absolute=args.abs,
                   show_progress=not args.quiet)
    if several:
        results = files_sparseness(args.act, stim, engine=lambda: open_scheduler(args),
                                   **options)             # started once the files are checked
    elif args.act:
        with open_scheduler(args) as engine:
            results = {"": activation_file_sparseness(args.act[0], stim, engine=engine,
                                                      **options)}
    else:
        results = {"": brain_file_sparseness(
            args.roi_file or args.nif, lambda space: build_rois(args, space), stim,
            stim_path=args.stim, names=names, roi_file=bool(args.roi_file),
            measure=args.measure, absolute=args.abs)}
    accuracy = {name: None for name in results}
    if args.accuracy:
        table = read_table(args.accuracy)
        if "label" not in table or "accuracy" not in table:
            raise InputError(f"{args.accuracy} needs columns 'label' and 'accuracy' (as "
                             f"db_probe writes); it has {', '.join(table)}.")
        for name, result in results.items():
            try:
                accuracy[name] = accuracy_analysis(result, table["label"], table["accuracy"],
                                                   criterion=args.stepwise)
            except InputError as exc:
                if not several:
                    raise
                raise InputError(f"{name}: {exc}") from None
    trend = dict(seed=args.seed, n_permutations=args.permutations)
    outputs = dict(figures=not args.no_figures, force=args.force, alpha=args.alpha, **trend)
    if several:
        written = write_files_outputs(results, args.out, accuracy=accuracy, **outputs)
    else:
        written = write_psi_outputs(results[""], args.out, accuracy=accuracy[""], **outputs)
    for name, result in results.items():
        title = f"{name}: {result.source}" if several else result.source or None
        print(format_summary(result, title=title, **trend))
        if accuracy[name] is not None:
            print(format_accuracy(accuracy[name], alpha=args.alpha))
    shown = [p.name + ("/" if p.is_dir() else "") for p in written]
    print(f"wrote {written[0].parent}: {', '.join(shown)}")
