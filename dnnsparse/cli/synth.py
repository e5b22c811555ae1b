"""Image synthesis through a network's features (the Top-K paper's §3.2-3.3, Figs. 2-3).

db_synth texture: Gatys-style texture synthesis. From seeded noise, an image whose
Gram matrices (normalised by the number of positions) at -layers match those of
-source; loss = sum over layers of ||G(image) - G(source)||^2 / ||G(source)||^2. With -topk
LAYER=FRACTION,... the Top-K is inserted first: -topk-mode keep matches the Gram
matrices of the Top-K responses, -topk-mode inverse those of the non-Top-K ones.

db_synth reconstruct: an image whose activations at -layer match mask * X(-image)
(loss = ||X(image) - mask X||^2 / ||mask X||^2 over the whole layer, as the
paper's §3.3): -mask
topk (the Top-K positions per channel, -fraction), nontopk (the rest), identity (all)
or random (as many positions per channel as Top-K, drawn with -seed; a control).

db_synth stylise: stylised copies of the -content stimulus table, each with the style
of a row of the -style table (-pairing cycle: content row i with style row i mod
n_style; all: every pair; random: a style row drawn with -seed), as a new image
stimulus table (the Top-K paper's Fig. 6: evaluate db_topk / db_train / db_act on it;
labels, a shape column and every other column are the content rows', the style rows'
columns follow as style_<name>, and a texture column of the style table is copied as
texture, so a cue-conflict table for db_topk results). -method gatys (Gatys et al.
2016) optimises, from seeded noise (-init noise) or the content image, loss =
||X(image) - X(content)||^2 / ||X(content)||^2 at -content-layer + -style-weight x the
Gram loss of the style image at -style-layers, in the -net network's features (any
zoo network; efficientnet_lite0 has offline weights). -method adain (Huang & Belongie
2017) needs the pytorch-AdaIN weights vgg_normalised.pth and decoder.pth: give
-adain-encoder/-adain-decoder or put them in torch's hub cache (checkpoints/); they
are never downloaded. -out DIR receives images/*.png, stylised.stim.csv,
stylise_losses.csv (start and final content and style losses per image, measured in
-net; empty for adain without -net) and stylise.json (provenance).

texture and reconstruct optimise the pixels (or a Fourier spectrum, -param) by L-BFGS (one iteration per
step, learning rate 1, as the paper) or Adam, -steps steps. -out DIR receives
<task>.png (parameters in its PNG text chunk 'dnnsparse'), <task>.json (the same),
<task>_loss.csv and <task>_loss.png (loss per step); reconstruct also writes the
mask, reconstruct_mask.npy (bool, channels x rows x columns). Seeded and bit-for-bit
repeatable on the CPU.

example: db_synth texture -net vgg16 -source bark.png -layers conv1_relu conv2_relu conv4_relu -topk conv4_relu=0.1 -topk-mode inverse -steps 100 -out tex/
example: db_synth reconstruct -net alexnet -image cat.png -layer conv3_relu -mask topk -fraction 0.1 -out rec/
example: db_synth stylise -net efficientnet_lite0 -content test.stim.csv -style paintings.stim.csv -pairing random -seed 1 -content-layer block10 -style-layers stem_relu block2 block4 block7 -style-weight 1 -steps 100 -size 224 -out stylised/
example: db_synth stylise -method adain -adain-encoder vgg_normalised.pth -adain-decoder decoder.pth -content test.stim.csv -style paintings.stim.csv -out stylised/
"""
import argparse
import math
import sys

from ..errors import InputError
from ..utils.validation import finite_float
from ._common import (add_device_args, add_force_arg, add_lesion_args,
                      add_model_args, add_option, cli_main, dnn_from_args, make_parser,
                      manipulate_from_args, output_path, parse_device, parse_layer_fractions)


def _common_options(p, *, optimizer="method"):
    # -v/-q also after the task name; SUPPRESS keeps a value given before it
    g = p.add_argument_group("messages")
    g.add_argument("-v", "--verbose", action="count", default=argparse.SUPPRESS,
                   help="more log messages (-vv for debug)")
    g.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
                   help="only warnings and errors; no progress bars")
    o = p.add_argument_group("optimisation")
    add_option(o, "size", type=int, default=224, metavar="N",
               help="image size in pixels (square; the source is squashed to it)")
    add_option(o, "steps", type=int, default=100, metavar="N", help="optimiser steps")
    add_option(o, optimizer, default="lbfgs", choices=["lbfgs", "adam"], help="optimiser",
               dest="optimizer")
    add_option(o, "lr", type=finite_float, default=None, metavar="X",
               help="learning rate (default: 1 for L-BFGS, 0.05 for Adam)")
    add_option(o, "param", default="pixel", choices=["pixel", "fourier"],
               help="optimise the pixels or a decorrelated Fourier spectrum")
    add_option(o, "noise-sd", type=finite_float, default=1.0, metavar="X",
               help="start noise, standard deviation before the sigmoid")
    add_option(p, "out", type=output_path, required=True, metavar="DIR",
               help="output directory")
    add_option(p, "no-figures", action="store_true", help="no loss plot")
    add_device_args(p)
    add_force_arg(p)


class _TaskParser(argparse.ArgumentParser):
    """A task's parser whose usage errors read ``db_synth: error: TASK: ...``."""

    def error(self, message):
        self.print_usage(sys.stderr)
        prog, _, task = self.prog.rpartition(" ")
        self.exit(2, f"{prog}: error: {task}: {message}\n")


def get_parser():
    p = make_parser("db_synth", __doc__)
    sub = p.add_subparsers(dest="task", metavar="TASK", required=True,
                           parser_class=_TaskParser)
    tex = sub.add_parser("texture", help="Gram-matrix texture synthesis (Fig. 2)",
                         description=__doc__, formatter_class=p.formatter_class,
                         allow_abbrev=False)
    add_model_args(tex)
    add_lesion_args(tex, seed_help="seed of the lesion and of the start noise")
    add_option(tex, "source", required=True, metavar="IMAGE", help="texture source image")
    add_option(tex, "layers", nargs="+", required=True, metavar="LAYER",
               help="layers whose Gram matrices are matched")
    _common_options(tex)
    rec = sub.add_parser("reconstruct", help="reconstruction through a mask (Fig. 3)",
                         description=__doc__, formatter_class=p.formatter_class,
                         allow_abbrev=False)
    add_model_args(rec)
    add_option(rec, "image", required=True, metavar="IMAGE", help="target image")
    add_option(rec, "layer", required=True, metavar="LAYER", help="layer to match")
    add_option(rec, "mask", default="identity",
               choices=["topk", "nontopk", "identity", "random"], help="mask of the target")
    add_option(rec, "fraction", type=finite_float, default=0.1, metavar="F",
               help="Top-K fraction per channel (also the size of -mask random)")
    add_option(rec, "seed", type=int, default=0, metavar="N",
               help="seed of the start noise and of -mask random")
    _common_options(rec)
    sty = sub.add_parser("stylise", help="stylised copies of a stimulus table (Fig. 6)",
                         description=__doc__, formatter_class=p.formatter_class,
                         allow_abbrev=False)
    add_model_args(sty, net_required=False)
    add_option(sty, "content", required=True, metavar="FILE",
               help="stimulus table of the content images")
    add_option(sty, "style", required=True, metavar="FILE",
               help="stimulus table of the style images")
    add_option(sty, "method", default="gatys", choices=["gatys", "adain"],
               help="optimisation on -net's features or AdaIN's encoder/decoder")
    add_option(sty, "pairing", default="cycle", choices=["cycle", "all", "random"],
               help="which style image each content image gets")
    add_option(sty, "seed", type=int, default=0, metavar="N",
               help="seed of -pairing random and of the start noise")
    add_option(sty, "content-layer", metavar="LAYER", help="layer of the content loss (gatys)")
    add_option(sty, "style-layers", nargs="+", default=[], metavar="LAYER",
               help="layers whose Gram matrices give the style loss (gatys)")
    add_option(sty, "style-weight", type=finite_float, default=1.0, metavar="W",
               help="weight of the style loss against the content loss")
    add_option(sty, "init", default="noise", choices=["noise", "content"],
               help="start of the optimisation (gatys)")
    add_option(sty, "alpha", type=finite_float, default=1.0, metavar="A",
               help="AdaIN style strength in [0, 1]")
    add_option(sty, "adain-encoder", metavar="PTH", help="AdaIN encoder (vgg_normalised.pth)")
    add_option(sty, "adain-decoder", metavar="PTH", help="AdaIN decoder (decoder.pth)")
    _common_options(sty, optimizer="optimizer")
    return p


def _options(args):
    """The options of synthesize, checked before any work."""
    from ..model import check_image_size, check_synth_options

    lr = args.lr if args.lr is not None else (1.0 if args.optimizer == "lbfgs" else 0.05)
    opts = dict(steps=args.steps, lr=lr, method=args.optimizer, param=args.param,
                seed=args.seed, noise_sd=args.noise_sd)
    check_synth_options(**opts)
    check_image_size(args.size)
    if args.task == "texture" and args.topk:
        for layer, f in parse_layer_fractions(args.topk).items():
            if not 0 < f <= 1:
                raise InputError(f"-topk {layer}={f:g}: give a fraction in (0, 1].")
    if args.task == "reconstruct" and not (math.isfinite(args.fraction)
                                           and 0 < args.fraction <= 1):
        raise InputError(f"-fraction {args.fraction}: give a fraction in (0, 1].")
    if args.task == "stylise":
        if not 0 <= args.alpha <= 1:
            raise InputError(f"-alpha {args.alpha:g}: give a number in [0, 1].")
        if not args.style_weight >= 0:
            raise InputError(f"-style-weight {args.style_weight:g}: give a number >= 0.")
        if args.method == "gatys":
            if args.net is None:
                raise InputError("-method gatys needs -net (the network whose features "
                                 "define the losses).")
            if args.content_layer is None or not args.style_layers:
                raise InputError("-method gatys needs -content-layer and -style-layers.")
        elif args.net is not None and (args.content_layer is None or not args.style_layers):
            raise InputError("with -net, -method adain measures the losses: give "
                             "-content-layer and -style-layers too.")
    return opts


@cli_main(get_parser)
def main(args):
    from ..io import check_input_file, check_output_dir
    from ..pipelines import reconstruct_image, synthesize_texture, write_synth_outputs

    opts = _options(args)
    check_output_dir(args.out, force=args.force)
    if args.task == "stylise":
        return _stylise(args, opts)
    image = args.source if args.task == "texture" else args.image
    check_input_file(image, what="-source image" if args.task == "texture" else "-image")
    device = parse_device(args)
    dnn = dnn_from_args(args)
    layers = args.layers if args.task == "texture" else [args.layer]
    for layer in layers:
        dnn.resolve(layer)
    if args.task == "texture":
        dnn = manipulate_from_args(dnn, args)
        run = synthesize_texture(dnn, image, args.layers, size=args.size, device=device,
                                 show_progress=not args.quiet, **opts)
        note = f"Gram loss {run.initial:.4g} -> {run.final:.4g}"
    else:
        run = reconstruct_image(dnn, image, args.layer, mask=args.mask,
                                fraction=args.fraction, size=args.size, device=device,
                                show_progress=not args.quiet, **opts)
        note = (f"loss {run.initial:.4g} -> {run.final:.4g}; relative error of "
                f"{args.layer} {run.extra['relative_error']:.3g}")
    written = write_synth_outputs(run, args.out, stem=args.task,
                                  figures=not args.no_figures, force=args.force)
    print(f"wrote {args.out}: {len(written)} files; {note}")


def _stylise(args, opts):
    from ..base import Stimulus
    from ..model import load_adain
    from ..pipelines import stylise_stimuli

    device = parse_device(args)
    content = Stimulus.load(args.content)
    style = Stimulus.load(args.style)
    for table, what in ((content, "-content"), (style, "-style")):
        if table.type != "image":
            raise InputError(f"{what} {getattr(args, what[1:])} is a type={table.type} "
                             f"table; give an image table.")
        table.check_files()
    adain, weights = None, ()
    if args.method == "adain":
        adain, weights = load_adain(args.adain_encoder, args.adain_decoder)
    dnn = None
    if args.net is not None:
        dnn = dnn_from_args(args)
        for layer in [args.content_layer, *args.style_layers]:
            dnn.resolve(layer)
    opts = dict(opts)
    opts["optimizer"] = opts.pop("method")
    seed = opts.pop("seed")
    files = {"content": args.content, "style": args.style}
    files.update({f"adain_{k}": p for k, p in zip(("encoder", "decoder"), weights)})
    result = stylise_stimuli(
        content, style, args.out, dnn=dnn, content_layer=args.content_layer,
        style_layers=args.style_layers, style_weight=args.style_weight, method=args.method,
        adain=adain, alpha=args.alpha, pairing=args.pairing, seed=seed, size=args.size,
        init=args.init, force=args.force, show_progress=not args.quiet,
        command=args.command_line, files=files, device=device, **opts)
    print(f"wrote {args.out}: {result['n']} stylised images and {result['table'].name}")
