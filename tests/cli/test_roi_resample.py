"""-resample-atlas (db_roi, db_rsa, db_encode, ...) and db_roi's signal cleaning, end to end.

Each resampled run is checked against nilearn: NiftiLabelsMasker(resampling_target="data")
for db_roi, and the same command given the atlas that nilearn's resample_to_img wrote
for db_rsa and db_encode.
"""
import warnings

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from dnnsparse.base.activation import Activation
from dnnsparse.base.stimulus import Stimulus
from dnnsparse.cli import decode, encode, map as db_map, psi, roi, rsa
from dnnsparse.io.rdm import read_rdm_file
from dnnsparse.io.roi import read_roi_file
from dnnsparse.io.table import read_table

pytest.importorskip("nilearn")
from nilearn.image import resample_to_img  # noqa: E402
from nilearn.maskers import NiftiLabelsMasker  # noqa: E402

N, TR = 24, 1.5
DATA_SHAPE, ATLAS_SHAPE = (7, 6, 5), (5, 5, 4)
DATA_AFFINE = np.diag([3.0, 3.0, 3.0, 1.0])
ATLAS_AFFINE = np.array([[4.2, 0, 0, -1], [0, 3.9, 0, -2], [0, 0, 4.1, 0.5], [0, 0, 0, 1]])


@pytest.fixture
def files(tmp_path, rng):
    labels = np.zeros(ATLAS_SHAPE, np.int16)
    labels[:2, :, :] = 1
    labels[3:, :3, :] = 2
    labels[2:, 3:, 1:] = 3
    nib.save(nib.Nifti1Image(labels, ATLAS_AFFINE), str(tmp_path / "atlas.nii.gz"))
    (tmp_path / "lut.csv").write_text("label,name\n1,V1\n2,FFA\n3,PPA\n")
    bold = 50 + rng.standard_normal(DATA_SHAPE + (N,)) + 0.1 * np.arange(N)
    img = nib.Nifti1Image(bold, DATA_AFFINE)
    img.header.set_xyzt_units("mm", "sec")
    img.header["pixdim"][4] = TR
    nib.save(img, str(tmp_path / "bold.nii.gz"))
    conf = pd.DataFrame({"trans_x": rng.standard_normal(N), "csf": rng.standard_normal(N)})
    conf["trans_x_derivative1"] = np.r_[np.nan, np.diff(conf["trans_x"])]
    conf.to_csv(tmp_path / "conf.tsv", sep="\t", index=False, na_rep="n/a")
    resampled = resample_to_img(nib.load(str(tmp_path / "atlas.nii.gz")), img,
                                interpolation="nearest", force_resample=True,
                                copy_header=True)
    nib.save(resampled, str(tmp_path / "atlas_nilearn.nii.gz"))
    return tmp_path, conf


def masker(tmp, confounds=None, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = NiftiLabelsMasker(str(tmp / "atlas.nii.gz"), resampling_target="data", **kw)
        return m.fit_transform(str(tmp / "bold.nii.gz"), confounds=confounds)


def test_db_roi_resampled_and_cleaned_equals_masker(run_cli, files):
    tmp, conf = files
    status, out, err = run_cli(roi.main, "-nif", tmp / "bold.nii.gz", "-roi",
                               tmp / "atlas.nii.gz", "-lut", tmp / "lut.csv",
                               "-resample-atlas", "-out", tmp / "plain.roi.h5")
    assert status == 0, err
    names, plain = read_roi_file(tmp / "plain.roi.h5")
    assert names == ["V1", "FFA", "PPA"]                  # the label table survives
    np.testing.assert_allclose(plain, masker(tmp), rtol=0, atol=1e-10)

    status, out, err = run_cli(roi.main, "-nif", tmp / "bold.nii.gz", "-roi",
                               tmp / "atlas.nii.gz", "-resample-atlas", "-detrend",
                               "-standardize", "zscore", "-confounds", tmp / "conf.tsv",
                               "-confound-cols", "csf,trans_x_derivative1", "-high-pass",
                               "0.05", "-out", tmp / "clean.roi.h5", "-csv", tmp / "c.csv")
    assert status == 0, err
    _, clean = read_roi_file(tmp / "clean.roi.h5")
    filled = conf[["csf", "trans_x_derivative1"]].to_numpy().copy()
    filled[0, 1] = filled[1, 1]                         # as nilearn's load_confounds
    theirs = masker(tmp, confounds=filled, detrend=True, standardize="zscore_sample",
                    high_pass=0.05, t_r=TR)             # our TR came from the header
    np.testing.assert_allclose(clean, theirs, rtol=0, atol=1e-10)
    np.testing.assert_allclose(read_table(tmp / "c.csv")["2"], clean[:, 1], atol=1e-12)

    status, _, err = run_cli(roi.main, "-nif", tmp / "bold.nii.gz", "-roi",
                             tmp / "atlas.nii.gz", "-standardize", "psc", "-resample-atlas",
                             "-out", tmp / "psc.roi.h5")
    assert status == 0, err
    np.testing.assert_allclose(read_roi_file(tmp / "psc.roi.h5")[1],
                               masker(tmp, standardize="psc"), rtol=0, atol=1e-10)


def test_db_rsa_with_resampled_atlas_equals_the_nilearn_resampled_file(run_cli, files, rng):
    tmp, _ = files
    ids = [f"s{i}.png" for i in range(N)]
    Activation({"fc": rng.standard_normal((N, 6))}, stim_ids=ids).save(tmp / "a.act.h5")
    Stimulus(ids).save(tmp / "s.stim.csv")
    common = ["-act", tmp / "a.act.h5", "-stim", tmp / "s.stim.csv", "-nif",
              tmp / "bold.nii.gz", "-lut", tmp / "lut.csv", "-q", "-no-plot"]
    assert run_cli(rsa.main, *common, "-roi", tmp / "atlas.nii.gz", "-resample-atlas",
                   "-out", tmp / "r1")[0] == 0
    assert run_cli(rsa.main, *common, "-roi", tmp / "atlas_nilearn.nii.gz",
                   "-out", tmp / "r2")[0] == 0
    _, ours, _ = read_rdm_file(tmp / "r1/brain.rdm.h5")
    _, theirs, _ = read_rdm_file(tmp / "r2/brain.rdm.h5")
    assert list(ours) == list(theirs) == ["V1", "FFA", "PPA"]
    for name in ours:
        np.testing.assert_array_equal(ours[name], theirs[name])


def test_db_encode_with_resampled_atlas_equals_the_nilearn_resampled_file(run_cli, files,
                                                                          rng):
    tmp, _ = files
    Activation({"fc": rng.standard_normal((N, 5)).astype(np.float32)},
               stim_ids=[f"s{i}.png" for i in range(N)]).save(tmp / "a.act.h5")
    common = ["-act", tmp / "a.act.h5", "-resp", tmp / "bold.nii.gz", "-layer", "fc",
              "-lut", tmp / "lut.csv", "-select", "FFA", "-cv", "3", "-alphas", "1", "100"]
    status, _, err = run_cli(encode.main, *common, "-roi", tmp / "atlas.nii.gz",
                             "-resample-atlas", "-out", tmp / "e1")
    assert status == 0, err
    assert run_cli(encode.main, *common, "-roi", tmp / "atlas_nilearn.nii.gz",
                   "-out", tmp / "e2")[0] == 0
    t1, t2 = read_table(tmp / "e1/summary.csv"), read_table(tmp / "e2/summary.csv")
    assert list(t1["roi"]) == ["FFA"] and t1.keys() == t2.keys()
    for key in t1:
        assert list(t1[key]) == list(t2[key])


@pytest.mark.parametrize("module", [roi, rsa, encode, decode, db_map, psi])
def test_every_roi_command_has_the_option(module):
    assert "-resample-atlas" in module.get_parser().format_help()


def test_bad_input_one_line_nothing_written(cli_error, files, tmp_path, rng):
    tmp, _ = files
    base = ["-nif", tmp / "bold.nii.gz", "-roi", tmp / "atlas.nii.gz", "-out",
            tmp / "x.roi.h5"]
    msg = cli_error(roi.main, *base)
    assert "not in the same space" in msg and "-resample-atlas" in msg
    (tmp / "short.tsv").write_text("a\tb\n" + "1\t2\n" * (N - 1))
    msg = cli_error(roi.main, *base, "-resample-atlas", "-confounds", tmp / "short.tsv")
    assert f"has {N - 1} rows" in msg and f"{N} samples" in msg
    msg = cli_error(roi.main, *base, "-resample-atlas", "-confounds", tmp / "conf.tsv",
                    "-confound-cols", "trans_x,motion")
    assert "motion" in msg and "trans_x" in msg
    msg = cli_error(roi.main, *base, "-confound-cols", "trans_x")
    assert "-confounds" in msg
    msg = cli_error(roi.main, *base, "-t-r", "2")
    assert "-high-pass" in msg
    nib.save(nib.Nifti1Image(rng.standard_normal(DATA_SHAPE), DATA_AFFINE),
             str(tmp / "beta.nii.gz"))
    msg = cli_error(roi.main, "-nif", tmp / "beta.nii.gz", "-roi", tmp / "atlas.nii.gz",
                    "-resample-atlas", "-standardize", "zscore", "-out", tmp / "x.roi.h5")
    assert "1 sample" in msg and "at least 2" in msg
    nib.save(nib.Nifti1Image(rng.standard_normal(DATA_SHAPE + (N,)), DATA_AFFINE),
             str(tmp / "notr.nii.gz"))
    msg = cli_error(roi.main, "-nif", tmp / "notr.nii.gz", "-roi", tmp / "atlas.nii.gz",
                    "-resample-atlas", "-high-pass", "0.01", "-out", tmp / "x.roi.h5")
    assert "-t-r" in msg
    from nibabel import gifti
    img = gifti.GiftiImage(darrays=[gifti.GiftiDataArray(
        np.array([0, 1, 1, 2] * 5, np.int32), intent="NIFTI_INTENT_LABEL")])
    nib.save(img, str(tmp / "a.label.gii"))
    msg = cli_error(roi.main, "-nif", tmp / "bold.nii.gz", "-roi", tmp / "a.label.gii",
                    "-resample-atlas", "-out", tmp / "x.roi.h5")
    assert "a.label.gii is a gifti file" in msg and "only volume" in msg
    assert not (tmp / "x.roi.h5").exists()
    assert not [p for p in tmp.iterdir() if p.name.startswith((".partial-", ".dnnsparse"))]
