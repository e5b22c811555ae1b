"""Receptive-field figures: maps overlaid on the stimulus, with the theoretical field.

:func:`plot_rf_maps` draws the (mean) stimulus, then each map (occlusion discrepancy,
upsampled activation) over it, with the map's peak and, for a unit, the box of its
theoretical receptive field (clipped to the image).
"""
import numpy as np
from matplotlib.patches import Rectangle

from ..errors import InputError
from ._figures import new_figure, save_figure

__all__ = ["plot_rf_maps"]


def plot_rf_maps(path, image, maps, *, box=None, peaks=None, title=None, alpha=0.6,
                 cmap="RdBu_r", force=False):
    """Save a row of panels: the image, then each map overlaid on it.

    Parameters
    ----------
    path : str or Path
        Output image; the suffix (png, pdf, svg) picks the format.
    image : ndarray of shape (H, W, 3)
        ``uint8`` (or floats in [0, 1]) background, at the maps' size.
    maps : dict of str to ndarray of shape (H, W)
        Panel title → map.
    box : (top, bottom, left, right), optional
        Theoretical receptive field in pixels (inclusive, may exceed the image).
    peaks : dict of str to (row, col), optional
        Marked with a cross on the panel of the same title.
    title : str, optional
    alpha : float, default=0.6
        Opacity of the maps.
    cmap : str, default="RdBu_r"
        A diverging colour map; the colour scale is symmetric about 0.
    force : bool, default=False

    Returns
    -------
    Path
    """
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3:
        raise InputError(f"the background image must be (H, W, 3); got {image.shape}.")
    height, width = image.shape[:2]
    for name, m in maps.items():
        if np.shape(m) != (height, width):
            raise InputError(f"map {name!r} has shape {np.shape(m)}, not the image's "
                             f"{(height, width)}.")
    peaks = peaks or {}
    n = 1 + len(maps)
    fig = new_figure((3.2 * n, 3.6))
    axes = np.atleast_1d(fig.subplots(1, n))
    axes[0].imshow(image)
    axes[0].set_title("stimulus")
    for ax, (name, m) in zip(axes[1:], maps.items()):
        ax.imshow(image)
        m = np.asarray(m, dtype=float)
        # centred on 0 ("no effect"), so that both signs of a discrepancy show
        vmax = float(np.nanmax(np.abs(m))) or 1.0
        im = ax.imshow(m, cmap=cmap, alpha=alpha, vmin=-vmax, vmax=vmax)
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
        ax.set_title(name)
        if name in peaks:
            r, c = peaks[name]
            ax.plot([c], [r], marker="+", color="black", markersize=14, mew=2)
    for ax in axes:
        if box is not None:
            top, bottom, left, right = box
            top, left = max(top, 0), max(left, 0)
            bottom, right = min(bottom, height - 1), min(right, width - 1)
            ax.add_patch(Rectangle((left - 0.5, top - 0.5), right - left + 1, bottom - top + 1,
                                   fill=False, edgecolor="black", linestyle="--", linewidth=1.5))
        ax.set_xlim(-0.5, width - 0.5)
        ax.set_ylim(height - 0.5, -0.5)
        ax.set_xticks([])
        ax.set_yticks([])
    if title:
        fig.suptitle(title)
    return save_figure(fig, path, force=force)
