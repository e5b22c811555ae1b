"""Figures for RSA and layer-to-ROI mapping, written atomically as PNG (or PDF/SVG).

Figures are built on :class:`matplotlib.figure.Figure` with the Agg canvas, not
through pyplot: nothing changes the caller's matplotlib backend or global
state, and nothing needs a display (:mod:`._figures`). Brain renderings use nilearn when it
is installed
(:func:`nilearn_available`).

Examples
--------
>>> plot_similarity_heatmap("map.png", scores, layers, rois, best=best)  # doctest: +SKIP
"""
import importlib.util
import logging

import numpy as np
from matplotlib.colors import ListedColormap
from matplotlib.patches import Patch, Rectangle

from ..errors import InputError
from ._figures import new_figure, save_figure

__all__ = [
    "nilearn_available",
    "plot_mds",
    "plot_rdm",
    "plot_similarity_heatmap",
    "plot_similarity_table",
    "render_volume_maps",
]

log = logging.getLogger(__name__)

#: Cells up to which scores are written into the heatmap.
_MAX_ANNOTATED = 400
#: Largest figure side (inches).
_MAX_INCHES = 40.0


def plot_similarity_heatmap(path, scores, layers, rois, *, best=None, marks=None,
                            title=None, cbar_label="RDM similarity", xlabel="ROI",
                            ylabel="layer", force=False):
    """Heatmap of a layers x ROIs score matrix, each ROI's best layer framed.

    Parameters
    ----------
    path : str or Path
        Output figure (``.png``, ``.pdf``, ``.svg``).
    scores : array, shape (n_layers, n_roi)
        NaN cells are left blank.
    layers, rois : list of str
        Row and column names.
    best : array of int, shape (n_roi,), optional
        Row index of each ROI's best layer (-1: none), framed in red.
    marks : array of bool, shape (n_layers, n_roi), optional
        Cells marked with ``*`` (e.g. FDR-significant).
    title : str, optional
    cbar_label : str
    xlabel, ylabel : str
        Axis names (columns, rows): e.g. "model RDM" for model RDMs.
    force : bool, default=False

    Returns
    -------
    Path
    """
    scores = np.asarray(scores, dtype=np.float64)
    n_l, n_r = scores.shape
    if (len(layers), len(rois)) != scores.shape:
        raise InputError(f"{len(layers)} layer and {len(rois)} ROI names for scores of "
                         f"shape {scores.shape}.")
    # Grow with the table, within what a viewer can still open (e.g. 360 MMP ROIs).
    fig = new_figure((min(_MAX_INCHES, max(4.0, 1.0 + 0.6 * n_r)),
                       min(_MAX_INCHES, max(3.0, 1.0 + 0.4 * n_l))))
    ax = fig.add_subplot()
    finite = scores[np.isfinite(scores)]
    lim = float(np.abs(finite).max()) if finite.size else 1.0
    im = ax.imshow(np.ma.masked_invalid(scores), cmap="RdBu_r", vmin=-lim, vmax=lim,
                   aspect="auto", interpolation="nearest")
    ax.set_xticks(np.arange(n_r), labels=[str(r) for r in rois], rotation=45, ha="right")
    ax.set_yticks(np.arange(n_l), labels=[str(l) for l in layers])
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if scores.size <= _MAX_ANNOTATED:
        for i, j in zip(*np.nonzero(np.isfinite(scores))):
            star = "*" if marks is not None and marks[i, j] else ""
            ax.text(j, i, f"{scores[i, j]:.2f}{star}", ha="center", va="center",
                    fontsize=7, color="white" if abs(scores[i, j]) > 0.6 * lim else "black")
    elif marks is not None and np.any(marks):       # too many cells for numbers: a dot each
        i, j = np.nonzero(marks)
        ax.scatter(j, i, s=6, c="black", marker="o", linewidths=0)
    if best is not None:
        for j, i in enumerate(np.asarray(best)):
            if i >= 0:
                ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False,
                                       edgecolor="red", linewidth=2))
    fig.colorbar(im, ax=ax, label=cbar_label)
    if title:
        ax.set_title(title)
    return save_figure(fig, path, force=force)


def plot_similarity_table(path, table, *, layers=None, rois=None, adjust=None, alpha=0.05,
                          adjust_name="p_fdr", row="layer", col="roi", **kwargs):
    """Heatmap of a tidy table with columns ``layer``, ``roi``, ``score`` (and ``p``).

    Rows with the same layer and ROI (one per channel or position) are
    averaged; NaN scores are left out of the mean. With ``adjust`` and a ``p``
    column holding one p-value per cell (whole-layer RDMs), the p-values of all
    cells are adjusted together (``adjust(p)``, e.g. Benjamini-Hochberg,
    :func:`dnnsparse.algo.stats.fdr_bh`) and cells below ``alpha`` are marked
    ``*``, as in ``db_map``'s figure; the colour bar's label says so.

    Parameters
    ----------
    path : str or Path
    table : mapping with columns "layer", "roi", "score" (and "p")
        E.g. :func:`dnnsparse.pipelines.rsa_table`.
    layers, rois : list of str, optional
        Row and column order; default the order of first appearance.
    adjust : callable, optional
        ``adjust(p) -> adjusted p`` over an array of the cells' p-values (NaN
        kept); None: no marks.
    alpha : float, default=0.05
    adjust_name : str, default="p_fdr"
        What the adjusted p-values are called in the colour bar's label.
    row, col : str, default "layer", "roi"
        The table's columns naming the heatmap's rows and columns (e.g. "model").
    **kwargs
        Passed to :func:`plot_similarity_heatmap`.
    """
    layers = list(dict.fromkeys(table[row])) if layers is None else list(layers)
    rois = list(dict.fromkeys(table[col])) if rois is None else list(rois)
    layer_pos = {l: i for i, l in enumerate(layers)}
    roi_pos = {r: j for j, r in enumerate(rois)}
    rows = np.array([layer_pos[l] for l in table[row]], dtype=np.int64)
    cols = np.array([roi_pos[r] for r in table[col]], dtype=np.int64)
    score = np.asarray(table["score"], dtype=np.float64)
    ok = np.isfinite(score)
    sums = np.zeros((len(layers), len(rois)))
    counts = np.zeros_like(sums)
    np.add.at(sums, (rows[ok], cols[ok]), score[ok])
    np.add.at(counts, (rows[ok], cols[ok]), 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = sums / counts
    marks = _cell_marks(table, rows, cols, means.shape, adjust, alpha)
    if marks is not None:
        kwargs["cbar_label"] = (f"{kwargs.get('cbar_label', 'RDM similarity')}; "
                                f"* {adjust_name} < {alpha:g}")
    return plot_similarity_heatmap(path, means, layers, rois, marks=marks, **kwargs)


def _cell_marks(table, rows, cols, shape, adjust, alpha):
    """Boolean (n_layers, n_roi) of cells whose adjusted p is below ``alpha``; None when
    not asked for, without p-values, or with several rows (channels) per cell."""
    if adjust is None or "p" not in table:
        return None
    p = np.asarray(table["p"], dtype=np.float64)
    cell_p = np.full(shape, np.nan)
    if np.isnan(p).all():
        return None
    if len(set(zip(rows.tolist(), cols.tolist()))) < len(rows):
        log.info("similarity heatmap: several p-values per cell (per channel or "
                 "position); no cell is marked.")
        return None
    cell_p[rows, cols] = p
    with np.errstate(invalid="ignore"):
        return np.asarray(adjust(cell_p)) < alpha


#: Items up to which every item is named on the RDM's axes.
_MAX_ITEM_TICKS = 60


def _group_spans(groups):
    """(start, stop, value) of the runs of equal values of ``groups`` (in order)."""
    groups = np.asarray(groups)
    change = np.flatnonzero(groups[1:] != groups[:-1]) + 1
    starts = np.concatenate([[0], change])
    stops = np.concatenate([change, [len(groups)]])
    return [(int(a), int(b), groups[a]) for a, b in zip(starts, stops)]


def plot_rdm(path, square, *, names=None, groups=None, title=None,
             cbar_label="dissimilarity", force=False):
    """An RDM as an image, items named on the axes (or their groups, e.g. categories).

    Parameters
    ----------
    path : str or Path
    square : array, shape (n_items, n_items)
        Already in the order to show (e.g. sorted by a stimulus column).
    names : sequence of str, optional
        Item names; written on the axes when there are at most 60 items and no groups.
    groups : sequence, optional
        A value per item (e.g. its category), constant over runs of items: each
        run is framed by lines and named at its centre.
    title, cbar_label : str
    force : bool, default=False

    Returns
    -------
    Path
    """
    square = np.asarray(square, dtype=np.float64)
    n = len(square)
    if square.shape != (n, n):
        raise InputError(f"an RDM image needs a square matrix; got {square.shape}.")
    side = min(_MAX_INCHES, max(4.0, 2.0 + 0.15 * min(n, 200)))
    fig = new_figure((side + 1.2, side))
    ax = fig.add_subplot()
    im = ax.imshow(np.ma.masked_invalid(square), cmap="viridis", interpolation="nearest")
    if groups is not None:
        spans = _group_spans(groups)
        centres = [(a + b - 1) / 2 for a, b, _ in spans]
        labels = [str(v) for _, _, v in spans]
        ax.set_xticks(centres, labels=labels, rotation=45, ha="right", fontsize=8)
        ax.set_yticks(centres, labels=labels, fontsize=8)
        for a, _, _ in spans[1:]:
            ax.axhline(a - 0.5, color="white", linewidth=1)
            ax.axvline(a - 0.5, color="white", linewidth=1)
    elif names is not None and n <= _MAX_ITEM_TICKS:
        ax.set_xticks(np.arange(n), labels=[str(v) for v in names], rotation=90,
                      fontsize=6)
        ax.set_yticks(np.arange(n), labels=[str(v) for v in names], fontsize=6)
    else:
        ax.set_xlabel("item")
        ax.set_ylabel("item")
    fig.colorbar(im, ax=ax, label=cbar_label, shrink=0.8)
    if title:
        ax.set_title(title)
    return save_figure(fig, path, force=force)


def plot_mds(path, coords, *, names=None, groups=None, title=None, stress=None,
             force=False):
    """Items at their MDS coordinates, coloured by group, named when few.

    Parameters
    ----------
    path : str or Path
    coords : array, shape (n_items, 2)
        E.g. :func:`dnnsparse.algo.rsa.mds_embedding`.
    names : sequence of str, optional
        Written next to the points when there are at most 60 items.
    groups : sequence, optional
        A value per item (e.g. category); one colour each, in a legend.
    title : str, optional
    stress : float, optional
        Shown in the title.
    force : bool, default=False

    Returns
    -------
    Path
    """
    coords = np.asarray(coords, dtype=np.float64)
    if coords.ndim != 2 or coords.shape[1] != 2:
        raise InputError(f"an MDS plot needs (n_items, 2) coordinates; got {coords.shape}.")
    fig = new_figure((5.5, 4.5))
    ax = fig.add_subplot()
    if groups is not None:
        groups = np.asarray(groups)
        values = list(dict.fromkeys(groups.tolist()))
        colours = _layer_colours(len(values))
        for value, colour in zip(values, colours):
            pick = groups == value
            ax.scatter(coords[pick, 0], coords[pick, 1], s=25, color=colour,
                       label=str(value))
        if len(values) <= 20:
            ax.legend(fontsize=7, frameon=False, loc="best")
    else:
        ax.scatter(coords[:, 0], coords[:, 1], s=25, color="#1f77b4")
    if names is not None and len(coords) <= _MAX_ITEM_TICKS:
        for (x, y), name in zip(coords, names):
            ax.annotate(str(name), (x, y), fontsize=6, xytext=(2, 2),
                        textcoords="offset points")
    ax.set_xlabel("MDS 1")
    ax.set_ylabel("MDS 2")
    ax.set_aspect("equal", adjustable="datalim")
    text = title or "MDS"
    if stress is not None:
        text = f"{text} (stress {stress:.3g})"
    ax.set_title(text, fontsize=9)
    return save_figure(fig, path, force=force)


def nilearn_available():
    """Whether nilearn can be imported (without importing it)."""
    return importlib.util.find_spec("nilearn") is not None


def _layer_colours(n):
    base = ListedColormap(["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                           "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"])
    return [base(i % base.N) for i in range(n)]


def render_volume_maps(path, label_img, value_img, *, names, bg_img=None, title=None,
                       value_label="PSI of the best layer", force=False):
    """nilearn rendering of a best-layer label volume and a value volume.

    Parameters
    ----------
    path : str or Path
        Output figure.
    label_img : nibabel image
        Integer volume, 1..len(names) inside ROIs, 0 elsewhere.
    value_img : nibabel image
        Float volume (NaN outside ROIs).
    names : list of str
        Name of each label (label k is ``names[k - 1]``), shown in a legend.
    bg_img : nibabel image, optional
        Background in the same space (e.g. the mean of the data); default none.
    title : str, optional
    value_label : str
    force : bool, default=False

    Returns
    -------
    Path
    """
    import nibabel as nib
    from nilearn import plotting

    colours = _layer_colours(len(names))
    fig = new_figure((10.0, 6.5))
    # The legend gets a column of its own beside the label panel: at the figure's edge
    # it covered the value panel's colour bar.
    grid = fig.add_gridspec(2, 2, width_ratios=[1.0, 0.2], wspace=0.02)
    top, bottom = fig.add_subplot(grid[0, 0]), fig.add_subplot(grid[1, 0])
    legend_ax = fig.add_subplot(grid[0, 1])
    legend_ax.set_axis_off()
    display = plotting.plot_roi(label_img, bg_img=bg_img, figure=fig, axes=top, draw_cross=False,
                                cmap=ListedColormap(colours), vmin=0.5, vmax=len(names) + 0.5,
                                colorbar=False, threshold=0.5, alpha=0.8,
                                title=title or "best layer")
    # nilearn warns about NaN; outside the ROIs is shown as empty anyway.
    data = np.asanyarray(value_img.dataobj).astype(np.float32)
    clean = nib.Nifti1Image(np.nan_to_num(data, nan=0.0), value_img.affine)
    plotting.plot_stat_map(clean, bg_img=bg_img, figure=fig, axes=bottom, draw_cross=False,
                           cut_coords=display.cut_coords,
                           cmap="viridis", symmetric_cbar=False, colorbar=True,
                           threshold=1e-12, title=value_label)
    shown = np.unique(np.asanyarray(label_img.dataobj))
    shown = [int(k) for k in shown if 1 <= k <= len(names)]       # best layers only
    legend_ax.legend(handles=[Patch(color=colours[k - 1], label=names[k - 1]) for k in shown],
                     loc="center left", fontsize=8, title="best layer", frameon=False)
    return save_figure(fig, path, force=force)
