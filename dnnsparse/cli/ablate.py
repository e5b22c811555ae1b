"""Silence channels or units of a network and measure what changes (ablation).

-ablate LAYER:CHN[,CHN...] (channels, 1-based) or LAYER:CHN@ROW,COL (a unit) silences
them all together; -sweep LAYER silences each channel of that layer in turn (one row
per channel, images decoded once per batch, only the part of the network after the
layer re-run for each channel where the network allows it). -mode weights zeroes the
producing module's weights AND bias for the channel (and a following normalisation's
gamma and beta); -mode hook forces the layer's output to 0.

Measured over the stimulus table: the -target values (before, after, change; targets
as in db_rf: conv5:12, fc3:class=goldfish), an accuracy, and the root mean square
change of the output layer. Accuracy: top-1/top-5 ImageNet accuracy when the table's
'label' column holds ImageNet class indices (0-999); with -accuracy 16class the
16-category decision accuracy (Geirhos et al.: softmax probabilities averaged within
each of the 16 entry-level categories, airplane ... truck; the largest is the decision)
against the category named in the table's 'condition' column (a folder of 16 category
folders gives it). Written to DIR: ablate.csv (one row per ablation, with the effect
and rank given by -rank-by), per_category.csv (per 'label' category, or per category
name with 16class) and, for -ablate, per_image.csv (every stimulus and target).

-scheduler local:N (or tcp://host:port, slurm:CONFIG.yaml) runs the sweep on Dask, one
task per batch of -batch-size images: the network is sent to every worker once, each
worker decodes its batches' images (the files must be readable there) and sends back
per-image summaries; the table is byte-identical to the run in one process. A sweep's
forward passes use -threads torch threads, here and on every worker (some products
round differently with another number of threads): for the cores of one machine use
-scheduler local:N.

example: db_ablate -net alexnet -sweep conv5 -target fc3:class=goldfish -stim imgs.stim.csv -out alexnet_conv5_sweep
"""
from ._common import (add_device_args, add_force_arg, add_model_args, add_option, add_out_arg,
                      add_scheduler_arg, add_stim_arg, cli_main, dnn_from_args, make_parser,
                      open_scheduler, parse_device)
from ..utils.validation import positive_int


def get_parser():
    p = make_parser("db_ablate", __doc__)
    add_model_args(p)
    g = p.add_argument_group("ablation")
    add_option(g, "ablate", nargs="+", metavar="SPEC",
               help="channels or units silenced together, e.g. conv5:12,40 conv4:3@5,6")
    add_option(g, "sweep", metavar="LAYER", help="silence each channel of LAYER in turn")
    add_option(g, "mode", default="weights", choices=["weights", "hook"],
               help="'weights': zero weights and bias (and gamma, beta of a following "
                    "normalisation); 'hook': force the layer's output to 0")
    g = p.add_argument_group("measurements")
    add_option(g, "target", nargs="+", default=[], metavar="T",
               help="downstream targets whose change is measured (LAYER:CHN[@STAT], "
                    "LAYER:CHN,ROW,COL, LAYER:class=NAME|INDEX)")
    add_option(g, "output-layer", metavar="L",
               help="layer giving the class scores (default: the one returning the "
                    "network's output)")
    add_option(g, "accuracy", default="auto", choices=["auto", "imagenet", "16class", "none"],
               help="imagenet: top-1/top-5 against the label column; 16class: 16-category "
                    "decisions against the condition column's names; auto: imagenet when "
                    "the labels are ImageNet indices and the output has 1000 classes")
    add_option(g, "rank-by", metavar="WHAT",
               help="effect ranking the ablations: top1, top5, acc16, output or a -target "
                    "(default: the first accuracy column, else output)")
    add_stim_arg(p)
    add_out_arg(p, help="output directory (ablate.csv, per_category.csv, per_image.csv)")
    add_device_args(p)
    g = add_scheduler_arg(p, what="sweep's batches of images (-sweep)")
    add_option(g, "threads", type=positive_int, default=1, metavar="N",
               help="torch CPU threads of a sweep's forward passes, here and on every "
                    "worker (the same N, the same table)")
    add_force_arg(p)
    return p


@cli_main(get_parser)
def main(args):
    from ..base.stimulus import Stimulus
    from ..errors import InputError
    from ..io import atomic_output_dir, check_output_dir
    from ..io.table import write_table
    from ..pipelines import ablation_effects
    from ..utils.engine import check_scheduler

    if bool(args.ablate) == bool(args.sweep):
        raise InputError("give either -ablate SPEC... (one ablation) or -sweep LAYER.")
    if args.scheduler is not None and not args.sweep:
        raise InputError(f"-scheduler {args.scheduler}: runs the batches of a -sweep; one "
                         "-ablate runs in this process (drop -scheduler).")
    check_scheduler(args.scheduler)                      # the spelling, before any work
    device = parse_device(args)
    out = check_output_dir(args.out, force=args.force)    # refuse before any work
    stim = Stimulus.load(args.stim)
    stim.check_files()
    dnn = dnn_from_args(args)
    with open_scheduler(args) as engine:
        result = ablation_effects(dnn, stim, ablate_specs=args.ablate, sweep=args.sweep,
                                  mode=args.mode, targets=args.target,
                                  output_layer=args.output_layer, accuracy=args.accuracy,
                                  rank_by=args.rank_by, batch_size=args.batch_size,
                                  device=device, workers=args.workers,
                                  show_progress=not args.quiet, engine=engine,
                                  threads=args.threads)
    with atomic_output_dir(out, force=args.force) as tmp:     # the folder as a whole
        write_table(tmp / "ablate.csv", result.table, force=True)
        if result.per_category:
            write_table(tmp / "per_category.csv", result.per_category, force=True)
        if result.per_image:
            write_table(tmp / "per_image.csv", result.per_image, force=True)
    t = result.table
    best = sorted(range(len(t["rank"])), key=t["rank"].__getitem__)[:5]
    print(f"wrote {out}/ablate.csv ({len(t['rank'])} ablations, {t['n_images'][0]} images); "
          f"largest effect ({result.rank_by}): "
          + ", ".join(f"{t['ablate'][i]} {t['effect'][i]:.4g}" for i in best))
