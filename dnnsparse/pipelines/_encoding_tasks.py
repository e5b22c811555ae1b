"""db_encode's tasks: blocks x voxel batches of a layer, as pure functions.

:func:`submit_layer` hands one task per (block, voxel batch) and one refit per block
(``model_dir``) to an :class:`~dnnsparse.utils.engine.Engine`; :func:`finish_layer`
gathers them, joins the voxel batches and saves the refitted models (here, in the
calling process: workers never write files).  The tasks depend only on their
arguments: every block gets the same int seed, so folds and permutations are those of
a single :func:`~dnnsparse.algo.encoding.encode` call, whichever worker runs it and
however often it is re-run after a worker died.

Every task runs with one BLAS thread, here as on a worker: OpenBLAS's ``syevd`` and
``dgemm`` round differently with 2 threads than with 1 (at the 1e-15 level, from ~200
features), so a thread count left to the process made one process's tables differ from
the workers'.  Here the limit is set once around all of a layer's tasks (threads of
``n_jobs`` share it: a per-task limit is process-wide and would race); use ``n_jobs``
(db_encode ``-n-jobs``) for the cores.

Voxel batches (``voxel_batch``) split the targets; each batch is fitted with the same
folds and permutations, so the per-target scores and ``p`` are those of one call on
all targets, and ``p_fwer`` is recomputed from the maximum over batches of every
permutation's maximum (the max-statistic over all targets).
"""
import warnings
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np
from threadpoolctl import threadpool_limits

__all__ = ["PendingLayer", "finish_layer", "submit_layer", "voxel_batches"]


def voxel_batches(n_targets, voxel_batch):
    """Column ranges ``[(start, stop), ...]`` of ``voxel_batch`` targets (None: one)."""
    if not voxel_batch or voxel_batch >= n_targets:
        return [(0, n_targets)]
    return [(s, min(s + voxel_batch, n_targets)) for s in range(0, n_targets, voxel_batch)]


def _encode_task(X, Y, cols, kwargs):
    """``encode`` of targets ``cols`` of ``Y`` (None: ``Y`` holds just those targets)."""
    from ..algo.encoding import encode
    from ._device import array_like

    kwargs = dict(kwargs)
    device, dtype = kwargs.pop("device", (None, "float64"))
    # one memory layout here and on a worker (BLAS rounding depends on it)
    y = np.asfortranarray(Y if cols is None else Y[:, cols[0]:cols[1]])
    if device is None and dtype == "float32":
        y = np.asarray(y, dtype=np.float32)
    kwargs["like"] = array_like(device, dtype)        # built here: on the worker's GPU
    res = encode(X, y, **kwargs)
    res.predictions = None            # not used by the tables; not sent back
    return res


def _refit_task(X, Y, model, analysis, encoder_args):
    """Model refitted on all stimuli: ``("uv", arrays)`` or ``("est", estimator)``."""
    from ..algo.encoding import best_units, make_encoder

    if analysis == "uv":
        units, slope, x_mean, y_mean = best_units(X, Y, encoder_args["fit_intercept"])
        return "uv", (units, slope, y_mean - slope * x_mean, X.shape[1])
    return "est", make_encoder(model, **encoder_args).fit(X, Y[:, 0] if Y.shape[1] == 1
                                                          else Y)


def _save(path, fitted, force):
    from ._encoder_files import save_model, save_unit_model

    kind, value = fitted
    if kind == "uv":
        units, slope, intercept, n_features = value
        save_unit_model(path, units, slope, intercept, n_features=n_features, force=force)
    else:
        save_model(path, value, force=force)


@dataclass
class PendingLayer:
    """A layer's submitted tasks (:func:`submit_layer`)."""

    blocks: list          # (name, n_units, coords) of every block
    batches: list
    handles: list         # per block: list of handles, one per voxel batch
    refits: list          # per block: handle or None
    model_dir: object
    force: bool
    perm_score: str


def submit_layer(engine, blocks, Y, *, encode_args, encoder_args, model, analysis,
                 model_dir=None, force=False, voxel_batch=None, y_parts=None):
    """Submit a layer's tasks; ``blocks`` as :meth:`LayerFeatures.blocks`.

    On a cluster every voxel batch of ``Y`` (and all of ``Y`` for the refits) is
    placed once and kept in ``y_parts`` (a dict shared by the layers of a run), so a
    worker receives only the targets of its tasks.
    """
    batches = voxel_batches(Y.shape[1], voxel_batch)
    y_parts = {} if y_parts is None else y_parts
    if engine.distributed:
        for cols in batches + ([None] if model_dir is not None else []):
            if cols not in y_parts:
                y_parts[cols] = engine.put(Y if cols is None else
                                           np.asfortranarray(Y[:, cols[0]:cols[1]]))
    y = y_parts.get(None, Y)
    handles, refits = [], []
    if not engine.distributed:      # here: n_jobs threads over all (block, batch) pairs
        from ..utils.engine import _Done

        import scipy.linalg  # noqa: F401  SciPy's own BLAS, loaded before the limit:
        # threadpoolctl limits the libraries loaded when it is called, and the first
        # eigh would otherwise run with the default thread count
        pairs = [(X, cols) for _, X, _ in blocks for cols in batches]
        with threadpool_limits(limits=1, user_api="blas"):       # as on a Dask worker
            found = engine.map(lambda pair: _encode_task(pair[0], Y, pair[1], encode_args),
                               pairs)
        done = iter(_Done(r) for r in found)
        handles = [[next(done) for _ in batches] for _ in blocks]
    for i, (_, X, _) in enumerate(blocks):
        x = engine.put(X) if engine.distributed else X
        if engine.distributed:
            handles.append([engine.submit(_encode_task, x, y_parts[cols], None,
                                          encode_args) for cols in batches])
        refits.append(None if model_dir is None else
                      engine.submit(_refit_task, x, y, model, analysis, encoder_args))
    return PendingLayer(blocks=[(name, X.shape[1], coords) for name, X, coords in blocks],
                        batches=batches, handles=handles, refits=refits,
                        model_dir=model_dir, force=force,
                        perm_score=encode_args.get("perm_score", "r"))


def finish_layer(engine, pending):
    """Per-block results (one ``EncodingResult``-like per block); models saved here."""
    results = []
    for (name, _, _), handles, refit in zip(pending.blocks, pending.handles,
                                            pending.refits):
        parts = engine.gather(handles)
        results.append(parts[0] if len(parts) == 1 else _join(parts, pending.perm_score))
        if refit is not None:
            path = Path(pending.model_dir) / f"{name or 'model'}.npz"
            _save(path, engine.gather([refit])[0], pending.force)
    return results


def _join(parts, perm_score):
    """One result from voxel batches fitted with the same folds and permutations."""
    def cat(attr, axis=0):
        values = [getattr(p, attr) for p in parts]
        return None if values[0] is None else np.concatenate(values, axis=axis)

    first = parts[0]
    out = SimpleNamespace(r=cat("r"), r2=cat("r2"), folds=first.folds, alphas=cat("alphas", 1),
                          units=cat("units", 1), best_unit=cat("best_unit"),
                          p=cat("p"), p_fwer=None, null_max=None)
    if first.p is not None:
        stack = np.vstack([p.null_max for p in parts])          # (n_batches, n_perm)
        with warnings.catch_warnings():              # all-NaN columns stay NaN
            warnings.simplefilter("ignore", RuntimeWarning)
            null_max = np.nanmax(stack, axis=0)
        observed = getattr(out, perm_score)
        with np.errstate(invalid="ignore"):
            exceed = (null_max[:, None] >= observed[None, :]).sum(0)
        out.p_fwer = (1.0 + exceed) / (1.0 + len(null_max))
        out.p_fwer[~np.isfinite(observed)] = np.nan
        out.null_max = null_max
    return out
