"""Describe networks and every file the toolbox reads or writes.

Without options: list the model zoo. With -net: the network's layers, module
paths and output shapes (a blank 224x224 image is passed through). With a file
name (or -act FILE): .act.h5 (metadata and layers), .rdm.h5 (type, items, RDMs),
.roi.h5 (ROIs, samples, attributes), .stim.csv (type, path, columns),
.dmask.csv (layers and selected indices), brain images: NIfTI/MGH (grid, voxel
size, affine, volumes, TR), CIFTI (structures, grayordinates, maps, label
tables) and GIFTI (vertices, data arrays, label table).

example: db_info -net alexnet
example: db_info alexnet.act.h5
example: db_info sub-01_bold.nii.gz
"""
from ..errors import InputError
from ._common import add_option, cli_main, load_net, make_parser

_SHOWN = 12        # names listed before "..."


def get_parser():
    p = make_parser("db_info", __doc__)
    p.add_argument("file", nargs="?", metavar="FILE",
                   help="a file to describe: .act.h5, .rdm.h5, .roi.h5, .stim.csv, "
                        ".dmask.csv or a brain image (.nii[.gz], .mgz, .dscalar.nii, "
                        ".gii, ...)")
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


def _names(names):
    names = [str(n) for n in names]
    return ", ".join(names[:_SHOWN]) + (f", ... ({len(names)} in all)"
                                        if len(names) > _SHOWN else "")


def _print_pairs(pairs):
    width = max(len(k) for k, _ in pairs)
    for key, value in pairs:
        print(f"{(key + ':') if key else '':<{width + 1}} {value}".rstrip())


def _rdm_info(path):
    import numpy as np

    from ..io.rdm import n_items_from_pairs, read_rdm_file

    kind, rdms, meta = read_rdm_file(path)
    what = {"bRDM": "brain RDMs (one per ROI)", "dRDM": "DNN RDMs (one set per layer)",
            "mRDM": "model RDMs"}[kind]
    n_pairs = next(iter(rdms.values())).shape[-1] if rdms else 0
    pairs = [("type", f"{kind}: {what}"), ("RDMs", len(rdms)),
             ("items", n_items_from_pairs(n_pairs) if rdms else 0)]
    if meta["items"] is not None:
        pairs.append(("item labels", _names(np.atleast_1d(meta["items"]))))
    _print_pairs(pairs)
    _print_table([[name, "x".join(map(str, r.shape)), meta["metrics"].get(name, "")]
                  for name, r in rdms.items()], ["name", "shape", "metric"])


def _roi_info(path):
    from ..io import open_h5
    from ..io.roi import read_roi_file

    names, data = read_roi_file(path)
    with open_h5(path, what="ROI file") as f:
        attrs = {k: v for k, v in f.attrs.items() if k != "roi"}
    _print_pairs([("ROIs", len(names)), ("samples", data.shape[0]), ("names", _names(names))]
                 + [(k, v) for k, v in attrs.items()])


def _stim_info(path):
    from ..io.stim import read_stim

    rec = read_stim(path)
    cols = rec["columns"]
    n = len(cols["stimID"])
    pairs = [("type", rec["type"]), ("path", rec["path"]), ("stimuli", n)]
    pairs += [(k, v) for k, v in rec["header"].items()]
    _print_pairs(pairs)
    rows = []
    for name, values in cols.items():
        kinds = {"i": "int", "u": "int", "f": "float"}
        distinct = len(set(values.tolist()))
        rows.append([name, kinds.get(values.dtype.kind, "text"), distinct,
                     _names(values[:3].tolist()) + (", ..." if n > 3 else "")])
    _print_table(rows, ["column", "type", "distinct", "first values"])


def _dmask_info(path):
    from ..io.dmask import AXES, read_dmask

    spec = read_dmask(path)
    _print_pairs([("layers", len(spec))])

    def shown(idx):
        return "all" if idx is None else f"{len(idx)}: {_names(idx)}"
    _print_table([[layer] + [shown(entry[a]) for a in AXES] for layer, entry in spec.items()],
                 ["layer"] + [f"{a} (1-based)" for a in AXES])


def _brain_info(path):
    from ..io import check_input_file
    from ..io.brain.info import describe_brain

    _print_pairs(describe_brain(check_input_file(path, what="brain image")))


#: file suffix -> describer (longest suffix first; brain images through io.brain)
_DESCRIBE = {".rdm.h5": _rdm_info, ".roi.h5": _roi_info, ".stim.csv": _stim_info,
             ".dmask.csv": _dmask_info}


@cli_main(get_parser)
def main(args):
    import numpy as np
    if args.file:
        if args.act or args.net:
            raise InputError(f"give the file to describe once: {args.file} or -act/-net, "
                             f"not both.")
        name = args.file.lower()
        for suffix, describe in _DESCRIBE.items():
            if name.endswith(suffix):
                from ..io import check_input_file
                describe(check_input_file(args.file, what="file"))
                return
        from ..io.brain import BRAIN_SUFFIXES
        if name.endswith(BRAIN_SUFFIXES + (".gii",)):
            _brain_info(args.file)
            return
        if not name.endswith(".h5"):
            raise InputError(f"{args.file}: db_info describes .act.h5, .rdm.h5, .roi.h5, "
                             f".stim.csv, .dmask.csv and brain images "
                             f"({', '.join(BRAIN_SUFFIXES)}); rename the file or give "
                             f"-act FILE for an activation file.")
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
