"""Where the linear algebra runs: NumPy here, or torch on a device (``-device cuda``).

The maths in :mod:`dnnsparse.algo` is written against the array API and never imports
torch; this module makes the torch tensors it is handed (``like``), so that the ridge
solver, RDMs and RDM permutation tests run on a GPU.
"""
import numpy as np

__all__ = ["DTYPES", "array_like", "to_device"]

#: -dtype choices.
DTYPES = ("float64", "float32")


def array_like(device=None, dtype="float64"):
    """An empty torch tensor on ``device`` in ``dtype``, or None for the NumPy path.

    Parameters
    ----------
    device : str or None
        ``"cpu"``, ``"cuda"``, ``"cuda:N"`` (checked by the CLI); None: NumPy.
    dtype : {"float64", "float32"}

    Returns
    -------
    torch.Tensor of shape (0,) or None

    >>> array_like(None) is None
    True
    """
    if device is None:
        return None
    import torch

    return torch.empty(0, dtype=getattr(torch, dtype), device=device)


def to_device(x, like):
    """NumPy ``x`` as a tensor like ``like`` (same device and dtype); ``x`` if None."""
    if like is None:
        return x
    import torch

    return torch.as_tensor(np.ascontiguousarray(x), dtype=like.dtype, device=like.device)
