"""db_act's writer thread (model._extract._FileSink): the file it writes holds the same
values as the caller-thread path and as the in-memory extraction; an error of the
writer thread (a failing write, a full disk) reaches the caller as that error, leaves
no file behind and does not hang; -compression choices give the same values."""
import os
import subprocess
import sys
import textwrap

import h5py
import numpy as np
import pytest
import torch
from PIL import Image

from dnnsparse.base.activation import Activation
from dnnsparse.base.stimulus import Stimulus
from dnnsparse.errors import OutputWriteError
from dnnsparse.io.act import ActWriter
from dnnsparse.model import _extract, wrap_module

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
N = 23                       # not a multiple of the batch size: a partial last chunk


def _net():
    torch.manual_seed(0)
    return wrap_module(torch.nn.Sequential(torch.nn.Conv2d(3, 6, 5, stride=3),
                                           torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(4),
                                           torch.nn.Flatten(), torch.nn.Linear(96, 7)),
                       input_size=(40, 40))


@pytest.fixture
def stim(tmp_path):
    rng = np.random.default_rng(0)
    (tmp_path / "img").mkdir()
    for i in range(N):
        Image.fromarray(rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)).save(
            tmp_path / "img" / f"{i:02d}.png")
    return Stimulus([f"{i:02d}.png" for i in range(N)], root=tmp_path / "img")


def _datasets(path):
    with h5py.File(path, "r") as f:
        return {k: f[k][()] for k in ("0", "1", "4")}, {k: f[k].fletcher32 for k in f}


@pytest.mark.parametrize("compression", ["lzf", "gzip", "none"])
def test_writer_thread_same_values_as_caller_thread_and_memory(stim, tmp_path, monkeypatch,
                                                               compression):
    dnn = _net()
    memory = dnn.extract(stim, ["0", "1", "4"], batch_size=4, show_progress=False)
    files = {}
    for background in (True, False):
        monkeypatch.setattr(_extract._FileSink, "BACKGROUND", background)
        out = tmp_path / f"{background}.act.h5"
        dnn.extract(stim, ["0", "1", "4"], batch_size=4, out=out, compression=compression,
                    show_progress=False).close()
        files[background] = _datasets(out)
    for layer in ("0", "1", "4"):
        np.testing.assert_array_equal(files[True][0][layer], files[False][0][layer])
        np.testing.assert_array_equal(files[True][0][layer], memory.get(layer))
    assert all(files[True][1].values())                  # fletcher32 on every dataset
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".partial")]


def test_writer_thread_error_reaches_the_caller(stim, tmp_path, monkeypatch):
    calls = []
    real = ActWriter.write

    def failing(self, layer, start, data):
        calls.append(start)
        if start >= 8:
            raise OSError(28, "No space left on device")
        return real(self, layer, start, data)

    monkeypatch.setattr(ActWriter, "write", failing)
    monkeypatch.setattr(_extract._FileSink, "BACKGROUND", True)
    out = tmp_path / "a.act.h5"
    with pytest.raises((OSError, OutputWriteError)):
        _net().extract(stim, ["0", "1"], batch_size=4, out=out, show_progress=False)
    assert min(s for s in calls if s >= 8) == 8
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".partial")]


def test_error_in_the_batch_loop_stops_the_writer(stim, tmp_path, monkeypatch):
    (stim.root / "07.png").write_bytes(b"not a png")        # batch 2 cannot be read
    monkeypatch.setattr(_extract._FileSink, "BACKGROUND", True)
    out = tmp_path / "a.act.h5"
    with pytest.raises(Exception, match="07.png"):
        _net().extract(stim, ["0"], batch_size=4, out=out, show_progress=False)
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".partial")]


CHILD = """
    import sys
    import numpy as np
    import torch
    from PIL import Image
    from dnnsparse.base.stimulus import Stimulus
    from dnnsparse.errors import DnnsparseError
    from dnnsparse.model import _extract, wrap_module
    _extract._FileSink.BACKGROUND = True               # the writer thread fills the disk
    folder, out = sys.argv[1], sys.argv[2]
    rng = np.random.default_rng(0)
    for i in range(16):
        Image.fromarray(rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)).save(
            f"{folder}/{i}.png")
    torch.manual_seed(0)
    dnn = wrap_module(torch.nn.Sequential(torch.nn.Conv2d(3, 32, 3)), input_size=(64, 64))
    try:
        dnn.extract(Stimulus([f"{i}.png" for i in range(16)], root=folder), ["0"],
                    batch_size=4, out=out, compression="none", show_progress=False)
    except DnnsparseError as exc:
        print(f"writer: error: {exc}", file=sys.stderr)
        sys.exit(2)
"""


def test_full_disk_through_the_writer_thread(tmp_path):
    """16 x 32 x 62 x 62 float32 (7.9 MB) onto a 1 MB tmpfs: one line, status 2."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root; run the tests as root to check "
                    "a full disk")
    mnt = tmp_path / "fs"
    mnt.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1M", "tmpfs", str(mnt)],
                          capture_output=True, text=True)
    if done.returncode:
        pytest.skip(f"mount -t tmpfs is not permitted here: {done.stderr.strip()}")
    (tmp_path / "img").mkdir()
    try:
        env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
        child = subprocess.run([sys.executable, "-c", textwrap.dedent(CHILD),
                                str(tmp_path / "img"), str(mnt / "a.act.h5")], env=env,
                               capture_output=True, text=True, timeout=300)
        assert child.returncode == 2, child.stderr[-2000:]
        lines = child.stderr.strip().splitlines()
        assert len(lines) == 1 and "writer: error:" in lines[0], child.stderr
        assert os.listdir(mnt) == []
    finally:
        if subprocess.run(["umount", str(mnt)], capture_output=True).returncode:
            subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def test_memory_and_file_results_open(stim, tmp_path):
    act = _net().extract(stim, ["4"], batch_size=5, out=tmp_path / "b.act.h5",
                         show_progress=False)
    with act:
        assert isinstance(act, Activation) and act.get("4").shape == (N, 7, 1, 1)


def test_writer_thread_where_a_core_is_free():
    n_cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else \
        os.cpu_count()
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(n_cpus)
        assert not _extract._writer_thread_pays("cpu")       # torch keeps every core busy
        assert _extract._writer_thread_pays("cuda")           # the network on a GPU
        if n_cpus > 1:
            torch.set_num_threads(n_cpus - 1)
            assert _extract._writer_thread_pays("cpu")
    finally:
        torch.set_num_threads(before)
