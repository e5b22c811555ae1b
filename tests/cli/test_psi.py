"""db_psi end to end on hand-made activation, ROI and brain files; every user mistake → exit 2."""
import itertools

import nibabel as nib
import numpy as np
import pytest
from scipy import stats

from dnnsparse.algo.sparseness import population_sparseness
from dnnsparse.base.activation import Activation
from dnnsparse.base.stimulus import Stimulus
from dnnsparse.cli.psi import main
from dnnsparse.io.roi import write_roi_file
from dnnsparse.io.table import read_table, write_table

LAYERS = ["conv1_relu", "conv2_relu", "fc1_relu"]
NAMES = {2: "owl", 5: "cat", 6: "dog", 9: "ant"}


def loop_means(acts, labels):
    """Category means of channel-averaged activations by a loop over stimuli."""
    cats = sorted(set(labels.tolist()))
    out = np.zeros((len(cats), acts.shape[1]))
    for a, lab in zip(acts, labels):
        out[cats.index(lab)] += a.reshape(a.shape[0], -1).astype(np.float64).mean(axis=1)
    return out / np.bincount([cats.index(lab) for lab in labels])[:, None]


@pytest.fixture
def files(tmp_path, rng):
    """18 stimuli in 4 interleaved categories of sizes 2, 7, 5, 4; three layers, the first
    one-hot by category (PSI 1), the last with dead units."""
    labels = rng.permutation(np.repeat([2, 5, 6, 9], [2, 7, 5, 4]))
    cats = [2, 5, 6, 9]
    onehot = np.zeros((18, 4, 3, 3), np.float32)
    for i, lab in enumerate(labels):
        onehot[i, cats.index(lab)] = rng.uniform(1, 2, (3, 3))
    conv2 = rng.gamma(2.0, size=(18, 6, 2, 2)).astype(np.float32)
    fc1 = np.maximum(rng.standard_normal((18, 9)), 0).astype(np.float32)
    fc1[:, :2] = 0.0                                            # two dead units
    ids = [f"{NAMES[lab]}/{i}.png" for i, lab in enumerate(labels)]
    data = {"conv1_relu": onehot, "conv2_relu": conv2, "fc1_relu": fc1}
    Activation(data, stim_ids=ids).save(tmp_path / "x.act.h5")
    Stimulus(ids, root=tmp_path, columns={"label": labels, "condition": [
        NAMES[lab] for lab in labels]}).save(tmp_path / "x.stim.csv")
    return tmp_path, labels, data


def _ids(tmp):
    """The stimulus IDs of the fixture's table (files made from it carry them)."""
    return Stimulus.load(tmp / "x.stim.csv").ids


def expected_psi(data, labels):
    return {layer: population_sparseness(loop_means(a if a.ndim == 4 else a[:, :, None],
                                                    labels)) for layer, a in data.items()}


def test_psi_tables_trend_and_figures(run_cli, files):
    tmp, labels, data = files
    out = tmp / "out"
    status, stdout, err = run_cli(main, "-act", tmp / "x.act.h5", "-stim", tmp / "x.stim.csv",
                                  "-out", out, "-q")
    assert status == 0, err
    table = read_table(out / "psi.csv")
    assert list(table) == ["layer", "layer_index", "category", "label", "psi"]
    expect = expected_psi(data, labels)
    for i, layer in enumerate(LAYERS):
        rows = table["layer"] == layer
        assert (table["layer_index"][rows] == i + 1).all()
        assert table["label"][rows].tolist() == [2, 5, 6, 9]
        assert table["category"][rows].tolist() == ["owl", "cat", "dog", "ant"]
        np.testing.assert_allclose(table["psi"][rows], expect[layer], atol=1e-12)
    np.testing.assert_allclose(table["psi"][table["layer"] == "conv1_relu"], 1.0, atol=1e-12)
    summary = read_table(out / "summary.csv")
    assert summary["layer"].tolist() == LAYERS
    np.testing.assert_allclose(summary["median"], [np.median(expect[l]) for l in LAYERS])
    assert summary["n_units"].tolist() == [4, 6, 9]
    assert summary["dead_units"].tolist() == [0, 0, 2]
    assert summary["n_categories"].tolist() == [4, 4, 4]
    trend = read_table(out / "trend.csv")
    assert list(trend) == ["test", "tau", "p", "n", "n_of", "description"]
    assert trend["test"].tolist() == ["psi_categories", "psi_category_taus_wilcoxon",
                                      "psi_category_taus_signflip", "psi_medians"]
    assert trend["n"].tolist() == [12, 4, 4, 3]
    assert trend["n_of"].tolist() == ["values", "categories", "categories", "layers"]
    assert "authors' test" in trend["description"][0]
    tau, p = stats.kendalltau(np.repeat([1, 2, 3], 4), np.concatenate(
        [expect[l] for l in LAYERS]))
    assert (trend["tau"][0], trend["p"][0]) == pytest.approx((tau, p))
    # each category's tau along the 3 layers (scipy), then across the 4 categories
    taus = [stats.kendalltau([1, 2, 3], [expect[l][c] for l in LAYERS]).statistic
            for c in range(4)]
    nonzero = np.array([t for t in taus if t != 0])
    w = stats.wilcoxon(nonzero, method="asymptotic" if np.unique(np.abs(nonzero)).size <
                       nonzero.size else "exact", correction=False)
    assert (trend["tau"][1], trend["p"][1]) == pytest.approx((np.median(taus), w.pvalue))
    flips = [abs(np.dot(s, taus)) >= abs(sum(taus)) - 1e-12 for s in
             itertools.product([-1, 1], repeat=4)]
    assert (trend["tau"][2], trend["p"][2]) == pytest.approx((np.mean(taus), np.mean(flips)))
    tau_m, p_m = stats.kendalltau([1, 2, 3], [np.median(expect[l]) for l in LAYERS])
    assert (trend["tau"][3], trend["p"][3]) == pytest.approx((tau_m, p_m))
    for fig in ("distributions.png", "medians.png"):
        assert (out / fig).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the summary is printed, one line per layer
    for layer in LAYERS:
        assert any(line.startswith(layer) for line in stdout.splitlines())
    assert "Kendall tau" in stdout and "authors' test" in stdout
    assert "per-category tau, Wilcoxon" in stdout and "per-category tau, sign-flip" in stdout
    assert f"wrote {out}: psi.csv, summary.csv, trend.csv, distributions.png, medians.png" in stdout
    assert (out / ".dnnsparse-output").is_file()


def test_per_category_file_same_psi_with_or_without_stim(run_cli, files):
    tmp, labels, data = files
    with Activation.load(tmp / "x.act.h5") as act:
        act.aggregate(labels).save(tmp / "cat.act.h5")
    status, _, err = run_cli(main, "-act", tmp / "x.act.h5", "-stim", tmp / "x.stim.csv",
                             "-out", tmp / "a", "-q", "-no-figures")
    assert status == 0, err
    status, _, err = run_cli(main, "-act", tmp / "cat.act.h5", "-out", tmp / "b", "-q")
    assert status == 0, err
    status, _, err = run_cli(main, "-act", tmp / "cat.act.h5", "-stim", tmp / "x.stim.csv",
                             "-out", tmp / "c", "-q", "-layer", "fc1_relu", "conv1_relu")
    assert status == 0, err
    a, b, c = (read_table(tmp / d / "psi.csv") for d in "abc")
    np.testing.assert_allclose(a["psi"], b["psi"], atol=1e-10)
    assert b["category"].tolist()[:4] == [2, 5, 6, 9]          # the labels without -stim
    assert c["category"].tolist()[:4] == ["owl", "cat", "dog", "ant"]
    assert c["layer"].tolist()[::4] == ["fc1_relu", "conv1_relu"]
    np.testing.assert_allclose(c["psi"][:4], a["psi"][a["layer"] == "fc1_relu"], atol=1e-10)


def test_accuracy_correlation_stepwise_and_figure(run_cli, files, rng):
    tmp, labels, data = files
    acc = {2: 0.4, 5: 0.9, 6: 0.55, 9: 0.7}
    write_table(tmp / "acc.csv", {"label": [9, 2, 6, 5], "accuracy": [acc[k] for k in
                                                                       (9, 2, 6, 5)]})
    out = tmp / "out"
    status, stdout, err = run_cli(main, "-act", tmp / "x.act.h5", "-stim", tmp / "x.stim.csv",
                                  "-out", out, "-accuracy", tmp / "acc.csv", "-q")
    assert status == 0, err
    corr = read_table(out / "correlation.csv")
    expect = expected_psi(data, labels)
    a = [acc[k] for k in (2, 5, 6, 9)]
    for i, layer in enumerate(LAYERS):
        assert corr["layer"][i] == layer
        if np.ptp(expect[layer]) < 1e-9:                  # PSI 1 everywhere: r undefined
            assert np.isnan(corr["pearson_r"][i])
            continue
        r, p = stats.pearsonr(expect[layer], a)
        assert (corr["pearson_r"][i], corr["pearson_p"][i]) == pytest.approx((r, p))
        assert corr["pearson_p_bonferroni"][i] == pytest.approx(min(1.0, 3 * p))
    step = read_table(out / "stepwise.csv")
    assert step["stage"].tolist() == ["conv", "fc"] and (step["n"] == 4).all()
    trend = read_table(out / "trend.csv")
    assert trend["test"].tolist()[4:] == ["pearson_r", "spearman_r"]
    assert (out / "correlation.png").stat().st_size > 0
    assert "stepwise (conv)" in stdout and "stepwise (fc)" in stdout


def test_lifetime_measure_per_unit(run_cli, files):
    tmp, labels, data = files
    status, _, err = run_cli(main, "-act", tmp / "x.act.h5", "-stim", tmp / "x.stim.csv",
                             "-out", tmp / "lt", "-measure", "lifetime", "-q")
    assert status == 0, err
    table = read_table(tmp / "lt" / "lifetime.csv")
    assert list(table) == ["layer", "layer_index", "unit", "lifetime"]
    fc = table["lifetime"][table["layer"] == "fc1_relu"]
    assert table["unit"][table["layer"] == "fc1_relu"].tolist() == list(range(1, 10))
    means = loop_means(data["fc1_relu"][:, :, None], labels)
    r = means - means.min(axis=0)
    with np.errstate(invalid="ignore"):
        a = (r.mean(axis=0) ** 2) / (r ** 2).mean(axis=0)
    np.testing.assert_allclose(fc, np.nan_to_num((1 - a) / (1 - 1 / 4)), atol=1e-12)
    assert read_table(tmp / "lt" / "summary.csv")["n_units"].tolist() == [4, 6, 9]


def test_roi_file_and_brain_image_populations(run_cli, files, rng):
    tmp, labels, _ = files
    signals = rng.standard_normal((18, 7))
    write_roi_file(tmp / "s.roi.h5", [f"r{i}" for i in range(7)], signals)
    status, _, err = run_cli(main, "-roi-file", tmp / "s.roi.h5", "-stim", tmp / "x.stim.csv",
                             "-out", tmp / "roi", "-q")
    assert status == 0, err
    table = read_table(tmp / "roi" / "psi.csv")
    assert set(table["layer"]) == {"rois"}
    np.testing.assert_allclose(table["psi"], population_sparseness(
        loop_means(signals[:, :, None], labels)), atol=1e-12)

    shape = (4, 5, 3)
    atlas = rng.integers(0, 3, shape)
    bold = rng.standard_normal(shape + (18,)).astype(np.float32)
    nib.save(nib.Nifti1Image(atlas.astype(np.int16), np.eye(4)), str(tmp / "atlas.nii.gz"))
    nib.save(nib.Nifti1Image(bold, np.eye(4)), str(tmp / "bold.nii.gz"))
    status, stdout, err = run_cli(main, "-nif", tmp / "bold.nii.gz", "-roi",
                                  tmp / "atlas.nii.gz", "-stim", tmp / "x.stim.csv",
                                  "-out", tmp / "nif", "-q")
    assert status == 0, err
    table = read_table(tmp / "nif" / "psi.csv")
    table["layer"] = table["layer"].astype(str)                 # ROI names "1", "2" read as ints
    assert table["layer"].tolist() == ["1"] * 4 + ["2"] * 4
    for lab in (1, 2):
        voxels = bold[atlas == lab].T                      # (18, n_voxels) straight from numpy
        np.testing.assert_allclose(table["psi"][table["layer"] == str(lab)],
                                   population_sparseness(loop_means(voxels[:, :, None], labels)),
                                   atol=1e-10)
    assert read_table(tmp / "nif" / "summary.csv")["n_units"].tolist() == [
        (atlas == 1).sum(), (atlas == 2).sum()]


def _one_line_error(run_cli, *argv):
    status, _, err = run_cli(main, *argv, "-q")
    errors = [line for line in err.splitlines() if line.startswith("db_psi: error:")]
    assert status == 2 and len(errors) == 1 and err.rstrip().endswith(errors[0]), err
    return errors[0]


def test_user_errors_exit_2_with_one_line(run_cli, files):
    tmp, labels, data = files
    act, stim = tmp / "x.act.h5", tmp / "x.stim.csv"
    err = _one_line_error(run_cli, "-act", act, "-stim", stim, "-layer", "conv9", "-out",
                          tmp / "e1")
    assert "conv1_relu, conv2_relu, fc1_relu" in err
    Stimulus([f"{i}.png" for i in range(18)]).save(tmp / "nolabel.stim.csv")
    assert "no 'label' column" in _one_line_error(run_cli, "-act", act, "-stim",
                                                  tmp / "nolabel.stim.csv", "-out", tmp / "e2")
    bad = dict(data)
    bad["conv2_relu"] = data["conv2_relu"].copy()
    bad["conv2_relu"][3, 1, 0, 0] = np.nan
    Activation(bad, stim_ids=_ids(tmp)).save(tmp / "nan.act.h5")
    err = _one_line_error(run_cli, "-act", tmp / "nan.act.h5", "-stim", stim, "-out",
                          tmp / "e3")
    assert "conv2_relu" in err and "NaN" in err
    (tmp / "full").mkdir()
    (tmp / "full" / "old.csv").write_text("x\n")
    assert "--force" in _one_line_error(run_cli, "-act", act, "-stim", stim, "-out",
                                        tmp / "full")
    Stimulus([f"{i}.png" for i in range(5)], columns={"label": np.arange(5)}).save(
        tmp / "short.stim.csv")
    err = _one_line_error(run_cli, "-act", act, "-stim", tmp / "short.stim.csv", "-out",
                          tmp / "e4")
    assert "x.act.h5 has 18 stimuli" in err and "short.stim.csv has 5" in err
    write_roi_file(tmp / "few.roi.h5", ["a", "b"], np.ones((4, 2)))
    err = _one_line_error(run_cli, "-roi-file", tmp / "few.roi.h5", "-stim", stim, "-out",
                          tmp / "e5")
    assert "few.roi.h5 has 4 samples" in err and "x.stim.csv has 18" in err
    assert "exactly one input" in _one_line_error(run_cli, "-stim", stim, "-out", tmp / "e6")
    assert "-stim" in _one_line_error(run_cli, "-act", act, "-out", tmp / "e7")
    write_table(tmp / "acc.csv", {"label": [2, 5], "acc": [0.1, 0.2]})
    assert "'label' and 'accuracy'" in _one_line_error(
        run_cli, "-act", act, "-stim", stim, "-accuracy", tmp / "acc.csv", "-out", tmp / "e8")
    write_table(tmp / "acc2.csv", {"label": [2, 5], "accuracy": [0.1, 0.2]})
    assert "no row for 2 categor" in _one_line_error(
        run_cli, "-act", act, "-stim", stim, "-accuracy", tmp / "acc2.csv", "-out", tmp / "e9")
    assert "not found" in _one_line_error(run_cli, "-act", tmp / "none.act.h5", "-stim", stim,
                                          "-out", tmp / "e10")


def test_position_units_need_unpooled_file(run_cli, files, tmp_path):
    tmp, labels, data = files
    pooled = {k: v.mean(axis=(2, 3)) if v.ndim == 4 else v for k, v in data.items()}
    attrs = {"conv1_relu": {"pool": "mean", "raw_shape": np.array([4, 3, 3])}}
    Activation(pooled, stim_ids=_ids(tmp), layer_attrs=attrs).save(tmp / "pooled.act.h5")
    err = _one_line_error(run_cli, "-act", tmp / "pooled.act.h5", "-stim", tmp / "x.stim.csv",
                          "-unit", "position", "-out", tmp / "p")
    assert "conv1_relu" in err and "pooled" in err


def test_help_has_example(run_cli):
    status, stdout, _ = run_cli(main, "--help")
    assert status == 0 and "example: db_psi" in stdout


def test_absolute_activations(run_cli, files, rng):
    """-abs: |activation| of every element before the category means (the paper's control
    analysis), against a loop over stimuli; refused where it cannot mean that."""
    tmp, labels, data = files
    signed = {"conv1": rng.standard_normal((18, 5, 3, 3)).astype(np.float32),
              "fc1": rng.standard_normal((18, 7)).astype(np.float32)}
    Activation(signed, stim_ids=_ids(tmp)).save(tmp / "signed.act.h5")
    out = tmp / "abs"
    status, stdout, err = run_cli(main, "-act", tmp / "signed.act.h5", "-stim",
                                  tmp / "x.stim.csv", "-abs", "-out", out, "-q")
    assert status == 0, err
    assert "absolute activations" in stdout
    table = read_table(out / "psi.csv")
    for layer, a in signed.items():
        a = a if a.ndim == 4 else a[:, :, None]
        expect = population_sparseness(loop_means(np.abs(a), labels))
        got = table["psi"][table["layer"] == layer]
        np.testing.assert_allclose(got, expect, rtol=0, atol=1e-10)
        plain = population_sparseness(loop_means(a, labels))
        assert np.abs(expect - plain).max() > 1e-3          # -abs changes the answer here
    # category means and mean-pooled values cannot give means of absolute values
    means = {k: loop_means(v if v.ndim == 4 else v[:, :, None], labels)[:, :, None, None]
             for k, v in signed.items()}
    agg = Activation(means)
    agg.category_labels, agg.category_counts = np.array([2, 5, 6, 9]), np.array([2, 7, 5, 4])
    agg.save(tmp / "agg.act.h5")
    err = _one_line_error(run_cli, "-act", tmp / "agg.act.h5", "-abs", "-out", tmp / "a1")
    assert "category means" in err and "-pool l1" in err
    pooled = {"conv1": signed["conv1"].mean(axis=(2, 3))}
    Activation(pooled, stim_ids=_ids(tmp), layer_attrs={"conv1": {"pool": "mean"}}).save(
        tmp / "mean.act.h5")
    err = _one_line_error(run_cli, "-act", tmp / "mean.act.h5", "-stim", tmp / "x.stim.csv",
                          "-abs", "-out", tmp / "a2")
    assert "conv1" in err and "pooled (mean)" in err


def test_constant_accuracy_keeps_the_psi_outputs(run_cli, files):
    """Accuracy 1.0 for every category: the correlation is undefined -- a warning, exit 0,
    and every PSI table and figure is written (the correlation outputs are not)."""
    tmp, labels, data = files
    write_table(tmp / "acc.csv", {"label": [2, 5, 6, 9], "accuracy": [1.0] * 4})
    out = tmp / "out"
    status, stdout, err = run_cli(main, "-act", tmp / "x.act.h5", "-stim", tmp / "x.stim.csv",
                                  "-out", out, "-accuracy", tmp / "acc.csv", "-q")
    assert status == 0, err
    assert "WARNING: accuracy is 1 for every category" in err and "undefined" in err
    assert "caution: accuracy is 1 for every category" in stdout
    names = {p.name for p in out.iterdir()}
    assert names == {".dnnsparse-output", "psi.csv", "summary.csv", "trend.csv",
                     "distributions.png", "medians.png"}
    np.testing.assert_allclose(read_table(out / "psi.csv")["psi"][:4], 1.0, atol=1e-12)


def test_output_folder_is_written_as_a_whole(run_cli, files):
    """A failing run leaves no folder; --force replaces an earlier output entirely (no
    stale correlation.csv), but never a folder of the user's own files."""
    tmp, labels, data = files
    out = tmp / "out"
    write_table(tmp / "bad.csv", {"label": [2, 5], "accuracy": [0.1, 0.2]})
    _one_line_error(run_cli, "-act", tmp / "x.act.h5", "-stim", tmp / "x.stim.csv",
                    "-accuracy", tmp / "bad.csv", "-out", out)
    assert not out.exists() and not list(tmp.glob(".partial-*"))
    write_table(tmp / "acc.csv", {"label": [2, 5, 6, 9], "accuracy": [0.4, 0.9, 0.55, 0.7]})
    argv = ["-act", tmp / "x.act.h5", "-stim", tmp / "x.stim.csv", "-out", out, "-q"]
    assert run_cli(main, *argv, "-accuracy", tmp / "acc.csv")[0] == 0
    assert (out / "correlation.csv").is_file()
    assert "--force" in _one_line_error(run_cli, *argv)
    status, _, err = run_cli(main, *argv, "-no-figures", "--force")
    assert status == 0, err
    assert {p.name for p in out.iterdir()} == {".dnnsparse-output", "psi.csv", "summary.csv",
                                                "trend.csv"}
    mine = tmp / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    assert "did not write" in _one_line_error(run_cli, *argv[:-3], "-out", mine, "--force")
    assert (mine / "notes.txt").read_text() == "keep me"


def test_non_finite_and_out_of_range_options(run_cli, files):
    tmp, labels, data = files
    argv = ["-act", tmp / "x.act.h5", "-stim", tmp / "x.stim.csv", "-out", tmp / "o"]
    for value in ("nan", "inf", "-inf"):
        assert "finite" in _one_line_error(run_cli, *argv, f"--alpha={value}")
    assert "-alpha" in _one_line_error(run_cli, *argv, "-alpha", "1.5")
    assert "-permutations" in _one_line_error(run_cli, *argv, "-permutations", "0")
    assert not (tmp / "o").exists()


def test_network_provenance_names_the_result(run_cli, files):
    """The title of the printed summary (and of every figure) is the network and its
    lesion, from the .act.h5 attributes."""
    tmp, labels, data = files
    Activation(data, stim_ids=_ids(tmp),
               attrs={"net": "alexnet", "weights": "imagenet",
                      "lesion": "weights(seed=3)"}).save(tmp / "lesion.act.h5")
    status, stdout, err = run_cli(main, "-act", tmp / "lesion.act.h5", "-stim",
                                  tmp / "x.stim.csv", "-out", tmp / "l", "-q", "-no-figures")
    assert status == 0, err
    assert stdout.splitlines()[0] == "alexnet, lesion weights(seed=3)"
