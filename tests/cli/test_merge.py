"""db_act -shard I/N then db_merge: the merged file equals one unsharded run."""
import importlib.util
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from dnnsparse.base.activation import Activation
from dnnsparse.cli import act as db_act
from dnnsparse.cli import merge as db_merge
from dnnsparse.io.act import ActFile

SMALL_NET = ("import torch.nn as nn\n"
             "def build():\n"
             "    return nn.Sequential(nn.Conv2d(3, 6, 5, stride=4), nn.ReLU(),\n"
             "                         nn.Conv2d(6, 5, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1))\n")


def _dnnbrain_reader():
    """``dnnbrain_activation_read`` of tests/io/test_act_integrity.py (DNNBrain's reader)."""
    path = Path(__file__).resolve().parents[1] / "io" / "test_act_integrity.py"
    spec = importlib.util.spec_from_file_location("_act_integrity_for_merge", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.dnnbrain_activation_read


def _run(main, *argv):
    status = main([str(a) for a in argv])
    assert status == 0
    return status


def _make_runs(root):
    from dnnsparse.base.stimulus import Stimulus

    conftest = Path(__file__).resolve().parents[1] / "conftest.py"
    spec = importlib.util.spec_from_file_location("_conftest_for_merge", conftest)
    helpers = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(helpers)
    folder = helpers.make_image_folder(root / "images")      # 3 + 2 + 4 images
    stim = root / "images.stim.csv"
    Stimulus.from_folder(folder).save(stim)
    (root / "small.py").write_text(SMALL_NET)
    base = ["-net", f"{root / 'small.py'}:build", "-weights", "random", "-stim", stim,
            "-layer", "1", "4", "-batch-size", "3", "-q"]   # batches = shards: bit-exact
    out = {}
    for agg in ("", "label"):
        extra = ["-aggregate", agg] if agg else []
        tag = agg or "img"
        out[tag, 0] = root / f"whole.{tag}.act.h5"
        _run(db_act.main, *base, *extra, "-out", out[tag, 0])
        for i in (1, 2, 3):
            out[tag, i] = root / "shards" / f"s{i}-of-3.{tag}.act.h5"
            out[tag, i].parent.mkdir(exist_ok=True)
            _run(db_act.main, *base, *extra, "-shard", f"{i}/3", "-out", out[tag, i])
    out["stim"], out["base"] = stim, base
    return out


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    return _make_runs(tmp_path_factory.mktemp("merge"))


def _assert_same_as_whole(merged, whole, *, exact=True):
    with Activation.load(merged) as m, Activation.load(whole) as w:
        assert m.layers == w.layers and m.n_stim == w.n_stim
        assert m.stim_ids.tolist() == w.stim_ids.tolist()
        for layer in w.layers:
            assert m.shape(layer) == w.shape(layer)
            assert m.layer_attrs(layer).keys() == w.layer_attrs(layer).keys()
            if exact:
                np.testing.assert_array_equal(m[layer], w[layer])
            else:
                assert m[layer].dtype == np.float64
                np.testing.assert_allclose(m[layer], w[layer], rtol=1e-12, atol=1e-12)
        for key in ("net", "weights", "weights_sha256", "pool", "aggregate", "lesion",
                    "layers"):
            assert m.attrs[key] == w.attrs[key]
        return m.attrs


@pytest.mark.parametrize("order", [(1, 2, 3), (3, 1, 2)])
def test_virtual_merge_equals_unsharded_run(run_cli, shards, tmp_path, order):
    out = shards["img", 1].parent / f"vds{''.join(map(str, order))}.act.h5"
    status, stdout, err = run_cli(db_merge.main, *[shards["img", i] for i in order],
                                  "-out", out, "-q")
    assert status == 0, err
    assert "9 stimuli from 3 shards" in stdout and "virtual" in stdout
    attrs = _assert_same_as_whole(out, shards["img", 0])
    assert attrs["merge"] == "virtual" and attrs["merged_shards"] == 3
    assert attrs["shard_files"] == [f"s{i}-of-3.img.act.h5" for i in (1, 2, 3)]
    assert "shard_index" not in attrs and attrs["stim_rows"] == 9
    with h5py.File(out) as f:
        assert all(f[l].is_virtual for l in ("1", "4"))
        assert all(not Path(s.file_name).is_absolute() for s in f["1"].virtual_sources())
        assert out.stat().st_size < 50_000                   # no rows were copied
    with h5py.File(shards["img", 1]) as f:                   # the shards keep checksums
        assert f["1"].fletcher32


def test_copy_merge_equals_unsharded_run(run_cli, shards, tmp_path):
    out = tmp_path / "copy.act.h5"
    status, stdout, err = run_cli(db_merge.main, shards["img", 2], shards["img", 3],
                                  shards["img", 1], "-out", out, "-copy", "-q")
    assert status == 0, err
    assert "standalone" in stdout
    attrs = _assert_same_as_whole(out, shards["img", 0])
    assert attrs["merge"] == "copy"
    with h5py.File(out) as f:
        assert not f["1"].is_virtual and f["1"].fletcher32 and f["1"].compression == "lzf"
    # standalone: the shards may go
    moved = tmp_path / "elsewhere.act.h5"
    shutil.copy(out, moved)
    _assert_same_as_whole(moved, shards["img", 0])


def test_per_category_means_merged_from_counts(run_cli, shards, tmp_path):
    out = tmp_path / "means.act.h5"
    status, stdout, err = run_cli(db_merge.main, shards["label", 3], shards["label", 1],
                                  shards["label", 2], "-out", out, "-q")
    assert status == 0, err
    assert "3 categories" in stdout and "always a copy" in stdout
    _assert_same_as_whole(out, shards["label", 0], exact=False)
    with Activation.load(out) as m, Activation.load(shards["label", 0]) as w:
        np.testing.assert_array_equal(m.category_labels, w.category_labels)
        np.testing.assert_array_equal(m.category_counts, w.category_counts)
        assert m.category_counts.tolist() == [3, 2, 4]
    # independent check: the mean over each category's rows of the per-image run
    with Activation.load(shards["img", 0]) as img, Activation.load(out) as m:
        labels = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2])
        for layer in img.layers:
            x = img[layer].astype(np.float64)
            slow = np.stack([x[labels == c].mean(axis=0) for c in range(3)])
            np.testing.assert_allclose(m[layer], slow, rtol=1e-6, atol=1e-9)
        # averaging the shards' means would be wrong: shard 2 holds 2 dogs and 1 owl
        with ActFile(shards["label", 2]) as s2, ActFile(shards["label", 3]) as s3:
            naive = (s2.read("4")[1] + s3.read("4")[0]) / 2          # owl in both
        assert not np.allclose(naive, m["4"][2], rtol=1e-6)


def test_vds_read_by_dnnbrain_reader_from_another_folder(run_cli, shards, tmp_path,
                                                         monkeypatch):
    folder = tmp_path / "moved"
    shutil.copytree(shards["img", 1].parent, folder)         # shards and merged, together
    out = folder / "all.act.h5"
    assert run_cli(db_merge.main, *sorted(folder.glob("s*-of-3.img.act.h5")), "-out", out,
                   "-q")[0] == 0
    monkeypatch.chdir(tmp_path)                               # relative names: from the file
    read = _dnnbrain_reader()
    act = read(str(out))
    assert list(act) == ["1", "4"]                            # only layers at the root
    with Activation.load(shards["img", 0]) as whole:
        for layer in ("1", "4"):
            np.testing.assert_array_equal(act[layer], whole[layer])
        masked = read(str(out), {"1": {"chn": [2, 5], "col": [3]}})
        np.testing.assert_array_equal(masked["1"], whole["1"][:, [1, 4]][..., [2]])
    with h5py.File(out) as f:                                 # stimID etc. are attributes
        ids = [s.decode() for s in f.attrs["stimID"]]
    with Activation.load(shards["img", 0]) as whole:
        assert ids == whole.stim_ids.tolist()


def test_vds_with_a_missing_shard_is_refused(run_cli, cli_error, shards, tmp_path):
    folder = tmp_path / "kept"
    folder.mkdir()
    for i in (1, 2, 3):
        shutil.copy(shards["img", i], folder)
    out = folder / "all.act.h5"
    assert run_cli(db_merge.main, *sorted(folder.glob("s*")), "-out", out, "-q")[0] == 0
    (folder / "s2-of-3.img.act.h5").unlink()
    with h5py.File(out) as f:                                 # what HDF5 alone would give
        assert np.isnan(f["4"][3:6]).all() and not np.isnan(f["4"][:3]).any()
    from dnnsparse.errors import FileFormatError
    with pytest.raises(FileFormatError, match=r"s2-of-3\.img\.act\.h5 is missing.*-copy"):
        Activation.load(out)


def test_mismatched_shards_refused(cli_error, shards, tmp_path):
    root = shards["img", 1].parent
    other = tmp_path / "seed1.act.h5"                          # different weights
    _run(db_act.main, *shards["base"], "-weights-seed", "1", "-shard", "2/3", "-out", other)
    out = tmp_path / "x.act.h5"
    msg = cli_error(db_merge.main, shards["img", 1], other, shards["img", 3], "-out", out)
    assert "s1-of-3.img.act.h5" in msg and "seed1.act.h5" in msg
    assert "attribute 'weights" in msg          # 'weights' or 'weights_sha256'
    # a layer fewer
    fewer = tmp_path / "fewer.act.h5"
    _run(db_act.main, *[a for a in shards["base"] if a != "4"], "-shard", "2/3", "-out",
         fewer)
    msg = cli_error(db_merge.main, shards["img", 1], fewer, shards["img", 3], "-out", out)
    assert "'layers'" in msg and "fewer.act.h5" in msg
    # per image and per category
    msg = cli_error(db_merge.main, shards["img", 1], shards["label", 2], shards["img", 3],
                    "-out", out)
    assert "'aggregate'" in msg
    # another stimulus table: one image fewer
    from dnnsparse.base.stimulus import Stimulus
    stim = Stimulus.load(shards["stim"])
    stim[:8].save(tmp_path / "eight.stim.csv")
    args = list(shards["base"])
    args[args.index("-stim") + 1] = tmp_path / "eight.stim.csv"
    eight = tmp_path / "eight.act.h5"
    _run(db_act.main, *args, "-shard", "3/3", "-out", eight)
    msg = cli_error(db_merge.main, shards["img", 1], shards["img", 2], eight, "-out", out)
    assert "eight.act.h5" in msg and ("'stim_rows'" in msg or "'stim_sha256'" in msg)
    # missing and duplicate shards
    msg = cli_error(db_merge.main, shards["img", 3], shards["img", 1], "-out", out)
    assert "shard(s) 2 of 3 are missing" in msg
    dup = tmp_path / "dup.act.h5"
    shutil.copy(shards["img", 2], dup)
    msg = cli_error(db_merge.main, shards["img", 1], shards["img", 2], dup, shards["img", 3],
                    "-out", out)
    assert "s2-of-3.img.act.h5 and" in msg and "dup.act.h5" in msg and "both shard 2/3" in msg
    msg = cli_error(db_merge.main, shards["img", 1], shards["img", 1], "-out", out)
    assert "same file" in msg
    # an unsharded file
    msg = cli_error(db_merge.main, shards["img", 0], shards["img", 1], "-out", out)
    assert "whole.img.act.h5 is not a db_act -shard output" in msg
    # the output is one of the shards, or exists
    msg = cli_error(db_merge.main, *[shards["img", i] for i in (1, 2, 3)], "-out",
                    shards["img", 2])
    assert "exists" in msg or "one of the shards" in msg
    assert not out.exists() and not list(tmp_path.glob(".partial-*"))
    assert sorted(p.name for p in root.glob("s*-of-3.img.act.h5")) == \
        [f"s{i}-of-3.img.act.h5" for i in (1, 2, 3)]


def test_existing_output_needs_force(run_cli, cli_error, shards, tmp_path):
    out = tmp_path / "all.act.h5"
    out.write_text("keep me")
    msg = cli_error(db_merge.main, *[shards["img", i] for i in (1, 2, 3)], "-out", out)
    assert "--force" in msg and out.read_text() == "keep me"
    status, _, err = run_cli(db_merge.main, *[shards["img", i] for i in (1, 2, 3)], "-out",
                             out, "-copy", "-force", "-q")
    assert status == 0, err
    _assert_same_as_whole(out, shards["img", 0])


def test_help_has_example(capsys):
    assert db_merge.main(["--help"]) == 0
    assert "example: db_merge" in capsys.readouterr().out


def test_row_timing_is_concatenated(run_cli, shards, tmp_path):
    """Rows with onsets (movie frames, timed tables): the merged file has all of them."""
    from dnnsparse.base.stimulus import Stimulus

    stim = Stimulus.load(shards["stim"])
    n = len(stim)
    onsets, durations = 1.5 * np.arange(n) + 0.25, np.full(n, 0.75)
    timed = shards["stim"].parent / "timed.stim.csv"      # path= is relative to the table
    _with_columns(shards["stim"], timed, {"onset": onsets, "duration": durations})
    assert len(Stimulus.load(timed)) == n
    base = [a if a != shards["stim"] else timed for a in shards["base"]]
    parts = []
    for i in (1, 2, 3):
        parts.append(tmp_path / f"t{i}-of-3.act.h5")
        _run(db_act.main, *base, "-shard", f"{i}/3", "-out", parts[-1])
    with ActFile(parts[1]) as f:                          # a shard holds its own rows' times
        lo, hi = (int(x) for x in np.ravel(f.attrs["shard_rows"])[:2])
        np.testing.assert_array_equal(f.attrs["onset"], onsets[lo:hi])
    for extra in ([], ["-copy"]):
        out = tmp_path / f"timed{len(extra)}.act.h5"
        status, _, err = run_cli(db_merge.main, *parts[::-1], "-out", out, *extra, "-q")
        assert status == 0, err
        with ActFile(out) as f:
            np.testing.assert_array_equal(f.attrs["onset"], onsets)
            np.testing.assert_array_equal(f.attrs["duration"], durations)


def _with_columns(src, dst, columns):
    """Copy the stimulus table ``src`` to ``dst`` with extra numeric columns."""
    lines = Path(src).read_text().splitlines()
    head = [i for i, line in enumerate(lines) if not line.startswith(("type=", "path="))][0]
    out = lines[:head] + [lines[head] + "," + ",".join(columns)]
    for k, line in enumerate(lines[head + 1:]):
        out.append(line + "," + ",".join(repr(float(v[k])) for v in columns.values()))
    Path(dst).write_text("\n".join(out) + "\n")
