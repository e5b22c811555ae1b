"""Summarise brain data within ROIs, or list the ROIs of an atlas (DNNBrain's brain_roi).

ROIs come from a label image (-roi: NIfTI/MGH label volume, CIFTI .dlabel.nii or
GIFTI .label.gii; names from its label table, else the integer labels, or from
-lut) or from binary masks (-bmask, one ROI per file, named after the file).
Brain data (-nif) may be NIfTI-1/2 (3-D: one sample, 4-D: one per volume), MGH,
CIFTI dscalar/dtseries or GIFTI; atlas and data must share their grid.
The output .roi.h5 has DNNBrain's layout (attribute 'roi', dataset 'data'
of shape (n_samples, n_roi)).

example: db_roi -nif beta.dscalar.nii -roi MMP.dlabel.nii -merge VTC=L_V8_ROI+L_FFC_ROI+L_PIT_ROI+L_VVC_ROI+L_VMV1_ROI -select VTC L_V1_ROI -out vtc.roi.h5
example: db_roi -roi MMP.dlabel.nii -list
"""
import logging
import sys

from ..errors import InputError
from ._common import add_force_arg, add_option, cli_main, make_parser

log = logging.getLogger(__name__)


def add_roi_args(parser, *, title="ROIs (one of -roi / -bmask)"):
    """-roi/-bmask/-lut/-map/-merge/-select (shared with db_rsa and db_map); returns the group."""
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
    return g


def get_parser():
    from ..base.roi import STATS

    p = make_parser("db_roi", __doc__)
    g = add_roi_args(p)
    add_option(g, "list", action="store_true",
               help="print label, name and size of every ROI and exit")
    g = p.add_argument_group("signals")
    add_option(g, "nif", metavar="FILE", help="brain data (samples x voxels/vertices)")
    add_option(g, "method", default="mean", choices=sorted(STATS),
               help="summary of each ROI's voxels/vertices per sample")
    add_option(g, "out", metavar="PATH", help="output .roi.h5")
    add_option(g, "csv", metavar="PATH", help="also write the signals as a CSV/TSV table")
    add_force_arg(p)
    return p


def _read_lut(path):
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

    Shared with db_rsa, db_map and db_psi (through ``cli.rsa.build_rois``), db_encode
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
        if args.lut or args.merge or args.select:
            raise InputError("-lut, -merge and -select need ROIs: give -roi ATLAS or -bmask.")
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
    for spec in args.merge:
        rois = rois.merge(*_parse_merge(spec))
    if args.select:
        rois = rois.select(args.select)
    return rois


@cli_main(get_parser)
def main(args):
    from ..base.brain import BrainData
    from ..base.roi import roi_signals
    from ..io import check_output_path
    from ..io.roi import write_roi_file
    from ..io.table import write_table

    if args.list:
        rois = rois_from_args(args)
        print("label\tname\tsize")
        for label, name, size in zip(rois.labels, rois.names, rois.sizes):
            print(f"{'' if label is None else label}\t{name}\t{size}")
        return 0
    if not args.nif or not args.out:
        raise InputError("give -nif (brain data) and -out (.roi.h5), or -list.")
    if not args.out.endswith(".roi.h5"):
        raise InputError(f"-out {args.out}: the output name must end in .roi.h5.")
    check_output_path(args.out, force=args.force)
    if args.csv:
        check_output_path(args.csv, force=args.force)
    rois = rois_from_args(args)
    brain = BrainData.load(args.nif)
    signals = roi_signals(brain, rois, stat=args.method)
    source = args.roi or " ".join(args.bmask)
    write_roi_file(args.out, rois.names, signals, force=args.force,
                   attrs={"stat": args.method, "nif": str(args.nif), "rois": source})
    if args.csv:
        columns = {"sample": list(range(1, brain.n_samples + 1))}
        columns.update({name: signals[:, j] for j, name in enumerate(rois.names)})
        write_table(args.csv, columns, force=args.force)
    print(f"wrote {args.out}: {len(rois)} ROI(s) x {brain.n_samples} sample(s), "
          f"{args.method}", file=sys.stdout)
    return 0
