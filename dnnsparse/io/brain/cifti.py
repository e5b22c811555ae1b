"""CIFTI-2 dense files (dscalar, dtseries, dlabel) through nibabel's axes API.

Rows of the CIFTI matrix are samples (maps or time points); columns are the
grayordinates of a :class:`nibabel.cifti2.BrainModelAxis` (surface vertices
and/or voxels). Features are the grayordinates inside a boolean mask
(default: all).

Written files get the NIfTI intent that Connectome Workbench expects for the
suffix: ``.dscalar.nii`` (ScalarAxis), ``.dtseries.nii`` (SeriesAxis) and
``.dlabel.nii`` (LabelAxis with a label table).
"""
import nibabel as nib
import numpy as np
from nibabel import cifti2

from ...errors import FileFormatError, InputError
from ._space import (BrainSpace, column_loader, normalise_label_table, pick_label_map,
                     read_image_data)

__all__ = ["CiftiSpace", "read_cifti", "read_cifti_labels", "CIFTI_SUFFIXES"]

#: Output suffix -> NIfTI intent of the CIFTI file.
CIFTI_SUFFIXES = {
    ".dscalar.nii": "ConnDenseScalar",
    ".dtseries.nii": "ConnDenseSeries",
    ".dlabel.nii": "ConnDenseLabel",
}


class CiftiSpace(BrainSpace):
    """Grayordinates of a CIFTI-2 BrainModelAxis with a boolean mask.

    Parameters
    ----------
    mask : ndarray of bool, shape (n_grayordinates,)
    brain_models : nibabel.cifti2.BrainModelAxis
    sample_axis : ScalarAxis, SeriesAxis or LabelAxis, optional
        Row axis of the source file (names of its maps, or its time step).
    source : Path, optional
    """

    kind = "cifti"
    suffixes = tuple(CIFTI_SUFFIXES)

    def __init__(self, mask, brain_models, sample_axis=None, *, source=None):
        super().__init__(mask, source=source)
        if self.mask.shape != (len(brain_models),):
            raise InputError(f"CIFTI mask has shape {self.mask.shape}; expected "
                             f"({len(brain_models)},) grayordinates.")
        self.brain_models = brain_models
        self.sample_axis = sample_axis

    def _replace_mask(self, mask):
        return CiftiSpace(mask, self.brain_models, self.sample_axis, source=self.source)

    @property
    def map_names(self):
        """Names of the source's maps (ScalarAxis/LabelAxis), else None."""
        if not hasattr(self.sample_axis, "name"):
            return None
        return [str(n) for n in self.sample_axis.name]

    def _grayordinate_keys(self, structures, volume_shape):
        """One int64 key per grayordinate: (structure, vertex) or voxel index."""
        bm = self.brain_models
        struct_id = np.searchsorted(structures, bm.name).astype(np.int64)
        keys = struct_id * (1 << 40) + bm.vertex
        surf = np.isin(bm.name, list(bm.nvertices))
        if not surf.all():
            vox = np.ravel_multi_index(tuple(bm.voxel[~surf].T), volume_shape)
            keys[~surf] = -1 - vox.astype(np.int64)       # voxels: negative keys
        return keys

    def _check_same_grid(self, other):
        a, b = self.brain_models, other.brain_models
        for name in set(a.nvertices) & set(b.nvertices):
            if a.nvertices[name] != b.nvertices[name]:
                raise self._mismatch(other, f"{name} has {a.nvertices[name]} vs "
                                            f"{b.nvertices[name]} vertices")
        if a.affine is not None and b.affine is not None and (
                a.volume_shape != b.volume_shape
                or not np.allclose(a.affine, b.affine, rtol=0, atol=1e-4)):
            raise self._mismatch(other, "the volume parts use different voxel grids")

    def map_features(self, target):
        if target.kind != self.kind:
            raise self._mismatch(target, f"{self.kind} data cannot be matched with "
                                         f"{target.kind} data")
        self._check_same_grid(target)
        if self.brain_models == target.brain_models:
            return super().map_features(target)
        # Different brain models (e.g. a cortex-only atlas on 91k data): match
        # grayordinates by structure + vertex, or by voxel, with one sort.
        structures = np.unique(np.concatenate([self.brain_models.name,
                                               target.brain_models.name]))
        shape = self.brain_models.volume_shape or target.brain_models.volume_shape
        mine = self._grayordinate_keys(structures, shape)[self.feature_index]
        theirs = target._grayordinate_keys(structures, shape)[target.feature_index]
        out = np.full(len(mine), -1, dtype=np.int64)
        if len(theirs):
            order = np.argsort(theirs, kind="stable")
            pos = np.minimum(np.searchsorted(theirs[order], mine), len(theirs) - 1)
            found = theirs[order][pos] == mine
            out[found] = order[pos[found]]
        if len(mine) and not (out >= 0).any():
            raise self._mismatch(target, "they share no grayordinates")
        return out

    def to_image(self, values, *, names=None, label_table=None, suffix=".dscalar.nii",
                 dtype=None, fill=0):
        """Cifti2Image holding per-feature ``values`` on these brain models.

        Parameters
        ----------
        values : array, shape (n_maps, n_features) or (n_features,)
        names : list of str, optional
            Map names (dscalar/dlabel); default ``map_1``, ``map_2``, ...
        label_table : mapping, optional
            ``{key: name}`` or ``{key: (name, rgba)}`` for ``.dlabel.nii``;
            keys without an entry are named by their number.
        suffix : {".dscalar.nii", ".dtseries.nii", ".dlabel.nii"}
        dtype : dtype, optional
            Default float32 (int32 for dlabel).
        fill : scalar, default=0
            Value of grayordinates outside the mask.
        """
        values = self._prepare_values(values)
        n_maps = values.shape[0]
        if suffix not in CIFTI_SUFFIXES:
            raise InputError(f"unknown CIFTI suffix {suffix!r}; use one of "
                             f"{', '.join(CIFTI_SUFFIXES)}.")
        if names is None:
            names = [f"map_{i + 1}" for i in range(n_maps)]
        names = [str(n) for n in names]
        if len(names) != n_maps:
            raise InputError(f"{len(names)} map names for {n_maps} maps.")
        if suffix == ".dlabel.nii":
            if not np.array_equal(values, np.round(values)):
                raise InputError("a .dlabel.nii needs integer values (label keys).")
            dtype = np.dtype(dtype or np.int32)
            table = normalise_label_table(label_table, np.unique(values))
            row_axis = cifti2.LabelAxis(names, table)
        elif suffix == ".dtseries.nii":
            dtype = np.dtype(dtype or np.float32)
            src = self.sample_axis
            start, step, unit = ((src.start, src.step, src.unit)
                                 if isinstance(src, cifti2.SeriesAxis) else (0.0, 1.0, "SECOND"))
            row_axis = cifti2.SeriesAxis(start, step, n_maps, unit=unit)
        else:
            dtype = np.dtype(dtype or np.float32)
            row_axis = cifti2.ScalarAxis(names)
        data = self.scatter(values.astype(dtype), fill=fill)
        header = cifti2.Cifti2Header.from_axes((row_axis, self.brain_models))
        img = cifti2.Cifti2Image(data, header)
        img.nifti_header.set_intent(CIFTI_SUFFIXES[suffix])
        img.nifti_header.set_data_dtype(dtype)
        return img


def _open(path):
    try:
        img = nib.load(str(path))
    except Exception as exc:
        raise FileFormatError(f"{path}: not a readable CIFTI-2 file ({exc}).") from None
    if not isinstance(img, cifti2.Cifti2Image):
        raise FileFormatError(f"{path}: expected a CIFTI-2 file, got {type(img).__name__}.")
    if img.ndim != 2:
        raise FileFormatError(f"{path}: expected a 2-D CIFTI matrix; got shape {img.shape}.")
    rows, cols = (img.header.get_axis(i) for i in range(2))
    if not isinstance(cols, cifti2.BrainModelAxis):
        raise FileFormatError(f"{path}: columns are a {type(cols).__name__}; only dense "
                              "files (dscalar, dtseries, dlabel) with brain models are read.")
    if not isinstance(rows, (cifti2.ScalarAxis, cifti2.SeriesAxis, cifti2.LabelAxis)):
        raise FileFormatError(f"{path}: rows are a {type(rows).__name__}; expected maps "
                              "or a series (dscalar, dtseries, dlabel).")
    return img, rows, cols


def read_cifti(path):
    """Open a dense CIFTI-2 file.

    Returns
    -------
    loader : callable
        ``loader(feature_index) -> ndarray (n_samples, len(feature_index))``.
    space : CiftiSpace
        With every grayordinate as a feature.
    """
    img, rows, cols = _open(path)
    space = CiftiSpace(np.ones(len(cols), dtype=bool), cols, rows, source=path)
    return column_loader(lambda: read_image_data(img, path), img.get_data_dtype()), space


def read_cifti_labels(path, *, map_index=0):
    """Integer labels of one map of a dlabel (or integer dscalar) file.

    Returns
    -------
    labels : ndarray of int64, shape (n_grayordinates,)
    table : dict {key: name} or None
        From the dlabel's label table; None for a dscalar.
    space : CiftiSpace
    """
    img, rows, cols = _open(path)
    labels = pick_label_map(read_image_data(img, path), map_index, path)
    table = None
    if isinstance(rows, cifti2.LabelAxis):
        table = {int(k): v[0] for k, v in rows.label[map_index].items()}
    space = CiftiSpace(np.ones(len(cols), dtype=bool), cols, rows, source=path)
    return labels, table, space
