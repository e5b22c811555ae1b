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
from ._common import add_force_arg, add_option, cli_main, make_parser
from .roi import add_roi_args, rois_from_args

log = logging.getLogger(__name__)

METHODS = ("pearson", "spearman", "kendall_tau_a", "kendall_tau_b", "cosine")


# -- options shared with db_map ---------------------------------------------------
def add_rsa_args(parser):
    """-metric, -method, -n-perm, -seed."""
    from ..algo.rsa import GRAM_METRICS

    g = parser.add_argument_group("RSA")
    add_option(g, "metric", default="correlation", metavar="M",
               help=f"RDM distance: {', '.join(sorted(GRAM_METRICS))} (one matrix "
                    "product) or any scipy pdist metric")
    add_option(g, "method", default="pearson", choices=METHODS,
               help="RDM comparison")
    add_option(g, "n-perm", type=int, default=0, metavar="N",
               help="stimulus-label permutations for p (0: no test)")
    add_option(g, "seed", type=int, default=0, metavar="N",
               help="seed of permutations and bootstrap")
    add_option(g, "cate", action="store_true",
               help="average the stimuli of each -stim label (RDM rows: sorted labels)")
    return g


def add_plot_arg(parser):
    add_option(parser, "no-plot", action="store_true", help="write no figures")


def build_rois(args, space=None):
    """ROISet from the ROI options, or one ROI 'all' over ``space`` when none is given."""
    from ..base.roi import ROISet

    rois = rois_from_args(args, required=False)
    return ROISet(["all"], [np.arange(space.n_features)], space) if rois is None else rois


# -- lining up stimuli, categories, layers and brain samples ----------------------
class Items:
    """What the RDMs' rows are (stimuli or categories) and how inputs line up.

    Parameters
    ----------
    stim : Stimulus or None
    stim_path : str or None
    act : Activation or None
    act_path : str or None
    cate : bool
        -cate: rows are categories (sorted labels of -stim).
    """

    def __init__(self, stim, stim_path, act, act_path, *, cate):
        self.labels = stim.labels if stim is not None else None
        per_cat_act = act is not None and act.category_labels is not None
        self.by_category = bool(cate or per_cat_act)
        if cate and self.labels is None and not per_cat_act:
            raise InputError("-cate averages stimuli by label; give -stim with a 'label' "
                             "column." if stim is None else
                             f"-cate: {stim_path} has no 'label' column.")
        self.categories = np.unique(self.labels) if self.labels is not None else None
        if per_cat_act:
            cats = np.asarray(act.category_labels)
            if self.categories is not None and not np.array_equal(
                    self.categories.astype(str), cats.astype(str)):
                raise InputError(f"{act_path} holds {len(cats)} categories "
                                 f"{_show(cats)} but the labels of {stim_path} are "
                                 f"{_show(self.categories)}; use the stimulus table the "
                                 "activation was made from.")
            self.categories = cats
        self.n_stim = len(stim) if stim is not None else (
            act.n_stim if act is not None and not per_cat_act else None)
        self.reference = str(stim_path if stim is not None else act_path)
        self.act_group = None
        if act is not None:
            self.act_group = self.group(act.n_stim, act_path) if not per_cat_act else None
        if self.by_category:
            self.names = self.categories
        elif stim is not None:
            self.names = stim.ids
        else:
            self.names = act.stim_ids if act is not None else None

    @property
    def n_categories(self):
        return None if self.categories is None else len(self.categories)

    def group(self, n_rows, source):
        """Labels averaging an input's rows into the items, or None (see row_grouping)."""
        from ..pipelines import row_grouping

        try:
            return row_grouping(n_rows, labels=self.labels if self.by_category else None,
                                n_stim=self.n_stim, n_categories=self.n_categories,
                                by_category=self.by_category, source=str(source),
                                reference=self.reference)
        except InputError as exc:
            if not self.by_category and n_rows == self.n_categories:
                raise InputError(f"{exc} It has one sample per category: add -cate.") \
                    from None
            raise

    def anchor(self, n_rows, source):
        """Without -stim or -act, the first brain file fixes the number of items."""
        if self.n_stim is None and self.n_categories is None:
            self.n_stim, self.reference = n_rows, str(source)


def _show(values, n=6):
    values = [str(v) for v in values]
    return "[" + ", ".join(values[:n]) + (", ..." if len(values) > n else "") + "]"


def load_inputs(args, *, need_stim=False):
    """Stimulus table and activation of ``args`` (either may be None)."""
    from ..base.activation import Activation
    from ..base.stimulus import Stimulus

    if need_stim and not args.stim:
        raise InputError("give -stim (the stimulus table).")
    stim = Stimulus.load(args.stim) if args.stim else None
    act = Activation.load(args.act) if args.act else None
    if act is not None and args.layer:
        for layer in args.layer:
            act.shape(layer)                   # UnknownLayerError names the file's layers
    return stim, act


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
    add_option(g, "ci", type=float, default=0.95, metavar="C", help="bootstrap CI level")
    add_option(p, "out", required=True, metavar="DIR", help="output directory")
    add_plot_arg(p)
    add_force_arg(p)
    return p


def _subject_rdms(args, items):
    """Per subject: ({roi: rdm}, BrainData path)."""
    from ..pipelines import brain_rdms
    from ..base.brain import BrainData

    rois, subjects = None, []
    for path in args.nif:
        brain = BrainData.load(path)
        items.anchor(brain.n_samples, path)
        group = items.group(brain.n_samples, path)
        if rois is None:
            rois = build_rois(args, brain.space)
        subjects.append(brain_rdms(brain, rois, metric=args.metric, labels=group,
                                   show_progress=not args.quiet))
    return subjects


@cli_main(get_parser)
def main(args):
    from ..pipelines import dnn_rdms, mean_rdms, rsa_table
    from ..base.rdm import RDM, save_rdms
    from ..io import prepare_output_dir
    from ..io.table import write_table

    if not args.act and not args.nif:
        raise InputError("give -act (DNN), -nif (brain) or both.")
    if args.iteraxis and not args.act:
        raise InputError("-iteraxis splits layers; give -act too.")
    if args.act is None and args.layer:
        raise InputError("-layer selects layers of -act; give -act too.")
    if (args.roi or args.bmask) and not args.nif:
        raise InputError("-roi/-bmask select brain data; give -nif too.")
    stim, act = load_inputs(args)
    items = Items(stim, args.stim, act, args.act, cate=args.cate)
    out = prepare_output_dir(args.out, force=args.force)    # refuse early, before compute
    # Everything is computed before anything is written: a mistake found late
    # (a subject with other samples) leaves no partial results.
    dnn = subjects = brain = table = None
    if act is not None:
        dnn = dnn_rdms(act, args.layer or act.layers, iter_axis=args.iteraxis,
                       metric=args.metric, labels=items.act_group,
                       show_progress=not args.quiet)
    if args.nif:
        subjects = _subject_rdms(args, items)
        brain = mean_rdms(subjects)
    if dnn is not None and brain is not None:
        table = rsa_table(dnn, brain, method=args.method, n_perm=args.n_perm,
                          n_boot=args.n_boot, ci=args.ci, seed=args.seed,
                          subjects=subjects if len(subjects) > 1 else None,
                          iter_axis=args.iteraxis, show_progress=not args.quiet)

    names = None if items.names is None else np.asarray(items.names)
    written = []

    def save(name, rdms, rdm_type):
        save_rdms(out / name, {k: RDM(v, labels=names, metric=args.metric)
                               for k, v in rdms.items()}, rdm_type=rdm_type, force=True)
        written.append(name)

    if dnn is not None:
        save("dnn.rdm.h5", dnn, "dRDM")
    if brain is not None:
        save("brain.rdm.h5", brain, "bRDM")
        if len(subjects) > 1:
            for k, (path, rdms) in enumerate(zip(args.nif, subjects), start=1):
                log.info("brain_subject%d.rdm.h5: %s", k, path)
                save(f"brain_subject{k}.rdm.h5", rdms, "bRDM")
    if table is not None:
        write_table(out / "similarity.csv", table, force=True)
        written.append("similarity.csv")
        if not args.no_plot:
            _heatmap(out / "similarity.png", table, list(dnn), list(brain), args)
            written.append("similarity.png")
    print(f"wrote {', '.join(written)} to {out}")
    return 0


def _heatmap(path, table, layers, rois, args):
    from ..viz import plot_similarity_table

    what = f"{args.method} of RDMs ({args.metric})"
    if args.iteraxis:
        what = f"mean over {args.iteraxis}s: {what}"
    plot_similarity_table(path, table, layers=layers, rois=rois, cbar_label=what,
                          force=True)
