"""DNN masks: DNNBrain's ``.dmask.csv`` (which channels, rows, columns of which layers).

Layout, exactly as DNNBrain::

    conv1=chn,row
    1,2,5
    3,4
    fc2=chn
    7,8
    conv5=

A ``layer=axes`` line lists any of ``chn``, ``row``, ``col`` (any order); one
line of 1-based, comma-separated indices follows for each listed axis, in the
same order. An unlisted axis means all of it; ``layer=`` alone selects the whole
layer. Blank lines are ignored.

In Python a mask is ``{layer: {"chn": list or None, "row": ..., "col": ...}}``
in file order, with the file's 1-based indices (``None``: the whole axis).
:class:`dnnsparse.base.mask.Mask` converts to 0-based arrays.
"""
import re
from pathlib import Path

import numpy as np

from ..errors import FileFormatError, InputError
from ._files import atomic_output
from .table import read_text_lines

__all__ = ["AXES", "read_dmask", "write_dmask"]

AXES = ("chn", "row", "col")
_INT = re.compile(r"[+-]?\d+")
_MAX_INDEX = int(np.iinfo(np.int64).max)


def _parse_axes(text, where):
    axes = [a.strip() for a in text.split(",")]
    axes = [a for a in axes if a]         # DNNBrain drops empty entries ("conv1=chn,")
    for a in axes:
        if a not in AXES:
            raise FileFormatError(f"{where}: unknown axis {a!r}; use chn, row and/or col "
                                  f"(e.g. conv1=chn,row), or nothing for the whole layer.")
    dup = sorted({a for a in axes if axes.count(a) > 1})
    if dup:
        raise FileFormatError(f"{where}: axis {dup[0]} is listed twice; list each axis once.")
    return axes


def _parse_indices(text, layer, axis, where):
    values = []
    for field in text.split(","):
        field = field.strip()
        if not _INT.fullmatch(field):
            raise FileFormatError(f"{where}: {layer} {axis} index {field!r} is not an "
                                  f"integer; give 1-based indices separated by commas "
                                  f"(e.g. 1,2,5).")
        value = int(field)
        if value < 1:
            raise FileFormatError(f"{where}: {layer} {axis} index {value} is below 1; "
                                  f"dmask indices are 1-based (the first channel is 1).")
        if value > _MAX_INDEX:          # beyond int64: no layer is that large
            raise FileFormatError(f"{where}: {layer} {axis} index {field} is too large; "
                                  f"give indices within the layer's size (1-based).")
        values.append(value)
    return values


def read_dmask(path):
    """Read a DNNBrain ``.dmask.csv`` file.

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    dict
        ``{layer: {"chn": list of int or None, "row": ..., "col": ...}}`` in file
        order, with the file's 1-based indices; ``None`` selects the whole axis.

    Raises
    ------
    FileFormatError
        An unknown axis, a missing index line, a non-integer or < 1 index, a
        layer listed twice; the message names the file and line.

    Examples
    --------
    >>> read_dmask("v1.dmask.csv")                 # doctest: +SKIP
    {'conv1': {'chn': [1, 2, 5], 'row': None, 'col': None}}
    """
    path, lines = read_text_lines(path, "dmask file")
    # (file line number, text) of every non-blank line
    lines = [(i + 1, line.strip()) for i, line in enumerate(lines) if line.strip()]
    spec, pos = {}, 0
    while pos < len(lines):
        number, line = lines[pos]
        where = f"{path}, line {number}"
        if "=" not in line:
            raise FileFormatError(f"{where}: expected a 'layer=axes' line (e.g. conv1=chn), "
                                  f"got {line[:40]!r}; index lines must follow their "
                                  f"layer line, one per listed axis.")
        layer, _, axes_text = line.partition("=")
        layer = layer.strip()
        if not layer:
            raise FileFormatError(f"{where}: no layer name before '='; write e.g. conv1=chn.")
        if layer in spec:
            raise FileFormatError(f"{where}: layer {layer} appears twice; merge its lines.")
        axes = _parse_axes(axes_text, where)
        entry = dict.fromkeys(AXES)
        for k, axis in enumerate(axes, start=1):
            if pos + k >= len(lines) or "=" in lines[pos + k][1]:
                raise FileFormatError(
                    f"{where}: missing index line for axis {axis} of layer {layer}; "
                    f"'{layer}={','.join(axes)}' needs {len(axes)} line(s) of 1-based "
                    f"indices after it.")
            idx_number, idx_line = lines[pos + k]
            entry[axis] = _parse_indices(idx_line, layer, axis, f"{path}, line {idx_number}")
        spec[layer] = entry
        pos += 1 + len(axes)
    if not spec:
        raise FileFormatError(f"{path}: no 'layer=axes' lines; write e.g. conv1=chn "
                              f"followed by a line of channel numbers.")
    return spec


def _check_layer_name(layer):
    if not isinstance(layer, str) or not layer.strip() or layer != layer.strip() \
            or any(c in layer for c in "=,\n\r"):
        raise InputError(f"dmask layer name {layer!r} is not usable; it must be non-empty "
                         f"without '=', commas, line breaks or surrounding spaces.")


def _index_line(layer, axis, indices):
    arr = np.asarray(indices)
    if arr.ndim != 1 or arr.size == 0:
        raise InputError(f"dmask layer {layer}: {axis} needs a non-empty 1-D list of "
                         f"indices; use None to select the whole axis.")
    if arr.dtype.kind not in "iu" and not (arr.dtype.kind == "f"
                                           and np.array_equal(arr, np.round(arr))):
        raise InputError(f"dmask layer {layer}: {axis} indices must be integers, got "
                         f"{arr.dtype}.")
    arr = arr.astype(np.int64)
    if arr.min() < 1:
        raise InputError(f"dmask layer {layer}: {axis} index {int(arr.min())} is below 1; "
                         f"dmask files hold 1-based indices.")
    return ",".join(str(int(v)) for v in arr)


def write_dmask(path, spec, *, force=False):
    """Write a DNNBrain ``.dmask.csv`` file (atomically).

    Parameters
    ----------
    path : str or Path
    spec : mapping
        ``{layer: {"chn": 1-based indices or None, "row": ..., "col": ...}}``;
        a missing axis key, ``None``, or a layer value of ``None``/``{}``
        selects the whole axis (layer). Written in mapping order, axes in
        chn, row, col order.
    force : bool, default=False
        Overwrite an existing file.

    Examples
    --------
    >>> write_dmask("v1.dmask.csv", {"conv1": {"chn": [1, 2, 5]}, "fc2": None})  # doctest: +SKIP
    """
    if not spec:
        raise InputError("dmask has no layers; give at least one layer.")
    out = []
    for layer, entry in spec.items():
        _check_layer_name(layer)
        entry = entry or {}
        unknown = sorted(set(entry) - set(AXES))
        if unknown:
            raise InputError(f"dmask layer {layer}: unknown axis {unknown[0]!r}; use "
                             f"chn, row or col.")
        axes = [a for a in AXES if entry.get(a) is not None]
        out.append(f"{layer}={','.join(axes)}")
        out.extend(_index_line(layer, a, entry[a]) for a in axes)
    with atomic_output(path, force=force) as tmp:
        Path(tmp).write_text("\n".join(out) + "\n", encoding="utf-8")
    return Path(path)
