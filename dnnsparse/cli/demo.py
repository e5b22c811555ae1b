"""Run the sparse-coding paper's whole analysis on embedded data, offline, and print PSI.

No data and no network connection are needed. Photographs shipped with
scikit-image and scikit-learn (astronaut, cat, coffee, rocket, ...; simple Pillow
shapes when scikit-image is missing) are each one category; -n-per-category seeded
random views of each (crop, flip, colour jitter) are the exemplars. EfficientNet-
Lite0 with its bundled ImageNet weights and the same network with its weights
permuted within every layer (the paper's weight lesion, or another -lesion; -seed
seeds it and the views) are run on them; AlexNet (intact and lesioned) is added
when its ImageNet weights are in the torch cache. For every ReLU layer the channel
means per category are extracted (db_act -pool mean -aggregate label) and their PSI
measured (db_psi); -topk adds the network with Top-K sparsification at those layers.

Prints, per layer, the median PSI [IQR] over categories of every network variant,
and each variant's Kendall trend along the layers. Writes to -out DIR:
  stimuli/, stimuli.stim.csv       the generated images and their table
  <net>[_lesion|_topk].act.h5      per-category activations
  <net>[_lesion|_topk]/            db_psi tables and figures
  <net>_medians.png                median PSI along the layers, variants compared

example: db_demo -out demo/
"""
from ._common import (add_force_arg, add_lesion_args, add_option, cli_main, make_parser,
                      output_path, parse_layer_fractions)


def get_parser():
    from ..pipelines import PHOTOGRAPHS
    from ..algo.sparseness import UNIT_MODES

    p = make_parser("db_demo", __doc__)
    add_option(p, "out", type=output_path, required=True, metavar="DIR", help="output directory")
    g = p.add_argument_group("stimuli")
    add_option(g, "n-per-category", type=int, default=12, metavar="N",
               help="random views of every photograph")
    add_option(g, "image-size", type=int, default=224, metavar="PX",
               help="width and height of the views (and of the network input)")
    add_option(g, "categories", nargs="+", metavar="NAME",
               help="photographs to use (default all): " + ", ".join(PHOTOGRAPHS))
    g = p.add_argument_group("networks")
    add_option(g, "net", default="efficientnet_lite0", metavar="NAME",
               help="main network (its ImageNet weights must be available offline)")
    add_option(g, "extra-net", nargs="*", default=["alexnet"], metavar="NAME",
               help="networks added when their ImageNet weights are cached; give no name to "
                    "add none")
    add_option(g, "unit", default="channel", choices=sorted(UNIT_MODES),
               help=UNIT_MODES.describe() + " (position: large files; Top-K, being "
                    "spatial, shows there)")
    add_lesion_args(p, seed_help="seed of the random views and of the lesion")
    p.set_defaults(lesion="weights")        # the demo always compares with a lesion
    g = p.add_argument_group("compute")
    add_option(g, "batch-size", type=int, default=32, metavar="N", help="images per forward pass")
    add_option(g, "workers", type=int, default=0, metavar="N",
               help="image-decoding worker processes (0: in the main process)")
    add_force_arg(p)
    return p


@cli_main(get_parser)
def main(args):
    from ..pipelines import format_demo, run_demo

    topk = parse_layer_fractions(args.topk) if args.topk else None
    demo = run_demo(args.out, net=args.net, extra_nets=args.extra_net,
                    n_per_category=args.n_per_category, seed=args.seed,
                    categories=args.categories,
                    image_size=args.image_size, lesion_kind=args.lesion, topk=topk,
                    topk_mode=args.topk_mode,
                    unit=args.unit, batch_size=args.batch_size, workers=args.workers,
                    force=args.force, show_progress=not args.quiet)
    print(format_demo(demo))
