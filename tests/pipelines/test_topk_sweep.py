"""Top-K sweeps against a direct computation: plain torch forward passes with
topk_sparsify hooks, softmax and a per-image loop over the 16 categories."""
import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from dnnsparse.algo.shape_bias import CATEGORIES, cue_conflict_shape_bias, imagenet16_categories
from dnnsparse.model import topk_sparsify
from dnnsparse.pipelines import (cue_conflict_categories, evaluate_scores, network_output_layer,
                                 stimulus_scores, topk_sweep)
from dnnsparse.base.stimulus import Stimulus
from dnnsparse.errors import InputError, UnknownLayerError
from dnnsparse.model import IMAGENET_MEAN, IMAGENET_STD
from dnnsparse.model import wrap_module

SIZE = 48


def tiny_net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 5, stride=2), nn.ReLU(), nn.Conv2d(8, 12, 3),
                         nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(12, 1000))


def direct_logits(module, arrays, topk=None, mode="keep"):
    """Plain forward pass of uint8 images (n, SIZE, SIZE, 3) with Top-K hooks."""
    x = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float().div(255)
    x = (x - torch.tensor(IMAGENET_MEAN)[:, None, None]) / torch.tensor(IMAGENET_STD)[:, None,
                                                                                      None]
    handles = [module.get_submodule(path).register_forward_hook(
        lambda m, i, o, f=f: topk_sparsify(o, f, mode=mode)) for path, f in (topk or {}).items()]
    try:
        with torch.no_grad():
            return module(x).double().numpy()
    finally:
        for h in handles:
            h.remove()


def slow_decisions(logits):
    """Softmax, then the mean probability per category, image by image."""
    decisions = []
    for row in logits:
        p = np.exp(row - row.max())
        p /= p.sum()
        means = [np.mean(p[list(idx)]) for idx in imagenet16_categories().values()]
        decisions.append(CATEGORIES[int(np.argmax(means))])
    return np.array(decisions)


def slow_shape_bias(decisions, shape, texture):
    n_shape = n_texture = n_conflict = 0
    for d, s, t in zip(decisions, shape, texture):
        if s == t:
            continue
        n_conflict += 1
        n_shape += d == s
        n_texture += d == t
    both = n_shape + n_texture
    return (n_shape / both if both else np.nan), both / n_conflict


@pytest.fixture
def cue_set(tmp_path, rng):
    """12 random images named after the intact net's decisions, with a known answer.

    Images 0-3 get their decision as shape, 4-5 as texture, 6-9 neither, and
    10-11 the same category for shape and texture (excluded): shape bias 4/6.
    """
    module = tiny_net()
    arrays = [rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8) for _ in range(12)]
    decided = slow_decisions(direct_logits(module, arrays))
    other = [[c for c in CATEGORIES if c != d] for d in decided]
    shape, texture = [], []
    for i, d in enumerate(decided):
        a, b = other[i][i % 15], other[i][(i + 5) % 15]
        s, t = {0: (d, a), 1: (a, d), 2: (a, b), 3: (a, a)}[
            0 if i < 4 else 1 if i < 6 else 2 if i < 10 else 3]
        shape.append(s)
        texture.append(t)
    folder = tmp_path / "cue"
    folder.mkdir()
    ids = []
    for i, (a, s, t) in enumerate(zip(arrays, shape, texture)):
        ids.append(f"{s}{i}-{t}{i}.png")
        Image.fromarray(a).save(folder / ids[-1])
    stim = Stimulus(ids, root=folder)
    dnn = wrap_module(module, name="tiny", input_size=(SIZE, SIZE))
    return dnn, module, stim, arrays, np.array(shape), np.array(texture)


# ------------------------------------------------------------------- categories
def test_cue_conflict_categories_from_names_and_columns():
    stim = Stimulus(["a/cat1-dog2.png", "knife10-bottle3.png"])
    shape, texture = cue_conflict_categories(stim)
    assert shape.tolist() == ["cat", "knife"] and texture.tolist() == ["dog", "bottle"]
    stim = Stimulus(["x.png", "y.png"], columns={"shape": ["Cat", "car"],
                                                 "texture": ["dog ", "car"]})
    shape, texture = cue_conflict_categories(stim)
    assert shape.tolist() == ["cat", "car"] and texture.tolist() == ["dog", "car"]


@pytest.mark.parametrize("stim, match", [
    (Stimulus(["cat1-dog1.png", "photo.png"]), "row 2.*photo.png"),
    (Stimulus(["x.png"], columns={"shape": ["cat"]}), "no 'texture' column"),
    (Stimulus(["x.png"], columns={"shape": ["cat"], "texture": ["zebra"]}), "zebra"),
])
def test_cue_conflict_categories_errors(stim, match):
    with pytest.raises(InputError, match=match):
        cue_conflict_categories(stim)


# ----------------------------------------------------------------------- scores
def test_evaluate_scores_against_slow_loop(rng):
    n = 40
    logits = rng.normal(size=(n, 1000)) * 3
    shape = rng.choice(CATEGORIES, n)
    texture = rng.choice(CATEGORIES, n)
    row, per_cat = evaluate_scores(logits, shape, texture, n_boot=300, seed=5)
    decisions = slow_decisions(logits)
    bias, either = slow_shape_bias(decisions, shape, texture)
    assert row["shape_bias"] == pytest.approx(bias, nan_ok=True)
    assert row["shape_or_texture_fraction"] == pytest.approx(either)
    assert row["accuracy_kind"] == "shape_decision"
    assert row["accuracy"] == pytest.approx(np.mean(decisions == shape))
    assert row["n_images"] == n and row["n_excluded"] == int(np.sum(shape == texture))
    # the interval is the shape-bias function's own, with the same seed
    ref = cue_conflict_shape_bias(decisions, shape=shape, texture=texture, n_boot=300, seed=5)
    assert (row["ci_low"], row["ci_high"]) == (ref.ci_low, ref.ci_high)
    assert per_cat["n_shape"] == ref.per_category["n_shape"]
    # ImageNet labels: top-1 by argmax (no ties in continuous logits)
    labels = rng.integers(0, 1000, n)
    labels[:10] = logits[:10].argmax(1)
    row, _ = evaluate_scores(logits, shape, texture, labels=labels, n_boot=0)
    assert row["accuracy_kind"] == "imagenet_top1"
    assert row["accuracy"] == pytest.approx(np.mean(logits.argmax(1) == labels))
    assert np.isnan(row["ci_low"])
    row, _ = evaluate_scores(logits, shape, texture, labels=labels, accuracy="shape", n_boot=0)
    assert row["accuracy_kind"] == "shape_decision"


def test_evaluate_scores_known_answer_and_errors():
    scores = np.eye(16)[[CATEGORIES.index(c) for c in ("cat", "cat", "dog", "car")]] * 4
    row, per_cat = evaluate_scores(scores, ["cat", "dog", "dog", "bird"],
                                   ["dog", "cat", "bird", "boat"], n_boot=0)
    # cat: shape; cat on dog-shape: texture; dog: shape; car: neither
    assert row["shape_bias"] == pytest.approx(2 / 3)
    assert row["shape_or_texture_fraction"] == pytest.approx(3 / 4)
    assert row["accuracy"] == pytest.approx(2 / 4)
    assert per_cat["shape_bias"][CATEGORIES.index("dog")] == pytest.approx(0.5)
    with pytest.raises(InputError, match="1000 .* or 16"):
        evaluate_scores(np.zeros((2, 10)), ["cat", "dog"], ["dog", "cat"])
    with pytest.raises(InputError, match="label"):
        evaluate_scores(np.zeros((2, 1000)), ["cat", "dog"], ["dog", "cat"],
                        accuracy="imagenet")


def test_network_output_layer():
    dnn = wrap_module(tiny_net(), input_size=(SIZE, SIZE))
    assert network_output_layer(dnn) == "6"

    class Doubled(nn.Module):          # output made by a function after the last module
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3 * SIZE * SIZE, 1000)

        def forward(self, x):
            return 2 * self.fc(x.flatten(1))
    with pytest.raises(InputError, match="output-layer"):
        network_output_layer(wrap_module(Doubled(), input_size=(SIZE, SIZE)))


def test_stimulus_scores_match_plain_forward_and_hooks_are_removed(cue_set):
    dnn, module, stim, arrays, _, _ = cue_set
    spec = {"1": 0.1, "3": 0.3}
    got = stimulus_scores(dnn, stim, topk=spec, mode="mean", batch_size=5)
    np.testing.assert_allclose(got, direct_logits(module, arrays, spec, mode="mean"),
                               rtol=1e-5, atol=1e-6)
    intact = stimulus_scores(dnn, stim, batch_size=5)
    np.testing.assert_allclose(intact, direct_logits(module, arrays), rtol=1e-5, atol=1e-6)
    assert not np.allclose(got, intact)
    assert all(not m._forward_hooks for m in module.modules()
               if m is not module and not isinstance(m, nn.Sequential))


# ------------------------------------------------------------------------ sweep
def test_topk_sweep_against_direct_computation(cue_set):
    dnn, module, stim, arrays, shape, texture = cue_set
    sets = [["3"], ["1", "3"]]
    fractions = [0.05, 0.3, 1.0]
    res = topk_sweep(dnn, stim, sets, fractions, n_boot=200, seed=2, batch_size=4,
                     keep_scores=True, show_progress=False)
    t = res.table
    assert t["layers"] == ["none"] + ["3"] * 3 + ["1+3"] * 3
    assert t["fraction"] == [1.0] + fractions * 2
    assert t["mode"] == ["none"] + ["keep"] * 6
    # the intact network: the answer built into the image names
    assert t["shape_bias"][0] == pytest.approx(4 / 6)
    assert t["shape_or_texture_fraction"][0] == pytest.approx(6 / 10)
    assert t["n_excluded"][0] == 2 and t["n_images"][0] == 12
    for i, (layers, fraction) in enumerate(zip(t["layers"], t["fraction"])):
        spec = None if layers == "none" else dict.fromkeys(layers.split("+"), fraction)
        logits = direct_logits(module, arrays, spec)
        np.testing.assert_allclose(res.scores[i], logits, rtol=1e-5, atol=1e-6)
        decisions = slow_decisions(logits)
        bias, either = slow_shape_bias(decisions, shape, texture)
        ref = cue_conflict_shape_bias(decisions, shape=shape, texture=texture, n_boot=200,
                                      seed=2)
        assert t["shape_bias"][i] == pytest.approx(bias, nan_ok=True)
        assert t["shape_or_texture_fraction"][i] == pytest.approx(either)
        np.testing.assert_equal([t["ci_low"][i], t["ci_high"][i]], [ref.ci_low, ref.ci_high])
        assert t["accuracy"][i] == pytest.approx(np.mean(decisions == shape))
    # Top-K that keeps everything is the intact network
    np.testing.assert_array_equal(res.scores[3], res.scores[0])
    assert len(res.per_category["category"]) == 7 * 16
    assert res.per_category["layers"][16:32] == ["3"] * 16
    # a sparse setting changes the scores
    assert not np.allclose(res.scores[1], res.scores[0])


def test_topk_sweep_checks_before_computing(cue_set):
    dnn, _, stim, _, _, _ = cue_set
    with pytest.raises(UnknownLayerError, match="conv9"):
        topk_sweep(dnn, stim, [["3"], ["conv9"]], [0.1], show_progress=False)
    with pytest.raises(InputError, match="fraction"):
        topk_sweep(dnn, stim, [["3"]], [0.1, 0], show_progress=False)
    with pytest.raises(InputError, match="twice"):
        topk_sweep(dnn, stim, [["3", "3"]], [0.1], show_progress=False)
    with pytest.raises(InputError, match="layer set"):
        topk_sweep(dnn, stim, [], [0.1], show_progress=False)
    with pytest.raises(InputError, match="mode"):
        topk_sweep(dnn, stim, [["3"]], [0.1], mode="median", show_progress=False)
