"""Scores of held-out predictions against scikit-learn and direct computations."""
import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.metrics import confusion_matrix
from sklearn.metrics import r2_score as sk_r2_score

from dnnsparse.algo import metrics
from dnnsparse.algo.metrics import (heldout_scores, pearson_r, per_category_accuracy,
                                    per_class_accuracy, r2_score)
from dnnsparse.errors import InputError


def test_accuracy_from_confusion_matrix(rng):
    y_true = rng.choice([3, 7, 11, 20], size=200)
    y_pred = np.where(rng.random(200) < 0.6, y_true, rng.choice([3, 7, 11, 20, 99], size=200))
    res = per_category_accuracy(y_true, y_pred)
    cm = confusion_matrix(y_true, y_pred, labels=[3, 7, 11, 20, 99])[:4, :4]
    full = confusion_matrix(y_true, y_pred, labels=[3, 7, 11, 20, 99])[:4]
    assert_array_equal(res.confusion, cm)
    assert_allclose(res.accuracy, np.diag(cm) / full.sum(axis=1))
    assert_array_equal(res.categories, [3, 7, 11, 20])
    assert_array_equal(res.counts, [np.sum(y_true == c) for c in [3, 7, 11, 20]])
    # a caller's order (e.g. PSI columns) is kept
    order = [20, 3, 11, 7]
    ordered = per_category_accuracy(y_true, y_pred, labels=order)
    assert_allclose(ordered.accuracy, [res.accuracy[[3, 7, 11, 20].index(c)] for c in order])


def test_accuracy_errors():
    with pytest.raises(InputError, match="no true stimuli"):
        per_category_accuracy(["a", "b"], ["a", "b"], labels=["a", "b", "c"])
    with pytest.raises(InputError, match="y_true: 2, y_pred: 3"):
        per_category_accuracy(["a", "b"], ["a", "b", "b"])
    with pytest.raises(InputError, match="duplicates"):
        per_category_accuracy(["a", "b"], ["a", "b"], labels=["a", "a"])


def test_one_accuracy_per_class_implementation(rng):
    """per_category_accuracy is per_class_accuracy of its confusion matrix (with the
    column of predictions outside the labels), bit for bit, and both equal the
    direct division of integer counts."""
    y_true = rng.choice([3, 7, 11, 20], size=301)
    y_pred = np.where(rng.random(301) < 0.55, y_true, rng.choice([3, 7, 11, 20, 99], size=301))
    res = per_category_accuracy(y_true, y_pred)
    full = confusion_matrix(y_true, y_pred, labels=[3, 7, 11, 20, 99])[:4]
    assert_array_equal(res.accuracy, per_class_accuracy(full))
    assert_array_equal(res.accuracy, np.diag(full) / full.sum(axis=1))    # the old formula
    # a class that never occurs: NaN, not an error
    assert_array_equal(per_class_accuracy([[3, 1], [0, 0]]), [0.75, np.nan])


def test_scores_against_sklearn_and_numpy(rng, monkeypatch):
    Y = rng.normal(size=(40, 7))
    P = Y + rng.normal(size=(40, 7))
    P[:, 3] = 1.0                                          # constant prediction: r NaN
    r, r2 = heldout_scores(Y, P)
    ref = [np.corrcoef(Y[:, j], P[:, j])[0, 1] for j in range(7) if j != 3]
    assert_allclose(np.delete(r, 3), ref, atol=1e-12)
    assert np.isnan(r[3]) and np.isnan(pearson_r(Y[:, 3], P[:, 3]))
    assert_allclose(r2, sk_r2_score(Y, P, multioutput="raw_values"), atol=1e-12)
    assert r2_score(Y[:, 0], P[:, 0]) == pytest.approx(r2[0], abs=1e-15)
    perm = rng.permutation(40)
    assert_array_equal(heldout_scores(Y, P, rows=perm)[1], heldout_scores(Y[perm], P)[1])
    monkeypatch.setattr(metrics, "_SCORE_CHUNK", 40 * 2)   # 2-column chunks
    assert_allclose(heldout_scores(Y, P)[1], r2, rtol=0, atol=1e-15)
