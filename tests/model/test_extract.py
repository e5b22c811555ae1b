"""Extraction equals the torchvision modules computed directly."""
import numpy as np
import pytest
import torch
import torchvision
from PIL import Image

from dnnsparse.base.mask import Mask
from dnnsparse.base.stimulus import Stimulus
from dnnsparse.errors import InputError
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


def test_mask_and_pool_match_numpy(stim):
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


@pytest.fixture
def per_image(stim):
    """Unpooled per-image activations of a seeded AlexNet (the aggregate reference)."""
    dnn = load_dnn("alexnet", weights="random", seed=2)
    act = dnn.extract(stim, ["conv3_relu", "fc2"], batch_size=4, show_progress=False)
    return {l: act[l].astype(np.float64) for l in act.layers}


@pytest.mark.parametrize("pool, to_file", [(None, True), ("mean", False), ("max", True),
                                           ("median", False), ("l1", True), ("l2", False)])
def test_aggregate_label_gives_category_means(stim, per_image, tmp_path, pool, to_file):
    # per-category means (float64) of every pooling, in memory and in a file, against
    # numpy pooling and a loop over the categories of the unequal groups [3, 2, 4]
    from dnnsparse.base.activation import pool_array
    dnn = load_dnn("alexnet", weights="random", seed=2)
    out = tmp_path / "agg.act.h5" if to_file else None
    agg = dnn.extract(stim, ["conv3_relu", "fc2"], pool=pool, aggregate="label", out=out,
                      batch_size=4, show_progress=False)     # batches cross categories
    cats = np.unique(stim.labels)
    assert list(agg.category_labels) == list(cats) and list(agg.category_counts) == [3, 2, 4]
    assert list(agg.stim_ids) == [str(c) for c in cats]
    assert agg.attrs["aggregate"] == "label" and agg.attrs["pool"] == (pool or "")
    for layer, full in per_image.items():
        ref = pool_array(full, pool) if pool else full
        assert agg[layer].dtype == np.float64 and agg[layer].shape == (3,) + ref.shape[1:]
        for row, k in enumerate(cats):
            np.testing.assert_allclose(agg[layer][row], ref[stim.labels == k].mean(0),
                                       rtol=1e-5, atol=1e-6)
    if to_file:
        agg.close()


def test_aggregate_refusals(stim, tmp_path):
    dnn = load_dnn("alexnet", weights="random")
    with pytest.raises(InputError, match="Unknown aggregate='stimulus'; choose 'label'"):
        dnn.extract(stim, ["fc2"], aggregate="stimulus")
    unlabelled = Stimulus(stim.ids, root=stim.root)
    with pytest.raises(InputError, match="needs a 'label' column"):
        dnn.extract(unlabelled, ["fc2"], aggregate="label", out=tmp_path / "a.act.h5")
    assert not (tmp_path / "a.act.h5").exists()


def test_torch_pools_are_the_numpy_pools(rng):
    from dnnsparse.base.activation import POOLS, pool_array
    from dnnsparse.model import TORCH_POOLS
    from dnnsparse.model._extract import _TORCH_POOL_IMPL, _torch_pools
    assert list(TORCH_POOLS) == list(POOLS)                 # base owns the names
    for shape in [(3, 4, 5, 7), (2, 3, 6, 6), (2, 5, 1, 1)]:  # odd and even medians
        x = rng.standard_normal(shape).astype(np.float32)
        for name in POOLS:
            got = TORCH_POOLS[name](torch.from_numpy(x))
            assert got.dtype == torch.float32 and tuple(got.shape) == shape[:2] + (1, 1)
            np.testing.assert_allclose(got.numpy(), pool_array(x.astype(np.float64), name),
                                       rtol=1e-5, atol=1e-6, err_msg=name)
    with pytest.raises(RuntimeError, match="differ; give every pool both"):
        _torch_pools({k: v for k, v in _TORCH_POOL_IMPL.items() if k != "l2"})


def test_topk_is_recorded_in_every_file(stim, tmp_path):
    from dnnsparse.model import insert_topk
    dnn = load_dnn("alexnet", weights="random")
    first = insert_topk(dnn, {"conv5_relu": 0.1, "fc1_relu": 0.25}, mode="mean")
    assert dnn.topk == {"conv5_relu": (0.1, "mean"), "fc1_relu": (0.25, "mean")}
    expect = {"topk": "conv5_relu=0.1,fc1_relu=0.25", "topk_mode": "mean"}
    for out in (None, tmp_path / "a.act.h5"):
        for aggregate in (None, "label"):
            act = dnn.extract(stim, ["conv5_relu"], pool="mean", aggregate=aggregate, out=out,
                              force=True, attrs={"stim_file": "s.csv"}, show_progress=False)
            attrs = act.attrs
            assert {k: attrs[k] for k in expect} == expect and attrs["stim_file"] == "s.csv"
            if out is not None:
                act.close()
    with pytest.raises(InputError, match="already carry Top-K"):
        insert_topk(dnn, {"fc1_relu": 0.5})
    second = insert_topk(dnn, {"conv1": 0.5})                     # another mode
    assert dnn.topk_attrs() == {"topk": "conv5_relu=0.1,fc1_relu=0.25,conv1=0.5",
                                "topk_mode": "conv5_relu=mean,fc1_relu=mean,conv1=keep"}
    first.remove()
    assert dnn.topk_attrs() == {"topk": "conv1=0.5", "topk_mode": "keep"}
    second.remove()
    with dnn.extract(stim, ["conv5_relu"], pool="mean", out=tmp_path / "b.act.h5",
                     show_progress=False) as act:
        assert dnn.topk == {} and "topk" not in act.attrs and "topk_mode" not in act.attrs


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
