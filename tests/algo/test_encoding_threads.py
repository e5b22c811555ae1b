"""db_encode's tables do not depend on the BLAS thread count of the process, nor (float64
targets) on the voxel batch a voxel is in.

OpenBLAS's eigensolver (``syevd``) and some ``dgemm`` shapes round differently with 2
threads than with 1 from about 200 features on.  Dask workers run with 1 BLAS thread,
so db_encode's tasks run with 1 BLAS thread in this process too
(:mod:`dnnsparse.pipelines._encoding_tasks`).  Before that, ``benchmarks/scale.py``'s
tables differed by |dr| <= 1.4e-15 between ``-scheduler local:2`` and one process."""
import os
import subprocess
import sys

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from dnnsparse.base.activation import Activation
from dnnsparse.pipelines import Responses, layer_mask, run_encoding

P = 224                       # features: 1- and 2-thread OpenBLAS results differ here


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, P)).astype(np.float32)
    Y = (X @ rng.standard_normal((P, 12)).astype(np.float32) * (3 / np.sqrt(P))
         + rng.standard_normal((300, 12)).astype(np.float32))
    return X, Y


def _run(X, Y, tmp_path, **kw):
    act = Activation({"fc": X})
    res = run_encoding(act, layer_mask(act), Responses(Y, source="synthetic"),
                       out=tmp_path, save_models=False, alphas=[1.0, 100.0, 1e4], cv=3,
                       inner_cv=3, n_perm=2, max_stat=True, seed=0, **kw)
    return {k: np.asarray(v) for k, v in res.scores.items()}


def _same(a, b):
    """Byte-identical numbers (float columns), equal values (names)."""
    if a.dtype.kind in "fc":
        return a.dtype == b.dtype and a.tobytes() == b.tobytes()
    return a.tolist() == b.tolist()


def test_encode_tables_same_bytes_whatever_the_blas_threads(data, tmp_path):
    X, Y = data
    runs = []
    for threads, kw in ((1, {}), (2, {}), (2, {"n_jobs": 2, "voxel_batch": 6}),
                        (1, {"voxel_batch": 6})):
        with threadpool_limits(limits=threads):
            runs.append(_run(X, Y, tmp_path, **kw))
    assert runs[0].keys() == runs[1].keys()
    for k in runs[0]:
        assert _same(runs[0][k], runs[1][k]), k   # 1 vs 2 BLAS threads
        assert _same(runs[2][k], runs[3][k]), k   # batches, 2 job threads
    r = runs[0]["r"].astype(float)
    # an independent check of the scores: every voxel is predicted, r in (0, 1)
    assert np.all((r > 0.5) & (r < 1))


@pytest.mark.parametrize("inner_cv, model", [(3, "ridge"), ("loo", "ridge"), (3, "glm")])
def test_float64_voxel_same_bytes_in_any_batch(inner_cv, model):
    """A lone column (a batch of 1 voxel with its alpha) went through GEMV, which rounds
    differently from GEMM: products now always have >= 2 columns.  (float32 targets:
    OpenBLAS's SGEMM rounds a column differently for different column counts, so
    float32 batches agree only to rounding.)"""
    from dnnsparse.pipelines._encoding_tasks import _encode_task

    rng = np.random.default_rng(1)
    X = rng.standard_normal((40, 6)).astype(np.float32)
    Y = X.astype(np.float64) @ rng.standard_normal((6, 24)) + rng.standard_normal((40, 24))
    kw = dict(model=model, alphas=[0.1, 10, 1000.0] if model == "ridge" else None, cv=3,
              inner_cv=inner_cv, seed=3, n_perm=3)
    whole = _encode_task(X, Y, None, kw)
    for b in (2, 5, 7):
        parts = [_encode_task(X, Y, (s, min(s + b, 24)), kw) for s in range(0, 24, b)]
        for attr in ("r", "r2", "p"):
            got = np.concatenate([getattr(part, attr) for part in parts])
            assert got.tobytes() == getattr(whole, attr).tobytes(), (b, attr)
    # and the batches' r is Pearson's r of the held-out predictions (independent check)
    from dnnsparse.algo.encoding import encode

    res = encode(X, Y, **{k: v for k, v in kw.items() if k != "n_perm"})
    r = [np.corrcoef(Y[:, j], res.predictions[:, j])[0, 1] for j in range(24)]
    np.testing.assert_allclose(whole.r, r, rtol=1e-12)


def test_first_run_of_a_process_with_2_blas_threads_same_bytes(tmp_path):
    """A fresh process with 2 BLAS threads: SciPy's BLAS is loaded during the first run;
    the limit must cover it (it did not: the first table differed from later ones)."""
    code = f"""
import numpy as np
from threadpoolctl import threadpool_limits
from dnnsparse.base.activation import Activation
from dnnsparse.pipelines import Responses, layer_mask, run_encoding
rng = np.random.default_rng(0)
X = rng.standard_normal((300, {P})).astype(np.float32)
Y = (X @ rng.standard_normal(({P}, 12)).astype(np.float32) * (3 / np.sqrt({P}))
     + rng.standard_normal((300, 12)).astype(np.float32))
def run():
    act = Activation({{"fc": X}})
    return np.asarray(run_encoding(act, layer_mask(act), Responses(Y, source="s"),
                                   out=".", save_models=False, alphas=[1.0, 100.0, 1e4],
                                   cv=3, inner_cv=3, seed=0).scores["r"], dtype=float)
first = run()
with threadpool_limits(limits=1):
    second = run()
print(first.tobytes() == second.tobytes(), first.min() > 0.5)
"""
    env = {**os.environ, "OMP_NUM_THREADS": "2", "OPENBLAS_NUM_THREADS": "2"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "True"]
