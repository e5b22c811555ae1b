"""-scheduler on a real dask.distributed.LocalCluster (2 worker processes): the tables of
db_encode (and db_rsa, db_topk, db_decode, db_psi, db_map) are byte-identical to one
process, a SIGKILLed worker's tasks are re-run, and bad -scheduler values are one line,
exit 2."""
import os
import subprocess
import sys

import numpy as np
import pytest

from dnnsparse.base.activation import Activation
from dnnsparse.cli.encode import main as encode_main
from dnnsparse.io.table import write_table
from tests.cli.dask_faults import KillBusiestWorkerOnce

N, N_VOX = 40, 24


@pytest.fixture(scope="module")
def cluster():
    """Two worker processes, one thread each; started once for the module."""
    from dask.distributed import Client, LocalCluster

    lc = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None)
    client = Client(lc)
    yield client
    client.close()
    lc.close()


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    rng = np.random.default_rng(0)
    d = tmp_path_factory.mktemp("sched")
    layers = {"conv": rng.standard_normal((N, 3, 2, 2)).astype(np.float32),
              "fc": rng.standard_normal((N, 6)).astype(np.float32)}
    Activation(layers, stim_ids=[f"s{i}.png" for i in range(N)]).save(d / "a.act.h5")
    X = layers["fc"].astype(np.float64)
    Y = X @ rng.standard_normal((6, N_VOX)) + rng.standard_normal((N, N_VOX))
    write_table(d / "resp.csv", {f"v{j}": Y[:, j] for j in range(N_VOX)})
    return d


def _encode(data, out, *extra):
    args = ["-act", data / "a.act.h5", "-layer", "conv", "fc", "-resp", data / "resp.csv",
            "-alphas", "0.1", "10", "1000", "-n-perm", "4", "-max-stat", "-cv", "3",
            "-seed", "3", "-no-plot", "-q", "-out", out, *extra]
    assert encode_main([str(a) for a in args]) == 0
    return {name: (out / name).read_bytes() for name in ("scores.tsv", "summary.csv",
                                                         "folds.csv")}


def test_db_encode_tables_byte_identical_on_local_cluster(cluster, data, tmp_path):
    one = _encode(data, tmp_path / "one")
    addr = cluster.scheduler.address
    two = _encode(data, tmp_path / "two", "-scheduler", addr)
    assert one == two
    # voxel batches (many small tasks): byte-identical to the same batches in one
    # process and (float64 responses) to the unbatched run: a voxel's numbers do not
    # depend on which batch it is in
    batched = _encode(data, tmp_path / "batch", "-scheduler", addr, "-voxel-batch", "5")
    assert batched == _encode(data, tmp_path / "batch1", "-voxel-batch", "5")
    assert batched == one
    # the models refitted on all stimuli were written by the client, the same bytes
    for layer in ("conv", "fc"):
        a = np.load(tmp_path / "one" / layer / "model.npz")
        b = np.load(tmp_path / "two" / layer / "model.npz")
        assert sorted(a.files) == sorted(b.files)
        for k in a.files:
            assert np.array_equal(a[k], b[k])


def test_without_scheduler_dask_is_not_imported(data, brain_files, tmp_path):
    """db_encode, db_psi and db_map without -scheduler (one subprocess: imports are slow)."""
    d = brain_files
    code = ("import sys; from dnnsparse.cli.encode import main; "
            "from dnnsparse.cli.psi import main as psi; "
            "from dnnsparse.cli.map import main as map_; "
            f"rc = main(['-act', '{data / 'a.act.h5'}', '-layer', 'fc', '-resp', "
            f"'{data / 'resp.csv'}', '-no-plot', '-q', '-out', '{tmp_path / 'o'}']); "
            "assert rc == 0; "
            f"assert psi(['-act', '{d / 'a.act.h5'}', '-stim', '{d / 's.stim.csv'}', "
            f"'-no-figures', '-q', '-out', '{tmp_path / 'p'}']) == 0; "
            f"assert map_(['-act', '{d / 'a.act.h5'}', '-stim', '{d / 's.stim.csv'}', "
            f"'-nif', '{d / 'bold.nii.gz'}', '-roi', '{d / 'atlas.nii.gz'}', '-lut', "
            f"'{d / 'lut.csv'}', '-n-perm', '5', '-no-plot', '-q', '-out', "
            f"'{tmp_path / 'm'}']) == 0; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('dask', 'distributed', 'dask_jobqueue')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"
    assert (tmp_path / "p" / "psi.csv").is_file() and (tmp_path / "m" / "mapping.csv").is_file()


@pytest.mark.parametrize("spec, words", [
    ("local:0", "local:N with N >= 1"), ("local:x", "local:N with N >= 1"),
    ("nowhere", "give local:N"), ("tcp://127.0.0.1:9", "no Dask scheduler answered"),
    ("slurm:missing.yaml", "no file"), ("slurm:bad.yaml", "unknown key 'cpus'"),
    ("slurm:noyaml.yaml", "not valid YAML")])
def test_bad_scheduler_is_one_line_exit_2(data, tmp_path, capsys, monkeypatch, spec, words):
    import dnnsparse.utils.engine as engine
    monkeypatch.setattr(engine, "CONNECT_TIMEOUT", 2)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.yaml").write_text("cores: 4\nmemory: 8GB\ncpus: 3\n")
    (tmp_path / "noyaml.yaml").write_text("cores: [4\n")
    out = tmp_path / "o"
    rc = encode_main([str(a) for a in ["-act", data / "a.act.h5", "-layer", "fc", "-resp",
                                       data / "resp.csv", "-q", "-scheduler", spec,
                                       "-out", out]])
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert len(err.splitlines()) == 1 and words in err, err
    assert not out.exists()


def test_killed_worker_tasks_are_rerun_identical_table(cluster, data, tmp_path):
    """SIGKILL one worker after every task was submitted and before any result was
    gathered: its results and running tasks are lost, the scheduler re-runs them."""
    from dnnsparse.base.activation import Activation as Act
    from dnnsparse.pipelines import layer_mask, load_targets, run_encoding

    def run(engine):
        act = Act.load(data / "a.act.h5")
        resp = load_targets(data / "resp.csv")
        res = run_encoding(act, layer_mask(act, layers=["conv", "fc"]), resp, out=tmp_path,
                           save_models=False, max_stat=True, alphas=[0.1, 10, 1000],
                           cv=3, n_perm=4, seed=3, engine=engine, voxel_batch=4)
        act.close()
        return res.scores

    expected = run(None)
    engine = KillBusiestWorkerOnce(client=cluster)
    got = run(engine)
    killed = engine.killed
    assert killed["keys"] > 0              # the victim held results or was running tasks
    assert sorted(got) == sorted(expected)
    for k in expected:
        assert np.array_equal(np.asarray(got[k]), np.asarray(expected[k])), k
    assert killed["pid"] not in cluster.run(os.getpid).values()


def test_db_rsa_table_byte_identical_on_local_cluster(cluster, tmp_path):
    import nibabel as nib
    from dnnsparse.base.stimulus import Stimulus
    from dnnsparse.cli.rsa import main as rsa_main

    rng = np.random.default_rng(1)
    n, shape, affine = 12, (4, 3, 2), np.eye(4)
    ids = [f"img{i}.png" for i in range(n)]
    Activation({"conv": rng.standard_normal((n, 3, 2, 2)), "fc": rng.standard_normal((n, 9))},
               stim_ids=ids).save(tmp_path / "a.act.h5")
    Stimulus(ids).save(tmp_path / "s.stim.csv")
    nib.save(nib.Nifti1Image(rng.integers(0, 3, shape).astype(np.int16), affine),
             str(tmp_path / "atlas.nii.gz"))
    (tmp_path / "lut.csv").write_text("label,name\n1,V1\n2,FFA\n")
    nib.save(nib.Nifti1Image(rng.standard_normal(shape + (n,)).astype(np.float32), affine),
             str(tmp_path / "sub1.nii.gz"))

    def run(out, *extra):
        args = ["-act", tmp_path / "a.act.h5", "-stim", tmp_path / "s.stim.csv", "-nif",
                tmp_path / "sub1.nii.gz", "-roi", tmp_path / "atlas.nii.gz", "-lut",
                tmp_path / "lut.csv", "-n-perm", "30", "-n-boot", "20", "-seed", "5",
                "-q", "-out", tmp_path / out, *extra]
        assert rsa_main([str(a) for a in args]) == 0
        return (tmp_path / out / "similarity.csv").read_bytes()

    assert run("one") == run("two", "-scheduler", cluster.scheduler.address)


def test_db_topk_table_byte_identical_on_local_cluster(cluster, tmp_path):
    import torch
    import torchvision
    from PIL import Image
    from dnnsparse.algo.shape_bias import CATEGORIES
    from dnnsparse.cli import topk as db_topk

    torch.manual_seed(1)
    net = torchvision.models.resnet18(weights=None).eval()
    torch.save(net.state_dict(), tmp_path / "r18.pth")
    gen = np.random.default_rng(4)
    for i in range(2):
        Image.fromarray(gen.integers(0, 256, (24, 24, 3), dtype=np.uint8)).save(
            tmp_path / f"{CATEGORIES[i]}{i}-{CATEGORIES[i + 5]}{i}.png")
    from dnnsparse.base.stimulus import Stimulus
    Stimulus([p.name for p in sorted(tmp_path.glob("*.png"))], root=tmp_path).save(
        tmp_path / "cue.stim.csv")

    def run(out, *extra):
        args = ["-net", "resnet18", "-weights", tmp_path / "r18.pth", "-stim",
                tmp_path / "cue.stim.csv", "-layer", "layer1", "-fraction", "0.05",
                "-n-boot", "20", "-workers", "0", "-q", "-out", tmp_path / out, *extra]
        assert db_topk.main([str(a) for a in args]) == 0
        return [(tmp_path / out / f).read_bytes() for f in ("topk.csv", "per_category.csv")]

    assert run("one") == run("two", "-scheduler", cluster.scheduler.address)


def test_db_decode_tables_byte_identical_on_local_cluster(cluster, data, tmp_path):
    from dnnsparse.base.stimulus import Stimulus
    from dnnsparse.cli.decode import main as decode_main

    labels = np.repeat([1, 2], N // 2)
    Stimulus([f"s{i}.png" for i in range(N)], columns={"label": labels}).save(
        tmp_path / "s.stim.csv")

    def run(out, *extra):
        args = ["-act", data / "a.act.h5", "-layer", "conv", "fc", "-stim",
                tmp_path / "s.stim.csv", "-target", "label", "-model", "logistic", "-cv", "4",
                "-n-perm", "5", "-seed", "2", "-no-plot", "-q", "-out", tmp_path / out, *extra]
        assert decode_main([str(a) for a in args]) == 0
        return {p.name: p.read_bytes() for p in sorted((tmp_path / out).iterdir())}

    assert run("one") == run("two", "-scheduler", cluster.scheduler.address)


@pytest.fixture(scope="module")
def brain_files(tmp_path_factory):
    """A 3-layer activation file, a labelled stimulus table, a NIfTI series and an atlas
    of 3 ROIs (db_psi, db_map)."""
    import nibabel as nib
    from dnnsparse.base.stimulus import Stimulus

    d = tmp_path_factory.mktemp("brain")
    rng = np.random.default_rng(7)
    n, shape = 16, (4, 4, 3)
    labels = np.tile([1, 2, 3, 4], 4)
    ids = [f"c{lab}/{i}.png" for i, lab in enumerate(labels)]
    Activation({"conv1": rng.gamma(2.0, size=(n, 4, 3, 3)).astype(np.float32),
                "conv2": rng.gamma(1.0, size=(n, 6, 2, 2)).astype(np.float32),
                "fc": np.abs(rng.standard_normal((n, 9))).astype(np.float32)},
               stim_ids=ids).save(d / "a.act.h5")
    Stimulus(ids, columns={"label": labels}).save(d / "s.stim.csv")
    nib.save(nib.Nifti1Image(rng.integers(0, 4, shape).astype(np.int16), np.eye(4)),
             str(d / "atlas.nii.gz"))
    (d / "lut.csv").write_text("label,name\n1,V1\n2,FFA\n3,PPA\n")
    nib.save(nib.Nifti1Image(rng.standard_normal(shape + (n,)).astype(np.float32),
                             np.eye(4)), str(d / "bold.nii.gz"))
    return d


def _psi(d, out, *extra):
    from dnnsparse.cli.psi import main as psi_main

    args = ["-act", d / "a.act.h5", "-stim", d / "s.stim.csv", "-permutations", "50",
            "-no-figures", "-q", "-out", out, *extra]
    assert psi_main([str(a) for a in args]) == 0
    return {p.name: p.read_bytes() for p in sorted(out.iterdir()) if p.suffix == ".csv"}


def _map(d, out, *extra):
    from dnnsparse.cli.map import main as map_main

    args = ["-act", d / "a.act.h5", "-stim", d / "s.stim.csv", "-nif", d / "bold.nii.gz",
            "-roi", d / "atlas.nii.gz", "-lut", d / "lut.csv", "-n-perm", "40", "-seed",
            "2", "-no-plot", "-q", "-out", out, *extra]
    assert map_main([str(a) for a in args]) == 0
    return {p.name: p.read_bytes() for p in sorted(out.iterdir()) if p.suffix == ".csv"}


def test_db_psi_tables_byte_identical_on_local_cluster(cluster, brain_files, tmp_path):
    from dnnsparse.io.table import read_table

    one = _psi(brain_files, tmp_path / "one")
    two = _psi(brain_files, tmp_path / "two", "-scheduler", cluster.scheduler.address)
    assert sorted(one) == ["psi.csv", "summary.csv", "trend.csv"]
    assert one == two
    summary = read_table(tmp_path / "two" / "summary.csv")
    assert list(summary["layer"]) == ["conv1", "conv2", "fc"]


def test_db_psi_layers_run_on_the_workers(cluster, brain_files, monkeypatch):
    """Each layer is a task that a worker process runs (it reads the file itself)."""
    from dnnsparse.pipelines import activation_file_sparseness, load_grouping_stimuli
    from dnnsparse.utils.engine import Engine

    ran = []

    class Recording(Engine):
        def submit(self, func, *args):
            ran.append((func.__name__, args[1]))
            return super().submit(func, *args)

    stim, names = load_grouping_stimuli(brain_files / "s.stim.csv")
    here = activation_file_sparseness(brain_files / "a.act.h5", stim, names=names)
    from dask.distributed import get_task_stream

    with get_task_stream(client=cluster) as stream:
        there = activation_file_sparseness(brain_files / "a.act.h5", stim, names=names,
                                           engine=Recording(client=cluster))
    workers = set(cluster.scheduler_info()["workers"])
    assert len(stream.data) == 3 and {t["worker"] for t in stream.data} <= workers
    assert ran == [("_layer_task", "conv1"), ("_layer_task", "conv2"), ("_layer_task", "fc")]
    for a, b in zip(here.values, there.values):
        assert a.tobytes() == b.tobytes()


def test_db_map_tables_byte_identical_on_local_cluster(cluster, brain_files, tmp_path):
    from dnnsparse.io.table import read_table

    one = _map(brain_files, tmp_path / "one")
    two = _map(brain_files, tmp_path / "two", "-scheduler", cluster.scheduler.address)
    assert sorted(one) == ["best_layer.csv", "mapping.csv"]
    assert one == two
    table = read_table(tmp_path / "two" / "mapping.csv")
    p = np.asarray(table["p"], float)
    assert len(p) == 9 and np.all((p > 0) & (p <= 1))          # 3 layers x 3 ROIs, tested


@pytest.mark.parametrize("command", ["psi", "map"])
def test_db_psi_db_map_bad_scheduler_one_line_exit_2(brain_files, tmp_path, cli_error,
                                                    command):
    import importlib

    main = importlib.import_module(f"dnnsparse.cli.{command}").main
    d, out = brain_files, tmp_path / "o"
    args = {"psi": ["-act", d / "a.act.h5", "-stim", d / "s.stim.csv"],
            "map": ["-act", d / "a.act.h5", "-stim", d / "s.stim.csv", "-nif",
                    d / "bold.nii.gz", "-roi", d / "atlas.nii.gz", "-lut", d / "lut.csv"]}
    message = cli_error(main, *args[command], "-scheduler", "local:0", "-out", out)
    assert "local:N with N >= 1" in message
    assert not out.exists()
