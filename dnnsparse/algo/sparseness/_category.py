"""Mean response of every unit to every category of stimuli.

Sparseness measures (:mod:`._measures`) take ``responses`` of shape
``(n_categories, n_units)``; :func:`category_means` makes them from per-stimulus
activations -- an array, a memmap, an HDF5 dataset or batches straight from a
network -- in one pass, accumulated in float64, for any label order and any
category sizes. A unit is a channel averaged over its spatial map (the paper) or
every element of the layer (:data:`UNIT_MODES`). The sums of every batch are
:func:`~dnnsparse.utils.extmath.group_sums`, the package's one category-means
arithmetic.
"""
import logging
import numbers
from dataclasses import dataclass
from typing import Callable, NamedTuple

import numpy as np

from ...errors import InputError
from ...utils.extmath import group_sums
from ...utils.memory import items_per_read
from ...utils.progress import progress
from ...utils.registry import Registry
from ...utils.validation import check_array, check_choice, check_scalar

__all__ = ["UNIT_MODES", "CategoryMeans", "UnitMode", "category_means"]

logger = logging.getLogger(__name__)


class CategoryMeans(NamedTuple):
    """Result of :func:`category_means` (unpacks as a 3-tuple)."""

    means: np.ndarray       #: (n_categories, n_units) float64
    categories: np.ndarray  #: (n_categories,) sorted unique labels
    counts: np.ndarray      #: (n_categories,) stimuli per category


def _channel_units(batch):
    """(b, n_chn, ...) -> (b, n_chn): each channel averaged over its spatial map."""
    if batch.ndim == 2:
        return batch.astype(np.float64)
    return batch.reshape(batch.shape[0], batch.shape[1], -1).mean(axis=2, dtype=np.float64)


def _position_units(batch):
    """(b, n_chn, ...) -> (b, n_chn * ...): every element is a unit."""
    return batch.reshape(batch.shape[0], -1).astype(np.float64)


@dataclass(frozen=True)
class UnitMode:
    """What a unit of a layer is (an entry of :data:`UNIT_MODES`); calling it calls ``func``."""

    func: Callable      #: batch (b, n_chn, ...) -> its units (b, n_units), float64
    description: str    #: one phrase, for help texts

    def __call__(self, batch):
        return self.func(batch)


#: ``unit`` -> :class:`UnitMode` turning a batch (b, n_chn, ...) into its units (b, n_units).
UNIT_MODES = Registry(
    channel=UnitMode(_channel_units, "a channel averaged over its spatial map (the paper)"),
    position=UnitMode(_position_units, "every element (channel, row, column) of the layer"),
)


def _stimulus_batches(activations, n_stim, batch_size):
    """Yield ``(start, batch)`` from an array-like (sliced) or an iterable of batches."""
    if hasattr(activations, "shape") and hasattr(activations, "__getitem__"):
        if len(activations.shape) < 2:
            raise InputError("activations must be 2-D (n_stim, n_units) or 4-D (n_stim, "
                             f"n_chn, n_row, n_col); got shape {tuple(activations.shape)}.")
        if activations.shape[0] != n_stim:
            raise InputError(f"activations have {activations.shape[0]} stimuli but labels "
                             f"{n_stim}; they must match.")
        per_stim = int(np.prod(activations.shape[1:]))
        # About READ_VALUES values per read (as the measures read units): every
        # HDF5 read has a fixed cost.
        step = (items_per_read(per_stim) if batch_size is None
                else check_scalar(batch_size, name="batch_size", kind=numbers.Integral,
                                  min_val=1))
        for start in range(0, n_stim, step):
            yield start, activations[start:start + step]
        return
    start = 0
    for batch in activations:
        batch = np.asarray(batch)
        yield start, batch
        start += len(batch)
    if start != n_stim:
        raise InputError(f"The batches hold {start} stimuli but labels {n_stim}; they "
                         "must match.")


def category_means(activations, labels, *, unit="channel", absolute=False, batch_size=None,
                   show_progress=False):
    """Mean activation of every unit to every category of stimuli.

    Parameters
    ----------
    activations : array-like, h5py.Dataset, or iterable of arrays
        Shape (n_stim, n_chn, n_row, n_col) for a convolutional layer (or
        (n_stim, n_chn, n_pos)), (n_stim, n_units) for a fully connected one.
        An array-like (ndarray, memmap, HDF5 dataset) is read ``batch_size``
        stimuli at a time; an iterable yields consecutive batches of stimuli
        (e.g. straight from a network), which together match ``labels``.
    labels : array-like of shape (n_stim,)
        Category of each stimulus (ints or strings). Categories need not be
        contiguous nor of equal size.
    unit : {"channel", "position"}, default="channel"
        "channel": a unit is a channel averaged over its spatial map (the
        paper; AlexNet conv1_relu ... fc2_relu then have 64, 192, 384, 256,
        256, 4096, 4096 units). "position": every (chn, row, col) element is a
        unit.
    absolute : bool, default=False
        Take the absolute value of every activation first (before channels are
        averaged over their maps): the paper's control analysis "with the
        absolute value of activation", for layers with negative values (before a
        ReLU, or with ReLU removed).
    batch_size : int, optional
        Stimuli per read for an array-like. Default: about 2**24 values per read.
    show_progress : bool, default=False
        Show a progress bar over batches.

    Returns
    -------
    CategoryMeans
        ``(means, categories, counts)``: ``means`` of shape (n_categories,
        n_units), float64 (accumulated in float64 whatever the input dtype);
        ``categories`` the sorted unique labels, ``counts`` the number of
        stimuli per category.

    Examples
    --------
    >>> acts = np.arange(8.0).reshape(4, 2)
    >>> means, cats, counts = category_means(acts, ["b", "a", "b", "b"])
    >>> means.round(3).tolist(), cats.tolist(), counts.tolist()
    ([[2.0, 3.0], [3.333, 4.333]], ['a', 'b'], [1, 3])
    """
    check_choice(unit, UNIT_MODES, name="unit")
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise InputError(f"labels must be 1-D (n_stim,); got shape {labels.shape}.")
    if labels.size == 0:
        raise InputError("labels is empty; pass one label per stimulus.")
    categories, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    to_units = UNIT_MODES[unit]
    n_cat = categories.size
    sums = None
    batches = _stimulus_batches(activations, labels.size, batch_size)
    for start, batch in progress(batches, desc="category means", unit="batch",
                                 enabled=show_progress):
        batch = check_array(batch, name=f"activations[{start}:{start + len(batch)}]",
                            ndim=(2, 3, 4, 5), dtype="float")
        feats = to_units(np.abs(batch) if absolute else batch)   # (b, n_units) float64
        rows = inverse[start:start + len(feats)]
        if rows.size != len(feats):
            raise InputError(f"The batches hold more stimuli than labels ({labels.size}).")
        part = group_sums(feats, rows, n_cat)        # O(b * n_units), any label order
        if sums is None:
            sums = part
        elif part.shape != sums.shape:
            raise InputError(f"Batch at stimulus {start} has {part.shape[1]} units; earlier "
                             f"batches had {sums.shape[1]}.")
        else:
            sums += part
    logger.debug("category_means: %d stimuli, %d categories, %d units", labels.size, n_cat,
                 sums.shape[1])
    return CategoryMeans(sums / counts[:, None], categories, counts)
