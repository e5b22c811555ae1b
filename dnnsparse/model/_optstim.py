"""Activation maximisation: the optimal image of each target (``db_optstim``; Fig. 7C).

DNNBrain's ``SynthesisImage`` on the reusable pieces of :mod:`._optimize`: each target
gets its own image (from seeded noise, or from a given image), all targets of a batch
are optimised together as one batch of images (image ``i`` for target ``i``; the loss
is a sum over images, so they do not interact), and the objective is the target's
value (:meth:`Target.values`) of the network's input made from the image.

- :func:`network_input` -- images in ``[0, 1]`` → the network's normalised input
  (differentiable).
- :func:`activation_objective` -- the objective callable ``images -> (n,)``.
- :func:`resolve_optstim_targets` -- :func:`resolve_targets` checked at the image size
  to be optimised (a unit's position must lie in the map of that size; an image too
  small for the network is one line).
- :func:`maximize_activation` -- the whole run; returns :class:`OptStimRun`.
"""
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import torch

from ..errors import InputError
from ..utils.validation import check_scalar
from ._optimize import (PARAMETERISATIONS, Compose, Jitter, RandomAffine, frozen_parameters,
                        make_penalties, optimize)
from ._targets import parse_target, resolve_targets, target_responses

__all__ = ["OptStimRun", "activation_objective", "check_image_size", "maximize_activation",
           "network_input", "resolve_optstim_targets"]

log = logging.getLogger(__name__)


def network_input(dnn, images):
    """``(images - mean) / std`` with ``dnn``'s normalisation; ``images`` in ``[0, 1]``.

    The float counterpart of :meth:`DNN.normalize` (which takes ``uint8`` batches).
    """
    mean = torch.as_tensor(dnn.mean, dtype=images.dtype, device=images.device)[:, None, None]
    std = torch.as_tensor(dnn.std, dtype=images.dtype, device=images.device)[:, None, None]
    return (images - mean) / std


def activation_objective(dnn, targets):
    """The objective ``images (n, 3, H, W) -> (n,)``: target ``i``'s value on image ``i``.

    One forward pass per call (stopping after the deepest target layer,
    :func:`target_responses`); ``n`` must equal ``len(targets)``.
    """
    targets = list(targets)

    def objective(images):
        if images.shape[0] != len(targets):
            raise ValueError(f"{images.shape[0]} images for {len(targets)} targets")
        return target_responses(dnn, network_input(dnn, images), targets).diagonal()
    return objective


def check_image_size(size):
    """``size`` as ``(H, W)`` of whole numbers >= 1 (an int gives a square)."""
    size = (size, size) if isinstance(size, (int, np.integer)) else tuple(size)
    if len(size) != 2:
        raise InputError(f"image size {size}: give one number or HEIGHT,WIDTH.")
    for s in size:
        check_scalar(s, name="image size", kind=(int, np.integer), min_val=1)
    return tuple(int(s) for s in size)


class _ShapesAt(Mapping):
    """``{layer: (n_chn, n_row, n_col)}`` at an image size, computed on first look-up.

    Lets :func:`resolve_targets` check layer names first (with its friendly message)
    and only then run the one forward pass the shapes need.
    """

    def __init__(self, dnn, layers, size):
        self._dnn, self._layers, self._size, self._shapes = dnn, layers, size, None

    def _compute(self):
        if self._shapes is None:
            x = torch.zeros((1, 3) + self._size, device=self._dnn.device)
            try:
                with torch.inference_mode():
                    out = self._dnn.forward_layers(x, self._layers)
            except RuntimeError as exc:
                h, w = self._size
                raise InputError(f"{self._dnn.name} cannot run on a {h}x{w} image (the image "
                                 f"is too small for the network): "
                                 f"{' '.join(str(exc).split())[:200]}; give a larger -size."
                                 ) from None
            self._shapes = {layer: tuple(v.shape[1:]) for layer, v in out.items()}
        return self._shapes

    def __getitem__(self, layer):
        return self._compute()[layer]

    def __iter__(self):
        return iter(self._compute())

    def __len__(self):
        return len(self._compute())


def resolve_optstim_targets(specs, dnn, *, size, stat="mean"):
    """:func:`resolve_targets` with the layers' shapes at image ``size`` (H, W).

    Raises
    ------
    InputError, UnknownLayerError
        Bad target (spelling, layer, channel/position/class) or an image too small for
        the network, in one line.
    """
    size = check_image_size(size)
    layers = []
    for spec in specs:
        t = spec if not isinstance(spec, str) else parse_target(spec, stat=stat)
        layers.append(t.layer)
    shapes = _ShapesAt(dnn, list(dict.fromkeys(layers)), size)
    return resolve_targets(specs, dnn, stat=stat, shapes=shapes)


def _seed(seed, *keys):
    """An independent 32-bit seed for ``(seed, *keys)`` (``numpy.random.SeedSequence``)."""
    return int(np.random.SeedSequence([int(seed), *keys]).generate_state(1)[0])


@dataclass
class OptStimRun:
    """Optimal images of targets, and how they were found.

    Attributes
    ----------
    targets : list of Target
    images : ndarray of shape (n_targets, H, W, 3), uint8
        The images as saved (each target's image when it stopped).
    activation : ndarray of shape (n_steps, n_targets), float64
        The target's value at every step (of the transformed image the gradient was
        taken of); NaN after a target stopped.
    penalty : ndarray of shape (n_steps, n_targets), float64
        Weighted sum of the penalties at every step.
    steps : ndarray of shape (n_targets,), int
    stopped_early : ndarray of shape (n_targets,), bool
    final : ndarray of shape (n_targets,), float64
        The target's value of the saved ``uint8`` image, untransformed.
    params : dict
        Every option of the run (for the PNG metadata and the sidecar JSON).
    """
    targets: list
    images: np.ndarray
    activation: np.ndarray
    penalty: np.ndarray
    steps: np.ndarray
    stopped_early: np.ndarray
    final: np.ndarray
    params: dict = field(default_factory=dict)


def _start(param_cls, targets, first, size, init, seed, device, kwargs):
    """Raw parameters of the batch: the init image, or each target's own seeded noise."""
    n = len(targets)
    if init is not None:
        p = param_cls(torch.zeros(param_cls.raw_shape(n, size), device=device), size, **kwargs)
        return p.assign(init.to(device))
    raws = [param_cls.raw_shape(1, size) for _ in targets]
    raws = [torch.randn(shape, generator=torch.Generator().manual_seed(_seed(seed, 0, first + i)))
            * 0.01 for i, shape in enumerate(raws)]
    return param_cls(torch.cat(raws).to(device), size, **kwargs)


def check_optstim_options(*, steps, lr, l1, l2, tv, blur_every, blur_sigma, jitter, scale,
                          degrees, patience, min_delta, seed, batch_size, param, decay,
                          decorrelate=True):
    """Every option of :func:`maximize_activation` that needs no network (one line each)."""
    if not isinstance(decorrelate, bool):
        raise InputError(f"decorrelate must be True or False; got {decorrelate!r}.")
    check_scalar(steps, name="-steps", kind=(int, np.integer), min_val=1)
    check_scalar(lr, name="-lr (learning rate)", min_val=0, include_min=False)
    for name, w in (("-l1", l1), ("-l2", l2), ("-tv", tv)):
        check_scalar(w, name=f"{name} (penalty weight)", min_val=0)
    check_scalar(blur_every, name="-blur-every", kind=(int, np.integer), min_val=0)
    check_scalar(blur_sigma, name="-blur-sigma", min_val=0)
    check_scalar(jitter, name="-jitter", kind=(int, np.integer), min_val=0)
    RandomAffine(scale, degrees)
    if patience is not None:
        check_scalar(patience, name="-patience", kind=(int, np.integer), min_val=1)
    check_scalar(min_delta, name="-min-delta", min_val=0)
    check_scalar(seed, name="-seed", kind=(int, np.integer), min_val=0)
    check_scalar(batch_size, name="-batch-size", kind=(int, np.integer), min_val=1)
    check_scalar(decay, name="-decay", min_val=0)
    if param not in PARAMETERISATIONS:
        raise InputError(f"-param {param!r}: choose {' or '.join(PARAMETERISATIONS)}.")


def maximize_activation(dnn, targets, *, size=None, init=None, param="fourier",
                        decorrelate=True, decay=1.0, steps=256, lr=0.05, l1=0.0, l2=0.0,
                        tv=0.0, blur_every=0, blur_sigma=0.5, jitter=8, scale=(0.95, 1.05),
                        degrees=5.0, patience=None, min_delta=0.0, seed=0, batch_size=32,
                        device="cpu", show_progress=True):
    """The image that maximises each target's value, by Adam on its parameterisation.

    Parameters
    ----------
    dnn : DNN
    targets : list of Target
        Resolved at ``size`` (:func:`resolve_optstim_targets`).
    size : (int, int), optional
        (H, W) of the images (default ``dnn.input_size``; with ``init``, its size).
    init : tensor of shape (1, 3, H, W) in [0, 1], optional
        Start every target's image here (default: seeded noise, its own per target).
    param : {"pixel", "fourier"}, default="fourier"
    decorrelate : bool, default=True
        Colour decorrelation (:data:`COLOUR_CORRELATION`).
    decay : float, default=1.0
        1/frequency exponent of the Fourier parameterisation.
    steps, lr, blur_every, blur_sigma, patience, min_delta
        As in :func:`optimize`.
    l1, l2, tv : float, default=0
        Weights of :func:`l1_penalty`, :func:`l2_penalty`, :func:`tv_penalty`.
    jitter : int, default=8
        Random shift per step, pixels.
    scale : (float, float), default=(0.95, 1.05)
        Range of the random scale per step.
    degrees : float, default=5
        Random rotation per step within +-degrees.
    seed : int, default=0
        Seeds the noise (target ``i`` of the list: its own stream) and the transform
        draws (the same sequence in every batch): a target's image does not depend on
        ``batch_size`` or on the other targets.
    batch_size : int, default=32
        Targets optimised together.
    device : str, default="cpu"
    show_progress : bool, default=True

    Returns
    -------
    OptStimRun

    Examples
    --------
    >>> run = maximize_activation(dnn, resolve_optstim_targets(["conv5:3"], dnn,
    ...                           size=(128, 128)), size=(128, 128), steps=64)  # doctest: +SKIP
    """
    check_optstim_options(steps=steps, lr=lr, l1=l1, l2=l2, tv=tv, blur_every=blur_every,
                          blur_sigma=blur_sigma, jitter=jitter, scale=scale, degrees=degrees,
                          patience=patience, min_delta=min_delta, seed=seed,
                          batch_size=batch_size, param=param, decay=decay)
    targets = list(targets)
    if not targets:
        raise InputError("no targets to optimise.")
    if init is not None:
        init = torch.as_tensor(init, dtype=torch.float32)
        size = tuple(init.shape[2:])
    size = check_image_size(size if size is not None else dnn.input_size)
    if jitter >= min(size):
        raise InputError(f"-jitter {jitter} px needs images larger than that; the image is "
                         f"{size[0]}x{size[1]}.")
    device = torch.device(device)
    dnn.to(device)
    transform = Compose([Jitter(int(jitter)), RandomAffine(scale, degrees)])
    penalties = make_penalties(l1=l1, l2=l2, tv=tv)
    cls = PARAMETERISATIONS[param]
    kwargs = {"decorrelate": decorrelate, **({"decay": decay} if param == "fourier" else {})}
    parts = []
    with frozen_parameters(dnn.module):
        for first in range(0, len(targets), batch_size):
            batch = targets[first:first + batch_size]
            p = _start(cls, batch, first, size, init, seed, device, kwargs)
            objective = activation_objective(dnn, batch)
            desc = f"{dnn.name} optimal image" + (f"s {first + 1}-{first + len(batch)}"
                                                  if len(batch) > 1 else f" {batch[0].name}")
            result = optimize(p, objective, steps=steps, lr=lr, maximize=True,
                              penalties=penalties, transform=transform,
                              blur_every=blur_every, blur_sigma=blur_sigma, patience=patience,
                              min_delta=min_delta,
                              generator=torch.Generator().manual_seed(_seed(seed, 1)),
                              show_progress=show_progress, desc=desc)
            saved = torch.round(result.images * 255).to(torch.uint8)
            with torch.no_grad():
                final = objective((saved.float() / 255).to(device))
            parts.append((result, saved, final.to("cpu", torch.float64).numpy()))
    n_steps = max(r.objective.shape[0] for r, _, _ in parts)

    def column(name):
        return np.concatenate([np.pad(getattr(r, name), ((0, n_steps - len(getattr(r, name))),
                                                         (0, 0)), constant_values=np.nan)
                               for r, _, _ in parts], axis=1)

    params = {"net": dnn.name, "weights": dnn.weights, "weights_sha256": dnn.weights_sha256,
              "lesion": "; ".join(dnn.lesions), **dnn.topk_attrs(), **dnn.ablation_attrs(),
              "size": list(size), "init": "noise" if init is None else "image",
              "param": param, "decorrelate": bool(decorrelate), "decay": float(decay),
              "steps": int(steps), "lr": float(lr), "l1": float(l1), "l2": float(l2),
              "tv": float(tv), "blur_every": int(blur_every), "blur_sigma": float(blur_sigma),
              "jitter": int(jitter), "scale": [float(s) for s in scale],
              "degrees": float(degrees), "patience": patience, "min_delta": float(min_delta),
              "seed": int(seed), "device": str(device), "optimizer": "adam",
              "torch": torch.__version__}
    return OptStimRun(targets,
                      torch.cat([s for _, s, _ in parts]).permute(0, 2, 3, 1).numpy(),
                      column("objective"), column("penalty"),
                      np.concatenate([r.steps for r, _, _ in parts]),
                      np.concatenate([r.stopped_early for r, _, _ in parts]),
                      np.concatenate([f for _, _, f in parts]), params)
