"""Select channels, rows and columns of an existing .act.h5 file (DNNBrain's dnn_mask).

Layers not listed in the mask are dropped; indices are 1-based as in the
.dmask.csv and checked against each layer's shape.

example: db_mask -act alexnet.act.h5 -dmask conv5.dmask.csv -out conv5_sel.act.h5
"""
from ..errors import InputError
from ._common import add_force_arg, add_option, add_out_arg, cli_main, make_parser


def get_parser():
    p = make_parser("db_mask", __doc__)
    add_option(p, "act", required=True, metavar="FILE", help="input .act.h5")
    add_option(p, "dmask", metavar="FILE", help=".dmask.csv")
    add_option(p, "layer", nargs="+", metavar="L", help="layers to keep (with -chn)")
    add_option(p, "chn", nargs="+", type=int, metavar="N", help="1-based channels for -layer")
    add_out_arg(p, help="output .act.h5")
    add_force_arg(p)
    return p


@cli_main(get_parser)
def main(args):
    from ..base.activation import Activation
    from ..base.mask import Mask
    from ..io import check_output_path

    if bool(args.dmask) == bool(args.layer):
        raise InputError("give either -dmask or -layer (with optional -chn).")
    check_output_path(args.out, force=args.force)
    mask = Mask.load(args.dmask) if args.dmask else Mask.from_args(args.layer, chn=args.chn)
    with Activation.load(args.act) as act:
        out = act.mask(mask)
        out.save(args.out, force=args.force)
    print(f"wrote {args.out}: " + ", ".join(f"{l} {out.shape(l)[1:]}" for l in out.layers))
