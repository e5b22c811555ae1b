"""Population sparseness (PSI) of every category in every layer (Liu, Zhen & Liu, 2020).

Stimuli are grouped by the stimulus table's label column (any order, any category
sizes); every unit's mean response to each category is taken (a unit is a channel
averaged over its map, or every element with -unit position), and each category's
sparseness is measured across the units of a layer. A per-category activation file
(db_act -aggregate label) is used as it is (-stim then only names the categories).
Brain data work the same way: -roi-file treats the ROIs of a .roi.h5 file as one
population ("rois"); -nif with -roi/-bmask treats each ROI's voxels (vertices) as a
population.

Outputs in -out DIR:
  psi.csv (or <measure>.csv)  layer, layer_index, category, label, psi
                              (lifetime: layer, layer_index, unit, lifetime -- it
                              is per unit; unit = 1-based channel or element)
  summary.csv                 layer, layer_index, median, q25, q75, iqr, n_units,
                              dead_units, n_categories (also printed)
  trend.csv                   Kendall's tau along the layers: psi_categories (all
                              values pooled, the authors' test), psi_medians
  distributions.png, medians.png   the paper's Fig. 1A and 1B
With -accuracy (label, accuracy; e.g. from db_probe):
  correlation.csv             per layer Pearson/Spearman r, p, Bonferroni p
  stepwise.csv                stepwise regression of accuracy on PSI, conv and fc
                              layers separately (layers named fc* are fc)
  trend.csv                   + rows pearson_r, spearman_r (tau of r along layers)
  correlation.png             the paper's Fig. 2

example: db_psi -act alexnet.act.h5 -stim imgs.stim.csv -out psi/ -accuracy acc.csv
         db_psi -act norelu.act.h5 -stim imgs.stim.csv -abs -out psi_abs/
"""
import logging

import numpy as np

from ..errors import InputError
from ._common import add_force_arg, add_option, cli_main, make_parser

log = logging.getLogger(__name__)


def get_parser():
    from ..algo.sparseness import UNIT_MODES
    from ..algo.sparseness import MEASURES
    from ..algo.stats import STEPWISE_CRITERIA
    from ._args import add_roi_args

    p = make_parser("db_psi", __doc__)
    g = p.add_argument_group("inputs (one of -act, -roi-file, -nif)")
    add_option(g, "act", metavar="FILE", help="activation file (.act.h5)")
    add_option(g, "roi-file", metavar="FILE",
               help=".roi.h5 signals: its ROIs are the units of one population 'rois'")
    add_option(g, "nif", metavar="FILE",
               help="brain data (.nii/.nii.gz/.mgz, .dscalar.nii, .func.gii); each ROI "
                    "of -roi/-bmask is a population of voxels/vertices")
    add_option(g, "stim", metavar="FILE",
               help="stimulus table whose 'label' column groups the rows; optional for a "
                    "per-category file (rows are then the categories)")
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
    add_option(p, "out", required=True, metavar="DIR", help="output directory")
    add_option(p, "no-figures", action="store_true", help="write the tables only")
    add_force_arg(p)
    return p


def _stimulus(args):
    """The stimulus table (or None) and its category names."""
    from ..pipelines import category_names
    from ..base.stimulus import Stimulus

    if not args.stim:
        return None, None
    stim = Stimulus.load(args.stim)
    if stim.labels is None:
        raise InputError(f"{args.stim} has no 'label' column to group stimuli by; add one "
                         "(db_stim makes tables with labels from category folders).")
    return stim, category_names(stim.labels, stim.columns.get("condition"))


def _activation_result(args, stim, names):
    from ..pipelines import activation_sparseness
    from ..base.activation import Activation

    act = Activation.load(args.act)
    with act:
        if act.category_labels is not None:              # db_act -aggregate label
            if stim is not None:
                unknown = np.setdiff1d(act.category_labels, stim.labels)
                if unknown.size:
                    raise InputError(f"{args.act} has categories {unknown[:5].tolist()} that "
                                     f"{args.stim} does not label; give the table it was "
                                     "made from, or leave -stim out.")
            labels = None
        else:
            if stim is None:
                raise InputError(f"{args.act} has one row per stimulus; give -stim TABLE "
                                 "with their labels (or extract with -aggregate label).")
            if act.n_stim != len(stim):
                raise InputError(f"{args.act} has {act.n_stim} stimuli but {args.stim} has "
                                 f"{len(stim)}; give the table the activations were made "
                                 "from.")
            if not np.array_equal(act.stim_ids, stim.ids):
                log.warning("stimulus IDs of %s differ from those of %s; rows are matched "
                            "by position.", args.act, args.stim)
            labels = stim.labels
        return activation_sparseness(act, labels, names=names, layers=args.layer,
                                     measure=args.measure, unit=args.unit, absolute=args.abs,
                                     show_progress=not args.quiet)


def _brain_result(args, stim, names):
    from ..pipelines import brain_sparseness
    from ..base.brain import BrainData
    from ..io.roi import read_roi_file
    from ._args import build_rois

    if args.layer:
        raise InputError("-layer applies to -act; select ROIs with -select.")
    if args.roi_file:
        rois, data = read_roi_file(args.roi_file)
        source, populations, unit = args.roi_file, {"rois": slice(None)}, "roi"
        feature_names = rois
    else:
        brain = BrainData.load(args.nif)
        data, source = brain.data, args.nif
        roiset = build_rois(args, brain.space).to_space(brain.space)
        populations = dict(zip(roiset.names, roiset.members))
        unit = "vertex" if brain.kind == "gifti" else "voxel"
        feature_names = None
    if stim is not None and len(data) != len(stim):
        raise InputError(f"{source} has {len(data)} samples but {args.stim} has {len(stim)} "
                         "stimuli; they must match one to one (leave -stim out when the "
                         "samples already are categories).")
    return brain_sparseness(data, populations, None if stim is None else stim.labels,
                            names=names, measure=args.measure, unit=unit,
                            feature_names=feature_names, absolute=args.abs)


@cli_main(get_parser)
def main(args):
    from ..pipelines import accuracy_analysis, format_summary, write_psi_outputs
    from ..io import check_input_file, prepare_output_dir
    from ..io.table import read_table

    given = [o for o in ("act", "roi_file", "nif") if getattr(args, o)]
    if len(given) != 1:
        raise InputError("give exactly one input: -act FILE, -roi-file FILE or -nif FILE.")
    if (args.roi or args.bmask) and not args.nif:
        raise InputError("-roi/-bmask select populations of -nif brain data; give -nif.")
    if args.accuracy:
        check_input_file(args.accuracy, what="accuracy table")
    prepare_output_dir(args.out, force=args.force)        # refuse early, before computing
    stim, names = _stimulus(args)
    result = (_activation_result(args, stim, names) if args.act
              else _brain_result(args, stim, names))
    accuracy = None
    if args.accuracy:
        table = read_table(args.accuracy)
        if "label" not in table or "accuracy" not in table:
            raise InputError(f"{args.accuracy} needs columns 'label' and 'accuracy' (as "
                             f"db_probe writes); it has {', '.join(table)}.")
        accuracy = accuracy_analysis(result, table["label"], table["accuracy"],
                                     criterion=args.stepwise)
    written = write_psi_outputs(result, args.out, accuracy=accuracy,
                                figures=not args.no_figures, force=True)
    print(format_summary(result))
    if accuracy is not None:
        c = accuracy.correlation
        best = int(np.nanargmax(c.pearson_r)) if np.isfinite(c.pearson_r).any() else 0
        print(f"PSI-accuracy Pearson r: highest {c.pearson_r[best]:.3f} in {result.layers[best]} "
              f"(Bonferroni p={c.pearson_p_bonferroni[best]:.3g}); tau along layers "
              f"{c.tau:.3f} (p={c.tau_pvalue:.3g})")
        for stage, r in accuracy.stepwise.items():
            sel = ", ".join(r.selected) or "none"
            print(f"stepwise ({stage}): {sel}; F({r.df1}, {r.df2}) = {r.F:.2f}, p={r.pvalue:.3g}, "
                  f"adjusted R^2 = {r.adj_r2:.3f}")
    print(f"wrote {args.out}: {', '.join(p.name for p in written)}")
