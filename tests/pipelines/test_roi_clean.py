"""ROI signal cleaning (-standardize/-detrend/-confounds/-high-pass) against NiftiLabelsMasker."""
import warnings

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from dnnsparse.base.brain import BrainData
from dnnsparse.base.roi import ROISet
from dnnsparse.errors import InputError
from dnnsparse.pipelines import clean_signals, extract_roi_signals, read_confounds

pytest.importorskip("nilearn")
from nilearn.maskers import NiftiLabelsMasker  # noqa: E402

SHAPE, N_VOL, TR = (6, 7, 5), 40, 2.0
AFFINE = np.diag([3.0, 3.0, 3.5, 1.0])
COLUMNS = ["trans_x", "rot_z", "csf", "trans_x_derivative1"]


@pytest.fixture
def files(tmp_path, rng):
    labels = rng.integers(0, 4, SHAPE)
    nib.save(nib.Nifti1Image(labels.astype(np.int16), AFFINE), str(tmp_path / "atlas.nii.gz"))
    t = np.arange(N_VOL)
    # a drift, a confound-driven part and noise, around a positive mean (for psc)
    conf = rng.standard_normal((N_VOL, 3))
    bold = (100 + 0.05 * t[:, None] + conf @ rng.standard_normal((3, np.prod(SHAPE)))
            + rng.standard_normal((N_VOL, np.prod(SHAPE))))
    img = nib.Nifti1Image(np.moveaxis(bold.reshape((N_VOL,) + SHAPE), 0, -1), AFFINE)
    img.header.set_xyzt_units("mm", "sec")
    img.header["pixdim"][4] = TR
    nib.save(img, str(tmp_path / "bold.nii.gz"))
    deriv = np.r_[np.nan, np.diff(conf[:, 0])]            # fMRIPrep: n/a in row 1
    table = pd.DataFrame(dict(zip(COLUMNS, [conf[:, 0], conf[:, 1], conf[:, 2], deriv])))
    table.to_csv(tmp_path / "conf.tsv", sep="\t", index=False, na_rep="n/a")
    table[COLUMNS[:3]].to_csv(tmp_path / "conf3.tsv", sep="\t", index=False)
    return tmp_path, table


def masker(tmp, confounds=None, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = NiftiLabelsMasker(str(tmp / "atlas.nii.gz"), **kw)
        return m.fit_transform(str(tmp / "bold.nii.gz"), confounds=confounds)


OPTIONS = [
    dict(standardize="zscore"),
    dict(standardize="psc"),
    dict(detrend=True),
    dict(detrend=True, standardize="zscore"),
    dict(high_pass=0.02, standardize="zscore"),
]
NILEARN = {"zscore": "zscore_sample", "psc": "psc"}


@pytest.mark.parametrize("opts", OPTIONS)
def test_options_equal_nifti_labels_masker(files, opts):
    tmp, _ = files
    brain = BrainData.load(tmp / "bold.nii.gz")
    rois = ROISet.from_atlas(tmp / "atlas.nii.gz")
    ours = extract_roi_signals(brain, rois, **opts)     # high-pass: TR from the header
    kw = dict(opts)
    if "standardize" in kw:
        kw["standardize"] = NILEARN[kw["standardize"]]
    if "high_pass" in kw:
        kw["t_r"] = TR
    np.testing.assert_allclose(ours, masker(tmp, **kw), rtol=0, atol=1e-10)


def test_confounds_table_equals_masker_with_the_same_file(files):
    tmp, table = files
    brain = BrainData.load(tmp / "bold.nii.gz")
    rois = ROISet.from_atlas(tmp / "atlas.nii.gz")
    ours = extract_roi_signals(brain, rois, confounds=tmp / "conf3.tsv", detrend=True,
                               standardize="zscore")
    theirs = masker(tmp, confounds=str(tmp / "conf3.tsv"), detrend=True,
                    standardize="zscore_sample")
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-10)
    # the regressed-out signals are orthogonal to the confounds (an independent check)
    plain = extract_roi_signals(brain, rois, confounds=tmp / "conf3.tsv")
    np.testing.assert_allclose(table[COLUMNS[:3]].to_numpy().T @ (plain - plain.mean(0)), 0,
                               atol=1e-8)


def test_fmriprep_nan_first_row_as_nilearn_load_confounds(files):
    from nilearn.interfaces.fmriprep.load_confounds_utils import prepare_output

    tmp, table = files
    brain = BrainData.load(tmp / "bold.nii.gz")
    rois = ROISet.from_atlas(tmp / "atlas.nii.gz")
    names, conf = read_confounds(tmp / "conf.tsv", n_samples=N_VOL)
    assert names == COLUMNS
    _, prepared = prepare_output(pd.read_csv(tmp / "conf.tsv", sep="\t",
                                             na_values="n/a"), demean=False)
    np.testing.assert_array_equal(conf, prepared[COLUMNS].to_numpy())
    ours = extract_roi_signals(brain, rois, confounds=tmp / "conf.tsv",
                               confound_cols=["trans_x_derivative1", "csf"],
                               standardize="zscore")
    theirs = masker(tmp, confounds=prepared[["trans_x_derivative1", "csf"]],
                    standardize="zscore_sample")
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-10)


def test_bad_confounds_and_options(files, tmp_path):
    tmp, table = files
    with pytest.raises(InputError, match=r"has 40 rows but the brain data have 39 samples"):
        read_confounds(tmp / "conf.tsv", n_samples=39)
    with pytest.raises(InputError, match=r"no column\(s\) \['motion'\].*trans_x"):
        read_confounds(tmp / "conf.tsv", n_samples=N_VOL, columns=["trans_x", "motion"])
    bad = table.copy()
    bad.loc[5, "csf"] = np.nan
    bad.to_csv(tmp_path / "bad.tsv", sep="\t", index=False, na_rep="n/a")
    with pytest.raises(InputError, match="'csf' is missing .* at row 7"):
        read_confounds(tmp_path / "bad.tsv", n_samples=N_VOL)
    with pytest.raises(InputError, match="1 sample; .* at least 2"):
        clean_signals(np.ones((1, 3)), standardize="zscore")
    with pytest.raises(InputError, match="-high-pass needs .* -t-r"):
        clean_signals(np.ones((10, 3)), high_pass=0.01)
    with pytest.raises(InputError, match="Nyquist"):
        clean_signals(np.ones((10, 3)), high_pass=0.3, t_r=2.0)
    np.testing.assert_array_equal(clean_signals(np.arange(6.0).reshape(3, 2)),
                                  np.arange(6.0).reshape(3, 2))      # nothing asked
