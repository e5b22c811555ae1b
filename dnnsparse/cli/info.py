"""Describe networks and activation files.

Without options: list the model zoo. With -net: the network's layers, module
paths and output shapes (a blank 224x224 image is passed through). With -act
(or the file name alone): an .act.h5 file's metadata and layers.

example: db_info -net alexnet
example: db_info alexnet.act.h5
"""
from ..errors import InputError
from ._common import add_option, cli_main, load_net, make_parser


def get_parser():
    p = make_parser("db_info", __doc__)
    p.add_argument("file", nargs="?", metavar="FILE",
                   help="an .act.h5 file to describe (same as -act FILE)")
    add_option(p, "net", metavar="NAME",
               help="zoo name or 'file.py:function' (runs that file's code: see db_act "
                    "--help)")
    add_option(p, "weights", default="random", metavar="W",
               help="weights to load (shapes do not depend on them)")
    add_option(p, "act", metavar="FILE", help="an .act.h5 file to describe")
    return p


def _print_table(rows, header):
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    for r in [header] + rows:
        print("  ".join(str(v).ljust(w) for v, w in zip(r, widths)).rstrip())


@cli_main(get_parser)
def main(args):
    import numpy as np
    if args.file:
        if args.act or args.net:
            raise InputError(f"give the file to describe once: {args.file} or -act/-net, "
                             f"not both.")
        args.act = args.file
    if args.act:
        from ..base.activation import Activation
        with Activation.load(args.act) as act:
            for k, v in act.attrs.items():
                print(f"{k}: {v}")
            print(f"stimuli: {act.n_stim}")
            _print_table([[l, act.shape(l)[1:], int(np.prod(act.shape(l)[1:]))]
                          for l in act.layers], ["layer", "shape (chn,row,col)", "units"])
        return
    from ..model import NETS
    if not args.net:
        _print_table([[n, s.note] for n, s in NETS.items()], ["network", "note"])
        return
    dnn = load_net(args.net, weights=args.weights)
    shapes = dnn.layer_shapes()
    print(f"{dnn.name}: input {dnn.input_size}, preprocess {dnn.preprocess}")
    _print_table([[l, dnn.layer_map[l], shapes[l], int(np.prod(shapes[l]))] for l in dnn.layers],
                 ["layer", "module", "shape (chn,row,col)", "units"])
