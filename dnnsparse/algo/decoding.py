"""Decoding models: predict stimulus labels or values from brain or DNN responses.

:func:`decode` cross-validates a classifier (logistic regression, linear SVM) or a
regressor (ridge, lasso, least squares) -- or any scikit-learn estimator -- and returns
held-out predictions with accuracy, balanced accuracy, the confusion matrix and
per-class accuracy (classification), or Pearson r and R² (regression), plus seeded
permutation p-values.  Features are standardised inside each training fold
(``scale=True``).  Folds are stratified for classifiers and grouped when ``groups``
is given (see :mod:`dnnsparse.algo.model_selection`).

Per-category classification accuracy, e.g. of FC2 activations with 2-fold CV::

    res = decode(fc2, categories, model="logistic", cv=2, seed=0)
    res.per_class_table()      # {"class": [...], "accuracy": [...], "n": [...]}
"""
import logging
from dataclasses import dataclass
from typing import Optional

import numpy as np
from sklearn.base import clone, is_classifier
from sklearn.linear_model import Lasso, LinearRegression, LogisticRegression, Ridge
from sklearn.metrics import confusion_matrix
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC

from ..errors import InputError
from ..utils.progress import progress as progress_bar
from ..utils.validation import check_array, check_choice, check_consistent_length
from .metrics import heldout_scores, per_class_accuracy
from .model_selection import (PermutationTest, check_resampling, fold_ids, make_splits,
                              permutation_indices)

__all__ = ["MODELS", "DecodingResult", "decode", "make_decoder"]

logger = logging.getLogger(__name__)

#: Named decoders: (class, default constructor arguments); ``model_params`` override.
MODELS = {
    "logistic": (LogisticRegression, {"max_iter": 1000}),
    "svm": (LinearSVC, {"max_iter": 10000}),
    "ridge": (Ridge, {}),
    "lasso": (Lasso, {}),
    "glm": (LinearRegression, {}),
}


def make_decoder(model="logistic", *, scale=True, model_params=None):
    """An unfitted decoder: a named model (see :data:`MODELS`) or a clone of an estimator,
    behind a ``StandardScaler`` when ``scale``.

    >>> make_decoder("svm", scale=False, model_params={"C": 0.1})
    LinearSVC(C=0.1, max_iter=10000)
    """
    if isinstance(model, str):
        check_choice(model, MODELS, name="model")
        cls, defaults = MODELS[model]
        try:
            est = cls(**{**defaults, **(model_params or {})})
        except TypeError as exc:
            raise InputError(f"bad model_params for model={model!r}: {exc}") from None
    elif hasattr(model, "fit") and hasattr(model, "predict"):
        if model_params:
            raise InputError("model_params only apply to a named model.")
        est = clone(model)
    else:
        raise InputError(f"model must be one of {sorted(MODELS)} or a scikit-learn "
                         f"estimator; got {model!r}.")
    return Pipeline([("scale", StandardScaler()), ("model", est)]) if scale else est


@dataclass
class DecodingResult:
    """Cross-validated decoding of a target from features.

    Attributes
    ----------
    predictions : ndarray of shape (n_samples,) or (n_samples, n_targets)
        Held-out prediction of every sample.
    folds : ndarray of shape (n_samples,)
        Fold that tested each sample.
    model : str
    task : {"classification", "regression"}
    accuracy, balanced_accuracy : float or None
        Fraction correct, and mean per-class accuracy (classification).
    classes : ndarray of shape (n_classes,) or None
    confusion : ndarray of shape (n_classes, n_classes) or None
        Counts; rows are true classes, columns predicted classes.
    per_class : ndarray of shape (n_classes,) or None
        Accuracy within each true class (confusion diagonal / row sums).
    fold_accuracy : ndarray of shape (n_folds,) or None
    r, r2 : ndarray of shape (n_targets,) or None
        Regression scores on the concatenated held-out predictions.
    p : float or ndarray or None
        Permutation p-value of the accuracy (classification) or of r per target.
    p_fwer : ndarray or None
        Max-statistic corrected p over targets (regression with several targets).
    null : ndarray of shape (n_perm,) or None
        Null accuracies (classification) or null maxima of r over targets.
    """

    predictions: np.ndarray
    folds: np.ndarray
    model: str
    task: str
    accuracy: Optional[float] = None
    balanced_accuracy: Optional[float] = None
    classes: Optional[np.ndarray] = None
    confusion: Optional[np.ndarray] = None
    per_class: Optional[np.ndarray] = None
    fold_accuracy: Optional[np.ndarray] = None
    r: Optional[np.ndarray] = None
    r2: Optional[np.ndarray] = None
    p: Optional[object] = None
    p_fwer: Optional[np.ndarray] = None
    null: Optional[np.ndarray] = None
    n_perm: int = 0

    def per_class_table(self):
        """Columns ``class``, ``accuracy`` and ``n`` (samples of that class)."""
        if self.confusion is None:
            raise InputError("per-class accuracy needs a classifier.")
        return {"class": self.classes, "accuracy": self.per_class,
                "n": self.confusion.sum(1)}


def _cv_predict(estimator, X, y, splits, step=None, *, classifier=False):
    """Held-out predictions, as ``cross_val_predict`` with the same folds.

    A classifier whose training fold holds a single class (permuted labels with few
    samples per class, or grouped folds) predicts that class: the only answer such a
    fold can teach, where scikit-learn's estimators refuse to fit.
    """
    pred = None
    for tr, te in splits:
        if classifier and np.all(y[tr] == y[tr][0]):
            p = np.full(len(te), y[tr][0])
        else:
            est = clone(estimator).fit(X[tr], y[tr])
            p = np.asarray(est.predict(X[te]))
        if pred is None:
            pred = np.empty((len(y),) + p.shape[1:], dtype=p.dtype)
        pred[te] = p
        if step is not None:
            step()
    return pred


def _classification_scores(y, pred, classes, splits):
    conf = confusion_matrix(y, pred, labels=classes)
    per_class = per_class_accuracy(conf)
    present = conf.sum(1) > 0
    return dict(accuracy=float(np.mean(pred == y)),
                balanced_accuracy=float(np.mean(per_class[present])),
                confusion=conf, per_class=per_class,
                fold_accuracy=np.array([np.mean(pred[te] == y[te]) for _, te in splits]))


def decode(X, y, *, model="logistic", cv=5, groups=None, n_perm=0, seed=None, scale=True,
           model_params=None, shuffle=True, progress=False):
    """Cross-validated decoding of ``y`` from ``X``.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Brain or DNN responses, one row per stimulus.
    y : array-like of shape (n_samples,) or (n_samples, n_targets)
        Class labels (any values) for a classifier, numbers for a regressor.
    model : str or estimator, default="logistic"
        ``"logistic"``, ``"svm"`` (linear), ``"ridge"``, ``"lasso"``, ``"glm"`` or
        any scikit-learn classifier / regressor (cloned for every fold).
    cv : int, "loo", splitter or list of (train, test), default=5
        An int gives shuffled ``StratifiedKFold`` for classifiers and ``KFold`` for
        regressors, or grouped folds with ``groups``.
    groups : array-like of shape (n_samples,), optional
        No group is split between training and test; permutations stay within groups.
    n_perm : int, default=0
        Label permutations (same folds, model refitted) for p-values.
    seed : None, int or numpy.random.Generator
    scale : bool, default=True
        Standardise features, fitted on each training fold.
    model_params : dict, optional
        Constructor arguments of a named model (e.g. ``{"C": 0.025}``).
    shuffle : bool, default=True
        Shuffle before k-fold splitting.
    progress : bool, default=False

    Returns
    -------
    DecodingResult

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((100, 5)); y = np.where(X[:, 0] > 0, "animate", "inanimate")
    >>> res = decode(X, y, cv=2, seed=0)
    >>> res.accuracy > 0.85, res.classes.tolist()
    (True, ['animate', 'inanimate'])
    """
    X = check_array(X, name="X", ndim=2, dtype="float")
    estimator = make_decoder(model, scale=scale, model_params=model_params)
    classifier = is_classifier(estimator)
    if classifier:
        y = np.asarray(y)
        if y.ndim != 1:
            raise InputError(f"class labels y must be 1-D; got shape {y.shape}.")
        classes = np.unique(y)
        if len(classes) < 2:
            raise InputError("y has a single class; decoding needs at least two.")
    else:
        y = check_array(y, name="y", ndim=(1, 2), dtype="float")
    check_consistent_length(X, y, names=["X", "y"])
    groups, n_perm, rng = check_resampling(X, groups=groups, n_perm=n_perm, seed=seed)
    splits = make_splits(cv, n_samples=len(X), groups=groups, y=y if classifier else None,
                         classifier=classifier, shuffle=shuffle, seed=rng)
    folds = fold_ids(splits, len(X))
    perms = permutation_indices(len(X), n_perm, groups=groups, seed=rng)
    name = model if isinstance(model, str) else type(model).__name__
    bar = progress_bar(total=(1 + n_perm) * len(splits), desc=f"decode {name}", unit="fold",
                   enabled=progress)
    logger.info("decode: %d samples, %d features, model=%s, %d folds, %d permutations",
                len(X), X.shape[1], name, len(splits), n_perm)

    pred = _cv_predict(estimator, X, y, splits, bar.update, classifier=classifier)
    if classifier:
        res = DecodingResult(predictions=pred, folds=folds, model=name, task="classification",
                             classes=classes, n_perm=n_perm,
                             **_classification_scores(y, pred, classes, splits))
        if n_perm:
            test = PermutationTest(np.array([res.accuracy]))
            for perm in perms:
                null_pred = _cv_predict(estimator, X, y[perm], splits, bar.update,
                                        classifier=True)
                test.update(np.array([np.mean(null_pred == y[perm])]))
            res.p = float(test.pvalues()[0][0])
            res.null = np.asarray(test.null_max)
    else:
        Y2 = y.reshape(len(y), -1)
        r, r2 = heldout_scores(Y2, pred.reshape(len(y), -1))
        res = DecodingResult(predictions=pred, folds=folds, model=name, task="regression",
                             r=r, r2=r2, n_perm=n_perm)
        if n_perm:
            test = PermutationTest(r)
            for perm in perms:
                null_pred = _cv_predict(estimator, X, y[perm], splits, bar.update)
                test.update(heldout_scores(Y2, null_pred.reshape(len(y), -1), rows=perm)[0])
            res.p, res.p_fwer = test.pvalues()
            res.null = np.asarray(test.null_max)
    bar.close()
    return res
