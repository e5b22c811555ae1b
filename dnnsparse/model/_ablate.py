"""Ablation: silence channels or units of a loaded network, and sweep a layer's channels.

Spelling (the target syntax of :mod:`._targets`, channels 1-based)::

    LAYER:CHN[,CHN...]     channels of a layer, e.g. conv5:12,40
    LAYER:CHN@ROW,COL      one unit (the position form of a channel target)

Two modes (:data:`ABLATION_MODES`):

=========  ==========================================================================
mode       what is done
=========  ==========================================================================
weights    The module producing the layer's output has the channel's weights AND bias
           set to 0 (DNNBrain's ``ablate`` left the bias). For a layer that is not a
           convolution/linear module itself (``conv5_relu``, ``conv5_maxpool``) the
           producer is traced back through ReLU-like, pooling, dropout and identity
           modules (all keep channel c at 0 when it is 0). A normalisation layer
           (BatchNorm...) taking the convolution's output has its scale gamma_c AND
           shift beta_c set to 0 too: ``gamma (x - mu) / sigma + beta`` is then exactly
           0, where zeroing beta alone would leave ``-gamma mu / sigma``; a layer that
           *is* a normalisation layer is silenced the same way. Channel c is exactly 0
           at the convolution and after its normalisation. Units cannot be ablated by
           weights (a convolution shares them across positions); modules run more than
           once per pass (shared) are refused: use ``hook``.
hook       A forward hook on the layer returns its output with the channels (or the
           unit) set to 0; nothing else changes. Runs before any other hook on the
           module, so extraction there records the zeros.
=========  ==========================================================================

Applied ablations are recorded on the network (``dnn.ablations``) and written into
every ``.act.h5`` file it extracts (attributes ``ablate``, ``ablate_mode``).

:func:`sweep_batch` measures, for one batch, targets and outputs with each channel
of a layer ablated in turn: the layer's output is copied once per channel (that
channel set to 0) and only the rest of the network runs on the copies, so the part
before the layer runs once per image. Networks whose later part also reads tensors
from before the layer (residual connections) cannot take the larger batch there;
the inputs are copied instead (one pass per channel, still one decode per image).
"""
import logging
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from ..errors import InputError
from ..utils.validation import check_choice
from ._hooks import LayerCapture, as_4d
from ._receptive_field import eval_mode
from ._targets import parse_target, resolve_targets

__all__ = ["ABLATION_MODES", "Ablation", "AblationHandle", "ablate", "parse_ablation",
           "resolve_ablations", "sweep_batch", "sweep_copies_at_layer", "sweep_point",
           "target_outputs"]

log = logging.getLogger(__name__)

ABLATION_MODES = ("weights", "hook")
_PRODUCERS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)
_NORMS = (_BatchNorm, nn.GroupNorm)
#: modules that keep a channel at 0 when their input channel is 0 (and keep channel order)
_PASS = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU, nn.Tanh, nn.Identity,
         nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d,
         nn.AdaptiveMaxPool2d, nn.AdaptiveAvgPool2d, nn.Dropout, nn.Dropout2d)
_HOW = "write LAYER:CHN[,CHN...] (channels, 1-based) or LAYER:CHN@ROW,COL (one unit)"


@dataclass(frozen=True)
class Ablation:
    """Channels (or one unit) of one layer to silence.

    Attributes
    ----------
    layer : str
    channels : tuple of int
        1-based.
    unit : (int, int) or None
        1-based ``(row, col)`` of a unit of ``channels[0]``.
    mode : {"weights", "hook"}
    """
    layer: str
    channels: tuple
    unit: tuple = None
    mode: str = "weights"

    @property
    def name(self):
        if self.unit is not None:
            return f"{self.layer}:{self.channels[0]}@{self.unit[0]},{self.unit[1]}"
        return f"{self.layer}:{','.join(map(str, self.channels))}"

    def __str__(self):
        return self.name


def parse_ablation(text):
    """``"conv5:12,40"`` → ``(layer, [Target...])`` (spelling only, no network).

    >>> layer, targets = parse_ablation("conv5:12,40")
    >>> layer, [t.channel for t in targets]
    ('conv5', [12, 40])
    """
    spec = str(text).strip()
    layer, sep, rest = spec.partition(":")
    if not sep or "class=" in rest.lower():
        raise InputError(f"cannot read ablation {spec!r}; {_HOW}.")
    try:
        if "@" in rest:
            targets = [parse_target(spec)]
            if targets[0].stat != "position":
                raise InputError(f"a unit is LAYER:CHN@ROW,COL")
        else:
            targets = [parse_target(f"{layer}:{c}") for c in rest.split(",")]
    except InputError as exc:
        raise InputError(f"cannot read ablation {spec!r} ({exc}); {_HOW}.") from None
    return layer.strip(), targets


def resolve_ablations(specs, dnn, *, mode="weights", shapes=None):
    """Parse ablation spellings and check them against ``dnn`` (layer, channel range).

    Parameters
    ----------
    specs : iterable of str or Ablation
    dnn : DNN
    mode : {"weights", "hook"}, default="weights"

    Returns
    -------
    list of Ablation

    Raises
    ------
    InputError, UnknownLayerError
        One line naming the ablation: spelling, unknown layer, channel out of range,
        a unit or shared module with ``mode="weights"``.
    """
    check_choice(mode, ABLATION_MODES, name="ablation mode")
    out = []
    for spec in specs:
        if isinstance(spec, Ablation):
            spec = spec.name
        layer, targets = parse_ablation(spec)
        try:
            targets = resolve_targets(targets, dnn, shapes=shapes)
        except InputError as exc:
            raise type(exc)(f"-ablate {spec}: {exc}") from None
        unit = (targets[0].row, targets[0].col) if targets[0].stat == "position" else None
        channels = tuple(dict.fromkeys(t.channel for t in targets))
        ab = Ablation(targets[0].layer, channels, unit, mode)
        if mode == "weights":
            if unit is not None:
                raise InputError(f"-ablate {spec}: a unit cannot be silenced through the "
                                 f"weights (a convolution shares them across positions); "
                                 f"use the hook mode.")
            _weight_plan(dnn, ab.layer)          # refuses layers without a producer
        out.append(ab)
    return out


def _trace(dnn):
    """``({module path: path of the module that produced its input}, call counts)``.

    From one forward pass of a blank image with hooks on every leaf module; a
    producer is recorded when the module starts (in-place modules return their input).
    The pass runs in eval mode (a BatchNorm in training mode would otherwise fold the
    blank image into its running statistics); each module's mode is restored after.
    """
    produced, inputs, calls, handles = {}, {}, {}, []

    def pre(path):
        def hook(m, args):
            calls[path] = calls.get(path, 0) + 1
            if args and torch.is_tensor(args[0]) and id(args[0]) in produced:
                src, t = produced[id(args[0])]
                if t is args[0]:
                    inputs[path] = src
        return hook

    def post(path):
        def hook(m, args, out):
            if torch.is_tensor(out):
                produced[id(out)] = (path, out)      # holding ``out`` keeps its id unique
        return hook

    for path, m in dnn.module.named_modules():
        if path and not list(m.children()):
            handles += [m.register_forward_pre_hook(pre(path)),
                        m.register_forward_hook(post(path))]
    try:
        x = torch.zeros((1, 3) + tuple(dnn.input_size), device=dnn.device)
        with torch.inference_mode(), eval_mode(dnn.module):
            dnn.module(x)
    finally:
        for h in handles:
            h.remove()
    return inputs, calls


def _weight_plan(dnn, layer):
    """``(modules to zero, path where the output is then 0)`` for weights mode."""
    module, path, call = dnn.resolve(layer)
    inputs, calls = _trace(dnn)
    chain = [path]
    while isinstance(dnn._modules[chain[-1]], _PASS) and chain[-1] in inputs:
        chain.append(inputs[chain[-1]])
    first = dnn._modules[chain[-1]]
    if isinstance(first, _NORMS) and isinstance(dnn._modules.get(inputs.get(chain[-1])),
                                                _PRODUCERS):
        chain.append(inputs[chain[-1]])           # a normalisation's convolution
    zero = [p for p in chain if isinstance(dnn._modules[p], _PRODUCERS + _NORMS)]
    if not zero:
        raise InputError(f"-ablate {layer}: its output is not made by a convolutional, "
                         f"linear or normalisation module through channel-wise operations, "
                         f"so no weights can silence it; use the hook mode.")
    point = path
    if isinstance(dnn._modules[path], _PRODUCERS):
        norms = [p for p, src in inputs.items()
                 if src == path and isinstance(dnn._modules[p], _NORMS)]
        zero += norms
        point = norms[0] if norms else path
    shared = [p for p in zero if calls.get(p, 0) > 1]
    if shared or call is not None:
        raise InputError(f"-ablate {layer}: module {(shared or [path])[0]!r} runs more than "
                         f"once per forward pass; its weights serve every call: use the hook "
                         f"mode.")
    return list(dict.fromkeys(zero)), point


class AblationHandle:
    """Undoes :func:`ablate` (restores the weights, removes the hooks) on ``remove()``."""

    def __init__(self, dnn, ablations, saved, hooks):
        self.dnn, self.ablations, self._saved, self._hooks = dnn, ablations, saved, hooks

    def remove(self):
        with torch.no_grad():
            for p, old in self._saved:
                p.copy_(old)
        for h in self._hooks:
            h.remove()
        for ab in self.ablations:
            if ab in self.dnn.ablations:
                self.dnn.ablations.remove(ab)
        self._saved, self._hooks = [], []


def _zero_hook(channels, unit):
    idx = [c - 1 for c in channels]

    def hook(module, inputs, output):
        out = output.clone()
        view = as_4d(out)
        if unit is None:
            view[:, idx] = 0
        else:
            view[:, idx[0], unit[0] - 1, unit[1] - 1] = 0
        return out
    return hook


def ablate(dnn, specs, *, mode="weights"):
    """Silence channels or units of ``dnn`` in place; see the module docstring.

    Parameters
    ----------
    dnn : DNN
    specs : iterable of str or Ablation
        ``conv5:12,40``, ``conv5:12@3,4``, ...
    mode : {"weights", "hook"}, default="weights"

    Returns
    -------
    AblationHandle
        ``remove()`` undoes it. ``dnn.ablations`` lists the :class:`Ablation` objects in
        place (:meth:`DNN.ablation_attrs` writes them into files).

    Examples
    --------
    >>> handle = ablate(dnn, ["conv5:12,40"], mode="hook")   # doctest: +SKIP
    >>> handle.remove()                                       # doctest: +SKIP
    """
    ablations = resolve_ablations(specs, dnn, mode=mode)
    saved, hooks = [], []
    try:
        for ab in ablations:
            if ab.mode == "hook":
                hooks.append(dnn.register_layer_hook(ab.layer, _zero_hook(ab.channels, ab.unit),
                                                     prepend=True))
                continue
            idx = torch.as_tensor([c - 1 for c in ab.channels])
            for path in _weight_plan(dnn, ab.layer)[0]:
                m = dnn._modules[path]
                for p in (m.weight, m.bias):
                    if p is not None:
                        saved.append((p, p.detach().clone()))
                        with torch.no_grad():
                            p[idx.to(p.device)] = 0
    except BaseException:
        AblationHandle(dnn, [], saved, hooks).remove()
        raise
    dnn.ablations.extend(ablations)
    log.info("ablated %s (%s)", ", ".join(map(str, ablations)), mode)
    return AblationHandle(dnn, ablations, saved, hooks)


# --------------------------------------------------------------------------- sweep
def _copies_hook(chans, n_img, copy):
    """Hook returning the layer's output with block j's channel ``chans[j]`` at 0."""
    k = len(chans)
    j = torch.arange(k)

    def hook(module, inputs, output):
        rep = output.repeat(k, *[1] * (output.ndim - 1)) if copy else output.clone()
        view = as_4d(rep)
        view.view(k, n_img, *view.shape[1:])[j, :, torch.as_tensor(chans)] = 0
        return rep
    return hook


def target_outputs(dnn, x, targets, output_layer, extra=None):
    """Targets' values and the output layer's values in one forward pass.

    Parameters
    ----------
    dnn : DNN
    x : tensor of shape (n, 3, H, W)
    targets : list of Target
    output_layer : str
    extra : (layer, hook), optional
        A further hook registered first on that layer for this pass.

    Returns
    -------
    values : tensor of shape (rows, n_targets)
    output : tensor of shape (rows, n_outputs)
        The output layer flattened per row.
    """
    by_layer = {}
    for i, t in enumerate(targets):
        by_layer.setdefault(t.layer, []).append(i)
    reducers = {l: (lambda out, idx=idx: torch.stack([targets[i].values(out) for i in idx], 1))
                for l, idx in by_layer.items()}
    flat = lambda out: as_4d(out).flatten(1).clone()                 # noqa: E731
    if output_layer in reducers:
        reducers[output_layer] = (lambda out, r=reducers[output_layer]: (r(out), flat(out)))
    else:
        reducers[output_layer] = flat
    handle = None if extra is None else dnn.register_layer_hook(*extra, prepend=True)
    try:
        with LayerCapture(dnn.register_layer_hook, reducers) as cap:
            got = cap.run(dnn.module, x)
    finally:
        if handle is not None:
            handle.remove()
    out = got.get(output_layer)
    if isinstance(out, tuple):
        got[output_layer], out = out
    found = [None] * len(targets)
    for layer, idx in by_layer.items():
        for i, col in zip(idx, got[layer].unbind(1)):
            found[i] = col
    vals = torch.stack(found, 1) if targets else x.new_zeros((x.shape[0], 0))
    return vals, out


def sweep_batch(dnn, x, point, n_channels, targets, output_layer, *, max_rows=512,
                state=None):
    """Targets and outputs of a batch with each of ``n_channels`` channels of ``point`` at 0.

    Parameters
    ----------
    dnn : DNN
    x : tensor of shape (n, 3, H, W)
        Normalised input on the network's device.
    point : str
        Layer (or module path) whose output channel is forced to 0.
    n_channels : int
    targets : list of Target
    output_layer : str
    max_rows : int, default=512
        Copies per forward pass (channels x images).
    state : dict, optional
        Pass the same dict for every batch: it remembers whether copying at the layer
        works for this network (``state["at_layer"]``; set it from
        :func:`sweep_copies_at_layer` so that the first batch does not decide).

    Returns
    -------
    before : (targets (n, T), output (n, K))
    after : (targets (C, n, T), output (C, n, K))
        Tensors in the network's dtype, on its device.
    """
    state = {} if state is None else state
    state.setdefault("at_layer", True)
    n = x.shape[0]
    before = target_outputs(dnn, x, targets, output_layer)
    k = max(1, min(n_channels, max_rows))
    m = max(1, max_rows // k)
    vals = torch.empty((n_channels, n, len(targets)), dtype=before[0].dtype, device=x.device)
    outs = torch.empty((n_channels, n) + before[1].shape[1:], dtype=before[1].dtype,
                       device=x.device)
    for i0 in range(0, n, m):
        xs = x[i0:i0 + m]
        mi = xs.shape[0]
        for c0 in range(0, n_channels, k):
            chans = list(range(c0, min(c0 + k, n_channels)))
            got = None
            if state["at_layer"]:
                try:
                    got = target_outputs(dnn, xs, targets, output_layer,
                                   (point, _copies_hook(chans, mi, True)))
                    if got[1].shape[0] != len(chans) * mi:
                        raise RuntimeError("output rows")
                except RuntimeError as exc:
                    log.info("sweep: copies at %s do not pass through the rest of %s (%s); "
                             "copying the inputs instead", point, dnn.name, exc)
                    state["at_layer"], got = False, None
            if got is None:
                got = target_outputs(dnn, xs.repeat(len(chans), 1, 1, 1), targets, output_layer,
                               (point, _copies_hook(chans, mi, False)))
            tv, ov = got
            if tv.shape[0] == mi:            # targets before the layer do not change
                tv = tv.repeat(len(chans), 1)
            vals[c0:c0 + len(chans), i0:i0 + mi] = tv.view(len(chans), mi, -1)
            outs[c0:c0 + len(chans), i0:i0 + mi] = ov.view(len(chans), mi, -1)
    return before, (vals, outs)


def sweep_copies_at_layer(dnn, point, targets, output_layer):
    """Whether copies of ``point``'s output pass through the rest of ``dnn``.

    One forward pass of 2 blank images with 2 copies each (2 images: a network that
    adds a tensor from before ``point`` later would broadcast a single image's copies
    and seem to work). :func:`sweep_batch` takes the answer as ``state["at_layer"]``,
    so that every batch, wherever it runs, takes the same path (the same numbers).

    Returns
    -------
    bool
    """
    x = torch.zeros((2, 3) + tuple(dnn.input_size), device=dnn.device)
    try:
        with torch.inference_mode(), eval_mode(dnn.module):
            got = target_outputs(dnn, x, targets, output_layer,
                                 (point, _copies_hook([0, 0], 2, True)))
    except RuntimeError as exc:
        log.info("sweep: copies at %s do not pass through the rest of %s (%s); copying "
                 "the inputs instead", point, dnn.name, exc)
        return False
    return got[1].shape[0] == 4


def sweep_point(dnn, layer, mode):
    """Where a sweep forces 0 so that it equals :func:`ablate` with ``mode``."""
    return layer if mode == "hook" else _weight_plan(dnn, layer)[1]
