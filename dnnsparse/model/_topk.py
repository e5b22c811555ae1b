"""Spatial Top-K activation sparsification (Li, Wen, Li & Lee, NeurIPS 2023).

For every channel of every image, keep the ``k`` positions with the largest
absolute activation and zero the rest. Use it as a layer (:class:`TopK`), as a
function (:func:`topk_sparsify`, :func:`topk_mask`), or hook it onto named layers
of a loaded network without changing its module tree (:func:`insert_topk`).

Which positions are kept
------------------------
For ``m`` candidate positions per channel, ``k = max(1, int(fraction * m))``
(the paper's rounding: ``int`` truncates, so ``0.29 * 100`` gives 28). Exactly
``k`` positions are kept. Ties are broken deterministically: among positions
whose ``|x|`` equals the k-th largest value, the lower flat index (row-major
over ``h, w``) wins. The rule is implemented with comparisons against the k-th
largest value and a cumulative count, not with the index order of
``torch.topk`` (which is unspecified for ties), so it holds on every device.
NaN counts as larger than any number (as in ``torch.topk``); ``-0.0`` and
``+0.0`` are equal.

Input ranks
-----------
- ``(n, c, h, w)`` (or ``(n, c, *s)``): per image and channel, over the positions.
- ``(n, c)`` (fully connected): per sample, over the ``c`` features.
- ``(n, tokens, dim)`` (token maps): per sample and feature, over the tokens.

Other ranks raise :class:`~dnnsparse.errors.InputError`. Note that a Conv1d
output ``(n, c, length)`` is read as a token map; transpose it first if the
selection should run over ``length``.
"""
import logging
import math
import numbers
import weakref
from difflib import get_close_matches

import torch
from torch import nn

from ..errors import InputError, UnknownLayerError
from ..utils.validation import check_choice, check_scalar

__all__ = ["MODES", "TopK", "TopKHandle", "insert_topk", "topk_count", "topk_mask",
           "topk_sparsify"]

logger = logging.getLogger(__name__)


def topk_count(fraction, n_positions):
    """Number of kept positions, ``max(1, int(fraction * n_positions))``.

    Parameters
    ----------
    fraction : float in (0, 1]
    n_positions : int
        Candidate positions per channel (``h * w`` for a conv map).

    Returns
    -------
    int

    Examples
    --------
    >>> topk_count(0.1, 55 * 55)
    302
    >>> topk_count(0.001, 13 * 13)
    1
    """
    _check_fraction(fraction)
    return max(1, int(fraction * n_positions))


def _check_fraction(fraction):
    return check_scalar(fraction, name="fraction", kind=numbers.Real, min_val=0, max_val=1,
                        include_min=False)


# --------------------------------------------------------------------------- rows
def _to_rows(x):
    """Reshape ``x`` to ``(rows, positions)``; return it and a function undoing that."""
    if not torch.is_tensor(x):
        raise InputError(f"Top-K needs a torch tensor; got {type(x).__name__}.")
    if not x.is_floating_point():
        raise InputError(f"Top-K needs a real floating-point tensor; got dtype {x.dtype}.")
    shape = tuple(x.shape)
    if x.ndim == 2 or x.ndim >= 4:
        # (n, c) over features; (n, c, *spatial) over positions of each channel
        lead = shape[:1] if x.ndim == 2 else shape[:2]
        rows = x.reshape(-1, math.prod(shape[len(lead):])) if x.numel() else x.reshape(0, 0)
        return rows, lambda r: r.reshape(shape)
    if x.ndim == 3:
        # (n, tokens, dim): select over tokens for every feature -> rows (n*dim, tokens)
        n, t, d = shape
        rows = x.transpose(1, 2).reshape(n * d, t)
        return rows, lambda r: r.reshape(n, d, t).transpose(1, 2)
    raise InputError(f"Top-K needs a 2-D (n, features), 3-D (n, tokens, dim) or 4-D "
                     f"(n, c, h, w) tensor; got {x.ndim}-D shape {shape}.")


# Non-negative IEEE floats order like their bit patterns read as signed integers
# (+0 < subnormals < normals < inf < NaN). Selecting on that integer view is exact,
# about 1.5x faster than torch.topk on floats on CPU, and ranks NaN above
# everything, as torch.topk does.
_INT_VIEW = {torch.float16: torch.int16, torch.bfloat16: torch.int16,
             torch.float32: torch.int32, torch.float64: torch.int64}


def _rows_mask(rows, k, *, zero_ties_matter=True):
    """Boolean mask of the ``k`` largest ``|rows|`` per row, ties to lower index.

    ``rows`` is ``(r, m)``. Returns the mask and a scratch tensor of the same
    shape and dtype as ``rows`` (no longer needed, free to overwrite). With ``zero_ties_matter=False`` ties at a threshold of 0
    are left unresolved (all of them kept): every tied position then holds a zero,
    so the sparsified output is the same and the costly resolution is skipped.
    """
    with torch.no_grad():
        a = rows.detach().abs()
        if a.dtype in _INT_VIEW:
            a = a.view(_INT_VIEW[a.dtype])
        else:   # other float formats: rank NaN first by hand
            a = torch.nan_to_num(a, nan=float("inf"))
        m = a.shape[-1]
        if k < m:
            # the k-th and (k+1)-th largest: when they are equal, more than k
            # positions reach the threshold (a tie straddles it); counting
            # ``a >= thr`` per row instead would cost a full pass and a copy
            top = torch.topk(a, k + 1, dim=-1, sorted=False).values           # (r, k+1)
            two = torch.topk(top, 2, dim=-1, largest=False, sorted=True).values  # (r, 2)
            thr, excess = two[:, 1:], two[:, 0] == two[:, 1]
        else:
            thr = a.amin(-1, keepdim=True)
            excess = torch.zeros(a.shape[0], dtype=torch.bool, device=a.device)
        keep = a >= thr                                                         # (r, m)
        if not zero_ties_matter:
            excess &= thr.squeeze(-1) > 0
        if bool(excess.any()):   # resolve the ties in those rows only
            idx = excess.nonzero().squeeze(1)
            sub, sub_thr = a[idx], thr[idx]
            above = sub > sub_thr
            tied = sub == sub_thr
            need = k - above.sum(-1, keepdim=True)
            # cumsum along the positions counts tied entries from the low index up
            keep[idx] = above | (tied & (tied.cumsum(-1) <= need))
    return keep, a.view(rows.dtype)


# each variant: (rows, keep mask, k, out buffer or None) -> sparsified rows
def _apply_keep(rows, keep, k, out):
    return torch.where(keep, rows, rows.new_zeros(()), out=out)


def _apply_mean(rows, keep, k, out):
    kept = torch.where(keep, rows, rows.new_zeros(()), out=out)
    mean = kept.sum(-1, keepdim=True, dtype=torch.float64) / k   # float64 accumulation
    return torch.where(keep, mean.to(rows.dtype), rows.new_zeros(()), out=out)


def _apply_inverse(rows, keep, k, out):
    return torch.where(keep, rows.new_zeros(()), rows, out=out)


MODES = {"keep": _apply_keep, "mean": _apply_mean, "inverse": _apply_inverse}
"""Registry of Top-K variants: the kept values, their channel mean (the paper's
``Top_K_Mean_Rpl``) or only the non-Top-K values (the paper's ablation)."""


# ------------------------------------------------------------------ public functions
def topk_mask(x, fraction):
    """Boolean mask of the Top-K positions of ``x`` (exactly ``k`` per channel).

    Parameters
    ----------
    x : torch.Tensor of shape (n, c, h, w), (n, c) or (n, tokens, dim)
        See the module docstring for the axis the selection runs over.
    fraction : float in (0, 1]
        Fraction of positions kept; ``k = max(1, int(fraction * m))``.

    Returns
    -------
    torch.Tensor of bool, same shape as ``x``
        True at the kept positions; ties go to the lower flat index.

    Examples
    --------
    >>> x = torch.tensor([[[[1., 3.], [3., -3.]]]])
    >>> topk_mask(x, 0.5).int().tolist()
    [[[[0, 1], [1, 0]]]]
    """
    _check_fraction(fraction)
    rows, back = _to_rows(x)
    if rows.numel() == 0:
        return torch.zeros_like(x, dtype=torch.bool)
    return back(_rows_mask(rows, topk_count(fraction, rows.shape[-1]))[0])


def topk_sparsify(x, fraction, *, mode="keep"):
    """Keep the ``k`` largest-``|x|`` positions of every channel, zero the rest.

    Parameters
    ----------
    x : torch.Tensor of shape (n, c, h, w), (n, c) or (n, tokens, dim)
        Activations (float). See the module docstring for the selection axis
        of each rank.
    fraction : float in (0, 1]
        Fraction of positions kept: ``k = max(1, int(fraction * m))`` of the
        ``m`` positions. In mode ``"keep"``, 1 returns ``x`` itself (in
        ``"mean"`` mode every position then holds its channel mean, in
        ``"inverse"`` mode all are zero).
    mode : {"keep", "mean", "inverse"}, default="keep"
        ``"keep"``: kept positions hold their input value (signs kept).
        ``"mean"``: kept positions all hold the mean of the channel's kept
        values (accumulated in float64); a channel with fewer than ``k``
        non-zero values fills its kept set with zeros (lowest index first),
        which count in the mean. ``"inverse"``: the Top-K positions are
        zeroed and the others keep their values.

    Returns
    -------
    torch.Tensor, same shape and dtype as ``x``
        Differentiable: gradients reach only the positions whose value is
        passed on (in ``"mean"`` mode, through the mean).

    Raises
    ------
    InputError
        For a fraction outside (0, 1], an unknown mode, a non-float tensor or
        an unsupported rank.

    Examples
    --------
    >>> x = torch.tensor([[[[1., -4.], [2., 3.]]]])
    >>> topk_sparsify(x, 0.5).tolist()
    [[[[0.0, -4.0], [0.0, 3.0]]]]
    >>> topk_sparsify(x, 0.5, mode="mean").tolist()
    [[[[0.0, -0.5], [0.0, -0.5]]]]
    >>> topk_sparsify(x, 0.5, mode="inverse").tolist()
    [[[[1.0, 0.0], [2.0, 0.0]]]]
    """
    _check_fraction(fraction)
    check_choice(mode, MODES, name="mode")
    rows, back = _to_rows(x)
    if rows.numel() == 0 or (fraction == 1 and mode == "keep"):
        return x
    k = topk_count(fraction, rows.shape[-1])
    keep, scratch = _rows_mask(rows, k, zero_ties_matter=(mode == "mean"))
    # writing into the scratch buffer spares a large allocation (~15% of the time
    # on big maps); autograd does not allow out=, so only without gradients
    out = None if (torch.is_grad_enabled() and rows.requires_grad) else scratch
    return back(MODES[mode](rows, keep, k, out))


class TopK(nn.Module):
    """Top-K sparsification as a layer; see :func:`topk_sparsify`.

    Parameters
    ----------
    fraction : float in (0, 1]
        Fraction of positions per channel that are kept.
    mode : {"keep", "mean", "inverse"}, default="keep"

    Examples
    --------
    >>> net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), TopK(0.1))
    >>> out = net(torch.randn(2, 3, 12, 12))
    >>> int((out != 0).sum(dim=(2, 3)).max()) <= 10
    True
    """

    def __init__(self, fraction, *, mode="keep"):
        super().__init__()
        self.fraction = _check_fraction(fraction)
        self.mode = check_choice(mode, MODES, name="mode")

    def forward(self, x):
        return topk_sparsify(x, self.fraction, mode=self.mode)

    def extra_repr(self):
        return f"fraction={self.fraction}, mode={self.mode!r}"


# ------------------------------------------------------------------------ insertion
class _TopKHook:
    """Forward hook replacing a layer's output by its Top-K sparsified version."""

    def __init__(self, layer, fraction, mode):
        self.layer, self.fraction, self.mode = layer, fraction, mode

    def __call__(self, module, inputs, output):
        if not torch.is_tensor(output):
            raise InputError(f"Top-K at layer {self.layer!r} needs a tensor output; the "
                             f"layer returned {type(output).__name__}. Choose another layer.")
        try:
            return topk_sparsify(output, self.fraction, mode=self.mode)
        except InputError as exc:
            raise InputError(f"Top-K at layer {self.layer!r}: {exc}") from None

    def __repr__(self):
        return f"_TopKHook(layer={self.layer!r}, fraction={self.fraction}, mode={self.mode!r})"


def _record(model):
    """The ``{layer: (fraction, mode)}`` record a wrapper keeps of its Top-K, or None.

    A :class:`~dnnsparse.model.DNN` keeps it in ``dnn.topk`` (like ``dnn.lesions``),
    so that extraction writes it into the files' attributes; a plain module needs no
    record (its hooks are looked at, see :func:`_carrying_topk`).
    """
    record = None if isinstance(model, nn.Module) else getattr(model, "topk", None)
    return record if isinstance(record, dict) else None


def _carrying_topk(model, layers):
    """Those of ``layers`` that carry Top-K in ``model`` now."""
    record = _record(model)
    if record is not None:
        return [layer for layer in layers if layer in record]
    if isinstance(model, nn.Module):
        modules = dict(model.named_modules())
        return [layer for layer in layers if layer in modules and any(
            isinstance(h, _TopKHook) and h.layer == layer
            for h in modules[layer]._forward_hooks.values())]
    return []   # a wrapper keeping no record: nothing to check against


def _register_prepended(module, hook):
    """``register_forward_hook(hook, prepend=True)``; torch < 2.0 lacks ``prepend``."""
    try:
        return module.register_forward_hook(hook, prepend=True)
    except TypeError:
        handle = module.register_forward_hook(hook)
        module._forward_hooks.move_to_end(handle.id, last=False)
        return handle


def _module_registrar(model):
    """Return ``register(layer, hook)`` for a plain module, checking layer names."""
    modules = {name: mod for name, mod in model.named_modules() if name}

    def register(layer, hook):
        if layer not in modules:
            close = get_close_matches(str(layer), list(modules), n=3)
            hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
            raise UnknownLayerError(f"Unknown layer {layer!r} in {type(model).__name__}.{hint} "
                                    f"Valid layers: {', '.join(modules)}.")
        return _register_prepended(modules[layer], hook)
    return register


class TopKHandle:
    """Removable record of Top-K hooks placed by :func:`insert_topk`.

    Attributes
    ----------
    layers : dict
        ``{layer: fraction}`` as inserted.
    mode : str
    active : bool
        False once :meth:`remove` ran.
    """

    def __init__(self, model, layers, mode, hook_handles):
        self._model = weakref.ref(model) if _weakrefable(model) else (lambda: model)
        self.layers = dict(layers)
        self.mode = mode
        self._handles = list(hook_handles)
        self.active = True

    def remove(self):
        """Remove every hook; the model then computes exactly what it did before.

        Calling it again does nothing.
        """
        if not self.active:
            return
        for handle in self._handles:
            handle.remove()
        record = _record(self._model())
        for layer in self.layers if record is not None else ():
            record.pop(layer, None)
        self._handles.clear()
        self.active = False
        logger.debug("Removed Top-K from layers %s", list(self.layers))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()
        return False

    def __repr__(self):
        state = "active" if self.active else "removed"
        return f"TopKHandle({self.layers}, mode={self.mode!r}, {state})"


def _weakrefable(obj):
    try:
        weakref.ref(obj)
    except TypeError:
        return False
    return True


def insert_topk(model, spec, *, mode="keep"):
    """Sparsify the outputs of named layers with Top-K, without changing the model.

    Each layer gets a forward hook that returns the sparsified output. The
    module tree, the parameters and the layer names stay as they are, so call
    it after the weights are loaded. A :class:`~dnnsparse.model.DNN` records the
    Top-K in ``dnn.topk`` until the handle is removed (extraction writes it into the
    file attributes ``topk``/``topk_mode``). Hooks are registered first in line
    (``prepend=True``), so activation-recording hooks on the same module see the
    sparsified output; a module called several times per forward pass is
    sparsified at every call.

    Parameters
    ----------
    model : torch.nn.Module or object with ``register_layer_hook``
        A plain module, whose layers are named as in ``named_modules()``
        (e.g. ``"features.11"``), or a wrapper with
        ``register_layer_hook(layer, hook, *, prepend=False) -> handle`` that
        takes forward hooks ``(module, inputs, output) -> output``.
    spec : dict
        ``{layer: fraction}``, fraction in (0, 1].
    mode : {"keep", "mean", "inverse"}, default="keep"
        See :func:`topk_sparsify`.

    Returns
    -------
    TopKHandle
        ``.remove()`` (or leaving a ``with`` block) takes all hooks off again.

    Raises
    ------
    UnknownLayerError
        For a layer the model does not have (the message lists valid names).
    InputError
        For a bad fraction or mode, an empty spec, or a layer that already has
        Top-K from an earlier call (remove that handle first; checked for plain
        modules and for wrappers keeping a ``topk`` record, as a DNN does).
        Nothing is inserted when an error is raised.

    Examples
    --------
    >>> net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 2, 3))
    >>> x = torch.randn(1, 3, 10, 10)
    >>> before = net(x)
    >>> with insert_topk(net, {"1": 0.1}):
    ...     sparse = net(x)
    >>> torch.equal(net(x), before), torch.equal(sparse, before)
    (True, False)
    """
    check_choice(mode, MODES, name="mode")
    if not hasattr(spec, "items") or not spec:
        raise InputError(f"spec must be a non-empty dict {{layer: fraction}}; got {spec!r}.")
    spec = {layer: _check_fraction(fraction) for layer, fraction in spec.items()}
    doubled = _carrying_topk(model, spec)
    if doubled:
        raise InputError(f"Layer(s) {', '.join(map(repr, doubled))} already carry Top-K; "
                         f"call .remove() on the earlier handle before inserting again.")
    if callable(getattr(model, "register_layer_hook", None)):
        def register(layer, hook):
            return model.register_layer_hook(layer, hook, prepend=True)
    elif isinstance(model, nn.Module):
        register = _module_registrar(model)
    else:
        raise InputError(f"insert_topk needs a torch.nn.Module or a model wrapper with "
                         f"register_layer_hook; got {type(model).__name__}.")
    handles = []
    try:
        for layer, fraction in spec.items():
            handles.append(register(layer, _TopKHook(layer, fraction, mode)))
    except BaseException:
        for handle in handles:   # all or nothing
            handle.remove()
        raise
    record = _record(model)
    if record is not None:
        record.update({layer: (fraction, mode) for layer, fraction in spec.items()})
    logger.debug("Inserted Top-K (%s) at %s", mode, spec)
    return TopKHandle(model, spec, mode, handles)
