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


def test_encode_device_cpu_equals_numpy(run_cli, data, monkeypatch):
    from dnnsparse.algo.encoding import _solvers

    assert _encode(run_cli, data, "np")[0] == 0
    calls = []                                   # the torch decomposition is the one taken
    init = _solvers.RidgeDecomposition._init_xp

    def spy(self, X, like, *a):
        calls.append(type(like).__module__)
        return init(self, X, like, *a)
    monkeypatch.setattr(_solvers.RidgeDecomposition, "_init_xp", spy)
    status, err = _encode(run_cli, data, "torch", "-device", "cpu")
    assert status == 0, err
    assert calls and set(calls) == {"torch"}
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


@pytest.fixture
def rsa_files(tmp_path):
    rng = np.random.default_rng(1)
    n, shape = 14, (4, 5, 6)
    ids = [f"img{i}.png" for i in range(n)]
    Activation({"conv": rng.standard_normal((n, 3, 2, 2)), "fc": rng.standard_normal((n, 9))},
               stim_ids=ids).save(tmp_path / "a.act.h5")
    atlas = rng.integers(0, 3, shape)
    nib.save(nib.Nifti1Image(atlas.astype(np.int16), np.eye(4)), str(tmp_path / "atlas.nii.gz"))
    (tmp_path / "lut.csv").write_text("label,name\n1,V1\n2,FFA\n")
    bold = rng.standard_normal(shape + (n,))
    nib.save(nib.Nifti1Image(bold, np.eye(4)), str(tmp_path / "sub1.nii.gz"))
    return tmp_path


def _rsa(run_cli, d, out, *extra):
    from dnnsparse.cli.rsa import main
    return run_cli(main, "-act", d / "a.act.h5", "-nif", d / "sub1.nii.gz", "-roi",
                   d / "atlas.nii.gz", "-lut", d / "lut.csv", "-n-perm", 60, "-seed", 2,
                   "-method", "spearman", "-layer", "conv", "-iteraxis", "channel",
                   "-no-plot", "-q",
                   "-out", d / out, *extra)


def test_rsa_device_cpu_equals_numpy(run_cli, rsa_files, monkeypatch):
    from dnnsparse.algo.rsa import _inference, _rdm
    from dnnsparse.io.rdm import read_rdm_file

    d = rsa_files
    assert _rsa(run_cli, d, "np")[0] == 0
    calls = []                                   # the torch path is the one taken
    for module, name in ((_rdm, "xp_rdm"), (_inference, "xp_permutation_null")):
        def spy(*a, _f=getattr(module, name), _n=name, **k):
            calls.append((_n, type(a[0]).__module__))
            return _f(*a, **k)
        monkeypatch.setattr(module, name, spy)
    status, _, err = _rsa(run_cli, d, "torch", "-device", "cpu")
    assert status == 0, err
    assert {c for c in calls} == {("xp_rdm", "torch"), ("xp_permutation_null", "torch")}
    for name in ("dnn.rdm.h5", "brain.rdm.h5"):
        ref, out = read_rdm_file(d / "np" / name)[1], read_rdm_file(d / "torch" / name)[1]
        assert list(ref) == list(out)
        for k in ref:
            np.testing.assert_allclose(out[k], ref[k], rtol=0, atol=1e-10)
    ref = read_table(d / "np" / "similarity.csv")
    out = read_table(d / "torch" / "similarity.csv")
    np.testing.assert_allclose(out["score"], ref["score"], atol=1e-10)
    np.testing.assert_array_equal(out["p"], ref["p"])
    status, _, err = _rsa(run_cli, d, "cuda", "-device", "cuda")
    if not torch.cuda.is_available():
        assert status == 2 and len(err.strip().splitlines()) == 1
        assert not (d / "cuda").exists()
