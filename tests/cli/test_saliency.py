"""db_saliency end to end (AlexNet with random weights, a custom -net file with -lesion and
-topk) and its refusals: one line, exit 2, nothing written."""
import numpy as np
import pytest
import torch
from PIL import Image

from dnnsparse.base.stimulus import Stimulus
from dnnsparse.cli import saliency as db_saliency
from dnnsparse.io.maps import read_maps
from dnnsparse.model import load_dnn


@pytest.fixture
def photos(tmp_path):
    """Three small photographs, landscape and portrait."""
    gen = np.random.default_rng(3)
    folder = tmp_path / "photos"
    folder.mkdir()
    for i, (h, w) in enumerate([(60, 90), (80, 50), (64, 64)]):
        Image.fromarray(gen.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(
            folder / f"p{i}.png")
    path = tmp_path / "photos.stim.csv"
    Stimulus.from_folder(folder).save(path)
    return path


def alexnet_grad(paths, layer, channel):
    """d max(channel of layer) / d pixel of AlexNet (random weights, seed 0), computed here
    with a forward hook on the layer's module."""
    dnn = load_dnn("alexnet", weights="random", preprocess="crop")
    transform = dnn.image_transform()
    p = (torch.stack([transform(Image.open(q)) for q in paths]).float() / 255)
    p.requires_grad_()
    mean = torch.tensor(dnn.mean)[:, None, None]
    std = torch.tensor(dnn.std)[:, None, None]
    out = {}
    module = dict(dnn.module.named_modules())[dnn.layer_map[layer]]
    module.register_forward_hook(lambda m, i, o: out.setdefault("y", o.clone()))
    dnn.module((p - mean) / std)
    g, = torch.autograd.grad(out["y"][:, channel - 1].amax(dim=(1, 2)).sum(), p)
    return g.numpy()


def test_alexnet_end_to_end(run_cli, photos, tmp_path):
    out = tmp_path / "sal"
    status, stdout, err = run_cli(
        db_saliency.main, "-net", "alexnet", "-weights", "random", "-preprocess", "crop",
        "-target", "conv5:12@max", "fc3:class=goldfish", "-stim", photos,
        "-method", "vanilla", "guided", "-figure-stim", "1", "-out", out, "-q")
    assert status == 0, err
    assert "2 target(s), 2 method(s), 3 stimuli" in stdout
    assert sorted(p.name for p in out.iterdir()) == [
        ".dnnsparse-output", "saliency.h5", "saliency_conv5_12_max.png",
        "saliency_fc3_class_goldfish.png"]
    f = read_maps(out / "saliency.h5")
    assert f.attrs["weights"] == "random(seed=0)" and list(f.attrs["input_size"]) == [224, 224]
    assert sorted(f.groups["vanilla"]) == ["conv5:12@max", "fc3:class=goldfish"]
    for method in ("vanilla", "guided"):
        for maps in f.groups[method].values():
            assert maps.shape == (3, 3, 224, 224) and np.isfinite(maps).all()
            assert np.abs(maps).max() > 0
    paths = Stimulus.load(photos).check_files()
    ref = alexnet_grad(paths, "conv5", 12)
    got = f.groups["vanilla"]["conv5:12@max"]
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-6 * np.abs(ref).max())
    assert not np.allclose(f.groups["guided"]["conv5:12@max"], got)


def test_manipulations_reach_the_maps(run_cli, small_net, photos, tmp_path):
    net = f"{small_net}:net"
    base = ["-net", net, "-weights", "random", "-stim", photos, "-no-figures", "-q",
            "-colour", "absmax"]
    out = tmp_path / "ablated"
    status, _, err = run_cli(db_saliency.main, *base, "-target", "3:2@max", "3:1",
                             "-ablate", "3:2", "-ablate-mode", "hook", "-out", out)
    assert status == 0, err
    f = read_maps(out / "saliency.h5")
    assert f.attrs["ablate"] == "3:2"
    assert f.groups["vanilla"]["3:2@max"].shape == (3, 224, 224)
    assert not f.groups["vanilla"]["3:2@max"].any()        # a silenced channel: no gradient
    assert f.groups["vanilla"]["3:1"].any()
    out = tmp_path / "lesioned"
    status, _, err = run_cli(db_saliency.main, *base, "-target", "7:class=1", "-lesion",
                             "weights", "-topk", "4=0.5", "-method", "smoothgrad",
                             "integrated", "-samples", "2", "-steps", "8", "-baseline", "mean",
                             "-noise-seed", "3", "-out", out)
    assert status == 0, err
    f = read_maps(out / "saliency.h5")
    assert f.attrs["lesion"] and f.attrs["topk"] == "4=0.5"
    assert list(f.groups) == ["smoothgrad", "integrated", "integrated_completeness"]
    assert f.dataset_attrs["smoothgrad"]["7:class=1"]["seed"] == 3
    assert f.dataset_attrs["integrated"]["7:class=1"]["baseline"] == "mean"
    for g in ("smoothgrad", "integrated"):
        assert f.groups[g]["7:class=1"].shape == (3, 224, 224)
        assert f.groups[g]["7:class=1"].any()


def test_bad_input_is_one_line_and_writes_nothing(cli_error, small_net, photos, tmp_path,
                                                 monkeypatch):
    out = tmp_path / "sal"
    net = f"{small_net}:net"
    base = ["-weights", "random", "-stim", photos, "-out", out]
    msg = cli_error(db_saliency.main, "-net", "alexnet", *base, "-target", "fc3:class=goldfsh")
    assert "no ImageNet class is called 'goldfsh'" in msg and "goldfish" in msg
    msg = cli_error(db_saliency.main, "-net", net, *base, "-target", "3:7")
    assert "channel 7 is out of range" in msg and "6 channels" in msg
    msg = cli_error(db_saliency.main, "-net", net, *base, "-target", "conv9:1")
    assert "unknown layer 'conv9'" in msg
    msg = cli_error(db_saliency.main, "-net", net, *base, "-target", "3:0")
    assert "whole number >= 1" in msg
    msg = cli_error(db_saliency.main, "-net", net, *base, "-target", "3:1", "-stat", "median")
    assert "unknown statistic 'median'" in msg
    msg = cli_error(db_saliency.main, "-net", f"{small_net}:huge_kernel", *base, "-target",
                    "0:1")
    assert "too small for the network" in msg and "224x224" in msg
    for extra, text in [(["-noise-level", "nan"], "not a finite number"),
                        (["-noise-level", "-0.1"], "-noise-level"),
                        (["-steps", "0"], "-steps 0"), (["-steps", "-2"], "-steps -2"),
                        (["-samples", "0"], "-samples 0"),
                        (["-baseline", "grey"], "grey level"),
                        (["-baseline", "1.5"], "grey level"),
                        (["-method", "gradcam"], "unknown method"),
                        (["-figure-stim", "0"], "-figure-stim 0")]:
        msg = cli_error(db_saliency.main, "-net", net, *base, "-target", "3:1",
                        "-method", "smoothgrad", "integrated", *extra)
        assert text in msg, (extra, msg)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    msg = cli_error(db_saliency.main, "-net", net, *base, "-target", "3:1", "-device", "cuda")
    assert "CUDA is not available" in msg
    assert not out.exists()
    out.mkdir()
    (out / "x").write_text("")
    msg = cli_error(db_saliency.main, "-net", net, *base, "-target", "3:1")
    assert "not empty" in msg
    assert sorted(p.name for p in out.iterdir()) == ["x"]
