"""Lesions of the sparse-coding paper, applied to a loaded network in place.

=================  ===================================================================
kind               what changes (in every convolutional and fully connected layer)
=================  ===================================================================
weights            the weights are permuted across all elements of the layer
weights-channels   the output channels are permuted; each channel's kernel is intact
weights-kernels    the elements inside each channel's kernel (input channel x height x
                   width) are permuted; the channel order is intact
bias               the biases are permuted within the layer; weights untouched
relu               every ReLU is replaced by the identity; the ``_relu`` layers then
                   give the pre-activation values
=================  ===================================================================

Permutations come from one seeded generator, layer by layer in network order, so
a lesion is bit-for-bit repeatable with its seed. The distribution of values in
each layer (the multiset of weights or biases) is preserved.
"""
import logging
import types

import numpy as np
import torch
from torch import nn

from ..errors import InputError
from ..utils.validation import check_choice, check_random_state

__all__ = ["LESIONS", "lesion", "lesioned_layers"]

log = logging.getLogger(__name__)

_RELUS = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU)


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


def _permute_weights(how):
    def apply(module, rng, layers):
        for _, m in lesioned_layers(module, layers):
            with torch.no_grad():
                m.weight.copy_(how(m.weight.detach().cpu(), rng).to(m.weight.device))
    return apply


def _permute_bias(module, rng, layers):
    for _, m in lesioned_layers(module, layers):
        if m.bias is not None:
            with torch.no_grad():
                m.bias.copy_(_permute_all(m.bias.detach().cpu(), rng).to(m.bias.device))


def _conv_bn_forward(self, x):
    return self.bn(self.conv(x))


def _remove_relu(module, rng, layers):
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


#: Registry of lesion kinds.
LESIONS = {
    "weights": _permute_weights(_permute_all),
    "weights-channels": _permute_weights(_permute_channels),
    "weights-kernels": _permute_weights(_permute_kernels),
    "bias": _permute_bias,
    "relu": _remove_relu,
}


def lesion(dnn, kind, *, seed=0, layers=None):
    """Apply lesion ``kind`` to ``dnn`` (a :class:`~dnnsparse.model.DNN`) in place.

    Parameters
    ----------
    dnn : DNN
        A network whose weights are loaded.
    kind : {"weights", "weights-channels", "weights-kernels", "bias", "relu"}
    seed : int, default=0
    layers : list of str, optional
        Module paths of the conv/linear layers to permute (default: all).

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
    LESIONS[kind](dnn.module, rng, layers)
    dnn.refresh_modules()
    dnn.lesions.append(f"{kind}(seed={seed})")
    return dnn
