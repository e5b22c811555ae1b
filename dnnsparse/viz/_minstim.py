"""Minimal-image figures (``db_minstim``): the segmentation, and the activation curve.

- :func:`plot_segmentation` -- the stimulus (at the network's input size) with the
  borders of its parcels.
- :func:`plot_minimal_curve` -- the stimulus, its minimal image, and the target's value
  after each greedy removal, with the threshold it had to stay above.
"""
import numpy as np

from ..errors import InputError
from ._figures import new_figure, save_figure

__all__ = ["plot_minimal_curve", "plot_segmentation"]


def _borders(labels):
    """``(H, W)`` bool: pixels whose right or lower neighbour is in another parcel."""
    labels = np.asarray(labels)
    edge = np.zeros(labels.shape, dtype=bool)
    edge[:, :-1] |= labels[:, :-1] != labels[:, 1:]
    edge[:-1, :] |= labels[:-1, :] != labels[1:, :]
    return edge


def _with_borders(image, labels, colour=(255, 255, 0)):
    out = np.array(image, dtype=np.uint8, copy=True)
    out[_borders(labels)] = colour
    return out


def _check_image(image, name):
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3:
        raise InputError(f"{name} must be (H, W, 3); got {image.shape}.")
    return image


def plot_segmentation(path, image, labels, *, title=None, force=False):
    """Save the image with its parcels' borders (yellow).

    Parameters
    ----------
    path : str or Path
        Output image; the suffix (png, pdf, svg) picks the format.
    image : ndarray of shape (H, W, 3), uint8
    labels : ndarray of shape (H, W), int
    title : str, optional
    force : bool, default=False

    Returns
    -------
    Path

    Examples
    --------
    >>> plot_segmentation("seg.png", img, labels, title="cat.png")   # doctest: +SKIP
    """
    image = _check_image(image, "the image")
    if np.shape(labels) != image.shape[:2]:
        raise InputError(f"labels of shape {np.shape(labels)} do not match the image "
                         f"{image.shape[:2]}.")
    fig = new_figure((4.2, 4.6))
    ax = fig.add_subplot()
    ax.imshow(_with_borders(image, labels), interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_xlabel(f"{int(np.max(labels)) + 1} parcels")
    if title:
        ax.set_title(title, fontsize=9)
    return save_figure(fig, path, force=force, dpi=100)


def plot_minimal_curve(path, curve, threshold, *, image=None, minimal=None, labels=None,
                       title=None, force=False):
    """Save the target's value against the number of parcels removed.

    Parameters
    ----------
    path : str or Path
    curve : array of shape (n_removed + 1,)
        Value on the whole image (0 removed), then after each removal.
    threshold : float
        The value the removals had to keep (dashed line).
    image, minimal : ndarray of shape (H, W, 3), optional
        The stimulus and its minimal image, drawn left of the curve.
    labels : ndarray of shape (H, W), optional
        Parcels, whose borders are drawn on the stimulus.
    title : str, optional
    force : bool, default=False

    Returns
    -------
    Path

    Examples
    --------
    >>> plot_minimal_curve("c.png", [3.0, 2.9, 2.1], 1.5, title="conv5:3")  # doctest: +SKIP
    """
    curve = np.asarray(curve, dtype=np.float64)
    if curve.ndim != 1 or not len(curve):
        raise InputError(f"the curve must be a 1-D sequence of values; got shape "
                         f"{curve.shape}.")
    panels = [(name, _check_image(img, name)) for name, img in
              (("stimulus", image), ("minimal image", minimal)) if img is not None]
    if labels is not None and panels and panels[0][0] == "stimulus":
        panels[0] = ("stimulus", _with_borders(panels[0][1], labels))
    n = len(panels) + 1
    fig = new_figure((3.2 * len(panels) + 4.6, 3.6))
    axes = np.atleast_1d(fig.subplots(1, n, gridspec_kw={
        "width_ratios": [1] * len(panels) + [1.5], "wspace": 0.3 if n == 1 else 0.45}))
    for ax, (name, img) in zip(axes, panels):
        ax.imshow(img, interpolation="nearest")
        ax.set_title(name, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    ax = axes[-1]
    steps = np.arange(len(curve))
    ax.plot(steps, curve, marker="o", markersize=3, color="tab:blue", label="value")
    ax.axhline(threshold, color="tab:red", linestyle="--", linewidth=1,
               label=f"threshold {threshold:.4g}")
    ax.plot([steps[-1]], [curve[-1]], marker="*", markersize=12, color="tab:orange",
            linestyle="none", label="minimal image")
    ax.set_xlabel("parcels removed")
    ax.set_ylabel("target value")
    if curve[0] > 0:
        right = ax.secondary_yaxis("right", functions=(lambda v: v / curve[0],
                                                       lambda f: f * curve[0]))
        right.set_ylabel("fraction of the whole image's value")
    ax.legend(fontsize=7, loc="lower left")
    ax.set_title("greedy removal", fontsize=9)
    if title:
        fig.suptitle(title)
    return save_figure(fig, path, force=force, dpi=100)
