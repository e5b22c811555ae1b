"""Where an encoding's features come from: DNN layers, ROI signals or brain voxels.

db_encode's ``-act`` (and db_corr's) used to be only an ``.act.h5`` file; this module
lets it be any of

- an activation file -- one feature set per layer (:class:`ActivationSource`, the
  units of :class:`~dnnsparse.pipelines.LayerFeatures`);
- a ``.roi.h5`` file -- one feature set holding its ROI signals together, named after
  the file (``layers`` selects ROIs);
- brain data (NIfTI/MGH, CIFTI, GIFTI through :class:`~dnnsparse.base.BrainData`) --
  one feature set per ROI of ``rois`` (the voxels inside it; ``"brain"``, all voxels,
  without ROIs; ``layers`` selects ROIs by name).

Every source has ``kind``, ``path``, ``layers``, ``n_stim``, ``stim_ids`` (None when
the file has no stimulus IDs) and ``layer_features(layer, iter_axis=None)``; every
feature set has ``layer``, ``n_stim``, ``unit_axes``, ``blocks()`` and
``block_index()`` as :class:`~dnnsparse.pipelines.LayerFeatures` has.

Examples
--------
>>> src = load_feature_source("beta.nii.gz", rois=rois)         # doctest: +SKIP
>>> src.layers                                                  # doctest: +SKIP
['V1', 'FFA']
"""
from pathlib import Path

import numpy as np

from ..errors import InputError
from ._encoding import ActivationSource
from ._responses import Responses

__all__ = ["FEATURE_KINDS", "FeatureMatrix", "feature_kind", "load_feature_source",
           "load_targets"]

#: kind of -act file -> what one feature set ("layer") is.
FEATURE_KINDS = {"dnn": "the selected units of one layer of an .act.h5 file",
                 "roi": "the ROI signals of a .roi.h5 file, together",
                 "brain": "the voxels/vertices of one ROI of brain data (all without ROIs)"}


def feature_kind(path):
    """``"dnn"``, ``"roi"`` or ``"brain"`` from a file name (InputError otherwise).

    >>> feature_kind("alexnet.act.h5"), feature_kind("v1.roi.h5"), feature_kind("b.nii.gz")
    ('dnn', 'roi', 'brain')
    """
    from ..io.brain import BRAIN_SUFFIXES

    name = Path(path).name.lower()
    if name.endswith(".roi.h5"):
        return "roi"
    if name.endswith((".h5", ".hdf5")):
        return "dnn"
    if name.endswith(BRAIN_SUFFIXES + (".gii",)):
        return "brain"
    raise InputError(f"{path}: expected an activation file (.act.h5), a .roi.h5 file or "
                     f"brain data ({', '.join(BRAIN_SUFFIXES)}).")


class FeatureMatrix:
    """One feature set that is a plain matrix (ROI signals, the voxels of one ROI).

    Parameters
    ----------
    layer : str
        Its name (the ``layer`` column of the tables).
    X : ndarray of shape (n_stim, n_units)
    coords : ndarray of int, shape (n_units, len(unit_axes))
        Where each unit lies (voxel i, j, k; vertex; grayordinate).
    unit_axes : tuple of str
        Names of the columns of ``coords`` (``best_<axis>`` in the tables).
    """

    iter_axis = None

    def __init__(self, layer, X, coords, unit_axes):
        self.layer = layer
        self.data = np.asarray(X)
        self.coords = np.asarray(coords, dtype=np.int64).reshape(self.data.shape[1], -1)
        self.unit_axes = tuple(unit_axes)

    @property
    def n_stim(self):
        return self.data.shape[0]

    def blocks(self):
        return [("", self.data, self.coords)]

    def block_index(self):
        return {}


class _MatrixSource:
    """Feature sets given as ``{name: FeatureMatrix}``, in order."""

    def __init__(self, kind, path, sets):
        self.kind, self.path, self._sets = kind, str(path), dict(sets)
        self.n_stim = next(iter(self._sets.values())).n_stim
        self.stim_ids = None

    @property
    def layers(self):
        return list(self._sets)

    def layer_features(self, layer, iter_axis=None):
        if iter_axis is not None:
            raise InputError(f"-iteraxis splits DNN layers; {self.path} holds "
                             f"{FEATURE_KINDS[self.kind].split(' of ')[0]}.")
        return self._sets[layer]

    def close(self):
        pass


def _select(names, layers, path, what):
    if not layers:
        return list(names)
    missing = [n for n in layers if n not in names]
    if missing:
        raise InputError(f"{path} has no {what} {missing[0]!r}; it has "
                         f"{', '.join(map(str, names))}.")
    return list(layers)


def _read_rois(path):
    """``read_roi_file`` refusing a file without ROIs (one clear line)."""
    from ..io.roi import read_roi_file

    names, data = read_roi_file(path)
    if not len(names):
        raise InputError(f"{path} holds no ROIs; write ROI signals into it with db_roi.")
    return names, data


def load_targets(path, *, rois=None, columns=None):
    """:func:`~dnnsparse.pipelines.load_responses`, refusing a ``.roi.h5`` without ROIs."""
    from ._responses import load_responses

    if str(path).lower().endswith(".roi.h5"):
        _read_rois(path)
    return load_responses(path, rois=rois, columns=columns)


def _roi_source(path, layers):
    names, data = _read_rois(path)
    keep = _select(names, layers, path, "ROI")
    data = data[:, [names.index(n) for n in keep]]
    resp = Responses(data, str(path), names=np.asarray(keep))   # refuses partial NaN
    if not resp.valid.all():
        bad = [n for n, ok in zip(keep, resp.valid) if not ok]
        raise InputError(f"{path}: ROI signal(s) {', '.join(bad)} are constant or NaN; "
                         "leave them out with -layer.")
    name = Path(path).name[: -len(".roi.h5")] or "rois"
    return _MatrixSource("roi", path, {name: FeatureMatrix(name, resp.data, np.zeros(
        (len(keep), 0)), ())})


def _brain_source(path, rois, layers):
    from ..base.brain import BrainData

    brain = BrainData.load(path)
    if rois is not None:
        rois = rois.to_space(brain.space)
    resp = Responses(brain.data, str(path), brain=brain, rois=rois)
    resp.report_skipped("they are left out of the features")
    cols = resp.target_columns()
    axes = {"volume": ("i", "j", "k"), "cifti": ("grayordinate",),
            "gifti": ("vertex",)}[brain.kind]
    coords = np.column_stack([np.asarray(cols[a], dtype=np.int64) for a in axes])
    groups = resp.groups("brain")
    sets = {}
    for name in _select(list(groups), layers, path, "ROI"):
        members = groups[name]
        keep = members[resp.valid[members]]
        if not keep.size:
            raise InputError(f"{path}: every voxel of ROI {name!r} is constant or NaN.")
        sets[str(name)] = FeatureMatrix(str(name), resp.data[:, keep], coords[keep], axes)
    return _MatrixSource("brain", path, sets)


def load_feature_source(path, *, layers=None, chn=None, dmask=None, rois=None):
    """The feature sets of ``-act`` ``path``: DNN layers, ROI signals or brain ROIs.

    Parameters
    ----------
    path : str or Path
        ``.act.h5``, ``.roi.h5`` or brain data.
    layers : list of str, optional
        Layers of an activation file, ROIs of a ``.roi.h5`` file (kept together in one
        feature set) or ROIs of ``rois`` for brain data; default all.
    chn, dmask
        Activation files only (see :func:`~dnnsparse.pipelines.layer_mask`).
    rois : ROISet, optional
        Brain data only: one feature set per ROI.

    Returns
    -------
    ActivationSource or source of :class:`FeatureMatrix`
    """
    kind = feature_kind(path)
    if kind != "dnn" and (chn or dmask):
        raise InputError(f"-chn/-dmask select units of DNN layers; {path} is not an "
                         ".act.h5 file.")
    if kind != "brain" and rois is not None:
        raise InputError(f"ROIs of the features (-act-roi/-act-bmask) apply to brain "
                         f"data; {path} is not a brain image.")
    if kind == "dnn":
        from ..base.activation import Activation
        from ._encoding import layer_mask

        act = Activation.load(path)
        return ActivationSource(act, layer_mask(act, layers=layers, chn=chn, dmask=dmask))
    if kind == "roi":
        return _roi_source(path, layers)
    return _brain_source(path, rois, layers)
