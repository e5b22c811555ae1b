"""Representational similarity analysis of DNN layers and/or brain ROIs (DNNBrain's db_rsa).

RDMs of layers (-act, whole layer or per channel/position with -iteraxis) are
written to OUT/dnn.rdm.h5 (dRDM, one dataset per layer); RDMs of ROIs (-nif
with -roi ATLAS or -bmask MASK ..., the whole data when neither is given) to
OUT/brain.rdm.h5 (bRDM, one per ROI). With both, every layer is compared with
every ROI: OUT/similarity.csv (layer, roi, method, score, p, ci_low, ci_high,
n_items) and a heatmap OUT/similarity.png (* marks cells with FDR-adjusted
p < 0.05 across cells). p comes from a stimulus-label permutation test (rows
and columns of the brain RDM permuted together; -n-perm), the CI from a
bootstrap over stimuli (-n-boot). -zscore standardises the patterns before the
RDM: "pattern" (the default of a bare -zscore) z-scores each stimulus's pattern
across its features, as DNNBrain's brain_rsa -zscore (scipy zscore(X, axis=1),
before -cate averaging); "unit" z-scores each unit/voxel across stimuli. An audio
activation file (one row per 0.96 s example, ID#k) is averaged over each
stimulus's examples (RDM rows = rows of -stim, as the brain data); with -cate over
each category's examples.

Model RDMs (-model-rdm [NAME=]FILE|SIM ...): .rdm.h5, .npy or CSV/TSV (square, with
optional item names, or one row/column of the upper triangle), or simulated:
category:COL (0 within, 1 between values of a -stim column), linear, inverse,
random, noisy:linear:SD (DNNBrain's patterned/random/noisy RDMs, seeded by
-seed). They are compared with every ROI (OUT/model_roi.csv) and every layer
(OUT/model_layer.csv) by the same -method and tests, and saved in
OUT/model.rdm.h5. -act2 compares the layers with those of a second network
(OUT/similarity_act2.csv).

Several subjects (-nif a.nii b.nii ...) are compared through their group-mean
RDM (brain.rdm.h5; each subject's RDMs in brain_subject<k>.rdm.h5); the table
then adds subject_mean (mean of the per-subject scores) and the leave-one-
subject-out noise ceiling (noise_lower, noise_upper), which bounds subject_mean.
One subject with -groups RUNCOL (and -cate): the split-half ceiling over its runs,
columns split_half_r, noise_reliability = 2r/(1+r) (Spearman-Brown) and
noise_ceiling = sqrt(noise_reliability).
-cate averages the stimuli of each label of -stim (rows: sorted labels); a
per-category .act.h5 (db_act -aggregate label) implies it. Brain samples must
match the stimuli (or the categories) one to one.

-method cka compares the patterns themselves by centred kernel alignment
(-kernel linear|rbf, -sigma, -debiased): layers x ROIs (OUT/similarity.csv),
layers x the layers of -act2 (similarity_act2.csv) or, with -act alone, layers x
layers (similarity_layers.csv); p permutes the stimuli of the column side.

Figures (unless -no-plot): the heatmaps, and in OUT/figures/ every whole RDM as
an image and an MDS plot of its items (-sort-by COL orders and groups the items
by a -stim column).

example: db_rsa -act alexnet.act.h5 -layer conv5_relu fc2_relu -stim imgs.stim.csv -nif beta.dscalar.nii -roi MMP.dlabel.nii -select L_FFC_ROI L_V1_ROI -model-rdm animacy=category:animate -n-perm 1000 -out rsa/
"""
import logging

import numpy as np

from ..errors import InputError
from ..utils.validation import finite_float
from ._args import METHODS, add_plot_arg, add_roi_args, add_rsa_args, build_rois
from ._common import (add_force_arg, add_label_col_arg, add_linalg_device_args, add_option,
                      add_scheduler_arg, cli_main, make_parser, open_scheduler, output_path,
                      parse_linalg_device)

log = logging.getLogger(__name__)


# -- db_rsa ------------------------------------------------------------------------
def get_parser():
    from ..algo.rsa import ITER_AXES, KERNELS, ZSCORE_AXES

    p = make_parser("db_rsa", __doc__)
    g = p.add_argument_group("DNN")
    add_option(g, "act", metavar="FILE", help=".act.h5 activation file (db_act)")
    add_option(g, "layer", nargs="+", metavar="L", help="layers; default: all in the file")
    add_option(g, "iteraxis", choices=[a for a in ITER_AXES if a] + ["row_col"],
               help="one RDM per channel or per (row, col) position instead of the "
                    "whole layer (row_col: DNNBrain's name for position)")
    add_option(g, "act2", metavar="FILE",
               help="a second network's .act.h5 (same stimuli): its layers are compared "
                    "with those of -act")
    add_option(g, "layer2", nargs="+", metavar="L", help="layers of -act2; default: all")
    g = p.add_argument_group("brain")
    add_option(g, "nif", nargs="+", metavar="FILE",
               help="brain data (NIfTI/MGH, CIFTI, GIFTI), one file per subject")
    add_roi_args(p, title="ROIs (-roi or -bmask; default: all data as one ROI 'all')")
    add_option(p, "stim", metavar="FILE",
               help="stimulus table (needed for -cate; checks that inputs match it)")
    add_label_col_arg(p)
    g = add_rsa_args(p, methods=METHODS + ("cka",))
    add_option(g, "n-boot", type=int, default=0, metavar="N",
               help="bootstrap samples over stimuli for the CI (0: none)")
    add_option(g, "ci", type=finite_float, default=0.95, metavar="C", help="bootstrap CI level")
    add_option(g, "zscore", nargs="?", const="pattern", choices=list(ZSCORE_AXES),
               help="z-score patterns before the RDM: 'pattern' (bare -zscore; each "
                    "stimulus across features, DNNBrain's brain_rsa -zscore) or 'unit' "
                    "(each unit/voxel across stimuli)")
    add_option(g, "model-rdm", nargs="+", metavar="SPEC",
               help="model RDMs: [NAME=]FILE (.rdm.h5, .npy, CSV/TSV square or condensed) "
                    "or [NAME=]category:COL | linear | inverse | random | "
                    "noisy:linear|inverse:SD")
    add_option(g, "groups", metavar="COL",
               help="-stim column of runs: split-half noise ceiling of one subject "
                    "(needs -cate; every run holds every category)")
    g = p.add_argument_group("CKA (-method cka)")
    add_option(g, "kernel", choices=list(KERNELS), help="CKA kernel (default linear)")
    add_option(g, "sigma", type=finite_float, metavar="F",
               help="RBF width as a fraction of the median distance (default 1)")
    add_option(g, "debiased", action="store_true",
               help="debiased CKA (unbiased HSIC of Song et al. 2012)")
    g = p.add_argument_group("figures")
    add_option(g, "sort-by", metavar="COL",
               help="-stim column ordering and grouping the items of the RDM figures")
    add_option(p, "out", type=output_path, required=True, metavar="DIR", help="output directory")
    add_plot_arg(p)
    add_force_arg(p)
    add_scheduler_arg(p, what="layer x ROI pairs (permutations, bootstrap)")
    add_linalg_device_args(p, what="layer / ROI RDMs and permutation tests")
    return p


def _check_args(args):
    if args.iteraxis == "row_col":
        args.iteraxis = "position"
    if not args.act and not args.nif:
        raise InputError("give -act (DNN), -nif (brain) or both.")
    if args.iteraxis and not args.act:
        raise InputError("-iteraxis splits layers; give -act too.")
    if args.act is None and args.layer:
        raise InputError("-layer selects layers of -act; give -act too.")
    if args.act2 and not args.act:
        raise InputError("-act2 is a second network compared with -act; give -act too.")
    if args.layer2 and not args.act2:
        raise InputError("-layer2 selects layers of -act2; give -act2 too.")
    if (args.roi or args.bmask) and not args.nif:
        raise InputError("-roi/-bmask select brain data; give -nif too.")
    if args.n_perm < 0 or args.n_boot < 0 or not 0 < args.ci < 1:
        raise InputError("-n-perm and -n-boot must be >= 0 and -ci a level between 0 and 1 "
                         "(e.g. 0.95).")
    cka_options = [o for o, v in (("-kernel", args.kernel), ("-sigma", args.sigma),
                                  ("-debiased", args.debiased)) if v]
    if args.method == "cka":
        for option, value in (("-iteraxis", args.iteraxis), ("-n-boot", args.n_boot),
                              ("-model-rdm", args.model_rdm), ("-groups", args.groups)):
            if value:
                raise InputError(f"{option} is for RDMs; -method cka compares the patterns "
                                 "themselves (drop it, or use an RDM -method).")
        if not args.act:
            raise InputError("-method cka compares layers (with ROIs or another network); "
                             "give -act.")
        if args.nif and len(args.nif) > 1:
            raise InputError("-method cka takes one subject's -nif; run it per subject.")
        if args.sigma is not None and args.sigma <= 0:
            raise InputError(f"-sigma must be > 0; got {args.sigma}.")
        if args.sigma is not None and args.kernel != "rbf":
            raise InputError("-sigma is the RBF width; add -kernel rbf.")
    elif cka_options:
        raise InputError(f"{'/'.join(cka_options)}: CKA options; add -method cka.")
    if args.model_rdm and not (args.act or args.nif):
        raise InputError("-model-rdm compares models with layers or ROIs; give -act or -nif.")
    if args.groups:
        if not args.nif or len(args.nif) != 1:
            raise InputError("-groups gives the split-half ceiling of one subject; give "
                             "exactly one -nif file (several subjects get the "
                             "leave-one-out ceiling).")
        if not args.stim or not args.cate:
            raise InputError("-groups needs -stim and -cate: the categories ('label') are "
                             "the items that recur in every run.")
    if args.sort_by:
        if not args.stim:
            raise InputError("-sort-by names a column of -stim; give -stim.")
        if args.no_plot:
            raise InputError("-sort-by orders the RDM figures; drop -no-plot.")


@cli_main(get_parser)
def main(args):
    from ..pipelines import Items, load_rsa_inputs
    from ..io import atomic_output_dir, check_output_dir

    _check_args(args)
    args.device = parse_linalg_device(args)
    out = check_output_dir(args.out, force=args.force)      # refuse early, before compute
    stim, act = load_rsa_inputs(args.stim, args.act, layers=args.layer,
                                label_col=args.label_col)
    for column in (args.groups, args.sort_by):
        if column:
            stim[column]                       # InputError names the table's columns
    items = Items(stim, args.stim, act, args.act, cate=args.cate)
    act2 = items2 = None
    if args.act2:
        _, act2 = load_rsa_inputs(None, args.act2, layers=args.layer2)
        items2 = Items(stim, args.stim, act2, args.act2, cate=args.cate)
        if items2.by_category != items.by_category or items2.n_items != items.n_items:
            raise InputError(f"{args.act2} and {args.act} describe different items "
                             f"({items2.n_items} and {items.n_items} "
                             f"{'categories' if items.by_category else 'stimuli'}); give "
                             "activations of the same stimuli.")
    # Everything is computed before anything is written: a mistake found late
    # (a subject with other samples) leaves no partial results.
    if args.method == "cka":
        result = _cka(args, items, act, act2, items2)
    else:
        with open_scheduler(args) as engine:
            result = _rsa(args, items, stim, act, act2, items2, engine)

    written = []
    with atomic_output_dir(out, force=args.force) as tmp:     # the folder as a whole
        _write(tmp, result, items, stim, args, written)
    print(f"wrote {', '.join(written)} to {out}")
    return 0


def _rsa(args, items, stim, act, act2, items2, engine=None):
    from ..pipelines import (add_split_half_columns, dnn_rdms, mean_rdms, model_rdms,
                             model_tables, rsa_table, split_half_ceilings, subject_rdms)

    show = not args.quiet
    models = None
    if args.model_rdm and items.n_items is not None:      # bad specs refused before work
        models = model_rdms(args.model_rdm, items, stim, stim_path=args.stim,
                            seed=args.seed)
    dnn = dnn2 = subjects = brain = ceilings = None
    built = []
    on = dict(device=args.device, dtype=args.dtype)         # -device: RDMs and tests there

    def rois(space):
        built.append(build_rois(args, space))
        return built[-1]

    if act is not None:
        dnn = dnn_rdms(act, args.layer or act.layers, iter_axis=args.iteraxis,
                       metric=args.metric, labels=items.act_group, show_progress=show,
                       zscore=args.zscore, **on)
    if act2 is not None:
        dnn2 = {k: v[0] for k, v in dnn_rdms(act2, args.layer2 or act2.layers,
                                              metric=args.metric, labels=items2.act_group,
                                              show_progress=show,
                                              zscore=args.zscore, **on).items()}
    if args.nif:
        subjects = subject_rdms(args.nif, items, rois, metric=args.metric,
                                show_progress=show, zscore=args.zscore, **on)
        brain = mean_rdms(subjects)
    if args.groups:
        ceilings = split_half_ceilings(args.nif[0], stim, args.groups, built[0],
                                       stim_path=args.stim, metric=args.metric,
                                       method=args.method, zscore=args.zscore,
                                       seed=args.seed, show_progress=show)
    if args.model_rdm and models is None:
        models = model_rdms(args.model_rdm, items, stim, stim_path=args.stim,
                            seed=args.seed)
    kw = dict(method=args.method, n_perm=args.n_perm, n_boot=args.n_boot, ci=args.ci,
              seed=args.seed, show_progress=show)
    several = subjects is not None and len(subjects) > 1
    tables = {}
    if dnn is not None and brain is not None:
        table = rsa_table(dnn, brain, subjects=subjects if several else None,
                          iter_axis=args.iteraxis, engine=engine, **kw, **on)
        if ceilings:
            add_split_half_columns(table, ceilings)
        tables["similarity"] = (table, "layer", "roi", list(dnn), list(brain))
    if dnn2 is not None:
        table = rsa_table(dnn, dnn2, iter_axis=args.iteraxis, engine=engine, **kw, **on)
        table = {("layer2" if k == "roi" else k): v for k, v in table.items()}
        tables["similarity_act2"] = (table, "layer", "layer2", list(dnn), list(dnn2))
    if models:
        found = model_tables(models, dnn=dnn, brain=brain,
                             subjects=subjects if several else None, ceilings=ceilings,
                             iter_axis=args.iteraxis, **kw)
        if "model_roi" in found:
            tables["model_roi"] = (found["model_roi"], "model", "roi", list(models),
                                   list(brain))
        if "model_layer" in found:
            tables["model_layer"] = (found["model_layer"], "layer", "model", list(dnn),
                                     list(models))
    rdm_files = []
    if dnn is not None:
        rdm_files.append(("dnn.rdm.h5", dnn, "dRDM"))
    if dnn2 is not None:
        rdm_files.append(("dnn2.rdm.h5", dnn2, "dRDM"))
    if brain is not None:
        rdm_files.append(("brain.rdm.h5", brain, "bRDM"))
        if several:
            for k, (path, rdms) in enumerate(zip(args.nif, subjects), start=1):
                log.info("brain_subject%d.rdm.h5: %s", k, path)
                rdm_files.append((f"brain_subject{k}.rdm.h5", rdms, "bRDM"))
    if models:
        rdm_files.append(("model.rdm.h5", models, "mRDM"))
    figures = {kind: rdms for kind, rdms in (("layer", dnn), ("layer2", dnn2),
                                             ("roi", brain), ("model", models)) if rdms}
    what = f"{args.method} of RDMs ({args.metric})"
    if args.iteraxis:
        what = f"mean over {args.iteraxis}s: {what}"
    return {"rdm_files": rdm_files, "tables": tables, "figures": figures, "what": what}


def _cka(args, items, act, act2, items2):
    from ..algo.rsa import CKASpec
    from ..pipelines import cka_table, layer_grams, roi_grams

    show = not args.quiet
    spec = CKASpec(args.kernel or "linear", 1.0 if args.sigma is None else args.sigma,
                   args.debiased)
    layers = args.layer or act.layers
    grams = layer_grams(act, layers, spec, labels=items.act_group, zscore=args.zscore,
                        show_progress=show)
    kw = dict(n_perm=args.n_perm, seed=args.seed)
    tables = {}
    if args.nif:
        roi_g, _ = roi_grams(args.nif[0], items, lambda space: build_rois(args, space), spec,
                             zscore=args.zscore, show_progress=show)
        tables["similarity"] = (cka_table(grams, roi_g, spec, col_name="roi", **kw),
                                "layer", "roi", list(grams), list(roi_g))
    if act2 is not None:
        g2 = layer_grams(act2, args.layer2 or act2.layers, spec, labels=items2.act_group,
                         zscore=args.zscore, show_progress=show)
        tables["similarity_act2"] = (cka_table(grams, g2, spec, col_name="layer2", **kw),
                                     "layer", "layer2", list(grams), list(g2))
    if not tables:
        tables["similarity_layers"] = (cka_table(grams, grams, spec, col_name="layer2",
                                                 **kw), "layer", "layer2", list(grams),
                                       list(grams))
    return {"rdm_files": [], "tables": tables, "figures": {}, "what": spec.name}


def _write(tmp, result, items, stim, args, written):
    from ..base.rdm import RDM, save_rdms
    from ..io.table import write_table
    from ..pipelines import write_rdm_figures

    names = None if items.names is None else np.asarray(items.names)
    for name, rdms, rdm_type in result["rdm_files"]:
        save_rdms(tmp / name, {k: RDM(v, labels=names,
                                      metric=args.metric if rdm_type != "mRDM" else None)
                               for k, v in rdms.items()}, rdm_type=rdm_type, force=True)
        written.append(name)
    for name, (table, row, col, row_names, col_names) in result["tables"].items():
        write_table(tmp / f"{name}.csv", table, force=True)
        written.append(f"{name}.csv")
        if not args.no_plot:
            _heatmap(tmp / f"{name}.png", table, row, col, row_names, col_names,
                     result["what"])
            written.append(f"{name}.png")
    if result["figures"] and not args.no_plot:
        if write_rdm_figures(tmp / "figures", result["figures"], items, stim=stim,
                             sort_by=args.sort_by, stim_path=args.stim, seed=args.seed,
                             metric=args.metric):
            written.append("figures/")


_AXIS_NAMES = {"layer": "layer", "roi": "ROI", "model": "model RDM", "layer2": "layer (-act2)"}


def _heatmap(path, table, row, col, row_names, col_names, what):
    from ..algo.stats import fdr_bh
    from ..viz import plot_similarity_table

    plot_similarity_table(path, table, layers=row_names, rois=col_names, row=row, col=col,
                          cbar_label=what, adjust=fdr_bh, xlabel=_AXIS_NAMES[col],
                          ylabel=_AXIS_NAMES[row], force=True)
