"""Sparseness measures against slow, independent reference implementations."""
import doctest
import os

import h5py
import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy import stats
from sklearn.preprocessing import MinMaxScaler

from dnnsparse.algo.sparseness import _kernel as _sparseness_kernel
from dnnsparse.algo.sparseness import _measures as sp_module
from dnnsparse.algo.sparseness import (MEASURES, active_fraction, category_means, dead_units,
                                       hoyer_sparseness, kurtosis_sparseness, lifetime_sparseness,
                                       population_sparseness, sparseness)
from dnnsparse.errors import InputError
from dnnsparse.utils import memory

# scipy's zscore warns about the dead (constant) units the references contain on purpose.
pytestmark = pytest.mark.filterwarnings("ignore:Precision loss occurred:RuntimeWarning")


@pytest.fixture(autouse=True, params=["compiled", "numpy"])
def psi_path(request, monkeypatch):
    """Run every test twice: through the compiled (numba) kernel and the NumPy path.

    The compiled run needs numba (the ``fast``/``all`` extra, which the README installs).
    """
    if request.param == "compiled":
        pytest.importorskip("numba")
    monkeypatch.setattr(_sparseness_kernel, "AVAILABLE", request.param == "compiled")
    return request.param


def test_compiled_kernel_equals_numpy_path(rng, monkeypatch):
    """Both paths on awkward data: float32 and float64, dead units, a constant
    category, a category at every unit's mean, blocks and thread ranges."""
    pytest.importorskip("numba")
    x = rng.gamma(0.5, size=(36, 3001))
    x[:, 17] = 2.5                                   # dead units
    x[:, 2000] = 0.0
    x[6] = 1.0                                       # 1.0 everywhere but the dead units
    x[6, [17, 2000]] = x[0, [17, 2000]]
    x = np.insert(x, 5, x.mean(axis=0), axis=0)      # a category at every unit's mean
    y = rng.gamma(0.5, size=(50, 400))
    y[0, 100] = 1e6                                  # first row far from the mean: the
    y[0, 101] = -5e3                                 # kernel's exact two-pass variance
    y[:, 300] += 1e6                                 # large offset, small spread
    monkeypatch.setattr(sp_module, "_THREAD_VALUES", 1)    # three column ranges
    monkeypatch.setattr(sp_module.os, "cpu_count", lambda: 3)
    for data in (x, x.astype(np.float32), np.asfortranarray(x), x.astype(np.float16), y):
        results = {}
        for compiled in (True, False):
            monkeypatch.setattr(_sparseness_kernel, "AVAILABLE", compiled)
            results[compiled] = (population_sparseness(data),
                                 population_sparseness(data, chunk_size=100),
                                 hoyer_sparseness(data, normalize=True))
        for got, ref in zip(results[True], results[False]):
            assert_allclose(got, ref, rtol=0, atol=1e-12)
        if data is x:                                # (casting breaks "at the mean")
            assert results[True][0][5] == 0.0
    assert_allclose(results[True][0], slow_psi(paper_scaled(y)), rtol=0, atol=1e-10)


# ---------------------------------------------------------------------------
# Slow references: the paper's four steps written out, one category at a time
# ---------------------------------------------------------------------------
def paper_scaled(responses):
    """Steps 2-3 with scipy's zscore and sklearn's MinMaxScaler, category by category."""
    z = np.nan_to_num(stats.zscore(responses, axis=0, ddof=0))
    z[:, np.ptp(responses, axis=0) == 0] = 0.0      # dead units: 0, whatever rounding says
    return np.vstack([MinMaxScaler().fit_transform(row[:, None])[:, 0] for row in z])


def slow_psi(scaled):
    out = []
    for r in scaled:
        n = r.size
        if r.sum() == 0:
            out.append(0.0)
            continue
        a = (r.sum() / n) ** 2 / (np.sum(r ** 2) / n)
        out.append((1 - a) / (1 - 1 / n))
    return np.array(out)


@pytest.fixture
def gamma_responses(rng):
    """Skewed positive responses (23 categories x 41 units) with two dead units."""
    x = rng.gamma(0.5, size=(23, 41))
    x[:, 4] = 0.0
    x[:, 9] = 0.1
    return x


@pytest.fixture
def integer_responses(rng):
    """Integer responses where category 0 equals every unit's mean: its z-scores are
    all exactly 0, a constant category. Column 5 is a dead unit."""
    n = 40
    rest = rng.integers(0, 10, size=(n, 17)).astype(float)
    rest[-1] += (-rest.sum(axis=0)) % n             # column sums divisible by n
    rest[:, 5] = 3.0
    return np.vstack([rest.sum(axis=0) / n, rest])


def test_psi_equals_paper_steps(gamma_responses):
    got = population_sparseness(gamma_responses)
    assert got.dtype == np.float64 and got.shape == (23,)
    assert_allclose(got, slow_psi(paper_scaled(gamma_responses)), rtol=0, atol=1e-10)


def test_psi_constant_category_and_dead_units(integer_responses):
    ref = slow_psi(paper_scaled(integer_responses))
    assert ref[0] == 0.0                            # the all-zero scaled category
    got = population_sparseness(integer_responses)
    assert got[0] == 0.0
    assert_allclose(got, ref, rtol=0, atol=1e-10)
    dead = dead_units(integer_responses)
    assert_array_equal(dead, np.ptp(integer_responses, axis=0) == 0)
    assert dead.sum() == 1 and dead[5]


def test_category_constant_up_to_rounding_gets_zero(rng):
    x = rng.random((2, 50))
    x[0] += 1.0                                     # category 0 above category 1 in every unit
    z = stats.zscore(x, axis=0)
    assert 0 < np.ptp(z[0]) < 1e-14                 # only rounding separates the units
    assert_array_equal(population_sparseness(x), [0.0, 0.0])
    assert_array_equal(hoyer_sparseness(x, normalize=True), [0.0, 0.0])
    # a category at every unit's mean: its z-scores are 0 up to rounding
    rest = rng.random((9, 30))
    at_mean = np.vstack([rest.mean(axis=0), rest])
    assert population_sparseness(at_mean)[0] == 0.0
    assert_allclose(population_sparseness(at_mean)[1:], slow_psi(paper_scaled(at_mean))[1:],
                    atol=1e-10)
    x[1, :10] += 2.0                                # now a real pattern: 10 units the other way
    assert_allclose(population_sparseness(x), slow_psi(paper_scaled(x)), atol=1e-10)
    assert np.all(population_sparseness(x) > 0.1)


def test_dead_units_pull_psi_toward_zero(gamma_responses):
    alive = gamma_responses[:, np.ptp(gamma_responses, axis=0) > 0]
    padded = np.hstack([alive, np.zeros((alive.shape[0], 200))])
    assert np.all(population_sparseness(padded) < population_sparseness(alive))


@pytest.mark.parametrize("chunk_size", [1, 2, 7, 41, 1000])
def test_chunked_equals_unchunked(gamma_responses, chunk_size):
    whole = population_sparseness(gamma_responses, chunk_size=10 ** 6)
    assert_allclose(population_sparseness(gamma_responses, chunk_size=chunk_size), whole,
                    rtol=0, atol=1e-12)


def test_threaded_column_ranges_match(rng, monkeypatch):
    # force the multi-threaded path on a small matrix: 4 threads over 5000 units
    responses = rng.gamma(2.0, size=(20, 5000))
    responses[:, 1234] = 3.0                          # a dead unit inside one range
    single = population_sparseness(responses)
    monkeypatch.setattr(sp_module, "_THREAD_VALUES", 1)
    monkeypatch.setattr(sp_module.os, "cpu_count", lambda: 4)
    assert len(sp_module._column_ranges(responses)) == 4
    threaded = population_sparseness(responses)
    assert_allclose(threaded, single, rtol=0, atol=1e-12)
    assert_allclose(threaded, slow_psi(paper_scaled(responses)), rtol=0, atol=1e-10)
    assert_array_equal(population_sparseness(responses), threaded)   # repeatable
    assert_allclose(hoyer_sparseness(responses), slow_hoyer(responses), rtol=0, atol=1e-10)


def _psi_in_child(responses):
    return population_sparseness(responses)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork (POSIX)")
def test_threads_work_in_a_forked_child(rng, monkeypatch):
    # the parent's persistent thread pool has no threads in a forked child
    import multiprocessing
    responses = rng.gamma(2.0, size=(20, 5000))
    monkeypatch.setattr(sp_module, "_THREAD_VALUES", 1)
    monkeypatch.setattr(sp_module.os, "cpu_count", lambda: 2)
    expected = population_sparseness(responses)          # the parent's pool is running
    with multiprocessing.get_context("fork").Pool(1) as pool:
        got = pool.apply_async(_psi_in_child, (responses,)).get(timeout=120)
    assert_array_equal(got, expected)


def test_small_blocks_by_default_match(rng, monkeypatch):
    x = rng.gamma(0.5, size=(30, 500))
    whole = population_sparseness(x, chunk_size=10 ** 6)
    monkeypatch.setattr(sp_module, "_BLOCK_VALUES", 30 * 16)   # 16-unit blocks
    monkeypatch.setattr(memory, "READ_VALUES", 30 * 64)
    assert_allclose(population_sparseness(x), whole, rtol=0, atol=1e-12)


def test_hdf5_and_memmap_inputs(gamma_responses, tmp_path, monkeypatch):
    x32 = gamma_responses.astype(np.float32)
    expected = population_sparseness(x32)
    path = tmp_path / "resp.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("layer", data=x32)
    mm = np.memmap(tmp_path / "resp.dat", dtype=np.float32, mode="w+", shape=x32.shape)
    mm[:] = x32
    monkeypatch.setattr(memory, "READ_VALUES", 23 * 5)         # several reads
    with h5py.File(path, "r") as f:
        assert_allclose(population_sparseness(f["layer"]), expected, rtol=0, atol=1e-12)
        assert_allclose(population_sparseness(f["layer"], chunk_size=3), expected, rtol=0,
                        atol=1e-12)
        assert_array_equal(dead_units(f["layer"]), dead_units(x32))
    assert_allclose(population_sparseness(mm, chunk_size=6), expected, rtol=0, atol=1e-12)


def test_float32_is_accumulated_in_float64(rng):
    # Large offset: float32 arithmetic would lose the small differences between units.
    x32 = (1000.0 + rng.random((12, 300))).astype(np.float32)
    got = population_sparseness(x32, normalize=False)
    assert got.dtype == np.float64
    assert_array_equal(got, population_sparseness(x32.astype(np.float64), normalize=False))
    ref = slow_psi(x32.astype(np.float64))
    assert_allclose(got, ref, rtol=0, atol=1e-12)
    assert_array_equal(population_sparseness(x32), population_sparseness(x32.astype(float)))


def test_raw_psi_known_values():
    one_hot = np.eye(5)
    assert_allclose(population_sparseness(one_hot, normalize=False), np.ones(5))
    uniform = np.full((2, 7), 3.0)
    assert_allclose(population_sparseness(uniform, normalize=False), 0.0, atol=1e-15)
    half = np.array([[1.0, 1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    # a = 0.5**2 / 0.5 = 0.5, PSI = 0.5 / 0.75; the silent category gets 0
    assert_allclose(population_sparseness(half, normalize=False), [2 / 3, 0.0])


def test_psi_errors_and_warnings():
    with pytest.raises(InputError, match=r"at least 2 unit"):
        population_sparseness(np.ones((4, 1)))
    with pytest.raises(InputError, match=r"responses\[:, 0:3\] contains 1 NaN"):
        population_sparseness([[1.0, np.nan, 2.0], [0.0, 1.0, 2.0]])
    for measure in MEASURES:
        with pytest.raises(InputError, match="NaN or infinite"):
            sparseness([[1.0, np.inf, 2.0], [0.0, 1.0, 2.0]], measure=measure)
        with pytest.raises(InputError, match="NaN or infinite"):
            sparseness([[1.0, np.nan, 2.0], [0.0, 1.0, 2.0]], measure=measure, chunk_size=1)
    for measure in ("psi", "hoyer", "kurtosis"):
        with pytest.raises(InputError, match=r"\[:, 1:2\] contains 1 NaN"):
            sparseness([[1.0, np.nan, 2.0], [0.0, 1.0, 2.0]], measure=measure,
                       normalize=True, chunk_size=1)
    with pytest.raises(InputError, match="2-D"):
        population_sparseness([1.0, 2.0, 3.0])
    with pytest.raises(InputError, match=r"negative values \(first in unit 1\)"):
        population_sparseness([[1.0, -1.0], [0.0, 2.0]], normalize=False)
    with pytest.raises(InputError, match="chunk_size"):
        population_sparseness(np.ones((2, 3)), chunk_size=0)
    with pytest.warns(UserWarning, match="one category"):
        assert_array_equal(population_sparseness([[1.0, 5.0, 2.0]]), [0.0])
    # the input array is never modified in place
    x = np.array([[1.0, 5.0, 2.0], [0.0, 1.0, 3.0]])
    before = x.copy()
    population_sparseness(x)
    assert_array_equal(x, before)


# ---------------------------------------------------------------------------
# Other measures
# ---------------------------------------------------------------------------
def slow_hoyer(m):
    out = []
    for r in m:
        n = r.size
        l2 = np.sqrt(np.sum(r ** 2))
        out.append(0.0 if l2 == 0 else (np.sqrt(n) - np.sum(np.abs(r)) / l2) / (np.sqrt(n) - 1))
    return np.array(out)


def test_hoyer_against_loop(gamma_responses, rng):
    signed = rng.normal(size=(9, 30))
    signed[3] = 0.0
    assert_allclose(hoyer_sparseness(signed, chunk_size=4), slow_hoyer(signed), atol=1e-12)
    assert_allclose(hoyer_sparseness(gamma_responses, normalize=True, chunk_size=5),
                    slow_hoyer(paper_scaled(gamma_responses)), atol=1e-10)


@pytest.mark.parametrize("chunk_size", [None, 1, 3, 8])
def test_kurtosis_against_scipy(gamma_responses, chunk_size):
    ref = stats.kurtosis(gamma_responses, axis=1, fisher=True, bias=True)
    assert_allclose(kurtosis_sparseness(gamma_responses, chunk_size=chunk_size), ref,
                    rtol=1e-10)
    z = np.nan_to_num(stats.zscore(gamma_responses, axis=0))
    z[:, np.ptp(gamma_responses, axis=0) == 0] = 0
    assert_allclose(kurtosis_sparseness(gamma_responses, normalize=True,
                                        chunk_size=chunk_size),
                    stats.kurtosis(z, axis=1), rtol=1e-9)


def test_kurtosis_constant_category_is_nan():
    with pytest.warns(UserWarning, match="undefined"):
        got = kurtosis_sparseness([[2.0, 2.0, 2.0], [0.0, 1.0, 5.0]])
    assert np.isnan(got[0]) and np.isfinite(got[1])


def test_active_fraction_against_loop(rng):
    x = rng.normal(size=(6, 50))
    for thr in (0.0, 0.5):
        ref = [np.mean([v > thr for v in row]) for row in x]
        assert_allclose(active_fraction(x, threshold=thr, chunk_size=7), ref)


def test_lifetime_against_loop(gamma_responses):
    x = gamma_responses
    raw = [slow_psi(col[None, :])[0] for col in x.T]
    assert_allclose(lifetime_sparseness(x, normalize=False, chunk_size=6), raw, atol=1e-12)
    scaled = MinMaxScaler().fit_transform(x)        # each unit scaled across categories
    ref = [slow_psi(col[None, :])[0] for col in scaled.T]
    got = lifetime_sparseness(x, chunk_size=6)
    assert got.shape == (41,)
    assert_allclose(got, ref, atol=1e-12)
    assert got[4] == 0.0 and got[9] == 0.0          # dead units
    with pytest.raises(InputError, match="at least 2 categories"):
        lifetime_sparseness(x[:1])
    with pytest.raises(InputError, match="negative"):
        lifetime_sparseness(-x, normalize=False)


def test_registry_dispatch(gamma_responses):
    assert set(MEASURES) == {"psi", "lifetime", "hoyer", "kurtosis", "active"}
    for name, func in MEASURES.items():
        assert_array_equal(sparseness(gamma_responses, measure=name), func(gamma_responses))
    assert_array_equal(sparseness(gamma_responses, measure="psi", normalize=False),
                       population_sparseness(gamma_responses, normalize=False))
    with pytest.raises(InputError, match="choose from"):
        sparseness(gamma_responses, measure="gini")
    # entries carry what their consumers need: output shape, range and a help phrase
    for name, entry in MEASURES.items():
        values = sparseness(gamma_responses, measure=name)
        n_rows, n_cols = gamma_responses.shape
        assert values.shape == ((n_cols,) if entry.per_unit else (n_rows,))
        if entry.bounded:
            assert ((values >= 0) & (values <= 1)).all()
        assert f"{name}: {entry.description}" in MEASURES.describe()
    assert [n for n, e in MEASURES.items() if not e.bounded] == ["kurtosis"]
    from dnnsparse.algo.sparseness import UNIT_MODES
    assert UNIT_MODES.describe().startswith("channel: a channel averaged over its spatial map")


# ---------------------------------------------------------------------------
# Category means
# ---------------------------------------------------------------------------
@pytest.fixture
def conv_acts(rng):
    """37 stimuli of a (3, 4, 5) conv layer; 4 categories, unequal and interleaved."""
    labels = rng.choice(np.array(["dog", "cat", "car", "owl"]), size=37, p=[.4, .3, .2, .1])
    return rng.normal(size=(37, 3, 4, 5)).astype(np.float32), labels


def slow_means(acts, labels, unit):
    acts = acts.astype(np.float64)
    cats = sorted(set(labels))
    rows = []
    for c in cats:
        stim = [acts[i] for i in range(len(labels)) if labels[i] == c]
        per_stim = [s.reshape(s.shape[0], -1).mean(axis=1) if unit == "channel" else s.ravel()
                    for s in stim]
        rows.append(np.mean(per_stim, axis=0))
    return np.array(rows), cats, [list(labels).count(c) for c in cats]


@pytest.mark.parametrize("unit, n_units", [("channel", 3), ("position", 60)])
def test_category_means_against_loop(conv_acts, unit, n_units):
    acts, labels = conv_acts
    ref, cats, counts = slow_means(acts, labels, unit)
    means, got_cats, got_counts = category_means(acts, labels, unit=unit, batch_size=5)
    assert means.shape == (4, n_units) and means.dtype == np.float64
    assert_allclose(means, ref, rtol=0, atol=1e-12)
    assert got_cats.tolist() == cats and got_counts.tolist() == counts
    assert len(set(counts)) > 1                     # sizes really are unequal


def test_category_means_arithmetic_is_fixed(conv_acts):
    """Per batch, each category's stimuli are added in float64 in stimulus order from 0
    (utils.extmath.group_sums, the scipy one-hot product it always was); the batches'
    sums are then added in order. Bit for bit, so db_psi's values do not change."""
    from scipy import sparse

    acts, labels = conv_acts
    cats, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    feats = acts.reshape(37, 3, -1).mean(axis=2, dtype=np.float64)
    total = None
    for start in range(0, 37, 5):                          # the old code, batch by batch
        rows = inverse[start:start + 5]
        onehot = sparse.csr_matrix((np.ones(rows.size), (rows, np.arange(rows.size))),
                                   shape=(4, rows.size))
        part = np.asarray(onehot @ feats[start:start + 5])
        total = part if total is None else total + part
    means = category_means(acts, labels, batch_size=5).means
    assert_array_equal(means, total / counts[:, None])
    loop = np.zeros((4, 3))
    for start in range(0, 37, 5):
        part = np.zeros((4, 3))
        for i in range(start, min(start + 5, 37)):
            part[inverse[i]] = part[inverse[i]] + feats[i]
        loop = loop + part
    assert_array_equal(means, loop / counts[:, None])


def test_category_means_sources_agree(conv_acts, tmp_path):
    acts, labels = conv_acts
    expected = category_means(acts, labels).means
    with h5py.File(tmp_path / "a.h5", "w") as f:
        f.create_dataset("conv", data=acts)
    with h5py.File(tmp_path / "a.h5", "r") as f:
        assert_allclose(category_means(f["conv"], labels, batch_size=6).means, expected,
                        atol=1e-13)
    batches = (acts[i:i + 10] for i in range(0, 37, 10))
    assert_allclose(category_means(batches, labels).means, expected, atol=1e-13)
    fc = acts.reshape(37, -1)
    assert_allclose(category_means(fc, labels).means,
                    category_means(acts, labels, unit="position").means, atol=1e-13)


def test_category_means_errors(conv_acts):
    acts, labels = conv_acts
    with pytest.raises(InputError, match="36 stimuli but labels 37"):
        category_means(acts[:36], labels)
    with pytest.raises(InputError, match="hold 30 stimuli but labels 37"):
        category_means((acts[i:i + 10] for i in range(0, 30, 10)), labels)
    with pytest.raises(InputError, match="choose from"):
        category_means(acts, labels, unit="voxel")
    bad = acts.copy()
    bad[3, 0, 0, 0] = np.nan
    with pytest.raises(InputError, match="NaN"):
        category_means(bad, labels)


def test_docstring_examples():
    result = doctest.testmod(sp_module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 5 and result.failed == 0
