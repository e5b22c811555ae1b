"""Stimulus tables: DNNBrain's ``.stim.csv`` and plain CSV/TSV tables.

A ``.stim.csv`` file (DNNBrain layout) is a few ``key=value`` header lines,
then a ``data=`` line naming the columns, then one comma-separated row per
stimulus::

    type=image
    path=images
    title=four objects
    data=stimID,label,condition,onset
    cat/1.jpg,0,cat,0.0
    dog/1.jpg,1,dog,2.5

``type`` (one of :data:`STIM_TYPES`: ``image``, ``video`` -- ``path`` is one movie
and each row a frame number or an ``onset`` --, ``video_clip`` -- one clip file per
row, ``audio`` -- one audio file per row, or segments of one file) and ``path`` are required, and so is the ``stimID`` column. ``label`` holds integers, ``condition`` text,
``onset``/``duration`` numbers; any other column becomes an int or float array
when every value is a number, and a text array otherwise.

Readers return a record ``{"type", "path", "header", "columns"}`` where
``columns`` (file order) includes ``stimID``. See ``docs/formats.md``.
"""
import csv
import io
import math
import re
from pathlib import Path

import numpy as np

from ..errors import FileFormatError, InputError
from ._files import atomic_output
from .table import csv_rows, format_value, read_text_lines

__all__ = ["STIM_TYPES", "read_stim", "write_stim", "read_plain_table", "looks_like_stim"]

#: The ``type=`` values the format knows, with what ``path=`` and ``stimID`` mean.
#: A new kind of stimulus (e.g. audio) adds its entry here, then its row layout in
#: :data:`dnnsparse.base.stimulus.STIMULUS_TYPES` and its decoder in
#: :data:`dnnsparse.model.STIM_SOURCES`.
STIM_TYPES = {
    "image": "path= is a folder, stimID an image file in it",
    "video": "path= is one movie file, stimID a frame number (1-based) or rows at 'onset'",
    "video_clip": "path= is a folder, stimID a movie clip in it",
    "audio": "path= is a folder, stimID an audio file in it; or path= is one audio file "
             "and each row a segment by 'onset'/'duration' (seconds)",
}

_INT = re.compile(r"[+-]?\d+")
_FLOAT = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?|[+-]?(nan|inf|infinity)",
                    re.IGNORECASE)
# Header keys written by us are restricted so that any DNNBrain-style reader,
# which splits header lines at "=", still finds the key.
_RESERVED_KEYS = ("type", "path", "data")


# ----------------------------------------------------------------------------
# Column typing
# ----------------------------------------------------------------------------
class _BadValue(Exception):
    """A cell that does not parse as the column requires (index of the row)."""

    def __init__(self, row, value):
        super().__init__(row, value)
        self.row, self.value = row, value


def _parse_all(values, pattern, kind):
    for i, v in enumerate(values):
        if not pattern.fullmatch(v.strip()):
            raise _BadValue(i, v)
    return [kind(v.strip()) for v in values]


def _int_column(values):
    try:
        return np.array(_parse_all(values, _INT, int), dtype=np.int64)
    except OverflowError:                  # beyond int64: not a label anyone means
        raise _BadValue(0, values[0]) from None


def _label_column(values):
    """Integer labels; integral floats (``0.0``, as DNNBrain writes numbers) too."""
    out = []
    for i, v in enumerate(values):
        text = v.strip()
        if _INT.fullmatch(text):
            out.append(int(text))
            continue
        number = float(text) if _FLOAT.fullmatch(text) else math.nan
        if not math.isfinite(number) or not number.is_integer():
            raise _BadValue(i, v)
        out.append(int(number))
    try:
        return np.array(out, dtype=np.int64)
    except OverflowError:                  # beyond int64: not a label anyone means
        raise _BadValue(0, values[0]) from None


def _float_column(values):
    return np.array(_parse_all(values, _FLOAT, float), dtype=np.float64)


def _text_column(values):
    return np.array(values, dtype=str)


def _auto_column(values):
    """Ints if every value is an integer, else floats if every value is a number, else text."""
    for parse in (_int_column, _float_column):
        try:
            return parse(values)
        except _BadValue:
            continue
    return _text_column(values)


# name -> (parser, what the values must be, how to fix a bad one)
_TYPED_COLUMNS = {
    "stimID": (_text_column, "", ""),
    "condition": (_text_column, "", ""),
    "label": (_label_column, "an integer",
              "labels are integer category codes; put category names in a 'condition' column"),
    "onset": (_float_column, "a number", "give the onset in seconds"),
    "duration": (_float_column, "a number", "give the duration in seconds"),
}


def _typed_columns(names, rows, line_numbers, where):
    """Turn rows of strings into ``{name: ndarray}`` following the column rules."""
    columns = {}
    for j, name in enumerate(names):
        values = [r[j] for r in rows]
        parse, want, fix = _TYPED_COLUMNS.get(name, (_auto_column, "", ""))
        try:
            columns[name] = parse(values)
        except _BadValue as bad:
            raise FileFormatError(
                f"{where}, line {line_numbers[bad.row]}: {name} {bad.value!r} is not "
                f"{want}; {fix}.") from None
    empty = [line_numbers[i] for i, v in enumerate(columns["stimID"]) if not v.strip()]
    if empty:
        raise FileFormatError(f"{where}, line {empty[0]}: empty stimID; every row needs "
                              f"the stimulus file name (or frame number) first.")
    return columns


def _split_rows(lines, first_line, names, where, *, delimiter=","):
    """CSV rows of ``lines`` (file lines from number ``first_line``), checked for width.

    Returns the rows and the file line number of each; blank lines are skipped.
    A double quote left open is an error (:func:`~dnnsparse.io.table.csv_rows`).
    """
    rows, numbers = [], []
    for line, row in csv_rows(lines, first_line=first_line, where=where,
                              delimiter=delimiter):
        if not any(field.strip() for field in row):
            continue
        if len(row) != len(names):
            sep = "tabs" if delimiter == "\t" else "commas"
            raise FileFormatError(
                f"{where}, line {line}: {len(row)} field(s), expected {len(names)} "
                f"({','.join(names)}); put double quotes around values that contain {sep}.")
        rows.append(row)
        numbers.append(line)
    if not rows:
        raise FileFormatError(f"{where}: no stimulus rows after the column names; add "
                              f"one line per stimulus.")
    return rows, numbers


# ----------------------------------------------------------------------------
# .stim.csv
# ----------------------------------------------------------------------------
def _header_line(line):
    """``(key, value)`` of a ``key=value`` line, split at the first ``=``."""
    key, _, value = line.partition("=")
    return key.strip(), value.strip()


def looks_like_stim(path):
    """Whether ``path`` starts like a DNNBrain ``.stim.csv`` (a ``key=value`` line).

    A plain CSV/TSV starts with column names, which hold no ``=`` before the
    first separator.
    """
    with open(path, encoding="utf-8-sig", errors="replace") as f:
        for line in f:
            if line.strip():
                head = re.split(r"[,\t;]", line, maxsplit=1)[0]
                return "=" in head
    return False


def read_stim(path):
    """Read a DNNBrain ``.stim.csv`` stimulus table.

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    dict
        ``type`` (str), ``path`` (str, as written), ``header`` (dict of the
        other ``key=value`` lines, in file order) and ``columns`` (dict of
        1-D arrays of length n_stimuli, in file order, including ``stimID``).

    Raises
    ------
    FileFormatError
        Missing ``type``/``path``/``data`` lines or ``stimID`` column, a row with
        the wrong number of fields, a non-integer label, ...; the message names
        the file and line.

    Examples
    --------
    >>> rec = read_stim("objects.stim.csv")                  # doctest: +SKIP
    >>> rec["columns"]["label"]                              # doctest: +SKIP
    array([0, 1, 1])
    """
    path, lines = read_text_lines(path, "stimulus table")
    where = str(path)
    meta, meta_line, data_at = {}, {}, None
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        if "=" not in line:
            raise FileFormatError(
                f"{where}, line {i + 1}: expected a key=value header line or the "
                f"'data=stimID,...' line, got {line.strip()[:40]!r}; the column names "
                f"go on a line starting with 'data='.")
        key, value = _header_line(line)
        if key == "data":
            data_at = i
            break
        if not key:
            raise FileFormatError(f"{where}, line {i + 1}: header line has no key before "
                                  f"'='; write key=value.")
        if key in meta:
            raise FileFormatError(f"{where}, line {i + 1}: header key {key!r} repeats "
                                  f"line {meta_line[key]}; keep one.")
        meta[key], meta_line[key] = value, i + 1
    if data_at is None:
        raise FileFormatError(f"{where}: no 'data=' line; after the header add a line "
                              f"like 'data=stimID,label' naming the columns, then the rows.")
    for key, example in (("type", "type=image"), ("path", "path=/folder/of/images")):
        if key not in meta:
            raise FileFormatError(f"{where}: no '{key}=' header line; add a line like "
                                  f"'{example}' before the data= line.")
    if meta["type"] not in STIM_TYPES:
        raise FileFormatError(f"{where}, line {meta_line['type']}: type={meta['type']!r} "
                              f"is not supported; use one of {', '.join(STIM_TYPES)}.")

    names = [n.strip() for n in next(csv.reader([_header_line(lines[data_at])[1]]), [])]
    _check_column_names(names, f"{where}, line {data_at + 1}", FileFormatError)
    rows, numbers = _split_rows(lines[data_at + 1:], data_at + 2, names, where)
    columns = _typed_columns(names, rows, numbers, where)
    header = {k: v for k, v in meta.items() if k not in ("type", "path")}
    return {"type": meta["type"], "path": meta["path"], "header": header, "columns": columns}


def _check_column_names(names, where, error):
    if not names or any(not n for n in names):
        raise error(f"{where}: empty column name in {','.join(names)!r}; name every "
                    f"column, e.g. data=stimID,label.")
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise error(f"{where}: column(s) {', '.join(dup)} appear more than once; "
                    f"rename them.")
    if "stimID" not in names:
        raise error(f"{where}: no stimID column among {','.join(names)}; the stimulus "
                    f"file names go in a column named stimID.")


def _check_text(value, what):
    text = str(value)
    if "\n" in text or "\r" in text:
        raise InputError(f"{what} {text!r} contains a line break, which a stimulus table "
                         f"cannot hold; remove it.")
    return text


def write_stim(path, *, type, path_value, columns, header=None, force=False):
    """Write a DNNBrain ``.stim.csv`` stimulus table (atomically).

    Parameters
    ----------
    path : str or Path
        Output file (by convention ``*.stim.csv``).
    type : str
        One of :data:`STIM_TYPES` (``"image"``, ``"video"``, ``"video_clip"``).
    path_value : str
        Value of the ``path=`` line: the folder the stimulus IDs are relative
        to (or the video file).
    columns : mapping of str to sequence
        Equal-length columns in output order; must include ``stimID``.
        ``label`` must hold integers, ``onset``/``duration`` numbers.
    header : mapping of str to str, optional
        Further ``key=value`` lines (e.g. ``title``), in order.
    force : bool, default=False
        Overwrite an existing file.

    Notes
    -----
    Values containing commas or quotes are quoted (CSV rules) and header
    values may contain ``=``; dnnsparse reads both back, but DNNBrain's own
    reader, which splits rows on every comma and header lines on every ``=``,
    does not. Text columns other than ``stimID`` and ``condition`` are likewise
    dnnsparse-only (DNNBrain reads them as floats).

    Examples
    --------
    >>> write_stim("s.stim.csv", type="image", path_value="images",   # doctest: +SKIP
    ...            columns={"stimID": ["a.jpg", "b.jpg"], "label": [0, 1]})
    """
    if type not in STIM_TYPES:
        raise InputError(f"stimulus type={type!r} is not supported; use one of "
                         f"{', '.join(STIM_TYPES)}.")
    names = [str(n) for n in columns]
    _check_column_names(names, "stimulus table columns", InputError)
    for n in names:
        if "," in n or '"' in n or n != n.strip():
            raise InputError(f"column name {n!r} may not contain commas, quotes or "
                             f"surrounding spaces; rename it.")
        _check_text(n, "column name")
    cols = [np.asarray(columns[n]) for n in columns]
    if any(c.ndim != 1 for c in cols):
        raise InputError("stimulus table columns must be 1-D sequences.")
    lengths = {len(c) for c in cols}
    if len(lengths) > 1:
        raise InputError(f"stimulus table columns differ in length: "
                         f"{dict(zip(names, map(len, cols)))}; give one value per stimulus.")
    if not lengths or lengths == {0}:
        raise InputError("no stimuli to write; the table needs at least one row.")
    for name, col in zip(names, cols):
        _check_column_values(name, col)

    lines = [f"type={type}", f"path={_check_text(path_value, 'path')}"]
    for key, value in (header or {}).items():
        key = str(key)
        if not key or key != key.strip() or "=" in key or key in _RESERVED_KEYS:
            raise InputError(f"header key {key!r} is not allowed; use a name without '=' "
                             f"or surrounding spaces, other than {', '.join(_RESERVED_KEYS)}.")
        _check_text(key, "header key")
        lines.append(f"{key}={_check_text(value, f'header {key}')}")
    lines.append("data=" + ",".join(names))

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    for row in zip(*cols):
        writer.writerow([_check_text(format_value(v), "value") for v in row])
    with atomic_output(path, force=force) as tmp:
        with open(tmp, "w", encoding="utf-8", newline="") as f:
            f.write("\n".join(lines) + "\n")
            f.write(buf.getvalue())
    return Path(path)


def _check_column_values(name, col):
    if name == "label":
        if col.dtype.kind not in "iu":
            raise InputError(f"label column must hold integers, got dtype {col.dtype}; "
                             f"put category names in a 'condition' column.")
    elif name in ("onset", "duration"):
        if col.dtype.kind not in "iuf":
            raise InputError(f"{name} column must hold numbers (seconds), got dtype "
                             f"{col.dtype}.")
    elif name == "stimID":
        empty = [i for i, v in enumerate(col) if not str(v).strip()]
        if empty:
            raise InputError(f"stimID {empty[0]} is empty; every stimulus needs a name.")


# ----------------------------------------------------------------------------
# Plain tables
# ----------------------------------------------------------------------------
_SEPARATORS = {".csv": ",", ".tsv": "\t", ".tab": "\t"}


def _separator(path, first_line):
    for suffix in (s.lower() for s in reversed(Path(path).suffixes)):
        if suffix in _SEPARATORS:
            return _SEPARATORS[suffix]
    try:
        return csv.Sniffer().sniff(first_line, delimiters=",\t;").delimiter
    except csv.Error:
        return ","                        # one column: the separator does not matter


def read_plain_table(path):
    """Read a plain CSV/TSV stimulus table with a ``stimID`` or ``path`` column.

    The first line holds the column names. The separator is a comma for
    ``.csv``, a tab for ``.tsv``/``.tab``, and sniffed (comma, tab or
    semicolon) otherwise. Without a ``stimID`` column, the ``path`` column is
    used as ``stimID``. Stimulus IDs are paths relative to the table's folder,
    or absolute.

    Returns
    -------
    dict
        Same record as :func:`read_stim`, with ``type="image"``, ``path=""``
        and ``stimID`` first in ``columns``.

    Examples
    --------
    >>> read_plain_table("images.tsv")["columns"]["stimID"]   # doctest: +SKIP
    array(['a.png', 'b.png'], dtype='<U5')
    """
    path, lines = read_text_lines(path, "stimulus table")
    where = str(path)
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is None:
        raise FileFormatError(f"{where}: no column names; the first line must name the "
                              f"columns, one of them stimID or path.")
    sep = _separator(path, lines[first])
    names = [n.strip() for n in next(csv.reader([lines[first]], delimiter=sep))]
    if "stimID" not in names and "path" in names:
        names[names.index("path")] = "stimID"
    if "stimID" not in names:
        raise FileFormatError(f"{where}, line {first + 1}: no stimID or path column among "
                              f"{', '.join(names)}; name the column of image files "
                              f"stimID or path.")
    _check_column_names(names, f"{where}, line {first + 1}", FileFormatError)

    rows, numbers = _split_rows(lines[first + 1:], first + 2, names, where, delimiter=sep)
    columns = _typed_columns(names, rows, numbers, where)
    ordered = {"stimID": columns.pop("stimID"), **columns}
    return {"type": "image", "path": "", "header": {}, "columns": ordered}
