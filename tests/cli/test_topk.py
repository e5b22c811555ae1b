"""db_topk end to end on a random-weight ResNet-18, against plain torchvision with
topk_sparsify hooks; every user mistake -> exit 2 with one line."""
from functools import partial

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image
from scipy.special import softmax

from dnnsparse.algo.shape_bias import (CATEGORIES, cue_conflict_shape_bias, decision_accuracy,
                                       decisions_16)
from dnnsparse.model import topk_sparsify
from dnnsparse.base.stimulus import Stimulus
from dnnsparse.cli import topk as db_topk
from dnnsparse.io.table import read_table

# friendly ResNet layer -> torchvision module path
PATHS = {"layer1": "layer1", "layer2": "layer2", "layer3_2": "layer3.1"}
MEAN = torch.tensor([0.485, 0.456, 0.406])[:, None, None]
STD = torch.tensor([0.229, 0.224, 0.225])[:, None, None]


@pytest.fixture(scope="module")
def resnet(tmp_path_factory):
    """A random ResNet-18 saved as .pth, and the same network in plain torchvision.

    The classifier's weights are scaled up so that the 16-category decisions
    depend on the image (at torchvision's initial scale one category wins for all).
    """
    path = tmp_path_factory.mktemp("weights") / "r18.pth"
    torch.manual_seed(1)
    net = torchvision.models.resnet18(weights=None).eval()
    with torch.no_grad():
        net.fc.weight.mul_(20)
    torch.save(net.state_dict(), path)
    return path, net


def direct_logits(net, files, spec=None, mode="keep"):
    """PIL squash-resize to 224, ImageNet normalisation, Top-K hooks on the modules."""
    x = torch.stack([torch.from_numpy(np.array(
        Image.open(f).convert("RGB").resize((224, 224), Image.BILINEAR))).permute(2, 0, 1)
        for f in files]).float().div(255).sub(MEAN).div(STD)
    handles = [net.get_submodule(PATHS[l]).register_forward_hook(
        lambda m, i, o, f=f: topk_sparsify(o, f, mode=mode)) for l, f in (spec or {}).items()]
    try:
        with torch.no_grad():
            return net(x).double().numpy()
    finally:
        for h in handles:
            h.remove()


@pytest.fixture(scope="module")
def cue_images(resnet, tmp_path_factory):
    """10 small random images, named after the network's decisions.

    Images 0-2 carry the intact network's decision as shape, 3-4 as texture, 5-9
    neither, so the intact network's shape bias is 3/5. Images 5-9 carry the
    decision with Top-K 0.05 at layer1 and layer3_2 as shape where it differs.
    """
    _, net = resnet
    folder = tmp_path_factory.mktemp("cue")
    gen = np.random.default_rng(4)
    raw = [folder / f"raw{i}.png" for i in range(10)]
    for i, f in enumerate(raw):
        Image.fromarray(gen.integers(0, 256, (20 + i, 24, 3), dtype=np.uint8)).save(f)
    decided = decisions_16(softmax(direct_logits(net, raw), axis=1))
    sparse = decisions_16(softmax(direct_logits(net, raw, {"layer1": 0.05, "layer3_2": 0.05}),
                                  axis=1))
    files = []
    for i, (f, d, d_sparse) in enumerate(zip(raw, decided, sparse)):
        others = [c for c in CATEGORIES if c not in (d, d_sparse)]
        a, b = others[i], others[i + 3]
        s, t = (d, a) if i < 3 else (a, d) if i < 5 else (d_sparse if d_sparse != d else a, b)
        files.append(f.rename(folder / f"{s}{i}-{t}{i}.png"))
    return folder, files


def _table(path):
    t = read_table(path)
    return {k: list(v) for k, v in t.items()}


def test_db_topk_matches_plain_torchvision(run_cli, resnet, cue_images, tmp_path):
    weights, net = resnet
    folder, files = cue_images
    stim = tmp_path / "cue.stim.csv"
    Stimulus([f.name for f in files], root=folder).save(stim)
    out = tmp_path / "sweep"
    status, stdout, err = run_cli(db_topk.main, "-net", "resnet18", "-weights", weights,
                                  "-stim", stim, "-layer", "layer1", "layer3_2", "-layer-set",
                                  "layer2", "-fraction", "0.05", "0.3", "-n-boot", "200",
                                  "-seed", "3", "-batch-size", "4", "-workers", "0",
                                  "-out", out, "-q")
    assert status == 0, err
    assert "intact shape bias 0.600" in stdout and "shape_decision" in stdout
    t = _table(out / "topk.csv")
    assert t["layers"] == ["none", "layer1+layer3_2", "layer1+layer3_2", "layer2", "layer2"]
    assert t["fraction"] == [1.0, 0.05, 0.3, 0.05, 0.3]
    assert set(t["accuracy_kind"]) == {"shape_decision"} and set(t["n_images"]) == {10}
    assert t["shape_bias"][0] == pytest.approx(3 / 5)
    names = [f.name for f in files]
    per_cat = _table(out / "per_category.csv")
    assert len(per_cat["category"]) == 5 * 16
    for i, (layers, fraction) in enumerate(zip(t["layers"], t["fraction"])):
        spec = None if layers == "none" else dict.fromkeys(layers.split("+"), fraction)
        probs = softmax(direct_logits(net, files, spec), axis=1)
        ref = cue_conflict_shape_bias(probs, image_names=names, n_boot=200, seed=3)
        np.testing.assert_allclose(
            [t["shape_bias"][i], t["ci_low"][i], t["ci_high"][i],
             t["shape_or_texture_fraction"][i]],
            [ref.shape_bias, ref.ci_low, ref.ci_high, ref.shape_or_texture_fraction])
        shapes = [n.split("-")[0].rstrip("0123456789") for n in names]
        assert t["accuracy"][i] == pytest.approx(decision_accuracy(probs, shapes))
        rows = slice(16 * i, 16 * (i + 1))
        np.testing.assert_array_equal(per_cat["n_shape"][rows], ref.per_category["n_shape"])
        assert set(per_cat["layers"][rows]) == {layers}
    # the Top-K decisions differ from the intact ones (built into the names)
    assert t["shape_bias"][1] != t["shape_bias"][0]
    assert (out / "topk.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_db_topk_columns_labels_and_mean_mode(run_cli, resnet, cue_images, tmp_path):
    """shape/texture columns (names carry no information) and ImageNet labels."""
    weights, net = resnet
    folder, files = cue_images
    shapes = [f.name.split("-")[0].rstrip("0123456789") for f in files]
    textures = [f.name.split("-")[1].split(".")[0].rstrip("0123456789") for f in files]
    logits = direct_logits(net, files, {"layer3_2": 0.2}, mode="mean")
    labels = np.arange(10) * 97
    labels[:4] = logits[:4].argmax(1)          # four right answers, at most
    links = tmp_path / "plain"
    links.mkdir()
    for i, f in enumerate(files):
        (links / f"img{i}.png").write_bytes(f.read_bytes())
    stim = tmp_path / "plain.stim.csv"
    Stimulus([f"img{i}.png" for i in range(10)], root=links,
             columns={"shape": shapes, "texture": textures, "label": labels}).save(stim)
    out = tmp_path / "sweep"
    status, _, err = run_cli(db_topk.main, "-net", "resnet18", "-weights", weights, "-stim",
                             stim, "-layer", "layer3_2", "-fraction", "0.2", "-mode", "mean",
                             "-n-boot", "0", "-workers", "0", "-out", out, "-q")
    assert status == 0, err
    t = _table(out / "topk.csv")
    assert t["mode"] == ["none", "mean"] and set(t["accuracy_kind"]) == {"imagenet_top1"}
    assert t["accuracy"][1] == pytest.approx(np.mean(logits.argmax(1) == labels))
    ref = cue_conflict_shape_bias(softmax(logits, axis=1), shape=shapes, texture=textures,
                                  n_boot=0)
    assert t["shape_bias"][1] == pytest.approx(ref.shape_bias, nan_ok=True)
    assert t["shape_or_texture_fraction"][1] == pytest.approx(ref.shape_or_texture_fraction)
    # the same table read with -accuracy shape
    status, _, err = run_cli(db_topk.main, "-net", "resnet18", "-weights", weights, "-stim",
                             stim, "-layer", "layer3_2", "-fraction", "0.2", "-mode", "mean",
                             "-n-boot", "0", "-workers", "0", "-accuracy", "shape", "-out",
                             out, "--force", "-q")
    assert status == 0, err
    t = _table(out / "topk.csv")
    assert set(t["accuracy_kind"]) == {"shape_decision"}
    assert t["accuracy"][1] == pytest.approx(decision_accuracy(softmax(logits, axis=1),
                                                               shapes))


def test_db_topk_user_errors(cli_error, resnet, cue_images, image_stim, tmp_path):
    error = partial(cli_error, db_topk.main)
    weights, _ = resnet
    folder, files = cue_images
    stim = tmp_path / "cue.stim.csv"
    Stimulus([f.name for f in files], root=folder).save(stim)
    base = ["-net", "resnet18", "-weights", weights, "-q", "-workers", "0"]
    out = ["-out", tmp_path / "o"]
    msg = error(*base, "-stim", image_stim, "-layer", "layer1", "-fraction", "0.1", *out)
    assert "no cue-conflict information" in msg and "row 1" in msg
    msg = error(*base, "-stim", stim, "-layer", "layer9", "-fraction", "0.1", *out)
    assert "unknown layer 'layer9'" in msg and "layer3_2" in msg
    for bad in ("0", "1.5"):
        msg = error(*base, "-stim", stim, "-layer", "layer1", "-fraction", bad, *out)
        assert f"fraction={float(bad)!r} is outside (0, 1]" in msg
    msg = error(*base, "-stim", stim, "-layer-set", "layer1,,layer2", "-fraction",
                "0.1", *out)
    assert "-layer-set" in msg
    msg = error(*base, "-stim", stim, "-fraction", "0.1", *out)
    assert "-layer" in msg
    msg = error(*base, "-stim", stim, "-layer", "layer1", "-fraction", "0.1",
                "-mode", "median", *out)
    assert "median" in msg
    (tmp_path / "o").mkdir()
    (tmp_path / "o" / "keep.txt").write_text("x")
    msg = error(*base, "-stim", stim, "-layer", "layer1", "-fraction", "0.1", *out)
    assert "--force" in msg
    assert not (tmp_path / "o" / "topk.csv").exists()
