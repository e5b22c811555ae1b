"""Stimulus tables are lined up with activation files by stimulus ID, never silently by
position: a reordered table gives the same results as the original, a table of other
stimuli is refused naming the first differing row (issue 11, item 2)."""
import logging

import numpy as np
import pytest

from dnnsparse.base import Activation, Stimulus
from dnnsparse.cli import decode, probe, psi, rsa
from dnnsparse.errors import InputError
from dnnsparse.io.rdm import read_rdm_file
from dnnsparse.io.table import read_table
from dnnsparse.pipelines import activation_order, align_stimuli


def _act(ids):
    return Activation({"conv": np.arange(len(ids) * 2.0).reshape(len(ids), 2)},
                      stim_ids=ids)


def test_align_reorders_the_table_to_the_file():
    stim = Stimulus(["c", "a", "b"], columns={"label": [2, 0, 1]})
    out = align_stimuli(stim, _act(["a", "b", "c"]))
    assert out.ids.tolist() == ["a", "b", "c"]
    assert out.labels.tolist() == [0, 1, 2]
    same = Stimulus(["a", "b", "c"], columns={"label": [0, 1, 2]})
    assert align_stimuli(same, _act(["a", "b", "c"])) is same


def test_activation_order_is_the_inverse_direction():
    act, ids = _act(["a", "b", "c", "d"]), np.array(["d", "b", "a", "c"])
    order = activation_order(act, ids)
    assert np.asarray(act.stim_ids)[order].tolist() == ids.tolist()
    assert activation_order(act, ["a", "b", "c", "d"]) is None


@pytest.mark.parametrize("ids, row", [(["a", "b", "x"], 3), (["a", "a", "b"], 2)])
def test_other_or_repeated_stimuli_are_refused_naming_the_row(ids, row):
    stim = Stimulus(ids, columns={"label": [0, 1, 2]})
    with pytest.raises(InputError, match=f"row {row} is"):
        align_stimuli(stim, _act(["a", "b", "c"]), stim_path="t.stim.csv")
    with pytest.raises(InputError, match=f"row {row} is"):
        activation_order(_act(["a", "b", "c"]), ids)


def test_a_file_without_ids_is_matched_by_position_with_a_warning(caplog):
    act = Activation({"conv": np.zeros((3, 2))})
    stim = Stimulus(["c", "a", "b"], columns={"label": [2, 0, 1]})
    with caplog.at_level(logging.WARNING):
        assert align_stimuli(stim, act) is stim
    assert "by position" in caplog.text


@pytest.fixture
def files(tmp_path, rng):
    """30 stimuli of 3 categories, an .act.h5 with their IDs, the table as extracted and
    the same table with its rows reversed."""
    labels = rng.permutation(np.repeat([0, 1, 2], 10))
    centres = rng.standard_normal((3, 6))
    conv = (centres[labels] + rng.standard_normal((30, 6))).astype(np.float32)
    ids = [f"s{i:02d}.png" for i in range(30)]
    rt = rng.standard_normal(30)
    runs = np.tile([1, 2, 3], 10)
    Activation({"conv": np.abs(conv)}, stim_ids=ids).save(tmp_path / "x.act.h5")
    columns = {"label": labels, "rt": rt, "run": runs}
    Stimulus(ids, columns=columns).save(tmp_path / "x.stim.csv")
    Stimulus(ids[::-1], columns={k: v[::-1] for k, v in columns.items()}).save(
        tmp_path / "rev.stim.csv")
    other = list(ids)
    other[4] = "elsewhere.png"
    Stimulus(other, columns=columns).save(tmp_path / "other.stim.csv")
    return tmp_path


def _tables_equal(a, b):
    ta, tb = read_table(a), read_table(b)
    assert list(ta) == list(tb)
    for k in ta:
        np.testing.assert_array_equal(ta[k], tb[k])


def test_probe_psi_decode_rsa_equal_with_a_reversed_table(run_cli, files):
    t = files
    for table, tag in (("x", "a"), ("rev", "b")):
        stim = t / f"{table}.stim.csv"
        assert run_cli(probe.main, "-act", t / "x.act.h5", "-stim", stim, "-layer", "conv",
                       "-out", t / f"acc_{tag}.csv", "-q")[0] == 0
        assert run_cli(psi.main, "-act", t / "x.act.h5", "-stim", stim, "-no-figures",
                       "-out", t / f"psi_{tag}", "-q")[0] == 0
        assert run_cli(rsa.main, "-act", t / "x.act.h5", "-stim", stim, "-cate",
                       "-out", t / f"rsa_{tag}", "-q")[0] == 0
        status, _, err = run_cli(decode.main, "-act", t / "x.act.h5", "-stim", stim,
                                 "-target", "rt", "-model", "ridge", "-groups", "run",
                                 "-cv", 3, "-out", t / f"dec_{tag}", "-q")
        assert status == 0, err
    _tables_equal(t / "acc_a.csv", t / "acc_b.csv")
    _tables_equal(t / "psi_a/psi.csv", t / "psi_b/psi.csv")
    _, rdm_a, _ = read_rdm_file(t / "rsa_a/dnn.rdm.h5")
    _, rdm_b, _ = read_rdm_file(t / "rsa_b/dnn.rdm.h5")
    np.testing.assert_array_equal(rdm_a["conv"], rdm_b["conv"])
    summary = sorted(p.name for p in (t / "dec_a").iterdir() if p.suffix == ".csv")
    assert summary
    scores_a = read_table(t / "dec_a" / summary[0])
    scores_b = read_table(t / "dec_b" / summary[0])
    for k in scores_a:
        a, b = np.asarray(scores_a[k]), np.asarray(scores_b[k])
        if a.dtype.kind in "fc":
            np.testing.assert_allclose(a, b, rtol=1e-5, err_msg=k)   # float32 sums
        else:
            np.testing.assert_array_equal(a, b, err_msg=k)


def test_reordered_table_refused_where_brain_rows_follow_it(cli_error, files):
    t = files
    msg = cli_error(rsa.main, "-act", t / "x.act.h5", "-stim", t / "rev.stim.csv",
                    "-out", t / "r")
    assert "another order" in msg and "-cate" in msg
    assert not (t / "r").exists()


@pytest.mark.parametrize("command", ["probe", "psi", "decode"])
def test_a_table_of_other_stimuli_is_refused(cli_error, files, command):
    t = files
    args = {"probe": (probe.main, "-layer", "conv", "-out", t / "o.csv"),
            "psi": (psi.main, "-out", t / "o"),
            "decode": (decode.main, "-target", "rt", "-model", "ridge", "-out", t / "o")}
    main, *rest = args[command]
    msg = cli_error(main, "-act", t / "x.act.h5", "-stim", t / "other.stim.csv", *rest)
    assert "row 5 is 's04.png'" in msg and "elsewhere.png" in msg
    assert not (t / "o").exists() and not (t / "o.csv").exists()
