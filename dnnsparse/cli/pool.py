"""Pool every channel's spatial map of an existing .act.h5 file (DNNBrain's dnn_pool).

Methods: mean, max, median, and the element-wise norms l1 (sum of |x|) and
l2 (square root of the sum of x^2) over each channel's rows and columns.

example: db_pool -act alexnet.act.h5 -method max -out alexnet_max.act.h5
"""
from ._common import add_force_arg, add_option, add_out_arg, cli_main, make_parser


def get_parser():
    p = make_parser("db_pool", __doc__)
    add_option(p, "act", required=True, metavar="FILE", help="input .act.h5")
    p.add_argument("-method", "--method", "-meth", dest="method", required=True, type=str.lower,
                   choices=["mean", "max", "median", "l1", "l2"], help="pooling method")
    add_option(p, "layer", nargs="+", metavar="L", help="layers to pool (default: all)")
    add_out_arg(p, help="output .act.h5")
    add_force_arg(p)
    return p


@cli_main(get_parser)
def main(args):
    from ..base.activation import Activation
    from ..io import check_output_path

    check_output_path(args.out, force=args.force)
    with Activation.load(args.act) as act:
        out = act.pool(args.method, layers=args.layer)
        out.save(args.out, force=args.force)
    print(f"wrote {args.out}: " + ", ".join(f"{l} {out.shape(l)[1:]}" for l in out.layers))
