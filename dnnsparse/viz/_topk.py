"""Figures of Top-K sweeps and Top-K training, saved atomically.

- :func:`plot_shape_bias_sweep` -- shape bias (and accuracy) against the Top-K
  fraction, one line per layer set, the intact network as a horizontal line
  (the paper's Fig. 4/5 view of a single network).
- :func:`plot_training_history` -- training and validation loss and accuracy
  per epoch (``db_train``'s ``history.png``).

Built on :class:`matplotlib.figure.Figure` with the Agg canvas (no pyplot, no
change to the caller's backend), by :mod:`dnnsparse.viz._figures`.
"""
import numpy as np
from matplotlib.ticker import MaxNLocator

from ..errors import InputError
from ._figures import new_figure, save_figure

__all__ = ["plot_shape_bias_sweep", "plot_training_history"]


def _column(table, name):
    if name not in table:
        raise InputError(f"the table has no {name!r} column; it has {', '.join(table)}.")
    return np.asarray(table[name])


def plot_shape_bias_sweep(path, table, *, baseline="none", title=None, force=False):
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
