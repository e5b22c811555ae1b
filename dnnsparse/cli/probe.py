"""Per-category decoding accuracy of the stimulus label from one layer's activations.

The sparse-coding paper's behavioural measure: a logistic regression reads the
category out of a layer (the paper: FC2) with k-fold cross-validation (the paper:
2 folds); the accuracy of each category is the fraction of its stimuli predicted
correctly (confusion-matrix diagonal over its row). All units of the layer are
features (flattened; spatial pooling, if wanted, is done at extraction with db_act
-pool). Features are standardised inside each training fold. The table (label,
category, n, accuracy) feeds db_psi -accuracy.

example: db_probe -act alexnet.act.h5 -stim imgs.stim.csv -layer fc2_relu -cv 2 -out acc.csv
"""
from ..errors import InputError
from ._common import (add_force_arg, add_label_col_arg, add_option, add_out_arg, add_stim_arg,
                      cli_main, make_parser)

CLASSIFIERS = ("logistic", "svm")


def get_parser():
    p = make_parser("db_probe", __doc__)
    add_option(p, "act", required=True, metavar="FILE", help="activation file (.act.h5), "
               "one row per stimulus")
    add_stim_arg(p)
    add_label_col_arg(p)
    add_option(p, "layer", required=True, metavar="L", help="layer to decode from")
    g = p.add_argument_group("decoding")
    add_option(g, "model", default="logistic", choices=CLASSIFIERS,
               help="logistic regression (the paper) or a linear SVM")
    add_option(g, "cv", type=int, default=2, metavar="K", help="stratified folds")
    add_option(g, "seed", type=int, default=0, metavar="N", help="seed of the fold shuffle")
    add_out_arg(p, help="output table (.csv or .tsv)")
    add_force_arg(p)
    return p


@cli_main(get_parser)
def main(args):
    from ..pipelines import align_stimuli, category_names, probe_accuracy
    from ..base.activation import Activation
    from ..base.stimulus import Stimulus
    from ..io import check_output_path
    from ..io.table import write_table

    check_output_path(args.out, force=args.force)
    stim = Stimulus.load(args.stim).with_label_column(args.label_col)
    with Activation.load(args.act) as act:
        if act.category_labels is not None:
            raise InputError(f"{args.act} holds per-category means (-aggregate label); "
                             "decoding needs one row per stimulus: extract without "
                             "-aggregate.")
        stim = align_stimuli(stim, act, stim_path=args.stim, act_path=args.act)
        X = act.to_matrix(args.layer)
    table, res = probe_accuracy(X, stim.labels,
                                names=category_names(stim.labels, stim.columns.get("condition")),
                                model=args.model, cv=args.cv, seed=args.seed)
    write_table(args.out, table, force=args.force)
    print(f"{args.layer}: {args.model}, {args.cv}-fold CV, {len(stim)} stimuli in "
          f"{len(res.classes)} categories: accuracy {res.accuracy:.4f}, balanced accuracy "
          f"{res.balanced_accuracy:.4f} (chance {1 / len(res.classes):.4f})")
    print(f"wrote {args.out}")
