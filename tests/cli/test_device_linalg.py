"""db_encode / db_rsa with -device: the solvers on torch tensors (CPU torch here) give the
NumPy tables; -device cuda without CUDA is one line and exit 2."""
import nibabel as nib
import numpy as np
import pytest

from dnnsparse.base.activation import Activation
from dnnsparse.cli.encode import main as encode_main
from dnnsparse.io.table import read_table

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.usefixtures("one_blas_thread")

N, GRID = 40, (2, 3, 4)


@pytest.fixture
def data(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((N, 3, 2, 2)).astype(np.float64)
    Activation({"conv": X}, stim_ids=[f"s{i}.png" for i in range(N)]).save(tmp_path / "a.act.h5")
    W = rng.standard_normal((12, int(np.prod(GRID))))
    Y = X.reshape(N, -1) @ W * 0.3 + rng.standard_normal((N, W.shape[1]))
    nib.save(nib.Nifti1Image(np.moveaxis(Y.reshape((N,) + GRID), 0, -1), np.eye(4)),
             str(tmp_path / "beta.nii.gz"))
    return tmp_path


def _encode(run_cli, d, out, *extra):
    status, _, err = run_cli(encode_main, "-act", d / "a.act.h5", "-q", "-layer", "conv",
                             "-resp", d / "beta.nii.gz", "-alphas", "0.1", "10", "1000",
                             "-n-perm", 9, "-seed", 1, "-no-plot", "-out", d / out, *extra)
    return status, err


def test_encode_device_cpu_equals_numpy(run_cli, data):
    assert _encode(run_cli, data, "np")[0] == 0
    status, err = _encode(run_cli, data, "torch", "-device", "cpu")
    assert status == 0, err
    ref, out = read_table(data / "np" / "scores.tsv"), read_table(data / "torch" / "scores.tsv")
    np.testing.assert_allclose(out["r"], ref["r"], atol=1e-10)
    np.testing.assert_array_equal(out["p"], ref["p"])
    np.testing.assert_array_equal(out["alpha"], ref["alpha"])
    status, err = _encode(run_cli, data, "t32", "-device", "cpu", "-dtype", "float32")
    assert status == 0, err
    np.testing.assert_allclose(read_table(data / "t32" / "scores.tsv")["r"], ref["r"],
                               atol=1e-4)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA refusal")
def test_encode_cuda_without_cuda_is_one_line(run_cli, data):
    status, err = _encode(run_cli, data, "cuda", "-device", "cuda")
    assert status == 2 and len(err.strip().splitlines()) == 1 and "CUDA" in err
    assert not (data / "cuda").exists()
