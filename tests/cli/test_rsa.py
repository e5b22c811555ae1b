"""db_rsa end to end on synthetic activations and NIfTI data, against scipy."""
import nibabel as nib
import numpy as np
import pytest
from scipy import stats
from scipy.spatial.distance import pdist

from dnnsparse.base.activation import Activation
from dnnsparse.base.stimulus import Stimulus
from dnnsparse.cli.rsa import main
from dnnsparse.io.rdm import read_rdm_file
from dnnsparse.io.table import read_table

SHAPE = (4, 5, 6)
AFFINE = np.diag([3.0, 3.0, 3.0, 1.0])
N = 14
LABELS = np.array([3, 1, 2, 1, 3, 3, 2, 1, 2, 2, 3, 1, 1, 2])    # unequal groups


@pytest.fixture
def files(tmp_path, rng):
    ids = [f"img{i}.png" for i in range(N)]
    layers = {"conv": rng.standard_normal((N, 3, 2, 2)), "fc": rng.standard_normal((N, 9))}
    Activation(layers, stim_ids=ids).save(tmp_path / "a.act.h5")
    Stimulus(ids, columns={"label": LABELS}).save(tmp_path / "s.stim.csv")
    atlas = rng.integers(0, 3, SHAPE)
    nib.save(nib.Nifti1Image(atlas.astype(np.int16), AFFINE), str(tmp_path / "atlas.nii.gz"))
    (tmp_path / "lut.csv").write_text("label,name\n1,V1\n2,FFA\n")
    bold = rng.standard_normal(SHAPE + (N,)).astype(np.float32)
    nib.save(nib.Nifti1Image(bold, AFFINE), str(tmp_path / "sub1.nii.gz"))
    nib.save(nib.Nifti1Image(bold[..., :N - 1], AFFINE), str(tmp_path / "short.nii.gz"))
    return tmp_path, layers, atlas, bold


def _args(tmp, out, *extra, nif="sub1.nii.gz"):
    return ["-act", tmp / "a.act.h5", "-stim", tmp / "s.stim.csv", "-nif", tmp / nif,
            "-roi", tmp / "atlas.nii.gz", "-lut", tmp / "lut.csv", "-out", tmp / out, "-q",
            *extra]


def test_rdms_and_table_equal_scipy(run_cli, files):
    tmp, layers, atlas, bold = files
    status, out, err = run_cli(main, *_args(tmp, "o", "-n-perm", "50", "-n-boot", "40"))
    assert status == 0, err
    assert {p.name for p in (tmp / "o").iterdir()} == {"dnn.rdm.h5", "brain.rdm.h5",
                                                        "similarity.csv", "similarity.png",
                                                        "figures", ".dnnsparse-output"}
    assert {p.name for p in (tmp / "o/figures").iterdir()} == {
        f"{kind}_{name}.png" for kind in ("rdm", "mds")
        for name in ("layer_conv", "layer_fc", "roi_V1", "roi_FFA")}
    kind, dnn, meta = read_rdm_file(tmp / "o/dnn.rdm.h5")
    assert kind == "dRDM" and list(dnn) == ["conv", "fc"]
    assert list(meta["items"]) == [f"img{i}.png" for i in range(N)]
    for name, a in layers.items():
        np.testing.assert_allclose(dnn[name][0], pdist(a.reshape(N, -1), "correlation"),
                                   rtol=0, atol=1e-10)
    kind, brain, _ = read_rdm_file(tmp / "o/brain.rdm.h5")
    assert kind == "bRDM" and list(brain) == ["V1", "FFA"]
    voxels = bold.reshape(-1, N).T.astype(np.float64)
    np.testing.assert_allclose(brain["FFA"], pdist(voxels[:, atlas.ravel() == 2],
                                                   "correlation"), atol=1e-10)
    t = read_table(tmp / "o/similarity.csv")
    assert list(t) == ["layer", "roi", "method", "score", "p", "ci_low", "ci_high", "n_items"]
    assert list(t["layer"]) == ["conv", "fc", "conv", "fc"]
    assert list(t["roi"]) == ["V1", "V1", "FFA", "FFA"]
    for layer, roi, score in zip(t["layer"], t["roi"], t["score"]):
        assert score == pytest.approx(stats.pearsonr(dnn[layer][0], brain[roi]).statistic,
                                      abs=1e-12)
    assert (t["n_items"] == N).all() and (t["method"] == "pearson").all()
    assert ((t["p"] > 0) & (t["p"] <= 1)).all() and (t["ci_low"] <= t["ci_high"]).all()
    assert (tmp / "o/similarity.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_spearman_and_seeded_p(run_cli, files):
    tmp = files[0]
    for out, seed in (("s1", 7), ("s2", 7), ("s3", 8)):
        assert run_cli(main, *_args(tmp, out, "-method", "spearman", "-n-perm", "30",
                                    "-seed", seed, "-no-plot"))[0] == 0
    t1, t2, t3 = (read_table(tmp / o / "similarity.csv") for o in ("s1", "s2", "s3"))
    _, dnn, _ = read_rdm_file(tmp / "s1/dnn.rdm.h5")
    _, brain, _ = read_rdm_file(tmp / "s1/brain.rdm.h5")
    assert t1["score"][3] == pytest.approx(
        stats.spearmanr(dnn["fc"][0], brain["FFA"]).statistic, abs=1e-12)
    np.testing.assert_array_equal(t1["p"], t2["p"])
    assert not np.array_equal(t1["p"], t3["p"])
    assert not (tmp / "s1/similarity.png").exists()


def test_cate_equals_manual_group_means(run_cli, files):
    tmp, layers, atlas, bold = files
    assert run_cli(main, *_args(tmp, "c", "-cate", "-metric", "euclidean",
                                "-iteraxis", "channel"))[0] == 0
    _, dnn, meta = read_rdm_file(tmp / "c/dnn.rdm.h5")
    assert list(meta["items"]) == [1, 2, 3]
    conv = layers["conv"]
    for c in range(3):
        means = np.array([conv[LABELS == k, c].reshape(-1, 4).mean(axis=0) for k in (1, 2, 3)])
        np.testing.assert_allclose(dnn["conv"][c], pdist(means), atol=1e-10)
    _, brain, _ = read_rdm_file(tmp / "c/brain.rdm.h5")
    voxels = bold.reshape(-1, N).T.astype(np.float64)[:, atlas.ravel() == 1]
    means = np.array([voxels[LABELS == k].mean(axis=0) for k in (1, 2, 3)])
    np.testing.assert_allclose(brain["V1"], pdist(means), atol=1e-10)
    t = read_table(tmp / "c/similarity.csv")
    assert list(t["iter"][:4]) == [1, 2, 3, 1] and (t["n_items"] == 3).all()
    # a per-category activation file gives the same RDMs without -cate
    Activation.load(tmp / "a.act.h5").aggregate(LABELS).save(tmp / "cat.act.h5")
    status, _, err = run_cli(main, "-act", tmp / "cat.act.h5", "-stim", tmp / "s.stim.csv",
                             "-nif", tmp / "sub1.nii.gz", "-metric", "euclidean",
                             "-iteraxis", "channel", "-out", tmp / "c2", "-q")
    assert status == 0, err
    _, dnn2, _ = read_rdm_file(tmp / "c2/dnn.rdm.h5")
    np.testing.assert_allclose(dnn2["conv"], dnn["conv"], atol=1e-10)


def test_identical_subjects_give_noise_ceiling_one(run_cli, files):
    tmp = files[0]
    sub = tmp / "sub1.nii.gz"
    status, _, err = run_cli(main, "-act", tmp / "a.act.h5", "-nif", sub, sub, sub,
                             "-roi", tmp / "atlas.nii.gz", "-out", tmp / "g", "-q")
    assert status == 0, err
    t = read_table(tmp / "g/similarity.csv")
    np.testing.assert_allclose(t["noise_lower"], 1.0, atol=1e-12)
    np.testing.assert_allclose(t["noise_upper"], 1.0, atol=1e-12)
    np.testing.assert_allclose(t["subject_mean"], t["score"], atol=1e-12)
    _, brain, _ = read_rdm_file(tmp / "g/brain.rdm.h5")
    _, one, _ = read_rdm_file(tmp / "g/brain_subject2.rdm.h5")
    np.testing.assert_allclose(brain["1"], one["1"], atol=1e-12)


def test_dnn_only_and_brain_only(run_cli, files):
    tmp, layers, _, bold = files
    assert run_cli(main, "-act", tmp / "a.act.h5", "-layer", "fc", "-out", tmp / "d", "-q")[0] == 0
    assert sorted(p.name for p in (tmp / "d").iterdir()) == [".dnnsparse-output", "dnn.rdm.h5",
                                                             "figures"]
    assert run_cli(main, "-nif", tmp / "sub1.nii.gz", "-out", tmp / "b", "-q")[0] == 0
    _, brain, _ = read_rdm_file(tmp / "b/brain.rdm.h5")
    np.testing.assert_allclose(brain["all"], pdist(bold.reshape(-1, N).T.astype(np.float64),
                                                   "correlation"), atol=1e-10)


@pytest.mark.parametrize("nif,extra,message", [
    ("short.nii.gz", [], "short.nii.gz has 13 samples but {tmp}/s.stim.csv has 14 stimuli; "
                         "they must match one to one."),
    ("short.nii.gz", ["-cate"], "short.nii.gz has 13 samples but {tmp}/s.stim.csv has 14 "
                                "stimuli in 3 categories"),
    ("sub1.nii.gz", ["-layer", "conv9"], "layer 'conv9' is not in this activation"),
    ("sub1.nii.gz", ["-select", "V4"], "no ROI 'V4'"),
    ("sub1.nii.gz", ["-method", "kendall"], "invalid choice"),
])
def test_user_mistakes_are_one_line(run_cli, files, nif, extra, message):
    tmp = files[0]
    status, _, err = run_cli(main, *_args(tmp, "e", *extra, nif=nif))
    assert status == 2
    assert not (tmp / "e").exists()                 # nothing partial, not even the folder
    assert message.format(tmp=tmp) in err
    if "invalid choice" not in message:
        assert len(err.strip().splitlines()) == 1


def test_existing_output_needs_force(run_cli, files):
    tmp = files[0]
    assert run_cli(main, *_args(tmp, "f"))[0] == 0
    status, _, err = run_cli(main, *_args(tmp, "f"))
    assert status == 2 and "--force" in err
    assert run_cli(main, *_args(tmp, "f"), "--force")[0] == 0


def test_nothing_to_do(run_cli, tmp_path):
    status, _, err = run_cli(main, "-out", tmp_path / "x")
    assert status == 2 and "give -act" in err
