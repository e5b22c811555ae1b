"""Saliency maps of targets: gradients of a unit's value with respect to the input image.

Four methods (:data:`SALIENCY_METHODS`), computed with captum where it provides them:

- ``vanilla`` -- the gradient (Simonyan et al., 2014; ``captum.attr.Saliency``, signed).
- ``guided`` -- guided backpropagation (Springenberg et al., 2015;
  ``captum.attr.GuidedBackprop``): at every rectifier only positive gradients pass
  back. captum hooks ``nn.ReLU`` modules only; the rectifiers it cannot see in the
  zoo -- ``nn.ReLU6`` (EfficientNet-Lite) and the ``F.relu`` ending torchvision's
  GoogLeNet/Inception ``BasicConv2d`` -- get the same clamp here, on their output's
  gradient (clamping the gradient of ``y = relu(z)`` before relu's own backward is
  guided backpropagation's rule).
- ``smoothgrad`` -- the mean vanilla gradient over ``n_samples`` noisy copies of the
  image (Smilkov et al., 2017), noise ``N(0, noise_level^2)`` in pixel units (the
  pixel range is 1, so ``noise_level`` is the paper's sigma / (max - min)). The noise
  of stimulus ``i`` comes from ``numpy.random.default_rng([seed, i])``, drawn on the
  CPU in float32 (:func:`smoothgrad_noise`); the gradients are captum's ``Saliency``.
  captum's ``NoiseTunnel`` is not used: it draws the noise of the whole batch from
  torch's global generator on the input's device, so one stimulus's map changed with
  ``-batch-size``, with its place in the table and between CPU and CUDA (tested in
  tests/model/test_saliency.py).
- ``integrated`` -- integrated gradients (Sundararajan et al., 2017;
  ``captum.attr.IntegratedGradients``, Gauss-Legendre, ``steps`` points) from a
  baseline image (:data:`IG_BASELINES` or a grey level in [0, 1]); the completeness
  error ``sum(map) - (f(x) - f(baseline))`` comes back per image.

Maps are with respect to the RGB pixel values in [0, 1] of the network's input image
(after its resize/crop, before its normalisation): a gradient is ``dF/dx / std`` of
the normalised input ``x``; integrated gradients are the same in both spaces. Maps of
images depend only on the image, the target and (SmoothGrad) the seed and row, not on
the batch (up to float rounding of batched kernels; the same run repeats bit for bit).
:func:`input_window` and :func:`maps_on_image` (:mod:`._view`) put a map back into the
photograph's geometry (undoing the squash or the resize + centre crop).
"""
import contextlib
import logging
import math
import warnings
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..errors import InputError
from ..utils.validation import check_scalar
from ._images import ImageDataset, image_batches, network_inputs
from ._targets import target_responses

__all__ = ["IG_BASELINES", "SALIENCY_COLOURS", "SALIENCY_METHODS", "SaliencyParams",
           "check_saliency_params", "guided_rectifiers", "saliency_batches", "saliency_maps",
           "smoothgrad_noise"]

log = logging.getLogger(__name__)

#: The methods: name -> what it computes (help texts, file attributes).
SALIENCY_METHODS = {
    "vanilla": "gradient of the target (captum Saliency, signed)",
    "guided": "guided backpropagation (captum GuidedBackprop; ReLU6/F.relu blocks clamped)",
    "smoothgrad": "mean gradient over seeded noisy copies (captum Saliency)",
    "integrated": "integrated gradients (captum IntegratedGradients, Gauss-Legendre)",
}

#: How a map's colour channels are kept: all three, or their largest absolute value.
SALIENCY_COLOURS = ("rgb", "absmax")

#: Baselines of integrated gradients by name: pixel values, or the network's mean colour.
IG_BASELINES = {"black": lambda dnn: (0.0,) * 3, "white": lambda dnn: (1.0,) * 3,
                "mean": lambda dnn: tuple(dnn.mean)}


@dataclass(frozen=True)
class SaliencyParams:
    """Parameters of the methods (checked by :func:`check_saliency_params`).

    >>> SaliencyParams(steps=100).attrs("integrated")["steps"]
    100

    Attributes
    ----------
    noise_level : float, default=0.15
        SmoothGrad's noise standard deviation in pixel units (fraction of the range).
    n_samples : int, default=25
        SmoothGrad's noisy copies per image.
    seed : int, default=0
        Seed of SmoothGrad's noise.
    baseline : str or float, default="black"
        Integrated gradients' baseline: a name of :data:`IG_BASELINES` or a grey level.
    steps : int, default=50
        Integrated gradients' integration points.
    """
    noise_level: float = 0.15
    n_samples: int = 25
    seed: int = 0
    baseline: object = "black"
    steps: int = 50

    def attrs(self, method):
        """The parameters ``method`` uses, as file attributes."""
        if method == "smoothgrad":
            return {"noise_level": self.noise_level, "n_samples": self.n_samples,
                    "seed": self.seed, "noise_rule": "numpy default_rng([seed, row]), "
                    "float32 standard normal x noise_level, pixel units"}
        if method == "integrated":
            return {"baseline": str(self.baseline), "steps": self.steps,
                    "integration": "gausslegendre"}
        return {}


def _baseline_value(baseline):
    if isinstance(baseline, str) and baseline in IG_BASELINES:
        return baseline
    try:
        value = float(baseline)
    except (TypeError, ValueError):
        value = None
    if value is None or not math.isfinite(value) or not 0 <= value <= 1:
        raise InputError(f"-baseline {baseline}: give {', '.join(IG_BASELINES)} or a grey "
                         f"level between 0 (black) and 1 (white).")
    return value


def check_saliency_params(methods, params):
    """Check ``methods`` (names of :data:`SALIENCY_METHODS`) and ``params``; return both.

    Raises
    ------
    InputError
        An unknown method, a NaN/negative noise level, fewer than 1 sample or step, a
        baseline that is neither a name nor a grey level in [0, 1].

    Examples
    --------
    >>> check_saliency_params(["vanilla", "smoothgrad", "vanilla"], SaliencyParams())[0]
    ['vanilla', 'smoothgrad']
    """
    methods = list(dict.fromkeys(methods))
    for m in methods:
        if m not in SALIENCY_METHODS:
            raise InputError(f"-method {m}: unknown method; choose from "
                             f"{', '.join(SALIENCY_METHODS)}.")
    if not methods:
        raise InputError(f"no -method given; choose from {', '.join(SALIENCY_METHODS)}.")
    def integer(value, option):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise InputError(f"{option} {value}: give a whole number >= 1.")
    integer(params.n_samples, "-samples")
    integer(params.steps, "-steps")
    try:
        check_scalar(params.noise_level, name="-noise-level", min_val=0)
    except InputError as exc:
        raise InputError(f"{exc} The noise level is a standard deviation in pixel units "
                         f"(fraction of the 0..1 range), e.g. 0.15.") from None
    check_scalar(params.seed, name="-noise-seed", kind=(int, np.integer))
    _baseline_value(params.baseline)
    return methods, params


class _TargetForward(nn.Module):
    """The network as captum sees it: normalised images -> one target's value per image.

    The network is a sub-module, so captum's GuidedBackprop finds its ReLUs. The pass
    stops at the target's layer (:func:`target_responses`).
    """

    def __init__(self, dnn, target):
        super().__init__()
        self.net = dnn.module
        self._dnn, self._targets = dnn, [target]

    def forward(self, x):
        return target_responses(self._dnn, x, self._targets)[:, 0]


def _clamp_output_grad(module, inputs, output):
    if torch.is_tensor(output) and output.requires_grad:
        output.register_hook(lambda g: g.clamp(min=0))


def _functional_relu_block(module):
    # torchvision's GoogLeNet/Inception end BasicConv2d.forward with F.relu (unless a
    # relu lesion replaced that forward, model._lesion)
    return (type(module).__name__ == "BasicConv2d" and type(module).__module__.startswith(
        "torchvision.models") and "forward" not in vars(module))


def guided_rectifiers(module):
    """``(relu, others)``: the ``nn.ReLU`` modules captum hooks, and the rectifiers
    (``nn.ReLU6``, torchvision's ``BasicConv2d``) whose output gradient is clamped here.

    >>> relus, others = guided_rectifiers(nn.Sequential(nn.ReLU(), nn.Tanh(), nn.ReLU6()))
    >>> len(relus), len(others)
    (1, 1)
    """
    relus = [m for m in module.modules() if isinstance(m, nn.ReLU)]
    others = [m for m in module.modules()
              if isinstance(m, nn.ReLU6) or _functional_relu_block(m)]
    return relus, others


@contextlib.contextmanager
def _guided_extra(module):
    _, others = guided_rectifiers(module)
    handles = [m.register_forward_hook(_clamp_output_grad) for m in others]
    try:
        yield
    finally:
        for h in handles:
            h.remove()


@contextlib.contextmanager
def _frozen(module):
    """No parameter gradients (saves their computation and leaves ``.grad`` alone)."""
    flags = [(p, p.requires_grad) for p in module.parameters()]
    for p, _ in flags:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)


def _pixel_scale(dnn, x):
    """``1 / std`` per channel, shaped to multiply a ``(n, 3, H, W)`` gradient."""
    std = torch.as_tensor(dnn.std, dtype=x.dtype, device=x.device)
    return (1 / std)[:, None, None]


def smoothgrad_noise(seed, row, n_samples, shape, noise_level):
    """SmoothGrad's noise for the stimulus in table row ``row`` (0-based).

    Returns
    -------
    ndarray of shape (n_samples, 3, H, W), float32
        ``noise_level * default_rng([seed, row]).standard_normal(...)`` in pixel units.

    Examples
    --------
    >>> noise = smoothgrad_noise(0, 3, 2, (3, 4, 4), 0.1)
    >>> noise.shape, noise.dtype
    ((2, 3, 4, 4), dtype('float32'))
    """
    rng = np.random.default_rng([int(seed), int(row)])
    noise = rng.standard_normal((n_samples,) + tuple(shape), dtype=np.float32)
    return noise * np.float32(noise_level)


def _vanilla(fwd, x, batch_size):
    from captum.attr import Saliency
    maps = [Saliency(fwd).attribute(x[i:i + batch_size].detach().requires_grad_(), abs=False)
            for i in range(0, len(x), batch_size)]
    return torch.cat(maps)


def _guided(fwd, x, batch_size):
    from captum.attr import GuidedBackprop
    if not any(guided_rectifiers(fwd.net)):
        log.warning("guided backpropagation: the network has no ReLU/ReLU6 module (a "
                    "functional relu cannot be hooked); the map is the vanilla gradient.")
    method = GuidedBackprop(fwd)
    with _guided_extra(fwd.net), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Setting backward hooks on ReLU")
        return torch.cat([method.attribute(x[i:i + batch_size].detach().requires_grad_())
                          for i in range(0, len(x), batch_size)])


def _noise_tensor(params, row, x):
    return torch.from_numpy(smoothgrad_noise(params.seed, row, params.n_samples, x.shape[1:],
                                             params.noise_level)).to(x.device, x.dtype)


def _smoothgrad(fwd, x, batch_size, dnn, params, start):
    n_img, n_s = len(x), params.n_samples
    inv_std = _pixel_scale(dnn, x)
    total = torch.zeros(x.shape, dtype=torch.float64, device=x.device)
    # noisy copies of image after image, batch_size of them per backward pass
    rows = [(i, s) for i in range(n_img) for s in range(n_s)]
    noise = {}
    for k in range(0, len(rows), batch_size):
        chunk = rows[k:k + batch_size]
        noise = {i: noise[i] if i in noise else _noise_tensor(params, start + i, x)
                 for i in dict.fromkeys(i for i, _ in chunk)}   # only this chunk's images
        noisy = torch.stack([x[i] + noise[i][s] * inv_std for i, s in chunk])
        grads = _vanilla(fwd, noisy, batch_size).to(torch.float64)
        index = torch.tensor([i for i, _ in chunk], device=x.device)
        total.index_add_(0, index, grads)
    return (total / n_s).to(x.dtype)


def _integrated(fwd, x, batch_size, dnn, params):
    from captum.attr import IntegratedGradients
    value = _baseline_value(params.baseline)
    pixel = IG_BASELINES[value](dnn) if isinstance(value, str) else (value,) * 3
    mean = torch.as_tensor(dnn.mean, dtype=x.dtype, device=x.device)
    std = torch.as_tensor(dnn.std, dtype=x.dtype, device=x.device)
    base = ((torch.as_tensor(pixel, dtype=x.dtype, device=x.device) - mean) / std)
    base = base[None, :, None, None].expand_as(x).contiguous()
    maps, delta = IntegratedGradients(fwd).attribute(
        x.detach().requires_grad_(), baselines=base, n_steps=params.steps,
        internal_batch_size=batch_size, return_convergence_delta=True)
    return maps, delta


def saliency_maps(dnn, x, targets, method, *, params=SaliencyParams(), start=0,
                  batch_size=32):
    """Saliency maps of ``targets`` for one batch of normalised network inputs.

    Parameters
    ----------
    dnn : DNN
    x : tensor of shape (n, 3, H, W)
        Normalised inputs (``dnn.normalize``) on ``dnn``'s device.
    targets : list of Target
        Resolved against ``dnn`` (:func:`resolve_targets`).
    method : str
        One of :data:`SALIENCY_METHODS`.
    params : SaliencyParams
    start : int, default=0
        Table row of ``x[0]`` (seeds SmoothGrad's noise per stimulus).
    batch_size : int, default=32
        Images per forward/backward pass (SmoothGrad's and IG's expanded batches).

    Returns
    -------
    maps : tensor of shape (n, n_targets, 3, H, W)
        With respect to pixel values in [0, 1]; float32, detached.
    delta : tensor of shape (n, n_targets) or None
        Integrated gradients' completeness error ``sum(map) - (f(x) - f(baseline))``.

    Examples
    --------
    >>> targets = resolve_targets(["conv5:3"], dnn)                  # doctest: +SKIP
    >>> maps, _ = saliency_maps(dnn, x, targets, "vanilla")          # doctest: +SKIP
    """
    check_saliency_params([method], params)
    x = x.detach()
    out, deltas = [], []
    with _frozen(dnn.module), torch.enable_grad(), warnings.catch_warnings():
        # captum's note that it set requires_grad on its own copies
        warnings.filterwarnings("ignore", message="Input Tensor 0 did not already")
        for t in targets:
            fwd = _TargetForward(dnn, t)
            if method == "integrated":
                maps, delta = _integrated(fwd, x, batch_size, dnn, params)
                deltas.append(delta.detach().to(torch.float64))
            elif method == "smoothgrad":
                maps = (_smoothgrad(fwd, x, batch_size, dnn, params, start)
                        * _pixel_scale(dnn, x))
            else:
                run = _guided if method == "guided" else _vanilla
                maps = run(fwd, x, batch_size) * _pixel_scale(dnn, x)
            out.append(maps.detach())
    return torch.stack(out, dim=1), (torch.stack(deltas, dim=1) if deltas else None)



def _reduce_colour(maps, colour):
    if colour == "absmax":
        return maps.abs().amax(dim=2)
    return maps


def saliency_batches(dnn, paths, targets, methods, *, params=SaliencyParams(),
                     colour="rgb", batch_size=32, device="cpu", workers=None):
    """Yield ``(start, maps, deltas)`` for consecutive batches of the images at ``paths``.

    Parameters
    ----------
    dnn : DNN
    paths : sequence of path
        Images in table order (row ``i`` seeds SmoothGrad's noise of image ``i``).
    targets : list of Target
    methods : list of str
        Names of :data:`SALIENCY_METHODS`.
    params : SaliencyParams
    colour : {"rgb", "absmax"}, default="rgb"
        ``absmax``: the largest absolute value over the colour channels.
    batch_size, device, workers
        As in :func:`dnnsparse.model.extract`.

    Yields
    ------
    start : int
    maps : dict of str to ndarray
        ``{method: (n_batch, n_targets, 3, H, W)}`` (``absmax``: ``(n_batch, n_targets,
        H, W)``), float32.
    deltas : dict of str to ndarray
        ``{"integrated": (n_batch, n_targets, 2)}`` float64 when integrated gradients
        run: ``f(x) - f(baseline)`` and the completeness error ``sum(map)`` minus it.
    """
    if colour not in SALIENCY_COLOURS:
        raise InputError(f"-colour {colour}: choose {' or '.join(SALIENCY_COLOURS)}.")
    methods, params = check_saliency_params(methods, params)
    device = torch.device(device)
    dnn.to(device)
    dataset = ImageDataset(paths, dnn.image_transform())
    batches = image_batches(dataset, batch_size, workers=workers, device=device)
    for idx, x in network_inputs(dnn, batches, paths, device):
        maps, deltas = {}, {}
        for m in methods:
            values, delta = saliency_maps(dnn, x, targets, m, params=params, start=idx[0],
                                          batch_size=batch_size)
            if delta is not None:
                # captum's delta = sum(map) - (f(x) - f(baseline)): keep both parts
                gap = values.to(torch.float64).sum(dim=(2, 3, 4)) - delta
                deltas[m] = torch.stack([gap, delta], dim=-1).cpu().numpy()
            maps[m] = _reduce_colour(values, colour).cpu().numpy()
        yield idx[0], maps, deltas
