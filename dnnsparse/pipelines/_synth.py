"""Texture synthesis and masked reconstruction (``db_synth``; the Top-K paper's Figs. 2-3).

- :func:`synthesize_texture` -- Gram-matrix texture of a source image
  (:func:`dnnsparse.model.texture_objective`), with the Top-K in place in the network
  (``keep``: Gram matrices of the Top-K positions; ``inverse``: of the rest).
- :func:`reconstruct_image` -- an image whose activations at one layer match a masked
  target activation (:func:`dnnsparse.model.reconstruction_mask`).
- :func:`stylise_pairs`, :func:`stylise_stimuli` -- stylised copies of a stimulus
  table (the Top-K paper's Fig. 6): every content row with a style row, by Gatys et
  al.'s optimisation (:class:`dnnsparse.model.StyleObjective`) or AdaIN
  (:class:`dnnsparse.model.AdaIN`), written as a new image stimulus table.
- :func:`write_synth_outputs` -- ``<stem>.png`` (the parameters in its PNG text chunk
  ``dnnsparse``), ``<stem>.json`` (the same, sidecar), ``<stem>_loss.csv`` (loss per
  step) and, with figures, ``<stem>_loss.png``.
"""
import logging
import re
from pathlib import Path

import numpy as np

from ..base import Stimulus
from ..errors import InputError
from ..io import atomic_output_dir
from ..io.table import write_table
from ..model import (StyleObjective, check_image_size, layer_features, reconstruction_mask,
                     reconstruction_objective, synthesize, texture_objective)
from ..utils.progress import progress
from ..viz import plot_activation_curve
from ._optstim import _write_json, _write_png, load_init_image
from ._topstim import run_provenance

__all__ = ["PAIRINGS", "reconstruct_image", "stylise_pairs", "stylise_stimuli",
           "synthesize_texture", "write_synth_outputs"]

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


#: How content rows meet style rows in :func:`stylise_pairs`.
PAIRINGS = ("cycle", "all", "random")


def stylise_pairs(n_content, n_style, pairing="cycle", *, seed=0):
    """``[(content row, style row), ...]`` of a stylised set.

    ``cycle``: content row ``i`` with style row ``i mod n_style``; ``all``: every
    content row with every style row (content-major); ``random``: each content row
    with a style row drawn uniformly with ``seed``.

    Examples
    --------
    >>> stylise_pairs(3, 2)
    [(0, 0), (1, 1), (2, 0)]
    >>> stylise_pairs(2, 2, "all")
    [(0, 0), (0, 1), (1, 0), (1, 1)]
    """
    if pairing not in PAIRINGS:
        raise InputError(f"-pairing {pairing!r}: choose {', '.join(PAIRINGS)}.")
    if n_content < 1 or n_style < 1:
        raise InputError("stylising needs at least one content and one style stimulus.")
    if pairing == "cycle":
        return [(i, i % n_style) for i in range(n_content)]
    if pairing == "all":
        return [(i, j) for i in range(n_content) for j in range(n_style)]
    draws = np.random.default_rng(int(seed)).integers(0, n_style, n_content)
    return [(i, int(j)) for i, j in enumerate(draws)]


_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


def _stem(stim_id):
    return _UNSAFE.sub("_", Path(str(stim_id)).stem)[:40] or "x"


def _image_batch(uint8):
    import torch
    return torch.from_numpy(np.ascontiguousarray(uint8)).permute(2, 0, 1)[None] \
        .to(torch.float32) / 255


def _to_uint8(images):
    import torch
    return torch.round(images[0].detach().cpu().clamp(0, 1) * 255).to(torch.uint8) \
        .permute(1, 2, 0).numpy()


def stylise_stimuli(content, style, out_dir, *, dnn=None, content_layer=None,
                    style_layers=(), style_weight=1.0, method="gatys", adain=None,
                    alpha=1.0, pairing="cycle", seed=0, size=224, init="noise",
                    force=False, show_progress=True, command=None, files=None,
                    **options):
    """Stylised copies of the ``content`` stimuli with the ``style`` stimuli's styles.

    Parameters
    ----------
    content, style : Stimulus
        Image tables (:meth:`Stimulus.check_files` is called first).
    out_dir : path
        Written as a whole (:func:`~dnnsparse.io.atomic_output_dir`):
        ``images/NNNNN_<content>_<style>.png``; ``stylised.stim.csv`` (``path=images``,
        the content rows' columns -- labels, conditions, a ``shape`` column -- plus
        ``content_stim``, ``style_stim``, the style rows' columns as ``style_<name>``
        and, when the style table has one and the content table not, ``texture``: a
        cue-conflict table ``db_topk`` reads);
        ``stylise_losses.csv`` (per image: start and final content and style losses,
        measured in ``dnn``; NaN where not measured) and ``stylise.json``
        (:func:`run_provenance`).
    dnn : DNN, optional
        The network whose features define (``gatys``) or measure (``adain``) the
        losses; required for ``gatys``.
    content_layer : str
    style_layers : list of str
    style_weight : float, default=1.0
        Of :class:`dnnsparse.model.StyleObjective`.
    method : {"gatys", "adain"}
    adain : AdaIN, optional
        Required for ``adain`` (:func:`dnnsparse.model.load_adain`).
    alpha : float in [0, 1], default=1.0
        AdaIN's style strength.
    pairing : {"cycle", "all", "random"}
        :func:`stylise_pairs` (``random`` seeded by ``seed``).
    seed : int
        Also the start noise of ``init="noise"``.
    size : int or (int, int)
        Every image is squashed to it.
    init : {"noise", "content"}, default="noise"
        Start of the optimisation: seeded noise (Gatys et al.) or the content image.
    **options
        Of :func:`dnnsparse.model.synthesize` (``steps``, ``lr``, ``method`` is
        ``optimizer`` here, ``param``, ``noise_sd``, ``device``).

    Returns
    -------
    dict
        ``table`` (Path of the stimulus table), ``losses`` (dict of arrays), ``n``.
    """
    import torch
    if method not in ("gatys", "adain"):
        raise InputError(f"-method {method!r}: choose gatys or adain.")
    if method == "gatys" and dnn is None:
        raise InputError("-method gatys needs a network (-net).")
    if method == "adain" and adain is None:
        raise InputError("-method adain needs the AdaIN weights (load_adain).")
    if init not in ("content", "noise"):
        raise InputError(f"-init {init!r}: choose content or noise.")
    size = check_image_size(size)
    measure = dnn is not None
    if measure:
        for layer in [content_layer, *style_layers]:
            dnn.resolve(layer)
        if not style_layers:
            raise InputError("give at least one -style-layers layer.")
    for table, what in ((content, "-content"), (style, "-style")):
        if table.type != "image":
            raise InputError(f"{what} table is of type={table.type}; give an image table.")
        table.check_files()
    pairs = stylise_pairs(len(content), len(style), pairing, seed=seed)
    device = torch.device(options.pop("device", "cpu"))
    optimizer = options.pop("optimizer", "lbfgs")
    if dnn is not None:
        dnn.to(device)
    if adain is not None:
        adain.to(device)
    added = ["content_stim", "style_stim", *(f"style_{k}" for k in style.columns)]
    for extra in added:
        if extra in content.columns:
            raise InputError(f"the -content table already has a column {extra!r}, which "
                             f"the stylised table adds; rename it.")
    c_paths, s_paths = content.paths, style.paths
    cache = {}      # the style images (they repeat) and the last content image

    def load(kind, i):
        key = (kind, i)
        if key not in cache:
            if kind == "c":
                for k in [k for k in cache if k[0] == "c"]:
                    del cache[k]
            path = (c_paths if kind == "c" else s_paths)[i]
            what = f"{'content' if kind == 'c' else 'style'} image {path.name}"
            cache[key] = load_init_image(path, size, what=what).to(device)
        return cache[key]

    cols = {k: [] for k in ("image", "content_stim", "style_stim", "content_start",
                            "content_final", "style_start", "style_final")}
    ids, rows = [], []
    params = {}
    with atomic_output_dir(out_dir, force=force) as tmp:
        (tmp / "images").mkdir()
        with progress(total=len(pairs), desc="stylising", unit="image",
                      enabled=show_progress) as bar:
            for n, (ci, si) in enumerate(pairs):
                c_img, s_img = load("c", ci), load("s", si)
                obj = (StyleObjective(dnn, content=c_img, style=s_img,
                                      content_layer=content_layer, style_layers=style_layers,
                                      style_weight=style_weight) if measure else None)
                if method == "gatys":
                    run = synthesize(dnn, obj, size=size, seed=seed, method=optimizer,
                                     init=c_img if init == "content" else None,
                                     device=device, show_progress=False, **options)
                    image, params = run.image, run.params
                else:
                    image = _to_uint8(adain.stylise(c_img, s_img, alpha))
                name = f"{n + 1:05d}_{_stem(content.ids[ci])}_{_stem(style.ids[si])}.png"
                _write_png(tmp / "images" / name, image,
                           {"content": str(content.ids[ci]), "style": str(style.ids[si]),
                            "method": method}, software="dnnsparse db_synth stylise")
                losses = [np.nan] * 4
                if measure:
                    with torch.no_grad():
                        first = (c_img if init == "content" or method == "adain" else
                                 _start_noise(size, seed, options, device))
                        c0, s0 = obj.parts(first) if method == "gatys" else (np.nan, np.nan)
                        c1, s1 = obj.parts(_image_batch(image).to(device))
                    losses = [float(c0), float(c1), float(s0), float(s1)]
                for key, value in zip(("image", "content_stim", "style_stim", "content_start",
                                       "content_final", "style_start", "style_final"),
                                      (name, content.ids[ci], style.ids[si], *losses)):
                    cols[key].append(value)
                ids.append(name)
                rows.append(ci)
                bar.update(1)
        columns = {k: v[rows] for k, v in content.columns.items()}
        for extra in ("content_stim", "style_stim"):
            columns[extra] = np.asarray(cols[extra], dtype=str)
        styles = [si for _, si in pairs]
        for k, v in style.columns.items():
            columns[f"style_{k}"] = v[styles]
        if "texture" in style.columns and "texture" not in columns:
            columns["texture"] = style.columns["texture"][styles]   # cue conflict (db_topk)
        header = dict(content.header)
        header["stylised"] = f"{method} style from {len(style)} stimuli, pairing {pairing}"
        Stimulus(ids, root=tmp / "images", type="image", columns=columns,
                 header=header).save(tmp / "stylised.stim.csv")
        losses = {k: np.asarray(v, dtype=np.float64) for k, v in cols.items()
                  if k.endswith(("_start", "_final"))}
        write_table(tmp / "stylise_losses.csv",
                    {"image": np.asarray(cols["image"], dtype=str), **losses}, force=True)
        attrs = {"source": "network", "net": dnn.name if dnn is not None else None,
                 "weights": dnn.weights if dnn is not None else None}
        request = dict(method=method, pairing=pairing, seed=int(seed), size=list(size),
                       content_layer=content_layer, style_layers=list(style_layers),
                       style_weight=float(style_weight), n_images=len(pairs))
        if method == "gatys":
            request.update(init=init, optimisation=params)
        else:
            request.update(alpha=float(alpha))
        _write_json(tmp / "stylise.json",
                    run_provenance(attrs, command=command, files=files, **request))
    return {"table": Path(out_dir) / "stylised.stim.csv", "losses": losses, "n": len(pairs)}


def _start_noise(size, seed, options, device):
    """The start image :func:`synthesize` draws for ``seed`` (noise start)."""
    import torch
    from ..model import make_image_param
    p = make_image_param(options.get("param", "pixel"), n=1, size=size,
                         sd=float(options.get("noise_sd", 1.0)), device=device,
                         generator=torch.Generator().manual_seed(int(seed)))
    return p()
