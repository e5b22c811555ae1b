"""db_info FILE on every file type the toolbox writes or reads, each written here."""
import nibabel as nib
import numpy as np
import pytest
from nibabel import cifti2, gifti

from dnnsparse.base.stimulus import Stimulus
from dnnsparse.cli import info as db_info
from dnnsparse.io.dmask import write_dmask
from dnnsparse.io.rdm import write_rdm_file
from dnnsparse.io.roi import write_roi_file


def pairs(out):
    """``{key: [values]}`` of db_info's ``key: value`` lines."""
    found = {}
    for line in out.splitlines():
        key, sep, value = line.partition(": ")
        if sep:
            found.setdefault(key.strip(), []).append(value.strip())
    return found


def describe(run_cli, path):
    status, out, err = run_cli(db_info.main, path)
    assert status == 0, err
    return out, pairs(out)


def test_rdm_file(run_cli, tmp_path, rng):
    n = 6
    rdms = {"V1": rng.random(n * (n - 1) // 2), "FFA": rng.random(n * (n - 1) // 2)}
    write_rdm_file(tmp_path / "b.rdm.h5", "bRDM", rdms, items=list("abcdef"),
                   metrics={"V1": "correlation", "FFA": "euclidean"})
    out, p = describe(run_cli, tmp_path / "b.rdm.h5")
    assert p["type"][0].startswith("bRDM") and p["RDMs"] == ["2"] and p["items"] == ["6"]
    assert p["item labels"] == ["a, b, c, d, e, f"]
    rows = [line.split() for line in out.splitlines()]
    assert ["V1", "15", "correlation"] in rows and ["FFA", "15", "euclidean"] in rows
    write_rdm_file(tmp_path / "d.rdm.h5", "dRDM", {"conv1": rng.random((4, 3))})
    out, p = describe(run_cli, tmp_path / "d.rdm.h5")
    assert p["type"][0].startswith("dRDM") and p["items"] == ["3"]
    assert ["conv1", "4x3"] in [line.split() for line in out.splitlines()]


def test_roi_file(run_cli, tmp_path, rng):
    write_roi_file(tmp_path / "s.roi.h5", ["V1", "FFA", "PPA"], rng.random((9, 3)),
                   attrs={"stat": "median"})
    _, p = describe(run_cli, tmp_path / "s.roi.h5")
    assert p["ROIs"] == ["3"] and p["samples"] == ["9"] and p["names"] == ["V1, FFA, PPA"]
    assert p["stat"] == ["median"]


def test_stim_and_dmask_files(run_cli, tmp_path):
    Stimulus([f"im{i}.png" for i in range(5)], root="/data/img",
             columns={"label": np.array([0, 1, 1, 2, 0]),
                      "onset": np.arange(5) * 1.5}).save(tmp_path / "s.stim.csv")
    out, p = describe(run_cli, tmp_path / "s.stim.csv")
    assert p["type"] == ["image"] and p["path"] == ["/data/img"] and p["stimuli"] == ["5"]
    rows = {line.split()[0]: line.split()[1:3] for line in out.splitlines()[4:]}
    assert rows["stimID"] == ["text", "5"] and rows["label"] == ["int", "3"]
    assert rows["onset"] == ["float", "5"]
    write_dmask(tmp_path / "m.dmask.csv", {"conv1": {"chn": [1, 2, 5]},
                                          "fc2": {"chn": [7], "row": None}, "conv5": None})
    out, p = describe(run_cli, tmp_path / "m.dmask.csv")
    assert p["layers"] == ["3"]
    lines = {line.split()[0]: " ".join(line.split()[1:]) for line in out.splitlines()[2:]}
    assert lines["conv1"] == "3: 1, 2, 5 all all" and lines["conv5"] == "all all all"
    assert lines["fc2"] == "1: 7 all all"


def test_nifti_and_mgh(run_cli, tmp_path, rng):
    affine = np.array([[2.0, 0, 0, -10], [0, 2.5, 0, -20], [0, 0, 3.0, 5], [0, 0, 0, 1]])
    img = nib.Nifti2Image(rng.standard_normal((4, 5, 6, 7)).astype(np.float32), affine)
    img.header.set_xyzt_units("mm", "msec")
    img.header["pixdim"][4] = 1500
    nib.save(img, str(tmp_path / "bold.nii.gz"))
    out, p = describe(run_cli, tmp_path / "bold.nii.gz")
    assert p["format"] == ["NIfTI-2 volume"] and p["grid"] == ["4x5x6"]
    assert p["voxels"] == ["120"] and p["voxel size (mm)"] == ["2x2.5x3"]
    assert p["samples (volumes)"] == ["7"] and p["TR (s)"] == ["1.5"]
    assert p["data type"] == ["float32"]
    affine_rows = [line.split()[-4:] for line in out.splitlines() if "0000" in line]
    np.testing.assert_allclose(np.array(affine_rows, float), affine)
    label = nib.Nifti1Image(np.zeros((3, 3, 3), np.int16), np.eye(4))
    label.header.set_intent("label")
    nib.save(label, str(tmp_path / "atlas.nii"))
    _, p = describe(run_cli, tmp_path / "atlas.nii")
    assert p["samples (volumes)"] == ["1"] and p["TR (s)"] == ["not in header"]
    assert p["intent"] == ["label"]
    mgh = nib.MGHImage(rng.standard_normal((3, 4, 2, 5)).astype(np.float32), np.eye(4))
    mgh.header["tr"] = 2000.0
    nib.save(mgh, str(tmp_path / "f.mgz"))
    _, p = describe(run_cli, tmp_path / "f.mgz")
    assert p["format"] == ["MGH volume"] and p["TR (s)"] == ["2"]
    assert p["grid"] == ["3x4x2"] and p["samples (volumes)"] == ["5"]


@pytest.fixture
def brain_models():
    vox = np.zeros((3, 3, 3), bool)
    vox[1, :, :2] = True
    return (cifti2.BrainModelAxis.from_mask(np.ones(10, bool), name="CortexLeft")
            + cifti2.BrainModelAxis.from_mask(vox, affine=np.diag([2, 2, 2, 1]),
                                              name="thalamus_left"))


def test_cifti_label_series_and_scalar(run_cli, tmp_path, rng, brain_models):
    labels = cifti2.LabelAxis(["parc", "coarse"], [
        {0: ("???", (0, 0, 0, 0)), 1: ("V1", (1, 0, 0, 1)), 2: ("V2", (0, 1, 0, 1))},
        {0: ("???", (0, 0, 0, 0)), 5: ("occipital", (0, 0, 1, 1))}])
    img = cifti2.Cifti2Image(rng.integers(0, 3, (2, 16)).astype(np.int32),
                             header=(labels, brain_models))
    img.nifti_header.set_intent("ConnDenseLabel")
    nib.save(img, str(tmp_path / "a.dlabel.nii"))
    _, p = describe(run_cli, tmp_path / "a.dlabel.nii")
    assert p["format"] == ["CIFTI-2 dlabel (label maps)"] and p["grayordinates"] == ["16"]
    assert p["surface vertices"] == ["10"] and p["voxels"] == ["6"]
    assert p["structure"] == ["CORTEX_LEFT: 10", "THALAMUS_LEFT: 6"]
    assert p["volume grid"] == ["3x3x3"] and p["voxel size (mm)"] == ["2x2x2"]
    assert p["map names"] == ["parc, coarse"] and p["samples"] == ["2"]
    assert p["labels of map 1"] == ["2 label(s): 1=V1, 2=V2"]
    assert p["labels of map 2"] == ["1 label(s): 5=occipital"]
    series = cifti2.SeriesAxis(0.0, 0.8, 12, "SECOND")
    img = cifti2.Cifti2Image(rng.standard_normal((12, 16)).astype(np.float32),
                             header=(series, brain_models))
    img.nifti_header.set_intent("ConnDenseSeries")
    nib.save(img, str(tmp_path / "b.dtseries.nii"))
    _, p = describe(run_cli, tmp_path / "b.dtseries.nii")
    assert p["samples"] == ["12"] and p["TR (s)"] == ["0.8"]
    scalars = cifti2.ScalarAxis([f"beta{i}" for i in range(15)])
    img = cifti2.Cifti2Image(rng.standard_normal((15, 16)).astype(np.float32),
                             header=(scalars, brain_models))
    img.nifti_header.set_intent("ConnDenseScalar")
    nib.save(img, str(tmp_path / "c.dscalar.nii"))
    _, p = describe(run_cli, tmp_path / "c.dscalar.nii")
    assert p["samples"] == ["15"] and "TR (s)" not in p
    assert p["map names"][0].startswith("beta0, beta1") and "(15 in all)" in p["map names"][0]


def test_gifti_label_and_func(run_cli, tmp_path, rng):
    table = gifti.GiftiLabelTable()
    for key, name in [(0, "unknown"), (1, "FFA"), (4, "PPA")]:
        label = gifti.GiftiLabel(key)
        label.label = name
        table.labels.append(label)
    img = gifti.GiftiImage(labeltable=table, darrays=[gifti.GiftiDataArray(
        rng.choice([0, 1, 4], 30).astype(np.int32), intent="NIFTI_INTENT_LABEL")])
    img.meta = gifti.GiftiMetaData(AnatomicalStructurePrimary="CortexRight")
    nib.save(img, str(tmp_path / "a.label.gii"))
    _, p = describe(run_cli, tmp_path / "a.label.gii")
    assert p["format"] == ["GIFTI"] and p["vertices"] == ["30"] and p["data arrays"] == ["1"]
    assert p["AnatomicalStructurePrimary"] == ["CortexRight"]
    assert p["label table"] == ["2 label(s): 1=FFA, 4=PPA"]
    arrays = [gifti.GiftiDataArray(rng.standard_normal(30).astype(np.float32),
                                   meta={"Name": f"t{i}"}) for i in range(3)]
    nib.save(gifti.GiftiImage(darrays=arrays), str(tmp_path / "t.func.gii"))
    _, p = describe(run_cli, tmp_path / "t.func.gii")
    assert p["samples"] == ["3"] and p["array names"] == ["t0, t1, t2"]
    assert "label table" not in p and p["data type"] == ["float32"]


def test_bad_files_one_line(cli_error, tmp_path):
    (tmp_path / "x.txt").write_text("hello\n")
    msg = cli_error(db_info.main, tmp_path / "x.txt")
    assert "x.txt" in msg and ".rdm.h5" in msg and ".nii" in msg
    assert "not found" in cli_error(db_info.main, tmp_path / "none.rdm.h5")
    (tmp_path / "bad.nii.gz").write_bytes(b"not an image")
    assert "bad.nii.gz" in cli_error(db_info.main, tmp_path / "bad.nii.gz")
    (tmp_path / "bad.roi.h5").write_bytes(b"not hdf5")
    assert "bad.roi.h5" in cli_error(db_info.main, tmp_path / "bad.roi.h5")
