"""RDM images, MDS plots and the renamed-axis similarity heatmap: what they draw, read back
from the matplotlib objects (nothing is written)."""
import numpy as np
import pytest
from scipy.spatial.distance import pdist, squareform

from dnnsparse.algo.stats import fdr_bh
from dnnsparse.errors import InputError
from dnnsparse.viz import _rsa as rsa_figures


@pytest.fixture
def figures(monkeypatch):
    saved = {}

    def keep(fig, path, *, force=False, dpi=150):
        fig.canvas.draw()
        saved[str(path)] = fig
        return path

    monkeypatch.setattr(rsa_figures, "save_figure", keep)
    return saved


def _ticks(axis):
    return [t.get_text() for t in axis.get_ticklabels()]


def test_rdm_image_with_group_ticks_and_boundaries(figures, rng):
    square = squareform(pdist(rng.standard_normal((7, 3))))
    groups = np.array(["animal"] * 3 + ["tool"] * 4)
    rsa_figures.plot_rdm("r.png", square, names=[f"s{i}" for i in range(7)], groups=groups,
                         title="roi V1")
    ax = figures["r.png"].axes[0]
    np.testing.assert_array_equal(ax.images[0].get_array(), square)
    assert _ticks(ax.xaxis) == ["animal", "tool"] and _ticks(ax.yaxis) == ["animal", "tool"]
    np.testing.assert_allclose(ax.get_xticks(), [1.0, 4.5])          # group centres
    lines = [l.get_xdata()[0] for l in ax.lines if l.get_xdata()[0] == l.get_xdata()[1]]
    assert lines == [2.5]                                            # one boundary
    assert ax.get_title() == "roi V1"


def test_rdm_image_names_few_items_only(figures, rng):
    small = squareform(pdist(rng.standard_normal((5, 2))))
    rsa_figures.plot_rdm("s.png", small, names=list("abcde"))
    assert _ticks(figures["s.png"].axes[0].xaxis) == list("abcde")
    big = squareform(pdist(rng.standard_normal((70, 2))))
    rsa_figures.plot_rdm("b.png", big, names=[str(i) for i in range(70)])
    assert figures["b.png"].axes[0].get_xlabel() == "item"
    with pytest.raises(InputError, match="square matrix"):
        rsa_figures.plot_rdm("x.png", np.zeros((3, 4)))


def test_mds_plot_points_groups_and_names(figures, rng):
    coords = rng.standard_normal((6, 2))
    groups = np.array([1, 1, 2, 2, 3, 3])
    rsa_figures.plot_mds("m.png", coords, names=list("uvwxyz"), groups=groups, stress=0.123)
    ax = figures["m.png"].axes[0]
    drawn = np.concatenate([c.get_offsets() for c in ax.collections])
    np.testing.assert_allclose(drawn, coords[np.argsort(groups, kind="stable")])
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["1", "2", "3"]
    assert sorted(t.get_text() for t in ax.texts) == list("uvwxyz")
    assert "stress 0.123" in ax.get_title()
    with pytest.raises(InputError, match=r"\(n_items, 2\)"):
        rsa_figures.plot_mds("x.png", np.zeros((4, 3)))


def test_similarity_table_with_other_columns_marks_fdr_cells(figures):
    table = {"model": ["anim", "size", "anim", "size"], "roi": ["V1", "V1", "IT", "IT"],
             "score": [0.1, 0.2, 0.6, 0.05], "p": [0.5, 0.04, 0.001, 0.9]}
    rsa_figures.plot_similarity_table("t.png", table, row="model", col="roi",
                                      adjust=fdr_bh, xlabel="ROI", ylabel="model RDM")
    ax = figures["t.png"].axes[0]
    assert ax.get_ylabel() == "model RDM" and _ticks(ax.yaxis) == ["anim", "size"]
    np.testing.assert_allclose(ax.images[0].get_array(), [[0.1, 0.6], [0.2, 0.05]])
    starred = sorted(t.get_text() for t in ax.texts if t.get_text().endswith("*"))
    adjusted = fdr_bh(np.array([0.5, 0.04, 0.001, 0.9]))
    assert len(starred) == int((adjusted < 0.05).sum()) == 1 and starred == ["0.60*"]
