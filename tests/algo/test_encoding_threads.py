"""db_encode's tables do not depend on the BLAS thread count of the process.

OpenBLAS's eigensolver (``syevd``) and some ``dgemm`` shapes round differently with 2
threads than with 1 from about 200 features on.  Dask workers run with 1 BLAS thread,
so db_encode's tasks run with 1 BLAS thread in this process too
(:mod:`dnnsparse.pipelines._encoding_tasks`).  Before that, ``benchmarks/scale.py``'s
tables differed by |dr| <= 1.4e-15 between ``-scheduler local:2`` and one process."""
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
