"""Ablation of channels and units: exact zeros, hand-edited networks, sweeps, bad input."""
import copy

import numpy as np
import pytest
import torch
from torch import nn

from dnnsparse.errors import InputError, UnknownLayerError
from dnnsparse.model import (DNN, ablate, resolve_ablations, resolve_targets, sweep_batch,
                             sweep_copies_at_layer, sweep_point, target_outputs)


def _bn_net(seed=0):
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(),
                        nn.MaxPool2d(2), nn.Conv2d(6, 5, 3), nn.ReLU(inplace=True),
                        nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(20, 10))
    bn = net[1]
    with torch.no_grad():          # a "trained" BN: nothing cancels by accident
        bn.running_mean.normal_()
        bn.running_var.uniform_(0.5, 2)
        bn.weight.normal_()
        bn.bias.normal_()
    return net.eval()


class _Residual(nn.Module):
    """conv -> relu -> conv, plus a skip from before the ablated layer (no copies there)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(1)
        self.a = nn.Conv2d(3, 4, 3, padding=1)
        self.b = nn.Conv2d(4, 4, 3, padding=1)
        self.relu = nn.ReLU()
        self.head = nn.Linear(4, 7)
        self.eval()

    def forward(self, x):
        h = self.a(x)
        y = self.relu(self.b(self.relu(h)) + h)
        return self.head(y.mean(dim=(2, 3)))


class _Zero(nn.Module):
    def __init__(self, channel):
        super().__init__()
        self.channel = channel

    def forward(self, x):
        x = x.clone()
        x[:, self.channel] = 0
        return x


def _dnn(net):
    return DNN(net, input_size=(24, 24))


@pytest.fixture
def x():
    return torch.randn(5, 3, 24, 24, generator=torch.Generator().manual_seed(3))


def _weights_edited(net, c):
    """By hand: conv 0's filter c and bias c, BN 1's gamma c and beta c set to 0."""
    edited = copy.deepcopy(net)
    with torch.no_grad():
        for p in (edited[0].weight, edited[0].bias, edited[1].weight, edited[1].bias):
            p[c] = 0
    return edited


@pytest.mark.parametrize("layer", ["0", "1", "2"])     # conv, its BN, the ReLU after
def test_weights_mode_zero_and_hand_edited(layer, x):
    net = _bn_net()
    dnn = _dnn(net)
    handle = ablate(dnn, [f"{layer}:3"], mode="weights")
    with torch.no_grad():
        out = dnn.forward_layers(x, ["0", "1", "2", "8"], stop_early=False)
        expected = _weights_edited(_bn_net(), 2)(x)
    for l in ("0", "1", "2"):
        assert torch.count_nonzero(out[l][:, 2]) == 0
        assert torch.count_nonzero(out[l][:, [0, 1, 3, 4, 5]]) > 0
    np.testing.assert_array_equal(out["8"].flatten(1).numpy(), expected.numpy())
    assert dnn.ablation_attrs() == {"ablate": f"{layer}:3", "ablate_mode": "weights"}
    handle.remove()                                      # restored exactly
    assert dnn.ablations == []
    with torch.no_grad():
        np.testing.assert_array_equal(dnn(x).numpy(), _bn_net()(x).numpy())


def test_hook_mode_zero_and_hand_edited(x):
    dnn = _dnn(_bn_net())
    ablate(dnn, ["4:2,5"], mode="hook")
    net = _bn_net()
    edited = nn.Sequential(*net[:5], _Zero(1), _Zero(4), *net[5:]).eval()
    with torch.no_grad():
        out = dnn.forward_layers(x, ["4", "8"], stop_early=False)
        expected = edited(x)
    assert torch.count_nonzero(out["4"][:, [1, 4]]) == 0
    np.testing.assert_array_equal(out["8"].flatten(1).numpy(), expected.numpy())
    # the hook mode leaves the BN after a conv alone: 0 at the conv, not after the BN
    dnn = _dnn(_bn_net())
    ablate(dnn, ["0:1"], mode="hook")
    with torch.no_grad():
        out = dnn.forward_layers(x, ["0", "1"])
    assert torch.count_nonzero(out["0"][:, 0]) == 0 and torch.count_nonzero(out["1"][:, 0]) > 0


def test_unit_hook(x):
    dnn = _dnn(_bn_net())
    with torch.no_grad():
        before = dnn.forward_layers(x, ["4"])["4"]
    ablate(dnn, ["4:2@3,4"], mode="hook")
    with torch.no_grad():
        after = dnn.forward_layers(x, ["4"])["4"]
    changed = (after != before).nonzero()[:, 1:].unique(dim=0).tolist()
    assert changed == [[1, 2, 3]] and torch.count_nonzero(after[:, 1, 2, 3]) == 0
    assert dnn.ablation_attrs()["ablate"] == "4:2@3,4"


@pytest.mark.parametrize("mode", ["weights", "hook"])
@pytest.mark.parametrize("kind", ["sequential", "residual"])
def test_sweep_equals_single_ablations(kind, mode, x):
    net = _bn_net() if kind == "sequential" else _Residual()
    dnn = _dnn(net)
    layer, out_layer = ("0", "8") if kind == "sequential" else ("b", "head")
    n_chn = 6 if kind == "sequential" else 4
    targets = resolve_targets(["4:2", "4:1@max"] if kind == "sequential" else
                              ["relu:3", "head:2"], dnn)
    state = {}
    with torch.no_grad():
        (bv, bo), (av, ao) = sweep_batch(dnn, x, sweep_point(dnn, layer, mode), n_chn,
                                         targets, out_layer, max_rows=8, state=state)
        ref = target_outputs(dnn, x, targets, out_layer)
        for c in range(n_chn):
            handle = ablate(dnn, [f"{layer}:{c + 1}"], mode=mode)
            v, o = target_outputs(dnn, x, targets, out_layer)
            handle.remove()
            np.testing.assert_allclose(av[c].numpy(), v.numpy(), rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(ao[c].numpy(), o.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(bv.numpy(), ref[0].numpy())
    # copies at the layer pass through a plain chain; a skip connection needs input copies
    assert state["at_layer"] is (kind == "sequential")
    # the probe says so before any batch, also where one image's copies would broadcast
    point = sweep_point(dnn, layer, mode)
    assert sweep_copies_at_layer(dnn, point, targets, out_layer) is (kind == "sequential")
    with torch.no_grad():
        one = sweep_batch(dnn, x[:1], point, n_chn, targets, out_layer, max_rows=8,
                          state={})
    if kind == "residual":             # a single image's copies broadcast over the skip
        np.testing.assert_allclose(one[1][1].numpy(), ao[:, :1].numpy(), rtol=1e-5,
                                   atol=1e-6)


def test_bad_ablations():
    dnn = _dnn(_bn_net())
    with pytest.raises(InputError, match="channel 7 is out of range.*6 channels"):
        resolve_ablations(["0:2,7"], dnn)
    with pytest.raises(UnknownLayerError, match="unknown layer 'conv9'"):
        resolve_ablations(["conv9:1"], dnn)
    with pytest.raises(InputError, match="cannot read ablation"):
        resolve_ablations(["0:two"], dnn)
    with pytest.raises(InputError, match="cannot read ablation"):
        resolve_ablations(["8:class=1"], dnn)
    with pytest.raises(InputError, match="unit cannot be silenced through the weights"):
        resolve_ablations(["4:1@2,2"], dnn, mode="weights")
    with pytest.raises(InputError, match="use the hook mode"):
        resolve_ablations(["7:1"], dnn, mode="weights")      # Flatten: no producer traced
    assert resolve_ablations(["7:1"], dnn, mode="hook")[0].channels == (1,)
    assert dnn.ablations == []


def test_tracing_a_network_in_training_mode_leaves_batchnorm_statistics(x):
    """The trace behind the weights mode runs in eval mode and restores each module's mode."""
    net = _bn_net()
    dnn = _dnn(net)
    net.train()
    net[3].eval()                                       # a mixed state comes back as it was
    bn = net[1]
    stats = [t.clone() for t in (bn.running_mean, bn.running_var, bn.num_batches_tracked)]
    handle = ablate(dnn, ["0:2"], mode="weights")
    for old, new in zip(stats, (bn.running_mean, bn.running_var, bn.num_batches_tracked)):
        assert torch.equal(old, new)
    assert [m.training for m in net] == [True] * 3 + [False] + [True] * 5 and net.training
    handle.remove()
    # without the eval mode the blank image would have moved the statistics
    net.train()
    with torch.no_grad():
        net(torch.zeros(1, 3, 24, 24))
    assert not torch.equal(stats[0], bn.running_mean)
