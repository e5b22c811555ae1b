"""Top stimuli of a target: its images in rank order (DNNBrain's Fig. 7A).

:func:`plot_top_stimuli` draws one panel per image, best rank first, with its rank,
stimulus ID and value; with several sections (top-N and bottom-N) each starts on a
new row of the grid.
"""
import math

import numpy as np

from ..errors import InputError
from ._figures import new_figure, save_figure

__all__ = ["plot_top_stimuli"]


def plot_top_stimuli(path, sections, *, title=None, n_cols=None, dpi=100, force=False):
    """Save a grid of the stimuli of one target in rank order.

    Parameters
    ----------
    path : str or Path
        Output image; the suffix (png, pdf, svg) picks the format.
    sections : dict of str to list of (image, caption)
        Section name (``"top"``, ``"bottom"``) → its images in rank order, each an
        ``(H, W, 3)`` ``uint8`` array with a caption (``"1. stim.png\\n3.21"``).
    title : str, optional
    n_cols : int, optional
        Panels per row (default: the longest section in one row up to 10 images,
        else rows of at most 8).
    dpi : int, default=100
        Resolution (the panels are thumbnails; more costs time, not detail).
    force : bool, default=False

    Returns
    -------
    Path

    Examples
    --------
    >>> img = np.zeros((8, 8, 3), np.uint8)
    >>> plot_top_stimuli("t.png", {"top": [(img, "1. a")]})    # doctest: +SKIP
    """
    sections = {k: list(v) for k, v in sections.items() if len(v)}
    if not sections:
        raise InputError("no stimuli to draw.")
    for name, items in sections.items():
        for image, _ in items:
            if np.ndim(image) != 3 or np.shape(image)[2] != 3:
                raise InputError(f"section {name!r}: an image must be (H, W, 3); got "
                                 f"{np.shape(image)}.")
    if not n_cols:
        longest = max(len(v) for v in sections.values())
        # one row up to 10 images; beyond, rows of equal length (20 -> 3 rows of 7)
        n_cols = longest if longest <= 10 else math.ceil(longest / math.ceil(longest / 8))
    rows = [(name, i, items[i:i + n_cols]) for name, items in sections.items()
            for i in range(0, len(items), n_cols)]
    fig = new_figure((1.9 * n_cols, 2.2 * len(rows) + (0.4 if title else 0)))
    axes = np.asarray(fig.subplots(len(rows), n_cols, squeeze=False))
    for r, (name, first, items) in enumerate(rows):
        for c in range(n_cols):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c >= len(items):
                ax.set_axis_off()
                continue
            image, caption = items[c]
            ax.imshow(np.asarray(image))
            ax.set_xlabel(caption, fontsize=7)
            if c == 0 and first == 0 and len(sections) > 1:
                ax.set_ylabel(name, fontsize=9)
    if title:
        fig.suptitle(title)
    return save_figure(fig, path, force=force, dpi=dpi)
