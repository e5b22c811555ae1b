"""What every brain space shares: a boolean feature mask over a full index set.

A *space* is the geometry that a brain data matrix ``(n_samples, n_features)``
lives in, and everything needed to write a per-feature result back into the
same format. Each format has its own subclass (:class:`VolumeSpace`,
:class:`CiftiSpace`, :class:`GiftiSpace`); all of them describe their features
the same way:

- a *full* index set (the voxel grid, the grayordinates, the vertices) of
  ``n_full`` elements, flattened in C order;
- ``mask``, a boolean array over the full set; the features are the ``True``
  elements, in flattened order.

Two spaces are compared with :meth:`BrainSpace.map_features`, which says for
every feature of one space which feature of the other holds the same
location (or -1), and raises :class:`~dnnsparse.errors.InputError` naming both
files when the geometries cannot be matched.
"""
import colorsys
from pathlib import Path

import numpy as np

from ...errors import FileFormatError, InputError

__all__ = ["BrainSpace", "column_loader", "transfer_values", "normalise_label_table",
           "pick_label_map", "read_image_data"]


class BrainSpace:
    """Base class of the brain geometries (volume grid, CIFTI, GIFTI).

    Subclasses set ``kind`` and implement ``full_shape``, ``_check_same_grid``,
    ``_replace_mask`` and ``to_image``.

    Attributes
    ----------
    mask : ndarray of bool, shape full_shape
        Features are the True elements, in C order.
    source : Path or None
        File the space was read from (used in error messages).
    """

    kind = "brain"
    #: Output suffixes this space can be written to (longest first).
    suffixes = ()

    def __init__(self, mask, *, source=None):
        self.mask = np.asarray(mask, dtype=bool)
        self.source = None if source is None else Path(source)

    # -- features ------------------------------------------------------------
    @property
    def full_shape(self):
        return self.mask.shape

    @property
    def n_full(self):
        return int(self.mask.size)

    @property
    def n_features(self):
        return int(np.count_nonzero(self.mask))

    @property
    def feature_index(self):
        """Flat indices into the full set of the features, shape (n_features,)."""
        return np.flatnonzero(self.mask)

    def describe(self):
        """Short name used in messages: the file name, or the kind of space."""
        return str(self.source) if self.source is not None else f"<{self.kind} data>"

    def subspace(self, keep):
        """A copy whose features are ``self``'s features where ``keep`` is True.

        Parameters
        ----------
        keep : array of bool, shape (n_features,)
        """
        keep = np.asarray(keep, dtype=bool)
        if keep.shape != (self.n_features,):
            raise InputError(f"feature selection has shape {keep.shape}; expected "
                             f"({self.n_features},) for {self.describe()}.")
        mask = np.zeros(self.n_full, dtype=bool)
        mask[self.feature_index[keep]] = True
        return self._replace_mask(mask.reshape(self.full_shape))

    def with_mask(self, mask):
        """A copy with the full-set boolean ``mask`` (shape ``full_shape``)."""
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != self.full_shape:
            raise InputError(f"mask has shape {mask.shape}; expected {self.full_shape} "
                             f"for {self.describe()}.")
        return self._replace_mask(mask)

    def scatter(self, values, *, fill=0):
        """Put per-feature ``values`` (n_maps, n_features) into the full set.

        Returns
        -------
        ndarray of shape (n_maps, n_full), ``fill`` outside the mask.
        """
        values = np.asarray(values)
        out = np.full((values.shape[0], self.n_full), fill, dtype=values.dtype)
        out[:, self.feature_index] = values
        return out

    # -- comparing spaces ----------------------------------------------------
    def _check_same_grid(self, other):
        """Raise InputError unless ``other`` has the same full set (same kind)."""
        raise NotImplementedError

    def _mismatch(self, other, detail):
        return InputError(f"{self.describe()} and {other.describe()} are not in the same "
                          f"space: {detail}. Resample one onto the other first.")

    def map_features(self, target):
        """Feature of ``target`` at the location of each feature of ``self``.

        Parameters
        ----------
        target : BrainSpace

        Returns
        -------
        ndarray of int, shape (self.n_features,)
            Index into ``target``'s features, -1 where ``target`` has no
            feature at that location (outside its mask).

        Raises
        ------
        InputError
            The two spaces are of different kinds or grids.
        """
        if target.kind != self.kind:
            raise self._mismatch(target, f"{self.kind} data cannot be matched with "
                                         f"{target.kind} data")
        self._check_same_grid(target)
        lut = np.full(target.n_full, -1, dtype=np.int64)
        lut[target.feature_index] = np.arange(target.n_features)
        return lut[self.feature_index]

    # -- writing -------------------------------------------------------------
    def check_suffix(self, path):
        """Return the output suffix of ``path`` or raise InputError."""
        name = Path(path).name.lower()
        for suffix in self.suffixes:
            if name.endswith(suffix):
                return suffix
        raise InputError(f"cannot write {self.kind} data from {self.describe()} to "
                         f"{path}; give a name ending in one of {', '.join(self.suffixes)}.")

    def _prepare_values(self, values):
        values = np.asarray(values)
        if values.ndim == 1:
            values = values[None, :]
        if values.ndim != 2 or values.shape[1] != self.n_features:
            raise InputError(f"values to write have shape {values.shape}; expected "
                             f"(n_maps, {self.n_features}) or ({self.n_features},) "
                             f"for {self.describe()}.")
        return values


def transfer_values(values, source, target, *, fill=0):
    """Move per-feature ``values`` from space ``source`` to space ``target``.

    Parameters
    ----------
    values : array, shape (..., source.n_features)
    source, target : BrainSpace
    fill : scalar
        Value of target features that ``source`` does not cover.

    Returns
    -------
    ndarray, shape (..., target.n_features)
    """
    values = np.asarray(values)
    idx = source.map_features(target)
    hit = idx >= 0
    out = np.full(values.shape[:-1] + (target.n_features,), fill, dtype=values.dtype)
    out[..., idx[hit]] = values[..., hit]
    return out


def read_image_data(image, path):
    """``numpy.asanyarray(image.dataobj)``: a nibabel image's data, read now.

    nibabel reads the header when a file is opened and the data only here, so a
    file cut short (an interrupted copy or download) or with damaged compressed
    data fails here -- EOFError, zlib/gzip errors, or a buffer too small -- and
    becomes one :class:`~dnnsparse.errors.FileFormatError` naming the file.
    """
    import zlib

    try:
        data = np.asanyarray(image.dataobj)
        if _is_gzip(path):
            _check_gzip_stream(path)
        return data
    except (EOFError, OSError, ValueError, zlib.error) as exc:
        why = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise FileFormatError(f"{path}: the image data cannot be read ({why}); the file is "
                              f"truncated or damaged: copy it again or recreate it.") from None


def _is_gzip(path):
    with open(path, "rb") as f:
        return f.read(2) == b"\x1f\x8b"


def _check_gzip_stream(path, chunk=1 << 24):
    """Decompress ``path`` to its end so gzip checks the CRC-32 and length it stores.

    nibabel reads a ``.nii.gz``/``.mgz`` only as far as the image data reaches and
    never reaches the trailer, so a byte damaged inside the compressed data can
    decode to wrong values without any error; the checksum catches it.
    """
    import gzip

    with gzip.open(path, "rb") as f:
        while f.read(chunk):
            pass


def column_loader(read, file_dtype):
    """The ``loader`` of a format whose data are a (n_samples, n_full) matrix.

    Parameters
    ----------
    read : callable
        ``read() -> array (n_samples, n_full)``: the data (an array, or a nibabel
        data proxy read on each call).
    file_dtype : dtype
        What the file stores: float64 stays float64, anything else is read as
        float32 (half the memory).

    Returns
    -------
    loader : callable
        ``loader(feature_index) -> ndarray (n_samples, len(feature_index))``,
        C-contiguous.

    Examples
    --------
    >>> load = column_loader(lambda: np.arange(6).reshape(2, 3), np.int64)
    >>> load([2, 0])
    array([[2., 0.],
           [5., 3.]], dtype=float32)
    """
    dtype = np.float64 if file_dtype == np.float64 else np.float32

    def loader(feature_index):
        return np.ascontiguousarray(read()[:, feature_index], dtype=dtype)

    return loader


def _colour(key):
    # Distinct, deterministic colours: golden-ratio steps around the hue circle.
    h = (key * 0.618033988749895) % 1.0
    return colorsys.hsv_to_rgb(h, 0.75, 0.95) + (1.0,)


def normalise_label_table(table, keys=()):
    """Label table as ``{int key: (name, (r, g, b, a))}``, key 0 included.

    Parameters
    ----------
    table : mapping or None
        ``{key: name}`` or ``{key: (name, rgba)}``; None gives the keys as names.
    keys : iterable of int
        Keys that occur in the data; missing ones get their number as name.
    """
    out = {0: ("???", (0.0, 0.0, 0.0, 0.0))}
    for key in sorted({int(k) for k in keys}):
        if key != 0:
            out[key] = (str(key), _colour(key))
    for key, entry in (table or {}).items():
        if isinstance(entry, str):
            name, rgba = entry, _colour(int(key)) if int(key) else (0.0, 0.0, 0.0, 0.0)
        else:
            name, rgba = entry
            rgba = tuple(float(c) for c in rgba)
        out[int(key)] = (str(name), rgba)
    return dict(sorted(out.items()))


def pick_label_map(maps, map_index, path):
    """Map ``map_index`` of ``maps`` (n_maps, n) as int64 labels, checked.

    Raises InputError for a missing map and FileFormatError for non-integer
    values (an atlas resampled with interpolation, or a statistical map).
    """
    if not 0 <= map_index < len(maps):
        raise InputError(f"{path} has {len(maps)} map(s); map {map_index + 1} does not "
                         "exist.")
    values = np.asarray(maps[map_index])
    if not np.array_equal(values, np.round(values)):
        raise FileFormatError(f"{path}: map {map_index + 1} has non-integer values; an "
                              "atlas must hold integer labels (resample it with "
                              "nearest-neighbour interpolation).")
    return values.astype(np.int64)
