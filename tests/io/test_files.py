"""Atomic outputs: a file or folder appears whole, never replaces another one without
force (also when another process creates it meanwhile), and leaves nothing behind."""
import errno
import os
import subprocess
import sys
import textwrap

import pytest

from dnnsparse.errors import OutputExistsError
from dnnsparse.io import _files
from dnnsparse.io._files import (OUTPUT_DIR_MARKER, atomic_output, atomic_output_dir,
                                 check_output_dir, partial_name, remove_stale_partials)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run_python(code, *args):
    """Run ``code`` in a fresh interpreter that imports this checkout of dnnsparse."""
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code), *map(str, args)],
                          env=env, capture_output=True, text=True, timeout=120)


WRITE_ONE = """
    import sys
    from dnnsparse.io._files import atomic_output
    with atomic_output(sys.argv[1]) as tmp:
        tmp.write_text(sys.argv[2])
"""


def listing(folder):
    return sorted(p.name for p in folder.iterdir())


def test_output_created_by_another_process_meanwhile_is_not_replaced(tmp_path):
    target = tmp_path / "a.act.h5"
    with pytest.raises(OutputExistsError, match="created by another process") as info:
        with atomic_output(target) as tmp:
            tmp.write_text("300 images, slow")
            # a second run with the same -out finishes first
            done = run_python(WRITE_ONE, target, "12 images, fast")
            assert done.returncode == 0, done.stderr
    assert "\n" not in str(info.value) and str(target) in str(info.value)
    assert target.read_text() == "12 images, fast"          # the other result is kept
    assert listing(tmp_path) == ["a.act.h5"]                 # and our partial file is gone


def test_force_replaces_an_output_created_meanwhile(tmp_path):
    target = tmp_path / "a.csv"
    with atomic_output(target, force=True) as tmp:
        tmp.write_text("mine")
        target.write_text("theirs")
    assert target.read_text() == "mine" and listing(tmp_path) == ["a.csv"]


def test_file_system_without_hard_links(tmp_path, monkeypatch):
    def no_link(src, dst):
        raise OSError(errno.EPERM, "Operation not permitted")
    monkeypatch.setattr(_files.os, "link", no_link)
    target = tmp_path / "a.csv"
    with atomic_output(target) as tmp:
        tmp.write_text("one")
    assert target.read_text() == "one" and listing(tmp_path) == ["a.csv"]
    other = tmp_path / "b.csv"
    with pytest.raises(OutputExistsError, match="created by another process"):
        with atomic_output(other) as tmp:
            tmp.write_text("mine")
            other.write_text("theirs")
    assert other.read_text() == "theirs" and listing(tmp_path) == ["a.csv", "b.csv"]


def test_two_writers_in_one_process_use_different_partial_names(tmp_path):
    target = tmp_path / "x.txt"
    assert partial_name(target) != partial_name(target)
    assert partial_name(target).name.startswith(f".partial-{os.getpid()}-")
    assert partial_name(target).name.endswith("-x.txt")      # extension kept for nibabel


# ----------------------------------------------------------------------------
# Stale partial files
# ----------------------------------------------------------------------------
def dead_pid():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_stale_partials_of_dead_processes_are_removed(tmp_path):
    target = tmp_path / "big.act.h5"
    pid, host = dead_pid(), _files._host_tag()
    stale_new = tmp_path / f".partial-{pid}-{host}-0123abcd-big.act.h5"
    stale_old = tmp_path / f".partial-{pid}-big.act.h5"           # name of version 0.1
    stale_dir = tmp_path / f".partial-{pid}-{host}-89abcdef-big.act.h5"
    live = tmp_path / f".partial-{os.getppid()}-{host}-0000aaaa-big.act.h5"
    elsewhere = tmp_path / f".partial-{pid}-another_node-0000bbbb-big.act.h5"
    other_output = tmp_path / f".partial-{pid}-{host}-0000cccc-small.act.h5"
    for p in (stale_new, stale_old, live, elsewhere, other_output):
        p.write_bytes(b"x" * 100)
    stale_dir.mkdir()
    (stale_dir / "inner.csv").write_text("x")

    removed = remove_stale_partials(target)
    assert sorted(p.name for p in removed) == sorted(
        p.name for p in (stale_new, stale_old, stale_dir))
    # a live writer, another machine's writer and another output's file are kept
    assert listing(tmp_path) == sorted(p.name for p in (live, elsewhere, other_output))


def test_a_new_run_cleans_up_after_a_killed_one(tmp_path):
    target = tmp_path / "out.csv"
    stale = tmp_path / f".partial-{dead_pid()}-{_files._host_tag()}-0123abcd-out.csv"
    stale.write_text("half")
    with atomic_output(target) as tmp:
        tmp.write_text("whole")
    assert listing(tmp_path) == ["out.csv"]
    stale_dir = tmp_path / f".partial-{dead_pid()}-{_files._host_tag()}-0123abcd-res"
    stale_dir.mkdir()
    with atomic_output_dir(tmp_path / "res"):
        pass
    assert listing(tmp_path) == ["out.csv", "res"]


# ----------------------------------------------------------------------------
# Folder outputs
# ----------------------------------------------------------------------------
def test_output_dir_appears_whole_or_not_at_all(tmp_path):
    out = tmp_path / "psi"
    with atomic_output_dir(out) as tmp:
        (tmp / "psi.csv").write_text("a")
        assert not out.exists()                              # nothing visible yet
    assert listing(out) == [OUTPUT_DIR_MARKER, "psi.csv"]

    failed = tmp_path / "failed"
    with pytest.raises(ValueError):
        with atomic_output_dir(failed) as tmp:
            (tmp / "half.csv").write_text("a")
            raise ValueError("-alphas -1")
    assert listing(tmp_path) == ["psi"]                      # no empty -out, no partial

    with pytest.raises(KeyboardInterrupt):
        with atomic_output_dir(failed) as tmp:
            (tmp / "half.csv").write_text("a")
            raise KeyboardInterrupt
    assert listing(tmp_path) == ["psi"]


def test_force_on_output_dir_leaves_no_stale_file(tmp_path):
    out = tmp_path / "res"
    with atomic_output_dir(out) as tmp:
        (tmp / "conv1").mkdir()
        (tmp / "conv1" / "scores.csv").write_text("old")
        (tmp / "fc1.csv").write_text("old")
    with pytest.raises(OutputExistsError, match="not empty; pass --force"):
        with atomic_output_dir(out):
            pass
    with atomic_output_dir(out, force=True) as tmp:
        (tmp / "fc1.csv").write_text("new")
    assert listing(out) == [OUTPUT_DIR_MARKER, "fc1.csv"]   # conv1/ of the first run is gone
    assert (out / "fc1.csv").read_text() == "new"
    assert listing(tmp_path) == ["res"]


def test_force_never_deletes_a_folder_dnnsparse_did_not_write(tmp_path):
    mine = tmp_path / "home"
    mine.mkdir()
    (mine / "thesis.tex").write_text("precious")
    with pytest.raises(OutputExistsError, match="did not write"):
        with atomic_output_dir(mine, force=True):
            pass
    assert listing(mine) == ["thesis.tex"]
    empty = tmp_path / "empty"
    empty.mkdir()
    with atomic_output_dir(empty) as tmp:                    # an empty folder is fine
        (tmp / "a.csv").write_text("a")
    assert listing(empty) == [OUTPUT_DIR_MARKER, "a.csv"]


def test_output_dir_filled_by_another_process_meanwhile(tmp_path):
    out = tmp_path / "res"
    with pytest.raises(OutputExistsError, match="filled by another process"):
        with atomic_output_dir(out) as tmp:
            (tmp / "a.csv").write_text("mine")
            done = run_python("""
                import sys
                from pathlib import Path
                from dnnsparse.io._files import atomic_output_dir
                with atomic_output_dir(sys.argv[1]) as tmp:
                    (Path(tmp) / "a.csv").write_text("theirs")
            """, out)
            assert done.returncode == 0, done.stderr
    assert (out / "a.csv").read_text() == "theirs"
    assert listing(tmp_path) == ["res"]


def test_check_output_dir_creates_nothing(tmp_path):
    check_output_dir(tmp_path / "new" / "deeper")
    assert listing(tmp_path) == []
    (tmp_path / "f").write_text("x")
    with pytest.raises(OutputExistsError, match="not a directory"):
        check_output_dir(tmp_path / "f", force=True)
