"""Figures of encoding and decoding results, saved atomically.

- :func:`plot_encoding_summary` -- mean cross-validated score per layer, one line per
  ROI (per channel / position: one line per layer along the blocks);
- :func:`plot_decoding_summary` -- decoding accuracy (or r) per layer / ROI, with
  chance marked.

Built on :class:`matplotlib.figure.Figure` with the Agg canvas (no pyplot), by
:mod:`dnnsparse.viz._figures`.
"""
import numpy as np

from ._figures import new_figure, save_figure

__all__ = ["plot_decoding_summary", "plot_encoding_summary"]


def plot_encoding_summary(path, summary, *, scoring="r", force=False):
    """Mean held-out score of every layer (x) for every ROI (lines).

    Parameters
    ----------
    path : str or Path
    summary : dict of sequences
        The summary table of :func:`dnnsparse.pipelines.encoding_tables`
        (columns layer, roi, score; chn or row/col with -iteraxis).
    scoring : {"r", "r2"}
        Axis label.
    force : bool

    Returns
    -------
    Path
    """
    layer = np.asarray(summary["layer"]).astype(str)
    roi = np.asarray(summary["roi"]).astype(str)
    score = np.asarray(summary["score"], dtype=float)
    layers = list(dict.fromkeys(layer))
    per_block = "chn" in summary or "row" in summary
    fig = new_figure((max(5.0, 0.6 * len(layers) + 3), 3.6))
    ax = fig.subplots()
    if per_block:
        # One line per layer x ROI along the channels / positions.
        for name in layers:
            for r in dict.fromkeys(roi[layer == name]):
                rows = (layer == name) & (roi == r)
                ax.plot(np.arange(1, rows.sum() + 1), score[rows], marker=".",
                        label=name if r == "all" else f"{name} {r}")
        ax.set_xlabel("channel" if "chn" in summary else "position (row-major)")
    else:
        for r in dict.fromkeys(roi):
            values = [score[(layer == name) & (roi == r)][0] for name in layers]
            ax.plot(np.arange(len(layers)), values, marker="o", label=r)
        ax.set_xticks(np.arange(len(layers)))
        ax.set_xticklabels(layers, rotation=45, ha="right")
        ax.set_xlabel("layer")
    ax.axhline(0, color="0.6", lw=0.8)
    ax.set_ylabel(f"mean held-out {'Pearson r' if scoring == 'r' else 'R²'}")
    ax.legend(fontsize="small", frameon=False)
    return save_figure(fig, path, force=force)


def plot_decoding_summary(path, summary, *, force=False):
    """Accuracy (with chance) or Pearson r of every source (layer or ROI).

    Parameters
    ----------
    path : str or Path
    summary : dict of sequences
        ``decoding_tables(...)["summary"]``.
    force : bool

    Returns
    -------
    Path
    """
    source = np.asarray(summary["source"]).astype(str)
    classify = "accuracy" in summary
    value = np.asarray(summary["accuracy" if classify else "r"], dtype=float)
    fig = new_figure((max(4.0, 0.6 * len(source) + 2), 3.4))
    ax = fig.subplots()
    x = np.arange(len(source))
    ax.bar(x, value, color="C0")
    if classify:
        ax.plot(x, np.asarray(summary["chance"], dtype=float), "k_", ms=20, mew=2,
                label="chance")
        ax.set_ylim(0, 1)
        ax.legend(fontsize="small", frameon=False)
    ax.set_xticks(x)
    ax.set_xticklabels(source, rotation=45, ha="right")
    ax.set_ylabel("held-out accuracy" if classify else "held-out Pearson r")
    return save_figure(fig, path, force=force)
