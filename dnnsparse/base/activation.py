"""The :class:`Activation` object: layer activations of a set of stimuli.

An Activation maps layer names (in network order) to arrays of shape
``(n_stim, n_chn, n_row, n_col)``; fully connected layers are
``(n_stim, n_unit, 1, 1)``. It is either held in memory or backed lazily by an
``.act.h5`` file, in which case only the layers and stimulus rows that are
asked for are read.
"""
import numbers
import operator

import numpy as np

from ..errors import InputError, UnknownLayerError
from ..io.act import ActFile, write_act
from ..utils.extmath import group_sums
from ..utils.validation import check_choice

__all__ = ["Activation", "POOLS", "pool_array", "concatenate"]


def _l1(x, axis):
    return np.abs(x).sum(axis=axis, keepdims=True)


def _l2(x, axis):
    return np.sqrt(np.square(x).sum(axis=axis, keepdims=True))


#: Spatial pooling methods, applied per channel over (row, col). ``l1`` and
#: ``l2`` are element-wise norms of each channel's map (DNNBrain used matrix
#: norms, a bug not copied here).
POOLS = {
    "mean": lambda x, axis: x.mean(axis=axis, keepdims=True),
    "max": lambda x, axis: x.max(axis=axis, keepdims=True),
    "median": lambda x, axis: np.median(x, axis=axis, keepdims=True),
    "l1": _l1,
    "l2": _l2,
}


def pool_array(x, method):
    """Pool ``x`` (n, n_chn, n_row, n_col) over space → (n, n_chn, 1, 1).

    >>> pool_array(np.arange(8.).reshape(1, 2, 2, 2), "max")[:, :, 0, 0]
    array([[3., 7.]])
    """
    method = check_choice(str(method).lower(), POOLS, name="pool")
    return POOLS[method](x, (2, 3))


def _as4d(a, layer):
    a = np.asarray(a)
    if a.ndim == 2:
        a = a[:, :, None, None]
    if a.ndim != 4:
        raise InputError(f"layer {layer!r}: expected an array (n_stim, n_chn, n_row, n_col) "
                         f"or (n_stim, n_unit); got shape {a.shape}.")
    return a


class Activation:
    """Activations of ``n_stim`` stimuli in several layers.

    Parameters
    ----------
    data : dict of str to array, optional
        ``{layer: array (n_stim, n_chn, n_row, n_col) or (n_stim, n_unit)}``;
        the dict order is the layer order.
    stim_ids : sequence of str, optional
        One ID per stimulus row (default ``"0".."n-1"``).
    attrs : dict, optional
        File-level metadata (network, weights, ...).
    layer_attrs : dict of str to dict, optional
        Per-layer metadata (``chn``/``row``/``col`` 1-based, ``raw_shape``, ``pool``).

    Examples
    --------
    >>> act = Activation({"fc1": np.ones((3, 4))})
    >>> act.shape("fc1"), act.layers
    ((3, 4, 1, 1), ['fc1'])
    >>> act.pool("max")["fc1"].shape
    (3, 4, 1, 1)
    """

    def __init__(self, data=None, *, stim_ids=None, attrs=None, layer_attrs=None):
        self._data = {k: _as4d(v, k) for k, v in (data or {}).items()}
        self._file = None
        self._file_layers = []
        self.path = None
        #: Per-category files: the label and number of stimuli of each row.
        self.category_labels = self.category_counts = None
        self.attrs = dict(attrs or {})
        self._layer_attrs = {k: dict(v) for k, v in (layer_attrs or {}).items()}
        ns = {v.shape[0] for v in self._data.values()}
        if len(ns) > 1:
            raise InputError(f"layers have different numbers of stimuli: "
                             f"{ {k: v.shape[0] for k, v in self._data.items()} }")
        n = ns.pop() if ns else (len(stim_ids) if stim_ids is not None else 0)
        #: Whether the rows carry stimulus IDs of their own (else IDs are "0", "1", ...).
        self.has_stim_ids = stim_ids is not None
        self._stim_ids = (np.arange(n).astype(str) if stim_ids is None
                          else np.asarray([str(s) for s in stim_ids]))
        if len(self._stim_ids) != n:
            raise InputError(f"{len(self._stim_ids)} stimulus IDs for {n} stimuli.")

    # -- construction -----------------------------------------------------------------
    @classmethod
    def load(cls, path, *, layers=None, lazy=True):
        """Open an ``.act.h5`` file (ours or DNNBrain's).

        With ``lazy=True`` (default) layers are read only when accessed; use
        :meth:`close` (or a ``with`` block) to release the file.
        """
        f = ActFile(path)
        if layers is not None:
            for l in layers:
                f.shape(l)                       # raises UnknownLayerError
        obj = cls(stim_ids=f.stim_ids, attrs=f.attrs)
        obj.has_stim_ids = f.has_stim_ids
        obj.path = f.path
        obj._file = f
        obj._file_layers = list(layers) if layers is not None else list(f.layers)
        obj._layer_attrs = {l: f.layer_attrs(l) for l in obj._file_layers}
        meta = {k: f.meta(k) for k in ("label", "count")}
        obj.category_labels, obj.category_counts = meta["label"], meta["count"]
        if not lazy:
            obj._data = {l: f.read(l) for l in obj._file_layers}
            obj.close()
        return obj

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        """Release the backing file; layers already read stay available."""
        if self._file is not None:
            self._file.close()
            self._file = None
            self._file_layers = []

    # -- description ------------------------------------------------------------------
    @property
    def layers(self):
        """Layer names in network (file) order."""
        order = list(self._file_layers)
        return order + [l for l in self._data if l not in order]

    @property
    def stim_ids(self):
        return self._stim_ids

    @property
    def n_stim(self):
        return len(self._stim_ids)

    def __len__(self):
        return self.n_stim

    def __contains__(self, layer):
        return layer in self.layers

    def __iter__(self):
        return iter(self.layers)

    def __repr__(self):
        shapes = ", ".join(f"{l}{self.shape(l)[1:]}" for l in self.layers)
        return f"<Activation n_stim={self.n_stim}: {shapes}>"

    def _check_layer(self, layer):
        if layer not in self.layers:
            raise UnknownLayerError(f"layer {layer!r} is not in this activation; it has "
                                    f"{', '.join(self.layers) or 'no layers'}.")

    def shape(self, layer):
        """``(n_stim, n_chn, n_row, n_col)`` of ``layer``."""
        self._check_layer(layer)
        if layer in self._data:
            return self._data[layer].shape
        return self._file.shape(layer)

    def layer_attrs(self, layer):
        self._check_layer(layer)
        return dict(self._layer_attrs.get(layer, {}))

    # -- reading ----------------------------------------------------------------------
    def get(self, layer, *, stim=None, chn=None, row=None, col=None):
        """Array of ``layer`` for stimulus rows ``stim`` and 0-based chn/row/col indices.

        Reading from a file touches only the requested part.
        """
        self._check_layer(layer)
        if layer in self._data:
            a = self._data[layer]
            if stim is not None:
                a = a[stim]
            for axis, idx in ((1, chn), (2, row), (3, col)):
                if idx is not None:
                    a = np.take(a, np.asarray(idx, dtype=np.int64), axis=axis)
            return a
        return self._file.read(layer, stim=stim, chn=chn, row=row, col=col)

    def __getitem__(self, layer):
        return self.get(layer)

    def iter_batches(self, layer, batch_size=256):
        """Yield ``(start, array)`` blocks of ``batch_size`` stimuli of ``layer``."""
        for start in range(0, self.n_stim, batch_size):
            yield start, self.get(layer, stim=slice(start, start + batch_size))

    def to_matrix(self, layer, *, stim=None):
        """``layer`` flattened to ``(n_stim, n_chn * n_row * n_col)``."""
        a = self.get(layer, stim=stim)
        return a.reshape(a.shape[0], -1)

    # -- derived activations ----------------------------------------------------------
    def _derive(self, data, layer_attrs=None, stim_ids=None):
        if stim_ids is None and self.has_stim_ids:
            stim_ids = self._stim_ids
        return Activation(data, stim_ids=stim_ids,
                          attrs=self.attrs,
                          layer_attrs=layer_attrs if layer_attrs is not None
                          else {l: self._layer_attrs.get(l, {}) for l in data})

    def set(self, layer, array):
        """Add or replace ``layer`` (kept in memory, appended to the layer order)."""
        a = _as4d(array, layer)
        if a.shape[0] != self.n_stim:
            raise InputError(f"layer {layer!r} has {a.shape[0]} stimuli; this activation has "
                             f"{self.n_stim}.")
        self._data[layer] = a

    def select(self, layers):
        """A new in-memory Activation with only ``layers`` (in the given order)."""
        return self._derive({l: self.get(l) for l in layers})

    def subset(self, stim):
        """A new in-memory Activation of stimulus rows ``stim`` (slice, indices or mask)."""
        stim = np.arange(self.n_stim)[stim]
        return self._derive({l: self.get(l, stim=stim) for l in self.layers},
                            stim_ids=self._stim_ids[stim] if self.has_stim_ids else None)

    def mask(self, mask):
        """Keep the channels/rows/cols a :class:`~dnnsparse.base.mask.Mask` selects.

        Layers not in the mask are dropped; indices are checked against each layer.
        """
        data, attrs = {}, {}
        for layer in mask.layers:
            self._check_layer(layer)
            mask.check(layer, self.shape(layer)[1:])
            sel = mask.get(layer)
            data[layer] = self.get(layer, chn=sel["chn"], row=sel["row"], col=sel["col"])
            attrs[layer] = self.layer_attrs(layer)
            for axis in ("chn", "row", "col"):
                if sel[axis] is not None:   # compose with an earlier selection
                    prev = attrs[layer].get(axis)
                    base = np.asarray(prev) - 1 if prev is not None and len(np.atleast_1d(prev)) else None
                    idx = sel[axis] if base is None else base[sel[axis]]
                    attrs[layer][axis] = np.asarray(idx, dtype=np.int64) + 1
        return self._derive(data, attrs)

    def pool(self, method, layers=None):
        """Spatial pooling per channel (``mean``, ``max``, ``median``, ``l1``, ``l2``)."""
        method = check_choice(str(method).lower(), POOLS, name="pool")
        layers = self.layers if layers is None else layers
        data = {l: pool_array(self.get(l), method) for l in layers}
        attrs = {l: {**self._layer_attrs.get(l, {}), "pool": method} for l in layers}
        return self._derive(data, attrs)

    def aggregate(self, labels, *, layers=None, batch_size=512):
        """Per-category means (float64 accumulation) of every layer.

        The arithmetic of :func:`~dnnsparse.utils.extmath.group_sums`, block after
        block: the same means as ``algo.sparseness.category_means(...,
        unit="position")``, bit for bit, for the same blocks.

        Parameters
        ----------
        labels : array-like (n_stim,)

        Returns
        -------
        Activation
            One row per category (sorted labels); ``category_labels`` and
            ``category_counts`` attributes are set.
        """
        labels = np.asarray(labels)
        if labels.shape != (self.n_stim,):
            raise InputError(f"{labels.shape[0] if labels.ndim else 0} labels for "
                             f"{self.n_stim} stimuli.")
        cats, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
        data = {}
        for layer in (self.layers if layers is None else layers):
            shape = self.shape(layer)
            sums = np.zeros((len(cats), int(np.prod(shape[1:]))))
            for start, block in self.iter_batches(layer, batch_size):
                sums += group_sums(block.reshape(len(block), -1),
                                   inverse[start:start + len(block)], len(cats))
            data[layer] = (sums / counts[:, None]).reshape((len(cats),) + shape[1:])
        out = self._derive(data, stim_ids=cats.astype(str))
        out.attrs = {**self.attrs, "aggregate": "label"}
        out.category_labels, out.category_counts = cats, counts
        return out

    # -- arithmetic -------------------------------------------------------------------
    def _binary(self, other, op):
        if isinstance(other, Activation):
            if other.layers != self.layers:
                raise InputError(f"layers differ: {self.layers} vs {other.layers}.")
            for l in self.layers:
                if other.shape(l) != self.shape(l):
                    raise InputError(f"layer {l!r}: shapes differ {self.shape(l)} vs "
                                     f"{other.shape(l)}.")
            return self._derive({l: op(self.get(l), other.get(l)) for l in self.layers})
        if isinstance(other, (numbers.Number, np.number)):
            return self._derive({l: op(self.get(l), other) for l in self.layers})
        return NotImplemented

    def __add__(self, other):
        return self._binary(other, operator.add)

    def __sub__(self, other):
        return self._binary(other, operator.sub)

    def __mul__(self, other):
        return self._binary(other, operator.mul)

    def __truediv__(self, other):
        return self._binary(other, operator.truediv)

    __radd__ = __add__
    __rmul__ = __mul__

    def __neg__(self):
        return self * -1

    # -- writing ----------------------------------------------------------------------
    def save(self, path, *, force=False, compression="lzf"):
        """Write to an ``.act.h5`` file (atomically; ``force`` to overwrite)."""
        data = {l: self.get(l) for l in self.layers}
        attrs = {k: v for k, v in self.attrs.items() if k not in ("layers",)}
        la = {l: self._layer_attrs.get(l, {}) for l in self.layers}
        labels = self.category_labels
        meta = None if labels is None else {"label": labels, "count": self.category_counts}
        ids = self._stim_ids if self.has_stim_ids or labels is not None else None
        return write_act(path, data, stim_ids=ids, attrs=attrs, layer_attrs=la,
                         meta=meta, force=force, compression=compression)


def concatenate(acts):
    """Join Activations with the same layers and shapes along stimuli.

    >>> a = Activation({"fc": np.zeros((2, 3))}); b = Activation({"fc": np.ones((1, 3))})
    >>> concatenate([a, b]).n_stim
    3
    """
    acts = list(acts)
    if not acts:
        raise InputError("nothing to concatenate.")
    first = acts[0]
    for a in acts[1:]:
        if a.layers != first.layers:
            raise InputError(f"layers differ: {first.layers} vs {a.layers}.")
        for l in first.layers:
            if a.shape(l)[1:] != first.shape(l)[1:]:
                raise InputError(f"layer {l!r}: unit shapes differ {first.shape(l)[1:]} vs "
                                 f"{a.shape(l)[1:]}.")
    data = {l: np.concatenate([a.get(l) for a in acts]) for l in first.layers}
    ids = np.concatenate([a.stim_ids for a in acts])
    return first._derive(data, stim_ids=ids)
