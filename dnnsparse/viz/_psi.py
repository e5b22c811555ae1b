"""Figures of the sparse-coding analysis (Liu, Zhen & Liu, 2020), saved atomically.

- :func:`plot_distributions` -- Fig. 1A: the distribution of category PSI in every
  layer, as a ridgeline (one row per layer, early layers at the top) with each
  layer's median and IQR marked.
- :func:`plot_medians` -- Fig. 1B / 3B: median PSI along the layers with an IQR
  band, for one or several networks (intact vs lesioned) on the same layers.
- :func:`plot_file_medians` -- Fig. 3: the same for several activation files
  (``db_psi -act`` with several files), one line per file.
- :func:`plot_correlation` -- Fig. 2: PSI-accuracy correlation per layer,
  Bonferroni-significant layers marked.

Every title names what was measured (``result.source``: the network and whether
it was intact or lesioned, from the ``.act.h5`` provenance). Built on
:class:`matplotlib.figure.Figure` with the Agg canvas (no pyplot, no change to
the caller's backend), by :mod:`dnnsparse.viz._figures`.
"""
from pathlib import Path

import numpy as np

from ._figures import new_figure, save_figure

__all__ = ["plot_correlation", "plot_distributions", "plot_file_medians",
           "plot_medians"]

_BOUNDED = ("psi", "lifetime", "hoyer", "active")   # measures in [0, 1]
#: Axis names of the measures (others: the measure's key).
_MEASURE_LABELS = {"psi": "population sparseness (PSI)",
                   "lifetime": "lifetime sparseness",
                   "hoyer": "Hoyer sparseness",
                   "kurtosis": "kurtosis",
                   "active": "fraction of active units"}


def _measure_label(measure):
    return _MEASURE_LABELS.get(measure, measure)


def _short(measure):
    return "PSI" if measure == "psi" else measure


def _with_source(text, source):
    return f"{text}\n{source}" if source else text


def _bins(values, measure, bounded=None):
    """Bin edges over the data's range (padded by 5 %, within [0, 1] for a bounded
    measure); about 2 sqrt(n) bins (12 to 40)."""
    n_bins = int(np.clip(2 * np.sqrt(max(len(v) for v in values)), 12, 40))
    finite = np.concatenate([v[np.isfinite(v)] for v in values])
    lo, hi = (finite.min(), finite.max()) if finite.size else (0.0, 1.0)
    pad = 0.05 * (hi - lo) if hi > lo else 0.05
    lo, hi = lo - pad, hi + pad
    if measure in _BOUNDED if bounded is None else bounded:
        lo, hi = max(lo, 0.0), min(hi, 1.0)
    return np.linspace(lo, hi, n_bins + 1)


#: Up to this many values per layer each one is drawn as a tick under its ridge.
_RUG_MAX = 60


def plot_distributions(path, result, *, title=None, force=False):
    """The distribution of the categories' (or units') sparseness in every layer.

    A ridgeline: one row per layer, early layers at the top, each a histogram
    of the proportion of categories per bin (all rows on one scale), with the
    layer's median (white dot) and interquartile range (black bar) on its
    baseline and, for up to 60 categories, every category as a tick below it.
    The paper's Fig. 1A draws the layers as overlapping curves in one axes,
    which cannot be told apart beyond a few layers.

    Parameters
    ----------
    path : str or Path
        Output image; the suffix (png, pdf, svg) picks the format.
    result : SparsenessResult
    title : str, optional
        Default: the measure and ``result.source``.
    force : bool, default=False

    Returns
    -------
    Path
    """
    from matplotlib import colormaps

    layers, n = list(result.layers), len(result.layers)
    finite = [v[np.isfinite(v)] for v in result.values]
    bins = _bins(result.values, result.measure, getattr(result, "bounded", None))
    props = np.array([np.histogram(v, bins=bins)[0] / max(v.size, 1) for v in finite])
    scale = 0.72 / max(props.max(), 1e-12)
    colours = colormaps["viridis"](np.linspace(0.15, 0.85, n))
    fig = new_figure((6.4, max(2.6, 0.36 * n + 1.4)))
    ax = fig.add_subplot()
    for i, (v, p, colour) in enumerate(zip(finite, props, colours)):
        base = n - 1 - i                                   # first layer at the top
        ax.stairs(base + p * scale, bins, baseline=base, fill=True, color=colour, alpha=0.8,
                  lw=0)
        ax.stairs(base + p * scale, bins, baseline=base, color="0.25", lw=0.5)
        if not v.size:
            continue
        if v.size <= _RUG_MAX:
            ax.vlines(v, base - 0.2, base - 0.04, color="0.3", lw=0.6)
        q25, med, q75 = np.percentile(v, [25, 50, 75], method="midpoint")
        ax.plot([q25, q75], [base] * 2, color="black", lw=2.5, solid_capstyle="butt",
                zorder=4)
        ax.plot(med, base, "o", ms=4.5, mfc="white", mec="black", mew=0.9, zorder=5)
    ax.set_yticks(np.arange(n)[::-1], labels=layers, fontsize=7 if n > 12 else 8)
    ax.set_ylim(-0.35, n - 0.1)
    ax.set_xlim(bins[0], bins[-1])
    ax.set_xlabel(_measure_label(result.measure))
    thing = "units" if result.per_unit else "categories"
    ax.set_ylabel("layer (input at the top)")
    ax.grid(axis="x", color="0.9", lw=0.6)
    ax.set_axisbelow(True)
    what = (f"{_short(result.measure)} of every unit" if result.per_unit else
            f"{_short(result.measure)} of {result.n_categories} categories")
    ticks = (f", ticks: {thing}" if max(v.size for v in finite) <= _RUG_MAX else "")
    ax.set_title(title or _with_source(
        f"{what} per layer\nheight: proportion of {thing} per bin (tallest "
        f"{props.max():.0%}); dot: median, bar: IQR{ticks}",
        getattr(result, "source", "")), fontsize=9)
    return save_figure(fig, path, force=force)


def plot_medians(path, results, *, title=None, force=False):
    """Median along the layers with an IQR band, one line per result.

    Parameters
    ----------
    path : str or Path
    results : mapping {label: SparsenessResult}
        Results on the same layers (e.g. intact and lesioned network), whose names
        label the axis; results on different layers are drawn by layer position
        (1 = the first layer). The labels go into the legend (an empty label: no
        legend).
    title : str, optional
        Default: the measure, and the network (``source``) when all results
        share one or there is a single result.
    force : bool, default=False

    Returns
    -------
    Path
    """
    first = next(iter(results.values()))
    shared = all(list(r.layers) == list(first.layers) for r in results.values())
    x = np.arange(1, max(len(r.layers) for r in results.values()) + 1)
    fig = new_figure((max(4.5, 0.45 * len(x) + 2.0), 3.8))
    ax = fig.add_subplot()
    for label, res in results.items():
        s = res.summary()
        line, = ax.plot(x[:len(res.layers)], s["median"], marker="o", ms=4, label=label or None)
        ax.fill_between(x[:len(res.layers)], s["q25"], s["q75"], color=line.get_color(),
                        alpha=0.2, lw=0)
    ax.set_xticks(x)
    if shared:
        ax.set_xticklabels(first.layers, rotation=60, ha="right", fontsize=7)
        ax.set_xlabel("layer (input → output)")
    else:                                   # different networks: their layers by position
        ax.set_xlabel("layer position (input → output; the layers differ)")
    what = "units" if first.per_unit else "categories"
    ax.set_ylabel(f"median {_short(first.measure)}\n(band: IQR over {what})")
    ax.grid(axis="y", color="0.9", lw=0.6)
    if any(results):
        ax.legend(fontsize=8)
    sources = {getattr(r, "source", "") for r in results.values()}
    source = sources.pop() if len(sources) == 1 and not any(results) else ""
    ax.set_title(title or _with_source(f"{_measure_label(first.measure)} along the layers",
                                       source), fontsize=10)
    return save_figure(fig, path, force=force)


def plot_file_medians(path, results, *, title=None, force=False):
    """The layer medians (IQR band) of several activation files, one line per file.

    The paper's Fig. 3 compares the intact and the weight-permuted network this
    way. Each line is labelled with the file's name and, when the file records
    it, what was measured (``result.source``: the network, intact or lesioned);
    :func:`plot_medians` draws them.

    Parameters
    ----------
    path : str or Path
    results : mapping {name: SparsenessResult}
        One result per file, e.g. :func:`~dnnsparse.pipelines.files_sparseness`.
    title : str, optional
        Default: the measure and the number of files.
    force : bool, default=False

    Returns
    -------
    Path

    Examples
    --------
    >>> plot_file_medians("medians.png", {"intact": a, "permuted": b})  # doctest: +SKIP
    """
    labels = {}
    for name, res in results.items():
        source = getattr(res, "source", "")
        bare = source in ("", f"{name}.act.h5") or Path(source).stem == name  # file name
        labels[name if bare else f"{name}: {source}"] = res
    first = next(iter(results.values()))
    return plot_medians(path, labels, force=force, title=title or (
        f"{_measure_label(first.measure)} along the layers\nof {len(results)} "
        f"activation files (line: median, band: IQR)"))


def plot_correlation(path, analysis, *, alpha=0.05, title=None, source="", force=False):
    """Pearson r between category sparseness and accuracy in every layer.

    Layers whose Bonferroni-corrected p is below ``alpha`` are drawn as filled
    markers with an asterisk.

    Parameters
    ----------
    path : str or Path
    analysis : AccuracyAnalysis
        With a correlation (``analysis.correlation`` not None).
    alpha : float, default=0.05
    title : str, optional
    source : str, optional
        What was measured (the network, intact or lesioned), added to the title.
    force : bool, default=False

    Returns
    -------
    Path
    """
    c = analysis.correlation
    x = np.arange(1, len(analysis.layers) + 1)
    sig = c.pearson_p_bonferroni < alpha
    fig = new_figure((max(4.5, 0.45 * len(x) + 2.0), 3.8))
    ax = fig.add_subplot()
    ax.axhline(0, color="0.6", lw=0.8)
    ax.plot(x, c.pearson_r, color="tab:red", lw=1)
    ax.scatter(x[~sig], c.pearson_r[~sig], facecolors="white", edgecolors="tab:red", zorder=3,
               label="n.s.")
    ax.scatter(x[sig], c.pearson_r[sig], color="tab:red", zorder=3,
               label=f"Bonferroni p < {alpha:g} ({sig.sum()} of {x.size} layers)")
    for xi, r in zip(x[sig], c.pearson_r[sig]):
        ax.annotate("*", (xi, r), textcoords="offset points", xytext=(0, 5), ha="center")
    ax.set_xticks(x)
    ax.set_xticklabels(analysis.layers, rotation=60, ha="right", fontsize=7)
    ax.set_xlabel("layer (input → output)")
    ax.set_ylabel(f"Pearson r across {c.n} categories\n(sparseness vs accuracy)")
    ax.set_ylim(-1.1, 1.15)                 # r on its full scale: strengths comparable
    ax.grid(axis="y", color="0.9", lw=0.6)
    ax.legend(fontsize=8, loc="best")
    ax.set_title(title or _with_source(
        f"sparseness-accuracy correlation per layer (Kendall tau of r along layers "
        f"{c.tau:+.2f}, p={c.tau_pvalue:.2g})", source), fontsize=9)
    return save_figure(fig, path, force=force)
