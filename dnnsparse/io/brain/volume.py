"""Volumes: NIfTI-1, NIfTI-2 (``.nii``, ``.nii.gz``) and FreeSurfer MGH/MGZ.

A 3-D image is one sample; a 4-D image is one sample per volume (the last
axis). Features are the voxels inside a boolean mask over the 3-D grid
(default: every voxel), in C order of the grid.
"""
import logging

import nibabel as nib
import numpy as np

from ...errors import FileFormatError, InputError
from ._space import BrainSpace, read_image_data

__all__ = ["VolumeSpace", "read_volume"]

log = logging.getLogger(__name__)

#: Data types the MGH format can store.
_MGH_DTYPES = (np.uint8, np.int16, np.int32, np.float32)
_NIFTI_CLASSES = (nib.Nifti1Image, nib.Nifti2Image)


class VolumeSpace(BrainSpace):
    """A 3-D voxel grid (shape, affine, header) with a boolean voxel mask.

    Parameters
    ----------
    mask : ndarray of bool, shape (X, Y, Z)
    affine : ndarray, shape (4, 4)
        Voxel to world (mm) transform.
    header : nibabel header or None
        Header of the source image; copied into written images so that units,
        qform/sform codes and voxel sizes survive.
    image_class : nibabel image class
        Class of the source image (Nifti1Image, Nifti2Image or MGHImage).
    source : Path, optional
    """

    kind = "volume"
    suffixes = (".nii.gz", ".nii", ".mgz", ".mgh")

    def __init__(self, mask, affine, header=None, image_class=nib.Nifti1Image, *,
                 source=None):
        super().__init__(mask, source=source)
        if self.mask.ndim != 3:
            raise InputError(f"a volume mask must be 3-D; got shape {self.mask.shape}.")
        self.affine = np.asarray(affine, dtype=np.float64)
        self.header = header
        self.image_class = image_class

    def _replace_mask(self, mask):
        return VolumeSpace(mask, self.affine, self.header, self.image_class,
                           source=self.source)

    def _check_same_grid(self, other):
        if self.full_shape != other.full_shape:
            raise self._mismatch(other, f"grid {self.full_shape} vs {other.full_shape}")
        # Affines are stored in float32 in NIfTI headers: allow its round-off.
        if not np.allclose(self.affine, other.affine, rtol=0, atol=1e-4):
            raise self._mismatch(other, "the voxel-to-world affines differ "
                                        f"({self.affine.round(4).tolist()} vs "
                                        f"{other.affine.round(4).tolist()})")

    def to_image(self, values, *, names=None, label_table=None, suffix=".nii.gz",
                 dtype=None, fill=0):
        """Nibabel image holding per-feature ``values`` on this grid.

        Parameters
        ----------
        values : array, shape (n_maps, n_features) or (n_features,)
        names : list of str, optional
            NIfTI and MGH have no per-volume names: in a NIfTI file they become
            the header's description (``dnnsparse: name1, name2``, at most 80
            characters; blank without names).
        label_table : mapping, optional
            Marks the image as a label image (NIfTI intent ``label``); the
            table itself cannot be stored in a volume file.
        suffix : str, default=".nii.gz"
            Output suffix; ``.mgh``/``.mgz`` give an MGHImage, NIfTI suffixes
            the source's NIfTI class (NIfTI-1 if the source was MGH).
        dtype : dtype, optional
            Default float32 for float values, int32 for integer values.
        fill : scalar, default=0
            Value of voxels outside the mask.

        Returns
        -------
        nibabel image of shape (X, Y, Z) for one map, (X, Y, Z, n_maps) otherwise.
        A NIfTI image's display range (``cal_min``, ``cal_max``) is the finite
        range of its data, not the source's.
        """
        values = self._prepare_values(values)
        dtype = np.dtype(dtype or (np.int32 if values.dtype.kind in "iub" else np.float32))
        grid = self.scatter(values.astype(dtype), fill=fill)       # (n_maps, n_full)
        data = np.moveaxis(grid.reshape((-1,) + self.full_shape), 0, -1)
        if data.shape[-1] == 1:
            data = data[..., 0]
        if suffix in (".mgh", ".mgz"):
            if dtype.type not in _MGH_DTYPES:
                raise InputError(f"MGH files cannot store {dtype}; use one of "
                                 f"{[np.dtype(t).name for t in _MGH_DTYPES]} or write NIfTI.")
            klass = nib.MGHImage
        else:
            klass = self.image_class if self.image_class in _NIFTI_CLASSES else nib.Nifti1Image
        header = self.header.copy() if (self.header is not None
                                         and klass is self.image_class) else None
        img = klass(np.ascontiguousarray(data), self.affine, header)
        img.header.set_data_dtype(dtype)
        if klass in _NIFTI_CLASSES:
            img.header.set_intent("label" if label_table is not None else "none")
            _describe(img.header, data, names)
        return img


def _describe(header, data, names):
    """Display range and description of a written map, from the map itself.

    A header copied from the source would keep the source's ``cal_min``/``cal_max``
    (a BOLD file's 0..1000 shows an r map almost blank in viewers) and its
    ``descrip``: set the range to the finite minimum and maximum of ``data`` (0, 0
    -- "no range" -- when nothing is finite) and the description to the map names.
    """
    finite = data[np.isfinite(data)] if data.dtype.kind == "f" else data.ravel()
    header["cal_min"], header["cal_max"] = ((finite.min(), finite.max()) if finite.size
                                            else (0, 0))
    text = (f"dnnsparse: {', '.join(map(str, names))}" if names is not None and len(names)
            else "")
    raw = text.encode("ascii", "replace")
    header["descrip"] = raw if len(raw) <= 80 else raw[:77] + b"..."


def _as_4d(img, path):
    shape = img.shape
    if len(shape) == 3:
        return shape + (1,)
    if len(shape) == 4:
        return shape
    if len(shape) > 4 and all(s == 1 for s in shape[4:]):
        return shape[:4]
    if len(shape) == 5 and shape[3] == 1:          # (X, Y, Z, 1, n) as some tools write
        return shape[:3] + (shape[4],)
    raise FileFormatError(f"{path}: a volume must be 3-D or 4-D; got shape {shape}.")


def read_volume(path):
    """Open a NIfTI/MGH volume.

    Returns
    -------
    loader : callable
        ``loader(feature_index) -> ndarray (n_samples, len(feature_index))``,
        reading only the requested voxels (flat C-order indices of the grid).
    space : VolumeSpace
        With every voxel of the grid as a feature.
    """
    try:
        img = nib.load(str(path))
    except Exception as exc:       # nibabel raises several types for bad files
        raise FileFormatError(f"{path}: not a readable NIfTI/MGH image ({exc}).") from None
    if not isinstance(img, (*_NIFTI_CLASSES, nib.MGHImage)):
        raise FileFormatError(f"{path}: expected a NIfTI or MGH volume, got "
                              f"{type(img).__name__}.")
    shape4 = _as_4d(img, path)
    grid = shape4[:3]
    # Keep double precision only when the file has it; float32 halves memory.
    dtype = np.float64 if img.get_data_dtype() == np.float64 else np.float32
    space = VolumeSpace(np.ones(grid, dtype=bool), img.affine, img.header.copy(),
                        type(img), source=path)

    def loader(feature_index):
        arr = read_image_data(img, path).reshape(shape4)
        ijk = np.unravel_index(feature_index, grid)
        # Fancy indexing picks only the requested voxels: (n_sel, n_samples).
        sel = np.asarray(arr[ijk[0], ijk[1], ijk[2], :], dtype=dtype)
        return np.ascontiguousarray(sel.T)

    return loader, space
