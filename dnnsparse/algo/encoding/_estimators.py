"""Encoding models: predict every voxel (target) from a layer's units (features).

Function first: :func:`encode` runs an outer cross-validation, returns held-out
predictions, per-voxel Pearson r and R², the penalties chosen per voxel and, on request,
permutation p-values.  Thin scikit-learn estimators second: :class:`VoxelwiseRidgeCV`
(penalty chosen per target by inner CV, all targets solved from one decomposition) and
:class:`LeastSquares` (GLM); any scikit-learn regressor or pipeline is accepted too.
Fitted linear models are saved as plain arrays (``.npz``, no pickles) with
:func:`dnnsparse.pipelines.save_model` and read back with
:func:`dnnsparse.pipelines.load_model` (files are the pipelines' business).

Which scikit-learn configuration each inner CV reproduces (per voxel, same folds):

- ``inner_cv=k`` or a splitter, ``inner_scoring="neg_mean_squared_error"`` (default):
  ``GridSearchCV(Ridge(fit_intercept=...), {"alpha": alphas}, cv=<same folds>,
  scoring="neg_mean_squared_error")`` -- also himalaya's ``RidgeCV(cv=<same folds>)``.
- ``inner_cv=k``, ``inner_scoring="r2"``: ``RidgeCV(alphas, cv=<same folds>)``, which
  scores folds with ``Ridge.score`` (R²).
- ``inner_cv="loo"``: ``RidgeCV(alphas, cv=None, alpha_per_target=True)`` (efficient
  leave-one-out / GCV, squared error).
"""
import logging
from dataclasses import dataclass
from typing import Optional

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.cross_decomposition import PLSRegression
from sklearn.decomposition import PCA
from sklearn.linear_model import Lasso
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted, validate_data

from ...errors import InputError
from ...utils.progress import progress as progress_bar
from ...utils.validation import check_array, check_choice, check_consistent_length
from ...utils.xp import to_namespace, to_numpy
from . import _solvers as _ridge
from ..metrics import heldout_scores
from ..model_selection import (PermutationTest, check_resampling, fold_ids, make_splits,
                               permutation_indices)

__all__ = [
    "DEFAULT_ALPHAS",
    "MODELS",
    "EncodingResult",
    "LeastSquares",
    "LinearEncoder",
    "VoxelwiseRidgeCV",
    "best_units",
    "encode",
    "make_encoder",
]

logger = logging.getLogger(__name__)

#: One penalty per decade; scale-dependent, so pass your own grid for unusual features.
DEFAULT_ALPHAS = tuple(float(a) for a in np.logspace(-2, 7, 10))

# Reuse fold decompositions across permutations up to this many bytes.
_CACHE_BYTES = 1 << 30


def _check_alphas(alphas, *, allow_zero=False):
    alphas = check_array(DEFAULT_ALPHAS if alphas is None else np.atleast_1d(alphas),
                         name="alphas", ndim=1)
    if np.any(alphas < 0) or (not allow_zero and np.any(alphas == 0)):
        raise InputError(f"alphas must be positive; got {alphas.tolist()}.")
    return alphas


def _check_xy(X, Y):
    X = check_array(X, name="X", ndim=2, dtype="float")
    Y = check_array(Y, name="Y", ndim=(1, 2), dtype="float")
    check_consistent_length(X, Y, names=["X (features)", "Y (targets)"])
    return X, Y


# ---------------------------------------------------------------- estimators
class VoxelwiseRidgeCV(RegressorMixin, BaseEstimator):
    """Ridge regression with the penalty chosen separately for every target by CV.

    Minimises ``||y_j - X w_j - b_j||^2 + alpha_j ||w_j||^2`` for each target ``j``,
    with ``alpha_j`` the grid value of best inner-CV score.  One decomposition of the
    (centred) features per fold serves all alphas and targets (dual form when
    features outnumber samples); targets are processed in batches.

    Parameters
    ----------
    alphas : array-like of shape (n_alphas,), default=DEFAULT_ALPHAS
    cv : int, "loo", splitter or list of (train, test), default=5
        Inner CV: an int is ``KFold(cv)`` without shuffling (scikit-learn's
        default); ``"loo"`` is efficient leave-one-out (see the module docstring).
    fit_intercept : bool, default=True
        Centre X and Y on the training means (the intercept is not penalised).
    scoring : {"neg_mean_squared_error", "r2"}, default="neg_mean_squared_error"
        Per-fold score of k-fold CV, averaged over folds.
    n_targets_batch : int, optional
        Targets per batch; None picks a batch size that bounds memory.

    Attributes
    ----------
    coef_ : ndarray of shape (n_targets, n_features)
    intercept_ : ndarray of shape (n_targets,)
    alphas_ : ndarray of shape (n_targets,)
    cv_scores_ : ndarray of shape (n_alphas, n_targets)
    x_mean_ : ndarray of shape (n_features,)

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((50, 4)); Y = X @ rng.standard_normal((4, 3))
    >>> VoxelwiseRidgeCV(alphas=[1e-3, 1e3]).fit(X, Y).alphas_.tolist()
    [0.001, 0.001, 0.001]
    """

    def __init__(self, alphas=DEFAULT_ALPHAS, *, cv=5, fit_intercept=True,
                 scoring="neg_mean_squared_error", n_targets_batch=None):
        self.alphas = alphas
        self.cv = cv
        self.fit_intercept = fit_intercept
        self.scoring = scoring
        self.n_targets_batch = n_targets_batch

    def fit(self, X, y):
        X, Y = self._check_fit_data(X, y)
        alphas = _check_alphas(self.alphas)
        check_choice(self.scoring, _ridge.INNER_SCORES, name="scoring")
        if self.cv == "loo":
            dec = _ridge.RidgeDecomposition(X, fit_intercept=self.fit_intercept)
            scores = _ridge.loo_alpha_scores(dec, Y, alphas, fit_intercept=self.fit_intercept,
                                             n_targets_batch=self.n_targets_batch)
        else:
            folds = make_splits(self.cv, n_samples=len(X), shuffle=False)

            def make_operator(i, tr, te):
                dec = _ridge.RidgeDecomposition(X[tr], fit_intercept=self.fit_intercept)
                return _ridge.FoldOperator(dec, X[te], alphas, Y.dtype)
            scores = _ridge.kfold_alpha_scores(make_operator, folds, Y,
                                               fit_intercept=self.fit_intercept,
                                               scoring=self.scoring,
                                               n_targets_batch=self.n_targets_batch)
        self.cv_scores_ = scores
        self.alphas_ = alphas[_ridge.select_alphas(scores)]
        self._set_coef(X, *_ridge.solve_ridge(X, Y, self.alphas_,
                                              fit_intercept=self.fit_intercept,
                                              n_targets_batch=self.n_targets_batch))
        return self

    def _check_fit_data(self, X, y):
        # scikit-learn's own validation, for its estimator contract and messages
        X, y = validate_data(self, X, y, multi_output=True, y_numeric=True,
                             dtype=[np.float64, np.float32])
        if y.dtype not in (np.float32, np.float64):
            y = y.astype(np.float64)
        self._ravel = y.ndim == 1           # 1-D target: scikit-learn's 1-D attributes
        return X, y.reshape(len(y), -1)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    def _set_coef(self, X, coef, intercept, x_mean):
        # scikit-learn's shapes: (n_features,) and a float for a 1-D target
        self.coef_ = coef[:, 0] if self._ravel else coef.T
        self.intercept_ = float(intercept[0]) if self._ravel else intercept
        self.x_mean_ = x_mean
        if self._ravel and hasattr(self, "alphas_"):
            self.alphas_ = float(self.alphas_[0])

    def predict(self, X):
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
        return X @ np.asarray(self.coef_).T + self.intercept_


class LeastSquares(VoxelwiseRidgeCV):
    """Ordinary least squares (the GLM) for all targets from one thin SVD.

    Minimum-norm solution when features outnumber samples, like
    ``sklearn.linear_model.LinearRegression``.

    >>> LeastSquares().fit([[0.], [1.], [2.]], [1., 3., 5.]).coef_.round(6).tolist()
    [2.0]
    """

    def __init__(self, *, fit_intercept=True, n_targets_batch=None):
        self.fit_intercept = fit_intercept
        self.n_targets_batch = n_targets_batch

    def fit(self, X, y):
        X, Y = self._check_fit_data(X, y)
        self._set_coef(X, *_ridge.solve_ridge(X, Y, 0.0, fit_intercept=self.fit_intercept,
                                              method="svd",
                                              n_targets_batch=self.n_targets_batch))
        return self


class LinearEncoder(VoxelwiseRidgeCV):
    """A fitted affine map ``X @ coef_.T + intercept_`` read back by :func:`load_model`."""

    def __init__(self):
        pass

    def fit(self, X, y):
        raise InputError("LinearEncoder holds a saved model; fit a new encoder with "
                         "make_encoder() instead.")


#: Named models of :func:`encode` and :func:`make_encoder`; ``model_params`` go to the
#: constructor.  "ridge" and "glm" use the fast solvers of :mod:`._ridge` inside encode.
MODELS = {
    "ridge": VoxelwiseRidgeCV,
    "glm": LeastSquares,
    "lasso": Lasso,
    "pls": PLSRegression,
}


def _check_reduce(reduce):
    """None, an int / fraction (PCA components / explained variance) or a transformer."""
    if reduce is None or hasattr(reduce, "fit_transform"):
        return reduce
    if isinstance(reduce, (int, float)) and not isinstance(reduce, bool) and reduce > 0:
        return PCA(n_components=reduce, svd_solver="full")
    raise InputError(f"reduce must be None, a number of PCA components (or a variance "
                     f"fraction) or a scikit-learn transformer; got {reduce!r}.")


def make_encoder(model="ridge", *, alphas=None, inner_cv=5, reduce=None, fit_intercept=True,
                 inner_scoring="neg_mean_squared_error", model_params=None,
                 n_targets_batch=None):
    """An unfitted encoder (scikit-learn estimator) for fitting on all stimuli.

    Parameters
    ----------
    model : str or estimator, default="ridge"
        A name in :data:`MODELS` or any scikit-learn regressor / pipeline (cloned).
    alphas, inner_cv, fit_intercept, inner_scoring, n_targets_batch
        Options of :class:`VoxelwiseRidgeCV` (ridge only).
    reduce : None, int, float or transformer
        Dimensionality reduction put in front of the model (a ``Pipeline``); an int is
        ``PCA(n_components=reduce)``.
    model_params : dict, optional
        Extra constructor arguments of a named model (e.g. ``{"n_components": 5}``).

    Returns
    -------
    estimator

    Examples
    --------
    >>> make_encoder("pls", model_params={"n_components": 3})
    PLSRegression(n_components=3)
    """
    params = dict(model_params or {})
    if isinstance(model, str):
        check_choice(model, MODELS, name="model")
        if model == "ridge":
            params = dict(alphas=_check_alphas(alphas), cv=inner_cv,
                          fit_intercept=fit_intercept, scoring=inner_scoring,
                          n_targets_batch=n_targets_batch, **params)
        elif model == "glm":
            params = dict(fit_intercept=fit_intercept, n_targets_batch=n_targets_batch,
                          **params)
        try:
            est = MODELS[model](**params)
        except TypeError as exc:
            raise InputError(f"bad model_params for model={model!r}: {exc}") from None
    elif hasattr(model, "fit") and hasattr(model, "predict"):
        est = clone(model)
    else:
        raise InputError(f"model must be one of {sorted(MODELS)} or a scikit-learn "
                         f"regressor; got {model!r}.")
    reduce = _check_reduce(reduce)
    if reduce is not None:
        est = Pipeline([("reduce", clone(reduce)), ("model", est)])
    return est


# ---------------------------------------------------------------- analysis
@dataclass
class EncodingResult:
    """Cross-validated encoding of ``n_targets`` voxels from ``n_features`` units.

    Attributes
    ----------
    r, r2 : ndarray of shape (n_targets,)
        Pearson r and R² between the concatenated held-out predictions and the data
        (NaN for a constant voxel).
    predictions : ndarray of shape (n_samples, n_targets)
        Held-out prediction of every stimulus (from the fold that tested it).
    folds : ndarray of shape (n_samples,)
        Outer fold that tested each stimulus.
    model, analysis : str
    alphas : ndarray of shape (n_folds, n_targets) or None
        Ridge penalty chosen for each voxel in each outer fold.
    units : ndarray of shape (n_folds, n_targets) or None
        ``analysis="uv"``: unit chosen for each voxel in each outer fold.
    best_unit : ndarray of shape (n_targets,) or None
        ``analysis="uv"``: unit most correlated with each voxel over all stimuli.
    p, p_fwer : ndarray of shape (n_targets,) or None
        Permutation p-values of ``perm_score`` (uncorrected, and max-statistic
        corrected across voxels).
    null_max : ndarray of shape (n_perm,) or None
        Maximum over voxels of each permutation's score.
    """

    r: np.ndarray
    r2: np.ndarray
    predictions: np.ndarray
    folds: np.ndarray
    model: str
    analysis: str
    alphas: Optional[np.ndarray] = None
    units: Optional[np.ndarray] = None
    best_unit: Optional[np.ndarray] = None
    p: Optional[np.ndarray] = None
    p_fwer: Optional[np.ndarray] = None
    null_max: Optional[np.ndarray] = None
    n_perm: int = 0
    perm_score: str = "r"

    def table(self):
        """Tidy columns (one row per voxel) for :func:`dnnsparse.io.table.write_table`."""
        cols = {"target": np.arange(self.r.size), "r": self.r, "r2": self.r2}
        if self.p is not None:
            cols.update(p=self.p, p_fwer=self.p_fwer)
        if self.alphas is not None:
            cols["alpha_median"] = np.median(self.alphas, axis=0)
        if self.best_unit is not None:
            cols["best_unit"] = self.best_unit
        return cols


@dataclass
class _Job:
    X: np.ndarray
    Y: np.ndarray
    outer: list
    inner: object
    alphas: np.ndarray
    features: object
    fit_intercept: bool
    inner_scoring: str
    n_targets_batch: Optional[int]
    estimator: object = None
    cache: object = None
    step: object = None


def _fold_features(X, reduce):
    """``features(train, test)``: the fold's features, reduction fitted on train only."""
    if reduce is None:
        return lambda tr, te: (X[tr], X[te])

    def features(tr, te):
        red = clone(reduce).fit(X[tr])
        return red.transform(X[tr]), red.transform(X[te])
    return features


def _run_ridge(job, rows):
    pred, best = _ridge.ridge_nested_cv(
        job.features, job.Y, job.alphas, job.outer, job.inner, rows=rows,
        fit_intercept=job.fit_intercept, scoring=job.inner_scoring,
        n_targets_batch=job.n_targets_batch, cache=job.cache, step=job.step)
    return to_numpy(pred), {"alphas": job.alphas[best]}


def _run_glm(job, rows):
    pred, _ = _ridge.ridge_nested_cv(
        job.features, job.Y, np.zeros(1), job.outer, None, rows=rows,
        fit_intercept=job.fit_intercept, method="svd", n_targets_batch=job.n_targets_batch,
        cache=job.cache, step=job.step)
    return to_numpy(pred), {}


def _run_estimator(job, rows):
    n, t = job.Y.shape
    pred = np.empty((n, t), dtype=job.Y.dtype)
    for tr, te in job.outer:
        est = clone(job.estimator)
        ytr = job.Y[tr if rows is None else rows[tr]]
        est.fit(job.X[tr], ytr[:, 0] if t == 1 else ytr)
        pred[te] = np.asarray(est.predict(job.X[te])).reshape(len(te), t)
        if job.step is not None:
            job.step()
    return pred, {}


def best_units(Xtr, Ytr, fit_intercept):
    """Unit of largest absolute correlation with each target, and its least-squares fit.

    One matrix product gives the correlations of all units with all targets.
    Returns ``(units, slope, x_mean, y_mean)``, each of shape (n_targets,).
    """
    Xtr = np.asarray(Xtr, dtype=np.float64)
    Ytr = np.asarray(Ytr, dtype=np.float64)
    x_mean = Xtr.mean(0) if fit_intercept else np.zeros(Xtr.shape[1])
    y_mean = Ytr.mean(0) if fit_intercept else np.zeros(Ytr.shape[1])
    Xc = Xtr - x_mean
    norm = np.sqrt(np.einsum("ij,ij->j", Xc, Xc))
    if not np.any(norm > 0):
        raise InputError("all features are constant in a training fold; nothing to "
                         "correlate with.")
    with np.errstate(divide="ignore", invalid="ignore"):
        Xn = np.where(norm > 0, Xc / np.where(norm > 0, norm, 1), 0.0)
    C = Xn.T @ (Ytr - y_mean)               # (n_features, n_targets): |r| * ||y_c||
    units = np.argmax(np.abs(C), axis=0)
    cols = np.arange(C.shape[1])
    slope = C[units, cols] / norm[units]    # (x_c . y_c) / ||x_c||^2
    return units, slope, x_mean[units], y_mean


def _run_uv(job, rows):
    n, t = job.Y.shape
    pred = np.empty((n, t), dtype=job.Y.dtype)
    units = np.empty((len(job.outer), t), dtype=np.intp)
    batch = _ridge.auto_batch(t, 1, job.X.shape[1], 8, job.n_targets_batch)
    for o, (tr, te) in enumerate(job.outer):
        Xtr, Xte = job.features(tr, te)
        tr_rows = tr if rows is None else rows[tr]
        for start in range(0, t, batch):
            b = slice(start, min(start + batch, t))
            u, slope, xm, ym = best_units(Xtr, job.Y[tr_rows, b], job.fit_intercept)
            pred[te, b] = ym + slope * (np.asarray(Xte, dtype=np.float64)[:, u] - xm)
            units[o, b] = u
        if job.step is not None:
            job.step()
    return pred, {"units": units}


_FAST = {("mv", "ridge"): _run_ridge, ("mv", "glm"): _run_glm, ("uv", "glm"): _run_uv}
ANALYSES = {"mv": "all units together", "uv": "best single unit per voxel"}
PERM_SCORES = {"r": 0, "r2": 1}


def encode(X, Y, *, model="ridge", alphas=None, cv=5, groups=None, inner_cv=5, reduce=None,
           analysis="mv", n_perm=0, perm_score="r", seed=None, fit_intercept=True,
           inner_scoring="neg_mean_squared_error", model_params=None, n_targets_batch=None,
           progress=False, like=None):
    """Cross-validated encoding of every target (voxel) from features (DNN units).

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        One row per stimulus (e.g. a layer's activations); float32 stays float32.
    Y : array-like of shape (n_samples,) or (n_samples, n_targets)
        Responses (voxels, neurons, units) to the same stimuli, same row order.
    model : str or estimator, default="ridge"
        ``"ridge"`` (penalty per voxel by inner CV), ``"glm"`` (least squares),
        ``"lasso"``, ``"pls"`` (multivariate PLS over all voxels) or any scikit-learn
        regressor / pipeline (cloned for every fold).
    alphas : array-like, default=DEFAULT_ALPHAS
        Ridge penalty grid.
    cv : int, "loo", splitter or list of (train, test), default=5
        Outer CV; an int is a shuffled, seeded ``KFold``, or ``GroupKFold`` when
        ``groups`` is given (no group is split).  Test sets must partition the samples.
    groups : array-like of shape (n_samples,), optional
        Group of each sample (e.g. scanning run); used by outer and inner CV and
        by the permutation test (rows are exchanged only within a group).
    inner_cv : int, "loo", splitter, default=5
        Ridge's alpha selection inside each outer training set: shuffled k-fold
        (grouped k-fold with groups) or efficient leave-one-out ``"loo"``.
    reduce : None, int, float or transformer
        Reduction (an int is PCA with that many components) fitted INSIDE every
        training fold (inner folds included), never on test stimuli.
    analysis : {"mv", "uv"}, default="mv"
        ``"mv"``: all units together.  ``"uv"``: for each voxel, the single unit
        most correlated with it in the training fold, fitted by least squares
        (``model="glm"`` only).  DNNBrain picked the unit of best CV score, which
        selects on the test data; here the choice is made on training data only.
    n_perm : int, default=0
        Permutations for p-values (targets' rows shuffled; everything refitted).
    perm_score : {"r", "r2"}, default="r"
        Score the permutation test compares.
    seed : None, int or numpy.random.Generator
        Seeds fold shuffling and permutations; an int gives bit-for-bit repeatable
        results.
    fit_intercept : bool, default=True
    inner_scoring : {"neg_mean_squared_error", "r2"}
    model_params : dict, optional
        Constructor arguments of a named model (``{"n_components": 5}`` for PLS).
    n_targets_batch : int, optional
        Voxels per batch in the ridge / GLM solvers (memory bound).
    progress : bool, default=False
        Show a tqdm bar over folds (and permutations).
    like : array, optional
        An (empty) torch tensor, or other array-API array: the ridge and GLM solvers
        run in its namespace, on its device and in its dtype (e.g. float64 on
        ``cuda``); scores are computed on the host as always.

    Returns
    -------
    EncodingResult

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((100, 20))
    >>> Y = X[:, :2] @ [[1., 0.], [0., 1.]] + 0.5 * rng.standard_normal((100, 2))
    >>> res = encode(X, Y, alphas=[0.1, 10, 1000], seed=0)
    >>> bool(np.all(res.r > 0.7))
    True
    """
    X, Y = _check_xy(X, Y)
    Y = Y.reshape(len(Y), -1)
    n = len(X)
    check_choice(analysis, ANALYSES, name="analysis")
    check_choice(perm_score, PERM_SCORES, name="perm_score")
    check_choice(inner_scoring, _ridge.INNER_SCORES, name="inner_scoring")
    groups, n_perm, rng = check_resampling(X, groups=groups, n_perm=n_perm, seed=seed)
    outer = make_splits(cv, n_samples=n, groups=groups, seed=rng)
    folds = fold_ids(outer, n)

    name = model if isinstance(model, str) else type(model).__name__
    runner = _FAST.get((analysis, model)) if isinstance(model, str) else None
    if analysis == "uv" and runner is None:
        raise InputError("analysis='uv' fits the best single unit per voxel by least "
                         "squares; use model='glm' (or analysis='mv' for other models).")
    reduce = _check_reduce(reduce)
    alphas = _check_alphas(alphas) if model == "ridge" else None
    inner = None
    if model == "ridge" and len(alphas) > 1:
        inner = _inner_splits(inner_cv, outer, groups, rng)
    estimator = None
    if runner is None:
        runner = _run_estimator
        estimator = make_encoder(model, reduce=reduce, model_params=model_params)
    elif model_params:
        raise InputError(f"model_params are not used by model={model!r}.")
    perms = permutation_indices(n, n_perm, groups=groups, seed=rng)

    bar = progress_bar(total=(1 + n_perm) * len(outer), desc=f"encode {name}", unit="fold",
                   enabled=progress)
    job = _Job(X=X, Y=Y, outer=outer, inner=inner, alphas=alphas,
               features=_fold_features(X, reduce), fit_intercept=fit_intercept,
               inner_scoring=inner_scoring, n_targets_batch=n_targets_batch,
               estimator=estimator, step=bar.update,
               cache=_ridge.OperatorCache(_CACHE_BYTES if n_perm else 0))
    if like is not None and runner in (_run_ridge, _run_glm):
        job.Y = to_namespace(Y, like)           # the solvers on like's device
    logger.info("encode: %d stimuli, %d features, %d targets, model=%s, analysis=%s, "
                "%d folds, %d permutations", n, X.shape[1], Y.shape[1], name, analysis,
                len(outer), n_perm)
    pred, extras = runner(job, None)
    r, r2 = heldout_scores(Y, pred)
    result = EncodingResult(r=r, r2=r2, predictions=pred, folds=folds, model=name,
                            analysis=analysis, alphas=extras.get("alphas"),
                            units=extras.get("units"), n_perm=n_perm, perm_score=perm_score)
    if analysis == "uv":
        result.best_unit = best_units(reduce.fit_transform(X) if reduce is not None else X,
                                      Y, fit_intercept)[0]
    if n_perm:
        test = PermutationTest((r, r2)[PERM_SCORES[perm_score]])
        for perm in perms:
            null_pred, _ = runner(job, perm)
            test.update(heldout_scores(Y, null_pred, rows=perm)[PERM_SCORES[perm_score]])
        result.p, result.p_fwer = test.pvalues()
        result.null_max = np.asarray(test.null_max)
    bar.close()
    return result


def _inner_splits(inner_cv, outer, groups, rng):
    """Inner folds of every outer training set, as indices into the full data."""
    if inner_cv == "loo":
        if groups is not None:
            raise InputError("inner_cv='loo' leaves out single samples and so splits "
                             "groups; use an integer inner_cv with groups.")
        return "loo"
    inner = []
    for i, (tr, _) in enumerate(outer):
        try:
            sub = make_splits(inner_cv, n_samples=len(tr),
                              groups=None if groups is None else groups[tr], seed=rng)
        except InputError as exc:   # say that it is the inner CV, not the user's outer cv
            raise InputError(f"inner CV of outer fold {i} ({len(tr)} training samples): "
                             f"{exc} Use a smaller inner_cv.") from None
        inner.append([(tr[a], tr[b]) for a, b in sub])
    return inner
