"""Summarise brain data within ROIs, or list the ROIs of an atlas (DNNBrain's brain_roi).

ROIs come from a label image (-roi: NIfTI/MGH label volume, CIFTI .dlabel.nii or
GIFTI .label.gii; names from its label table, else the integer labels, or from
-lut) or from binary masks (-bmask, one ROI per file, named after the file).
Brain data (-nif) may be NIfTI-1/2 (3-D: one sample, 4-D: one per volume), MGH,
CIFTI dscalar/dtseries or GIFTI; atlas and data must share their grid, or, for
volumes, -resample-atlas resamples the atlas/masks onto the data's grid (nearest
neighbour, nilearn's resample_to_img). A time series can be cleaned as nilearn's
NiftiLabelsMasker does (nilearn.signal.clean): -detrend, -high-pass (Hz; TR from
the header or -t-r), -confounds TABLE (fMRIPrep confounds TSV, -confound-cols
to pick columns; n/a in the first row as nilearn's load_confounds fills it) and
-standardize zscore|psc, in that order.
The output .roi.h5 has DNNBrain's layout (attribute 'roi', dataset 'data'
of shape (n_samples, n_roi)); -csv also writes the signals as a table (columns
sample, stimID with -stim, then one per ROI). Both outputs are checked before any
work and put in place together.

example: db_roi -nif beta.dscalar.nii -roi MMP.dlabel.nii -merge VTC=L_V8_ROI+L_FFC_ROI+L_PIT_ROI+L_VVC_ROI+L_VMV1_ROI -select VTC L_V1_ROI -out vtc.roi.h5
example: db_roi -nif bold.nii.gz -roi aparc_1mm.nii.gz -resample-atlas -detrend -standardize zscore -confounds confounds.tsv -confound-cols trans_x,trans_y,trans_z -out bold.roi.h5
example: db_roi -roi MMP.dlabel.nii -list
"""
import logging
import os
import sys

from ..errors import InputError
from ..utils.validation import finite_float
from ._args import add_roi_args, rois_from_args
from ._common import (add_force_arg, add_option, check_writable, cli_main, make_parser,
                      output_path)

log = logging.getLogger(__name__)


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
    add_option(g, "out", type=output_path, metavar="PATH", help="output .roi.h5")
    add_option(g, "csv", type=output_path, metavar="PATH",
               help="also write the signals as a CSV/TSV table")
    add_option(g, "stim", metavar="FILE",
               help="stimulus table with one row per sample: its stimIDs label the -csv rows")
    g = p.add_argument_group("cleaning the signals (nilearn.signal.clean, as its maskers)")
    add_option(g, "standardize", choices=("zscore", "psc"),
               help="zscore: mean 0, sample SD 1; psc: percent signal change")
    add_option(g, "detrend", action="store_true", help="remove a linear trend")
    add_option(g, "confounds", metavar="TABLE",
               help="confounds TSV/CSV (e.g. fMRIPrep's), one row per sample, regressed out")
    add_option(g, "confound-cols", metavar="A,B,C",
               help="columns of -confounds to use (default: all)")
    add_option(g, "high-pass", type=finite_float, metavar="HZ", help="high-pass cut-off (Hz)")
    add_option(g, "t-r", type=finite_float, metavar="S",
               help="seconds between volumes for -high-pass (default: from the header)")
    add_force_arg(p)
    return p


@cli_main(get_parser)
def main(args):
    import contextlib

    from ..base.brain import BrainData
    from ..base.stimulus import Stimulus
    from ..pipelines import extract_roi_signals
    from ..io import atomic_output, check_output_path
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
    if args.stim and not args.csv:
        raise InputError("-stim labels the rows of the -csv table; give -csv too.")
    outputs = [args.out] + ([args.csv] if args.csv else [])
    if len({os.path.abspath(o) for o in outputs}) < len(outputs):
        raise InputError("-out and -csv name the same file; give two names.")
    for path in outputs:                 # every output is checked before any work
        check_output_path(path, force=args.force)
        check_writable(path)
    if args.csv and not str(args.csv).lower().endswith((".csv", ".tsv")):
        raise InputError(f"-csv {args.csv}: the table name must end in .csv or .tsv.")
    cols = None
    if args.confound_cols is not None:
        cols = [c.strip() for c in args.confound_cols.split(",") if c.strip()]
        if not args.confounds or not cols:
            raise InputError(f"-confound-cols {args.confound_cols!r}: give column names "
                             "(a,b,c) of a -confounds table.")
    if args.t_r is not None and args.high_pass is None:
        raise InputError("-t-r is the sampling interval of -high-pass; give -high-pass too.")
    if args.confounds:
        from ..io import check_input_file
        check_input_file(args.confounds, what="confounds table")
    rois = rois_from_args(args)
    brain = BrainData.load(args.nif)
    stim = Stimulus.load(args.stim) if args.stim else None
    if stim is not None:
        brain.check_n_samples(len(stim), what=args.stim)
    signals = extract_roi_signals(brain, rois, stat=args.method,
                                  standardize=args.standardize, detrend=args.detrend,
                                  confounds=args.confounds, confound_cols=cols,
                                  high_pass=args.high_pass, t_r=args.t_r)
    cleaning = {k: str(v) for k, v in (("standardize", args.standardize),
                                      ("detrend", args.detrend or None),
                                      ("confounds", args.confounds),
                                      ("confound_cols", args.confound_cols),
                                      ("high_pass", args.high_pass)) if v is not None}
    source = args.roi or " ".join(args.bmask)
    # Both files are put in place together, at the end: a failure writing either
    # leaves neither.
    with contextlib.ExitStack() as stack:
        tmp = [stack.enter_context(atomic_output(o, force=args.force)) for o in outputs]
        write_roi_file(tmp[0], rois.names, signals, force=True,
                       attrs={"stat": args.method, "nif": str(args.nif), "rois": source,
                              **cleaning})
        if args.csv:
            columns = {"sample": list(range(1, brain.n_samples + 1))}
            if stim is not None:
                columns["stimID"] = list(stim.ids)
            columns.update({name: signals[:, j] for j, name in enumerate(rois.names)})
            write_table(tmp[1], columns, force=True)
    print(f"wrote {args.out}{f' and {args.csv}' if args.csv else ''}: {len(rois)} ROI(s) x "
          f"{brain.n_samples} sample(s), {args.method}", file=sys.stdout)
    return 0
