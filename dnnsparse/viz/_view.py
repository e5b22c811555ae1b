"""Activation maps drawn on their image (DNNBrain's Fig. 4B; ``db_view``).

:func:`plot_activation_maps` draws, row by row, the image and then feature maps laid
over it (already resampled onto the image's pixel grid; NaN, where the network did
not see the image, stays transparent), each panel with its caption and every row
with a colour bar in activation units.
"""
import numpy as np

from ..errors import InputError
from ..utils.validation import check_scalar
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


def plot_activation_maps(path, image, rows, *, title=None, alpha=0.6, cmap="jet",
                         shared_scale=False, dpi=100, force=False):
    """Save a figure of feature maps over one image, one row per group of maps.

    Parameters
    ----------
    path : str or Path
        Output image; the suffix (png, pdf, svg) picks the format.
    image : ndarray of shape (H, W, 3), uint8
        The stimulus (or a thumbnail of it); the first panel of every row.
    rows : list of (str, list of (ndarray (H, W), str))
        Row label (e.g. the layer) and its maps with their captions, each map on the
        pixel grid of ``image`` (NaN: not seen by the network).
    title : str, optional
    alpha : float, default=0.6
        Opacity of the maps over the image (1: the maps alone).
    cmap : str, default="jet"
        A matplotlib colour map.
    shared_scale : bool, default=False
        One colour scale for the whole figure (False: one per row).
    dpi : int, default=100
    force : bool, default=False

    Returns
    -------
    Path

    Examples
    --------
    >>> img = np.zeros((8, 8, 3), np.uint8)
    >>> plot_activation_maps("v.png", img, [("conv1", [(np.ones((8, 8)), "chn 1")])])  # doctest: +SKIP
    """
    check_scalar(alpha, name="alpha", min_val=0, max_val=1)
    cmap = check_colormap(cmap)
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3:
        raise InputError(f"the image must be (H, W, 3); got {image.shape}.")
    rows = [(label, list(items)) for label, items in rows if len(items)]
    if not rows:
        raise InputError("no maps to draw.")
    for label, items in rows:
        for m, _ in items:
            if np.shape(m) != image.shape[:2]:
                raise InputError(f"row {label!r}: a map of shape {np.shape(m)} does not "
                                 f"lie on the {image.shape[:2]} image.")
    n_cols = 1 + max(len(items) for _, items in rows)
    aspect = image.shape[0] / image.shape[1]
    width = 1.9
    fig = new_figure((width * n_cols + 0.9, (width * aspect + 0.55) * len(rows)
                      + (0.45 if title else 0)))
    axes = np.asarray(fig.subplots(len(rows), n_cols, squeeze=False))
    every = _scale([m for _, items in rows for m, _ in items]) if shared_scale else None
    for r, (label, items) in enumerate(rows):
        vmin, vmax = every or _scale([m for m, _ in items])
        for c in range(n_cols):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c > len(items):
                ax.set_axis_off()
                continue
            if c == 0:
                ax.imshow(image)
                ax.set_ylabel(label, fontsize=9)
                ax.set_xlabel("image", fontsize=7)
                continue
            m, caption = items[c - 1]
            if alpha < 1:
                ax.imshow(image)
            shown = ax.imshow(np.ma.masked_invalid(m), cmap=cmap, vmin=vmin, vmax=vmax,
                              alpha=alpha, interpolation="nearest")
            ax.set_xlabel(caption, fontsize=7)
        bar = fig.colorbar(shown, ax=list(axes[r, 1:len(items) + 1]), fraction=0.04, pad=0.02)
        bar.set_label("activation", fontsize=7)
        bar.ax.tick_params(labelsize=6)
    if title:
        fig.suptitle(title)
    return save_figure(fig, path, force=force, dpi=dpi)
