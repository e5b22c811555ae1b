"""Files in, RDMs and maps out: the glue of db_rsa and db_map.

- :func:`load_rsa_inputs` and :class:`Items` -- the stimulus table and activation, and
  what the RDMs' rows are (stimuli or categories): how every input's rows line up with
  them.
- :func:`subject_rdms` -- per subject, the RDM of every ROI of a brain data file.
- :func:`read_psi_summary`, :func:`mapping_sparseness` -- db_map's PSI columns.
- :func:`write_best_layer_maps`, :func:`render_best_layer` -- db_map's brain maps in
  the input's format, and their nilearn rendering.

The RDMs, comparisons and the layer-to-ROI mapping themselves are in :mod:`._mapping`.
"""
import logging

import numpy as np

from ..errors import InputError
from ._align import align_stimuli, example_rows
from ._mapping import brain_rdms, layer_psi, roi_psi, row_grouping

__all__ = ["Items", "load_rsa_inputs", "mapping_sparseness", "read_psi_summary",
           "render_best_layer", "subject_rdms", "write_best_layer_maps"]

log = logging.getLogger(__name__)

#: kind of brain space -> (label map suffix, value map suffix); None: the input's own.
_MAP_SUFFIXES = {"volume": (None, None),
                 "cifti": (".dlabel.nii", ".dscalar.nii"),
                 "gifti": (".label.gii", ".func.gii")}


# -- lining up stimuli, categories, layers and brain samples ----------------------
def load_rsa_inputs(stim=None, act=None, *, layers=None, label_col="label"):
    """Stimulus table and activation (either may be None) from their paths.

    Parameters
    ----------
    stim, act : path-like or None
        Stimulus table, ``.act.h5`` file.
    layers : list of str, optional
        Checked against the activation's layers (:class:`UnknownLayerError` names them).
    label_col : str
        The table's column of categories (``-label-col``;
        :meth:`~dnnsparse.base.Stimulus.with_label_column`); ``"label"`` keeps the
        table as it is, also when it has no label column.

    Returns
    -------
    (Stimulus or None, Activation or None)
    """
    from ..base.activation import Activation
    from ..base.stimulus import Stimulus

    stim = Stimulus.load(stim) if stim else None
    if stim is not None and label_col != "label":
        stim = stim.with_label_column(label_col)
    act = Activation.load(act) if act else None
    if act is not None and layers:
        for layer in layers:
            act.shape(layer)                   # UnknownLayerError names the file's layers
    return stim, act


class Items:
    """What the RDMs' rows are (stimuli or categories) and how inputs line up.

    Parameters
    ----------
    stim : Stimulus or None
    stim_path : str or None
    act : Activation or None
    act_path : str or None
    cate : bool
        -cate: rows are categories (sorted labels of -stim).
    """

    def __init__(self, stim, stim_path, act, act_path, *, cate):
        self.labels = stim.labels if stim is not None else None
        per_cat_act = act is not None and act.category_labels is not None
        self.by_category = bool(cate or per_cat_act)
        if cate and self.labels is None and not per_cat_act:
            raise InputError("-cate averages stimuli by label; give -stim with a 'label' "
                             "column." if stim is None else
                             f"-cate: {stim_path} has no 'label' column.")
        self.categories = np.unique(self.labels) if self.labels is not None else None
        if per_cat_act:
            cats = np.asarray(act.category_labels)
            if self.categories is not None and not np.array_equal(
                    self.categories.astype(str), cats.astype(str)):
                raise InputError(f"{act_path} holds {len(cats)} categories "
                                 f"{_show(cats)} but the labels of {stim_path} are "
                                 f"{_show(self.categories)}; use the stimulus table the "
                                 "activation was made from.")
            self.categories = cats
        self.n_stim = len(stim) if stim is not None else (
            act.n_stim if act is not None and not per_cat_act else None)
        self.reference = str(stim_path if stim is not None else act_path)
        self.act_group = None
        #: labels of the activation file's own rows (its examples for audio), or None
        self.act_labels = None
        rows = (None if act is None or per_cat_act or stim is None else
                example_rows(act, stim.ids, stim_path=stim_path, act_path=act_path))
        if rows is not None:           # audio examples ID#k: averaged per row (-cate: label)
            self.act_labels = None if self.labels is None else self.labels[rows]
            self.act_group = (self.group(act.n_stim, act_path, labels=self.act_labels)
                              if self.by_category else rows)
        elif act is not None and not per_cat_act:
            act_labels = self.labels
            if stim is not None and act.n_stim == len(stim):
                aligned = align_stimuli(stim, act, stim_path=stim_path, act_path=act_path)
                if aligned is not stim and not self.by_category:
                    raise InputError(f"{act_path} holds the stimuli of {stim_path} in "
                                     "another order; the brain data follow the table's "
                                     "rows, so give the table in the activation file's "
                                     "order (or add -cate to compare categories).")
                act_labels = aligned.labels
            self.act_labels = act_labels
            self.act_group = self.group(act.n_stim, act_path, labels=act_labels)
        if self.by_category:
            self.names = self.categories
        elif stim is not None:
            self.names = stim.ids
        else:
            self.names = act.stim_ids if act is not None else None

    @property
    def n_categories(self):
        return None if self.categories is None else len(self.categories)

    @property
    def n_items(self):
        """Rows of the RDMs: categories (by category) or stimuli; None while unknown."""
        return self.n_categories if self.by_category else self.n_stim

    def group(self, n_rows, source, *, labels=None):
        """Labels averaging an input's rows into the items, or None (see row_grouping).

        ``labels`` are the input's own row labels when its rows are not in the stimulus
        table's order (an activation file whose rows were aligned by stimulus ID).
        """
        labels = self.labels if labels is None else labels
        try:
            return row_grouping(n_rows, labels=labels if self.by_category else None,
                                n_stim=self.n_stim, n_categories=self.n_categories,
                                by_category=self.by_category, source=str(source),
                                reference=self.reference)
        except InputError as exc:
            if not self.by_category and n_rows == self.n_categories:
                raise InputError(f"{exc} It has one sample per category: add -cate.") \
                    from None
            raise

    def anchor(self, n_rows, source):
        """Without -stim or -act, the first brain file fixes the number of items."""
        if self.n_stim is None and self.n_categories is None:
            self.n_stim, self.reference = n_rows, str(source)


def _show(values, n=6):
    values = [str(v) for v in values]
    return "[" + ", ".join(values[:n]) + (", ..." if len(values) > n else "") + "]"


def subject_rdms(paths, items, rois, *, metric="correlation", show_progress=False,
                 zscore=None, device=None, dtype="float64"):
    """Per subject, ``{roi: rdm}`` of its brain data file, rows lined up with ``items``.

    Parameters
    ----------
    paths : list of path-like
        One brain data file per subject, all in one space.
    items : Items
        The RDMs' rows; the first file fixes their number when neither a stimulus
        table nor an activation did.
    rois : ROISet or callable
        The ROIs, or ``rois(space)`` building them in the first subject's space (after
        that file was read and its rows checked, so that its errors come first).
    metric : str
        RDM distance.
    zscore : {None, "pattern", "unit"}
        Standardise each ROI's patterns before the RDM (see ``brain_rdms``).
    device, dtype : str, optional
        Compute the RDMs on torch tensors there (see ``brain_rdms``).

    Returns
    -------
    list of dict
        One ``{roi: condensed rdm}`` per file, in order.
    """
    from ..base.brain import BrainData

    subjects = []
    for path in paths:
        brain = BrainData.load(path)
        items.anchor(brain.n_samples, path)
        group = items.group(brain.n_samples, path)
        if callable(rois):
            rois = rois(brain.space)
        subjects.append(brain_rdms(brain, rois, metric=metric, labels=group,
                                   show_progress=show_progress, zscore=zscore,
                                   device=device, dtype=dtype))
    return subjects


# -- db_map: sparseness columns -----------------------------------------------------
def read_psi_summary(path, layers):
    """The 'median' column of a db_psi summary table for ``layers``, in that order."""
    from ..io.table import read_table

    table = read_table(path)
    if "layer" not in table or "median" not in table:
        raise InputError(f"{path}: a PSI summary needs columns 'layer' and 'median' "
                         f"(db_psi's summary table); it has {sorted(table)}.")
    values = dict(zip((str(l) for l in table["layer"]), table["median"]))
    missing = [l for l in layers if l not in values]
    if missing:
        raise InputError(f"{path} has no PSI for layer(s) {missing}; give the summary "
                         "made from the same activation file, or leave -psi out.")
    try:
        return np.array([float(values[l]) for l in layers])
    except ValueError:
        raise InputError(f"{path}: column 'median' must hold numbers.") from None


def mapping_sparseness(items, act, layers, brain, rois, *, brain_group, psi_layer=None,
                       unit="channel", stim_path=None, show_progress=False):
    """(psi_layer, psi_roi) of db_map; None (NaN) where categories are unknown.

    Parameters
    ----------
    items : Items
    act : Activation
    layers : list of str
    brain : BrainData
    rois : ROISet
        In the brain's space.
    brain_group : array or None
        ``items.group`` of the brain's rows.
    psi_layer : array, optional
        Given (a db_psi summary): not computed again.
    unit : str
        A layer's units for PSI (see ``layer_psi``).
    stim_path : str, optional
        The stimulus table, named in the warning when it has no labels.
    """
    labels = items.labels
    # Rows are categories when the file is per category or was matched as such.
    act_rows_are_categories = act.category_labels is not None or (
        items.by_category and items.act_group is None)
    brain_rows_are_categories = items.by_category and brain_group is None
    if labels is None and not (act_rows_are_categories and brain_rows_are_categories):
        log.warning("%s has no 'label' column: the PSI columns are NaN.", stim_path)
    psi_roi = None
    if psi_layer is None and (act_rows_are_categories or labels is not None):
        # the file's own row labels: audio examples each take their row's label
        act_labels = labels if items.act_labels is None else items.act_labels
        psi_layer = layer_psi(act, layers, unit=unit,
                              labels=None if act_rows_are_categories else act_labels,
                              show_progress=show_progress)
    if brain_rows_are_categories or labels is not None:
        psi_roi = roi_psi(brain, rois, labels=None if brain_rows_are_categories else labels)
    return psi_layer, psi_roi


# -- db_map: brain maps ---------------------------------------------------------------
def _map_names(brain):
    from ..io.brain import brain_format

    label_sfx, value_sfx = _MAP_SUFFIXES[brain.kind]
    if brain.kind == "volume":
        label_sfx = value_sfx = brain_format(brain.source)
    return f"best_layer{label_sfx}", f"best_layer_psi{value_sfx}"


def _layer_table(result):
    return {i + 1: layer for i, layer in enumerate(result.layers)}


def write_best_layer_maps(out, brain, rois, result):
    """Best-layer index and its PSI on every ROI's features, in the input's format.

    Parameters
    ----------
    out : Path
        Output directory.
    brain : BrainData
        The mapped data (its format and space).
    rois : ROISet
    result : LayerMapping

    Returns
    -------
    list of str
        The names written in ``out``: ``best_layer.*`` (1-based layer index, with the
        layer names as labels) and ``best_layer_psi.*``.
    """
    label_name, value_name = _map_names(brain)
    brain.save_like(out / label_name, rois.paint((result.best + 1).astype(np.int32)),
                    names=["best_layer"], label_table=_layer_table(result), force=True)
    brain.save_like(out / value_name, rois.paint(result.best_psi, fill=np.nan),
                    names=["best_layer_psi"], fill=np.nan, force=True)
    return [label_name, value_name]


def render_best_layer(out, brain, rois, result):
    """``best_layer_render.png`` in ``out`` (volumes, with nilearn); the names written."""
    from ..viz import nilearn_available, render_volume_maps

    if brain.kind != "volume":
        log.info("no brain rendering for %s data without a surface mesh; open %s in "
                 "Connectome Workbench or plot it on your surfaces.", brain.kind,
                 _map_names(brain)[0])
        return []
    if not nilearn_available():
        log.info("nilearn is not installed: no brain rendering (pip install nilearn).")
        return []
    label_img = brain.to_image(rois.paint((result.best + 1).astype(np.int32)),
                               label_table=_layer_table(result), suffix=".nii.gz")
    value_img = brain.to_image(rois.paint(result.best_psi, fill=np.nan), fill=np.nan,
                               suffix=".nii.gz")
    background = brain.to_image(brain.data.mean(axis=0, dtype=np.float64),
                                suffix=".nii.gz")
    render_volume_maps(out / "best_layer_render.png", label_img, value_img,
                       names=result.layers, bg_img=background, force=True)
    return ["best_layer_render.png"]
