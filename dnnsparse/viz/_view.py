"""Activation maps drawn on their image (DNNBrain's Fig. 4B; ``db_view``).

:func:`plot_activation_maps` draws, row by row, the image and then feature maps laid
over it (already resampled onto the image's pixel grid; NaN, where the network did
not see the image, stays transparent), each panel with its caption and every row
with a colour bar in activation units (one per row, or per map). Rows may carry
their own image: one stimulus per row, its top channel in each layer (Fig. 4B).
"""
import numpy as np

from ..errors import InputError
from ..utils.validation import check_choice, check_scalar
from ._figures import new_figure, save_figure

__all__ = ["check_colormap", "plot_activation_maps"]


def check_colormap(name):
    """The matplotlib colour map called ``name``; :class:`InputError` if there is none.

    >>> check_colormap("viridis").name
    'viridis'
    """
    import matplotlib

    try:
        return matplotlib.colormaps[name]
    except KeyError:
        raise InputError(f"-cmap {name!r} is not a matplotlib colour map; try jet, "
                         f"viridis or magma.") from None


def _scale(maps):
    values = np.concatenate([np.ravel(m)[np.isfinite(np.ravel(m))] for m in maps] or [[]])
    if values.size == 0:
        return 0.0, 1.0
    lo, hi = float(values.min()), float(values.max())
    return (lo, hi) if hi > lo else (lo - 0.5, hi + 0.5)     # a flat map still shows


_SCALES = ("row", "figure", "panel")


def plot_activation_maps(path, image, rows, *, title=None, alpha=0.6, cmap="jet",
                         scale="row", dpi=100, force=False):
    """Save a figure of feature maps over their image, one row per group of maps.

    Parameters
    ----------
    path : str or Path
        Output image; the suffix (png, pdf, svg) picks the format.
    image : ndarray of shape (H, W, 3), uint8, or a list of them
        The stimulus (or a thumbnail of it), the first panel of every row; a list
        gives each row its own image.
    rows : list of (str, list of (ndarray (H, W), str))
        Row label (the layer, or the stimulus) and its maps with their captions, each
        map on the pixel grid of the row's image (NaN: not seen by the network).
    title : str, optional
    alpha : float, default=0.6
        Opacity of the maps over the image (1: the maps alone).
    cmap : str, default="jet"
        A matplotlib colour map.
    scale : {"row", "figure", "panel"}, default="row"
        One colour scale (and colour bar) per row, for the whole figure (a colour bar
        per row, all alike), or per map.
    dpi : int, default=100
    force : bool, default=False

    Returns
    -------
    Path

    Examples
    --------
    >>> img, rows = np.zeros((8, 8, 3), np.uint8), [("conv1", [(np.ones((8, 8)), "chn 1")])]
    >>> plot_activation_maps("v.png", img, rows)                 # doctest: +SKIP
    """
    check_scalar(alpha, name="alpha", min_val=0, max_val=1)
    check_choice(scale, _SCALES, name="scale")
    cmap = check_colormap(cmap)
    rows = [(label, list(items)) for label, items in rows]
    images = [np.asarray(im) for im in image] if isinstance(image, (list, tuple)) else \
        [np.asarray(image)] * len(rows)
    if len(images) != len(rows):
        raise InputError(f"{len(images)} images for {len(rows)} rows of maps.")
    if not any(items for _, items in rows):
        raise InputError("no maps to draw.")
    for (label, items), im in zip(rows, images):
        if im.ndim != 3 or im.shape[2] != 3:
            raise InputError(f"row {label!r}: the image must be (H, W, 3); got {im.shape}.")
        for m, _ in items:
            if np.shape(m) != im.shape[:2]:
                raise InputError(f"row {label!r}: a map of shape {np.shape(m)} does not "
                                 f"lie on the {im.shape[:2]} image.")
    n_cols = 1 + max(len(items) for _, items in rows)
    aspect = max(im.shape[0] / im.shape[1] for im in images)
    width = 1.9
    # the colour bars take their room from the panels: a wider figure keeps the panels
    # 1.9 inches; no layout engine (constrained layout would triple the drawing time)
    bars = 0.45 * (n_cols - 1) if scale == "panel" else 0.6
    fig = new_figure((width * n_cols + bars, (width * aspect + 0.45) * len(rows)))
    fig.subplots_adjust(wspace=0.35 if scale == "panel" else 0.06, hspace=0.3)
    axes = np.asarray(fig.subplots(len(rows), n_cols, squeeze=False))
    every = _scale([m for _, items in rows for m, _ in items]) if scale == "figure" else None
    for r, ((label, items), im) in enumerate(zip(rows, images)):
        limits = every or _scale([m for m, _ in items])
        for c in range(n_cols):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c > len(items):
                ax.set_axis_off()
                continue
            if c == 0:
                ax.imshow(im, interpolation="nearest")
                ax.set_ylabel(label, fontsize=9)
                ax.set_xlabel("image", fontsize=7)
                continue
            m, caption = items[c - 1]
            vmin, vmax = _scale([m]) if scale == "panel" else limits
            if alpha < 1:
                ax.imshow(im, interpolation="nearest")
            shown = ax.imshow(np.ma.masked_invalid(m), cmap=cmap, vmin=vmin, vmax=vmax,
                              alpha=alpha, interpolation="nearest")
            ax.set_xlabel(caption, fontsize=7)
            if scale == "panel":
                _colour_bar(fig, shown, [ax])
        if items and scale != "panel":
            _colour_bar(fig, shown, list(axes[r, 1:len(items) + 1]))
    if title:
        fig.suptitle(title)
    return save_figure(fig, path, force=force, dpi=dpi)


def _colour_bar(fig, shown, axes):
    bar = fig.colorbar(shown, ax=axes, fraction=0.05 if len(axes) == 1 else 0.04, pad=0.02)
    bar.set_label("activation", fontsize=7)
    bar.ax.tick_params(labelsize=6)
    bar.solids.set_alpha(1)
