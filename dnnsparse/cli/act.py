"""Extract DNN activations of a stimulus set into an .act.h5 file (DNNBrain's dnn_act).

One forward pass per batch serves all requested layers; outputs are streamed to
disk, so memory does not grow with the number of stimuli. Masks select channels
(-chn, 1-based, for every -layer) or channels/rows/columns per layer (-dmask);
-pool reduces every channel's map to one number; -aggregate label keeps only
per-category means of the stimulus table's label column. -lesion permutes weights or
biases, or removes ReLUs (the sparse-coding paper's lesions); -topk keeps only the
largest activations of each channel after the given layers; -ablate silences channels
(conv5:12,40, 1-based) or units (conv5:12@3,4) by zeroed weights and biases (or a hook,
-ablate-mode hook), recorded in the file. -layer all-relu
stands for every '*_relu' layer of the network (the paper's Conv#/FC#), in forward
order. A type=video table (one movie, rows = frame numbers or onsets) is read frame by
frame for an image network and as clips of -clip-len frames, every -clip-stride-th
frame from the row's frame on, for a clip network (r3d_18, mc3_18, r2plus1d_18, s3d,
mvit_*, or -net file.py:function with -clip-len); type=video_clip gives one clip per
file. A type=audio table (one audio file per row, or segments of one file by
onset/duration) gives one row per 0.96 s VGGish log-mel example (stimID#k) for an
audio network (vggish, or -net file.py:function taking (n, 1, 96, 64)). The rows'
onsets are stored in the file for db_hrf.

example: db_act -net alexnet -layer conv5_relu fc2_relu -stim imgs.stim.csv -pool mean -out alexnet.act.h5
"""
from ..errors import InputError
from ._common import (add_device_args, add_force_arg, add_label_col_arg, add_lesion_args,
                      add_model_args, add_option, add_out_arg, add_stim_arg, cli_main,
                      dnn_from_args, make_parser, manipulate_from_args, parse_device)


def get_parser():
    p = make_parser("db_act", __doc__)
    add_model_args(p)
    add_lesion_args(p, ablate=True)
    g = p.add_argument_group("what to extract")
    add_option(g, "layer", nargs="+", metavar="L",
               help="layer names (db_info -net NAME lists them); 'all-relu': every *_relu "
                    "layer")
    add_option(g, "chn", nargs="+", type=int, metavar="N",
               help="1-based channels to keep in every -layer")
    add_option(g, "dmask", metavar="FILE", help=".dmask.csv with layers/channels/rows/cols")
    add_option(g, "pool", type=str.lower, choices=["mean", "max", "median", "l1", "l2"],
               help="spatial pooling per channel (l1/l2: element-wise norms)")
    add_option(g, "aggregate", choices=["label"],
               help="store per-category means (categories: -label-col) instead of per image")
    add_label_col_arg(g)
    add_option(g, "shard", metavar="I/N",
               help="extract only the I-th (1-based) of N contiguous ranges of the stimulus "
                    "table (numpy.array_split); db_merge joins the N files")
    add_stim_arg(p)
    add_out_arg(p, help="output .act.h5 file")
    add_option(p, "compression", default="lzf", choices=["lzf", "gzip", "none"],
               help="HDF5 compression (gzip: readable by every HDF5 tool; lzf: faster)")
    v = p.add_argument_group("video (type=video, type=video_clip)")
    add_option(v, "clip-len", type=int, metavar="N",
               help="frames per clip of a clip network (default: 16; with a custom -net "
                    "it makes the network a clip network, input (n, 3, N, H, W))")
    add_option(v, "clip-stride", type=int, metavar="S",
               help="take every S-th frame of the movie into a clip (default: 1)")
    add_device_args(p)
    add_force_arg(p)
    return p


@cli_main(get_parser)
def main(args):
    from ..base.mask import Mask
    from ..base.stimulus import Stimulus
    from ..io import check_output_path
    from ..pipelines import parse_shard, shard_stimuli

    if not args.layer and not args.dmask:
        raise InputError("give -layer names or a -dmask file.")
    if args.chn and not args.layer:
        raise InputError("-chn applies to -layer; give -layer too.")
    if args.layer and not all(l.strip() for l in args.layer):
        raise InputError("-layer: a layer name is empty; give names such as conv5_relu "
                         "(db_info -net NAME lists them).")
    shard = parse_shard(args.shard) if args.shard else None
    device = parse_device(args)                 # an unusable -device fails before any work
    check_output_path(args.out, force=args.force)
    stim = Stimulus.load(args.stim)
    if args.aggregate:
        stim = stim.with_label_column(args.label_col)
    elif args.label_col != "label":
        raise InputError("-label-col names the categories of -aggregate label; give "
                         "-aggregate label too.")
    attrs = {"stim_file": str(args.stim)}
    if shard:
        stim, more = shard_stimuli(stim, shard)  # its provenance: rows, whole table's hash
        attrs.update(more)
    stim.check_files()
    mask = Mask.load(args.dmask) if args.dmask else None
    dnn = manipulate_from_args(dnn_from_args(args), args)
    if stim.type == "audio":
        from ..model import as_audio_dnn
        dnn = as_audio_dnn(dnn)        # a custom network runs on log-mel examples
    if args.layer:
        args.layer = _expand_layers(dnn, args.layer)
    if args.chn:
        extra = Mask.from_args(args.layer, chn=args.chn)
        mask = extra if mask is None else _merge(mask, extra)
    act = dnn.extract(stim, args.layer, mask=mask, pool=args.pool, aggregate=args.aggregate,
                      out=args.out, force=args.force, batch_size=args.batch_size,
                      device=device, workers=args.workers,
                      compression=args.compression, attrs=attrs,
                      show_progress=not args.quiet)
    shapes = ", ".join(f"{l} {act.shape(l)[1:]}" for l in act.layers)
    print(f"wrote {args.out}: {act.n_stim} {'categories' if args.aggregate else 'stimuli'}; "
          f"{shapes}")
    act.close()


#: -layer words standing for several layers: name -> layers of a network.
LAYER_SETS = {"all-relu": lambda dnn: [l for l in dnn.layers if l.endswith("_relu")]}


def _expand_layers(dnn, layers):
    """``layers`` with every word of :data:`LAYER_SETS` replaced by its layers."""
    out = []
    for layer in layers:
        if layer in LAYER_SETS:
            found = LAYER_SETS[layer](dnn)
            if not found:
                raise InputError(f"-layer {layer}: {dnn.name} has no such layers; "
                                 f"'db_info -net {dnn.name}' lists its layers.")
            out += found
        else:
            out.append(layer)
    return list(dict.fromkeys(out))             # a layer named twice is extracted once


def _merge(mask, extra):
    for layer in extra.layers:
        if layer in mask:
            raise InputError(f"layer {layer!r} is in both -dmask and -chn; use one.")
        mask.set(layer, **extra.get(layer))
    return mask
