"""Representational similarity analysis of DNN layers and/or brain ROIs (DNNBrain's db_rsa).

RDMs of layers (-act, whole layer or per channel/position with -iteraxis) are
written to OUT/dnn.rdm.h5 (dRDM, one dataset per layer); RDMs of ROIs (-nif
with -roi ATLAS or -bmask MASK ..., the whole data when neither is given) to
OUT/brain.rdm.h5 (bRDM, one per ROI). With both, every layer is compared with
every ROI: OUT/similarity.csv (layer, roi, method, score, p, ci_low, ci_high,
n_items) and a heatmap OUT/similarity.png. p comes from a stimulus-label
permutation test (rows and columns of the brain RDM permuted together;
-n-perm), the CI from a bootstrap over stimuli (-n-boot).

Several subjects (-nif a.nii b.nii ...) are compared through their group-mean
RDM (brain.rdm.h5; each subject's RDMs in brain_subject<k>.rdm.h5); the table
then adds subject_mean (mean of the per-subject scores) and the leave-one-
subject-out noise ceiling (noise_lower, noise_upper), which bounds subject_mean.
-cate averages the stimuli of each label of -stim (rows: sorted labels); a
per-category .act.h5 (db_act -aggregate label) implies it. Brain samples must
match the stimuli (or the categories) one to one.

example: db_rsa -act alexnet.act.h5 -layer conv5_relu fc2_relu -stim imgs.stim.csv -nif beta.dscalar.nii -roi MMP.dlabel.nii -select L_FFC_ROI L_V1_ROI -n-perm 1000 -out rsa/
"""
import logging

import numpy as np

from ..errors import InputError
from ..utils.validation import finite_float
from ._args import add_plot_arg, add_roi_args, add_rsa_args, build_rois
from ._common import add_force_arg, add_option, cli_main, make_parser, output_path

log = logging.getLogger(__name__)

# -- db_rsa ------------------------------------------------------------------------
def get_parser():
    from ..algo.rsa import ITER_AXES

    p = make_parser("db_rsa", __doc__)
    g = p.add_argument_group("DNN")
    add_option(g, "act", metavar="FILE", help=".act.h5 activation file (db_act)")
    add_option(g, "layer", nargs="+", metavar="L", help="layers; default: all in the file")
    add_option(g, "iteraxis", choices=[a for a in ITER_AXES if a],
               help="one RDM per channel or per (row, col) position instead of the "
                    "whole layer")
    g = p.add_argument_group("brain")
    add_option(g, "nif", nargs="+", metavar="FILE",
               help="brain data (NIfTI/MGH, CIFTI, GIFTI), one file per subject")
    add_roi_args(p, title="ROIs (-roi or -bmask; default: all data as one ROI 'all')")
    add_option(p, "stim", metavar="FILE",
               help="stimulus table (needed for -cate; checks that inputs match it)")
    g = add_rsa_args(p)
    add_option(g, "n-boot", type=int, default=0, metavar="N",
               help="bootstrap samples over stimuli for the CI (0: none)")
    add_option(g, "ci", type=finite_float, default=0.95, metavar="C", help="bootstrap CI level")
    add_option(p, "out", type=output_path, required=True, metavar="DIR", help="output directory")
    add_plot_arg(p)
    add_force_arg(p)
    return p


@cli_main(get_parser)
def main(args):
    from ..pipelines import (Items, dnn_rdms, load_rsa_inputs, mean_rdms, rsa_table,
                             subject_rdms)
    from ..base.rdm import RDM, save_rdms
    from ..io import atomic_output_dir, check_output_dir
    from ..io.table import write_table

    if not args.act and not args.nif:
        raise InputError("give -act (DNN), -nif (brain) or both.")
    if args.iteraxis and not args.act:
        raise InputError("-iteraxis splits layers; give -act too.")
    if args.act is None and args.layer:
        raise InputError("-layer selects layers of -act; give -act too.")
    if (args.roi or args.bmask) and not args.nif:
        raise InputError("-roi/-bmask select brain data; give -nif too.")
    if args.n_perm < 0 or args.n_boot < 0 or not 0 < args.ci < 1:
        raise InputError("-n-perm and -n-boot must be >= 0 and -ci a level between 0 and 1 "
                         "(e.g. 0.95).")
    out = check_output_dir(args.out, force=args.force)      # refuse early, before compute
    stim, act = load_rsa_inputs(args.stim, args.act, layers=args.layer)
    items = Items(stim, args.stim, act, args.act, cate=args.cate)
    # Everything is computed before anything is written: a mistake found late
    # (a subject with other samples) leaves no partial results.
    dnn = subjects = brain = table = None
    if act is not None:
        dnn = dnn_rdms(act, args.layer or act.layers, iter_axis=args.iteraxis,
                       metric=args.metric, labels=items.act_group,
                       show_progress=not args.quiet)
    if args.nif:
        subjects = subject_rdms(args.nif, items, lambda space: build_rois(args, space),
                                metric=args.metric, show_progress=not args.quiet)
        brain = mean_rdms(subjects)
    if dnn is not None and brain is not None:
        table = rsa_table(dnn, brain, method=args.method, n_perm=args.n_perm,
                          n_boot=args.n_boot, ci=args.ci, seed=args.seed,
                          subjects=subjects if len(subjects) > 1 else None,
                          iter_axis=args.iteraxis, show_progress=not args.quiet)

    names = None if items.names is None else np.asarray(items.names)
    written = []

    def save(name, rdms, rdm_type):
        save_rdms(tmp / name, {k: RDM(v, labels=names, metric=args.metric)
                               for k, v in rdms.items()}, rdm_type=rdm_type, force=True)
        written.append(name)

    with atomic_output_dir(out, force=args.force) as tmp:     # the folder as a whole
        if dnn is not None:
            save("dnn.rdm.h5", dnn, "dRDM")
        if brain is not None:
            save("brain.rdm.h5", brain, "bRDM")
            if len(subjects) > 1:
                for k, (path, rdms) in enumerate(zip(args.nif, subjects), start=1):
                    log.info("brain_subject%d.rdm.h5: %s", k, path)
                    save(f"brain_subject{k}.rdm.h5", rdms, "bRDM")
        if table is not None:
            write_table(tmp / "similarity.csv", table, force=True)
            written.append("similarity.csv")
            if not args.no_plot:
                _heatmap(tmp / "similarity.png", table, list(dnn), list(brain), args)
                written.append("similarity.png")
    print(f"wrote {', '.join(written)} to {out}")
    return 0


def _heatmap(path, table, layers, rois, args):
    from ..algo.stats import fdr_bh
    from ..viz import plot_similarity_table

    what = f"{args.method} of RDMs ({args.metric})"
    if args.iteraxis:
        what = f"mean over {args.iteraxis}s: {what}"
    plot_similarity_table(path, table, layers=layers, rois=rois, cbar_label=what,
                          adjust=fdr_bh, force=True)
