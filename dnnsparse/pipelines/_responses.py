"""What an encoding predicts (or a decoding reads): brain data, ROI signals or
behavioural columns, one row per stimulus.

- :func:`load_responses` -> :class:`Responses` -- brain data (NIfTI/MGH, CIFTI, GIFTI;
  optionally restricted to ROIs), ROI signals (``.roi.h5``) or behavioural columns
  (CSV/TSV), with the targets that can be encoded (finite and varying);
- :func:`count_samples` -- the number of samples of a brain image, from its header.

Examples
--------
>>> resp = Responses(np.array([[1., 0.], [2., 0.], [3., 0.]]), source="toy")
>>> resp.valid.tolist(), resp.n_constant
([True, False], 1)
"""
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from ..errors import InputError

__all__ = ["Responses", "count_samples", "load_responses"]

log = logging.getLogger(__name__)


@dataclass
class Responses:
    """Targets of an encoding (or features of a decoding), one row per stimulus.

    Parameters
    ----------
    data : ndarray of shape (n_samples, n_targets)
    source : str
        File the data came from (for messages).
    names : array of str, optional
        Name of every target (ROI, behavioural column); default its index.
    brain : BrainData, optional
        Brain data (restricted to ``rois``), to write maps and name voxels.
    rois : ROISet, optional
        ROIs in ``brain``'s space.

    Attributes
    ----------
    valid : ndarray of bool, shape (n_targets,)
        Targets that vary and are finite; the others are left out.
    n_constant, n_empty : int
        Targets left out as constant, or as NaN in every sample.
    """

    data: np.ndarray
    source: str
    names: Optional[np.ndarray] = None
    brain: object = None
    rois: object = None
    valid: np.ndarray = field(init=False)
    n_constant: int = field(init=False)
    n_empty: int = field(init=False)

    def __post_init__(self):
        self.data = np.asarray(self.data)
        if self.data.ndim == 1:
            self.data = self.data[:, None]
        if self.names is None:
            self.names = np.arange(self.n_targets).astype(str)
        self.valid, self.n_constant, self.n_empty = _valid_targets(self.data, self.source)

    def report_skipped(self, consequence="their scores are NaN"):
        """Log one warning about constant / empty targets, if there are any."""
        skipped = self.n_constant + self.n_empty
        if skipped:
            log.warning("%s: %d of %d target(s) are constant or empty (%d constant, %d "
                        "NaN); %s.", self.source, skipped, self.n_targets, self.n_constant,
                        self.n_empty, consequence)

    @property
    def n_samples(self):
        return self.data.shape[0]

    @property
    def n_targets(self):
        return self.data.shape[1]

    def target_columns(self):
        """Columns identifying each target in a table (voxel, i/j/k, structure, roi...)."""
        if self.brain is None:
            return {"target": self.names}
        space = self.brain.space
        index = space.feature_index
        if self.brain.kind == "volume":
            cols = {"voxel": index}
            cols.update(zip("ijk", np.unravel_index(index, space.full_shape)))
        elif self.brain.kind == "cifti":
            cols = {"grayordinate": index,
                    "structure": np.asarray(space.brain_models.name)[index]}
        else:
            cols = {"vertex": index}
        if self.rois is not None:
            roi = np.full(self.n_targets, "", dtype=object)
            for name, members in zip(self.rois.names, self.rois.members):
                roi[members] = np.where(roi[members] == "", name, roi[members] + ";" + name)
            cols["roi"] = roi
        return cols

    def sources(self, name="all"):
        """Feature matrices for decoding: ``[(roi, X)]`` per ROI, or ``[(name, X)]``.

        Only valid (varying, finite) targets are kept as features.
        """
        out = []
        for roi, members in self.groups(name).items():
            keep = members[self.valid[members]]
            if not keep.size:
                raise InputError(f"{self.source}: every feature of ROI {roi!r} is "
                                 "constant or NaN.")
            out.append((roi, self.data[:, keep]))
        return out

    def groups(self, name="all"):
        """``{roi: target indices}``: every ROI, or all targets as ``name``."""
        if self.rois is None:
            return {name: np.arange(self.n_targets)}
        return dict(zip(self.rois.names, self.rois.members))


def _valid_targets(data, source):
    """``(valid, n_constant, n_empty)``: targets that can be used; partly missing ones
    are an error.

    A target that is constant, or not finite in any sample (e.g. outside the brain),
    carries no information: it is left out (see :meth:`Responses.report_skipped`).
    """
    n_targets = data.shape[1]
    all_bad, partial, constant = (np.zeros(n_targets, dtype=bool) for _ in range(3))
    step = max(1, (1 << 22) // max(len(data), 1))      # column blocks bound the temporaries
    for start in range(0, n_targets, step):
        b = slice(start, start + step)
        finite = np.isfinite(data[:, b])
        all_bad[b] = ~finite.any(0)
        partial[b] = ~finite.all(0) & ~all_bad[b]
        clean = np.where(finite, data[:, b], 0)
        constant[b] = ~all_bad[b] & (clean.max(0) == clean.min(0))
    if partial.any():
        j = int(np.flatnonzero(partial)[0])
        raise InputError(f"{source}: {int(partial.sum())} target(s) hold NaN or infinite "
                         f"values in some samples (first: target {j}, sample "
                         f"{int(np.flatnonzero(~np.isfinite(data[:, j]))[0])}); fix the "
                         "data or exclude them with -bmask/-roi.")
    valid = ~(all_bad | constant)
    if not valid.any():
        raise InputError(f"{source}: every target is constant or NaN; nothing to use.")
    return valid, int(constant.sum()), int(all_bad.sum())


def load_responses(path, *, rois=None, columns=None):
    """Read brain data, ROI signals or behavioural columns as :class:`Responses`.

    Parameters
    ----------
    path : str or Path
        A brain image (``.nii[.gz]``, ``.mgz``, CIFTI dense, GIFTI), a ``.roi.h5``
        file (its ROIs are the targets), or a CSV/TSV / ``.stim.csv`` table (its
        numeric columns are the targets).
    rois : ROISet, optional
        Brain images only: keep the features inside these ROIs.
    columns : list of str, optional
        Tables: the columns to use (default every numeric column except
        stimID/path/onset/duration/label); ``.roi.h5``: the ROIs to use.

    Returns
    -------
    Responses
    """
    from ..io.brain import BRAIN_SUFFIXES

    name = Path(path).name.lower()
    if name.endswith(".roi.h5"):
        if rois is not None:
            raise InputError(f"{path} already holds ROI signals; -roi/-bmask apply to "
                             "brain images (select ROIs of a .roi.h5 with -meas).")
        from ..io.roi import read_roi_file
        names, data = read_roi_file(path, rois=columns)
        return Responses(data, str(path), names=np.asarray(names))
    if name.endswith((".csv", ".tsv", ".tab", ".txt")):
        if rois is not None:
            raise InputError(f"{path} is a table; -roi/-bmask apply to brain images.")
        return _table_responses(path, columns)
    if not name.endswith(BRAIN_SUFFIXES + (".gii",)):
        raise InputError(f"-resp {path}: expected a brain image ({', '.join(BRAIN_SUFFIXES)}"
                         "), a .roi.h5 file or a CSV/TSV table.")
    if columns:
        raise InputError("-meas selects columns of a table or ROIs of a .roi.h5; for "
                         "brain images use -roi/-bmask/-select.")
    from ..base.brain import BrainData
    brain = BrainData.load(path)
    if rois is not None:
        rois = rois.to_space(brain.space)
        keep = np.zeros(brain.n_features, dtype=bool)
        keep[np.concatenate(rois.members)] = True
        brain = brain.select(keep)
        rois = rois.to_space(brain.space)
    return Responses(brain.data, str(path), brain=brain, rois=rois)


#: Stimulus-table columns that describe the stimuli rather than responses to them.
_DESIGN_COLUMNS = ("stimID", "path", "onset", "duration", "label")


def _table_responses(path, columns):
    from ..io.stim import looks_like_stim
    from ..io.table import read_table

    if looks_like_stim(path):
        from ..base.stimulus import Stimulus
        table = Stimulus.load(path).columns
    else:
        table = read_table(path)
    if columns:
        missing = [c for c in columns if c not in table]
        if missing:
            raise InputError(f"{path} has no column {missing[0]!r}; it has "
                             f"{', '.join(table)}.")
    else:
        columns = [c for c, v in table.items()
                   if c not in _DESIGN_COLUMNS and np.asarray(v).dtype.kind in "iuf"]
        if not columns:
            raise InputError(f"{path} has no numeric column to use as responses; its "
                             f"columns are {', '.join(table)}.")
    try:
        data = np.column_stack([np.asarray(table[c], dtype=np.float64) for c in columns])
    except ValueError:
        bad = next(c for c in columns if np.asarray(table[c]).dtype.kind not in "iufb")
        raise InputError(f"{path}: column {bad!r} is not numeric.") from None
    return Responses(data, str(path), names=np.asarray(columns))


def count_samples(path):
    """Number of samples (volumes, maps, time points) of a brain image, from its header.

    >>> count_samples("run1_bold.nii.gz")                 # doctest: +SKIP
    240
    """
    import nibabel as nib

    from ..io import check_input_file
    from ..io.brain import brain_format

    path = check_input_file(path, what="brain image")
    fmt = brain_format(path)
    try:
        img = nib.load(str(path))
    except Exception as exc:       # nibabel raises several types for bad files
        raise InputError(f"{path}: not a readable brain image ({exc}).") from None
    if fmt == ".gii":
        return len(img.darrays)
    if fmt.startswith(".d"):                            # CIFTI: rows are samples
        return int(img.shape[0])
    shape = img.shape
    return int(shape[3]) if len(shape) > 3 else 1
