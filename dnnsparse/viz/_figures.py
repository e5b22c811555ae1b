"""One way of making and saving figures, shared by every ``*_plots`` module.

Figures are built on :class:`matplotlib.figure.Figure` with the Agg canvas, not
through pyplot: nothing changes the caller's matplotlib backend or global state,
and nothing needs a display. They are written atomically (a complete file or none).

Examples
--------
>>> fig = new_figure((4, 3))
>>> ax = fig.add_subplot()
>>> save_figure(fig, "plot.png")                           # doctest: +SKIP
"""
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ..io import atomic_output

__all__ = ["new_figure", "save_figure"]


def new_figure(figsize):
    """An empty :class:`~matplotlib.figure.Figure` of ``figsize`` (inches) on the Agg canvas."""
    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig, path, *, force=False, dpi=150):
    """Save ``fig`` to ``path`` atomically; the suffix (png, pdf, svg) picks the format.

    Returns
    -------
    Path
    """
    path = Path(path)
    fmt = path.suffix.lstrip(".").lower() or "png"
    with atomic_output(path, force=force) as tmp:
        fig.savefig(tmp, format=fmt, dpi=dpi, bbox_inches="tight")
    return path
