"""Input validation shared by the whole package.

Modelled on scikit-learn's ``utils.validation``: each checker returns the
cleaned value or raises :class:`~dnnsparse.errors.InputError` with a message that
names the input, says what was expected and what was given.
"""
import numbers

import numpy as np

from ..errors import InputError

__all__ = [
    "check_array",
    "check_choice",
    "check_consistent_length",
    "check_random_state",
    "check_scalar",
]


def check_array(x, *, name="array", ndim=None, dtype=np.float64, allow_nan=False,
                min_rows=1, copy=False):
    """Convert ``x`` to a NumPy array and check its rank and values.

    Parameters
    ----------
    x : array-like
    name : str
        Used in error messages.
    ndim : int or tuple of int, optional
        Accepted number(s) of dimensions.
    dtype : dtype or None, default=float64
        Target dtype; None keeps the input's. Float32 input stays float32
        when ``dtype`` is ``"float"``.
    allow_nan : bool, default=False
        Whether NaN/inf are accepted.
    min_rows : int, default=1
        Minimum length of the first axis.
    copy : bool, default=False

    Returns
    -------
    numpy.ndarray

    Examples
    --------
    >>> check_array([[1, 2], [3, 4]], ndim=2).dtype
    dtype('float64')
    """
    if dtype == "float":
        arr = np.asarray(x)
        dtype = arr.dtype if arr.dtype in (np.float32, np.float64) else np.float64
    try:
        arr = np.array(x, dtype=dtype, copy=copy) if copy else np.asarray(x, dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{name} must be numeric: {exc}") from None
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if arr.ndim not in allowed:
            want = " or ".join(f"{d}-D" for d in allowed)
            raise InputError(f"{name} must be {want}; got a {arr.ndim}-D array of "
                             f"shape {arr.shape}.")
    if arr.ndim and arr.shape[0] < min_rows:
        raise InputError(f"{name} needs at least {min_rows} row(s); got shape {arr.shape}.")
    if not allow_nan and arr.dtype.kind in "fc" and not np.isfinite(arr).all():
        n_bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
        raise InputError(f"{name} contains {n_bad} NaN or infinite value(s); remove or "
                         f"impute them first.")
    return arr


def check_consistent_length(*arrays, names=None):
    """Check that all arrays have the same first dimension.

    >>> check_consistent_length([1, 2], [3, 4])
    2
    """
    lengths = [len(a) for a in arrays]
    if len(set(lengths)) > 1:
        names = names or [f"input {i}" for i in range(len(arrays))]
        detail = ", ".join(f"{n}: {l}" for n, l in zip(names, lengths))
        raise InputError(f"Inconsistent numbers of samples ({detail}); they must match.")
    return lengths[0] if lengths else 0


def check_random_state(seed):
    """Turn ``seed`` into a :class:`numpy.random.Generator`.

    None gives a fresh unseeded generator, an int a seeded one (bit-for-bit
    repeatable), and a Generator is returned as is.

    >>> bool(check_random_state(0).integers(10) == check_random_state(0).integers(10))
    True
    """
    if seed is None or isinstance(seed, (numbers.Integral, np.integer)):
        return np.random.default_rng(seed)
    if isinstance(seed, np.random.Generator):
        return seed
    raise InputError(f"seed must be None, an int or a numpy Generator; got {seed!r}.")


def check_choice(value, choices, *, name="value"):
    """Check that ``value`` is one of ``choices`` (a registry dict or a sequence).

    >>> check_choice("psi", {"psi": 1, "hoyer": 2}, name="measure")
    'psi'
    """
    if value not in choices:
        raise InputError(f"Unknown {name}={value!r}; choose from {sorted(choices)}.")
    return value


def check_scalar(x, *, name, kind=numbers.Real, min_val=None, max_val=None,
                 include_min=True, include_max=True):
    """Check a scalar's type and range, scikit-learn style.

    >>> check_scalar(0.5, name="fraction", min_val=0, max_val=1, include_min=False)
    0.5
    """
    if isinstance(x, bool) or not isinstance(x, kind):
        raise InputError(f"{name} must be a {getattr(kind, '__name__', kind)}; got {x!r}.")
    low_bad = min_val is not None and (x < min_val if include_min else x <= min_val)
    high_bad = max_val is not None and (x > max_val if include_max else x >= max_val)
    if low_bad or high_bad:
        lo = "[" if include_min else "("
        hi = "]" if include_max else ")"
        raise InputError(f"{name}={x!r} is outside {lo}{min_val}, {max_val}{hi}.")
    return x
