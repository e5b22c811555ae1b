"""db_topk end to end on a random-weight ResNet-18, against plain torchvision with
topk_sparsify hooks; the per-category shape bias against a slow loop; the reference
table; every user mistake -> exit 2 with one line."""
from functools import partial

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image
from scipy.special import softmax

from dnnsparse.algo.shape_bias import (CATEGORIES, cue_conflict_shape_bias, decision_accuracy,
                                       decisions_16, imagenet16_categories)
from dnnsparse.model import topk_sparsify
from dnnsparse.base.stimulus import Stimulus
from dnnsparse.cli import topk as db_topk
from dnnsparse.io.table import read_table
from dnnsparse.pipelines import read_shape_bias_reference

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


def _slow_per_category(logits, names):
    """Shape bias per shape category by loops: softmax, mean probability over each
    category's ImageNet classes, first largest mean decides, conflict images only."""
    groups = imagenet16_categories()
    counts = {c: [0, 0] for c in CATEGORIES}
    for row, name in zip(logits, names):
        p = np.exp(row - row.max())
        p = p / p.sum()
        means = [sum(p[i] for i in groups[c]) / len(groups[c]) for c in CATEGORIES]
        decision = CATEGORIES[max(range(16), key=lambda j: (means[j], -j))]
        shape, texture = (part.rstrip("0123456789") for part in
                          name.rsplit(".", 1)[0].split("-"))
        if shape == texture:
            continue
        counts[shape][0] += decision == shape
        counts[shape][1] += decision == texture
    return [s / (s + t) if s + t else np.nan for s, t in counts.values()]


def test_db_topk_per_category_figure_and_reference(run_cli, resnet, cue_images, tmp_path):
    weights, net = resnet
    folder, files = cue_images
    stim = tmp_path / "cue.stim.csv"
    Stimulus([f.name for f in files], root=folder).save(stim)
    ref = tmp_path / "published.csv"
    ref.write_text("name,shape_bias,category,source\nhumans,0.96,,Geirhos 2019\n"
                   "humans,0.98,Bottle,Geirhos 2019\nResNet-50,0.21,,\n\n")
    out = tmp_path / "sweep"
    status, stdout, err = run_cli(db_topk.main, "-net", "resnet18", "-weights", weights,
                                  "-stim", stim, "-layer", "layer1", "layer3_2", "-fraction",
                                  "0.05", "-n-boot", "0", "-workers", "0", "-reference", ref,
                                  "-out", out, "-q")
    assert status == 0, err
    assert "per_category.png" in stdout
    for fig in ("topk.png", "per_category.png"):
        assert (out / fig).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    per_cat = _table(out / "per_category.csv")
    names = [f.name for f in files]
    for i, spec in enumerate((None, {"layer1": 0.05, "layer3_2": 0.05})):
        rows = slice(16 * i, 16 * (i + 1))
        assert per_cat["category"][rows] == list(CATEGORIES)
        np.testing.assert_allclose(per_cat["shape_bias"][rows],
                                   _slow_per_category(direct_logits(net, files, spec), names),
                                   equal_nan=True)
    assert np.isfinite(per_cat["shape_bias"]).sum() >= 4      # a non-trivial comparison


def test_read_shape_bias_reference(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("Name, shape_bias ,category\nhumans,0.96,\nhumans,0.98, Bottle\n"
                    "vit,0.5,\n")
    assert read_shape_bias_reference(path) == {
        "name": ["humans", "humans", "vit"], "category": ["", "bottle", ""],
        "shape_bias": [0.96, 0.98, 0.5]}
    path.write_text("name,shape_bias\nhumans,1\n")
    assert read_shape_bias_reference(path)["category"] == [""]


@pytest.mark.parametrize("text, expected", [
    ("model,shape_bias\nhumans,0.9\n", "no name column"),
    ("name,bias\nhumans,0.9\n", "no shape_bias column"),
    ("name,shape_bias\nhumans,1.2\n", "line 2: shape_bias '1.2' is not a number in [0, 1]"),
    ("name,shape_bias\nhumans,nan\n", "line 2: shape_bias 'nan'"),
    ("name,shape_bias\nhumans,high\n", "line 2: shape_bias 'high'"),
    ("name,shape_bias,category\nhumans,0.9,\nhumans,0.5,zebra\n", "line 3: category 'zebra'"),
    ("name,shape_bias\nhumans,0.9\nhumans,0.8\n", "line 3: humans has the overall value "
                                                  "already on line 2"),
    ("name,shape_bias\n,0.9\n", "line 2: empty name"),
    ("name,shape_bias\nhumans,0.9,x\n", "line 2: 3 fields"),
    ("name,shape_bias\n", "no rows after the header"),
    ("", "is empty"),
])
def test_db_topk_reference_errors(cli_error, resnet, cue_images, tmp_path, text, expected):
    weights, _ = resnet
    folder, files = cue_images
    stim = tmp_path / "cue.stim.csv"
    Stimulus([f.name for f in files], root=folder).save(stim)
    ref = tmp_path / "ref.csv"
    ref.write_text(text)
    msg = cli_error(db_topk.main, "-net", "resnet18", "-weights", weights, "-stim", stim,
                    "-layer", "layer1", "-fraction", "0.1", "-reference", ref, "-workers",
                    "0", "-out", tmp_path / "o", "-q")
    assert "ref.csv" in msg and expected in msg
    assert not (tmp_path / "o").exists()


def test_db_topk_missing_reference(cli_error, resnet, cue_images, tmp_path):
    weights, _ = resnet
    folder, files = cue_images
    stim = tmp_path / "cue.stim.csv"
    Stimulus([f.name for f in files], root=folder).save(stim)
    msg = cli_error(db_topk.main, "-net", "resnet18", "-weights", weights, "-stim", stim,
                    "-layer", "layer1", "-fraction", "0.1", "-reference",
                    tmp_path / "nope.csv", "-out", tmp_path / "o", "-q")
    assert "nope.csv" in msg and "not found" in msg
