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
"""
import logging

import numpy as np

from ..errors import InputError
from ._common import add_force_arg, add_option, cli_main, make_parser
from .roi import add_roi_args
from .rsa import Items, add_plot_arg, add_rsa_args, build_rois, load_inputs

log = logging.getLogger(__name__)

#: kind of brain space -> (label map suffix, value map suffix); None: the input's own.
MAP_SUFFIXES = {"volume": (None, None),
                "cifti": (".dlabel.nii", ".dscalar.nii"),
                "gifti": (".label.gii", ".func.gii")}


def get_parser():
    from ..algo.sparseness import UNIT_MODES

    p = make_parser("db_map", __doc__)
    g = p.add_argument_group("inputs")
    add_option(g, "act", required=True, metavar="FILE",
               help=".act.h5 activation file, per stimulus or per category (db_act)")
    add_option(g, "layer", nargs="+", metavar="L", help="layers; default: all in the file")
    add_option(g, "stim", required=True, metavar="FILE",
               help="stimulus table; its 'label' column gives the categories")
    add_option(g, "nif", required=True, metavar="FILE",
               help="brain data (NIfTI/MGH, CIFTI dscalar/dtseries, GIFTI), one sample "
                    "per stimulus or per category (sorted labels)")
    add_roi_args(p)
    g = add_rsa_args(p)
    p.set_defaults(n_perm=1000)
    add_option(g, "alpha", type=float, default=0.05, metavar="A",
               help="FDR level marked in the heatmap")
    g = p.add_argument_group("sparseness")
    add_option(g, "psi", metavar="TABLE",
               help="db_psi summary table (columns layer, median) instead of computing "
                    "layer PSI here")
    add_option(g, "unit", default="channel", choices=sorted(UNIT_MODES),
               help="a layer's units for PSI: channels averaged over space (the paper), "
                    "or every position")
    add_option(p, "out", required=True, metavar="DIR", help="output directory")
    add_plot_arg(p)
    add_force_arg(p)
    return p


def _read_psi_summary(path, layers):
    from ..io.table import read_table

    table = read_table(path)
    if "layer" not in table or "median" not in table:
        raise InputError(f"{path}: a PSI summary needs columns 'layer' and 'median' "
                         f"(db_psi's summary table); it has {sorted(table)}.")
    values = dict(zip((str(l) for l in table["layer"]), table["median"]))
    missing = [l for l in layers if l not in values]
    if missing:
        raise InputError(f"{path} has no PSI for layer(s) {missing}; give the summary "
                         "made from the same activation file, or leave -psi out.")
    try:
        return np.array([float(values[l]) for l in layers])
    except ValueError:
        raise InputError(f"{path}: column 'median' must hold numbers.") from None


def _sparseness(args, items, act, layers, brain, rois, brain_group, psi_layer):
    """(psi_layer, psi_roi); None (NaN) where categories are unknown."""
    from ..pipelines import layer_psi, roi_psi

    labels = items.labels
    # Rows are categories when the file is per category or was matched as such.
    act_rows_are_categories = act.category_labels is not None or (
        items.by_category and items.act_group is None)
    brain_rows_are_categories = items.by_category and brain_group is None
    if labels is None and not (act_rows_are_categories and brain_rows_are_categories):
        log.warning("%s has no 'label' column: the PSI columns are NaN.", args.stim)
    psi_roi = None
    if psi_layer is None and (act_rows_are_categories or labels is not None):
        psi_layer = layer_psi(act, layers, unit=args.unit,
                              labels=None if act_rows_are_categories else labels,
                              show_progress=not args.quiet)
    if brain_rows_are_categories or labels is not None:
        psi_roi = roi_psi(brain, rois, labels=None if brain_rows_are_categories else labels)
    return psi_layer, psi_roi


@cli_main(get_parser)
def main(args):
    from ..pipelines import brain_rdms, dnn_rdms, map_layers
    from ..base.brain import BrainData
    from ..io import prepare_output_dir
    from ..io.table import write_table

    if not 0 < args.alpha < 1:
        raise InputError(f"-alpha {args.alpha}: give a level between 0 and 1.")
    if not args.roi and not args.bmask:
        raise InputError("give the ROIs: -roi ATLAS or -bmask MASK [MASK ...].")
    stim, act = load_inputs(args, need_stim=True)
    items = Items(stim, args.stim, act, args.act, cate=args.cate)
    brain = BrainData.load(args.nif)
    brain_group = items.group(brain.n_samples, args.nif)
    rois = build_rois(args).to_space(brain.space)
    layers = args.layer or act.layers
    psi_layer = _read_psi_summary(args.psi, layers) if args.psi else None
    out = prepare_output_dir(args.out, force=args.force)

    dnn = dnn_rdms(act, layers, metric=args.metric, labels=items.act_group,
                   show_progress=not args.quiet)
    bdm = brain_rdms(brain, rois, metric=args.metric, labels=brain_group,
                     show_progress=not args.quiet)
    psi_layer, psi_roi = _sparseness(args, items, act, layers, brain, rois, brain_group,
                                     psi_layer)
    result = map_layers(dnn, bdm, method=args.method, n_perm=args.n_perm, seed=args.seed,
                        psi_layer=psi_layer, psi_roi=psi_roi, show_progress=not args.quiet)

    write_table(out / "mapping.csv", result.table(), force=True)
    write_table(out / "best_layer.csv", result.best_table(), force=True)
    written = ["mapping.csv", "best_layer.csv"]
    written += _brain_maps(args, out, brain, rois, result)
    if not args.no_plot:
        from ..viz import plot_similarity_heatmap

        with np.errstate(invalid="ignore"):
            marks = result.p_fdr < args.alpha
        plot_similarity_heatmap(out / "mapping.png", result.score, result.layers,
                                result.rois, best=result.best, marks=marks,
                                cbar_label=f"{result.method} of RDMs ({args.metric}); "
                                           f"* p_fdr < {args.alpha:g}", force=True)
        written.append("mapping.png")
        written += _render(args, out, brain, rois, result)
    for roi, layer, q in zip(result.rois, result.best_layers(), result.best_table()["p_fdr"]):
        print(f"{roi}: best layer {layer} (p_fdr {q:.3g})")
    print(f"wrote {', '.join(written)} to {out}")
    return 0


def _map_names(brain, args):
    from ..io.brain import brain_format

    label_sfx, value_sfx = MAP_SUFFIXES[brain.kind]
    if brain.kind == "volume":
        label_sfx = value_sfx = brain_format(args.nif)
    return f"best_layer{label_sfx}", f"best_layer_psi{value_sfx}"


def _layer_table(result):
    return {i + 1: layer for i, layer in enumerate(result.layers)}


def _brain_maps(args, out, brain, rois, result):
    """Best-layer index and its PSI on every ROI's features, in the input's format."""
    label_name, value_name = _map_names(brain, args)
    brain.save_like(out / label_name, rois.paint((result.best + 1).astype(np.int32)),
                    names=["best_layer"], label_table=_layer_table(result), force=True)
    brain.save_like(out / value_name, rois.paint(result.best_psi, fill=np.nan),
                    names=["best_layer_psi"], fill=np.nan, force=True)
    return [label_name, value_name]


def _render(args, out, brain, rois, result):
    from ..viz import nilearn_available, render_volume_maps

    if brain.kind != "volume":
        log.info("no brain rendering for %s data without a surface mesh; open %s in "
                 "Connectome Workbench or plot it on your surfaces.", brain.kind,
                 _map_names(brain, args)[0])
        return []
    if not nilearn_available():
        log.info("nilearn is not installed: no brain rendering (pip install nilearn).")
        return []
    label_img = brain.to_image(rois.paint((result.best + 1).astype(np.int32)),
                               label_table=_layer_table(result), suffix=".nii.gz")
    value_img = brain.to_image(rois.paint(result.best_psi, fill=np.nan), fill=np.nan,
                               suffix=".nii.gz")
    background = brain.to_image(brain.data.mean(axis=0, dtype=np.float64),
                                suffix=".nii.gz")
    render_volume_maps(out / "best_layer_render.png", label_img, value_img,
                       names=result.layers, bg_img=background, force=True)
    return ["best_layer_render.png"]
