"""Map DNN layers onto brain ROIs: RSA similarity, FDR, best layer and sparseness.

The pieces behind ``db_rsa`` and ``db_map``:

- :func:`row_grouping` -- how the rows of an input (activation file, brain
  data) line up with the analysis items (stimuli, or categories = sorted
  labels);
- :func:`dnn_rdms`, :func:`brain_rdms` -- RDMs of layers and of ROIs;
- :func:`rsa_table` -- tidy layer x ROI similarity table with permutation p,
  bootstrap CI and, for several subjects, a noise ceiling;
- :func:`map_layers` -- one score per layer x ROI, permutation p, FDR across
  the table, best layer per ROI, and the PSI of layers and ROIs
  (:func:`layer_psi`, :func:`roi_psi`: the medians of
  :func:`~dnnsparse.pipelines.activation_sparseness` and
  :func:`~dnnsparse.pipelines.brain_sparseness`) -> :class:`LayerMapping`;

Random steps take ``seed``. With an int seed every ROI is tested with the same
stimulus permutations, so an ROI's p-values do not depend on which other ROIs
or layers are analysed, and ``db_rsa`` and ``db_map`` give the same p for the
same layer, ROI and seed.

Examples
--------
>>> rng = np.random.default_rng(0)
>>> layer = rng.standard_normal((12, 30))
>>> voxels = layer @ rng.standard_normal((30, 50))
>>> res = map_layers({"conv": compute_rdm(layer), "fc": compute_rdm(rng.random((12, 9)))},
...                  {"V1": compute_rdm(voxels)}, n_perm=99, seed=0)
>>> res.best_layers()
['conv']
"""
import contextlib
import logging
import numbers
from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from ..io.rdm import n_items_from_pairs
from ..utils.progress import progress
from ..utils.validation import check_scalar
from ..utils.xp import to_numpy
from ..algo.stats import fdr_bh
from ..algo.rsa import check_comparison, compare_rdms, compute_rdm, layer_rdms
from ..algo.rsa import noise_ceiling, rdm_bootstrap, rdm_permutation_test
from ._device import array_like, to_device
from ._psi import _n_units, activation_sparseness, brain_sparseness

__all__ = ["LayerMapping", "brain_rdms", "dnn_rdms", "layer_psi", "map_layers",
           "mean_rdms", "roi_psi", "row_grouping", "rsa_table"]

log = logging.getLogger(__name__)


# -- multiple comparisons ------------------------------------------------------
# -- lining inputs up with the analysis items ----------------------------------
def row_grouping(n_rows, *, labels=None, n_stim=None, n_categories=None,
                 by_category=False, source="input", reference="the stimulus table"):
    """How the rows of one input become the analysis items.

    Items are the stimuli, or with ``by_category`` the categories (sorted
    unique labels, DNNBrain's ``-cate`` order). An input with one row per
    stimulus is then averaged within labels; an input with one row per
    category is used as is (its rows must be in sorted label order). When
    stimuli and categories are equally many, rows are taken per stimulus.

    Parameters
    ----------
    n_rows : int
        Rows (samples) of the input.
    labels : array, shape (n_stim,), optional
        Category of each stimulus.
    n_stim : int, optional
        Number of stimuli (default ``len(labels)``).
    n_categories : int, optional
        Number of categories (default the unique labels).
    by_category : bool, default=False
    source, reference : str
        Names of the input and of what it is matched with, for the message.

    Returns
    -------
    labels or None
        Labels to average the rows with (:func:`~dnnsparse.algo.rsa.compute_rdm`
        ``labels=``), or None when the rows are the items.

    Raises
    ------
    InputError
        The rows match neither the stimuli nor (with ``by_category``) the
        categories; the message names both inputs.
    """
    if labels is not None:
        labels = np.asarray(labels)
        n_stim = len(labels) if n_stim is None else n_stim
        if n_categories is None:
            n_categories = len(np.unique(labels))
    if by_category:
        if labels is not None and n_rows == len(labels):
            return labels
        if n_categories is not None and n_rows == n_categories:
            return None
        if labels is None and (n_categories is None or n_rows == n_stim):
            raise InputError(f"{source}: averaging its {n_rows} samples by category needs "
                             f"a 'label' column in {reference}.")
    elif n_stim is None or n_rows == n_stim:
        return None
    parts = []
    if n_stim is not None:
        parts.append(f"{n_stim} stimuli")
    if by_category and n_categories is not None:
        parts.append(f"{n_categories} categories")
    raise InputError(f"{source} has {n_rows} samples but {reference} has "
                     f"{' in '.join(parts)}; they must match one to one.")


@contextlib.contextmanager
def _summarised_warnings(name):
    """Silence ``name``'s per-RDM warnings; the caller logs one summary instead."""
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


# -- RDMs ------------------------------------------------------------------------
def dnn_rdms(act, layers=None, *, iter_axis=None, metric="correlation", labels=None,
             show_progress=False, zscore=None, device=None, dtype="float64"):
    """RDMs of the layers of an activation.

    Parameters
    ----------
    act : dnnsparse.base.activation.Activation
    layers : list of str, optional
        Default: every layer, in network order.
    iter_axis : {None, "channel", "position"}
        See :func:`~dnnsparse.algo.rsa.layer_rdms`.
    metric : str, default="correlation"
    labels : array, shape (n_stim,), optional
        Average the stimuli of each label first (per-category RDMs).
    show_progress : bool, default=False
    zscore : {None, "pattern", "unit"}
        Standardise each RDM's patterns first (:func:`~dnnsparse.algo.rsa.compute_rdm`).
    device, dtype : str, optional
        Compute the RDMs on torch tensors there (``"cuda"``), in ``dtype``; default NumPy.

    Returns
    -------
    dict str -> ndarray, shape (n_iter, n_pairs)
        In the order of ``layers``.
    """
    layers = act.layers if layers is None else list(layers)
    for layer in layers:
        _, n_chn, n_row, n_col = act.shape(layer)
        size = {None: n_chn * n_row * n_col, "channel": n_row * n_col,
                "position": n_chn, "row_col": n_chn}.get(iter_axis, 2)
        if size < 2 and metric == "correlation":
            raise InputError(f"layer {layer!r} of shape {(n_chn, n_row, n_col)} leaves one "
                             f"value per {iter_axis or 'stimulus'}: a correlation distance "
                             "needs at least 2 (per-channel RDMs need unpooled maps); use "
                             "another -metric or leave -iteraxis out.")
    out = {}
    with _summarised_warnings("dnnsparse.algo.rsa"):   # one line per layer, not per RDM
        for layer in progress(layers, desc="layer RDMs", unit="layer",
                              enabled=show_progress):
            out[layer] = layer_rdms(act.get(layer), iter_axis=iter_axis, metric=metric,
                                    labels=labels, zscore=zscore,
                                    like=array_like(device, dtype))
    _warn_undefined(out, "layer")
    return out


def brain_rdms(brain, rois, *, metric="correlation", labels=None, show_progress=False,
               zscore=None, device=None, dtype="float64"):
    """RDM of each ROI's voxel (vertex) patterns.

    Parameters
    ----------
    brain : dnnsparse.base.brain.BrainData
        ``(n_samples, n_features)``.
    rois : dnnsparse.base.roi.ROISet
        In the data's space or a compatible one.
    metric : str, default="correlation"
    labels : array, shape (n_samples,), optional
        Average the samples of each label first.
    show_progress : bool, default=False
    zscore : {None, "pattern", "unit"}
        Standardise each ROI's patterns first (DNNBrain's ``brain_rsa -zscore``: "pattern").
    device, dtype : str, optional
        As :func:`dnn_rdms`.

    Returns
    -------
    dict str -> ndarray, shape (n_pairs,)
    """
    rois = rois.to_space(brain.space)
    like = array_like(device, dtype)
    out = {}
    with _summarised_warnings("dnnsparse.algo.rsa"):
        for name, members in progress(list(zip(rois.names, rois.members)), desc="ROI RDMs",
                                      unit="roi", enabled=show_progress):
            try:
                out[name] = to_numpy(compute_rdm(to_device(brain.data[:, members], like),
                                                 metric=metric, labels=labels,
                                                 zscore=zscore))
            except InputError as exc:
                raise InputError(f"ROI {name!r} of {brain.space.describe()}: {exc}") from None
    _warn_undefined(out, "ROI")
    return out


def mean_rdms(subjects):
    """Group-mean RDM of each ROI over subjects.

    Parameters
    ----------
    subjects : list of dict str -> array (n_pairs,)
        Each subject's ROI RDMs (same ROIs and items).

    Returns
    -------
    dict str -> ndarray (n_pairs,)
        The plain mean of the subjects' RDMs, accumulated in float64.
    """
    if not subjects:
        raise InputError("no subject RDMs to average.")
    out = {}
    for roi in subjects[0]:
        rdms = [np.asarray(s[roi], dtype=np.float64) for s in subjects]
        if len({r.shape for r in rdms}) > 1:
            raise InputError(f"ROI {roi!r}: subjects' RDMs differ in size "
                             f"({sorted({r.shape[-1] for r in rdms})} entries).")
        out[roi] = np.mean(rdms, axis=0)
    return out


# -- similarity -------------------------------------------------------------------
def _similarity(brain_rdm, models, *, method, n_perm, n_boot, ci, seed, device=None):
    """Score, p and CI of one brain RDM against models (n_models, n_pairs).

    Models (or a brain RDM) with undefined entries (NaN: a constant pattern)
    get NaN; the others are tested together.
    """
    out = np.full((4, len(models)), np.nan)
    ok = np.isfinite(models).all(axis=1)
    if not ok.any() or not np.isfinite(brain_rdm).all():
        return out
    sub = models[ok]
    with np.errstate(invalid="ignore", divide="ignore"):
        out[0, ok] = compare_rdms(brain_rdm, sub, method=method)
        if n_perm:
            # -device: the null's products on torch there (same permutations, same p)
            like = array_like(*device) if device else None
            out[1, ok] = rdm_permutation_test(to_device(brain_rdm, like), sub,
                                              method=method, n_perm=n_perm,
                                              seed=seed).pvalue
        if n_boot:
            boot = rdm_bootstrap(brain_rdm, sub, method=method, n_boot=n_boot, ci=ci,
                                 seed=seed)
            out[2, ok], out[3, ok] = boot.ci_low, boot.ci_high
    return out


def _pair_task(task):
    """One (ROI, layer) pair of :func:`rsa_table`: a pure function of its inputs."""
    brain_rdm, models, subject_rdms, kw = task
    per_subject = None if subject_rdms is None else [
        _similarity(s, models, method=kw["method"], n_perm=0, n_boot=0, ci=kw["ci"],
                    seed=None)[0] for s in subject_rdms]
    return _similarity(brain_rdm, models, **kw), per_subject


def _warn_undefined(rdms, kind):
    for name, rdm in rdms.items():
        bad = int((~np.isfinite(np.atleast_2d(rdm)).all(axis=1)).sum())
        if bad:
            log.warning("%s %r: %d of %d RDM(s) have undefined entries (a constant "
                        "pattern, e.g. a dead channel); their scores are NaN.", kind, name,
                        bad, len(np.atleast_2d(rdm)))


def _check_inference(n_perm, n_boot, ci):
    check_scalar(n_perm, name="n_perm", kind=numbers.Integral, min_val=0)
    check_scalar(n_boot, name="n_boot", kind=numbers.Integral, min_val=0)
    check_scalar(ci, name="ci", min_val=0, max_val=1, include_min=False, include_max=False)


def _as_stack(rdm, name):
    rdm = np.asarray(rdm, dtype=np.float64)
    if rdm.ndim not in (1, 2):
        raise InputError(f"RDM {name!r} must be (n_pairs,) or (n_iter, n_pairs); got "
                         f"shape {rdm.shape}.")
    return rdm[None] if rdm.ndim == 1 else rdm


def _check_pairs(dnn, brain):
    sizes = {v.shape[-1] for v in dnn.values()} | {np.shape(v)[-1] for v in brain.values()}
    if len(sizes) > 1:
        raise InputError(f"the layer and ROI RDMs have different sizes ({sorted(sizes)} "
                         "entries); they must describe the same stimuli or categories.")


def _ceiling(rdms, method):
    """(lower, upper) noise ceiling; NaN when a subject's RDM is undefined."""
    rdms = np.stack(rdms)
    if not np.isfinite(rdms).all():
        return np.nan, np.nan
    with np.errstate(invalid="ignore", divide="ignore"):
        ceiling = noise_ceiling(rdms, method=method)
    return ceiling.lower, ceiling.upper


def rsa_table(dnn, brain, *, method="pearson", n_perm=0, n_boot=0, ci=0.95, seed=None,
              subjects=None, iter_axis=None, show_progress=False, engine=None,
              device=None, dtype="float64"):
    """Tidy table of the similarity of every layer RDM with every ROI RDM.

    Parameters
    ----------
    dnn : dict str -> array, shape (n_pairs,) or (n_iter, n_pairs)
        Layer RDMs (:func:`dnn_rdms`).
    brain : dict str -> array, shape (n_pairs,)
        ROI RDMs (:func:`brain_rdms`; the group mean for several subjects).
    method : str, default="pearson"
        See :func:`~dnnsparse.algo.rsa.compare_rdms`.
    n_perm : int, default=0
        Stimulus-label permutations for p (0: no test, p is NaN).
    n_boot : int, default=0
        Bootstrap samples over stimuli for the CI (0: none, NaN).
    ci : float, default=0.95
    seed : None, int or Generator
    subjects : list of dict str -> array (n_pairs,), optional
        Each subject's ROI RDMs (two or more). Adds ``subject_mean`` (mean
        over subjects of the per-subject score) and the leave-one-subject-out
        noise ceiling ``noise_lower``/``noise_upper`` of each ROI. The ceiling
        bounds ``subject_mean``; ``score`` compares with the group-mean RDM.
    iter_axis : {None, "channel", "position"}
        Adds a 1-based ``iter`` column (channel, or row-major position).
    show_progress : bool, default=False
    engine : Engine, optional
        :func:`~dnnsparse.utils.engine.open_engine`: where the (ROI, layer) pairs are
        computed (default here). Every pair gets the same int seed (a Generator gives
        one draw), so the table does not depend on where the pairs ran.
    device, dtype : str, optional
        Run the permutation tests' products on torch tensors there, in ``dtype``.

    Returns
    -------
    dict of str -> list
        Columns ``layer, [iter], roi, method, score, p, ci_low, ci_high,
        n_items[, subject_mean, noise_lower, noise_upper]``; rows ROI-major,
        layers in the given order.
    """
    method = check_comparison(method)
    _check_inference(n_perm, n_boot, ci)
    dnn = {k: _as_stack(v, k) for k, v in dnn.items()}
    if not dnn or not brain:
        raise InputError("rsa_table needs at least one layer RDM and one ROI RDM.")
    _check_pairs(dnn, brain)
    if subjects is not None and len(subjects) < 2:
        raise InputError("a noise ceiling needs the RDMs of at least 2 subjects.")
    n_items = n_items_from_pairs(next(iter(dnn.values())).shape[-1])
    cols = {k: [] for k in ["layer"] + (["iter"] if iter_axis else []) +
            ["roi", "method", "score", "p", "ci_low", "ci_high", "n_items"] +
            (["subject_mean", "noise_lower", "noise_upper"] if subjects else [])}
    ceilings = {roi: _ceiling([s[roi] for s in subjects], method) for roi in brain} \
        if subjects else {}
    steps = [(roi, layer) for roi in brain for layer in dnn]
    if isinstance(seed, np.random.Generator):
        seed = int(seed.integers(2 ** 63))
    kw = dict(method=method, n_perm=n_perm, n_boot=n_boot, ci=ci, seed=seed)
    if device is not None:
        kw["device"] = (device, dtype)
    tasks = [(brain[roi], dnn[layer], [s[roi] for s in subjects] if subjects else None, kw)
             for roi, layer in steps]
    if engine is not None and engine.distributed:
        found = engine.map(_pair_task, tasks)
    else:
        found = [_pair_task(t) for t in progress(tasks, desc="RSA", unit="pair",
                                                 enabled=show_progress)]
    for (roi, layer), ((score, p, low, high), per_subject) in zip(steps, found):
        models = dnn[layer]
        k = len(models)
        cols["layer"] += [layer] * k
        if iter_axis:
            cols["iter"] += list(range(1, k + 1))
        cols["roi"] += [roi] * k
        cols["method"] += [method] * k
        cols["score"] += score.tolist()
        cols["p"] += p.tolist()
        cols["ci_low"] += low.tolist()
        cols["ci_high"] += high.tolist()
        cols["n_items"] += [n_items] * k
        if subjects:
            lower, upper = ceilings[roi]
            cols["subject_mean"] += np.mean(per_subject, axis=0).tolist()
            cols["noise_lower"] += [lower] * k
            cols["noise_upper"] += [upper] * k
    return cols


# -- sparseness -------------------------------------------------------------------
def _median_psi(names, sizes, sparseness, what):
    """Median PSI of every population; NaN (with a warning) for those of < 2 units.

    PSI of a single unit is undefined: :func:`activation_sparseness` and
    :func:`brain_sparseness` refuse it. Here it only annotates the mapping table,
    so such a layer or ROI gets NaN and the table is still written.
    """
    out = np.full(len(names), np.nan)
    keep = [i for i, n in enumerate(sizes) if n >= 2]
    for i in sorted(set(range(len(names))) - set(keep)):
        log.warning("%s %r has %d unit(s); PSI needs at least 2 and is NaN.", what, names[i],
                    sizes[i])
    if keep:
        result = sparseness([names[i] for i in keep])
        out[keep] = [np.median(v) for v in result.values]
    return out


def layer_psi(act, layers=None, *, labels=None, unit="channel", show_progress=False):
    """Median category PSI of each layer (Liu, Zhen & Liu, 2020).

    The medians of :func:`~dnnsparse.pipelines.activation_sparseness` (``db_psi``'s
    ``median``), with its checks.

    Parameters
    ----------
    act : Activation
        Per-stimulus (with ``labels``) or per-category (rows are category
        means; ``labels`` None).
    layers : list of str, optional
        Default: every layer.
    labels : array, shape (n_stim,), optional
        Category of each stimulus; None when the rows already are categories.
    unit : {"channel", "position"}, default="channel"
        A convolutional unit is a channel averaged over space (the paper), or
        every element (see :func:`~dnnsparse.algo.sparseness.category_means`).
    show_progress : bool, default=False

    Returns
    -------
    ndarray, shape (n_layers,)
        Median over categories of
        :func:`~dnnsparse.algo.sparseness.population_sparseness` of the layer's
        category means; NaN for a layer of fewer than 2 units (with a
        warning).
    """
    layers = act.layers if layers is None else list(layers)
    rows = np.arange(act.n_stim) if labels is None else labels   # None: each row a category
    return _median_psi(
        layers, [_n_units(act, layer, unit) for layer in layers],
        lambda keep: activation_sparseness(act, rows, layers=keep, measure="psi", unit=unit,
                                           show_progress=show_progress and "layer PSI"),
        "layer")


def roi_psi(brain, rois, *, labels=None):
    """Median category PSI of each ROI, its voxels (vertices) as units.

    The medians of :func:`~dnnsparse.pipelines.brain_sparseness`, with its checks.

    Parameters
    ----------
    brain : BrainData
        Per-stimulus (with ``labels``) or per-category samples.
    rois : ROISet
    labels : array, shape (n_samples,), optional
        Category of each sample; None when the samples already are categories.

    Returns
    -------
    ndarray, shape (n_roi,)
        NaN for an ROI of fewer than 2 features (with a warning).
    """
    rois = rois.to_space(brain.space)
    members = dict(zip(rois.names, rois.members))
    return _median_psi(
        rois.names, rois.sizes.tolist(),
        lambda keep: brain_sparseness(brain.data, {name: members[name] for name in keep},
                                      labels, measure="psi"),
        "ROI")


# -- mapping ------------------------------------------------------------------------
@dataclass
class LayerMapping:
    """Result of :func:`map_layers`: layer x ROI similarity and sparseness.

    Attributes
    ----------
    layers, rois : list of str
    method : str
    score, p, p_fdr : ndarray, shape (n_layers, n_roi)
        p and p_fdr are NaN without a permutation test.
    psi_layer : ndarray, shape (n_layers,)
    psi_roi : ndarray, shape (n_roi,)
    n_items : int
        Stimuli or categories in the RDMs.
    """
    layers: list
    rois: list
    method: str
    score: np.ndarray
    p: np.ndarray
    p_fdr: np.ndarray
    psi_layer: np.ndarray
    psi_roi: np.ndarray
    n_items: int

    @property
    def best(self):
        """Index of each ROI's best (highest-scoring) layer; -1 when all are NaN."""
        score = np.where(np.isnan(self.score), -np.inf, self.score)
        best = np.argmax(score, axis=0)
        best[np.isnan(self.score).all(axis=0)] = -1
        return best

    def best_layers(self):
        """Name of each ROI's best layer (None when undefined)."""
        return [self.layers[b] if b >= 0 else None for b in self.best]

    def _pick(self, values):
        """values (n_layers, n_roi) at each ROI's best layer (NaN when none)."""
        best = self.best
        picked = values[np.maximum(best, 0), np.arange(len(self.rois))].astype(np.float64)
        picked[best < 0] = np.nan
        return picked

    @property
    def best_psi(self):
        """Median PSI of each ROI's best layer, shape (n_roi,)."""
        return self._pick(np.repeat(self.psi_layer[:, None], len(self.rois), axis=1))

    def table(self):
        """Tidy columns ``layer, roi, score, p, p_fdr, psi_layer, psi_roi, best``.

        One row per layer x ROI, ROI-major, layers in network order.
        """
        n_l, n_r = self.score.shape
        is_best = np.zeros((n_l, n_r), dtype=bool)
        ok = self.best >= 0
        is_best[self.best[ok], np.flatnonzero(ok)] = True
        return {"layer": [l for _ in self.rois for l in self.layers],
                "roi": [r for r in self.rois for _ in self.layers],
                "score": self.score.T.ravel().tolist(),
                "p": self.p.T.ravel().tolist(),
                "p_fdr": self.p_fdr.T.ravel().tolist(),
                "psi_layer": np.tile(self.psi_layer, n_r).tolist(),
                "psi_roi": np.repeat(self.psi_roi, n_l).tolist(),
                "best": is_best.T.ravel().tolist()}

    def best_table(self):
        """Columns ``roi, best_layer, layer_index (1-based), score, p_fdr, psi_layer, psi_roi``."""
        best = self.best
        return {"roi": list(self.rois),
                "best_layer": ["" if b < 0 else self.layers[b] for b in best],
                "layer_index": (best + 1).tolist(),
                "score": self._pick(self.score).tolist(),
                "p_fdr": self._pick(self.p_fdr).tolist(),
                "psi_layer": self.best_psi.tolist(),
                "psi_roi": self.psi_roi.tolist()}


def _roi_task(brain_rdm, models, method, n_perm, seed):
    """Score and p of one ROI against every layer (:func:`map_layers`); pure."""
    return _similarity(brain_rdm, models, method=method, n_perm=n_perm, n_boot=0, ci=0.95,
                       seed=seed)[:2]


def map_layers(dnn, brain, *, method="pearson", n_perm=1000, seed=None, psi_layer=None,
               psi_roi=None, show_progress=False, engine=None):
    """Which layer each ROI resembles: RSA scores, p, FDR and the best layer.

    Parameters
    ----------
    dnn : dict str -> array, shape (n_pairs,) or (1, n_pairs)
        One whole-layer RDM per layer, in network order.
    brain : dict str -> array, shape (n_pairs,)
        One RDM per ROI.
    method : str, default="pearson"
    n_perm : int, default=1000
        Permutations of each ROI's RDM (rows and columns together); every
        layer sees the same permutations. 0 skips the test (p NaN).
    seed : None, int or Generator
    psi_layer : array, shape (n_layers,), optional
        Median PSI of each layer (:func:`layer_psi`); NaN when not given.
    psi_roi : array, shape (n_roi,), optional
        Median PSI of each ROI (:func:`roi_psi`); NaN when not given.
    show_progress : bool, default=False
    engine : Engine, optional
        :func:`~dnnsparse.utils.engine.open_engine`: where the ROIs are tested (default
        here).  One task per ROI scores it against every layer with its permutations;
        every task gets the same int seed (a Generator gives one draw), so the table
        is the same on one process and on a cluster.

    Returns
    -------
    LayerMapping
        ``p_fdr``: Benjamini-Hochberg across the whole layer x ROI table.
    """
    method = check_comparison(method)
    _check_inference(n_perm, 0, 0.95)
    stacks = {k: _as_stack(v, k) for k, v in dnn.items()}
    if not stacks or not brain:
        raise InputError("map_layers needs at least one layer RDM and one ROI RDM.")
    if any(len(v) != 1 for v in stacks.values()):
        raise InputError("map_layers takes one whole-layer RDM per layer, not per "
                         "channel/position.")
    _check_pairs(stacks, brain)
    layers, rois = list(stacks), list(brain)
    models = np.concatenate([stacks[l] for l in layers])         # (n_layers, n_pairs)
    if isinstance(seed, np.random.Generator):      # one int seed, the same for every ROI
        seed = int(seed.integers(2 ** 63))
    score = np.empty((len(layers), len(rois)))
    p = np.empty_like(score)
    if engine is not None and engine.distributed:
        shared = engine.put(models)                           # sent once, not per ROI
        found = engine.gather([engine.submit(_roi_task, brain[roi], shared, method, n_perm,
                                             seed) for roi in rois])
    else:
        found = (_roi_task(brain[roi], models, method, n_perm, seed)
                 for roi in progress(rois, desc="layer x ROI", unit="roi",
                                     enabled=show_progress))
    for j, (roi_score, roi_p) in enumerate(found):
        score[:, j], p[:, j] = roi_score, roi_p
    nan_l, nan_r = np.full(len(layers), np.nan), np.full(len(rois), np.nan)
    psi_layer = nan_l if psi_layer is None else np.asarray(psi_layer, dtype=np.float64)
    psi_roi = nan_r if psi_roi is None else np.asarray(psi_roi, dtype=np.float64)
    if psi_layer.shape != nan_l.shape or psi_roi.shape != nan_r.shape:
        raise InputError(f"psi_layer/psi_roi have shapes {psi_layer.shape}/{psi_roi.shape}; "
                         f"expected ({len(layers)},)/({len(rois)},).")
    n_items = n_items_from_pairs(models.shape[1])
    return LayerMapping(layers, rois, method, score, p, fdr_bh(p), psi_layer, psi_roi,
                        n_items)
