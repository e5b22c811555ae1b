"""The activation of a target over the steps of its optimisation (``db_optstim``)."""
import numpy as np
from matplotlib.ticker import MaxNLocator

from ..errors import InputError
from ._figures import new_figure, save_figure

__all__ = ["plot_activation_curve"]


def plot_activation_curve(path, activation, *, title, penalty=None, references=None,
                          ylabel="activation", force=False, dpi=100):
    """Save a line plot of ``activation`` per step (and the penalty, when given).

    Parameters
    ----------
    path : str or Path
        Output image; the suffix (png, pdf, svg) picks the format.
    activation : array of shape (n_steps,)
        The target's value at each step (NaN steps, after an early stop, are left out).
    title : str
    penalty : array of shape (n_steps,), optional
        Weighted penalty per step, drawn on a second axis.
    references : dict of str to float, optional
        Horizontal lines (e.g. ``{"saved image": 12.3}``), labelled in the legend.
    ylabel : str, default="activation"
    force : bool, default=False
    dpi : int, default=100

    Returns
    -------
    Path

    Examples
    --------
    >>> plot_activation_curve("a.png", [0.1, 0.5, 0.9], title="conv5:3")  # doctest: +SKIP
    """
    activation = np.asarray(activation, dtype=np.float64)
    if activation.ndim != 1 or not np.isfinite(activation).any():
        raise InputError("the activation curve needs a 1-D series with a finite value.")
    steps = np.arange(1, len(activation) + 1)
    keep = np.isfinite(activation)
    fig = new_figure((6, 3.6))
    ax = fig.add_subplot()
    ax.plot(steps[keep], activation[keep], color="C0", label=ylabel)
    for k, (label, value) in enumerate((references or {}).items()):
        ax.axhline(value, color=f"C{k + 2}", linestyle="--", linewidth=1,
                   label=f"{label} ({value:.4g})")
    ax.set_xlabel("step")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    handles, labels = ax.get_legend_handles_labels()
    if penalty is not None and np.any(np.nan_to_num(np.asarray(penalty, float)) != 0):
        penalty = np.asarray(penalty, dtype=np.float64)
        ax2 = ax.twinx()
        ax2.plot(steps[keep], penalty[keep], color="C1", linewidth=1, label="penalty")
        ax2.set_ylabel("weighted penalty")
        h2, l2 = ax2.get_legend_handles_labels()
        handles, labels = handles + h2, labels + l2
    ax.legend(handles, labels, loc="lower right", fontsize="small")
    ax.grid(alpha=0.3)
    return save_figure(fig, path, force=force, dpi=dpi)
