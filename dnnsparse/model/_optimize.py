"""Image optimisation: parameterisations, penalties, random transforms and one step loop.

Every command that makes images by gradient descent (``db_optstim``'s activation
maximisation, ``db_synth``'s texture synthesis, reconstruction and style transfer)
builds on these four separate pieces:

- **Parameterisations** (:data:`PARAMETERISATIONS`): :class:`PixelImage` (one free
  value per pixel and colour) and :class:`FourierImage` (a decorrelated Fourier
  spectrum scaled by 1/frequency, as in Olah et al. 2017, "Feature Visualization").
  Both are ``nn.Module``\\ s whose ``forward()`` returns a batch of images
  ``(n, 3, H, W)`` in ``[0, 1]`` (through a sigmoid, after an optional colour
  decorrelation), and whose :meth:`~ImageParam.assign` sets the parameters so that
  ``forward()`` returns given images (start from a photograph; blur the image).
- **Penalties** (:data:`PENALTIES`): :func:`l1_penalty`, :func:`l2_penalty`,
  :func:`tv_penalty`, each ``images -> (n,)``; :func:`make_penalties` turns weights
  into the ``[(weight, function), ...]`` list the loop takes.
- **Transforms**: :class:`Jitter` and :class:`RandomAffine` (scale and rotation),
  chained by :class:`Compose`; each is a callable ``(images, generator) -> images``
  drawing its parameters from a seeded ``torch.Generator``, one draw per step for
  the whole batch (so an image's result does not depend on its batch-mates);
  :func:`gaussian_blur`.
- **The loop**: :func:`optimize` runs Adam (or L-BFGS) on the parameters against
  any objective ``images -> (n,)`` (a value per image, minimised, or maximised with
  ``maximize=True``), adds the penalties, applies the transform before the
  objective, blurs every ``blur_every`` steps, and stops after ``steps`` or when no
  image's objective improved for ``patience`` steps; bit-for-bit repeatable on the
  CPU with the same generator seed.

Examples
--------
>>> param = FourierImage.from_noise(2, (64, 64), generator=torch.Generator().manual_seed(0))
>>> result = optimize(param, lambda x: x.mean(dim=(1, 2, 3)), steps=5, maximize=True,
...                   generator=torch.Generator().manual_seed(1))
>>> tuple(result.images.shape), result.objective.shape
((2, 3, 64, 64), (5, 2))
"""
import contextlib
import logging
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InputError
from ..utils.progress import progress
from ..utils.validation import check_choice, check_scalar

__all__ = ["COLOUR_CORRELATION", "Compose", "FourierImage", "ImageParam", "Jitter",
           "OPTIMIZE_METHODS", "OptimizeResult", "PARAMETERISATIONS", "PENALTIES",
           "PixelImage", "RandomAffine", "deterministic_algorithms", "frozen_parameters",
           "gaussian_blur", "gaussian_kernel", "l1_penalty", "l2_penalty", "make_image_param",
           "make_penalties", "optimize", "tv_penalty"]

log = logging.getLogger(__name__)

#: Square root of the colour correlation of ImageNet photographs (Olah et al.'s Lucid);
#: a decorrelated image ``z`` has RGB ``COLOUR_CORRELATION_normalised @ z`` per pixel.
COLOUR_CORRELATION = ((0.26, 0.09, 0.02),
                      (0.27, 0.00, -0.05),
                      (0.27, -0.09, 0.03))

# images kept this far from 0 and 1 when encoded through the sigmoid: a uint8 image
# survives the round trip, and saturated pixels keep a usable gradient
_EPS = 0.25 / 255


def _colour_matrix(device, dtype):
    c = torch.tensor(COLOUR_CORRELATION, dtype=torch.float64)
    c = c / torch.linalg.vector_norm(c, dim=0).max()
    return c.to(device=device, dtype=dtype)


class ImageParam(nn.Module):
    """Base of the parameterisations: ``forward() -> images (n, 3, H, W)`` in ``[0, 1]``.

    Subclasses define :meth:`decode` (raw parameter → pre-sigmoid, decorrelated
    image) and :meth:`encode` (its inverse). Colour decorrelation, when on, maps the
    decoded channels to RGB through :data:`COLOUR_CORRELATION`.
    """

    def __init__(self, raw, size, *, decorrelate):
        super().__init__()
        self.raw = nn.Parameter(raw)
        self.size = tuple(int(s) for s in size)
        self.decorrelate = bool(decorrelate)

    @property
    def n_images(self):
        return self.raw.shape[0]

    def decode(self, raw):
        raise NotImplementedError

    def encode(self, logits):
        raise NotImplementedError

    def forward(self):
        z = self.decode(self.raw)
        if self.decorrelate:
            z = torch.einsum("ck,nkhw->nchw", _colour_matrix(z.device, z.dtype), z)
        return torch.sigmoid(z)

    @torch.no_grad()
    def raw_of(self, images):
        """The raw parameter for which ``forward()`` gives ``images`` (clipped to (0, 1))."""
        images = torch.as_tensor(images).to(device=self.raw.device, dtype=self.raw.dtype)
        if images.shape[1:] != (3,) + self.size:
            raise InputError(f"images of shape {tuple(images.shape)} do not fit a "
                             f"{self.size[0]}x{self.size[1]} RGB parameterisation.")
        z = torch.logit(images.clamp(_EPS, 1 - _EPS))
        if self.decorrelate:
            inv = torch.linalg.inv(_colour_matrix(z.device, torch.float64)).to(z.dtype)
            z = torch.einsum("ck,nkhw->nchw", inv, z)
        return self.encode(z)

    @torch.no_grad()
    def assign(self, images):
        """Set the parameters so that ``forward()`` returns ``images`` ``(n, 3, H, W)``.

        A single image ``(1, 3, H, W)`` is given to every image of the batch.
        """
        raw = self.raw_of(images)
        self.raw.copy_(raw.expand_as(self.raw))
        return self

    @classmethod
    def from_noise(cls, n, size, *, generator=None, sd=0.01, device="cpu", **kwargs):
        """``n`` images of ``size`` (H, W) from seeded normal noise (``sd``) in raw space."""
        shape = cls.raw_shape(n, size)
        raw = torch.randn(shape, generator=generator, dtype=torch.float32) * sd
        return cls(raw.to(device), size, **kwargs)


class PixelImage(ImageParam):
    """One free value per pixel and colour: ``image = sigmoid(C @ raw)``.

    Parameters
    ----------
    raw : tensor of shape (n, 3, H, W)
    size : (int, int)
    decorrelate : bool, default=False
        Multiply the colours by :data:`COLOUR_CORRELATION` before the sigmoid.

    Examples
    --------
    >>> PixelImage(torch.zeros(1, 3, 4, 4), (4, 4))().unique().item()
    0.5
    """

    def __init__(self, raw, size, *, decorrelate=False):
        super().__init__(raw, size, decorrelate=decorrelate)

    @staticmethod
    def raw_shape(n, size):
        return (int(n), 3) + tuple(int(s) for s in size)

    def decode(self, raw):
        return raw

    def encode(self, logits):
        return logits


def _spectrum_scale(size, decay, device, dtype):
    """``1 / max(f, 1/max(H, W)) ** decay`` of every rfft2 frequency ``(H, W // 2 + 1)``."""
    h, w = size
    fy = torch.fft.fftfreq(h, dtype=torch.float64)[:, None]
    fx = torch.fft.rfftfreq(w, dtype=torch.float64)[None, :]
    freqs = torch.sqrt(fx * fx + fy * fy)
    return (1.0 / freqs.clamp(min=1.0 / max(h, w)) ** decay).to(device=device, dtype=dtype)


class FourierImage(ImageParam):
    """A spectrum scaled by 1/frequency (Olah et al. 2017): low frequencies move first.

    ``image = sigmoid(C @ irfft2(raw * scale, norm="ortho") / 4)``, with ``scale =
    1 / max(f, 1/max(H, W)) ** decay`` per frequency ``f`` (cycles per pixel) and
    ``C`` the colour correlation (:data:`COLOUR_CORRELATION`, on by default); the
    division by 4 before the sigmoid is Lucid's. Adam on ``raw`` then takes
    near-equal steps in every frequency's *natural* amplitude, which decorrelates the
    pixels and gives images with the statistics of photographs rather than
    high-frequency patterns.

    Parameters
    ----------
    raw : tensor of shape (n, 3, H, W // 2 + 1, 2)
        Real and imaginary parts of the spectrum.
    size : (int, int)
    decorrelate : bool, default=True
    decay : float, default=1.0
        Exponent of the 1/frequency scaling.
    """

    def __init__(self, raw, size, *, decorrelate=True, decay=1.0):
        super().__init__(raw, size, decorrelate=decorrelate)
        self.decay = float(decay)
        self.register_buffer("scale", _spectrum_scale(self.size, self.decay, raw.device,
                                                      raw.dtype), persistent=False)

    @staticmethod
    def raw_shape(n, size):
        h, w = (int(s) for s in size)
        return (int(n), 3, h, w // 2 + 1, 2)

    def decode(self, raw):
        spectrum = torch.view_as_complex(raw.contiguous()) * self.scale
        return torch.fft.irfft2(spectrum, s=self.size, norm="ortho") / 4.0

    def encode(self, logits):
        spectrum = torch.fft.rfft2(logits * 4.0, norm="ortho") / self.scale
        return torch.view_as_real(spectrum).contiguous()


#: Name → parameterisation class.
PARAMETERISATIONS = {"pixel": PixelImage, "fourier": FourierImage}


def make_image_param(kind, *, n=None, size=None, init=None, generator=None, sd=0.01,
                     device="cpu", **kwargs):
    """A parameterisation ``kind`` from seeded noise (``n``, ``size``) or from ``init``.

    Parameters
    ----------
    kind : {"pixel", "fourier"}
    n : int, optional
        Number of images (with ``init``: default ``len(init)``; a single init image is
        given to all ``n``).
    size : (int, int), optional
        (H, W) of noise images.
    init : tensor of shape (n or 1, 3, H, W), optional
        Start images in ``[0, 1]``.
    generator : torch.Generator, optional
        Seeds the noise.
    sd : float, default=0.01
        Noise amplitude in raw space.
    device : str or torch.device
    **kwargs
        Passed to the class (``decorrelate``, ``decay``).

    Returns
    -------
    ImageParam
    """
    check_choice(kind, PARAMETERISATIONS, name="parameterisation")
    cls = PARAMETERISATIONS[kind]
    if init is None:
        return cls.from_noise(n, size, generator=generator, sd=sd, device=device, **kwargs)
    init = torch.as_tensor(init, dtype=torch.float32).to(device)
    n = init.shape[0] if n is None else n
    param = cls(torch.zeros(cls.raw_shape(n, init.shape[2:]), device=device), init.shape[2:],
                **kwargs)
    return param.assign(init)


# ----------------------------------------------------------------------------
# Penalties: images (n, 3, H, W) in [0, 1] -> one value per image (n,)
# ----------------------------------------------------------------------------
def l1_penalty(images, *, centre=0.5):
    """Mean absolute deviation from grey: ``mean_{c,h,w} |x - centre|`` per image."""
    return (images - centre).abs().mean(dim=(1, 2, 3))


def l2_penalty(images, *, centre=0.5):
    """Mean squared deviation from grey: ``mean_{c,h,w} (x - centre)^2`` per image."""
    return (images - centre).square().mean(dim=(1, 2, 3))


def tv_penalty(images, *, power=1.0):
    """Total variation per image: ``mean |x[i+1,j] - x[i,j]|^p + mean |x[i,j+1] - x[i,j]|^p``.

    Means over colours and the ``(H-1) x W`` and ``H x (W-1)`` neighbour pairs
    (anisotropic; ``power=2`` gives the squared form).
    """
    dh = (images[:, :, 1:, :] - images[:, :, :-1, :]).abs()
    dw = (images[:, :, :, 1:] - images[:, :, :, :-1]).abs()
    if power != 1:
        dh, dw = dh ** power, dw ** power
    return dh.mean(dim=(1, 2, 3)) + dw.mean(dim=(1, 2, 3))


#: Name → penalty function ``images -> (n,)``.
PENALTIES = {"l1": l1_penalty, "l2": l2_penalty, "tv": tv_penalty}


def make_penalties(**weights):
    """``[(weight, function), ...]`` for the non-zero weights (``l1=, l2=, tv=``).

    >>> [(w, f.__name__) for w, f in make_penalties(l1=0.1, tv=0)]
    [(0.1, 'l1_penalty')]
    """
    out = []
    for name, weight in weights.items():
        check_choice(name, PENALTIES, name="penalty")
        check_scalar(weight, name=f"{name} weight", min_val=0)
        if weight:
            out.append((float(weight), PENALTIES[name]))
    return out


# ----------------------------------------------------------------------------
# Transforms and blur
# ----------------------------------------------------------------------------
class Jitter:
    """Shift the batch by up to ``pixels`` in each direction (reflected at the border).

    One draw of ``(dy, dx)`` per call, uniform over ``-pixels..pixels``; the output
    has the input's size.
    """

    def __init__(self, pixels):
        self.pixels = int(check_scalar(pixels, name="jitter", kind=int, min_val=0))

    def __call__(self, x, generator=None):
        d = self.pixels
        if d == 0:
            return x
        if d >= min(x.shape[2:]):
            raise InputError(f"jitter {d} px needs images larger than {d} px; got "
                             f"{x.shape[2]}x{x.shape[3]}.")
        dy, dx = (int(v) for v in torch.randint(-d, d + 1, (2,), generator=generator))
        padded = F.pad(x, (d, d, d, d), mode="reflect")
        h, w = x.shape[2:]
        return padded[:, :, d + dy:d + dy + h, d + dx:d + dx + w]


class RandomAffine:
    """Scale by a factor uniform in ``scale`` and rotate by up to ``degrees`` (one resample).

    Bilinear resampling about the centre, reflected at the border; the output has the
    input's size, so a layer's map (and a unit target's position) keeps its shape.
    """

    def __init__(self, scale=(1.0, 1.0), degrees=0.0):
        low, high = (float(s) for s in scale)
        for s in (low, high):
            check_scalar(s, name="scale", min_val=0, include_min=False)
        if low > high:
            raise InputError(f"scale range {low},{high}: give LOW,HIGH with LOW <= HIGH.")
        self.scale = (low, high)
        self.degrees = float(check_scalar(degrees, name="rotation", min_val=0))

    @property
    def identity(self):
        return self.scale == (1.0, 1.0) and self.degrees == 0

    def __call__(self, x, generator=None):
        if self.identity:
            return x
        u = torch.rand(2, generator=generator, dtype=torch.float64)
        s = self.scale[0] + float(u[0]) * (self.scale[1] - self.scale[0])
        return self.apply(x, s, (2 * float(u[1]) - 1) * self.degrees)

    @staticmethod
    def apply(x, scale, degrees):
        """``x`` magnified ``scale`` times and turned ``degrees`` anticlockwise (as shown)."""
        angle = math.radians(degrees)
        cos, sin = math.cos(angle) / scale, math.sin(angle) / scale
        theta = torch.tensor([[cos, -sin, 0.0], [sin, cos, 0.0]], dtype=x.dtype,
                             device=x.device).expand(x.shape[0], 2, 3)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection",
                             align_corners=False)


class Compose:
    """Apply transforms in order, all drawing from the same generator."""

    def __init__(self, transforms):
        self.transforms = list(transforms)

    def __call__(self, x, generator=None):
        for t in self.transforms:
            x = t(x, generator)
        return x


def gaussian_kernel(sigma, *, truncate=4.0):
    """Normalised 1-D Gaussian ``exp(-k^2 / 2 sigma^2)``, ``k = -r..r``, ``r = round(truncate sigma)``."""
    radius = max(1, int(truncate * sigma + 0.5))
    k = torch.arange(-radius, radius + 1, dtype=torch.float64)
    kernel = torch.exp(-0.5 * (k / sigma) ** 2)
    return kernel / kernel.sum()


def gaussian_blur(images, sigma, *, truncate=4.0):
    """Separable Gaussian blur of every channel, border mirrored (``d c b | a b c d``).

    Equals :func:`scipy.ndimage.gaussian_filter` with ``mode="mirror"`` over the two
    image axes. ``sigma`` 0 returns the images unchanged.

    Parameters
    ----------
    images : tensor of shape (n, C, H, W)
    sigma : float
        Standard deviation in pixels.

    Returns
    -------
    tensor of the same shape
    """
    if sigma == 0:
        return images
    kernel = gaussian_kernel(sigma, truncate=truncate).to(images.device, images.dtype)
    r = (len(kernel) - 1) // 2
    c = images.shape[1]
    h, w = images.shape[2:]
    if r >= min(h, w):
        raise InputError(f"blur sigma {sigma} needs images larger than {r} px; got {h}x{w}.")
    x = F.pad(images, (r, r, r, r), mode="reflect")
    x = F.conv2d(x, kernel.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)
    return F.conv2d(x, kernel.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)


# ----------------------------------------------------------------------------
# The loop
# ----------------------------------------------------------------------------
@contextlib.contextmanager
def deterministic_algorithms(enabled=True):
    """Run the block with ``torch.use_deterministic_algorithms`` on (``warn_only``).

    The previous setting is restored on leaving. On the CPU torch's operations used
    here are deterministic anyway; on a GPU this picks the deterministic kernels where
    they exist and warns where they do not.
    """
    if not enabled:
        yield
        return
    before = torch.are_deterministic_algorithms_enabled()
    warn = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before, warn_only=warn)


@contextlib.contextmanager
def frozen_parameters(module):
    """Run the block with ``module``'s parameters needing no gradient (restored after).

    The image is optimised, not the network: its weight gradients would only cost time
    and memory.
    """
    params = [p for p in module.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        yield module
    finally:
        for p in params:
            p.requires_grad_(True)


def _adam(params, lr):
    return torch.optim.Adam(params, lr=lr)


def _lbfgs(params, lr):
    return torch.optim.LBFGS(params, lr=lr, max_iter=1, history_size=20)


#: Name → ``(parameters, lr) -> torch.optim.Optimizer``.
OPTIMIZE_METHODS = {"adam": _adam, "lbfgs": _lbfgs}


@dataclass
class OptimizeResult:
    """What :func:`optimize` returns.

    Attributes
    ----------
    images : tensor of shape (n, 3, H, W), float32, on the CPU
        Each image when it stopped (its last step, or when its patience ran out).
    objective : ndarray of shape (n_steps, n), float64
        The objective of every image at every step (on the transformed image the
        gradient was taken of); NaN after an image stopped.
    penalty : ndarray of shape (n_steps, n), float64
        The weighted sum of the penalties (0 without).
    steps : ndarray of shape (n,), int
        Steps each image ran.
    stopped_early : ndarray of shape (n,), bool
        True where ``patience`` ran out before ``steps``.
    best : ndarray of shape (n,), float64
        Best objective of each image (the largest with ``maximize``, else the smallest).
    """
    images: torch.Tensor
    objective: np.ndarray
    penalty: np.ndarray
    steps: np.ndarray
    stopped_early: np.ndarray
    best: np.ndarray


def _check_loop_options(steps, lr, blur_every, blur_sigma, patience, min_delta, method):
    check_scalar(steps, name="steps", kind=int, min_val=1)
    check_scalar(lr, name="learning rate", min_val=0, include_min=False)
    check_scalar(blur_every, name="blur-every", kind=int, min_val=0)
    check_scalar(blur_sigma, name="blur sigma", min_val=0)
    if patience is not None:
        check_scalar(patience, name="patience", kind=int, min_val=1)
    check_scalar(min_delta, name="min-delta", min_val=0)
    check_choice(method, OPTIMIZE_METHODS, name="optimiser")


def _per_image(value, n, what):
    value = torch.as_tensor(value)
    if value.ndim == 0:
        value = value.expand(n)
    if value.shape != (n,):
        raise ValueError(f"the {what} returned shape {tuple(value.shape)}; expected ({n},) "
                         f"(one value per image) or a scalar.")
    return value


def optimize(param, objective, *, steps, lr=0.05, method="adam", maximize=False,
             penalties=(), transform=None, blur_every=0, blur_sigma=0.5, patience=None,
             min_delta=0.0, generator=None, deterministic=True, show_progress=False,
             desc="optimising"):
    """Optimise the images of ``param`` against ``objective``.

    Each step: ``images = param()``; ``value = objective(transform(images, generator))``
    (one value per image); ``loss = sum(±value + sum_k w_k * penalty_k(images))``
    (``-value`` with ``maximize``); one optimiser step on ``param``'s parameters.
    Every ``blur_every`` steps the images are blurred (:func:`gaussian_blur`) and put
    back (:meth:`ImageParam.assign`); not after the last step, so the images returned
    are the ones the last objective was computed from. An image stops improving when its objective has
    not beaten its best by more than ``min_delta`` for ``patience`` steps; it is then
    kept as it is and the run ends when all images have stopped (they do not
    interact: the loss is a sum over images, and the transforms draw one set of
    parameters per step for the whole batch).

    Parameters
    ----------
    param : ImageParam
    objective : callable
        ``images (n, 3, H, W) in [0, 1] -> tensor (n,)`` (or a scalar, shared by all
        images), differentiable.
    steps : int
        At most this many steps (>= 1).
    lr : float, default=0.05
    method : {"adam", "lbfgs"}, default="adam"
        L-BFGS makes one iteration per step (its closure re-evaluates with the same
        transform draw).
    maximize : bool, default=False
        Maximise ``objective`` instead of minimising it.
    penalties : list of (float, callable)
        ``(weight, images -> (n,))`` pairs, on the untransformed images
        (:func:`make_penalties`); always minimised.
    transform : callable, optional
        ``(images, generator) -> images`` applied before the objective (:class:`Compose`).
    blur_every : int, default=0
        Blur every this many steps (0: never).
    blur_sigma : float, default=0.5
    patience : int, optional
        Early stop (None: run all ``steps``).
    min_delta : float, default=0.0
        The least change that counts as an improvement.
    generator : torch.Generator, optional
        Draws of the transforms (CPU generator; seed it for repeatable runs).
    deterministic : bool, default=True
        Run under :func:`deterministic_algorithms`.
    show_progress : bool, default=False
    desc : str
        Label of the progress bar.

    Returns
    -------
    OptimizeResult

    Examples
    --------
    >>> gen = torch.Generator().manual_seed(0)
    >>> param = PixelImage.from_noise(1, (8, 8), generator=gen)
    >>> r = optimize(param, lambda x: x.mean(dim=(1, 2, 3)), steps=20, lr=0.1)
    >>> bool(r.images.mean() < 0.5)
    True
    """
    _check_loop_options(steps, lr, blur_every, blur_sigma, patience, min_delta, method)
    sign = -1.0 if maximize else 1.0
    n = param.n_images
    opt = OPTIMIZE_METHODS[method]([param.raw], lr)
    history = np.full((steps, n), np.nan)
    pen_history = np.full((steps, n), np.nan)
    best = np.full(n, np.inf)                 # of sign * objective (smaller is better)
    last_better = np.zeros(n, dtype=np.int64)
    done = np.zeros(n, dtype=bool)
    ran = np.zeros(n, dtype=np.int64)
    kept = [None] * n
    with deterministic_algorithms(deterministic), \
            progress(total=steps, desc=desc, unit="step", enabled=show_progress) as bar:
        for step in range(steps):
            state = generator.get_state() if generator is not None else None
            seen = {}

            def closure():
                if state is not None:           # L-BFGS re-evaluates: same draw each time
                    generator.set_state(state)
                opt.zero_grad(set_to_none=True)
                images = param()
                x = transform(images, generator) if transform is not None else images
                value = _per_image(objective(x), n, "objective")
                pen = torch.zeros(n, dtype=value.dtype, device=value.device)
                for weight, fn in penalties:
                    pen = pen + weight * _per_image(fn(images), n, "penalty")
                loss = (sign * value + pen).sum()
                loss.backward()
                if not seen:
                    seen["value"] = value.detach().to("cpu", torch.float64).numpy()
                    seen["pen"] = pen.detach().to("cpu", torch.float64).numpy()
                return loss

            opt.step(closure)
            if blur_every and blur_sigma and (step + 1) % blur_every == 0 and step + 1 < steps:
                with torch.no_grad():
                    param.assign(gaussian_blur(param(), blur_sigma))
            live = ~done
            history[step, live] = seen["value"][live]
            pen_history[step, live] = seen["pen"][live]
            ran[live] = step + 1
            score = sign * seen["value"]
            better = live & (score < best - min_delta)
            best[better] = score[better]
            last_better[better] = step
            if patience is not None:
                stop = live & (step - last_better >= patience)
                if stop.any():
                    with torch.no_grad():
                        images = param().detach().cpu()
                    for i in np.flatnonzero(stop):
                        kept[i] = images[i].clone()
                    done |= stop
            bar.update(1)
            if done.all():
                break
    n_run = int(ran.max())
    with torch.no_grad():
        final = param().detach().cpu()
    images = torch.stack([kept[i] if kept[i] is not None else final[i] for i in range(n)])
    if done.any():
        log.info("stopped early (patience %d): %d of %d images", patience, int(done.sum()), n)
    return OptimizeResult(images, history[:n_run], pen_history[:n_run], ran, done.copy(),
                          sign * best)
