"""Texture synthesis and masked reconstruction (``db_synth``; the Top-K paper's Figs. 2-3).

- :func:`synthesize_texture` -- Gram-matrix texture of a source image
  (:func:`dnnsparse.model.texture_objective`), with the Top-K in place in the network
  (``keep``: Gram matrices of the Top-K positions; ``inverse``: of the rest).
- :func:`reconstruct_image` -- an image whose activations at one layer match a masked
  target activation (:func:`dnnsparse.model.reconstruction_mask`).
- :func:`write_synth_outputs` -- ``<stem>.png`` (the parameters in its PNG text chunk
  ``dnnsparse``), ``<stem>.json`` (the same, sidecar), ``<stem>_loss.csv`` (loss per
  step) and, with figures, ``<stem>_loss.png``.
"""
import logging
from pathlib import Path

import numpy as np

from ..io import atomic_output_dir
from ..io.table import write_table
from ..model import (check_image_size, layer_features, reconstruction_mask,
                     reconstruction_objective, synthesize, texture_objective)
from ..viz import plot_activation_curve
from ._optstim import _write_json, _write_png, load_init_image

__all__ = ["reconstruct_image", "synthesize_texture", "write_synth_outputs"]

log = logging.getLogger(__name__)


def synthesize_texture(dnn, source, layers, *, size, show_progress=True, **options):
    """A texture matching the Gram matrices of ``layers`` on image file ``source``.

    Parameters
    ----------
    dnn : DNN
        With any Top-K already inserted (:func:`dnnsparse.model.insert_topk`).
    source : path
        Squashed to ``size``.
    layers : list of str
    size : int or (int, int)
    **options
        Of :func:`dnnsparse.model.synthesize` (``steps``, ``lr``, ``method``, ``seed``...).

    Returns
    -------
    SynthRun
        ``extra["reduction"]``: final / initial loss.
    """
    import torch
    size = check_image_size(size)
    for layer in layers:
        dnn.resolve(layer)
    device = torch.device(options.get("device", "cpu"))
    target = load_init_image(source, size, what="-source image").to(device)
    dnn.to(device)
    run = synthesize(dnn, texture_objective(dnn, layers, target), size=size,
                     show_progress=show_progress, desc=f"{dnn.name} texture", **options)
    run.params.update(task="texture", source=str(source), layers=list(layers))
    run.extra["reduction"] = run.final / run.initial if run.initial else float("nan")
    return run


def reconstruct_image(dnn, image, layer, *, mask="identity", fraction=0.1, size,
                      show_progress=True, **options):
    """An image whose ``layer`` activations match ``mask * X(image)``.

    Parameters
    ----------
    dnn : DNN
    image : path
    layer : str
    mask : {"topk", "nontopk", "identity", "random"}
    fraction : float in (0, 1]
        Of the Top-K mask (and the size of the random one, seeded by ``seed``).
    size : int or (int, int)
    **options
        Of :func:`dnnsparse.model.synthesize`.

    Returns
    -------
    SynthRun
        ``extra``: ``mask`` (bool ndarray ``(c, h, w)``), ``relative_error``
        ``||X(saved) - M X(T)|| / ||M X(T)||`` and ``relative_error_masked`` (only
        over the masked positions).
    """
    import torch
    size = check_image_size(size)
    dnn.resolve(layer)
    device = torch.device(options.get("device", "cpu"))
    dnn.to(device)
    target_img = load_init_image(image, size, what="-image").to(device)
    with torch.no_grad():
        x_t = layer_features(dnn, target_img, [layer])[layer]
    m = reconstruction_mask(x_t, mask, fraction=fraction, seed=options.get("seed", 0))
    target = x_t * m
    run = synthesize(dnn, reconstruction_objective(dnn, layer, target), size=size,
                     show_progress=show_progress, desc=f"{dnn.name} {layer} {mask}", **options)
    with torch.no_grad():
        x_r = layer_features(dnn, torch.from_numpy(run.image).permute(2, 0, 1)[None]
                             .to(device, torch.float32) / 255, [layer])[layer]
    d = (x_r - target).double()
    ref = float(target.double().norm())
    run.extra.update(
        mask=m[0].cpu().numpy(),
        relative_error=float(d.norm()) / ref if ref else float("nan"),
        relative_error_masked=float(d[m].norm()) / ref if ref else float("nan"))
    run.params.update(task="reconstruct", image=str(image), layer=layer, mask=mask,
                      fraction=float(fraction), mask_positions=int(m.sum()))
    return run


def write_synth_outputs(run, out_dir, *, stem, figures=True, force=False):
    """Write the image (metadata in the PNG and a JSON sidecar) and the loss curve.

    Returns
    -------
    list of Path
        The files under their final names.
    """
    meta = {"image": f"{stem}.png", "initial_loss": run.initial, "final_loss": run.final,
            "steps_run": int(len(run.loss)), "parameters": run.params,
            **{k: v for k, v in run.extra.items() if not isinstance(v, np.ndarray)}}
    with atomic_output_dir(out_dir, force=force) as tmp:
        written = [_write_png(tmp / f"{stem}.png", run.image, meta, software="dnnsparse db_synth"),
                   _write_json(tmp / f"{stem}.json", meta),
                   write_table(tmp / f"{stem}_loss.csv", {
                       "step": np.arange(1, len(run.loss) + 1), "loss": run.loss},
                       force=True)]
        if "mask" in run.extra:
            path = tmp / f"{stem}_mask.npy"
            np.save(path, run.extra["mask"])
            written.append(path)
        if figures:
            what = run.params.get("task", "")
            written.append(plot_activation_curve(
                tmp / f"{stem}_loss.png", run.loss, ylabel="loss",
                references={"saved image": run.final},
                title=f"{run.params.get('net', '')} {what}: loss per step", force=True))
    return [Path(out_dir) / Path(p).relative_to(tmp) for p in written]
