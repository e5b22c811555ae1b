"""PSI is the same to the last bit whatever the machine does: one or many threads, a
kernel compiled in this process or loaded from numba's disk cache (issue 11, item 19)."""
import hashlib
import os
import subprocess
import sys

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from dnnsparse.algo.sparseness import _kernel as _sparseness_kernel
from dnnsparse.algo.sparseness import _measures as sp_module
from dnnsparse.algo.sparseness import hoyer_sparseness, population_sparseness

numba = pytest.importorskip("numba")


def _inputs():
    """Awkward shapes: a single block, many blocks, 8 column ranges, float32 and
    float64, row lengths that are no multiple of the 32 values per vector step."""
    rng = np.random.default_rng(7)
    big = np.maximum(rng.standard_normal((37, 30_011)), 0)        # 8 ranges, 1.1 M values
    return {"small32": (1000.0 + rng.random((12, 300))).astype(np.float32),
            "odd64": rng.gamma(0.5, size=(45, 1003)),
            "big64": big,
            "big32": big.astype(np.float32)}


# Run in a fresh interpreter: PSI of every input, as hex digests of the float64 bits.
_SCRIPT = """
import hashlib, sys
sys.path.insert(0, {tests!r})
from test_sparseness_determinism import _inputs
from dnnsparse.algo.sparseness import population_sparseness
for name, x in _inputs().items():
    print(name, hashlib.sha256(population_sparseness(x).tobytes()).hexdigest())
"""


def _digests():
    return {name: hashlib.sha256(population_sparseness(x).tobytes()).hexdigest()
            for name, x in _inputs().items()}


def _run_fresh(cache_dir):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache_dir))
    script = _SCRIPT.format(tests=os.path.dirname(__file__))
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                         text=True, timeout=600, check=True).stdout
    return dict(line.split() for line in out.splitlines())


def test_row_sums_follow_the_fixed_order():
    """The compiled row sums (explicit vectors) equal the plain-Python reference of
    their order bit for bit, for every remainder of the 8-lane and 32-value steps."""
    rng = np.random.default_rng(3)
    for n in [0, 1, 7, 8, 9, 31, 32, 33, 40, 63, 64, 65, 100, 160, 1001]:
        z = rng.standard_normal(n) * 10 ** rng.uniform(-3, 3, n)
        m = float(z.min()) if n else 0.0
        got = _sparseness_kernel._shifted_sums(z, n, m)
        assert got == _sparseness_kernel.shifted_sums_reference(z, m), n
    # the order matters: a plain left-to-right sum differs in the last bits here
    z = rng.standard_normal(1001)
    ordered = sum(float(v) + 3.0 for v in z)
    assert _sparseness_kernel.shifted_sums_reference(z, -3.0)[0] != ordered
    assert _sparseness_kernel.shifted_sums_reference(z, -3.0)[0] == pytest.approx(ordered,
                                                                                   rel=1e-13)


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "numpy"])
def test_same_bits_with_one_or_many_cpus(monkeypatch, compiled):
    """The column ranges depend on the shape, not on the CPUs: 1, 2, 3 or 8 of them
    give identical bits (PSI and Hoyer), through the kernel and the NumPy path."""
    monkeypatch.setattr(_sparseness_kernel, "AVAILABLE", compiled)
    inputs = _inputs()
    assert len(sp_module._column_ranges(inputs["big64"])) == 8
    results = {}
    for cpus in (1, 2, 3, 8):
        monkeypatch.setattr(sp_module.os, "sched_getaffinity", lambda pid, n=cpus: set(range(n)),
                            raising=False)
        monkeypatch.setattr(sp_module.os, "cpu_count", lambda n=cpus: n)
        assert sp_module._threads() == cpus
        results[cpus] = [population_sparseness(x) for x in inputs.values()]
        results[cpus].append(hoyer_sparseness(inputs["big32"], normalize=True))
    for cpus in (2, 3, 8):
        for got, ref in zip(results[cpus], results[1]):
            assert_array_equal(got, ref)


def test_a_worker_error_reaches_the_caller(monkeypatch):
    """An error in a range summed by another thread is raised, and nothing is left
    running (the NaN sits in the last of the 8 ranges)."""
    x = _inputs()["big64"].copy()
    x[3, -5] = np.nan
    monkeypatch.setattr(sp_module.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3},
                        raising=False)
    with pytest.raises(Exception, match="NaN"):
        population_sparseness(x)


def test_fresh_compile_and_cached_kernel_give_the_same_bits(tmp_path):
    """A first run compiles the kernel into an empty numba cache, a second loads it from
    there; both, and this process, give the same bits (a first db_psi run once wrote
    0.22867281810994292 where later runs wrote 0.2286728181099435)."""
    fresh = _run_fresh(tmp_path / "numba-cache")
    assert any((tmp_path / "numba-cache").rglob("*.nbi"))              # the cache was written
    cached = _run_fresh(tmp_path / "numba-cache")
    assert fresh == cached
    assert fresh == _digests()
