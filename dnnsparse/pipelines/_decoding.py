"""Decoding of whole files: the library behind db_decode.

The algorithm lives in :mod:`dnnsparse.algo.decoding`; this module decodes every feature source
(layers of an activation, ROIs of brain data) and turns the results into tables:

- :func:`decode_sources` -- decoding from each layer or ROI, one at a time;
- :func:`decoding_tables` -- summary, per-class and confusion tables.
"""
import numpy as np

from ..errors import InputError
from ..utils.parallel import parallel_map
from ..utils.progress import progress as progress_bar

__all__ = ["decode_sources", "decoding_tables"]


def decode_sources(sources, y, *, n_jobs=1, progress=False, engine=None, **decode_args):
    """Decode ``y`` from each feature matrix of ``sources``.

    Parameters
    ----------
    sources : iterable of (name, X) or (name, callable returning X)
        Feature matrices (n_samples, n_features); a callable is called when its turn
        comes (layers are read one at a time).
    y : array of shape (n_samples,)
    n_jobs : int
        Sources decoded in parallel threads.
    engine : Engine, optional
        :func:`~dnnsparse.utils.engine.open_engine`: decode each source as a task there
        (sources are read here, one at a time, and sent); default this process.
    decode_args
        Passed to :func:`dnnsparse.algo.decoding.decode` (model, cv, groups, n_perm,
        seed, ...); an int seed gives every source the same folds and permutations.

    Returns
    -------
    list of (name, n_features, DecodingResult)
    """
    from ..algo.decoding import decode

    sources = list(sources)
    bar = progress_bar(total=len(sources), desc="decode", unit="source", enabled=progress)

    def run(item):
        name, X = item
        X = X() if callable(X) else X
        X = np.asarray(X).reshape(len(X), -1)
        if not np.isfinite(X).all():
            raise InputError(f"{name}: the features hold NaN or infinite values.")
        res = decode(X, y, **decode_args)
        bar.update()
        return name, X.shape[1], res

    if engine is not None and engine.distributed:
        seed = decode_args.get("seed")
        if isinstance(seed, np.random.Generator):     # one int: the same in every task
            decode_args["seed"] = int(seed.integers(2 ** 63))
        handles = []
        for name, X in sources:
            X = np.asarray(X() if callable(X) else X)
            X = X.reshape(len(X), -1)
            if not np.isfinite(X).all():
                raise InputError(f"{name}: the features hold NaN or infinite values.")
            handles.append((name, X.shape[1], engine.submit(_decode_task, X, y, decode_args)))
        out = [(name, n, res) for (name, n, _), res in
               zip(handles, engine.gather([h for _, _, h in handles]))]
    else:
        out = parallel_map(run, sources, n_jobs=n_jobs)
    bar.close()
    return out


def _decode_task(X, y, decode_args):
    """One source of :func:`decode_sources` (a pure task)."""
    from ..algo.decoding import decode

    return decode(X, y, **decode_args)


def decoding_tables(results, *, target_names=None):
    """Tidy tables of decoding results.

    Parameters
    ----------
    results : list of (name, n_features, DecodingResult)
        As :func:`decode_sources` returns.
    target_names : list of str, optional
        Names of a regressor's targets (default their index).

    Returns
    -------
    dict
        ``"summary"``: one row per source (name, n_features, model, folds and
        accuracy, balanced_accuracy, chance, p -- or target, r, r2, p per target);
        ``"per_class"``: source, class, n, accuracy; ``"confusion"``: {source:
        columns true, pred_<class>...} (counts; rows are true classes).
    """
    summary, per_class, confusion = {}, {}, {}
    for name, n_features, res in results:
        if res.task == "classification":
            rows = {"source": [name], "n_features": [n_features], "model": [res.model],
                    "accuracy": [res.accuracy], "balanced_accuracy": [res.balanced_accuracy],
                    "chance": [1 / len(res.classes)],
                    "p": [np.nan if res.p is None else res.p]}
            table = res.per_class_table()
            for k, v in {"source": np.full(len(res.classes), name, dtype=object),
                         **table}.items():
                per_class.setdefault(k, []).extend(np.asarray(v).tolist())
            confusion[name] = {"true": res.classes,
                               **{f"pred_{c}": res.confusion[:, j] for j, c in
                                  enumerate(res.classes)}}
        else:
            k = len(res.r)
            rows = {"source": [name] * k, "n_features": [n_features] * k,
                    "model": [res.model] * k,
                    "target": list(range(k)) if target_names is None else list(target_names),
                    "r": res.r,
                    "r2": res.r2,
                    "p": np.full(k, np.nan) if res.p is None else np.atleast_1d(res.p)}
        for key, v in rows.items():
            summary.setdefault(key, []).extend(np.asarray(v).tolist())
    return {"summary": summary, "per_class": per_class, "confusion": confusion}
