"""db_rf end to end: the theoretical table, empirical maps as files, and bad input."""
import h5py
import numpy as np
import pytest
import torch

from dnnsparse.base.stimulus import Stimulus
from dnnsparse.cli import rf as db_rf
from dnnsparse.io.maps import read_maps
from dnnsparse.io.table import read_table
from dnnsparse.model import (load_dnn, occlusion_maps, resolve_targets, target_responses,
                             theoretical_rf, upsampling_maps)
from dnnsparse.pipelines import load_images

NET = '''
from torch import nn


def net():
    return nn.Sequential(nn.Conv2d(3, 4, 5, stride=2, padding=2), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Conv2d(4, 6, 3, padding=1), nn.ReLU())
'''


@pytest.fixture
def small_net(tmp_path):
    path = tmp_path / "small.py"
    path.write_text(NET)
    return f"{path}:net"


def test_theoretical_table(run_cli, tmp_path):
    out = tmp_path / "rf.csv"
    status, stdout, err = run_cli(db_rf.main, "-net", "alexnet", "-theoretical", "-out", out,
                                  "-q")
    assert status == 0, err
    table = read_table(out)
    rf = theoretical_rf(load_dnn("alexnet", weights="random"))
    assert list(table["layer"]) == list(rf)
    conv = [list(table["layer"]).index(f"conv{i}") for i in range(1, 6)]
    assert table["size_row"][conv].tolist() == [11, 51, 99, 131, 163]
    assert table["jump_col"][conv].tolist() == [4, 8, 16, 16, 16]
    assert list(table["scope"]).count("global") == 5           # fc1 .. fc3 with ReLUs
    assert "conv5_maxpool" in stdout and "195" in stdout
    status, _, err = run_cli(db_rf.main, "-net", "alexnet", "-theoretical", "-out", out,
                             "-layer", "conv2", "-q")
    assert status == 2 and "--force" in err
    status, _, _ = run_cli(db_rf.main, "-net", "alexnet", "-theoretical", "-out", out,
                           "-layer", "conv2", "conv4", "-force", "-q")
    assert status == 0 and list(read_table(out)["layer"]) == ["conv2", "conv4"]


def test_empirical_maps_files(run_cli, image_stim, small_net, tmp_path):
    out = tmp_path / "rf"
    status, stdout, err = run_cli(
        db_rf.main, "-net", small_net, "-weights", "random", "-target", "3:2,20,20", "1:3@max",
        "-stim", image_stim, "-occluder", "32", "-occluder-stride", "24", "-top", "4",
        "-out", out, "-q")
    assert status == 0, err
    assert sorted(p.name for p in out.iterdir()) == [".dnnsparse-output", "rf.csv", "rf.h5",
                                                     "rf_1_3_max.png", "rf_3_2_20_20.png"]
    maps = read_maps(out / "rf.h5")
    assert list(maps.groups) == ["occlusion", "upsampling", "image"]
    assert list(maps.groups["occlusion"]) == ["3:2,20,20", "1:3@max"]
    assert maps.attrs["occluder_size"] == 32 and maps.attrs["stim_file"] == str(image_stim)
    # the file holds what the library computes on the same 4 strongest stimuli
    dnn = load_dnn(small_net, weights="random")
    stim = Stimulus.load(image_stim)
    images = load_images(dnn, stim)
    targets = resolve_targets(["3:2,20,20", "1:3@max"], dnn)
    with torch.inference_mode():
        values = target_responses(dnn, dnn.normalize(images), targets).numpy()
    for j, t in enumerate(targets):
        top = np.argsort(-values[:, j], kind="stable")[:4]
        attrs = maps.dataset_attrs["occlusion"][t.name]
        assert attrs["stimID"] == [str(stim.ids[i]) for i in top]
        occ = occlusion_maps(dnn, images[torch.as_tensor(top)], [t], size=32, stride=24)
        np.testing.assert_allclose(maps.groups["occlusion"][t.name], occ.pixel_maps()[0],
                                   rtol=1e-5, atol=1e-6)
        up = upsampling_maps(dnn, images[torch.as_tensor(top)], [t])
        np.testing.assert_allclose(maps.groups["upsampling"][t.name], up[0], rtol=1e-5,
                                   atol=1e-6)
        assert maps.groups["image"][t.name].shape == (224, 224, 3)
    table = read_table(out / "rf.csv")
    assert list(table["method"]) == ["occlusion", "upsampling"] * 2
    unit = list(table["target"]).index("3:2,20,20")
    # layer 3: conv 5/2 (pad 2), pool 2, conv 3 (pad 1) → size 15, jump 4, centre 1
    assert (table["rf_size_row"][unit], table["rf_top"][unit], table["rf_bottom"][unit]) == (
        15, 1 + 19 * 4 - 7, 1 + 19 * 4 + 7)
    peak = maps.groups["occlusion"]["3:2,20,20"]
    r, c = np.unravel_index(np.argmax(peak), peak.shape)
    assert (table["peak_row"][unit], table["peak_col"][unit]) == (r, c)
    # the occlusion peak of the unit lies inside its theoretical field (and says so)
    assert 1 + 19 * 4 - 7 <= r <= 1 + 19 * 4 + 7 and 1 + 19 * 4 - 7 <= c <= 1 + 19 * 4 + 7
    assert table["method"][unit] == "occlusion" and table["peak_in_rf"][unit] == "True"


def test_ablated_maps_equal_those_of_a_hand_ablated_network(run_cli, image_stim, small_net,
                                                            tmp_path):
    out = tmp_path / "rf"
    status, _, err = run_cli(
        db_rf.main, "-net", small_net, "-weights", "random", "-ablate", "0:2,4",
        "-target", "3:2,20,20", "3:5@max", "-stim", image_stim, "-occluder", "32",
        "-occluder-stride", "24", "-out", out, "-no-figures", "-q")
    assert status == 0, err
    maps = read_maps(out / "rf.h5")
    assert maps.attrs["ablate"] == "0:2,4" and maps.attrs["ablate_mode"] == "weights"
    # by hand: filters and biases 2 and 4 of the first convolution set to 0
    dnn = load_dnn(small_net, weights="random")
    intact = load_dnn(small_net, weights="random")
    with torch.no_grad():
        for c in (1, 3):
            dnn.module[0].weight[c] = 0
            dnn.module[0].bias[c] = 0
    images = load_images(dnn, Stimulus.load(image_stim))
    targets = resolve_targets(["3:2,20,20", "3:5@max"], dnn)
    changed = False
    for t in targets:
        occ = occlusion_maps(dnn, images, [t], size=32, stride=24).pixel_maps()[0]
        np.testing.assert_allclose(maps.groups["occlusion"][t.name], occ, rtol=1e-5, atol=1e-6)
        up = upsampling_maps(dnn, images, [t])[0]
        np.testing.assert_allclose(maps.groups["upsampling"][t.name], up, rtol=1e-5, atol=1e-6)
        changed |= not np.allclose(upsampling_maps(intact, images, [t])[0], up)
    assert changed                                   # the ablation did change the maps


def test_bad_input_is_one_line_and_writes_nothing(cli_error, image_stim, tmp_path):
    out = tmp_path / "rf"
    base = ["-net", "alexnet", "-weights", "random", "-stim", image_stim, "-out", out]
    msg = cli_error(db_rf.main, *base, "-target", "conv5:300")
    assert "channel 300 is out of range" in msg and "256 channels" in msg
    msg = cli_error(db_rf.main, *base, "-target", "conv5:3", "-occluder", "300")
    assert "occluder (300x300 pixels) is larger" in msg and "224x224" in msg
    msg = cli_error(db_rf.main, *base, "-target", "conv5:3", "-ablate", "conv4:500")
    assert "-ablate conv4:500" in msg and "channel 500 is out of range" in msg
    msg = cli_error(db_rf.main, *base, "-target", "conv9:3")
    assert "unknown layer 'conv9'" in msg and "did you mean" in msg
    msg = cli_error(db_rf.main, *base, "-target", "fc3:class=goldfsh")
    assert "goldfish" in msg
    msg = cli_error(db_rf.main, *base, "-target", "conv5:3,14,1")
    assert "outside layer 'conv5'" in msg
    msg = cli_error(db_rf.main, *base, "-target", "conv5")
    assert "cannot read target" in msg
    msg = cli_error(db_rf.main, "-net", "alexnet", "-target", "conv5:3", "-out", out)
    assert "-stim" in msg
    msg = cli_error(db_rf.main, *base, "-target", "fc3:class=1", "-method", "upsampling")
    assert "no spatial map" in msg
    assert not out.exists()
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("")
    msg = cli_error(db_rf.main, *base[:-1], tmp_path / "full", "-target", "conv5:3")
    assert "not empty" in msg


def test_maps_file_is_self_describing(tmp_path):
    from dnnsparse.io.maps import write_maps
    write_maps(tmp_path / "m.h5", {"occlusion": {"b:1": np.ones((2, 3)), "a:1": np.zeros((2, 3))}},
               attrs={"net": "x"}, dataset_attrs={"occlusion": {"b:1": {"stimID": ["s1"]}}})
    with h5py.File(tmp_path / "m.h5") as f:
        assert f["occlusion"]["b:1"].shape == (2, 3) and f.attrs["net"] == "x"
    back = read_maps(tmp_path / "m.h5")
    assert list(back.groups["occlusion"]) == ["b:1", "a:1"]           # written order
    assert back.dataset_attrs["occlusion"]["b:1"]["stimID"] == ["s1"]
