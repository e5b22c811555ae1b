"""No space left and read-only file systems: one line, exit 2, no output, no segfault.

The tests mount a 1 MB tmpfs, which needs root; elsewhere they are skipped with
that reason. Writers run in a child process, so that a crash of the HDF5
library shows as a failed test (status -11) instead of ending the test run.
"""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from dnnsparse.errors import OutputWriteError
from dnnsparse.io._files import atomic_output, atomic_output_dir
from dnnsparse.io.table import write_table

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _mount(*args):
    return subprocess.run(["mount", *map(str, args)], capture_output=True, text=True)


@pytest.fixture
def small_fs(tmp_path):
    """A 1 MB tmpfs mounted for the test (root only)."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root; run the tests as root to check "
                    "full and read-only file systems")
    mnt = tmp_path / "fs"
    mnt.mkdir()
    done = _mount("-t", "tmpfs", "-o", "size=1M", "tmpfs", mnt)
    if done.returncode:
        pytest.skip(f"mount -t tmpfs is not permitted here: {done.stderr.strip()}")
    try:
        yield mnt
    finally:
        if subprocess.run(["umount", str(mnt)], capture_output=True).returncode:
            subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def read_only(mnt):
    done = _mount("-o", "remount,ro", mnt)
    if done.returncode:
        pytest.skip(f"remounting read-only is not permitted here: {done.stderr.strip()}")
    return mnt


def listing(folder):
    return sorted(os.listdir(folder))


# A child that writes like a command: a DnnsparseError becomes one line and status 2.
CHILD = """
    import sys
    import numpy as np
    from dnnsparse.errors import DnnsparseError
    out, what = sys.argv[1], sys.argv[2]
    rng = np.random.default_rng(0)
    try:
        if what.startswith("stream"):
            from dnnsparse.io.act import ActWriter
            compression = what.split("-")[1]
            with ActWriter(out, {"conv1": (16, 8, 8), "fc1": (100, 1, 1)}, 512,
                           batch_rows=32, compression=compression) as w:
                for start in range(0, 512, 32):
                    w.write("conv1", start, rng.random((32, 16, 8, 8)))
                    w.write("fc1", start, rng.random((32, 100, 1, 1)))
        elif what == "act":
            from dnnsparse.io.act import write_act
            write_act(out, {"conv1": rng.random((512, 16, 8, 8))},
                      stim_ids=[f"{i}.png" for i in range(512)])
        elif what == "ids":               # the stimID attribute alone fills the disk
            from dnnsparse.io.act import write_act
            write_act(out, {"fc": np.zeros((40000, 1, 1, 1))},
                      stim_ids=[f"n{i:08d}/ILSVRC2012_val_{i:08d}.JPEG" for i in range(40000)])
        elif what == "rdm":
            from dnnsparse.io.rdm import write_rdm_file
            write_rdm_file(out, "dRDM", {"conv1": rng.random((40, 4950))})
        elif what == "roi":
            from dnnsparse.io.roi import write_roi_file
            write_roi_file(out, ["V1", "V2"], rng.random((100000, 2)))
    except DnnsparseError as exc:
        print(f"writer: error: {exc}", file=sys.stderr)
        sys.exit(2)
"""


def run_child(out, what):
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-c", textwrap.dedent(CHILD), str(out), what],
                          env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("what, name", [
    ("stream-lzf", "a.act.h5"), ("stream-gzip", "a.act.h5"), ("stream-none", "a.act.h5"),
    ("act", "a.act.h5"), ("ids", "a.act.h5"), ("rdm", "a.rdm.h5"), ("roi", "a.roi.h5")])
def test_hdf5_writers_on_a_full_disk(small_fs, what, name):
    out = small_fs / "results" / name
    done = run_child(out, what)
    assert done.returncode == 2, (done.returncode, done.stderr[-3000:])     # -11: segfault
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.startswith(f"writer: error: cannot write {out}: no space left on "
                                  f"the device; free some space")
    assert listing(small_fs / "results") == []                 # no partial output


def test_hdf5_writers_on_a_read_only_file_system(small_fs):
    (small_fs / "results").mkdir()
    read_only(small_fs)
    for what, name in (("stream-lzf", "a.act.h5"), ("rdm", "a.rdm.h5"), ("roi", "a.roi.h5")):
        out = small_fs / "results" / name
        done = run_child(out, what)
        assert done.returncode == 2, (done.returncode, done.stderr[-3000:])
        assert done.stderr == (f"writer: error: cannot write {out}: the file system is "
                               f"read-only; choose an output on a writable file system. "
                               f"No partial output was kept.\n")
    done = run_child(small_fs / "new" / "a.act.h5", "act")      # its folder cannot be made
    assert done.returncode == 2 and "read-only" in done.stderr
    assert listing(small_fs) == ["results"] and listing(small_fs / "results") == []


def test_text_outputs_on_a_full_disk(small_fs):
    out = small_fs / "psi.csv"
    big = {"layer": [f"layer{i}" for i in range(100_000)], "psi": np.linspace(0, 1, 100_000)}
    with pytest.raises(OutputWriteError, match=r"psi\.csv: no space left") as info:
        write_table(out, big)
    assert "\n" not in str(info.value)
    assert listing(small_fs) == []
    with pytest.raises(OutputWriteError, match="no space left"):
        with atomic_output_dir(small_fs / "res") as tmp:
            write_table(tmp / "small.csv", {"a": [1, 2]})
            write_table(tmp / "big.csv", big)
    assert listing(small_fs) == []
    write_table(out, {"a": [1, 2]})                              # space is back
    assert listing(small_fs) == ["psi.csv"]


def test_text_outputs_on_a_read_only_file_system(small_fs):
    read_only(small_fs)
    with pytest.raises(OutputWriteError, match=r"x\.csv: the file system is read-only"):
        with atomic_output(small_fs / "x.csv") as tmp:
            tmp.write_text("a")
    with pytest.raises(OutputWriteError, match="read-only"):
        write_table(small_fs / "sub" / "t.csv", {"a": [1]})
    with pytest.raises(OutputWriteError, match=r"res: the file system is read-only"):
        with atomic_output_dir(small_fs / "res"):
            pass
    assert listing(small_fs) == []
