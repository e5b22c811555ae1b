"""-scheduler for db_ablate's channel sweep and db_searchlight on a real
dask.distributed.LocalCluster (2 worker processes, started once for the module): the
tables and maps are byte-identical to the run in one process; without -scheduler Dask
is not imported; misuse is one line, exit 2, nothing written."""
import logging
import os
import subprocess
import sys

import nibabel as nib
import numpy as np
import pytest
import torch

from dnnsparse.base.activation import Activation
from dnnsparse.base.stimulus import Stimulus
from dnnsparse.cli import ablate as db_ablate
from dnnsparse.cli import searchlight as db_searchlight
from dnnsparse.io.table import read_table
from tests.conftest import make_image_folder
from tests.cli.dask_faults import KillBusiestWorkerOnce

# A class defined in the network file (sent to the workers by value, not by import);
# the residual add reads the input of layer "body.0" after it, so a sweep there
# copies the inputs instead of the layer's output (sweep_batch's second path).
NET = '''
import torch
from torch import nn


class Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 4, 5, stride=4), nn.BatchNorm2d(4), nn.ReLU())
        self.body = nn.Sequential(nn.Conv2d(4, 4, 3, padding=1), nn.ReLU())
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(16, 1000))

    def forward(self, x):
        x = self.stem(x)
        return self.head(x + self.body(x))


def net():
    return Residual()
'''
N, SHAPE, AFFINE = 10, (5, 4, 4), np.diag([2.0, 3.0, 2.5, 1.0])


@pytest.fixture(scope="module")
def cluster():
    """Two worker processes, one thread each; started once for the module."""
    from dask.distributed import Client, LocalCluster

    lc = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None)
    client = Client(lc)
    # the commands' log handler may hold an earlier test's closed stderr: no INFO or
    # WARNING (a killed worker's restart) from the scheduler and nannies in this process
    level = logging.getLogger("distributed").level
    logging.getLogger("distributed").setLevel(logging.ERROR)
    yield client
    client.close()
    lc.close()
    logging.getLogger("distributed").setLevel(level)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("sched_abl")
    (d / "net.py").write_text(NET)
    Stimulus.from_folder(make_image_folder(d / "images")).save(d / "images.stim.csv")
    rng = np.random.default_rng(1)
    ids = [f"img{i}.png" for i in range(N)]
    Activation({"conv": rng.standard_normal((N, 3, 2, 2)), "fc": rng.standard_normal((N, 6))},
               stim_ids=ids).save(d / "a.act.h5")
    Stimulus(ids).save(d / "s.stim.csv")
    mask = rng.random(SHAPE) > 0.3
    nib.save(nib.Nifti1Image(rng.standard_normal(SHAPE + (N,)), AFFINE), str(d / "bold.nii"))
    nib.save(nib.Nifti1Image(mask.astype(np.uint8), AFFINE), str(d / "mask.nii"))
    return d


def _sweep(run_cli, data, out, *extra):
    status, stdout, err = run_cli(
        db_ablate.main, "-net", f"{data / 'net.py'}:net", "-weights", "random",
        "-stim", data / "images.stim.csv", "-target", "head.2:class=1", "stem.1:2@max",
        "-batch-size", "4", "-out", out, "-q", *extra)
    assert status == 0, err
    return {p.name: p.read_bytes() for p in out.iterdir() if p.suffix == ".csv"}


@pytest.mark.parametrize("layer, mode, threads", [("stem.0", "weights", "1"),
                                                 ("body.0", "hook", "2")])
def test_sweep_tables_byte_identical_on_local_cluster(cluster, data, run_cli, tmp_path,
                                                      layer, mode, threads):
    args = ["-sweep", layer, "-mode", mode, "-threads", threads]
    one = _sweep(run_cli, data, tmp_path / "one", *args)
    two = _sweep(run_cli, data, tmp_path / "two", *args, "-scheduler",
                 cluster.scheduler.address)
    assert sorted(one) == ["ablate.csv", "per_category.csv"]
    assert one == two
    table = read_table(tmp_path / "two" / "ablate.csv")
    assert table["ablate"].tolist() == [f"{layer}:{c}" for c in range(1, 5)]
    assert (table["n_images"] == 9).all()
    # the channels' effects differ (a table of copies of one row would also be "equal")
    assert len(set(np.round(table["output_change"], 12))) == 4


def test_killed_worker_sweep_tasks_are_rerun_identical_table(cluster, data):
    """SIGKILL the busiest worker before the first result is gathered: its tasks and
    results are lost, the scheduler re-runs them, the table is the same."""
    from dnnsparse.model import load_dnn
    from dnnsparse.pipelines import ablation_effects

    def run(engine):
        dnn = load_dnn(f"{data / 'net.py'}:net", weights="random")
        return ablation_effects(dnn, Stimulus.load(data / "images.stim.csv"),
                                sweep="body.0", mode="hook", targets=["head.2:class=1"],
                                accuracy="none", batch_size=2, show_progress=False,
                                engine=engine).table

    expected = run(None)
    engine = KillBusiestWorkerOnce(client=cluster)
    got = run(engine)
    killed = engine.killed
    assert killed["keys"] > 0
    assert sorted(got) == sorted(expected)
    for k in expected:
        assert np.asarray(got[k]).tobytes() == np.asarray(expected[k]).tobytes(), k
    assert killed["pid"] not in cluster.run(os.getpid).values()


def test_sweep_task_equals_a_direct_forward_pass(data):
    """The workers' per-image summaries against the network edited by hand."""
    import copy

    from dnnsparse.model import load_dnn, resolve_targets
    from dnnsparse.pipelines import load_images
    from dnnsparse.pipelines._ablate import _sweep_task

    dnn = load_dnn(f"{data / 'net.py'}:net", weights="random")
    stim = Stimulus.load(data / "images.stim.csv")
    targets = resolve_targets(["head.2:class=1"], dnn)
    paths = [str(p) for p in stim.paths[:4]]
    summary, error = _sweep_task(dnn, paths, "body.0", 4, targets, "head.2", None, None,
                                 "cpu", 512, False)
    assert error is None
    bv, _, av, rms, _ = summary
    images = load_images(dnn, Stimulus.load(data / "images.stim.csv"))[:4]
    with torch.inference_mode():
        intact = dnn.module(dnn.normalize(images)).double().numpy()
        np.testing.assert_allclose(bv[:, 0], intact[:, 1], rtol=1e-6)
        for c in range(4):
            edited = copy.deepcopy(dnn.module)
            edited.body[0].weight[c] = 0
            edited.body[0].bias[c] = 0
            got = edited(dnn.normalize(images)).double().numpy()
            np.testing.assert_allclose(av[c, :, 0], got[:, 1], rtol=1e-5, atol=1e-7)
            np.testing.assert_allclose(rms[c], np.sqrt(((got - intact) ** 2).mean(1)),
                                       rtol=1e-4, atol=1e-8)
    # an unreadable image is reported by its index in the batch
    (data / "broken.png").write_bytes(b"not a png")
    assert _sweep_task(dnn, paths[:2] + [str(data / "broken.png")], "body.0", 4, targets,
                       "head.2", None, None, "cpu", 512, False)[1][0] == 2


def _searchlight(run_cli, data, out, *extra):
    status, _, err = run_cli(db_searchlight.main, "-act", data / "a.act.h5", "-stim",
                             data / "s.stim.csv", "-nif", data / "bold.nii", "-mask",
                             data / "mask.nii", "-radius", 3.1, "-min-voxels", 3,
                             "-chunk-size", 7, "-out", out, "-q", *extra)
    assert status == 0, err
    return {p.name: p.read_bytes() for p in out.iterdir() if not p.name.startswith(".")}


@pytest.mark.parametrize("method", ["spearman", "kendall_tau_b"])
def test_searchlight_maps_byte_identical_on_local_cluster(cluster, data, run_cli, tmp_path,
                                                          method):
    one = _searchlight(run_cli, data, tmp_path / "one", "-method", method)
    two = _searchlight(run_cli, data, tmp_path / "two", "-method", method, "-scheduler",
                       cluster.scheduler.address)
    assert sorted(one) == ["n_features.nii", "score.nii", "searchlight.csv"]
    assert one == two
    score = np.asarray(nib.load(str(tmp_path / "two" / "score.nii")).dataobj)
    assert np.isfinite(score).sum() > 20           # maps with numbers, not only NaN


def test_searchlight_api_takes_a_client_and_a_joblib_backend(cluster):
    """Geodesic discs on a surface: a Client, a joblib backend and one thread agree."""
    from dnnsparse.algo.searchlight import SurfaceSearchlight, searchlight_scores
    from dnnsparse.utils.engine import open_engine

    rng = np.random.default_rng(2)
    grid = np.stack(np.meshgrid(np.arange(6.0), np.arange(5.0), indexing="ij"), -1)
    coords = np.c_[grid.reshape(-1, 2), rng.random(30) * 0.3]
    idx = np.arange(30).reshape(6, 5)
    faces = np.concatenate([np.c_[idx[:-1, :-1].ravel(), idx[1:, :-1].ravel(),
                                  idx[:-1, 1:].ravel()],
                            np.c_[idx[1:, :-1].ravel(), idx[1:, 1:].ravel(),
                                  idx[:-1, 1:].ravel()]])
    sl = SurfaceSearchlight(coords, faces, 1.6, distance="geodesic")
    data = rng.standard_normal((N, 30))
    models = rng.random((2, N * (N - 1) // 2))
    here = searchlight_scores(data, sl, models, chunk_size=4, return_counts=True)
    with open_engine(cluster) as engine:
        on_dask = searchlight_scores(data, sl, models, chunk_size=4, return_counts=True,
                                     engine=engine)
    assert cluster.status == "running"              # a caller's client stays open
    with open_engine("threading", n_jobs=2) as engine:
        on_joblib = searchlight_scores(data, sl, models, chunk_size=4, return_counts=True,
                                       engine=engine)
    for got in (on_dask, on_joblib):
        assert got[0].tobytes() == here[0].tobytes()
        np.testing.assert_array_equal(got[1], here[1])
    assert np.isfinite(here[0]).all() and (here[1] >= 3).all()


def test_without_scheduler_dask_is_not_imported(data, tmp_path):
    code = (
        "import sys\n"
        "from dnnsparse.cli.ablate import main as ablate\n"
        "from dnnsparse.cli.searchlight import main as searchlight\n"
        f"d = {str(data)!r}; o = {str(tmp_path)!r}\n"
        "assert ablate(['-net', d + '/net.py:net', '-weights', 'random', '-stim', "
        "d + '/images.stim.csv', '-sweep', 'stem.0', '-q', '-out', o + '/a']) == 0\n"
        "assert searchlight(['-act', d + '/a.act.h5', '-nif', d + '/bold.nii', '-radius', "
        "'3', '-q', '-out', o + '/s']) == 0\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('dask', 'distributed', 'dask_jobqueue')))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.parametrize("command, argv, words", [
    ("ablate", ["-ablate", "stem.0:1", "-scheduler", "local:2"], "runs the batches of a "
                                                                 "-sweep"),
    ("ablate", ["-sweep", "stem.0", "-scheduler", "local:0"], "local:N with N >= 1"),
    ("ablate", ["-sweep", "stem.0", "-threads", "0"], "-threads"),
    ("searchlight", ["-scheduler", "local:2", "-n-jobs", "2"], "drop -n-jobs"),
    ("searchlight", ["-scheduler", "somewhere"], "give local:N"),
])
def test_scheduler_misuse_is_one_line_exit_2(data, cli_error, tmp_path, command, argv,
                                             words):
    out = tmp_path / "o"
    if command == "ablate":
        base = [db_ablate.main, "-net", f"{data / 'net.py'}:net", "-weights", "random",
                "-stim", data / "images.stim.csv"]
    else:
        base = [db_searchlight.main, "-act", data / "a.act.h5", "-nif", data / "bold.nii",
                "-radius", 3]
    assert words in cli_error(*base, *argv, "-out", out)
    assert not out.exists()
