"""Saliency maps over their photographs (DNNBrain's Fig. 7B).

:func:`plot_saliency_overlays` draws one row per stimulus: the photograph, then each
method's map laid over it (semi-transparent, with its own colour bar). Maps come in
the photograph's geometry; NaN (the parts of the photograph the network's crop cut
away) is left uncoloured.
"""
import numpy as np

from ..errors import InputError
from ._figures import new_figure, save_figure

__all__ = ["plot_saliency_overlays"]


def _scale(values):
    """Colour range of one map: 0 to its 99th percentile (a few extreme pixels would
    otherwise leave the rest dark, as the SmoothGrad paper notes)."""
    finite = values[np.isfinite(values)]
    if not finite.size:
        return 0.0, 1.0
    top = float(np.percentile(finite, 99))
    if top <= 0:
        top = float(finite.max())
    return 0.0, top if top > 0 else 1.0


def plot_saliency_overlays(path, rows, columns, *, title=None, alpha=0.6, cmap="inferno",
                           dpi=100, force=False):
    """Save a grid of photographs with their saliency maps laid over them.

    Parameters
    ----------
    path : str or Path
        Output image; the suffix (png, pdf, svg) picks the format.
    rows : list of (str, ndarray, list of ndarray)
        One stimulus each: its label, the photograph ``(h, w, 3)`` ``uint8`` and one
        map ``(h, w)`` per column (non-negative; NaN where there is no map).
    columns : list of str
        The maps' names (e.g. the methods), one per map of a row.
    title : str, optional
    alpha : float, default=0.6
        Opacity of the maps.
    cmap : str, default="inferno"
    dpi : int, default=100
    force : bool, default=False

    Returns
    -------
    Path

    Examples
    --------
    >>> img = np.zeros((8, 12, 3), np.uint8)
    >>> plot_saliency_overlays("s.png", [("a.png", img, [np.ones((8, 12))])],
    ...                        ["vanilla"])                        # doctest: +SKIP
    """
    if not rows:
        raise InputError("no stimuli to draw.")
    for label, image, maps in rows:
        if np.ndim(image) != 3 or np.shape(image)[2] != 3:
            raise InputError(f"{label}: the photograph must be (h, w, 3); got "
                             f"{np.shape(image)}.")
        if len(maps) != len(columns):
            raise InputError(f"{label}: {len(maps)} maps for {len(columns)} columns.")
        for m in maps:
            if np.shape(m) != np.shape(image)[:2]:
                raise InputError(f"{label}: a map of shape {np.shape(m)} does not cover "
                                 f"the photograph's {np.shape(image)[:2]}.")
    n_cols = 1 + len(columns)
    # panels shaped like the photographs (the first one's aspect), room for colour bars
    h, w = np.shape(rows[0][1])[:2]
    panel = float(np.clip(2.2 * h / w, 1.1, 3.3))
    fig = new_figure((2.7 * n_cols, (panel + 0.35) * len(rows) + (0.4 if title else 0)))
    axes = np.asarray(fig.subplots(len(rows), n_cols, squeeze=False))
    for r, (label, image, maps) in enumerate(rows):
        ax = axes[r, 0]
        ax.imshow(image)
        ax.set_ylabel(label, fontsize=7)
        for c, values in enumerate(maps, 1):
            ax = axes[r, c]
            ax.imshow(image)
            vmin, vmax = _scale(np.asarray(values, dtype=np.float64))
            shown = ax.imshow(np.ma.masked_invalid(values), cmap=cmap, alpha=alpha,
                              vmin=vmin, vmax=vmax)
            cbar = fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.03)
            cbar.ax.tick_params(labelsize=6)
            if r == 0:
                ax.set_title(columns[c - 1], fontsize=9)
        if r == 0:
            axes[r, 0].set_title("image", fontsize=9)
        for ax in axes[r]:
            ax.set_xticks([])
            ax.set_yticks([])
    if title:
        fig.suptitle(title)
    return save_figure(fig, path, force=force, dpi=dpi)
