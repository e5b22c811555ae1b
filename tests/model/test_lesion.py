import pytest
import torch
from torch import nn

from dnnsparse.errors import InputError
from dnnsparse.model import LESIONS, lesion, lesioned_layers
from dnnsparse.model import load_dnn, wrap_module


def _small_net():
    torch.manual_seed(7)
    return wrap_module(nn.Sequential(nn.Conv2d(3, 6, 3), nn.ReLU(inplace=True),
                                     nn.Conv2d(6, 5, 3), nn.ReLU(), nn.Flatten(),
                                     nn.Linear(5 * 4 * 4, 7)), name="small")


def _params(dnn):
    return {k: v.clone() for k, v in dnn.module.state_dict().items()}


@pytest.fixture(scope="module")
def original():
    return _params(_small_net())


def _lesioned(kind, seed=0):
    return lesion(_small_net(), kind, seed=seed)


def _sorted(t):
    return torch.sort(t.reshape(-1)).values


@pytest.mark.parametrize("kind", ["weights", "weights-channels", "weights-kernels"])
def test_weight_permutations_keep_each_layers_values(kind, original):
    dnn = _lesioned(kind)
    after = _params(dnn)
    for path, _ in lesioned_layers(dnn.module):
        w0, w1 = original[f"{path}.weight"], after[f"{path}.weight"]
        assert torch.equal(_sorted(w0), _sorted(w1))                  # same multiset
        assert not torch.equal(w0, w1)
        assert torch.equal(original[f"{path}.bias"], after[f"{path}.bias"])   # untouched
        rows0 = w0.reshape(w0.shape[0], -1)
        rows1 = w1.reshape(w1.shape[0], -1)
        if kind == "weights-channels":
            # every output kernel is one of the original kernels, intact
            match = (rows1[:, None, :] == rows0[None, :, :]).all(-1)
            assert torch.equal(match.sum(0), torch.ones(len(rows0), dtype=torch.long))
        if kind == "weights-kernels":
            # channel order intact: each channel keeps its own values, shuffled
            assert torch.equal(torch.sort(rows0, 1).values, torch.sort(rows1, 1).values)
    assert dnn.lesions == [f"{kind}(seed=0)"]


def test_bias_permutation(original):
    after = _params(_lesioned("bias", seed=3))
    for k in original:
        if k.endswith(".weight"):
            assert torch.equal(original[k], after[k])
        else:
            assert torch.equal(_sorted(original[k]), _sorted(after[k]))
            assert not torch.equal(original[k], after[k])


def test_lesions_repeat_with_seed(original):
    a, b, c = (_params(_lesioned("weights-kernels", s)) for s in (1, 1, 2))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["0.weight"], c["0.weight"])


def test_relu_lesion_removes_every_relu_and_reads_preactivation():
    dnn = lesion(load_dnn("alexnet", weights="random", seed=1), "relu")
    assert not [m for m in dnn.module.modules() if isinstance(m, (nn.ReLU, nn.ReLU6))]
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        out = dnn.forward_layers(x, ["conv1", "conv1_relu"])
    torch.testing.assert_close(out["conv1"], out["conv1_relu"])
    assert (out["conv1_relu"] < 0).any()
    g = lesion(load_dnn("googlenet", weights="random"), "relu")
    with torch.no_grad():
        c1 = g.forward_layers(torch.randn(1, 3, 224, 224), ["conv1"])["conv1"]
    assert (c1 < 0).any()                      # BasicConv2d's functional ReLU is gone too


def test_lesion_errors():
    dnn = _small_net()
    with pytest.raises(InputError, match="Unknown lesion"):
        lesion(dnn, "weight")
    with pytest.raises(InputError, match="not convolutional or linear"):
        lesion(dnn, "weights", layers=["1"])
    assert set(LESIONS) == {"weights", "weights-channels", "weights-kernels", "bias", "relu"}
