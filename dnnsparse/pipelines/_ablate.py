"""Ablation effects: what changes when channels or units of a network are silenced.

For one ablation (``ablate=["conv5:12,40"]``) or for each channel of a layer in turn
(``sweep="conv5"``), every stimulus is decoded once per batch and passed through the
intact and the ablated network; measured are the downstream targets (before, after,
change), an accuracy (below), and the root mean square change of the output layer's
values (``output_change``), overall and per category. The sweep ranks the channels by
their effect.

Accuracy (``accuracy``, output layers of 1000 ImageNet classes):

- ``"imagenet"``: top-1/top-5 (columns ``top1_*``, ``top5_*``) against the table's
  ``label`` column of ImageNet class indices (0-999); categories: the labels.
- ``"16class"``: the 16-category decision accuracy of Geirhos et al. (column
  ``acc16_*``): the softmax probabilities are averaged within each of the 16
  entry-level categories' ImageNet classes and the largest average is the decision
  (:func:`dnnsparse.algo.shape_bias.decisions_16`), compared with the category named
  in the table's ``condition`` column (airplane, bear, ..., truck; the sub-folder names
  of a folder of 16 category folders); categories: those names.
- ``"auto"``: ``"imagenet"`` when the labels allow it, else none; ``"none"``.

Effects (``rank_by``): ``"top1"``/``"top5"``/``"acc16"``: the accuracy drop (before -
after); ``"output"``: ``output_change``; a target's name: the absolute change of its
mean. Rank 1 is the largest effect; equal effects keep the channel order.
"""
import contextlib
import logging
import os
import warnings
from dataclasses import dataclass

import numpy as np
import torch
from scipy.special import softmax

from ..errors import FileFormatError, InputError
from ..utils.progress import progress
from ..utils.validation import check_choice
from ..algo.shape_bias import CATEGORIES, check_category_names, label_ranks, probabilities_to_16
from ..model import (ImageDataset, image_batches, ablate, resolve_ablations, resolve_targets,
                     sweep_batch, sweep_copies_at_layer, sweep_point, target_outputs)
from ._topk_sweep import network_output_layer

__all__ = ["ABLATION_ACCURACY", "AblationResult", "ablation_effects"]

log = logging.getLogger(__name__)

ABLATION_ACCURACY = ("auto", "imagenet", "16class", "none")
#: Accuracy columns of each kind.
_METRICS = {"imagenet": ("top1", "top5"), "16class": ("acc16",)}


@dataclass
class AblationResult:
    """Outcome of :func:`ablation_effects`.

    Attributes
    ----------
    table : dict of lists
        One row per ablation (per channel for a sweep): ``ablate, layer, channel, mode,
        n_images``, ``top1_before/after/change``, ``top5_...`` (with accuracy),
        ``output_change``, ``<target>_before/after/change``, ``effect``, ``rank``.
    per_category : dict of lists
        The same columns per ablation and category (``label``; with ``16class`` the
        category names), empty without categories.
    per_image : dict of lists
        ``stimID, target, before, after, change`` (single ablation only).
    rank_by : str
    """
    table: dict
    per_category: dict
    per_image: dict
    rank_by: str


def _accuracy_truth(accuracy, stim, n_out):
    """``(kind or None, truth per stimulus or None)`` for ``accuracy``; see the module doc."""
    check_choice(accuracy, ABLATION_ACCURACY, name="accuracy")
    labels = stim.labels
    if accuracy == "16class":
        if n_out != 1000:
            raise InputError(f"-accuracy 16class needs an output layer of the 1000 ImageNet "
                             f"classes; this one has {n_out} values (-output-layer).")
        if "condition" not in stim.columns:
            raise InputError(f"-accuracy 16class needs a 'condition' column naming each "
                             f"image's category, one of {', '.join(CATEGORIES)}.")
        names = check_category_names(stim.columns["condition"], "the 'condition' column")
        return "16class", np.searchsorted(CATEGORIES, names)
    usable = labels is not None and n_out == 1000 and labels.size and \
        labels.min() >= 0 and labels.max() < 1000
    if accuracy == "imagenet" and not usable:
        raise InputError("-accuracy imagenet needs a 'label' column of ImageNet class indices "
                         "(0-999) and an output layer with 1000 classes.")
    if accuracy == "none" or not usable:
        return None, None
    return "imagenet", np.asarray(labels)


class _Sums:
    """Running sums per (condition, category) of everything the tables report."""

    def __init__(self, n_cond, n_cat, n_targets, kind):
        self.kind = kind
        n_metrics = len(_METRICS.get(kind, ()))
        self.n = np.zeros(n_cat)
        self.before = np.zeros((n_cat, n_targets))
        self.after = np.zeros((n_cond, n_cat, n_targets))
        self.change = np.zeros((n_cond, n_cat))
        self.hits_before = np.zeros((n_cat, n_metrics))
        self.hits_after = np.zeros((n_cond, n_cat, n_metrics))

    def add(self, cats, summary):
        """Add one batch's :func:`_summaries` for the images of categories ``cats``."""
        bv, hits_before, av, rms, hits_after = summary
        np.add.at(self.n, cats, 1)
        np.add.at(self.before, cats, bv)
        np.add.at(self.after.swapaxes(0, 1), cats, av.swapaxes(0, 1))
        np.add.at(self.change.T, cats, rms.T)
        if self.kind is not None:
            np.add.at(self.hits_before, cats, hits_before)
            np.add.at(self.hits_after.swapaxes(0, 1), cats, hits_after.swapaxes(0, 1))


def _summaries(before, after, truth, kind):
    """What the sums need of one batch, per image (float64, small).

    ``before = (values (n, T), output (n, K))``, ``after = (C, n, T), (C, n, K)`` ->
    ``(values (n, T), hits (n, M), values after (C, n, T), output change (C, n), hits
    after (C, n, M))``; the output layer is reduced to its root mean square change and
    the accuracy hits here, so a task sends back kilobytes, not the outputs.
    """
    bv, bo = (t.double().cpu().numpy() for t in before)
    av, ao = (t.double().cpu().numpy() for t in after)
    rms = np.sqrt(np.mean((ao - bo[None]) ** 2, axis=2))              # (C, n)
    hits_before = hits_after = None
    if kind is not None:
        hits = _HITS[kind]
        hits_before = hits(bo, truth)
        n_cond, n = ao.shape[:2]
        hits_after = hits(ao.reshape(n_cond * n, -1),
                          np.tile(truth, n_cond)).reshape(n_cond, n, -1)
    return bv, hits_before, av, rms, hits_after


def _topk_hits(scores, labels):
    """``(n, 2)``: whether each image's label is within the top 1 and the top 5."""
    rank = label_ranks(scores, labels)
    return np.stack([rank < 1, rank < 5], axis=1).astype(np.float64)


def _decision_hits(scores, categories):
    """``(n, 1)``: whether each image's 16-category decision is its category (index into
    :data:`CATEGORIES`); the decision of :func:`~dnnsparse.algo.shape_bias.decisions_16`."""
    decisions = probabilities_to_16(softmax(scores, axis=1)).argmax(axis=1)
    return (decisions == categories)[:, None].astype(np.float64)


#: ``(scores (n, 1000), truth (n,)) -> (n, metrics)`` per accuracy kind.
_HITS = {"imagenet": _topk_hits, "16class": _decision_hits}


def _rows(sums, cat, names, targets, kind):
    """Columns for the conditions at category ``cat`` (None: all categories)."""
    pick = (lambda a: a.sum(axis=-2)) if cat is None else (lambda a: a[..., cat, :])
    n = sums.n.sum() if cat is None else sums.n[cat]
    col = {"n_images": [int(n)] * len(names)}
    if kind is not None:
        hb = pick(sums.hits_before) / n
        ha = pick(sums.hits_after) / n
        for i, k in enumerate(_METRICS[kind]):
            col[f"{k}_before"] = [float(hb[i])] * len(names)
            col[f"{k}_after"] = ha[:, i].tolist()
            col[f"{k}_change"] = (ha[:, i] - hb[i]).tolist()
    ch = sums.change.sum(1) if cat is None else sums.change[:, cat]
    col["output_change"] = (ch / n).tolist()
    b, a = pick(sums.before) / n, pick(sums.after) / n
    for i, t in enumerate(targets):
        col[f"{t.name}_before"] = [float(b[i])] * len(names)
        col[f"{t.name}_after"] = a[:, i].tolist()
        col[f"{t.name}_change"] = (a[:, i] - b[i]).tolist()
    return col


def _effect(col, rank_by):
    if rank_by in ("top1", "top5", "acc16"):
        return -np.asarray(col[f"{rank_by}_change"])
    if rank_by == "output":
        return np.asarray(col["output_change"])
    return np.abs(np.asarray(col[f"{rank_by}_change"]))


def ablation_effects(dnn, stim, *, ablate_specs=None, sweep=None, mode="weights", targets=(),
                     output_layer=None, accuracy="auto", rank_by=None, batch_size=32,
                     device="cpu", workers=None, max_rows=512, show_progress=True,
                     engine=None, threads=1):
    """Effects of silencing channels or units on targets, accuracy and the output.

    Parameters
    ----------
    dnn : DNN
    stim : Stimulus
        Image stimuli; an optional ``label`` column (ImageNet indices for accuracy; any
        integers for the per-category table), a ``condition`` column of the 16
        categories' names for ``accuracy="16class"``.
    ablate_specs : list of str, optional
        One ablation, all specs together (``["conv5:12,40", "conv4:3"]``).
    sweep : str, optional
        A layer whose channels are ablated one at a time (instead of ``ablate_specs``).
    mode : {"weights", "hook"}, default="weights"
        See :func:`dnnsparse.model.ablate`.
    targets : list of str
        Downstream targets (``conv5:12``, ``fc3:class=goldfish``...).
    output_layer : str, optional
        Default: the layer returning the network's output.
    accuracy : {"auto", "imagenet", "16class", "none"}, default="auto"
        See the module docstring.
    rank_by : str, optional
        ``"top1"``, ``"top5"`` (imagenet), ``"acc16"`` (16class), ``"output"`` or a
        target; default the first accuracy column, else output.
    batch_size, device, workers
        As in :meth:`DNN.extract`.
    max_rows : int, default=512
        Copies per forward pass in a sweep (channels x images).
    show_progress : bool, default=True
    engine : Engine, optional
        :func:`~dnnsparse.utils.engine.open_engine`: where a sweep's batches run (one
        task per batch of ``batch_size`` images; the network is sent to the workers
        once, each worker decodes its batches' images). The table is byte-identical to
        the run in this process. A single ablation runs here.
    threads : int or None, default=1
        torch's CPU threads in a sweep's forward passes, here and in every task. Some
        matrix products round differently with another number of threads (measured:
        AlexNet conv5, one image per batch), so a table is byte-identical across
        schedulers for the same ``threads``; use a scheduler (``local:N``) for the
        cores of one machine. None: this process's torch setting (tasks: 1).

    Returns
    -------
    AblationResult

    Examples
    --------
    >>> res = ablation_effects(dnn, stim, sweep="conv5", targets=["fc3:class=1"])  # doctest: +SKIP
    """
    if (ablate_specs is None) == (sweep is None):
        raise InputError("give either ablations (-ablate) or a layer to sweep (-sweep).")
    output_layer = output_layer or network_output_layer(dnn)
    shapes = dnn.layer_shapes(list(dict.fromkeys(
        [output_layer] + ([sweep] if sweep else []))))
    n_out = int(np.prod(shapes[output_layer]))
    kind, truth = _accuracy_truth(accuracy, stim, n_out)
    if kind == "imagenet" and accuracy == "auto" and "condition" in stim.columns:
        # Stimulus.from_folder numbers sub-folders in 'label' (names in 'condition')
        log.warning("accuracy: reading the 'label' column as ImageNet class indices; if it "
                    "numbers folders (the table has a 'condition' column), pass -accuracy "
                    "none.")
    targets = resolve_targets(targets, dnn) if targets else []
    choices = list(_METRICS.get(kind, ())) + ["output"] + [t.name for t in targets]
    rank_by = check_choice(rank_by or choices[0], choices, name="rank_by")
    point = n_chn = plan = None
    if sweep:
        n_chn = shapes[sweep][0]
        point = sweep_point(dnn, sweep, mode)
        names = [f"{sweep}:{c}" for c in range(1, n_chn + 1)]
        layer_col, chn_col = [sweep] * n_chn, list(range(1, n_chn + 1))
    else:
        plan = resolve_ablations(ablate_specs, dnn, mode=mode)
        names = [" ".join(a.name for a in plan)]
        layer_col = [" ".join(dict.fromkeys(a.layer for a in plan))]
        chn_col = [" ".join(",".join(map(str, a.channels)) for a in plan)]
    stim.check_files()
    # categories of the per-category table: the 16 categories' names, else the labels
    groups = np.asarray(CATEGORIES)[truth] if kind == "16class" else stim.labels
    codes, cats = (np.unique(groups, return_inverse=True) if groups is not None
                   else (np.array([]), np.zeros(len(stim.ids), dtype=int)))
    cats = np.asarray(cats).ravel()
    sums = _Sums(len(names), max(1, len(codes)), len(targets), kind)
    per_image = {"stimID": [], "target": [], "before": [], "after": [], "change": []}
    distributed = sweep and engine is not None and engine.distributed
    bar = progress(total=len(stim.paths), desc=f"{dnn.name} ablation", unit="img",
                   enabled=show_progress)
    try:
        if distributed:
            batches = _sweep_on_engine(engine, dnn, stim, point, n_chn, targets,
                                       output_layer, truth, kind, batch_size, device,
                                       max_rows, threads)
        else:
            dnn.to(device)
            batches = _batches_here(dnn, stim, sweep, point, n_chn, plan, mode, targets,
                                    output_layer, truth, kind, batch_size, device, workers,
                                    max_rows, per_image)
        with _torch_threads(threads if sweep and not distributed else None):
            for idx, summary in batches:
                sums.add(cats[idx], summary)
                bar.update(len(idx))
    finally:
        bar.close()
    return _result(sums, names, layer_col, chn_col, mode, targets, kind, codes, rank_by,
                   per_image if not sweep else {})


def _image_error(stim, i, msg):
    return FileFormatError(f"cannot read image {stim.paths[i]} (row {i + 1} of the stimulus "
                           f"table): {msg}. Fix or remove it.")


def _batches_here(dnn, stim, sweep, point, n_chn, plan, mode, targets, output_layer, truth,
                  kind, batch_size, device, workers, max_rows, per_image):
    """``(indices, summary)`` of each batch, computed in this process."""
    dataset = ImageDataset(stim.paths, dnn.image_transform())
    state = {"at_layer": sweep_copies_at_layer(dnn, point, targets, output_layer)
             if sweep else None}
    for idx, xb, errors in image_batches(dataset, batch_size, workers=workers,
                                         device=device):
        if errors:
            raise _image_error(stim, *errors[0])
        idx = np.asarray(idx)
        x = dnn.normalize(xb.to(device))
        with torch.inference_mode():
            if sweep:
                before, after = sweep_batch(dnn, x, point, n_chn, targets, output_layer,
                                            max_rows=max_rows, state=state)
            else:
                before = target_outputs(dnn, x, targets, output_layer)
                handle = ablate(dnn, plan, mode=mode)
                try:
                    got = target_outputs(dnn, x, targets, output_layer)
                finally:
                    handle.remove()
                after = (got[0][None], got[1][None])
                _per_image(per_image, stim, idx, targets, before[0], got[0])
        yield idx, _summaries(before, after, None if kind is None else truth[idx], kind)


def _sweep_on_engine(engine, dnn, stim, point, n_chn, targets, output_layer, truth, kind,
                     batch_size, device, max_rows, threads):
    """``(indices, summary)`` of each batch, one task per batch on ``engine``.

    The network is sent to the workers once; each task decodes its batch's images
    (the files must be readable there), runs :func:`sweep_batch` with the forward
    passes of a run in one process (the same images and channels in each pass, and the
    same way through the network, :func:`sweep_copies_at_layer`: the same numbers) and sends back the per-image :func:`_summaries`. Results are taken
    in batch order, so the sums add up in the same order as in one process.
    """
    at_layer = sweep_copies_at_layer(dnn, point, targets, output_layer)
    with warnings.catch_warnings():      # the network, once: Dask warns of its size
        warnings.filterwarnings("ignore", message="Sending large graph")
        net = engine.put(dnn)
    paths = [os.path.abspath(p) for p in stim.paths]    # workers may run elsewhere
    pending = []
    for start in range(0, len(paths), batch_size):
        idx = np.arange(start, min(start + batch_size, len(paths)))
        pending.append((idx, engine.submit(
            _sweep_task, net, paths[start:idx[-1] + 1], point, n_chn, targets, output_layer,
            None if kind is None else truth[idx], kind, device, max_rows, at_layer,
            threads or 1)))
    for idx, handle in pending:
        summary, error = engine.gather([handle])[0]
        if error is not None:
            raise _image_error(stim, idx[0] + error[0], error[1])
        yield idx, summary


def _sweep_task(dnn, paths, point, n_chn, targets, output_layer, truth, kind, device,
                max_rows, at_layer, threads=1):
    """One batch of a sweep as a pure task: ``(summary, None)`` or ``(None, (i, msg))``
    for an unreadable image ``i`` of the batch.

    A private copy of the network (a worker keeps one for its tasks; hooks of one task
    never reach another), ``threads`` torch threads (as in one process: the same
    numbers).
    """
    import copy

    dnn = copy.deepcopy(dnn).to(device)
    dataset = ImageDataset(paths, dnn.image_transform())
    with _torch_threads(threads):
        for _, xb, errors in image_batches(dataset, len(paths), workers=0, device=device):
            if errors:
                return None, errors[0]
            x = dnn.normalize(xb.to(device))
            with torch.inference_mode():
                before, after = sweep_batch(dnn, x, point, n_chn, targets, output_layer,
                                            max_rows=max_rows,
                                            state={"at_layer": at_layer})
            return _summaries(before, after, truth, kind), None


@contextlib.contextmanager
def _torch_threads(n):
    """torch's intra-op CPU threads set to ``n`` in the block (None: unchanged)."""
    before = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _per_image(table, stim, idx, targets, before, after):
    b, a = before.double().cpu().numpy(), after.double().cpu().numpy()
    for r, i in enumerate(idx):
        for j, t in enumerate(targets):
            table["stimID"].append(str(stim.ids[i]))
            table["target"].append(t.name)
            table["before"].append(float(b[r, j]))
            table["after"].append(float(a[r, j]))
            table["change"].append(float(a[r, j] - b[r, j]))


def _result(sums, names, layer_col, chn_col, mode, targets, kind, codes, rank_by, per_image):
    key = {"ablate": names, "layer": layer_col, "channel": chn_col, "mode": [mode] * len(names)}
    table = {**key, **_rows(sums, None, names, targets, kind)}
    effect = _effect(table, rank_by)
    order = np.argsort(-effect, kind="stable")
    rank = np.empty(len(names), dtype=int)
    rank[order] = np.arange(1, len(names) + 1)
    table["effect"], table["rank"] = effect.tolist(), rank.tolist()
    per_category = {}
    for g, code in enumerate(codes):
        block = {**key, "category": [code.item()] * len(names),
                 **_rows(sums, g, names, targets, kind)}
        for k, v in block.items():
            per_category.setdefault(k, []).extend(v)
    return AblationResult(table=table, per_category=per_category, per_image=per_image,
                          rank_by=rank_by)
