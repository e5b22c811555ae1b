"""db_rsa / db_map glue (pipelines._rsa) against direct computations: scipy's pdist on
hand-averaged categories, real NIfTI files through nibabel, tables through write_table."""
import logging

import nibabel as nib
import numpy as np
import pytest
from scipy.spatial.distance import pdist

from dnnsparse.base.activation import Activation
from dnnsparse.base.roi import ROISet
from dnnsparse.base.stimulus import Stimulus
from dnnsparse.errors import InputError, UnknownLayerError
from dnnsparse.io.table import write_table
from dnnsparse.pipelines import (Items, load_rsa_inputs, mapping_sparseness, read_psi_summary,
                                 subject_rdms)

N = 12
LABELS = np.array([2, 0, 1] * 4)                      # unsorted: categories become sorted
SHAPE = (3, 4, 2)


def _stim(labels=LABELS):
    return Stimulus([f"s{i}.png" for i in range(N)],
                    columns=None if labels is None else {"label": labels})


def _write_brain(path, data):
    vol = np.moveaxis(data.reshape((len(data),) + SHAPE), 0, -1).astype(np.float32)
    nib.save(nib.Nifti1Image(vol, np.eye(4)), str(path))
    return path


def _means(X, labels):
    return np.array([X[labels == c].mean(axis=0) for c in np.unique(labels)])


def test_items_per_stimulus_and_per_category(rng):
    act = Activation({"fc": rng.standard_normal((N, 5))})
    plain = Items(_stim(), "s.csv", act, "a.act.h5", cate=False)
    assert not plain.by_category and plain.act_group is None
    assert list(plain.names) == [f"s{i}.png" for i in range(N)]

    cate = Items(_stim(), "s.csv", act, "a.act.h5", cate=True)
    assert cate.by_category and cate.n_categories == 3
    assert list(cate.names) == [0, 1, 2]
    np.testing.assert_array_equal(cate.act_group, LABELS)       # rows averaged by label
    assert cate.group(3, "cat.nii") is None                      # already per category

    per_cat = act.aggregate(LABELS)                              # implies -cate
    items = Items(_stim(), "s.csv", per_cat, "c.act.h5", cate=False)
    assert items.by_category and items.act_group is None
    assert list(items.names) == [0, 1, 2]


def test_items_refuse_mismatches_naming_the_files(rng):
    act = Activation({"fc": rng.standard_normal((N, 5))})
    with pytest.raises(InputError, match="-cate: s.csv has no 'label' column"):
        Items(_stim(None), "s.csv", act, "a.act.h5", cate=True)
    other = act.aggregate(np.array([5, 6, 7] * 4))
    with pytest.raises(InputError, match=r"c.act.h5 holds 3 categories \[5, 6, 7\] "
                                         r"but the labels of s.csv are \[0, 1, 2\]"):
        Items(_stim(), "s.csv", other, "c.act.h5", cate=False)
    items = Items(_stim(), "s.csv", act, "a.act.h5", cate=False)
    with pytest.raises(InputError, match="b.nii has 3 samples.*add -cate"):
        items.group(3, "b.nii")                                  # one sample per category
    with pytest.raises(InputError, match="b.nii has 7 samples"):
        items.group(7, "b.nii")


def test_items_anchor_on_the_first_brain_file():
    items = Items(None, None, None, None, cate=False)
    assert items.n_stim is None and items.names is None
    items.anchor(9, "first.nii")
    items.anchor(4, "second.nii")                                # first one wins
    with pytest.raises(InputError, match="second.nii has 4 samples but first.nii has 9"):
        items.group(4, "second.nii")


def test_load_rsa_inputs_checks_layers(tmp_path, rng):
    Activation({"conv": rng.standard_normal((N, 2, 2, 2)), "fc": rng.standard_normal((N, 3))}
               ).save(tmp_path / "a.act.h5")
    _stim().save(tmp_path / "s.stim.csv")
    stim, act = load_rsa_inputs(tmp_path / "s.stim.csv", tmp_path / "a.act.h5",
                                layers=["fc"])
    assert len(stim) == N and act.layers == ["conv", "fc"]
    assert load_rsa_inputs(None, None) == (None, None)
    with pytest.raises(UnknownLayerError, match="conv, fc"):
        load_rsa_inputs(None, tmp_path / "a.act.h5", layers=["fc", "nope"])


def test_subject_rdms_equal_pdist_of_category_means(tmp_path, rng):
    n_features = int(np.prod(SHAPE))
    subjects = [rng.standard_normal((N, n_features)) for _ in range(2)]
    paths = [_write_brain(tmp_path / f"sub{k}.nii.gz", d) for k, d in enumerate(subjects)]
    items = Items(_stim(), "s.csv", None, None, cate=True)
    spaces = []

    def rois(space):
        spaces.append(space)
        return ROISet(["front", "back"], [np.arange(10), np.arange(10, n_features)], space)

    out = subject_rdms(paths, items, rois, metric="correlation")
    assert len(spaces) == 1                                      # built once, first subject
    assert [list(s) for s in out] == [["front", "back"]] * 2
    for data, rdms in zip(subjects, out):
        means = _means(data.astype(np.float32).astype(np.float64), LABELS)
        np.testing.assert_allclose(rdms["front"], pdist(means[:, :10], "correlation"),
                                   rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(rdms["back"], pdist(means[:, 10:], "correlation"),
                                   rtol=1e-5, atol=1e-6)


def test_subject_rdms_refuse_a_subject_with_other_samples(tmp_path, rng):
    n_features = int(np.prod(SHAPE))
    paths = [_write_brain(tmp_path / "a.nii.gz", rng.standard_normal((N, n_features))),
             _write_brain(tmp_path / "b.nii.gz", rng.standard_normal((N - 2, n_features)))]
    items = Items(None, None, None, None, cate=False)
    space_rois = lambda space: ROISet(["all"], [np.arange(n_features)], space)
    with pytest.raises(InputError, match=f"b.nii.gz has {N - 2} samples but .*a.nii.gz "
                                         f"has {N}"):
        subject_rdms(paths, items, space_rois)


def test_read_psi_summary_in_the_requested_order(tmp_path):
    write_table(tmp_path / "psi.csv", {"layer": ["conv1", "conv2", "fc1"],
                                       "median": [0.25, 0.5, 0.75]})
    np.testing.assert_array_equal(read_psi_summary(tmp_path / "psi.csv", ["fc1", "conv1"]),
                                  [0.75, 0.25])
    with pytest.raises(InputError, match=r"no PSI for layer\(s\) \['fc2'\]"):
        read_psi_summary(tmp_path / "psi.csv", ["conv1", "fc2"])
    write_table(tmp_path / "acc.csv", {"label": [1], "accuracy": [0.5]})
    with pytest.raises(InputError, match="needs columns 'layer' and 'median'"):
        read_psi_summary(tmp_path / "acc.csv", ["conv1"])
    write_table(tmp_path / "text.csv", {"layer": ["conv1"], "median": ["high"]})
    with pytest.raises(InputError, match="must hold numbers"):
        read_psi_summary(tmp_path / "text.csv", ["conv1"])


def test_mapping_sparseness_without_labels_warns_and_gives_none(rng, caplog):
    from dnnsparse.base.brain import BrainData
    from dnnsparse.io.brain import GiftiSpace

    act = Activation({"fc": rng.standard_normal((N, 5))})
    space = GiftiSpace(np.ones(6, dtype=bool))
    brain = BrainData(rng.random((N, 6)), space)
    rois = ROISet(["one", "rest"], [[0, 1], [2, 3, 4, 5]], space)
    items = Items(_stim(None), "plain.csv", act, "a.act.h5", cate=False)
    with caplog.at_level(logging.WARNING):
        got = mapping_sparseness(items, act, ["fc"], brain, rois, brain_group=None,
                                 stim_path="plain.csv")
    assert got == (None, None)
    assert "plain.csv has no 'label' column: the PSI columns are NaN." in caplog.text
    given = np.array([0.3])
    psi_layer, psi_roi = mapping_sparseness(Items(_stim(), "s.csv", act, "a.act.h5",
                                                  cate=False),
                                            act, ["fc"], brain, rois, brain_group=None,
                                            psi_layer=given)
    assert psi_layer is given and psi_roi.shape == (2,)
