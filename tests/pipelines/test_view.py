"""db_view's maths: top channels = stable argsort of channel means; maps on the photograph."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torchvision import transforms as T

from dnnsparse.base.activation import Activation
from dnnsparse.base.stimulus import Stimulus
from dnnsparse.model import input_window, load_dnn, maps_on_image
from dnnsparse.pipelines import act_view, network_view, top_channels


def _slow_top(data, k):
    """Channels by mean, largest first, equal means by channel number: a Python loop."""
    out = []
    for row in data:
        means = [math.fsum(float(v) for v in chn.ravel()) / chn.size for chn in row]
        order = sorted(range(len(means)), key=lambda c: (-means[c], c))[:k]
        out.append((order, [means[c] for c in order]))
    return out


def test_top_channels_equal_stable_argsort_of_means(rng):
    data = rng.normal(size=(7, 9, 4, 5)).astype(np.float32)
    data[:, 4] = data[:, 2]                   # exact ties: channel 3 before channel 5
    data[3] = 1.0                             # every channel tied
    for k in (1, 3, 9, 20):
        order, means = top_channels(data, k)
        assert order.shape == (7, min(k, 9))
        for i, (ref_order, ref_means) in enumerate(_slow_top(data, k)):
            assert order[i].tolist() == ref_order
            np.testing.assert_allclose(means[i], ref_means, rtol=1e-12)
    order, _ = top_channels(data, 9)
    assert order[3].tolist() == list(range(9))
    for i in range(7):
        row = order[i].tolist()
        if i != 3:
            assert row.index(2) + 1 == row.index(4)


def test_act_view_numbers_masked_channels_and_reads_in_chunks(rng, tmp_path):
    data = rng.normal(size=(6, 5, 3, 4)).astype(np.float32)
    data[0, 3] = data[0, 1]                    # a tie of channels 2 and 4 in row 0
    full = tmp_path / "full.act.h5"
    Activation({"conv": data}, stim_ids=[f"s{i}" for i in range(6)],
               attrs={"net": "alexnet", "preprocess": "crop"}).save(full)
    kept = [5, 4, 2]                                           # 1-based, stored in this order
    masked = tmp_path / "masked.act.h5"
    Activation({"conv": data[:, [c - 1 for c in kept]]}, stim_ids=[f"s{i}" for i in range(6)],
               layer_attrs={"conv": {"chn": np.asarray(kept)}}).save(masked)
    for rows in (None, 1, 4):
        res = act_view(full, ["conv"], top=2, channels=[5, 1], chunk_rows=rows,
                       show_progress=False)
        channels, means = res.top["conv"]
        for i, (order, ref_means) in enumerate(_slow_top(data, 2)):
            assert channels[i].tolist() == [c + 1 for c in order]
            np.testing.assert_allclose(means[i], ref_means, rtol=1e-12)
            np.testing.assert_array_equal(res.top_maps["conv"][i], data[i, order])
        np.testing.assert_array_equal(res.channel_maps["conv"], data[:, [4, 0]])
        np.testing.assert_allclose(res.channel_means["conv"], data[:, [4, 0]].mean(axis=(2, 3)),
                                   rtol=1e-6)
    assert res.geometry == {"preprocess": "crop", "input_size": (224, 224), "resize_size": None}
    res = act_view(masked, top=3, channels=[4], show_progress=False)
    for i, (order, _) in enumerate(_slow_top(data[:, sorted(c - 1 for c in kept)], 3)):
        assert res.top["conv"][0][i].tolist() == [sorted(kept)[c] for c in order]
    first = res.top["conv"][0][0].tolist()            # the tie: channel 2 before 4
    assert first.index(2) < first.index(4)
    np.testing.assert_array_equal(res.channel_maps["conv"][:, 0], data[:, 3])
    with pytest.raises(Exception, match="-channel 1 of layer 'conv' is not stored"):
        act_view(masked, channels=[1], show_progress=False)
    table = res.table()
    assert list(table) == ["stimID", "layer", "rank", "channel", "mean"]
    assert table["stimID"][:3] == ["s0"] * 3 and table["rank"][:3] == [1, 2, 3]


def _pil_bilinear(m, size):
    return np.asarray(Image.fromarray(m.astype(np.float32), mode="F").resize(size,
                                                                              Image.BILINEAR))


def test_squash_maps_equal_independent_interpolations(rng):
    maps = rng.normal(size=(3, 6, 5))
    for size in ((40, 56), (5, 6), (123, 17)):                 # (width, height)
        got = maps_on_image(maps, size)
        assert got.shape == (3, size[1], size[0]) and np.isfinite(got).all()
        ref = F.interpolate(torch.from_numpy(maps)[:, None], size=size[::-1], mode="bilinear",
                            align_corners=False)[:, 0].numpy()
        np.testing.assert_allclose(got, ref, atol=1e-12)
        for k in range(3):                                     # PIL: float32 arithmetic
            np.testing.assert_allclose(got[k], _pil_bilinear(maps[k], size), atol=1e-5)


def _slow_window_map(m, size, window):
    """Bilinear resampling by the formula, pixel by pixel, clamped at the map's edges."""
    h, w = m.shape
    width, height = size
    left, top, win_w, win_h = window
    out = np.full((height, width), np.nan)

    def coord(u, n_img, start, extent, n_map):
        f = ((u + 0.5) / n_img - start) / extent           # fraction of the window
        if f < 0 or f > 1:
            return None
        s = min(max(f * n_map - 0.5, 0), n_map - 1)
        i0 = min(int(math.floor(s)), n_map - 2) if n_map > 1 else 0
        return i0, s - i0

    for y in range(height):
        cy = coord(y, height, top, win_h, h)
        for x in range(width):
            cx = coord(x, width, left, win_w, w)
            if cy is None or cx is None:
                continue
            (i, fy), (j, fx) = cy, cx
            i1, j1 = min(i + 1, h - 1), min(j + 1, w - 1)
            out[y, x] = ((1 - fy) * ((1 - fx) * m[i, j] + fx * m[i, j1])
                         + fy * ((1 - fx) * m[i1, j] + fx * m[i1, j1]))
    return out


@pytest.mark.parametrize("image_size", [(120, 80), (80, 120), (100, 100), (301, 97)])
def test_crop_window_is_torchvision_centre_crop(image_size):
    """The window holds exactly the original pixels torchvision's resize+crop keeps."""
    width, height = image_size
    # each pixel's own column and row number, kept by nearest-neighbour resizing
    index = np.stack(np.meshgrid(np.arange(width), np.arange(height), indexing="xy"), -1)
    img = torch.from_numpy(index.transpose(2, 0, 1).astype(np.float32))
    crop = T.Compose([T.Resize(256, interpolation=T.InterpolationMode.NEAREST),
                      T.CenterCrop(224)])(img)
    left, top, win_w, win_h = input_window(image_size, preprocess="crop")
    seen_x, seen_y = crop[0].numpy(), crop[1].numpy()
    assert seen_x.min() >= math.floor(left * width)
    assert seen_x.max() <= math.ceil((left + win_w) * width) - 1
    assert seen_y.min() >= math.floor(top * height)
    assert seen_y.max() <= math.ceil((top + win_h) * height) - 1
    assert abs(seen_x.min() - left * width) <= 1 and abs(seen_y.min() - top * height) <= 1
    assert abs(seen_x.max() + 1 - (left + win_w) * width) <= 1.5
    assert abs(seen_y.max() + 1 - (top + win_h) * height) <= 1.5
    assert input_window(image_size, preprocess="squash") == (0, 0, 1, 1)


def test_crop_maps_equal_slow_formula(rng):
    maps = rng.normal(size=(2, 7, 7))
    for image_size in ((120, 80), (31, 45)):
        window = input_window(image_size, preprocess="crop")
        got = maps_on_image(maps, image_size, window)
        for k in range(2):
            ref = _slow_window_map(maps[k], image_size, window)
            np.testing.assert_array_equal(np.isnan(got[k]), np.isnan(ref))
            np.testing.assert_allclose(got[k], ref, atol=1e-12, equal_nan=True)
        assert np.isnan(got).any() and np.isfinite(got).any()


NET = '''
from torch import nn


def pool():
    return nn.Sequential(nn.AvgPool2d(8))
'''


@pytest.mark.parametrize("preprocess", ["squash", "crop"])
def test_maps_line_up_with_the_photograph(tmp_path, preprocess):
    """A network that only averages its input: the red channel's map, put back on the
    photograph, lies where the red square is."""
    (tmp_path / "pool.py").write_text(NET)
    width, height = 120, 80
    img = np.zeros((height, width, 3), np.uint8)
    img[30:50, 70:90, 0] = 255                                  # red square, right of centre
    Image.fromarray(img).save(tmp_path / "a.png")
    stim_path = tmp_path / "s.stim.csv"
    Stimulus.from_folder(tmp_path).save(stim_path)
    dnn = load_dnn(f"{tmp_path / 'pool.py'}:pool", weights="random", preprocess=preprocess)
    res = network_view(dnn, Stimulus.load(stim_path), ["0"], top=1, channels=[1],
                       show_progress=False)
    assert res.geometry["preprocess"] == preprocess
    window = input_window((width, height), **res.geometry)
    on_image = maps_on_image(res.channel_maps["0"][0], (width, height), window)[0]
    seen = np.isfinite(on_image)
    if preprocess == "squash":
        assert seen.all()
    else:       # 120x80 -> 384x256 -> 224x224: columns 25..94 and rows 5..74 are seen
        cols, rows = np.flatnonzero(seen.any(axis=0)), np.flatnonzero(seen.any(axis=1))
        assert (cols[0], cols[-1], rows[0], rows[-1]) == (25, 94, 5, 74)
    weight = np.where(seen, on_image - np.nanmin(on_image), 0)
    ys, xs = np.mgrid[:height, :width]
    centre = (float((weight * xs).sum() / weight.sum()), float((weight * ys).sum() / weight.sum()))
    assert abs(centre[0] - 79.5) < 1.0 and abs(centre[1] - 39.5) < 1.0, centre
    inside = np.zeros_like(seen)
    inside[30:50, 70:90] = True
    assert on_image[inside & seen].mean() > on_image[~inside & seen].mean() + 2
