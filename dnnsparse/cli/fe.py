"""Reduce the features of .act.h5 layers (DNNBrain's dnn_fe): components, clusters,
histograms and power spectra.

Methods (-method):
  pca            principal components, fitted chunk by chunk (IncrementalPCA), so a
                 layer larger than memory works; exact PCA when it fits one -chunk
  ica            FastICA, seeded (-seed)
  nmf            non-negative matrix factorisation of non-negative layers (*_relu)
  kmeans, agglomerative
                 cluster labels of units (-of units) or stimuli (-of stim): a table;
                 kmeans also saves its centres (-save-transform, default
                 OUT.transform.npz): -transform then assigns the stimuli of another
                 file (or, -of units, the units of a file of the same stimuli)
  hist           histogram of each channel's map, per stimulus (-n bins)
  psd            power spectrum of each channel's flattened map, per stimulus (first
                 -n frequencies; default all)

pca, ica and nmf write a new .act.h5 whose channels are the components (-axis layer:
one vector per stimulus, shape (n, 1, 1); -axis chn: the channels reduced at every
position, maps kept) and save the fitted transform as plain arrays (-save-transform,
default OUT.transform.npz); -transform projects another stimulus set with it. hist and
psd keep the channels and put bins or frequencies in the rows: (n_chn, n, 1).

example: db_fe -act alexnet.act.h5 -layer fc1_relu -method pca -n 50 -out pca.act.h5
    then: db_fe -act other.act.h5 -transform pca.transform.npz -out projected.act.h5
"""
from ..errors import InputError
from ..utils.validation import finite_float
from ._common import add_force_arg, add_option, add_out_arg, cli_main, make_parser

METHODS = ("pca", "ica", "nmf", "kmeans", "agglomerative", "hist", "psd")


def get_parser():
    p = make_parser("db_fe", __doc__)
    add_option(p, "act", required=True, metavar="FILE", help="input .act.h5")
    p.add_argument("-method", "--method", "-meth", dest="method", type=str.lower,
                   choices=METHODS, help="what to compute (or -transform)")
    add_option(p, "transform", metavar="NPZ",
               help="project -act with a transform saved by an earlier pca/ica/nmf run "
                    "(kmeans: assign to its clusters, -out a table)")
    add_option(p, "layer", nargs="+", metavar="L", help="layers (default: all)")
    add_option(p, "n", type=int, metavar="N",
               help="components, clusters, histogram bins or frequencies")
    add_out_arg(p, help="output .act.h5 (a .csv/.tsv table for kmeans/agglomerative)")
    g = p.add_argument_group("pca, ica, nmf (and kmeans: -save-transform, -seed)")
    add_option(g, "axis", default="layer", choices=["layer", "chn"],
               help="a sample is a stimulus (layer) or a stimulus at one position (chn)")
    add_option(g, "save-transform", metavar="NPZ",
               help="where the fitted transform goes (default: OUT.transform.npz)")
    add_option(g, "chunk", type=int, metavar="N",
               help="stimuli read at a time (pca, hist, psd; default: about 256 MiB)")
    add_option(g, "whiten", action="store_true", help="pca: unit-variance scores")
    add_option(g, "variance", metavar="TABLE", help="pca: explained variance table")
    add_option(g, "figure", metavar="IMAGE", help="pca: explained variance figure")
    add_option(g, "seed", type=int, default=0, metavar="N", help="ica, nmf, kmeans seed")
    add_option(g, "max-iter", type=int, default=200, metavar="N", help="ica, nmf iterations")
    add_option(g, "tol", type=finite_float, default=1e-4, metavar="X", help="ica, nmf tolerance")
    add_option(g, "init", default="nndsvda",
               choices=["nndsvda", "nndsvd", "nndsvdar", "random"], help="nmf start")
    add_option(g, "solver", default="cd", choices=["cd", "mu"], help="nmf solver")
    add_option(g, "beta-loss", default="frobenius",
               choices=["frobenius", "kullback-leibler", "itakura-saito"],
               help="nmf loss (not frobenius: -solver mu)")
    g = p.add_argument_group("kmeans, agglomerative")
    add_option(g, "of", default="units", choices=["units", "stim"], help="what is clustered")
    add_option(g, "linkage", default="ward", choices=["ward", "complete", "average", "single"],
               help="agglomerative linkage")
    add_option(g, "n-init", type=int, default=10, metavar="N", help="kmeans restarts")
    add_option(g, "standardize", action="store_true",
               help="z-score each unit's (or stimulus') profile first")
    g = p.add_argument_group("hist")
    add_option(g, "range", dest="bin_range", default="channel", choices=["channel", "map"],
               help="bin range: per channel over all stimuli, or per map (DNNBrain)")
    add_force_arg(p)
    return p


@cli_main(get_parser)
def main(args):
    from .. import pipelines

    show = not args.quiet
    if bool(args.method) == bool(args.transform):
        raise InputError("give either -method or -transform (to project with a saved one).")
    if args.transform:
        res = pipelines.project_features(args.act, args.transform, args.out, chunk=args.chunk,
                                         force=args.force, progress=show)
        if res.table is not None:                   # a clustering: stimuli or units assigned
            print(f"wrote {res.out}: {len(res.table['cluster'])} rows")
            return
    elif args.method in ("hist", "psd"):
        res = pipelines.channel_features(args.act, args.out, method=args.method, n=args.n,
                                         layers=args.layer, bin_range=args.bin_range,
                                         chunk=args.chunk, force=args.force, progress=show)
    elif args.n is None:
        what = "clusters" if args.method in ("kmeans", "agglomerative") else "components"
        raise InputError(f"give the number of {what} (-n).")
    elif args.method in ("kmeans", "agglomerative"):
        res = pipelines.cluster_features(args.act, args.out, n_clusters=args.n,
                                         method=args.method, of=args.of, layers=args.layer,
                                         seed=args.seed, linkage=args.linkage,
                                         n_init=args.n_init, standardize=args.standardize,
                                         transform_out=args.save_transform, force=args.force)
        print(f"wrote {res.out}: {len(res.table['cluster'])} rows"
              + (f"; centres {res.transform}" if res.transform else ""))
        return
    else:
        res = pipelines.reduce_features(
            args.act, args.out, method=args.method, n_components=args.n, layers=args.layer,
            axis=args.axis, transform_out=args.save_transform, variance_out=args.variance,
            figure_out=args.figure, chunk=args.chunk, whiten=args.whiten, seed=args.seed,
            max_iter=args.max_iter, tol=args.tol, init=args.init, solver=args.solver,
            beta_loss=args.beta_loss, force=args.force, progress=show)
    print(f"wrote {res.out}: " + ", ".join(f"{l} {s}" for l, s in res.shapes.items())
          + (f"; transform {res.transform}" if res.transform and not args.transform else ""))
