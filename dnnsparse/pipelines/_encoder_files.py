"""Saving fitted encoders as plain arrays (``.npz``, no pickles) and reading them back.

- :func:`affine_form` reduces a fitted linear model (or a pipeline of
  ``StandardScaler`` / ``PCA`` steps ending in one) to ``X @ A + c``;
- :func:`save_model` writes that affine map, :func:`load_model` reads it back as a
  :class:`~dnnsparse.algo.encoding.LinearEncoder`;
- :func:`save_unit_model` writes the univariate (``analysis="uv"``) model -- one unit,
  slope and intercept per target -- which :func:`load_model` reads back as a
  :class:`UnitEncoder` (no dense ``n_targets x n_features`` matrix is ever built).

Every file holds a ``format`` string, so a file of the wrong kind is refused with a
clear message, and ``np.load(..., allow_pickle=False)`` reads it anywhere.
"""
import numpy as np
from sklearn.cross_decomposition import PLSRegression
from sklearn.decomposition import PCA
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import check_is_fitted

from ..errors import FileFormatError, InputError
from ..io import atomic_output, check_input_file
from ..utils.validation import check_array

__all__ = ["UnitEncoder", "affine_form", "load_model", "save_model", "save_unit_model"]


def _affine_scaler(step):
    mean = step.mean_ if step.with_mean else 0.0
    scale = step.scale_ if step.with_std else 1.0
    A = np.diag(1.0 / np.broadcast_to(scale, (step.n_features_in_,)))
    return A, -np.broadcast_to(mean, (step.n_features_in_,)) @ A


def _affine_pca(step):
    A = step.components_.T.copy()
    if step.whiten:
        A /= np.sqrt(step.explained_variance_)
    return A, -step.mean_ @ A


def _affine_pls(est):
    W = est.coef_.T
    return W, est.intercept_ - est._x_mean @ W


def _affine_linear(est):
    coef = np.asarray(est.coef_, dtype=np.float64)
    W = coef.T if coef.ndim == 2 else coef[:, None]
    b = np.broadcast_to(np.asarray(est.intercept_, dtype=np.float64), (W.shape[1],))
    return W, b


#: How each supported step maps X to an affine form ``X @ A + c``.
_AFFINE = {StandardScaler: _affine_scaler, PCA: _affine_pca, PLSRegression: _affine_pls}


def affine_form(estimator):
    """``(A, c)`` with ``estimator.predict(X) == X @ A + c`` for a fitted linear model.

    Supports :class:`~dnnsparse.algo.encoding.VoxelwiseRidgeCV`,
    :class:`~dnnsparse.algo.encoding.LeastSquares`, scikit-learn linear models
    (``coef_`` / ``intercept_``), ``PLSRegression`` and pipelines of
    ``StandardScaler`` / ``PCA`` steps ending in one of those.

    Returns
    -------
    A : ndarray of shape (n_features, n_targets)
    c : ndarray of shape (n_targets,)
    """
    steps = [s for _, s in estimator.steps] if isinstance(estimator, Pipeline) else [estimator]
    A, c = None, None
    for step in steps:
        check_is_fitted(step)
        conv = _AFFINE.get(type(step))
        if conv is None and hasattr(step, "coef_") and hasattr(step, "intercept_"):
            conv = _affine_linear
        if conv is None:
            raise InputError(f"cannot save a {type(step).__name__}: only linear models "
                             f"(and StandardScaler/PCA steps) have a plain-array form.")
        A_i, c_i = conv(step)
        A, c = (A_i, c_i) if A is None else (A @ A_i, c @ A_i + c_i)
    return A, c


_FORMAT = "dnnsparse-linear-encoder-1"
_UNIT_FORMAT = "dnnsparse-unit-encoder-1"


def _write_npz(path, arrays, force):
    with atomic_output(path, force=force) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **arrays)


def save_model(path, estimator, *, force=False):
    """Save a fitted linear encoder as plain arrays in an ``.npz`` file (no pickles).

    Stores ``coef`` (n_targets, n_features) and ``intercept`` (n_targets,) of the
    model's overall affine map, and ``alphas`` / ``x_mean`` when the model has them.

    Parameters
    ----------
    path : str or Path
    estimator : fitted linear estimator (see :func:`affine_form`)
    force : bool, default=False
        Overwrite an existing file.
    """
    A, c = affine_form(estimator)
    final = estimator.steps[-1][1] if isinstance(estimator, Pipeline) else estimator
    arrays = {"format": np.array(_FORMAT), "model": np.array(type(final).__name__),
              "coef": np.ascontiguousarray(A.T), "intercept": np.asarray(c, dtype=np.float64)}
    if hasattr(final, "alphas_"):
        arrays["alphas"] = np.asarray(final.alphas_)
    if hasattr(final, "x_mean_") and final is estimator:   # means of the raw features
        arrays["x_mean"] = np.asarray(final.x_mean_)
    _write_npz(path, arrays, force)


def save_unit_model(path, units, slope, intercept, *, n_features, force=False):
    """Save a univariate encoder: target ``j`` is ``slope[j] * X[:, units[j]] + intercept[j]``.

    Parameters
    ----------
    path : str or Path
    units : array-like of int, shape (n_targets,)
        0-based feature (unit) of each target.
    slope, intercept : array-like of shape (n_targets,)
    n_features : int
        Number of features the model reads (for checking inputs of ``predict``).
    force : bool, default=False
    """
    units = np.asarray(units, dtype=np.int64)
    slope = np.asarray(slope, dtype=np.float64)
    intercept = np.asarray(intercept, dtype=np.float64)
    if not units.shape == slope.shape == intercept.shape or units.ndim != 1:
        raise InputError(f"units, slope and intercept need one value per target; got "
                         f"shapes {units.shape}, {slope.shape}, {intercept.shape}.")
    if units.size and (units.min() < 0 or units.max() >= n_features):
        raise InputError(f"unit indices must lie in 0..{n_features - 1}.")
    _write_npz(path, {"format": np.array(_UNIT_FORMAT), "model": np.array("uv"),
                      "unit": units, "slope": slope, "intercept": intercept,
                      "n_features": np.array(int(n_features))}, force)


class UnitEncoder:
    """A saved univariate encoder read back by :func:`load_model`.

    Attributes
    ----------
    units_ : ndarray of shape (n_targets,)
    slope_, intercept_ : ndarray of shape (n_targets,)
    n_features_in_ : int
    """

    model_name_ = "uv"

    def predict(self, X):
        """Predictions of shape (n_samples, n_targets) from X (n_samples, n_features)."""
        X = check_array(X, name="X", ndim=2, dtype="float")
        if X.shape[1] != self.n_features_in_:
            raise InputError(f"X has {X.shape[1]} features; the model reads "
                             f"{self.n_features_in_}.")
        return X[:, self.units_] * self.slope_ + self.intercept_


def _read_npz(path):
    path = check_input_file(path, what="model file")
    try:
        with np.load(path, allow_pickle=False) as data:
            return path, {k: data[k] for k in data.files}
    except (ValueError, OSError) as exc:
        raise FileFormatError(f"{path}: not a readable .npz model file ({exc}).") from None


def load_model(path):
    """Read a model written by :func:`save_model` or :func:`save_unit_model`.

    Returns
    -------
    LinearEncoder or UnitEncoder
        Both have ``predict(X)``.
    """
    from ..algo.encoding import LinearEncoder        # encoding imports this module

    path, arrays = _read_npz(path)
    kind = str(arrays.get("format", ""))
    if kind == _UNIT_FORMAT:
        model = UnitEncoder()
        model.units_ = arrays["unit"]
        model.slope_ = arrays["slope"]
        model.intercept_ = arrays["intercept"]
        model.n_features_in_ = int(arrays["n_features"])
        return model
    if kind != _FORMAT:
        raise FileFormatError(f"{path}: not a dnnsparse encoder file (missing format "
                              f"{_FORMAT!r}).")
    model = LinearEncoder()
    model.coef_ = arrays["coef"]
    model.intercept_ = arrays["intercept"]
    model.n_features_in_ = model.coef_.shape[1]
    model.model_name_ = str(arrays["model"])
    if "alphas" in arrays:
        model.alphas_ = arrays["alphas"]
    if "x_mean" in arrays:
        model.x_mean_ = arrays["x_mean"]
    return model
