"""Damaged or malformed input files give one clear error, never a traceback (issue 11, item 10).

Each file here is a real file in the format's own library (h5py, nibabel), damaged as
it happens in practice: a copy cut short, an .act.h5 edited by another program, a
mask file with an absurd index.
"""
import gzip

import h5py
import nibabel as nib
import numpy as np
import pytest
from nibabel import cifti2

from dnnsparse.base.activation import Activation
from dnnsparse.errors import FileFormatError, InputError
from dnnsparse.io.act import ActFile, write_act
from dnnsparse.io.brain import load_brain, load_labels
from dnnsparse.io.dmask import read_dmask

N = 6


# -- .act.h5 ---------------------------------------------------------------------------
@pytest.fixture
def act_file(tmp_path, rng):
    path = tmp_path / "a.act.h5"
    write_act(path, {"conv": rng.standard_normal((N, 3, 2, 2)),
                     "fc": rng.standard_normal((N, 5, 1, 1))},
              stim_ids=[f"s{i}" for i in range(N)])
    return path


def _edit(path, change):
    with h5py.File(path, "a") as f:
        change(f)
    return path


def _names(*names):
    return np.array(names, dtype=h5py.string_dtype())


MALFORMED = {
    "a listed layer is a group": (
        lambda f: (f.create_group("pool5"), f.attrs.__setitem__("layers", _names("conv", "pool5"))),
        r"layer 'pool5' is an HDF5 group, not a dataset"),
    "layers attribute is a number": (
        lambda f: f.attrs.__setitem__("layers", 5),
        r"the 'layers' attribute must list the layer names .* holds int64 5"),
    "layers attribute is numeric": (
        lambda f: f.attrs.__setitem__("layers", np.array([1.0, 2.0])),
        r"'layers' attribute must list .* shape \(2,\) \(float64\)"),
    "layers attribute is 2-D": (
        lambda f: f.attrs.__setitem__("layers", np.array([["conv", "fc"]],
                                                         dtype=h5py.string_dtype())),
        r"'layers' attribute must list .* shape \(1, 2\)"),
    "a layer of text": (
        lambda f: (f.create_dataset("txt", data=np.array(["a"] * N * 4, dtype="S1")
                                    .reshape(N, 4, 1, 1)),
                   f.attrs.__setitem__("layers", _names("conv", "txt"))),
        r"layer 'txt' holds text, not numbers"),
    "a layer of variable-length strings": (
        lambda f: (f.create_dataset("txt", data=np.array([["x"] * 3] * N, dtype=object),
                                    dtype=h5py.string_dtype()),
                   f.attrs.__setitem__("layers", _names("txt"))),
        r"layer 'txt' holds text"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_act_file_is_one_error_naming_it(act_file, case):
    change, message = MALFORMED[case]
    _edit(act_file, change)
    with pytest.raises(FileFormatError, match=message) as err:
        ActFile(act_file)
    assert str(act_file) in str(err.value)
    with pytest.raises(FileFormatError, match=message):
        Activation.load(act_file)
    # the refused file was closed: it can be opened for writing again at once
    with h5py.File(act_file, "a"):
        pass


def test_dnnbrain_layout_file_with_a_text_dataset_is_refused(act_file):
    """Without a 'layers' attribute every root dataset is a layer (DNNBrain's rule)."""
    def dnnbrain(f):
        for k in list(f.attrs):
            del f.attrs[k]
        f.create_group("notes")                              # groups are not layers
        f.create_dataset("comment", data=np.array([b"x"] * N).reshape(N, 1))
    _edit(act_file, dnnbrain)
    with pytest.raises(FileFormatError, match=r"layer 'comment' holds text"):
        ActFile(act_file)
    _edit(act_file, lambda f: f.__delitem__("comment"))
    with ActFile(act_file) as act:                           # the group is skipped
        assert act.layers == ["conv", "fc"]


def test_empty_layer_name_cannot_be_written(tmp_path):
    with pytest.raises(InputError, match="cannot be stored"):
        write_act(tmp_path / "e.act.h5", {"": np.zeros((2, 1, 1, 1))})
    assert list(tmp_path.iterdir()) == []


# -- .dmask.csv ------------------------------------------------------------------------
@pytest.mark.parametrize("index", ["99999999999999999999999", str(2 ** 63)])
def test_dmask_index_beyond_int64_is_refused(tmp_path, index):
    path = tmp_path / "m.dmask.csv"
    path.write_text(f"conv5=chn\n1,{index}\n")
    with pytest.raises(FileFormatError, match=rf"line 2: conv5 chn index {index} is too large"):
        read_dmask(path)


def test_dmask_largest_int64_index_is_read_and_range_checked_later(tmp_path):
    path = tmp_path / "m.dmask.csv"
    path.write_text(f"conv5=chn\n{2 ** 63 - 1}\n")
    assert read_dmask(path)["conv5"]["chn"] == [2 ** 63 - 1]


# -- brain images ----------------------------------------------------------------------
SHAPE = (3, 4, 5)


@pytest.fixture
def volume(tmp_path, rng):
    path = tmp_path / "bold.nii.gz"
    nib.save(nib.Nifti1Image(rng.standard_normal(SHAPE + (7,)).astype(np.float32),
                             np.eye(4)), str(path))
    return path


def test_truncated_nii_gz_is_one_error(tmp_path, volume):
    cut = tmp_path / "cut.nii.gz"
    data = volume.read_bytes()
    cut.write_bytes(data[:len(data) // 2])          # the header reads, the data end early
    with pytest.raises(FileFormatError, match=r"cut\.nii\.gz: the image data cannot be read "
                                              r"\(.*\); the file is truncated or damaged"):
        load_brain(cut)
    with pytest.raises(FileFormatError, match="truncated or damaged"):
        load_labels(cut)


@pytest.mark.parametrize("where", ["middle", "crc", "length", "trailer cut"])
def test_damaged_nii_gz_is_one_error_not_wrong_values(tmp_path, rng, where):
    """A byte changed inside the compressed data, or the gzip trailer (CRC-32 and
    length) damaged or cut: nibabel alone reads such files without an error (wrong
    values, or none missing); the stream's checksum must catch every case."""
    path = tmp_path / "big.nii.gz"
    values = rng.standard_normal((16, 16, 16, 8)).astype(np.float32)
    nib.save(nib.Nifti1Image(values, np.eye(4)), str(path))
    data = bytearray(path.read_bytes())
    if where == "trailer cut":
        data = data[:-4]
    else:
        pos = {"middle": len(data) // 2, "crc": len(data) - 6, "length": len(data) - 2}[where]
        data[pos] ^= 0xFF
    bad = tmp_path / "bad.nii.gz"
    bad.write_bytes(bytes(data))
    with pytest.raises(FileFormatError, match=r"bad\.nii\.gz: the image data cannot be read "
                                              r"\(.*\); the file is truncated or damaged"):
        load_brain(bad)
    np.testing.assert_array_equal(load_brain(path)[0], values.reshape(-1, 8).T)


def test_truncated_uncompressed_nii_is_one_error(tmp_path, volume):
    cut = tmp_path / "cut.nii"
    raw = gzip.decompress(volume.read_bytes())
    cut.write_bytes(raw[:len(raw) - 100])
    with pytest.raises(FileFormatError, match=r"cut\.nii: the image data cannot be read"):
        load_brain(cut)


def test_truncated_cifti_is_one_error(tmp_path, rng):
    axis = cifti2.BrainModelAxis.from_mask(np.ones(SHAPE, dtype=bool), affine=np.eye(4))
    header = cifti2.Cifti2Header.from_axes((cifti2.ScalarAxis(["a", "b"]), axis))
    img = cifti2.Cifti2Image(rng.standard_normal((2, len(axis))).astype(np.float32), header)
    whole = tmp_path / "x.dscalar.nii"
    img.to_filename(str(whole))
    data = whole.read_bytes()
    cut = tmp_path / "cut.dscalar.nii"
    cut.write_bytes(data[:len(data) - 40])
    with pytest.raises(FileFormatError, match=r"cut\.dscalar\.nii: the image data cannot be "
                                              r"read"):
        load_brain(cut)
