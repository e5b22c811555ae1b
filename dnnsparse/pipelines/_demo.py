"""Networks through the sparse-coding analysis, and the embedded demo (``db_demo``).

Liu, Zhen & Liu (2020) extract per-category unit means of every ReLU layer of a
network and measure their population sparseness; :mod:`._psi` holds the
analysis itself, this module the pipeline from a network to its results:

- :func:`relu_layers` -- a network's ``*_relu`` layers (the paper's Conv#/FC#);
- :func:`network_sparseness` -- extraction (per-category, per-channel means) plus
  :func:`~dnnsparse.pipelines.activation_sparseness`;
- :func:`run_demo` -> :class:`DemoResult`, :func:`format_demo` -- the embedded demo
  (photographs, EfficientNet-Lite0 intact vs weight-permuted, optionally Top-K,
  AlexNet when its weights are cached).
"""
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError, WeightsUnavailableError
from ..io import atomic_output_dir, check_output_dir
from ..utils.validation import check_choice
from ..algo.sparseness import UNIT_MODES

__all__ = ["DemoResult", "format_demo", "network_sparseness", "relu_layers", "run_demo"]

log = logging.getLogger(__name__)



def relu_layers(dnn):
    """The network's ``*_relu`` layers in forward order (the paper's Conv#/FC#)."""
    return [l for l in dnn.layers if l.endswith("_relu")]


def network_sparseness(dnn, stim, layers=None, *, out, measure="psi", unit="channel",
                       force=False, batch_size=32, workers=None, show_progress=False):
    """Extract per-category unit means of a network and measure their sparseness.

    Activations are averaged per category in the extraction
    (``aggregate="label"``) and, for ``unit="channel"``, spatially per channel
    (``pool="mean"``) -- exactly what PSI needs -- and written to ``out``
    (``.act.h5``). ``unit="position"`` keeps every element (large files).

    Parameters
    ----------
    dnn : DNN
    stim : Stimulus
        With a ``label`` column (and optionally ``condition`` names).
    layers : list of str, optional
        Default: :func:`relu_layers`.
    out : str or Path
    measure : str, default="psi"
    unit : {"channel", "position"}, default="channel"
    force, batch_size, workers, show_progress
        As in :meth:`DNN.extract`.

    Returns
    -------
    SparsenessResult
    """
    from ._psi import activation_sparseness, category_names

    if stim.labels is None:
        raise InputError("the stimulus table has no 'label' column to group stimuli by.")
    layers = relu_layers(dnn) if layers is None else list(layers)
    check_choice(unit, UNIT_MODES, name="unit")
    act = dnn.extract(stim, layers, pool="mean" if unit == "channel" else None,
                      aggregate="label", out=out, force=force, batch_size=batch_size,
                      workers=workers, show_progress=show_progress)
    with act:
        return activation_sparseness(act, names=category_names(stim.labels,
                                                                stim.columns.get("condition")),
                                     layers=layers, measure=measure, unit=unit)


def _demo_variants(net, *, seed, lesion_kind, topk, topk_mode, image_size):
    """[(label, kind, DNN)]: the intact network, its lesion, and Top-K when asked."""
    from ..model import lesion
    from ..model import load_dnn
    from ..model import insert_topk

    def build():
        # offline: no download attempts (the demo promises no network)
        dnn = load_dnn(net, weights="imagenet", offline=True)
        dnn.input_size = (image_size, image_size)
        return dnn

    variants = [(net, "intact", build())]
    variants.append((f"{net}_lesion", f"lesion {lesion_kind}",
                     lesion(build(), lesion_kind, seed=seed)))
    if topk:
        dnn = build()
        insert_topk(dnn, topk, mode=topk_mode)       # recorded in dnn.topk and its files
        variants.append((f"{net}_topk", f"top-k {dnn.topk_attrs()['topk']}", dnn))
    return variants


@dataclass
class DemoResult:
    """What :func:`run_demo` computed.

    Attributes
    ----------
    out_dir, stim_path : Path
    kind : str
        "photographs" or "shapes".
    n_categories, n_per_category, image_size : int
    unit : str
    networks : dict
        ``{net: {variant label: (description, SparsenessResult)}}``.
    skipped : dict
        ``{net: reason}`` for networks whose weights were not available.
    written : list of Path
    """

    out_dir: Path
    stim_path: Path
    kind: str
    n_categories: int
    n_per_category: int
    image_size: int
    unit: str
    networks: dict
    skipped: dict
    written: list


def run_demo(out_dir, *, net="efficientnet_lite0", extra_nets=("alexnet",), n_per_category=12,
             seed=0, image_size=224, categories=None, lesion_kind="weights", topk=None,
             topk_mode="keep", unit="channel", batch_size=32, workers=None, force=False,
             show_progress=False):
    """The whole paper's pipeline on embedded stimuli, offline.

    Writes ``out_dir/stimuli/`` and ``stimuli.stim.csv`` (see
    :func:`~dnnsparse.pipelines.make_demo_stimuli`), and for every network
    variant ``<label>.act.h5`` (per-category channel means of the ReLU layers) and
    ``<label>/`` (:func:`~dnnsparse.pipelines.write_psi_outputs`), plus
    ``<net>_medians.png`` comparing the variants (the paper's Fig. 1B vs 3B).

    Parameters
    ----------
    out_dir : str or Path
    net : str, default="efficientnet_lite0"
        Main network (its ImageNet weights must be available offline).
    extra_nets : sequence of str, default=("alexnet",)
        Further networks, analysed when their ImageNet weights are cached and
        skipped (one log line) otherwise.
    n_per_category, seed, image_size, categories
        Stimuli (see :func:`make_demo_stimuli`); ``seed`` also seeds the lesion.
    lesion_kind : str, default="weights"
        Lesion of the comparison network (:data:`dnnsparse.model.LESIONS`).
    topk : dict, optional
        ``{layer: fraction}``: add the main network with Top-K at these layers.
    topk_mode : {"keep", "mean", "inverse"}, default="keep"
        See :func:`~dnnsparse.model.topk_sparsify`.
    unit : {"channel", "position"}, default="channel"
        Units of the populations (see :func:`network_sparseness`).
    batch_size, workers, force, show_progress

    Returns
    -------
    DemoResult
    """
    from ..base.stimulus import Stimulus
    from .. import viz
    from ._demo_stimuli import demo_categories, make_demo_stimuli
    from ._psi import write_psi_outputs

    out = check_output_dir(out_dir, force=force)         # refuse before any work
    check_choice(unit, UNIT_MODES, name="unit")
    networks, skipped = {}, {}
    # The folder is written as a whole: a failed or interrupted demo leaves nothing.
    with atomic_output_dir(out, force=force) as tmp:
        stim_path = make_demo_stimuli(tmp, n_per_category=n_per_category, size=image_size,
                                      seed=seed, categories=categories, force=True,
                                      show_progress=show_progress)
        stim = Stimulus.load(stim_path)
        written = [stim_path]
        for i, name in enumerate(dict.fromkeys([net, *extra_nets])):
            try:
                variants = _demo_variants(name, seed=seed, lesion_kind=lesion_kind,
                                          topk=topk if i == 0 else None, topk_mode=topk_mode,
                                          image_size=image_size)
            except WeightsUnavailableError as exc:
                if i == 0:
                    raise
                skipped[name] = str(exc)
                log.info("%s skipped: its ImageNet weights are not available offline; one "
                         "db_act -net %s run with internet access caches them (%s)", name,
                         name, " ".join(str(exc).split()))
                continue
            networks[name] = {}
            for label, description, dnn in variants:
                res = network_sparseness(dnn, stim, out=tmp / f"{label}.act.h5", unit=unit,
                                         force=True, batch_size=batch_size, workers=workers,
                                         show_progress=show_progress)
                written.append(tmp / f"{label}.act.h5")
                written += write_psi_outputs(res, tmp / label, force=True)
                networks[name][label] = (description, res)
            written.append(viz.plot_medians(
                tmp / f"{name}_medians.png",
                {desc: res for desc, res in networks[name].values()}, title=name, force=True))

    def final(path):            # the name a file has once the folder is in place
        path = Path(path)
        return out / path.relative_to(tmp) if path.is_relative_to(tmp) else path

    return DemoResult(out, final(stim_path), demo_categories()[1],
                      len(np.unique(stim.labels)), n_per_category, image_size, unit,
                      networks, skipped, [final(p) for p in written])


def format_demo(demo):
    """Per-layer median PSI [IQR] of every variant and each one's Kendall trend."""
    lines = [f"dnnsparse demo: {demo.n_categories} categories ({demo.kind}) x "
             f"{demo.n_per_category} random views, {demo.image_size}x{demo.image_size} px; "
             f"PSI of per-category {demo.unit} means, median [IQR] over categories"]
    for net, variants in demo.networks.items():
        results = [res for _, res in variants.values()]
        heads = [desc for desc, _ in variants.values()]
        width = max(10, *(len(l) for l in results[0].layers))
        lines += ["", f"{net}", f"{'layer':<{width}}" + "".join(f"  {h:>22}" for h in heads)]
        summaries = [r.summary() for r in results]
        for j, layer in enumerate(results[0].layers):
            cells = [f"{s['median'][j]:.3f} [{s['iqr'][j]:.3f}]" for s in summaries]
            lines.append(f"{layer:<{width}}" + "".join(f"  {c:>22}" for c in cells))
        for desc, res in variants.values():
            rows = res.trend_rows()
            lines.append(f"Kendall tau along layers, {net} {desc}:")
            width = max(len(row["label"]) for row in rows)
            lines += [f"  {row['label']:<{width}}  {row['tau']:+.3f} (p={row['p']:.2g}, "
                      f"n={row['n']} {row['n_of']})" for row in rows]
    for net in demo.skipped:
        lines.append(f"({net} skipped: its ImageNet weights are not in the torch cache; one "
                     f"db_act -net {net} run with internet access caches them)")
    lines.append(f"outputs in {demo.out_dir}")
    return "\n".join(lines)
