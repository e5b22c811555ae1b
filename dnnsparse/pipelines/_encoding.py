"""Encoding analyses of whole files: the library behind db_encode (and the features of
db_decode).

The algorithms live in :mod:`dnnsparse.algo.encoding`, :mod:`dnnsparse.algo.decoding`
and :mod:`dnnsparse.algo.hrf`; this module
turns files into their inputs and their results into tables and maps:

- :func:`layer_mask` and :class:`LayerFeatures` -- a layer's units after ``-layer/-chn``
  or ``-dmask``, as one feature matrix or one per channel / per (row, col) position
  (``iter_axis``, DNNBrain's ``-iteraxis``), each unit with its 1-based
  (channel, row, column) in the network's layer;
- :func:`encode_layer` -> :class:`LayerEncoding`, :func:`encoding_tables`,
  :func:`write_encoding_maps` -- per-target scores, per-ROI summaries and maps in the
  input's own format, and the model refitted on all stimuli.

The targets (:func:`~dnnsparse.pipelines.load_responses` ->
:class:`~dnnsparse.pipelines.Responses`) live in :mod:`._responses`, decoding
(:func:`~dnnsparse.pipelines.decode_sources`,
:func:`~dnnsparse.pipelines.decoding_tables`) in :mod:`._decoding`,
:func:`~dnnsparse.pipelines.convolve_activation` in :mod:`._hrf`.

Examples
--------
>>> from dnnsparse.base.activation import Activation
>>> rng = np.random.default_rng(0)
>>> act = Activation({"fc": rng.standard_normal((60, 8))})
>>> resp = Responses(act.get("fc")[:, :2, 0, 0] @ [[1., 0.], [1., 1.]], source="toy")
>>> res = encode_layer(LayerFeatures(act, "fc"), resp, model="glm", seed=0)
>>> bool(np.all(res.r > 0.99))
True
"""
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from ..errors import InputError
from ..utils.progress import progress as progress_bar
from ..utils.validation import check_choice
from ._align import activation_rows, example_rows
from ._decoding import decode_sources, decoding_tables
from ._hrf import convolve_activation
from ._responses import Responses, count_samples, load_responses

__all__ = [
    "ITER_AXES",
    "SCORINGS",
    "ActivationSource",
    "EncodingRun",
    "LayerFeatures",
    "LayerEncoding",
    "decoding_outputs",
    "encode_layer",
    "encoding_tables",
    "layer_mask",
    "layer_sources",
    "map_suffix",
    "response_sources",
    "run_encoding",
    "safe_name",
    "stimulus_groups",
    "write_encoding_maps",
]

#: ``iter_axis`` -> what one feature matrix holds ("position" is db_rsa's spelling).
ITER_AXES = {None: "all selected units of the layer",
             "channel": "the units of one channel (all its positions)",
             "row_col": "the units at one (row, col) position (all channels)",
             "position": "same as row_col"}
#: Score reported as ``score`` and tested by permutations.
SCORINGS = ("r", "r2")
_AXES = ("chn", "row", "col")


# ---------------------------------------------------------------- DNN features
def layer_mask(act, *, layers=None, chn=None, dmask=None):
    """The layers and units to use: ``-layer L [-chn N]`` and/or ``-dmask FILE``.

    Parameters
    ----------
    act : Activation
    layers : list of str, optional
        Default (and no ``dmask``): every layer of ``act``.
    chn : list of int, optional
        1-based channels kept in every layer of ``layers``.
    dmask : str or Path, optional
        ``.dmask.csv``; its layers come first, then those of ``layers``.

    Returns
    -------
    Mask
        Checked against the layers of ``act`` (an unknown layer names the valid ones;
        an index past a layer's size names the layer and its range).
    """
    from ..base.mask import Mask

    if chn is not None and not layers:
        raise InputError("-chn applies to the layers of -layer; give -layer too.")
    mask = Mask.load(dmask) if dmask else Mask()
    if layers or not dmask:
        extra = Mask.from_args(layers or act.layers, chn=chn)
        for layer in extra.layers:
            if layer in mask:
                raise InputError(f"layer {layer!r} is in both -dmask and -layer; use one.")
            mask.set(layer, **extra.get(layer))
    for layer in mask.layers:
        mask.check(layer, act.shape(layer)[1:])        # shape() names the valid layers
    return mask


class LayerFeatures:
    """The selected units of one layer, read once, split into feature matrices.

    Parameters
    ----------
    act : Activation
    layer : str
    mask : Mask, optional
        Selection of the layer's channels/rows/columns (default: all units).
    iter_axis : {None, "channel", "row_col", "position"}
        None: one matrix of all units; "channel": one per channel; "row_col": one
        per (row, col) position.

    Attributes
    ----------
    data : ndarray of shape (n_stim, n_chn, n_row, n_col)
        The selected units.
    coords : dict {"chn", "row", "col"} of ndarray of int
        1-based index in the network's layer of every selected channel, row, column
        (composed with any selection already stored in the file).
    unit_axes : tuple of str
        ``("chn", "row", "col")``: the columns of every block's unit coordinates.
    """

    unit_axes = _AXES

    def __init__(self, act, layer, *, mask=None, iter_axis=None):
        from ..base.mask import Mask

        check_choice(iter_axis, ITER_AXES, name="iter_axis")
        self.layer = layer
        self.iter_axis = "row_col" if iter_axis == "position" else iter_axis
        sel = mask.get(layer) if mask is not None and layer in mask else {}
        sub = act.mask(Mask({layer: sel}))             # reads only this layer's selection
        self.data = sub.get(layer)
        if self.data.dtype.kind not in "fc":
            self.data = self.data.astype(np.float64)
        n_bad = self.data.size - np.count_nonzero(np.isfinite(self.data))
        if n_bad:
            raise InputError(f"layer {layer!r} of {act.path or 'the activation'} holds "
                             f"{n_bad} NaN or infinite value(s); encoding needs finite "
                             "activations.")
        attrs = sub.layer_attrs(layer)
        self.coords = {}
        for axis, size in zip(_AXES, self.data.shape[1:]):
            given = attrs.get(axis)
            given = None if given is None else np.atleast_1d(np.asarray(given, dtype=np.int64))
            self.coords[axis] = (given if given is not None and len(given) == size
                                 else np.arange(1, size + 1))

    @property
    def n_stim(self):
        return self.data.shape[0]

    def blocks(self):
        """Feature matrices: list of ``(name, X (n_stim, n_units), coords (n_units, 3))``.

        ``coords`` holds the 1-based (channel, row, column) of every column of X.
        """
        n, c, r, k = self.data.shape
        chn, row, col = (self.coords[a] for a in _AXES)
        if self.iter_axis is None:
            grid = np.stack(np.meshgrid(chn, row, col, indexing="ij"), -1).reshape(-1, 3)
            return [("", self.data.reshape(n, -1), grid)]
        if self.iter_axis == "channel":
            pos = np.stack(np.meshgrid(row, col, indexing="ij"), -1).reshape(-1, 2)
            return [(f"chn{ch}", self.data[:, i].reshape(n, -1),
                     np.column_stack([np.full(len(pos), ch), pos])) for i, ch in enumerate(chn)]
        return [(f"row{rw}_col{cl}", self.data[:, :, i, j],
                 np.column_stack([chn, np.full(c, rw), np.full(c, cl)]))
                for i, rw in enumerate(row) for j, cl in enumerate(col)]

    def block_index(self):
        """1-based channel (or row and column) of every block, as table columns."""
        if self.iter_axis is None:
            return {}
        if self.iter_axis == "channel":
            return {"chn": self.coords["chn"]}
        row, col = self.coords["row"], self.coords["col"]
        return {"row": np.repeat(row, len(col)), "col": np.tile(col, len(row))}


class ActivationSource:
    """The layers of an activation as encoding features (see :mod:`._features`).

    Parameters
    ----------
    act : Activation
    mask : Mask
        :func:`layer_mask`: the layers, in order, and their selected units.
    """

    kind = "dnn"

    def __init__(self, act, mask):
        self.act, self.mask = act, mask
        self.path = str(act.path) if act.path else "the activation"
        self.layers = list(mask.layers)
        self.n_stim, self.stim_ids = act.n_stim, act.stim_ids

    def layer_features(self, layer, iter_axis=None):
        """:class:`LayerFeatures` of ``layer``."""
        return LayerFeatures(self.act, layer, mask=self.mask, iter_axis=iter_axis)

    def close(self):
        self.act.close()


# ---------------------------------------------------------------- encoding
@dataclass
class LayerEncoding:
    """Cross-validated encoding of every target from one layer (one row per block).

    Attributes
    ----------
    layer : str
    blocks : list of str
        Feature matrices: ``[""]`` (whole layer), ``["chn1", ...]`` or
        ``["row1_col1", ...]``.
    block_index : dict
        ``{}``, ``{"chn": ...}`` or ``{"row": ..., "col": ...}``: 1-based position of
        every block in the layer.
    n_units : ndarray of shape (n_blocks,)
    r, r2 : ndarray of shape (n_blocks, n_targets)
        NaN for targets that were not encoded (constant or empty).
    p, p_fwer : ndarray of shape (n_blocks, n_targets) or None
    alpha : ndarray of shape (n_blocks, n_targets) or None
        Ridge penalty, median over outer folds.
    best_unit : ndarray of int, shape (n_blocks, n_targets) or None
        ``analysis="uv"``: 1-based unit (column of the block) most correlated with the
        target over all stimuli (0 where not encoded).
    best_coord : ndarray of int, shape (n_blocks, n_targets, len(unit_axes)) or None
        That unit's coordinates: 1-based (channel, row, column) in a DNN layer; voxel
        (i, j, k), vertex or grayordinate (0-based, as the target columns) for brain
        features.
    folds : ndarray of shape (n_samples,)
        Outer fold testing each stimulus (the same for every block and layer with an
        int seed).
    """

    layer: str
    blocks: list
    block_index: dict
    n_units: np.ndarray
    r: np.ndarray
    r2: np.ndarray
    folds: np.ndarray
    p: Optional[np.ndarray] = None
    p_fwer: Optional[np.ndarray] = None
    alpha: Optional[np.ndarray] = None
    best_unit: Optional[np.ndarray] = None
    best_coord: Optional[np.ndarray] = None
    unit_axes: tuple = _AXES

    def score(self, scoring="r"):
        """``r`` or ``r2``, shape (n_blocks, n_targets)."""
        return getattr(self, check_choice(scoring, SCORINGS, name="scoring"))


def _check_components(model, model_params, reduce, layer, blocks):
    """PLS cannot have more components than a block has units (sklearn's bound)."""
    if model != "pls" or reduce is not None or not blocks:
        return
    n_components = (model_params or {}).get("n_components", 2)
    n_units = min(X.shape[1] for _, X, _ in blocks)
    if n_components > n_units:
        raise InputError(f"layer {layer}: -n-components {n_components} is more than its "
                         f"{n_units} unit(s) per model; give at most {n_units}.")


def encode_layer(features, responses, *, model="ridge", analysis="mv", alphas=None, cv=5,
                 groups=None, inner_cv=5, reduce=None, n_perm=0, scoring="r", seed=0,
                 fit_intercept=True, model_params=None, n_targets_batch=None,
                 model_dir=None, force=False, n_jobs=1, progress=False, engine=None,
                 voxel_batch=None, device=None, dtype="float64"):
    """Encode every valid target of ``responses`` from one layer (per block).

    Parameters
    ----------
    features : LayerFeatures or FeatureMatrix
        A layer's units, or ROI signals / brain voxels (:mod:`._features`).
    responses : Responses
        Same stimuli, same row order; only ``responses.valid`` targets are fitted.
    model, analysis, alphas, cv, groups, inner_cv, reduce, n_perm, fit_intercept,
    model_params, n_targets_batch
        As :func:`dnnsparse.algo.encoding.encode`.
    scoring : {"r", "r2"}
        Score the permutation test uses.
    seed : int, default=0
        The same int for every block (and layer) gives the same folds and permutations.
    model_dir : str or Path, optional
        Refit each block on all stimuli and save it there (``model.npz``, or
        ``<block>.npz``) without pickles.
    force : bool
        Overwrite existing model files.
    n_jobs : int, default=1
        Blocks encoded in parallel threads (without ``engine``).
    progress : bool
        A bar over blocks (and over folds when a layer is one block).
    engine : Engine, optional
        :func:`~dnnsparse.utils.engine.open_engine`: where the tasks (blocks x voxel
        batches) run; default here.
    voxel_batch : int, optional
        Targets per task (default: all in one); the same tables for any value but
        ``p_fwer``'s float ties.
    device : str, optional
        Run the ridge / GLM solvers on torch tensors there (``"cpu"``, ``"cuda"``);
        default: NumPy.
    dtype : {"float64", "float32"}
        The solvers' dtype for the responses.

    Returns
    -------
    LayerEncoding
    """
    return _submit_layer(features, responses, model=model, analysis=analysis,
                         alphas=alphas, cv=cv, groups=groups, inner_cv=inner_cv,
                         reduce=reduce, n_perm=n_perm, scoring=scoring, seed=seed,
                         fit_intercept=fit_intercept, model_params=model_params,
                         n_targets_batch=n_targets_batch, model_dir=model_dir,
                         force=force, n_jobs=n_jobs, progress=progress, engine=engine,
                         voxel_batch=voxel_batch, device=device, dtype=dtype)()


def _submit_layer(features, responses, *, model="ridge", analysis="mv", alphas=None, cv=5,
                  groups=None, inner_cv=5, reduce=None, n_perm=0, scoring="r", seed=0,
                  fit_intercept=True, model_params=None, n_targets_batch=None,
                  model_dir=None, force=False, n_jobs=1, progress=False, engine=None,
                  voxel_batch=None, y_parts=None, device=None, dtype="float64"):
    """Submit :func:`encode_layer`'s tasks; returns ``finish() -> LayerEncoding``."""
    from ..utils.engine import open_engine
    from ._encoding_tasks import finish_layer, submit_layer

    check_choice(scoring, SCORINGS, name="scoring")
    if responses.n_samples != features.n_stim:
        raise InputError(f"{responses.source} has {responses.n_samples} samples but the "
                         f"activation has {features.n_stim} stimuli; they must match.")
    Y = responses.data[:, responses.valid]
    blocks = features.blocks()
    _check_components(model, model_params, reduce, features.layer, blocks)
    encoder_args = dict(alphas=alphas, inner_cv=inner_cv, reduce=reduce,
                        fit_intercept=fit_intercept, model_params=model_params,
                        n_targets_batch=n_targets_batch)
    if model_dir is not None:
        Path(model_dir).mkdir(parents=True, exist_ok=True)
    engine = open_engine(None, n_jobs=n_jobs) if engine is None else engine
    if isinstance(seed, np.random.Generator):      # one int for every task (same folds)
        seed = int(seed.integers(2 ** 63))
    encode_args = dict(model=model, alphas=alphas, cv=cv, groups=groups,
                       inner_cv=inner_cv, reduce=reduce, analysis=analysis, n_perm=n_perm,
                       perm_score=scoring, seed=seed, fit_intercept=fit_intercept,
                       model_params=model_params, n_targets_batch=n_targets_batch,
                       progress=progress and len(blocks) == 1 and not engine.distributed)
    if device is not None or dtype != "float64":   # solvers on torch (-device / -dtype)
        encode_args["device"] = (device, dtype)
    pending = submit_layer(engine, blocks, Y, encode_args=encode_args,
                           encoder_args=encoder_args, model=model, analysis=analysis,
                           model_dir=model_dir, force=force, voxel_batch=voxel_batch,
                           y_parts=y_parts)
    layer, block_index = features.layer, features.block_index()
    unit_axes = tuple(getattr(features, "unit_axes", _AXES))

    # the blocks' shapes and coordinates, not their data, are kept until finish()
    light = [(name, np.empty((0, n_units)), coords) for name, n_units, coords in pending.blocks]
    del blocks

    def finish():
        results = finish_layer(engine, pending)
        out = _assemble(layer, light, results, responses.valid)
        out.block_index, out.unit_axes = block_index, unit_axes
        return out

    return finish


def _assemble(layer, blocks, results, valid):
    """Stack per-block results into (n_blocks, n_targets) arrays, NaN where not encoded."""
    n_blocks, n_targets = len(blocks), valid.size

    def stack(values, fill=np.nan, dtype=np.float64):
        out = np.full((n_blocks, n_targets) + np.shape(values[0])[1:], fill, dtype=dtype)
        for i, v in enumerate(values):
            out[i, valid] = v
        return out

    first = results[0]
    out = LayerEncoding(layer=layer, blocks=[b[0] for b in blocks], block_index={},
                        n_units=np.array([b[1].shape[1] for b in blocks]),
                        r=stack([res.r for res in results]),
                        r2=stack([res.r2 for res in results]), folds=first.folds)
    if first.p is not None:
        out.p = stack([res.p for res in results])
        out.p_fwer = stack([res.p_fwer for res in results])
    if first.alphas is not None:
        out.alpha = stack([np.median(res.alphas, axis=0) for res in results])
    if first.best_unit is not None:
        out.best_unit = stack([res.best_unit + 1 for res in results], fill=0, dtype=np.int64)
        out.best_coord = stack([b[2][res.best_unit] for b, res in zip(blocks, results)],
                               fill=0, dtype=np.int64)
    return out


# ---------------------------------------------------------------- outputs
def encoding_tables(results, responses, *, scoring="r", max_stat=False, p_threshold=0.05):
    """Per-target scores and per-layer / per-ROI summaries as tidy columns.

    Parameters
    ----------
    results : list of LayerEncoding
    responses : Responses
    scoring : {"r", "r2"}
        The summary's ``score``.
    max_stat : bool
        Report ``p_fwer`` (max-statistic) and count significance with it.
    p_threshold : float
        Significance level of the summary's ``n_sig``.

    Returns
    -------
    scores : dict
        One row per layer x block x target: layer, [chn | row, col], target columns
        (see :meth:`Responses.target_columns`), r, r2, [p, p_fwer], [alpha],
        [best_unit, best_chn, best_row, best_col].
    summary : dict
        One row per layer x block x ROI ("all" without ROIs): n_targets, n_encoded,
        score (mean over encoded targets), median, max, [n_sig, frac_sig].
    """
    target_cols = responses.target_columns()
    scores, summary = {}, {}

    def add(table, cols):
        for k, v in cols.items():
            table.setdefault(k, []).append(np.asarray(v))

    for res in results:
        n_blocks, n_targets = res.r.shape
        blocks = res.block_index
        cols = {"layer": np.full(n_blocks * n_targets, res.layer, dtype=object)}
        cols.update({k: np.repeat(v, n_targets) for k, v in blocks.items()})
        cols.update({k: np.tile(np.asarray(v), n_blocks) for k, v in target_cols.items()})
        cols.update(r=res.r.ravel(), r2=res.r2.ravel())
        if res.p is not None:
            cols["p"] = res.p.ravel()
            if max_stat:
                cols["p_fwer"] = res.p_fwer.ravel()
        if res.alpha is not None:
            cols["alpha"] = res.alpha.ravel()
        if res.best_unit is not None:
            cols["best_unit"] = res.best_unit.ravel()
            for i, axis in enumerate(res.unit_axes):
                cols[f"best_{axis}"] = res.best_coord[..., i].ravel()
        add(scores, cols)
        add(summary, _summary_rows(res, responses, blocks, scoring, max_stat, p_threshold))
    return ({k: np.concatenate(v) for k, v in scores.items()},
            {k: np.concatenate(v) for k, v in summary.items()})


def _summary_rows(res, responses, blocks, scoring, max_stat, p_threshold):
    score = res.score(scoring)
    pvals = None if res.p is None else (res.p_fwer if max_stat else res.p)
    rows = {"layer": [], **{k: [] for k in blocks}, "roi": [], "n_targets": [],
            "n_encoded": [], "score": [], "median": [], "max": []}
    if pvals is not None:
        rows.update(n_sig=[], frac_sig=[])
    for b in range(len(res.blocks)):
        for roi, members in responses.groups().items():
            values = score[b, members]
            ok = np.isfinite(values)
            rows["layer"].append(res.layer)
            for k, v in blocks.items():
                rows[k].append(v[b])
            rows["roi"].append(roi)
            rows["n_targets"].append(len(members))
            rows["n_encoded"].append(int(ok.sum()))
            for key, func in (("score", np.mean), ("median", np.median), ("max", np.max)):
                rows[key].append(float(func(values[ok])) if ok.any() else np.nan)
            if pvals is not None:
                sig = int(np.sum(pvals[b, members][ok] < p_threshold))
                rows["n_sig"].append(sig)
                rows["frac_sig"].append(sig / ok.sum() if ok.any() else np.nan)
    return rows


#: kind of brain data -> suffix of written maps (None: the input's own).
_MAP_SUFFIXES = {"volume": None, "cifti": ".dscalar.nii", "gifti": ".func.gii"}


def map_suffix(brain):
    """Suffix of per-target maps: the input's own for volumes, dscalar / func otherwise."""
    from ..io.brain import brain_format

    return _MAP_SUFFIXES[brain.kind] or brain_format(brain.source)


def write_encoding_maps(out_dir, result, responses, *, max_stat=False, force=False):
    """Write a layer's per-target maps (one map per block) in the input's format.

    Files ``r``, ``r2``, [``p``, ``p_fwer``], [``alpha``], [``best_unit``, ``best_chn``,
    ``best_row``, ``best_col``] + :func:`map_suffix` in ``out_dir``; features that
    were not encoded are NaN (0 in the integer unit maps), those outside the
    mask / ROIs NaN (0).

    Returns
    -------
    list of Path
    """
    brain = responses.brain
    sfx = map_suffix(brain)
    out_dir = Path(out_dir)
    names = [b or result.layer for b in result.blocks]
    maps = {"r": result.r, "r2": result.r2}
    if result.p is not None:
        maps["p"] = result.p
        if max_stat:
            maps["p_fwer"] = result.p_fwer
    if result.alpha is not None:
        maps["alpha"] = result.alpha
    written = [brain.save_like(out_dir / f"{k}{sfx}", v, names=names, fill=np.nan,
                               force=force) for k, v in maps.items()]
    if result.best_unit is not None:
        units = {"best_unit": result.best_unit,
                 **{f"best_{a}": result.best_coord[..., i]
                    for i, a in enumerate(result.unit_axes)}}
        # CIFTI/GIFTI maps are float; volumes keep integers.
        dtype = np.int32 if brain.kind == "volume" else np.float32
        written += [brain.save_like(out_dir / f"{k}{sfx}", v, names=names, dtype=dtype,
                                    force=force) for k, v in units.items()]
    return written


def stimulus_groups(stim, column=None, *, n_stim, source):
    """The ``column`` of stimulus table ``stim`` (None without a column), for ``groups``.

    The table must have the ``n_stim`` rows of ``source`` (the activation file): it is
    refused otherwise, even without a column.
    """
    from ..base.stimulus import Stimulus

    table = Stimulus.load(stim)
    if len(table) != n_stim:
        raise InputError(f"{source} has {n_stim} stimuli but {stim} has "
                         f"{len(table)}; give the table the activation was made from.")
    return np.asarray(table[column]) if column else None


@dataclass
class EncodingRun:
    """Everything :func:`run_encoding` computed over the layers.

    Attributes
    ----------
    results : list of LayerEncoding
        One per layer, in order.
    scores, summary : dict
        :func:`encoding_tables` (``scores.tsv``, ``summary.csv``).
    folds : dict
        ``folds.csv``: sample (1-based), stimID, [group], fold (1-based outer fold
        testing the stimulus).
    maps : list of Path
        The maps written (brain responses only).
    """

    results: list
    scores: dict
    summary: dict
    folds: dict
    maps: list


def _layer_dir(out, layer):
    return Path(out) / layer.replace("/", "_")


def run_encoding(act, mask, responses, *, out, iter_axis=None, groups=None,
                 save_models=True, max_stat=False, p_threshold=0.05, scoring="r",
                 progress=False, **encode_args):
    """Encode ``responses`` from every layer of ``mask``: db_encode's layer loop.

    Each layer's maps (brain responses: :func:`write_encoding_maps`) and models refitted
    on all stimuli (``save_models``) go to ``out/LAYER/``, overwriting; the tables are
    returned, for the caller to write.

    Parameters
    ----------
    act : Activation or feature source
        An Activation (with ``mask``), or a source of :mod:`._features` (ROI signals,
        brain ROIs, :class:`ActivationSource`; ``mask`` None): its feature sets take
        the place of layers.
    mask : Mask or None
        :func:`layer_mask`: the layers, in order, and their selected units.
    responses : Responses
        One row per stimulus of ``act``.
    out : path-like
        Output directory (exists).
    iter_axis : {None, "channel", "row_col", "position"}
        As :class:`LayerFeatures`.
    groups : array of shape (n_stim,), optional
        Passed to :func:`encode_layer`; also a column of the folds table.
    max_stat, p_threshold, scoring
        As :func:`encoding_tables` (``scoring`` also to :func:`encode_layer`).
    **encode_args
        The other options of :func:`encode_layer` (model, analysis, alphas, cv,
        inner_cv, reduce, n_perm, seed, model_params, n_targets_batch, n_jobs, engine,
        voxel_batch).

    Returns
    -------
    EncodingRun
    """
    from ..utils.engine import open_engine

    source = act if hasattr(act, "layer_features") else ActivationSource(act, mask)
    results, maps, finishers = [], [], []
    engine = encode_args.pop("engine", None) or open_engine(
        None, n_jobs=encode_args.pop("n_jobs", 1))
    # on a cluster every layer's tasks are submitted before any is gathered, and the
    # responses' voxel batches are sent once for all layers
    y_parts = {}
    for layer in progress_bar(source.layers, desc="layers", unit="layer", enabled=progress):
        features = source.layer_features(layer, iter_axis=iter_axis)
        finishers.append(_submit_layer(
            features, responses, groups=groups, scoring=scoring,
            model_dir=_layer_dir(out, layer) if save_models else None, force=True,
            progress=progress, engine=engine, y_parts=y_parts, **encode_args))
        del features
    for layer, finish in zip(source.layers, finishers):
        res = finish()
        if responses.brain is not None:
            maps += write_encoding_maps(_layer_dir(out, layer), res, responses,
                                        max_stat=max_stat, force=True)
        results.append(res)
    scores, summary = encoding_tables(results, responses, scoring=scoring,
                                      max_stat=max_stat, p_threshold=p_threshold)
    folds = {"sample": np.arange(1, source.n_stim + 1)}
    if source.stim_ids is not None:
        folds["stimID"] = source.stim_ids
    if groups is not None:
        folds["group"] = groups
    folds["fold"] = results[0].folds + 1
    return EncodingRun(results=results, scores=scores, summary=summary, folds=folds,
                       maps=maps)


# ---------------------------------------------------------------- decoding
def safe_name(name):
    """``name`` with every character but letters, digits and ``-_.`` replaced by ``_``.

    >>> safe_name("L V1/ROI")
    'L_V1_ROI'
    """
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in str(name))


def layer_sources(act, *, n_stim, stim, layers=None, chn=None, dmask=None, stim_ids=None,
                  coords=False):
    """Decoding features of every layer of activation file ``act`` (db_decode -act).

    Parameters
    ----------
    act : path-like
        ``.act.h5`` file; it must hold the ``n_stim`` stimuli of table ``stim``.
    layers, chn, dmask
        As :func:`layer_mask`.
    stim_ids : sequence of str, optional
        The table's stimulus IDs: the file's rows are put in their order (by ID, see
        :func:`~dnnsparse.pipelines.activation_order`), or refused when they differ; the
        0.96 s examples ``ID#k`` of an audio file are averaged per row (one sample per
        stimulus, as the target; :func:`~dnnsparse.pipelines.activation_rows`).
    coords : bool, default=False
        ``read()`` also returns every unit's 1-based (channel, row, column), shape
        (n_units, 3), in the order of ``data.reshape(n_stim, -1)``.

    Returns
    -------
    list of (str, callable)
        ``(layer, read)``: ``read()`` returns the layer's selected units, shape
        (n_stim, n_chn, n_row, n_col), for :func:`decode_sources` (with ``coords``:
        ``(data, coords)``).
    """
    from ..base.activation import Activation

    act_path, act = act, Activation.load(act)
    names = {"stim_path": str(stim), "act_path": str(act_path)}
    if act.n_stim != n_stim and (stim_ids is None or
                                 example_rows(act, stim_ids, **names) is None):
        raise InputError(f"{act_path} has {act.n_stim} stimuli but {stim} has "
                         f"{n_stim}; give the table the activation was made from.")
    mask = layer_mask(act, layers=layers, chn=chn, dmask=dmask)
    # reordered by ID; the examples ID#k of an audio file averaged per row
    rows = None if stim_ids is None else activation_rows(act, stim_ids, **names)

    def read(layer):
        features = LayerFeatures(act, layer, mask=mask)
        data = features.data if rows is None else rows(features.data)
        return (data, features.blocks()[0][2]) if coords else data

    return [(layer, lambda layer=layer: read(layer)) for layer in mask.layers]


def response_sources(resp, *, n_stim, stim, rois=None, columns=None):
    """Decoding features of response file ``resp`` (db_decode -resp).

    Brain data: the features of every ROI (one source ``all`` without ROIs); a
    ``.roi.h5`` file or a table: its signals or columns together, named after the file.
    Constant targets are left out, with a warning.

    Parameters
    ----------
    resp : path-like
        As :func:`load_responses`, with ``rois`` and ``columns``; it must hold the
        ``n_stim`` stimuli of table ``stim``.

    Returns
    -------
    list of (str, ndarray)
    """
    responses = load_responses(resp, rois=rois, columns=columns)
    if responses.n_samples != n_stim:
        raise InputError(f"{resp} has {responses.n_samples} samples but {stim} "
                         f"has {n_stim} stimuli; they must match one to one.")
    responses.report_skipped("they are left out of the features")
    name = "all" if responses.brain is not None else safe_name(str(resp).split("/")[-1])
    return responses.sources(name)


def decoding_outputs(results, y, *, stim_ids, groups=None, target=None):
    """db_decode's tables, as ``[(file name, columns)]`` in the order they are written.

    Parameters
    ----------
    results : list of (str, int, result)
        :func:`decode_sources`.
    y : ndarray of shape (n_stim,)
        The decoded column.
    stim_ids : sequence of str
    groups : ndarray of shape (n_stim,), optional
    target : str, optional
        The column's name for regressors; None for classifiers, which add
        ``per_class.csv`` and one ``confusion_<source>.csv`` per source.

    Returns
    -------
    list of (str, dict)
        ``decoding.csv`` (:func:`decoding_tables`' summary), [``per_class.csv``,
        ``confusion_*.csv``], ``predictions.csv`` (sample, stimID, [group], fold, true,
        one column per source).
    """
    tables = decoding_tables(results, target_names=None if target is None else [target])
    files = [("decoding.csv", tables["summary"])]
    if target is None:
        files.append(("per_class.csv", tables["per_class"]))
        files += [(f"confusion_{safe_name(name)}.csv", table)
                  for name, table in tables["confusion"].items()]
    pred = {"sample": np.arange(1, len(y) + 1), "stimID": stim_ids}
    if groups is not None:
        pred["group"] = groups
    pred.update(fold=results[0][2].folds + 1, true=y)
    pred.update({name: res.predictions for name, _, res in results})
    files.append(("predictions.csv", pred))
    return files
