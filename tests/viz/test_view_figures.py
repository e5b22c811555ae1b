"""The activation-map figure: maps drawn over their image, NaN left uncoloured, bad input."""
import numpy as np
import pytest
from PIL import Image

from dnnsparse.errors import InputError, OutputExistsError
from dnnsparse.viz import plot_activation_maps


def test_nan_shows_the_image(tmp_path):
    """Where a map is NaN (not seen by the network) the panel shows the image (white
    here), elsewhere the colour map: half a map NaN whitens about half a panel."""
    image = np.full((60, 60, 3), 255, np.uint8)
    m = np.tile(np.linspace(0, 1, 60), (60, 1))                 # 0..1 in both halves
    half = m.copy()
    half[:, :30] = np.nan
    half[0, 30], half[1, 30] = 0.0, 1.0                          # the same colour scale

    def white(name, values):
        path = plot_activation_maps(tmp_path / name, image, [("layer", [(values, "chn 1")])],
                                    alpha=1.0, dpi=100)
        pixels = np.asarray(Image.open(path).convert("RGB"))
        return int((pixels == 255).all(axis=-1).sum()), pixels.shape

    full_white, shape = white("full.png", m)
    half_white, shape2 = white("half.png", half)
    assert shape == shape2
    panel = (1.9 * 100) ** 2 / 4                 # a quarter of a 1.9-inch square, at least
    assert half_white - full_white > panel / 2, (half_white, full_white)


def test_rows_of_own_images_and_sizes(tmp_path, rng):
    a = rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)
    b = rng.integers(0, 256, (50, 20, 3), dtype=np.uint8)
    rows = [("a", [(rng.normal(size=(30, 40)), "x"), (rng.normal(size=(30, 40)), "y")]),
            ("b", [(rng.normal(size=(50, 20)), "z")])]
    one = plot_activation_maps(tmp_path / "two.png", [a, b], rows, scale="panel",
                               title="summary")
    with Image.open(one) as img:
        assert img.format == "PNG" and img.size[1] > img.size[0] / 3
    with pytest.raises(OutputExistsError):
        plot_activation_maps(one, [a, b], rows)
    with pytest.raises(InputError, match="does not lie on"):
        plot_activation_maps(tmp_path / "x.png", a, rows)        # b's map on a's image
    with pytest.raises(InputError, match="2 images for 1 rows"):
        plot_activation_maps(tmp_path / "x.png", [a, b], rows[:1])
    with pytest.raises(InputError, match="colour map"):
        plot_activation_maps(tmp_path / "x.png", [a, b], rows, cmap="nope")
    with pytest.raises(InputError, match="scale"):
        plot_activation_maps(tmp_path / "x.png", [a, b], rows, scale="column")
    with pytest.raises(InputError, match="no maps"):
        plot_activation_maps(tmp_path / "x.png", a, [("a", [])])
    assert not (tmp_path / "x.png").exists()
