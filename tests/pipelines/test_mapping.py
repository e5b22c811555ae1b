"""Layer-to-ROI mapping against independent computations: a direct BH loop, scipy,
population_sparseness on hand-made category means, and data built to match layers."""
import numpy as np
import pytest
from scipy import stats
from scipy.spatial.distance import pdist

from dnnsparse.algo.stats import fdr_bh
from dnnsparse.pipelines import (LayerMapping, brain_rdms, dnn_rdms, layer_psi, map_layers,
                                 roi_psi, row_grouping, rsa_table)
from dnnsparse.pipelines import activation_sparseness, brain_sparseness
from dnnsparse.algo.rsa import rdm_permutation_test
from dnnsparse.algo.sparseness import population_sparseness
from dnnsparse.base.activation import Activation
from dnnsparse.base.brain import BrainData
from dnnsparse.base.roi import ROISet
from dnnsparse.errors import InputError
from dnnsparse.io.brain import GiftiSpace


def bh_loop(p):
    """Benjamini-Hochberg by its definition: q_(i) = min_{k >= i} m p_(k) / k, capped at 1."""
    p = np.asarray(p, dtype=float)
    m = len(p)
    order = sorted(range(m), key=lambda i: p[i])
    q = np.empty(m)
    for pos, i in enumerate(order):
        q[i] = min(1.0, min(m * p[order[k]] / (k + 1) for k in range(pos, m)))
    return q


@pytest.mark.parametrize("m", [1, 2, 7, 60])
def test_fdr_equals_direct_loop_and_scipy(rng, m):
    p = rng.random(m) ** 3
    if m > 5:
        p[:3] = p[3]                                  # ties
    np.testing.assert_allclose(fdr_bh(p), bh_loop(p), rtol=1e-14, atol=0)
    np.testing.assert_allclose(fdr_bh(p), stats.false_discovery_control(p), rtol=1e-12)


def test_fdr_rejections_match_step_up_rule(rng):
    p = np.concatenate([rng.random(40) * 0.01, rng.random(60)])
    q = fdr_bh(p)
    ps = np.sort(p)
    m = len(p)
    for alpha in (0.01, 0.05, 0.2):
        below = np.flatnonzero(ps <= alpha * np.arange(1, m + 1) / m)
        k = below[-1] + 1 if len(below) else 0           # reject the k smallest
        assert (q <= alpha).sum() == k
        assert set(np.flatnonzero(q <= alpha)) == set(np.argsort(p, kind="stable")[:k])


def test_fdr_keeps_shape_and_nan(rng):
    p = rng.random((3, 4))
    p[1, 2] = np.nan
    q = fdr_bh(p)
    assert q.shape == (3, 4) and np.isnan(q[1, 2])
    finite = ~np.isnan(p)
    np.testing.assert_allclose(q[finite], bh_loop(p[finite]), rtol=1e-14)
    assert (q[finite] >= p[finite]).all()
    with pytest.raises(InputError, match=r"\[0, 1\]"):
        fdr_bh([0.1, 1.5])


def test_row_grouping():
    labels = np.array([3, 1, 3, 2, 1, 1])
    assert row_grouping(6, n_stim=6) is None
    assert row_grouping(4) is None                      # nothing to check against
    np.testing.assert_array_equal(row_grouping(6, labels=labels, by_category=True), labels)
    assert row_grouping(3, labels=labels, by_category=True) is None
    assert row_grouping(3, n_categories=3, by_category=True) is None
    with pytest.raises(InputError, match=r"b\.nii has 5 samples but s\.csv has 6 stimuli "
                                         r"in 3 categories"):
        row_grouping(5, labels=labels, by_category=True, source="b.nii", reference="s.csv")
    with pytest.raises(InputError, match="has 3 samples but s.csv has 6 stimuli;"):
        row_grouping(3, n_stim=6, source="b.nii", reference="s.csv")
    with pytest.raises(InputError, match="needs a 'label' column"):
        row_grouping(3, by_category=True)
    with pytest.raises(InputError, match="its 6 samples by category needs a 'label' column"):
        row_grouping(6, n_stim=6, n_categories=3, by_category=True)


def synthetic(rng, n=40, sizes=(50, 70, 60), noise=0.5):
    """Three distinct random layers and three ROIs, ROI k a noisy random mixture of layer k."""
    layers = {"conv1": rng.standard_normal((n, 6, 3, 3)),
              "conv2": rng.standard_normal((n, 9, 2, 2)),
              "fc1": rng.standard_normal((n, 25))}
    blocks = []
    for a, size in zip(layers.values(), sizes):
        X = a.reshape(n, -1)
        blocks.append(X @ rng.standard_normal((X.shape[1], size))
                      + noise * rng.standard_normal((n, size)))
    data = np.concatenate(blocks, axis=1)
    space = GiftiSpace(np.ones(data.shape[1], dtype=bool))
    bounds = np.cumsum((0,) + sizes)
    rois = ROISet(["A", "B", "C"], [np.arange(bounds[k], bounds[k + 1]) for k in range(3)],
                  space)
    return Activation(layers), BrainData(data, space), rois


def test_map_layers_recovers_the_generating_layers(rng):
    act, brain, rois = synthetic(rng)
    dnn = dnn_rdms(act)
    bdm = brain_rdms(brain, rois)
    for layer, rdm in dnn.items():
        assert rdm.shape == (1, 780)
        np.testing.assert_allclose(rdm[0], pdist(act.to_matrix(layer), "correlation"),
                                   atol=1e-10)
    np.testing.assert_allclose(bdm["B"], pdist(brain.data[:, rois.members[1]], "correlation"),
                               atol=1e-10)
    res = map_layers(dnn, bdm, n_perm=199, seed=3)
    assert res.best_layers() == ["conv1", "conv2", "fc1"]
    assert res.best.tolist() == [0, 1, 2] and res.n_items == 40
    diag = np.eye(3, dtype=bool)
    assert (res.p_fdr[diag] < 0.05).all() and (res.p_fdr[~diag] > 0.05).all()
    for i, layer in enumerate(dnn):                     # independent reference
        for j, roi in enumerate(bdm):
            assert res.score[i, j] == pytest.approx(
                stats.pearsonr(dnn[layer][0], bdm[roi]).statistic, abs=1e-12)
    np.testing.assert_allclose(res.p_fdr, bh_loop(res.p.ravel()).reshape(3, 3), rtol=1e-14)
    # every layer sees the same permutations of an ROI's RDM: the p of one layer alone
    alone = rdm_permutation_test(bdm["A"], dnn["conv2"][0], n_perm=199, seed=3).pvalue
    assert res.p[1, 0] == alone
    again = map_layers(dnn, bdm, n_perm=199, seed=3)
    np.testing.assert_array_equal(again.p, res.p)
    assert not np.array_equal(map_layers(dnn, bdm, n_perm=199, seed=4).p, res.p)


def test_mapping_tables(rng):
    score = np.array([[0.1, np.nan, 0.3], [0.5, np.nan, 0.2]])
    p = np.array([[0.2, np.nan, 0.01], [0.01, np.nan, 0.5]])
    res = LayerMapping(["l1", "l2"], ["A", "B", "C"], "pearson", score, p, fdr_bh(p),
                       np.array([0.3, 0.6]), np.array([0.1, 0.2, 0.4]), 10)
    assert res.best.tolist() == [1, -1, 0] and res.best_layers() == ["l2", None, "l1"]
    t = res.table()
    assert t["layer"] == ["l1", "l2"] * 3 and t["roi"] == ["A", "A", "B", "B", "C", "C"]
    assert t["best"] == [False, True, False, False, True, False]
    assert t["psi_layer"] == [0.3, 0.6] * 3 and t["psi_roi"] == [0.1, 0.1, 0.2, 0.2, 0.4, 0.4]
    np.testing.assert_array_equal(t["score"], score.T.ravel())
    b = res.best_table()
    assert b["best_layer"] == ["l2", "", "l1"] and b["layer_index"] == [2, 0, 1]
    np.testing.assert_array_equal(b["psi_layer"], [0.6, np.nan, 0.3])
    np.testing.assert_array_equal(b["score"], [0.5, np.nan, 0.3])


def test_layer_and_roi_psi_equal_direct_computation(rng):
    labels = np.array([2, 0, 1, 1, 0, 2, 2, 0, 1, 3, 3, 3])
    act = Activation({"conv": rng.random((12, 5, 2, 3)), "fc": rng.random((12, 7))})
    got = layer_psi(act, labels=labels)
    for value, layer in zip(got, act.layers):
        units = act.get(layer).reshape(12, act.shape(layer)[1], -1).mean(axis=2)
        means = np.array([units[labels == c].mean(axis=0) for c in range(4)])
        assert value == pytest.approx(np.median(population_sparseness(means)), abs=1e-13)
    # a per-category activation: its rows are the category means
    agg = act.aggregate(labels)
    np.testing.assert_allclose(layer_psi(agg), got, atol=1e-13)
    pos = layer_psi(act, ["conv"], labels=labels, unit="position")
    flat = act.to_matrix("conv")
    means = np.array([flat[labels == c].mean(axis=0) for c in range(4)])
    assert pos[0] == pytest.approx(np.median(population_sparseness(means)), abs=1e-13)

    _, brain, rois = synthetic(rng, n=12)
    got = roi_psi(brain, rois, labels=labels)
    for value, members in zip(got, rois.members):
        X = brain.data[:, members]
        means = np.array([X[labels == c].mean(axis=0) for c in range(4)])
        assert value == pytest.approx(np.median(population_sparseness(means)), abs=1e-13)
    cat = BrainData(np.array([brain.data[labels == c].mean(axis=0) for c in range(4)]),
                    brain.space)
    np.testing.assert_allclose(roi_psi(cat, rois), got, atol=1e-13)


def test_one_voxel_roi_has_nan_psi(rng, caplog):
    space = GiftiSpace(np.ones(6, dtype=bool))
    brain = BrainData(rng.random((4, 6)), space)
    rois = ROISet(["one", "rest"], [[0], [1, 2, 3, 4, 5]], space)
    psi = roi_psi(brain, rois, labels=[0, 0, 1, 1])
    assert np.isnan(psi[0]) and np.isfinite(psi[1])
    assert "ROI 'one' has 1 unit(s); PSI needs at least 2 and is NaN" in caplog.text
    # the validated path itself refuses a one-unit population (db_psi exits 2)
    with pytest.raises(InputError, match="population 'one'.*at least 2 unit"):
        brain_sparseness(brain.data, {"one": [0]}, [0, 0, 1, 1])
    assert psi[1] == np.median(brain_sparseness(brain.data, {"rest": [1, 2, 3, 4, 5]},
                                                [0, 0, 1, 1]).values[0])


def test_one_unit_layer_has_nan_psi_and_the_others_are_db_psi_medians(rng, caplog):
    """db_map's layer PSI is activation_sparseness (db_psi) bit for bit; a layer of one
    unit, which the validated path refuses, gets NaN with a warning so that the mapping
    table is still written."""
    labels = np.array([0, 1, 2, 0, 1, 2, 0, 1])
    act = Activation({"one": rng.random((8, 1, 3, 3)), "conv": rng.random((8, 4, 3, 3)),
                      "fc": rng.random((8, 6))})
    got = layer_psi(act, labels=labels)
    assert np.isnan(got[0]) and np.isfinite(got[1:]).all()
    assert "layer 'one' has 1 unit(s); PSI needs at least 2 and is NaN" in caplog.text
    res = activation_sparseness(act, labels, layers=["conv", "fc"])
    np.testing.assert_array_equal(got[1:], [np.median(v) for v in res.values])
    with pytest.raises(InputError, match="layer 'one': .*at least 2 unit"):
        activation_sparseness(act, labels, layers=["one"])
    # position units: the one-channel layer has 9 of them
    pos = layer_psi(act, ["one"], labels=labels, unit="position")
    assert np.isfinite(pos).all()


def test_layer_psi_refuses_positions_of_a_pooled_layer(rng):
    act = Activation({"conv": rng.random((6, 4, 1, 1))},
                     layer_attrs={"conv": {"pool": "mean", "raw_shape": [4, 3, 3]}})
    assert np.isfinite(layer_psi(act, labels=[0, 1, 2] * 2)).all()
    with pytest.raises(InputError, match="was pooled"):
        layer_psi(act, labels=[0, 1, 2] * 2, unit="position")


def test_mapping_psi_keeps_its_values(rng):
    """The old layer_psi/roi_psi arithmetic (category_means over blocks of 256 stimuli,
    np.add.at ROI means) and the validated path agree bit for bit on data of <= 256
    stimuli: db_map's psi_layer and psi_roi columns do not change."""
    from dnnsparse.algo.sparseness import category_means

    act, brain, rois = synthetic(rng, n=40)
    labels = rng.choice([4, 1, 2, 8], size=40)
    old = [np.median(population_sparseness(category_means(
        (b for _, b in act.iter_batches(layer)), labels).means)) for layer in act.layers]
    np.testing.assert_array_equal(layer_psi(act, labels=labels), old)
    old_roi = []
    for members in rois.members:
        X = brain.data[:, members]
        unique, inverse = np.unique(labels, return_inverse=True)
        sums = np.zeros((len(unique), X.shape[1]))
        np.add.at(sums, inverse, X)
        old_roi.append(np.median(population_sparseness(sums / np.bincount(inverse)[:, None])))
    np.testing.assert_array_equal(roi_psi(brain, rois, labels=labels), old_roi)
    # rows that already are categories (labels None), e.g. a file without label metadata
    cat = Activation({layer: category_means(act.get(layer), labels, unit="position").means
                      .reshape((4,) + act.shape(layer)[1:]) for layer in act.layers})
    assert cat.category_labels is None
    old_cat = [np.median(population_sparseness(category_means(
        cat.get(layer), np.arange(4)).means)) for layer in cat.layers]
    np.testing.assert_array_equal(layer_psi(cat), old_cat)


def test_rsa_table_against_scipy_and_noise_ceiling(rng):
    act, brain, rois = synthetic(rng, n=15)
    dnn = dnn_rdms(act, ["conv1"], iter_axis="channel")
    dnn["fc1"] = dnn_rdms(act, ["fc1"])["fc1"]          # whole fc layer
    bdm = brain_rdms(brain, rois)
    t = rsa_table(dnn, bdm, method="spearman", n_perm=20, n_boot=30, seed=1,
                  subjects=[bdm, bdm, bdm], iter_axis="channel")
    assert list(t) == ["layer", "iter", "roi", "method", "score", "p", "ci_low", "ci_high",
                       "n_items", "subject_mean", "noise_lower", "noise_upper"]
    assert len(t["score"]) == 3 * (6 + 1)
    assert t["iter"][:7] == [1, 2, 3, 4, 5, 6, 1] and set(t["n_items"]) == {15}
    k = t["roi"].index("B") + 3                         # B x conv1 channel 4
    assert (t["layer"][k], t["iter"][k]) == ("conv1", 4)
    assert t["score"][k] == pytest.approx(
        stats.spearmanr(dnn["conv1"][3], bdm["B"]).statistic, abs=1e-12)
    np.testing.assert_allclose(t["noise_lower"], 1.0, atol=1e-12)   # identical subjects
    np.testing.assert_allclose(t["noise_upper"], 1.0, atol=1e-12)
    np.testing.assert_allclose(t["subject_mean"], t["score"], atol=1e-12)
    assert all(0 < p <= 1 for p in t["p"])
    assert all(lo <= hi for lo, hi in zip(t["ci_low"], t["ci_high"]))


def test_constant_channel_gives_nan_not_an_error(rng, caplog):
    a = rng.standard_normal((10, 3, 2, 2))
    a[:, 1] = 0.0                                       # a dead channel
    dnn = dnn_rdms(Activation({"conv": a}), iter_axis="channel")
    bdm = {"R": pdist(rng.standard_normal((10, 8)), "correlation")}
    t = rsa_table(dnn, bdm, n_perm=10, seed=0)
    assert np.isnan(t["score"][1]) and np.isnan(t["p"][1])
    assert np.isfinite(t["score"][0]) and np.isfinite(t["p"][2])
    assert "1 of 3 RDM(s) have undefined entries" in caplog.text


def test_per_channel_rdms_of_a_pooled_layer_are_refused(rng):
    act = Activation({"pooled": rng.random((6, 4, 1, 1))})
    with pytest.raises(InputError, match="one value per channel"):
        dnn_rdms(act, iter_axis="channel")
    rdm = dnn_rdms(act, iter_axis="channel", metric="euclidean")["pooled"]
    np.testing.assert_allclose(rdm[2], pdist(act.get("pooled")[:, 2, 0]), atol=1e-12)


def test_errors(rng):
    bdm = {"R": np.ones(10)}
    with pytest.raises(InputError, match="different sizes"):
        map_layers({"l": np.ones(6)}, bdm, n_perm=0)
    with pytest.raises(InputError, match="one whole-layer RDM"):
        map_layers({"l": np.ones((2, 10))}, bdm, n_perm=0)
    with pytest.raises(InputError, match="at least 2 subjects"):
        rsa_table({"l": np.ones(10)}, bdm, subjects=[bdm])
    with pytest.raises(InputError, match="n_perm"):
        map_layers({"l": np.ones(10)}, bdm, n_perm=-1)
