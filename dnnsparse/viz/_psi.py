"""Figures of the sparse-coding analysis (Liu, Zhen & Liu, 2020), saved atomically.

- :func:`plot_distributions` -- Fig. 1A: the distribution of category PSI in every
  layer (one curve per layer, y = proportion of categories).
- :func:`plot_medians` -- Fig. 1B / 3B: median PSI along the layers with an IQR
  band, for one or several networks (intact vs lesioned) on the same layers.
- :func:`plot_correlation` -- Fig. 2: PSI-accuracy correlation per layer,
  Bonferroni-significant layers marked.

Built on :class:`matplotlib.figure.Figure` with the Agg canvas (no pyplot, no
change to the caller's backend), by :mod:`dnnsparse.viz._figures`.
"""
import numpy as np

from ._figures import new_figure, save_figure

__all__ = ["plot_correlation", "plot_distributions", "plot_medians"]

_BOUNDED = ("psi", "lifetime", "hoyer", "active")   # measures in [0, 1]


def _bins(values, measure):
    """Bin edges: [0, 1] for bounded measures, else the data range; about 2 sqrt(n) bins."""
    n_bins = int(np.clip(2 * np.sqrt(max(len(v) for v in values)), 8, 40))
    if measure in _BOUNDED:
        return np.linspace(0.0, 1.0, n_bins + 1)
    finite = np.concatenate([v[np.isfinite(v)] for v in values])
    lo, hi = (finite.min(), finite.max()) if finite.size else (0.0, 1.0)
    return np.linspace(lo, hi if hi > lo else lo + 1.0, n_bins + 1)


def plot_distributions(path, result, *, title=None, force=False):
    """The distribution of the categories' (or units') sparseness in every layer.

    As the paper's Fig. 1A: one curve per layer (proportion of categories per
    bin), coloured from early (light) to late (dark) layers, in one axes.

    Parameters
    ----------
    path : str or Path
        Output image; the suffix (png, pdf, svg) picks the format.
    result : SparsenessResult
    title : str, optional
    force : bool, default=False

    Returns
    -------
    Path
    """
    from matplotlib import colormaps

    bins = _bins(result.values, result.measure)
    centres = (bins[:-1] + bins[1:]) / 2
    colours = colormaps["viridis_r"](np.linspace(0.1, 1.0, len(result.layers)))
    fig = new_figure((6.4, 4.0))
    ax = fig.add_subplot()
    for layer, v, colour in zip(result.layers, result.values, colours):
        v = v[np.isfinite(v)]
        counts = np.histogram(v, bins=bins)[0] / max(v.size, 1)
        ax.plot(centres, counts, color=colour, lw=1.2, label=layer)
    ax.set_xlabel(result.measure)
    ax.set_ylabel(f"proportion of {'units' if result.per_unit else 'categories'}")
    ax.legend(fontsize=6, ncol=1 + len(result.layers) // 10, loc="upper right",
              frameon=False)
    ax.set_title(title or f"{result.measure} distribution per layer", fontsize=10)
    return save_figure(fig, path, force=force)


def plot_medians(path, results, *, title=None, force=False):
    """Median along the layers with an IQR band, one line per result.

    Parameters
    ----------
    path : str or Path
    results : mapping {label: SparsenessResult}
        Results on the same layers (e.g. intact and lesioned network); the labels
        go into the legend (an empty label: no legend).
    title : str, optional
    force : bool, default=False

    Returns
    -------
    Path
    """
    first = next(iter(results.values()))
    layers = first.layers
    x = np.arange(1, len(layers) + 1)
    fig = new_figure((max(4.0, 0.45 * len(layers) + 2.0), 3.6))
    ax = fig.add_subplot()
    for label, res in results.items():
        s = res.summary()
        line, = ax.plot(x[:len(res.layers)], s["median"], marker="o", ms=4, label=label or None)
        ax.fill_between(x[:len(res.layers)], s["q25"], s["q75"], color=line.get_color(),
                        alpha=0.2, lw=0)
    ax.set_xticks(x)
    ax.set_xticklabels(layers, rotation=60, ha="right", fontsize=7)
    ax.set_ylabel(f"median {first.measure} (band: IQR)")
    if any(results):
        ax.legend(fontsize=8)
    ax.set_title(title or f"{first.measure} along the layers", fontsize=10)
    return save_figure(fig, path, force=force)


def plot_correlation(path, analysis, *, alpha=0.05, title=None, force=False):
    """Pearson r between category sparseness and accuracy in every layer.

    Layers whose Bonferroni-corrected p is below ``alpha`` are drawn as filled
    markers with an asterisk.

    Parameters
    ----------
    path : str or Path
    analysis : AccuracyAnalysis
    alpha : float, default=0.05
    title : str, optional
    force : bool, default=False

    Returns
    -------
    Path
    """
    c = analysis.correlation
    x = np.arange(1, len(analysis.layers) + 1)
    sig = c.pearson_p_bonferroni < alpha
    fig = new_figure((max(4.0, 0.45 * len(x) + 2.0), 3.4))
    ax = fig.add_subplot()
    ax.axhline(0, color="0.6", lw=0.8)
    ax.plot(x, c.pearson_r, color="tab:red", lw=1)
    ax.scatter(x[~sig], c.pearson_r[~sig], facecolors="white", edgecolors="tab:red", zorder=3,
               label="n.s.")
    ax.scatter(x[sig], c.pearson_r[sig], color="tab:red", zorder=3,
               label=f"Bonferroni p < {alpha:g}")
    for xi, r in zip(x[sig], c.pearson_r[sig]):
        ax.annotate("*", (xi, r), textcoords="offset points", xytext=(0, 5), ha="center")
    ax.set_xticks(x)
    ax.set_xticklabels(analysis.layers, rotation=60, ha="right", fontsize=7)
    ax.set_ylabel("Pearson r (sparseness, accuracy)")
    ax.legend(fontsize=8)
    ax.set_title(title or f"correlation across {c.n} categories (tau along layers "
                          f"{c.tau:.2f}, p={c.tau_pvalue:.2g})", fontsize=9)
    return save_figure(fig, path, force=force)
