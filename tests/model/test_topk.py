"""Tests of Top-K sparsification against a plain-loop reference, and of insert_topk."""
import numpy as np
import pytest
import torch
import torchvision
from torch import nn

from dnnsparse.model import TopK, insert_topk, topk_count, topk_mask, topk_sparsify
from dnnsparse.errors import InputError, UnknownLayerError

FRACTIONS = [0.01, 0.1, 0.25, 0.5, 0.99, 1.0]


# ----------------------------------------------------------------- slow reference
def reference_mask(rows, fraction):
    """Plain-Python Top-K: sort each row by (-|x|, index), keep the first k."""
    rows = rows.tolist()
    mask = []
    for row in rows:
        k = max(1, int(fraction * len(row)))
        # NaN ranks above everything, as documented
        order = sorted(range(len(row)),
                       key=lambda i: (0 if row[i] != row[i] else 1, -abs(row[i]), i))
        kept = set(order[:k])
        mask.append([i in kept for i in range(len(row))])
    return torch.tensor(mask, dtype=torch.bool).reshape(len(rows), -1)


def reference(x, fraction, mode):
    """Loop over images and channels of a (n, c, h, w) tensor."""
    out = torch.zeros_like(x)
    n, c = x.shape[:2]
    for i in range(n):
        for j in range(c):
            flat = x[i, j].reshape(-1)
            m = reference_mask(flat[None], fraction)[0]
            if mode == "keep":
                vals = torch.where(m, flat, torch.zeros(()))
            elif mode == "inverse":
                vals = torch.where(m, torch.zeros(()), flat)
            else:
                mean = sum(float(v) for v in flat[m].double()) / int(m.sum())
                vals = torch.where(m, torch.tensor(mean, dtype=x.dtype), torch.zeros(()))
            out[i, j] = vals.reshape(x.shape[2:])
    return out


@pytest.fixture
def tied():
    """(n, c, h, w) = (2, 3, 5, 7) with many ties: integers in [-3, 3], plenty of zeros."""
    gen = torch.Generator().manual_seed(0)
    return torch.randint(-3, 4, (2, 3, 5, 7), generator=gen).float()


@pytest.fixture
def smooth():
    gen = torch.Generator().manual_seed(1)
    return torch.randn(3, 4, 6, 5, generator=gen, dtype=torch.float64)


# ------------------------------------------------------------------------ the op
@pytest.mark.parametrize("fraction", FRACTIONS)
@pytest.mark.parametrize("data", ["tied", "smooth"])
def test_mask_matches_loop_reference_with_ties(fraction, data, request):
    x = request.getfixturevalue(data)
    n, c, h, w = x.shape
    mask = topk_mask(x, fraction)
    k = max(1, int(fraction * h * w))
    assert (mask.sum(dim=(2, 3)) == k).all()          # exactly k, ties or not
    ref = reference_mask(x.reshape(n * c, h * w), fraction).reshape(x.shape)
    assert torch.equal(mask, ref)                      # lower flat index wins ties


@pytest.mark.parametrize("fraction", FRACTIONS)
@pytest.mark.parametrize("mode", ["keep", "mean", "inverse"])
@pytest.mark.parametrize("data", ["tied", "smooth"])
def test_sparsify_matches_loop_reference(fraction, mode, data, request):
    x = request.getfixturevalue(data)
    out = topk_sparsify(x, fraction, mode=mode)
    assert out.shape == x.shape and out.dtype == x.dtype
    ref = reference(x, fraction, mode)
    if mode == "mean":
        torch.testing.assert_close(out, ref, rtol=1e-6, atol=1e-12)
    else:
        assert torch.equal(out, ref)


@pytest.mark.parametrize("mode", ["keep", "mean", "inverse"])
def test_input_untouched_and_not_aliased(tied, mode):
    x = tied.clone()
    with torch.inference_mode():
        out = topk_sparsify(x, 0.2, mode=mode)
    assert torch.equal(x, tied)
    assert out.data_ptr() != x.data_ptr()
    again = topk_sparsify(x, 0.2, mode=mode)        # outside inference mode: same values
    assert torch.equal(out, again)


def test_keep_values_signs_and_inverse_complement(smooth):
    mask = topk_mask(smooth, 0.2)
    kept = topk_sparsify(smooth, 0.2)
    inverse = topk_sparsify(smooth, 0.2, mode="inverse")
    assert torch.equal(kept[mask], smooth[mask])      # values and signs unchanged
    assert (kept[~mask] == 0).all()
    assert (smooth[mask] < 0).any()                   # negative values do get kept
    assert torch.equal(kept + inverse, smooth)        # the two parts add up
    assert (inverse[mask] == 0).all()


def test_mean_mode_writes_channel_mean(smooth):
    mask = topk_mask(smooth, 0.3)
    out = topk_sparsify(smooth, 0.3, mode="mean")
    for i in range(smooth.shape[0]):
        for j in range(smooth.shape[1]):
            m = mask[i, j]
            expected = smooth[i, j][m].mean()
            assert torch.allclose(out[i, j][m], expected.expand(int(m.sum())))
            assert (out[i, j][~m] == 0).all()


def test_all_equal_keeps_first_k_positions():
    x = torch.full((1, 2, 4, 4), 2.5)
    mask = topk_mask(x, 0.25)
    expected = torch.zeros(16, dtype=torch.bool)
    expected[:4] = True
    assert torch.equal(mask[0, 0].reshape(-1), expected)
    assert torch.equal(mask[0, 1].reshape(-1), expected)
    # the mean variant must use exactly these positions too
    out = topk_sparsify(x, 0.25, mode="mean")
    assert torch.equal(out != 0, mask)


def test_ties_straddling_threshold_use_lower_index():
    # |x| = 5 (one), 3 (four tied); k = 3 -> the 5 and the first two 3s
    x = torch.tensor([[[[3.0, -3.0, 1.0], [5.0, 3.0, -3.0]]]])
    out = topk_sparsify(x, 0.5)
    assert out.reshape(-1).tolist() == [3.0, -3.0, 0.0, 5.0, 0.0, 0.0]


def test_fraction_one_is_identity(smooth):
    assert topk_sparsify(smooth, 1.0) is smooth
    assert topk_sparsify(smooth, 1) is smooth
    assert TopK(1.0)(smooth) is smooth


def test_nan_ranks_first():
    x = torch.tensor([[[[1.0, float("nan")], [3.0, 2.0]]]])
    mask = topk_mask(x, 0.5)
    assert mask.reshape(-1).tolist() == [False, True, True, False]


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_other_float_dtypes(tied, dtype):
    x = tied.to(dtype) * 0.5
    out = topk_sparsify(x, 0.3)
    assert out.dtype == dtype
    assert torch.equal(out.float(), reference(x.float(), 0.3, "keep"))


def test_fc_input_selects_over_features(rng):
    x = torch.from_numpy(rng.integers(-2, 3, size=(4, 9)).astype(np.float32))
    mask = topk_mask(x, 0.4)
    assert torch.equal(mask, reference_mask(x, 0.4))
    assert (mask.sum(1) == 3).all()
    assert torch.equal(topk_sparsify(x, 0.4), torch.where(mask, x, torch.zeros(())))


def test_token_map_selects_over_tokens(rng):
    x = torch.from_numpy(rng.integers(-2, 3, size=(2, 10, 3)).astype(np.float32))
    mask = topk_mask(x, 0.3)
    assert (mask.sum(1) == 3).all()                    # per sample and feature
    for i in range(2):
        assert torch.equal(mask[i].T, reference_mask(x[i].T, 0.3))
    out = topk_sparsify(x, 0.3, mode="mean")
    kept_mean = (x * mask).sum(1, keepdim=True) / 3
    assert torch.allclose(out, torch.where(mask, kept_mean, torch.zeros(())))


def test_five_d_selects_over_all_positions(rng):
    x = torch.from_numpy(rng.standard_normal((2, 3, 2, 4, 5)))
    mask = topk_mask(x, 0.1)
    assert (mask.sum(dim=(2, 3, 4)) == 4).all()
    assert torch.equal(mask, reference_mask(x.reshape(6, 40), 0.1).reshape(x.shape))


@pytest.mark.parametrize("bad", [torch.zeros(5), torch.tensor(1.0)])
def test_unsupported_rank_is_input_error(bad):
    with pytest.raises(InputError, match="2-D .* 3-D .* 4-D"):
        topk_sparsify(bad, 0.5)


def test_bad_arguments():
    x = torch.randn(1, 2, 3, 3)
    for fraction in (0, -0.1, 1.5, "0.1", True, None):
        with pytest.raises(InputError, match="fraction"):
            topk_sparsify(x, fraction)
    with pytest.raises(InputError, match="mode"):
        topk_sparsify(x, 0.5, mode="median")
    with pytest.raises(InputError, match="floating"):
        topk_sparsify(torch.ones(1, 2, 3, 3, dtype=torch.int64), 0.5)
    with pytest.raises(InputError, match="torch tensor"):
        topk_sparsify(np.ones((1, 2, 3, 3)), 0.5)
    with pytest.raises(InputError, match="fraction"):
        TopK(2.0)


def test_empty_batch_passes_through():
    x = torch.zeros(0, 3, 4, 4)
    assert topk_sparsify(x, 0.1).shape == x.shape


def test_topk_count_uses_paper_rounding():
    assert topk_count(0.1, 55 * 55) == 302
    assert topk_count(0.001, 169) == 1
    assert topk_count(0.29, 100) == 28          # int() truncates 28.999999999999996
    assert topk_count(np.float32(0.5), 10) == 5


@pytest.mark.parametrize("mode", ["keep", "mean", "inverse"])
def test_gradient_reaches_only_passed_positions(smooth, mode):
    x = smooth.clone().requires_grad_(True)
    weights = torch.from_numpy(np.random.default_rng(3).standard_normal(x.shape))
    (topk_sparsify(x, 0.2, mode=mode) * weights).sum().backward()
    mask = topk_mask(smooth, 0.2)
    zero = torch.zeros(())
    if mode == "keep":
        expected = torch.where(mask, weights, zero)
    elif mode == "inverse":
        expected = torch.where(mask, zero, weights)
    else:   # d mean / d x_i = 1/k for kept i; upstream is the sum of kept weights
        k = mask[0, 0].sum()
        per_channel = (weights * mask).sum(dim=(2, 3), keepdim=True) / k
        expected = torch.where(mask, per_channel, zero)
    torch.testing.assert_close(x.grad, expected)


def test_module_matches_function_and_trains(smooth):
    layer = TopK(0.25, mode="mean")
    assert "fraction=0.25" in repr(layer) and "'mean'" in repr(layer)
    assert torch.equal(layer(smooth), topk_sparsify(smooth, 0.25, mode="mean"))
    net = nn.Sequential(nn.Conv2d(4, 3, 3, padding=1), TopK(0.2)).double()
    net(smooth).square().sum().backward()
    assert torch.isfinite(net[0].weight.grad).all() and net[0].weight.grad.abs().sum() > 0


# ------------------------------------------------------------------ insert_topk
@pytest.fixture(scope="module")
def alexnet():
    torch.manual_seed(0)
    return torchvision.models.alexnet(weights=None).eval()


@pytest.fixture(scope="module")
def images():
    return torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(5))


def _record(model, names):
    """Attach clone-recording hooks; return (store, handles)."""
    store, handles = {}, []
    modules = dict(model.named_modules())
    for name in names:
        handles.append(modules[name].register_forward_hook(
            lambda mod, inp, out, name=name: store.__setitem__(name, out.detach().clone())))
    return store, handles


def _state(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_insert_changes_only_downstream_and_removes_bit_for_bit(alexnet, images):
    names = [n for n, _ in alexnet.named_modules() if n and "." in n]
    state = _state(alexnet)
    tree = [(n, type(m)) for n, m in alexnet.named_modules()]
    with torch.no_grad():
        before = alexnet(images)
        intact, rec = _record(alexnet, names)
        alexnet(images)
        for h in rec:
            h.remove()

        handle = insert_topk(alexnet, {"features.4": 0.1})
        sparse, rec = _record(alexnet, names)      # registered after the Top-K hook
        out = alexnet(images)
        for h in rec:
            h.remove()
        handle.remove()
        after = alexnet(images)

    upstream = ["features.0", "features.1", "features.2", "features.3"]
    downstream = [n for n in names if n not in upstream + ["features.4"]]
    for name in upstream:
        assert torch.equal(sparse[name], intact[name]), name
    assert torch.equal(sparse["features.4"], topk_sparsify(intact["features.4"], 0.1))
    for name in downstream:
        assert not torch.equal(sparse[name], intact[name]), name
    assert not torch.equal(out, before)
    # removal restores the model exactly
    assert torch.equal(after, before)
    assert [(n, type(m)) for n, m in alexnet.named_modules()] == tree
    assert all(torch.equal(v, state[k]) for k, v in alexnet.state_dict().items())
    assert all(not m._forward_hooks for m in alexnet.modules())


def test_recording_hook_registered_earlier_sees_sparsified_output(alexnet, images):
    seen, rec = _record(alexnet, ["features.11"])   # before the insertion
    with torch.no_grad():
        alexnet(images)
        intact = seen.pop("features.11")
        with insert_topk(alexnet, {"features.11": 0.05}) as handle:
            alexnet(images)
    for h in rec:
        h.remove()
    k = topk_count(0.05, intact[0, 0].numel())
    assert (intact.ne(0).sum(dim=(2, 3)) > k).any()          # Top-K has work to do
    assert torch.equal(seen["features.11"], topk_sparsify(intact, 0.05))
    assert not handle.active and "removed" in repr(handle)


@pytest.mark.parametrize("mode", ["mean", "inverse"])
def test_insert_modes(mode, images):
    torch.manual_seed(1)
    net = nn.Sequential(nn.Conv2d(3, 4, 5, stride=3), nn.ReLU(), nn.Conv2d(4, 2, 3))
    with torch.no_grad():
        mid, rec = _record(net, ["0"])
        net(images)
        rec[0].remove()
        with insert_topk(net, {"0": 0.2}, mode=mode):
            got = net(images)
        expected = net[2](net[1](topk_sparsify(mid["0"], 0.2, mode=mode)))
    assert torch.equal(got, expected)


def test_unknown_layer_lists_names_and_inserts_nothing(alexnet, images):
    with torch.no_grad():
        before = alexnet(images)
        with pytest.raises(UnknownLayerError, match=r"features\.13.*features\.11"):
            insert_topk(alexnet, {"features.1": 0.1, "features.13": 0.1})
        assert torch.equal(alexnet(images), before)
    assert all(not m._forward_hooks for m in alexnet.modules())


def test_double_insertion_is_refused_until_removed(alexnet):
    handle = insert_topk(alexnet, {"features.1": 0.1})
    try:
        with pytest.raises(InputError, match="already carry Top-K"):
            insert_topk(alexnet, {"features.1": 0.2})
        other = insert_topk(alexnet, {"features.4": 0.2})   # a different layer is fine
        other.remove()
    finally:
        handle.remove()
    handle.remove()                                          # second remove: no-op
    again = insert_topk(alexnet, {"features.1": 0.2})
    again.remove()
    assert all(not m._forward_hooks for m in alexnet.modules())


def test_bad_specs(alexnet):
    with pytest.raises(InputError, match="non-empty dict"):
        insert_topk(alexnet, {})
    with pytest.raises(InputError, match="fraction"):
        insert_topk(alexnet, {"features.1": 0})
    with pytest.raises(InputError, match="mode"):
        insert_topk(alexnet, {"features.1": 0.1}, mode="max")
    with pytest.raises(InputError, match="register_layer_hook"):
        insert_topk(object(), {"features.1": 0.1})


class LayerWrapper:
    """A model wrapper speaking the register_layer_hook protocol."""

    def __init__(self, net):
        self.net = net
        self.calls = []

    def register_layer_hook(self, layer, hook, *, prepend=False):
        self.calls.append((layer, prepend))
        modules = dict(self.net.named_modules())
        if layer not in modules:
            raise UnknownLayerError(f"no layer {layer!r}")
        return modules[layer].register_forward_hook(hook, prepend=prepend)


def test_wrapper_protocol(images):
    torch.manual_seed(2)
    net = nn.Sequential(nn.Conv2d(3, 4, 5, stride=3), nn.ReLU(), nn.Conv2d(4, 2, 3))
    wrapper = LayerWrapper(net)
    with torch.no_grad():
        before = net(images)
        with insert_topk(wrapper, {"1": 0.1}):
            got = net(images)
            expected = net[2](topk_sparsify(net[1](net[0](images)), 0.1))
        with pytest.raises(UnknownLayerError):
            insert_topk(wrapper, {"1": 0.1, "nope": 0.1})
        assert torch.equal(net(images), before)
    assert torch.equal(got, expected)
    assert wrapper.calls[0] == ("1", True)
    assert not net[1]._forward_hooks


def test_non_tensor_output_names_layer():
    outer = nn.Sequential()
    outer.add_module("rnn", nn.LSTM(3, 4, batch_first=True))
    with insert_topk(outer, {"rnn": 0.5}):
        with pytest.raises(InputError, match="layer 'rnn'.*tuple"):
            outer(torch.randn(2, 5, 3))
