"""io.rdm.read_model_rdm: every accepted layout gives scipy's condensed vector; every
malformed file is refused naming the file and what is wrong."""
import h5py
import numpy as np
import pytest
from scipy.spatial.distance import pdist, squareform

from dnnsparse.errors import FileFormatError, InputError, MissingFileError
from dnnsparse.io.rdm import read_model_rdm, read_rdm_file, write_rdm_file


@pytest.fixture
def square(rng):
    return squareform(pdist(rng.standard_normal((5, 3))))


def _csv(rows):
    return "\n".join(",".join(str(v) for v in r) for r in rows) + "\n"


def test_square_and_condensed_layouts(tmp_path, square):
    want = squareform(square)
    names = ["a", "b", "c", "d", "e"]
    vals = [[repr(float(v)) for v in row] for row in square]
    layouts = {
        "plain.csv": _csv(vals),
        "header.csv": _csv([names] + vals),
        "index.csv": _csv([[n] + r for n, r in zip(names, vals)]),
        "both.csv": _csv([[""] + names] + [[n] + r for n, r in zip(names, vals)]),
        "column.csv": _csv([[repr(float(v))] for v in want]),
        "row.csv": _csv([[repr(float(v)) for v in want]]),
        "tabs.tsv": "\n".join("\t".join(r) for r in vals) + "\n",
    }
    for name, text in layouts.items():
        (tmp_path / name).write_text(text)
        [(label, vector, labels)] = read_model_rdm(tmp_path / name, n_items=5)
        assert label == name.split(".")[0]
        np.testing.assert_array_equal(vector, want)
        assert labels == (names if name in ("header.csv", "index.csv", "both.csv") else None)
    np.save(tmp_path / "sq.npy", square)
    np.save(tmp_path / "cond.npy", want)
    for name in ("sq.npy", "cond.npy"):
        [(label, vector, labels)] = read_model_rdm(tmp_path / name, name="mine")
        assert label == "mine" and labels is None
        np.testing.assert_array_equal(vector, want)


def test_rdm_h5_one_model_per_dataset(tmp_path, square):
    want = squareform(square)
    write_rdm_file(tmp_path / "m.rdm.h5", "mRDM", {"animacy": want, "size": want * 2},
                   items=list("abcde"))
    got = read_model_rdm(tmp_path / "m.rdm.h5")
    assert [g[0] for g in got] == ["animacy", "size"]
    np.testing.assert_array_equal(got[1][1], want * 2)
    assert list(got[0][2]) == list("abcde")
    assert [g[0] for g in read_model_rdm(tmp_path / "m.rdm.h5", name="x")] == ["x:animacy",
                                                                               "x:size"]
    assert read_rdm_file(tmp_path / "m.rdm.h5")[0] == "mRDM"
    write_rdm_file(tmp_path / "d.rdm.h5", "dRDM", {"fc": want})      # (1, n_pairs): one RDM
    [(label, vector, _)] = read_model_rdm(tmp_path / "d.rdm.h5", name="fc_model")
    assert label == "fc_model"
    np.testing.assert_array_equal(vector, want)


def test_malformed_model_rdms_are_refused(tmp_path, square):
    cases = {
        "asym.csv": (_csv(square + np.triu(np.ones((5, 5)), 1)), "not symmetric: entry (1, 2)"),
        "diag.csv": (_csv(square + np.eye(5)), "diagonal entry (1, 1) is 1"),
        "ragged.csv": ("0,1,2\n1,0\n", "line 2: 2 values, but the first row has 3"),
        "wide.csv": ("0,1\n1,0\n2,2\n", "got shape (3, 2) (not square)"),
        "text.csv": ("0,x,1\n1,0,1\n1,1,0\n", "line 1: 'x' is not a number"),
        "nan.csv": (_csv([[0, "nan"], ["nan", 0]]), "NaN or infinite"),
        "seven.csv": (_csv([[1, 2, 3, 4, 5, 6, 7]]), "7 entries, which is not n(n-1)/2"),
    }
    for name, (text, message) in cases.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(FileFormatError, match=None) as err:
            read_model_rdm(tmp_path / name)
        assert message in str(err.value) and str(tmp_path / name) in str(err.value), name
    (tmp_path / "names.csv").write_text(",a,b\na,0,1\nc,1,0\n")
    with pytest.raises(FileFormatError, match=r"header names the items \['a', 'b'\]"):
        read_model_rdm(tmp_path / "names.csv")
    np.save(tmp_path / "obj.npy", np.array(["a", "b", "c"]))
    with pytest.raises(FileFormatError, match="holds <U1 values"):
        read_model_rdm(tmp_path / "obj.npy")
    np.save(tmp_path / "cube.npy", np.zeros((2, 2, 2)))
    with pytest.raises(FileFormatError, match="not square"):
        read_model_rdm(tmp_path / "cube.npy")
    with h5py.File(tmp_path / "stack.rdm.h5", "w") as f:
        f.attrs["type"] = "dRDM"
        f["conv"] = np.ones((3, 10))
    with pytest.raises(FileFormatError, match="'conv' holds 3 RDMs"):
        read_model_rdm(tmp_path / "stack.rdm.h5")
    (tmp_path / "m.mat").write_text("x")
    with pytest.raises(FileFormatError, match="unknown model RDM format"):
        read_model_rdm(tmp_path / "m.mat")
    with pytest.raises(MissingFileError, match="model RDM not found"):
        read_model_rdm(tmp_path / "none.npy")


def test_wrong_size_names_file_size_and_expected(tmp_path, square):
    np.save(tmp_path / "five.npy", square)
    with pytest.raises(InputError) as err:
        read_model_rdm(tmp_path / "five.npy", n_items=7)
    assert str(err.value).startswith(f"model RDM {tmp_path / 'five.npy'} (five) is 5 x 5 "
                                     "(10 pairs) but the analysis has 7 items (21 pairs)")
