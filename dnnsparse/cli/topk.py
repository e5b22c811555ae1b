"""Sweep Top-K sparsification over layers and fractions; measure shape bias and accuracy.

For the intact network and for every layer set x fraction, Top-K keeps that fraction
of each channel's positions (largest |activation|) at all layers of the set, the
network's class scores are computed once for the stimuli, and the cue-conflict shape
bias (with a bootstrap CI) and the accuracy are written to DIR/topk.csv, the
per-category values to DIR/per_category.csv, and two figures: DIR/topk.png (shape bias
and accuracy against the fraction, one line per layer set) and DIR/per_category.png
(shape bias of each of the 16 categories for every setting, categories down the y
axis, each setting's overall shape bias as a vertical line: the paper's Fig. 5).

-reference FILE.csv draws published values beside the sweep: a CSV with the columns
name,shape_bias and optionally category (one of the 16; empty for an overall value),
e.g. the lines "name,shape_bias,category", "humans,0.96,", "humans,0.98,bottle".
Overall values become labelled lines in both figures, per-category values markers in
per_category.png.

The stimulus table needs 'shape' and 'texture' columns, or image names
'<shape><n>-<texture><m>.png' (the cue-conflict benchmark's). Accuracy is top-1
ImageNet accuracy when the table has a 'label' column of ImageNet indices (0-999),
otherwise the 16-category decision accuracy against the shape category (column
accuracy_kind says which; -accuracy overrides).

-layer L1 L2 gives one layer set (Top-K at all of them together); each -layer-set A,B
adds another.

example: db_topk -net alexnet -stim cue-conflict.stim.csv -layer-set conv5_relu -layer-set conv4_relu,conv5_relu -fraction 0.05 0.1 0.2 -out alexnet_topk
example: db_topk -net vgg16 -stim cue-conflict.stim.csv -layer conv5_3_relu -fraction 0.05 0.1 0.2 -reference published.csv -out vgg16_topk
"""
from ..utils.validation import finite_float
from ._common import (add_device_args, add_force_arg, add_model_args, add_option, add_out_arg,
                      add_scheduler_arg, add_stim_arg, cli_main, dnn_from_args, make_parser,
                      open_scheduler, parse_device)


def get_parser():
    p = make_parser("db_topk", __doc__)
    add_model_args(p)
    g = p.add_argument_group("Top-K sweep")
    add_option(g, "layer", nargs="+", metavar="L",
               help="one layer set: Top-K at all these layers together")
    add_option(g, "layer-set", action="append", metavar="A,B", dest="layer_sets",
               help="a further layer set, comma-separated (repeat for several)")
    add_option(g, "fraction", nargs="+", type=finite_float, required=True, metavar="F",
               help="fractions of positions kept per channel, in (0, 1]")
    add_option(g, "mode", default="keep", choices=["keep", "mean", "inverse"],
               help="keep the Top-K values, replace them by their channel mean, or keep "
                    "only the other values")
    add_option(g, "output-layer", metavar="L",
               help="layer giving the class scores (default: the one returning the "
                    "network's output)")
    g = p.add_argument_group("evaluation")
    add_option(g, "accuracy", default="auto", choices=["auto", "imagenet", "shape"],
               help="'imagenet': top-1 against the label column; 'shape': 16-category "
                    "decision against the shape category; auto: imagenet when the table "
                    "has a label column within 0-999")
    add_option(g, "n-boot", type=int, default=1000, metavar="N",
               help="bootstrap replicates of the shape-bias CI (0: none)")
    add_option(g, "seed", type=int, default=0, metavar="N", help="seed of the bootstrap")
    add_option(g, "reference", metavar="FILE",
               help="CSV of published shape-bias values (name,shape_bias[,category]) "
                    "drawn beside the sweep in both figures")
    add_stim_arg(p)
    add_out_arg(p, help="output directory (topk.csv, per_category.csv, topk.png, "
                        "per_category.png)")
    add_device_args(p)
    add_force_arg(p)
    add_scheduler_arg(p, what="Top-K settings (layer sets x fractions)")
    return p


def _layer_sets(args):
    from ..errors import InputError
    sets = [list(args.layer)] if args.layer else []
    for text in args.layer_sets or []:
        layers = [l.strip() for l in text.split(",")]
        if not all(layers):
            raise InputError(f"cannot read -layer-set {text!r}; write layer names separated "
                             f"by commas, e.g. conv4_relu,conv5_relu.")
        sets.append(layers)
    if not sets:
        raise InputError("give the layers to sparsify: -layer L1 L2 (one set) and/or "
                         "-layer-set A,B (repeatable).")
    return sets


@cli_main(get_parser)
def main(args):
    from ..errors import InputError
    from ..viz import plot_shape_bias_per_category, plot_shape_bias_sweep
    from ..pipelines import (check_fractions, check_layer_sets, cue_conflict_categories,
                             read_shape_bias_reference, topk_sweep)
    from ..base.stimulus import Stimulus
    from ..io import atomic_output_dir, check_output_dir
    from ..io.table import write_table

    sets = _layer_sets(args)
    check_fractions(args.fraction)
    if args.n_boot < 0:
        raise InputError(f"-n-boot {args.n_boot}: give 0 (no CI) or more replicates.")
    device = parse_device(args)
    out = check_output_dir(args.out, force=args.force)    # refuse before any work
    reference = read_shape_bias_reference(args.reference) if args.reference else None
    stim = Stimulus.load(args.stim)
    cue_conflict_categories(stim)              # fail before loading the network
    stim.check_files()
    dnn = dnn_from_args(args)
    check_layer_sets(dnn, sets)
    with open_scheduler(args) as engine:
        result = topk_sweep(dnn, stim, sets, args.fraction, mode=args.mode,
                            accuracy=args.accuracy, output_layer=args.output_layer,
                            n_boot=args.n_boot, seed=args.seed, batch_size=args.batch_size,
                            device=device, workers=args.workers,
                            show_progress=not args.quiet, engine=engine)
    with atomic_output_dir(out, force=args.force) as tmp:     # the folder as a whole
        write_table(tmp / "topk.csv", result.table, force=True)
        write_table(tmp / "per_category.csv", result.per_category, force=True)
        title = f"{dnn.name} ({dnn.weights}), Top-K mode {args.mode}"
        plot_shape_bias_sweep(tmp / "topk.png", result.table, reference=reference,
                              force=True, title=title)
        plot_shape_bias_per_category(tmp / "per_category.png", result.per_category,
                                     table=result.table, reference=reference, force=True,
                                     title=f"{title}: shape bias per category")
    t = result.table
    print(f"wrote {out}/topk.csv ({len(t['layers'])} settings, {t['n_images'][0]} images; "
          f"intact shape bias {t['shape_bias'][0]:.3f}, {t['accuracy_kind'][0]} "
          f"{t['accuracy'][0]:.3f}), per_category.csv, topk.png, per_category.png")
