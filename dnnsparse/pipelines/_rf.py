"""Receptive fields (``db_rf``): the theoretical table of all layers, and empirical maps
of units and channels (occlusion discrepancy, upsampled activation) as files.

- :func:`theoretical_table` -- size, jump, centre and effective padding of every
  layer's receptive field (:func:`dnnsparse.model.theoretical_rf`), as table columns.
- :func:`empirical_rf` -- for each target, occlusion and/or upsampling maps averaged
  over the stimuli (or over each target's top-N stimuli), their peak and half-maximum
  extent, and the target's theoretical field for comparison.
- :func:`write_rf_outputs` -- ``rf.h5`` (one dataset per target and method, see
  :mod:`dnnsparse.io.maps`), ``rf.csv`` and one overlay figure per target.

Pixel coordinates in tables and files are 0-based (row 0 is the top of the network's
input image); channels, rows and columns of layer units are 1-based, as in targets.
"""
import logging
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..errors import FileFormatError, InputError
from ..io import atomic_output_dir, check_output_dir
from ..io.maps import write_maps
from ..io.table import write_table
from ..model import (ImageDataset, image_batches, map_extent, occlusion_maps, target_responses,
                     theoretical_rf, upsampling_maps)
from ..utils.validation import check_scalar
from ..viz import plot_rf_maps

__all__ = ["RF_METHODS", "RFResult", "check_rf_output_dir", "empirical_rf", "load_images",
           "theoretical_table", "write_rf_outputs"]

log = logging.getLogger(__name__)

RF_METHODS = ("occlusion", "upsampling")


def theoretical_table(dnn, layers=None):
    """The theoretical receptive field of every layer as table columns.

    Returns
    -------
    dict of str to list
        ``layer, module, n_chn, n_row, n_col, scope, exact, size_row, size_col,
        jump_row, jump_col, centre_row, centre_col, padding_row, padding_col`` (centre:
        of unit (1, 1), 0-based pixels; padding: Araujo et al.'s effective padding;
        NaN for global layers).
    """
    rf = theoretical_rf(dnn, layers)
    if layers is not None:
        unreached = [l for l in layers if l not in rf]
        if unreached:
            raise InputError(f"layers {unreached} are not reached by {dnn.name}'s forward "
                             f"pass; 'db_info -net {dnn.name}' lists the layers.")
    cols = {k: [] for k in ("layer", "module", "n_chn", "n_row", "n_col", "scope", "exact")}
    for layer, (geom, shape) in rf.items():
        for k, v in zip(("layer", "module", "n_chn", "n_row", "n_col", "scope", "exact"),
                        (layer, dnn.layer_map.get(layer, layer), *shape, geom.scope,
                         geom.exact)):
            cols[k].append(v)
        for k, v in geom.as_row().items():
            cols.setdefault(k, []).append(v)
    return cols


def check_rf_output_dir(path, *, force=False):
    """Refuse an output directory that exists and is not empty (unless ``force``), before
    any computation; nothing is created here (:func:`~dnnsparse.io.check_output_dir`)."""
    return check_output_dir(path, force=force)


def load_images(dnn, stim, *, batch_size=32, workers=None):
    """All images of ``stim`` at the network's input size, as ``uint8 (n, 3, H, W)``."""
    stim.check_files()
    out = []
    dataset = ImageDataset(stim.paths, dnn.image_transform())
    for idx, x, errors in image_batches(dataset, batch_size, workers=workers):
        if errors:
            i, msg = errors[0]
            raise FileFormatError(f"cannot read image {stim.paths[i]} (row {i + 1} of the "
                                  f"stimulus table): {msg}. Fix or remove it.")
        out.append(x)
    return torch.cat(out)


@dataclass
class RFResult:
    """Empirical receptive fields of several targets.

    Attributes
    ----------
    targets : list of Target
    maps : dict of str to dict of str to ndarray
        ``{method: {target name: (H, W) map}}``.
    images : dict of str to ndarray
        ``{target name: (H, W, 3) uint8}`` mean of the stimuli each target's maps used.
    table : dict of str to list
        One row per target and method (see :func:`empirical_rf`).
    dataset_attrs : dict
        ``{method: {target name: {...}}}`` for the maps file.
    attrs : dict
        The network and the options, for the maps file.
    """
    targets: list
    maps: dict
    images: dict
    table: dict
    dataset_attrs: dict = field(default_factory=dict)
    attrs: dict = field(default_factory=dict)


def _target_info(t):
    return {"target": t.name, "layer": t.layer, "kind": t.kind, "channel": t.channel,
            "row": t.row if t.row is not None else math.nan,
            "col": t.col if t.col is not None else math.nan, "stat": t.stat}


def _theory_cells(t, geom):
    cells = {"rf_size_row": math.nan, "rf_size_col": math.nan, "rf_top": math.nan,
             "rf_bottom": math.nan, "rf_left": math.nan, "rf_right": math.nan}
    if geom.scope != "local":
        return cells, None
    row = geom.as_row()
    cells["rf_size_row"], cells["rf_size_col"] = row["size_row"], row["size_col"]
    if t.row is None:
        return cells, None
    box = geom.box(t.row, t.col)
    cells.update(zip(("rf_top", "rf_bottom", "rf_left", "rf_right"), box))
    return cells, box


def _top_indices(dnn, x, targets, top, batch_size):
    """Each target's ``top`` stimuli (largest values first; ties by stimulus order)."""
    with torch.inference_mode():
        values = torch.cat([target_responses(dnn, dnn.normalize(x[s:s + batch_size].to(dnn.device)),
                                             targets)
                            for s in range(0, len(x), batch_size)]).double().cpu().numpy()
    return [np.argsort(-values[:, j], kind="stable")[:top] for j in range(len(targets))]


def _check_request(dnn, targets, methods, size, stride, top, shapes):
    unknown = [m for m in methods if m not in RF_METHODS]
    if unknown or not methods:
        raise InputError(f"unknown method(s) {unknown}; choose from {', '.join(RF_METHODS)}.")
    check_scalar(size, name="occluder size", kind=int, min_val=1)
    check_scalar(stride, name="occluder stride", kind=int, min_val=1)
    if top is not None:
        check_scalar(top, name="top", kind=int, min_val=1)
    height, width = dnn.input_size
    if "occlusion" in methods and size > min(height, width):
        raise InputError(f"the occluder ({size}x{size} pixels) is larger than {dnn.name}'s "
                         f"{height}x{width} input image; choose -occluder up to "
                         f"{min(height, width)}.")
    flat = [t for t in targets if t.kind == "class" or shapes[t.layer][1:] == (1, 1)]
    if "upsampling" in methods and len(flat) == len(targets) and methods == ["upsampling"]:
        raise InputError(f"target {flat[0].name} has no spatial map to upsample; use "
                         f"-method occlusion or a convolutional layer.")
    return {t.name for t in flat}


def empirical_rf(dnn, images, targets, *, stim_ids, methods=RF_METHODS, top=None, size=11,
                 stride=4, fill="mean", discrepancy="drop", interp="bicubic",
                 threshold=None, batch_size=64, seed=0, show_progress=True):
    """Occlusion and upsampling maps of each target, with peak and half-maximum extent.

    Parameters
    ----------
    dnn : DNN
    images : tensor of shape (n, 3, H, W)
        ``uint8`` stimuli at the network's input size (:func:`load_images`).
    targets : list of Target
        Resolved against ``dnn`` (:func:`dnnsparse.model.resolve_targets`).
    stim_ids : sequence of str
        One per image (recorded with each map).
    methods : sequence of {"occlusion", "upsampling"}
        Upsampling is skipped (with a warning) for targets without a spatial map.
    top : int, optional
        Average each target's maps over its ``top`` stimuli (largest target values)
        instead of all of them.
    size, stride, fill, discrepancy, batch_size, seed
        See :func:`dnnsparse.model.occlusion_maps`; each unit target is computed on the
        crop that holds its receptive field, the other targets together.
    interp, threshold
        See :func:`dnnsparse.model.upsampling_maps`.

    Returns
    -------
    RFResult
        ``table`` columns: ``target, layer, kind, channel, row, col, stat, method, n_stim,
        peak_row, peak_col, peak_value, half_max_area, half_max_height, half_max_width,
        half_max_size, rf_size_row, rf_size_col, rf_top, rf_bottom, rf_left, rf_right,
        peak_in_rf`` (theoretical box for units; pixels 0-based).
    """
    methods = list(dict.fromkeys(methods))
    targets = list({t.name: t for t in targets}.values())       # each target once
    shapes = {t.layer: None for t in targets}
    geoms = theoretical_rf(dnn, list(shapes))
    shapes = {l: geoms[l][1] for l in shapes}
    flat = _check_request(dnn, targets, methods, size, stride, top, shapes)
    if len(images) == 0:
        raise InputError("no stimuli: the stimulus table has no rows.")
    groups = ([list(range(len(targets)))] if top is None else [[j] for j in range(len(targets))])
    chosen = (_top_indices(dnn, images, targets, top, batch_size) if top is not None
              else [np.arange(len(images))] * len(targets))
    maps = {m: {} for m in methods}
    result_images, ds_attrs, rows = {}, {m: {} for m in methods}, []
    for group in groups:
        idx = chosen[group[0]]
        x = images[torch.as_tensor(idx)]
        ts = [targets[j] for j in group]
        computed = {}
        if "occlusion" in methods:
            # each unit on its own crop (its field); the other targets share their passes
            parts = [[t] for t in ts if t.row is not None] + [[t for t in ts if t.row is None]]
            computed["occlusion"] = {}
            for part in filter(None, parts):
                occ = occlusion_maps(dnn, x, part, size=size, stride=stride, fill=fill,
                                     discrepancy=discrepancy, batch_size=batch_size,
                                     seed=seed, show_progress=show_progress)
                computed["occlusion"].update(zip((t.name for t in part), occ.pixel_maps()))
            grid_attrs = {"row_starts": occ.row_starts, "col_starts": occ.col_starts}
        spatial = [t for t in ts if t.name not in flat]
        if "upsampling" in methods:
            skipped = [t.name for t in ts if t.name in flat]
            if skipped:
                log.warning("upsampling skipped for %s (no spatial map)", ", ".join(skipped))
            if spatial:
                up = upsampling_maps(dnn, x, spatial, interp=interp, threshold=threshold,
                                     batch_size=batch_size)
                computed["upsampling"] = dict(zip((t.name for t in spatial), up))
        mean_img = x.double().mean(dim=0).round().to(torch.uint8).permute(1, 2, 0).numpy()
        ids = [str(stim_ids[i]) for i in idx]
        for t in ts:
            result_images[t.name] = mean_img
            cells, box = _theory_cells(t, geoms[t.layer][0])
            for method in methods:
                m = computed.get(method, {}).get(t.name)
                if m is None:
                    continue
                maps[method][t.name] = m
                ext = map_extent(m)
                inside = ("" if box is None else bool(box[0] <= ext["peak_row"] <= box[1]
                                                      and box[2] <= ext["peak_col"] <= box[3]))
                rows.append({**_target_info(t), "method": method, "n_stim": len(ids), **ext,
                             **cells, "peak_in_rf": inside})
                ds_attrs[method][t.name] = {**_target_info(t), "stimID": ids,
                                            **(grid_attrs if method == "occlusion" else {})}
    table = {k: [r[k] for r in rows] for k in rows[0]} if rows else {}
    attrs = {"net": dnn.name, "weights": dnn.weights, "weights_sha256": dnn.weights_sha256,
             "preprocess": dnn.preprocess, "lesion": "; ".join(dnn.lesions),
             **dnn.topk_attrs(), **dnn.ablation_attrs(), "input_size": list(dnn.input_size), "methods": methods,
             "occluder_size": size, "occluder_stride": stride, "fill": fill,
             "discrepancy": discrepancy, "interp": interp,
             "threshold": "" if threshold is None else threshold, "top": top or 0,
             "seed": seed}
    return RFResult(targets=list(targets), maps=maps, images=result_images, table=table,
                    dataset_attrs=ds_attrs, attrs=attrs)


def _file_stem(name):
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_")


def write_rf_outputs(result, out_dir, *, attrs=None, force=False, figures=True):
    """Write ``rf.h5``, ``rf.csv`` and ``rf_<target>.png`` figures into ``out_dir``.

    ``attrs`` (e.g. the stimulus file) join ``result.attrs`` in the maps file. The
    folder is written as a whole (:func:`~dnnsparse.io.atomic_output_dir`).

    Returns
    -------
    list of Path
        The files, under their final names.
    """
    with atomic_output_dir(out_dir, force=force) as tmp:
        written = _write_rf_files(result, tmp, attrs=attrs, figures=figures)
    return [Path(out_dir) / Path(p).relative_to(tmp) for p in written]


def _write_rf_files(result, out, *, attrs, figures):
    groups = {m: maps for m, maps in result.maps.items() if maps}
    groups["image"] = result.images
    written = [write_maps(out / "rf.h5", groups, attrs={**result.attrs, **(attrs or {})},
                          dataset_attrs=result.dataset_attrs, force=True),
               write_table(out / "rf.csv", result.table, force=True)]
    if figures:
        for t in result.targets:
            panels = {m: result.maps[m][t.name] for m in result.maps if t.name in result.maps[m]}
            peaks = {}
            for r in range(len(result.table["target"])):
                if result.table["target"][r] == t.name:
                    peaks[result.table["method"][r]] = (result.table["peak_row"][r],
                                                        result.table["peak_col"][r])
            box = None
            if t.row is not None:
                i = result.table["target"].index(t.name)
                box = tuple(result.table[k][i] for k in ("rf_top", "rf_bottom", "rf_left",
                                                         "rf_right"))
                box = None if any(isinstance(v, float) and math.isnan(v) for v in box) else box
            written.append(plot_rf_maps(out / f"rf_{_file_stem(t.name)}.png",
                                        result.images[t.name], panels, box=box, peaks=peaks,
                                        title=t.name, force=True))
    return written
