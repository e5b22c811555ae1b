"""Saliency maps of units, channels and output classes (DNNBrain's dnn_saliency, Fig. 7B).

For each -target and each image of the -stim table, the gradient of the target's
value with respect to the image's pixels (RGB values in [0, 1], after the network's
resize/crop), by one or more -method:

  vanilla      the gradient (captum Saliency; signed)
  guided       guided backpropagation (captum GuidedBackprop; also at ReLU6 and at
               GoogLeNet's functional ReLUs)
  smoothgrad   the mean gradient over -samples noisy copies, Gaussian noise of standard
               deviation -noise-level in pixel units, seeded by -noise-seed and the
               stimulus's row (bit-for-bit repeatable; the same noise whatever the
               -batch-size or device)
  integrated   integrated gradients from -baseline (black, white, mean: the network's
               mean colour, or a grey level in [0, 1]) in -steps points; the
               completeness error (sum of the map - (f(image) - f(baseline))) is stored

Targets: LAYER:CHN (channel, 1-based), LAYER:CHN@max (channel statistic: mean, max or
ROW,COL), LAYER:CHN,ROW,COL (unit, 1-based), LAYER:class=NAME or LAYER:class=INDEX
(ImageNet class; index 0-based).

-out DIR receives saliency.h5 (/<method>/<target>: (n_stim, 3, H, W), or (n_stim, H, W)
with -colour absmax; stimID and the parameters as attributes) and, unless -no-figures,
saliency_<target>.png: the first -figure-stim images with each method's map laid over
the photograph in its own geometry (the squash or crop undone; what the crop cut away
is left uncoloured).

example: db_saliency -net alexnet -target fc3:class=ostrich conv5:12@max -stim top.stim.csv -method vanilla guided -out sal/
example: db_saliency -net resnet18 -target fc:class=1 -stim imgs.stim.csv -method smoothgrad integrated -samples 50 -steps 100 -out sal/
"""
from ..utils.validation import finite_float
from ._common import (add_device_args, add_force_arg, add_lesion_args, add_model_args,
                      add_option, add_stim_arg, cli_main, dnn_from_args, make_parser,
                      manipulate_from_args, output_path, parse_device)


def get_parser():
    p = make_parser("db_saliency", __doc__)
    add_model_args(p)
    add_lesion_args(p, ablate=True)
    g = p.add_argument_group("what to map")
    add_option(g, "target", nargs="+", required=True, metavar="T",
               help="targets, e.g. conv5:12 (channel), conv5:12,7,7 (unit), "
                    "fc3:class=goldfish")
    add_option(g, "stat", default="mean", metavar="S",
               help="statistic of channel targets: mean, max, or a 1-based ROW,COL")
    add_option(g, "method", nargs="+", default=["vanilla"], metavar="M",
               help="one or more of vanilla, guided, smoothgrad, integrated")
    add_option(g, "noise-level", type=finite_float, default=0.15, metavar="S",
               help="smoothgrad: noise standard deviation in pixel units (the 0..1 range)")
    add_option(g, "samples", type=int, default=25, metavar="N",
               help="smoothgrad: noisy copies per image")
    add_option(g, "noise-seed", type=int, default=0, metavar="N", help="smoothgrad: seed")
    add_option(g, "baseline", default="black", metavar="B",
               help="integrated: black, white, mean (the network's mean colour) or a grey "
                    "level in [0, 1]")
    add_option(g, "steps", type=int, default=50, metavar="N",
               help="integrated: integration points")
    add_option(g, "colour", default="rgb", choices=["rgb", "absmax"],
               help="store the 3 colour channels, or their largest absolute value")
    add_stim_arg(p)
    add_option(p, "out", type=output_path, required=True, metavar="DIR",
               help="output directory")
    add_option(p, "no-figures", action="store_true", help="write no figures")
    add_option(p, "figure-stim", type=int, default=8, metavar="N",
               help="stimuli (the first N of the table) in each target's figure")
    add_device_args(p)
    add_force_arg(p)
    return p


@cli_main(get_parser)
def main(args):
    from ..base.stimulus import Stimulus
    from ..io import check_output_dir
    from ..model import SaliencyParams, parse_target
    from ..pipelines import check_saliency_request, network_saliency, write_saliency_outputs

    for spec in args.target:                 # spelling, before the network is loaded
        parse_target(spec, stat=args.stat)
    params = SaliencyParams(noise_level=args.noise_level, n_samples=args.samples,
                            seed=args.noise_seed, baseline=args.baseline, steps=args.steps)
    methods, params = check_saliency_request(args.method, params, colour=args.colour,
                                             figure_stim=args.figure_stim)
    check_output_dir(args.out, force=args.force)
    device = parse_device(args)
    stim = Stimulus.load(args.stim)
    stim.check_files()
    dnn = manipulate_from_args(dnn_from_args(args), args)
    result = network_saliency(dnn, stim, args.target, methods=methods, params=params,
                              stat=args.stat, colour=args.colour,
                              batch_size=args.batch_size, device=device,
                              workers=args.workers, show_progress=not args.quiet)
    written = write_saliency_outputs(result, args.out, figures=not args.no_figures,
                                     figure_stim=args.figure_stim, force=args.force)
    print(f"wrote {args.out}: {len(written)} files for {len(result.targets)} target(s), "
          f"{len(methods)} method(s), {len(result.stim_ids)} stimuli")
