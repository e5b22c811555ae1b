"""db_encode end to end: planted linear mappings from a layer to synthetic NIfTI and
CIFTI-2 brains (real BrainModelAxis) are recovered, and every output agrees."""
import nibabel as nib
import numpy as np
import pytest
from nibabel import cifti2
from sklearn.model_selection import GroupKFold

from dnnsparse.algo.encoding import encode
from dnnsparse.pipelines import load_model

from dnnsparse.base.activation import Activation
from dnnsparse.base.stimulus import Stimulus
from dnnsparse.cli.encode import main
from dnnsparse.io.roi import write_roi_file
from dnnsparse.io.table import read_table, write_table

pytestmark = pytest.mark.usefixtures("one_blas_thread")

N = 60
GRID = (3, 4, 5)                          # unequal sizes expose axis mix-ups
AFFINE = np.diag([2.0, 2.5, 3.0, 1.0])
CONV = (3, 4, 2)                          # channels, rows, columns
MV, UV, CONST = 7, 31, 50                 # planted multivariate / single-unit / constant
UNIT = 17                                 # planted unit: channel 3, row 1, column 2 (1-based)
ALPHAS = ["-alphas", "0.1", "10", "1000"]
N_PERM = 39


def _layers(rng):
    return {"conv": rng.standard_normal((N,) + CONV).astype(np.float32),
            "fc": rng.standard_normal((N, 7)).astype(np.float32)}


def _responses(rng, X, n_targets):
    """Noise, one voxel a mix of all units, one a single unit, one constant."""
    Y = rng.standard_normal((N, n_targets))
    w = rng.standard_normal(X.shape[1])
    Y[:, MV] = X @ w / np.sqrt(X.shape[1]) + 0.2 * rng.standard_normal(N)
    Y[:, UV] = 1.5 * X[:, UNIT] + 0.3 * rng.standard_normal(N)
    Y[:, CONST] = 3.0
    return Y.astype(np.float32)



@pytest.fixture
def data(tmp_path, rng):
    layers = _layers(rng)
    Activation(layers, stim_ids=[f"s{i}.png" for i in range(N)]).save(tmp_path / "a.act.h5")
    X = layers["conv"].reshape(N, -1)
    Y = _responses(rng, X, int(np.prod(GRID)))
    nib.save(nib.Nifti1Image(np.moveaxis(Y.reshape((N,) + GRID), 0, -1), AFFINE),
             str(tmp_path / "beta.nii.gz"))
    stim = Stimulus([f"s{i}.png" for i in range(N)], columns={"run": np.repeat(np.arange(6), 10),
                                                               "rt": Y[:, MV] + 1.0})
    stim.save(tmp_path / "s.stim.csv")
    return {"dir": tmp_path, "act": tmp_path / "a.act.h5", "nii": tmp_path / "beta.nii.gz",
            "stim": tmp_path / "s.stim.csv", "X": X, "Y": Y, "layers": layers}


def _run(run_cli, data, *argv):
    status, out, err = run_cli(main, "-act", data["act"], "-q", *argv)
    assert status == 0, err
    return out


def _voxel(index):
    return np.unravel_index(index, GRID)


def test_nifti_planted_mapping_recovered(run_cli, data):
    out_dir = data["dir"] / "enc"
    printed = _run(run_cli, data, "-layer", "conv", "-resp", data["nii"], *ALPHAS,
                   "-n-perm", N_PERM, "-max-stat", "-seed", 3, "-out", out_dir)
    table = read_table(out_dir / "scores.tsv")
    r, p, p_fwer = table["r"], table["p"], table["p_fwer"]
    null = np.setdiff1d(np.arange(r.size), [MV, UV, CONST])
    # high r where planted, chance elsewhere; p small only where planted
    assert r[MV] > 0.9 and r[UV] > 0.9
    assert np.all(np.abs(r[null]) < 0.5) and abs(np.mean(r[null])) < 0.2
    assert p[MV] == p[UV] == p_fwer[MV] == p_fwer[UV] == 1 / (N_PERM + 1)
    assert np.all(p_fwer[null] > 0.05) and np.mean(p[null] < 0.05) < 0.15
    assert np.isnan(r[CONST]) and np.isnan(p[CONST])            # constant voxel: skipped
    # table rows are the voxels in C order, with their grid coordinates
    assert table["voxel"].tolist() == list(range(r.size))
    assert np.array_equal(np.column_stack([table[c] for c in "ijk"]),
                          np.column_stack(_voxel(table["voxel"])))
    # the CLI's numbers are the library's on the same arrays with the same seed
    ref = encode(data["X"], data["Y"][:, np.arange(r.size) != CONST],
                 alphas=[0.1, 10, 1000], n_perm=N_PERM, seed=3)
    np.testing.assert_allclose(r[np.arange(r.size) != CONST], ref.r, rtol=1e-6)
    np.testing.assert_array_equal(p[np.arange(r.size) != CONST], ref.p)
    np.testing.assert_array_equal(table["alpha"][np.arange(r.size) != CONST],
                                  np.median(ref.alphas, axis=0))
    # maps reload in nibabel with the table's values at every voxel
    img = nib.load(str(out_dir / "conv" / "r.nii.gz"))
    assert img.shape == GRID and np.allclose(img.affine, AFFINE)
    vol = img.get_fdata()
    assert vol[_voxel(MV)] > 0.9 and vol[_voxel(UV)] > 0.9
    np.testing.assert_allclose(vol.ravel(), r, rtol=1e-6, equal_nan=True)
    for name in ("r2", "p", "p_fwer", "alpha"):
        np.testing.assert_allclose(nib.load(str(out_dir / "conv" / f"{name}.nii.gz"))
                                   .get_fdata().ravel(), table[name], rtol=1e-6,
                                   equal_nan=True)
    # the summary is the table's mean, and the printed line says so
    summary = read_table(out_dir / "summary.csv")
    assert summary["n_encoded"].tolist() == [r.size - 1]
    np.testing.assert_allclose(summary["score"], np.nanmean(r))
    assert summary["n_sig"].tolist() == [int(np.sum(p_fwer < 0.05))]
    assert f"mean r {np.nanmean(r):.4f}" in printed
    # the model refitted on all stimuli is plain arrays and predicts the planted voxel
    model = load_model(out_dir / "conv" / "model.npz")
    pred = model.predict(data["X"])
    assert pred.shape == (N, r.size - 1)
    assert np.corrcoef(pred[:, MV], data["Y"][:, MV])[0, 1] > 0.95
    assert (out_dir / "encoding.png").stat().st_size > 0


def _cifti_axis():
    mask = np.zeros((2, 3, 2), dtype=bool)
    mask[:, 1:, :] = True                                        # 8 voxels
    return (cifti2.BrainModelAxis.from_surface(np.arange(3, 55), 60, "CortexLeft")
            + cifti2.BrainModelAxis.from_mask(mask, "thalamus_left", affine=AFFINE))


def test_cifti_planted_mapping_recovered(run_cli, data, rng):
    bm = _cifti_axis()
    Y = _responses(rng, data["X"], len(bm))
    path = data["dir"] / "beta.dscalar.nii"
    nib.save(cifti2.Cifti2Image(Y, cifti2.Cifti2Header.from_axes(
        (cifti2.ScalarAxis([f"stim{i}" for i in range(N)]), bm))), str(path))
    out_dir = data["dir"] / "enc"
    _run(run_cli, data, "-layer", "conv", "-resp", path, *ALPHAS, "-n-perm", N_PERM,
         "-out", out_dir)
    table = read_table(out_dir / "scores.tsv")
    assert table["grayordinate"].tolist() == list(range(len(bm)))
    assert table["structure"][0] == "CIFTI_STRUCTURE_CORTEX_LEFT"
    assert table["structure"][-1] == "CIFTI_STRUCTURE_THALAMUS_LEFT"
    r, p = table["r"], table["p"]
    null = np.setdiff1d(np.arange(r.size), [MV, UV, CONST])
    assert r[MV] > 0.9 and r[UV] > 0.9 and np.all(np.abs(r[null]) < 0.5)
    assert p[MV] == p[UV] == 1 / (N_PERM + 1) and np.mean(p[null] < 0.05) < 0.15
    img = nib.load(str(out_dir / "conv" / "r.dscalar.nii"))
    axis = img.header.get_axis(1)
    assert isinstance(axis, cifti2.BrainModelAxis) and axis == bm
    assert list(img.header.get_axis(0).name) == ["conv"]
    values = np.asarray(img.dataobj)[0]
    assert values[MV] > 0.9 and values[UV] > 0.9
    np.testing.assert_allclose(values, r, rtol=1e-6, equal_nan=True)


def test_groups_are_never_split(run_cli, data):
    out_dir = data["dir"] / "enc"
    _run(run_cli, data, "-layer", "fc", "-resp", data["nii"], *ALPHAS, "-stim", data["stim"],
         "-groups", "run", "-cv", 4, "-inner-cv", 2, "-n-perm", 5, "-out", out_dir)
    folds = read_table(out_dir / "folds.csv")
    runs = np.repeat(np.arange(6), 10)
    assert folds["group"].tolist() == runs.tolist()
    for run in range(6):                               # every run lies in one fold
        assert len(set(folds["fold"][runs == run])) == 1
    # the folds are scikit-learn's GroupKFold, built here independently
    expected = np.empty(N, dtype=int)
    for k, (_, test) in enumerate(GroupKFold(4).split(np.zeros((N, 1)), groups=runs)):
        expected[test] = k + 1
    assert folds["fold"].tolist() == expected.tolist()
    assert folds["stimID"][0] == "s0.png"


def test_uv_picks_the_planted_unit(run_cli, data):
    out_dir = data["dir"] / "enc"
    _run(run_cli, data, "-layer", "conv", "-resp", data["nii"], "-anal", "uv", "-out", out_dir)
    table = read_table(out_dir / "scores.tsv")
    chn, row, col = np.unravel_index(UNIT, CONV)
    assert table["r"][UV] > 0.9
    assert table["best_unit"][UV] == UNIT + 1
    assert (table["best_chn"][UV], table["best_row"][UV], table["best_col"][UV]) == \
        (chn + 1, row + 1, col + 1)
    assert table["best_unit"][CONST] == 0
    vol = nib.load(str(out_dir / "conv" / "best_chn.nii.gz")).get_fdata()
    assert vol[_voxel(UV)] == chn + 1
    model = load_model(out_dir / "conv" / "model.npz")      # the univariate model
    assert model.units_[UV - (UV > CONST)] == UNIT
    # channels given with -chn keep their numbers in the layer
    out2 = data["dir"] / "enc2"
    _run(run_cli, data, "-layer", "conv", "-chn", 1, chn + 1, "-resp", data["nii"],
         "-anal", "uv", "-no-model", "-out", out2)
    table = read_table(out2 / "scores.tsv")
    assert table["best_chn"][UV] == chn + 1 and table["best_row"][UV] == row + 1
    assert not (out2 / "conv" / "model.npz").exists()


def test_iteraxis_channel_scores_each_channel(run_cli, data):
    out_dir = data["dir"] / "enc"
    _run(run_cli, data, "-layer", "conv", "-resp", data["nii"], "-iteraxis", "channel",
         *ALPHAS, "-n-jobs", 2, "-out", out_dir)
    table = read_table(out_dir / "scores.tsv")
    n_vox = int(np.prod(GRID))
    assert table["chn"].tolist() == np.repeat([1, 2, 3], n_vox).tolist()
    r = table["r"].reshape(3, n_vox)
    planted = np.unravel_index(UNIT, CONV)[0]
    assert r[planted, UV] > 0.9
    assert np.all(r[np.arange(3) != planted, UV] < 0.5)
    img = nib.load(str(out_dir / "conv" / "r.nii.gz"))
    assert img.shape == GRID + (3,)
    np.testing.assert_allclose(np.moveaxis(img.get_fdata(), -1, 0).reshape(3, -1), r,
                               rtol=1e-6, equal_nan=True)
    assert sorted(p.name for p in (out_dir / "conv").glob("chn*.npz")) == \
        ["chn1.npz", "chn2.npz", "chn3.npz"]
    assert read_table(out_dir / "summary.csv")["chn"].tolist() == [1, 2, 3]


def test_roi_atlas_restricts_voxels_and_summarises(run_cli, data):
    atlas = np.zeros(int(np.prod(GRID)), dtype=np.int16)
    atlas[[MV, UV, 3, 4]] = 1
    atlas[20:30] = 2
    nib.save(nib.Nifti1Image(atlas.reshape(GRID), AFFINE), str(data["dir"] / "atlas.nii.gz"))
    (data["dir"] / "lut.csv").write_text("label,name\n1,planted\n2,noise\n")
    out_dir = data["dir"] / "enc"
    _run(run_cli, data, "-layer", "conv", "fc", "-resp", data["nii"], "-roi",
         data["dir"] / "atlas.nii.gz", "-lut", data["dir"] / "lut.csv", *ALPHAS,
         "-out", out_dir)
    table = read_table(out_dir / "scores.tsv")
    inside = np.flatnonzero(atlas)
    assert table["voxel"][table["layer"] == "conv"].tolist() == inside.tolist()
    summary = read_table(out_dir / "summary.csv")
    assert summary["roi"].tolist() == ["planted", "noise"] * 2
    assert summary["n_targets"].tolist() == [4, 10, 4, 10]
    conv = table["layer"] == "conv"
    for roi, score in zip(summary["roi"][:2], summary["score"][:2]):
        np.testing.assert_allclose(score, table["r"][conv & (table["roi"] == roi)].mean())
    assert summary["score"][0] > summary["score"][1] + 0.3
    vol = nib.load(str(out_dir / "conv" / "r.nii.gz")).get_fdata().ravel()
    assert np.isnan(vol[atlas == 0]).all() and vol[MV] > 0.9


def test_roi_file_and_table_responses(run_cli, data):
    Y = data["Y"]
    write_roi_file(data["dir"] / "sig.roi.h5", ["V1", "FFA"], Y[:, [UV, 0]])
    out_dir = data["dir"] / "enc"
    _run(run_cli, data, "-layer", "conv", "-resp", data["dir"] / "sig.roi.h5", "-model",
         "glm", "-out", out_dir)
    table = read_table(out_dir / "scores.tsv")
    assert table["target"].tolist() == ["V1", "FFA"] and table["r"][0] > 0.9
    assert not list((out_dir / "conv").glob("r.*"))              # no brain: no maps
    write_table(data["dir"] / "beh.csv", {"stimID": np.arange(N), "rt": Y[:, MV],
                                          "acc": Y[:, 0], "note": ["x"] * N})
    out2 = data["dir"] / "enc2"
    _run(run_cli, data, "-layer", "conv", "-resp", data["dir"] / "beh.csv", "-meas", "rt",
         "-model", "pls", "-n-components", 3, "-out", out2)
    table = read_table(out2 / "scores.tsv")
    assert table["target"].tolist() == ["rt"] and table["r"][0] > 0.8


def test_reduce_is_fitted_inside_folds(run_cli, data):
    out_dir = data["dir"] / "enc"
    _run(run_cli, data, "-layer", "conv", "-resp", data["nii"], "-reduce", 5, *ALPHAS,
         "-seed", 1, "-no-model", "-out", out_dir)
    keep = np.arange(data["Y"].shape[1]) != CONST
    ref = encode(data["X"], data["Y"][:, keep], alphas=[0.1, 10, 1000], reduce=5, seed=1)
    np.testing.assert_allclose(read_table(out_dir / "scores.tsv")["r"][keep], ref.r,
                               rtol=1e-6)


def _bad_nan(data):
    Y = data["Y"].copy()
    Y[4, 5] = np.nan
    path = data["dir"] / "nan.nii.gz"
    nib.save(nib.Nifti1Image(np.moveaxis(Y.reshape((N,) + GRID), 0, -1), AFFINE), str(path))
    return ["-resp", path]


def _short(data):
    path = data["dir"] / "short.nii.gz"
    vol = np.moveaxis(data["Y"][:50].reshape((50,) + GRID), 0, -1)
    nib.save(nib.Nifti1Image(vol, AFFINE), str(path))
    return ["-resp", path]


ERRORS = {
    "samples != stimuli": (_short, r"short\.nii\.gz has 50 samples but .*a\.act\.h5 has 60"),
    "unknown layer": (lambda d: ["-resp", d["nii"], "-layer", "conv9"],
                      r"'conv9'.*conv, fc"),
    "NaN in data": (_bad_nan, r"NaN or infinite .*target 5, sample 4"),
    "groups without stim": (lambda d: ["-resp", d["nii"], "-groups", "run"], r"give -stim"),
    "unknown group column": (lambda d: ["-resp", d["nii"], "-stim", d["stim"], "-groups",
                                        "session"], r"no column 'session'"),
    "uv with ridge": (lambda d: ["-resp", d["nii"], "-anal", "uv", "-model", "ridge"],
                      r"-model glm"),
    "max-stat without perms": (lambda d: ["-resp", d["nii"], "-max-stat"], r"-n-perm"),
    "bad cv": (lambda d: ["-resp", d["nii"], "-cv", "1"], r"-cv 1: .*at least 2"),
    "missing resp": (lambda d: ["-resp", d["dir"] / "none.nii.gz"], r"not found"),
    "pls options": (lambda d: ["-resp", d["nii"], "-n-components", 2], r"-model pls"),
    "too many groups folds": (lambda d: ["-resp", d["nii"], "-stim", d["stim"], "-groups",
                                         "run", "-cv", 8], r"at least 8 groups"),
    "chn without layer": (lambda d: ["-resp", d["nii"], "-chn", 1], r"give -layer"),
    "chn out of range": (lambda d: ["-resp", d["nii"], "-layer", "conv", "-chn", 9],
                         r"conv: chn index 9 .*1\.\.3"),
    "bad resp type": (lambda d: ["-resp", d["act"]], r"expected a brain image"),
    "contiguous and groups": (lambda d: ["-resp", d["nii"], "-stim", d["stim"], "-groups",
                                         "run", "-contiguous"], r"use one"),
    # options checked before any work (they used to leave OUT/conv/ behind)
    "negative alpha": (lambda d: ["-resp", d["nii"], "-alphas", "-1"],
                       r"-alphas -1: penalties must be positive"),
    "zero batch": (lambda d: ["-resp", d["nii"], "-batch", 0], r"-batch 0: give at least 1"),
    "zero pls components": (lambda d: ["-resp", d["nii"], "-model", "pls", "-n-components", 0],
                            r"-n-components 0: give at least 1"),
    # found only at the second layer, once conv/ is written: nothing is kept either
    "more pls components than units": (
        lambda d: ["-resp", d["nii"], "-model", "pls", "-n-components", 10],
        r"layer fc: -n-components 10 is more than its 7 unit"),
}


@pytest.mark.parametrize("case", sorted(ERRORS))
def test_user_mistakes_exit_2_with_one_line(run_cli, data, case):
    make, pattern = ERRORS[case]
    status, out, err = run_cli(main, "-act", data["act"], "-q", *make(data),
                               "-out", data["dir"] / "enc")
    assert status == 2
    assert len([l for l in err.splitlines() if "error:" in l]) == 1, err
    assert "Traceback" not in err and not err.splitlines()[-1].startswith("WARNING"), err
    import re
    assert re.search(pattern, err), err
    assert not (data["dir"] / "enc").exists()                 # no output, not even a folder
    assert not [p for p in data["dir"].iterdir() if p.name.startswith(".partial-")]


def test_existing_output_needs_force(run_cli, data):
    out_dir = data["dir"] / "enc"
    out_dir.mkdir()
    (out_dir / "old.txt").write_text("x")
    status, _, err = run_cli(main, "-act", data["act"], "-resp", data["nii"], "-q",
                             "-out", out_dir)
    assert status == 2 and "--force" in err
    # --force never deletes a folder of the user's own files
    status, _, err = run_cli(main, "-act", data["act"], "-resp", data["nii"], "-q",
                             "-out", out_dir, "--force")
    assert status == 2 and "did not write" in err
    assert sorted(p.name for p in out_dir.iterdir()) == ["old.txt"]
    # ... but replaces an earlier output as a whole: no file of the earlier run stays
    ours = data["dir"] / "enc2"
    _run(run_cli, data, "-resp", data["nii"], "-model", "glm", "-out", ours)
    assert (ours / "conv").is_dir() and (ours / "fc").is_dir()
    out = _run(run_cli, data, "-layer", "fc", "-resp", data["nii"], "-model", "glm",
               "-out", ours, "--force")
    assert (ours / "scores.tsv").exists() and not (ours / "conv").exists()
    assert set(read_table(ours / "summary.csv")["layer"]) == {"fc"}
    assert f"wrote {ours}:" in out and ".partial-" not in out
    assert [p.name for p in data["dir"].iterdir() if p.name.startswith(".partial-")] == []


def test_help_has_an_example(run_cli):
    status, out, _ = run_cli(main, "--help")
    assert status == 0 and "example: db_encode" in out and "-iteraxis" in out
