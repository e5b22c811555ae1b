"""Join the outputs of db_act -shard I/N into one .act.h5 file.

Give all N shards of one run, in any order. By default the merged file's layers are
HDF5 virtual datasets over the shards: nothing is copied and the merge takes a moment
whatever the size, but the shards must stay next to the merged file (they are named
by paths relative to it; move the folder as a whole), and the file needs HDF5 1.10 or
newer. -copy writes a standalone file instead (chunked, compressed, checksummed like
any db_act output). Per-category files (db_act -aggregate label) are always combined
into a new file: each category's mean is recomputed exactly from the shards' means
and per-category counts in float64, not averaged over shards.

Shards of different runs are refused: a different network, weights, layers, masks,
pooling, lesion/Top-K/ablation, aggregation or stimulus table (the files' provenance
attributes say so), a shard given twice or one missing.

example: db_merge alexnet.1-of-3.act.h5 alexnet.2-of-3.act.h5 alexnet.3-of-3.act.h5 -out alexnet.act.h5
"""
from ._common import add_force_arg, add_option, add_out_arg, cli_main, make_parser


def get_parser():
    p = make_parser("db_merge", __doc__)
    p.add_argument("shards", nargs="+", metavar="SHARD",
                   help=".act.h5 files written by db_act -shard I/N (all N, any order)")
    add_out_arg(p, help="merged .act.h5 file")
    add_option(p, "copy", action="store_true",
               help="write a standalone file instead of virtual datasets over the shards")
    add_option(p, "compression", default="lzf", choices=["lzf", "gzip", "none"],
               help="HDF5 compression of a copied file (gzip: readable by every HDF5 tool)")
    add_force_arg(p)
    return p


@cli_main(get_parser)
def main(args):
    from ..pipelines import merge_shards

    result = merge_shards(args.shards, args.out, copy=args.copy,
                          compression=args.compression, force=args.force,
                          show_progress=not args.quiet)
    if result.aggregated:
        how = ("per-category means combined from the shards' counts (always a copy: a "
               "virtual dataset cannot add them)")
    elif result.mode == "virtual":
        how = "virtual datasets over the shards; keep them next to it"
    else:
        how = "a standalone copy"
    what = "categories" if result.aggregated else "stimuli"
    print(f"wrote {result.path}: {result.n_rows} {what} from {result.n_shards} shards, {how}")
