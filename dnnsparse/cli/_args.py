"""Option groups that several commands share, and turning their values into objects.

- ROIs (``-roi/-bmask/-lut/-map/-merge/-select/-resample-atlas``): db_roi, db_rsa,
  db_map, db_psi, db_encode, db_decode -- :func:`add_roi_args`, :func:`rois_from_args`,
  :func:`build_rois`.
- RSA (``-metric/-method/-n-perm/-seed/-cate``): db_rsa, db_map -- :func:`add_rsa_args`,
  :func:`add_plot_arg`.
- Cross-validation (``-cv/-groups/-n-perm/-seed/-n-jobs``): db_encode, db_decode --
  :func:`add_cv_args`, :func:`parse_cv`.

Only argument handling lives here; what reads data files and computes is in
:mod:`dnnsparse.pipelines`. Commands import this module and ``_common``, never each
other.
"""
import numpy as np

from ..errors import InputError
from ._common import add_option

__all__ = ["METHODS", "add_cv_args", "add_plot_arg", "add_roi_args", "add_rsa_args",
           "build_rois", "parse_cv", "rois_from_args"]

#: RDM comparisons of -method.
METHODS = ("pearson", "spearman", "kendall_tau_a", "kendall_tau_b", "cosine")


# -- ROIs ----------------------------------------------------------------------------
def add_roi_args(parser, *, title="ROIs (one of -roi / -bmask)"):
    """-roi/-bmask/-lut/-map/-merge/-select/-resample-atlas (shared); returns the group.

    With -resample-atlas the ROISet resamples itself onto any other volume grid it is
    moved to (:meth:`~dnnsparse.base.roi.ROISet.to_space`), so commands need no change.
    """
    g = parser.add_argument_group(title)
    add_option(g, "roi", metavar="ATLAS",
               help="label image: .nii/.nii.gz/.mgz, .dlabel.nii or .label.gii")
    add_option(g, "bmask", nargs="+", metavar="MASK",
               help="binary mask files, one ROI each (non-zero = inside)")
    add_option(g, "lut", metavar="TABLE",
               help="CSV/TSV with columns 'label' and 'name' naming the atlas labels")
    add_option(g, "map", type=int, default=1, metavar="N",
               help="map (1-based) of a multi-map atlas")
    add_option(g, "merge", action="append", default=[], metavar="NEW=A+B",
               help="add ROI NEW as the union of ROIs A, B, ... (names or labels); "
                    "repeatable")
    add_option(g, "select", nargs="+", metavar="ROI",
               help="ROIs to keep, by name or label, in this order; all when not given")
    add_option(g, "resample-atlas", action="store_true",
               help="resample a volume atlas/masks onto the data's grid (nearest "
                    "neighbour, nilearn) when the grids differ")
    return g


def _read_lut(path):
    """-lut: the table naming the atlas labels, as {label: name}."""
    from ..io.table import read_table

    table = read_table(path)
    if "label" not in table or "name" not in table:
        raise InputError(f"{path}: a label table needs columns 'label' and 'name'; "
                         f"it has {sorted(table)}.")
    try:
        return {int(k): str(v) for k, v in zip(table["label"], table["name"])}
    except ValueError:
        raise InputError(f"{path}: column 'label' must hold integers.") from None


def _parse_merge(spec):
    name, sep, members = spec.partition("=")
    keys = [k for k in members.replace(",", "+").split("+") if k]
    if not sep or not name or not keys:
        raise InputError(f"-merge {spec!r}: expected NEW=A+B+C (ROI names or labels).")
    return name, keys


def rois_from_args(args, *, required=True):
    """The ROISet of -roi/-bmask/-lut/-map/-merge/-select (:func:`add_roi_args`).

    Shared with db_rsa, db_map and db_psi (through :func:`build_rois`), db_encode
    and db_decode.

    Parameters
    ----------
    args : argparse.Namespace
    required : bool, default=True
        False: without -roi and -bmask return None (-lut, -merge and -select are then
        refused).

    Returns
    -------
    ROISet or None
    """
    from ..base.roi import ROISet

    if not required and not (args.roi or args.bmask):
        if args.lut or args.merge or args.select or getattr(args, "resample_atlas", False):
            raise InputError("-lut, -merge, -select and -resample-atlas need ROIs: give "
                             "-roi ATLAS or -bmask.")
        return None
    if bool(args.roi) == bool(args.bmask):
        raise InputError("give either -roi ATLAS or -bmask MASK [MASK ...].")
    if args.map < 1:
        raise InputError(f"-map {args.map}: maps are numbered from 1.")
    if args.roi:
        names = _read_lut(args.lut) if args.lut else None
        rois = ROISet.from_atlas(args.roi, names=names, map_index=args.map - 1)
    else:
        if args.lut:
            raise InputError("-lut names atlas labels; it cannot be used with -bmask.")
        rois = ROISet.from_masks(args.bmask)
    if getattr(args, "resample_atlas", False):     # to_space then resamples (volumes)
        rois = ROISet(rois.names, rois.members, rois.space, labels=rois.labels,
                      resample=True)
    for spec in args.merge:
        rois = rois.merge(*_parse_merge(spec))
    if args.select:
        rois = rois.select(args.select)
    return rois


def build_rois(args, space=None):
    """ROISet from the ROI options, or one ROI 'all' over ``space`` when none is given."""
    from ..base.roi import ROISet

    rois = rois_from_args(args, required=False)
    return ROISet(["all"], [np.arange(space.n_features)], space) if rois is None else rois


# -- RSA -----------------------------------------------------------------------------
def add_rsa_args(parser, *, methods=METHODS):
    """-metric, -method (one of ``methods``), -n-perm, -seed, -cate."""
    from ..algo.rsa import GRAM_METRICS

    g = parser.add_argument_group("RSA")
    add_option(g, "metric", default="correlation", metavar="M",
               help=f"RDM distance: {', '.join(sorted(GRAM_METRICS))} (one matrix "
                    "product) or any scipy pdist metric")
    add_option(g, "method", default="pearson", choices=methods,
               help="RDM comparison" + (" (cka: centred kernel alignment of the "
                                        "patterns instead of RDMs)" if "cka" in methods
                                        else ""))
    add_option(g, "n-perm", type=int, default=0, metavar="N",
               help="stimulus-label permutations for p (0: no test)")
    add_option(g, "seed", type=int, default=0, metavar="N",
               help="seed of permutations and bootstrap")
    add_option(g, "cate", action="store_true",
               help="average the stimuli of each -stim label (RDM rows: sorted labels)")
    return g


def add_plot_arg(parser):
    add_option(parser, "no-plot", action="store_true", help="write no figures")


# -- cross-validation ----------------------------------------------------------------
def parse_cv(text, option="-cv"):
    """``-cv`` / ``-inner-cv``: a number of folds (>= 2) or ``loo``.

    >>> parse_cv("10"), parse_cv("loo")
    (10, 'loo')
    """
    if text == "loo":
        return text
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 2:
        raise InputError(f"{option} {text}: give a number of folds (at least 2) or 'loo'.")
    return value


def add_cv_args(g):
    """-cv, -groups, -n-perm, -seed, -n-jobs (shared with db_decode)."""
    add_option(g, "cv", default="5", metavar="K",
               help="outer folds (shuffled k-fold; grouped with -groups) or 'loo'")
    add_option(g, "groups", metavar="COL",
               help="-stim column (e.g. run): no group is split between training and "
                    "test, permutations stay within groups")
    add_option(g, "n-perm", type=int, default=0, metavar="N",
               help="permutations for p-values (0: none)")
    add_option(g, "seed", type=int, default=0, metavar="N",
               help="seed of fold shuffling and permutations")
    add_option(g, "n-jobs", type=int, default=1, metavar="N",
               help="parallel threads (db_encode: over -iteraxis channels/positions; "
                    "db_decode: over layers/ROIs)")
