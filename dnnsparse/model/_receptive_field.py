"""Theoretical receptive fields of every layer, from the operations the network runs.

The receptive-field arithmetic of Araujo, Norris & Sim (2019, "Computing receptive
fields of convolutional neural networks", Distill) is applied to each operation of
one forward pass of a blank image. A :class:`torch.overrides.TorchFunctionMode`
sees every ``conv2d``, pooling and padding call that the network's modules make, with
their kernel, stride, padding and dilation, and attaches to each tensor the geometry
of its map (per axis: receptive-field size ``r``, jump ``j`` between neighbouring
units, centre ``s`` of the first unit, in input pixels). For a convolution or pooling
with effective kernel ``k' = d (k - 1) + 1``, stride ``t`` and leading padding ``p``::

    r_out = r_in + (k' - 1) j_in      j_out = j_in t      s_out = s_in + ((k' - 1) / 2 - p) j_in

An operation of several maps of the same size (a residual sum, a concatenation of
Inception branches) takes the union of their fields -- the field of a layer is the
union over its channels: after a concatenation each channel sees only its own
branch's field, until a convolution or a sum mixes them. An operation that mixes all
positions (flatten, a linear layer, a global mean) makes the field the whole image. So the
arithmetic covers any module tree, not only sequential ones: AlexNet, VGG, ResNet,
GoogLeNet, EfficientNet and custom networks alike.

Convolutions are not computed during this pass (their output shape is taken from
PyTorch on the ``meta`` device), so the trace costs little even for large networks.

Examples
--------
>>> from dnnsparse.model import load_dnn
>>> rf = theoretical_rf(load_dnn("alexnet", weights="random"), ["conv5"])
>>> rf["conv5"][0].size, rf["conv5"][0].jump
((163, 163), (16, 16))
"""
import contextlib
import logging
import math
from dataclasses import dataclass

import torch
from torch.overrides import TorchFunctionMode

from ..errors import InputError
from ._hooks import LayerCapture, as_4d

__all__ = ["RFGeometry", "theoretical_rf"]

log = logging.getLogger(__name__)

_ATTR = "_dnnsparse_rf"


@contextlib.contextmanager
def eval_mode(module):
    """Run the block with ``module`` in eval mode; every submodule's mode is restored after.

    The probing passes here (blank images) must not fold into a BatchNorm's running
    statistics when a network is being trained.
    """
    modes = [(m, m.training) for m in module.modules()]
    try:
        module.eval()
        yield module
    finally:
        for m, training in modes:
            m.training = training


def _num(x):
    """An integral float as int (tidy tables); others unchanged."""
    return int(x) if float(x).is_integer() else float(x)


@dataclass(frozen=True)
class RFGeometry:
    """Receptive field of a layer's units, per axis (rows, columns), in input pixels.

    Attributes
    ----------
    size : (float, float)
        Receptive-field height and width (``nan`` for ``scope != "local"``).
    jump : (float, float)
        Distance in input pixels between neighbouring units (the effective stride).
    centre : (float, float)
        Centre of the first unit's field (row 1, column 1), in 0-based pixel
        coordinates (pixel ``i`` spans ``[i - 0.5, i + 0.5]``); may lie outside the image.
    scope : {"local", "global", "unknown"}
        "global": every unit sees the whole image; "unknown": an operation the
        arithmetic does not cover (e.g. upsampling) came before.
    exact : bool
        False after a non-uniform adaptive pooling (window sizes vary; the widest is used).
    croppable : bool
        Only fixed windows (no adaptive pooling) lie between the input and the layer, so
        a unit's value is the same on any crop of the input that contains its field and
        starts a multiple of the jump from the image's corner (occlusion maps of units
        use this).
    """
    size: tuple
    jump: tuple
    centre: tuple
    scope: str = "local"
    exact: bool = True
    croppable: bool = True

    @classmethod
    def identity(cls):
        return cls((1, 1), (1, 1), (0, 0))

    @classmethod
    def whole(cls, scope="global", exact=True):
        nan = (math.nan, math.nan)
        return cls(nan, nan, nan, scope=scope, exact=exact)

    @property
    def padding(self):
        """Effective padding per axis: how far the first field starts before pixel 0."""
        return tuple(_num((r - 1) / 2 - s) for r, s in zip(self.size, self.centre))

    def box(self, row, col):
        """Pixel bounds ``(top, bottom, left, right)`` (inclusive, 0-based, unclipped) of
        the field of the unit at 1-based ``(row, col)``."""
        if self.scope != "local":
            raise ValueError(f"a {self.scope} receptive field has no box")
        out = []
        for i, pos in enumerate((row, col)):
            c = self.centre[i] + (pos - 1) * self.jump[i]
            half = (self.size[i] - 1) / 2
            out += [_num(c - half), _num(c + half)]
        return tuple(out)

    def as_row(self):
        """Table cells: size, jump, centre and effective padding per axis."""
        keys = ("size", "jump", "centre", "padding")
        vals = (self.size, self.jump, self.centre,
                self.padding if self.scope == "local" else (math.nan, math.nan))
        row = {}
        for k, v in zip(keys, vals):
            row[f"{k}_row"], row[f"{k}_col"] = (_num(x) if math.isfinite(x) else x for x in v)
        return row


def _axis_window(r, j, s, k, stride, pad, dilation=1):
    k_eff = dilation * (k - 1) + 1
    return r + (k_eff - 1) * j, j * stride, s + ((k_eff - 1) / 2 - pad) * j


def _window(g, kernel, stride, pad, dilation=(1, 1), exact=True):
    if g.scope != "local":
        return g
    axes = [_axis_window(g.size[i], g.jump[i], g.centre[i], kernel[i], stride[i], pad[i],
                         dilation[i]) for i in range(2)]
    return RFGeometry(*(tuple(_num(a[n]) for a in axes) for n in range(3)),
                      exact=g.exact and exact, croppable=g.croppable)


def _pair(v, default=None):
    if v is None:
        v = default
    if isinstance(v, (list, tuple)):
        return tuple(v) if len(v) == 2 else (v[0], v[0])
    return (v, v)


def _bind(args, kwargs, names, defaults):
    """Arguments of a functional call by name (positional ones first)."""
    bound = dict(zip(names, args))
    for n in names:
        if n not in bound:
            bound[n] = kwargs.get(n, defaults.get(n))
    return bound


def _conv_padding(padding, kernel, dilation):
    if padding == "valid":
        return (0, 0)
    if padding == "same":
        # PyTorch puts the odd pixel of a 'same' padding after the map
        return tuple((d * (k - 1)) // 2 for k, d in zip(kernel, dilation))
    return _pair(padding, 0)


def _conv(g, a, out):
    kernel = tuple(a["weight"].shape[-2:])
    dilation = _pair(a["dilation"], 1)
    pad = _conv_padding(a["padding"], kernel, dilation)
    return _window(g, kernel, _pair(a["stride"], 1), pad, dilation)


def _pool(g, a, out):
    kernel = _pair(a["kernel_size"])
    stride = _pair(a["stride"] if a["stride"] not in (None, ()) else kernel)
    return _window(g, kernel, stride, _pair(a.get("padding"), 0), _pair(a.get("dilation"), 1))


def _adaptive(g, a, out, inp):
    """PyTorch's adaptive windows ``[floor(i n / m), ceil((i + 1) n / m))``."""
    kernel, stride, exact = [], [], True
    for n, m in zip(inp.shape[-2:], out.shape[-2:]):
        if n % m == 0:
            kernel.append(n // m)
            stride.append(n // m)
        else:
            exact = False
            kernel.append(max(math.ceil((i + 1) * n / m) - (i * n) // m for i in range(m)))
            stride.append(n / m)
    g = _window(g, kernel, stride, (0, 0), exact=exact)
    # the windows depend on the map's size: a crop of the input would change them
    return RFGeometry(g.size, g.jump, g.centre, g.scope, g.exact, croppable=False)


def _pad(g, a, out):
    p = list(a["pad"]) + [0] * 4
    # F.pad lists the last dimension first: (left, right, top, bottom)
    return _window(g, (1, 1), (1, 1), (p[2], p[0]))


_CONV = ("conv2d",)
_POOLS = {"max_pool2d": (("input", "kernel_size", "stride", "padding", "dilation"), {}),
          "_max_pool2d": (("input", "kernel_size", "stride", "padding", "dilation"), {}),
          "max_pool2d_with_indices": (("input", "kernel_size", "stride", "padding",
                                       "dilation"), {}),
          "avg_pool2d": (("input", "kernel_size", "stride", "padding"), {}),
          "lp_pool2d": (("input", "norm_type", "kernel_size", "stride"), {})}
_ADAPTIVE = ("adaptive_avg_pool2d", "adaptive_max_pool2d", "adaptive_max_pool2d_with_indices",
             "_adaptive_max_pool2d")
# operations that move pixels in ways the arithmetic does not describe
_UNSUPPORTED = ("conv_transpose2d", "interpolate", "upsample", "upsample_nearest",
                "upsample_bilinear", "grid_sample", "pixel_shuffle", "pixel_unshuffle",
                "unfold", "fold", "affine_grid", "roll", "flip", "rot90")


def _tensors(obj):
    if torch.is_tensor(obj):
        yield obj
    elif isinstance(obj, (list, tuple)):
        for o in obj:
            yield from _tensors(o)
    elif isinstance(obj, dict):
        for o in obj.values():
            yield from _tensors(o)


def _union(geoms):
    """Field of a map computed from several maps of the same size."""
    if any(g.scope == "unknown" for g in geoms):
        return RFGeometry.whole("unknown")
    if any(g.scope == "global" for g in geoms):
        return RFGeometry.whole("global", exact=all(g.exact for g in geoms))
    if len(geoms) == 1:
        return geoms[0]
    exact = all(g.exact for g in geoms) and len({g.jump for g in geoms}) == 1
    croppable = all(g.croppable for g in geoms)
    size, jump, centre = [], [], []
    for i in range(2):
        lo = min(g.centre[i] - (g.size[i] - 1) / 2 for g in geoms)
        hi = max(g.centre[i] + (g.size[i] - 1) / 2 for g in geoms)
        size.append(_num(hi - lo + 1))
        centre.append(_num((lo + hi) / 2))
        jump.append(max(g.jump[i] for g in geoms))
    return RFGeometry(tuple(size), tuple(jump), tuple(centre), exact=exact,
                      croppable=croppable)


class _Tracer(TorchFunctionMode):
    """Attaches an :class:`RFGeometry` to every tensor computed from the input."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        inputs = [t for t in _tensors((args, kwargs)) if hasattr(t, _ATTR)]
        if name in _CONV and inputs:
            out = self._conv_shape_only(func, args, kwargs)
        else:
            out = func(*args, **kwargs)
        if not inputs:
            return out
        first = inputs[0]
        geom = self._geometry(name, func, args, kwargs, first, inputs, out)
        for t in _tensors(out):
            try:
                setattr(t, _ATTR, geom)
            except (AttributeError, RuntimeError):    # e.g. a C++-only tensor view
                pass
        return out

    @staticmethod
    def _conv_shape_only(func, args, kwargs):
        # The geometry needs the output's shape, not its values: let PyTorch work the
        # shape out on the meta device and return zeros (no multiply-adds).
        meta = [a.to("meta") if torch.is_tensor(a) else a for a in args]
        meta_kw = {k: v.to("meta") if torch.is_tensor(v) else v for k, v in kwargs.items()}
        shape = func(*meta, **meta_kw).shape
        x = args[0] if args else kwargs["input"]
        return torch.zeros(shape, dtype=x.dtype, device=x.device)

    @staticmethod
    def _geometry(name, func, args, kwargs, first, inputs, out):
        g = _union([getattr(t, _ATTR) for t in inputs])
        outs = list(_tensors(out))
        if not outs:
            return g
        res = outs[0]
        if name in _CONV:
            a = _bind(args, kwargs, ("input", "weight", "bias", "stride", "padding", "dilation"),
                      {"stride": 1, "padding": 0, "dilation": 1})
            return _conv(getattr(a["input"], _ATTR, g), a, res)
        if name in _POOLS:
            names, defaults = _POOLS[name]
            a = _bind(args, kwargs, names, defaults)
            return _pool(getattr(a["input"], _ATTR, g), a, res)
        if name in _ADAPTIVE:
            return _adaptive(getattr(first, _ATTR), {}, res, first)
        if name == "pad":
            return _pad(g, _bind(args, kwargs, ("input", "pad"), {}), res)
        same = (res.ndim >= 2 and all(t.ndim >= 2 and t.shape[-2:] == res.shape[-2:]
                                      for t in inputs))
        if same and name not in _UNSUPPORTED:
            return g
        if name in _UNSUPPORTED:
            log.warning("receptive field: %s is not covered by the arithmetic; later layers "
                        "are marked 'unknown'", name)
            return RFGeometry.whole("unknown")
        # the map's positions were mixed (flatten, linear, a global mean): whole image
        return RFGeometry.whole("global", exact=g.exact)


def theoretical_rf(dnn, layers=None):
    """Theoretical receptive field of each layer's units.

    Parameters
    ----------
    dnn : DNN
    layers : list of str, optional
        Default: every layer of ``dnn`` (those its forward pass reaches).

    Returns
    -------
    dict of str to (RFGeometry, tuple)
        ``{layer: (geometry, (n_chn, n_row, n_col))}`` in forward order.

    Examples
    --------
    >>> rf = theoretical_rf(load_dnn("vgg16", weights="random"))      # doctest: +SKIP
    >>> rf["conv13_maxpool"][0].size                                    # doctest: +SKIP
    (212, 212)
    """
    if getattr(dnn, "clip_len", None):      # VideoDNN: (n, 3, T, H, W) input, 3-D kernels
        raise InputError(f"{dnn.name} is a clip network (3-D convolutions over time and "
                         "space); the theoretical receptive field is computed for image "
                         "networks only.")
    layers = dnn.layers if layers is None else list(layers)

    def reduce(output):
        out = output[0] if isinstance(output, (tuple, list)) else output
        geom = getattr(out, _ATTR, None) or RFGeometry.whole("unknown")
        return geom, tuple(as_4d(out).shape[1:])

    param = next(dnn.module.parameters(), None)
    dtype = param.dtype if param is not None and param.is_floating_point() else torch.float32
    x = torch.zeros((1, 3) + tuple(dnn.input_size), dtype=dtype, device=dnn.device)
    setattr(x, _ATTR, RFGeometry.identity())
    # the pass ends at the deepest requested layer (what follows may not even run on
    # the input size, e.g. a classifier behind a narrowed feature extractor)
    with torch.inference_mode(), eval_mode(dnn.module), _Tracer(), LayerCapture(
            dnn.register_layer_hook, dict.fromkeys(layers, reduce)) as capture:
        found = capture.run(dnn.module, x)
    missing = [layer for layer in layers if layer not in found]
    if missing:
        log.info("layers not reached by the forward pass (left out): %s", ", ".join(missing))
    return {layer: found[layer] for layer in layers if layer in found}
