"""-label-col: categories from another column of the stimulus table (issue 11, item 13).

The PSI authors' ImageNet and Caltech-256 tables group their images by a ``category``
column of names; with ``-label-col category`` the commands group by it exactly as by a
DNNBrain ``label`` column holding the same partition.
"""
import h5py
import numpy as np
import pytest

from dnnsparse.base.stimulus import Stimulus
from dnnsparse.cli import act as db_act
from dnnsparse.cli import probe as db_probe
from dnnsparse.io.table import read_table
from tests.conftest import make_image_folder

NET = """from torch import nn


def build():
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2),
                         nn.Flatten())
"""


@pytest.fixture
def tables(tmp_path):
    make_image_folder(tmp_path / "img", per_category=(3, 4, 3))
    stim = Stimulus.from_folder(tmp_path / "img")          # label 0, 1, 2 = cat, dog, owl
    names = np.array(["cat", "dog", "owl"])[stim.labels]
    # the authors' layout: a 'category' column of names, labels that mean nothing here
    Stimulus(stim.ids, root=stim.root, columns={"category": names}).save(
        tmp_path / "authors.stim.csv")
    Stimulus(stim.ids, root=stim.root, columns={"label": stim.labels, "condition": names}
             ).save(tmp_path / "dnnbrain.stim.csv")
    Stimulus(stim.ids, root=stim.root,
             columns={"label": np.zeros(len(stim), int), "group": stim.labels + 0.5}).save(
        tmp_path / "halves.stim.csv")
    (tmp_path / "net.py").write_text(NET)
    return tmp_path


def _act(t, table, out, *extra):
    return ["-net", f"{t / 'net.py'}:build", "-weights", "random", "-layer", "1", "-stim",
            t / table, "-workers", "0", "-out", t / out, "-q", *extra]


def test_aggregate_by_a_category_column_equals_the_label_column(run_cli, tables):
    for table, extra in (("dnnbrain.stim.csv", []),
                         ("authors.stim.csv", ["-label-col", "category"])):
        status, _, err = run_cli(db_act.main, *_act(tables, table, table + ".act.h5",
                                                    "-aggregate", "label", *extra))
        assert status == 0, err
    with h5py.File(tables / "dnnbrain.stim.csv.act.h5") as a, \
            h5py.File(tables / "authors.stim.csv.act.h5") as b:
        assert a["1"].shape[0] == 3
        np.testing.assert_array_equal(a["1"][()], b["1"][()])


def test_probe_by_a_category_column_equals_the_label_column(run_cli, tables):
    status, _, err = run_cli(db_act.main, *_act(tables, "dnnbrain.stim.csv", "a.act.h5",
                                                "-pool", "mean"))
    assert status == 0, err
    for table, extra in (("dnnbrain.stim.csv", []),
                         ("authors.stim.csv", ["-label-col", "category"])):
        status, _, err = run_cli(db_probe.main, "-act", tables / "a.act.h5", "-stim",
                                 tables / table, "-layer", "1", "-cv", "2", "-out",
                                 tables / f"{table}.csv", "-q", *extra)
        assert status == 0, err
    a = read_table(tables / "dnnbrain.stim.csv.csv")
    b = read_table(tables / "authors.stim.csv.csv")
    assert list(a) == list(b)
    for column in a:
        np.testing.assert_array_equal(a[column], b[column])
    assert sorted(np.asarray(b["category"]).tolist()) == ["cat", "dog", "owl"]


@pytest.mark.parametrize("table, col, message", [
    ("authors.stim.csv", "categry", "no column 'categry' for the categories; its columns: "
                                    "category"),
    ("halves.stim.csv", "group", "column 'group' holds 0.5 for stimulus cat/0.png"),
    ("authors.stim.csv", "label", "no column 'label'")])
def test_unusable_category_columns_are_one_line(cli_error, tables, table, col, message):
    msg = cli_error(db_act.main, *_act(tables, table, "x.act.h5", "-aggregate", "label",
                                       "-label-col", col))
    assert message in msg
    assert not (tables / "x.act.h5").exists()


def test_label_col_needs_aggregate(cli_error, tables):
    msg = cli_error(db_act.main, *_act(tables, "authors.stim.csv", "x.act.h5",
                                       "-label-col", "category"))
    assert "-aggregate label" in msg


def test_names_become_sorted_codes_and_conditions():
    stim = Stimulus(["a", "b", "c", "d"], columns={"kind": ["owl", "cat", "owl", "bat"],
                                                   "condition": ["x", "y", "z", "w"]})
    out = stim.with_label_column("kind")
    assert out.labels.tolist() == [2, 1, 2, 0]
    assert out.columns["condition"].tolist() == ["owl", "cat", "owl", "bat"]
    assert stim.with_label_column("kind").ids.tolist() == ["a", "b", "c", "d"]
    # whole numbers written as floats (DNNBrain's writer) keep their values; a condition
    # column that names them one to one is kept, another is dropped
    nums = Stimulus(["a", "b", "c"], columns={"code": [3.0, 1.0, 3.0],
                                              "condition": ["p", "q", "p"]})
    assert nums.with_label_column("code").labels.tolist() == [3, 1, 3]
    assert nums.with_label_column("code").columns["condition"].tolist() == ["p", "q", "p"]
    mixed = Stimulus(["a", "b", "c"], columns={"code": [3.0, 1.0, 3.0],
                                               "condition": ["p", "q", "r"]})
    assert "condition" not in mixed.with_label_column("code").columns


def test_rsa_cate_by_a_category_column_equals_the_label_column(run_cli, tables):
    from dnnsparse.cli import rsa as db_rsa
    from dnnsparse.io.rdm import read_rdm_file

    status, _, err = run_cli(db_act.main, *_act(tables, "dnnbrain.stim.csv", "a.act.h5",
                                                "-pool", "mean"))
    assert status == 0, err
    rdms = []
    for table, extra in (("dnnbrain.stim.csv", []),
                         ("authors.stim.csv", ["-label-col", "category"])):
        status, _, err = run_cli(db_rsa.main, "-act", tables / "a.act.h5", "-stim",
                                 tables / table, "-cate", "-out", tables / f"rsa_{table}",
                                 "-q", "-no-plot", *extra)
        assert status == 0, err
        rdms.append(read_rdm_file(tables / f"rsa_{table}" / "dnn.rdm.h5"))
    assert list(rdms[0][2]["items"]) == list(rdms[1][2]["items"]) == [0, 1, 2]
    np.testing.assert_array_equal(rdms[0][1]["1"], rdms[1][1]["1"])


def test_psi_by_a_category_column_equals_the_label_column(run_cli, tables):
    from dnnsparse.cli import psi as db_psi

    status, _, err = run_cli(db_act.main, *_act(tables, "dnnbrain.stim.csv", "a.act.h5",
                                                "-pool", "mean"))
    assert status == 0, err
    outs = []
    for table, extra in (("dnnbrain.stim.csv", []),
                         ("authors.stim.csv", ["-label-col", "category"])):
        out = tables / f"psi_{table}"
        status, _, err = run_cli(db_psi.main, "-act", tables / "a.act.h5", "-stim",
                                 tables / table, "-out", out, "-q", "-no-figures", *extra)
        assert status == 0, err
        outs.append(out)
    names = sorted(p.name for p in outs[0].iterdir() if p.suffix in (".csv", ".tsv"))
    assert names and names == sorted(p.name for p in outs[1].iterdir()
                                     if p.suffix in (".csv", ".tsv"))
    for name in names:
        if name.endswith("json"):
            continue
        a, b = read_table(outs[0] / name), read_table(outs[1] / name)
        assert list(a) == list(b), name
        for column in a:
            np.testing.assert_array_equal(a[column], b[column])


def test_psi_label_col_needs_stim(cli_error, tables):
    from dnnsparse.cli import psi as db_psi

    msg = cli_error(db_psi.main, "-act", tables / "missing.act.h5", "-label-col", "category",
                    "-out", tables / "psi")
    assert "give -stim too" in msg
