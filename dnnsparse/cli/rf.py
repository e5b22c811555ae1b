"""Receptive fields of layers and units (DNNBrain's dnn_rf_sw and dnn_rf_us).

-theoretical: the theoretical receptive field of every layer, from the network's
convolutions, poolings and paddings (kernel, stride, padding, dilation; branches
merged): size, jump (effective stride), centre of unit (1,1) and effective padding,
per axis, in input pixels (0-based). Printed, and written to -out as CSV/TSV.

Otherwise, for each -target: the empirical receptive field by occlusion discrepancy
(a sliding occluder, -occluder pixels every -occluder-stride pixels; Zhou et al. 2014;
many occluded copies per forward pass) and the upsampled activation map (DNNBrain's
UpsamplingActivationMapping), averaged over the -stim images (or over each target's
-top N images). -out DIR receives rf.h5 (one dataset per target and method), rf.csv
(peak position, extent at half maximum, theoretical field) and an overlay figure per
target.

Targets: LAYER:CHN (channel, 1-based), LAYER:CHN@max (channel statistic: mean, max or
ROW,COL), LAYER:CHN,ROW,COL (unit, 1-based), LAYER:class=NAME or LAYER:class=INDEX
(ImageNet class; index 0-based). Pixel coordinates in the outputs are 0-based.
-lesion, -topk and -ablate (channels or units silenced, as in db_ablate) change the
network before the maps are computed (recorded in rf.h5). With -theoretical the weights
are irrelevant (random ones are used unless -weights
names a file).

example: db_rf -net alexnet -theoretical -out rf.csv
example: db_rf -net alexnet -target conv5:12,7,7 conv3:40 -stim imgs.stim.csv -out rf/
example: db_rf -net alexnet -ablate conv4:3,7 -target conv5:12 -stim imgs.stim.csv -out rf_ablated/
"""
from ..errors import InputError
from ..utils.validation import finite_float
from ._common import (add_device_args, add_force_arg, add_lesion_args, add_model_args,
                      add_option, add_stim_arg, cli_main, dnn_from_args, make_parser,
                      manipulate_from_args, output_path, parse_device)


def get_parser():
    p = make_parser("db_rf", __doc__)
    add_model_args(p)
    add_lesion_args(p, seed_help="seed of the lesion and of the noise occluder", ablate=True)
    g = p.add_argument_group("what to compute")
    add_option(g, "theoretical", action="store_true",
               help="table of every layer's theoretical receptive field")
    add_option(g, "layer", nargs="+", metavar="L",
               help="with -theoretical: only these layers (default: all)")
    add_option(g, "target", nargs="+", metavar="T",
               help="targets, e.g. conv5:12,7,7 (unit) or conv3:40 (channel)")
    add_option(g, "stat", default="mean", metavar="S",
               help="statistic of channel targets: mean, max, or a 1-based ROW,COL")
    add_option(g, "method", nargs="+", default=["occlusion", "upsampling"],
               choices=["occlusion", "upsampling"], help="empirical maps to compute")
    add_option(g, "top", type=int, metavar="N",
               help="average each target's maps over its N strongest stimuli (default: all)")
    o = p.add_argument_group("occlusion and upsampling")
    add_option(o, "occluder", type=int, default=11, metavar="PX",
               help="occluder side in input pixels (Zhou et al.: 11)")
    add_option(o, "occluder-stride", type=int, default=4, metavar="PX",
               help="step between occluder placements (Zhou et al.: 3)")
    add_option(o, "fill", default="mean", choices=["mean", "black", "white", "noise"],
               help="what the occluder shows (noise: seeded random pixels)")
    add_option(o, "discrepancy", default="drop", choices=["drop", "abs"],
               help="original minus occluded value (DNNBrain), or its absolute value")
    add_option(o, "interp", default="bicubic", choices=["bicubic", "bilinear", "nearest", "area"],
               help="interpolation of the upsampled activation map")
    add_option(o, "threshold", type=finite_float, metavar="Q",
               help="clip each upsampled map below its Q quantile, 0<=Q<1 (DNNBrain's "
                    "interp_threshold)")
    add_stim_arg(p, required=False)
    add_option(p, "out", type=output_path, metavar="PATH",
               help="-theoretical: a .csv/.tsv table (optional); otherwise the output "
                    "directory")
    add_option(p, "no-figures", action="store_true", help="write no overlay figures")
    add_device_args(p)
    add_force_arg(p)
    return p


def _print_table(table):
    keys = ["layer", "n_row", "n_col", "scope", "size_row", "size_col", "jump_row",
            "jump_col", "centre_row", "centre_col", "padding_row", "padding_col"]
    rows = [[str(table[k][i]) for k in keys] for i in range(len(table["layer"]))]
    widths = [max(len(r[j]) for r in rows + [keys]) for j in range(len(keys))]
    for r in [keys] + rows:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip())


@cli_main(get_parser)
def main(args):
    from ..pipelines import theoretical_table

    if args.theoretical:
        if args.target:
            raise InputError("-theoretical gives the table of layers; -target asks for "
                             "empirical maps. Run them separately.")
        from ..io import check_output_path
        from ..io.table import write_table
        if args.out:
            check_output_path(args.out, force=args.force)
        if args.weights == "imagenet":
            # the geometry does not depend on the weights: spare the download
            args.weights = "random"
        dnn = dnn_from_args(args)
        table = theoretical_table(dnn, args.layer)
        _print_table(table)
        if args.out:
            write_table(args.out, table, force=args.force)
            print(f"wrote {args.out}: {len(table['layer'])} layers")
        return
    _empirical(args)


def _empirical(args):
    from ..base.stimulus import Stimulus
    from ..model import resolve_targets
    from ..pipelines import check_rf_output_dir, empirical_rf, load_images, write_rf_outputs

    missing = [o for o, v in (("-target", args.target), ("-stim", args.stim),
                              ("-out", args.out)) if not v]
    if missing:
        raise InputError(f"give {', '.join(missing)} (or -theoretical for the table of "
                         f"layers).")
    device = parse_device(args)
    check_rf_output_dir(args.out, force=args.force)
    stim = Stimulus.load(args.stim)
    stim.check_files()
    dnn = manipulate_from_args(dnn_from_args(args), args)
    dnn.to(device)
    targets = resolve_targets(args.target, dnn, stat=args.stat)
    images = load_images(dnn, stim, batch_size=args.batch_size, workers=args.workers)
    result = empirical_rf(dnn, images, targets, stim_ids=stim.ids, methods=args.method,
                          top=args.top, size=args.occluder, stride=args.occluder_stride,
                          fill=args.fill, discrepancy=args.discrepancy, interp=args.interp,
                          threshold=args.threshold, batch_size=args.batch_size,
                          seed=args.seed, show_progress=not args.quiet)
    written = write_rf_outputs(result, args.out, attrs={"stim_file": str(args.stim)},
                               force=args.force,
                               figures=not args.no_figures)
    print(f"wrote {args.out}: {len(written)} files for {len(targets)} target(s)")
