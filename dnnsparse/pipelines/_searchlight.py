"""Files in, searchlight maps out: the glue of ``db_searchlight``.

- :func:`read_surface` -- vertex coordinates and triangles of a GIFTI geometry file.
- :func:`load_searchlight_brain` -- the data within a mask.
- :func:`brain_searchlight` -- the neighbourhoods of a brain data file: spheres in a
  volume, discs on a GIFTI surface or on one CIFTI structure's surface.
- :func:`searchlight_maps` -- every layer's RDM against every searchlight's RDM.
- :func:`write_searchlight_outputs` -- the maps in the input's format and a summary.

The maths is :mod:`dnnsparse.algo.searchlight`.
"""
import logging
from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from ..algo.rsa import average_by_label
from ..algo.searchlight import (SurfaceSearchlight, VolumeSearchlight, check_radius,
                                searchlight_scores)
from ._encoding import map_suffix

__all__ = ["SearchlightResult", "brain_searchlight", "load_searchlight_brain",
           "read_surface", "searchlight_maps", "write_searchlight_outputs"]

log = logging.getLogger(__name__)


def read_surface(path):
    """Vertex coordinates (mm) and triangles of a GIFTI surface (``.surf.gii``).

    Returns
    -------
    coords : ndarray, shape (n_vertices, 3), float64
    faces : ndarray of int64, shape (n_faces, 3), or None without a TRIANGLE array
    structure : str or None
        The file's ``AnatomicalStructurePrimary`` (e.g. ``CortexLeft``).

    Raises
    ------
    InputError
        The file holds no POINTSET array (a data file, not a surface).
    """
    import nibabel as nib
    from nibabel import gifti

    from ..errors import FileFormatError
    from ..io import check_input_file

    path = check_input_file(path, what="surface file")
    try:
        img = nib.load(str(path))
    except Exception as exc:       # nibabel raises several types for bad files
        raise FileFormatError(f"{path}: not a readable GIFTI file ({exc}).") from None
    if not isinstance(img, gifti.GiftiImage):
        raise InputError(f"-surf {path}: expected a GIFTI surface (.surf.gii), got "
                         f"{type(img).__name__}.")
    points = img.get_arrays_from_intent("NIFTI_INTENT_POINTSET")
    if not points:
        raise InputError(f"-surf {path} has no surface geometry (no POINTSET array of "
                         "vertex coordinates); give a .surf.gii mesh, e.g. the midthickness.")
    coords = np.asarray(points[0].data, dtype=np.float64)
    if coords.ndim != 2 or coords.shape[1] != 3:
        raise InputError(f"-surf {path}: vertex coordinates must be (n_vertices, 3); got "
                         f"{coords.shape}.")
    tris = img.get_arrays_from_intent("NIFTI_INTENT_TRIANGLE")
    faces = np.asarray(tris[0].data, dtype=np.int64) if tris else None
    structure = dict(img.meta).get("AnatomicalStructurePrimary") or None
    return coords, faces, structure


def _cifti_structure(brain, given, surface_structure, surf):
    from nibabel import cifti2

    bm = brain.space.brain_models
    surfaces = list(bm.nvertices)
    name = given or surface_structure
    if name is None:
        if len(surfaces) != 1:
            raise InputError(f"{brain.space.describe()} has the surface structures "
                             f"{surfaces}; name one with -structure (e.g. CORTEX_LEFT).")
        return surfaces[0]
    try:
        full = cifti2.BrainModelAxis.to_cifti_brain_structure_name(name)
    except ValueError:
        full = None
    if full not in surfaces:
        raise InputError(f"{brain.space.describe()} has no surface structure {name!r}"
                         f"{'' if given else f' (the structure of {surf})'}; it has "
                         f"{surfaces}.")
    return full


def brain_searchlight(brain, radius, *, surface=None, structure=None,
                      distance="euclidean"):
    """The searchlight of a brain data set, and the data restricted to its centres.

    Parameters
    ----------
    brain : BrainData
        A volume (spheres), GIFTI data (discs on ``surface``) or CIFTI data (discs on
        ``surface``, over the grayordinates of one surface ``structure``).
    radius : float
        In mm.
    surface : path-like, optional
        ``.surf.gii`` mesh; required for GIFTI and CIFTI data, refused for volumes.
    structure : str, optional
        CIFTI structure (``CORTEX_LEFT``, ``CortexLeft``, ...); default the
        surface's ``AnatomicalStructurePrimary``, or the file's only surface.
    distance : {"euclidean", "geodesic"}
        Along a surface.

    Returns
    -------
    searchlight : VolumeSearchlight or SurfaceSearchlight
    brain : BrainData
        The data whose features are the searchlight's centres (a CIFTI file's
        grayordinates of ``structure``; otherwise ``brain`` itself).
    """
    radius = check_radius(radius, name="-radius")
    if brain.kind == "volume":
        if surface is not None:
            raise InputError(f"-surf is for surface data; {brain.space.describe()} is a "
                             "volume (spheres of -radius mm).")
        return VolumeSearchlight(brain.space.mask, brain.space.affine, radius), brain
    if surface is None:
        raise InputError(f"{brain.space.describe()} holds {brain.kind.upper()} surface data "
                         "without geometry: give its mesh with -surf lh.midthickness.surf.gii.")
    coords, faces, surf_structure = read_surface(surface)
    if distance == "geodesic" and faces is None:
        raise InputError(f"-surf {surface} has no TRIANGLE array: geodesic distances need "
                         "the mesh's triangles (or use -distance euclidean).")
    if brain.kind == "gifti":
        vertices = brain.space.feature_index
        n_mesh = brain.space.n_vertices
    else:
        name = _cifti_structure(brain, structure, surf_structure, surface)
        bm = brain.space.brain_models
        in_struct = bm.name[brain.space.feature_index] == name
        if not in_struct.any():
            raise InputError(f"{brain.space.describe()}: no grayordinate of {name} is "
                             "inside the mask.")
        brain = brain.select(in_struct)
        vertices = bm.vertex[brain.space.feature_index]
        n_mesh = bm.nvertices[name]
    if len(coords) != n_mesh:
        raise InputError(f"-surf {surface} has {len(coords)} vertices but "
                         f"{brain.space.describe()} has {n_mesh}; give the mesh of the "
                         "same surface (hemisphere and resolution).")
    sl = SurfaceSearchlight(coords, faces, radius, vertices=vertices, distance=distance)
    return sl, brain


def load_searchlight_brain(path, *, mask=None):
    """Brain data for a searchlight: the voxels of ``mask``, or the informative features.

    Parameters
    ----------
    path : path-like
        NIfTI/MGH volume, CIFTI dense file or GIFTI data file.
    mask : path-like, optional
        Mask in the same space (non-zero = inside); a mask on another grid is refused.
        Default: the features whose samples are finite and not all equal.

    Returns
    -------
    BrainData
    """
    from ..base.brain import BrainData

    brain = BrainData.load(path, mask=mask)
    return brain if mask is not None else brain.select(_informative(brain))


def _informative(brain):
    """Features whose samples are finite and not all equal (no pattern to compare)."""
    data = brain.data
    keep = np.all(np.isfinite(data), axis=0) & (np.ptp(data, axis=0) > 0)
    if not keep.any():
        raise InputError(f"{brain.space.describe()}: every feature is constant or "
                         "non-finite across the samples; nothing to map.")
    if not keep.all():
        log.info("%s: %d of %d features are constant or non-finite and left out (give "
                 "-mask to choose).", brain.space.describe(), (~keep).sum(), len(keep))
    return keep


@dataclass
class SearchlightResult:
    """Scores of every layer at every searchlight centre.

    Attributes
    ----------
    layers : list of str
    scores : ndarray, shape (n_layers, n_centres)
    counts : ndarray of int, shape (n_centres,)
        Features in each searchlight.
    brain : BrainData
        Its features are the centres (the format to write in).
    method, metric : str
    """

    layers: list
    scores: np.ndarray
    counts: np.ndarray
    brain: object
    method: str
    metric: str

    def table(self):
        """Per layer: centres scored, mean and maximum score, the peak's location."""
        space = self.brain.space
        rows = {"layer": list(self.layers), "n_centres": [], "n_scored": [],
                "mean_score": [], "max_score": [], "peak": []}
        for s in self.scores:
            ok = np.isfinite(s)
            rows["n_centres"].append(len(s))
            rows["n_scored"].append(int(ok.sum()))
            rows["mean_score"].append(float(s[ok].mean()) if ok.any() else np.nan)
            rows["max_score"].append(float(s[ok].max()) if ok.any() else np.nan)
            if not ok.any():
                rows["peak"].append("")
                continue
            full = space.feature_index[int(np.nanargmax(s))]
            if self.brain.kind == "volume":
                ijk = np.unravel_index(full, space.full_shape)
                rows["peak"].append("voxel " + ",".join(str(int(v)) for v in ijk))
            elif self.brain.kind == "cifti":
                bm = space.brain_models
                rows["peak"].append(f"{bm.name[full]} vertex {int(bm.vertex[full])}")
            else:
                rows["peak"].append(f"vertex {int(full)}")
        return rows


def searchlight_maps(brain, searchlight, layer_rdms, *, labels=None, metric="correlation",
                     method="pearson", min_features=2, chunk_size=None, n_jobs=1,
                     show_progress=False, engine=None):
    """Compare every layer's RDM with every searchlight's RDM.

    Parameters
    ----------
    brain : BrainData
        Features = the searchlight's centres (from :func:`brain_searchlight`).
    searchlight : VolumeSearchlight or SurfaceSearchlight
    layer_rdms : dict str -> array, shape (n_pairs,) or (1, n_pairs)
        One condensed RDM per layer (``dnn_rdms``).
    labels : array, optional
        Average the brain samples within each label first (``Items.group``).
    metric, method, min_features, chunk_size, n_jobs, show_progress, engine
        As :func:`~dnnsparse.algo.searchlight.searchlight_scores` (``engine``: one
        task per chunk of centres on a Dask cluster, the same maps byte for byte).

    Returns
    -------
    SearchlightResult
    """
    data = brain.data
    if labels is not None:
        data, _ = average_by_label(data, labels)
    layers = list(layer_rdms)
    models = np.stack([np.asarray(layer_rdms[l]).reshape(-1) for l in layers])
    scores, counts = searchlight_scores(data, searchlight, models, metric=metric,
                                        method=method, min_features=min_features,
                                        chunk_size=chunk_size, n_jobs=n_jobs,
                                        show_progress=show_progress, return_counts=True,
                                        engine=engine)
    n_nan = np.isnan(scores).all(axis=0).sum()
    if n_nan:
        log.warning("%d of %d centres have no score (fewer than %d features, or constant "
                    "patterns): NaN in the maps.", n_nan, scores.shape[1], min_features)
    return SearchlightResult(layers, scores, counts, brain, method, metric)


def write_searchlight_outputs(out, result):
    """``score.*`` (one map per layer), ``n_features.*`` and ``searchlight.csv`` in ``out``.

    Maps are in the input's format (a volume keeps its suffix; CIFTI gives
    ``.dscalar.nii``, GIFTI ``.func.gii``); features that are not centres are NaN (0 in
    ``n_features``).

    Returns
    -------
    list of str
        The names written.
    """
    from ..io.table import write_table

    brain = result.brain
    sfx = map_suffix(brain)
    brain.save_like(out / f"score{sfx}", result.scores, names=result.layers, fill=np.nan,
                    force=True)
    dtype = np.int32 if brain.kind == "volume" else np.float32
    brain.save_like(out / f"n_features{sfx}", result.counts.astype(np.int32),
                    names=["n_features"], dtype=dtype, force=True)
    write_table(out / "searchlight.csv", result.table(), force=True)
    return [f"score{sfx}", f"n_features{sfx}", "searchlight.csv"]
