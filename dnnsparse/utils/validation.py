"""Input validation shared by the whole package.

Modelled on scikit-learn's ``utils.validation``: each checker returns the
cleaned value or raises :class:`~dnnsparse.errors.InputError` with a message that
names the input, says what was expected and what was given.
"""
import argparse
import math
import numbers

import numpy as np

from ..errors import InputError

__all__ = [
    "check_array",
    "check_choice",
    "check_consistent_length",
    "check_random_state",
    "check_scalar",
    "finite_float",
    "nonnegative_int",
    "positive_int",
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
                 include_min=True, include_max=True, allow_nan=False, allow_inf=False):
    """Check a scalar's type and range, scikit-learn style.

    NaN compares false with every bound, so it is refused first (and so are
    +-inf) unless ``allow_nan`` / ``allow_inf`` say otherwise.

    Parameters
    ----------
    x : object
    name : str
        The option's name, used in error messages.
    kind : type or tuple of types, default=numbers.Real
    min_val, max_val : number, optional
        Bounds; ``include_min``/``include_max`` make them inclusive (default).
    allow_nan, allow_inf : bool, default=False
        Accept NaN, or +-inf (which must still lie within the bounds).

    Returns
    -------
    x, unchanged.

    Examples
    --------
    >>> check_scalar(0.5, name="fraction", min_val=0, max_val=1, include_min=False)
    0.5
    >>> check_scalar(float("nan"), name="lr", min_val=0)
    Traceback (most recent call last):
    ...
    dnnsparse.errors.InputError: lr=nan is not a finite number; give a finite value.
    """
    if isinstance(x, bool) or not isinstance(x, kind):
        raise InputError(f"{name} must be a {getattr(kind, '__name__', kind)}; got {x!r}.")
    if isinstance(x, numbers.Real) and not isinstance(x, numbers.Integral):
        value = float(x)
        if (math.isnan(value) and not allow_nan) or (math.isinf(value) and not allow_inf):
            raise InputError(f"{name}={value!r} is not a finite number; give a finite value.")
        if math.isnan(value):
            return x
    low_bad = min_val is not None and (x < min_val if include_min else x <= min_val)
    high_bad = max_val is not None and (x > max_val if include_max else x >= max_val)
    if low_bad or high_bad:
        lo = "[" if include_min else "("
        hi = "]" if include_max else ")"
        raise InputError(f"{name}={x!r} is outside {lo}{min_val}, {max_val}{hi}.")
    return x


def finite_float(text):
    """``argparse`` type: a float, refusing NaN and +-inf at parse time.

    ``float("nan")`` parses, and NaN then passes every later range check; use
    ``type=finite_float`` for every numeric option instead of ``type=float``.

    Raises
    ------
    argparse.ArgumentTypeError
        argparse turns it into ``argument -lr: 'nan' is not a finite number ...``
        and exit status 2.

    Examples
    --------
    >>> finite_float("1e-3")
    0.001
    >>> finite_float("nan")
    Traceback (most recent call last):
    ...
    argparse.ArgumentTypeError: 'nan' is not a finite number; give a value such as 0.5.
    """
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number; give a value such "
                                         f"as 0.5.") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number; give a value "
                                         f"such as 0.5.")
    return value


def _int_at_least(text, low):
    try:
        value = int(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number; give a value "
                                         f"such as {max(low, 1) * 4}.") from None
    if value < low:
        raise argparse.ArgumentTypeError(f"{text!r} is below {low}; give a whole number "
                                         f">= {low}.")
    return value


def positive_int(text):
    """``argparse`` type: a whole number >= 1 (a batch size, a count of steps).

    Examples
    --------
    >>> positive_int("8")
    8
    >>> positive_int("0")
    Traceback (most recent call last):
    ...
    argparse.ArgumentTypeError: '0' is below 1; give a whole number >= 1.
    """
    return _int_at_least(text, 1)


def nonnegative_int(text):
    """``argparse`` type: a whole number >= 0 (worker processes, permutations).

    Examples
    --------
    >>> nonnegative_int("0")
    0
    """
    return _int_at_least(text, 0)
