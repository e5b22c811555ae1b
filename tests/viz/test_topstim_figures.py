"""The top-stimuli figure: a complete image file, one panel per stimulus, bad input refused."""
import numpy as np
import pytest
from PIL import Image

from dnnsparse.errors import InputError, OutputExistsError
from dnnsparse.viz import plot_top_stimuli


def _items(n, rng):
    return [(rng.integers(0, 256, (20, 30, 3), dtype=np.uint8), f"{i + 1}. s{i}\n0.5")
            for i in range(n)]


def test_grid_is_written_and_grows_with_rows(tmp_path, rng):
    one = plot_top_stimuli(tmp_path / "one.png", {"top": _items(4, rng)})
    two = plot_top_stimuli(tmp_path / "two.png", {"top": _items(4, rng),
                                                  "bottom": _items(4, rng)})
    many = plot_top_stimuli(tmp_path / "many.png", {"top": _items(20, rng)}, title="conv5:3")
    sizes = {p.name: Image.open(p).size for p in (one, two, many)}
    # a second section is a second row of the same width; 20 images wrap into 3 rows
    assert abs(sizes["two.png"][0] - sizes["one.png"][0]) < 40
    assert sizes["two.png"][1] > 1.5 * sizes["one.png"][1]
    assert sizes["many.png"][1] > sizes["two.png"][1]
    with pytest.raises(OutputExistsError):           # never overwritten without force
        plot_top_stimuli(one, {"top": _items(1, rng)})


def test_bad_input(tmp_path, rng):
    with pytest.raises(InputError, match="no stimuli"):
        plot_top_stimuli(tmp_path / "x.png", {"top": []})
    with pytest.raises(InputError, match=r"\(H, W, 3\)"):
        plot_top_stimuli(tmp_path / "x.png", {"top": [(np.zeros((5, 5)), "a")]})
    assert not (tmp_path / "x.png").exists()
