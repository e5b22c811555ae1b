"""Searchlight RSA: where in the brain each DNN layer's RDM is matched.

Around every voxel (vertex) of the brain data (-nif), the RDM of the patterns of its
neighbourhood is compared with each layer's RDM (-act; -metric, -method as db_rsa):
spheres of -radius mm in a volume (the affine's voxel sizes; voxels inside -mask,
default the voxels whose samples are not all equal), discs of -radius mm on a surface
(-surf GIFTI mesh; for CIFTI data the grayordinates of one -structure) with
-distance euclidean (straight line) or geodesic (along the mesh, Dijkstra). Centres
whose neighbourhood holds fewer than -min-voxels features get NaN. Brain samples are
per stimulus (rows of -stim / the activation file) or, with -cate, per category.

Outputs in -out DIR:
  score.*          one map per layer of the RDM-comparison score, in the input's
                   format (volume: its suffix, one volume per layer; CIFTI:
                   .dscalar.nii; GIFTI: .func.gii); NaN outside the centres
  n_features.*     voxels / vertices in each searchlight
  searchlight.csv  layer, n_centres, n_scored, mean_score, max_score, peak

-scheduler local:N (or tcp://host:port, slurm:CONFIG.yaml) computes the chunks of
-chunk-size centres as Dask tasks (the patterns and layer RDMs are sent to every worker
once); the maps are byte-identical to the run in one process.

example: db_searchlight -act alexnet.act.h5 -nif beta.nii.gz -mask brain.nii.gz -radius 6 -method spearman -out sl/
"""
from ..errors import InputError
from ..utils.validation import finite_float
from ._args import METHODS
from ._common import (add_force_arg, add_option, add_scheduler_arg, cli_main, make_parser,
                      open_scheduler, output_path)


def get_parser():
    p = make_parser("db_searchlight", __doc__)
    g = p.add_argument_group("inputs")
    add_option(g, "act", required=True, metavar="FILE",
               help=".act.h5 activation file, per stimulus or per category (db_act)")
    add_option(g, "layer", nargs="+", metavar="L", help="layers; default: all in the file")
    add_option(g, "stim", metavar="FILE",
               help="stimulus table (rows of the brain data; its 'label' column for -cate)")
    add_option(g, "nif", required=True, metavar="FILE",
               help="brain data (NIfTI/MGH, CIFTI dscalar/dtseries, GIFTI), one sample "
                    "per stimulus or per category (sorted labels)")
    add_option(g, "cate", action="store_true",
               help="average the stimuli of each -stim label (RDM rows: sorted labels)")
    g = p.add_argument_group("searchlight")
    add_option(g, "radius", type=finite_float, required=True, metavar="MM",
               help="sphere / disc radius in mm (a feature at exactly MM is inside)")
    add_option(g, "mask", metavar="FILE",
               help="mask in the data's space (non-zero = inside): centres and members")
    add_option(g, "surf", metavar="FILE",
               help="surface mesh (.surf.gii) of GIFTI or CIFTI data")
    add_option(g, "structure", metavar="NAME",
               help="CIFTI surface structure, e.g. CORTEX_LEFT (default: the mesh's "
                    "AnatomicalStructurePrimary, or the file's only surface)")
    add_option(g, "distance", default="euclidean", choices=("euclidean", "geodesic"),
               help="distance along a surface")
    add_option(g, "min-voxels", type=int, default=2, metavar="N",
               help="fewest features a searchlight needs (fewer: NaN)")
    g = p.add_argument_group("RSA")
    add_option(g, "metric", default="correlation",
               choices=("correlation", "cosine", "euclidean", "sqeuclidean"),
               help="RDM distance (layers and searchlights)")
    add_option(g, "method", default="pearson", choices=METHODS, help="RDM comparison")
    g = p.add_argument_group("computation")
    add_option(g, "chunk-size", type=int, metavar="N",
               help="centres per chunk (default: ~16 MiB of patterns per chunk)")
    add_option(g, "n-jobs", type=int, default=1, metavar="N",
               help="chunks computed in parallel threads")
    add_option(p, "out", type=output_path, required=True, metavar="DIR",
               help="output directory")
    add_scheduler_arg(p, what="chunks of centres")
    add_force_arg(p)
    return p


def _check_options(args):
    if not args.radius > 0:
        raise InputError(f"-radius {args.radius:g}: give a radius in mm above 0.")
    if args.min_voxels < 1:
        raise InputError(f"-min-voxels {args.min_voxels}: give 1 or more.")
    if args.chunk_size is not None and args.chunk_size < 1:
        raise InputError(f"-chunk-size {args.chunk_size}: give 1 or more centres.")
    if args.n_jobs < 1:
        raise InputError(f"-n-jobs {args.n_jobs}: give 1 or more threads.")
    if args.structure and not args.surf:
        raise InputError("-structure picks a CIFTI surface: give its mesh with -surf.")
    from ..utils.engine import check_scheduler

    kind, _ = check_scheduler(args.scheduler)             # the spelling, before any work
    if kind not in (None, "joblib") and args.n_jobs != 1:
        raise InputError(f"-n-jobs {args.n_jobs} is for threads in this process; with "
                         f"-scheduler {args.scheduler} the workers compute the chunks "
                         "(drop -n-jobs).")


@cli_main(get_parser)
def main(args):
    from ..io import atomic_output_dir, check_input_file, check_output_dir
    from ..pipelines import (Items, brain_searchlight, dnn_rdms, load_rsa_inputs,
                             load_searchlight_brain, searchlight_maps,
                             write_searchlight_outputs)

    _check_options(args)
    out = check_output_dir(args.out, force=args.force)      # refuse before any work
    for path, what in ((args.nif, "brain data"), (args.mask, "mask"),
                       (args.surf, "surface file")):
        if path:
            check_input_file(path, what=what)
    stim, act = load_rsa_inputs(args.stim, args.act, layers=args.layer)
    items = Items(stim, args.stim, act, args.act, cate=args.cate)
    brain = load_searchlight_brain(args.nif, mask=args.mask)
    if brain.kind == "volume" and args.distance != "euclidean":
        raise InputError("-distance geodesic is for surfaces; a volume searchlight is a "
                         "sphere in mm.")
    if brain.kind != "cifti" and args.structure:
        raise InputError(f"-structure names a CIFTI structure; {args.nif} is "
                         f"{brain.kind} data.")
    brain_group = items.group(brain.n_samples, args.nif)
    searchlight, brain = brain_searchlight(brain, args.radius, surface=args.surf,
                                           structure=args.structure, distance=args.distance)
    layers = args.layer or act.layers
    rdms = dnn_rdms(act, layers, metric=args.metric, labels=items.act_group,
                    show_progress=not args.quiet)
    with open_scheduler(args, n_jobs=args.n_jobs) as engine:
        result = searchlight_maps(brain, searchlight, rdms, labels=brain_group,
                                  metric=args.metric, method=args.method,
                                  min_features=args.min_voxels, chunk_size=args.chunk_size,
                                  n_jobs=args.n_jobs, show_progress=not args.quiet,
                                  engine=engine)
    with atomic_output_dir(out, force=args.force) as tmp:     # the folder as a whole
        written = write_searchlight_outputs(tmp, result)
    table = result.table()
    for layer, best, peak in zip(table["layer"], table["max_score"], table["peak"]):
        print(f"{layer}: max {result.method} {best:.3g} at {peak or '-'}")
    print(f"wrote {', '.join(written)} to {out}")
    return 0
