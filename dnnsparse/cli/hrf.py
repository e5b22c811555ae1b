"""Convolve per-stimulus activations with the canonical SPM HRF (DNNBrain's db_hrf).

Every stimulus presentation in -stim (one row per row of -act, with 'onset' and
'duration' columns in seconds from the start of the first scan) becomes a
boxcar whose height is the stimulus' activation; boxcars are convolved with
SPM's double-gamma HRF on a grid of -tr/-oversampling seconds and read at each
scan's acquisition time (-frame-time start: j*TR, middle: (j+0.5)*TR). The output
.act.h5 has one row per scan (stimID = scan index 0..N-1), the same layers and
units, so db_encode can encode a run's time series (NIfTI 4-D, CIFTI dtseries)
against it. Layers are read one at a time; all units are convolved at once.
The number of scans is -n-scans, or the number of volumes of -resp. Without -stim,
the onsets and durations stored in -act are used: db_act stores them for the frames
of a movie (their timestamps, or the table's onset/duration) and for any table with
those columns. With -events (a BIDS *_events.tsv), each event's stimulus is named by
its -events-col column (default stim_file, else trial_type) and matched to the
stimIDs of -act, so a stimulus may be shown several times; rows whose stimulus is
n/a (responses, fixation) are left out. -bold takes TR and the number of scans
from the run itself: its JSON sidecar's RepetitionTime (BIDS), else the NIfTI
header (pixdim[4] in its time unit) or the CIFTI dtseries' series step. -run N keeps
the rows of -stim whose run column is N (a db_stim -events table of several runs).

example: db_hrf -act run1.act.h5 -stim run1.stim.csv -tr 2.0 -resp run1_bold.nii.gz -out run1_hrf.act.h5
example: db_hrf -act objects.act.h5 -events sub-01_task-x_run-1_events.tsv -bold sub-01_task-x_run-1_bold.nii.gz -out run1_hrf.act.h5
example: db_hrf -act movie.act.h5 -tr 2.0 -resp movie_bold.nii.gz -out movie_hrf.act.h5
"""
import logging

import numpy as np

from ..errors import InputError
from ..utils.validation import finite_float
from ._common import add_force_arg, add_option, add_out_arg, add_stim_arg, cli_main, make_parser

log = logging.getLogger(__name__)


def get_parser():
    from ..algo.hrf import FRAME_TIMES

    p = make_parser("db_hrf", __doc__)
    add_option(p, "act", required=True, metavar="FILE",
               help="activation file (.act.h5), one row per stimulus presentation")
    add_option(p, "layer", nargs="+", metavar="L", help="layers; default: all in the file")
    add_stim_arg(p, required=False)
    add_option(p, "events", metavar="TSV",
               help="BIDS events file (onset, duration, stim_file/trial_type) instead "
                    "of -stim")
    add_option(p, "events-col", metavar="COL",
               help="column of -events naming each event's stimulus (an -act stimID); "
                    "default: stim_file, else trial_type")
    add_option(p, "run", type=int, metavar="N",
               help="with -stim: only its rows whose 'run' column is N")
    g = p.add_argument_group("scans (-tr with -n-scans or -resp; or -bold)")
    add_option(g, "tr", type=finite_float, metavar="S",
               help="repetition time in seconds (default with -bold: from the run)")
    add_option(g, "n-scans", type=int, metavar="N", help="number of scans (volumes)")
    add_option(g, "resp", metavar="FILE",
               help="the run's BOLD data (NIfTI 4-D, CIFTI dtseries, GIFTI): take the "
                    "number of scans from it")
    add_option(g, "bold", metavar="RUN",
               help="the run's BOLD NIfTI or CIFTI dtseries: take the number of scans "
                    "and TR from its header or its JSON sidecar (RepetitionTime)")
    add_option(g, "frame-time", default="start", choices=sorted(FRAME_TIMES),
               help="time of each scan within its TR")
    add_option(g, "oversampling", type=int, default=16, metavar="N",
               help="fine-grid steps per TR (timing resolution TR/N)")
    add_out_arg(p, help="output .act.h5")
    add_force_arg(p)
    return p


@cli_main(get_parser)
def main(args):
    from ..pipelines import (convolve_activation, count_samples, events_timing,
                             stimulus_timing, stored_timing)
    from ..base.activation import Activation
    from ..base.stimulus import Stimulus
    from ..io import check_input_file, check_output_path
    from ..io.events import run_timing

    if sum(x is not None for x in (args.n_scans, args.resp, args.bold)) != 1:
        raise InputError("give the number of scans: -n-scans N, -resp BOLD_FILE or -bold "
                         "RUN (one of them).")
    if args.tr is None and args.bold is None:
        raise InputError("give the repetition time: -tr S, or -bold RUN to read it from "
                         "the run's header or JSON sidecar.")
    if args.stim is not None and args.events is not None:
        raise InputError("give the events' timing once: -stim TABLE or -events TSV.")
    if args.run is not None and args.stim is None:
        raise InputError("-run selects rows of a -stim table with a run column; give -stim.")
    if args.events_col is not None and args.events is None:
        raise InputError("-events-col names a column of -events; give -events TSV.")
    if not str(args.out).endswith(".act.h5"):
        raise InputError(f"-out {args.out}: the output name must end in .act.h5.")
    check_output_path(args.out, force=args.force)
    if (args.tr is not None and args.tr <= 0) or args.oversampling < 1:
        raise InputError("-tr must be > 0 seconds and -oversampling >= 1.")
    tr = args.tr
    if args.bold is not None:
        tr, n_scans, source = run_timing(args.bold, tr=args.tr)
        log.info("%s: TR %g s (%s), %d scans", args.bold, tr, source, n_scans)
    elif args.resp is not None:
        n_scans = count_samples(args.resp)
    else:
        n_scans = args.n_scans
    if n_scans < 1:
        raise InputError(f"-n-scans {n_scans}: give at least 1 scan.")
    stim = Stimulus.load(args.stim) if args.stim else None
    timing = stimulus_timing(stim, args.stim) if stim is not None else None
    if args.events is not None:
        check_input_file(args.events, what="events file")
    rows = None
    with Activation.load(args.act) as act:
        if args.events is not None:
            *timing, rows, _ = events_timing(args.events, act.stim_ids,
                                             column=args.events_col, where=str(args.act))
        elif stim is None:
            timing = stored_timing(act)
            if timing is None:
                raise InputError(f"{args.act} stores no onsets; give -stim with the table "
                                 f"(with onset and duration columns) it was made from, or "
                                 f"-events.")
        elif act.n_stim != len(stim):
            raise InputError(f"{args.act} has {act.n_stim} stimuli but {args.stim} has "
                             f"{len(stim)} rows; give the table the activation was made "
                             "from.")
        onsets, durations = timing
        if args.run is not None:
            rows = _run_rows(stim, args.stim, args.run)
            onsets, durations = onsets[rows], durations[rows]
        for layer in args.layer or ():
            act.shape(layer)                   # names the valid layers
        convolve_activation(act, onsets, durations, tr=tr, n_scans=n_scans,
                            out=args.out, layers=args.layer, rows=rows,
                            oversampling=args.oversampling, frame_time=args.frame_time,
                            force=args.force, progress=not args.quiet)
        layers = args.layer or act.layers
    last = float(np.max(onsets + durations, initial=0.0))
    if last > n_scans * tr:
        log.warning("the last event ends at %g s, after the %d scans of %g s; its later "
                    "part is not in the output.", last, n_scans, tr)
    print(f"wrote {args.out}: {n_scans} scans (TR {tr:g} s) x {len(layers)} layer(s) "
          f"convolved with the SPM HRF")


def _run_rows(stim, path, run):
    """Rows of ``stim`` whose ``run`` column is ``run``."""
    if "run" not in stim.columns:
        raise InputError(f"-run {run}: {path} has no run column (db_stim -events writes "
                         "one).")
    values = stim["run"]
    if values.dtype.kind not in "iu":
        raise InputError(f"-run {run}: the run column of {path} must hold integers.")
    rows = np.flatnonzero(values == run)
    if rows.size == 0:
        raise InputError(f"-run {run}: {path} has no row of run {run}; its runs are "
                         f"{', '.join(map(str, np.unique(values).tolist()))}.")
    return rows
