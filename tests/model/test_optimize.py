"""The reusable image optimiser (model._optimize) and activation maximisation (model._optstim).

Penalties against their formulas in NumPy, blur against scipy.ndimage, the Fourier
parameterisation against numpy.fft and its own inverse, transforms against NumPy
indexing, the loop's early stop against a slow replay of its history, bit-for-bit
repeatability, and that maximisation raises a random-weight network's activation.
"""
import numpy as np
import pytest
import torch
from scipy import ndimage
from torch import nn

from dnnsparse.errors import InputError
from dnnsparse.model import (COLOUR_CORRELATION, Compose, FourierImage, Jitter, PixelImage,
                             RandomAffine, deterministic_algorithms, gaussian_blur,
                             l1_penalty, l2_penalty, load_dnn, make_image_param,
                             make_penalties, maximize_activation, network_input, optimize,
                             resolve_optstim_targets, tv_penalty, wrap_module)


def _images(shape, seed=0):
    return torch.from_numpy(np.random.default_rng(seed).uniform(0.02, 0.98, shape)).float()


def _gen(seed):
    return torch.Generator().manual_seed(seed)


# --------------------------------------------------------------------------- penalties
def test_penalties_equal_their_formulas():
    x = _images((3, 3, 7, 9))
    a = x.numpy().astype(np.float64)
    for i in range(3):
        img = a[i]
        l1 = np.abs(img - 0.5).sum() / img.size
        l2 = ((img - 0.5) ** 2).sum() / img.size
        dh = [abs(img[c, r + 1, k] - img[c, r, k]) for c in range(3) for r in range(6)
              for k in range(9)]
        dw = [abs(img[c, r, k + 1] - img[c, r, k]) for c in range(3) for r in range(7)
              for k in range(8)]
        np.testing.assert_allclose(l1_penalty(x)[i].item(), l1, rtol=1e-5)
        np.testing.assert_allclose(l2_penalty(x)[i].item(), l2, rtol=1e-5)
        np.testing.assert_allclose(tv_penalty(x)[i].item(), np.mean(dh) + np.mean(dw),
                                   rtol=1e-5)
        np.testing.assert_allclose(tv_penalty(x, power=2)[i].item(),
                                   np.mean(np.square(dh)) + np.mean(np.square(dw)), rtol=1e-5)


def test_make_penalties_refuses_bad_weights():
    assert [f for _, f in make_penalties(l1=0.0, l2=2.0, tv=0.5)] == [l2_penalty, tv_penalty]
    for bad in (-0.1, float("nan"), float("inf")):
        with pytest.raises(InputError):
            make_penalties(tv=bad)


# --------------------------------------------------------------------------- blur
@pytest.mark.parametrize("sigma", [0.5, 1.0, 2.3])
def test_gaussian_blur_equals_scipy(sigma):
    x = _images((2, 3, 20, 17))
    ours = gaussian_blur(x.double(), sigma).numpy()
    ref = ndimage.gaussian_filter(x.double().numpy(), sigma=(0, 0, sigma, sigma),
                                  mode="mirror", truncate=4.0)
    np.testing.assert_allclose(ours, ref, atol=1e-12)
    assert gaussian_blur(x, 0) is x


# --------------------------------------------------------------------------- parameterisations
def _colour():
    c = np.asarray(COLOUR_CORRELATION)
    return c / np.linalg.norm(c, axis=0).max()


@pytest.mark.parametrize("size", [(16, 16), (15, 16), (16, 15), (9, 13)])
@pytest.mark.parametrize("decorrelate", [True, False])
def test_fourier_round_trip_and_numpy_decode(size, decorrelate):
    x = _images((2, 3) + size, seed=3)
    p = make_image_param("fourier", init=x, decorrelate=decorrelate)
    assert tuple(p.raw.shape) == (2, 3, size[0], size[1] // 2 + 1, 2)
    np.testing.assert_allclose(p().detach().numpy(), x.numpy(), atol=2e-5)
    # forward() against an independent numpy decode of the same spectrum
    raw = p.raw.detach().double().numpy()
    spectrum = raw[..., 0] + 1j * raw[..., 1]
    fy = np.fft.fftfreq(size[0])[:, None]
    fx = np.fft.rfftfreq(size[1])[None, :]
    scale = 1 / np.maximum(np.hypot(fx, fy), 1 / max(size))
    z = np.fft.irfft2(spectrum * scale, s=size, norm="ortho") / 4
    if decorrelate:
        z = np.einsum("ck,nkhw->nchw", _colour(), z)
    np.testing.assert_allclose(p().detach().numpy(), 1 / (1 + np.exp(-z)), atol=1e-5)


def test_pixel_round_trip_and_uint8_images_survive():
    x = torch.randint(0, 256, (2, 3, 11, 8), generator=_gen(0)).float() / 255
    for decorrelate in (False, True):
        p = PixelImage.from_noise(2, (11, 8), generator=_gen(1), decorrelate=decorrelate)
        p.assign(x)
        back = torch.round(p().detach() * 255) / 255
        assert torch.equal(back, x)


def test_noise_is_seeded_and_one_image_is_given_to_all():
    a = FourierImage.from_noise(3, (8, 8), generator=_gen(5))()
    b = FourierImage.from_noise(3, (8, 8), generator=_gen(5))()
    c = FourierImage.from_noise(3, (8, 8), generator=_gen(6))()
    assert torch.equal(a, b) and not torch.equal(a, c)
    one = _images((1, 3, 8, 8))
    p = make_image_param("pixel", n=3, init=one)
    assert torch.allclose(p(), one.expand(3, -1, -1, -1), atol=1e-6)


# --------------------------------------------------------------------------- transforms
def test_jitter_is_a_reflected_shift_drawn_from_the_generator():
    x = _images((2, 3, 12, 10))
    out = Jitter(3)(x, _gen(7))
    dy, dx = (int(v) for v in torch.randint(-3, 4, (2,), generator=_gen(7)))
    padded = np.pad(x.numpy(), ((0, 0), (0, 0), (3, 3), (3, 3)), mode="reflect")
    np.testing.assert_array_equal(out.numpy(), padded[:, :, 3 + dy:15 + dy, 3 + dx:13 + dx])
    assert Jitter(0)(x, _gen(0)) is x
    with pytest.raises(InputError):
        Jitter(10)(x, _gen(0))


def test_affine_keeps_the_size_and_turns_about_the_centre():
    x = _images((2, 3, 9, 9))
    assert RandomAffine((1, 1), 0)(x, _gen(0)) is x
    out = RandomAffine((0.9, 1.1), 10)(x, _gen(0))
    assert out.shape == x.shape and not torch.equal(out, x)
    # the draw: scale uniform in the range, angle uniform in +-degrees
    u = torch.rand(2, generator=_gen(0), dtype=torch.float64)
    ref = RandomAffine.apply(x, 0.9 + 0.2 * float(u[0]), (2 * float(u[1]) - 1) * 10)
    assert torch.equal(out, ref)
    # 90 degrees anticlockwise at scale 1 samples pixel centres exactly: numpy's rot90
    turned = RandomAffine.apply(x, 1.0, 90.0).numpy()
    np.testing.assert_allclose(turned, np.rot90(x.numpy(), k=1, axes=(2, 3)), atol=1e-6)
    # magnified 3 times, the centre pixel of a 9x9 image fills the middle 3x3
    big = RandomAffine.apply(x, 3.0, 0.0).numpy()
    np.testing.assert_allclose(big[:, :, 4, 4], x.numpy()[:, :, 4, 4], atol=1e-6)
    assert np.all(np.abs(big[:, :, 3:6, 3:6] - x.numpy()[:, :, 4:5, 4:5]) < 0.35)


def test_compose_draws_in_order_from_one_generator():
    x = _images((1, 3, 16, 16))
    t = Compose([Jitter(2), RandomAffine((0.9, 1.1), 5)])
    assert torch.equal(t(x, _gen(3)), t(x, _gen(3)))
    g = _gen(3)
    ref = RandomAffine((0.9, 1.1), 5)(Jitter(2)(x, g), g)
    assert torch.equal(t(x, _gen(3)), ref)


# --------------------------------------------------------------------------- the loop
def _conv_objective(seed=0):
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 2, 3))
    for p in net.parameters():
        p.requires_grad_(False)
    return lambda x: net(x)[:, 1].mean(dim=(1, 2))


def _run(seed, param="fourier"):
    p = make_image_param(param, n=2, size=(24, 24), generator=_gen(seed))
    return optimize(p, _conv_objective(), steps=12, lr=0.1, maximize=True,
                    penalties=make_penalties(l1=0.01, l2=0.01, tv=0.05),
                    transform=Compose([Jitter(3), RandomAffine((0.9, 1.1), 8)]),
                    blur_every=3, blur_sigma=0.7, generator=_gen(seed + 100))


@pytest.mark.parametrize("param", ["fourier", "pixel"])
def test_seeded_runs_are_identical_bit_for_bit(param):
    a, b, c = _run(1, param), _run(1, param), _run(2, param)
    assert a.images.numpy().tobytes() == b.images.numpy().tobytes()
    assert a.objective.tobytes() == b.objective.tobytes()
    assert a.penalty.tobytes() == b.penalty.tobytes()
    assert not torch.equal(a.images, c.images)
    assert np.all(a.penalty > 0)


def test_deterministic_flag_is_restored():
    before = torch.are_deterministic_algorithms_enabled()
    with deterministic_algorithms():
        assert torch.are_deterministic_algorithms_enabled()
    assert torch.are_deterministic_algorithms_enabled() == before


def _replay_stop(values, patience, steps):
    """Slow replay of the rule: stop at step s once s - (last improvement) >= patience."""
    best, last = np.inf, 0
    for s, v in enumerate(values):
        if -v < best:
            best, last = -v, s
        if s - last >= patience:
            return s + 1
    return steps


def test_early_stop_fires_when_the_activation_plateaus():
    caps = torch.tensor([0.55, 0.7, 2.0])         # the third never plateaus in 60 steps

    def objective(x):
        return torch.minimum(x.mean(dim=(1, 2, 3)), caps)

    p = make_image_param("pixel", n=3, size=(6, 6), generator=_gen(0))
    r = optimize(p, objective, steps=60, lr=0.05, maximize=True, patience=4,
                 generator=_gen(1))
    assert r.stopped_early.tolist() == [True, True, False]
    assert r.steps[0] < r.steps[1] < r.steps[2] == 60
    for i in range(3):
        n = r.steps[i]
        assert np.all(np.isfinite(r.objective[:n, i])) and np.all(np.isnan(r.objective[n:, i]))
        assert n == _replay_stop(r.objective[:n, i], 4, 60)
    # the kept images are the ones at their stop: capped, and no longer improving
    assert r.images[0].mean() >= 0.55 - 1e-3 and r.images[1].mean() >= 0.7 - 1e-3
    np.testing.assert_allclose(r.best[:2], [0.55, 0.7], atol=1e-6)
    # without patience every step runs
    full = optimize(make_image_param("pixel", n=3, size=(6, 6), generator=_gen(0)),
                    objective, steps=20, maximize=True, generator=_gen(1))
    assert full.steps.tolist() == [20, 20, 20] and not full.stopped_early.any()


def test_lbfgs_minimises_a_reconstruction_loss():
    target = _images((1, 3, 8, 8), seed=9)
    p = make_image_param("pixel", n=1, size=(8, 8), generator=_gen(0))
    r = optimize(p, lambda x: ((x - target) ** 2).mean(dim=(1, 2, 3)), steps=30, lr=1.0,
                 method="lbfgs")
    assert r.objective[-1, 0] < 1e-3 * r.objective[0, 0]


@pytest.mark.parametrize("bad", [dict(steps=0), dict(lr=float("nan")), dict(lr=-1.0),
                                 dict(patience=0), dict(blur_every=-1), dict(method="sgd")])
def test_loop_refuses_bad_options(bad):
    p = make_image_param("pixel", n=1, size=(4, 4), generator=_gen(0))
    kwargs = dict(steps=2) | bad
    with pytest.raises(InputError):
        optimize(p, lambda x: x.mean(), **kwargs)


# --------------------------------------------------------------------------- maximisation
@pytest.fixture(scope="module")
def alexnet():
    return load_dnn("alexnet", weights="random", seed=0)


def _value(dnn, images, layer, chn):
    """An independent path: DNN.forward_layers on the network input, channel mean."""
    with torch.no_grad():
        out = dnn.forward_layers(network_input(dnn, images), [layer])[layer]
    return out[:, chn - 1].mean(dim=(1, 2)).double().numpy()


NO_TRANSFORMS = dict(jitter=0, scale=(1, 1), degrees=0)


# pixel-space steps on a random network are not robust to the random transforms (the
# fourier parameterisation is): the pixel case runs without them
@pytest.mark.parametrize("param, transforms", [("fourier", {}), ("fourier", NO_TRANSFORMS),
                                               ("pixel", NO_TRANSFORMS)])
def test_maximisation_raises_the_activation_of_a_random_net(alexnet, param, transforms):
    size = (72, 72)
    targets = resolve_optstim_targets(["conv3:5", "conv5_relu:2@max"], alexnet, size=size)
    run = maximize_activation(alexnet, targets, size=size, steps=15, lr=0.05, param=param,
                              seed=3, show_progress=False, **transforms)
    start = make_image_param(param, n=1, size=size, generator=_gen(0))   # a noise start
    images = torch.from_numpy(run.images).permute(0, 3, 1, 2).float() / 255
    final = _value(alexnet, images[:1], "conv3", 5)[0]
    noise = _value(alexnet, start().detach(), "conv3", 5)[0]
    assert final > noise + 0.5 * abs(noise) + 1e-3
    np.testing.assert_allclose(run.final[0], final, rtol=1e-4, atol=1e-5)
    assert run.activation[-1, 0] > run.activation[0, 0]
    assert run.activation[-1, 1] > run.activation[0, 1]
    assert run.images.dtype == np.uint8 and run.images.shape == (2, 72, 72, 3)
    # the network is left as it was: no gradients kept, parameters still trainable
    assert all(p.requires_grad and p.grad is None for p in alexnet.module.parameters())


def test_a_target_does_not_depend_on_its_batch(alexnet):
    size = (64, 64)
    targets = resolve_optstim_targets(["conv2:3", "conv4:7"], alexnet, size=size)
    both = maximize_activation(alexnet, targets, size=size, steps=6, seed=1,
                               show_progress=False)
    alone = maximize_activation(alexnet, targets[1:], size=size, steps=6, seed=1,
                                show_progress=False, batch_size=1)
    split = maximize_activation(alexnet, targets, size=size, steps=6, seed=1,
                                show_progress=False, batch_size=1)
    assert np.abs(both.images[1].astype(int) - split.images[1].astype(int)).max() <= 1
    # target 2 alone is target 1 of its own list: another noise start, same transforms
    assert not np.array_equal(alone.images[0], both.images[1])


def test_targets_are_checked_at_the_optimised_size(alexnet):
    with pytest.raises(InputError, match="too small"):
        resolve_optstim_targets(["conv5:1"], alexnet, size=(16, 16))
    with pytest.raises(InputError, match="outside"):
        resolve_optstim_targets(["conv1:1,30,30"], alexnet, size=(64, 64))
    assert resolve_optstim_targets(["conv1:1,30,30"], alexnet, size=(128, 128))


def test_wrapped_module_objective_matches_autograd():
    """The objective's gradient is the target's own: compare with torch.autograd.grad."""
    torch.manual_seed(0)
    module = nn.Sequential(nn.Conv2d(3, 2, 3), nn.ReLU())
    dnn = wrap_module(module)
    from dnnsparse.model import activation_objective
    t = resolve_optstim_targets(["0:2"], dnn, size=(10, 10))
    x = _images((1, 3, 10, 10)).requires_grad_(True)
    (g,) = torch.autograd.grad(activation_objective(dnn, t)(x).sum(), x)
    y = x.detach().clone().requires_grad_(True)
    mean = torch.tensor(dnn.mean)[:, None, None]
    std = torch.tensor(dnn.std)[:, None, None]
    (ref,) = torch.autograd.grad(module[0]((y - mean) / std)[:, 1].mean(), y)
    assert torch.allclose(g, ref, atol=1e-7)


def test_blur_every_k_steps_and_not_after_the_last():
    start = _images((1, 3, 12, 12), seed=4)
    flat = lambda x: 0 * x.sum(dim=(1, 2, 3))           # noqa: E731  (Adam's step is then 0)
    for steps, n_blurs in ((4, 1), (5, 2), (1, 0)):
        p = make_image_param("pixel", init=start)
        r = optimize(p, flat, steps=steps, blur_every=2, blur_sigma=0.8)
        expected = start
        for _ in range(n_blurs):
            expected = gaussian_blur(expected, 0.8)
        np.testing.assert_allclose(r.images.numpy(), expected.numpy(), atol=1e-5)
