"""Extraction equals the torchvision modules computed directly."""
import numpy as np
import pytest
import torch
import torchvision
from PIL import Image

from dnnsparse.base.mask import Mask
from dnnsparse.base.stimulus import Stimulus
from dnnsparse.model import load_dnn


def _inputs(stim, dnn):
    # torchvision's own pipeline as the independent reference of "squash" preprocessing
    T = torchvision.transforms
    tf = T.Compose([T.Resize((224, 224), antialias=True), T.ToTensor(),
                    T.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))])
    return torch.stack([tf(Image.open(p).convert("RGB")) for p in stim.paths])


@pytest.fixture
def stim(image_stim):
    return Stimulus.load(image_stim)


def test_alexnet_several_layers_match_direct(stim, tmp_path):
    ref = torchvision.models.alexnet(weights=None).eval()
    torch.save(ref.state_dict(), tmp_path / "alex.pth")
    dnn = load_dnn("alexnet", weights=str(tmp_path / "alex.pth"))
    layers = ["conv1", "conv2_relu", "conv5_maxpool", "fc1_relu", "fc3"]
    act = dnn.extract(stim, layers, out=tmp_path / "a.act.h5", batch_size=4,
                      show_progress=False)
    x = _inputs(stim, dnn)
    with torch.no_grad():
        direct = {"conv1": ref.features[0](x),
                  "conv2_relu": ref.features[:5](x),
                  "conv5_maxpool": ref.features(x),
                  "fc1_relu": ref.classifier[:3](torch.flatten(ref.avgpool(ref.features(x)), 1)),
                  "fc3": ref(x)}
    assert act.layers == layers
    for l in layers:
        d = direct[l].numpy()
        d = d[:, :, None, None] if d.ndim == 2 else d
        np.testing.assert_allclose(act[l], d, atol=1e-5, rtol=0)
    assert list(act.stim_ids) == list(stim.ids)
    assert act.attrs["net"] == "alexnet" and act.attrs["weights_sha256"]
    act.close()


def test_resnet_layers_match_direct(stim, tmp_path):
    ref = torchvision.models.resnet18(weights=None).eval()
    torch.save(ref.state_dict(), tmp_path / "r.pth")
    dnn = load_dnn("resnet18", weights=str(tmp_path / "r.pth"))
    act = dnn.extract(stim, ["conv1_relu", "layer2_1", "layer3", "fc"], batch_size=5,
                      workers=2, show_progress=False)
    x = _inputs(stim, dnn)
    with torch.no_grad():
        c1 = ref.relu(ref.bn1(ref.conv1(x)))
        l1 = ref.layer1(ref.maxpool(c1))
        l2_1 = ref.layer2[0](l1)
        l3 = ref.layer3(ref.layer2(l1))
        fc = ref(x)
    for name, d in [("conv1_relu", c1), ("layer2_1", l2_1), ("layer3", l3),
                    ("fc", fc[:, :, None, None])]:
        np.testing.assert_allclose(act[name], d.numpy(), atol=1e-5, rtol=0)


def test_threaded_and_process_decoding_give_the_same_batches(stim):
    from dnnsparse.model import ImageDataset, default_workers, image_batches
    dnn = load_dnn("alexnet", weights="random", seed=0)
    dataset = ImageDataset(stim.paths, dnn.image_transform())
    threaded = list(image_batches(dataset, 4, workers=0))
    processes = list(image_batches(dataset, 4, workers=1))
    assert [b[0] for b in threaded] == [list(range(i, min(i + 4, len(stim))))
                                        for i in range(0, len(stim), 4)]
    for (i_t, x_t, e_t), (i_p, x_p, e_p) in zip(threaded, processes, strict=True):
        assert i_t == i_p and not e_t and not e_p
        assert x_t.dtype == torch.uint8 and torch.equal(x_t, x_p)
    assert default_workers(None, "cpu") == 0 and default_workers(3, "cpu") == 3
    assert default_workers(None, "cuda") >= 1


def test_legacy_weights_file_loads_without_memory_map(tmp_path):
    from dnnsparse.model import load_state_dict_file
    ref = torchvision.models.alexnet(weights=None)
    torch.save(ref.state_dict(), tmp_path / "zip.pth")
    torch.save(ref.state_dict(), tmp_path / "legacy.pth", _use_new_zipfile_serialization=False)
    for name in ("zip.pth", "legacy.pth"):
        sd, sha = load_state_dict_file(tmp_path / name)
        assert all(torch.equal(sd[k], v) for k, v in ref.state_dict().items())
        import hashlib
        assert sha == hashlib.sha256((tmp_path / name).read_bytes()).hexdigest()
    # a lesion writes into memory-mapped weights copy-on-write: the file is unchanged
    dnn = load_dnn("alexnet", weights=str(tmp_path / "zip.pth"))
    before = (tmp_path / "zip.pth").read_bytes()
    with torch.no_grad():
        dnn.module.features[0].weight.mul_(2)
    del dnn
    assert (tmp_path / "zip.pth").read_bytes() == before


def test_mask_pool_and_aggregate_match_numpy(stim):
    dnn = load_dnn("alexnet", weights="random", seed=2)
    full = dnn.extract(stim, ["conv3_relu", "fc2"], show_progress=False)
    mask = Mask().set("conv3_relu", chn=[5, 0, 9], row=[1, 2])
    sel = dnn.extract(stim, ["conv3_relu", "fc2"], mask=mask, pool="l2", show_progress=False)
    expect = full["conv3_relu"][:, [5, 0, 9]][:, :, [1, 2]]
    np.testing.assert_allclose(sel["conv3_relu"][..., 0, 0],
                               np.sqrt((expect.astype(np.float64) ** 2).sum((2, 3))), rtol=1e-5)
    np.testing.assert_array_equal(sel.layer_attrs("conv3_relu")["chn"], [6, 1, 10])
    med = dnn.extract(stim, ["conv3_relu"], pool="median", show_progress=False)
    np.testing.assert_allclose(med["conv3_relu"][..., 0, 0],
                               np.median(full["conv3_relu"], axis=(2, 3)), rtol=1e-6)
    agg = dnn.extract(stim, ["conv3_relu"], pool="mean", aggregate="label",
                      show_progress=False)
    per_image = full["conv3_relu"].astype(np.float64).mean((2, 3))
    for row, k in enumerate(np.unique(stim.labels)):
        np.testing.assert_allclose(agg["conv3_relu"][row, :, 0, 0],
                                   per_image[stim.labels == k].mean(0), rtol=1e-6)
    assert agg["conv3_relu"].dtype == np.float64
    assert list(agg.category_counts) == [3, 2, 4]


def test_memory_does_not_depend_on_stimulus_order_or_batch(stim):
    dnn = load_dnn("alexnet", weights="random", seed=5)
    a = dnn.extract(stim, ["fc1"], batch_size=1, show_progress=False)
    b = dnn.extract(stim, ["fc1"], batch_size=9, show_progress=False)
    np.testing.assert_allclose(a["fc1"], b["fc1"], atol=1e-5)


def test_forward_stops_after_deepest_layer(stim):
    dnn = load_dnn("alexnet", weights="random")
    calls = []
    handle = dnn.module.classifier[6].register_forward_hook(lambda *a: calls.append(1))
    dnn.extract(stim, ["conv2"], show_progress=False)
    assert calls == []                         # fc3 never ran
    handle.remove()


def test_l1_pooled_category_means_give_the_absolute_activation_psi(stim):
    # db_psi -abs on per-image activations == db_act -pool l1 -aggregate label (the
    # advice its error gives): a channel's summed |activation| differs from the mean of
    # |activation| by a factor per layer, which the z-scoring removes.
    from dnnsparse.pipelines import activation_sparseness
    dnn = load_dnn("alexnet", weights="random", seed=1)
    layers = ["conv1", "conv3", "fc1"]                     # before their ReLUs: signed
    per_image = dnn.extract(stim, layers, show_progress=False)
    assert (per_image["conv1"] < 0).any()
    l1 = dnn.extract(stim, layers, pool="l1", aggregate="label", show_progress=False)
    with_abs = activation_sparseness(per_image, stim.labels, absolute=True)
    from_l1 = activation_sparseness(l1)
    plain = activation_sparseness(per_image, stim.labels)
    for a, b, c in zip(with_abs.values, from_l1.values, plain.values):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-5)
        assert np.abs(a - c).max() > 1e-3
