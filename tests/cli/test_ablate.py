"""db_ablate and db_act -ablate end to end, against hand-edited copies of the network."""
import copy

import numpy as np
import pytest
import torch

from dnnsparse.algo.shape_bias import imagenet_accuracy
from dnnsparse.base.activation import Activation
from dnnsparse.base.stimulus import Stimulus
from dnnsparse.cli import ablate as db_ablate
from dnnsparse.cli import act as db_act
from dnnsparse.io.table import read_table
from dnnsparse.model import DNN, load_dnn
from dnnsparse.pipelines import ablation_effects, load_images

NET = '''
from torch import nn


def net():
    return nn.Sequential(nn.Conv2d(3, 4, 5, stride=4), nn.BatchNorm2d(4), nn.ReLU(),
                         nn.Conv2d(4, 6, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
                         nn.Linear(24, 1000))
'''


@pytest.fixture
def small_net(tmp_path):
    path = tmp_path / "small.py"
    path.write_text(NET)
    return f"{path}:net"


def _edited(small_net, channel):
    """The network with conv 3's filter and bias ``channel`` (1-based) zeroed by hand."""
    dnn = load_dnn(small_net, weights="random")
    net = copy.deepcopy(dnn.module)
    with torch.no_grad():
        net[3].weight[channel - 1] = 0
        net[3].bias[channel - 1] = 0
    return dnn, DNN(net, name="edited")


def _scores(dnn, images):
    with torch.inference_mode():
        return dnn(dnn.normalize(images)).numpy()


def test_single_ablation_equals_hand_edited(run_cli, image_stim, small_net, tmp_path):
    out = tmp_path / "abl"
    status, stdout, err = run_cli(db_ablate.main, "-net", small_net, "-weights", "random",
                                  "-ablate", "3:2", "-target", "4:2", "4:5@max",
                                  "-stim", image_stim, "-out", out, "-batch-size", "4", "-q")
    assert status == 0, err
    assert sorted(p.name for p in out.iterdir()) == [".dnnsparse-output", "ablate.csv",
                                                     "per_category.csv", "per_image.csv"]
    table = read_table(out / "ablate.csv")
    intact, edited = _edited(small_net, 2)
    stim = Stimulus.load(image_stim)
    images = load_images(intact, stim)
    labels = np.asarray(stim.labels)                  # folder labels 0..2: ImageNet indices
    acc_before = imagenet_accuracy(_scores(intact, images), labels)
    acc_after = imagenet_accuracy(_scores(edited, images), labels)
    assert table["ablate"].tolist() == ["3:2"] and table["n_images"][0] == 9
    for k in ("top1", "top5"):
        assert table[f"{k}_before"][0] == pytest.approx(acc_before[k])
        assert table[f"{k}_after"][0] == pytest.approx(acc_after[k])
    with torch.inference_mode():
        before = intact.forward_layers(intact.normalize(images), ["4"])["4"]
        after = edited.forward_layers(edited.normalize(images), ["4"])["4"]
    assert torch.count_nonzero(after[:, 1]) == 0
    per_image = read_table(out / "per_image.csv")
    rows = per_image["target"] == "4:5@max"
    np.testing.assert_allclose(per_image["after"][rows], after[:, 4].amax((1, 2)).numpy(),
                               rtol=1e-5)
    np.testing.assert_allclose(per_image["before"][rows], before[:, 4].amax((1, 2)).numpy(),
                               rtol=1e-5)
    assert table["4:2_after"][0] == 0 and table["4:2_before"][0] > 0
    rms = np.sqrt(np.mean((_scores(edited, images) - _scores(intact, images)) ** 2, axis=1))
    assert table["output_change"][0] == pytest.approx(rms.mean(), rel=1e-5)
    cats = read_table(out / "per_category.csv")
    assert cats["category"].tolist() == [0, 1, 2] and cats["n_images"].tolist() == [3, 2, 4]
    hit = imagenet_accuracy(_scores(edited, images)[labels == 2], labels[labels == 2])
    assert cats["top1_after"][2] == pytest.approx(hit["top1"])


NET16 = NET.replace("""                         nn.Linear(24, 1000))
""", """                         nn.Linear(24, 1000))


def net16():
    import torch
    from dnnsparse.algo.shape_bias import imagenet16_categories
    m = net()
    with torch.no_grad():      # peaked scores; the decision falls among bird, cat and dog
        m[7].weight.mul_(40)
        for name in ("bird", "cat", "dog"):
            m[7].bias[list(imagenet16_categories()[name])] += 6
    return m
""")


def _colour_folder(root, counts):
    """``root/<category>/<i>.png``: each image one random colour plus noise (images differ,
    so do the network's decisions)."""
    from PIL import Image
    gen = np.random.default_rng(0)
    for cat, n in counts.items():
        (root / cat).mkdir(parents=True)
        for i in range(n):
            img = gen.integers(0, 256, 3)[None, None] + gen.normal(0, 20, (40, 56, 3))
            Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(root / cat / f"{i}.png")
    return root


def test_16class_accuracy_equals_hand_edited_network(run_cli, cli_error, small_net, tmp_path):
    from scipy.special import softmax
    from dnnsparse.algo.shape_bias import decision_accuracy
    from tests.conftest import make_image_folder
    (tmp_path / "small.py").write_text(NET16)
    net = f"{tmp_path / 'small.py'}:net16"
    folder = _colour_folder(tmp_path / "cats", {"bird": 4, "cat": 3, "dog": 5})
    stim_path = tmp_path / "c.stim.csv"
    Stimulus.from_folder(folder).save(stim_path)
    out = tmp_path / "abl"
    status, _, err = run_cli(db_ablate.main, "-net", net, "-weights", "random", "-ablate",
                             "3:2,4", "-accuracy", "16class", "-stim", stim_path, "-out", out,
                             "-batch-size", "5", "-q")
    assert status == 0, err
    table = read_table(out / "ablate.csv")
    intact = load_dnn(net, weights="random")
    edited = copy.deepcopy(intact.module)
    with torch.no_grad():
        for c in (1, 3):
            edited[3].weight[c] = 0
            edited[3].bias[c] = 0
    edited = DNN(edited, name="edited")
    stim = Stimulus.load(stim_path)
    images = load_images(intact, stim)
    names = stim.columns["condition"]
    def acc(dnn, rows=slice(None)):
        probs = softmax(_scores(dnn, images)[rows].astype(np.float64), axis=1)
        return decision_accuracy(probs, names[rows])

    before, after = acc(intact), acc(edited)
    assert 0 < before < 1 and after != before            # the data can tell a wrong answer
    assert table["acc16_before"][0] == pytest.approx(before)
    assert table["acc16_after"][0] == pytest.approx(after)
    assert table["acc16_change"][0] == pytest.approx(after - before)
    assert "top1_before" not in table
    cats = read_table(out / "per_category.csv")
    assert cats["category"].tolist() == ["bird", "cat", "dog"]
    assert cats["n_images"].tolist() == [4, 3, 5]
    assert cats["acc16_after"][2] == pytest.approx(acc(edited, names == "dog"))
    assert cats["acc16_before"][0] == pytest.approx(acc(intact, names == "bird"))
    # a sweep ranks by the accuracy drop and equals the single run for that channel
    status, _, err = run_cli(db_ablate.main, "-net", net, "-weights", "random", "-sweep", "3",
                             "-accuracy", "16class", "-stim", stim_path, "-out",
                             tmp_path / "sw", "-q")
    assert status == 0, err
    sweep = read_table(tmp_path / "sw" / "ablate.csv")
    single = ablation_effects(intact, stim, ablate_specs=["3:4"], accuracy="16class",
                              show_progress=False).table
    assert sweep["acc16_after"][3] == pytest.approx(single["acc16_after"][0])
    np.testing.assert_array_equal(sweep["effect"], -sweep["acc16_change"])
    # the image_stim folders are cat, dog and owl: owl is not one of the 16
    bad = tmp_path / "bad.stim.csv"
    Stimulus.from_folder(make_image_folder(tmp_path / "owls")).save(bad)
    msg = cli_error(db_ablate.main, "-net", net, "-weights", "random", "-ablate", "3:2",
                    "-accuracy", "16class", "-stim", bad, "-out", tmp_path / "x")
    assert "'condition' column" in msg and "'owl'" in msg and not (tmp_path / "x").exists()


@pytest.mark.parametrize("mode", ["weights", "hook"])
def test_sweep_equals_single_runs(run_cli, image_stim, small_net, tmp_path, mode):
    out = tmp_path / "sweep"
    status, stdout, err = run_cli(db_ablate.main, "-net", small_net, "-weights", "random",
                                  "-sweep", "0", "-mode", mode, "-target", "4:3", "7:class=1",
                                  "-rank-by", "output", "-stim", image_stim, "-out", out,
                                  "-batch-size", "4", "-q")
    assert status == 0, err
    table = read_table(out / "ablate.csv")
    assert table["ablate"].tolist() == [f"0:{c}" for c in range(1, 5)]      # one row each
    dnn = load_dnn(small_net, weights="random")
    stim = Stimulus.load(image_stim)
    for i, c in enumerate(range(1, 5)):
        single = ablation_effects(dnn, stim, ablate_specs=[f"0:{c}"], mode=mode,
                                  targets=["4:3", "7:class=1"], batch_size=3,
                                  show_progress=False).table
        for col in ("top1_after", "top5_after", "output_change", "4:3_after",
                    "7:class=goldfish_after", "4:3_change"):
            assert table[col][i] == pytest.approx(single[col][0], rel=1e-5, abs=1e-7), col
    effect = table["output_change"]
    assert (np.argsort(-effect, kind="stable") + 1).tolist() == \
        np.argsort(table["rank"]).__add__(1).tolist()
    assert sorted(table["rank"].tolist()) == [1, 2, 3, 4]


def test_db_act_ablate_equals_hand_edited(run_cli, image_stim, small_net, tmp_path):
    out = tmp_path / "a.act.h5"
    status, _, err = run_cli(db_act.main, "-net", small_net, "-weights", "random",
                             "-ablate", "3:2,5", "-layer", "3", "4", "7", "-stim", image_stim,
                             "-out", out, "-q")
    assert status == 0, err
    intact, edited = _edited(small_net, 2)
    with torch.no_grad():
        edited.module[3].weight[4] = 0
        edited.module[3].bias[4] = 0
    stim = Stimulus.load(image_stim)
    ref = edited.extract(stim, ["3", "4", "7"], show_progress=False)
    with Activation.load(out, lazy=False) as act:
        assert act.attrs["ablate"] == "3:2,5" and act.attrs["ablate_mode"] == "weights"
        for layer in ("3", "4", "7"):
            np.testing.assert_array_equal(act[layer], ref[layer])
        assert not np.any(act["4"][:, [1, 4]])
    status, _, err = run_cli(db_act.main, "-net", small_net, "-weights", "random",
                             "-ablate", "4:2", "-ablate-mode", "hook", "-layer", "4",
                             "-stim", image_stim, "-out", tmp_path / "h.act.h5", "-q")
    assert status == 0, err
    with Activation.load(tmp_path / "h.act.h5", lazy=False) as act:
        assert act.attrs["ablate_mode"] == "hook" and not np.any(act["4"][:, 1])
        assert np.any(act["4"][:, 0])


@pytest.mark.parametrize("args, message", [
    (["-ablate", "3:7"], "channel 7 is out of range; layer '3' has 6 channels"),
    (["-ablate", "conv9:1"], "unknown layer 'conv9'"),
    (["-sweep", "conv9"], "unknown layer 'conv9'"),
    (["-ablate", "3:1", "-target", "4:9"], "channel 9 is out of range"),
    (["-ablate", "3:x"], "cannot read ablation"),
    (["-ablate", "3:1", "-sweep", "3"], "either -ablate"),
])
def test_bad_input(cli_error, image_stim, small_net, tmp_path, args, message):
    out = tmp_path / "bad"
    msg = cli_error(db_ablate.main, "-net", small_net, "-weights", "random", *args,
                    "-stim", image_stim, "-out", out, "-q")
    assert message in msg
    assert not out.exists()


@pytest.mark.parametrize("spec, message", [
    ("3:7", "channel 7 is out of range"), ("conv9:1", "unknown layer 'conv9'")])
def test_db_act_bad_ablation(cli_error, image_stim, small_net, tmp_path, spec, message):
    out = tmp_path / "bad.act.h5"
    msg = cli_error(db_act.main, "-net", small_net, "-weights", "random", "-ablate", spec,
                    "-layer", "4", "-stim", image_stim, "-out", out, "-q")
    assert message in msg and not out.exists()


def test_help_has_example(capsys):
    assert db_ablate.main(["--help"]) == 0
    assert "example: db_ablate" in capsys.readouterr().out
