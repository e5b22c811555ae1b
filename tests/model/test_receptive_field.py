"""Theoretical receptive fields against published tables and an independent gradient
method; occlusion and upsampling maps against slow loops and the theory; targets."""
import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from dnnsparse.errors import InputError, UnknownLayerError
from dnnsparse.model import (DNN, OcclusionResult, StopForward, Target, load_dnn, map_extent,
                             occluder_starts, occlusion_maps, parse_target, resolve_targets,
                             sequential_names, target_responses, theoretical_rf,
                             upsampling_maps, wrap_module)


@pytest.fixture
def one_thread():
    """One intra-op thread: how a multi-threaded reduction splits its sums depends on the
    problem size, so only one thread makes batch sizes comparable to the last bit."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _sizes(rf, layers):
    return [rf[l][0].size for l in layers]


# ------------------------------------------------------------------ published tables
def test_alexnet_sizes_match_published_values():
    # AlexNet conv1..conv5: 11, 51, 99, 131, 163 (standard receptive-field arithmetic,
    # Araujo, Norris & Sim 2019, "Computing Receptive Fields of Convolutional Neural
    # Networks", Distill, doi:10.23915/distill.00021); pool5: 195 with effective stride
    # 32, as in the article's table (alexnet_v2: r = 195, S = 32).
    rf = theoretical_rf(load_dnn("alexnet", weights="random"))
    convs = ["conv1", "conv2", "conv3", "conv4", "conv5"]
    assert _sizes(rf, convs) == [(11, 11), (51, 51), (99, 99), (131, 131), (163, 163)]
    assert [rf[l][0].jump[0] for l in convs] == [4, 8, 16, 16, 16]
    assert rf["conv5_maxpool"][0].size == (195, 195) and rf["conv5_maxpool"][0].jump == (32, 32)
    assert rf["conv5_relu"][1] == (256, 13, 13)
    assert rf["fc1"][0].scope == "global" and rf["fc3"][0].scope == "global"


def test_vgg16_matches_published_table():
    # Per-layer sizes: the VGG16 receptive-field table of github.com/kkrunal77/EVA (7.md,
    # "Calculate Receptive Field for VGG16": 3, 5, 6, 10, 14, 16, 24, 32, 40, 44, 60, 76,
    # 92, 100, 132, 164, 196, 212); pool5 also in Araujo et al. 2019 (Distill), Table
    # "receptive fields of modern networks": vgg_16 r = 212, S = 32, effective padding 90.
    rf = theoretical_rf(load_dnn("vgg16", weights="random"))
    order = ["conv1", "conv2", "conv2_maxpool", "conv3", "conv4", "conv4_maxpool", "conv5",
             "conv6", "conv7", "conv7_maxpool", "conv8", "conv9", "conv10", "conv10_maxpool",
             "conv11", "conv12", "conv13", "conv13_maxpool"]
    published = [3, 5, 6, 10, 14, 16, 24, 32, 40, 44, 60, 76, 92, 100, 132, 164, 196, 212]
    assert [rf[l][0].size[0] for l in order] == published
    pool5 = rf["conv13_maxpool"][0]
    assert pool5.jump == (32, 32) and pool5.padding == (90, 90)


def test_resnets_match_published_table():
    # github.com/samson-wang gist a6073c18f2adf16e0ab5fb95b53db3e6, "ResNet Receptive Field
    # Size" (torchvision ResNets, stride on the 3x3 convolution):
    # resnet18 conv1 7, maxpool 11, layer1 43, layer2 99, layer3 211, layer4 435;
    # resnet50 layer1 35, layer2 91, layer3 267, layer4 427.
    layers = ["conv1", "conv1_maxpool", "layer1", "layer2", "layer3", "layer4"]
    rf18 = theoretical_rf(load_dnn("resnet18", weights="random"), layers)
    assert [s[0] for s in _sizes(rf18, layers)] == [7, 11, 43, 99, 211, 435]
    assert [rf18[l][0].jump[0] for l in layers] == [2, 4, 4, 8, 16, 32]
    rf50 = theoretical_rf(load_dnn("resnet50", weights="random"), layers[2:])
    assert [s[0] for s in _sizes(rf50, layers[2:])] == [35, 91, 267, 427]


def test_every_zoo_net_traces():
    for net in ("googlenet", "efficientnet_lite0"):
        rf = theoretical_rf(load_dnn(net, weights="random"))
        local = [g for g, _ in rf.values() if g.scope == "local"]
        assert len(local) >= 5 and all(g.exact for g in local)
        sizes = [g.size[0] for g in local]
        assert sizes == sorted(sizes)          # fields only grow along a single path
        assert rf["fc"][0].scope == "global"


# ------------------------------------------------ independent check: gradient extent
class Branchy(nn.Module):
    """Dilation, non-square kernels and strides, explicit asymmetric padding, a
    concatenation of branches with different fields, a residual sum, average pooling."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 4, (3, 5), stride=(2, 1), padding=(1, 2))
        self.a = nn.Conv2d(4, 3, 3, dilation=2, padding=2)
        self.b = nn.Conv2d(4, 3, 5, padding=1)
        self.pool = nn.AvgPool2d(3, stride=2, padding=1)
        self.res = nn.Conv2d(6, 6, 3, padding=1)
        self.head = nn.Conv2d(6, 5, 3, stride=2)

    def forward(self, x):
        x = torch.relu(self.stem(x))
        a, b = self.a(x), self.b(F.pad(x, (2, 0, 0, 2)))     # b's field is off-centre
        x = self.pool(torch.cat([a, b], dim=1))
        x = x + self.res(x)
        return self.head(F.pad(x, (0, 2, 1, 0)))


def _positive_copy(module):
    """All weights 1/fan-in, biases 0, BatchNorm the identity, max pools as average pools:
    every input pixel a unit depends on then has a positive gradient."""
    m = copy.deepcopy(module).double()
    for name, sub in list(m.named_modules()):
        if isinstance(sub, (nn.Conv2d, nn.Linear)):
            with torch.no_grad():
                sub.weight.fill_(1.0 / sub.weight[0].numel())
                if sub.bias is not None:
                    sub.bias.zero_()
        elif isinstance(sub, nn.BatchNorm2d):
            sub.reset_parameters()
            sub.reset_running_stats()
        elif isinstance(sub, nn.MaxPool2d):
            parent, _, leaf = name.rpartition(".")
            avg = nn.AvgPool2d(sub.kernel_size, sub.stride, sub.padding, ceil_mode=sub.ceil_mode)
            setattr(m.get_submodule(parent) if parent else m, leaf, avg)
    return m.eval()


def _gradient_box(dnn, layer, chn, row, col):
    """Bounding box of the input pixels with a non-zero gradient of one unit (``chn=None``:
    of the sum over the channels at that position)."""
    probe = DNN(_positive_copy(dnn.module), layer_names=dnn.layer_map,
                input_size=dnn.input_size)
    x = torch.ones((1, 3) + tuple(dnn.input_size), dtype=torch.float64, requires_grad=True)
    out = {}
    def hook(module, inputs, output):
        out["y"] = output
        raise StopForward

    handle = probe.register_layer_hook(layer, hook)
    try:
        probe.module(x)
    except StopForward:
        pass
    finally:
        handle.remove()
    y = out["y"][0, :, row - 1, col - 1]
    grad, = torch.autograd.grad(y.sum() if chn is None else y[chn - 1], x)
    rows, cols = np.nonzero(grad[0].abs().sum(0).numpy())
    return rows.min(), rows.max(), cols.min(), cols.max()


def _clipped(box, size):
    top, bottom, left, right = box
    return (max(top, 0), min(bottom, size[0] - 1), max(left, 0), min(right, size[1] - 1))


def _narrow_vgg16():
    cfg = [c if c == "M" else c // 16 for c in torchvision.models.vgg.cfgs["D"]]
    torch.manual_seed(0)
    model = torchvision.models.VGG(torchvision.models.vgg.make_layers(cfg), init_weights=False)
    return wrap_module(model, name="vgg16/16", layer_names=sequential_names(model))


CASES = {
    # AlexNet, a unit whose whole field lies inside the image and a corner unit
    "alexnet": (lambda: load_dnn("alexnet", weights="random"),
                [("conv5", 3, 7, 7), ("conv2", 1, 14, 12), ("conv3_relu", 2, 1, 13)]),
    # VGG16's geometry with 1/16 of its channels (the field does not depend on widths)
    "vgg16": (_narrow_vgg16, [("conv13_maxpool", 1, 4, 4), ("conv7", 2, 10, 20)]),
    "resnet18": (lambda: load_dnn("resnet18", weights="random"),
                 [("layer2", 5, 14, 14), ("layer3", 1, 1, 1), ("layer1_1", 2, 30, 9)]),
    # after a concatenation each channel sees its own branch: the layer's field is the
    # union over its channels (chn None), which a residual sum then gives every channel
    "branchy": (lambda: wrap_module(Branchy(), input_size=(61, 47)),
                [("head", 1, 3, 4), ("head", 2, 1, 1), ("pool", None, 4, 6), ("b", 1, 9, 20),
                 ("res", 2, 16, 1)]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_theory_equals_gradient_extent(case):
    build, units = CASES[case]
    dnn = build()
    rf = theoretical_rf(dnn, list(dict.fromkeys(u[0] for u in units)))
    for layer, chn, row, col in units:
        geom = rf[layer][0]
        assert geom.exact and geom.scope == "local"
        assert _clipped(geom.box(row, col), dnn.input_size) == _gradient_box(
            dnn, layer, chn, row, col), (layer, row, col)


# --------------------------------------------------------------------------- targets
@pytest.fixture(scope="module")
def small_alexnet():
    torch.manual_seed(0)
    module = torchvision.models.alexnet(weights=None)
    return wrap_module(module, name="alexnet", layer_names=sequential_names(module),
                       input_size=(64, 64))


def test_parse_target_spellings():
    assert parse_target("conv5:12") == parse_target("conv5:12", stat="mean")
    t = parse_target(" conv5 : 12 , 3 , 4 ")
    assert (t.layer, t.kind, t.channel, t.row, t.col) == ("conv5", "unit", 12, 3, 4)
    assert parse_target("conv5:12", stat="max").name == "conv5:12@max"
    t = parse_target("conv5:12@2,3")
    assert (t.stat, t.row, t.col, t.name) == ("position", 2, 3, "conv5:12@2,3")
    assert parse_target("fc3:class=1").channel == 2
    assert parse_target("fc3:class=great_white_shark").class_name == "great_white_shark"
    for bad in ("conv5", "conv5:", ":3", "conv5:0", "conv5:x", "conv5:1,2", "conv5:1@median",
                "conv5:1,2,3@max", "fc3:class=", "conv5:1,2,0"):
        with pytest.raises(InputError):
            parse_target(bad)


def test_resolve_targets_checks_the_network(small_alexnet):
    t = resolve_targets(["fc3:class=Goldfish", "fc3:class=2", "fc3:1"], small_alexnet)
    assert [x.channel for x in t] == [2, 3, 1]
    assert t[0].class_name == "goldfish" and t[1].class_name == "great white shark"
    with pytest.raises(UnknownLayerError, match="did you mean conv5"):
        resolve_targets(["conv6:1"], small_alexnet)
    with pytest.raises(InputError, match="channel 257 is out of range.*256 channels"):
        resolve_targets(["conv5:257"], small_alexnet)
    with pytest.raises(InputError, match=r"outside layer 'conv3'.s 3x3 map"):
        resolve_targets(["conv3:1,4,1"], small_alexnet)
    with pytest.raises(InputError, match="did you mean goldfish"):
        resolve_targets(["fc3:class=goldfsh"], small_alexnet)
    with pytest.raises(InputError, match="class index 1000 is out of range"):
        resolve_targets(["fc3:class=1000"], small_alexnet)
    with pytest.raises(InputError, match="needs an output layer"):
        resolve_targets(["conv5:class=1"], small_alexnet)


def test_target_values_equal_direct_indexing(small_alexnet, rng):
    x = torch.as_tensor(rng.normal(size=(3, 3, 64, 64)), dtype=torch.float32)
    specs = ["conv2:5", "conv2:5@max", "conv2:5@2,3", "conv2:5,2,3", "fc3:class=goldfish",
             "conv1_relu:7"]
    targets = resolve_targets(specs, small_alexnet)
    with torch.inference_mode():
        got = target_responses(small_alexnet, x, targets).numpy()
        out = small_alexnet.forward_layers(x, ["conv2", "fc3", "conv1_relu"])
    c2 = out["conv2"][:, 4].numpy()
    want = np.stack([c2.mean(axis=(1, 2)), c2.max(axis=(1, 2)), c2[:, 1, 2], c2[:, 1, 2],
                     out["fc3"][:, 1, 0, 0].numpy(),
                     out["conv1_relu"][:, 6].numpy().mean(axis=(1, 2))], axis=1)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


# ------------------------------------------------------------------------- occlusion
def _naive_occlusion(dnn, x, target, size, stride):
    """One occluded image per forward pass, built by slicing; the slow reference."""
    rows, cols = occluder_starts(x.shape[2], size, stride), occluder_starts(x.shape[3], size,
                                                                            stride)
    out = np.zeros((len(x), len(rows), len(cols)))
    with torch.inference_mode():
        for i in range(len(x)):
            ref = target.values(dnn.forward_layers(x[i:i + 1], [target.layer])[target.layer])
            for a, r in enumerate(rows):
                for b, c in enumerate(cols):
                    y = x[i:i + 1].clone()
                    y[:, :, r:r + size, c:c + size] = 0        # the "mean" fill
                    v = target.values(dnn.forward_layers(y, [target.layer])[target.layer])
                    out[i, a, b] = float(ref - v)
    return out


def test_batched_occlusion_equals_one_image_per_pass(small_alexnet, one_thread):
    dnn = DNN(copy.deepcopy(small_alexnet.module).double(), layer_names=small_alexnet.layer_map,
              input_size=(64, 64))
    gen = torch.Generator().manual_seed(1)
    images = torch.randint(0, 256, (2, 3, 64, 64), dtype=torch.uint8, generator=gen)
    targets = resolve_targets(["conv2:5,2,2", "conv1_relu:3@max", "conv2:7@2,3"], small_alexnet)
    kw = dict(size=7, stride=5, keep_per_image=True)
    # full passes (incremental=False): batched = one per pass = the slow loop, to the bit
    batched = occlusion_maps(dnn, images, targets, batch_size=64, incremental=False, **kw)
    single = occlusion_maps(dnn, images, targets, batch_size=1, incremental=False, **kw)
    assert batched.per_image.shape == (2, 3, 13, 13)
    np.testing.assert_array_equal(batched.per_image, single.per_image)
    np.testing.assert_array_equal(batched.grid, batched.per_image.mean(axis=0))
    x = dnn.normalize(images).double()
    naive = _naive_occlusion(dnn, x, targets[0], 7, 5)
    np.testing.assert_array_equal(batched.per_image[:, 0], naive)
    # incremental (the default here: channel targets of a chain of modules): batching does
    # not change it; it equals full passes to rounding (convolutions of crops sum in
    # another order)
    inc = occlusion_maps(dnn, images, targets, batch_size=64, **kw)
    np.testing.assert_array_equal(inc.per_image,
                                  occlusion_maps(dnn, images, targets, batch_size=1,
                                                 **kw).per_image)
    np.testing.assert_allclose(inc.per_image, single.per_image, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(inc.reference, single.reference, rtol=0, atol=0)


def test_occlusion_peak_lies_in_the_theoretical_field(one_thread):
    torch.manual_seed(2)
    module = torchvision.models.alexnet(weights=None)
    dnn = wrap_module(module, name="alexnet", layer_names=sequential_names(module),
                      input_size=(96, 96))
    images = torch.randint(0, 256, (1, 3, 96, 96), dtype=torch.uint8,
                           generator=torch.Generator().manual_seed(3))
    target, = resolve_targets(["conv2:9,6,6"], dnn)
    module.double()       # float64: an untouched field gives exactly the same value
    box = theoretical_rf(dnn, ["conv2"])["conv2"][0].box(6, 6)
    assert box == (22, 72, 22, 72)
    # crop=False: every placement is computed on the whole image
    res = occlusion_maps(dnn, images, [target], size=9, stride=6, discrepancy="abs",
                         crop=False)
    grid = res.grid[0]
    # a placement changes the unit exactly when it overlaps the theoretical field
    overlaps = ((res.row_starts[:, None] + 8 >= box[0]) & (res.row_starts[:, None] <= box[1])
                & (res.col_starts[None, :] + 8 >= box[2]) & (res.col_starts[None, :] <= box[3]))
    assert np.all(grid[~overlaps] == 0) and np.mean(grid[overlaps] > 0) > 0.9
    ext = map_extent(res.pixel_maps()[0])
    assert box[0] <= ext["peak_row"] <= box[1] and box[2] <= ext["peak_col"] <= box[3]
    assert ext["half_max_area"] > 0
    cropped = occlusion_maps(dnn, images, [target], size=9, stride=6, discrepancy="abs")
    np.testing.assert_array_equal(cropped.grid, res.grid)


def _resnet18_small():
    torch.manual_seed(4)
    from dnnsparse.model import resnet_names
    module = torchvision.models.resnet18(weights=None)
    return wrap_module(module, name="resnet18", layer_names=resnet_names(module),
                       input_size=(64, 64))


@pytest.mark.parametrize("case", ["alexnet", "resnet18", "branchy"])
def test_cropped_occlusion_equals_the_whole_image(case, one_thread):
    """Units computed on the crop that holds their fields equal the whole-image values."""
    if case == "alexnet":
        torch.manual_seed(5)
        module = torchvision.models.alexnet(weights=None)
        dnn = wrap_module(module, layer_names=sequential_names(module), input_size=(96, 96))
        # conv5's fields cover the whole 96x96 image: nothing to save there
        specs = [(["conv3:4,4,2"], True), (["conv1:2,1,23", "conv2_relu:5,11,1"], True),
                 (["conv5_relu:7,3,3"], False)]
    elif case == "resnet18":
        dnn = _resnet18_small()
        specs = [(["layer2_1:9,3,5"], True), (["layer1:1,16,16", "conv1_relu:3,5,30"], True)]
    else:
        dnn = wrap_module(Branchy(), input_size=(61, 47))
        specs = [(["head:2,3,4"], True), (["pool:1,16,1", "b:3,9,20"], True)]
    h, w = dnn.input_size
    images = torch.randint(0, 256, (1, 3, h, w), dtype=torch.uint8,
                           generator=torch.Generator().manual_seed(6))
    groups = [(resolve_targets(s, dnn), saves) for s, saves in specs]
    dnn.module.double()
    pixels = []
    hook = dnn.module.register_forward_pre_hook(lambda m, a: pixels.append(a[0].numel()))
    kw = dict(size=7, stride=5, batch_size=16, fill="noise", keep_per_image=True)
    try:
        for targets, saves in groups:
            pixels.clear()
            full = occlusion_maps(dnn, images, targets, crop=False, incremental=False, **kw)
            full_work = sum(pixels)
            pixels.clear()
            cropped = occlusion_maps(dnn, images, targets, **kw)
            # the crop saves work (its one blank pass for the geometry aside)
            assert (sum(pixels) - 3 * h * w < full_work) == saves
            np.testing.assert_allclose(cropped.reference, full.reference, rtol=1e-12)
            # to rounding: the convolution library may sum a crop in another order
            np.testing.assert_allclose(cropped.per_image, full.per_image, rtol=1e-12,
                                       atol=1e-14)
            assert np.count_nonzero(full.per_image) > 0
    finally:
        hook.remove()


class _Chain(nn.Module):
    """Strided, dilated and grouped convolutions, BatchNorm, a ceil-mode max pool with
    padding, an average pool, in-place ReLUs: one chain of modules."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(7)
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 5, stride=2, padding=2), nn.BatchNorm2d(8), nn.ReLU(inplace=True),
            nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True),
            nn.Conv2d(8, 8, 3, padding=2, dilation=2, groups=2), nn.ReLU(inplace=True),
            nn.AvgPool2d(2), nn.Conv2d(8, 6, (3, 1), padding=(1, 0)), nn.Dropout())
        with torch.no_grad():
            self.features[1].running_mean.normal_()
            self.features[1].running_var.uniform_(0.5, 2)
        self.eval()

    def forward(self, x):
        return self.features(x)


def test_incremental_occlusion_equals_full_passes(one_thread):
    from dnnsparse.model._incremental import OcclusionChain
    dnn = wrap_module(_Chain(), input_size=(45, 38))
    images = torch.randint(0, 256, (2, 3, 45, 38), dtype=torch.uint8,
                           generator=torch.Generator().manual_seed(8))
    specs = ["features.8:2", "features.7:5@max", "features.4:3@2,2", "features.2:7"]
    targets = resolve_targets(specs, dnn)
    dnn.module.double()
    chain = OcclusionChain.build(dnn, targets)          # the path taken below
    assert chain is not None and chain.check(dnn.normalize(images[:1]).double())
    for fill, size, stride in (("noise", 7, 4), ("mean", 12, 9)):
        kw = dict(size=size, stride=stride, fill=fill, keep_per_image=True)
        inc = occlusion_maps(dnn, images, targets, batch_size=10, **kw)
        full = occlusion_maps(dnn, images, targets, batch_size=10, incremental=False, **kw)
        assert np.count_nonzero(full.per_image) > 0.5 * full.per_image.size
        np.testing.assert_allclose(inc.per_image, full.per_image, rtol=1e-11, atol=1e-14)
    # not a chain (a residual sum), a class target, Top-K hooks: full passes instead
    res = _resnet18_small()
    assert OcclusionChain.build(res, resolve_targets(["layer1:3"], res)) is None
    assert OcclusionChain.build(res, resolve_targets(["conv1_relu:3"], res)) is not None
    from dnnsparse.model import insert_topk
    handle = insert_topk(dnn, {"features.2": 0.5})
    assert OcclusionChain.build(dnn, targets) is None
    handle.remove()
    alex = load_dnn("alexnet", weights="random")
    assert OcclusionChain.build(alex, resolve_targets(["conv5:3", "conv3:1@max"], alex))
    assert OcclusionChain.build(alex, resolve_targets(["fc3:class=1"], alex)) is None


def test_probing_passes_leave_a_training_network_as_it_was():
    """The blank-image passes of theoretical_rf and the chain probe run in eval mode."""
    from dnnsparse.model._incremental import OcclusionChain
    dnn = wrap_module(_Chain(), input_size=(45, 38))
    targets = resolve_targets(["features.7:2"], dnn)
    dnn.module.train()
    bn = dnn.module.features[1]
    stats = [t.clone() for t in (bn.running_mean, bn.running_var, bn.num_batches_tracked)]
    theoretical_rf(dnn, ["features.7"])
    assert OcclusionChain.build(dnn, targets) is None        # BatchNorm in training mode
    for old, new in zip(stats, (bn.running_mean, bn.running_var, bn.num_batches_tracked)):
        assert torch.equal(old, new)
    assert all(m.training for m in dnn.module.modules())


def test_pixel_maps_equal_a_loop_over_placements(rng):
    rows, cols = occluder_starts(20, 6, 4), occluder_starts(17, 6, 4)
    grid = rng.normal(size=(2, len(rows), len(cols)))
    res = OcclusionResult(grid=grid, row_starts=rows, col_starts=cols, size=6,
                          image_size=(20, 17), reference=np.zeros((1, 2)))
    total, count = np.zeros((2, 20, 17)), np.zeros((20, 17))
    for a, r in enumerate(rows):
        for b, c in enumerate(cols):
            total[:, r:r + 6, c:c + 6] += grid[:, a, b][:, None, None]
            count[r:r + 6, c:c + 6] += 1
    assert count.min() >= 1
    np.testing.assert_allclose(res.pixel_maps(), total / count, rtol=1e-12, atol=1e-12)


def test_occluder_larger_than_the_image(small_alexnet):
    targets = resolve_targets(["conv1:1"], small_alexnet)
    with pytest.raises(InputError, match="larger than the 64x64 input"):
        occlusion_maps(small_alexnet, torch.zeros((1, 3, 64, 64), dtype=torch.uint8), targets,
                       size=65)


def test_noise_fill_is_seeded(small_alexnet):
    images = torch.randint(0, 256, (1, 3, 64, 64), dtype=torch.uint8,
                           generator=torch.Generator().manual_seed(0))
    targets = resolve_targets(["conv1:2,8,8"], small_alexnet)
    def run(seed):
        return occlusion_maps(small_alexnet, images, targets, size=16, stride=16,
                              fill="noise", seed=seed).grid
    np.testing.assert_array_equal(run(0), run(0))
    assert not np.array_equal(run(0), run(1))


# ------------------------------------------------------------------------ upsampling
class Blocky(nn.Module):
    """A 64x64 image → an 8x8 map (8x8 average pooling, then a 1x1 convolution)."""

    def __init__(self):
        super().__init__()
        self.pool = nn.AvgPool2d(8)
        self.conv = nn.Conv2d(3, 2, 1)

    def forward(self, x):
        return self.conv(self.pool(x))


def test_nearest_upsampling_equals_block_repetition(rng):
    torch.manual_seed(0)
    dnn = wrap_module(Blocky(), input_size=(64, 64))
    x = torch.as_tensor(rng.normal(size=(3, 3, 64, 64)), dtype=torch.float32)
    targets = resolve_targets(["conv:2", "conv:1,3,3"], dnn)
    up = upsampling_maps(dnn, x, targets, interp="nearest", batch_size=2)
    with torch.inference_mode():
        maps = dnn.forward_layers(x, ["conv"])["conv"].double().numpy()
    for j, chn in enumerate((1, 0)):
        want = np.mean([np.kron(m, np.ones((8, 8))) for m in maps[:, chn]], axis=0)
        # float32 convolutions round differently for batches of 2 and of 3
        np.testing.assert_allclose(up[j], want, rtol=1e-6, atol=1e-7)
    clipped = upsampling_maps(dnn, x, targets[:1], interp="nearest", threshold=0.5)
    blocks = [np.kron(m, np.ones((8, 8))) for m in maps[:, 1]]
    want = np.mean([np.maximum(b, np.quantile(b, 0.5)) for b in blocks], axis=0)
    np.testing.assert_allclose(clipped[0], want, rtol=1e-6, atol=1e-7)
    with pytest.raises(InputError, match="no spatial map"):
        upsampling_maps(dnn, x, [Target("conv", "class", 1)])


def test_map_extent_of_a_known_map():
    m = np.zeros((30, 40))
    m[5:15, 10:30] = 1.0          # a plateau of 10 x 20 pixels at half the peak
    m[8:10, 12:15] = 2.0          # the peak
    m[20:25, 0:5] = 1.5           # above half max but not connected to the peak
    ext = map_extent(m)
    assert (ext["peak_row"], ext["peak_col"], ext["peak_value"]) == (8, 12, 2.0)
    assert ext["half_max_area"] == 200
    assert (ext["half_max_height"], ext["half_max_width"]) == (10, 20)
    assert ext["half_max_size"] == pytest.approx(np.sqrt(200))
    assert np.isnan(map_extent(-np.ones((3, 3)))["half_max_area"])
