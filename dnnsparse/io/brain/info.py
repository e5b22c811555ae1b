"""What a brain image holds, read from its header: for ``db_info`` and the TR.

:func:`repetition_time` gives the sampling interval of a time series (NIfTI
``pixdim[4]`` with its time unit, MGH ``tr``, a CIFTI series step);
:func:`describe_brain` lists a file's grid, affine, samples and label tables as
``(key, value)`` pairs.
"""
import numpy as np
from nibabel import cifti2

from .cifti import CiftiSpace
from .gifti import GiftiSpace
from .volume import VolumeSpace

__all__ = ["describe_brain", "repetition_time"]

#: NIfTI time unit -> seconds
_TIME_UNITS = {"sec": 1.0, "msec": 1e-3, "usec": 1e-6}
_SHOWN = 12            # names listed before "..."


def repetition_time(space):
    """Seconds between samples stored in ``space``'s header, or None.

    Parameters
    ----------
    space : BrainSpace
        Of a 4-D NIfTI (``pixdim[4]`` in its ``xyzt_units`` time unit: s, ms or us;
        None without a time unit, where ``pixdim[4]`` is often just a default 1),
        an MGH file (``tr``, in ms) or a CIFTI ``.dtseries.nii`` (its SeriesAxis
        step, in seconds).

    Examples
    --------
    >>> repetition_time(load_brain("bold.nii.gz")[1])          # doctest: +SKIP
    2.0
    """
    if isinstance(space, VolumeSpace) and space.header is not None:
        header = space.header
        if "tr" in header:                                      # MGH: milliseconds
            tr = float(header["tr"])
            return tr / 1000.0 if tr > 0 else None
        zooms = header.get_zooms()
        if len(zooms) < 4 or not zooms[3] > 0:
            return None
        unit = header.get_xyzt_units()[1]
        # without a time unit pixdim[4] is often nibabel's default 1, not a TR
        return float(zooms[3]) * _TIME_UNITS[unit] if unit in _TIME_UNITS else None
    if isinstance(space, CiftiSpace) and isinstance(space.sample_axis, cifti2.SeriesAxis):
        axis = space.sample_axis
        if axis.unit == "SECOND" and axis.step > 0:
            return float(axis.step)
    return None


def _names(names):
    names = [str(n) for n in names]
    return ", ".join(names[:_SHOWN]) + (f", ... ({len(names)} in all)"
                                        if len(names) > _SHOWN else "")


def _label_lines(table, what="label table"):
    keys = sorted(k for k in table if int(k) != 0)
    return [(what, f"{len(keys)} label(s): "
             + _names(f"{k}={table[k]}" for k in keys))]


def _volume(space, n_samples):
    header = space.header
    zooms = tuple(float(z) for z in header.get_zooms()[:3]) if header is not None else ()
    kind = {"Nifti1Image": "NIfTI-1", "Nifti2Image": "NIfTI-2",
            "MGHImage": "MGH"}.get(space.image_class.__name__, space.image_class.__name__)
    lines = [("format", f"{kind} volume"), ("grid", "x".join(map(str, space.full_shape))),
             ("voxels", space.n_full), ("voxel size (mm)", "x".join(f"{z:g}" for z in zooms)),
             ("samples (volumes)", n_samples)]
    tr = repetition_time(space)
    lines.append(("TR (s)", "not in header" if tr is None else f"{tr:g}"))
    if header is not None and hasattr(header, "get_data_dtype"):
        lines.append(("data type", str(header.get_data_dtype())))
    if header is not None and "intent_code" in header:
        lines.append(("intent", header.get_intent()[0]))
    for i, row in enumerate(space.affine):
        lines.append(("affine" if i == 0 else "", "  ".join(f"{v:10.4f}" for v in row)))
    return lines


def _cifti(space, n_samples):
    axis = space.sample_axis
    kind = {cifti2.ScalarAxis: "dscalar (maps)", cifti2.SeriesAxis: "dtseries (series)",
            cifti2.LabelAxis: "dlabel (label maps)"}.get(type(axis), type(axis).__name__)
    bm = space.brain_models
    lines = [("format", f"CIFTI-2 {kind}"), ("grayordinates", len(bm)),
             ("surface vertices", int(np.count_nonzero(bm.surface_mask))),
             ("voxels", int(np.count_nonzero(bm.volume_mask))), ("samples", n_samples)]
    for name, slc, _ in bm.iter_structures():
        n = slc.stop - slc.start if slc.stop is not None else len(bm) - slc.start
        lines.append(("structure", f"{name.replace('CIFTI_STRUCTURE_', '')}: {n}"))
    if bm.volume_mask.any():
        lines.append(("volume grid", "x".join(map(str, bm.volume_shape))))
        zooms = np.sqrt((bm.affine[:3, :3] ** 2).sum(axis=0))
        lines.append(("voxel size (mm)", "x".join(f"{z:g}" for z in zooms)))
    if isinstance(axis, cifti2.SeriesAxis):
        lines.append(("series", f"start {axis.start:g}, step {axis.step:g} {axis.unit}"))
        tr = repetition_time(space)
        lines.append(("TR (s)", "not in header" if tr is None else f"{tr:g}"))
    if hasattr(axis, "name"):
        lines.append(("map names", _names(axis.name)))
    if isinstance(axis, cifti2.LabelAxis):
        for i, table in enumerate(axis.label):
            lines += _label_lines({k: v[0] for k, v in table.items()},
                                  f"labels of map {i + 1}")
    return lines


def _gifti(path, space, n_samples):
    import nibabel as nib

    img = nib.load(str(path))
    lines = [("format", "GIFTI"), ("vertices", space.n_full), ("data arrays", len(img.darrays)),
             ("samples", n_samples), ("intent", space.intent)]
    for key in ("AnatomicalStructurePrimary", "AnatomicalStructureSecondary"):
        if key in space.meta:
            lines.append((key, space.meta[key]))
    dtypes = sorted({str(np.asarray(d.data).dtype) for d in img.darrays})
    lines.append(("data type", ", ".join(dtypes)))
    if space.map_names:
        lines.append(("array names", _names(space.map_names)))
    if img.labeltable is not None and img.labeltable.labels:
        lines += _label_lines(img.labeltable.get_labels_as_dict())
    return lines


def describe_brain(path):
    """``[(key, value), ...]`` describing a NIfTI/MGH, CIFTI or GIFTI file.

    Volumes: format, grid shape, voxel size, number of volumes, TR, data type,
    intent and affine. CIFTI: brain structures and their sizes, grayordinates,
    map names or series step, label tables. GIFTI: vertices, data arrays,
    structure, label table. Only headers (and GIFTI arrays) are read.

    Examples
    --------
    >>> for key, value in describe_brain("bold.nii.gz"):     # doctest: +SKIP
    ...     print(key, value)
    """
    from . import _FORMATS, brain_format

    loader, space = _FORMATS[brain_format(path)][1](path)
    if isinstance(space, VolumeSpace):
        shape = space.header.get_data_shape() if space.header is not None else ()
        n_samples = int(np.prod(shape[3:])) if len(shape) > 3 else 1
        return _volume(space, n_samples)
    if isinstance(space, CiftiSpace):
        return _cifti(space, len(space.sample_axis))
    if isinstance(space, GiftiSpace):                 # its arrays are read already
        return _gifti(path, space, loader([0]).shape[0])
    return [("format", space.kind)]
