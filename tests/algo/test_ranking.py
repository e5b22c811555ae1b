"""Running top-N / bottom-N against a stable argsort of all values at once."""
import numpy as np
import pytest

from dnnsparse.algo.ranking import RunningTopN, rank_order
from dnnsparse.errors import InputError


def _stream(values, n, largest, chunks):
    top = RunningTopN(n, n_targets=values.shape[1], largest=largest)
    start = 0
    for size in chunks:
        top.update(values[start:start + size])
        start += size
    assert start >= len(values) and top.n_seen == len(values)
    return top


@pytest.mark.parametrize("largest", [True, False])
@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 16, 50, 1000])
def test_running_equals_argsort_with_ties(rng, largest, chunk):
    # few distinct values: many exact ties across chunk boundaries; some NaN
    values = rng.integers(0, 6, (97, 4)).astype(np.float64)
    values[rng.random(values.shape) < 0.05] = np.nan
    values[:, 3] = 1.0                                   # a column that is all ties
    for n in (1, 5, 97, 200):
        top = _stream(values, n, largest, [chunk] * (97 // chunk + 1))
        key = -values if largest else values
        ref = np.stack([np.argsort(key[:, j], kind="stable")[:n] for j in range(4)], axis=1)
        np.testing.assert_array_equal(top.indices, ref)
        np.testing.assert_array_equal(top.values, np.take_along_axis(values, ref, axis=0))
        np.testing.assert_array_equal(rank_order(values, largest=largest)[:n], ref)
    # all ties: stimulus order, in both directions
    np.testing.assert_array_equal(_stream(values, 10, largest, [chunk] * 100).indices[:, 3],
                                  np.arange(10))


def test_random_chunk_sizes_and_order(rng):
    values = rng.normal(size=(300, 3)).round(1)          # rounding makes ties
    ref = np.argsort(-values, axis=0, kind="stable")[:25]
    for _ in range(20):
        cuts = np.sort(rng.choice(np.arange(1, 300), size=rng.integers(1, 40), replace=False))
        sizes = np.diff(np.r_[0, cuts, 300])
        np.testing.assert_array_equal(_stream(values, 25, True, sizes).indices, ref)
    # chunks given out of order with their start: same answer
    top = RunningTopN(25, n_targets=3)
    starts = np.arange(0, 300, 30)
    for s in rng.permutation(starts):
        top.update(values[s:s + 30], start=s)
    np.testing.assert_array_equal(top.indices, ref)


def test_fewer_stimuli_than_n_and_bad_input():
    top = RunningTopN(10, n_targets=2).update(np.array([[1.0, 2.0], [3.0, 2.0]]))
    assert top.indices.tolist() == [[1, 0], [0, 1]]
    with pytest.raises(InputError, match="n="):
        RunningTopN(0, n_targets=1)
    with pytest.raises(InputError, match=r"\(n_stimuli, 2\)"):
        top.update(np.zeros((3, 1)))
