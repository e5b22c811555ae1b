""".act.h5 integrity: checksummed chunks, DNNBrain's own reader sees only layers,
files of the earlier layout still read, batches assembled into exact chunks."""
import h5py
import numpy as np
import pytest

from dnnsparse.errors import FileFormatError, InputError
from dnnsparse.io.act import ActFile, ActWriter, read_act, write_act
from dnnsparse.io.rdm import read_rdm_file, write_rdm_file
from dnnsparse.io.roi import read_roi_file, write_roi_file


def flip_bytes_in_chunk(path, dataset, n_bytes=64):
    """Invert ``n_bytes`` in the middle of the first stored chunk of ``dataset``."""
    with h5py.File(path, "r") as f:
        info = f[dataset].id.get_chunk_info(0)       # where HDF5 put the chunk's bytes
    assert info.size > 2 * n_bytes
    raw = bytearray(path.read_bytes())
    start = info.byte_offset + info.size // 2 - n_bytes // 2
    raw[start:start + n_bytes] = bytes(b ^ 0xFF for b in raw[start:start + n_bytes])
    path.write_bytes(bytes(raw))


@pytest.mark.parametrize("compression", ["lzf", "gzip", "none"])
def test_corrupted_chunk_is_an_error_naming_file_and_layer(tmp_path, rng, compression):
    data = {"conv5": rng.random((40, 8, 6, 6)).astype(np.float32),
            "fc1": rng.random((40, 16, 1, 1)).astype(np.float32)}
    path = write_act(tmp_path / "a.act.h5", data, compression=compression)
    with h5py.File(path) as f:
        assert f["conv5"].fletcher32 and f["fc1"].fletcher32
    flip_bytes_in_chunk(path, "conv5")
    with ActFile(path) as af:
        with pytest.raises(FileFormatError) as info:
            af.read("conv5")
        message = str(info.value)
        assert message.startswith(f"{path}: layer 'conv5' is corrupted (its Fletcher-32 "
                                  f"checksum does not match)")
        assert "\n" not in message
        np.testing.assert_array_equal(af.read("fc1"), data["fc1"])   # the rest still reads
    with ActFile(path) as af, pytest.raises(FileFormatError, match="'conv5' is corrupted"):
        af.read("conv5", stim=[3, 1])


def test_checksum_can_be_switched_off(tmp_path, rng):
    path = write_act(tmp_path / "a.act.h5", {"c": rng.random((4, 2, 1, 1))}, checksum=False)
    with h5py.File(path) as f:
        assert not f["c"].fletcher32


def test_checksummed_rdm_and_roi_files(tmp_path, rng):
    rdm = tmp_path / "a.rdm.h5"
    write_rdm_file(rdm, "dRDM", {"conv5": rng.random((3, 4950)), "fc1": rng.random(4950)})
    with h5py.File(rdm) as f:
        assert f["conv5"].fletcher32 and f["fc1"].fletcher32
        np.testing.assert_array_equal(f["fc1"][()].shape, (1, 4950))    # plain h5py reads it
    flip_bytes_in_chunk(rdm, "conv5")
    with pytest.raises(FileFormatError, match=r"a\.rdm\.h5: RDM 'conv5' is corrupted"):
        read_rdm_file(rdm)

    roi = tmp_path / "a.roi.h5"
    signals = rng.random((2000, 3))
    write_roi_file(roi, ["V1", "V2", "FFA"], signals)
    with h5py.File(roi) as f:                       # DNNBrain's RoiFile.read: plain h5py
        assert f["data"].fletcher32
        np.testing.assert_array_equal(f["data"][:], signals)
    assert read_roi_file(roi, rois=["FFA"])[1].shape == (2000, 1)
    flip_bytes_in_chunk(roi, "data")
    with pytest.raises(FileFormatError, match=r"a\.roi\.h5: dataset 'data' is corrupted"):
        read_roi_file(roi)
    empty = write_roi_file(tmp_path / "e.roi.h5", ["V1"], np.zeros((0, 1)))
    assert read_roi_file(empty)[1].shape == (0, 1)


# ----------------------------------------------------------------------------
# DNNBrain's reader
# ----------------------------------------------------------------------------
def dnnbrain_activation_read(fname, dmask=None):
    """What DNNBrain's ``ActivationFile.read`` (dnnbrain/io/fileio.py) does, re-typed.

    Without a mask, every key of the file's root is taken as a layer; each
    entry is indexed with the mask's 1-based chn/row/col and turned into an array.
    """
    with h5py.File(fname, "r") as rf:
        if dmask is None:
            dmask = {layer: {} for layer in rf.keys()}
        activation = {}
        for layer, axes in dmask.items():
            ds = rf[layer]
            for axis, name in ((1, "chn"), (2, "row"), (3, "col")):
                if axes.get(name) is not None:
                    index = [slice(None)] * 4
                    index[axis] = [i - 1 for i in axes[name]]
                    ds = ds[tuple(index)]
            activation[layer] = np.asarray(ds)
    return activation


def test_dnnbrain_reader_sees_only_layers(tmp_path, rng):
    data = {"conv5_relu": rng.random((6, 4, 3, 3)).astype(np.float32),
            "fc1_relu": rng.random((6, 10, 1, 1)).astype(np.float32)}
    path = write_act(tmp_path / "x.act.h5", data, stim_ids=[f"s{i}.png" for i in range(6)],
                     attrs={"net": "alexnet"})
    act = dnnbrain_activation_read(str(path))
    assert list(act) == ["conv5_relu", "fc1_relu"]                 # no stimID "layer"
    for layer, values in data.items():
        np.testing.assert_array_equal(act[layer], values)
    masked = dnnbrain_activation_read(str(path), {"conv5_relu": {"chn": [2, 4], "col": [1]}})
    np.testing.assert_array_equal(masked["conv5_relu"], data["conv5_relu"][:, [1, 3]][..., [0]])
    with ActFile(path) as af:                                       # and ours reads it all
        assert af.layers == ["conv5_relu", "fc1_relu"]
        assert af.stim_ids.tolist() == [f"s{i}.png" for i in range(6)]
        assert "stimID" not in af.attrs and af.attrs["net"] == "alexnet"


def test_per_category_file_has_only_layers_for_dnnbrain(tmp_path, rng):
    means = rng.random((3, 5, 1, 1))
    path = write_act(tmp_path / "c.act.h5", {"fc1": means}, stim_ids=["0", "1", "2"],
                     attrs={"aggregate": "label"},
                     meta={"label": np.array([0, 1, 2]), "count": np.array([4, 4, 2])})
    assert list(dnnbrain_activation_read(str(path))) == ["fc1"]
    with ActFile(path) as af:
        assert af.meta("label").tolist() == [0, 1, 2] and af.meta("count").tolist() == [4, 4, 2]
        assert af.meta("label").dtype.kind == "i"
    named = write_act(tmp_path / "n.act.h5", {"fc1": means[:2]}, stim_ids=["cat", "dog"],
                      meta={"label": np.array(["cat", "dög"]), "count": [1, 1]})
    with ActFile(named) as af:
        assert af.meta("label").tolist() == ["cat", "dög"]


def test_many_stimulus_ids_fit(tmp_path):
    # 50,000 ImageNet-style names: far beyond HDF5's 64 kB compact attribute limit
    ids = [f"n{i % 1000:08d}/ILSVRC2012_val_{i:08d}.JPEG" for i in range(50_000)]
    path = write_act(tmp_path / "big.act.h5", {"fc": np.zeros((50_000, 2, 1, 1), np.float32)},
                     stim_ids=ids)
    with ActFile(path) as af:
        assert af.stim_ids.tolist() == ids
    assert list(dnnbrain_activation_read(str(path))) == ["fc"]


def test_files_of_the_earlier_layout_still_read(tmp_path, rng):
    # dnnsparse 0.1: stimID/label/count as root datasets beside the layers
    path = tmp_path / "old.act.h5"
    fc1 = rng.random((3, 5, 1, 1))
    with h5py.File(path, "w") as f:
        f.create_dataset("fc1", data=fc1)
        f.create_dataset("stimID", data=np.array(["a", "b", "c"], dtype=h5py.string_dtype()))
        f.create_dataset("label", data=np.array([7, 8, 9]))
        f.create_dataset("count", data=np.array([1, 2, 3]))
        f.attrs["layers"] = np.array(["fc1"], dtype=h5py.string_dtype())
        f.attrs["net"] = "alexnet"
    with ActFile(path) as af:
        assert af.layers == ["fc1"] and af.stim_ids.tolist() == ["a", "b", "c"]
        assert af.meta("label").tolist() == [7, 8, 9] and af.meta("count").tolist() == [1, 2, 3]
        np.testing.assert_array_equal(af.read("fc1"), fc1)
    without_layers_attr = tmp_path / "old2.act.h5"
    with h5py.File(without_layers_attr, "w") as f:
        f.create_dataset("fc1", data=fc1)
        f.create_dataset("stimID", data=np.array(["a", "b", "c"], dtype=h5py.string_dtype()))
    with ActFile(without_layers_attr) as af:
        assert af.layers == ["fc1"] and af.stim_ids.tolist() == ["a", "b", "c"]


def test_reserved_names_and_inconsistent_ids(tmp_path):
    with pytest.raises(InputError, match="reserved"):
        write_act(tmp_path / "r.act.h5", {"a": np.zeros((2, 1, 1, 1))}, attrs={"stimID": "x"})
    path = write_act(tmp_path / "i.act.h5", {"a": np.zeros((2, 1, 1, 1))}, stim_ids=["x", "y"])
    with h5py.File(path, "a") as f:
        f.attrs["stimID"] = np.array([b"x"])
    with ActFile(path) as af, pytest.raises(FileFormatError, match="1 stimulus IDs for 2"):
        af.stim_ids


# ----------------------------------------------------------------------------
# Batches into whole chunks (the writer has no HDF5 chunk cache)
# ----------------------------------------------------------------------------
@pytest.mark.parametrize("batch, batch_rows", [(7, None), (5, 5), (64, 64), (1, None)])
def test_batches_of_any_size_give_exact_data(tmp_path, rng, batch, batch_rows):
    n = 203
    full = {"small": rng.random((n, 3, 2, 2)).astype(np.float32),     # many rows per chunk
            "fc": rng.random((n, 1000, 1, 1)).astype(np.float32)}
    path = tmp_path / "s.act.h5"
    with ActWriter(path, {k: v.shape[1:] for k, v in full.items()}, n,
                   batch_rows=batch_rows) as w:
        for start in range(0, n, batch):
            for k, v in full.items():
                w.write(k, start, v[start:start + batch])
    back = read_act(path)
    for k, v in full.items():
        np.testing.assert_array_equal(back[k], v)
    with h5py.File(path) as f:
        assert f["small"].chunks[0] > batch                       # chunks span batches


def test_maps_larger_than_a_chunk(tmp_path, rng):
    n = 5
    wide = rng.random((n, 600, 30, 30)).astype(np.float32)         # 2.2 MB per stimulus
    path = tmp_path / "w.act.h5"
    with ActWriter(path, {"wide": wide.shape[1:]}, n, batch_rows=2) as w:
        for start in range(0, n, 2):
            w.write("wide", start, wide[start:start + 2])
    with h5py.File(path) as f:
        assert f["wide"].chunks[0] == 1 and f["wide"].chunks[1] < 600     # channels split
    np.testing.assert_array_equal(read_act(path)["wide"], wide)


def test_rows_written_out_of_order_and_rewritten(tmp_path, rng):
    n = 50
    full = rng.random((n, 4, 1, 1)).astype(np.float32)
    path = tmp_path / "o.act.h5"
    with ActWriter(path, {"fc": (4, 1, 1)}, n) as w:
        w.write("fc", 0, np.zeros((n, 4, 1, 1)))                  # all, then parts again
        for start in (40, 0, 20, 10, 30):
            w.write("fc", start, full[start:start + 10])
    np.testing.assert_array_equal(read_act(path)["fc"], full)


def test_rows_beyond_the_file_are_refused(tmp_path):
    with pytest.raises(InputError, match=r"rows 8:12 of 'fc' are outside its 10 stimuli"):
        with ActWriter(tmp_path / "b.act.h5", {"fc": (2, 1, 1)}, 10) as w:
            w.write("fc", 8, np.zeros((4, 2, 1, 1)))
    assert list(tmp_path.iterdir()) == []
