"""Minimal images of units, channels and classes (DNNBrain's dnn_minstim / MinimalParcelImage).

Each -stim image (or the -stim-id subset) is cut into superpixels (-segment slic,
felzenszwalb or quickshift, scikit-image; seeded), then for each -target its parcels
are removed greedily -- replaced by the -fill (grey: the network's mean colour; mean:
the image's own mean colour; black: DNNBrain's; blur: a Gaussian-blurred copy) -- while
the target keeps at least -keep of its value on the whole image. At each step the
removal of every remaining parcel is evaluated, all candidates batched through the
network (-batch-size per forward pass, stopping at the target's layer), and the
parcel whose removal leaves the value highest goes. The search ends when every
further removal would drop below the threshold: the image keeps >= -keep of the
value, and removing any one more parcel does not. Cost: up to n_parcels^2/2
candidate images per stimulus and target; for a unit target only the parcels touching
its theoretical receptive field are evaluated, on the crop of the image holding the
field (removing any other parcel leaves the unit's value as it is).

Everything is in the network's input geometry: the image after the network's resize
(-preprocess squash) or resize and centre crop (crop), as the network sees it; the
parcels are computed there and the minimal image has that size.

Targets: LAYER:CHN (channel, 1-based), LAYER:CHN@max (channel statistic: mean, max or
ROW,COL), LAYER:CHN,ROW,COL (unit, 1-based), LAYER:class=NAME or LAYER:class=INDEX
(ImageNet class; index 0-based).

-out DIR receives minstim.csv (one row per stimulus and target: parcels, values,
parcels removed, the best further removal), minstim.json (network, options, command),
and per stimulus STIM.segments.npy (label map) and STIM.segments.png; per stimulus and
target STIM__TARGET.minimal.png (the minimal image), STIM__TARGET.order.csv (step,
parcel removed, value after, fraction of the original) and STIM__TARGET.curve.png.

example: db_minstim -net alexnet -target conv5:12 fc3:class=goldfish -stim imgs.stim.csv -out min/
example: db_minstim -net alexnet -target conv3:40,7,7 -stim imgs.stim.csv -stim-id fish.jpg -keep 0.8 -out m/
example: db_minstim -net alexnet -target conv5:3 -stim imgs.stim.csv -segment felzenszwalb -scale 50 -fill blur -out m/
"""
from ..utils.validation import finite_float
from ._common import (add_device_args, add_force_arg, add_lesion_args, add_model_args,
                      add_option, add_stim_arg, cli_main, dnn_from_args, make_parser,
                      manipulate_from_args, output_path, parse_device)

#: command-line parameters of the segmentations (-name -> segment()'s keyword)
_SEGMENT_OPTIONS = {
    "n-segments": (int, "slic: number of segments asked for (default 50; DNNBrain 250)"),
    "compactness": (finite_float, "slic: colour vs space balance (default 10)"),
    "sigma": (finite_float, "Gaussian smoothing before segmenting (default slic 1, "
                            "felzenszwalb 0.5, quickshift 0)"),
    "scale": (finite_float, "felzenszwalb: larger gives larger parcels (default 100)"),
    "min-size": (int, "felzenszwalb: smallest parcel in pixels (default 50)"),
    "kernel-size": (finite_float, "quickshift: density kernel width (default 3)"),
    "max-dist": (finite_float, "quickshift: cut-off distance; larger gives fewer parcels "
                               "(default 6)"),
    "ratio": (finite_float, "quickshift: colour vs space balance in [0, 1] (default 0.5)"),
}


def get_parser():
    p = make_parser("db_minstim", __doc__)
    add_model_args(p)
    add_lesion_args(p, seed_help="seed of the lesion and of quickshift's tie-breaking",
                    ablate=True)
    g = p.add_argument_group("what to reduce")
    add_option(g, "target", nargs="+", required=True, metavar="T",
               help="targets, e.g. conv5:12 (channel), conv5:12,7,7 (unit), fc3:class=goldfish")
    add_option(g, "stat", default="mean", metavar="S",
               help="statistic of channel targets: mean, max, or a 1-based ROW,COL")
    add_option(g, "keep", type=finite_float, default=0.5, metavar="F",
               help="fraction of the target's value the minimal image keeps, in (0, 1]")
    add_option(g, "fill", default="grey", choices=["grey", "mean", "black", "blur"],
               help="what removed parcels show: the network's mean colour, the image's mean "
                    "colour, black, or a blurred copy of the image")
    add_option(g, "blur-sigma", type=finite_float, default=8.0, metavar="PX",
               help="Gaussian of -fill blur, in input pixels")
    s = p.add_argument_group("segmentation (scikit-image superpixels)")
    add_option(s, "segment", default="slic", choices=["slic", "felzenszwalb", "quickshift"],
               help="superpixel method")
    for name, (kind, text) in _SEGMENT_OPTIONS.items():
        add_option(s, name, type=kind, default=None, metavar="V", help=text)
    add_stim_arg(p)
    add_option(p, "stim-id", nargs="+", metavar="ID",
               help="only these stimuli (their stimID), in this order (default: all)")
    add_option(p, "out", type=output_path, required=True, metavar="DIR",
               help="output directory")
    add_option(p, "no-figures", action="store_true",
               help="write no figures (segmentation and curve PNGs)")
    add_device_args(p)
    add_force_arg(p)
    return p


def _segment_params(args):
    return {name.replace("-", "_"): getattr(args, name.replace("-", "_"))
            for name in _SEGMENT_OPTIONS}


@cli_main(get_parser)
def main(args):
    from ..base.stimulus import Stimulus
    from ..io import check_output_dir
    from ..pipelines import (check_minstim_request, minimal_images, run_provenance,
                             select_stimuli, write_minstim_outputs)

    params = check_minstim_request(keep=args.keep, method=args.segment,
                                   params=_segment_params(args), fill=args.fill,
                                   blur_sigma=args.blur_sigma, batch_size=args.batch_size)
    device = parse_device(args)
    check_output_dir(args.out, force=args.force)
    stim = select_stimuli(Stimulus.load(args.stim), args.stim_id)
    stim.check_files()
    dnn = manipulate_from_args(dnn_from_args(args), args)
    result = minimal_images(dnn, stim, args.target, stat=args.stat, keep=args.keep,
                            method=args.segment, params=params, fill=args.fill,
                            blur_sigma=args.blur_sigma, seed=args.seed,
                            batch_size=args.batch_size, workers=args.workers, device=device,
                            show_progress=not args.quiet)
    provenance = run_provenance(result.attrs, command=args.command_line,
                                files={"stim": args.stim}, device=device, **result.options)
    written = write_minstim_outputs(result, args.out, figures=not args.no_figures,
                                    provenance=provenance, force=args.force)
    print(f"wrote {args.out}: {len(written)} files for {len(stim)} stimuli x "
          f"{len(result.targets)} target(s)")
