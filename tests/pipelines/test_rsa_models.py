"""db_rsa glue for model RDMs, CKA and figures (pipelines._rsa_models) against direct
computations: hand-built RDMs, a loop of single CKA scores, captured figure inputs."""
import numpy as np
import pytest
from scipy.spatial.distance import pdist, squareform

import dnnsparse.viz as viz
from dnnsparse.algo.rsa import CKASpec, cka, compute_rdm, gram_matrix
from dnnsparse.base.activation import Activation
from dnnsparse.base.stimulus import Stimulus
from dnnsparse.errors import InputError
from dnnsparse.pipelines import (Items, cka_table, item_values, layer_grams, model_rdms,
                                 write_rdm_figures)

N = 8
LABELS = np.array([2, 0, 1, 0, 2, 1, 1, 0])
SIZE = np.array(["big", "small", "small", "small", "big", "small", "small", "small"])


def _stim():
    return Stimulus([f"s{i}" for i in range(N)],
                    columns={"label": LABELS, "size": SIZE, "noise": np.arange(N) % 3})


def test_item_values_per_stimulus_and_per_category():
    stim = _stim()
    per_stim = Items(stim, "s.csv", None, None, cate=False)
    np.testing.assert_array_equal(item_values(stim, per_stim, "size"), SIZE)
    per_cat = Items(stim, "s.csv", None, None, cate=True)
    np.testing.assert_array_equal(item_values(stim, per_cat, "size"),
                                  ["small", "small", "big"])          # categories 0, 1, 2
    with pytest.raises(InputError, match=r"column 'noise' of s.csv has 2 values \[0, 1\] "
                                         "within category 0"):
        item_values(stim, per_cat, "noise", stim_path="s.csv")
    with pytest.raises(InputError, match="give -stim"):
        item_values(None, per_stim, "size")


def test_model_rdm_files_are_reordered_by_item_names(tmp_path, rng):
    stim = _stim()
    items = Items(stim, "s.csv", None, None, cate=False)
    X = rng.standard_normal((N, 3))
    order = rng.permutation(N)
    square = squareform(pdist(X[order]))                      # the file's own item order
    names = [f"s{i}" for i in order]
    lines = ["," + ",".join(names)] + [names[k] + "," + ",".join(repr(float(v)) for v in row)
                                       for k, row in enumerate(square)]
    (tmp_path / "shuffled.csv").write_text("\n".join(lines) + "\n")
    got = model_rdms([f"geom={tmp_path / 'shuffled.csv'}", "size=category:size"], items,
                     stim)
    np.testing.assert_allclose(got["geom"], pdist(X), atol=1e-12)
    np.testing.assert_array_equal(got["size"], pdist((SIZE == "big")[:, None]) > 0)
    other = [f"t{i}" for i in range(N)]
    lines = [line.replace("s", "t") for line in lines]
    (tmp_path / "other.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError,
                       match=r"names its items \[t\d, t\d.*analysis items are \[s0, s1"):
        model_rdms([str(tmp_path / "other.csv")], items, stim)
    with pytest.raises(InputError, match="number of items is unknown"):
        model_rdms(["linear"], Items(None, None, None, None, cate=False))


def test_random_models_differ_between_specs_but_repeat_with_the_seed():
    items = Items(_stim(), "s.csv", None, None, cate=False)
    a = model_rdms(["r1=random", "r2=random"], items, seed=4)
    b = model_rdms(["r1=random", "r2=random"], items, seed=4)
    np.testing.assert_array_equal(a["r1"], b["r1"])
    assert not np.array_equal(a["r1"], a["r2"])


def test_cka_table_equals_single_scores(rng):
    act = Activation({"conv": rng.standard_normal((N, 2, 3, 3)),
                      "fc": rng.standard_normal((N, 4))})
    spec = CKASpec("rbf", 0.8, False)
    grams = layer_grams(act, ["conv", "fc"], spec, labels=None)
    rois = {"V1": rng.standard_normal((N, 10)), "IT": rng.standard_normal((N, 6))}
    roi_g = {k: gram_matrix(v, kernel="rbf", sigma=0.8) for k, v in rois.items()}
    t = cka_table(grams, roi_g, spec, n_perm=15, seed=0)
    assert t["roi"] == ["V1", "V1", "IT", "IT"] and t["layer"] == ["conv", "fc"] * 2
    for layer, roi, score in zip(t["layer"], t["roi"], t["score"]):
        assert score == pytest.approx(cka(act.get(layer).reshape(N, -1), rois[roi],
                                          kernel="rbf", sigma=0.8), abs=1e-12)
    assert all(1 / 16 <= p <= 1 for p in t["p"])
    # per-category Gram matrices average the patterns first
    cat = layer_grams(act, ["fc"], CKASpec(), labels=LABELS)["fc"]
    means = np.array([act.get("fc").reshape(N, -1)[LABELS == k].mean(0) for k in range(3)])
    np.testing.assert_allclose(cat, means @ means.T, atol=1e-12)


def test_rdm_figures_show_the_sorted_rdm(tmp_path, rng, monkeypatch):
    shown, mds = [], []
    monkeypatch.setattr(viz, "plot_rdm", lambda path, square, **kw: shown.append(
        (path.name, square, kw)))
    monkeypatch.setattr(viz, "plot_mds", lambda path, coords, **kw: mds.append(
        (path.name, coords, kw)))
    stim = _stim()
    items = Items(stim, "s.csv", None, None, cate=False)
    X = rng.standard_normal((N, 5))
    rdm = compute_rdm(X)
    stack = np.stack([rdm, rdm])
    written = write_rdm_figures(tmp_path / "figs", {"roi": {"L V1": rdm},
                                                    "layer": {"conv": stack}},
                                items, stim=stim, sort_by="size", seed=1)
    assert written == ["rdm_roi_L_V1.png", "mds_roi_L_V1.png"]     # stacks left out
    name, square, kw = shown[0]
    order = np.argsort(SIZE, kind="stable")                         # big first
    np.testing.assert_allclose(square, squareform(rdm)[np.ix_(order, order)], atol=0)
    np.testing.assert_array_equal(kw["groups"], SIZE[order])
    np.testing.assert_array_equal(kw["names"], [f"s{i}" for i in order])
    coords = mds[0][1]
    assert coords.shape == (N, 2)
    np.testing.assert_array_equal(mds[0][2]["groups"], SIZE)        # points in item order
