"""Saliency maps of targets over a stimulus table (``db_saliency``; DNNBrain's Fig. 7B).

- :func:`network_saliency` -- the maps of every target, method and stimulus, batch by
  batch (:func:`dnnsparse.model.saliency_batches`), with where each photograph's pixels
  went in the network's input (:func:`dnnsparse.model.input_window`).
- :func:`write_saliency_outputs` -- ``saliency.h5`` and one overlay figure per target.

``saliency.h5`` (read with :func:`dnnsparse.io.maps.read_maps`)::

    /<method>/<target>     (n_stim, 3, H, W) float, or (n_stim, H, W) with -colour absmax;
                           attrs: method, its parameters, layer, kind, channel, stat
    /integrated_completeness/<target>
                           (n_stim, 2): f(image) - f(baseline), and sum(map) minus it
                           (the completeness error; integrated gradients only)
    file attrs:            stimID, image_size (n_stim, 2: width, height),
                           input_window (n_stim, 4: left, top, width, height of the
                           network's input on the photograph, as fractions of its width
                           and height), input_size, net, weights, preprocess, lesion, ...
"""
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import FileFormatError, InputError
from ..io import atomic_output_dir
from ..io.maps import write_maps
from ..model import (SALIENCY_COLOURS, SALIENCY_METHODS, SaliencyParams,
                     check_saliency_params, input_window, maps_on_image,
                     resolve_network_targets, saliency_batches, view_geometry)
from ..utils.progress import progress
from ..utils.validation import check_scalar
from ..viz import plot_saliency_overlays
from ._rf import _file_stem
from ._topstim import _short, _thumbnail, network_attrs

__all__ = ["SaliencyResult", "check_saliency_request", "network_saliency",
           "write_saliency_outputs"]

log = logging.getLogger(__name__)

#: Relative completeness error of integrated gradients above which a warning says to
#: raise -steps.
_COMPLETENESS_WARN = 0.01


@dataclass
class SaliencyResult:
    """Every target's maps.

    Attributes
    ----------
    targets : list of Target
    maps : dict of str to ndarray
        ``{method: (n_stim, n_targets, 3, H, W)}`` (``absmax``: no colour axis), float32,
        with respect to pixel values in [0, 1].
    deltas : dict of str to ndarray
        ``{"integrated": (n_stim, n_targets, 2)}``: ``f(image) - f(baseline)`` and the
        completeness error ``sum(map)`` minus it.
    stim_ids : ndarray of str
    paths : list of Path
    image_sizes : ndarray of shape (n_stim, 2)
        Width and height of each photograph.
    windows : ndarray of shape (n_stim, 4)
        :func:`dnnsparse.model.input_window` of each photograph.
    params : SaliencyParams
    colour : str
    attrs : dict
        The network and what was done to it.
    """
    targets: list
    maps: dict
    deltas: dict
    stim_ids: np.ndarray
    paths: list
    image_sizes: np.ndarray
    windows: np.ndarray
    params: SaliencyParams
    colour: str = "rgb"
    attrs: dict = field(default_factory=dict)


def check_saliency_request(methods, params, *, colour="rgb", figure_stim=8):
    """Checks needing no file: methods and their parameters, ``colour``, ``figure_stim``.

    >>> check_saliency_request(["guided"], SaliencyParams(), colour="absmax")[0]
    ['guided']
    """
    methods, params = check_saliency_params(methods, params)
    if colour not in SALIENCY_COLOURS:
        raise InputError(f"-colour {colour}: choose {' or '.join(SALIENCY_COLOURS)}.")
    if isinstance(figure_stim, bool) or not isinstance(figure_stim, (int, np.integer)) \
            or figure_stim < 1:
        raise InputError(f"-figure-stim {figure_stim}: give the number of stimuli per "
                         f"figure, a whole number >= 1.")
    return methods, params


def _image_size(path, row):
    try:
        with Image.open(path) as img:
            return img.size
    except (OSError, ValueError) as exc:
        raise FileFormatError(f"cannot read image {path} (row {row + 1} of the stimulus "
                              f"table): {exc}. Fix or remove it.") from None


def network_saliency(dnn, stim, specs, *, methods=("vanilla",), params=SaliencyParams(),
                     stat="mean", colour="rgb", batch_size=32, device="cpu", workers=None,
                     show_progress=True):
    """Saliency maps of each target for every stimulus.

    Parameters
    ----------
    dnn : DNN
    stim : Stimulus
        Image stimuli (missing files are reported before any computation).
    specs : sequence of str or Target
        Targets (:func:`dnnsparse.model.parse_target`).
    methods : sequence of str, default=("vanilla",)
        Names of :data:`dnnsparse.model.SALIENCY_METHODS`.
    params : SaliencyParams
    stat : str, default="mean"
        Statistic of channel targets written without ``@STAT``.
    colour : {"rgb", "absmax"}, default="rgb"
    batch_size, device, workers, show_progress
        As in :func:`dnnsparse.model.extract`.

    Returns
    -------
    SaliencyResult

    Examples
    --------
    >>> result = network_saliency(load_dnn("alexnet"), Stimulus.load("top.stim.csv"),
    ...                           ["fc3:class=ostrich"], methods=["guided"])  # doctest: +SKIP
    >>> result.maps["guided"].shape                                           # doctest: +SKIP
    (9, 1, 3, 224, 224)
    """
    methods, params = check_saliency_request(methods, params, colour=colour)
    check_scalar(batch_size, name="batch_size", kind=int, min_val=1)
    if len(stim) == 0:
        raise InputError("the stimulus table has no rows.")
    paths = list(stim.check_files())
    dnn.to(device)
    targets = resolve_network_targets(specs, dnn, stat=stat)
    targets = list({t.name: t for t in targets}.values())      # each target once
    sizes = np.array([_image_size(p, i) for i, p in enumerate(paths)], dtype=np.int64)
    geometry = view_geometry(dnn)
    windows = np.array([input_window(size, **geometry) for size in sizes], dtype=np.float64)
    shape = (len(paths), len(targets)) + ((3,) if colour == "rgb" else ()) + dnn.input_size
    maps = {m: np.empty(shape, dtype=np.float32) for m in methods}
    deltas = {m: np.empty((len(paths), len(targets), 2)) for m in methods
              if m == "integrated"}
    with progress(total=len(paths), desc=f"{dnn.name} saliency", unit="img",
                  enabled=show_progress) as bar:
        for start, batch, batch_deltas in saliency_batches(
                dnn, paths, targets, methods, params=params, colour=colour,
                batch_size=batch_size, device=device, workers=workers):
            stop = start + len(next(iter(batch.values())))
            for m, values in batch.items():
                maps[m][start:stop] = values
            for m, values in batch_deltas.items():
                deltas[m][start:stop] = values
            bar.update(stop - start)
    attrs = {**network_attrs(dnn), "input_size": list(dnn.input_size)}
    result = SaliencyResult(targets, maps, deltas, np.asarray(stim.ids, dtype=str), paths,
                            sizes, windows, params, colour, attrs)
    _warn_incomplete(result)
    return result


def _warn_incomplete(result):
    """Log when integrated gradients' completeness error exceeds 1% of f(x) - f(baseline)."""
    for m, (gap, delta) in ((m, np.moveaxis(d, -1, 0)) for m, d in result.deltas.items()):
        with np.errstate(divide="ignore", invalid="ignore"):
            rel = np.where(gap != 0, np.abs(delta) / np.abs(gap), 0.0)
        if np.max(rel) > _COMPLETENESS_WARN:
            log.warning("integrated gradients: the attributions miss f(image) - "
                        "f(baseline) by up to %.1f%%; raise -steps (now %d) for a closer "
                        "integral.", 100 * np.nanmax(rel), result.params.steps)


def _dataset_attrs(result, method, t):
    return {"method": method, "description": SALIENCY_METHODS[method],
            **result.params.attrs(method), "target": t.name, "layer": t.layer,
            "kind": t.kind, "channel": t.channel, "stat": t.stat,
            "colour": result.colour,
            "units": "d target / d pixel value (RGB in [0, 1], network input geometry)"
                     if method != "integrated" else "attribution (target units)"}


def _overlay(values, colour):
    """A 2-D map to show: |value|, the largest over colour channels."""
    values = np.abs(values)
    return values.max(axis=0) if colour == "rgb" else values


def _figure_rows(result, j, n_rows):
    rows = []
    for i in range(min(n_rows, len(result.paths))):
        image = _thumbnail(result.paths[i], size=224)
        shown = np.stack([_overlay(result.maps[m][i, j], result.colour) for m in result.maps])
        # the thumbnail has the photograph's geometry: the window (fractions) fits it
        maps = list(maps_on_image(shown, (image.shape[1], image.shape[0]),
                                  result.windows[i]))
        rows.append((_short(result.stim_ids[i]), image, maps))
    return rows


def write_saliency_outputs(result, out_dir, *, figures=True, figure_stim=8, force=False):
    """Write ``saliency.h5`` and (with ``figures``) ``saliency_<target>.png`` into ``out_dir``.

    Parameters
    ----------
    result : SaliencyResult
    out_dir : path
        Written as a whole (:func:`~dnnsparse.io.atomic_output_dir`).
    figures : bool, default=True
        One figure per target: the first ``figure_stim`` stimuli (rows), the photograph
        and each method's map over it, in the photograph's own geometry.
    figure_stim : int, default=8
    force : bool, default=False

    Returns
    -------
    list of Path
        The files under their final names.

    Examples
    --------
    >>> write_saliency_outputs(result, "sal/", figure_stim=4)      # doctest: +SKIP
    [PosixPath('sal/saliency.h5'), PosixPath('sal/saliency_fc3_class_ostrich.png')]
    """
    methods = list(result.maps)
    check_saliency_request(methods, result.params, colour=result.colour,
                           figure_stim=figure_stim)
    groups = {m: {t.name: result.maps[m][:, j] for j, t in enumerate(result.targets)}
              for m in methods}
    ds_attrs = {m: {t.name: _dataset_attrs(result, m, t) for t in result.targets}
                for m in methods}
    for m, delta in result.deltas.items():
        groups[f"{m}_completeness"] = {t.name: delta[:, j]
                                       for j, t in enumerate(result.targets)}
        ds_attrs[f"{m}_completeness"] = dict.fromkeys(
            groups[f"{m}_completeness"], {"columns": ["f(image) - f(baseline)",
                                                      "sum(map) - (f(image) - f(baseline))"]})
    attrs = {**result.attrs, "methods": methods, "stimID": [str(s) for s in result.stim_ids],
             "image_size": result.image_sizes, "input_window": result.windows}
    with atomic_output_dir(out_dir, force=force) as tmp:
        written = [write_maps(tmp / "saliency.h5", groups, attrs=attrs,
                              dataset_attrs=ds_attrs, force=True)]
        stems = set()
        for j, t in enumerate(result.targets if figures else []):
            stem = base = f"saliency_{_file_stem(t.name)}"
            while stem in stems:             # conv1:2@1,1 and conv1:2,1,1 share a stem
                stem = f"{base}_{len(stems)}"
            stems.add(stem)
            written.append(plot_saliency_overlays(
                tmp / f"{stem}.png", _figure_rows(result, j, figure_stim), methods,
                title=f"{result.attrs.get('net', '')} {t.name}", force=True))
    return [Path(out_dir) / Path(p).relative_to(tmp) for p in written]
