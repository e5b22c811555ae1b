"""Array-API helpers: one code path for NumPy arrays and torch tensors (CPU or GPU).

The numerical code in :mod:`dnnsparse.algo` never imports torch. It asks the inputs for
their namespace (:func:`get_namespace`, scikit-learn's vendored ``array_api_compat``) and
computes with that namespace's functions, so a torch tensor on ``cuda`` is solved on the
GPU and a NumPy array by NumPy. Operations the array API lacks (``rankdata``) are
written here with array-API operations only. Nothing here imports torch: a tensor is
recognised by ``array_api_compat`` only when torch is already loaded.

Examples
--------
>>> import numpy as np
>>> xp = get_namespace(np.array([3.0, 1.0, 3.0]))
>>> to_numpy(rankdata(xp.asarray([3.0, 1.0, 3.0]), xp)).tolist()
[2.5, 1.0, 2.5]
"""
import numpy as np

__all__ = ["get_namespace", "is_numpy", "device_of", "to_numpy", "to_namespace", "rankdata",
           "float_dtype"]


def _compat():
    from sklearn.externals import array_api_compat
    return array_api_compat


def get_namespace(*arrays):
    """The array-API namespace of ``arrays`` (NumPy's compat wrapper for NumPy arrays).

    Python scalars and None are ignored; arrays of different libraries raise TypeError.
    """
    arrays = [a for a in arrays if a is not None and not isinstance(a, (int, float))]
    return _compat().array_namespace(*arrays)


def is_numpy(x):
    """True for a NumPy array (or anything that is not an array of another library)."""
    aac = _compat()
    return not any(check(x) for check in (aac.is_torch_array, aac.is_cupy_array,
                                          aac.is_jax_array, aac.is_dask_array))


def device_of(x):
    """The device of array ``x`` (``"cpu"`` for NumPy)."""
    return _compat().device(x)


def to_numpy(x):
    """``x`` as a NumPy array (a torch tensor is copied off its device)."""
    if isinstance(x, np.ndarray) or is_numpy(x):
        return np.asarray(x)
    aac = _compat()
    if aac.is_torch_array(x):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def float_dtype(xp, name):
    """The namespace's ``float32``/``float64`` dtype from its name."""
    if name not in ("float32", "float64"):
        raise ValueError(f"dtype must be 'float32' or 'float64'; got {name!r}")
    return getattr(xp, name)


def to_namespace(x, like, dtype=None):
    """``x`` (NumPy or array) in the namespace and on the device of array ``like``.

    ``dtype`` defaults to the dtype of ``like``.
    """
    xp = get_namespace(like)
    dtype = like.dtype if dtype is None else dtype
    if not is_numpy(x) and get_namespace(x) is xp and device_of(x) == device_of(like):
        return x if x.dtype == dtype else xp.astype(x, dtype)
    x = np.ascontiguousarray(to_numpy(x))
    return xp.asarray(x, dtype=dtype, device=device_of(like))


def rankdata(x, xp, axis=-1):
    """Ranks along the last axis, ties given their average rank (``scipy.stats.rankdata``).

    Parameters
    ----------
    x : array of shape (n,) or (m, n)
    xp : namespace of ``x``

    Returns
    -------
    array of shape of ``x``, float64
    """
    if axis != -1 and axis != x.ndim - 1:
        raise ValueError("rankdata ranks along the last axis only")
    if x.ndim == 2:
        return xp.stack([rankdata(row, xp) for row in x])
    n = x.shape[0]
    dev = device_of(x)
    order = xp.argsort(x, stable=True)
    s = xp.take(x, order)
    new = xp.concat([xp.ones(1, dtype=xp.bool, device=dev), s[1:] != s[:-1]])
    group = xp.cumulative_sum(xp.astype(new, xp.int64)) - 1            # group of each rank
    starts = xp.astype(xp.nonzero(new)[0], xp.float64)
    ends = xp.concat([starts[1:], xp.asarray([float(n)], dtype=xp.float64, device=dev)]) - 1
    ranked_sorted = xp.take((starts + ends) / 2 + 1, group)
    return xp.take(ranked_sorted, xp.argsort(order, stable=True))
