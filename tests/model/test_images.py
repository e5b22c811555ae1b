"""Reduced-scale JPEG decoding: used only where it is safe, within its documented bound."""
import numpy as np
import pytest
from PIL import Image
from torchvision import transforms as T

from dnnsparse.model import ImageDataset, make_image_transform
from dnnsparse.model._images import DRAFT_MIN_RATIO, _leading_resize, _open_image, draft_scale

#: The bound stated in docs/models.md (Preprocessing) and model/_images.py, in 0..255 levels.
MAX_LEVELS, MEAN_LEVELS = 20, 0.6


def _photo_jpegs(folder, size, names=("astronaut", "chelsea", "coffee"), mode="RGB"):
    """scikit-image's photographs, resized to ``size`` and re-encoded by Pillow (quality 90)."""
    data = pytest.importorskip("skimage.data", reason="install the [demo] extra (scikit-image)")
    paths = []
    for name in names:
        path = folder / f"{name}_{size[0]}x{size[1]}_{mode}.jpg"
        img = Image.fromarray(getattr(data, name)()).convert(mode)
        img.resize(size, Image.BICUBIC).save(path, quality=90)
        paths.append(path)
    return paths


def _decoded(paths, transform, draft):
    ds = ImageDataset(paths, transform, draft=draft)
    items = [ds[i] for i in range(len(ds))]
    assert all(err is None for _, _, err in items)
    return [x.numpy().astype(int) for _, x, _ in items]


def test_draft_scale_rule():
    assert DRAFT_MIN_RATIO == 1.75
    # 800 / 2 = 400 >= 1.75 * 224 = 392, but 800 / 4 = 200 is not
    assert draft_scale(800, 800, (224, 224)) == 2
    assert draft_scale(1800, 1800, (224, 224)) == 4           # 450, 225 < 392
    assert draft_scale(3200, 3200, (224, 224)) == 8           # 400
    assert draft_scale(800, 600, (224, 224)) == 1             # 300 < 392
    assert draft_scale(801, 801, (224, 224)) == 1             # 2 does not divide 801
    assert draft_scale(640, 480, (224, 224)) == 1
    assert draft_scale(256, 256, (224, 224)) == 1
    assert draft_scale(1000, 1000, (256, 256)) == 2           # the crop preprocessing
    assert draft_scale(800, 800, (256, 256)) == 1             # 400 < 448
    assert draft_scale(800, 800, (224, 224), min_ratio=2) == 1


# crop resizes the shorter side to 256 first: 800 / 2 = 400 < 1.75 * 256, 1000 / 2 is not
@pytest.mark.parametrize("mode,side", [("squash", 800), ("crop", 1000)])
def test_draft_decoding_stays_within_the_stated_bound(tmp_path, mode, side):
    paths = _photo_jpegs(tmp_path, (side, side))
    tf = make_image_transform(mode)
    resize = _leading_resize(tf)
    assert resize is not None
    with _open_image(paths[0], resize) as img:
        assert img.size == (side // 2, side // 2)      # decoded at half scale, in the DCT
    drafted, full = _decoded(paths, tf, True), _decoded(paths, tf, False)
    for a, b in zip(drafted, full):
        assert a.shape == b.shape == (3, 224, 224)
        diff = np.abs(a - b)
        assert 0 < diff.max() <= MAX_LEVELS            # not identical: the draft was used
        assert diff.mean() <= MEAN_LEVELS


def test_draft_of_a_greyscale_jpeg(tmp_path):
    paths = _photo_jpegs(tmp_path, (1000, 1000), names=("astronaut",), mode="L")
    tf = make_image_transform()
    (a,), (b,) = _decoded(paths, tf, True), _decoded(paths, tf, False)
    assert a.shape == (3, 224, 224) and (a[0] == a[1]).all()
    diff = np.abs(a - b)
    assert 0 < diff.max() <= MAX_LEVELS and diff.mean() <= MEAN_LEVELS


def test_no_draft_where_it_would_not_be_safe(tmp_path):
    jpegs = (_photo_jpegs(tmp_path, (256, 256), names=("coffee",))
             + _photo_jpegs(tmp_path, (640, 480), names=("coffee",))
             + _photo_jpegs(tmp_path, (801, 801), names=("coffee",)))
    Image.open(jpegs[-1]).save(tmp_path / "big.png")
    paths = jpegs + [tmp_path / "big.png"]
    tf = make_image_transform()
    for a, b in zip(_decoded(paths, tf, True), _decoded(paths, tf, False)):
        assert np.array_equal(a, b)                    # bit for bit: decoded in full
    # a transform that crops before it resizes: the crop needs the full-size image
    big = _photo_jpegs(tmp_path, (1600, 1600), names=("coffee",))
    cropping = T.Compose([T.CenterCrop(1200), T.Resize((224, 224)), T.PILToTensor()])
    assert _leading_resize(cropping) is None
    (a,), (b,) = _decoded(big, cropping, True), _decoded(big, cropping, False)
    assert np.array_equal(a, b)
