"""db_minstim's pipeline: input geometry, the per-pair searches, the files, stimulus subsets."""
import json

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from dnnsparse.algo.segmentation import fill_image, segment
from dnnsparse.base.stimulus import Stimulus
from dnnsparse.errors import InputError, UnknownLayerError
from dnnsparse.io.table import read_table
from dnnsparse.model import DNN, minimal_image, resolve_targets, target_responses
from dnnsparse.pipelines import minimal_images, select_stimuli, write_minstim_outputs

SIZE = (40, 40)


def _dnn(preprocess="squash"):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 5, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Conv2d(5, 4, 3, padding=1), nn.ReLU())
    return DNN(net, input_size=SIZE, preprocess=preprocess)


def _blocks(rng, size):
    img = np.zeros(size + (3,), np.uint8)
    for _ in range(6):
        r, c = rng.integers(0, size[0] - 10, 2)
        img[r:r + rng.integers(10, 25), c:c + rng.integers(10, 25)] = rng.integers(0, 256, 3)
    return img


@pytest.fixture
def stim(tmp_path):
    rng = np.random.default_rng(0)
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i, size in enumerate([(50, 64), (44, 44), (60, 48)]):
        Image.fromarray(_blocks(rng, size)).save(folder / f"b{i}.png")
    Image.fromarray(np.full((30, 30, 3), 90, np.uint8)).save(folder / "flat.png")
    Stimulus.from_folder(folder).save(tmp_path / "s.stim.csv")
    return Stimulus.load(tmp_path / "s.stim.csv")


OPTS = dict(keep=0.6, method="slic", params={"n_segments": 10}, fill="grey",
            show_progress=False)


@pytest.mark.parametrize("preprocess", ["squash", "crop"])
def test_searches_run_in_the_networks_input_geometry(stim, preprocess):
    dnn = _dnn(preprocess)
    sub = select_stimuli(stim, ["b2.png", "b0.png"])
    res = minimal_images(dnn, sub, ["4:2", "4:1,5,5"], batch_size=7, **OPTS)
    assert res.stim_ids == ["b2.png", "b0.png"]
    transform = dnn.image_transform()
    for i, path in enumerate(sub.paths):
        with Image.open(path) as im:
            expected = transform(im).permute(1, 2, 0).numpy()
        assert res.images[i].shape == SIZE + (3,)
        np.testing.assert_array_equal(res.images[i], expected)
        labels = segment(expected, "slic", n_segments=10)
        np.testing.assert_array_equal(res.labels[i], labels)
        fill = fill_image(expected, "grey", dataset_mean=dnn.mean)
        for j, t in enumerate(res.targets):
            direct = minimal_image(dnn, torch.as_tensor(expected).permute(2, 0, 1), labels, t,
                                   keep=0.6, fill=fill, batch_size=3)
            got = res.results[(i, j)]
            assert got.order.tolist() == direct.order.tolist()
            np.testing.assert_allclose(got.values, direct.values, rtol=1e-5)
            np.testing.assert_array_equal(got.image, direct.image)


def test_files_hold_the_results(stim, tmp_path):
    dnn = _dnn()
    sub = select_stimuli(stim, ["b0.png", "b1.png"])
    res = minimal_images(dnn, sub, ["4:2", "4:3@max"], batch_size=16, **OPTS)
    out = tmp_path / "out"
    written = write_minstim_outputs(res, out, provenance={"command": "db_minstim x"})
    names = sorted(p.name for p in written)
    assert names == sorted(
        ["minstim.csv", "minstim.json"]
        + [f"b{i}.png.segments.{e}" for i in (0, 1) for e in ("npy", "png")]
        + [f"b{i}.png__{t}.{e}" for i in (0, 1) for t in ("4_2", "4_3_max")
           for e in ("minimal.png", "order.csv", "curve.png")])
    assert all(p.is_file() for p in written)
    summary = read_table(out / "minstim.csv")
    assert list(summary["stimID"]) == ["b0.png", "b0.png", "b1.png", "b1.png"]
    assert list(summary["target"]) == ["4:2", "4:3@max"] * 2
    record = json.loads((out / "minstim.json").read_text())
    assert record["targets"] == ["4:2", "4:3@max"] and record["stimID"] == ["b0.png", "b1.png"]
    searched = 0
    for (i, j), r in res.results.items():
        row = 2 * i + j
        stem = f"b{i}.png__{['4_2', '4_3_max'][j]}"
        with Image.open(out / f"{stem}.minimal.png") as im:
            png = np.array(im)
        np.testing.assert_array_equal(png, r.image)               # exact pixels
        order = read_table(out / f"{stem}.order.csv")
        assert order["step"].tolist() == list(range(len(r.order) + 1))
        assert order["parcel"].tolist() == [-1] + r.order.tolist()
        np.testing.assert_allclose(order["value"], r.curve(), rtol=1e-12)
        assert summary["n_removed"][row] == len(r.order) and summary["status"][row] == r.status
        if r.status != "minimal":
            continue
        searched += 1
        np.testing.assert_allclose(order["fraction"], r.curve() / r.reference, rtol=1e-12)
        assert np.all(order["fraction"][1:] >= 0.6)
        assert summary["next_best_fraction"][row] < 0.6
        # the written minimal image, read back and run alone, keeps the fraction
        x = dnn.normalize(torch.as_tensor(png).permute(2, 0, 1)[None])
        with torch.inference_mode():
            v = float(target_responses(dnn, x, [r.target])[0, 0])
        assert v >= 0.6 * r.reference * (1 - 1e-6)
    assert searched >= 2
    for i in (0, 1):
        np.testing.assert_array_equal(np.load(out / f"b{i}.png.segments.npy"), res.labels[i])
    # a second write needs force, and then replaces the folder
    with pytest.raises(Exception, match="force|not empty"):
        write_minstim_outputs(res, out)
    write_minstim_outputs(res, out, figures=False, force=True)
    assert not (out / "b0.png.segments.png").exists() and (out / "minstim.csv").exists()


def test_one_parcel_is_refused_before_any_search(stim):
    dnn = _dnn()
    with pytest.raises(InputError, match=r"stimulus flat.png: felzenszwalb cut its 40x40 "
                                         r"image into 1 parcel; a minimal image needs at least 2"):
        minimal_images(dnn, stim, ["4:2"], **{**OPTS, "method": "felzenszwalb",
                                              "params": {"min_size": 5}})


def test_bad_targets_and_options(stim):
    dnn = _dnn()
    sub = select_stimuli(stim, ["b0.png"])
    with pytest.raises(InputError, match="channel 9 is out of range"):
        minimal_images(dnn, sub, ["4:9"], **OPTS)
    with pytest.raises(UnknownLayerError, match="unknown layer"):
        minimal_images(dnn, sub, ["conv9:1"], **OPTS)
    with pytest.raises(InputError, match="-keep"):
        minimal_images(dnn, sub, ["4:1"], **{**OPTS, "keep": 1.5})
    with pytest.raises(InputError, match="-compactness is a parameter of slic"):
        minimal_images(dnn, sub, ["4:1"], **{**OPTS, "method": "felzenszwalb",
                                             "params": {"compactness": 3}})


def test_select_stimuli(stim):
    assert select_stimuli(stim).ids.tolist() == stim.ids.tolist()
    assert select_stimuli(stim, ["flat.png", "b1.png"]).ids.tolist() == ["flat.png", "b1.png"]
    with pytest.raises(InputError, match="did you mean b1.png"):
        select_stimuli(stim, ["b1.jpg"])
    with pytest.raises(InputError, match="given twice"):
        select_stimuli(stim, ["b1.png", "b1.png"])


def test_many_parcels_are_warned_about(stim, caplog, monkeypatch):
    from dnnsparse.pipelines import _minstim
    monkeypatch.setattr(_minstim, "_MANY_PARCELS", 5)
    dnn = _dnn()
    with caplog.at_level("WARNING"):
        res = minimal_images(dnn, select_stimuli(stim, ["b1.png"]), ["4:2"], **OPTS)
    n = res.results[(0, 0)].n_parcels
    assert n > 5
    assert f"stimulus b1.png: {n} parcels" in caplog.text and str(n * (n + 1) // 2) in caplog.text
