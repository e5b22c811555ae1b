"""Image synthesis through a network's features: Gram textures and masked reconstruction.

The Top-K paper's §3.2 (texture synthesis, Gatys et al. 2015, with and without the
Top-K responses) and §3.3 (reconstruction of an image from one layer's activations
through a Top-K, non-Top-K, identity or random mask), on the one image optimiser of
:mod:`._optimize` and the Top-K of :mod:`._topk`.

- :func:`gram_matrix` -- ``(n, c, h, w) -> (n, c, c)``, ``F F^T / (h w)``.
- :func:`layer_features` -- differentiable ``{layer: (n, c, h, w)}`` in one pass.
- :func:`texture_objective` -- ``images -> (n,)``: the squared difference of the
  layers' Gram matrices from the source's, relative to the source's, summed over
  layers. Top-K inserted in the network (:func:`insert_topk`, modes ``keep``/``inverse``) is part of the features,
  so the Gram matrices are those of the kept (or the non-kept) positions.
- :data:`RECONSTRUCTION_MASKS`, :func:`reconstruction_mask` -- the masks of Fig. 3.
- :func:`reconstruction_objective` -- ``images -> (n,)``: ``||X(I) - M X(T)||^2 / ||M X(T)||^2``
  (the paper's §3.3 objective: the whole activation of the image is driven towards
  the masked target).
- :class:`StyleObjective` -- Gatys et al.'s style transfer: a content loss at one
  layer plus weighted Gram losses of a style image (``db_synth stylise``).
- :func:`synthesize` -- the run (seeded noise → :func:`optimize`) for either objective.
"""
import logging
from dataclasses import dataclass, field

import numpy as np
import torch

from ..errors import InputError
from ..utils.validation import check_choice, check_scalar
from ._hooks import LayerCapture, as_4d
from ._optimize import (OPTIMIZE_METHODS, PARAMETERISATIONS, frozen_parameters,
                        make_image_param, optimize)
from ._optstim import check_image_size, network_input
from ._topk import topk_count, topk_mask

__all__ = ["RECONSTRUCTION_MASKS", "StyleObjective", "SynthRun", "check_synth_options",
           "gram_matrix", "layer_features", "reconstruction_mask", "reconstruction_objective",
           "synthesize", "texture_objective"]

log = logging.getLogger(__name__)


def gram_matrix(features):
    """Gram matrices normalised by the number of positions.

    Parameters
    ----------
    features : tensor of shape (n, c, h, w)

    Returns
    -------
    tensor of shape (n, c, c)
        ``G[i, a, b] = sum_p F[i, a, p] F[i, b, p] / (h w)``.

    Examples
    --------
    >>> gram_matrix(torch.ones(1, 2, 2, 2)).tolist()
    [[[1.0, 1.0], [1.0, 1.0]]]
    """
    f = features.flatten(2)
    return f @ f.transpose(1, 2) / f.shape[-1]


def layer_features(dnn, images, layers):
    """``{layer: output (n, c, h, w)}`` of ``images`` in ``[0, 1]``, differentiable.

    One forward pass of the normalised input (:func:`network_input`), stopping after
    the deepest layer; outputs are copied in the hook (a later in-place ReLU cannot
    change them) and Top-K hooks in place act before the copy.
    """
    layers = list(dict.fromkeys(layers))
    with LayerCapture(dnn.register_layer_hook,
                      dict.fromkeys(layers, lambda out: as_4d(out).clone())) as capture:
        captured = capture.run(dnn.module, network_input(dnn, images))
    missing = [layer for layer in layers if layer not in captured]
    if missing:
        raise InputError(f"layers {missing} were not reached in a forward pass of "
                         f"{dnn.name}; choose layers its forward() uses.")
    return captured


def _gram_targets(dnn, layers, source, what="source"):
    """``({layer: Gram of source}, {layer: ||Gram||_F^2})``, refusing all-zero layers."""
    with torch.no_grad():
        targets = {l: gram_matrix(v) for l, v in layer_features(dnn, source, layers).items()}
    norms = {l: float(g.double().square().sum()) for l, g in targets.items()}
    empty = [l for l, v in norms.items() if not v > 0]
    if empty:
        raise InputError(f"the {what}'s activations at {', '.join(empty)} are all zero "
                         f"(after Top-K): nothing to match; choose other layers.")
    return targets, norms


def _gram_loss(feats, targets, norms):
    return sum((gram_matrix(feats[l]) - targets[l]).square().sum(dim=(1, 2)) / norms[l]
               for l in targets)


def texture_objective(dnn, layers, source):
    """The Gram loss ``images (n, 3, H, W) -> (n,)`` against ``source`` ``(1, 3, H', W')``.

    ``loss = sum_l ||G_l(I) - G_l(T)||_F^2 / ||G_l(T)||_F^2`` with :func:`gram_matrix`:
    each layer's squared error relative to the source's Gram matrix, so layers weigh
    alike whatever their scale (and L-BFGS sees gradients of a usable size).

    Raises
    ------
    InputError
        When a layer's Gram matrix of the source is all zero (nothing to match).
    """
    targets, norms = _gram_targets(dnn, layers, source)

    def objective(images):
        return _gram_loss(layer_features(dnn, images, layers), targets, norms)
    return objective


class StyleObjective:
    """Gatys et al.'s (2016) style-transfer loss, ``images (n, 3, H, W) -> (n,)``.

    ``loss = content + style_weight * style`` with ``content = ||X_c(I) - X_c(C)||^2 /
    ||X_c(C)||^2`` at ``content_layer`` and ``style`` the Gram loss of
    :func:`texture_objective` against the style image at ``style_layers``; one
    forward pass computes both.

    Parameters
    ----------
    dnn : DNN
    content, style : tensor of shape (1, 3, H, W) in [0, 1]
        The style image may have another size.
    content_layer : str
    style_layers : list of str
    style_weight : float, default=1.0

    Examples
    --------
    >>> obj = StyleObjective(dnn, content=c, style=s, content_layer="conv4_relu",
    ...                      style_layers=["conv1_relu", "conv2_relu"])  # doctest: +SKIP
    >>> content_loss, style_loss = obj.parts(images)                       # doctest: +SKIP
    """

    def __init__(self, dnn, *, content, style, content_layer, style_layers, style_weight=1.0):
        check_scalar(style_weight, name="-style-weight", min_val=0)
        if not np.isfinite(style_weight):
            raise InputError(f"-style-weight {style_weight}: give a finite number.")
        self.dnn, self.style_weight = dnn, float(style_weight)
        self.content_layer, self.style_layers = content_layer, list(style_layers)
        self.layers = list(dict.fromkeys([content_layer, *self.style_layers]))
        self.targets, self.norms = _gram_targets(dnn, self.style_layers, style, "style image")
        with torch.no_grad():
            self.content = layer_features(dnn, content, [content_layer])[content_layer]
        self.content_norm = float(self.content.double().square().sum())
        if not self.content_norm > 0:
            raise InputError(f"the content image's activations at {content_layer} are all "
                             f"zero: nothing to keep; choose another -content-layer.")

    def parts(self, images):
        """``(content loss (n,), style loss (n,))``."""
        feats = layer_features(self.dnn, images, self.layers)
        content = (feats[self.content_layer] - self.content).square().sum(dim=(1, 2, 3))
        return content / self.content_norm, _gram_loss(feats, self.targets, self.norms)

    def __call__(self, images):
        content, style = self.parts(images)
        return content + self.style_weight * style


def _topk_positions(x, fraction):
    return topk_mask(x, fraction)


def _random_positions(x, fraction, generator):
    """``k`` random positions per image and channel (as many as the Top-K mask keeps)."""
    n, c = x.shape[:2]
    m = x[0, 0].numel()
    k = topk_count(fraction, m)
    order = torch.rand((n, c, m), generator=generator, dtype=torch.float64).argsort(dim=-1)
    mask = torch.zeros((n, c, m), dtype=torch.bool)
    mask.scatter_(-1, order[..., :k], True)
    return mask.view(x.shape).to(x.device)


#: Mask kind → ``(activations, fraction, generator) -> bool mask of the same shape``.
RECONSTRUCTION_MASKS = {
    "topk": lambda x, f, g: _topk_positions(x, f),
    "nontopk": lambda x, f, g: ~_topk_positions(x, f),
    "identity": lambda x, f, g: torch.ones_like(x, dtype=torch.bool),
    "random": _random_positions,
}


def reconstruction_mask(activations, kind, *, fraction=0.1, seed=0):
    """The mask of ``kind`` for activations ``(n, c, h, w)``.

    ``topk``: :func:`topk_mask` (the ``k = max(1, int(fraction h w))`` largest
    ``|x|`` per channel, ties to the lower index); ``nontopk``: its complement;
    ``identity``: all positions; ``random``: ``k`` positions per channel drawn with
    ``seed`` (the size of the Top-K mask, for control).

    Examples
    --------
    >>> x = torch.arange(8.).view(1, 2, 2, 2)
    >>> reconstruction_mask(x, "topk", fraction=0.5).sum().item()
    4
    """
    check_choice(kind, RECONSTRUCTION_MASKS, name="mask")
    _check_fraction(fraction)
    gen = torch.Generator().manual_seed(int(seed))
    return RECONSTRUCTION_MASKS[kind](activations, float(fraction), gen)


def _check_fraction(fraction):
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float, np.floating)) \
            or not np.isfinite(fraction) or not 0 < fraction <= 1:
        raise InputError(f"fraction {fraction!r}: give a number in (0, 1].")
    return float(fraction)


def reconstruction_objective(dnn, layer, target):
    """``images -> (n,)``: ``||X(I) - target||^2 / ||target||^2`` at ``layer``.

    ``target`` ``(1, c, h, w)`` is the masked target activation ``M * X(T)`` (the
    paper's §3.3: the whole layer of the image is driven towards it); the value is
    the squared relative error.

    Raises
    ------
    InputError
        When the masked target is all zero.
    """
    norm = float(target.double().square().sum())
    if not norm > 0:
        raise InputError(f"the masked target activation at {layer} is all zero: nothing "
                         f"to reconstruct; choose another layer, mask or image.")

    def objective(images):
        x = layer_features(dnn, images, [layer])[layer]
        return (x - target).square().sum(dim=(1, 2, 3)) / norm
    return objective


@dataclass
class SynthRun:
    """A synthesised image and how it was found.

    Attributes
    ----------
    image : ndarray of shape (H, W, 3), uint8
    loss : ndarray of shape (n_steps,), float64
        The objective at every step.
    initial : float
        The objective of the start (noise) image.
    final : float
        The objective of the saved ``uint8`` image.
    params : dict
    extra : dict
        Task-specific results (the mask, relative errors).
    """
    image: np.ndarray
    loss: np.ndarray
    initial: float
    final: float
    params: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)


def check_synth_options(*, steps, lr, method, param, seed, noise_sd):
    """The optimisation options (one line each)."""
    check_scalar(steps, name="-steps", kind=(int, np.integer), min_val=1)
    check_scalar(lr, name="-lr (learning rate)", min_val=0, include_min=False)
    if not np.isfinite(lr):
        raise InputError(f"-lr {lr}: give a finite learning rate.")
    if method not in OPTIMIZE_METHODS:
        raise InputError(f"-method {method!r}: choose {' or '.join(OPTIMIZE_METHODS)}.")
    if param not in PARAMETERISATIONS:
        raise InputError(f"-param {param!r}: choose {' or '.join(PARAMETERISATIONS)}.")
    check_scalar(seed, name="-seed", kind=(int, np.integer), min_val=0)
    check_scalar(noise_sd, name="-noise-sd", min_val=0)
    if not np.isfinite(noise_sd):
        raise InputError(f"-noise-sd {noise_sd}: give a finite number.")


def synthesize(dnn, objective, *, size, steps=100, lr=1.0, method="lbfgs", param="pixel",
               noise_sd=1.0, seed=0, init=None, device="cpu", show_progress=True,
               desc="synthesising"):
    """Minimise ``objective`` from seeded noise (or ``init``); return :class:`SynthRun`.

    Parameters
    ----------
    dnn : DNN
    objective : callable
        ``images (1, 3, H, W) in [0, 1] -> (1,)`` (:func:`texture_objective`,
        :func:`reconstruction_objective`).
    size : (int, int)
    steps, lr, method
        Of :func:`optimize` (L-BFGS: one iteration per step, as the paper's 100 steps
        at learning rate 1).
    param : {"pixel", "fourier"}, default="pixel"
    noise_sd : float, default=1.0
        Start noise in raw (pre-sigmoid) space, seeded by ``seed``.
    seed : int, default=0
    init : tensor of shape (1, 3, H, W) in [0, 1], optional
        Start image instead of noise (e.g. the content image of a style transfer).

    Examples
    --------
    >>> run = synthesize(dnn, texture_objective(dnn, ["conv1_relu"], src),
    ...                  size=(64, 64), steps=20)  # doctest: +SKIP
    """
    check_synth_options(steps=steps, lr=lr, method=method, param=param, seed=seed,
                        noise_sd=noise_sd)
    size = check_image_size(size)
    device = torch.device(device)
    dnn.to(device)
    if init is None:
        p = make_image_param(param, n=1, size=size, sd=float(noise_sd), device=device,
                             generator=torch.Generator().manual_seed(int(seed)))
    else:
        if tuple(init.shape[2:]) != size:
            raise InputError(f"start image of size {tuple(init.shape[2:])}; expected {size}.")
        p = make_image_param(param, init=init, device=device)
    with frozen_parameters(dnn.module):
        with torch.no_grad():
            initial = float(objective(p())[0])
        result = optimize(p, objective, steps=int(steps), lr=float(lr), method=method,
                          show_progress=show_progress, desc=desc)
        saved = torch.round(result.images * 255).to(torch.uint8)
        with torch.no_grad():
            final = float(objective((saved.float() / 255).to(device))[0])
    params = {"net": dnn.name, "weights": dnn.weights, "weights_sha256": dnn.weights_sha256,
              "lesion": "; ".join(dnn.lesions), **dnn.topk_attrs(), "size": list(size),
              "init": "noise" if init is None else "image", "param": param,
              "noise_sd": float(noise_sd),
              "steps": int(steps), "lr": float(lr), "optimizer": method, "seed": int(seed),
              "device": str(device), "torch": torch.__version__}
    return SynthRun(saved[0].permute(1, 2, 0).numpy(), result.objective[:, 0], initial,
                    final, params)
