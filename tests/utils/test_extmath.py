"""The one group-means implementation, against np.add.at and a Python loop, bit for bit."""
import numpy as np
import pytest
from numpy.testing import assert_array_equal

from dnnsparse.errors import InputError
from dnnsparse.utils.extmath import group_means, group_sums


@pytest.fixture
def rows(rng):
    """300 rows whose magnitudes span 6 decades (so summation order shows in the bits),
    5 groups of unequal sizes in random order."""
    X = rng.standard_normal((300, 23)) * 10.0 ** rng.uniform(-3, 3, (300, 1))
    labels = rng.choice(np.array(["owl", "cat", "dog", "car", "cup"]), size=300,
                        p=[.4, .25, .2, .1, .05])
    return X, labels


def loop_sums(X, index, n_groups):
    """``sums[g] = ((0 + X[i0]) + X[i1]) + ...`` row by row: the documented arithmetic."""
    out = np.zeros((n_groups, X.shape[1]))
    for i, g in enumerate(index):
        out[g] = out[g] + X[i].astype(np.float64)
    return out


def test_group_sums_are_the_sequential_sums_bit_for_bit(rows):
    X, labels = rows
    groups, index = np.unique(labels, return_inverse=True)
    got = group_sums(X, index, groups.size)
    assert got.dtype == np.float64 and got.shape == (5, 23)
    assert_array_equal(got, loop_sums(X, index, groups.size))
    add_at = np.zeros((groups.size, X.shape[1]))
    np.add.at(add_at, index, X)                     # the old algo.rsa implementation
    assert_array_equal(got, add_at)
    # Pairwise summation (np.add.reduceat, which base.Activation.aggregate used) gives
    # other bits: the test data really tell summation orders apart.
    order = np.argsort(index, kind="stable")
    starts = np.flatnonzero(np.r_[True, np.diff(index[order]) != 0])
    pairwise = np.add.reduceat(X[order], starts, axis=0)
    assert not np.array_equal(got, pairwise)
    np.testing.assert_allclose(got, pairwise, rtol=1e-12, atol=1e-9)


def test_float32_rows_are_added_in_float64(rows):
    X, labels = rows
    X32 = (1000.0 + X[:, :5]).astype(np.float32)
    groups, index = np.unique(labels, return_inverse=True)
    assert_array_equal(group_sums(X32, index, 5), group_sums(X32.astype(np.float64), index, 5))
    assert_array_equal(group_sums(X32, index, 5), loop_sums(X32, index, 5))


def test_group_means(rows):
    X, labels = rows
    means, groups, counts = group_means(X, labels)
    assert groups.tolist() == sorted(set(labels.tolist()))
    assert counts.tolist() == [int((labels == g).sum()) for g in groups]
    index = np.searchsorted(groups, labels)
    assert_array_equal(means, loop_sums(X, index, 5) / counts[:, None])
    np.testing.assert_allclose(means, [X[labels == g].mean(axis=0) for g in groups],
                               rtol=1e-12, atol=1e-12)
    # a group of one row is that row, exactly
    one = group_means(X[:4], np.arange(4))
    assert_array_equal(one.means, X[:4])


def test_errors(rows):
    X, labels = rows
    with pytest.raises(InputError, match="rows: 300, labels: 299"):
        group_means(X, labels[:-1])
    with pytest.raises(InputError, match="must be 2-D"):
        group_sums(X[:, 0], np.zeros(300, dtype=int), 1)
