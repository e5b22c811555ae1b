"""Scores of held-out predictions, shared by encoding, decoding and the PSI analysis.

- :func:`pearson_r`, :func:`r2_score`, :func:`heldout_scores` -- per-target Pearson r
  and R², float64, in column chunks (memory does not grow with the targets);
- :func:`per_class_accuracy` -- accuracy within each true class of a confusion
  matrix; :func:`per_category_accuracy` -- the same from true and predicted labels,
  for the categories of a PSI table (:class:`CategoryAccuracy`).

The splits and permutations these are computed on are in
:mod:`dnnsparse.algo.model_selection`.
"""
from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from ..utils.validation import check_consistent_length

__all__ = [
    "CategoryAccuracy",
    "heldout_scores",
    "pearson_r",
    "per_category_accuracy",
    "per_class_accuracy",
    "r2_score",
]

# Column batches of this many elements keep score computations' temporaries small.
_SCORE_CHUNK = 1 << 22


def _as_2d(a):
    a = np.asarray(a)
    return a[:, None] if a.ndim == 1 else a


def _chunks(n_rows, n_cols):
    step = max(1, _SCORE_CHUNK // max(n_rows, 1))
    for start in range(0, n_cols, step):
        yield slice(start, min(start + step, n_cols))


def _score_columns(y_true, y_pred, rows=None):
    """Pearson r and R² per column, float64, in column chunks."""
    y_true, y_pred = _as_2d(y_true), _as_2d(y_pred)
    n, t = y_pred.shape
    r = np.empty(t)
    r2 = np.empty(t)
    for b in _chunks(n, t):
        yt = (y_true[:, b] if rows is None else y_true[rows, b]).astype(np.float64)
        yp = y_pred[:, b].astype(np.float64)
        ss_res = np.einsum("ij,ij->j", yt - yp, yt - yp)
        yt -= yt.mean(0)
        yp -= yp.mean(0)
        ss_tot = np.einsum("ij,ij->j", yt, yt)
        ss_pred = np.einsum("ij,ij->j", yp, yp)
        cov = np.einsum("ij,ij->j", yt, yp)
        with np.errstate(divide="ignore", invalid="ignore"):
            den = np.sqrt(ss_tot * ss_pred)
            r[b] = np.where(den > 0, cov / np.where(den > 0, den, 1), np.nan)
            r2[b] = np.where(ss_tot > 0, 1 - ss_res / np.where(ss_tot > 0, ss_tot, 1),
                             np.nan)
    return r, r2


def pearson_r(y_true, y_pred):
    """Pearson correlation per column (NaN where either column is constant).

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,) or (n_samples, n_targets)

    Returns
    -------
    float or ndarray of shape (n_targets,)

    >>> float(pearson_r([1, 2, 3], [2, 4, 7]).round(4))
    0.9934
    """
    r = _score_columns(y_true, y_pred)[0]
    return r[0] if np.ndim(y_pred) == 1 else r


def r2_score(y_true, y_pred):
    """Coefficient of determination per column, ``1 - SS_res / SS_tot``.

    Equals ``sklearn.metrics.r2_score(..., multioutput="raw_values")`` except for a
    constant ``y_true`` column, where it is NaN (scikit-learn returns 0 or 1).

    >>> float(r2_score([1, 2, 3], [1, 2, 4]))
    0.5
    """
    r2 = _score_columns(y_true, y_pred)[1]
    return r2[0] if np.ndim(y_pred) == 1 else r2


def heldout_scores(y_true, y_pred, *, rows=None):
    """Pearson r and R² per target between held-out predictions and data.

    Both are computed once on the concatenated held-out predictions of all folds
    (not averaged over folds), like ``cross_val_predict`` followed by a score.

    Parameters
    ----------
    y_true : ndarray of shape (n_samples, n_targets)
    y_pred : ndarray of shape (n_samples, n_targets)
    rows : ndarray of shape (n_samples,), optional
        Compare with ``y_true[rows]`` (a permuted target) without copying it whole.

    Returns
    -------
    r, r2 : ndarray of shape (n_targets,)
    """
    return _score_columns(y_true, y_pred, rows)


def per_class_accuracy(confusion):
    """Accuracy within each true class: ``diag / row sums`` of a confusion matrix.

    Rows are true classes, columns predicted classes (scikit-learn's convention);
    columns beyond the last class (predictions outside the classes) count as errors.
    A class that never occurs gives NaN.

    >>> per_class_accuracy([[3, 1], [0, 4]]).tolist()
    [0.75, 1.0]
    """
    confusion = np.asarray(confusion, dtype=np.float64)
    totals = confusion.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(totals > 0, np.diag(confusion) / np.where(totals > 0, totals, 1),
                        np.nan)


@dataclass(frozen=True)
class CategoryAccuracy:
    """Result of :func:`per_category_accuracy`."""

    accuracy: np.ndarray    #: (n_categories,) fraction of each category's stimuli correct
    categories: np.ndarray  #: (n_categories,) category labels, rows of ``confusion``
    counts: np.ndarray      #: (n_categories,) true stimuli per category
    confusion: np.ndarray   #: (n_categories, n_categories) rows true, columns predicted


def per_category_accuracy(y_true, y_pred, *, labels=None):
    """Accuracy of each category from the confusion matrix (rows = true class).

    ``accuracy[k] = confusion[k, k] / confusion[k].sum()``. With predictions
    pooled over cross-validation folds this equals the authors' average of
    per-fold confusion matrices when the folds hold equal numbers per category.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)
        True and predicted category of each stimulus.
    labels : array-like of shape (n_categories,), optional
        Categories to report, in this order (e.g. the order of the PSI
        columns). Default: the sorted unique values of ``y_true``. Predictions
        outside ``labels`` count as errors; stimuli whose true category is not
        in ``labels`` are left out.

    Returns
    -------
    CategoryAccuracy

    Raises
    ------
    InputError
        If lengths differ, or a category in ``labels`` has no true stimuli.

    Examples
    --------
    >>> res = per_category_accuracy(["a", "a", "b", "b", "b"], ["a", "b", "b", "b", "a"])
    >>> res.accuracy.round(3).tolist(), res.categories.tolist()
    ([0.5, 0.667], ['a', 'b'])
    """
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    check_consistent_length(y_true, y_pred, names=["y_true", "y_pred"])
    if y_true.ndim != 1 or y_pred.ndim != 1 or y_true.size == 0:
        raise InputError("y_true and y_pred must be non-empty 1-D arrays of labels; got "
                         f"shapes {y_true.shape} and {y_pred.shape}.")
    labels = np.unique(y_true) if labels is None else np.asarray(labels)
    if np.unique(labels).size != labels.size:
        raise InputError("labels contains duplicates; list every category once.")
    order = np.argsort(labels, kind="stable")
    sorted_labels = labels[order]

    def index(values):
        pos = np.searchsorted(sorted_labels, values).clip(max=labels.size - 1)
        found = sorted_labels[pos] == values
        return np.where(found, order[pos], -1)

    true_idx, pred_idx = index(y_true), index(y_pred)
    keep = true_idx >= 0                       # samples of categories not reported are ignored
    n = labels.size
    # Predictions outside labels go to an extra column n, dropped afterwards.
    pred_col = np.where(pred_idx >= 0, pred_idx, n)
    confusion = np.bincount(true_idx[keep] * (n + 1) + pred_col[keep],
                            minlength=n * (n + 1)).reshape(n, n + 1)
    counts = confusion.sum(axis=1)
    if (counts == 0).any():
        missing = labels[counts == 0][:5].tolist()
        raise InputError(f"{int((counts == 0).sum())} categor(y/ies) in labels have no true "
                         f"stimuli (e.g. {missing}); accuracy is undefined for them.")
    # Row sums include column n (wrong predictions outside labels): counts.
    return CategoryAccuracy(per_class_accuracy(confusion), labels, counts, confusion[:, :n])
