import logging

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

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


# ------------------------------------------------ bias lesion on BatchNorm networks
def _with_trained_bn(dnn, seed=5):
    """Give every BatchNorm the non-trivial γ, β and running statistics training leaves
    (a random-weights network has β = 0 everywhere, which no permutation can change)."""
    g = torch.Generator().manual_seed(seed)
    for m in dnn.module.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            m.weight.data = torch.rand(n, generator=g) + 0.5
            m.bias.data = torch.randn(n, generator=g)
            m.running_mean = torch.randn(n, generator=g)
            m.running_var = torch.rand(n, generator=g) + 0.5
    return dnn


def _resnet18():
    return _with_trained_bn(load_dnn("resnet18", weights="random", seed=2))


def test_bias_lesion_permutes_batchnorm_shift_of_every_resnet_layer():
    dnn = _resnet18()
    before = _params(dnn)
    lesion(dnn, "bias", seed=4)
    after = _params(dnn)
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    bns = [n for n, m in dnn.module.named_modules() if isinstance(m, nn.BatchNorm2d)]
    convs = [n for n, m in dnn.module.named_modules() if isinstance(m, nn.Conv2d)]
    assert len(bns) == len(convs) == 20
    # every conv+BN layer's β, and the classifier's bias: all 21 layers, nothing else
    assert changed == {f"{n}.bias" for n in bns} | {"fc.bias"}
    for n in bns:
        assert torch.equal(_sorted(before[f"{n}.bias"]), _sorted(after[f"{n}.bias"]))


def _expected_bias_lesion(dnn, seed):
    """The paper's bias lesion, written out for ResNet-18: layer by layer in module order,
    each layer's bias values permuted across its channels -- for a conv, the β of the
    BatchNorm that normalises its output (torchvision's ResNet: conv1 -> bn1,
    layerX.Y.convK -> bnK, downsample.0 -> downsample.1)."""
    rng = np.random.default_rng(seed)
    state = _params(dnn)
    expected = {}
    for path, m in dnn.module.named_modules():
        if isinstance(m, nn.Conv2d):
            bn = (path[:-1] + "1" if path.endswith("downsample.0")
                  else path.replace("conv", "bn"))
            key = f"{bn}.bias"
        elif isinstance(m, nn.Linear):
            key = f"{path}.bias"
        else:
            continue
        v = state[key]
        expected[key] = v[torch.as_tensor(rng.permutation(v.numel()))]
    return expected


def test_bias_lesion_matches_direct_reference_and_folded_layer():
    dnn = _resnet18()
    expected = _expected_bias_lesion(dnn, seed=9)
    bn1 = {k: v.clone() for k, v in dnn.module.bn1.state_dict().items()}
    w = dnn.module.conv1.weight.detach().clone()
    lesion(dnn, "bias", seed=9)
    after = _params(dnn)
    for key, value in expected.items():
        assert torch.equal(after[key], value), key
    # the BN-folded first layer: weights (γ/σ)·w untouched, bias β[π] - γμ/σ
    x = torch.randn(2, 3, 64, 64)
    sigma = torch.sqrt(bn1["running_var"] + dnn.module.bn1.eps)
    scale = bn1["weight"] / sigma
    folded = F.conv2d(x, w * scale[:, None, None, None],
                      expected["bn1.bias"] - bn1["running_mean"] * scale,
                      stride=2, padding=3)
    with torch.no_grad():
        got = dnn.module.bn1(dnn.module.conv1(x))
    torch.testing.assert_close(got, folded, rtol=1e-4, atol=1e-4)


def test_bias_lesion_on_chosen_layers_takes_their_batchnorm():
    dnn = _resnet18()
    before = _params(dnn)
    lesion(dnn, "bias", seed=1, layers=["layer2.0.downsample.0", "fc"])
    after = _params(dnn)
    assert {k for k in before if not torch.equal(before[k], after[k])} == {
        "layer2.0.downsample.1.bias", "fc.bias"}


def test_bias_lesion_changes_every_googlenet_layer():
    dnn = _with_trained_bn(load_dnn("googlenet", weights="random"))
    before = _params(dnn)
    lesion(dnn, "bias", seed=0)
    after = _params(dnn)
    changed = {k.rsplit(".", 2)[0] for k in before if not torch.equal(before[k], after[k])}
    layers = [n for n, _ in lesioned_layers(dnn.module)]
    assert len(layers) == 58
    # each BasicConv2d's bn, and the classifier
    assert changed == {n.rsplit(".", 1)[0] for n in layers if n != "fc"} | {"fc"}


def test_lesion_warns_about_layers_it_leaves_unchanged(caplog):
    torch.manual_seed(0)
    dnn = wrap_module(nn.Sequential(nn.Conv2d(3, 4, 3, bias=False), nn.ReLU(),
                                    nn.Conv2d(4, 4, 3), nn.Flatten(),
                                    nn.Linear(4 * 4 * 4, 3)), name="nobias")
    with caplog.at_level(logging.WARNING, logger="dnnsparse.model._lesion"):
        lesion(dnn, "bias")
    assert "left 1 layer(s) of nobias unchanged: no bias and no normalisation layer " \
           "after it: 0" in caplog.text
    caplog.clear()
    # an untrained BatchNorm network: β = 0 everywhere, so the lesion changes nothing there
    with caplog.at_level(logging.WARNING, logger="dnnsparse.model._lesion"):
        lesion(load_dnn("resnet18", weights="random"), "bias")
    assert "left 20 layer(s) of resnet18 unchanged: all values equal: conv1, " in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="dnnsparse.model._lesion"):
        lesion(_small_net(), "weights")
    assert not caplog.text


def test_bias_lesion_keeps_training_mode_and_statistics():
    dnn = _resnet18()
    dnn.module.train()
    stats = {k: v.clone() for k, v in _params(dnn).items() if "running" in k}
    lesion(dnn, "bias", seed=0)
    assert all(m.training for m in dnn.module.modules())
    after = _params(dnn)
    assert all(torch.equal(v, after[k]) for k, v in stats.items())
