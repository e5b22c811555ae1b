"""Tidy tables as CSV or TSV (separator chosen by the file extension).

A table is a mapping ``{column name: sequence}``; all columns have one length.
Floats are written with 10 significant digits' round-trip safety via ``repr``.
"""
import csv
import io
from pathlib import Path

import numpy as np

from ..errors import FileFormatError, InputError
from ._files import atomic_output, check_input_file

__all__ = ["csv_rows", "read_table", "read_text_lines", "write_table", "format_value"]


def _delimiter(path):
    return "\t" if Path(path).suffix.lower() in (".tsv", ".tab", ".txt") else ","


def format_value(v):
    """Text for one cell: integers plainly, floats round-trip exact, NaN as ``nan``."""
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        return repr(float(v))
    return "" if v is None else str(v)


def write_table(path, columns, *, force=False):
    """Write ``columns`` (dict of equal-length sequences) to a CSV/TSV file.

    Parameters
    ----------
    path : str or Path
        ``.tsv``/``.txt`` give tab-separated output, anything else commas.
    columns : mapping of str to sequence
    force : bool, default=False
        Overwrite an existing file.

    Examples
    --------
    >>> write_table("psi.csv", {"layer": ["conv1", "fc2"], "psi": [0.1, 0.4]})  # doctest: +SKIP
    """
    names = list(columns)
    cols = [list(columns[n]) for n in names]
    lengths = {len(c) for c in cols}
    if len(lengths) > 1:
        raise InputError(f"table columns differ in length: "
                         f"{dict(zip(names, map(len, cols)))}")
    with atomic_output(path, force=force) as tmp:
        with open(tmp, "w", newline="") as f:
            w = csv.writer(f, delimiter=_delimiter(path))
            w.writerow(names)
            for row in zip(*cols):
                w.writerow([format_value(v) for v in row])
    return Path(path)


def read_text_lines(path, what):
    """``(Path, list of lines)`` of a UTF-8 text file, after checking it exists.

    Raises MissingFileError/FileFormatError naming the file (also for non-UTF-8).
    """
    path = check_input_file(path, what=what)
    # utf-8-sig: spreadsheets often prepend a byte-order mark.
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FileFormatError(f"{path}: not a UTF-8 text file ({exc.reason} at byte "
                              f"{exc.start}); save it as UTF-8 text.") from None
    return path, text.split("\n")


def csv_rows(lines, *, first_line, where, delimiter=","):
    """Yield ``(line number, fields)`` for the CSV rows of ``lines``.

    Every table reader goes through here. A value may not span lines: a double
    quote that is not closed on its own line would otherwise swallow the rows
    after it into one value (and give a table with rows missing), so it is an
    error naming the line where the quote opens.

    Parameters
    ----------
    lines : list of str
        File lines, the first of which is line ``first_line`` of the file.
    first_line : int
    where : str
        The file, for messages.
    delimiter : str, default=","

    Examples
    --------
    >>> list(csv_rows(['a,"b,c"', "d,e"], first_line=2, where="t.csv"))
    [(2, ['a', 'b,c']), (3, ['d', 'e'])]
    """
    reader = csv.reader(io.StringIO("\n".join(lines)), delimiter=delimiter, strict=True)
    consumed = 0
    fix = ('close the quote on the same line, write a quote inside a quoted value as "", '
           'or remove it')
    while True:
        line = first_line + consumed
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            what = ("a double quote opened here is never closed"
                    if "end of data" in str(exc) else f"bad quoting ({exc})")
            raise FileFormatError(f"{where}, line {line}: {what}; {fix}.") from None
        if any("\n" in field or "\r" in field for field in row):
            raise FileFormatError(
                f"{where}, line {line}: a double quote opened here is not closed on this "
                f"line, so the next {reader.line_num - consumed - 1} line(s) would be read "
                f"as part of one value; {fix}.")
        consumed = reader.line_num
        yield line, row


def _convert(values):
    """Convert a column of strings to int, then float, else keep as text."""
    for kind in (int, float):
        try:
            return np.array([kind(v) for v in values])
        except ValueError:
            continue
    return np.array(values, dtype=object)


def read_table(path):
    """Read a CSV/TSV written by :func:`write_table` into ``{column: ndarray}``.

    Numeric columns become int or float arrays, others object arrays of str.
    """
    path, lines = read_text_lines(path, "table")
    numbered = list(csv_rows(lines, first_line=1, where=str(path), delimiter=_delimiter(path)))
    if not numbered:
        raise FileFormatError(f"{path}: no header line.")
    header, body = numbered[0][1], [r for _, r in numbered[1:]]
    for i, r in numbered[1:]:
        if len(r) != len(header):
            raise FileFormatError(f"{path}, line {i}: {len(r)} fields, expected "
                                  f"{len(header)} ({','.join(header)}).")
    return {name: _convert([r[j] for r in body]) for j, name in enumerate(header)}
