"""Minimal images of stimuli for targets (``db_minstim``; DNNBrain's ``MinimalParcelImage``).

- :func:`check_minstim_request` -- every option checked before any work.
- :func:`select_stimuli` -- the ``-stim-id`` subset of a stimulus table.
- :func:`minimal_images` -- each stimulus, at the network's input size, cut into
  superpixels (:func:`dnnsparse.algo.segmentation.segment`), then for each target the
  greedy minimal image (:func:`dnnsparse.model.minimal_image`).
- :func:`write_minstim_outputs` -- the summary table, and per stimulus x target the
  minimal image (PNG, exact pixels), the removal order (tidy CSV) and the activation
  curve figure; per stimulus the label map (``.npy``) and a figure of the parcels.

All images are in the network's input geometry: the stimulus after the network's
resize (``-preprocess squash``) or resize-and-centre-crop (``crop``), as the network
sees it; parcels are computed there, and the minimal image has that size.
"""
import difflib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from ..algo.segmentation import FILLS, fill_image, segment, segmentation_params
from ..errors import InputError
from ..io import atomic_output_dir
from ..io.table import write_table
from ..model import check_keep, minimal_image, resolve_network_targets
from ..utils.progress import progress
from ..utils.validation import check_choice, check_scalar
from ..viz import plot_minimal_curve, plot_segmentation
from ._rf import _file_stem, load_images
from ._topstim import network_attrs

__all__ = ["MinStimResult", "check_minstim_request", "minimal_images", "select_stimuli",
           "write_minstim_outputs"]

log = logging.getLogger(__name__)

# more parcels than this get a warning: the search costs up to n^2/2 forward passes
_MANY_PARCELS = 300


def check_minstim_request(*, keep=0.5, method="slic", params=None, fill="grey",
                          blur_sigma=8.0, batch_size=32):
    """Check every option of a minimal-image run; return the segmentation's parameters.

    Raises
    ------
    InputError
        ``keep`` outside (0, 1] or NaN, an unknown segmentation or fill, a parameter
        the segmentation does not take, a parameter out of range, a batch size < 1.
    """
    check_keep(keep)
    check_choice(fill, FILLS, name="fill")
    check_scalar(blur_sigma, name="-blur-sigma", min_val=0, include_min=False)
    check_scalar(batch_size, name="-batch-size", kind=(int, np.integer), min_val=1)
    return segmentation_params(method, **(params or {}))


def select_stimuli(stim, ids=None):
    """The rows of ``stim`` with the given stimulus IDs (in the given order); all if None.

    Raises
    ------
    InputError
        An ID that is not in the table (with close IDs), or one given twice.
    """
    if not ids:
        return stim
    rows = {str(s): i for i, s in enumerate(stim.ids)}
    picked = []
    for s in ids:
        if str(s) not in rows:
            close = difflib.get_close_matches(str(s), list(rows), n=3, cutoff=0.5)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise InputError(f"-stim-id {s}: no stimulus of that ID in the table{hint}; "
                             f"the IDs are its stimID column.")
        if rows[str(s)] in picked:
            raise InputError(f"-stim-id {s} is given twice.")
        picked.append(rows[str(s)])
    return stim[np.asarray(picked, dtype=np.intp)]


@dataclass
class MinStimResult:
    """Minimal images of several stimuli and targets.

    Attributes
    ----------
    targets : list of Target
    stim_ids : list of str
    images : list of ndarray (H, W, 3) uint8
        Each stimulus at the network's input size.
    labels : list of ndarray (H, W) int32
        Each stimulus's parcels.
    results : dict of (int, int) to MinimalResult
        ``(stimulus index, target index)`` → the greedy search.
    attrs : dict
        The network (:func:`network_attrs`).
    options : dict
        The run's options (fraction kept, segmentation and its parameters, fill, ...).
    """
    targets: list
    stim_ids: list
    images: list
    labels: list
    results: dict
    attrs: dict = field(default_factory=dict)
    options: dict = field(default_factory=dict)

    def summary(self):
        """One row per stimulus x target: ``stimID, target, n_parcels, keep, original,
        threshold, n_removed, n_kept, final, final_fraction, next_best, next_best_fraction,
        next_parcel, n_evaluated, status``."""
        rows = []
        for (i, j), r in self.results.items():
            ref = r.reference
            frac = (lambda v: v / ref) if ref > 0 else (lambda v: float("nan"))
            rows.append({"stimID": self.stim_ids[i], "target": self.targets[j].name,
                         "n_parcels": r.n_parcels, "keep": r.keep, "original": ref,
                         "threshold": r.threshold, "n_removed": len(r.order),
                         "n_kept": r.n_parcels - len(r.order), "final": r.final_value,
                         "final_fraction": frac(r.final_value), "next_best": r.next_best,
                         "next_best_fraction": frac(r.next_best),
                         "next_parcel": r.next_parcel, "n_evaluated": r.n_evaluated,
                         "status": r.status})
        return {k: [row[k] for row in rows] for k in rows[0]} if rows else {}

    def order_table(self, i, j):
        """Tidy removal order of stimulus ``i`` and target ``j``: ``stimID, target, step,
        parcel, value, fraction`` (step 0: the whole image, parcel -1)."""
        r = self.results[(i, j)]
        curve = r.curve()
        n = len(curve)
        return {"stimID": [self.stim_ids[i]] * n, "target": [self.targets[j].name] * n,
                "step": list(range(n)), "parcel": [-1] + r.order.tolist(),
                "value": curve.tolist(),
                "fraction": (curve / r.reference).tolist() if r.reference > 0
                else [float("nan")] * n}


def _report(stim_id, r):
    if r.status == "not positive":
        log.warning("%s, %s: the target's value on the whole image is %.6g (not > 0); "
                    "there is no fraction of it to keep, so no parcel was removed.",
                    stim_id, r.target.name, r.reference)
    elif r.status == "all removed":
        log.warning("%s, %s: the fill image alone keeps %.3g of the value; every parcel "
                    "was removed.", stim_id, r.target.name, r.final_value / r.reference)
    else:
        log.info("%s, %s: %d of %d parcels removed, %.3g of the value kept", stim_id,
                 r.target.name, len(r.order), r.n_parcels, r.final_value / r.reference)


def minimal_images(dnn, stim, specs, *, stat="mean", keep=0.5, method="slic", params=None,
                   fill="grey", blur_sigma=8.0, seed=0, batch_size=32, workers=None,
                   device="cpu", show_progress=True):
    """Greedy minimal image of every stimulus for every target.

    Parameters
    ----------
    dnn : DNN
    stim : Stimulus
        Image stimuli (:func:`select_stimuli` for a subset).
    specs : sequence of str or Target
        Targets (``LAYER:CHN[@STAT]``, ``LAYER:CHN,ROW,COL``, ``LAYER:class=...``).
    stat : str, default="mean"
        Statistic of channel targets written without ``@STAT``.
    keep : float in (0, 1], default=0.5
    method : {"slic", "felzenszwalb", "quickshift"}, default="slic"
    params : dict, optional
        The segmentation's parameters (:func:`dnnsparse.algo.segmentation.segment`).
    fill : {"grey", "mean", "black", "blur"}, default="grey"
        What removed parcels show (:func:`dnnsparse.algo.segmentation.fill_image`;
        "grey" is the network's mean colour).
    blur_sigma : float, default=8.0
        Gaussian of the "blur" fill (pixels).
    seed : int, default=0
        Seed of the segmentation (quick shift's tie-breaking).
    batch_size : int, default=32
        Candidate images per forward pass.
    workers, device, show_progress
        As in :func:`dnnsparse.model.extract`.

    Returns
    -------
    MinStimResult

    Raises
    ------
    InputError
        Bad options (:func:`check_minstim_request`), targets (unknown layer, channel
        out of range, ...), a network too large for its input image, a stimulus whose
        segmentation has fewer than 2 parcels -- all before the greedy search.
    """
    params = check_minstim_request(keep=keep, method=method, params=params, fill=fill,
                                   blur_sigma=blur_sigma, batch_size=batch_size)
    if len(stim) == 0:
        raise InputError("the stimulus table has no rows.")
    stim.check_files()
    dnn.to(device)
    targets = list({t.name: t for t in resolve_network_targets(specs, dnn, stat=stat)}.values())
    pixels = load_images(dnn, stim, batch_size=batch_size, workers=workers)
    images = [np.ascontiguousarray(x.permute(1, 2, 0).numpy()) for x in pixels]
    labels = []
    for sid, img in zip(stim.ids, images):
        lab = segment(img, method, seed=seed, **params)
        n = int(lab.max()) + 1
        if n < 2:
            raise InputError(f"stimulus {sid}: {method} cut its {img.shape[0]}x{img.shape[1]} "
                             f"image into {n} parcel; a minimal image needs at least 2 (ask "
                             f"for more segments: a larger -n-segments, a smaller -scale or "
                             f"-max-dist).")
        if n > _MANY_PARCELS:
            log.warning("stimulus %s: %d parcels; the greedy search may evaluate up to %d "
                        "candidate images per target (n^2/2); ask for fewer segments to make "
                        "it faster.", sid, n, n * (n + 1) // 2)
        labels.append(lab)
    fills = [fill_image(img, fill, dataset_mean=dnn.mean, sigma=blur_sigma) for img in images]
    results = {}
    total = sum(int(lab.max()) + 1 for lab in labels) * len(targets)
    with progress(total=total, desc=f"{dnn.name} minimal images", unit="parcel",
                  enabled=show_progress) as bar:
        for i, (img, lab, fl) in enumerate(zip(pixels, labels, fills)):
            for j, t in enumerate(targets):
                r = minimal_image(dnn, img, lab, t, keep=keep, fill=fl,
                                  batch_size=batch_size, progress_bar=bar)
                bar.update(r.n_parcels - len(r.order))        # the parcels not removed
                _report(stim.ids[i], r)
                results[(i, j)] = r
    options = {"keep": keep, "stat": stat, "input_size": list(dnn.input_size),
               "segment": method, "segment_params": params, "seed": seed, "fill": fill,
               **({"blur_sigma": blur_sigma} if fill == "blur" else {}),
               "batch_size": batch_size}
    return MinStimResult(targets, [str(s) for s in stim.ids], images, labels, results,
                         network_attrs(dnn), options)


def _unique_stems(names):
    stems, seen = [], set()
    for name in names:
        stem = base = _file_stem(name) or "stim"
        k = 1
        while stem in seen:                       # cat/1.png and cat_1.png share a stem
            k += 1
            stem = f"{base}_{k}"
        seen.add(stem)
        stems.append(stem)
    return stems


def write_minstim_outputs(result, out_dir, *, figures=True, provenance=None, force=False):
    """Write a minimal-image run into ``out_dir`` (as a whole, or nothing).

    Files: ``minstim.csv`` (one row per stimulus x target, :meth:`MinStimResult.summary`),
    ``minstim.json`` (``provenance``, e.g. :func:`run_provenance`, with the network, the
    options, the targets and stimuli; written when given);
    per stimulus ``<stim>.segments.npy`` (label map, int32) and, with ``figures``,
    ``<stim>.segments.png``; per stimulus x target ``<stim>__<target>.minimal.png`` (the
    minimal image's pixels), ``<stim>__<target>.order.csv`` and, with ``figures``,
    ``<stim>__<target>.curve.png``. Stems are the stimulus IDs and target names with
    characters other than letters, digits, ``_.-`` replaced by ``_``.

    Returns
    -------
    list of Path
        The files under their final names.
    """
    stim_stems = _unique_stems(result.stim_ids)
    target_stems = _unique_stems([t.name for t in result.targets])
    with atomic_output_dir(out_dir, force=force) as tmp:
        written = [write_table(tmp / "minstim.csv", result.summary(), force=True)]
        if provenance is not None:
            record = {**provenance, "targets": [t.name for t in result.targets],
                      "stimID": list(result.stim_ids)}
            (tmp / "minstim.json").write_text(json.dumps(record, indent=2) + "\n")
            written.append(tmp / "minstim.json")
        for i, stem in enumerate(stim_stems):
            np.save(tmp / f"{stem}.segments.npy", result.labels[i])
            written.append(tmp / f"{stem}.segments.npy")
            if figures:
                written.append(plot_segmentation(tmp / f"{stem}.segments.png",
                                                 result.images[i], result.labels[i],
                                                 title=result.stim_ids[i], force=True))
        for (i, j), r in result.results.items():
            pair = f"{stim_stems[i]}__{target_stems[j]}"
            Image.fromarray(r.image).save(tmp / f"{pair}.minimal.png")
            written.append(tmp / f"{pair}.minimal.png")
            written.append(write_table(tmp / f"{pair}.order.csv", result.order_table(i, j),
                                       force=True))
            if figures:
                written.append(plot_minimal_curve(
                    tmp / f"{pair}.curve.png", r.curve(), r.threshold,
                    image=result.images[i], minimal=r.image, labels=result.labels[i],
                    title=f"{r.target.name} on {result.stim_ids[i]}: keep >= {r.keep:g}, "
                          f"{len(r.order)} of {r.n_parcels} parcels removed", force=True))
    return [Path(out_dir) / Path(p).relative_to(tmp) for p in written]
