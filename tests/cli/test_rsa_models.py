"""db_rsa model RDMs, -zscore, -groups (split-half ceiling), -method cka, -act2 and RDM
figures, end to end on synthetic activations and NIfTI data, against rsatoolbox's compare,
scipy, and the published formulas written out here."""
import h5py
import nibabel as nib
import numpy as np
import pytest
from scipy import stats
from scipy.spatial.distance import pdist, squareform

from dnnsparse.algo.rsa import rdm_permutation_test
from dnnsparse.base.activation import Activation
from dnnsparse.base.stimulus import Stimulus
from dnnsparse.cli.rsa import main
from dnnsparse.io.rdm import read_rdm_file
from dnnsparse.io.table import read_table

SHAPE = (3, 4, 5)
AFFINE = np.eye(4)
N = 12
LABELS = np.array([0, 1, 2, 3] * 3)
RUNS = np.repeat([1, 2, 3], 4)                     # every run holds every label once
ANIMATE = np.array(["yes", "no", "yes", "no"])[LABELS]


@pytest.fixture
def files(tmp_path, rng):
    ids = [f"img{i}.png" for i in range(N)]
    layers = {"conv": rng.standard_normal((N, 2, 2, 2)), "fc": rng.standard_normal((N, 6))}
    Activation(layers, stim_ids=ids).save(tmp_path / "a.act.h5")
    Activation({"fc7": rng.standard_normal((N, 5))}, stim_ids=ids).save(tmp_path / "b.act.h5")
    Stimulus(ids, columns={"label": LABELS, "run": RUNS, "animate": ANIMATE}).save(
        tmp_path / "s.stim.csv")
    atlas = np.zeros(SHAPE, dtype=np.int16)
    atlas[:, :2] = 1
    atlas[:, 2:] = 2
    nib.save(nib.Nifti1Image(atlas, AFFINE), str(tmp_path / "atlas.nii.gz"))
    signal = rng.standard_normal((4, SHAPE[0] * SHAPE[1] * SHAPE[2]))[LABELS]
    bold = (signal + rng.standard_normal(signal.shape)).T.reshape(SHAPE + (N,))
    bold = (bold * 3 + 10).astype(np.float32)
    nib.save(nib.Nifti1Image(bold, AFFINE), str(tmp_path / "sub1.nii.gz"))
    voxels = bold.reshape(-1, N).T.astype(np.float64)
    return tmp_path, layers, atlas, voxels


def _roi(voxels, atlas, k):
    return voxels[:, atlas.ravel() == k]


def _base(tmp, out, *extra):
    return ["-act", tmp / "a.act.h5", "-stim", tmp / "s.stim.csv", "-nif", tmp / "sub1.nii.gz",
            "-roi", tmp / "atlas.nii.gz", "-out", tmp / out, "-q", *extra]


def test_model_rdms_equal_rsatoolbox_compare(run_cli, files):
    pytest.importorskip("rsatoolbox")
    from rsatoolbox.rdm import RDMs, compare

    tmp, layers, atlas, voxels = files
    square = squareform(pdist(np.arange(N)[:, None] % 5.0))
    np.save(tmp / "mod.npy", square)
    items = [f"img{i}.png" for i in range(N)]
    lines = ["," + ",".join(items)] + [items[i] + "," + ",".join(repr(float(v)) for v in row)
                                       for i, row in enumerate(square)]
    (tmp / "named.csv").write_text("\n".join(lines) + "\n")
    cond = pdist(np.random.default_rng(5).random((N, 2)))
    (tmp / "cond.csv").write_text("\n".join(repr(float(v)) for v in cond) + "\n")
    for method, theirs in (("spearman", "spearman"), ("kendall_tau_a", "tau-a"),
                           ("cosine", "cosine"), ("pearson", "corr")):
        out = f"m_{method}"
        status, _, err = run_cli(main, *_base(tmp, out, "-model-rdm", tmp / "mod.npy",
                                              f"anim=category:animate", tmp / "cond.csv",
                                              f"named={tmp / 'named.csv'}", "-method", method,
                                              "-n-perm", "30", "-seed", "3", "-no-plot"))
        assert status == 0, err
        kind, models, meta = read_rdm_file(tmp / out / "model.rdm.h5")
        assert kind == "mRDM" and list(models) == ["mod", "anim", "cond", "named"]
        np.testing.assert_array_equal(models["anim"],
                                      pdist((ANIMATE == "yes")[:, None].astype(float)) > 0)
        np.testing.assert_allclose(models["mod"], squareform(square), atol=0)
        np.testing.assert_allclose(models["named"], models["mod"], atol=0)
        np.testing.assert_allclose(models["cond"], cond, atol=0)
        _, brain, _ = read_rdm_file(tmp / out / "brain.rdm.h5")
        _, dnn, _ = read_rdm_file(tmp / out / "dnn.rdm.h5")
        t = read_table(tmp / out / "model_roi.csv")
        assert list(t)[:3] == ["model", "roi", "method"]
        for model, roi, score, p in zip(t["model"], t["roi"], t["score"], t["p"]):
            ref = compare(RDMs(brain[str(roi)][None]), RDMs(models[model][None]),
                          method=theirs)[0, 0]
            assert score == pytest.approx(ref, abs=1e-12)
            assert p == rdm_permutation_test(brain[str(roi)], models[model], method=method,
                                             n_perm=30, seed=3).pvalue
        t = read_table(tmp / out / "model_layer.csv")
        assert list(t)[:3] == ["layer", "model", "method"]
        for layer, model, score in zip(t["layer"], t["model"], t["score"]):
            ref = compare(RDMs(models[model][None]), RDMs(dnn[layer][0][None]),
                          method=theirs)[0, 0]
            assert score == pytest.approx(ref, abs=1e-12)


def test_simulated_models_are_seeded_and_category_models_per_category(run_cli, files):
    tmp = files[0]
    for out, seed in (("r1", 1), ("r2", 1), ("r3", 2)):
        assert run_cli(main, *_base(tmp, out, "-model-rdm", "random", "noisy:linear:0.5",
                                    "linear", "-seed", seed, "-no-plot"))[0] == 0
    m1, m2, m3 = (read_rdm_file(tmp / o / "model.rdm.h5")[1] for o in ("r1", "r2", "r3"))
    np.testing.assert_array_equal(m1["random"], m2["random"])
    np.testing.assert_array_equal(m1["noisy:linear:0.5"], m2["noisy:linear:0.5"])
    assert not np.array_equal(m1["random"], m3["random"])
    np.testing.assert_array_equal(m1["linear"], pdist(np.arange(N)[:, None], "cityblock"))
    # -cate: the column's value per category
    assert run_cli(main, *_base(tmp, "c", "-cate", "-model-rdm", "category:animate",
                                "-no-plot"))[0] == 0
    models = read_rdm_file(tmp / "c/model.rdm.h5")[1]
    np.testing.assert_array_equal(models["category:animate"], [1, 0, 1, 1, 0, 1])


def test_zscore_pattern_and_unit_equal_scipy(run_cli, files):
    tmp, layers, atlas, voxels = files
    for mode, axis in (("pattern", 1), ("unit", 0)):
        extra = ["-zscore"] if mode == "pattern" else ["-zscore", "unit"]
        status, _, err = run_cli(main, *_base(tmp, mode, "-metric", "euclidean", "-no-plot",
                                              *extra))
        assert status == 0, err
        _, brain, _ = read_rdm_file(tmp / mode / "brain.rdm.h5")
        roi = _roi(voxels, atlas, 2)
        np.testing.assert_allclose(brain["2"], pdist(stats.zscore(roi, axis=axis)),
                                   atol=1e-5)
        _, dnn, _ = read_rdm_file(tmp / mode / "dnn.rdm.h5")
        np.testing.assert_allclose(dnn["conv"][0],
                                   pdist(stats.zscore(layers["conv"].reshape(N, -1),
                                                      axis=axis)), atol=1e-10)


def test_single_subject_split_half_ceiling_equals_formula(run_cli, files):
    tmp, layers, atlas, voxels = files
    status, _, err = run_cli(main, *_base(tmp, "g", "-cate", "-groups", "run",
                                          "-model-rdm", "linear", "-no-plot"))
    assert status == 0, err
    t = read_table(tmp / "g/similarity.csv")
    assert {"split_half_r", "noise_reliability", "noise_ceiling"} <= set(t)
    for k in (1, 2):
        X = _roi(voxels, atlas, k)
        rs = []
        for half in ((1,), (2,), (3,)):                  # 3 runs: halves of 1 and 2 runs
            a = np.isin(RUNS, half)
            da = pdist(np.array([X[a & (LABELS == c)].mean(0) for c in range(4)]),
                       "correlation")
            db = pdist(np.array([X[~a & (LABELS == c)].mean(0) for c in range(4)]),
                       "correlation")
            rs.append(stats.pearsonr(da, db).statistic)
        r = np.mean(rs)
        rows = t["roi"] == k
        np.testing.assert_allclose(t["split_half_r"][rows], r, atol=1e-5)
        np.testing.assert_allclose(t["noise_reliability"][rows], 2 * r / (1 + r), atol=1e-5)
        np.testing.assert_allclose(t["noise_ceiling"][rows], np.sqrt(2 * r / (1 + r)),
                                   atol=1e-5)
    m = read_table(tmp / "g/model_roi.csv")
    np.testing.assert_allclose(m["noise_ceiling"], t["noise_ceiling"][::2], atol=0)


def _direct_cka(X, Y, debiased=False):
    def hsic(K, L):
        n = len(K)
        if not debiased:
            H = np.eye(n) - 1.0 / n
            return np.trace(K @ H @ L @ H) / (n - 1) ** 2
        Kt, Lt = K - np.diag(np.diag(K)), L - np.diag(np.diag(L))
        one = np.ones(n)
        return (np.trace(Kt @ Lt) + one @ Kt @ one * (one @ Lt @ one) / ((n - 1) * (n - 2))
                - 2 / (n - 2) * one @ Kt @ Lt @ one) / (n * (n - 3))
    K, L = X @ X.T, Y @ Y.T
    return hsic(K, L) / np.sqrt(hsic(K, K) * hsic(L, L))


@pytest.mark.parametrize("debiased", [False, True])
def test_cka_layers_rois_and_networks_equal_direct_formula(run_cli, files, debiased):
    tmp, layers, atlas, voxels = files
    extra = ["-debiased"] if debiased else []
    status, _, err = run_cli(main, *_base(tmp, "k", "-method", "cka", "-n-perm", "20",
                                          "-act2", tmp / "b.act.h5", *extra))
    assert status == 0, err
    assert {p.name for p in (tmp / "k").iterdir()} == {
        "similarity.csv", "similarity.png", "similarity_act2.csv", "similarity_act2.png",
        ".dnnsparse-output"}
    t = read_table(tmp / "k/similarity.csv")
    assert list(t) == ["layer", "roi", "method", "score", "p", "n_items"]
    assert set(t["method"]) == {"cka_linear_debiased" if debiased else "cka_linear"}
    for layer, roi, score, p in zip(t["layer"], t["roi"], t["score"], t["p"]):
        ref = _direct_cka(layers[layer].reshape(N, -1), _roi(voxels, atlas, roi), debiased)
        assert score == pytest.approx(ref, abs=1e-6)
        assert 0 < p <= 1
    fc7 = Activation.load(tmp / "b.act.h5").get("fc7").reshape(N, -1)
    t = read_table(tmp / "k/similarity_act2.csv")
    assert list(t["layer2"]) == ["fc7", "fc7"]
    for layer, score in zip(t["layer"], t["score"]):
        assert score == pytest.approx(_direct_cka(layers[layer].reshape(N, -1), fc7,
                                                  debiased), abs=1e-10)


def test_cka_rbf_and_layers_alone(run_cli, files):
    from scipy.spatial.distance import cdist

    tmp, layers = files[:2]
    status, _, err = run_cli(main, "-act", tmp / "a.act.h5", "-method", "cka", "-kernel",
                             "rbf", "-sigma", "0.5", "-out", tmp / "k", "-q", "-no-plot")
    assert status == 0, err
    t = read_table(tmp / "k/similarity_layers.csv")
    assert set(t["method"]) == {"cka_rbf0.5"}
    grams = {}
    for name, a in layers.items():
        d2 = cdist(a.reshape(N, -1), a.reshape(N, -1), "sqeuclidean")
        grams[name] = np.exp(-d2 / (2 * 0.25 * np.median(d2)))
    n = N
    H = np.eye(n) - 1.0 / n
    hsic = lambda K, L: np.trace(K @ H @ L @ H)
    for a, b, score in zip(t["layer"], t["layer2"], t["score"]):
        K, L = grams[a], grams[b]
        assert score == pytest.approx(hsic(K, L) / np.sqrt(hsic(K, K) * hsic(L, L)),
                                      abs=1e-10)


def test_rdm_figures_sorted_by_a_column(run_cli, files):
    tmp = files[0]
    status, _, err = run_cli(main, *_base(tmp, "f", "-model-rdm", "category:animate",
                                          "-sort-by", "animate", "-n-perm", "10"))
    assert status == 0, err
    figs = sorted(p.name for p in (tmp / "f/figures").iterdir())
    assert figs == sorted(f"{k}_{n}.png" for k in ("rdm", "mds")
                          for n in ("layer_conv", "layer_fc", "roi_1", "roi_2",
                                    "model_category_animate"))
    for name in figs + ["../similarity.png", "../model_roi.png", "../model_layer.png"]:
        assert (tmp / "f/figures" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _bad_models(tmp):
    np.save(tmp / "small.npy", squareform(pdist(np.arange(5.0)[:, None])))
    (tmp / "ragged.csv").write_text("0,1,2\n1,0,3\n")
    (tmp / "asym.csv").write_text("0,1,2\n1,0,3\n2,4,0\n")
    (tmp / "diag.csv").write_text("1,1,2\n1,0,3\n2,3,0\n")
    np.save(tmp / "nan.npy", np.array([1.0, np.nan, 2.0]))
    with h5py.File(tmp / "stack.rdm.h5", "w") as f:
        f.attrs["type"] = "dRDM"
        f["conv"] = np.ones((2, N * (N - 1) // 2))


@pytest.mark.parametrize("extra,message", [
    (["-model-rdm", "{tmp}/small.npy"], "model RDM {tmp}/small.npy (small) is 5 x 5 (10 "
                                        "pairs) but the analysis has 12 items (66 pairs)"),
    (["-model-rdm", "{tmp}/ragged.csv"], "got shape (2, 3) (not square)"),
    (["-model-rdm", "{tmp}/asym.csv"], "asym.csv: not symmetric: entry (2, 3) is 3 but "
                                       "(3, 2) is 4"),
    (["-model-rdm", "{tmp}/diag.csv"], "diag.csv: diagonal entry (1, 1) is 1"),
    (["-model-rdm", "{tmp}/nan.npy"], "nan.npy: entry 1 is NaN or infinite"),
    (["-model-rdm", "{tmp}/stack.rdm.h5"], "'conv' holds 2 RDMs"),
    (["-model-rdm", "{tmp}/missing.npy"], "model RDM not found"),
    (["-model-rdm", "animals"], "-model-rdm animals: no such file, and not a simulated model"),
    (["-model-rdm", "noisy:linear:-1"], "noise SD '-1' must be a number >= 0"),
    (["-model-rdm", "category:colour"], "no column 'colour'"),
    (["-model-rdm", "linear", "linear"], "two model RDMs are named 'linear'"),
    (["-method", "cka", "-model-rdm", "linear"], "-model-rdm is for RDMs"),
    (["-method", "cka", "-n-boot", "5"], "-n-boot is for RDMs"),
    (["-kernel", "rbf"], "-kernel: CKA options; add -method cka"),
    (["-method", "cka", "-sigma", "0.5"], "-sigma is the RBF width; add -kernel rbf"),
    (["-groups", "run"], "-groups needs -stim and -cate"),
    (["-groups", "session", "-cate"], "no column 'session'"),
    (["-sort-by", "animate", "-no-plot"], "-sort-by orders the RDM figures; drop -no-plot"),
])
def test_bad_input_is_one_line_and_writes_nothing(run_cli, files, extra, message):
    tmp = files[0]
    _bad_models(tmp)
    status, _, err = run_cli(main, *_base(tmp, "e", *[e.format(tmp=tmp) for e in extra]))
    assert status == 2, err
    assert not (tmp / "e").exists()
    assert message.format(tmp=tmp) in err
    assert len(err.strip().splitlines()) == 1


def test_groups_refuses_an_incomplete_run(run_cli, files):
    tmp = files[0]
    ids = [f"img{i}.png" for i in range(N)]
    runs = RUNS.copy()
    runs[3] = 2                                        # run 1 loses label 3
    Stimulus(ids, columns={"label": LABELS, "run": runs}).save(tmp / "bad.stim.csv")
    status, _, err = run_cli(main, "-act", tmp / "a.act.h5", "-stim", tmp / "bad.stim.csv",
                             "-nif", tmp / "sub1.nii.gz", "-cate", "-groups", "run",
                             "-out", tmp / "e", "-q")
    assert status == 2 and "run 1 has no pattern of item 3" in err
    assert not (tmp / "e").exists()


def test_model_against_per_channel_rdms(run_cli, files):
    tmp, layers = files[:2]
    status, _, err = run_cli(main, "-act", tmp / "a.act.h5", "-layer", "conv", "-iteraxis",
                             "channel", "-model-rdm", "linear", "-metric", "euclidean",
                             "-out", tmp / "i", "-q", "-no-plot")
    assert status == 0, err
    t = read_table(tmp / "i/model_layer.csv")
    assert list(t)[:4] == ["layer", "iter", "model", "method"]
    assert list(t["iter"]) == [1, 2]
    model = pdist(np.arange(N)[:, None], "cityblock")
    for c, score in enumerate(t["score"]):
        ref = stats.pearsonr(model, pdist(layers["conv"][:, c].reshape(N, -1))).statistic
        assert score == pytest.approx(ref, abs=1e-12)
