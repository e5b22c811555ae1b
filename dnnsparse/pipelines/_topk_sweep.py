"""Top-K sweeps: shape bias and accuracy as Top-K sparsifies chosen layers.

For each *setting* -- the intact network (the baseline) and every (layer set,
fraction) pair -- Top-K is inserted at the layers of the set
(:func:`~dnnsparse.model.insert_topk`, all with the same fraction), the
scores of the network's output layer are computed once for every stimulus
(:meth:`DNN.extract`), the hooks are removed again, and the scores are turned
into a shape bias on the cue-conflict images
(:func:`~dnnsparse.algo.shape_bias.cue_conflict_shape_bias`) and an accuracy.

The network is duck-typed: anything with ``layers``, ``input_size``,
``resolve``, ``register_layer_hook``, ``module`` and ``extract`` (a
:class:`~dnnsparse.model.DNN`) will do; this module does not import the
model layer.

Accuracy
--------
``"imagenet_top1"``: top-1 ImageNet accuracy against the table's ``label``
column (ImageNet class indices 0-999). ``"shape_decision"``: the fraction of
16-category decisions equal to the image's shape category, over all images
(also those whose shape and texture coincide). ``accuracy="auto"`` takes the
first when the table has a ``label`` column within 0-999 and the network has
1000 outputs, the second otherwise.

Reference values
----------------
:func:`read_shape_bias_reference` reads a CSV of published shape-bias values
(other models, humans) that a user supplies, to draw beside the sweep
(``db_topk -reference``): columns ``name,shape_bias`` and optionally
``category`` (one of the 16; empty for an overall value).
"""
import math
import logging
import numbers
from dataclasses import dataclass, field

import numpy as np
import torch
from scipy.special import softmax

from ..errors import FileFormatError, InputError
from ..io.table import csv_rows, read_text_lines
from ..utils.progress import progress
from ..utils.validation import check_choice, check_scalar
from ..algo.shape_bias import (CATEGORIES, check_category_names, cue_conflict_shape_bias,
                               decision_accuracy, imagenet_accuracy, parse_cue_conflict_name)
from ..model import MODES, insert_topk

__all__ = ["ACCURACY_KINDS", "SweepResult", "check_fractions", "check_layer_sets",
           "cue_conflict_categories", "evaluate_scores", "network_output_layer",
           "read_shape_bias_reference", "stimulus_scores", "topk_sweep"]

log = logging.getLogger(__name__)

#: Names of the layer set and mode written for the intact network.
BASELINE = "none"


# -------------------------------------------------------------------- accuracy kinds
def _imagenet_top1(scores, labels, shape):
    if labels is None:
        raise InputError("accuracy 'imagenet' needs a 'label' column of ImageNet class "
                         "indices (0-999) in the stimulus table.")
    return imagenet_accuracy(scores, labels, top=(1,))["top1"]


def _shape_decision(scores, labels, shape):
    return decision_accuracy(scores, shape)


#: Registry of accuracies: ``(probabilities, labels or None, shape names) -> float``.
ACCURACY_KINDS = {"imagenet_top1": _imagenet_top1, "shape_decision": _shape_decision}
_ACCURACY_ALIASES = {"imagenet": "imagenet_top1", "shape": "shape_decision"}


def _accuracy_kind(accuracy, labels, n_classes):
    """Resolve ``"auto"`` and the short aliases to a key of :data:`ACCURACY_KINDS`."""
    accuracy = _ACCURACY_ALIASES.get(accuracy, accuracy)
    if accuracy != "auto":
        return check_choice(accuracy, ACCURACY_KINDS, name="accuracy")
    if labels is not None and n_classes == 1000 and labels.size and \
            labels.min() >= 0 and labels.max() <= 999:
        return "imagenet_top1"
    return "shape_decision"


# ------------------------------------------------------------------------ stimuli
def cue_conflict_categories(stim):
    """Shape and texture category of every stimulus.

    Taken from the table's ``shape`` and ``texture`` columns when it has them,
    otherwise from the image names ``<shape><n>-<texture><m>.png``.

    Parameters
    ----------
    stim : Stimulus

    Returns
    -------
    shape, texture : ndarray of str, shape (n_stimuli,)
        Lower-case names from :data:`~dnnsparse.algo.shape_bias.CATEGORIES`.

    Raises
    ------
    InputError
        When only one of the columns exists, a name is not one of the 16
        categories, or an image name cannot be read.

    Examples
    --------
    >>> from dnnsparse.base.stimulus import Stimulus
    >>> shape, texture = cue_conflict_categories(Stimulus(["cat1-dog2.png"]))
    >>> shape.tolist(), texture.tolist()
    (['cat'], ['dog'])
    """
    cols = stim.columns
    if "shape" in cols or "texture" in cols:
        missing = "texture" if "shape" in cols else "shape"
        if missing not in cols:
            raise InputError(f"the stimulus table has no {missing!r} column; give both "
                             f"'shape' and 'texture' columns, or neither and name the images "
                             f"'<shape><n>-<texture><m>.png'.")
        return check_category_names(cols["shape"], "shape column"), \
            check_category_names(cols["texture"], "texture column")
    pairs = []
    for i, sid in enumerate(stim.ids):
        try:
            pairs.append(parse_cue_conflict_name(sid))
        except InputError as exc:
            raise InputError(f"no cue-conflict information: the stimulus table has no 'shape' "
                             f"and 'texture' columns, and row {i + 1}: {exc}") from None
    if not pairs:
        raise InputError("the stimulus table has no rows.")
    shape, texture = zip(*pairs)
    return np.asarray(shape, dtype=str), np.asarray(texture, dtype=str)


# ------------------------------------------------------------------------- scores
def network_output_layer(dnn):
    """Name of the layer whose output is the network's output (its class scores).

    One forward pass of a blank image with a hook on every layer; the last layer
    (in ``dnn.layers`` order) returning the very tensor the network returns wins
    -- ``fc3`` for AlexNet/VGG, ``fc`` for ResNet, GoogLeNet and EfficientNet.

    Raises
    ------
    InputError
        When no layer returns the network's output (e.g. it is computed by a
        function after the last module); pass the layer explicitly then.
    """
    outputs = {}

    def make_hook(name):
        def hook(module, inputs, output):
            outputs[name] = output
        return hook

    handles = []
    try:
        for layer in dnn.layers:
            handles.append(dnn.register_layer_hook(layer, make_hook(layer)))
        x = torch.zeros((1, 3) + tuple(dnn.input_size), device=dnn.device)
        with torch.inference_mode():
            final = dnn.module(x)
    finally:
        for h in handles:
            h.remove()
    found = [l for l in dnn.layers if outputs.get(l) is final]
    if not found:
        raise InputError(f"cannot tell which layer of {dnn.name} gives its output (no layer "
                         f"returns the tensor the network returns); name it explicitly "
                         f"(-output-layer).")
    return found[-1]


def stimulus_scores(dnn, stim, *, topk=None, mode="keep", output_layer=None, batch_size=32,
                    device="cpu", workers=None, show_progress=False):
    """Class scores of every stimulus, with Top-K at ``topk`` while they are computed.

    Parameters
    ----------
    dnn : DNN
    stim : Stimulus
    topk : dict, optional
        ``{layer: fraction}`` inserted for this pass and removed afterwards
        (also on error). None: the intact network.
    mode : {"keep", "mean", "inverse"}, default="keep"
    output_layer : str, optional
        Layer giving the scores; default :func:`network_output_layer`.
    batch_size, device, workers, show_progress
        As in :meth:`DNN.extract`.

    Returns
    -------
    numpy.ndarray of shape (n_stimuli, n_classes), float32
        The output layer's values (logits for the zoo networks).
    """
    layer = output_layer or network_output_layer(dnn)
    handle = insert_topk(dnn, topk, mode=mode) if topk else None
    try:
        act = dnn.extract(stim, [layer], batch_size=batch_size, device=device,
                          workers=workers, show_progress=show_progress)
    finally:
        if handle is not None:
            handle.remove()
    return act.to_matrix(layer)


def evaluate_scores(scores, shape, texture, *, labels=None, accuracy="auto", n_boot=1000,
                    confidence=0.95, seed=0):
    """Shape bias and accuracy of one network's scores on cue-conflict images.

    Parameters
    ----------
    scores : array-like of shape (n_images, 1000) or (n_images, 16)
        Logits: ImageNet-1k classes, or the 16 categories in the order of
        :data:`~dnnsparse.algo.shape_bias.CATEGORIES`. A softmax (float64)
        turns them into probabilities first.
    shape, texture : sequence of str, length n_images
    labels : array-like of int, optional
        ImageNet class indices (for ``accuracy="imagenet_top1"``).
    accuracy : {"auto", "imagenet_top1", "shape_decision"}, default="auto"
        See the module docstring (``"imagenet"`` and ``"shape"`` are accepted too).
    n_boot, confidence, seed
        Bootstrap of :func:`~dnnsparse.algo.shape_bias.cue_conflict_shape_bias`.

    Returns
    -------
    row : dict
        ``shape_bias, ci_low, ci_high, shape_or_texture_fraction, n_shape,
        n_texture, n_conflict, n_excluded, accuracy, accuracy_kind, n_images``.
    per_category : dict of lists
        The result's per-category table (16 rows).

    Examples
    --------
    >>> scores = np.eye(16)[[7, 7, 10]] * 5          # decides cat, cat, dog
    >>> row, _ = evaluate_scores(scores, ["cat", "dog", "dog"], ["dog", "cat", "cat"])
    >>> row["shape_bias"], row["accuracy"], row["accuracy_kind"]
    (0.6666666666666666, 0.6666666666666666, 'shape_decision')
    """
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 2 or scores.shape[1] not in (1000, len(CATEGORIES)):
        raise InputError(f"class scores must have 1000 (ImageNet) or 16 (category) columns; "
                         f"got shape {scores.shape}. Use a network with ImageNet outputs.")
    if not np.isfinite(scores).all():
        raise InputError("the network gave NaN or infinite scores for some images; check "
                         "its weights.")
    labels = None if labels is None else np.asarray(labels)
    kind = _accuracy_kind(accuracy, labels, scores.shape[1])
    probs = softmax(scores, axis=1)
    result = cue_conflict_shape_bias(probs, shape=shape, texture=texture, n_boot=n_boot,
                                     confidence=confidence, seed=seed)
    summary = result.summary()
    row = {k: summary[k] for k in ("shape_bias", "ci_low", "ci_high",
                                   "shape_or_texture_fraction", "n_shape", "n_texture",
                                   "n_conflict", "n_excluded")}
    row["accuracy"] = ACCURACY_KINDS[kind](probs, labels, shape)
    row["accuracy_kind"] = kind
    row["n_images"] = summary["n_images"]
    return row, result.per_category


# -------------------------------------------------------------------------- sweep
@dataclass
class SweepResult:
    """Outcome of :func:`topk_sweep`.

    Attributes
    ----------
    table : dict of lists
        One row per setting (baseline first): ``layers`` (``"+"``-joined;
        ``"none"`` for the baseline), ``fraction`` (1 for the baseline),
        ``mode``, then the columns of :func:`evaluate_scores`.
    per_category : dict of lists
        ``layers, fraction, mode`` and the per-category columns; 16 rows per
        setting.
    scores : list of ndarray
        The scores of each row of ``table`` (empty unless ``keep_scores``).
    """

    table: dict
    per_category: dict
    scores: list = field(default_factory=list, repr=False)


def check_layer_sets(dnn, layer_sets):
    """Layer sets as lists, each non-empty, without repeats, every layer known to ``dnn``."""
    sets = [list(s) for s in (layer_sets or [])]
    if not sets or any(not s for s in sets):
        raise InputError("give at least one non-empty layer set (-layer or -layer-set).")
    for s in sets:
        if len(set(s)) != len(s):
            raise InputError(f"layer set {'+'.join(s)} names a layer twice.")
        for layer in s:
            dnn.resolve(layer)                 # UnknownLayerError listing the names
    return sets


def check_fractions(fractions):
    """Fractions as floats in (0, 1], duplicates dropped (first kept)."""
    out = []
    for f in fractions or []:
        check_scalar(f, name="fraction", kind=numbers.Real, min_val=0, max_val=1,
                     include_min=False)
        out.append(float(f))
    if not out:
        raise InputError("give at least one Top-K fraction in (0, 1].")
    return list(dict.fromkeys(out))


def topk_sweep(dnn, stim, layer_sets, fractions, *, mode="keep", accuracy="auto",
               output_layer=None, n_boot=1000, confidence=0.95, seed=0, batch_size=32,
               device="cpu", workers=None, keep_scores=False, show_progress=True,
               engine=None):
    """Shape bias and accuracy of ``dnn`` with Top-K at each layer set and fraction.

    Parameters
    ----------
    dnn : DNN
    stim : Stimulus
        Cue-conflict images: ``shape``/``texture`` columns or names
        ``<shape><n>-<texture><m>.png`` (see :func:`cue_conflict_categories`),
        optionally a ``label`` column of ImageNet indices.
    layer_sets : list of list of str
        Each set gets Top-K at all its layers together.
    fractions : list of float in (0, 1]
        Fractions kept (the same at every layer of a set); duplicates are dropped.
    mode : {"keep", "mean", "inverse"}, default="keep"
    accuracy : {"auto", "imagenet_top1", "shape_decision"}, default="auto"
    output_layer : str, optional
        Layer giving the class scores; default :func:`network_output_layer`.
    n_boot, confidence, seed
        Bootstrap CI of the shape bias; the same seed is used for every setting.
    batch_size, device, workers
        As in :meth:`DNN.extract`.
    keep_scores : bool, default=False
        Keep every setting's scores in the result.
    show_progress : bool, default=True
        A progress bar over the settings.
    engine : Engine, optional
        :func:`~dnnsparse.utils.engine.open_engine`: where the settings' forward passes
        run (default here); the network and stimuli are sent to the workers once.

    Returns
    -------
    SweepResult

    Raises
    ------
    InputError, UnknownLayerError
        Before any computation, for a bad layer, fraction, mode or stimulus table.

    Examples
    --------
    >>> res = topk_sweep(dnn, stim, [["conv5_relu"]], [0.05, 0.1])   # doctest: +SKIP
    >>> res.table["shape_bias"]                                       # doctest: +SKIP
    """
    check_choice(mode, MODES, name="mode")
    sets = check_layer_sets(dnn, layer_sets)
    fractions = check_fractions(fractions)
    shape, texture = cue_conflict_categories(stim)
    labels = stim.labels
    layer = output_layer or network_output_layer(dnn)
    dnn.resolve(layer)
    settings = [(None, 1.0)] + [(s, f) for s in sets for f in fractions]

    table, per_category, kept = {}, {}, []
    baseline = None
    pending = {}
    if engine is not None and engine.distributed:   # every forward pass submitted first
        net, images = engine.put(dnn), engine.put(stim)
        pending = {i: engine.submit(_scores_task, net, images,
                                    None if s is None else dict.fromkeys(s, f), mode, layer,
                                    batch_size, device, workers)
                   for i, (s, f) in enumerate(settings)
                   if s is None or not (f == 1 and mode == "keep")}
    bar = progress(total=len(settings), desc=f"{dnn.name} Top-K settings", unit="setting",
                   enabled=show_progress)
    try:
        for i, (layers, fraction) in enumerate(settings):
            if layers is not None and fraction == 1 and mode == "keep":
                scores = baseline            # Top-K keeping everything is the identity
            elif i in pending:
                scores = engine.gather([pending.pop(i)])[0]
            else:
                spec = None if layers is None else dict.fromkeys(layers, fraction)
                scores = stimulus_scores(dnn, stim, topk=spec, mode=mode, output_layer=layer,
                                         batch_size=batch_size, device=device,
                                         workers=workers)
            if layers is None:
                baseline = scores
                _warn_folder_labels(accuracy, stim, scores)
            row, cats = evaluate_scores(scores, shape, texture, labels=labels,
                                        accuracy=accuracy, n_boot=n_boot,
                                        confidence=confidence, seed=seed)
            key = {"layers": BASELINE if layers is None else "+".join(layers),
                   "fraction": fraction, "mode": BASELINE if layers is None else mode}
            _append(table, {**key, **row})
            n_cat = len(cats["category"])
            _append_columns(per_category, {**{k: [v] * n_cat for k, v in key.items()}, **cats})
            if keep_scores:
                kept.append(scores)
            log.info("%s fraction %g: shape bias %.3f, accuracy %.3f", key["layers"], fraction,
                     row["shape_bias"], row["accuracy"])
            bar.update(1)
    finally:
        bar.close()
    return SweepResult(table=table, per_category=per_category, scores=kept)


def _scores_task(dnn, stim, topk, mode, output_layer, batch_size, device, workers):
    """One setting's :func:`stimulus_scores` as a pure task.

    A worker keeps one copy of the network for all its tasks; each task inserts its
    hooks into a private copy, so a task re-run after a failure (or another task of
    the same worker) never sees another task's Top-K.
    """
    import copy

    return stimulus_scores(copy.deepcopy(dnn), stim, topk=topk, mode=mode, output_layer=output_layer,
                           batch_size=batch_size, device=device, workers=workers)


def _warn_folder_labels(accuracy, stim, scores):
    # Stimulus.from_folder numbers sub-folders 0..K-1 in 'label' and keeps their names in
    # 'condition': such labels are not ImageNet classes, yet fall within 0-999.
    kind = _accuracy_kind(accuracy, stim.labels, scores.shape[1])
    if accuracy == "auto" and kind == "imagenet_top1" and "condition" in stim.columns:
        log.warning("accuracy: reading the 'label' column as ImageNet class indices; if it "
                    "numbers folders (the table has a 'condition' column), pass -accuracy "
                    "shape.")


def _append(columns, row):
    for k, v in row.items():
        columns.setdefault(k, []).append(v)


def _append_columns(columns, block):
    for k, v in block.items():
        columns.setdefault(k, []).extend(v)


def read_shape_bias_reference(path):
    """Read a table of reference shape-bias values (published models, humans).

    The CSV has a header line with the columns ``name`` and ``shape_bias``, and
    optionally ``category``; further columns (e.g. a citation) are ignored. Each
    row is one value: with an empty (or no) ``category`` the overall shape bias
    of ``name``, with a category (one of the 16 cue-conflict categories) its
    shape bias on that category. Blank lines are skipped.

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    dict of lists
        ``name`` (str), ``category`` (lower-case category, ``""`` for overall
        values), ``shape_bias`` (float in [0, 1]), in file order.

    Raises
    ------
    MissingFileError
        When the file does not exist.
    FileFormatError
        Naming the file and line: a missing column, an empty name, a value that
        is not a number in [0, 1], an unknown category, a (name, category) pair
        given twice, or no rows.

    Examples
    --------
    A file with the lines ``name,shape_bias,category``, ``humans,0.96,``,
    ``humans,0.98,bottle``, ``ResNet-50,0.21,``::

        ref = read_shape_bias_reference("published.csv")
        ref["name"]                # ['humans', 'humans', 'ResNet-50']
        ref["category"]            # ['', 'bottle', '']
    """
    path, lines = read_text_lines(path, "shape-bias reference table")
    rows = [(n, r) for n, r in csv_rows(lines, first_line=1, where=str(path))
            if any(v.strip() for v in r)]
    if not rows:
        raise FileFormatError(f"{path}: empty file; write a header line name,shape_bias "
                              f"(and optionally category), then one row per value.")
    header = [h.strip().lower() for h in rows[0][1]]
    missing = [c for c in ("name", "shape_bias") if c not in header]
    if missing:
        raise FileFormatError(f"{path}, line {rows[0][0]}: no {' or '.join(missing)} column "
                              f"(header: {','.join(rows[0][1])}); the header needs name,"
                              f"shape_bias and optionally category.")
    col = {c: header.index(c) for c in ("name", "shape_bias", "category") if c in header}
    out = {"name": [], "category": [], "shape_bias": []}
    seen = {}
    for n, r in rows[1:]:
        if len(r) != len(header):
            raise FileFormatError(f"{path}, line {n}: {len(r)} fields, expected "
                                  f"{len(header)} ({','.join(header)}).")
        name = r[col["name"]].strip()
        if not name:
            raise FileFormatError(f"{path}, line {n}: empty name; give the model or "
                                  f"observer the value belongs to.")
        text = r[col["shape_bias"]].strip()
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and 0 <= value <= 1):
            raise FileFormatError(f"{path}, line {n}: shape_bias {text!r} is not a number "
                                  f"in [0, 1].")
        cat = r[col["category"]].strip().lower() if "category" in col else ""
        if cat and cat not in CATEGORIES:
            raise FileFormatError(f"{path}, line {n}: category {cat!r} is not one of the "
                                  f"16 cue-conflict categories ({', '.join(CATEGORIES)}); "
                                  f"leave it empty for an overall value.")
        if (name, cat) in seen:
            what = f"category {cat}" if cat else "the overall value"
            raise FileFormatError(f"{path}, line {n}: {name} has {what} already on line "
                                  f"{seen[(name, cat)]}; give each value once.")
        seen[(name, cat)] = n
        out["name"].append(name)
        out["category"].append(cat)
        out["shape_bias"].append(value)
    if not out["name"]:
        raise FileFormatError(f"{path}: no rows after the header; add one row per value "
                              f"(name,shape_bias[,category]).")
    return out
