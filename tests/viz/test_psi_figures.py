"""The PSI figures: what they draw (read back from the matplotlib objects), labelled axes
and the network in every title; the RSA heatmap's FDR marks; the brain render's legend
beside, not over, the colour bar."""
import nibabel as nib
import numpy as np
import pytest
from matplotlib.collections import LineCollection
from scipy import stats

from dnnsparse.algo.stats import fdr_bh
from dnnsparse.pipelines import SparsenessResult, accuracy_analysis
from dnnsparse.viz import _psi as psi_figures
from dnnsparse.viz import _rsa as rsa_figures

SOURCE = "alexnet, lesion weights(seed=0)"


@pytest.fixture
def figures(monkeypatch):
    """Figures the plotting functions would save, by file name (nothing is written)."""
    saved = {}

    def keep(fig, path, *, force=False, dpi=150):
        fig.canvas.draw()
        saved[path.name if hasattr(path, "name") else path] = fig
        return path

    monkeypatch.setattr(psi_figures, "save_figure", keep)
    monkeypatch.setattr(rsa_figures, "save_figure", keep)
    return saved


@pytest.fixture
def result(rng):
    """18 layers x 16 categories, as in the issue's unreadable figure."""
    psi = 0.15 + 0.01 * np.arange(18)[:, None] + 0.1 * rng.random((18, 16))
    psi[4, 3] = np.nan                                          # left out of everything
    layers = [f"block{i}_relu" for i in range(1, 19)]
    return SparsenessResult(layers, "psi", list(psi), np.arange(16),
                            np.array([f"c{k}" for k in range(16)]), np.full(16, 5),
                            np.full(18, 64), np.zeros(18, int), source=SOURCE)


def _title(ax):
    return ax.get_title()


def test_distributions_are_one_row_per_layer(figures, result):
    psi_figures.plot_distributions("distributions.png", result)
    ax = figures["distributions.png"].axes[0]
    assert SOURCE in _title(ax) and "16 categories" in _title(ax)
    assert ax.get_xlabel() == "population sparseness (PSI)" and ax.get_ylabel()
    labels = [t.get_text() for t in ax.get_yticklabels()]
    positions = ax.get_yticks()
    assert [l for _, l in sorted(zip(-positions, labels))] == result.layers   # input on top
    # every category a tick below its row; each row's dot at its median
    ticks = [c for c in ax.collections if isinstance(c, LineCollection)]
    assert sum(len(c.get_segments()) for c in ticks) == 18 * 16 - 1
    dots = [l for l in ax.lines if l.get_marker() == "o"]
    assert len(dots) == 18
    for dot, v in zip(dots, result.values):
        v = v[np.isfinite(v)]
        assert dot.get_xdata()[0] == pytest.approx(np.percentile(v, 50, method="midpoint"))
    # the x axis covers every value
    lo, hi = ax.get_xlim()
    assert lo <= np.nanmin(np.concatenate(result.values)) and hi >= np.nanmax(
        np.concatenate(result.values))


def test_medians_and_correlation_name_the_network(figures, result, rng):
    psi_figures.plot_medians("medians.png", {"": result})
    ax = figures["medians.png"].axes[0]
    assert SOURCE in _title(ax) and ax.get_xlabel() and "median PSI" in ax.get_ylabel()
    np.testing.assert_allclose(ax.lines[0].get_ydata(), result.summary()["median"])
    acc = rng.random(16)
    psi = result.matrix().copy()
    psi[-1] = acc + 0.01 * rng.standard_normal(16)               # one significant layer
    result.values = list(np.nan_to_num(psi, nan=0.2))
    analysis = accuracy_analysis(result, np.arange(16), acc)
    psi_figures.plot_correlation("correlation.png", analysis, source=SOURCE)
    ax = figures["correlation.png"].axes[0]
    assert SOURCE in _title(ax) and ax.get_xlabel() and "Pearson r" in ax.get_ylabel()
    sig = analysis.correlation.pearson_p_bonferroni < 0.05
    assert sig[-1]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "n.s.", f"Bonferroni p < 0.05 ({sig.sum()} of 18 layers)"]
    stars = [t for t in ax.texts if t.get_text() == "*"]
    assert len(stars) == sig.sum()


def test_similarity_heatmap_marks_fdr_significant_cells(figures, rng):
    """Cells whose Benjamini-Hochberg p (all cells together; scipy's
    false_discovery_control as the reference) is below alpha get a '*'."""
    layers, rois = ["conv1", "conv2", "fc1"], ["V1", "V4", "FFA", "PPA"]
    p = np.array([[0.001, 0.02, 0.5, 0.04], [0.03, 0.011, 0.2, 0.9], [0.6, 0.049, 0.0001,
                                                                    0.012]])
    table = {"layer": [], "roi": [], "score": [], "p": []}
    for j, roi in enumerate(rois):
        for i, layer in enumerate(layers):
            table["layer"].append(layer)
            table["roi"].append(roi)
            table["score"].append(rng.uniform(-0.5, 0.5))
            table["p"].append(p[i, j])
    rsa_figures.plot_similarity_table("similarity.png", table, adjust=fdr_bh,
                                      cbar_label="pearson of RDMs")
    fig = figures["similarity.png"]
    ax = fig.axes[0]
    starred = {(round(t.get_position()[1]), round(t.get_position()[0]))
               for t in ax.texts if t.get_text().endswith("*")}
    expected = stats.false_discovery_control(p.ravel(), method="bh").reshape(p.shape) < 0.05
    assert starred == set(zip(*np.nonzero(expected))) and 0 < len(starred) < p.size
    assert "* p_fdr < 0.05" in fig.axes[1].get_ylabel()
    # no adjustment asked for, or no p-values: no marks
    rsa_figures.plot_similarity_table("plain.png", table)
    assert not [t for t in figures["plain.png"].axes[0].texts if "*" in t.get_text()]


def test_render_legend_is_beside_the_colour_bar(figures, rng):
    pytest.importorskip("nilearn")
    shape = (14, 16, 12)
    labels = np.zeros(shape, np.int32)
    labels[2:7, 3:10, 3:8], labels[8:13, 3:10, 3:8] = 1, 3
    values = np.where(labels > 0, rng.uniform(0.1, 0.4, shape), np.nan).astype(np.float32)
    affine = np.diag([3.0, 3.0, 3.0, 1.0])
    rsa_figures.render_volume_maps("render.png", nib.Nifti1Image(labels, affine),
                                   nib.Nifti1Image(values, affine),
                                   names=["conv1", "conv2", "fc1"],
                                   bg_img=nib.Nifti1Image(rng.random(shape), affine))
    fig = figures["render.png"]
    legend = next(ax.get_legend() for ax in fig.axes if ax.get_legend() is not None)
    assert [t.get_text() for t in legend.get_texts()] == ["conv1", "fc1"]   # the best layers
    box = legend.get_window_extent()
    others = [ax for ax in fig.axes if ax.get_legend() is None and ax.get_visible()]
    assert others and not any(box.overlaps(ax.get_window_extent()) for ax in others)
