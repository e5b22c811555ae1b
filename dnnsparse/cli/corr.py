"""IN-SAMPLE correlation map (DNNBrain's db_corr): for every voxel/vertex, ROI or
behavioural column of -resp, the largest Pearson r over the units of each layer of
-act and which unit gives it.

NOT CROSS-VALIDATED: the best unit is chosen and its r computed on the same
stimuli, so the r are biased upward -- more so for layers with more units, and
even pure noise gets a clearly positive max r. The maps describe which unit fits
best; they are no evidence of encoding (db_encode gives cross-validated scores and
permutation p). Every output is labelled: file names *_insample*, the insample
column, map names, and a warning in the log.

-act is an activation file (-layer, default all; -chn or -dmask select units;
also a .roi.h5 file or brain data, as db_encode's -act). -resp is brain data
(NIfTI/MGH, CIFTI dscalar/dtseries, GIFTI; -roi ATLAS / -bmask MASK keep the
voxels inside ROIs), a .roi.h5 file (per ROI) or a CSV/TSV table (numeric columns,
or -meas COL...), one row per stimulus of -act in order. -abs ranks units by |r|
(the r written keeps its sign). Constant targets are skipped (NaN).

Outputs in -out DIR:
  corr_insample.tsv   layer, target columns (voxel, i, j, k / grayordinate,
                      structure / vertex; roi / target), r, best_unit, best_chn,
                      [best_row, best_col: unpooled layers], n_units, insample
  LAYER/r_insample.EXT, best_unit_insample, best_chn_insample, [best_row_insample,
                      best_col_insample]: brain -resp, maps in the input's format
                      (EXT: the volume's suffix, .dscalar.nii or .func.gii);
                      unit indices are 1-based, 0 where not computed

example: db_corr -act alexnet.act.h5 -layer conv5_relu fc2_relu -resp beta.nii.gz -bmask vtc.nii.gz -out corr/
"""
from ..errors import InputError
from ._args import add_roi_args, rois_from_args
from ._common import add_force_arg, add_option, cli_main, make_parser, output_path


def get_parser():
    p = make_parser("db_corr", __doc__)
    g = p.add_argument_group("DNN")
    add_option(g, "act", required=True, metavar="FILE",
               help="activation file (.act.h5); also a .roi.h5 file or brain data")
    add_option(g, "layer", nargs="+", metavar="L", help="layers; default: all in the file")
    add_option(g, "chn", nargs="+", type=int, metavar="N",
               help="1-based channels kept in every -layer")
    add_option(g, "dmask", metavar="FILE", help=".dmask.csv: channels/rows/cols per layer")
    g = p.add_argument_group("responses")
    add_option(g, "resp", required=True, metavar="FILE",
               help="brain data, a .roi.h5 file or a CSV/TSV table, one row per stimulus")
    add_option(g, "meas", nargs="+", metavar="COL",
               help="table columns (or .roi.h5 ROIs) to correlate; default all numeric")
    add_roi_args(p, title="ROIs of brain -resp (-roi ATLAS or -bmask MASK; default all)")
    g = p.add_argument_group("correlation (in-sample)")
    add_option(g, "abs", action="store_true",
               help="rank units by |r| (default: the largest signed r, as DNNBrain)")
    add_option(g, "chunk", type=int, metavar="N",
               help="targets per matrix product (default: bounded to ~128 MB)")
    add_option(p, "out", type=output_path, required=True, metavar="DIR",
               help="output directory")
    add_force_arg(p)
    return p


def _layer_dir(out, layer):
    return out / str(layer).replace("/", "_")


@cli_main(get_parser)
def main(args):
    import logging

    import numpy as np

    from ..io import atomic_output_dir, check_output_dir
    from ..io.table import write_table
    from ..pipelines import (INSAMPLE_WARNING, correlation_table, layer_correlation,
                             load_feature_source, load_targets, write_correlation_maps)
    from ..utils.progress import progress

    if args.chunk is not None and args.chunk < 1:
        raise InputError(f"-chunk {args.chunk}: give at least 1 target per product.")
    out = check_output_dir(args.out, force=args.force)      # refuse before any work
    source = load_feature_source(args.act, layers=args.layer, chn=args.chn,
                                 dmask=args.dmask)
    responses = load_targets(args.resp, rois=rois_from_args(args, required=False),
                               columns=args.meas)
    if responses.n_samples != source.n_stim:
        raise InputError(f"{args.resp} has {responses.n_samples} samples but {args.act} has "
                         f"{source.n_stim} stimuli; they must match one to one.")
    responses.report_skipped()
    logging.getLogger("dnnsparse.cli.corr").warning("db_corr: %s", INSAMPLE_WARNING)

    results, n_maps = [], 0
    with atomic_output_dir(out, force=args.force) as tmp:     # the folder as a whole
        for layer in progress(source.layers, desc="layers", unit="layer",
                              enabled=not args.quiet):
            res = layer_correlation(source.layer_features(layer), responses,
                                    absolute=args.abs, chunk=args.chunk)
            if responses.brain is not None:
                n_maps += len(write_correlation_maps(_layer_dir(tmp, layer), res, responses,
                                                     force=True))
            results.append(res)
        source.close()
        write_table(tmp / "corr_insample.tsv", correlation_table(results, responses),
                    force=True)
    for res in results:
        ok = np.isfinite(res.r)
        line = (f"{res.layer}: in-sample max r over {res.n_units} unit(s): median "
                f"{np.median(res.r[ok]):.4f}, max {np.max(res.r[ok]):.4f} over "
                f"{int(ok.sum())} target(s)" if ok.any() else
                f"{res.layer}: no target could be correlated")
        print(line)
    print(f"wrote {out}: corr_insample.tsv{f', {n_maps} map(s)' if n_maps else ''} "
          "(IN-SAMPLE, not cross-validated)")
