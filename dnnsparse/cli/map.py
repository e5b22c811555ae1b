"""Map DNN layers onto brain ROIs: which layer each ROI resembles, and how sparse it is.

For every ROI (-roi ATLAS or -bmask MASK ..., with -merge/-select as in db_roi)
of the brain data (-nif: NIfTI/MGH, CIFTI or GIFTI), the RSA similarity of its
RDM with each layer's RDM (-act, per stimulus or per category), a permutation
p (-n-perm, -seed; rows and columns permuted together), Benjamini-Hochberg FDR
across the whole layer x ROI table, the best-matching layer, that layer's
median population sparseness (PSI over the categories of -stim's label column,
a unit being a channel averaged over space; or the 'median' column of a db_psi
summary, -psi), and the ROI's own median PSI (its voxels/vertices as units).
Without a label column the PSI columns are NaN.

Outputs in -out DIR:
  mapping.csv      layer, roi, score, p, p_fdr, psi_layer, psi_roi, best
  best_layer.csv   roi, best_layer, layer_index, score, p_fdr, psi_layer, psi_roi
  mapping.png      layers x ROIs heatmap; best layer framed, * where p_fdr < -alpha
  best_layer.*     1-based index of each ROI's best layer on its voxels/vertices, in
                   the input's format (.dlabel.nii / .label.gii with the layer names
                   as labels; an integer label volume for NIfTI/MGH)
  best_layer_psi.* median PSI of that layer (.dscalar.nii / .func.gii / volume)
  best_layer_render.png  nilearn rendering of both maps (volumes only)
Where ROIs overlap, the later ROI's value is shown on the shared voxels.

example: db_map -act alexnet.act.h5 -stim imgs.stim.csv -nif beta.nii.gz -roi atlas.nii.gz -lut atlas.tsv -merge VTC=V8+FFC -n-perm 1000 -out map/
         db_map ... -n-perm 10000 -scheduler slurm:cluster.yaml -out map/
"""
import numpy as np

from ..errors import InputError
from ..utils.validation import finite_float
from ._args import add_plot_arg, add_roi_args, add_rsa_args, build_rois
from ._common import (add_force_arg, add_label_col_arg, add_option, add_scheduler_arg,
                      cli_main, make_parser, open_scheduler, output_path)


def get_parser():
    from ..algo.sparseness import UNIT_MODES

    p = make_parser("db_map", __doc__)
    g = p.add_argument_group("inputs")
    add_option(g, "act", required=True, metavar="FILE",
               help=".act.h5 activation file, per stimulus or per category (db_act)")
    add_option(g, "layer", nargs="+", metavar="L", help="layers; default: all in the file")
    add_option(g, "stim", required=True, metavar="FILE",
               help="stimulus table; its 'label' column (or -label-col) gives the "
                    "categories")
    add_label_col_arg(g)
    add_option(g, "nif", required=True, metavar="FILE",
               help="brain data (NIfTI/MGH, CIFTI dscalar/dtseries, GIFTI), one sample "
                    "per stimulus or per category (sorted labels)")
    add_roi_args(p)
    g = add_rsa_args(p)
    p.set_defaults(n_perm=1000)
    add_option(g, "alpha", type=finite_float, default=0.05, metavar="A",
               help="FDR level marked in the heatmap")
    g = p.add_argument_group("sparseness")
    add_option(g, "psi", metavar="TABLE",
               help="db_psi summary table (columns layer, median) instead of computing "
                    "layer PSI here")
    add_option(g, "unit", default="channel", choices=sorted(UNIT_MODES),
               help="a layer's units for PSI -- " + UNIT_MODES.describe())
    add_option(p, "out", type=output_path, required=True, metavar="DIR", help="output directory")
    add_plot_arg(p)
    add_scheduler_arg(p, what="ROIs' permutation tests (one task per ROI, all layers)")
    add_force_arg(p)
    return p


@cli_main(get_parser)
def main(args):
    from ..pipelines import (Items, brain_rdms, dnn_rdms, load_rsa_inputs, map_layers,
                             mapping_sparseness, read_psi_summary, render_best_layer,
                             write_best_layer_maps)
    from ..base.brain import BrainData
    from ..io import atomic_output_dir, check_output_dir
    from ..io.table import write_table
    from ..utils.engine import check_scheduler

    if not 0 < args.alpha < 1:
        raise InputError(f"-alpha {args.alpha}: give a level between 0 and 1.")
    if args.n_perm < 0:
        raise InputError(f"-n-perm {args.n_perm}: give 0 (no test) or more permutations.")
    if not args.roi and not args.bmask:
        raise InputError("give the ROIs: -roi ATLAS or -bmask MASK [MASK ...].")
    check_scheduler(args.scheduler)                        # a bad spec: before any work
    out = check_output_dir(args.out, force=args.force)      # refuse before any work
    stim, act = load_rsa_inputs(args.stim, args.act, layers=args.layer,
                                label_col=args.label_col)
    items = Items(stim, args.stim, act, args.act, cate=args.cate)
    brain = BrainData.load(args.nif)
    brain_group = items.group(brain.n_samples, args.nif)
    rois = build_rois(args).to_space(brain.space)
    layers = args.layer or act.layers
    psi_layer = read_psi_summary(args.psi, layers) if args.psi else None

    dnn = dnn_rdms(act, layers, metric=args.metric, labels=items.act_group,
                   show_progress=not args.quiet)
    bdm = brain_rdms(brain, rois, metric=args.metric, labels=brain_group,
                     show_progress=not args.quiet)
    psi_layer, psi_roi = mapping_sparseness(items, act, layers, brain, rois,
                                            brain_group=brain_group, psi_layer=psi_layer,
                                            unit=args.unit, stim_path=args.stim,
                                            show_progress=not args.quiet)
    with open_scheduler(args) as engine:
        result = map_layers(dnn, bdm, method=args.method, n_perm=args.n_perm,
                            seed=args.seed, psi_layer=psi_layer, psi_roi=psi_roi,
                            show_progress=not args.quiet, engine=engine)

    with atomic_output_dir(out, force=args.force) as tmp:     # the folder as a whole
        write_table(tmp / "mapping.csv", result.table(), force=True)
        write_table(tmp / "best_layer.csv", result.best_table(), force=True)
        written = ["mapping.csv", "best_layer.csv"]
        written += write_best_layer_maps(tmp, brain, rois, result)
        if not args.no_plot:
            from ..viz import plot_similarity_heatmap

            with np.errstate(invalid="ignore"):
                marks = result.p_fdr < args.alpha
            plot_similarity_heatmap(tmp / "mapping.png", result.score, result.layers,
                                    result.rois, best=result.best, marks=marks,
                                    cbar_label=f"{result.method} of RDMs ({args.metric}); "
                                               f"* p_fdr < {args.alpha:g}", force=True)
            written.append("mapping.png")
            written += render_best_layer(tmp, brain, rois, result)
    for roi, layer, q in zip(result.rois, result.best_layers(), result.best_table()["p_fdr"]):
        print(f"{roi}: best layer {layer} (p_fdr {q:.3g})")
    print(f"wrote {', '.join(written)} to {out}")
    return 0
