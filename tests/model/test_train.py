"""The training loop: classifier replacement, split, freezing, Top-K during training,
exact resume, rebuilding the trained network, per-epoch snapshots and the Top-K masks they
record."""
import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from dnnsparse.model import insert_topk, layer_topk_masks, topk_count, topk_mask, topk_sparsify
from dnnsparse.base.stimulus import Stimulus
from dnnsparse.errors import InputError, OutputExistsError, UnknownLayerError
from dnnsparse.model import (finetuned_info, find_classifier, load_finetuned, replace_classifier,
                             split_stimuli, train_classifier)
from dnnsparse.model import load_dnn, wrap_module

SIZE = 16
COLOURS = {"blue": (30, 30, 210), "green": (30, 210, 30), "red": (210, 30, 30)}


def tiny(n_out=5):
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, n_out))


def tiny_dnn():
    return wrap_module(tiny(), name="tiny", input_size=(SIZE, SIZE))


@pytest.fixture
def colour_stim(tmp_path):
    """8 noisy solid-colour images per class (3 classes): linearly separable."""
    gen = np.random.default_rng(0)
    for c, rgb in COLOURS.items():
        (tmp_path / "img" / c).mkdir(parents=True)
        for i in range(8):
            a = np.clip(np.array(rgb) + gen.normal(0, 20, (SIZE, SIZE, 3)), 0, 255)
            Image.fromarray(a.astype(np.uint8)).save(tmp_path / "img" / c / f"{i}.png")
    return Stimulus.from_folder(tmp_path / "img")


def _state(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


# ---------------------------------------------------------------- pieces
def test_split_is_stratified_seeded_and_complete():
    labels = np.repeat([3, 7, 9], [10, 5, 2])
    train, val = split_stimuli(labels, 0.2, seed=1)
    assert np.intersect1d(train, val).size == 0
    np.testing.assert_array_equal(np.sort(np.r_[train, val]), np.arange(17))
    assert [int(np.sum(labels[val] == c)) for c in (3, 7, 9)] == [2, 1, 0]
    again = split_stimuli(labels, 0.2, seed=1)
    np.testing.assert_array_equal(again[1], val)
    assert not np.array_equal(split_stimuli(labels, 0.5, seed=2)[1],
                              split_stimuli(labels, 0.5, seed=3)[1])
    # at least one training row per class, even at a large fraction
    train, _ = split_stimuli(labels, 0.9, seed=0)
    assert set(labels[train]) == {3, 7, 9}
    with pytest.raises(InputError, match="val_fraction"):
        split_stimuli(labels, 1.0)


@pytest.mark.parametrize("net, path, layer", [("resnet18", "fc", "fc"),
                                               ("alexnet", "classifier.6", "fc3")])
def test_replace_classifier_on_zoo_nets(net, path, layer):
    dnn = load_dnn(net, weights="random", seed=0)
    dnn.input_size = (64, 64)
    assert find_classifier(dnn) == path
    before = torch.get_rng_state()
    assert replace_classifier(dnn, 4, seed=3) == (path, True)
    assert torch.equal(torch.get_rng_state(), before)          # global RNG untouched
    new = dnn.module.get_submodule(path)
    assert (new.in_features, new.out_features) == (dnn.resolve(layer)[0].in_features, 4)
    assert dnn.resolve(layer)[0] is new                       # layer names still valid
    out = dnn.forward_layers(torch.zeros(2, 3, 64, 64), [layer])[layer]
    assert out.shape == (2, 4, 1, 1)
    # same seed, same initialisation; K already right: kept
    n_in = new.in_features
    other = wrap_module(nn.Sequential(nn.Conv2d(3, n_in, 1), nn.AdaptiveAvgPool2d(1),
                                      nn.Flatten(), nn.Linear(n_in, 1000)))
    replace_classifier(other, 4, seed=3)
    assert torch.equal(other.module[3].weight, new.weight)
    assert replace_classifier(dnn, 4) == (path, False)


def test_find_classifier_needs_a_linear():
    dnn = wrap_module(nn.Sequential(nn.Conv2d(3, 2, 3), nn.AdaptiveAvgPool2d(1)))
    with pytest.raises(InputError, match="nn.Linear"):
        find_classifier(dnn)


# ---------------------------------------------------------------- training
def test_training_reduces_loss_freezes_and_applies_topk(colour_stim, tmp_path):
    dnn = tiny_dnn()
    start = _state(dnn.module)
    seen = []

    def watch(module, inputs, output):     # runs after the Top-K hook on the same layer
        if module.training:
            seen.append((output.detach().clone(), output.requires_grad))
    watcher = dnn.register_layer_hook("2", watch)
    res = train_classifier(dnn, colour_stim, out=tmp_path / "run", epochs=6, lr=0.1,
                           batch_size=6, freeze=["1"], topk={"2": 0.25}, seed=0,
                           show_progress=False)
    watcher.remove()
    h = res.history
    assert h["epoch"] == [1, 2, 3, 4, 5, 6] and res.epochs_run == 6
    assert h["train_loss"][-1] < h["train_loss"][0]
    assert h["val_loss"][-1] < h["val_loss"][0]
    assert h["n_train"][0] + h["n_val"][0] == 24 and h["n_val"][0] == 6
    # the learning rate follows the cosine schedule
    np.testing.assert_allclose(h["lr"], 0.1 * 0.5 * (1 + np.cos(np.pi * np.arange(6) / 6)))
    assert res.class_names == ["blue", "green", "red"] and res.classes == [0, 1, 2]
    # frozen BatchNorm: parameters and running statistics unchanged
    end = _state(dnn.module)
    for key in ("1.weight", "1.bias", "1.running_mean", "1.running_var"):
        assert torch.equal(end[key], start[key]), key
    assert not torch.equal(end["0.weight"], start["0.weight"])  # trained through Top-K
    assert end["5.weight"].shape == (3, 6)
    # Top-K was active in every training pass: at most k non-zeros per channel
    k = topk_count(0.25, SIZE * SIZE)
    assert len(seen) == 6 * 3 and all(grad for _, grad in seen)
    for out, _ in seen:
        assert int((out != 0).sum(dim=(2, 3)).max()) <= k
    # ... and removed afterwards
    out = dnn.forward_layers(torch.randn(2, 3, SIZE, SIZE), ["2"])["2"]
    assert int((out != 0).sum(dim=(2, 3)).max()) > k
    for name in ("checkpoint.pth", "history.csv", "weights.pth", "model.json"):
        assert (tmp_path / "run" / name).is_file()


def test_resume_gives_the_uninterrupted_weights(colour_stim, tmp_path):
    kwargs = dict(epochs=4, lr=0.05, batch_size=5, topk={"2": 0.5}, seed=7,
                  show_progress=False)
    full = train_classifier(tiny_dnn(), colour_stim, out=tmp_path / "full", **kwargs)

    class Stop(Exception):
        pass

    def stop_after_two(record):
        if record["epoch"] == 2:
            raise Stop
    with pytest.raises(Stop):
        train_classifier(tiny_dnn(), colour_stim, out=tmp_path / "part",
                         callback=stop_after_two, **kwargs)
    assert not (tmp_path / "part" / "weights.pth").exists()
    resumed = train_classifier(tiny_dnn(), colour_stim, out=tmp_path / "part", resume=True,
                               **kwargs)
    assert resumed.epochs_run == 2
    assert resumed.history == full.history
    a = torch.load(tmp_path / "full" / "weights.pth", weights_only=True)
    b = torch.load(tmp_path / "part" / "weights.pth", weights_only=True)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    # other settings cannot resume this run
    with pytest.raises(InputError, match="lr"):
        train_classifier(tiny_dnn(), colour_stim, out=tmp_path / "part", resume=True,
                         **{**kwargs, "lr": 0.1})


def test_same_seed_same_weights_other_seed_other(colour_stim, tmp_path):
    def run(name, seed):
        dnn = tiny_dnn()
        train_classifier(dnn, colour_stim, out=tmp_path / name, epochs=1, seed=seed,
                         show_progress=False)
        return _state(dnn.module)
    a, b, c = run("a", 1), run("b", 1), run("c", 2)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["0.weight"], c["0.weight"])


def test_load_finetuned_rebuilds_the_trained_network(colour_stim, tmp_path):
    net_file = tmp_path / "tinynet.py"
    net_file.write_text("from torch import nn\n\ndef build():\n    return nn.Sequential("
                        "nn.Conv2d(3, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(), "
                        "nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 5))\n")
    dnn = load_dnn(f"{net_file}:build", weights="random")
    dnn.input_size = (SIZE, SIZE)
    train_classifier(dnn, colour_stim, out=tmp_path / "run", epochs=1, topk={"2": 0.3},
                     topk_mode="mean", show_progress=False)
    again = load_finetuned(tmp_path / "run")
    assert again.input_size == (SIZE, SIZE) and again.module[5].out_features == 3
    x = torch.randn(3, 3, SIZE, SIZE)
    with torch.no_grad():
        assert torch.equal(again.module(x), dnn.module(x))
    info = finetuned_info(tmp_path / "run")
    assert info["topk"] == {"2": 0.3} and info["topk_mode"] == "mean"
    assert info["n_classes"] == 3 and info["class_names"] == ["blue", "green", "red"]


def test_training_input_errors(colour_stim, tmp_path):
    with pytest.raises(InputError, match="label"):
        train_classifier(tiny_dnn(), Stimulus(colour_stim.ids, root=colour_stim.root),
                         out=tmp_path / "a", show_progress=False)
    val = colour_stim[[0, 1]]
    val.columns["label"] = np.array([0, 5])
    with pytest.raises(InputError, match="row 2: label 5"):
        train_classifier(tiny_dnn(), colour_stim, val_stim=val, out=tmp_path / "b",
                         show_progress=False)
    with pytest.raises(UnknownLayerError):
        train_classifier(tiny_dnn(), colour_stim, out=tmp_path / "c", freeze=["9"],
                         show_progress=False)
    with pytest.raises(UnknownLayerError):
        train_classifier(tiny_dnn(), colour_stim, out=tmp_path / "d", topk={"conv9": 0.1},
                         show_progress=False)
    assert not (tmp_path / "d").exists()           # checked before anything is written
    with pytest.raises(InputError, match="frozen"):
        train_classifier(tiny_dnn(), colour_stim, out=tmp_path / "e",
                         freeze=["0", "1", "5"], show_progress=False)
    (tmp_path / "f").mkdir()
    (tmp_path / "f" / "x").write_text("x")
    with pytest.raises(OutputExistsError, match="-resume"):
        train_classifier(tiny_dnn(), colour_stim, out=tmp_path / "f", show_progress=False)
    with pytest.raises(FileNotFoundError, match="checkpoint"):
        train_classifier(tiny_dnn(), colour_stim, out=tmp_path / "g", resume=True,
                         show_progress=False)


# ---------------------------------------------------------------- snapshots
def test_snapshot_runs_per_epoch_before_the_checkpoint_without_changing_training(
        colour_stim, tmp_path):
    kwargs = dict(epochs=2, lr=0.05, batch_size=5, topk={"2": 0.5}, seed=3,
                  show_progress=False)
    plain = train_classifier(tiny_dnn(), colour_stim, out=tmp_path / "plain", **kwargs)
    calls = []

    def snapshot(dnn, epoch, folder):
        ckpt = folder / "checkpoint.pth"
        on_disk = torch.load(ckpt, weights_only=True)["epoch"] if ckpt.is_file() else None
        calls.append((epoch, on_disk, dnn.module.training, dict(dnn.topk),
                      _state(dnn.module)))
        torch.rand(100)                      # draws from the RNG the training uses
    snapshot.settings = {"probe": "x"}
    res = train_classifier(tiny_dnn(), colour_stim, out=tmp_path / "snap", snapshot=snapshot,
                           **kwargs)
    assert [(e, d, t) for e, d, t, _, _ in calls] == [(0, None, False), (1, None, False),
                                                      (2, 1, False)]
    assert all(topk == {"2": (0.5, "keep")} for _, _, _, topk, _ in calls)
    assert res.history == plain.history
    end = torch.load(tmp_path / "snap" / "weights.pth", weights_only=True)
    assert all(torch.equal(end[k], calls[-1][4][k]) for k in end)
    assert all(torch.equal(end[k], v) for k, v in
               torch.load(tmp_path / "plain" / "weights.pth", weights_only=True).items())
    ckpt = torch.load(tmp_path / "snap" / "checkpoint.pth", weights_only=True)
    assert ckpt["settings"]["snapshot"] == {"probe": "x"}
    snapshot.settings = {"probe": "y"}
    with pytest.raises(InputError, match="snapshot"):
        train_classifier(tiny_dnn(), colour_stim, out=tmp_path / "snap", resume=True,
                         snapshot=snapshot, **kwargs)


def test_layer_topk_masks_reads_the_output_before_its_own_topk(colour_stim):
    stim = colour_stim[[0, 9, 17]]
    dnn = tiny_dnn()
    x = torch.stack([torch.from_numpy(np.array(Image.open(p))).permute(2, 0, 1)
                     for p in stim.paths]).float().div(255)
    x = (x - torch.tensor(dnn.mean)[:, None, None]) / torch.tensor(dnn.std)[:, None, None]
    net = dnn.module
    with torch.no_grad():
        conv = net[0](x)
        relu = net[2](net[1](topk_sparsify(conv, 0.25)))     # Top-K at "0" feeds "2"
    with insert_topk(dnn, {"0": 0.25, "2": 0.1}):
        masks, images = layer_topk_masks(dnn, stim, {"0": 0.25, "2": 0.3}, batch_size=2,
                                         return_images=True)
    np.testing.assert_array_equal(masks["0"], topk_mask(conv, 0.25).numpy())
    np.testing.assert_array_equal(masks["2"], topk_mask(relu, 0.3).numpy())
    assert masks["2"].shape == (3, 6, SIZE, SIZE)
    assert (masks["0"].sum(axis=(2, 3)) == topk_count(0.25, SIZE * SIZE)).all()
    assert images.dtype == np.uint8 and images.shape == (3, 3, SIZE, SIZE)
    np.testing.assert_array_equal(images[1], np.array(Image.open(stim.paths[1])).transpose(2, 0, 1))
    with pytest.raises(InputError, match=r"\(n, C, H, W\)"):
        layer_topk_masks(dnn, stim, {"5": 0.5})
    with pytest.raises(UnknownLayerError):
        layer_topk_masks(dnn, stim, {"conv9": 0.5})
