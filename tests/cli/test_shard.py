"""db_act -shard I/N: the rows of numpy.array_split, the provenance, and bad -shard values."""
from functools import partial

import numpy as np
import pytest

from dnnsparse.base.activation import Activation
from dnnsparse.base.stimulus import Stimulus
from dnnsparse.cli import act as db_act
from dnnsparse.pipelines import parse_shard, shard_rows, shard_stimuli, stimulus_digest

SMALL_NET = ("import torch.nn as nn\n"
             "def build():\n"
             "    return nn.Sequential(nn.Conv2d(3, 4, 5, stride=4), nn.ReLU(),\n"
             "                         nn.AdaptiveAvgPool2d(1))\n")


@pytest.fixture
def base(image_stim, tmp_path):
    (tmp_path / "small.py").write_text(SMALL_NET)
    return ["-net", f"{tmp_path / 'small.py'}:build", "-weights", "random", "-stim",
            image_stim, "-layer", "1", "2", "-q"]


@pytest.mark.parametrize("n", [1, 2, 7, 9, 10, 101])
def test_shard_rows_are_those_of_array_split(n):
    for count in range(1, n + 1):
        parts = np.array_split(np.arange(n), count)
        got = [shard_rows(n, i, count) for i in range(1, count + 1)]
        assert got == [(int(p[0]), int(p[-1]) + 1) for p in parts]


def test_shard_file_records_where_it_belongs(run_cli, base, image_stim, tmp_path):
    whole = tmp_path / "whole.act.h5"
    assert run_cli(db_act.main, *base, "-out", whole, "-batch-size", "4")[0] == 0
    stim = Stimulus.load(image_stim)
    for i, (start, stop) in zip((1, 2), [(0, 5), (5, 9)]):    # 9 rows: 5 + 4
        out = tmp_path / f"s{i}.act.h5"
        status, stdout, err = run_cli(db_act.main, *base, "-shard", f"{i}/2", "-out", out,
                                      "-batch-size", "4")
        assert status == 0, err
        with Activation.load(out) as act, Activation.load(whole) as w:
            assert act.n_stim == stop - start
            assert act.stim_ids.tolist() == stim.ids[start:stop].tolist()
            assert act.attrs["shard_index"] == i and act.attrs["shard_count"] == 2
            assert act.attrs["shard_rows"].tolist() == [start, stop]
            assert act.attrs["stim_rows"] == 9
            assert act.attrs["stim_sha256"] == stimulus_digest(stim)
            assert act.attrs["net"] == w.attrs["net"]
            assert act.attrs["weights_sha256"] == w.attrs["weights_sha256"]
            np.testing.assert_allclose(act["1"], w["1"][start:stop], rtol=1e-5, atol=1e-6)
        assert "shard_index" not in Activation.load(whole, lazy=False).attrs


def test_only_the_shards_images_are_needed(run_cli, base, image_stim, tmp_path):
    stim = Stimulus.load(image_stim)
    stim.paths[-1].unlink()                                     # an image of shard 3/3
    assert run_cli(db_act.main, *base, "-shard", "1/3", "-out", tmp_path / "a.act.h5")[0] == 0
    status, _, err = run_cli(db_act.main, *base, "-shard", "3/3", "-out", tmp_path / "c.act.h5")
    assert status == 2 and "missing" in err and not (tmp_path / "c.act.h5").exists()


def test_digest_is_of_the_content():
    a = Stimulus(["x/1.png", "x/2.png"], root="here", columns={"label": [0, 1]})
    same = Stimulus(["x/1.png", "x/2.png"], root="elsewhere", columns={"label": [0, 1]})
    relabelled = Stimulus(["x/1.png", "x/2.png"], root="here", columns={"label": [1, 1]})
    reordered = Stimulus(["x/2.png", "x/1.png"], root="here", columns={"label": [1, 0]})
    assert stimulus_digest(a) == stimulus_digest(same)
    assert len({stimulus_digest(s) for s in (a, relabelled, reordered)}) == 3
    sub, attrs = shard_stimuli(a, (2, 2))
    assert sub.ids.tolist() == ["x/2.png"] and attrs["stim_sha256"] == stimulus_digest(a)


@pytest.mark.parametrize("spec, words", [
    ("0/3", "counts from 1 to N=3"), ("4/3", "counts from 1 to N=3"),
    ("3/0", "at least 1"), ("a/b", "write I/N"), ("2", "write I/N"), ("1/3/4", "write I/N"),
    ("-1/3", "write I/N"), ("1.5/3", "write I/N"), ("2/10", "only 9 rows; use at most 9"),
])
def test_bad_shard_is_one_line_and_nothing_written(cli_error, base, tmp_path, spec, words):
    out = tmp_path / "x.act.h5"
    msg = cli_error(db_act.main, *base, f"--shard={spec}", "-out", out)   # "=": "-1/3" too
    assert words in msg and "-shard" in msg
    assert not out.exists() and not [p for p in tmp_path.iterdir() if ".act.h5" in p.name]


def test_parse_shard():
    assert parse_shard(" 3 / 8 ") == (3, 8) and parse_shard("1/1") == (1, 1)
