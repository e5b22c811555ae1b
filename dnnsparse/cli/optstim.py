"""Optimal stimuli by activation maximisation (DNNBrain's dnn_optstim / SynthesisImage, Fig. 7C).

For each -target, an image that maximises the target's value: Adam on the image's
pixels (-param pixel) or on a decorrelated Fourier spectrum (-param fourier, Olah et
al. 2017), from seeded noise or from -init IMAGE, with L1/L2 (towards grey) and
total-variation penalties (-l1, -l2, -tv), a Gaussian blur every -blur-every steps,
and each step a random shift (-jitter), scale (-scale LO,HI) and rotation (-rotate).
It runs -steps steps, or stops earlier once the activation has not improved for
-patience steps. Targets are optimised together, -batch-size images at a time; each
target's image does not depend on the others. Seeded (-seed) and bit-for-bit
repeatable on the CPU.

Targets: LAYER:CHN (channel, 1-based; -stat mean, max or ROW,COL), LAYER:CHN@max,
LAYER:CHN,ROW,COL (unit, 1-based, positions in the map of a -size image),
LAYER:class=NAME or LAYER:class=INDEX (ImageNet class; index 0-based).

-out DIR receives, per target, optstim_<target>.png (the parameters in its PNG text
chunk 'dnnsparse'), optstim_<target>.json (the same, sidecar), the activation per step
optstim_<target>_steps.csv and its plot optstim_<target>_steps.png; optstim.csv
summarises the targets and optstim_images.png shows all images.

example: db_optstim -net efficientnet_lite0 -target fc:class=goldfish fc:class=daisy -steps 128 -out opt/
example: db_optstim -net alexnet -target conv5:12 -param pixel -tv 0.5 -blur-every 4 -patience 20 -out opt/
"""
from ..errors import InputError
from ..utils.validation import finite_float
from ._common import (add_device_args, add_force_arg, add_lesion_args, add_model_args,
                      add_option, cli_main, dnn_from_args, make_parser,
                      manipulate_from_args, output_path, parse_device)


def get_parser():
    p = make_parser("db_optstim", __doc__)
    add_model_args(p)
    add_lesion_args(p, ablate=True,
                    seed_help="seed of the lesion and of the optimisation (noise images, "
                              "jitter/scale/rotation draws)")
    g = p.add_argument_group("what to maximise")
    add_option(g, "target", nargs="+", required=True, metavar="T",
               help="targets, e.g. conv5:12 (channel), conv5:12,7,7 (unit), fc3:class=goldfish")
    add_option(g, "stat", default="mean", metavar="S",
               help="statistic of channel targets: mean, max, or a 1-based ROW,COL")
    o = p.add_argument_group("optimisation")
    add_option(o, "init", metavar="IMAGE", help="start from this image (default: seeded noise)")
    add_option(o, "size", metavar="N|H,W",
               help="image size in pixels (default: the network's input size; with -init "
                    "the image is squashed to it)")
    add_option(o, "param", default="fourier", choices=["fourier", "pixel"],
               help="optimise a decorrelated Fourier spectrum or the pixels")
    add_option(o, "no-decorrelate", action="store_true",
               help="no colour decorrelation before the sigmoid")
    add_option(o, "decay", type=finite_float, default=1.0, metavar="X",
               help="1/frequency^X scaling of the Fourier spectrum")
    add_option(o, "steps", type=int, default=256, metavar="N", help="(most) Adam steps")
    add_option(o, "lr", type=finite_float, default=0.05, metavar="X", help="Adam's learning rate")
    add_option(o, "l1", type=finite_float, default=0.0, metavar="W",
               help="weight of the L1 penalty (mean |pixel - 0.5|, pixels in [0, 1])")
    add_option(o, "l2", type=finite_float, default=0.0, metavar="W",
               help="weight of the L2 penalty (mean (pixel - 0.5)^2)")
    add_option(o, "tv", type=finite_float, default=0.0, metavar="W",
               help="weight of the total-variation penalty (mean |neighbour difference|)")
    add_option(o, "blur-every", type=int, default=0, metavar="K",
               help="Gaussian blur of the image every K steps (0: never)")
    add_option(o, "blur-sigma", type=finite_float, default=0.5, metavar="PX",
               help="standard deviation of that blur, pixels")
    add_option(o, "jitter", type=int, default=8, metavar="PX",
               help="random shift each step, up to PX pixels (0: none)")
    add_option(o, "scale", default="0.95,1.05", metavar="LO,HI",
               help="random scale each step, uniform in [LO, HI] (1,1: none)")
    add_option(o, "rotate", type=finite_float, default=5.0, metavar="DEG",
               help="random rotation each step, within +-DEG degrees (0: none)")
    add_option(o, "patience", type=int, default=None, metavar="N",
               help="stop a target once its activation has not improved for N steps "
                    "(default: run all -steps)")
    add_option(o, "min-delta", type=finite_float, default=0.0, metavar="X",
               help="the least increase that counts as an improvement (with -patience)")
    add_option(p, "out", type=output_path, required=True, metavar="DIR",
               help="output directory")
    add_option(p, "no-figures", action="store_true",
               help="write no figures (images, JSON and tables only)")
    add_device_args(p)
    add_force_arg(p)
    return p


def _numbers(text, option, n, kind):
    parts = [t.strip() for t in str(text).split(",")]
    try:
        values = [kind(t) for t in parts]
    except ValueError:
        values = None
    if values is None or len(values) not in n:
        how = "N or H,W (whole numbers)" if kind is int else "LO,HI"
        raise InputError(f"{option} {text}: give {how}.")
    return values


def _options(args):
    """The keyword options of maximize_activation, checked (no network needed)."""
    from ..model import check_image_size, check_optstim_options

    size = None
    if args.size is not None:
        values = _numbers(args.size, "-size", (1, 2), int)
        size = check_image_size(values * 2 if len(values) == 1 else values)
    scale = tuple(_numbers(args.scale, "-scale", (2,), float))
    opts = dict(param=args.param, decorrelate=not args.no_decorrelate, decay=args.decay,
                steps=args.steps, lr=args.lr, l1=args.l1, l2=args.l2, tv=args.tv,
                blur_every=args.blur_every, blur_sigma=args.blur_sigma, jitter=args.jitter,
                scale=scale, degrees=args.rotate, patience=args.patience,
                min_delta=args.min_delta, seed=args.seed, batch_size=args.batch_size)
    check_optstim_options(**opts)
    if size is not None and args.jitter >= min(size):
        raise InputError(f"-jitter {args.jitter} px needs images larger than that; -size is "
                         f"{size[0]}x{size[1]}.")
    return size, opts


@cli_main(get_parser)
def main(args):
    from ..io import check_input_file, check_output_dir
    from ..pipelines import optimal_stimuli, write_optstim_outputs

    size, opts = _options(args)
    check_output_dir(args.out, force=args.force)
    if args.init:
        check_input_file(args.init, what="-init image")
    device = parse_device(args)
    dnn = manipulate_from_args(dnn_from_args(args), args)
    run = optimal_stimuli(dnn, args.target, stat=args.stat, size=size, init=args.init,
                          device=device, show_progress=not args.quiet, **opts)
    written = write_optstim_outputs(run, args.out, figures=not args.no_figures,
                                    force=args.force)
    best = ", ".join(f"{t.name} {v:.4g}" for t, v in zip(run.targets, run.final))
    print(f"wrote {args.out}: {len(written)} files for {len(run.targets)} target(s); "
          f"activation of the saved images: {best}")
