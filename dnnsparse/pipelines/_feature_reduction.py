"""Feature reduction of ``.act.h5`` layers: the library behind ``db_fe``.

- :func:`reduce_features` -- PCA (streamed over chunks of stimuli), FastICA or NMF of
  layers into a new ``.act.h5`` whose channels are the components, and the fitted
  transform saved as plain arrays (:func:`save_transform`, an ``.npz``, no pickles);
- :func:`project_features` -- another stimulus set through a saved transform (a saved
  k-means clustering: its stimuli, or units, assigned to the same clusters, a table);
- :func:`cluster_features` -- k-means / agglomerative labels of units or stimuli, a table,
  and the k-means centres saved like a transform;
- :func:`channel_features` -- histogram or power spectrum of every channel's map per
  stimulus (DNNBrain's ``dnn_fe -meth hist|psd``) into a new ``.act.h5``.

The maths is in :mod:`dnnsparse.algo.reduction`. Every output of a call is written
under a temporary name and renamed only when all of them are complete; inputs are
checked (layers, sizes, signs) before anything is written.
"""
import contextlib
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..algo.reduction import (CLUSTERINGS, LINKAGES, REDUCTIONS, Clustering, Reduction,
                              check_n_components,
                              chunk_slices, cluster, fast_ica, histogram_edges, incremental_pca,
                              map_histograms, map_range, map_spectra, nmf)
from ..base.activation import Activation
from ..errors import FileFormatError, InputError
from ..io import atomic_output, check_input_file, check_output_path
from ..io.act import ActWriter
from ..io.table import write_table
from ..utils.progress import progress as progress_bar
from ..utils.validation import check_choice

__all__ = ["AXES", "CHANNEL_FEATURES", "FeatureResult", "channel_features", "cluster_features",
           "load_transform", "project_features", "reduce_features", "save_transform"]

logger = logging.getLogger(__name__)

#: What a sample is: ``layer`` -- one stimulus (all units its features); ``chn`` -- one
#: stimulus at one position (its channels the features; the maps are kept).
AXES = ("layer", "chn")
#: Per-channel features of :func:`channel_features`.
CHANNEL_FEATURES = ("hist", "psd")
#: Float64 bytes read per chunk when no chunk size is given.
CHUNK_BYTES = 256 << 20
_FORMAT = "dnnsparse-feature-transform-1"
#: File attributes of the input that describe that file only, not the output.
_NOT_COPIED = ("layers", "created", "dnnsparse_version")


@dataclass
class FeatureResult:
    """What a ``db_fe`` run wrote.

    Attributes
    ----------
    out : Path
        The ``.act.h5`` (or, for clustering, the table).
    shapes : dict of str to tuple
        Output ``(n_chn, n_row, n_col)`` per layer.
    reductions : dict of str to Reduction or Clustering
        Fitted (or loaded) reductions per layer; k-means clusterings (empty for
        agglomerative clustering, hist, psd).
    transform : Path or None
    table : dict or None
        Clustering labels, or PCA's explained variance.
    """

    out: Path
    shapes: dict = field(default_factory=dict)
    reductions: dict = field(default_factory=dict)
    transform: Path = None
    table: dict = None


# -- inputs ----------------------------------------------------------------------------
def _where(act, layer):
    return f"{act.path}, layer {layer!r}"


@contextlib.contextmanager
def _context(act, layer):
    """Name the file and layer in any InputError raised inside."""
    try:
        yield
    except InputError as exc:
        raise InputError(f"{_where(act, layer)}: {exc}") from None


def _open(path, layers):
    check_input_file(path, what="activation file")
    act = Activation.load(path, layers=list(layers) if layers else None)
    if act.n_stim == 0:
        act.close()
        raise InputError(f"{path} holds no stimuli.")
    return act


def _check_outputs(paths, force):
    paths = [Path(p) for p in paths if p is not None]
    if len({p.resolve() for p in paths}) < len(paths):
        raise InputError(f"outputs must differ; got {', '.join(map(str, paths))}.")
    for p in paths:
        check_output_path(p, force=force)


def _sizes(act, layer, axis):
    """(samples per stimulus, features per sample) of ``layer`` for ``axis``."""
    _, c, r, w = act.shape(layer)
    return (1, c * r * w) if axis == "layer" else (r * w, c)


def _to_samples(block, axis):
    b, c, r, w = block.shape
    if axis == "layer":
        return block.reshape(b, -1)
    return block.transpose(0, 2, 3, 1).reshape(b * r * w, c)


def _from_samples(scores, shape, axis):
    """Scores of the samples of ``shape`` (b, c, r, w) → (b, k, 1, 1) or (b, k, r, w)."""
    b, _, r, w = shape
    k = scores.shape[1]
    if axis == "layer":
        return scores.reshape(b, k, 1, 1)
    return scores.reshape(b, r, w, k).transpose(0, 3, 1, 2)


def _stim_chunks(act, layer, chunk, min_samples, axis):
    """Slices of stimuli, each giving at least ``min_samples`` samples."""
    per_stim, n_features = _sizes(act, layer, axis)
    min_stim = -(-min_samples // per_stim)
    if chunk is None:
        chunk = max(min_stim, CHUNK_BYTES // (8 * per_stim * n_features))
    elif chunk < min_stim:
        raise InputError(f"-chunk {chunk} stimuli give {chunk * per_stim} samples, fewer "
                         f"than the {min_samples} components; use -chunk {min_stim} or more.")
    return chunk_slices(act.n_stim, int(chunk), min_size=min_stim)


def _read(act, layer, stim):
    return act.get(layer, stim=stim).astype(np.float64, copy=False)


def _signature(act, layer):
    """What a transform requires of its input layer: shape, selection and pooling."""
    attrs = act.layer_attrs(layer)
    sig = {"shape": np.asarray(act.shape(layer)[1:], dtype=np.int64)}
    for key in ("chn", "row", "col"):
        value = attrs.get(key)
        sig[key] = np.atleast_1d(np.asarray([] if value is None else value, dtype=np.int64))
    sig["pool"] = np.array(str(attrs.get("pool") or ""))
    return sig


def _check_signature(act, layer, want):
    if "stim_ids" in want:               # units clustered by their responses to stimuli
        ids = np.asarray(act.stim_ids, dtype=str)
        if not np.array_equal(ids, want["stim_ids"]):
            n_want = len(want["stim_ids"])
            raise InputError(f"{act.path}: its {len(ids)} stimuli are not the {n_want} "
                             f"stimuli (same IDs, same order) whose responses the units were "
                             f"clustered by; units of another file can only be assigned to "
                             f"those clusters when they respond to the same stimuli.")
        return
    got = _signature(act, layer)
    for key, value in want.items():
        if not np.array_equal(got[key], value):
            show = (lambda v: str(v) if v.ndim == 0 else
                    (",".join(map(str, v.tolist())) if v.size else "all"))
            raise InputError(f"{_where(act, layer)}: {key} {show(got[key])} differs from the "
                             f"transform's input ({show(value)}); extract this stimulus set "
                             f"the same way (db_act -layer/-chn/-pool) or fit a new transform.")


# -- outputs ---------------------------------------------------------------------------
def _file_attrs(act, **fe):
    attrs = {k: v for k, v in act.attrs.items() if k not in _NOT_COPIED}
    attrs.update({f"fe_{k}": v for k, v in fe.items()})
    attrs["fe_source"] = str(act.path)
    return attrs


def _meta(act):
    if act.category_labels is None:
        return {}
    return {"label": act.category_labels, "count": act.category_counts}


def _reduced_layer_attrs(act, layer, red, axis):
    attrs = {"fe_method": red.method, "fe_axis": axis,
             "fe_input_shape": np.asarray(act.shape(layer)[1:], dtype=np.int64)}
    if axis == "chn":                    # the maps keep the input's rows and columns
        attrs.update({k: v for k, v in act.layer_attrs(layer).items() if k in ("row", "col")})
    if "chunk" in red.params:
        attrs["fe_chunk"] = int(red.params["chunk"])
    if red.explained_variance_ratio is not None:
        attrs["explained_variance_ratio"] = red.explained_variance_ratio
    return attrs


def _out_shape(act, layer, k, axis):
    _, _, r, w = act.shape(layer)
    return (k, 1, 1) if axis == "layer" else (k, r, w)


def save_transform(path, reductions, *, axis, signatures, source="", force=False):
    """Save fitted reductions of several layers in one ``.npz`` of plain arrays.

    Parameters
    ----------
    path : str or Path
    reductions : dict of str to Reduction
        One per layer, in layer order.
    axis : {"layer", "chn"}
    signatures : dict of str to dict
        Per layer: ``shape``, ``chn``/``row``/``col`` (1-based, empty: all) and ``pool``
        of the input; a projected file must match them.
    source : str
        The file the reductions were fitted on (recorded).
    force : bool, default=False
    """
    arrays = {"format": np.array(_FORMAT), "layers": np.array(list(reductions), dtype=str),
              "axis": np.array(axis), "source": np.array(str(source))}
    for i, (layer, red) in enumerate(reductions.items()):
        arrays.update({f"l{i}_{k}": v for k, v in red.to_arrays().items()})
        arrays.update({f"l{i}_input_{k}": v for k, v in signatures[layer].items()})
    with atomic_output(path, force=force) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **arrays)
    return Path(path)


def load_transform(path):
    """Read a transform written by :func:`save_transform`.

    Returns
    -------
    reductions : dict of str to Reduction or Clustering
    axis : str
        ``layer`` or ``chn`` (reductions); ``units`` or ``stim`` (clusterings).
    signatures : dict of str to dict
    source : str
    """
    path = check_input_file(path, what="transform file")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (ValueError, OSError) as exc:
        raise FileFormatError(f"{path}: not a readable .npz transform ({exc}).") from None
    if str(arrays.get("format", "")) != _FORMAT:
        raise FileFormatError(f"{path}: not a db_fe transform (missing format {_FORMAT!r}); "
                              f"write one with db_fe -method pca|ica|nmf|kmeans.")
    reductions, signatures = {}, {}
    for i, layer in enumerate(arrays["layers"].tolist()):
        prefix = f"l{i}_"
        own = {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}
        signatures[layer] = {k[len("input_"):]: v for k, v in own.items()
                             if k.startswith("input_")}
        try:
            fitted = {k: v for k, v in own.items() if not k.startswith("input_")}
            is_cluster = str(fitted.get("method", "")) in CLUSTERINGS
            reductions[layer] = (Clustering if is_cluster else Reduction).from_arrays(fitted)
        except (InputError, KeyError) as exc:
            raise FileFormatError(f"{path}: layer {layer!r} is incomplete ({exc}).") from None
    return reductions, str(arrays["axis"]), signatures, str(arrays["source"])


def _transform_path(out):
    out = Path(out)
    stem = out.name[:-len(".act.h5")] if out.name.endswith(".act.h5") else out.stem
    return out.with_name(f"{stem}.transform.npz")


def _variance_table(reductions):
    table = {"layer": [], "component": [], "explained_variance": [],
             "explained_variance_ratio": [], "cumulative_ratio": []}
    for layer, red in reductions.items():
        k = red.n_components
        table["layer"] += [layer] * k
        table["component"] += list(range(1, k + 1))
        table["explained_variance"] += red.explained_variance.tolist()
        table["explained_variance_ratio"] += red.explained_variance_ratio.tolist()
        table["cumulative_ratio"] += np.cumsum(red.explained_variance_ratio).tolist()
    return table


# -- fitting ---------------------------------------------------------------------------
def _fit_layer(act, layer, method, k, axis, chunk, options, show):
    """Fit one layer: (reduction, scores of the fitted file or None when streamed)."""
    if method == "pca":
        slices = _stim_chunks(act, layer, chunk, k, axis)
        bar = progress_bar(slices, desc=f"PCA {layer}", unit="chunk", enabled=show)
        red = incremental_pca((_to_samples(_read(act, layer, s), axis) for s in bar), k,
                              whiten=options.get("whiten", False))
        red.params["chunk"] = slices[0].stop
        return red, None
    X = _to_samples(_read(act, layer, None), axis)
    fit = fast_ica if method == "ica" else nmf
    allowed = (("seed", "max_iter", "tol") if method == "ica" else
               ("seed", "max_iter", "tol", "init", "solver", "beta_loss"))
    scores, red = fit(X, k, **{key: v for key, v in options.items() if key in allowed})
    return red, scores


def _write_scores(writer, act, layer, red, axis, chunk, scores, show):
    """Write a layer's scores: given ones, or ``red.transform`` chunk by chunk."""
    shape = act.shape(layer)
    if scores is not None:
        writer.write(layer, 0, _from_samples(scores, shape, axis))
        return
    if red.method == "nmf":          # NMF's solve is over the whole matrix at once
        slices = [slice(0, act.n_stim)]
    else:
        slices = _stim_chunks(act, layer, chunk, 1, axis)
    for s in progress_bar(slices, desc=f"project {layer}", unit="chunk", enabled=show):
        block = _read(act, layer, s)
        writer.write(layer, s.start, _from_samples(red.transform(_to_samples(block, axis)),
                                                   block.shape, axis))


def reduce_features(act_path, out, *, method="pca", n_components, layers=None, axis="layer",
                    transform_out=None, variance_out=None, figure_out=None, chunk=None,
                    whiten=False, seed=0, max_iter=200, tol=1e-4, init="nndsvda",
                    solver="cd", beta_loss="frobenius", force=False, progress=False):
    """Reduce layers of an ``.act.h5`` with PCA, FastICA or NMF; save the fitted transform.

    Parameters
    ----------
    act_path : str or Path
    out : str or Path
        New ``.act.h5``: per layer ``(n_stim, n_components, 1, 1)`` (``axis="layer"``)
        or ``(n_stim, n_components, n_row, n_col)`` (``axis="chn"``), with the input's
        stimulus IDs, file attributes (plus ``fe_*``), and category rows if any.
    method : {"pca", "ica", "nmf"}, default="pca"
        PCA is fitted over chunks of ``chunk`` stimuli (``IncrementalPCA``; one chunk:
        exact PCA); ICA and NMF read the whole layer.
    n_components : int
    layers : list of str, optional
        Default: every layer of the file.
    axis : {"layer", "chn"}, default="layer"
    transform_out : str or Path, optional
        The fitted transform (default: ``<out stem>.transform.npz``).
    variance_out, figure_out : str or Path, optional
        PCA only: explained variance per component as a table / a figure.
    chunk : int, optional
        Stimuli per chunk (default: about 256 MiB of float64).
    whiten : bool, default=False
        PCA: scores of unit variance.
    seed, max_iter, tol : ICA and NMF settings; ``init``, ``solver``, ``beta_loss``: NMF's.
    force : bool, default=False
    progress : bool, default=False

    Returns
    -------
    FeatureResult
    """
    check_choice(method, REDUCTIONS, name="method")
    check_choice(axis, AXES, name="axis")
    if method != "pca" and (variance_out or figure_out or whiten):
        raise InputError("explained variance (-variance, -figure) and -whiten are PCA's; "
                         f"drop them for -method {method}.")
    transform_out = Path(transform_out) if transform_out else _transform_path(out)
    _check_outputs([out, transform_out, variance_out, figure_out], force)
    options = {"whiten": whiten, "seed": seed, "max_iter": max_iter, "tol": tol,
               "init": init, "solver": solver, "beta_loss": beta_loss}
    with _open(act_path, layers) as act:
        layers = list(act.layers)
        for layer in layers:                      # cheap checks of every layer first
            per_stim, n_features = _sizes(act, layer, axis)
            with _context(act, layer):
                check_n_components(n_components, act.n_stim * per_stim, n_features,
                                   samples="samples (stimuli)" if axis == "layer"
                                   else "samples (stimuli x positions)")
                if method == "pca":
                    _stim_chunks(act, layer, chunk, n_components, axis)
        fitted, scores = {}, {}
        for layer in layers:
            with _context(act, layer):
                fitted[layer], scores[layer] = _fit_layer(
                    act, layer, method, n_components, axis, chunk, options, progress)
            logger.info("%s: %s of %s fitted on %d samples", act.path, method, layer,
                        fitted[layer].n_samples)
        shapes = {l: _out_shape(act, l, n_components, axis) for l in layers}
        table = _variance_table(fitted) if method == "pca" else None
        attrs = _file_attrs(act, method=method, axis=axis, n_components=n_components,
                            transform=str(transform_out),
                            **({"whiten": whiten} if method == "pca" else {"seed": seed}))
        layer_attrs = {l: _reduced_layer_attrs(act, l, fitted[l], axis) for l in layers}
        with contextlib.ExitStack() as stack:
            tmp_transform = stack.enter_context(atomic_output(transform_out, force=force))
            if variance_out:
                write_table(stack.enter_context(atomic_output(variance_out, force=force)),
                            table, force=True)
            if figure_out:
                from ..viz import plot_explained_variance
                plot_explained_variance(stack.enter_context(
                    atomic_output(figure_out, force=force)), table, force=True)
            save_transform(tmp_transform, fitted, axis=axis, source=act.path, force=True,
                           signatures={l: _signature(act, l) for l in layers})
            with ActWriter(out, shapes, act.n_stim, attrs=attrs, layer_attrs=layer_attrs,
                           stim_ids=act.stim_ids, force=force) as writer:
                for layer in layers:
                    _write_scores(writer, act, layer, fitted[layer], axis, chunk,
                                  scores[layer], progress)
                for name, values in _meta(act).items():
                    writer.write_meta(name, values)
    return FeatureResult(Path(out), shapes, fitted, Path(transform_out), table)


def project_features(act_path, transform, out, *, chunk=None, force=False, progress=False):
    """Project the layers of another ``.act.h5`` with a transform saved by
    :func:`reduce_features`.

    Each layer must have the shape, channel/row/column selection and pooling the
    transform was fitted on. Linear reductions (PCA, ICA) are applied chunk by
    chunk; NMF solves the scores of the whole layer with its components fixed.
    A saved k-means clustering assigns the file's stimuli (``-of stim``: same layer
    shape and selection) or units (``-of units``: responses to the same stimuli) to
    the nearest of its centres; ``out`` is then a table as :func:`cluster_features`
    writes.

    Returns
    -------
    FeatureResult
    """
    reductions, axis, signatures, source = load_transform(transform)
    _check_outputs([out], force)
    if isinstance(next(iter(reductions.values())), Clustering):
        return _assign_clusters(act_path, transform, out, reductions, axis, signatures,
                                force=force)
    with _open(act_path, list(reductions)) as act:
        for layer, want in signatures.items():
            _check_signature(act, layer, want)
        layers = list(reductions)
        k = {l: reductions[l].n_components for l in layers}
        method = reductions[layers[0]].method
        shapes = {l: _out_shape(act, l, k[l], axis) for l in layers}
        attrs = _file_attrs(act, method=method, axis=axis, n_components=max(k.values()),
                            transform=str(transform), fitted_on=source)
        layer_attrs = {l: _reduced_layer_attrs(act, l, reductions[l], axis) for l in layers}
        # NMF refuses negative values while writing; the partial file is then deleted
        with ActWriter(out, shapes, act.n_stim, attrs=attrs, layer_attrs=layer_attrs,
                       stim_ids=act.stim_ids, force=force) as writer:
            for layer in layers:
                with _context(act, layer):
                    _write_scores(writer, act, layer, reductions[layer], axis, chunk, None,
                                  progress)
            for name, values in _meta(act).items():
                writer.write_meta(name, values)
    return FeatureResult(Path(out), shapes, reductions, Path(transform))


# -- clustering ------------------------------------------------------------------------
def _unit_coordinates(act, layer):
    """1-based (chn, row, col) of every unit, original indices for a masked file."""
    _, c, r, w = act.shape(layer)
    attrs = act.layer_attrs(layer)
    coords = np.unravel_index(np.arange(c * r * w), (c, r, w))
    out = []
    for key, idx, n in zip(("chn", "row", "col"), coords, (c, r, w)):
        kept = attrs.get(key)
        kept = None if kept is None else np.atleast_1d(np.asarray(kept, dtype=np.int64))
        out.append(kept[idx] if kept is not None and len(kept) == n else idx + 1)
    return out


def _cluster_rows(table, act, layer, labels, distance, of):
    """Append one layer's labels (0-based) and distances to a clustering table."""
    n = len(labels)
    table["layer"] += [layer] * n
    if of == "units":
        table["unit"] += list(range(1, n + 1))
        for key, values in zip(("chn", "row", "col"), _unit_coordinates(act, layer)):
            table[key] += values.tolist()
    else:
        table["stimID"] += act.stim_ids.tolist()
    table["cluster"] += (np.asarray(labels) + 1).tolist()
    table["distance"] += np.asarray(distance).tolist()


def _empty_cluster_table(of):
    table = ({"layer": [], "unit": [], "chn": [], "row": [], "col": []} if of == "units"
             else {"layer": [], "stimID": []})
    table.update(cluster=[], distance=[])
    return table


def _cluster_matrix(act, layer, of):
    X = _read(act, layer, None).reshape(act.n_stim, -1)
    return X.T if of == "units" else X


def cluster_features(act_path, out, *, n_clusters, method="kmeans", of="units", layers=None,
                     seed=0, linkage="ward", n_init=10, standardize=False, transform_out=None,
                     force=False):
    """Cluster the units (by their responses) or the stimuli (by their patterns) of layers.

    Parameters
    ----------
    act_path : str or Path
    out : str or Path
        Table (.csv/.tsv), one row per unit (``layer, unit, chn, row, col, cluster,
        distance``; ``unit`` the 1-based flat index, chn/row/col as in a .dmask.csv)
        or per stimulus (``layer, stimID, cluster, distance``). ``cluster`` is 1-based;
        ``distance`` is to the cluster's centre. Each layer is clustered on its own.
    transform_out : str or Path, optional
        k-means: where the fitted centres go (default ``<out stem>.transform.npz``);
        :func:`project_features` assigns another file's stimuli (or units) with them.
        Agglomerative clustering has no rule for new rows and saves nothing.
    n_clusters : int
    method : {"kmeans", "agglomerative"}
    of : {"units", "stim"}
    seed, linkage, n_init, standardize
        As :func:`dnnsparse.algo.reduction.cluster`.

    Returns
    -------
    FeatureResult
    """
    check_choice(method, CLUSTERINGS, name="clustering method")
    check_choice(of, ("units", "stim"), name="what to cluster (-of)")
    check_choice(linkage, LINKAGES, name="linkage")
    if method != "kmeans" and transform_out is not None:
        raise InputError("agglomerative clustering has no rule for assigning new stimuli, so "
                         "there is no transform to save; drop -save-transform or use kmeans.")
    if method == "kmeans":
        transform_out = Path(transform_out) if transform_out else _transform_path(out)
    _check_outputs([out, transform_out], force)
    with _open(act_path, layers) as act:
        layers = list(act.layers)
        for layer in layers:
            n_units = int(np.prod(act.shape(layer)[1:]))
            with _context(act, layer):
                check_n_components(n_clusters, n_units if of == "units" else act.n_stim,
                                   what="clusters", samples=of if of == "units" else "stimuli")
        _check_table_path(out)
        table, models = _empty_cluster_table(of), {}
        for layer in layers:
            with _context(act, layer):
                res = cluster(_cluster_matrix(act, layer, of), n_clusters, method=method,
                              seed=seed, linkage=linkage, n_init=n_init,
                              standardize=standardize)
            _cluster_rows(table, act, layer, res.labels, res.distance, of)
            if res.model is not None:
                models[layer] = res.model
        # the features of a unit are its responses to these stimuli; of a stimulus, the units
        signatures = {l: ({"stim_ids": np.asarray(act.stim_ids, dtype=str)} if of == "units"
                          else _signature(act, l)) for l in models}
        with contextlib.ExitStack() as stack:
            if models:
                save_transform(stack.enter_context(atomic_output(transform_out, force=force)),
                               models, axis=of, signatures=signatures, source=act.path,
                               force=True)
            write_table(stack.enter_context(atomic_output(out, force=force)), table,
                        force=True)
    return FeatureResult(Path(out), reductions=models,
                         transform=Path(transform_out) if models else None, table=table)


def _check_table_path(out):
    if Path(out).suffix.lower() not in (".csv", ".tsv"):
        raise InputError(f"cluster labels are a table: give -out a .csv or .tsv name, not "
                         f"{Path(out).name}.")


def _assign_clusters(act_path, transform, out, models, of, signatures, *, force):
    """Assign the stimuli (or units) of ``act_path`` to saved k-means centres; a table."""
    _check_table_path(out)
    with _open(act_path, list(models)) as act:
        for layer, want in signatures.items():
            _check_signature(act, layer, want)
        table = _empty_cluster_table(of)
        for layer, model in models.items():
            with _context(act, layer):
                labels, distance = model.predict(_cluster_matrix(act, layer, of))
            _cluster_rows(table, act, layer, labels, distance, of)
    write_table(out, table, force=force)
    return FeatureResult(Path(out), reductions=models, transform=Path(transform), table=table)


# -- per-channel histograms and spectra ------------------------------------------------
def channel_features(act_path, out, *, method="hist", n=None, layers=None, bin_range="channel",
                     chunk=None, force=False, progress=False):
    """Histogram or power spectrum of every channel's map, per stimulus.

    Parameters
    ----------
    act_path : str or Path
    out : str or Path
        New ``.act.h5``: per layer ``(n_stim, n_chn, n, 1)`` -- channels stay channels
        (their ``chn`` attribute is kept), the bins or frequencies are rows.
    method : {"hist", "psd"}
        ``hist``: counts in ``n`` equal bins (edges in the layer attribute
        ``bin_edges``); ``psd``: the periodogram of the flattened map, its first ``n``
        frequencies (layer attribute ``freqs``; default all).
    bin_range : {"channel", "map"}, default="channel"
        ``channel``: one range per channel over all stimuli (a first pass over the
        file), so counts compare across stimuli; ``map``: each map's own range (DNNBrain).
    chunk : int, optional
        Stimuli read at a time.

    Returns
    -------
    FeatureResult
    """
    check_choice(method, CHANNEL_FEATURES, name="method")
    check_choice(bin_range, ("channel", "map"), name="bin range")
    if method == "hist" and n is None:
        raise InputError("give the number of histogram bins (-n).")
    _check_outputs([out], force)
    with _open(act_path, layers) as act:
        layers = list(act.layers)
        shapes, layer_attrs, extra = {}, {}, {}
        for layer in layers:
            _, c, r, w = act.shape(layer)
            with _context(act, layer):
                if r * w < 2:
                    raise InputError(f"each channel has {r * w} position (pooled?); "
                                     f"histograms and spectra need channel maps.")
                n_out = n
                if method == "psd":
                    freqs = map_spectra(np.zeros((1, 1, r * w)), n)[1]
                    extra[layer] = {"freqs": freqs}
                    n_out = len(freqs)
            shapes[layer] = (c, int(n_out), 1)
            kept = {k: v for k, v in act.layer_attrs(layer).items() if k == "chn"}
            layer_attrs[layer] = {**kept, "fe_method": method,
                                  "fe_input_shape": np.asarray((c, r, w), dtype=np.int64)}
        slices = {l: _stim_chunks(act, l, chunk, 1, "layer") for l in layers}

        def maps(layer, s):
            block = _read(act, layer, s)
            return block.reshape(block.shape[0], block.shape[1], -1)

        if method == "hist" and bin_range == "channel":
            for layer in layers:
                low, high = map_range(maps(layer, s) for s in slices[layer])
                with _context(act, layer):
                    edges = histogram_edges(low, high, n)
                extra[layer] = {"low": low, "high": high, "bin_edges": edges}
        for layer in layers:
            layer_attrs[layer].update({k: v for k, v in extra.get(layer, {}).items()
                                       if k in ("freqs", "bin_edges")})
            if method == "hist":
                layer_attrs[layer]["bin_range"] = bin_range
        attrs = _file_attrs(act, method=method, n=n or 0,
                            **({"bin_range": bin_range} if method == "hist" else {}))
        with ActWriter(out, shapes, act.n_stim, attrs=attrs, layer_attrs=layer_attrs,
                       stim_ids=act.stim_ids, force=force) as writer:
            for layer in layers:
                for s in progress_bar(slices[layer], desc=f"{method} {layer}", unit="chunk",
                                      enabled=progress):
                    x = maps(layer, s)
                    if method == "psd":
                        values = map_spectra(x, n)[0]
                    else:
                        lims = extra.get(layer, {})
                        values = map_histograms(x, n, low=lims.get("low"),
                                                high=lims.get("high"))[0]
                    writer.write(layer, s.start, values[..., None])
            for name, values in _meta(act).items():
                writer.write_meta(name, values)
    return FeatureResult(Path(out), shapes)
