"""Incremental occlusion: recompute only the part of each layer an occluder changes.

An occluder changes a box of the input; a convolution or pooling then changes only the
outputs whose windows overlap the changed box of its input, a channel-wise operation
(ReLU, BatchNorm in eval mode, dropout in eval mode) the same box. For networks whose
part up to the target layer is a plain chain of such modules (AlexNet's and VGG's
``features``), :class:`OcclusionChain` keeps every layer's output on the unoccluded
image and, for a batch of occluder placements, computes each layer only on a window
(one size for all placements) holding its changed box: the layer's operation on the
crop of its input that those outputs read, with the unchanged values of the original
around the changed ones (Nakandala et al. 2019, "Incremental and approximate inference
for faster occlusion-based deep CNN explanations", SIGMOD). The target layer's whole
map is then the original with the window replaced, so any statistic of it (mean, max,
a position) is that of the occluded image: the same arithmetic as a full forward pass
per output value (rounding may differ: convolution libraries sum in an order that
depends on the input size).

The chain is found by a traced forward pass and checked on the first image: it must
reproduce the layer's output exactly, else the caller falls back to full passes.
"""
import logging

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from ._receptive_field import eval_mode

__all__ = ["OcclusionChain"]

log = logging.getLogger(__name__)

#: Modules applied position by position (in eval mode): the changed box passes unchanged.
_POINTWISE = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU, nn.Tanh,
              nn.Sigmoid, nn.Hardswish, nn.Identity, nn.Dropout, nn.Dropout2d, _BatchNorm)


def _pair(v):
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


def _window_op(m):
    """``(kernel_eff, stride, padding, pad value, fn(crop))`` of a windowed module, or None."""
    if isinstance(m, nn.Conv2d):
        if m.padding_mode != "zeros" or isinstance(m.padding, str):
            return None
        k, d = _pair(m.kernel_size), _pair(m.dilation)
        keff = tuple(di * (ki - 1) + 1 for ki, di in zip(k, d))
        return (keff, _pair(m.stride), _pair(m.padding), 0.0,
                lambda x: F.conv2d(x, m.weight, m.bias, m.stride, 0, m.dilation, m.groups))
    if isinstance(m, nn.MaxPool2d) and not m.return_indices:
        k, d = _pair(m.kernel_size), _pair(m.dilation)
        keff = tuple(di * (ki - 1) + 1 for ki, di in zip(k, d))
        # padding is -inf for max pooling; a ceil-mode window past the map reads -inf too
        return (keff, _pair(m.stride or m.kernel_size), _pair(m.padding), -np.inf,
                lambda x: F.max_pool2d(x, m.kernel_size, m.stride or m.kernel_size, 0,
                                       m.dilation))
    if isinstance(m, nn.AvgPool2d) and not m.ceil_mode and m.divisor_override is None \
            and _pair(m.padding) == (0, 0):
        k = _pair(m.kernel_size)
        return (k, _pair(m.stride or m.kernel_size), (0, 0), 0.0,
                lambda x: F.avg_pool2d(x, m.kernel_size, m.stride or m.kernel_size, 0))
    return None


def _plain_chain(dnn, paths):
    """Leaf modules run one after the other from the input up to the last of ``paths``.

    Returns ``[(path, module)]`` or None when the calls before it do not form a chain
    (a branch, a functional operation between modules is caught later by the check).
    """
    order, handles, state = [], [], {"prev": None}
    x = torch.zeros((1, 3) + tuple(dnn.input_size), dtype=_net_dtype(dnn), device=dnn.device)

    def pre(path):
        def hook(m, args):
            src = args[0] if args and torch.is_tensor(args[0]) else None
            order.append((path, m, src is not None and
                          (src is state["prev"] if order else src is x)))
        return hook

    def post(m, args, out):
        state["prev"] = out

    for path, m in dnn.module.named_modules():
        if path and not list(m.children()):
            handles += [m.register_forward_pre_hook(pre(path)), m.register_forward_hook(post)]
    try:
        with torch.inference_mode(), eval_mode(dnn.module):
            try:
                dnn.module(x)
            except Exception:        # noqa: BLE001 -- only a probe: no chain then
                pass
    finally:
        for h in handles:
            h.remove()
    last = max((i for i, (p, _, _) in enumerate(order) if p in paths), default=None)
    if last is None or len({p for p, _, _ in order[:last + 1]}) != last + 1:
        return None                  # a target not reached, or a module run twice
    chain = order[:last + 1]
    if not all(ok for _, _, ok in chain):
        return None
    return [(p, m) for p, m, _ in chain]


def _net_dtype(dnn):
    """The floating dtype of the network's parameters (float32 without any)."""
    p = next(dnn.module.parameters(), None)
    return p.dtype if p is not None and p.is_floating_point() else torch.float32


def _changed_outputs(op, changed, n_out):
    """``(lo, hi)`` (P, 2): the outputs ``[lo, hi)`` whose windows meet the changed boxes
    ``changed`` (P, 4: row lo, row hi, col lo, col hi, half-open) of the input."""
    keff, stride, pad = op[:3]
    lo = np.empty((len(changed), 2), dtype=np.int64)
    hi = np.empty_like(lo)
    for a in range(2):
        b0, b1 = changed[:, 2 * a], changed[:, 2 * a + 1]
        # outputs o whose window [o s - p, o s - p + k) meets [b0, b1)
        lo[:, a] = np.maximum(0, (b0 + pad[a] - keff[a]) // stride[a] + 1)
        hi[:, a] = np.minimum(n_out[a], (b1 - 1 + pad[a]) // stride[a] + 1)
    return lo, hi


def _hooked(m):
    return bool(m._forward_hooks or m._forward_pre_hooks)


class OcclusionChain:
    """Layers up to the target layers as a chain, for incremental occlusion.

    Use :meth:`build`, which returns None for networks (or targets) it does not cover;
    :func:`~dnnsparse.model.occlusion_maps` uses it by itself (``incremental=True``).

    Examples
    --------
    >>> chain = OcclusionChain.build(dnn, resolve_targets(["conv3:40"], dnn))  # doctest: +SKIP
    >>> chain.check(x[:1])                                                     # doctest: +SKIP
    True
    """

    def __init__(self, dnn, steps, layer_paths):
        self.dnn, self.steps, self.layer_paths = dnn, steps, layer_paths
        self._widths = None

    @classmethod
    def build(cls, dnn, targets):
        """An :class:`OcclusionChain` for ``targets`` (channel targets of spatial layers)
        or None: class targets, hooks on the modules (Top-K, hook ablations), modules
        other than 2-d convolutions, max/avg pooling and position-wise ones, or a
        network whose layers before the targets are not one chain."""
        if any(t.kind == "class" for t in targets):
            return None
        layer_paths = {}
        for t in targets:
            _, path, call = dnn.resolve(t.layer)
            if call is not None:
                return None
            layer_paths[t.layer] = path
        chain = _plain_chain(dnn, set(layer_paths.values()))
        if chain is None:
            return None
        steps = []
        for path, m in chain:
            if _hooked(m):
                return None
            op = _window_op(m)
            if op is None and not (isinstance(m, _POINTWISE) and not m.training):
                return None
            steps.append((path, m, op))
        return cls(dnn, steps, layer_paths)

    def plan(self, x, rows, cols, size):
        """Fix every windowed step's window size from all placements of an image (so that
        results do not depend on how the placements are batched); returns ``self``."""
        originals = self.originals(x)
        starts = np.stack([rows, cols], 1)
        changed = np.stack([rows, rows + size, cols, cols + size], 1)
        self._widths = []
        for (_, _, op), orig in zip(self.steps, originals):
            if op is None:
                self._widths.append(None)
                continue
            lo, hi = _changed_outputs(op, changed, orig.shape[-2:])
            width = (hi - lo).max(axis=0)
            self._widths.append(width)
            changed = np.stack([lo[:, 0], hi[:, 0], lo[:, 1], hi[:, 1]], 1)
        return self

    def originals(self, x):
        """Every step's output for one image ``x`` (1, 3, H, W): a list of tensors."""
        outs = []
        with torch.inference_mode():
            for _, m, _ in self.steps:
                x = m(x.clone())       # a copy in: an in-place module keeps the one before
                outs.append(x)
        return outs

    def check(self, x):
        """Whether the chain reproduces the target layers' outputs on ``x`` exactly."""
        got = dict(zip((p for p, _, _ in self.steps), self.originals(x)))
        with torch.inference_mode():
            ref = self.dnn.forward_layers(x, list(self.layer_paths), stop_early=True)
        same = all(torch.equal(got[p], ref[layer]) for layer, p in self.layer_paths.items())
        if not same:
            log.info("occlusion: %s's modules do not reproduce its layers as a chain; "
                     "full forward passes instead", self.dnn.name)
        return same

    def values(self, x, originals, fill, rows, cols, size, targets):
        """Targets on occluded copies of one image.

        Parameters
        ----------
        x : tensor (1, 3, H, W)
            The (normalised) image.
        originals : list of tensors
            ``self.originals(x)``.
        fill : tensor (P, 3, size, size)
            What each placement puts into its box.
        rows, cols : ndarray of int (P,)
            Top-left pixel of each placement.
        size : int
            Occluder side.
        targets : list of Target

        Returns
        -------
        tensor (P, n_targets)
        """
        dev = fill.device
        P = len(rows)
        pi = torch.arange(P, device=dev)[:, None, None]
        new = fill                                                 # (P, C, wr, wc)
        start = np.stack([rows, cols], 1)                          # (P, 2) window starts
        changed = np.stack([rows, rows + size, cols, cols + size], 1)   # [lo, hi) boxes
        prev = x
        found = {}
        by_path = {}
        for layer, path in self.layer_paths.items():
            by_path.setdefault(path, []).append(layer)
        for (path, m, op), orig, width in zip(self.steps, originals, self._widths):
            if op is None:
                new = m(new)
            else:
                new, start, changed = self._window_step(op, prev, new, start, changed,
                                                        orig.shape[-2:], pi, width)
            prev = orig
            for layer in by_path.get(path, ()):
                full = orig.expand(P, *orig.shape[1:]).clone()
                wr, wc = new.shape[-2:]
                r = torch.as_tensor(start[:, 0], device=dev)[:, None, None] + \
                    torch.arange(wr, device=dev)[None, :, None]
                c = torch.as_tensor(start[:, 1], device=dev)[:, None, None] + \
                    torch.arange(wc, device=dev)[None, None, :]
                full.permute(0, 2, 3, 1)[pi, r, c] = new.permute(0, 2, 3, 1)
                found[layer] = full
            if len(found) == len(self.layer_paths):
                break
        return torch.stack([t.values(found[t.layer]) for t in targets], 1)

    @staticmethod
    def _window_step(op, inp, new, start, changed, out_size, pi, width):
        """One windowed module: its outputs on a window of ``width`` holding the changed
        box."""
        keff, stride, pad, pad_value, fn = op
        dev = new.device
        n_in = inp.shape[-2:]
        n_out = tuple(out_size)
        lo, hi = _changed_outputs(op, changed, n_out)
        out_start = np.minimum(lo, np.asarray(n_out) - width)
        crop_len = [(int(width[a]) - 1) * stride[a] + keff[a] for a in range(2)]
        # the input padded once: left by the padding, right far enough for every window
        right = [max(0, (n_out[a] - 1) * stride[a] - pad[a] + keff[a] - n_in[a])
                 for a in range(2)]
        padded = F.pad(inp[0], (pad[1], right[1], pad[0], right[0]), value=pad_value)
        crop_start = out_start * np.asarray(stride)                # in padded coordinates
        rr = torch.as_tensor(crop_start[:, 0], device=dev)[:, None, None] + \
            torch.arange(crop_len[0], device=dev)[None, :, None]
        cc = torch.as_tensor(crop_start[:, 1], device=dev)[:, None, None] + \
            torch.arange(crop_len[1], device=dev)[None, None, :]
        crop = padded.permute(1, 2, 0)[rr, cc]                     # (P, Lr, Lc, C)
        # the changed values of the input that fall into the crop
        wr, wc = new.shape[-2:]
        rel_r = torch.as_tensor(start[:, 0] + pad[0] - crop_start[:, 0], device=dev)
        rel_c = torch.as_tensor(start[:, 1] + pad[1] - crop_start[:, 1], device=dev)
        ir = rel_r[:, None, None] + torch.arange(wr, device=dev)[None, :, None]
        ic = rel_c[:, None, None] + torch.arange(wc, device=dev)[None, None, :]
        ip, ir, ic = torch.broadcast_tensors(pi, ir, ic)
        ok = (ir >= 0) & (ir < crop_len[0]) & (ic >= 0) & (ic < crop_len[1])
        crop[ip[ok], ir[ok], ic[ok]] = new.permute(0, 2, 3, 1)[ok]
        out = fn(crop.permute(0, 3, 1, 2).contiguous())
        boxes = np.stack([lo[:, 0], hi[:, 0], lo[:, 1], hi[:, 1]], 1)
        return out, out_start, boxes
