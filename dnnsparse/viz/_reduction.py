"""Figures of feature reduction (``db_fe``), saved atomically.

- :func:`plot_explained_variance` -- PCA's explained variance per component (bars)
  and its cumulative sum (line), one panel per layer.
"""
import numpy as np

from ..errors import InputError
from ._figures import new_figure, save_figure

__all__ = ["plot_explained_variance"]


def plot_explained_variance(path, table, *, title=None, force=False):
    """Explained-variance ratio per component and cumulative, one panel per layer.

    Parameters
    ----------
    path : str or Path
        Output image; the suffix (png, pdf, svg) picks the format.
    table : dict of sequences
        Columns ``layer, component, explained_variance_ratio`` (the table of
        :func:`dnnsparse.pipelines.reduce_features`).
    title : str, optional
    force : bool, default=False

    Returns
    -------
    Path
    """
    missing = [c for c in ("layer", "component", "explained_variance_ratio") if c not in table]
    if missing:
        raise InputError(f"the table has no {', '.join(missing)} column(s).")
    layer = np.asarray(table["layer"]).astype(str)
    comp = np.asarray(table["component"], dtype=int)
    ratio = np.asarray(table["explained_variance_ratio"], dtype=float)
    names = list(dict.fromkeys(layer))
    fig = new_figure((4.2 * min(len(names), 3), 3.4 * -(-len(names) // 3)))
    axes = np.atleast_1d(fig.subplots(-(-len(names) // 3), min(len(names), 3), squeeze=False)
                         ).ravel()
    for ax, name in zip(axes, names):
        rows = np.flatnonzero(layer == name)
        ax.bar(comp[rows], ratio[rows], color="C0", label="component")
        ax.plot(comp[rows], np.cumsum(ratio[rows]), color="C1", marker=".", label="cumulative")
        ax.set_ylim(0, 1.02)
        ax.set_title(name)
        ax.set_xlabel("component")
        ax.set_ylabel("explained variance ratio")
    for ax in axes[len(names):]:
        ax.set_visible(False)
    axes[0].legend(frameon=False, loc="center right")
    if title:
        fig.suptitle(title)
    return save_figure(fig, path, force=force)
