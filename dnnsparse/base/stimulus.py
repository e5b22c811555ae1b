"""The :class:`Stimulus` table: which images (or movie frames, clips), where, and what is
known about each.

:data:`STIMULUS_TYPES` says, per ``type=``, how the rows find their data: one file per
row under ``root`` (``image``, ``video_clip``) or rows of one long file ``root``
(``video``: frames by number or by ``onset``).
"""
import logging
import os
import re
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..errors import InputError, MissingFileError
from ..io import check_input_file
from ..io.stim import (STIM_TYPES, looks_like_stim, read_plain_table, read_stim,
                       write_stim)
from ..utils.registry import Registry
from ..utils.validation import check_choice

__all__ = ["Stimulus", "AUDIO_EXTENSIONS", "IMAGE_EXTENSIONS", "STIMULUS_TYPES",
           "StimulusType", "VIDEO_EXTENSIONS"]


class StimulusType(NamedTuple):
    """How the rows of one ``type=`` find their data.

    ``layout`` is ``"files"`` (``stimID`` is a file under ``root``, one per row),
    ``"stream"`` (``root`` is one file and the rows are parts of it, selected by
    ``stimID`` or ``onset``) or ``"either"`` (``"stream"`` when ``root`` is a file,
    else ``"files"``: audio); ``what`` names one row's data in messages.
    """
    description: str
    layout: str
    what: str


#: ``type=`` -> row layout. A new kind of stimulus (audio: ``"files"`` for one file
#: per row, ``"stream"`` for segments of one long file by ``onset``/``duration``)
#: adds its entry here, in :data:`dnnsparse.io.stim.STIM_TYPES`, and its decoder in
#: :data:`dnnsparse.model.STIM_SOURCES`.
STIMULUS_TYPES = Registry(
    image=StimulusType("one image file per row", "files", "image"),
    video=StimulusType("frames of one movie, by number (1-based) or onset", "stream",
                       "frame"),
    video_clip=StimulusType("one movie clip file per row", "files", "clip"),
    audio=StimulusType("one audio file per row, or segments of one audio file by "
                       "onset/duration", "either", "segment"),
)
if set(STIMULUS_TYPES) != set(STIM_TYPES):
    raise RuntimeError(f"stimulus types of the file format {sorted(STIM_TYPES)} and of "
                       f"Stimulus {sorted(STIMULUS_TYPES)} differ; give each both entries.")

_FRAME_NUMBER = re.compile(r"\+?\d+(\.0*)?")

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
#: Movie files :meth:`Stimulus.from_folder` collects for ``type="video_clip"`` (PyAV).
VIDEO_EXTENSIONS = (".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg",
                    ".ogv")
#: Audio files :meth:`Stimulus.from_folder` collects for ``type="audio"`` (libsndfile).
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".mp3", ".aif", ".aiff", ".au",
                    ".caf")
#: ``type=`` -> (extensions, plural noun) of a folder of stimulus files.
_FOLDER_FILES = {"image": (IMAGE_EXTENSIONS, "images"),
                 "video_clip": (VIDEO_EXTENSIONS, "movie clips"),
                 "audio": (AUDIO_EXTENSIONS, "audio files")}
_N_LISTED = 5          # missing files named in an error message


class Stimulus:
    """A table of stimuli: IDs (image paths) plus per-stimulus columns.

    Parameters
    ----------
    ids : sequence of str, length n_stimuli
        Stimulus IDs: image paths relative to ``root`` (or absolute), or frame
        numbers of a video.
    root : str or Path, optional
        Folder the IDs are relative to (the video file for ``type="video"``).
        None: the current directory.
    type : {"image", "video", "video_clip"}, default="image"
        See :data:`STIMULUS_TYPES`.
    columns : mapping of str to sequence, optional
        Per-stimulus values (``label``, ``condition``, ``onset``, ...), each of
        length n_stimuli. ``stimID`` is not a column here; it is ``ids``.
    header : mapping of str to str, optional
        Further ``key=value`` lines of the ``.stim.csv`` (e.g. ``title``).

    Attributes
    ----------
    ids : ndarray of str, shape (n_stimuli,)
    root : Path or None
    type : str
    columns : dict of str to ndarray of shape (n_stimuli,)
    header : dict of str to str

    Examples
    --------
    >>> stim = Stimulus(["cat/1.jpg", "dog/1.jpg"], root="images",
    ...                 columns={"label": [0, 1]})
    >>> len(stim), stim.labels.tolist(), stim[1].ids.tolist()
    (2, [0, 1], ['dog/1.jpg'])
    """

    def __init__(self, ids, *, root=None, type="image", columns=None, header=None):
        ids = np.asarray(ids, dtype=str)
        if ids.ndim != 1:
            raise InputError(f"stimulus ids must be a 1-D sequence; got shape {ids.shape}.")
        self.ids = ids
        self.root = None if root is None else Path(root)
        self.type = check_choice(type, STIM_TYPES, name="stimulus type")
        self.header = {str(k): str(v) for k, v in (header or {}).items()}
        self.columns = {}
        for name, values in (columns or {}).items():
            if name == "stimID":
                raise InputError("stimID is not a column of a Stimulus; pass the IDs as "
                                 "`ids` instead.")
            values = np.asarray(values)
            if values.shape != ids.shape:
                raise InputError(f"column {name} has shape {values.shape}; expected one "
                                 f"value per stimulus, shape {ids.shape}.")
            self.columns[str(name)] = values
        if "label" in self.columns and self.columns["label"].dtype.kind not in "iu":
            raise InputError(f"the label column must hold integers, got dtype "
                             f"{self.columns['label'].dtype}; put category names in "
                             f"a 'condition' column.")

    # ------------------------------------------------------------------ access
    def __len__(self):
        return len(self.ids)

    def __repr__(self):
        return (f"Stimulus(n={len(self)}, type={self.type!r}, root={self.root}, "
                f"columns={list(self.columns)})")

    def __getitem__(self, key):
        """A column by name (``"stimID"`` gives the IDs), or a subset of stimuli."""
        if isinstance(key, str):
            if key == "stimID":
                return self.ids
            if key not in self.columns:
                raise InputError(f"no column {key!r}; this stimulus table has "
                                 f"{', '.join(['stimID', *self.columns])}.")
            return self.columns[key]
        index = self._row_index(key)
        return Stimulus(self.ids[index], root=self.root, type=self.type,
                        columns={k: v[index] for k, v in self.columns.items()},
                        header=self.header)

    def _row_index(self, key):
        """``key`` as something that selects a 1-D subset of rows."""
        n = len(self)
        if isinstance(key, slice):
            return key
        if isinstance(key, (int, np.integer)) and not isinstance(key, (bool, np.bool_)):
            if not -n <= key < n:
                raise InputError(f"stimulus index {key} is out of range for {n} stimuli.")
            return slice(key, key + 1 if key != -1 else None)
        arr = np.asarray(key)
        if arr.dtype == bool:
            if arr.shape != (n,):
                raise InputError(f"boolean stimulus mask has shape {arr.shape}; expected "
                                 f"({n},).")
            return arr
        if arr.ndim == 1 and (arr.dtype.kind in "iu" or arr.size == 0):
            arr = arr.astype(np.intp)
            bad = arr[(arr < -n) | (arr >= n)]
            if bad.size:
                raise InputError(f"stimulus index {int(bad[0])} is out of range for "
                                 f"{n} stimuli.")
            return arr
        raise InputError(f"cannot index stimuli with {key!r}; use a column name, an int, "
                         f"a slice, a boolean mask or an array of ints.")

    @property
    def labels(self):
        """The ``label`` column as an int array, or None when there is none."""
        return self.columns.get("label")

    def with_label_column(self, column):
        """A copy whose categories (``label``) come from another column.

        DNNBrain tables group by ``label``; others (the PSI authors' ImageNet and
        Caltech-256 tables) by e.g. a ``category`` column of names. Names become the
        codes 0, 1, ... in sorted order and become the ``condition`` column (the
        category names of tables and figures); whole numbers (also written as
        ``3.0``) are used as they are, and a ``condition`` column that does not name
        them one to one is dropped.

        Parameters
        ----------
        column : str
            A column of the table; ``"label"`` returns the table unchanged.

        Returns
        -------
        Stimulus
            Same stimuli and columns, ``label`` replaced.

        Examples
        --------
        >>> stim = Stimulus(["a.png", "b.png", "c.png"],
        ...                 columns={"category": ["owl", "cat", "owl"]})
        >>> relabelled = stim.with_label_column("category")
        >>> relabelled.labels.tolist(), relabelled.columns["condition"].tolist()
        ([1, 0, 1], ['owl', 'cat', 'owl'])
        """
        if column == "label" and "label" in self.columns:
            return self
        if column not in self.columns:
            raise InputError(f"the stimulus table has no column {column!r} for the "
                             f"categories; its columns: "
                             f"{', '.join(self.columns) or '(none)'}.")
        values = self.columns[column]
        columns = dict(self.columns)
        if values.dtype.kind in "iu":
            codes = values.astype(np.int64)
        elif values.dtype.kind == "f":
            whole = np.isfinite(values) & (values == np.round(values))
            if not whole.all():
                row = int(np.flatnonzero(~whole)[0])
                raise InputError(f"column {column!r} holds {values[row].item()!r} for stimulus "
                                 f"{self.ids[row]}; categories need names or whole "
                                 f"numbers.")
            codes = values.astype(np.int64)
        else:
            names, codes = np.unique(values.astype(str), return_inverse=True)
            codes = codes.astype(np.int64)
            columns["condition"] = values.astype(str)
        if column != "condition" and "condition" in columns and values.dtype.kind in "iuf":
            # the names must still name the new categories, one name per code
            pairs = {(int(c), str(n)) for c, n in zip(codes, columns["condition"])}
            if len(pairs) != len(set(codes.tolist())):
                del columns["condition"]
        columns["label"] = codes
        return type(self)(self.ids, root=self.root, type=self.type, columns=columns,
                          header=self.header)

    @property
    def layout(self):
        """``"files"`` (a file per row) or ``"stream"`` (rows of one file), by type
        (for an ``"either"`` type: ``"stream"`` when ``root`` is a file)."""
        layout = STIMULUS_TYPES[self.type].layout
        if layout == "either":
            layout = "stream" if self.root is not None and self.root.is_file() else "files"
        return layout

    def frame_numbers(self):
        """0-based frame indices of a ``video`` table from its 1-based ``stimID``.

        Returns None when some ``stimID`` is not a whole number >= 1 (``7`` and
        ``7.0``, as DNNBrain writes numbers, are both frame 7); the rows are then
        placed by their ``onset``.

        >>> Stimulus(["1", "3.0"], type="video").frame_numbers().tolist()
        [0, 2]
        """
        if self.type != "video":
            raise InputError(f"{self.type} stimuli have no frame numbers.")
        if not all(_FRAME_NUMBER.fullmatch(i.strip()) for i in self.ids):
            return None
        numbers = np.array([int(float(i)) for i in self.ids], dtype=np.int64)
        return numbers - 1 if numbers.size and numbers.min() >= 1 else None

    @property
    def paths(self):
        """Files of the rows: ``root / id``, or the ID itself when it is absolute.

        Returns
        -------
        list of Path, length n_stimuli
        """
        if self.layout != "files":
            raise InputError(f"{self.type} stimuli have no file per row; their "
                             f"{STIMULUS_TYPES[self.type].what}s live in {self.root}.")
        root = self.root if self.root is not None else Path()
        return [root / i for i in self.ids]          # an absolute id replaces root

    def check_files(self):
        """Check that every stimulus file exists, before any compute starts.

        Returns
        -------
        list of Path
            :attr:`paths` (the one file ``root`` for a ``"stream"`` layout, e.g. the
            movie of ``type="video"``).

        Raises
        ------
        MissingFileError
            Names the first few missing files and how many are missing.
        """
        if self.layout == "stream":
            if self.root is None or not self.root.is_file():
                raise MissingFileError(f"{self.type} file not found: {self.root}; fix the "
                                       f"path= line of the stimulus table.")
            return [self.root]
        paths = self.paths
        missing = [i for i, p in zip(self.ids, paths) if not p.is_file()]
        if missing:
            listed = ", ".join(missing[:_N_LISTED])
            more = f" and {len(missing) - _N_LISTED} more" if len(missing) > _N_LISTED else ""
            where = self.root if self.root is not None else Path.cwd()
            raise MissingFileError(
                f"{len(missing)} of {len(self)} stimulus files are missing under {where}: "
                f"{listed}{more}; fix the path= line or the stimID column of the table.")
        return paths

    # -------------------------------------------------------------- files
    @classmethod
    def load(cls, path):
        """Read a ``.stim.csv`` or a plain CSV/TSV table with a stimID/path column.

        A file starting with a ``key=value`` line is read as DNNBrain's
        ``.stim.csv``; otherwise as a plain table whose first line names the
        columns. A relative ``path=`` (and the IDs of a plain table) is taken
        relative to the folder holding the table, so a folder can move together
        with its table; an absolute ``path=`` is used as is.

        Examples
        --------
        >>> stim = Stimulus.load("objects.stim.csv")          # doctest: +SKIP
        """
        path = check_input_file(path, what="stimulus table")
        record = read_stim(path) if looks_like_stim(path) else read_plain_table(path)
        columns = dict(record["columns"])
        ids = columns.pop("stimID")
        root = path.absolute().parent / record["path"]   # an absolute path= replaces it
        return cls(ids, root=root, type=record["type"], columns=columns,
                   header=record["header"])

    def save(self, path, *, force=False):
        """Write a DNNBrain ``.stim.csv`` (atomically).

        ``path=`` is written relative to the output file's folder when the root
        lies inside it (so both can move together), absolute otherwise.
        """
        out_dir = Path(os.path.abspath(Path(path).parent))
        root = Path(os.path.abspath(self.root if self.root is not None else Path.cwd()))
        try:
            path_value = root.relative_to(out_dir).as_posix()
        except ValueError:
            path_value = str(root)
        return write_stim(path, type=self.type, path_value=path_value,
                          columns={"stimID": self.ids, **self.columns},
                          header=self.header, force=force)

    @classmethod
    def from_video(cls, movie, *, fps=None):
        """A ``type=video`` table of a movie: every frame, or the frame shown every 1/fps s.

        ``stimID`` is the frame number (1-based, DNNBrain), ``onset`` the frame's
        presentation timestamp in the stream (``pts * time_base`` -- real times, so
        a variable frame rate keeps its irregular onsets) and ``duration`` the time
        to the next row (the last row: to the end of the movie). With ``fps``, rows
        are the frames shown at ``0, 1/fps, 2/fps, ...`` before the movie's end; a
        frame shown at several of these times (``fps`` above the movie's rate)
        gives one row.

        Parameters
        ----------
        movie : str or Path
        fps : float, optional

        Examples
        --------
        >>> stim = Stimulus.from_video("movie.mp4", fps=2)    # doctest: +SKIP
        >>> stim["onset"][:3]                                   # doctest: +SKIP
        array([0. , 0.5, 1. ])
        """
        from ..io.video import probe_video

        index = probe_video(movie)
        if fps is None:
            frames = np.arange(index.n_frames)
        else:
            if not np.isfinite(fps) or fps <= 0:
                raise InputError(f"fps={fps!r}: give a rate > 0 frames per second.")
            # sample times k / fps, computed from k (no accumulated rounding)
            n = int(np.ceil(index.end * fps - 1e-9))
            times = np.arange(n, dtype=np.float64) / fps
            frames = np.unique(index.frames_at(times[times < index.end]))
        onsets, durations = index.times[frames], index.spans(frames)
        return cls((frames + 1).astype(str), root=Path(movie), type="video",
                   columns={"onset": onsets, "duration": durations})

    @classmethod
    def from_folder(cls, folder, *, extensions=None, type="image"):
        """Build a table from a folder of stimulus files whose sub-folders are categories.

        Each sub-folder is one category: stimID is ``"sub/file.ext"`` (files in
        deeper folders keep their relative path), ``label`` numbers the
        categories 0..K-1 in sorted folder-name order and ``condition`` holds
        the folder name. A folder of files without sub-folders gives a table
        without label. Hidden files and folders (``.name``) are skipped;
        extensions match case-insensitively; the order is sorted and therefore
        the same on every machine. Files are found by name only: whether they
        can be read is for the caller to check (db_stim does).

        Parameters
        ----------
        folder : str or Path
        extensions : tuple of str, optional
            File extensions to include; default those of ``type``
            (:data:`IMAGE_EXTENSIONS`, :data:`VIDEO_EXTENSIONS`,
            :data:`AUDIO_EXTENSIONS`).
        type : {"image", "video_clip", "audio"}, default="image"
            The table's ``type=``: images, one movie clip per row, or one audio file
            per row.

        Examples
        --------
        >>> stim = Stimulus.from_folder("images")             # doctest: +SKIP
        >>> clips = Stimulus.from_folder("clips", type="video_clip")  # doctest: +SKIP
        """
        type = check_choice(type, _FOLDER_FILES, name="folder stimulus type")
        default, noun = _FOLDER_FILES[type]
        folder = Path(folder)
        if not folder.is_dir():
            raise MissingFileError(f"image folder not found: {folder}." if type == "image"
                                   else f"folder of {noun} not found: {folder}.")
        extensions = tuple(e.lower() for e in (default if extensions is None else
                                               extensions))
        loose = _images_in(folder, folder, extensions, recursive=False)
        categories = sorted(p.name for p in folder.iterdir()
                            if p.is_dir() and not p.name.startswith("."))
        per_category = {c: _images_in(folder / c, folder, extensions, recursive=True)
                        for c in categories}
        empty = [c for c in categories if not per_category[c]]
        if empty:
            log.warning("skipping %d sub-folder(s) without %s: %s", len(empty), noun,
                        ", ".join(empty[:_N_LISTED]))
        categories = [c for c in categories if per_category[c]]
        if categories and loose:
            raise InputError(f"{folder} holds {len(loose)} {noun[:-1]}(s) next to category "
                             f"sub-folders (e.g. {loose[0]}); move them into a sub-folder "
                             f"or out of {folder}.")
        if loose:
            return cls(loose, root=folder, type=type)
        if not categories:
            raise InputError(f"no {noun} ({', '.join(extensions)}) found in {folder}.")
        ids = [i for c in categories for i in per_category[c]]
        counts = [len(per_category[c]) for c in categories]
        return cls(ids, root=folder, type=type, columns={
            "label": np.repeat(np.arange(len(categories), dtype=np.int64), counts),
            "condition": np.repeat(np.array(categories, dtype=str), counts)})


def _images_in(directory, root, extensions, *, recursive):
    """Sorted image paths under ``directory``, relative to ``root``, with '/'."""
    found = []
    for dirpath, dirnames, filenames in os.walk(directory):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".")) if recursive else []
        rel = Path(dirpath).relative_to(root)
        found.extend((rel / f).as_posix() for f in filenames
                     if not f.startswith(".") and f.lower().endswith(extensions))
    return sorted(found)
