"""Top-K masks of chosen layers on a set of stimuli, as the network computes them now.

:func:`layer_topk_masks` runs the stimuli through the network (evaluation mode, no
gradients) and records, for every named layer, which positions of each channel
:func:`~dnnsparse.model.topk_mask` keeps. The layer's output is read *before* any
Top-K inserted at that layer itself (the recording hook runs first), and with every
other Top-K of the network active, so the masks are those of the network as it is
used (e.g. during ``db_train -topk``). ``db_train -snapshot-topk`` calls it after
every epoch.
"""
import numpy as np
import torch

from ..errors import InputError
from ._images import ImageDataset, image_batches, network_inputs
from ._topk import _check_fraction, topk_mask

__all__ = ["layer_topk_masks"]


def layer_topk_masks(dnn, stim, spec, *, batch_size=32, device=None, workers=None,
                     return_images=False):
    """Boolean Top-K masks of the outputs of ``spec``'s layers for every stimulus.

    Parameters
    ----------
    dnn : DNN
        Used as it is (its Top-K hooks, lesions, weights), in evaluation mode;
        its training/evaluation mode is restored afterwards.
    stim : Stimulus
        Image table.
    spec : dict
        ``{layer: fraction}``; fraction in (0, 1] as in :func:`topk_mask`.
    batch_size : int, default=32
    device : str or torch.device, optional
        Default: the network's device.
    workers : int, optional
        Image-decoding worker processes (default: 0 on a CPU).
    return_images : bool, default=False
        Also return the network's input images (before normalisation).

    Returns
    -------
    masks : dict of str to ndarray of bool, shape (n_stimuli, C, H, W)
        True at the ``max(1, int(fraction * H * W))`` kept positions of each
        channel (ties to the lower flat index).
    images : ndarray of uint8, shape (n_stimuli, 3, height, width)
        Only with ``return_images``.

    Raises
    ------
    InputError
        For a bad fraction, a layer whose output is not a 4-D ``(n, C, H, W)``
        map, or a layer not called in the forward pass.
    UnknownLayerError
        For a layer the network does not have.

    Examples
    --------
    >>> masks = layer_topk_masks(dnn, stim, {"layer2": 0.2})      # doctest: +SKIP
    >>> masks["layer2"].shape                                      # doctest: +SKIP
    (4, 128, 28, 28)
    """
    spec = {layer: _check_fraction(fraction) for layer, fraction in spec.items()}
    if not spec:
        raise InputError("give at least one layer for the Top-K masks.")
    for layer in spec:
        dnn.resolve(layer)                      # UnknownLayerError listing the names
    device = dnn.device if device is None else torch.device(device)
    captured = {}

    def make_hook(layer):
        def hook(module, inputs, output):
            if not torch.is_tensor(output) or output.ndim != 4:
                shape = tuple(output.shape) if torch.is_tensor(output) else \
                    type(output).__name__
                raise InputError(f"layer {layer!r} gives {shape}, not a (n, C, H, W) map; "
                                 f"Top-K masks need a convolutional layer.")
            captured[layer] = topk_mask(output.detach(), spec[layer]).cpu().numpy()
        return hook

    n = len(stim)
    masks = {}
    images, kept = None, []
    dataset = ImageDataset(stim.paths, dnn.image_transform())
    was_training = dnn.module.training
    # prepended after any Top-K hook of the layer: sees the output before it
    handles = [dnn.register_layer_hook(layer, make_hook(layer), prepend=True)
               for layer in spec]
    try:
        dnn.module.eval()
        batches = image_batches(dataset, batch_size, workers=workers, device=device)
        if return_images:
            batches = _keep_images(batches, n, kept)
        with torch.no_grad():
            for idx, x in network_inputs(dnn, batches, stim.paths, device):
                captured.clear()
                dnn.module(x)
                for layer in spec:
                    if layer not in captured:
                        raise InputError(f"layer {layer!r} was not called in the forward "
                                         f"pass; choose another layer.")
                    m = captured[layer]
                    if layer not in masks:
                        masks[layer] = np.zeros((n,) + m.shape[1:], dtype=bool)
                    masks[layer][idx] = m
        if return_images:
            images = kept[0] if kept else np.zeros((0, 3) + tuple(dnn.input_size), np.uint8)
    finally:
        for h in handles:
            h.remove()
        dnn.module.train(was_training)
    return (masks, images) if return_images else masks


def _keep_images(batches, n, kept):
    """Pass batches on, copying their uint8 images into ``kept[0]`` (n, 3, H, W)."""
    for idx, x, errors in batches:
        if x is not None:
            if not kept:
                kept.append(np.zeros((n,) + tuple(x.shape[1:]), dtype=np.uint8))
            kept[0][idx] = x.cpu().numpy()
        yield idx, x, errors
