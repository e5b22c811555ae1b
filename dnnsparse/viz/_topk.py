"""Figures of Top-K sweeps and Top-K training, saved atomically.

- :func:`plot_shape_bias_sweep` -- shape bias (and accuracy) against the Top-K
  fraction, one line per layer set, the intact network as a horizontal line
  (the paper's Fig. 4/5 view of a single network).
- :func:`plot_shape_bias_per_category` -- shape bias per cue-conflict category
  (categories on the y axis), one marker series per Top-K setting, each
  setting's overall shape bias as a vertical line (the paper's Fig. 5), and
  optional reference values (published models, humans).
- :func:`plot_training_history` -- training and validation loss and accuracy
  per epoch (``db_train``'s ``history.png``).
- :func:`plot_topk_snapshot` -- an epoch's Top-K masks for a few stimuli next to
  the images (``db_train -snapshot-topk``, the paper's Fig. 8).
- :func:`plot_topk_changes` -- fraction of Top-K mask positions changing from one
  epoch to the next, per layer.

Built on :class:`matplotlib.figure.Figure` with the Agg canvas (no pyplot, no
change to the caller's backend), by :mod:`dnnsparse.viz._figures`.
"""
import numpy as np
from matplotlib.ticker import MaxNLocator

from ..errors import InputError
from ._figures import new_figure, save_figure

__all__ = ["plot_shape_bias_per_category", "plot_shape_bias_sweep", "plot_topk_changes",
           "plot_topk_snapshot", "plot_training_history"]


def _column(table, name):
    if name not in table:
        raise InputError(f"the table has no {name!r} column; it has {', '.join(table)}.")
    return np.asarray(table[name])


def _reference_rows(reference, *, per_category):
    """``(name, category, shape_bias)`` rows of a reference table, overall or per category."""
    if reference is None:
        return []
    names = _column(reference, "name").astype(str)
    bias = _column(reference, "shape_bias").astype(float)
    cats = (np.asarray(reference["category"]).astype(str) if "category" in reference
            else np.full(names.shape, ""))
    return [(n, c, b) for n, c, b in zip(names, cats, bias) if bool(c) == per_category]


def _reference_lines(ax, reference, *, vertical):
    """Overall reference values as grey dotted lines labelled with their names."""
    rows = _reference_rows(reference, per_category=False)
    styles = [":", "-.", (0, (1, 3)), (0, (5, 2, 1, 2))]
    for i, (name, _, value) in enumerate(rows):
        kw = dict(color="0.35", ls=styles[i % len(styles)], lw=1.2)
        if vertical:
            ax.axvline(value, **kw)
            ax.annotate(name, (value, 1), xycoords=("data", "axes fraction"), rotation=90,
                        va="top", ha="right", fontsize=7, color="0.3")
        else:
            ax.axhline(value, **kw)
            ax.annotate(name, (1, value), xycoords=("axes fraction", "data"), ha="right",
                        va="bottom", fontsize=7, color="0.3")
    return rows


def plot_shape_bias_sweep(path, table, *, baseline="none", reference=None, title=None,
                          force=False):
    """Shape bias and accuracy against the Top-K fraction, one line per layer set.

    Parameters
    ----------
    path : str or Path
        Output image; the suffix (png, pdf, svg) picks the format.
    table : dict of sequences
        :attr:`SweepResult.table <dnnsparse.pipelines.SweepResult.table>`
        (columns ``layers, fraction, shape_bias, ci_low, ci_high, accuracy``).
    baseline : str, default="none"
        ``layers`` value of the intact network's row, drawn as a horizontal line
        with its CI as a band.
    reference : dict of sequences, optional
        Columns ``name, shape_bias`` and optionally ``category``: the rows without a
        category are drawn as labelled horizontal lines on the shape-bias panel
        (e.g. published models, humans).
    title : str, optional
    force : bool, default=False

    Returns
    -------
    Path
    """
    layers = _column(table, "layers").astype(str)
    fraction = _column(table, "fraction").astype(float)
    bias = _column(table, "shape_bias").astype(float)
    low, high = _column(table, "ci_low").astype(float), _column(table, "ci_high").astype(float)
    acc = _column(table, "accuracy").astype(float)
    fig = new_figure((10, 4.2))
    ax_bias, ax_acc = fig.subplots(1, 2, sharex=True)
    is_base = layers == baseline
    sets = list(dict.fromkeys(layers[~is_base]))
    colours = [f"C{i % 10}" for i in range(len(sets))]
    for name, colour in zip(sets, colours):
        rows = np.flatnonzero(layers == name)
        rows = rows[np.argsort(fraction[rows], kind="stable")]
        x = fraction[rows]
        ax_bias.plot(x, bias[rows], "o-", color=colour, label=name)
        ok = np.isfinite(low[rows]) & np.isfinite(high[rows])
        if ok.any():
            ax_bias.fill_between(x[ok], low[rows][ok], high[rows][ok], color=colour,
                                 alpha=0.15, lw=0)
        ax_acc.plot(x, acc[rows], "o-", color=colour, label=name)
    if is_base.any():
        b = np.flatnonzero(is_base)[0]
        ax_bias.axhline(bias[b], color="k", ls="--", lw=1, label="intact")
        if np.isfinite(low[b]) and np.isfinite(high[b]):
            ax_bias.axhspan(low[b], high[b], color="k", alpha=0.07, lw=0)
        ax_acc.axhline(acc[b], color="k", ls="--", lw=1, label="intact")
    _reference_lines(ax_bias, reference, vertical=False)
    swept = np.unique(fraction[~is_base])
    if swept.size:            # ticks at the swept fractions; axes shared with ax_acc
        if swept.max() / swept.min() >= 10:
            ax_bias.set_xscale("log")
            ax_bias.set_xlim(swept.min() / 1.3, swept.max() * 1.3)
        else:
            pad = 0.05 * (swept.max() - swept.min()) or 0.05
            ax_bias.set_xlim(swept.min() - pad, swept.max() + pad)
        ax_bias.set_xticks(swept, [f"{f:g}" for f in swept])
        ax_bias.set_xticks([], minor=True)
    kinds = table.get("accuracy_kind")
    acc_label = f"accuracy ({kinds[0]})" if kinds is not None and len(kinds) else "accuracy"
    for ax, ylabel in ((ax_bias, "shape bias"), (ax_acc, acc_label)):
        ax.set_xlabel("Top-K fraction kept")
        ax.set_ylabel(ylabel)
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
    ax_bias.legend(fontsize=8, title="Top-K layers", title_fontsize=8)
    if title:
        fig.suptitle(title)
    return save_figure(fig, path, force=force)


def plot_training_history(path, history, *, title=None, force=False):
    """Loss and accuracy per epoch, training and validation.

    Parameters
    ----------
    path : str or Path
    history : dict of sequences
        Columns ``epoch, train_loss, train_accuracy`` and optionally
        ``val_loss, val_accuracy`` (NaN where there was no validation).
    title : str, optional
    force : bool, default=False

    Returns
    -------
    Path
    """
    epoch = _column(history, "epoch").astype(float)
    fig = new_figure((9, 3.8))
    axes = fig.subplots(1, 2)
    for ax, what in zip(axes, ("loss", "accuracy")):
        for split, style in (("train", "o-"), ("val", "s--")):
            values = np.asarray(history.get(f"{split}_{what}", []), dtype=float)
            if values.size and np.isfinite(values).any():
                ax.plot(epoch, values, style, label=split)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(what)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    axes[1].set_ylim(-0.02, 1.02)
    if title:
        fig.suptitle(title)
    return save_figure(fig, path, force=force)


def plot_shape_bias_per_category(path, per_category, *, table=None, reference=None,
                                 baseline="none", title=None, force=False):
    """Shape bias per cue-conflict category for every Top-K setting (the paper's Fig. 5).

    Categories run down the y axis; each setting (the intact network and every
    layer set x fraction) is one series of markers, and its overall shape bias a
    vertical line of the same colour. Categories without shape or texture
    decisions (NaN) are left blank.

    Parameters
    ----------
    path : str or Path
    per_category : dict of sequences
        :attr:`SweepResult.per_category <dnnsparse.pipelines.SweepResult.per_category>`
        (columns ``layers, fraction, category, shape_bias``).
    table : dict of sequences, optional
        :attr:`SweepResult.table <dnnsparse.pipelines.SweepResult.table>`: the
        overall shape bias of each setting, drawn as vertical lines.
    reference : dict of sequences, optional
        Columns ``name, shape_bias`` and optionally ``category``: rows with a
        category are drawn as black-edged markers per category, rows without
        one as labelled vertical grey lines.
    baseline : str, default="none"
        ``layers`` value of the intact network's rows.
    title : str, optional
    force : bool, default=False

    Returns
    -------
    Path
    """
    layers = _column(per_category, "layers").astype(str)
    fraction = _column(per_category, "fraction").astype(float)
    cats = _column(per_category, "category").astype(str)
    bias = _column(per_category, "shape_bias").astype(float)
    order = list(dict.fromkeys(cats))
    y_of = {c: i for i, c in enumerate(order)}
    settings = list(dict.fromkeys(zip(layers, fraction)))
    overall = {}
    if table is not None:
        for l, f, b in zip(_column(table, "layers").astype(str),
                           _column(table, "fraction").astype(float),
                           _column(table, "shape_bias").astype(float)):
            overall[(l, f)] = b
    fig = new_figure((7.5, 0.32 * len(order) + 2.2))
    ax = fig.add_subplot()
    n = len(settings)
    markers = "osD^v<>pPX*h"
    for i, (l, f) in enumerate(settings):
        rows = np.flatnonzero((layers == l) & (fraction == f))
        is_base = l == baseline
        colour = "k" if is_base else f"C{(i - 1) % 10}"
        label = "intact" if is_base else f"{l} {f:g}"
        # a small vertical offset per setting keeps overlapping markers visible
        dy = (i - (n - 1) / 2) * min(0.6 / max(n, 1), 0.12)
        y = np.array([y_of[c] for c in cats[rows]]) + dy
        ax.plot(bias[rows], y, markers[i % len(markers)], color=colour, ms=5, label=label,
                alpha=0.85, ls="none")
        if (l, f) in overall and np.isfinite(overall[(l, f)]):
            ax.axvline(overall[(l, f)], color=colour, lw=1, ls="--", alpha=0.7)
    ref_rows = _reference_rows(reference, per_category=True)
    for j, name in enumerate(dict.fromkeys(r[0] for r in ref_rows)):
        pts = [(y_of[c], b) for nm, c, b in ref_rows if nm == name and c in y_of]
        if pts:
            yy, xx = zip(*pts)
            ax.plot(xx, yy, "DsP^v<>"[j % 7], ms=7,
                    mfc="none", mec="k", mew=1.2, ls="none", label=f"{name} (reference)")
    _reference_lines(ax, reference, vertical=True)
    ax.set_yticks(range(len(order)), order)
    ax.set_ylim(len(order) - 0.5, -0.5)
    ax.set_xlim(-0.02, 1.02)
    ax.set_xlabel("shape bias (shape / (shape + texture decisions))")
    ax.set_ylabel("cue-conflict category (shape)")
    ax.grid(alpha=0.3, axis="x")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1),
              title="Top-K setting\n(dashed: overall)",
              title_fontsize=7)
    ax.set_title(title or "Shape bias per category")
    return save_figure(fig, path, force=force)


def plot_topk_snapshot(path, images, masks, *, stim_ids=None, fractions=None, n_channels=3,
                       title=None, force=False):
    """An epoch's Top-K masks next to the images, for a few stimuli (the paper's Fig. 8).

    One row per stimulus: the image, then for every layer the fraction of
    channels keeping each position (a heat map over the image, scaled to its
    maximum) and the masks of ``n_channels`` channels (evenly spaced over the
    layer's channels, so the same ones every epoch) in cyan over the faded
    image. Masks are enlarged to the image size (nearest neighbour).

    Parameters
    ----------
    path : str or Path
    images : ndarray of uint8, shape (n_stimuli, height, width, 3)
    masks : dict of str to ndarray of bool, shape (n_stimuli, C, H, W)
    stim_ids : sequence of str, optional
        Row labels.
    fractions : dict of str to float, optional
        Top-K fraction per layer, for the column titles.
    n_channels : int, default=3
    title : str, optional
    force : bool, default=False

    Returns
    -------
    Path
    """
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3:
        raise InputError(f"images must have shape (n, height, width, 3); got {images.shape}.")
    n, height, width = images.shape[:3]
    columns = [("image", None, None)]
    for layer, m in masks.items():
        m = np.asarray(m)
        if m.ndim != 4 or m.shape[0] != n:
            raise InputError(f"masks of {layer!r} must have shape ({n}, C, H, W); got "
                             f"{m.shape}.")
        chans = np.unique(np.linspace(0, m.shape[1] - 1, n_channels).round().astype(int))
        columns.append((layer, "all", None))
        columns += [(layer, "channel", int(c)) for c in chans]
    # one mosaic in one axes (tiles: stimuli x panels) draws far faster than a grid
    # of axes; masks are enlarged to the image size by nearest neighbour
    from matplotlib import colormaps
    magma = colormaps["magma"]
    gap = max(1, width // 16)
    tile_w, tile_h = width + gap, height + gap
    mosaic = np.ones((n * tile_h - gap, len(columns) * tile_w - gap, 3))
    rgb = images.astype(float) / 255
    grey = rgb.mean(axis=-1, keepdims=True)

    def enlarge(a):
        rows = np.arange(height) * a.shape[0] // height
        cols = np.arange(width) * a.shape[1] // width
        return a[rows][:, cols]

    heads = []
    for c, (layer, kind, ch) in enumerate(columns):
        for r in range(n):
            if kind is None:
                tile = rgb[r]
            elif kind == "all":
                occ = enlarge(np.asarray(masks[layer][r], dtype=float).mean(axis=0))
                occ = occ / max(float(occ.max()), 1e-9)
                tile = 0.35 * grey[r] + 0.65 * magma(occ)[..., :3]
            else:
                m = enlarge(np.asarray(masks[layer][r, ch], dtype=bool))[..., None]
                tile = np.where(m, np.array([0.1, 0.9, 1.0]), 0.25 + 0.5 * grey[r])
            mosaic[r * tile_h:r * tile_h + height, c * tile_w:c * tile_w + width] = tile
        if kind is None:
            heads.append("image")
        elif kind == "all":
            frac = "" if not fractions or layer not in fractions else \
                f" K={fractions[layer]:g}"
            heads.append(f"{layer}{frac}\nshare of\n{np.shape(masks[layer])[1]} channels")
        else:
            heads.append(f"{layer}\nchannel {ch}")
    fig = new_figure((1.3 * len(columns) + 1.2, 1.3 * n + 1.2))
    ax = fig.add_subplot()
    ax.imshow(mosaic, interpolation="nearest")
    ax.xaxis.tick_top()
    ax.set_xticks([c * tile_w + width / 2 - 0.5 for c in range(len(columns))], heads,
                  fontsize=7)
    labels = [str(s)[-24:] for s in stim_ids] if stim_ids is not None else [""] * n
    ax.set_yticks([r * tile_h + height / 2 - 0.5 for r in range(n)], labels, fontsize=7)
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.set_title(title or "Top-K masks", fontsize=10)
    ax.set_xlabel("share: fraction of the layer's channels keeping each position (bright = "
                  "many); channel: its Top-K positions in cyan", fontsize=7)
    return save_figure(fig, path, force=force, dpi=110)   # drawn every epoch


def plot_topk_changes(path, table, *, title=None, force=False):
    """Fraction of Top-K mask positions that changed since the previous epoch, per layer.

    Parameters
    ----------
    path : str or Path
    table : dict of sequences
        Columns ``epoch, layer, changed_fraction`` (``changes.csv`` of
        ``db_train -snapshot-topk``).
    title : str, optional
    force : bool, default=False

    Returns
    -------
    Path
    """
    epoch = _column(table, "epoch").astype(float)
    layer = _column(table, "layer").astype(str)
    changed = _column(table, "changed_fraction").astype(float)
    fig = new_figure((6, 3.8))
    ax = fig.add_subplot()
    for name in dict.fromkeys(layer):
        rows = np.flatnonzero(layer == name)
        rows = rows[np.argsort(epoch[rows], kind="stable")]
        ax.plot(epoch[rows], changed[rows], "o-", label=name)
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("fraction of mask positions changed\nsince the previous epoch")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, title="layer", title_fontsize=8)
    ax.set_title(title or "Top-K mask change per epoch")
    return save_figure(fig, path, force=force, dpi=100)
