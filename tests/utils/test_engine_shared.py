"""Large inputs on a ``local:N`` cluster go to the workers as files in shared memory
(utils.engine.SharedValue: ``.npy`` for arrays, a pickle for anything else, e.g. a
network): tiny task arguments, the same values and memory order on the worker, the
folder removed at the end (and those of killed processes), a full disk falls back to
Dask, and db_encode's tables byte-identical to one process."""
import errno
import os
import pickle
import subprocess
import sys
import warnings

import numpy as np

from dnnsparse.utils import engine as engine_module
from dnnsparse.utils.engine import SHARE_MIN_BYTES, SharedValue, open_engine


def _describe(a):
    return (type(a).__name__, a.flags.f_contiguous, a.dtype.str, a.shape,
            float(np.asarray(a, dtype=np.float64).sum()))


def _weight_sum(net):
    return type(net).__name__, float(net.weight.detach().double().sum())


def test_local_cluster_shares_large_inputs_and_removes_them():
    import torch

    rng = np.random.default_rng(0)
    big = np.asfortranarray(rng.standard_normal((300, SHARE_MIN_BYTES // 8 // 300 + 5)))
    small = rng.standard_normal((10, 3))
    torch.manual_seed(0)
    net = torch.nn.Linear(600, 600)                   # 1.4 MB of weights: pickled once
    with open_engine("local:2") as engine:
        held_net = engine.put(net)
        assert isinstance(held_net, SharedValue) and held_net.path.endswith(".pkl")
        assert engine.gather([engine.submit(_weight_sum, held_net)]) == [_weight_sum(net)]
        assert not isinstance(engine.put(torch.nn.Linear(2, 2)), SharedValue)
        # a cluster elsewhere (tcp://, slurm:): the input is a Dask task of its own,
        # without Dask's "large graph" warning, which is what it is on purpose
        remote = engine_module.Engine(client=engine.client)
        huge = np.arange(12 * SHARE_MIN_BYTES // 8, dtype=np.float64)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            sent = remote.put(huge)
        assert not isinstance(sent, SharedValue)
        assert engine.gather([engine.submit(np.sum, sent)]) == [huge.sum()]
        held = engine.put(big)
        assert isinstance(held, SharedValue)
        assert len(pickle.dumps(held)) < 500          # the task carries a file name
        folder = engine._shared
        assert folder.is_dir() and folder.name.startswith(f"dnnsparse-shared-{os.getpid()}-")
        kept = engine.put(small)
        assert not isinstance(kept, SharedValue)      # small: through Dask, as before
        got_big, got_small = engine.gather([engine.submit(_describe, held),
                                            engine.submit(_describe, kept)])
    assert got_big == ("ndarray", True, big.dtype.str, big.shape, float(big.sum()))
    assert got_small == ("ndarray", False, small.dtype.str, small.shape, float(small.sum()))
    assert not folder.exists()


def test_folders_of_dead_processes_are_removed(tmp_path, monkeypatch):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    stale = tmp_path / f"dnnsparse-shared-{dead}-abc"
    alive = tmp_path / f"dnnsparse-shared-{os.getpid()}-def"
    other = tmp_path / "dnnsparse-shared-notapid"
    for d in (stale, alive, other):
        d.mkdir()
        (d / "0.npy").write_bytes(b"x")
    engine_module._remove_stale_shares(tmp_path)
    assert not stale.exists() and alive.exists() and other.exists()


def test_shared_array_is_read_into_the_tasks_own_memory(tmp_path):
    a = np.asfortranarray(np.arange(12.0).reshape(3, 4))
    np.save(tmp_path / "a.npy", a)
    m = SharedValue(tmp_path / "a.npy").open()
    assert type(m) is np.ndarray and m.flags.f_contiguous and m.flags.writeable
    m[0, 0] = 99.0                                    # the task's own copy
    assert np.load(tmp_path / "a.npy")[0, 0] == 0.0 and np.array_equal(m[1:], a[1:])


def test_db_encode_on_local_cluster_with_shared_arrays(tmp_path, monkeypatch):
    """db_encode -scheduler local:2 (its own cluster) with every array shared: the
    same bytes as one process, and nothing left in the shared folder's place."""
    from dnnsparse.base.activation import Activation
    from dnnsparse.cli.encode import main as encode_main
    from dnnsparse.io.table import write_table

    rng = np.random.default_rng(1)
    n, n_vox = 40, 12
    X = rng.standard_normal((n, 6))
    Activation({"fc": X.astype(np.float32)},
               stim_ids=[f"s{i}.png" for i in range(n)]).save(tmp_path / "a.act.h5")
    Y = X @ rng.standard_normal((6, n_vox)) + rng.standard_normal((n, n_vox))
    write_table(tmp_path / "resp.csv", {f"v{j}": Y[:, j] for j in range(n_vox)})
    shared = []
    share = engine_module.Engine._share

    def spy(self, value):
        handle = share(self, value)
        if isinstance(value, np.ndarray):
            shared.append((value.shape, handle, self._shared))
        return handle

    monkeypatch.setattr(engine_module, "SHARE_MIN_BYTES", 0)
    monkeypatch.setattr(engine_module.Engine, "_share", spy)

    def run(out, *extra):
        args = ["-act", tmp_path / "a.act.h5", "-layer", "fc", "-resp", tmp_path / "resp.csv",
                "-alphas", "0.1", "10", "-n-perm", "3", "-cv", "3", "-seed", "2",
                "-voxel-batch", "5", "-no-plot", "-q", "-out", tmp_path / out, *extra]
        assert encode_main([str(a) for a in args]) == 0
        return {f: (tmp_path / out / f).read_bytes() for f in ("scores.tsv", "summary.csv")}

    one = run("one")
    assert shared == []                               # no cluster: nothing shared
    assert run("two", "-scheduler", "local:2") == one
    shapes = sorted(s for s, _, _ in shared)
    assert shapes == sorted([(n, 5), (n, 5), (n, 2), (n, 6), (n, n_vox)])  # Y batches, X, Y
    assert all(isinstance(h, SharedValue) for _, h, _ in shared)
    assert not shared[0][2].exists()


def _dask_settings():
    import dask

    return {k: dask.config.get(k) for k in engine_module.LOCAL_DASK_CONFIG}


def test_local_cluster_workers_run_without_profiler():
    """The settings reach the worker processes (no dashboard: nothing reads profiles)."""
    with open_engine("local:1") as engine:
        got = engine.gather([engine.submit(_dask_settings)])[0]
    assert got == engine_module.LOCAL_DASK_CONFIG


def test_a_full_disk_sends_the_input_through_dask(monkeypatch, tmp_path):
    class Client:
        def submit(self, func, value, **kw):
            return ("submitted", func(value))

    def no_room(f, value):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(engine_module, "_share_dir", lambda min_free: tmp_path)
    monkeypatch.setattr(engine_module.np, "save", no_room)
    engine = engine_module.Engine(client=Client(), share_inputs=True)
    big = np.ones(SHARE_MIN_BYTES // 8)
    kind, value = engine.put(big)
    assert kind == "submitted" and value is big and list(tmp_path.iterdir()) == []
