"""Optimal stimuli of targets (``db_optstim``; DNNBrain's SynthesisImage and Fig. 7C).

- :func:`load_init_image` -- a start image, squashed to the optimised size.
- :func:`optimal_stimuli` -- targets resolved at that size, then
  :func:`dnnsparse.model.maximize_activation` (all targets of a batch as one batch of
  images).
- :func:`write_optstim_outputs` -- per target ``optstim_<target>.png`` (the run's
  parameters in its PNG text chunk ``dnnsparse``), the same parameters in a sidecar
  ``optstim_<target>.json``, the activation per step (``optstim_<target>_steps.csv``
  and, with figures, ``optstim_<target>_steps.png``); ``optstim.csv`` summarises the
  targets and ``optstim_images.png`` shows all images side by side.
"""
import json
import logging
from pathlib import Path

import numpy as np
from PIL import Image, PngImagePlugin

from ..errors import FileFormatError, InputError
from ..io import atomic_output, atomic_output_dir, check_input_file
from ..io.table import write_table
from ..model import (check_image_size, make_image_transform, maximize_activation,
                     resolve_optstim_targets)
from ..viz import plot_activation_curve, plot_top_stimuli
from ._rf import _file_stem

__all__ = ["PNG_METADATA_KEY", "load_init_image", "optimal_stimuli", "optstim_stems",
           "write_optstim_outputs"]

log = logging.getLogger(__name__)

#: Text chunk of every written PNG holding the run's parameters as JSON.
PNG_METADATA_KEY = "dnnsparse"


def load_init_image(path, size, *, what="-init image"):
    """The image at ``path`` as a float tensor ``(1, 3, H, W)`` in ``[0, 1]``, squashed to ``size``.

    ``what`` names the option in the error messages.
    """
    import torch
    path = check_input_file(path, what=what)
    try:
        with Image.open(path) as img:
            x = make_image_transform("squash", size=check_image_size(size))(img)
    except (OSError, ValueError, SyntaxError) as exc:
        raise FileFormatError(f"cannot read the {what} {path}: {exc}.") from None
    return (x.to(torch.float32) / 255)[None]


def optimal_stimuli(dnn, specs, *, stat="mean", size=None, init=None, show_progress=True,
                    **options):
    """The optimal image of each target of ``specs``.

    Parameters
    ----------
    dnn : DNN
    specs : sequence of str or Target
        Targets (:func:`dnnsparse.model.parse_target`); repeated targets are optimised
        once.
    stat : str, default="mean"
        Statistic of channel targets written without ``@STAT``.
    size : int or (int, int), optional
        Image size (default: the network's input size).
    init : path, optional
        Start image (default: seeded noise).
    show_progress : bool, default=True
    **options
        Of :func:`dnnsparse.model.maximize_activation` (``steps``, ``lr``, ``l1`` ...).

    Returns
    -------
    OptStimRun
        ``params["init"]`` names the start image's file.
    """
    size = check_image_size(size if size is not None else dnn.input_size)
    start = load_init_image(init, size) if init is not None else None
    targets = resolve_optstim_targets(specs, dnn, size=size, stat=stat)
    targets = list({t.name: t for t in targets}.values())
    run = maximize_activation(dnn, targets, size=size, init=start,
                              show_progress=show_progress, **options)
    if init is not None:
        run.params["init"] = str(init)
    return run


def optstim_stems(targets):
    """``optstim_<target>`` file stems, made unique (``conv1:2@1,1`` and ``conv1:2,1,1``)."""
    stems = []
    for t in targets:
        stem = base = f"optstim_{_file_stem(t.name)}"
        k = 1
        while stem in stems:
            k += 1
            stem = f"{base}_{k}"
        stems.append(stem)
    return stems


def _metadata(run, j, stem):
    t = run.targets[j]
    finite = run.activation[:, j][np.isfinite(run.activation[:, j])]
    return {"target": t.name, "layer": t.layer, "kind": t.kind, "channel": t.channel,
            "row": t.row, "col": t.col, "stat": t.stat, "class_name": t.class_name,
            "image": f"{stem}.png",
            "activation": float(run.final[j]),
            "best_step_activation": float(finite.max()) if finite.size else None,
            "steps_run": int(run.steps[j]), "stopped_early": bool(run.stopped_early[j]),
            "parameters": run.params}


def _write_png(path, image, meta, *, software="dnnsparse db_optstim"):
    """``image`` (uint8 ``(H, W, 3)``) as PNG with ``meta`` as JSON in its text chunk."""
    info = PngImagePlugin.PngInfo()
    info.add_text(PNG_METADATA_KEY, json.dumps(meta, sort_keys=True))
    info.add_text("Software", software)
    with atomic_output(path, force=True) as tmp:
        Image.fromarray(image).save(tmp, format="PNG", pnginfo=info)
    return path


def _write_json(path, meta):
    with atomic_output(path, force=True) as tmp:
        Path(tmp).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return path


def write_optstim_outputs(run, out_dir, *, figures=True, force=False):
    """Write every target's image, parameters, activation table and plot into ``out_dir``.

    Parameters
    ----------
    run : OptStimRun
    out_dir : path
        Written as a whole (:func:`~dnnsparse.io.atomic_output_dir`).
    figures : bool, default=True
        The activation plots and the overview of all images.
    force : bool, default=False

    Returns
    -------
    list of Path
        The files under their final names.
    """
    if len(run.targets) == 0:
        raise InputError("no optimal images to write.")
    stems = optstim_stems(run.targets)
    with atomic_output_dir(out_dir, force=force) as tmp:
        written = []
        summary = {k: [] for k in ("target", "image", "activation", "best_step_activation",
                                   "steps_run", "stopped_early")}
        for j, (t, stem) in enumerate(zip(run.targets, stems)):
            meta = _metadata(run, j, stem)
            written.append(_write_png(tmp / f"{stem}.png", run.images[j], meta))
            written.append(_write_json(tmp / f"{stem}.json", meta))
            n = int(run.steps[j])
            written.append(write_table(tmp / f"{stem}_steps.csv", {
                "step": np.arange(1, n + 1), "activation": run.activation[:n, j],
                "penalty": run.penalty[:n, j]}, force=True))
            if figures:
                written.append(plot_activation_curve(
                    tmp / f"{stem}_steps.png", run.activation[:n, j],
                    penalty=run.penalty[:n, j], references={"saved image": run.final[j]},
                    title=f"{run.params.get('net', '')} {t.name}: activation per step",
                    force=True))
            for key in summary:
                summary[key].append(meta[key])
        written.append(write_table(tmp / "optstim.csv", summary, force=True))
        if figures:
            written.append(plot_top_stimuli(
                tmp / "optstim_images.png",
                {"optimal": [(run.images[j], f"{t.name}\n{run.final[j]:.4g}")
                             for j, t in enumerate(run.targets)]},
                title=f"{run.params.get('net', '')}: optimal images", force=True))
    return [Path(out_dir) / Path(p).relative_to(tmp) for p in written]
