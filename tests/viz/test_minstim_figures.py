"""Minimal-image figures: titled and labelled, the curve drawn as given, bad input refused."""
import numpy as np
import pytest
from PIL import Image

from dnnsparse.errors import InputError, OutputExistsError
from dnnsparse.viz import _minstim, plot_minimal_curve, plot_segmentation


@pytest.fixture
def captured(monkeypatch):
    """The figures the functions save (and the files, written as usual)."""
    figures = []
    save = _minstim.save_figure

    def keep(fig, path, **kwargs):
        figures.append(fig)
        return save(fig, path, **kwargs)

    monkeypatch.setattr(_minstim, "save_figure", keep)
    return figures


def test_curve_figure(tmp_path, captured):
    img = np.zeros((30, 40, 3), np.uint8)
    labels = np.zeros((30, 40), int)
    labels[:, 20:] = 1
    curve = [2.0, 1.8, 1.5, 1.2]
    path = plot_minimal_curve(tmp_path / "c.png", curve, 1.0, image=img, minimal=img,
                              labels=labels, title="conv5:3 on a.png")
    with Image.open(path) as im:
        assert im.size[0] > 600
    fig = captured[-1]
    assert fig._suptitle.get_text() == "conv5:3 on a.png"
    ax = fig.axes[2]
    assert ax.get_xlabel() == "parcels removed" and ax.get_ylabel() == "target value"
    line = ax.get_lines()[0]
    np.testing.assert_array_equal(line.get_xdata(), [0, 1, 2, 3])
    np.testing.assert_array_equal(line.get_ydata(), curve)
    assert [a.get_title() for a in fig.axes[:2]] == ["stimulus", "minimal image"]
    # the stimulus panel shows the parcels' border
    shown = fig.axes[0].get_images()[0].get_array()
    assert (np.asarray(shown)[:, 19] == [255, 255, 0]).all()
    with pytest.raises(OutputExistsError):
        plot_minimal_curve(path, curve, 1.0)


def test_segmentation_figure(tmp_path, captured):
    img = np.full((20, 20, 3), 7, np.uint8)
    labels = np.repeat(np.arange(4), 100).reshape(20, 20)
    plot_segmentation(tmp_path / "s.png", img, labels, title="b0.png")
    ax = captured[-1].axes[0]
    assert ax.get_title() == "b0.png" and ax.get_xlabel() == "4 parcels"


def test_bad_input(tmp_path):
    with pytest.raises(InputError, match="1-D"):
        plot_minimal_curve(tmp_path / "x.png", [], 1.0)
    with pytest.raises(InputError, match=r"\(H, W, 3\)"):
        plot_minimal_curve(tmp_path / "x.png", [1.0], 0.5, image=np.zeros((4, 4)))
    with pytest.raises(InputError, match="do not match"):
        plot_segmentation(tmp_path / "x.png", np.zeros((4, 4, 3), np.uint8),
                          np.zeros((3, 4), int))
    assert not (tmp_path / "x.png").exists()
