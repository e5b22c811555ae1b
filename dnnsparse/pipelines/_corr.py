"""In-sample correlation maps of whole files: the library behind db_corr.

For every layer of a feature source (:mod:`._features`) and every target of
:class:`~dnnsparse.pipelines.Responses`, the largest Pearson r over the layer's units
and which unit gives it (:func:`dnnsparse.algo.correlation.max_correlation`).
NOTHING IS HELD OUT: the unit is chosen on the stimuli the r is computed on, so the
r is biased upward. Every output says so: file names ``*_insample*``, an
``insample`` column, map names, and a logged warning.

- :func:`layer_correlation` -> :class:`LayerCorrelation`;
- :func:`correlation_table` -- one row per layer x target;
- :func:`write_correlation_maps` -- maps in the input's brain format.

Examples
--------
>>> from dnnsparse.base.activation import Activation
>>> rng = np.random.default_rng(0)
>>> act = Activation({"fc": rng.standard_normal((40, 5))})
>>> from dnnsparse.pipelines import LayerFeatures, Responses
>>> resp = Responses(act.get("fc")[:, 3, 0, 0] * 2.0, source="toy")
>>> res = layer_correlation(LayerFeatures(act, "fc"), resp)
>>> res.best_unit.tolist(), res.best_coord.tolist()
([4], [[4, 1, 1]])
"""
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["INSAMPLE_WARNING", "LayerCorrelation", "correlation_table", "layer_correlation",
           "write_correlation_maps"]

log = logging.getLogger(__name__)

#: Logged once per run (and in db_corr's help).
INSAMPLE_WARNING = ("correlations are IN-SAMPLE: each target's best unit is chosen and "
                    "scored on the same stimuli, so the r are biased upward (more so for "
                    "layers with more units); they describe, they do not test. Use "
                    "db_encode for cross-validated scores.")


@dataclass
class LayerCorrelation:
    """Best unit of one layer for every target, in-sample.

    Attributes
    ----------
    layer : str
    r : ndarray of shape (n_targets,)
        Largest Pearson r (NaN for targets left out: constant or empty).
    best_unit : ndarray of int, shape (n_targets,)
        1-based unit (column of the layer's units, channel-major) giving ``r``; 0 where
        ``r`` is NaN.
    best_coord : ndarray of int, shape (n_targets, len(unit_axes))
        That unit's coordinates (1-based channel, row, column of a DNN layer); 0 where
        ``r`` is NaN.
    unit_axes : tuple of str
    spatial : bool
        The layer has more than one (row, col) position (unpooled).
    n_units : int
    absolute : bool
        Units were ranked by ``|r|``.
    """

    layer: str
    r: np.ndarray
    best_unit: np.ndarray
    best_coord: np.ndarray
    unit_axes: tuple
    spatial: bool
    n_units: int
    absolute: bool = False
    insample: bool = True


def layer_correlation(features, responses, *, absolute=False, chunk=None):
    """In-sample best unit of a feature set for every valid target of ``responses``.

    Parameters
    ----------
    features : LayerFeatures or FeatureMatrix
        One feature set (its single block: all selected units).
    responses : Responses
        Same stimuli in the same order.
    absolute : bool, default=False
        Rank units by ``|r|``.
    chunk : int, optional
        Targets per matrix product (see :func:`~dnnsparse.algo.correlation.max_correlation`).

    Returns
    -------
    LayerCorrelation
    """
    from ..algo.correlation import max_correlation
    from ..errors import InputError

    if responses.n_samples != features.n_stim:
        raise InputError(f"{responses.source} has {responses.n_samples} samples but the "
                         f"features have {features.n_stim} stimuli; they must match.")
    (_, X, coords), = features.blocks()
    valid = responses.valid
    res = max_correlation(X, responses.data[:, valid], absolute=absolute, chunk=chunk)
    n = responses.n_targets
    r = np.full(n, np.nan)
    unit = np.zeros(n, dtype=np.int64)
    coord = np.zeros((n, coords.shape[1]), dtype=np.int64)
    ok = res.best_unit >= 0
    where = np.flatnonzero(valid)[ok]
    r[where] = res.r[ok]
    unit[where] = res.best_unit[ok] + 1
    coord[where] = coords[res.best_unit[ok]]
    data = getattr(features, "data", X)
    spatial = data.ndim == 4 and data.shape[2] * data.shape[3] > 1
    return LayerCorrelation(layer=features.layer, r=r, best_unit=unit, best_coord=coord,
                            unit_axes=tuple(features.unit_axes), spatial=spatial,
                            n_units=X.shape[1], absolute=absolute)


def _unit_columns(results):
    """``best_<axis>`` columns: a DNN's row and column only when a layer is unpooled."""
    axes = list(results[0].unit_axes)
    if axes[1:] == ["row", "col"] and not any(res.spatial for res in results):
        axes = axes[:1]
    return axes


def correlation_table(results, responses):
    """One row per layer x target: layer, target columns, r, best_unit, best_<axis>...,
    n_units, insample (always True).

    Parameters
    ----------
    results : list of LayerCorrelation
    responses : Responses

    Returns
    -------
    dict of column -> array
    """
    target_cols = responses.target_columns()
    axes = _unit_columns(results)
    table = {}
    for res in results:
        n = res.r.size
        cols = {"layer": np.full(n, res.layer, dtype=object),
                **{k: np.asarray(v) for k, v in target_cols.items()},
                "r": res.r, "best_unit": res.best_unit}
        cols.update({f"best_{a}": res.best_coord[:, res.unit_axes.index(a)] for a in axes})
        cols.update(n_units=np.full(n, res.n_units), insample=np.full(n, True))
        for k, v in cols.items():
            table.setdefault(k, []).append(np.asarray(v))
    return {k: np.concatenate(v) for k, v in table.items()}


def write_correlation_maps(out_dir, result, responses, *, force=False):
    """Write a layer's in-sample maps in the brain input's format.

    Files (suffix :func:`~dnnsparse.pipelines.map_suffix`) in ``out_dir``:
    ``r_insample``, ``best_unit_insample`` and ``best_<axis>_insample`` for the unit's
    channel (and row, column when the layer is unpooled); targets left out are NaN
    (r) or 0 (unit maps). Map names (CIFTI/GIFTI) say "in-sample" too.

    Returns
    -------
    list of Path
    """
    from ._encoding import map_suffix

    brain = responses.brain
    sfx = map_suffix(brain)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    name = [f"{result.layer} in-sample max r"]
    written = [brain.save_like(out_dir / f"r_insample{sfx}", result.r[None], names=name,
                               fill=np.nan, force=force)]
    axes = _unit_columns([result])
    units = {"best_unit": result.best_unit,
             **{f"best_{a}": result.best_coord[:, result.unit_axes.index(a)] for a in axes}}
    dtype = np.int32 if brain.kind == "volume" else np.float32
    for key, values in units.items():
        written.append(brain.save_like(out_dir / f"{key}_insample{sfx}", values[None],
                                       names=[f"{result.layer} in-sample {key}"],
                                       dtype=dtype, force=force))
    return written
