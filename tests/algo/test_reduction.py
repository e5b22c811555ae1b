"""Feature reduction against scikit-learn, NumPy and SciPy on the same matrices."""
import numpy as np
import pytest
from scipy.signal import periodogram
from sklearn.cluster import AgglomerativeClustering, KMeans
from sklearn.decomposition import NMF, PCA, FastICA, IncrementalPCA
from sklearn.utils import gen_batches

from dnnsparse.algo.reduction import (Clustering, Reduction, check_n_components, chunk_slices,
                                      cluster, fast_ica, incremental_pca, map_histograms, map_range,
                                      map_spectra, nmf, standardize_rows)
from dnnsparse.errors import InputError


def _align(a, b):
    """Flip the rows of ``a`` to the signs of ``b`` (component signs are arbitrary)."""
    signs = np.sign(np.sum(a * b, axis=1))
    assert np.all(signs != 0)
    return a * signs[:, None], signs


@pytest.fixture
def X(rng):
    # correlated features, unequal variances
    return rng.normal(size=(60, 8)) @ rng.normal(size=(8, 8)) + rng.normal(size=8)


def test_one_chunk_pca_is_exact_pca(X):
    red = incremental_pca([X], 3)
    ref = PCA(3, svd_solver="full").fit(X)
    comp, signs = _align(red.components, ref.components_)
    np.testing.assert_allclose(comp, ref.components_, atol=1e-10)
    np.testing.assert_allclose(red.explained_variance, ref.explained_variance_, rtol=1e-10)
    np.testing.assert_allclose(red.explained_variance_ratio, ref.explained_variance_ratio_,
                               rtol=1e-10)
    np.testing.assert_allclose(red.transform(X) * signs, ref.transform(X), atol=1e-9)
    # and an independent SVD of the centred matrix
    centred = X - X.mean(axis=0)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    np.testing.assert_allclose(np.abs(red.components), np.abs(vt[:3]), atol=1e-10)
    np.testing.assert_allclose(red.explained_variance, s[:3] ** 2 / (len(X) - 1), rtol=1e-10)


def test_incremental_pca_equals_sklearn_fed_the_same_chunks(X):
    slices = chunk_slices(len(X), 14, min_size=4)
    red = incremental_pca((X[s] for s in slices), 4)
    ref = IncrementalPCA(4)
    for s in slices:
        ref.partial_fit(X[s])
    comp, signs = _align(red.components, ref.components_)
    np.testing.assert_allclose(comp, ref.components_, atol=1e-10)
    np.testing.assert_allclose(red.mean, ref.mean_, atol=1e-12)
    np.testing.assert_allclose(red.explained_variance, ref.explained_variance_, rtol=1e-10)
    np.testing.assert_allclose(red.singular_values, ref.singular_values_, rtol=1e-10)
    np.testing.assert_allclose(red.transform(X) * signs, ref.transform(X), atol=1e-9)
    assert red.n_samples == len(X)


def test_incremental_pca_is_exact_on_low_rank_data(rng):
    # rank 3: every chunk's truncation loses nothing, so chunked = exact PCA
    X = rng.normal(size=(50, 3)) @ rng.normal(size=(3, 10)) + 5.0
    red = incremental_pca((X[s] for s in chunk_slices(50, 7, min_size=3)), 3)
    centred = X - X.mean(axis=0)
    u, s, vt = np.linalg.svd(centred, full_matrices=False)
    comp, signs = _align(red.components, vt[:3])
    np.testing.assert_allclose(comp, vt[:3], atol=1e-8)
    np.testing.assert_allclose(red.transform(X) * signs, u[:, :3] * s[:3], atol=1e-7)


def test_chunk_slices_match_sklearn_batches():
    for n, size, low in [(10, 4, 3), (10, 4, 1), (12, 4, 4), (3, 10, 2), (9, 3, 3)]:
        ours = chunk_slices(n, size, min_size=low)
        theirs = list(gen_batches(n, size, min_batch_size=low))
        assert [(s.start, s.stop) for s in ours] == [(s.start, s.stop) for s in theirs]


def test_whitened_pca_scores_have_unit_variance(X):
    red = incremental_pca([X], 3, whiten=True)
    scores = red.transform(X)
    np.testing.assert_allclose(scores.var(axis=0, ddof=1), 1.0, rtol=1e-10)
    ref = PCA(3, whiten=True, svd_solver="full").fit(X)
    _, signs = _align(red.components, ref.components_)
    np.testing.assert_allclose(scores * signs, ref.transform(X), atol=1e-9)


def test_component_signs_are_canonical(X):
    red = incremental_pca([X], 3)
    top = red.components[np.arange(3), np.argmax(np.abs(red.components), axis=1)]
    assert np.all(top > 0)


def test_pca_refuses_too_many_components(X):
    with pytest.raises(InputError, match="features"):
        incremental_pca([X], 9)
    with pytest.raises(InputError, match="chunk 1 has 2 samples"):
        incremental_pca([X[:10], X[10:12]], 3)
    with pytest.raises(InputError, match="5 samples .stimuli. but 6 components"):
        check_n_components(6, 5, 10)


@pytest.fixture
def mixture(rng):
    t = np.linspace(0, 10, 400)
    sources = np.c_[np.sin(2 * t), np.sign(np.sin(3 * t)), rng.laplace(size=400)]
    mixing = rng.normal(size=(3, 6))
    return sources, sources @ mixing


def test_fast_ica_equals_sklearn_and_recovers_sources(mixture):
    sources, X = mixture
    scores, red = fast_ica(X, 3, seed=4)
    ref = FastICA(3, whiten="unit-variance", whiten_solver="svd", random_state=4)
    ref_scores = ref.fit_transform(X)
    comp, signs = _align(red.components, ref.components_)
    np.testing.assert_allclose(comp, ref.components_, atol=1e-10)
    np.testing.assert_allclose(scores * signs, ref_scores, atol=1e-8)
    np.testing.assert_allclose(red.mixing * signs, ref.mixing_, atol=1e-8)
    np.testing.assert_allclose(red.transform(X), scores, atol=1e-8)
    # every true source is one recovered component (up to sign and scale)
    r = np.abs(np.corrcoef(sources.T, scores.T)[:3, 3:])
    assert np.all(r.max(axis=1) > 0.99)


def test_fast_ica_is_repeatable_bit_for_bit(mixture):
    _, X = mixture
    a, ra = fast_ica(X, 3, seed=1)
    b, rb = fast_ica(X, 3, seed=1)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(ra.components, rb.components)


def test_nmf_equals_sklearn_and_projects_like_transform(rng):
    X = np.abs(rng.normal(size=(40, 9)))
    new = np.abs(rng.normal(size=(7, 9)))
    for init in ("nndsvda", "random"):
        W, red = nmf(X, 3, seed=2, init=init, max_iter=300)
        ref = NMF(3, init=init, random_state=2, max_iter=300)
        np.testing.assert_allclose(W, ref.fit_transform(X), atol=1e-12)
        np.testing.assert_allclose(red.components, ref.components_, atol=1e-12)
        np.testing.assert_allclose(red.transform(new), ref.transform(new), atol=1e-12)
        again = Reduction.from_arrays(red.to_arrays())
        np.testing.assert_array_equal(again.transform(new), red.transform(new))
        W2, _ = nmf(X, 3, seed=2, init=init, max_iter=300)
        np.testing.assert_array_equal(W, W2)


def test_nmf_factorises_exactly_non_negative_low_rank_data(rng):
    X = rng.gamma(2.0, size=(30, 3)) @ rng.gamma(2.0, size=(3, 12))
    W, red = nmf(X, 3, seed=0, max_iter=2000, tol=1e-10)
    assert W.min() >= 0 and red.components.min() >= 0
    assert np.linalg.norm(W @ red.components - X) < 1e-3 * np.linalg.norm(X)


def test_nmf_refuses_negative_values(rng):
    X = rng.normal(size=(10, 4))
    with pytest.raises(InputError, match="negative value.*NMF needs non-negative"):
        nmf(X, 2)
    _, red = nmf(np.abs(X), 2)
    with pytest.raises(InputError, match="negative"):
        red.transform(X)


def test_reduction_round_trip_and_feature_check(X, mixture):
    for red in (incremental_pca([X], 3, whiten=True), fast_ica(mixture[1], 2, seed=0)[1]):
        data = mixture[1] if red.method == "ica" else X
        again = Reduction.from_arrays(red.to_arrays())
        np.testing.assert_array_equal(again.transform(data), red.transform(data))
        assert all(np.asarray(v).dtype != object for v in red.to_arrays().values())
    with pytest.raises(InputError, match="fitted on 8"):
        incremental_pca([X], 2).transform(X[:, :5])
    with pytest.raises(InputError, match="not a dnnsparse feature reduction"):
        Reduction.from_arrays({"components": np.eye(2)})


def test_kmeans_equals_sklearn_and_is_repeatable(rng):
    X = np.r_[rng.normal(0, 1, (20, 5)), rng.normal(4, 1, (15, 5)), rng.normal(-4, 1, (10, 5))]
    res = cluster(X, 3, seed=7)
    ref = KMeans(3, n_init=10, random_state=7).fit(X)
    np.testing.assert_array_equal(res.labels, ref.labels_)
    np.testing.assert_allclose(res.centers, ref.cluster_centers_, atol=1e-12)
    brute = np.sqrt(((X - ref.cluster_centers_[ref.labels_]) ** 2).sum(axis=1))
    np.testing.assert_allclose(res.distance, brute, atol=1e-12)
    np.testing.assert_allclose(res.inertia, ref.inertia_, rtol=1e-8)
    again = cluster(X, 3, seed=7)
    np.testing.assert_array_equal(res.labels, again.labels)
    np.testing.assert_array_equal(res.distance, again.distance)


def test_kmeans_centres_assign_new_rows_as_sklearn_predict(rng):
    X = np.r_[rng.normal(0, 1, (20, 5)), rng.normal(3, 1, (15, 5)), rng.normal(-3, 1, (10, 5))]
    Y = rng.normal(0, 3, (40, 5))
    res = cluster(X, 3, seed=2)
    ref = KMeans(3, n_init=10, random_state=2).fit(X)
    model = Clustering.from_arrays(res.model.to_arrays())      # through plain arrays
    assert all(np.asarray(v).dtype != object for v in res.model.to_arrays().values())
    labels, distance = model.predict(Y)
    np.testing.assert_array_equal(labels, ref.predict(Y))
    np.testing.assert_allclose(distance, np.sqrt(ref.transform(Y).min(axis=1) ** 2),
                               atol=1e-10)
    np.testing.assert_array_equal(model.predict(X)[0], ref.labels_)   # its own rows agree
    # standardized: new rows are z-scored as the fitted ones were
    res = cluster(X, 3, seed=2, standardize=True)
    ref = KMeans(3, n_init=10, random_state=2).fit(standardize_rows(X))
    np.testing.assert_array_equal(res.model.predict(Y)[0], ref.predict(standardize_rows(Y)))
    assert cluster(X, 3, method="agglomerative").model is None
    with pytest.raises(InputError, match="fitted on 5"):
        model.predict(Y[:, :4])
    with pytest.raises(InputError, match="not a dnnsparse clustering"):
        Clustering.from_arrays({"centers": np.eye(2)})


def test_agglomerative_equals_sklearn(rng):
    X = rng.normal(size=(30, 4))
    for linkage in ("ward", "average", "complete", "single"):
        res = cluster(X, 4, method="agglomerative", linkage=linkage)
        ref = AgglomerativeClustering(4, linkage=linkage).fit_predict(X)
        np.testing.assert_array_equal(res.labels, ref)
        for k in range(4):                      # centres are the clusters' means
            np.testing.assert_allclose(res.centers[k], X[ref == k].mean(axis=0), atol=1e-12)


def test_standardized_clustering_groups_profiles_not_magnitudes(rng):
    shape_a, shape_b = rng.normal(size=10), rng.normal(size=10)
    # the same two profiles at very different gains
    X = np.r_[[shape_a * g for g in (0.1, 1, 10)], [shape_b * g for g in (0.2, 3, 30)]]
    res = cluster(X, 2, seed=0, standardize=True)
    assert len(set(res.labels[:3])) == 1 and len(set(res.labels[3:])) == 1
    assert res.labels[0] != res.labels[3]
    z = (X - X.mean(1, keepdims=True)) / X.std(1, keepdims=True)
    np.testing.assert_allclose(standardize_rows(X), z, atol=1e-12)
    ref = KMeans(2, n_init=10, random_state=0).fit(z)
    np.testing.assert_array_equal(res.labels, ref.labels_)


def test_clustering_refuses_bad_input(rng):
    with pytest.raises(InputError, match="3 rows but 4 clusters"):
        cluster(rng.normal(size=(3, 2)), 4)
    with pytest.raises(InputError, match="linkage"):
        cluster(rng.normal(size=(5, 2)), 2, method="agglomerative", linkage="median")


def test_histograms_equal_numpy_histogram(rng):
    maps = rng.normal(size=(5, 3, 30))
    maps[1, 2] = 0.7                                   # a constant map
    maps[2, 0, :4] = maps[:, 0].max()                  # values on the last edge
    low, high = map_range([maps[:2], maps[2:]])
    np.testing.assert_array_equal(low, maps.min(axis=(0, 2)))
    counts, edges = map_histograms(maps, 6, low=low, high=high)
    per_map, map_edges = map_histograms(maps, 6)
    for i in range(5):
        for c in range(3):
            ref, ref_edges = np.histogram(maps[i, c], 6, range=(low[c], high[c]))
            np.testing.assert_array_equal(counts[i, c], ref)
            np.testing.assert_array_equal(edges[c], ref_edges)
            ref, ref_edges = np.histogram(maps[i, c], 6)
            np.testing.assert_array_equal(per_map[i, c], ref)
            np.testing.assert_array_equal(map_edges[i, c], ref_edges)
    assert np.all(counts.sum(axis=2) == 30)


def test_histograms_of_float32_maps_count_every_value(rng):
    maps = rng.gamma(1.0, size=(4, 2, 50)).astype(np.float32)
    maps[0, 0, :10] = 0.0
    low, high = map_range([maps])
    counts, _ = map_histograms(maps, 9, low=low, high=high)
    assert np.all(counts.sum(axis=2) == 50)
    for c in range(2):
        ref = np.histogram(maps[0, c].astype(np.float64), 9, range=(low[c], high[c]))[0]
        np.testing.assert_array_equal(counts[0, c], ref)


def test_spectra_equal_periodogram_and_fft(rng):
    maps = rng.normal(size=(3, 2, 16))
    power, freqs = map_spectra(maps)
    for i in range(3):
        for c in range(2):
            f, p = periodogram(maps[i, c])
            np.testing.assert_allclose(power[i, c], p, atol=1e-12)
    np.testing.assert_allclose(freqs, np.fft.rfftfreq(16))
    # by hand: |FFT of the demeaned map|^2 / n, doubled except at 0 and Nyquist
    x = maps - maps.mean(axis=2, keepdims=True)
    ref = np.abs(np.fft.rfft(x, axis=2)) ** 2 / 16
    ref[..., 1:-1] *= 2
    np.testing.assert_allclose(power, ref, atol=1e-12)
    short, f3 = map_spectra(maps, 3)
    np.testing.assert_array_equal(short, power[..., :3])
    assert len(f3) == 3
    with pytest.raises(InputError, match="1 position"):
        map_spectra(maps[..., :1])
    with pytest.raises(InputError, match="frequencies"):
        map_spectra(maps, 10)
