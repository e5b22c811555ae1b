"""db_encode with brain features: -act as brain data (one feature set per ROI) or a
.roi.h5 file, predicting a behavioural column or brain data; scores checked against
scikit-learn's LinearRegression on KFold folds built here."""
import h5py
import nibabel as nib
import numpy as np
import pytest
from scipy.stats import pearsonr
from sklearn.linear_model import LinearRegression
from sklearn.model_selection import KFold

from dnnsparse.base.stimulus import Stimulus
from dnnsparse.cli.encode import main
from dnnsparse.io.roi import write_roi_file
from dnnsparse.io.table import read_table

pytestmark = pytest.mark.usefixtures("one_blas_thread")

N = 60
GRID = (3, 4, 2)
AFFINE = np.diag([2.0, 2.0, 2.0, 1.0])
PLANTED = [1, 3, 5]                      # voxels of ROI 1 that carry the behaviour
CV = 5


@pytest.fixture
def data(tmp_path, rng):
    n_vox = int(np.prod(GRID))
    brain = rng.standard_normal((N, n_vox))
    atlas = np.zeros(n_vox, dtype=np.int16)
    atlas[:8], atlas[12:20] = 1, 2
    rt = brain[:, PLANTED] @ [1.0, -0.5, 0.8] + 0.3 * rng.standard_normal(N)
    nib.save(nib.Nifti1Image(np.moveaxis(brain.reshape((N,) + GRID), 0, -1).astype(np.float32),
                             AFFINE), str(tmp_path / "beta.nii.gz"))
    nib.save(nib.Nifti1Image(atlas.reshape(GRID), AFFINE), str(tmp_path / "atlas.nii.gz"))
    brain = np.moveaxis(np.asarray(nib.load(str(tmp_path / "beta.nii.gz")).dataobj), -1, 0)
    brain = brain.reshape(N, -1).astype(np.float64)      # the float32 values on disk
    Stimulus([f"s{i}.png" for i in range(N)],
             columns={"rt": rt, "noise": rng.standard_normal(N)}).save(tmp_path / "s.stim.csv")
    signals = np.column_stack([brain[:, PLANTED] @ [1.0, -0.5, 0.8], rng.standard_normal(N),
                               rng.standard_normal(N)])
    write_roi_file(tmp_path / "sig.roi.h5", ["V1", "FFA", "PPA"], signals)
    return {"dir": tmp_path, "nii": tmp_path / "beta.nii.gz", "atlas": atlas, "rt": rt,
            "brain": brain, "stim": tmp_path / "s.stim.csv", "roi": tmp_path / "sig.roi.h5",
            "signals": signals, "atlas_path": tmp_path / "atlas.nii.gz"}


def _heldout_r(X, y):
    """Pearson r of LinearRegression's held-out predictions on contiguous KFold folds."""
    pred = np.empty_like(y)
    for train, test in KFold(CV).split(X):
        pred[test] = LinearRegression().fit(X[train], y[train]).predict(X[test])
    return pearsonr(pred, y)[0]


def _run(run_cli, *argv):
    status, out, err = run_cli(main, "-q", "-no-plot", "-model", "glm", "-cv", CV,
                               "-contiguous", *argv)
    assert status == 0, err
    return out


def test_brain_rois_predict_behaviour(run_cli, data):
    out = data["dir"] / "enc"
    _run(run_cli, "-act", data["nii"], "-act-roi", data["atlas_path"], "-resp", data["stim"],
         "-meas", "rt", "noise", "-n-perm", 19, "-seed", 0, "-out", out)
    scores = read_table(out / "scores.tsv")
    assert [str(v) for v in scores["layer"]] == ["1", "1", "2", "2"]   # one set per ROI
    assert list(scores["target"]) == ["rt", "noise", "rt", "noise"]
    folds = read_table(out / "folds.csv")
    expect = np.empty(N, dtype=int)
    for k, (_, test) in enumerate(KFold(CV).split(np.zeros(N))):
        expect[test] = k + 1
    np.testing.assert_array_equal(folds["fold"], expect)
    for i, (label, col) in enumerate([(1, "rt"), (1, "noise"), (2, "rt"), (2, "noise")]):
        X = data["brain"][:, data["atlas"] == label]
        y = np.asarray(Stimulus.load(data["stim"])[col], dtype=float)
        np.testing.assert_allclose(scores["r"][i], _heldout_r(X, y), atol=1e-8)
    # the planted ROI predicts rt (smallest p possible), the other ROI does not
    assert scores["r"][0] > 0.9 and scores["p"][0] == pytest.approx(1 / 20)
    assert abs(scores["r"][2]) < 0.5
    assert not any(out.glob("*/r.nii.gz"))                           # table targets: no maps


def test_brain_all_voxels_and_uv_best_voxel(run_cli, data):
    out = data["dir"] / "uv"
    _run(run_cli, "-act", data["nii"], "-resp", data["stim"], "-meas", "rt", "-anal", "uv",
         "-out", out)
    scores = read_table(out / "scores.tsv")
    assert list(scores["layer"]) == ["brain"]
    # the best single voxel over all stimuli (a planted one) names its i, j, k
    r = [pearsonr(data["brain"][:, v], data["rt"])[0] for v in range(data["brain"].shape[1])]
    best = int(np.argmax(np.abs(r)))
    assert best in PLANTED
    i, j, k = np.unravel_index(best, GRID)
    assert (scores["best_i"][0], scores["best_j"][0], scores["best_k"][0]) == (i, j, k)
    assert scores["best_unit"][0] == best + 1
    assert "best_chn" not in scores


def test_roi_file_features_predict_behaviour_and_brain(run_cli, data):
    out = data["dir"] / "roi"
    _run(run_cli, "-act", data["roi"], "-layer", "V1", "FFA", "-resp", data["stim"],
         "-meas", "rt", "-out", out)
    scores = read_table(out / "scores.tsv")
    assert list(scores["layer"]) == ["sig"]
    X = data["signals"][:, :2]
    np.testing.assert_allclose(scores["r"][0], _heldout_r(X, data["rt"]), atol=1e-8)
    assert scores["r"][0] > 0.8
    # ROI signals -> every voxel, maps in the brain's format
    out = data["dir"] / "roi2brain"
    _run(run_cli, "-act", data["roi"], "-resp", data["nii"], "-out", out)
    img = nib.load(str(out / "sig" / "r.nii.gz"))
    assert img.shape[:3] == GRID
    r_map = np.asarray(img.dataobj).reshape(-1)
    for v in (0, 7, 20):
        np.testing.assert_allclose(r_map[v], _heldout_r(data["signals"], data["brain"][:, v]),
                                   atol=1e-5)                        # float32 map


def test_bad_inputs_write_nothing(cli_error, data, tmp_path, rng):
    out = tmp_path / "never"
    short = tmp_path / "short.roi.h5"
    write_roi_file(short, ["A"], rng.standard_normal((N - 1, 1)))
    msg = cli_error(main, "-act", short, "-resp", data["stim"], "-meas", "rt", "-out", out)
    assert str(short) in msg and str(data["stim"]) in msg and str(N - 1) in msg
    empty = tmp_path / "empty.roi.h5"
    with h5py.File(empty, "w") as f:
        f.attrs["roi"] = np.array([], dtype="S1")
        f.create_dataset("data", data=np.zeros((N, 0)))
    msg = cli_error(main, "-act", empty, "-resp", data["stim"], "-out", out)
    assert "no ROIs" in msg and str(empty) in msg
    msg = cli_error(main, "-act", data["nii"], "-resp", empty, "-out", out)
    assert "no ROIs" in msg and str(empty) in msg
    msg = cli_error(main, "-act", data["nii"], "-resp", data["stim"], "-meas", "nosuch",
                    "-out", out)
    assert "nosuch" in msg
    msg = cli_error(main, "-act", data["roi"], "-layer", "LGN", "-resp", data["stim"],
                    "-out", out)
    assert "LGN" in msg and "V1" in msg
    msg = cli_error(main, "-act", data["nii"], "-iteraxis", "channel", "-resp", data["stim"],
                    "-out", out)
    assert "-iteraxis" in msg
    msg = cli_error(main, "-act", data["roi"], "-act-roi", data["atlas_path"], "-resp",
                    data["stim"], "-out", out)
    assert "-act-roi" in msg
    msg = cli_error(main, "-act", data["nii"], "-chn", 1, "-resp", data["stim"], "-out", out)
    assert "-chn" in msg
    assert not out.exists()
