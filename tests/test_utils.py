import numpy as np
import pytest

from dnnsparse.errors import InputError, OutputExistsError
from dnnsparse.io._files import atomic_output, prepare_output_dir
from dnnsparse.io.table import read_table, write_table
from dnnsparse.utils.validation import (check_array, check_choice, check_consistent_length,
                                        check_random_state, check_scalar)


def test_check_array_rank_and_nan():
    assert check_array([[1, 2]], ndim=2).dtype == np.float64
    with pytest.raises(InputError, match="must be 2-D"):
        check_array([1, 2], ndim=2, name="responses")
    with pytest.raises(InputError, match="1 NaN"):
        check_array([1.0, np.nan], name="x")
    assert np.isnan(check_array([np.nan], allow_nan=True)[0])


def test_check_helpers():
    assert check_consistent_length([1, 2], np.zeros((2, 3))) == 2
    with pytest.raises(InputError, match="a: 2, b: 3"):
        check_consistent_length([1, 2], [1, 2, 3], names=["a", "b"])
    with pytest.raises(InputError, match="choose from"):
        check_choice("x", {"psi": 1}, name="measure")
    with pytest.raises(InputError, match=r"outside \(0, 1\]"):
        check_scalar(0, name="fraction", min_val=0, max_val=1, include_min=False)
    a = check_random_state(3).permutation(10)
    assert np.array_equal(a, check_random_state(3).permutation(10))


def test_atomic_output_refuses_overwrite_and_cleans_up(tmp_path):
    target = tmp_path / "x.txt"
    with atomic_output(target) as tmp:
        tmp.write_text("one")
        assert not target.exists()
    assert target.read_text() == "one"
    with pytest.raises(OutputExistsError, match="--force"):
        with atomic_output(target):
            pass
    with pytest.raises(RuntimeError):
        with atomic_output(target, force=True) as tmp:
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    assert target.read_text() == "one"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.txt"]


def test_output_dir(tmp_path):
    d = prepare_output_dir(tmp_path / "out")
    (d / "a").write_text("x")
    with pytest.raises(OutputExistsError, match="not empty"):
        prepare_output_dir(d)
    assert prepare_output_dir(d, force=True) == d


@pytest.mark.parametrize("name", ["t.csv", "t.tsv"])
def test_table_round_trip(tmp_path, name):
    cols = {"layer": ["conv1", "fc,2"], "n": [3, 4], "psi": [0.1, 1 / 3]}
    write_table(tmp_path / name, cols)
    back = read_table(tmp_path / name)
    assert list(back) == ["layer", "n", "psi"]
    assert list(back["layer"]) == ["conv1", "fc,2"]
    assert back["n"].dtype.kind == "i" and back["psi"][1] == 1 / 3


def test_sha256_file_cache(tmp_path, monkeypatch):
    import hashlib
    import os

    from dnnsparse.utils import filehash

    monkeypatch.setenv("DNNSPARSE_CACHE", str(tmp_path / "cache"))
    path = tmp_path / "w.bin"
    path.write_bytes(b"abc" * 1000)
    expected = hashlib.sha256(b"abc" * 1000).hexdigest()
    # a file modified just now is hashed but not remembered (it may change again)
    assert filehash.sha256_file(path) == expected
    assert not (tmp_path / "cache" / "sha256.json").exists()
    os.utime(path, (1e9, 1e9))
    assert filehash.sha256_file(path) == expected
    assert (tmp_path / "cache" / "sha256.json").exists()
    calls = []
    monkeypatch.setattr(filehash, "_digest", lambda p: calls.append(p) or "recomputed")
    assert filehash.sha256_file(path) == expected and not calls      # from the cache
    path.write_bytes(b"abd" * 1000)                                   # same size, new mtime
    os.utime(path, (1e9 + 1, 1e9 + 1))
    assert filehash.sha256_file(path) == "recomputed" and len(calls) == 1
    monkeypatch.setenv("DNNSPARSE_CACHE", "off")
    assert filehash.cache_dir() is None
    assert filehash.sha256_file(path) == "recomputed" and len(calls) == 2
    # an unusable cache location (a file, not a folder) only means no caching
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    monkeypatch.setenv("DNNSPARSE_CACHE", str(blocker / "sub"))
    assert filehash.sha256_file(path) == "recomputed"
    monkeypatch.setenv("DNNSPARSE_CACHE", str(tmp_path / "cache"))
    (tmp_path / "cache" / "sha256.json").write_text("{not json")      # corrupt: ignored
    assert filehash.sha256_file(path) == "recomputed"
