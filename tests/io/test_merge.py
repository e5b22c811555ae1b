"""Joining .act.h5 shards: virtual datasets, streamed copies, exact per-category means,
and every provenance difference refused (synthetic shards written with write_act)."""
import h5py
import numpy as np
import pytest

from dnnsparse.errors import FileFormatError, InputError
from dnnsparse.io import copy_act, write_virtual_act
from dnnsparse.io import _merge as io_merge
from dnnsparse.io.act import ActFile, write_act
from dnnsparse.pipelines import check_shards, merge_shards, shard_rows

N_ROWS, N_SHARDS = 11, 3
BASE_ATTRS = {"net": "alexnet", "weights": "imagenet", "weights_sha256": "ab" * 32,
              "pool": "", "preprocess": "squash", "aggregate": "", "lesion": "",
              "stim_file": "imgs.stim.csv", "stim_rows": N_ROWS, "stim_sha256": "cd" * 32,
              "shard_count": N_SHARDS}


def full_data(rng, dtype=np.float32):
    return {"conv5_relu": rng.standard_normal((N_ROWS, 3, 2, 2)).astype(dtype),
            "fc2_relu": rng.standard_normal((N_ROWS, 7)).astype(dtype)}       # a 2-D layer


def write_shards(folder, data, *, name="s{i}.act.h5", attrs=None, layer_attrs=None):
    """Shards 1..N of ``data`` as db_act -shard writes them."""
    folder.mkdir(parents=True, exist_ok=True)
    ids = [f"img{r:02d}.png" for r in range(N_ROWS)]
    paths = []
    for i in range(1, N_SHARDS + 1):
        lo, hi = shard_rows(N_ROWS, i, N_SHARDS)
        a = {**BASE_ATTRS, **(attrs or {}), "shard_index": i,
             "shard_rows": np.array([lo, hi]), "stim_file": f"node{i}/imgs.stim.csv"}
        paths.append(write_act(folder / name.format(i=i), {k: v[lo:hi] for k, v in data.items()},
                               stim_ids=ids[lo:hi], attrs=a,
                               layer_attrs=layer_attrs or {"conv5_relu": {"chn": [1, 4, 9]}}))
    return paths, ids


def test_virtual_file_maps_the_shards_rows(tmp_path, rng):
    data = full_data(rng)
    paths, ids = write_shards(tmp_path / "run", data, name="s{i}%of%3.act.h5")
    out = tmp_path / "run" / "all.act.h5"
    result = merge_shards(paths[::-1], out, show_progress=False)
    assert result.mode == "virtual" and result.n_rows == N_ROWS and result.n_shards == 3
    with ActFile(out) as f:
        assert f.layers == ["conv5_relu", "fc2_relu"] and f.stim_ids.tolist() == ids
        np.testing.assert_array_equal(f.read("conv5_relu"), data["conv5_relu"])
        np.testing.assert_array_equal(f.read("fc2_relu")[..., 0, 0], data["fc2_relu"])
        np.testing.assert_array_equal(f.read("conv5_relu", stim=[10, 0, 4]),
                                      data["conv5_relu"][[10, 0, 4]])
        assert f.layer_attrs("conv5_relu")["chn"].tolist() == [1, 4, 9]
        assert f.attrs["shard_files"] == [f"s{i}%of%3.act.h5" for i in (1, 2, 3)]
        assert f.attrs["stim_file"] == "node1/imgs.stim.csv"
    with h5py.File(out) as f:
        names = [s.file_name for s in f["fc2_relu"].virtual_sources()]
        assert names == [f"s{i}%%of%%3.act.h5" for i in (1, 2, 3)]      # '%' escaped
        assert f["fc2_relu"].shape == (N_ROWS, 7) and f["fc2_relu"].dtype == np.float32


def test_copy_streams_blocks_into_a_standalone_file(tmp_path, rng, monkeypatch):
    monkeypatch.setattr(io_merge, "_BLOCK_BYTES", 100)        # a block of 2 rows
    data = full_data(rng)
    paths, ids = write_shards(tmp_path / "run", data)
    out = tmp_path / "copy.act.h5"
    copy_act(out, paths, stim_ids=ids, attrs={"net": "alexnet"}, compression="gzip",
             show_progress=False)
    for p in paths:
        p.unlink()
    with ActFile(out) as f:
        np.testing.assert_array_equal(f.read("conv5_relu"), data["conv5_relu"])
        np.testing.assert_array_equal(f.read("fc2_relu")[..., 0, 0], data["fc2_relu"])
        assert f.stim_ids.tolist() == ids
    with h5py.File(out) as f:
        assert f["conv5_relu"].fletcher32 and f["conv5_relu"].compression == "gzip"


def test_virtual_file_refused_when_a_shard_changed(tmp_path, rng):
    data = full_data(rng)
    paths, ids = write_shards(tmp_path / "run", data)
    out = tmp_path / "run" / "all.act.h5"
    write_virtual_act(out, [(p, n) for p, n in zip(paths, (4, 4, 3))],
                      layers={"conv5_relu": ((3, 2, 2), np.float32)}, stim_ids=ids)
    with ActFile(out) as f:
        assert f.n_stim == N_ROWS
    write_act(paths[2], {"conv5_relu": np.zeros((2, 3, 2, 2), np.float32)}, force=True)
    with pytest.raises(FileFormatError, match=r"s3\.act\.h5 holds 'conv5_relu' with shape "
                                              r"\(2, 3, 2, 2\), not \(3, 3, 2, 2\)"):
        ActFile(out)
    write_act(paths[2], {"fc": np.zeros((3, 1))}, force=True)
    with pytest.raises(FileFormatError, match="has no dataset 'conv5_relu'"):
        ActFile(out)
    paths[2].write_text("not hdf5")
    with pytest.raises(FileFormatError, match="is not an HDF5 file"):
        ActFile(out)
    with pytest.raises(InputError, match="4 stimulus IDs for 11 rows"):
        write_virtual_act(tmp_path / "x.act.h5", [(p, n) for p, n in zip(paths, (4, 4, 3))],
                          layers={}, stim_ids=ids[:4])


@pytest.mark.parametrize("layout", [
    [{5: 3, 7: 1}, {7: 2, 9: 2}],          # category 7 in both shards
    [{7: 4}, {7: 1, 9: 3}],                # unequal counts of one category
    [{5: 1, 7: 1, 9: 1}, {9: 3}],
])
def test_per_category_means_equal_the_mean_over_all_rows(tmp_path, rng, layout):
    # each shard: {label: rows}; values over six orders of magnitude
    rows = {5: [], 7: [], 9: []}
    n_stim = sum(sum(s.values()) for s in layout)
    paths = []
    for i, shard in enumerate(layout, start=1):
        lo, hi = shard_rows(n_stim, i, len(layout))
        assert hi - lo == sum(shard.values())               # the layout is an array_split
        means = []
        for lab, c in shard.items():
            x = rng.standard_normal((c, 4, 3, 2)) * 10 ** rng.uniform(-3, 3)
            rows[lab].append(x)
            means.append(x.mean(axis=0))
        attrs = {**BASE_ATTRS, "aggregate": "label", "shard_count": len(layout),
                 "stim_rows": n_stim, "shard_index": i, "shard_rows": np.array([lo, hi])}
        paths.append(write_act(tmp_path / f"m{i}.act.h5", {"conv": np.stack(means)},
                               stim_ids=[str(l) for l in shard], attrs=attrs,
                               meta={"label": np.array(list(shard)),
                                     "count": np.array(list(shard.values()))}))
    out = tmp_path / "means.act.h5"
    result = merge_shards(paths[::-1], out, show_progress=False)
    assert result.aggregated and result.mode == "copy"
    present = sorted(l for l in rows if rows[l])
    with ActFile(out) as f:
        assert f.meta("label").tolist() == present
        assert f.stim_ids.tolist() == [str(l) for l in present]
        assert f.meta("count").tolist() == [sum(len(x) for x in rows[l]) for l in present]
        got = f.read("conv")
    assert got.dtype == np.float64
    slow = np.stack([np.concatenate(rows[l]).mean(axis=0) for l in present])
    np.testing.assert_allclose(got, slow, rtol=1e-12, atol=0)


def _refusal(tmp_path, rng, change, *, layer_attrs=None, bad_data=None):
    """Shards of which shard 2 differs by ``change`` (attributes, masks or data)."""
    data = full_data(rng)
    good, _ = write_shards(tmp_path / "good", data)
    bad, _ = write_shards(tmp_path / "bad", bad_data or data, attrs=change,
                          layer_attrs=layer_attrs)
    return [good[0], bad[1], good[2]]


@pytest.mark.parametrize("change, words", [
    ({"net": "vgg11"}, "attribute 'net'"),
    ({"weights": "random(seed=1)"}, "attribute 'weights'"),
    ({"weights_sha256": "ef" * 32}, "attribute 'weights_sha256'"),
    ({"pool": "mean"}, "attribute 'pool'"),
    ({"lesion": "relu(seed=0)"}, "attribute 'lesion'"),
    ({"topk": "conv5_relu=0.1"}, "has the attribute 'topk'"),
    ({"ablate": "conv5:12"}, "has the attribute 'ablate'"),
    ({"stim_sha256": "00" * 32}, "attribute 'stim_sha256'"),
    ({"stim_rows": 12}, "attribute 'stim_rows'"),
    ({"shard_count": 4}, "attribute 'shard_count'"),
])
def test_provenance_differences_refused(tmp_path, rng, change, words):
    paths = _refusal(tmp_path, rng, change)
    out = tmp_path / "x.act.h5"
    with pytest.raises(InputError) as err:
        merge_shards(paths, out, show_progress=False)
    msg = str(err.value)
    assert words in msg and "good/s1.act.h5" in msg and "bad/s2.act.h5" in msg
    assert "\n" not in msg and not out.exists()


def test_masks_and_layers_must_agree(tmp_path, rng):
    paths = _refusal(tmp_path, rng, {}, layer_attrs={"conv5_relu": {"chn": [1, 4, 8]}})
    with pytest.raises(InputError, match="attribute 'chn' of layer 'conv5_relu'"):
        check_shards(paths)
    other = full_data(rng)
    other["conv5_relu"] = other["conv5_relu"][:, :2]
    paths = _refusal(tmp_path / "b", rng, {}, bad_data=other)
    with pytest.raises(InputError, match="the shape of layer 'conv5_relu'"):
        check_shards(paths)


def test_rows_must_be_those_recorded(tmp_path, rng):
    data = full_data(rng)
    paths, _ = write_shards(tmp_path / "run", data)
    with h5py.File(paths[1], "a") as f:
        f.attrs["shard_rows"] = np.array([4, 7])
    with pytest.raises(FileFormatError, match="records rows 4:7 but that shard is rows 4:8"):
        check_shards(paths)
    with h5py.File(paths[1], "a") as f:
        f.attrs["shard_index"] = 4
    with pytest.raises(FileFormatError, match="s2.act.h5 says it is shard 4 of 3"):
        check_shards(paths)
