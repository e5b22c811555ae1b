"""The sparse-coding paper's analysis from activations (or brain data) to tables.

Liu, Zhen & Liu (2020) measure, layer by layer, how sparsely each object category
is coded (PSI), test whether sparseness rises along the hierarchy, and relate it
to how well each category is recognised. This module runs that analysis on the
package's objects so that the commands (``db_psi``, ``db_probe``, ``db_demo``) only
read arguments and print:

- :func:`activation_sparseness` -- a sparseness measure of every category (or, for
  lifetime sparseness, every unit) in every layer of an :class:`Activation`, read
  one layer at a time; per-stimulus files are grouped by their labels (any order,
  any category sizes), per-category files (``db_act -aggregate label``) are used
  as they are.
- :func:`brain_sparseness` -- the same for brain data: each population (an ROI's
  voxels, or the ROIs of a ``.roi.h5`` file) plays the role of a layer.
- :class:`SparsenessResult` -- tidy table, per-layer summary (median, IQR, units,
  dead units) and the Kendall trend test.
- :func:`accuracy_analysis` -- PSI-accuracy correlation per layer and stepwise
  regression by stage, given per-category accuracy (:func:`probe_accuracy`).
- :func:`write_psi_outputs` -- the tables and figures of ``db_psi``.
- :func:`files_sparseness` and :func:`write_files_outputs` -- the same for several
  activation files (e.g. intact and weight-permuted networks), every (file, layer)
  one task of the engine, and their outputs: a folder per file plus the stacked
  tables and one figure of every file's layer medians.

:func:`~dnnsparse.pipelines.network_sparseness` and
:func:`~dnnsparse.pipelines.run_demo` -- extraction plus analysis of a network,
and the embedded demo -- live in :mod:`._demo`.
"""
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import stats

from ..errors import InputError
from ..io import atomic_output_dir
from ..io.table import write_table
from ..utils.memory import items_per_read
from ..utils.progress import progress
from ..utils.validation import check_choice
from ..algo.sparseness import UNIT_MODES, category_means
from ..algo.sparseness import MEASURES, dead_units, sparseness
from ..algo.stats import (STEPWISE_CRITERIA, TREND_TARGETS, category_trend,
                          hierarchy_trend, is_fc_layer, psi_accuracy_correlation,
                          stepwise_by_stage)

__all__ = [
    "AccuracyAnalysis",
    "SparsenessResult",
    "accuracy_analysis",
    "activation_file_names",
    "activation_file_sparseness",
    "activation_sparseness",
    "brain_file_sparseness",
    "brain_sparseness",
    "category_names",
    "describe_source",
    "files_sparseness",
    "format_accuracy",
    "format_summary",
    "load_grouping_stimuli",
    "probe_accuracy",
    "write_files_outputs",
    "write_psi_outputs",
]

log = logging.getLogger(__name__)

#: Warn when the largest category has more than this many times the smallest's stimuli.
SIZE_RATIO_WARNING = 2.0


# ---------------------------------------------------------------------------
# Result of one analysis
# ---------------------------------------------------------------------------
def _quartiles(values):
    """(q25, median, q75) with the 'midpoint' rule of the authors' IQR (NaN ignored)."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if not v.size:
        return np.nan, np.nan, np.nan
    q25, med, q75 = np.percentile(v, [25, 50, 75], method="midpoint")
    return float(q25), float(med), float(q75)


@dataclass
class SparsenessResult:
    """Sparseness of every category (or unit) in every layer (or brain population).

    Attributes
    ----------
    layers : list of str
        Layer (population) names in hierarchical order.
    measure : str
        A key of :data:`~dnnsparse.algo.sparseness.MEASURES`.
    values : list of ndarray
        Per layer: shape (n_categories,) -- or (n_units,) for a per-unit measure
        (``MEASURES[measure].per_unit``).
    labels : ndarray of shape (n_categories,)
        Category labels, in the order of the values.
    names : ndarray of str, shape (n_categories,)
        Category names (the stimulus table's ``condition``, else the label).
    counts : ndarray of int, shape (n_categories,)
        Stimuli averaged into each category.
    n_units, dead_units : ndarray of int, shape (n_layers,)
        Units of each layer, and how many respond identically to every category.
    unit_ids : list of ndarray
        Per layer, the id of every unit (1-based channel/element number, ROI
        name, voxel index); used in per-unit tables.
    unit : str
        "channel" or "position" for networks, "roi"/"voxel" for brain data.
    absolute : bool
        Whether the absolute values of the activations were used.
    source : str
        What was measured, for figure titles: the network and what was done to it
        (from the ``.act.h5`` provenance, :func:`describe_source`) or the file.
    """

    layers: list
    measure: str
    values: list
    labels: np.ndarray
    names: np.ndarray
    counts: np.ndarray
    n_units: np.ndarray
    dead_units: np.ndarray
    unit_ids: list = field(default_factory=list)
    unit: str = "channel"
    absolute: bool = False
    source: str = ""

    @property
    def per_unit(self):
        """True for measures computed per unit (lifetime sparseness), from the registry."""
        return MEASURES[self.measure].per_unit

    @property
    def bounded(self):
        """True for measures whose values lie in [0, 1], from the registry."""
        return MEASURES[self.measure].bounded

    @property
    def positions(self):
        """Layer positions 1..n_layers."""
        return np.arange(1, len(self.layers) + 1, dtype=np.float64)

    @property
    def n_categories(self):
        return len(self.labels)

    def matrix(self):
        """Category values as an array of shape (n_layers, n_categories)."""
        if self.per_unit:
            raise InputError(f"{self.measure} sparseness is per unit; layers have different "
                             f"numbers of units, so there is no layer x category matrix.")
        return np.vstack(self.values)

    def table(self):
        """Tidy columns: layer, layer_index, category, label, <measure> -- or layer,
        layer_index, unit, <measure> for a per-unit measure."""
        sizes = [len(v) for v in self.values]
        cols = {"layer": np.repeat(self.layers, sizes),
                "layer_index": np.repeat(np.arange(1, len(self.layers) + 1), sizes)}
        if self.per_unit:
            cols["unit"] = np.concatenate(self.unit_ids)
        else:
            cols["category"] = np.tile(self.names, len(self.layers))
            cols["label"] = np.tile(self.labels, len(self.layers))
        cols[self.measure] = np.concatenate(self.values)
        return cols

    def summary(self):
        """Per layer: median, q25, q75, iqr (midpoint quartiles), n_units, dead_units,
        n_categories."""
        q = np.array([_quartiles(v) for v in self.values]).reshape(-1, 3)
        return {"layer": list(self.layers),
                "layer_index": list(range(1, len(self.layers) + 1)),
                "median": q[:, 1], "q25": q[:, 0], "q75": q[:, 2], "iqr": q[:, 2] - q[:, 0],
                "n_units": self.n_units, "dead_units": self.dead_units,
                "n_categories": [self.n_categories] * len(self.layers)}

    def trend(self):
        """Kendall's tau of the values against layer position.

        Returns
        -------
        dict
            ``{"categories": (tau, p, n), "medians": (tau, p, n)}``: all values
            pooled over layers (the authors' test; for a per-unit measure all
            units) and the layer medians. NaN with fewer than 2 layers.
        """
        pos = self.positions
        if len(self.layers) < 2:
            n = sum(len(v) for v in self.values)
            return {"categories": (np.nan, np.nan, n), "medians": (np.nan, np.nan, 1)}
        if not self.per_unit:
            m = self.matrix()
            out = {}
            for on in TREND_TARGETS:
                res = hierarchy_trend(m, on=on)
                out[on] = (res.tau, res.pvalue, m.size if on == "categories" else len(pos))
            return out
        # Units differ in number between layers: pool them directly.
        x = np.repeat(pos, [len(v) for v in self.values])
        pooled = stats.kendalltau(x, np.concatenate(self.values))
        medians = stats.kendalltau(pos, [_quartiles(v)[1] for v in self.values])
        return {"categories": (float(pooled[0]), float(pooled[1]), x.size),
                "medians": (float(medians[0]), float(medians[1]), len(pos))}

    def trend_rows(self, *, seed=0, n_permutations=10000):
        """Every test of a trend along the layers, each saying what it is.

        Rows (dicts with keys test, label, tau, p, n, n_of, description; label is
        the short name printouts use), in this order:
        ``<measure>_categories`` -- the authors' test, Kendall's tau of all values
        pooled (n = layers x categories, treated as independent: its p is too
        small); ``<measure>_category_taus_wilcoxon`` and
        ``<measure>_category_taus_signflip`` -- each category's tau along the
        layers, tested across categories (n = categories; tau is their median
        and mean; see :func:`~dnnsparse.algo.stats.category_trend`; not for a
        per-unit measure, whose units differ between layers); and
        ``<measure>_medians`` -- Kendall's tau of the layer medians (n = layers).
        """
        m = self.measure
        trend = self.trend()
        tau, p, n = trend["categories"]
        thing = "unit" if self.per_unit else "category"
        rows = [dict(test=f"{m}_categories", label="authors' test (values pooled)",
                     tau=tau, p=p, n=n, n_of="values",
                     description=f"the authors' test: Kendall tau of all {n} layer x "
                                 f"{thing} values pooled against layer position, as if "
                                 f"independent (p too small)")]
        if not self.per_unit and len(self.layers) >= 2:
            ct = category_trend(self.matrix(), seed=seed, n_permutations=n_permutations)
            flips = (f"all {ct.n_signflips} sign patterns" if ct.signflip_exact else
                     f"{ct.n_signflips} random sign patterns, seed {ct.seed}")
            rows += [dict(test=f"{m}_category_taus_wilcoxon",
                          label="per-category tau, Wilcoxon", tau=ct.median_tau,
                          p=ct.wilcoxon_pvalue, n=ct.n, n_of="categories",
                          description=f"each category's Kendall tau along the layers "
                                      f"({ct.n_positive} up, {ct.n_negative} down); "
                                      f"Wilcoxon signed-rank test across categories "
                                      f"({ct.wilcoxon_method}, W = "
                                      f"{ct.wilcoxon_statistic:g}); tau = median"),
                     dict(test=f"{m}_category_taus_signflip",
                          label="per-category tau, sign-flip", tau=ct.mean_tau,
                          p=ct.signflip_pvalue, n=ct.n, n_of="categories",
                          description=f"each category's Kendall tau along the layers; "
                                      f"sign-flip permutation test of their mean "
                                      f"({flips}); tau = mean")]
        mtau, mp, mn = trend["medians"]
        rows.append(dict(test=f"{m}_medians", label="layer medians", tau=mtau, p=mp, n=mn,
                         n_of="layers",
                         description="Kendall tau of the layer medians against layer "
                                     "position"))
        return rows


def format_summary(result, *, title=None, seed=0, n_permutations=10000):
    """The per-layer summary and the trend tests as aligned text (what ``db_psi`` prints).

    ``seed`` and ``n_permutations`` are those of the sign-flip test
    (:meth:`SparsenessResult.trend_rows`).
    """
    s = result.summary()
    width = max(8, *(len(str(l)) for l in s["layer"]))
    what = (f"{result.measure} of every unit across {result.n_categories} categories"
            if result.per_unit else f"{result.measure} of {result.n_categories} categories")
    lines = [title] if title else []
    lines.append(f"{'layer':<{width}}  {'median':>8}  {'q25':>8}  {'q75':>8}  {'iqr':>8}  "
                 f"{'units':>8}  {'dead':>6}")
    for i, layer in enumerate(s["layer"]):
        lines.append(f"{layer:<{width}}  {s['median'][i]:8.4f}  {s['q25'][i]:8.4f}  "
                     f"{s['q75'][i]:8.4f}  {s['iqr'][i]:8.4f}  {s['n_units'][i]:>8d}  "
                     f"{s['dead_units'][i]:>6d}")
    if result.absolute:
        what += " (absolute activations)"
    lines.append(f"Trend of the {what} along {len(result.layers)} layers (Kendall tau; "
                 f"trend.csv says what each test is):")
    rows = result.trend_rows(seed=seed, n_permutations=n_permutations)
    label_width = max(len(row["label"]) for row in rows)
    for row in rows:
        lines.append(f"  {row['label']:<{label_width}}  tau {row['tau']:+.3f}  "
                     f"p={row['p']:<9.3g}  n={row['n']} {row['n_of']}")
    if len(rows) > 2:
        lines.append(f"  (the authors' test counts all {rows[0]['n']} values as independent, "
                     f"so its p is far too small; n of the per-category tests is the "
                     f"{rows[1]['n']} categories)")
    return "\n".join(lines)


def describe_source(attrs, path=None):
    """What an activation file measured, from its provenance attributes.

    ``net`` (and ``weights`` when they are not the network's ImageNet default),
    then "intact" or the ``lesion`` applied, and any Top-K; without a ``net``
    attribute, the file name.

    >>> describe_source({"net": "alexnet", "weights": "imagenet", "lesion": ""})
    'alexnet, intact'
    >>> describe_source({"net": "alexnet", "weights": "random", "lesion": "weights(seed=0)",
    ...                  "topk": "conv5_relu=0.1"})
    'alexnet (random weights), lesion weights(seed=0), Top-K conv5_relu=0.1'
    """
    net = str(attrs.get("net") or "")
    if not net:
        return "" if path is None else Path(path).name
    weights = str(attrs.get("weights") or "").replace("\\", "/").rsplit("/", 1)[-1]
    text = net if weights in ("", "imagenet") else f"{net} ({weights} weights)"
    lesion = str(attrs.get("lesion") or "")
    text += f", lesion {lesion}" if lesion else ", intact"
    if attrs.get("topk"):
        text += f", Top-K {attrs['topk']}"
    return text


# ---------------------------------------------------------------------------
# Computing
# ---------------------------------------------------------------------------
def category_names(labels, conditions=None):
    """``{label: name}``: each label's ``condition`` text (first occurrence), else the label.

    >>> category_names([2, 0, 2], ["dog", "cat", "dog"])
    {0: 'cat', 2: 'dog'}
    """
    labels = np.asarray(labels)
    if conditions is None:
        return {k.item(): str(k) for k in np.unique(labels)}
    conditions = np.asarray(conditions)
    uniq, first = np.unique(labels, return_index=True)
    return {k.item(): str(conditions[i]) for k, i in zip(uniq, first)}


def _warn_sizes(counts, source):
    counts = np.asarray(counts)
    if counts.size and counts.min() > 0 and counts.max() / counts.min() > SIZE_RATIO_WARNING:
        log.warning("%s: category sizes differ a lot (%d to %d stimuli); PSI of small "
                    "categories is noisier.", source, counts.min(), counts.max())


def _measure_values(means, measure, options):
    """(values, n_units, n_dead) of one population's category means (n_cat, n_units)."""
    values = np.asarray(sparseness(means, measure=measure, **(options or {})), dtype=np.float64)
    return values, means.shape[1], int(dead_units(means).sum())


def _check_unit_mode(act, layer, unit):
    """unit="position" on a spatially pooled layer would silently mean "channel"."""
    if unit != "position":
        return
    attrs = act.layer_attrs(layer)
    raw = np.asarray(attrs.get("raw_shape", ()))
    if attrs.get("pool") and raw.size == 3 and raw[1] * raw[2] > 1:
        raise InputError(f"layer {layer!r} was pooled ({attrs['pool']}) at extraction, so it "
                         "has no positions; use unit=channel (-unit channel) or extract it "
                         "again without -pool.")


def _n_units(act, layer, unit):
    """Units of ``layer`` with ``unit`` (without reading it): what the registry's unit
    function makes of one stimulus of zeros."""
    one = np.zeros((1,) + tuple(act.shape(layer)[1:]), dtype=np.float32)
    return UNIT_MODES[unit](one).shape[1]


def _unit_ids(chn, unit, n_units):
    """1-based channel numbers (as ``db_act -chn``; ``chn``: a masked file's original
    ones, from its layer attributes)."""
    if unit == "channel" and chn is not None and len(np.atleast_1d(chn)) == n_units:
        return np.asarray(chn, dtype=np.int64)
    return np.arange(1, n_units + 1)


def _check_absolute(act, layer, source):
    """absolute=True needs per-image values that were not averaged at extraction."""
    if act.category_labels is not None:
        raise InputError(f"{source} holds category means (db_act -aggregate label), whose "
                         "absolute values are not the means of absolute activations; extract "
                         "with -pool l1 -aggregate label (a channel's summed |activation|: "
                         "the same PSI for channel units) or without -aggregate.")
    pool = act.layer_attrs(layer).get("pool") or ""
    if pool not in ("", "l1", "l2"):
        raise InputError(f"layer {layer!r} of {source} was pooled ({pool}) at extraction; "
                         "absolute values of pooled values are not pooled absolute values. "
                         "Extract it with -pool l1 (the same PSI for channel units) or "
                         "without -pool.")


def _layer_values(act, layer, row_labels, unit, absolute, measure, options):
    """(values, n_units, n_dead) of one layer, read in blocks of stimuli; errors name it."""
    step = items_per_read(np.prod(act.shape(layer)[1:]))
    blocks = (block for _, block in act.iter_batches(layer, step))
    try:
        means = category_means(blocks, row_labels, unit=unit, absolute=absolute).means
        return _measure_values(means, measure, options)
    except InputError as exc:
        where = f"{act.path}, " if act.path is not None else ""
        raise InputError(f"{where}layer {layer!r}: {exc}") from None


def _layer_task(path, layer, row_labels, unit, absolute, measure, options):
    """One layer of :func:`activation_sparseness`, read from the file at ``path`` (a
    pure task for a Dask worker: it opens the file itself and writes nothing)."""
    from ..base.activation import Activation

    with Activation.load(path) as act:
        return _layer_values(act, layer, row_labels, unit, absolute, measure, options)


def activation_sparseness(act, labels=None, *, names=None, layers=None, measure="psi",
                          unit="channel", absolute=False, measure_options=None,
                          show_progress=False, engine=None):
    """Sparseness of every category in every layer of an activation.

    Parameters
    ----------
    act : Activation
        Per-stimulus activations (give ``labels``), or a per-category file from
        ``db_act -aggregate label`` (``labels`` None: its rows are the categories,
        ``act.category_labels``). Layers are read one at a time, in blocks.
    labels : array-like of shape (n_stim,), optional
        Category of every stimulus row; categories need not be contiguous nor of
        equal size (a warning is logged when sizes differ more than
        :data:`SIZE_RATIO_WARNING`-fold).
    names : mapping {label: str}, optional
        Category names (e.g. :func:`category_names` of the stimulus table).
    layers : list of str, optional
        Default: every layer of ``act``, in its order (the hierarchy).
    measure : {"psi", "lifetime", "hoyer", "kurtosis", "active"}, default="psi"
        Each measure's own defaults apply (PSI and lifetime: the paper's
        normalisation; see :mod:`dnnsparse.algo.sparseness`); override them with
        ``measure_options``.
    unit : {"channel", "position"}, default="channel"
        A unit is a channel averaged over its map (the paper), or every element
        (the layer must not have been pooled at extraction).
    absolute : bool, default=False
        Absolute value of every activation before the category means (the
        paper's control analysis; see :func:`category_means`). Needs per-image
        activations that were not pooled with mean/max/median at extraction
        (``-pool l1`` files are fine: their values are already absolute).
    measure_options : dict, optional
    show_progress : bool or str, default=False
        Show a progress bar over the layers; a string is the bar's label.
    engine : Engine, optional
        :func:`~dnnsparse.utils.engine.open_engine`: with a Dask cluster every layer is
        one task that reads its layer from ``act.path`` (the workers must see the
        file); the values are those of this process (nothing random here).  Default,
        or an activation held in memory: the layers are read here, one at a time.

    Returns
    -------
    SparsenessResult

    Examples
    --------
    >>> from dnnsparse.base.activation import Activation
    >>> act = Activation({"conv": np.eye(3)[[0, 1, 2, 0]]})
    >>> np.round(activation_sparseness(act, [0, 1, 2, 0]).values[0], 12).tolist()
    [1.0, 1.0, 1.0]
    """
    plan = _plan_sparseness(act, labels, names=names, layers=layers, measure=measure,
                            unit=unit, absolute=absolute, measure_options=measure_options)
    if engine is not None and engine.distributed and act.path is not None:
        found = engine.gather(_submit_layers(engine, plan))
    else:
        found = _layers_here(act, plan, show_progress)
    return _plan_result(plan, found)


@dataclass
class _Plan:
    """What :func:`activation_sparseness` checked and knows before reading a layer."""

    path: object
    layers: list
    row_labels: np.ndarray
    cats: np.ndarray
    names: np.ndarray
    counts: np.ndarray
    measure: str
    unit: str
    absolute: bool
    measure_options: object
    chn: list
    source: str


def _plan_sparseness(act, labels, *, names, layers, measure, unit, absolute,
                     measure_options):
    """Check ``act``, its layers and ``labels`` (every mistake before any layer is read)."""
    check_choice(measure, MEASURES, name="measure")
    check_choice(unit, UNIT_MODES, name="unit")
    layers = act.layers if layers is None else list(layers)
    if not layers:
        raise InputError("no layers to analyse.")
    for layer in layers:                    # fail before any work: unknown or pooled layers
        act.shape(layer)                                   # UnknownLayerError lists valid ones
        _check_unit_mode(act, layer, unit)
    source = str(act.path) if act.path is not None else "activation"
    if absolute:
        for layer in layers:
            _check_absolute(act, layer, source)
    if labels is None:
        if act.category_labels is None:
            raise InputError(f"{source} has one row per stimulus; give the stimulus labels "
                             "(db_psi -stim TABLE), or extract with -aggregate label.")
        cats, counts = np.asarray(act.category_labels), np.asarray(act.category_counts)
        row_labels = np.arange(act.n_stim)                 # every row its own category
    else:
        row_labels = np.asarray(labels)
        if row_labels.shape != (act.n_stim,):
            raise InputError(f"{source} has {act.n_stim} stimulus rows but {row_labels.size} "
                             "labels were given; they must match one to one.")
        cats, counts = np.unique(row_labels, return_counts=True)
        _warn_sizes(counts, source)
    names = names or {}
    return _Plan(act.path, layers, row_labels, cats,
                 np.array([names.get(c.item(), str(c)) for c in cats], dtype=str), counts,
                 measure, unit, absolute, measure_options,
                 [act.layer_attrs(layer).get("chn") for layer in layers],
                 describe_source(act.attrs, act.path))


def _submit_layers(engine, plan):
    """One :func:`_layer_task` per layer of ``plan`` on ``engine``: their handles."""
    return [engine.submit(_layer_task, str(plan.path), layer, plan.row_labels, plan.unit,
                          plan.absolute, plan.measure, plan.measure_options)
            for layer in plan.layers]


def _layers_here(act, plan, show_progress):
    """The (values, n_units, n_dead) of every layer of ``plan``, read here one at a time."""
    desc = (show_progress if isinstance(show_progress, str) else
            f"{plan.measure} per layer")
    return (_layer_values(act, layer, plan.row_labels, plan.unit, plan.absolute,
                          plan.measure, plan.measure_options)
            for layer in progress(plan.layers, desc=desc, unit="layer",
                                  enabled=bool(show_progress)))


def _plan_result(plan, found):
    """The :class:`SparsenessResult` of ``plan`` from its layers' (values, n, dead)."""
    values, n_units, n_dead, ids = [], [], [], []
    for chn, (v, n, d) in zip(plan.chn, found):
        values.append(v)
        n_units.append(n)
        n_dead.append(d)
        ids.append(_unit_ids(chn, plan.unit, n))
    return SparsenessResult(plan.layers, plan.measure, values, plan.cats, plan.names,
                            plan.counts, np.array(n_units), np.array(n_dead), ids, plan.unit,
                            absolute=plan.absolute, source=plan.source)


def brain_sparseness(data, populations, labels=None, *, names=None, measure="psi",
                     measure_options=None, unit="voxel", feature_names=None, absolute=False,
                     source=""):
    """Sparseness of every category in brain populations (an ROI's voxels as units).

    Parameters
    ----------
    data : array-like of shape (n_samples, n_features)
        Brain responses, e.g. :attr:`BrainData.data` or the signals of a
        ``.roi.h5`` file.
    populations : mapping {name: feature selection}
        Each population's features (indices, boolean mask or slice of the
        columns), in the order they should be treated as "layers".
    labels : array-like of shape (n_samples,), optional
        Category of every sample; None when the samples already are categories.
    names : mapping {label: str}, optional
    measure, measure_options
        As in :func:`activation_sparseness`.
    unit : str, default="voxel"
        What a unit is ("voxel", "vertex", "roi"), recorded in the result.
    feature_names : array-like of shape (n_features,), optional
        Ids of the units in per-unit tables (e.g. ROI names); default the
        0-based column indices of ``data``.
    absolute : bool, default=False
        Absolute value of every sample before the category means (needs
        ``labels``: samples that already are categories are refused).
    source : str, optional
        What the data are (e.g. the file name), for figure titles.

    Returns
    -------
    SparsenessResult

    Examples
    --------
    >>> res = brain_sparseness(np.eye(4)[[0, 1, 2, 3, 0]], {"V1": [0, 1, 2, 3]},
    ...                        labels=[0, 1, 2, 3, 0])
    >>> res.values[0].tolist()
    [1.0, 1.0, 1.0, 1.0]
    """
    check_choice(measure, MEASURES, name="measure")
    data = np.asarray(data)
    if data.ndim != 2:
        raise InputError(f"brain data must be 2-D (n_samples, n_features); got shape "
                         f"{data.shape}.")
    if absolute and labels is None:
        raise InputError("absolute values need one sample per stimulus with their labels; "
                         "these samples are already categories (give -stim).")
    row_labels = np.arange(len(data)) if labels is None else np.asarray(labels)
    if row_labels.shape != (len(data),):
        raise InputError(f"brain data have {len(data)} samples but {row_labels.size} labels "
                         "were given; they must match one to one.")
    cats, counts = np.unique(row_labels, return_counts=True)
    if labels is not None:
        _warn_sizes(counts, "brain data")
    names = names or {}
    columns = np.arange(data.shape[1])
    feature_names = columns if feature_names is None else np.asarray(feature_names)
    if feature_names.shape != columns.shape:
        raise InputError(f"{feature_names.size} feature names for {columns.size} features.")
    values, n_units, n_dead, ids = [], [], [], []
    for name, members in populations.items():
        cols = columns[members]
        try:
            means = category_means(data[:, cols], row_labels, absolute=absolute).means
            v, n, d = _measure_values(means, measure, measure_options)
        except InputError as exc:
            raise InputError(f"population {name!r}: {exc}") from None
        values.append(v)
        n_units.append(n)
        n_dead.append(d)
        ids.append(feature_names[cols])
    return SparsenessResult(list(populations), measure, values, cats,
                            np.array([names.get(c.item(), str(c)) for c in cats], dtype=str),
                            counts, np.array(n_units), np.array(n_dead), ids, unit,
                            absolute=absolute, source=source)


# ---------------------------------------------------------------------------
# Accuracy: decoding, correlation, stepwise regression
# ---------------------------------------------------------------------------
def load_grouping_stimuli(path, *, label_col="label"):
    """The stimulus table at ``path`` (or None for None) and its category names.

    ``label_col`` names the column of categories (``-label-col``;
    :meth:`~dnnsparse.base.Stimulus.with_label_column`). Raises :class:`InputError`
    when the table has no such column to group by.
    """
    from ..base.stimulus import Stimulus

    if not path:
        return None, None
    stim = Stimulus.load(path)
    if label_col != "label":
        stim = stim.with_label_column(label_col)
    if stim.labels is None:
        raise InputError(f"{path} has no 'label' column to group stimuli by; add one "
                         "(db_stim makes tables with labels from category folders).")
    return stim, category_names(stim.labels, stim.columns.get("condition"))


def activation_file_sparseness(path, stim=None, *, stim_path=None, names=None, **options):
    """:func:`activation_sparseness` of the ``.act.h5`` file at ``path``.

    A per-stimulus file is grouped by ``stim``'s labels (its rows must match the file's);
    a per-category file (``db_act -aggregate label``) is used as it is, ``stim`` then
    only names the categories. ``stim_path`` names the table in messages; ``options``
    go to :func:`activation_sparseness` (``layers``, ``measure``, ``unit``, ...).
    """
    from ..base.activation import Activation

    with Activation.load(path) as act:
        return activation_sparseness(act, _file_labels(act, path, stim, stim_path),
                                     names=names, **options)


def _file_labels(act, path, stim, stim_path):
    """The labels :func:`activation_sparseness` takes for ``act`` (the file at ``path``):
    ``stim``'s, matched to its rows; None for a per-category file."""
    from ._align import align_stimuli

    if act.category_labels is not None:                  # db_act -aggregate label
        if stim is not None:
            unknown = np.setdiff1d(act.category_labels, stim.labels)
            if unknown.size:
                raise InputError(f"{path} has categories {unknown[:5].tolist()} that "
                                 f"{stim_path} does not label; give the table it was "
                                 "made from, or leave -stim out.")
        return None
    if stim is None:
        raise InputError(f"{path} has one row per stimulus; give -stim TABLE "
                         "with their labels (or extract with -aggregate label).")
    return align_stimuli(stim, act, stim_path=stim_path, act_path=path,
                         examples=True).labels          # audio: one per example


def activation_file_names(paths):
    """The name of each activation file: its file name without ``.act.h5``.

    Each file's outputs of :func:`write_files_outputs` go to a folder of this name,
    so two files of the same name (in different folders) are refused.

    Parameters
    ----------
    paths : sequence of str or Path

    Returns
    -------
    list of str
        In the order of ``paths``.

    Raises
    ------
    InputError
        Two files with the same name, or a file named just ``.act.h5``.

    Examples
    --------
    >>> activation_file_names(["nets/intact.act.h5", "nets/permuted.act.h5"])
    ['intact', 'permuted']
    """
    seen = {}
    for path in map(Path, paths):
        name = (path.name[:-len(".act.h5")] if path.name.endswith(".act.h5") else
                path.stem)
        if not name:
            raise InputError(f"{path} has no name before its suffix; the output folder of "
                             "each file is named after it: rename it (e.g. intact.act.h5).")
        if name in seen:
            raise InputError(f"{seen[name]} and {path} are both named {name!r}, and each "
                             f"file's outputs go to the folder {name}/; give each file "
                             "once, or rename (or link) one of them under another name.")
        seen[name] = path
    return list(seen)


def files_sparseness(paths, stim=None, *, stim_path=None, names=None, layers=None,
                     measure="psi", unit="channel", absolute=False, measure_options=None,
                     show_progress=False, engine=None):
    """:func:`activation_file_sparseness` of several ``.act.h5`` files at once.

    Every file is opened and checked first (its layers, units and stimulus rows),
    so that a mistake in any file stops the run before a layer is read. With a
    Dask ``engine`` every (file, layer) is one task (the worker reads the layer
    from the file), all submitted before any is gathered: the workers stay busy
    across files. Otherwise the files are analysed here, one after another. Each
    result is the same as :func:`activation_file_sparseness` of that file alone.

    Parameters
    ----------
    paths : sequence of str or Path
        Activation files, e.g. an intact and a weight-permuted network, or several
        networks; their names (:func:`activation_file_names`) must differ.
    stim, stim_path, names
        As in :func:`activation_file_sparseness` (one stimulus table for every file).
    layers : list of str, optional
        The layers of every file (each must have them); default: each file's own.
    measure, unit, absolute, measure_options, show_progress
        As in :func:`activation_sparseness`.
    engine : Engine or callable, optional
        :func:`~dnnsparse.utils.engine.open_engine`; the workers must see the files.
        A callable returning an engine (``lambda: open_engine("local:2")``) is
        called once every file has been checked, so that a mistake costs no
        cluster start; that engine is closed before returning.

    Returns
    -------
    dict
        ``{name: SparsenessResult}`` in the order of ``paths``.

    Examples
    --------
    >>> res = files_sparseness(["intact.act.h5", "permuted.act.h5"], stim,
    ...                        names=names)                     # doctest: +SKIP
    >>> list(res)                                               # doctest: +SKIP
    ['intact', 'permuted']
    """
    from contextlib import ExitStack

    from ..base.activation import Activation
    from ..errors import UnknownLayerError

    paths = [Path(p) for p in paths]
    keys = activation_file_names(paths)
    options = dict(names=names, layers=layers, measure=measure, unit=unit,
                   absolute=absolute, measure_options=measure_options)
    with ExitStack() as stack:
        acts, plans = [], []
        for path in paths:                   # every file checked before any layer is read
            act = stack.enter_context(Activation.load(path))
            try:
                plans.append(_plan_sparseness(act, _file_labels(act, path, stim, stim_path),
                                              **options))
            except UnknownLayerError as exc:
                raise UnknownLayerError(f"{path}: {exc} The layers apply to every "
                                        "file: give ones that all the files have.") from None
            acts.append(act)
        if callable(engine):
            engine = stack.enter_context(engine())
        if engine is not None and engine.distributed:
            handles = [_submit_layers(engine, plan) for plan in plans]
            flat = iter(engine.gather([h for file_handles in handles for h in file_handles]))
            found = [[next(flat) for _ in file_handles] for file_handles in handles]
        else:
            found = [_layers_here(act, plan, f"{key}: {measure} per layer" if show_progress
                                  else False)
                     for key, act, plan in zip(keys, acts, plans)]
        return {key: _plan_result(plan, values)
                for key, plan, values in zip(keys, plans, found)}


def brain_file_sparseness(path, rois=None, stim=None, *, stim_path=None, names=None,
                          roi_file=False, measure="psi", absolute=False):
    """:func:`brain_sparseness` of a brain data file or of a ``.roi.h5`` file.

    With ``roi_file``, the ROIs of the ``.roi.h5`` file at ``path`` are the units of one
    population ``"rois"``; otherwise ``path`` is brain data and each ROI of ``rois`` (an
    :class:`~dnnsparse.base.ROISet`, or ``rois(space)`` building one in the data's
    space) is a population of voxels or vertices.
    """
    from ..base.brain import BrainData
    from ..io.roi import read_roi_file

    if roi_file:
        roi_names, data = read_roi_file(path)
        populations, unit, feature_names = {"rois": slice(None)}, "roi", roi_names
    else:
        brain = BrainData.load(path)
        data = brain.data
        roiset = (rois(brain.space) if callable(rois) else rois).to_space(brain.space)
        populations = dict(zip(roiset.names, roiset.members))
        unit = "vertex" if brain.kind == "gifti" else "voxel"
        feature_names = None
    if stim is not None and len(data) != len(stim):
        raise InputError(f"{path} has {len(data)} samples but {stim_path} has {len(stim)} "
                         "stimuli; they must match one to one (leave -stim out when the "
                         "samples already are categories).")
    return brain_sparseness(data, populations, None if stim is None else stim.labels,
                            names=names, measure=measure, unit=unit,
                            feature_names=feature_names, absolute=absolute,
                            source=Path(path).name)


def probe_accuracy(X, labels, *, names=None, model="logistic", cv=2, seed=0):
    """Cross-validated per-category decoding accuracy of ``labels`` from ``X``.

    The paper: logistic regression on FC2 activations, 2-fold CV.

    Parameters
    ----------
    X : array-like of shape (n_stim, n_features)
    labels : array-like of shape (n_stim,)
    names : mapping {label: str}, optional
    model : str, default="logistic"
        A named model of :data:`dnnsparse.algo.decoding.MODELS` (classifier).
    cv : int, default=2
    seed : int, default=0

    Returns
    -------
    table : dict
        Columns label, category, n, accuracy (one row per category, sorted labels).
    result : DecodingResult
    """
    from ..algo.decoding import decode

    res = decode(X, labels, model=model, cv=cv, seed=seed)
    names = names or {}
    table = {"label": res.classes,
             "category": [names.get(c.item(), str(c)) for c in res.classes],
             "n": res.confusion.sum(axis=1), "accuracy": res.per_class}
    return table, res


@dataclass
class AccuracyAnalysis:
    """Relation of category sparseness to category accuracy (the paper's Fig. 2).

    Attributes
    ----------
    layers : list of str
    accuracy : ndarray of shape (n_categories,)
        Accuracy aligned with the sparseness result's categories.
    correlation : LayerCorrelation or None
        None when the accuracy is the same for every category (the correlation is
        undefined; ``cautions`` says so).
    stepwise : dict
        ``{"conv": StepwiseResult, "fc": StepwiseResult}`` (stages without layers
        left out; empty without a correlation).
    criterion : str
    cautions : list of str
        What limits the results (also logged as warnings): an undefined
        correlation, a stepwise regression with fewer categories than layers.
    """

    layers: list
    accuracy: np.ndarray
    correlation: object
    stepwise: dict
    criterion: str
    cautions: list = field(default_factory=list)

    def significant(self, alpha=0.05):
        """Indices of the layers whose Bonferroni-corrected Pearson p is below ``alpha``."""
        if self.correlation is None:
            return np.zeros(0, dtype=int)
        return np.flatnonzero(self.correlation.pearson_p_bonferroni < alpha)

    def correlation_table(self, alpha=0.05):
        """Per layer: Pearson and Spearman r, p, Bonferroni p, significant (Bonferroni
        Pearson p < alpha)."""
        c = self.correlation
        return {"layer": list(self.layers), "layer_index": list(range(1, len(self.layers) + 1)),
                "n": [c.n] * len(self.layers),
                "pearson_r": c.pearson_r, "pearson_p": c.pearson_p,
                "pearson_p_bonferroni": c.pearson_p_bonferroni,
                "spearman_r": c.spearman_r, "spearman_p": c.spearman_p,
                "spearman_p_bonferroni": c.spearman_p_bonferroni,
                "significant": c.pearson_p_bonferroni < alpha}

    def trend_rows(self):
        """Kendall's tau of the Pearson and Spearman r along layers, as trend rows
        (see :meth:`SparsenessResult.trend_rows`); none without a correlation."""
        c = self.correlation
        if c is None:
            return []
        n = len(self.layers)
        return [dict(test=f"{kind}_r", label=f"{kind.title()} r of the layers", tau=tau,
                     p=p, n=n, n_of="layers",
                     description=f"Kendall tau of the per-layer {kind.title()} r "
                                 f"(sparseness, accuracy) against layer position")
                for kind, tau, p in (("pearson", c.tau, c.tau_pvalue),
                                     ("spearman", c.spearman_tau, c.spearman_tau_pvalue))]

    def stepwise_table(self):
        """Per stage: selected layers (';'-joined, order of entry), F, df1, df2, p, R²,
        adjusted R², n."""
        rows = list(self.stepwise.items())
        return {"stage": [s for s, _ in rows], "criterion": [self.criterion] * len(rows),
                "selected": [";".join(r.selected) for _, r in rows],
                "F": [r.F for _, r in rows], "df1": [r.df1 for _, r in rows],
                "df2": [r.df2 for _, r in rows], "p": [r.pvalue for _, r in rows],
                "r2": [r.r2 for _, r in rows], "adj_r2": [r.adj_r2 for _, r in rows],
                "n": [r.n for _, r in rows]}


def _is_number(value):
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def accuracy_analysis(result, labels, accuracy, *, criterion="p"):
    """Correlate category sparseness with category accuracy; stepwise regression.

    Parameters
    ----------
    result : SparsenessResult
        A per-category measure.
    labels, accuracy : array-like of shape (n,)
        Accuracy of each labelled category (e.g. the ``db_probe`` table). Every
        category of ``result`` must be present; others are ignored (with a log line).
    criterion : {"p", "adj_r2"}, default="p"
        Stepwise rule: p-to-enter (the paper's text) or adjusted R² (the authors'
        code); see :func:`~dnnsparse.algo.stats.stepwise_regression`.

    Returns
    -------
    AccuracyAnalysis
    """
    check_choice(criterion, STEPWISE_CRITERIA, name="criterion")
    psi = result.matrix()
    labels = np.asarray(labels)
    try:
        accuracy = np.asarray(accuracy, dtype=np.float64)
    except (TypeError, ValueError):
        bad = next(str(v) for v in np.ravel(np.asarray(accuracy, dtype=object))
                   if not _is_number(v))
        raise InputError(f"the accuracy column must hold numbers (e.g. 0.75); it holds "
                         f"{bad!r}. Give db_probe's table, or a table whose accuracy column "
                         f"is numeric.") from None
    if labels.shape != accuracy.shape or labels.ndim != 1:
        raise InputError("accuracy labels and values must be two 1-D columns of equal length.")
    uniq, first = np.unique(labels, return_index=True)
    if uniq.size != labels.size:
        raise InputError("the accuracy table lists a label more than once; give one row "
                         "per category.")
    lookup = dict(zip(labels.tolist(), accuracy.tolist()))
    missing = [c.item() for c in result.labels if c.item() not in lookup]
    if missing:
        raise InputError(f"the accuracy table has no row for {len(missing)} categor(y/ies) "
                         f"(labels {missing[:5]}); it must cover every category.")
    extra = len(lookup) - result.n_categories
    if extra:
        log.info("accuracy table: %d label(s) without sparseness values ignored", extra)
    acc = np.array([lookup[c.item()] for c in result.labels])
    if np.ptp(acc) == 0:
        note = (f"accuracy is {acc[0]:g} for every category, so its correlation with "
                "sparseness is undefined (no correlation.csv, stepwise.csv, "
                "correlation.png); read out from an earlier layer or with fewer training "
                "stimuli to get differences")
        log.warning("%s", note)
        return AccuracyAnalysis(list(result.layers), acc, None, {}, criterion, [note])
    corr = psi_accuracy_correlation(psi, acc)
    steps = stepwise_by_stage(psi, acc, result.layers, criterion=criterion)
    cautions = []
    for stage, res in steps.items():
        k = sum((stage == "fc") == is_fc_layer(layer) for layer in result.layers)
        if res.n < k:
            cautions.append(f"stepwise ({stage}): {res.n} categories for {k} candidate "
                            f"layers -- with fewer observations than predictors the "
                            f"selection is unstable and its R^2 optimistic; read it as "
                            f"descriptive")
            log.warning("%s", cautions[-1])
    return AccuracyAnalysis(list(result.layers), acc, corr, steps, criterion, cautions)


def format_accuracy(analysis, *, alpha=0.05):
    """The PSI-accuracy result as text (what ``db_psi -accuracy`` prints).

    The strongest correlation by absolute value, every layer whose
    Bonferroni-corrected p is below ``alpha``, the trend of r along the layers,
    the stepwise regressions and the cautions.
    """
    c = analysis.correlation
    lines = []
    if c is not None:
        n_layers = len(analysis.layers)
        lines.append(f"PSI-accuracy Pearson r across {c.n} categories in {n_layers} layers "
                     f"(Bonferroni over the layers):")
        finite = np.isfinite(c.pearson_r)
        if finite.any():
            best = int(np.nanargmax(np.where(finite, np.abs(c.pearson_r), np.nan)))
            lines.append(f"  strongest |r|: r = {c.pearson_r[best]:+.3f} in "
                         f"{analysis.layers[best]} (p={c.pearson_p[best]:.3g}, Bonferroni "
                         f"p={c.pearson_p_bonferroni[best]:.3g})")
        else:
            lines.append("  r is undefined in every layer (sparseness the same for every "
                         "category)")
        sig = analysis.significant(alpha)
        if sig.size:
            cells = ", ".join(f"{analysis.layers[i]} (r = {c.pearson_r[i]:+.3f}, Bonferroni "
                              f"p={c.pearson_p_bonferroni[i]:.3g})" for i in sig)
            lines.append(f"  Bonferroni p < {alpha:g} in {sig.size} of {n_layers} layers: "
                         f"{cells}")
        else:
            lines.append(f"  no layer has Bonferroni p < {alpha:g}")
        lines.append(f"  Kendall tau of r along the layers: {c.tau:+.3f} (p={c.tau_pvalue:.3g}, "
                     f"n={n_layers} layers)")
    for stage, r in analysis.stepwise.items():
        sel = ", ".join(r.selected) or "none"
        lines.append(f"stepwise ({stage}): {sel}; F({r.df1}, {r.df2}) = {r.F:.2f}, "
                     f"p={r.pvalue:.3g}, adjusted R^2 = {r.adj_r2:.3f}")
    lines += [f"caution: {note}" for note in analysis.cautions]
    return "\n".join(lines)


# ---------------------------------------------------------------------------
# Writing db_psi's outputs
# ---------------------------------------------------------------------------
def _trend_table(result, accuracy=None, *, seed=0, n_permutations=10000):
    rows = result.trend_rows(seed=seed, n_permutations=n_permutations)
    if accuracy is not None:
        rows += accuracy.trend_rows()
    return {key: [r[key] for r in rows] for key in ("test", "tau", "p", "n", "n_of",
                                                     "description")}


def write_psi_outputs(result, out_dir, *, accuracy=None, figures=True, force=False, seed=0,
                      n_permutations=10000, alpha=0.05):
    """Write ``db_psi``'s tables and figures as the folder ``out_dir``.

    The folder is written as a whole (:func:`~dnnsparse.io.atomic_output_dir`):
    nothing appears under ``out_dir`` until every file is complete, and with
    ``force`` a previous output folder is replaced entirely.

    Files: ``<measure>.csv`` (tidy values), ``summary.csv``, ``trend.csv`` (one
    row per test, :meth:`SparsenessResult.trend_rows`, which says what each is;
    with a correlation also ``pearson_r`` and ``spearman_r``: Kendall's tau of
    the correlations along layers), ``distributions.png`` (Fig. 1A),
    ``medians.png`` (Fig. 1B); with a correlation (``accuracy`` that is not the
    same for every category) also ``correlation.csv``, ``stepwise.csv`` and
    ``correlation.png`` (Fig. 2).

    Parameters
    ----------
    result : SparsenessResult
    out_dir : str or Path
        Must be absent or empty, or (with ``force``) an earlier output folder.
    accuracy : AccuracyAnalysis, optional
    figures : bool, default=True
    force : bool, default=False
    seed, n_permutations
        Of the sign-flip trend test (used beyond 20 categories).
    alpha : float, default=0.05
        Significance level marked in ``correlation.csv`` and its figure.

    Returns
    -------
    list of Path
        The files at their final place.
    """
    from .. import viz

    out_dir = Path(out_dir)
    correlated = accuracy is not None and accuracy.correlation is not None
    with atomic_output_dir(out_dir, force=force) as tmp:
        names = [write_table(tmp / f"{result.measure}.csv", result.table()),
                 write_table(tmp / "summary.csv", result.summary()),
                 write_table(tmp / "trend.csv", _trend_table(result, accuracy, seed=seed,
                                                             n_permutations=n_permutations))]
        if correlated:
            names += [write_table(tmp / "correlation.csv", accuracy.correlation_table(alpha)),
                      write_table(tmp / "stepwise.csv", accuracy.stepwise_table())]
        if figures:
            names += [viz.plot_distributions(tmp / "distributions.png", result),
                      viz.plot_medians(tmp / "medians.png", {"": result})]
            if correlated:
                names.append(viz.plot_correlation(tmp / "correlation.png", accuracy,
                                                  alpha=alpha, source=result.source))
    return [out_dir / Path(name).name for name in names]


def _with_file_column(tables):
    """``{name: columns}`` stacked into one table with a leading ``file`` column."""
    first = next(iter(tables.values()))
    out = {"file": [name for name, t in tables.items() for _ in range(len(t[next(iter(t))]))]}
    for key in first:
        out[key] = [v for t in tables.values() for v in t[key]]
    return out


def write_files_outputs(results, out_dir, *, accuracy=None, figures=True, force=False,
                        seed=0, n_permutations=10000, alpha=0.05):
    """Write ``db_psi``'s outputs of several activation files as the folder ``out_dir``.

    Written as a whole (:func:`~dnnsparse.io.atomic_output_dir`; ``force``
    replaces an earlier output folder entirely). Each file has the folder
    ``out_dir/<name>/`` holding what :func:`write_psi_outputs` writes for it
    alone; at the top, the per-file tables stacked with a leading ``file``
    column -- ``<measure>.csv``, ``summary.csv``, ``trend.csv`` and, when a
    file has a correlation with accuracy, ``correlation.csv`` -- and
    ``medians.png``, every file's layer medians on one axes
    (:func:`~dnnsparse.viz.plot_file_medians`; the paper's Fig. 3).

    Parameters
    ----------
    results : mapping {name: SparsenessResult}
        E.g. :func:`files_sparseness`; the names are the folders.
    out_dir : str or Path
    accuracy : mapping {name: AccuracyAnalysis}, optional
    figures, force, seed, n_permutations, alpha
        As in :func:`write_psi_outputs`.

    Returns
    -------
    list of Path
        The per-file folders, then the top-level files, at their final place.
    """
    from .. import viz

    out_dir = Path(out_dir)
    accuracy = accuracy or {}
    measure = next(iter(results.values())).measure
    trend = dict(seed=seed, n_permutations=n_permutations)
    with atomic_output_dir(out_dir, force=force) as tmp:
        for name, result in results.items():
            write_psi_outputs(result, tmp / name, accuracy=accuracy.get(name),
                              figures=figures, alpha=alpha, **trend)
        names = [write_table(tmp / f"{measure}.csv", _with_file_column(
                     {k: r.table() for k, r in results.items()})),
                 write_table(tmp / "summary.csv", _with_file_column(
                     {k: r.summary() for k, r in results.items()})),
                 write_table(tmp / "trend.csv", _with_file_column(
                     {k: _trend_table(r, accuracy.get(k), **trend)
                      for k, r in results.items()}))]
        correlated = {k: a.correlation_table(alpha) for k, a in accuracy.items()
                      if a is not None and a.correlation is not None}
        if correlated:
            names.append(write_table(tmp / "correlation.csv", _with_file_column(correlated)))
        if figures:
            names.append(viz.plot_file_medians(tmp / "medians.png", results))
    return [out_dir / name for name in results] + [out_dir / Path(n).name for n in names]
