"""Lesions of the sparse-coding paper, applied to a loaded network in place.

=================  ===================================================================
kind               what changes (in every convolutional and fully connected layer)
=================  ===================================================================
weights            the weights are permuted across all elements of the layer
weights-channels   the output channels are permuted; each channel's kernel is intact
weights-kernels    the elements inside each channel's kernel (input channel x height x
                   width) are permuted; the channel order is intact
bias               the biases are permuted within the layer; weights untouched. A layer
                   whose output goes straight into a normalisation layer (BatchNorm,
                   as in ResNet, GoogLeNet, VGG-BN, EfficientNet) has its bias in the
                   normalisation's shift beta: beta is permuted across the channels
                   (as is the layer's own bias, if it has one)
relu               every ReLU is replaced by the identity; the ``_relu`` layers then
                   give the pre-activation values
=================  ===================================================================

Why beta: in evaluation mode a convolution followed by BatchNorm computes, per output
channel c, ``gamma_c (w_c * x + b_c - mu_c) / sigma_c + beta_c``, i.e. the BN-folded
layer ``(gamma_c / sigma_c) w_c * x + (beta_c + gamma_c (b_c - mu_c) / sigma_c)``.
Networks with BatchNorm leave out the convolution's bias ``b`` (the batch mean would
cancel it); beta is the bias they learn. The lesion permutes beta like the paper
permutes a convolution's biases; the scale gamma and the running statistics mu and
sigma (measured on each channel's own input) stay with their channel, like the
weights, so the folded weights ``(gamma / sigma) w`` are untouched. Normalisation
layers that follow no convolutional or linear layer (e.g. after a residual sum or a
concatenation) have their beta permuted as well when the lesion acts on the whole
network. Which layer feeds which normalisation is read from one forward pass of a
blank image.

A layer the lesion leaves unchanged -- no bias and no normalisation after it, or
values that are all equal (an untrained BatchNorm's beta is all zeros) -- is named
in a logged warning.

Permutations come from one seeded generator, layer by layer in module order (a
layer's own bias, then its normalisation's beta; then the normalisation layers of
no layer), so a lesion is bit-for-bit repeatable with its seed. The distribution of
values in each layer (the multiset of weights or biases) is preserved.
"""
import logging
import types

import numpy as np
import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.modules.instancenorm import _InstanceNorm

from ..errors import InputError
from ..utils.validation import check_choice, check_random_state
from ._ablate import _trace

__all__ = ["LESIONS", "lesion", "lesioned_layers"]

log = logging.getLogger(__name__)

_RELUS = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU)
_NORMS = (_BatchNorm, _InstanceNorm, nn.GroupNorm, nn.LayerNorm)


def lesioned_layers(module, layers=None):
    """``[(path, module)]`` of the conv/linear layers a lesion acts on."""
    found = [(n, m) for n, m in module.named_modules()
             if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear))]
    if layers is not None:
        wanted = set(layers)
        found = [(n, m) for n, m in found if n in wanted]
        missing = wanted - {n for n, _ in found}
        if missing:
            raise InputError(f"lesion layers {sorted(missing)} are not convolutional or linear "
                             f"modules of the network.")
    return found


def _permute_all(w, rng):
    flat = w.reshape(-1)
    return flat[torch.as_tensor(rng.permutation(flat.numel()))].reshape(w.shape)


def _permute_channels(w, rng):
    return w[torch.as_tensor(rng.permutation(w.shape[0]))]


def _permute_kernels(w, rng):
    flat = w.reshape(w.shape[0], -1)
    # an independent permutation per output channel, drawn in one call
    order = np.argsort(rng.random(flat.shape), axis=1)
    return torch.gather(flat, 1, torch.as_tensor(order)).reshape(w.shape)


def _permute(targets, how, rng):
    """Permute each layer's parameters in place; ``{path: why}`` of layers left unchanged.

    ``targets`` is ``[(layer path, [parameters])]``, in the order the generator is used.
    """
    unchanged = {}
    for path, params in targets:
        changed = False
        for p in params:
            old = p.detach().cpu()
            new = how(old, rng)
            changed |= not torch.equal(new, old)
            with torch.no_grad():
                p.copy_(new.to(p.device))
        if not params:
            unchanged[path] = "no bias and no normalisation layer after it"
        elif not changed:
            unchanged[path] = "all values equal"
    return unchanged


def _permute_weights(how):
    def apply(dnn, rng, layers):
        return _permute([(n, [m.weight]) for n, m in lesioned_layers(dnn.module, layers)],
                        how, rng)
    return apply


def _normalisations(module):
    """``[(path, module)]`` of the normalisation layers with a shift beta."""
    return [(n, m) for n, m in module.named_modules()
            if isinstance(m, _NORMS) and getattr(m, "bias", None) is not None]


def _normalised_outputs(dnn, norms):
    """``{layer path: normalisation path}`` for each normalisation fed a layer's output.

    Read from one forward pass of a blank image (:func:`._ablate._trace`): a
    normalisation layer's input is the very tensor a convolutional or linear layer
    returned. Evaluation mode during the pass keeps running statistics as they are.
    """
    layers = dict(lesioned_layers(dnn.module))
    modes = [(m, m.training) for m in dnn.module.modules()]
    try:
        dnn.module.eval()
        inputs, _ = _trace(dnn)
    except Exception as exc:   # a network that does not take an image: no pairs known
        log.warning("could not trace which layers feed normalisation layers (%s: %s); "
                    "chosen layers lose only their own biases",
                    exc.__class__.__name__, exc)
        return {}
    finally:
        for m, training in modes:
            m.training = training
    pairs = {}
    for path, _ in norms:                  # in module order: a layer's first normalisation
        if inputs.get(path) in layers:
            pairs.setdefault(inputs[path], path)
    return pairs


def _permute_bias(dnn, rng, layers):
    norms = _normalisations(dnn.module)
    after = _normalised_outputs(dnn, norms) if norms else {}
    modules = dict(norms)
    targets, used = [], set()
    for path, m in lesioned_layers(dnn.module, layers):
        params = [m.bias] if m.bias is not None else []
        if path in after:
            params.append(modules[after[path]].bias)
            used.add(after[path])
        targets.append((path, params))
    if layers is None:
        targets += [(n, [m.bias]) for n, m in norms if n not in used]
    return _permute(targets, _permute_all, rng)


def _conv_bn_forward(self, x):
    return self.bn(self.conv(x))


def _remove_relu(dnn, rng, layers):
    module = dnn.module
    if layers is not None:
        raise InputError("the relu lesion acts on the whole network; do not give layers.")
    n = 0
    for parent in list(module.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, _RELUS):
                setattr(parent, name, nn.Identity())
                n += 1
        # torchvision's GoogLeNet/Inception apply F.relu inside BasicConv2d
        if type(parent).__name__ == "BasicConv2d" and hasattr(parent, "bn"):
            parent.forward = types.MethodType(_conv_bn_forward, parent)
            n += 1
    if n == 0:
        raise InputError("the network has no ReLU modules to remove.")
    log.info("replaced %d ReLUs by the identity", n)
    return {}


#: Registry of lesion kinds: ``kind -> f(dnn, rng, layers)`` returning
#: ``{layer path: reason}`` of the layers it left unchanged.
LESIONS = {
    "weights": _permute_weights(_permute_all),
    "weights-channels": _permute_weights(_permute_channels),
    "weights-kernels": _permute_weights(_permute_kernels),
    "bias": _permute_bias,
    "relu": _remove_relu,
}


def _few(names, n=6):
    return ", ".join(names[:n]) + (f" (+{len(names) - n} more)" if len(names) > n else "")


def lesion(dnn, kind, *, seed=0, layers=None):
    """Apply lesion ``kind`` to ``dnn`` (a :class:`~dnnsparse.model.DNN`) in place.

    Parameters
    ----------
    dnn : DNN
        A network whose weights are loaded.
    kind : {"weights", "weights-channels", "weights-kernels", "bias", "relu"}
    seed : int, default=0
    layers : list of str, optional
        Module paths of the conv/linear layers to permute (default: all). For the
        bias lesion, a layer's normalisation (BatchNorm after it) goes with it.

    Returns
    -------
    DNN
        The same object, with ``dnn.lesions`` recording what was done.

    Examples
    --------
    >>> dnn = lesion(load_dnn("alexnet", weights="random"), "weights", seed=1)  # doctest: +SKIP
    """
    check_choice(kind, LESIONS, name="lesion")
    rng = check_random_state(seed)
    if kind != "relu" and not lesioned_layers(dnn.module, layers):
        raise InputError(f"{dnn.name} has no convolutional or linear layers to lesion.")
    unchanged = LESIONS[kind](dnn, rng, layers)
    if unchanged:
        why = {}
        for path, reason in unchanged.items():
            why.setdefault(reason, []).append(path)
        log.warning("the %s lesion left %d layer(s) of %s unchanged: %s", kind,
                    len(unchanged), dnn.name,
                    "; ".join(f"{reason}: {_few(paths)}" for reason, paths in why.items()))
    dnn.refresh_modules()
    dnn.lesions.append(f"{kind}(seed={seed})")
    return dnn
