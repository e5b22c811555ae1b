"""Top stimuli of units, channels and output classes (DNNBrain's dnn_topstim, Fig. 7A).

For each -target, the -top N stimuli of the -stim table with the largest values (and
with -bottom also the N smallest), found in ONE forward pass per batch that keeps only
a running top-N per target: memory does not grow with the number of stimuli. Or rank
the rows of an existing activation file (-act FILE.act.h5, read layer by layer in
chunks; -stim then only provides the images of the figures). Ties go to the earlier
stimulus of the table (or file).

Targets: LAYER:CHN (channel, 1-based), LAYER:CHN@max (channel statistic: mean, max or
ROW,COL), LAYER:CHN,ROW,COL (unit, 1-based), LAYER:class=NAME or LAYER:class=INDEX
(ImageNet class; index 0-based). With -act, channels and positions are the network
layer's; a file of masked channels or pooled maps answers the targets it stores.

-lesion, -topk and -ablate change the network first (as in db_act).

-out DIR receives the tidy table (target, end, rank, stimID, value; -table names it,
.csv or .tsv), its provenance beside it (topstim.json: network, weights, lesion,
Top-K, ablation, targets, statistic, N, the stimulus table with its SHA-256, the
dnnsparse version and the command line) and, unless -no-figures,
topstim_<target>.png with each target's images in rank order.

example: db_topstim -net alexnet -target conv5:12 fc3:class=goldfish -stim imgs.stim.csv -top 9 -out top/
example: db_topstim -act alexnet.act.h5 -target conv5_relu:12@max -stim imgs.stim.csv -top 5 -bottom -out top/
"""
from ..errors import InputError
from ._common import (add_device_args, add_force_arg, add_lesion_args, add_model_args,
                      add_option, add_stim_arg, check_act_or_net, cli_main, dnn_from_args,
                      make_parser, manipulate_from_args, output_path, parse_device)


def get_parser():
    p = make_parser("db_topstim", __doc__)
    add_model_args(p, net_required=False)
    add_lesion_args(p, ablate=True)
    g = p.add_argument_group("what to rank")
    add_option(g, "target", nargs="+", required=True, metavar="T",
               help="targets, e.g. conv5:12 (channel), conv5:12,7,7 (unit), fc3:class=goldfish")
    add_option(g, "stat", default="mean", metavar="S",
               help="statistic of channel targets: mean, max, or a 1-based ROW,COL")
    add_option(g, "top", type=int, default=9, metavar="N", help="stimuli per target")
    add_option(g, "bottom", action="store_true", help="also the N stimuli of smallest value")
    add_option(g, "act", metavar="FILE",
               help="rank the rows of this .act.h5 file instead of running -net")
    add_stim_arg(p, required=False)
    add_option(p, "out", type=output_path, required=True, metavar="DIR",
               help="output directory")
    add_option(p, "table", default="topstim.csv", metavar="NAME",
               help="name of the table in -out (.csv or .tsv)")
    add_option(p, "no-figures", action="store_true", help="write no figures")
    add_device_args(p)
    add_force_arg(p)
    return p


def _check_sources(args):
    check_act_or_net(args)
    if not args.act and not args.net:
        raise InputError("give -net NAME and -stim FILE, or -act FILE.act.h5.")
    if not args.act and not args.stim:
        raise InputError("-net needs the stimuli: give -stim FILE.")
    if args.act and not args.stim and not args.no_figures:
        raise InputError("the figures need the images: give -stim (the table the "
                         "activations were made from), or -no-figures.")


@cli_main(get_parser)
def main(args):
    from ..base.stimulus import Stimulus
    from ..io import check_input_file, check_output_dir
    from ..pipelines import (act_top_stimuli, check_topstim_request, network_top_stimuli,
                             run_provenance, write_topstim_outputs)

    check_topstim_request(args.top, table_name=args.table)
    _check_sources(args)
    device = parse_device(args) if not args.act else None
    check_output_dir(args.out, force=args.force)
    stim = Stimulus.load(args.stim) if args.stim else None
    if args.act:
        check_input_file(args.act)
        result = act_top_stimuli(args.act, args.target, n=args.top, stat=args.stat,
                                 bottom=args.bottom, stim=stim if not args.no_figures else None,
                                 stim_path=args.stim, show_progress=not args.quiet)
    else:
        if stim.type != "image":
            raise InputError(f"{args.stim} is a type={stim.type} table; db_topstim -net "
                             f"ranks images. Extract its rows with db_act first, then rank "
                             f"them with db_topstim -act FILE.act.h5.")
        stim.check_files()
        dnn = manipulate_from_args(dnn_from_args(args), args)
        result = network_top_stimuli(dnn, stim, args.target, n=args.top, stat=args.stat,
                                     bottom=args.bottom, batch_size=args.batch_size,
                                     device=device, workers=args.workers,
                                     show_progress=not args.quiet)
    provenance = run_provenance(result.attrs, command=args.command_line,
                                files={"stim": args.stim, "act": args.act}, stat=args.stat,
                                n=args.top, bottom=args.bottom, device=device)
    written = write_topstim_outputs(result, args.out, table_name=args.table,
                                    figures=not args.no_figures, provenance=provenance,
                                    force=args.force)
    print(f"wrote {args.out}: {len(written)} files for {len(result.targets)} target(s)")
