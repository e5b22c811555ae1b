"""Saliency maths against independent computations: torch.autograd.grad of the same scalar,
the mean of vanilla maps over the same noise, completeness and a slow Riemann sum for
integrated gradients, a hook-based guided backprop written here; the photograph geometry."""
import copy

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from dnnsparse.errors import InputError
from dnnsparse.model import (SaliencyParams, check_saliency_params, guided_rectifiers,
                             input_window, maps_on_image, resolve_targets, saliency_maps,
                             smoothgrad_noise, target_responses, view_geometry, wrap_module)

SIZE = (24, 28)
SPECS = ["2:3", "2:2@max", "2:1@4,5", "5:4,2,3", "8:class=1"]


class Reuse(nn.Module):
    """One in-place ReLU module applied twice (as torchvision's ResNet blocks do)."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 5, 3, padding=1)
        self.conv2 = nn.Conv2d(5, 4, 3, padding=1)
        self.relu = nn.ReLU(inplace=True)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(16, 3))

    def forward(self, x):
        return self.head(self.relu(self.conv2(self.relu(self.conv1(x)))))


def small_net(act=nn.ReLU, seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), act(),    # 0 1 2
                         nn.MaxPool2d(2), nn.Conv2d(4, 6, 3, padding=1), act(),        # 3 4 5
                         nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(24, 5))      # 6 7 8


def make_dnn(module, **kwargs):
    dnn = wrap_module(module, input_size=SIZE, **kwargs)
    for m in dnn.module.modules():          # non-trivial BatchNorm statistics
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 2)
    return dnn


def pixels(n=3, seed=1):
    return torch.rand((n, 3) + SIZE, generator=torch.Generator().manual_seed(seed))


def normalised(dnn, p):
    mean = torch.tensor(dnn.mean)[:, None, None]
    std = torch.tensor(dnn.std)[:, None, None]
    return (p - mean) / std


def reference_value(dnn, p, spec):
    """The target's value from pixels, with its own forward hook and statistic."""
    layer, _, rest = spec.partition(":")
    out = {}
    module = dict(dnn.module.named_modules())[layer]
    handle = module.register_forward_hook(lambda m, i, o: out.setdefault("y", o.clone()))
    try:
        dnn.module(normalised(dnn, p))
    finally:
        handle.remove()
    y = out["y"]
    if y.ndim == 2:
        y = y[:, :, None, None]
    if rest.startswith("class="):
        return y[:, int(rest[6:]), 0, 0]
    if rest.count(",") == 2:
        c, r, k = (int(v) - 1 for v in rest.split(","))
        return y[:, c, r, k]
    chn, _, stat = rest.partition("@")
    m = y[:, int(chn) - 1]
    if stat == "max":
        return m.amax(dim=(1, 2))
    if stat:
        r, k = (int(v) - 1 for v in stat.split(","))
        return m[:, r, k]
    return m.mean(dim=(1, 2))


def reference_grad(dnn, p, spec):
    p = p.clone().requires_grad_()
    value = reference_value(dnn, p, spec)
    grad, = torch.autograd.grad(value.sum(), p)
    return grad


@pytest.mark.parametrize("batch_size", [1, 2, 32])
def test_vanilla_equals_autograd_grad(batch_size):
    dnn = make_dnn(small_net())
    targets = resolve_targets(SPECS, dnn)
    p = pixels()
    maps, delta = saliency_maps(dnn, normalised(dnn, p), targets, "vanilla",
                                batch_size=batch_size)
    assert maps.shape == (3, len(SPECS), 3) + SIZE and delta is None
    for j, spec in enumerate(SPECS):
        ref = reference_grad(dnn, p, spec)
        assert ref.abs().max() > 0, spec
        torch.testing.assert_close(maps[:, j], ref, rtol=1e-4, atol=1e-7 * ref.abs().max())
    # the parameters were left as they were, with no gradient accumulated
    assert all(q.requires_grad and q.grad is None for q in dnn.module.parameters())


def test_smoothgrad_is_the_mean_vanilla_map_over_the_seeded_noise():
    dnn = make_dnn(small_net())
    targets = resolve_targets(["5:2@max", "8:class=3"], dnn)
    p = pixels()
    params = SaliencyParams(noise_level=0.2, n_samples=5, seed=7)
    maps, _ = saliency_maps(dnn, normalised(dnn, p), targets, "smoothgrad", params=params,
                            start=10, batch_size=4)
    for i in range(3):
        # the documented rule: default_rng([seed, row]), float32 normals x noise level
        rng = np.random.default_rng([7, 10 + i])
        noise = rng.standard_normal((5, 3) + SIZE, dtype=np.float32) * np.float32(0.2)
        np.testing.assert_array_equal(noise, smoothgrad_noise(7, 10 + i, 5, (3,) + SIZE, 0.2))
        noisy = p[i] + torch.from_numpy(noise)
        for j, spec in enumerate(["5:2@max", "8:class=3"]):
            ref = reference_grad(dnn, noisy, spec).double().mean(0)
            torch.testing.assert_close(maps[i, j].double(), ref, rtol=1e-4,
                                       atol=1e-7 * float(ref.abs().max()))
    # bit-for-bit repeatable; the same maps whatever the batch size
    again, _ = saliency_maps(dnn, normalised(dnn, p), targets, "smoothgrad", params=params,
                             start=10, batch_size=4)
    assert torch.equal(maps, again)
    one, _ = saliency_maps(dnn, normalised(dnn, p[1:2]), targets, "smoothgrad",
                           params=params, start=11, batch_size=3)
    torch.testing.assert_close(one[0], maps[1], rtol=1e-5, atol=1e-9)
    other, _ = saliency_maps(dnn, normalised(dnn, p), targets, "smoothgrad",
                             params=SaliencyParams(noise_level=0.2, n_samples=5, seed=8),
                             start=10)
    assert not torch.allclose(other, maps)


def test_captum_noise_tunnel_depends_on_the_batch():
    """Why SmoothGrad draws its own noise: with captum's NoiseTunnel the same image, seed
    and settings give another map when it shares its batch with another image."""
    from captum.attr import NoiseTunnel, Saliency

    dnn = make_dnn(small_net())
    target = resolve_targets(["5:2@max"], dnn)
    x = normalised(dnn, pixels(2))
    tunnel = NoiseTunnel(Saliency(lambda v: target_responses(dnn, v, target)[:, 0]))

    def map_of_first(batch, index):
        torch.manual_seed(0)
        return tunnel.attribute(batch, nt_type="smoothgrad", nt_samples=4, stdevs=0.3,
                                abs=False)[index]

    alone = map_of_first(x[:1], 0)
    assert torch.equal(alone, map_of_first(x[:1], 0))       # repeatable as such
    paired = map_of_first(torch.cat([x[1:], x[:1]]), 1)     # the same image, second
    assert not torch.allclose(alone, paired, rtol=1e-3, atol=0)


@pytest.mark.parametrize("baseline", ["black", "mean", 0.7])
def test_integrated_gradients_completeness_and_riemann_sum(baseline):
    dnn = make_dnn(small_net(act=nn.Softplus))     # smooth: the integral converges fast
    specs = ["5:2", "8:class=4"]
    targets = resolve_targets(specs, dnn)
    p = pixels(2)
    params = SaliencyParams(baseline=baseline, steps=256)
    maps, delta = saliency_maps(dnn, normalised(dnn, p), targets, "integrated",
                                params=params, batch_size=512)
    colour = {"black": (0, 0, 0), "mean": dnn.mean}.get(baseline, (baseline,) * 3)
    base = torch.tensor(colour, dtype=torch.float32)[:, None, None].expand(p.shape[1:])
    for j, spec in enumerate(specs):
        with torch.no_grad():
            gap = (reference_value(dnn, p, spec) - reference_value(dnn, base[None], spec))
        total = maps[:, j].double().sum(dim=(1, 2, 3))
        assert torch.all(gap.abs() > 1e-4)
        rel = (total - gap.double()).abs() / gap.double().abs()
        assert torch.all(rel < 0.01), rel
        torch.testing.assert_close(delta[:, j], total - gap.double(), rtol=1e-3, atol=1e-6)
        # a slow midpoint Riemann sum of autograd gradients along the straight path (the
        # max pooling makes the path's gradient jump: a few pixels differ by ~0.5%)
        n = 200
        alphas = ((torch.arange(n) + 0.5) / n)[:, None, None, None, None]
        path = (base + alphas * (p - base)).reshape((-1,) + p.shape[1:])   # (n * 2, ...)
        grads = reference_grad(dnn, path, spec).double().reshape((n,) + p.shape)
        riemann = grads.mean(0) * (p - base).double()
        torch.testing.assert_close(maps[:, j].double(), riemann, rtol=1e-2,
                                   atol=1e-2 * float(riemann.abs().max()))


def test_integrated_gradients_completeness_on_a_relu_net_with_enough_steps():
    dnn = make_dnn(small_net())
    specs = ["8:class=1", "8:class=3"]
    p = pixels(2, seed=5)
    maps, delta = saliency_maps(dnn, normalised(dnn, p), resolve_targets(specs, dnn),
                                "integrated", params=SaliencyParams(steps=300),
                                batch_size=600)
    for j, spec in enumerate(specs):
        with torch.no_grad():
            gap = (reference_value(dnn, p, spec)
                   - reference_value(dnn, torch.zeros_like(p[:1]), spec)).double()
        assert torch.all(gap.abs() > 0.02)      # a difference worth integrating
        rel = (maps[:, j].double().sum(dim=(1, 2, 3)) - gap).abs() / gap.abs()
        assert torch.all(rel < 0.01), rel


def guided_reference(dnn, p, spec, kinds=(nn.ReLU,)):
    """Guided backprop written independently: full backward hooks on every rectifier
    module of a copy of the network, clamping the gradient they pass back at 0."""
    net = copy.deepcopy(dnn.module)
    handles = []
    for m in net.modules():
        if isinstance(m, kinds):
            m.inplace = False          # full backward hooks refuse in-place outputs
            handles.append(m.register_full_backward_hook(
                lambda mod, grad_in, grad_out: (grad_in[0].clamp(min=0),)))
    copied = wrap_module(net, input_size=SIZE, mean=dnn.mean, std=dnn.std)
    grad = reference_grad(copied, p, spec)
    for h in handles:
        h.remove()
    return grad


@pytest.mark.parametrize("net, specs, kinds", [
    (lambda: small_net(), SPECS, (nn.ReLU,)),
    (lambda: Reuse(), ["conv2:3@max", "head.2:class=1"], (nn.ReLU,)),
    (lambda: small_net(act=lambda: nn.ReLU6()), ["5:2", "8:class=0"], (nn.ReLU6,)),
])
def test_guided_backprop_equals_a_hook_implementation(net, specs, kinds):
    module = net()
    for m in module.modules():
        if isinstance(m, nn.ReLU):
            m.inplace = True           # as in torchvision's networks
    dnn = make_dnn(module)
    targets = resolve_targets(specs, dnn)
    p = pixels()
    maps, _ = saliency_maps(dnn, normalised(dnn, p), targets, "guided", batch_size=2)
    vanilla, _ = saliency_maps(dnn, normalised(dnn, p), targets, "vanilla")
    differs = 0
    for j, spec in enumerate(specs):
        ref = guided_reference(dnn, p, spec, kinds)
        torch.testing.assert_close(maps[:, j], ref, rtol=1e-4, atol=1e-7 * ref.abs().max())
        differs += not torch.allclose(maps[:, j], vanilla[:, j])
    assert differs                    # the clamps changed something


def test_guided_backprop_on_googlenet_functional_relus():
    """torchvision's GoogLeNet applies F.relu inside BasicConv2d, which captum cannot
    hook: the reference swaps in a ReLU module there and hooks it."""
    import torchvision
    from torchvision.models.googlenet import BasicConv2d

    torch.manual_seed(0)
    module = torchvision.models.googlenet(weights=None, aux_logits=False, init_weights=True)
    dnn = wrap_module(module, input_size=(64, 64))
    relus, others = guided_rectifiers(dnn.module)
    assert not relus and len(others) == sum(isinstance(m, BasicConv2d)
                                            for m in module.modules())
    targets = resolve_targets(["inception3a:7@max"], dnn)
    p = torch.rand((2, 3, 64, 64), generator=torch.Generator().manual_seed(0))
    maps, _ = saliency_maps(dnn, normalised(dnn, p), targets, "guided")

    ref_net = copy.deepcopy(module)
    for m in ref_net.modules():
        if isinstance(m, BasicConv2d):
            m.act = nn.ReLU()
            m.act.register_full_backward_hook(lambda mod, gi, go: (gi[0].clamp(min=0),))
            m.forward = (lambda self: lambda x: self.act(self.bn(self.conv(x))))(m)
    ref = reference_grad(wrap_module(ref_net, input_size=(64, 64)), p, "inception3a:7@max")
    torch.testing.assert_close(maps[:, 0], ref, rtol=1e-4, atol=1e-6 * ref.abs().max())


def test_bad_parameters_are_refused():
    ok = SaliencyParams()
    assert check_saliency_params(["vanilla", "vanilla"], ok)[0] == ["vanilla"]
    for params, text in [(SaliencyParams(noise_level=float("nan")), "not a finite number"),
                         (SaliencyParams(noise_level=-0.1), "-noise-level"),
                         (SaliencyParams(steps=0), "-steps 0"),
                         (SaliencyParams(n_samples=0), "-samples 0"),
                         (SaliencyParams(baseline=1.5), "grey level"),
                         (SaliencyParams(baseline="grey"), "grey level")]:
        with pytest.raises(InputError, match=text):
            check_saliency_params(["smoothgrad"], params)
    with pytest.raises(InputError, match="unknown method"):
        check_saliency_params(["gradcam"], ok)


# ---------------------------------------------------------------------------------------
# Geometry: a map of the network input back on the photograph, as db_saliency's overlays
# put it (dnnsparse.model.input_window and maps_on_image, shared with db_view)
# ---------------------------------------------------------------------------------------
def back_on_photo(dnn, maps, size, out_size=None):
    window = input_window(size, **view_geometry(dnn))
    return maps_on_image(maps, out_size or size, window)


def coordinate_photo(width, height):
    """R = column, G = row (scaled to 0..255): a pixel's colour says where it is."""
    cols = np.linspace(0, 255, width)[None, :].repeat(height, 0)
    rows = np.linspace(0, 255, height)[:, None].repeat(width, 1)
    return np.stack([cols, rows, np.full_like(cols, 128)], axis=-1).round().astype(np.uint8)


@pytest.mark.parametrize("preprocess, size", [("crop", (300, 180)), ("crop", (120, 250)),
                                              ("squash", (300, 180))])
def test_a_map_pixel_goes_back_to_its_photograph_pixel(preprocess, size):
    width, height = size
    dnn = wrap_module(nn.Identity(), input_size=(32, 32), preprocess=preprocess)
    photo = coordinate_photo(width, height)
    # the network's own input transform (torchvision's resize and centre crop)
    seen = dnn.image_transform()(Image.fromarray(photo)).numpy().astype(np.float64)
    back = back_on_photo(dnn, seen[:2], (width, height))
    inside = np.isfinite(back[0])
    # the photograph's own coordinates come back where the map is
    # photograph pixels per network pixel: squash scales each side, crop the shorter
    # side to the resize size (37 for a 32 input)
    per_pixel = [size[c] / 32 if preprocess == "squash" else min(size) / 37 for c in range(2)]
    for c in range(2):
        err = np.abs(back[c] - photo[..., c])[inside]
        step = 255 / (size[c] - 1) * per_pixel[c]     # one network pixel, in colour
        assert np.median(err) < 0.25 * step and err.max() < 1.5 * step, (c, err.max())
    cols = np.flatnonzero(inside.any(axis=0))
    rows = np.flatnonzero(inside.any(axis=1))
    if preprocess == "squash":
        assert inside.all()
    else:
        # the crop keeps a centred square of side min(width, height) * 224 / 256-like
        side = min(width, height) * 32 / 37     # resize_size 37 for a 32 input
        assert abs(len(cols) - side) <= 2 and abs(len(rows) - side) <= 2
        # centred, up to torchvision's rounding of the offset (one network pixel)
        assert abs(cols[0] - (width - 1 - cols[-1])) <= per_pixel[0] + 1
        assert abs(rows[0] - (height - 1 - rows[-1])) <= per_pixel[1] + 1
        assert not inside[:, 0].any() or not inside[0, :].any()   # something cut away


def test_a_bright_spot_lands_on_its_photograph_pixels():
    width, height = 160, 90
    dnn = wrap_module(nn.Identity(), input_size=(32, 32), preprocess="crop")
    photo = np.zeros((height, width, 3), np.uint8)
    photo[40:46, 100:106] = 255
    seen = dnn.image_transform()(Image.fromarray(photo)).numpy()[0].astype(float)
    back = back_on_photo(dnn, seen[None], (width, height))[0]
    r, c = np.unravel_index(np.nanargmax(back), back.shape)
    assert 40 <= r < 46 and 100 <= c < 106
    # a thumbnail grid over the same photograph: the same place, scaled
    small = back_on_photo(dnn, seen[None], (width, height), out_size=(80, 45))[0]
    r, c = np.unravel_index(np.nanargmax(small), small.shape)
    assert 20 <= r < 23 and 50 <= c < 53
    # 160 x 90 -> 65 x 37, crop 32 x 32 from (16, 2): photograph rows 4.9 to 82.7 are
    # kept, i.e. thumbnail rows 2 to 40 (centres at 2 r + 1)
    assert np.isnan(small[:, 0]).all()
    col = small[:, 40]
    assert np.isnan(col[:2]).all() and np.isfinite(col[2:41]).all()
    assert np.isnan(col[41:]).all()


def test_input_window_follows_torchvision():
    dnn = wrap_module(nn.Identity(), input_size=(224, 224), preprocess="crop")
    # 300 x 200 -> shorter side 256: 384 x 256, crop 224 at (80, 16)
    np.testing.assert_allclose(input_window((300, 200), **view_geometry(dnn)),
                               [80 / 384, 16 / 256, 224 / 384, 224 / 256])
    assert input_window((300, 200), **view_geometry(dnn, preprocess="squash")) == (0, 0, 1, 1)


def test_guided_backprop_without_rectifiers_says_so(caplog):
    torch.manual_seed(0)
    dnn = make_dnn(nn.Sequential(nn.Conv2d(3, 4, 3), nn.Tanh(), nn.Conv2d(4, 2, 3)))
    targets = resolve_targets(["2:1"], dnn)
    x = normalised(dnn, pixels(1))
    guided, _ = saliency_maps(dnn, x, targets, "guided")
    assert "no ReLU/ReLU6 module" in caplog.text
    torch.testing.assert_close(guided, saliency_maps(dnn, x, targets, "vanilla")[0])
