"""Activation maps as images (DNNBrain's dnn_view, Fig. 4B).

For each stimulus and each -layer, the -top K channels with the largest mean
activation, their maps resampled bilinearly onto the photograph in its own geometry
(the resize, and the centre crop of -preprocess crop, undone: the maps line up with
the image; what the network did not see stays uncoloured), in one figure per
stimulus with a colour bar per layer. -channel C ... also draws a grid of those
channels (1-based, every layer must have them) per stimulus and layer; -stim-grid
draws contact sheets of the stimulus table (-by-label: one section per label).

The maps come from the network (-net with -stim; -weights, -lesion, -topk and
-ablate as in db_act) or from an .act.h5 file of unpooled layers (-act; -layer
defaults to all of its layers; -stim gives the images).

-out DIR receives the tidy table (stimID, layer, rank, channel, mean; -table names
it, .csv or .tsv) with its provenance beside it (view.json) and, unless -no-figures,
view_<stim>.png, top_channels.png (each stimulus with its best channel per layer, as
Fig. 4B; pages of 8 stimuli), channels_<stim>_<layer>.png and stimuli.png.

example: db_view -net alexnet -layer conv1 conv2 conv3 conv4 conv5 -stim imgs.stim.csv -out view/
example: db_view -act alexnet.act.h5 -layer conv5_relu -channel 12 40 -stim imgs.stim.csv -top 3 -out view/
example: db_view -stim imgs.stim.csv -stim-grid -by-label -out sheets/
"""
from ..errors import InputError
from ..utils.validation import finite_float
from ._common import (add_device_args, add_force_arg, add_lesion_args, add_model_args,
                      add_option, add_stim_arg, check_act_or_net, cli_main, dnn_from_args,
                      make_parser, manipulate_from_args, output_path, parse_device)


def get_parser():
    p = make_parser("db_view", __doc__)
    add_model_args(p, net_required=False)
    add_lesion_args(p, ablate=True)
    g = p.add_argument_group("what to draw")
    add_option(g, "layer", nargs="+", metavar="L",
               help="layers with spatial maps (default with -act: all of the file)")
    add_option(g, "top", type=int, default=1, metavar="K",
               help="channels of largest mean activation per stimulus and layer")
    add_option(g, "channel", type=int, nargs="+", metavar="C",
               help="also a grid of these channels (1-based)")
    add_option(g, "act", metavar="FILE",
               help="read the maps from this .act.h5 file (unpooled) instead of running -net")
    add_option(g, "stim-grid", action="store_true",
               help="contact sheets of the stimuli (stimuli.png)")
    add_option(g, "by-label", action="store_true",
               help="contact sheets in sections by the label column")
    add_option(g, "alpha", type=finite_float, default=0.6, metavar="A",
               help="opacity of the maps over the image (1: the maps alone)")
    add_option(g, "cmap", default="jet", metavar="NAME", help="matplotlib colour map")
    add_stim_arg(p, required=False)
    add_option(p, "out", type=output_path, required=True, metavar="DIR",
               help="output directory")
    add_option(p, "table", default="view.csv", metavar="NAME",
               help="name of the table in -out (.csv or .tsv)")
    add_option(p, "no-figures", action="store_true",
               help="write the table only (and -stim-grid's sheets)")
    add_device_args(p)
    add_force_arg(p)
    return p


def _check_sources(args):
    maps = bool(args.net or args.act or args.layer)
    check_act_or_net(args)
    if args.by_label and not args.stim_grid:
        raise InputError("-by-label arranges the contact sheets: give -stim-grid too.")
    if not maps and not args.stim_grid:
        raise InputError("nothing to draw: give -net NAME -layer L ... -stim FILE, -act "
                         "FILE.act.h5, or -stim FILE -stim-grid.")
    if maps and not (args.net or args.act):
        raise InputError("-layer needs the maps: give -net NAME (with -stim) or -act "
                         "FILE.act.h5.")
    if args.net and not args.layer:
        raise InputError("-net needs the layers to view: give -layer L ...")
    if (args.net or args.stim_grid) and not args.stim:
        raise InputError(f"{'-net' if args.net else '-stim-grid'} needs the stimuli: give "
                         f"-stim FILE.")
    if args.act and not args.stim and not args.no_figures:
        raise InputError("the figures need the images: give -stim (the table the "
                         "activations were made from), or -no-figures.")
    return maps


@cli_main(get_parser)
def main(args):
    from ..base.stimulus import Stimulus
    from ..io import check_input_file, check_output_dir
    from ..pipelines import (act_view, check_view_request, network_view, run_provenance,
                             write_view_outputs)

    channels = check_view_request(top=args.top, channels=args.channel, alpha=args.alpha,
                                  cmap=args.cmap, table_name=args.table)
    maps = _check_sources(args)
    device = parse_device(args) if args.net else None
    check_output_dir(args.out, force=args.force)
    stim = Stimulus.load(args.stim) if args.stim else None
    if stim is not None:
        stim.check_files()
    result = None
    if maps and args.act:
        check_input_file(args.act)
        result = act_view(args.act, args.layer, top=args.top, channels=channels,
                          stim=stim if not args.no_figures else None, stim_path=args.stim,
                          show_progress=not args.quiet)
    elif maps:
        dnn = manipulate_from_args(dnn_from_args(args), args)
        result = network_view(dnn, stim, args.layer, top=args.top, channels=channels,
                              batch_size=args.batch_size, device=device,
                              workers=args.workers, show_progress=not args.quiet)
    provenance = None
    if result is not None:
        provenance = run_provenance(result.attrs, command=args.command_line,
                                    files={"stim": args.stim, "act": args.act},
                                    top=args.top, channels=channels, device=device)
    written = write_view_outputs(args.out, result=result, stim=stim,
                                 stim_grid=args.stim_grid, by_label=args.by_label,
                                 figures=not args.no_figures, table_name=args.table,
                                 alpha=args.alpha, cmap=args.cmap, provenance=provenance,
                                 force=args.force, show_progress=not args.quiet)
    print(f"wrote {args.out}: {len(written)} files")
