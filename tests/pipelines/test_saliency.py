"""network_saliency + write_saliency_outputs: saliency.h5 against gradients computed here on
the network's own input images, the seeding rule, -colour absmax, the figures."""
import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from dnnsparse.base.stimulus import Stimulus
from dnnsparse.errors import InputError, OutputExistsError
from dnnsparse.io.maps import read_maps
from dnnsparse.model import (SaliencyParams, input_window, resolve_targets, saliency_maps,
                             view_geometry, wrap_module)
from dnnsparse.pipelines import network_saliency, write_saliency_outputs
from dnnsparse.viz import plot_saliency_overlays

SPECS = ["3:2@max", "7:class=1"]


def make_dnn(preprocess="crop"):
    torch.manual_seed(0)
    module = nn.Sequential(nn.Conv2d(3, 4, 5, stride=2, padding=2), nn.ReLU(inplace=True),
                           nn.MaxPool2d(2), nn.Conv2d(4, 6, 3, padding=1), nn.ReLU(),
                           nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 5))
    return wrap_module(module, name="small", input_size=(32, 32), preprocess=preprocess)


def network_pixels(dnn, paths):
    """The images as the network sees them, in [0, 1] (its own transform, then / 255)."""
    transform = dnn.image_transform()
    return torch.stack([transform(Image.open(p)) for p in paths]).float() / 255


def value(dnn, p, spec):
    """The target from pixels, through a forward hook of this test's own."""
    layer, _, rest = spec.partition(":")
    mean = torch.tensor(dnn.mean)[:, None, None]
    std = torch.tensor(dnn.std)[:, None, None]
    out = {}
    h = dict(dnn.module.named_modules())[layer].register_forward_hook(
        lambda m, i, o: out.setdefault("y", o.clone()))
    dnn.module((p - mean) / std)
    h.remove()
    y = out["y"]
    if rest.startswith("class="):
        return y[:, int(rest[6:])]
    chn, _, _ = rest.partition("@")
    return y[:, int(chn) - 1].amax(dim=(1, 2))


def grad(dnn, p, spec):
    p = p.clone().requires_grad_()
    g, = torch.autograd.grad(value(dnn, p, spec).sum(), p)
    return g


@pytest.fixture
def stim(image_stim):
    return Stimulus.load(image_stim)


def test_maps_file_holds_the_gradients_of_the_network_input(stim, tmp_path):
    dnn = make_dnn()
    params = SaliencyParams(noise_level=0.1, n_samples=3, seed=4, steps=32)
    methods = ["vanilla", "guided", "smoothgrad", "integrated"]
    result = network_saliency(dnn, stim, SPECS, methods=methods, params=params,
                              batch_size=4, show_progress=False)
    written = write_saliency_outputs(result, tmp_path / "out", figure_stim=3)
    assert sorted(p.name for p in written) == ["saliency.h5", "saliency_3_2_max.png",
                                               "saliency_7_class_1.png"]
    f = read_maps(tmp_path / "out" / "saliency.h5")
    assert list(f.groups) == methods + ["integrated_completeness"]
    assert list(f.attrs["stimID"]) == list(stim.ids)
    assert f.attrs["net"] == "small" and f.attrs["preprocess"] == "crop"
    paths = stim.check_files()
    sizes = [Image.open(p).size for p in paths]
    np.testing.assert_array_equal(f.attrs["image_size"], sizes)
    np.testing.assert_allclose(f.attrs["input_window"],
                               [input_window(size, **view_geometry(dnn)) for size in sizes])
    p = network_pixels(dnn, paths)
    for j, spec in enumerate(SPECS):
        vanilla = f.groups["vanilla"][spec]
        assert vanilla.shape == (len(stim), 3, 32, 32)
        np.testing.assert_allclose(vanilla, grad(dnn, p, spec).numpy(), rtol=1e-4,
                                   atol=1e-7 * np.abs(vanilla).max())
        attrs = f.dataset_attrs["smoothgrad"][spec]
        assert (attrs["method"], attrs["n_samples"], attrs["seed"]) == ("smoothgrad", 3, 4)
        assert attrs["noise_level"] == 0.1 and attrs["target"] == spec
        assert f.dataset_attrs["integrated"][spec]["steps"] == 32
        # SmoothGrad's noise follows the table row: stimulus 5 alone, as row 5
        one, _ = saliency_maps(dnn, dnn.normalize((p[5:6] * 255).round().to(torch.uint8)),
                               resolve_targets([spec], dnn), "smoothgrad", params=params,
                               start=5)
        np.testing.assert_allclose(f.groups["smoothgrad"][spec][5], one[0, 0].numpy(),
                                   rtol=1e-5, atol=1e-9)
        # completeness: f(image) - f(black) and sum(map) minus it
        gap, error = f.groups["integrated_completeness"][spec].T
        with torch.no_grad():
            ref = (value(dnn, p, spec) - value(dnn, torch.zeros_like(p[:1]), spec)).numpy()
        np.testing.assert_allclose(gap, ref, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(error, f.groups["integrated"][spec].sum(axis=(1, 2, 3))
                                   - gap, rtol=1e-4, atol=1e-6)
    # bit-for-bit repeatable; another batch size changes nothing beyond rounding
    again = network_saliency(dnn, stim, SPECS, methods=["smoothgrad"], params=params,
                             batch_size=4, show_progress=False)
    np.testing.assert_array_equal(again.maps["smoothgrad"], result.maps["smoothgrad"])
    other = network_saliency(dnn, stim, SPECS, methods=["smoothgrad"], params=params,
                             batch_size=7, show_progress=False)
    np.testing.assert_allclose(other.maps["smoothgrad"], result.maps["smoothgrad"],
                               rtol=1e-5, atol=1e-9)
    # -colour absmax: the largest |value| over the colour channels
    absmax = network_saliency(dnn, stim, SPECS, methods=["vanilla"], colour="absmax",
                              batch_size=4, show_progress=False)
    assert absmax.maps["vanilla"].shape == (len(stim), 2, 32, 32)
    np.testing.assert_array_equal(absmax.maps["vanilla"],
                                  np.abs(result.maps["vanilla"]).max(axis=2))
    for name in ("saliency_3_2_max.png", "saliency_7_class_1.png"):
        with Image.open(tmp_path / "out" / name) as img:
            assert img.size[0] > 300 and img.size[1] > 300


def test_squash_windows_and_outputs_never_overwritten(stim, tmp_path):
    dnn = make_dnn("squash")
    result = network_saliency(dnn, stim, ["7:class=0"], show_progress=False)
    sizes = [Image.open(p).size for p in stim.check_files()]
    np.testing.assert_array_equal(result.windows, [(0, 0, 1, 1)] * len(sizes))
    out = tmp_path / "out"
    write_saliency_outputs(result, out, figures=False)
    assert sorted(p.name for p in out.iterdir()) == [".dnnsparse-output", "saliency.h5"]
    with pytest.raises(OutputExistsError):
        write_saliency_outputs(result, out, figures=False)
    write_saliency_outputs(result, out, figure_stim=2, force=True)
    assert (out / "saliency_7_class_0.png").is_file()


def test_bad_requests_are_refused_before_any_work(stim, tmp_path):
    dnn = make_dnn()
    for kwargs, text in [({"methods": ["gradcam"]}, "unknown method"),
                         ({"colour": "grey"}, "-colour grey"),
                         ({"params": SaliencyParams(steps=0)}, "-steps 0"),
                         ({"params": SaliencyParams(noise_level=-1.0)}, "-noise-level")]:
        with pytest.raises(InputError, match=text):
            network_saliency(dnn, stim, ["7:class=0"], show_progress=False, **kwargs)
    result = network_saliency(dnn, stim, ["7:class=0"], show_progress=False)
    with pytest.raises(InputError, match="-figure-stim 0"):
        write_saliency_outputs(result, tmp_path / "out", figure_stim=0)
    assert not (tmp_path / "out").exists()


def test_overlay_figure_checks_its_panels(tmp_path):
    img = np.zeros((10, 16, 3), np.uint8)
    m = np.full((10, 16), np.nan)
    m[2:8, 4:12] = np.arange(48).reshape(6, 8)
    path = plot_saliency_overlays(tmp_path / "s.png", [("a", img, [m, m])], ["x", "y"],
                                  title="t")
    assert path.is_file()
    with pytest.raises(InputError, match="2 maps for 1 columns"):
        plot_saliency_overlays(tmp_path / "b.png", [("a", img, [m, m])], ["x"])
    with pytest.raises(InputError, match="does not cover"):
        plot_saliency_overlays(tmp_path / "c.png", [("a", img, [m[:5]])], ["x"])
    with pytest.raises(InputError, match="no stimuli"):
        plot_saliency_overlays(tmp_path / "d.png", [], ["x"])
