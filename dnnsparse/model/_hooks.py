"""Forward hooks on layers: shared-module call filtering and output capture.

:class:`~dnnsparse.model.DNN` registers its layer hooks through
:class:`CallCounter`/:class:`CallFilteredHook` (a layer may be the k-th call of a
module used several times per forward pass); :class:`LayerCapture` records a
reduced copy of each requested layer's output and ends the pass
(:class:`StopForward`) once all of them are seen. Extraction
(:mod:`dnnsparse.model._extract`) and :meth:`DNN.forward_layers` both capture
with it.
"""
import torch

__all__ = ["StopForward", "as_4d"]   # CallCounter, CallFilteredHook, LayerCapture: model-internal


class StopForward(Exception):
    """Raised inside a hook to end a forward pass once all layers are captured.

    :meth:`DNN.forward_layers` and :func:`dnnsparse.model.extract` catch it;
    nothing deeper in the network runs.
    """


def as_4d(output):
    """A layer's output as a tensor ``(n, n_chn, n_row, n_col)``.

    Tuples (e.g. a GoogLeNet/LSTM-style output) give their first element; FC
    outputs ``(n, units)`` become ``(n, units, 1, 1)``; token maps
    ``(n, a, b)`` become ``(n, a, b, 1)``.

    Examples
    --------
    >>> tuple(as_4d(torch.zeros(2, 7)).shape)
    (2, 7, 1, 1)
    """
    if isinstance(output, (tuple, list)):
        output = output[0]
    if not torch.is_tensor(output):
        raise TypeError(f"layer output is a {type(output).__name__}, not a tensor")
    if output.ndim == 2:
        return output[:, :, None, None]
    if output.ndim == 3:
        return output[..., None]
    if output.ndim == 4:
        return output
    raise ValueError(f"layer output of shape {tuple(output.shape)} is not supported")


class CallCounter:
    """Counts the calls of selected modules within one forward pass.

    A forward pre-hook on the root resets the counts; a pre-hook on each watched
    module increments its count, so a forward hook knows which call it sees.
    """

    def __init__(self, root):
        self.counts = {}
        self._handles = [root.register_forward_pre_hook(self._reset)]

    def _reset(self, module, args):
        for k in self.counts:
            self.counts[k] = 0

    def watch(self, module):
        key = id(module)
        if key not in self.counts:
            self.counts[key] = 0

            def count(mod, args):
                self.counts[key] += 1
            self._handles.append(module.register_forward_pre_hook(count))
        return key


class CallFilteredHook:
    """Forward hook that runs ``hook`` only on the ``call``-th call of the module."""

    def __init__(self, counter, key, call, hook):
        self.counter, self.key, self.call, self.hook = counter, key, call, hook

    def __call__(self, module, inputs, output):
        if self.counter.counts[self.key] - 1 == self.call:
            return self.hook(module, inputs, output)
        return None


class LayerCapture:
    """Hooks storing ``reduce(output)`` of each layer, for one forward pass at a time.

    Parameters
    ----------
    register : callable
        ``register(layer, hook) -> handle`` (e.g. :meth:`DNN.register_layer_hook`).
    reducers : dict
        ``{layer: reduce}``, ``reduce(output) -> tensor`` called inside the hook.
        It must copy: an in-place operation later in the pass (``ReLU(inplace=True)``)
        would overwrite a view of the network's tensor.
    stop_early : bool, default=True
        End the pass (:class:`StopForward`) once every layer has been captured.

    Use it as a context manager (the hooks are removed on leaving it) and call
    :meth:`run` per batch; it returns ``{layer: tensor}`` in the order the layers ran.
    """

    def __init__(self, register, reducers, *, stop_early=True):
        self._register, self._reducers = register, dict(reducers)
        self._stop_early = stop_early
        self._handles = []
        self.values = {}

    def _hook(self, layer, reduce):
        def hook(module, inputs, output):
            self.values[layer] = reduce(output)
            if self._stop_early and len(self.values) == len(self._reducers):
                raise StopForward       # nothing deeper is needed for this batch
        return hook

    def __enter__(self):
        try:
            for layer, reduce in self._reducers.items():
                self._handles.append(self._register(layer, self._hook(layer, reduce)))
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc):
        for h in self._handles:
            h.remove()
        self._handles.clear()
        return False

    def run(self, forward, x):
        """``forward(x)`` with the hooks; returns the captured ``{layer: tensor}``."""
        self.values = {}
        try:
            forward(x)
        except StopForward:
            pass
        return self.values
