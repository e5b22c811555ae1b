"""Decoding DNN units from brain responses (DNNBrain's db_decode direction).

For every feature source (the voxels of an ROI, the signals of a ``.roi.h5`` file)
and every layer, one cross-validated regressor per unit predicts the unit's
activation from the brain features (:func:`dnnsparse.algo.decoding.decode` with a
multi-target ``y``: the same folds, standardisation and permutations as db_decode's
column decoding; p per unit and max-statistic p across the layer's units).

- :func:`decode_units` -> list of :class:`UnitDecoding`;
- :func:`unit_decoding_tables` -- one row per source x layer x unit, and a summary.

Examples
--------
>>> rng = np.random.default_rng(0)
>>> X = rng.standard_normal((60, 4))
>>> units = np.stack([X[:, 0] + 0.1 * rng.standard_normal(60), rng.standard_normal(60)], 1)
>>> layer = ("fc", lambda: (units[:, :, None, None], np.array([[1, 1, 1], [2, 1, 1]])))
>>> res, = decode_units([("V1", X)], [layer], model="glm", cv=5, seed=0)
>>> bool(res.r[0] > 0.9), bool(abs(res.r[1]) < 0.5)
(True, True)
"""
import logging
from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..errors import InputError
from ..utils.progress import progress as progress_bar
from ._responses import Responses

__all__ = ["UNIT_MODELS", "UnitDecoding", "decode_units", "unit_decoding_tables"]

log = logging.getLogger(__name__)

#: Regressors that can predict units (db_decode's classifiers cannot).
UNIT_MODELS = ("ridge", "lasso", "glm")


@dataclass
class UnitDecoding:
    """Cross-validated decoding of every unit of one layer from one feature source.

    Attributes
    ----------
    source, layer : str
    n_features : int
    model : str
    coords : ndarray of int, shape (n_units, 3)
        1-based (channel, row, column) of every unit.
    r, r2 : ndarray of shape (n_units,)
        Scores of the held-out predictions (NaN for constant units).
    p, p_fwer : ndarray of shape (n_units,) or None
        Permutation p, and max-statistic p across the layer's units.
    folds : ndarray of shape (n_samples,)
    """

    source: str
    layer: str
    n_features: int
    model: str
    coords: np.ndarray
    r: np.ndarray
    r2: np.ndarray
    folds: np.ndarray
    p: Optional[np.ndarray] = None
    p_fwer: Optional[np.ndarray] = None


def decode_units(sources, layers, *, model="ridge", progress=False, **decode_args):
    """Decode every unit of every layer from every feature source.

    Parameters
    ----------
    sources : list of (str, ndarray of shape (n_samples, n_features))
        Brain features (:func:`~dnnsparse.pipelines.response_sources`).
    layers : list of (str, callable)
        :func:`~dnnsparse.pipelines.layer_sources` with ``coords=True``: ``read()``
        gives ``(data (n_samples, n_chn, n_row, n_col), coords (n_units, 3))``.
    model : {"ridge", "lasso", "glm"}
    decode_args
        Passed to :func:`dnnsparse.algo.decoding.decode` (cv, groups, n_perm, seed,
        model_params); an int seed gives every source and layer the same folds and
        permutations.

    Returns
    -------
    list of UnitDecoding
        Layer-major: every source for the first layer, then the next layer.
    """
    from ..algo.decoding import decode

    if model not in UNIT_MODELS:
        raise InputError(f"-model {model} is a classifier; DNN units are decoded with a "
                         f"regressor: {', '.join(UNIT_MODELS)}.")
    out = []
    bar = progress_bar(total=len(layers) * len(sources), desc="decode units", unit="fit",
                       enabled=progress)
    for layer, read in layers:
        data, coords = read()
        Y = np.asarray(data, dtype=np.float64).reshape(len(data), -1)
        units = Responses(Y, f"layer {layer}")
        units.report_skipped("their scores are NaN")
        for name, X in sources:
            X = np.asarray(X).reshape(len(X), -1)
            if len(X) != len(Y):
                raise InputError(f"{name} has {len(X)} samples but layer {layer} has "
                                 f"{len(Y)}; they must match.")
            res = decode(X, Y[:, units.valid], model=model, **decode_args)
            full = {}
            for key in ("r", "r2", "p", "p_fwer"):
                value = getattr(res, key, None)
                if value is None:
                    full[key] = None
                    continue
                full[key] = np.full(units.n_targets, np.nan)
                full[key][units.valid] = np.atleast_1d(value)
            out.append(UnitDecoding(source=name, layer=layer, n_features=X.shape[1],
                                    model=res.model, coords=np.asarray(coords),
                                    folds=res.folds, **full))
            bar.update()
    bar.close()
    return out


def unit_decoding_tables(results, *, p_threshold=0.05):
    """``(units, summary)`` tables of :func:`decode_units` results.

    Returns
    -------
    units : dict
        One row per source x layer x unit: source, layer, chn, row, col, n_features,
        model, r, r2, [p, p_fwer].
    summary : dict
        One row per source x layer: source, layer, n_features, model, n_units,
        n_decoded, mean_r, median_r, max_r, [n_sig, n_sig_fwer at ``p_threshold``].
    """
    units, summary = {}, {}
    with_p = results[0].p is not None
    for res in results:
        n = len(res.r)
        cols = {"source": np.full(n, res.source, dtype=object),
                "layer": np.full(n, res.layer, dtype=object),
                "chn": res.coords[:, 0], "row": res.coords[:, 1], "col": res.coords[:, 2],
                "n_features": np.full(n, res.n_features),
                "model": np.full(n, res.model, dtype=object), "r": res.r, "r2": res.r2}
        if with_p:
            cols.update(p=res.p, p_fwer=res.p_fwer)
        for k, v in cols.items():
            units.setdefault(k, []).append(np.asarray(v))
        ok = np.isfinite(res.r)
        row = {"source": res.source, "layer": res.layer, "n_features": res.n_features,
               "model": res.model, "n_units": n, "n_decoded": int(ok.sum()),
               "mean_r": float(np.mean(res.r[ok])) if ok.any() else np.nan,
               "median_r": float(np.median(res.r[ok])) if ok.any() else np.nan,
               "max_r": float(np.max(res.r[ok])) if ok.any() else np.nan}
        if with_p:
            row.update(n_sig=int(np.sum(res.p[ok] < p_threshold)),
                       n_sig_fwer=int(np.sum(res.p_fwer[ok] < p_threshold)))
        for k, v in row.items():
            summary.setdefault(k, []).append(v)
    return ({k: np.concatenate(v) for k, v in units.items()},
            {k: np.asarray(v) for k, v in summary.items()})
