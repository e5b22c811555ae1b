"""Regions of interest: :class:`ROISet` and :func:`roi_signals`.

An ROISet is a list of named regions, each a set of features (voxels,
grayordinates or vertices) of one brain space. It is read from a label image
(NIfTI/MGH volume, CIFTI ``.dlabel.nii``, GIFTI ``.label.gii``; names from the
label table when the file has one, else the integer labels) or from several
binary mask files (one ROI each, which may overlap). ROIs can be selected by
name or label and merged under a new name (e.g. ``VTC = V8+FFC+PIT+VVC+VMV``).

Before use with brain data, an ROISet is moved into the data's space with
:meth:`ROISet.to_space`; atlas and data must share the grid (same shape and
affine for volumes, matching brain structures for CIFTI, same vertex count for
GIFTI), otherwise an :class:`~dnnsparse.errors.InputError` names both files.
A volume ROISet made with ``resample=True`` (``-resample-atlas``) is instead
resampled onto the data's grid by nearest neighbour (:meth:`ROISet.resample_to`,
through nilearn's ``resample_to_img``), so label names and overlapping masks
survive.
"""
import logging
from pathlib import Path

import numpy as np
from scipy import sparse

from ..errors import InputError
from ..io.brain import BRAIN_SUFFIXES, load_brain, load_labels
from ..utils.validation import check_choice

__all__ = ["ROISet", "roi_signals", "STATS"]

log = logging.getLogger(__name__)


def _strip_suffix(path):
    name = Path(path).name
    for suffix in sorted(BRAIN_SUFFIXES + (".func.gii", ".shape.gii", ".label.gii"),
                         key=len, reverse=True):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


class ROISet:
    """Named regions, each a set of features of one brain space.

    Parameters
    ----------
    names : list of str, length n_roi
    members : list of array of int
        Feature indices (into ``space``'s features) of each ROI.
    space : dnnsparse.io.brain.BrainSpace
    labels : list of int or None, optional
        Integer label of each ROI in its atlas (None for masks and merged ROIs).
    resample : bool, default=False
        :meth:`to_space` resamples (nearest neighbour) a volume ROISet onto a
        volume grid that differs from its own, instead of refusing it.

    Examples
    --------
    >>> rois = ROISet.from_atlas("MMP.dlabel.nii")                      # doctest: +SKIP
    >>> vtc = rois.merge("VTC", ["L_V8_ROI", "L_FFC_ROI"]).select(["VTC"])  # doctest: +SKIP
    >>> roi_signals(BrainData.load("beta.dscalar.nii"), vtc).shape      # doctest: +SKIP
    (120, 1)
    """

    def __init__(self, names, members, space, *, labels=None, resample=False):
        names = [str(n) for n in names]
        if len(set(names)) != len(names):
            dup = sorted({n for n in names if names.count(n) > 1})
            raise InputError(f"ROI names must be unique; repeated: {dup[:10]}.")
        if len(members) != len(names):
            raise InputError(f"{len(names)} ROI names for {len(members)} ROIs.")
        self.names = names
        self.members = [np.asarray(m, dtype=np.int64) for m in members]
        self.space = space
        self.labels = list(labels) if labels is not None else [None] * len(names)
        self.resample = bool(resample)
        if self.resample and space.kind != "volume":
            raise InputError(f"-resample-atlas: {space.describe()} is a {space.kind} "
                             "file; only volume atlases and masks (NIfTI/MGH) can be "
                             "resampled (surfaces and grayordinates have no voxel grid): "
                             "give an atlas in the data's own space.")

    # -- construction ------------------------------------------------------
    @classmethod
    def from_label_array(cls, labels, space, *, table=None):
        """ROIs from per-feature integer labels (0 = background).

        Parameters
        ----------
        labels : array of int, shape (space.n_features,)
        space : BrainSpace
        table : mapping {int: str}, optional
            Names of the labels; labels without a name are named by number.
        """
        labels = np.asarray(labels, dtype=np.int64)
        if labels.shape != (space.n_features,):
            raise InputError(f"labels have shape {labels.shape}; expected "
                             f"({space.n_features},) for {space.describe()}.")
        # Group feature indices by label with one sort (no loop over features); 16-bit
        # keys (most atlases) get NumPy's radix sort, many times faster on 1 mm grids.
        small = labels.size and -2 ** 15 <= labels.min() and labels.max() < 2 ** 15
        order = np.argsort(labels.astype(np.int16) if small else labels, kind="stable")
        sorted_labels = labels[order]
        # runs of equal labels in the sorted array (np.unique would sort again)
        starts = np.r_[0, np.flatnonzero(sorted_labels[1:] != sorted_labels[:-1]) + 1]
        keys = sorted_labels[starts] if labels.size else sorted_labels
        groups = np.split(order, starts[1:])
        keep = keys != 0
        keys = keys[keep]
        groups = [g for g, k in zip(groups, keep) if k]
        table = {int(k): str(v) for k, v in (table or {}).items()}
        names = [table.get(int(k), str(int(k))) for k in keys]
        return cls(names, groups, space, labels=[int(k) for k in keys])

    @classmethod
    def from_atlas(cls, path, *, names=None, map_index=0):
        """ROIs from a label image: volume, ``.dlabel.nii`` or ``.label.gii``.

        Parameters
        ----------
        path : str or Path
        names : mapping {int: str}, optional
            Label names; they override the file's own label table.
        map_index : int, default=0
            Map of a multi-map atlas to use.
        """
        labels, table, space = load_labels(path, map_index=map_index)
        table = dict(table or {})
        table.update({int(k): str(v) for k, v in (names or {}).items()})
        rois = cls.from_label_array(labels, space, table=table)
        if not len(rois):
            raise InputError(f"atlas {path} has no non-zero label.")
        return rois

    @classmethod
    def from_masks(cls, paths, *, names=None):
        """One ROI per binary mask file (non-zero = inside); ROIs may overlap.

        Parameters
        ----------
        paths : list of str or Path
            Masks in one space (same grid / brain models / vertex count).
        names : list of str, optional
            Default: the file names without their image suffix.
        """
        paths = [Path(p) for p in paths]
        if not paths:
            raise InputError("no mask file given.")
        names = [_strip_suffix(p) for p in paths] if names is None else list(names)
        if len(names) != len(paths):
            raise InputError(f"{len(names)} names for {len(paths)} mask files.")
        members, space = [], None
        for path in paths:
            values, mspace = load_brain(path)
            if len(values) != 1:
                raise InputError(f"mask file {path} holds {len(values)} maps; a mask must "
                                 "be one volume or one map.")
            inside = np.flatnonzero(values[0] != 0)
            if space is None:
                space = mspace
            else:
                inside = mspace.map_features(space)[inside]
                if (inside < 0).any():
                    raise InputError(f"mask {path} covers locations that {paths[0]} does "
                                     "not have; give masks in one space.")
            if not len(inside):
                raise InputError(f"mask file {path} is empty (no non-zero value).")
            members.append(inside)
        return cls(names, members, space)

    # -- description ---------------------------------------------------------
    def __len__(self):
        return len(self.names)

    def __repr__(self):
        shown = ", ".join(self.names[:5]) + (", ..." if len(self) > 5 else "")
        return f"ROISet({len(self)} ROIs: {shown}; space={self.space.describe()!r})"

    @property
    def sizes(self):
        """Number of features in each ROI, ndarray of int (n_roi,)."""
        return np.array([len(m) for m in self.members], dtype=np.int64)

    def table(self):
        """``{"label": [...], "name": [...], "size": [...]}`` for listing (label -1: none)."""
        return {"label": [-1 if lab is None else lab for lab in self.labels],
                "name": list(self.names), "size": self.sizes.tolist()}

    # -- selection and merging -----------------------------------------------
    def index(self, key):
        """Position of ROI ``key`` (a name, an int label, or a label as text)."""
        if isinstance(key, str) and key in self.names:
            return self.names.index(key)
        try:
            label = int(key)
        except (TypeError, ValueError):
            label = None
        if label is not None and label in self.labels:
            return self.labels.index(label)
        shown = ", ".join(self.names[:12]) + (", ..." if len(self) > 12 else "")
        raise InputError(f"no ROI {key!r} in {self.space.describe()}; it has {len(self)} "
                         f"ROIs: {shown} (db_roi -roi ATLAS -list shows all).")

    def select(self, keys):
        """ROISet with only the ROIs ``keys`` (names or labels), in that order."""
        keys = [keys] if isinstance(keys, (str, int, np.integer)) else list(keys)
        idx = [self.index(k) for k in keys]
        return ROISet([self.names[i] for i in idx], [self.members[i] for i in idx],
                      self.space, labels=[self.labels[i] for i in idx],
                      resample=self.resample)

    def merge(self, name, keys, *, replace=False):
        """Add ROI ``name`` = union of ROIs ``keys``.

        Parameters
        ----------
        name : str
            New ROI's name (must not exist yet unless replaced).
        keys : list of str or int
            Names or labels of the ROIs to merge.
        replace : bool, default=False
            Drop the merged ROIs instead of keeping them beside the union.

        Returns
        -------
        ROISet
        """
        idx = [self.index(k) for k in keys]
        union = np.unique(np.concatenate([self.members[i] for i in idx]))
        keep = [i for i in range(len(self)) if not (replace and i in idx)]
        names = [self.names[i] for i in keep] + [str(name)]
        return ROISet(names, [self.members[i] for i in keep] + [union], self.space,
                      labels=[self.labels[i] for i in keep] + [None],
                      resample=self.resample)

    # -- spaces --------------------------------------------------------------
    def to_space(self, space, *, allow_empty=False):
        """The same ROIs expressed in ``space``'s features (e.g. brain data).

        Features of an ROI that ``space`` lacks (outside its mask) are dropped.

        Raises
        ------
        InputError
            Different grids, or an ROI left without features (unless
            ``allow_empty``).
        """
        if space is self.space:
            return self
        try:
            lut = self.space.map_features(space)
        except InputError as exc:
            if self.resample and space.kind == "volume":
                log.info("resampling %s onto the grid of %s (nearest neighbour)",
                         self.space.describe(), space.describe())
                return self.resample_to(space).to_space(space, allow_empty=allow_empty)
            if self.space.kind == space.kind == "volume":
                raise InputError(f"{str(exc).rstrip('.')} (-resample-atlas resamples a "
                                 "label atlas or masks onto the data's grid).") from None
            raise
        members = []
        for m in self.members:                       # loop over ROIs, not features
            mapped = lut[m]
            members.append(np.sort(mapped[mapped >= 0]))
        empty = [n for n, m in zip(self.names, members) if not len(m)]
        if empty and not allow_empty:
            raise InputError(f"ROI(s) {empty[:10]} of {self.space.describe()} have no "
                             f"feature inside {space.describe()} (check its mask), or "
                             "select other ROIs.")
        return ROISet(self.names, members, space, labels=self.labels,
                      resample=self.resample)

    def resample_to(self, space):
        """The same ROIs on another volume grid, by nearest-neighbour resampling.

        Each voxel of ``space``'s grid takes the ROIs of the atlas voxel that
        :func:`nilearn.image.resample_to_img` (``interpolation="nearest"``) picks
        for it, so the result equals resampling the label image itself, and
        overlapping ROIs (masks, merges) stay overlapping. Names and labels are
        kept; an ROI may lose voxels (or all of them) on a coarser grid.

        Parameters
        ----------
        space : VolumeSpace
            Target grid (its mask is not applied here: see :meth:`to_space`).

        Returns
        -------
        ROISet
            Over every voxel of ``space``'s grid.

        Examples
        --------
        >>> rois = ROISet.from_atlas("aparc_1mm.nii.gz")              # doctest: +SKIP
        >>> rois.resample_to(BrainData.load("bold_2mm.nii.gz").space)  # doctest: +SKIP
        """
        if self.space.kind != "volume" or space.kind != "volume":
            raise InputError(f"cannot resample {self.space.describe()} ({self.space.kind}) "
                             f"onto {space.describe()} ({space.kind}): only volumes "
                             "(NIfTI/MGH) have a voxel grid to resample.")
        grid = space.with_mask(np.ones(space.full_shape, dtype=bool))
        flat = np.concatenate(self.members) if len(self) else np.zeros(0, np.int64)
        # 1 + the ROI of each atlas voxel (0: none) -- valid when no voxel is in two ROIs
        owner = np.zeros(self.space.n_full, dtype=np.int32)
        owner[self.space.feature_index[flat]] = np.repeat(np.arange(1, len(self) + 1),
                                                          self.sizes)
        if np.count_nonzero(owner) == len(flat):
            roi = _resample_nearest(owner, self.space, grid) - 1     # ROI per grid voxel
            order = np.argsort(roi.astype(np.int16) if len(self) < 2 ** 15 else roi,
                               kind="stable")
            bounds = np.searchsorted(roi[order], np.arange(len(self) + 1))
            members = [order[bounds[j]:bounds[j + 1]] for j in range(len(self))]
        else:                # overlapping masks or merges: which atlas voxel, then a gather
            index = np.zeros(self.space.n_full, dtype=np.int32)
            index[self.space.feature_index] = np.arange(1, self.space.n_features + 1)
            feature = _resample_nearest(index, self.space, grid) - 1
            hit = np.flatnonzero(feature >= 0)
            picked = self.membership().tocsc()[:, feature[hit]].tocsr()
            members = [hit[picked.indices[picked.indptr[j]:picked.indptr[j + 1]]]
                       for j in range(len(self))]
        return ROISet(self.names, [np.sort(m) for m in members], grid, labels=self.labels,
                      resample=self.resample)

    def membership(self):
        """Sparse (n_roi, n_features) matrix with 1 where a feature is in an ROI."""
        rows = np.repeat(np.arange(len(self)), self.sizes)
        cols = np.concatenate(self.members) if len(self) else np.zeros(0, dtype=np.int64)
        return sparse.csr_matrix((np.ones(len(cols)), (rows, cols)),
                                 shape=(len(self), self.space.n_features))

    def paint(self, values, *, fill=0):
        """Per-feature map where each ROI's features carry its value.

        Parameters
        ----------
        values : array, shape (n_roi,) or (n_maps, n_roi)
        fill : scalar
            Value of features in no ROI. Where ROIs overlap, the later wins.

        Returns
        -------
        ndarray, shape (n_features,) or (n_maps, n_features)
        """
        values = np.asarray(values)
        one = values.ndim == 1
        values = np.atleast_2d(values)
        if values.shape[1] != len(self):
            raise InputError(f"{values.shape[1]} values for {len(self)} ROIs.")
        out = np.full((values.shape[0], self.space.n_features), fill,
                      dtype=np.result_type(values, np.asarray(fill)))
        for j, m in enumerate(self.members):
            out[:, m] = values[:, [j]]
        return out[0] if one else out


def _resample_nearest(values, source, target):
    """Integer ``values`` on ``source``'s full grid, resampled onto ``target``'s grid.

    Through nilearn's ``resample_to_img(interpolation="nearest")``; the voxel it
    picks for each target voxel does not depend on the values, so resampling ROI
    numbers or voxel indices equals resampling the label image itself.

    Returns
    -------
    ndarray of int64, shape (target.n_full,), 0 outside ``source``'s grid.
    """
    import nibabel as nib
    try:
        from nilearn.image import resample_to_img
    except ImportError:
        raise InputError("-resample-atlas needs nilearn: pip install 'dnnsparse[plot]' "
                         "(or pip install nilearn).") from None
    src = nib.Nifti1Image(values.reshape(source.full_shape), source.affine)
    ref = nib.Nifti1Image(np.zeros(target.full_shape, dtype=np.uint8), target.affine)
    out = resample_to_img(src, ref, interpolation="nearest", force_resample=True,
                          copy_header=True)
    return np.asarray(out.dataobj).reshape(-1).astype(np.int64)


def _sparse_mean(data, rois):
    """ROI means via one sparse product, accumulated in float64."""
    member = rois.membership()                                  # (n_roi, n_feat)
    finite = np.isfinite(data)
    if finite.all():
        sums = (member @ data.T.astype(np.float64)).T           # (n_samples, n_roi)
        return sums / rois.sizes
    # NaN/inf (e.g. outside the brain) are left out of each ROI's mean.
    n_bad = int(np.size(data) - np.count_nonzero(finite))
    log.warning("%d non-finite value(s) in the brain data are ignored in ROI means.", n_bad)
    clean = np.where(finite, data, 0).astype(np.float64)
    counts = (member @ finite.T.astype(np.float64)).T
    with np.errstate(invalid="ignore", divide="ignore"):
        return (member @ clean.T).T / counts


def _per_roi(func, nanfunc):
    def stat(data, rois):
        has_nan = not np.isfinite(data).all()
        f = nanfunc if has_nan else func
        out = np.empty((data.shape[0], len(rois)))
        for j, m in enumerate(rois.members):                    # loop over ROIs
            out[:, j] = f(data[:, m].astype(np.float64), axis=1)
        return out
    return stat


#: ROI summary statistics: name -> f(data (n_samples, n_features), rois) -> (n_samples, n_roi)
STATS = {
    "mean": _sparse_mean,
    "median": _per_roi(np.median, np.nanmedian),
    "max": _per_roi(np.max, np.nanmax),
    "min": _per_roi(np.min, np.nanmin),
    "std": _per_roi(np.std, np.nanstd),
}


def roi_signals(brain, rois, *, stat="mean"):
    """Summarise brain data within each ROI.

    Parameters
    ----------
    brain : BrainData
        ``(n_samples, n_features)`` responses.
    rois : ROISet
        In the data's space or a compatible one (moved with :meth:`ROISet.to_space`).
    stat : {"mean", "median", "max", "min", "std"}, default="mean"
        Non-finite values are ignored (with a warning).

    Returns
    -------
    ndarray, shape (n_samples, n_roi), float64

    Examples
    --------
    >>> roi_signals(brain, ROISet.from_atlas("aparc.nii.gz"), stat="median")  # doctest: +SKIP
    """
    check_choice(stat, STATS, name="stat")
    rois = rois.to_space(brain.space)
    return STATS[stat](brain.data, rois)
