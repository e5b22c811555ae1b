"""db_rsa beyond layer x ROI RDMs: model RDMs, CKA, the split-half ceiling, RDM figures.

- :func:`model_rdms` -- ``-model-rdm`` specs (files or simulated models) as RDMs of
  the analysis items; :func:`model_tables` compares them with layers and ROIs
  through :func:`~dnnsparse.pipelines.rsa_table` (same comparisons and tests).
- :func:`layer_grams`, :func:`roi_grams`, :func:`cka_table` -- ``-method cka``.
- :func:`split_half_ceilings`, :func:`add_split_half_columns` -- ``-groups``.
- :func:`write_rdm_figures` -- every RDM as an image and an MDS plot.

Examples
--------
>>> models = model_rdms(["animacy=category:animate", "linear"], items, stim)  # doctest: +SKIP
"""
import logging
from pathlib import Path

import numpy as np

from ..algo.rsa import (PATTERNS, average_by_label, categorical_rdm, cka_matrix,
                        cka_permutation_test, gram_matrix, mds_embedding, noisy_rdm,
                        patterned_rdm, random_rdm, split_half_ceiling, zscore_patterns)
from ..base.rdm import condensed_to_square, square_to_condensed
from ..errors import InputError, MissingFileError
from ..io.rdm import MODEL_RDM_SUFFIXES, read_model_rdm
from ..utils.progress import progress
from ._encoding import safe_name
from ._mapping import rsa_table
from ._rsa import _show

__all__ = ["SIMULATED_MODELS", "add_split_half_columns", "cka_table", "item_values",
           "layer_grams", "model_rdms", "model_tables", "roi_grams", "split_half_ceilings",
           "write_rdm_figures"]

log = logging.getLogger(__name__)

#: The simulated -model-rdm specs (besides files).
SIMULATED_MODELS = {
    "category:COL": "0 for items with the same value of stimulus column COL, 1 otherwise",
    "linear": "DNNBrain's patterned RDM |i - j| (item order)",
    "inverse": "DNNBrain's inverse pattern n - 1 - |i - j|",
    "random": "uniform random RDM (seeded by -seed)",
    "noisy:linear|inverse:SD": "the pattern plus symmetric Gaussian noise of SD per cell "
                               "(seeded by -seed)",
}


# -- model RDMs ---------------------------------------------------------------------
def item_values(stim, items, column, *, stim_path="the stimulus table"):
    """A stimulus column's value for every item: per stimulus, or per category
    (the column must then be constant within each label)."""
    if stim is None:
        raise InputError(f"column {column!r} is a column of the stimulus table; give -stim.")
    values = np.asarray(stim[column])          # InputError names the table's columns
    if not items.by_category:
        return values
    labels = stim.labels
    if labels is None:
        raise InputError(f"{stim_path} has no 'label' column: per-category values of "
                         f"{column!r} need one.")
    out = []
    for cat in items.categories:
        found = np.unique(values[labels == cat])
        if len(found) != 1:
            raise InputError(f"column {column!r} of {stim_path} has {len(found)} values "
                             f"{_show(found)} within category {cat}; a per-category model "
                             "needs one value per category.")
        out.append(found[0])
    return np.asarray(out)


def _split_name(spec):
    if "=" in spec and not Path(spec).exists():
        name, rest = spec.split("=", 1)
        if name and rest:
            return name, rest
    return None, spec


def _simulated(text, n, items, stim, stim_path, seed):
    parts = text.split(":")
    if parts[0] == "category" and len(parts) == 2 and parts[1]:
        return categorical_rdm(item_values(stim, items, parts[1], stim_path=stim_path))
    if text in PATTERNS:
        return patterned_rdm(n, pattern=text)
    if text == "random":
        return random_rdm(n, seed=seed)
    if parts[0] == "noisy" and len(parts) == 3 and parts[1] in PATTERNS:
        try:
            sd = float(parts[2])
        except ValueError:
            sd = -1.0
        if not np.isfinite(sd) or sd < 0:
            raise InputError(f"-model-rdm {text}: the noise SD {parts[2]!r} must be a "
                             "number >= 0.")
        return noisy_rdm(patterned_rdm(n, pattern=parts[1]), noise=sd, seed=seed)
    return None


def _match_items(vector, labels, items, path):
    """The file's RDM in the order of the analysis items (by their names)."""
    if labels is None or items.names is None:
        return vector
    have = [str(v) for v in labels]
    want = [str(v) for v in items.names]
    if have == want:
        return vector
    if sorted(have) == sorted(want) and len(set(want)) == len(want):
        pos = {v: i for i, v in enumerate(have)}
        order = np.array([pos[v] for v in want])
        log.info("model RDM %s: items reordered by name to the analysis order.", path)
        return square_to_condensed(condensed_to_square(vector)[np.ix_(order, order)])
    raise InputError(f"model RDM {path} names its items {_show(have)} but the analysis "
                     f"items are {_show(want)}; give the RDM of the same items (or a table "
                     "without item names, in the analysis order).")


def model_rdms(specs, items, stim=None, *, stim_path=None, seed=0):
    """``{name: condensed RDM}`` of ``-model-rdm`` specs, rows lined up with ``items``.

    Parameters
    ----------
    specs : list of str
        ``[NAME=]FILE`` (``.rdm.h5``, ``.npy``, CSV/TSV square or condensed; see
        :func:`~dnnsparse.io.rdm.read_model_rdm`) or ``[NAME=]SIM`` with SIM one of
        :data:`SIMULATED_MODELS`. Unnamed models are named by the file stem
        (dataset names for ``.rdm.h5``) or the spec.
    items : Items
        Their number must be known (from -stim, -act or the brain data).
    stim : Stimulus, optional
        For ``category:COL``.
    stim_path : str, optional
    seed : int
        The k-th spec's random numbers come from ``default_rng([seed, k])``.

    Returns
    -------
    dict str -> ndarray (n_pairs,)
    """
    n = items.n_items
    if n is None:
        raise InputError("-model-rdm: the number of items is unknown; give -stim, -act or "
                         "-nif too.")
    out = {}
    for k, spec in enumerate(specs):
        name, text = _split_name(spec)
        if Path(text).exists() or text.lower().endswith(MODEL_RDM_SUFFIXES):
            if not Path(text).exists():
                raise MissingFileError(f"model RDM not found: {text}.")
            found = [(label, _match_items(v, labels, items, text))
                     for label, v, labels in read_model_rdm(text, name=name, n_items=n)]
        else:
            vector = _simulated(text, n, items, stim, stim_path,
                                np.random.default_rng([int(seed), k]))
            if vector is None:
                raise InputError(f"-model-rdm {spec}: no such file, and not a simulated "
                                 f"model ({', '.join(SIMULATED_MODELS)}).")
            found = [(name or text, vector)]
        for label, vector in found:
            if label in out:
                raise InputError(f"two model RDMs are named {label!r}; name them with "
                                 "NAME=FILE.")
            out[label] = vector
    return out


def _rename(table, old, new):
    return {(new if k == old else k): v for k, v in table.items()}


def model_tables(models, *, dnn=None, brain=None, subjects=None, ceilings=None, method,
                 n_perm=0, n_boot=0, ci=0.95, seed=None, iter_axis=None,
                 show_progress=False):
    """Model RDMs against ROIs and against layers, with the tests of ``rsa_table``.

    Returns
    -------
    dict
        ``"model_roi"``: columns ``model, roi, ...`` (the brain RDM permuted; with
        several subjects their noise ceiling, with ``ceilings`` the split-half one);
        ``"model_layer"``: columns ``layer, [iter], model, ...`` (the model permuted).
    """
    out = {}
    kw = dict(method=method, n_perm=n_perm, n_boot=n_boot, ci=ci, seed=seed,
              show_progress=show_progress)
    if brain:
        table = rsa_table(models, brain, subjects=subjects, **kw)
        if ceilings:
            add_split_half_columns(table, ceilings)
        out["model_roi"] = _rename(table, "layer", "model")
    if dnn:
        out["model_layer"] = _rename(rsa_table(dnn, models, iter_axis=iter_axis, **kw),
                                     "roi", "model")
    return out


# -- split-half ceiling ---------------------------------------------------------------
def split_half_ceilings(path, stim, column, rois, *, stim_path=None, metric="correlation",
                        method="pearson", zscore=None, seed=None, show_progress=False):
    """Per ROI, the split-half ceiling of one subject over the runs in ``column``.

    Parameters
    ----------
    path : path-like
        The subject's brain data: one sample per row of ``stim`` (trials).
    stim : Stimulus
        With a ``label`` column (the items: categories) and ``column`` (the runs).
    column : str
    rois : ROISet or callable
        As in :func:`~dnnsparse.pipelines.subject_rdms`.
    metric, method, zscore, seed
        As for the RDMs and their comparison.
    show_progress : bool, default=False

    Returns
    -------
    dict str -> SplitHalfCeiling
    """
    from ..base.brain import BrainData

    runs = np.asarray(stim[column])
    if stim.labels is None:
        raise InputError(f"-groups: {stim_path} has no 'label' column (the items that "
                         "recur in every run).")
    brain = BrainData.load(path)
    if brain.n_samples != len(stim):
        raise InputError(f"-groups: {path} has {brain.n_samples} samples but {stim_path} "
                         f"has {len(stim)} rows; a split-half ceiling needs one row per "
                         "brain sample (trial), with its run in column "
                         f"{column!r}.")
    if callable(rois):
        rois = rois(brain.space)
    rois = rois.to_space(brain.space)
    out = {}
    for name, members in progress(list(zip(rois.names, rois.members)), desc="split halves",
                                  unit="roi", enabled=show_progress):
        X = brain.data[:, members]
        if zscore:
            X = zscore_patterns(X, axis=zscore)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[name] = split_half_ceiling(X, stim.labels, runs, metric=metric,
                                           method=method, seed=seed)
    return out


def add_split_half_columns(table, ceilings):
    """Add ``split_half_r, noise_reliability, noise_ceiling`` of each row's ROI (in place)."""
    rois = table["roi"]
    table["split_half_r"] = [ceilings[r].split_half_r for r in rois]
    table["noise_reliability"] = [ceilings[r].reliability for r in rois]
    table["noise_ceiling"] = [ceilings[r].ceiling for r in rois]
    return table


# -- CKA ------------------------------------------------------------------------------
def _gram(X, labels, spec, zscore):
    X = np.asarray(X, dtype=np.float64).reshape(len(X), -1)
    if zscore:
        X = zscore_patterns(X, axis=zscore)
    if labels is not None:
        X = average_by_label(X, labels)[0]
    return gram_matrix(X, kernel=spec.kernel, sigma=spec.sigma)


def layer_grams(act, layers, spec, *, labels=None, zscore=None, show_progress=False):
    """``{layer: Gram matrix (n_items, n_items)}`` of the flattened layers."""
    return {layer: _gram(act.get(layer), labels, spec, zscore)
            for layer in progress(layers, desc="layer Gram matrices", unit="layer",
                                  enabled=show_progress)}


def roi_grams(path, items, rois, spec, *, zscore=None, show_progress=False):
    """``{roi: Gram matrix}`` of one brain data file, rows lined up with ``items``.

    Returns
    -------
    (dict, ROISet)
        The Gram matrices and the ROIs (built by ``rois(space)`` when callable).
    """
    from ..base.brain import BrainData

    brain = BrainData.load(path)
    items.anchor(brain.n_samples, path)
    group = items.group(brain.n_samples, path)
    if callable(rois):
        rois = rois(brain.space)
    rois = rois.to_space(brain.space)
    return {name: _gram(brain.data[:, members], group, spec, zscore)
            for name, members in progress(list(zip(rois.names, rois.members)),
                                          desc="ROI Gram matrices", unit="roi",
                                          enabled=show_progress)}, rois


def cka_table(rows, cols, spec, *, n_perm=0, seed=None, col_name="roi"):
    """Tidy table of the CKA of every row representation with every column one.

    Parameters
    ----------
    rows, cols : dict str -> Gram matrix (n, n)
        E.g. layers and ROIs (or the layers of two networks).
    spec : CKASpec
    n_perm : int
        Permutations of the column side's stimuli for p (0: NaN); with an int seed
        every column sees the same permutations.
    seed : None or int
    col_name : str
        Name of the column side's column (``roi``, ``layer2``).

    Returns
    -------
    dict str -> list
        ``layer, <col_name>, method, score, p, n_items``; rows column-major.
    """
    A = np.stack(list(rows.values()))
    B = np.stack(list(cols.values()))
    if A.shape[1:] != B.shape[1:]:
        raise InputError(f"CKA: the two sides have {A.shape[1]} and {B.shape[1]} items; "
                         "they must describe the same stimuli or categories.")
    with np.errstate(invalid="ignore", divide="ignore"):
        scores = cka_matrix(A, B, debiased=spec.debiased)
    bad = [name for name, row in zip(rows, scores) if np.isnan(row).all()]
    if bad:
        log.warning("CKA is undefined (no variance) for %s; their scores are NaN.", bad)
    cols_out = {k: [] for k in ("layer", col_name, "method", "score", "p", "n_items")}
    for j, target in enumerate(cols):
        p = np.full(len(A), np.nan)
        if n_perm:
            with np.errstate(invalid="ignore", divide="ignore"):
                p = cka_permutation_test(B[j], A, debiased=spec.debiased, n_perm=n_perm,
                                         seed=seed).pvalue
            p = np.where(np.isnan(scores[:, j]), np.nan, p)
        cols_out["layer"] += list(rows)
        cols_out[col_name] += [target] * len(A)
        cols_out["method"] += [spec.name] * len(A)
        cols_out["score"] += scores[:, j].tolist()
        cols_out["p"] += np.asarray(p, dtype=np.float64).tolist()
        cols_out["n_items"] += [A.shape[1]] * len(A)
    return cols_out


# -- RDM figures ----------------------------------------------------------------------
def _figure_items(items, stim, sort_by, stim_path):
    n = items.n_items
    names = np.asarray(items.names) if items.names is not None else np.arange(1, n + 1)
    groups = None
    if sort_by:
        groups = item_values(stim, items, sort_by, stim_path=stim_path)
        order = np.argsort(groups, kind="stable")
    else:
        order = np.arange(n)
        if not items.by_category and items.labels is not None and len(items.labels) == n:
            groups = items.labels              # colour the MDS by category
    return names, groups, order


def write_rdm_figures(folder, rdms, items, *, stim=None, sort_by=None, stim_path=None,
                      seed=0, metric="correlation"):
    """Every RDM as an image (``rdm_<kind>_<name>.png``) and an MDS plot (``mds_...``).

    Parameters
    ----------
    folder : Path
        Created if needed (inside the command's staging folder).
    rdms : dict kind -> dict name -> array (n_pairs,) or (n_iter, n_pairs)
        E.g. ``{"layer": dnn, "roi": brain, "model": models}``; stacks of more than
        one RDM (per channel or position) are left out.
    items : Items
    stim : Stimulus, optional
    sort_by : str, optional
        A stimulus column: items are shown sorted by it (stable), its runs of equal
        values named on the axes and colouring the MDS plot.
    seed : int
        MDS ``random_state``.
    metric : str
        Named in the colour bar.

    Returns
    -------
    list of str
        File names written in ``folder``.
    """
    from ..viz import plot_mds, plot_rdm

    names, groups, order = _figure_items(items, stim, sort_by, stim_path)
    folder.mkdir(parents=True, exist_ok=True)
    written, skipped = [], 0
    for kind, group in rdms.items():
        for name, rdm in group.items():
            rdm = np.asarray(rdm, dtype=np.float64)
            if rdm.ndim == 2:
                if len(rdm) != 1:
                    skipped += 1
                    continue
                rdm = rdm[0]
            if not np.isfinite(rdm).all():
                log.warning("no figure of %s %r: its RDM has undefined entries.", kind, name)
                continue
            stem = f"{kind}_{safe_name(name)}"
            while f"rdm_{stem}.png" in written:
                stem += "_"
            square = condensed_to_square(rdm)[np.ix_(order, order)]
            plot_rdm(folder / f"rdm_{stem}.png", square, names=names[order],
                     groups=None if not sort_by else groups[order],
                     title=f"{kind} {name}",
                     cbar_label=(f"dissimilarity ({metric})" if kind != "model"
                                 else "model dissimilarity"),
                     force=True)
            coords, stress = mds_embedding(rdm, seed=seed)
            plot_mds(folder / f"mds_{stem}.png", coords, names=names, groups=groups,
                     title=f"{kind} {name}", stress=stress, force=True)
            written += [f"rdm_{stem}.png", f"mds_{stem}.png"]
    if skipped:
        log.info("no RDM figures of %d per-channel/position RDM stacks.", skipped)
    return written
