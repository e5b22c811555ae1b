"""Build a stimulus table (.stim.csv) from a folder of stimuli or a plain CSV/TSV table.

With -folder, every sub-folder of DIR is one category: stimID is "sub/file.ext",
label numbers the categories 0..K-1 in sorted folder-name order and condition
holds the folder name (a folder without sub-folders gives no label column).
-type says what the files are: image (the default), video_clip (one movie clip
per row, for clip networks: .mp4 .m4v .mov .mkv .webm .avi .mpg .mpeg .ogv) or
audio (one sound per row, cut into 0.96 s examples by db_act: .wav .flac .ogg
.oga .mp3 .aif .aiff .au .caf). Every clip's packets are read with PyAV and every
sound decoded with soundfile first: an unreadable file is named, nothing written.
With -table, a CSV/TSV whose first line names the columns, one of them stimID
or path (image paths relative to the table's folder, or absolute), is converted.
With -video, a type=video table of one movie: a row per frame (stimID = frame
number, 1-based), or with -fps R the frame shown every 1/R seconds; onset is the
frame's real timestamp in the stream (pts x time base, so variable frame rates keep
their times) and duration the time to the next row (the last: to the movie's end).
With -events, the stimulus events of one or more BIDS *_events.tsv files, file after
file: stimID is each event's -events-col value (default stim_file, else trial_type;
rows where it is n/a are left out), with onset and duration (seconds within the
run), run (from the file name's run- entity) and the files' other shared columns;
-root is the folder the stim_file paths are relative to (BIDS: the dataset's
stimuli/ folder).
The path= line is written relative to the output's folder when the images lie
inside it, absolute otherwise.

example: db_stim -folder images/ -out objects.stim.csv
example: db_stim -folder clips/ -type video_clip -out actions.stim.csv
example: db_stim -video movie.mp4 -fps 2 -out movie.stim.csv
example: db_stim -events func/sub-01_task-x_run-1_events.tsv func/sub-01_task-x_run-2_events.tsv -root stimuli -out x.stim.csv
"""
import logging
from pathlib import Path

from ..base.stimulus import Stimulus
from ..errors import InputError, MissingFileError
from ..utils.validation import finite_float
from ._common import add_force_arg, add_option, add_out_arg, cli_main, make_parser

log = logging.getLogger(__name__)

#: -type values of -folder.
FOLDER_TYPES = ("image", "video_clip", "audio")


def get_parser():
    p = make_parser("db_stim", __doc__)
    source = p.add_mutually_exclusive_group(required=True)
    add_option(source, "folder", metavar="DIR",
               help="image folder; its sub-folders are the categories")
    add_option(source, "table", metavar="FILE",
               help="plain CSV/TSV with a stimID or path column")
    add_option(source, "video", metavar="MOVIE",
               help="a movie file (read with PyAV): a row per frame, or see -fps")
    add_option(source, "events", nargs="+", metavar="TSV",
               help="BIDS events files: a row per stimulus event")
    add_option(p, "events-col", metavar="COL",
               help="with -events: the column naming each event's stimulus; default: "
                    "stim_file, else trial_type")
    add_option(p, "root", metavar="DIR",
               help="with -events: folder the stimulus names are relative to (BIDS "
                    "stimuli/); default: the current folder")
    add_option(p, "type", choices=FOLDER_TYPES, metavar="TYPE",
               help="with -folder: what its files are, one of " + ", ".join(FOLDER_TYPES)
                    + " (default image)")
    add_option(p, "fps", type=finite_float, metavar="R",
               help="with -video: a row every 1/R seconds (the frame shown then)")
    add_out_arg(p, help="output stimulus table (.stim.csv)")
    add_force_arg(p)
    return p


@cli_main(get_parser)
def main(args):
    if args.fps is not None and args.video is None:
        raise InputError("-fps samples a movie; give it with -video MOVIE.")
    if args.fps is not None and args.fps <= 0:
        raise InputError(f"-fps {args.fps:g}: give a rate > 0 frames per second.")
    if args.type is not None and args.folder is None:
        raise InputError(f"-type {args.type} says what the files of a folder are; give it "
                         "with -folder DIR.")
    if args.events is None and (args.events_col is not None or args.root is not None):
        raise InputError("-events-col and -root describe events files; give -events TSV.")
    if args.events is not None:
        from ..io import check_input_file, check_output_path
        from ..io.events import events_table
        check_output_path(args.out, force=args.force)
        paths = [check_input_file(p, what="events file") for p in args.events]
        if args.root is not None and not Path(args.root).is_dir():
            raise MissingFileError(f"-root: stimulus folder not found: {args.root}.")
        ids, columns, column = events_table(paths, column=args.events_col)
        stim = Stimulus(ids, root=args.root, columns=columns)
        stim.save(args.out, force=args.force)
        print(f"{args.out}: {len(stim)} stimulus events ({len(set(ids.tolist()))} distinct "
              f"{column} values) from {len(paths)} events file(s)")
        return 0
    if args.video is not None:
        from ..io import check_output_path
        check_output_path(args.out, force=args.force)
        stim = Stimulus.from_video(args.video, fps=args.fps)
        stim.save(args.out, force=args.force)
        span = stim["onset"][-1] + stim["duration"][-1]
        print(f"{args.out}: {len(stim)} frames of {args.video} ({span:g} s)")
        return 0
    if args.folder is not None:
        from ..io import check_output_path
        check_output_path(args.out, force=args.force)
        stim = Stimulus.from_folder(args.folder, type=args.type or "image")
        _check_readable(stim)
    else:
        stim = Stimulus.load(args.table)
        try:
            stim.check_files()
        except MissingFileError as exc:     # the table may be built before the images
            log.warning("%s", exc)
    stim.save(args.out, force=args.force)
    labels = stim.labels
    n_cat = 0 if labels is None else len(set(labels.tolist()))
    categories = f"{n_cat} categories" if n_cat else "no categories (no label column)"
    print(f"{args.out}: {len(stim)} stimuli, {categories}")
    return 0


def _check_readable(stim):
    """Refuse the first clip PyAV cannot demux or sound soundfile cannot decode."""
    if stim.type == "video_clip":
        from ..io.video import probe_video as check
    elif stim.type == "audio":
        from ..io.audio import check_audio as check
    else:
        return
    for path in stim.paths:
        check(path)
    log.debug("%d %s files read.", len(stim), stim.type)
