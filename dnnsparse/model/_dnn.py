"""The :class:`DNN` wrapper: a PyTorch network with friendly layer names.

It knows its layers (in forward order), how to preprocess images, how to hook a
layer's output (also for modules called several times per forward pass,
:mod:`._hooks`), what was done to it (``lesions``, ``topk``), and how to extract
activations for a stimulus set (:mod:`dnnsparse.model._extract`).
"""
import logging

import torch

from ..errors import UnknownLayerError
from ._hooks import CallCounter, CallFilteredHook, LayerCapture, as_4d
from ._layers import module_path_names, parse_ref
from ._transforms import (IMAGENET_MEAN, IMAGENET_STD, make_image_transform, make_transform,
                          normalize)

__all__ = ["DNN"]

log = logging.getLogger(__name__)


class DNN:
    """A PyTorch network with DNNBrain-style layer names.

    Parameters
    ----------
    module : torch.nn.Module
        The network; put in evaluation mode.
    name : str, default="custom"
    layer_names : dict of str to str, optional
        ``{friendly name: module path[#call]}`` in forward order. Default: every
        sub-module under its own path (any ``nn.Module`` can be wrapped).
    input_size : (int, int), default=(224, 224)
    mean, std : sequence of float
        Normalisation of the RGB input (ImageNet statistics by default).
    resize_size : int, optional
        Shorter-side size for the ``"crop"`` preprocessing (default 256 for 224).
    preprocess : {"squash", "crop"}, default="squash"
    weights : str
        Description of the weights (``"imagenet"``, ``"random(seed=0)"``, a path).
    weights_sha256 : str, optional

    Examples
    --------
    >>> import torchvision
    >>> dnn = DNN(torchvision.models.alexnet(weights=None), name="alexnet")
    >>> dnn.layers[:2]
    ['features', 'features.0']
    """

    def __init__(self, module, *, name="custom", layer_names=None, input_size=(224, 224),
                 mean=IMAGENET_MEAN, std=IMAGENET_STD, resize_size=None, preprocess="squash",
                 weights="random", weights_sha256=""):
        self.module = module.eval()
        self.name = name
        self.layer_map = dict(layer_names if layer_names is not None
                              else module_path_names(module))
        self.input_size = tuple(input_size)
        self.mean, self.std = tuple(mean), tuple(std)
        self.resize_size = resize_size
        self.preprocess = preprocess
        self.weights = weights
        self.weights_sha256 = weights_sha256
        self._counter = CallCounter(self.module)
        self._modules = dict(self.module.named_modules())
        self.lesions = []    # descriptions of lesions applied (see model._lesion)
        # {layer: (fraction, mode)} of the Top-K hooks in place (see model.insert_topk)
        self.topk = {}
        self.ablations = []  # Ablation objects in place (see model.ablate)

    def __repr__(self):
        return (f"<DNN {self.name} weights={self.weights} layers={len(self.layer_map)} "
                f"input={self.input_size}>")

    @property
    def layers(self):
        """Friendly layer names in forward order."""
        return list(self.layer_map)

    @property
    def device(self):
        p = next(self.module.parameters(), None)
        return p.device if p is not None else torch.device("cpu")

    def to(self, device):
        self.module.to(device)
        return self

    def __call__(self, x):
        return self.module(x)

    def refresh_modules(self):
        """Re-read the module tree after sub-modules were replaced (e.g. a ReLU lesion)."""
        self._modules = dict(self.module.named_modules())

    def resolve(self, layer):
        """``(module, path, call)`` of a friendly name or a raw module path.

        Raises
        ------
        UnknownLayerError
            Listing the valid names.
        """
        if not layer.partition("#")[0].strip():
            # "" is the root module's path: never what a user meant by a layer
            raise UnknownLayerError(
                f"empty layer name {layer!r} for {self.name}; valid layers: "
                f"{', '.join(self.layers)}")
        ref = self.layer_map.get(layer)
        if ref is None and layer.partition("#")[0] in self._modules:
            ref = layer          # a raw module path (also for zoo networks)
        if ref is None:
            raise UnknownLayerError(
                f"unknown layer {layer!r} for {self.name}; valid layers: "
                f"{', '.join(self.layers)}")
        path, call = parse_ref(ref)
        if path not in self._modules:
            raise UnknownLayerError(f"layer {layer!r} refers to module {path!r}, which "
                                    f"{self.name} does not have.")
        return self._modules[path], path, call

    def register_layer_hook(self, layer, hook, *, prepend=False):
        """Register a forward hook ``hook(module, inputs, output)`` on ``layer``.

        For a layer that is the k-th call of a shared module, the hook runs only
        on that call. Returns a handle with ``.remove()``. A hook returning a
        value replaces the layer's output (this is how Top-K is inserted).
        """
        module, path, call = self.resolve(layer)
        if call is not None:
            hook = CallFilteredHook(self._counter, self._counter.watch(module), call, hook)
        return module.register_forward_hook(hook, prepend=prepend)

    def transform(self, preprocess=None):
        """PIL image → normalised tensor (``preprocess`` overrides the default)."""
        return make_transform(preprocess or self.preprocess, size=self.input_size,
                              resize_size=self.resize_size, mean=self.mean, std=self.std)

    def image_transform(self, preprocess=None):
        """PIL image → resized ``uint8`` tensor; batches then go through :meth:`normalize`."""
        return make_image_transform(preprocess or self.preprocess, size=self.input_size,
                                    resize_size=self.resize_size)

    def normalize(self, x, *, out=None):
        """A ``uint8`` batch ``(n, 3, H, W)`` → the network's float input (into ``out``)."""
        return normalize(x, self.mean, self.std, out=out)

    def forward_layers(self, x, layers, *, stop_early=True):
        """Run one forward pass on ``x`` and return ``{layer: output tensor (4-D)}``.

        Outputs are copied inside the hook, so in-place operations later in the
        network (``ReLU(inplace=True)``) cannot change them. With ``stop_early``
        the pass stops once every requested layer has been seen.
        """
        layers = list(dict.fromkeys(layers))
        with LayerCapture(self.register_layer_hook,
                          {layer: self._layer_reducer(layer) for layer in layers},
                          stop_early=stop_early) as capture:
            captured = capture.run(self.module, x)
        missing = [l for l in layers if l not in captured]
        if missing:
            raise UnknownLayerError(f"layers {missing} were not reached in a forward pass of "
                                    f"{self.name}; they are not used by its forward().")
        return captured

    def _layer_reducer(self, layer):
        """What a hook keeps of ``layer``'s output: a detached 4-D copy.

        Subclasses whose layers are not 4-D (clip networks) override this.
        """
        return lambda output: as_4d(output).detach().clone()

    def layer_shapes(self, layers=None):
        """``{layer: (n_chn, n_row, n_col)}`` from one forward pass of a blank image."""
        layers = self.layers if layers is None else layers
        x = torch.zeros((1, 3) + self.input_size, device=self.device)
        with torch.inference_mode():
            out = self.forward_layers(x, layers, stop_early=True)
        return {l: tuple(out[l].shape[1:]) for l in layers}

    def save(self, path):
        """Save the weights (state dict) to a ``.pth`` file."""
        from ..io import atomic_output
        with atomic_output(path, force=True) as tmp:
            torch.save(self.module.state_dict(), tmp)

    def topk_attrs(self):
        """File attributes recording the Top-K in place: ``{"topk": ..., "topk_mode": ...}``.

        ``topk`` lists ``layer=fraction`` pairs in insertion order (as ``db_act -topk``
        takes them), ``topk_mode`` their mode; Top-K inserted with different modes
        gives ``layer=mode`` pairs there. Empty without Top-K.

        Examples
        --------
        >>> dnn = DNN(torch.nn.Sequential(torch.nn.ReLU()))
        >>> dnn.topk = {"0": (0.25, "keep")}
        >>> dnn.topk_attrs()
        {'topk': '0=0.25', 'topk_mode': 'keep'}
        """
        if not self.topk:
            return {}
        modes = {mode for _, mode in self.topk.values()}
        return {"topk": ",".join(f"{l}={f:g}" for l, (f, _) in self.topk.items()),
                "topk_mode": modes.pop() if len(modes) == 1 else
                ",".join(f"{l}={m}" for l, (_, m) in self.topk.items())}

    def ablation_attrs(self):
        """File attributes recording the ablations in place: ``ablate``, ``ablate_mode``.

        ``ablate`` lists the ablations as ``db_act -ablate`` takes them (space-separated),
        ``ablate_mode`` their mode (``spec=mode`` pairs when modes differ). Empty without.
        """
        if not self.ablations:
            return {}
        modes = {a.mode for a in self.ablations}
        return {"ablate": " ".join(a.name for a in self.ablations),
                "ablate_mode": modes.pop() if len(modes) == 1 else
                " ".join(f"{a.name}={a.mode}" for a in self.ablations)}

    def extract(self, stim, layers=None, **kwargs):
        """Activations of ``stim`` in ``layers``; see :func:`dnnsparse.model.extract`."""
        from ._extract import extract
        return extract(self, stim, layers, **kwargs)
