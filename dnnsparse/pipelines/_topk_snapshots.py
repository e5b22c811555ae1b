"""Top-K masks of chosen layers saved after every training epoch (the paper's Fig. 8).

:class:`TopKSnapshots` is the ``snapshot`` callable of
:func:`~dnnsparse.model.train_classifier` (``db_train -snapshot-topk``). For a small
fixed stimulus set it writes into ``OUT/topk_snapshots/``, once for the initial
network (epoch 0) and after every epoch ``N``:

- ``epoch_NNN.topk.h5`` -- the Top-K masks (:func:`~dnnsparse.model.layer_topk_masks`):
  per layer a bool dataset ``masks/<layer>`` of shape ``(n_stimuli, C, H, W)``
  (attributes ``fraction``, ``k``, ``changed_fraction``), ``stimID`` (the table's
  ids), and the file attributes ``format``, ``epoch``, ``layers``, ``fractions``
  (JSON), ``net``;
- ``epoch_NNN.pth`` -- that epoch's weights (the state dict), so that every mask
  file can be recomputed from the network it came from;
- ``epoch_NNN.png`` -- for the first few stimuli the image, the fraction of
  channels keeping each position and a few fixed channels' masks, per layer;
- ``changes.csv`` / ``changes.png`` -- per epoch and layer, the fraction of mask
  positions (over stimuli, channels and positions) that differ from the previous
  epoch's masks: how the maps move as training goes on.

Every file is written atomically. A resumed run rewrites the snapshot of an epoch
it redoes (the same values: training is repeatable) and keeps the earlier ones.
"""
import json
import logging
from pathlib import Path

import numpy as np
import torch

from ..errors import FileFormatError, InputError
from ..io import atomic_output, open_h5
from ..io.table import write_table
from ..model import layer_topk_masks
from ..utils.validation import check_scalar
from ..viz import plot_topk_changes, plot_topk_snapshot
from ._merge import stimulus_digest

__all__ = ["SNAPSHOT_DIR", "TopKSnapshots", "read_topk_snapshot", "snapshot_spec",
           "write_topk_snapshot"]

log = logging.getLogger(__name__)

#: Folder of the snapshots inside a ``db_train`` output folder.
SNAPSHOT_DIR = "topk_snapshots"
_FORMAT = "dnnsparse-topk-snapshot-1"


def snapshot_spec(layers=None, fraction=None, *, topk=None):
    """``{layer: fraction}`` of the snapshots from the training's Top-K and the options.

    Parameters
    ----------
    layers : sequence of str, optional
        Layers to snapshot (``-snapshot-layers``); default: the ``topk`` layers.
    fraction : float, optional
        One fraction for every snapshot layer (``-snapshot-fraction``); default:
        each layer's ``topk`` fraction.
    topk : dict, optional
        The run's Top-K ``{layer: fraction}`` (``-topk``).

    Returns
    -------
    dict

    Raises
    ------
    InputError
        No layers, a layer with no fraction, a fraction outside (0, 1], a layer
        named twice or a layer name with ``/``.

    Examples
    --------
    >>> snapshot_spec(topk={"layer3": 0.2})
    {'layer3': 0.2}
    >>> snapshot_spec(["layer2", "layer3"], 0.1, topk={"layer3": 0.2})
    {'layer2': 0.1, 'layer3': 0.1}
    """
    topk = dict(topk or {})
    layers = list(layers) if layers else list(topk)
    if not layers:
        raise InputError("-snapshot-topk: name the layers to snapshot with -snapshot-layers "
                         "(the run has no -topk layers to default to).")
    if len(set(layers)) != len(layers):
        raise InputError(f"-snapshot-layers names a layer twice ({' '.join(layers)}).")
    spec = {}
    for layer in layers:
        if "/" in layer:
            raise InputError(f"-snapshot-layers: layer name {layer!r} contains '/', which an "
                             f"HDF5 dataset name cannot hold; give its module path instead.")
        f = fraction if fraction is not None else topk.get(layer)
        if f is None:
            raise InputError(f"-snapshot-layers: layer {layer!r} has no Top-K in -topk; give "
                             f"-snapshot-fraction F for it.")
        what = "-snapshot-fraction" if fraction is not None else f"-topk {layer}"
        spec[layer] = float(check_scalar(f, name=what, min_val=0, max_val=1,
                                         include_min=False))
    return spec


def snapshot_name(epoch, suffix=".topk.h5"):
    """``epoch_NNN`` + suffix (three digits, more past epoch 999)."""
    return f"epoch_{int(epoch):03d}{suffix}"


# ---------------------------------------------------------------------------- files
def write_topk_snapshot(path, masks, *, stim_ids, epoch, fractions, changed=None, net="",
                        force=False):
    """Write one epoch's Top-K masks to an HDF5 file (atomically).

    Parameters
    ----------
    path : str or Path
    masks : dict of str to ndarray of bool, shape (n_stimuli, C, H, W)
    stim_ids : sequence of str, length n_stimuli
    epoch : int
    fractions : dict of str to float
        The Top-K fraction of each layer.
    changed : dict of str to float, optional
        Fraction of positions that differ from the previous epoch (NaN: none).
    net : str, optional
        The network's name, stored as an attribute.
    force : bool, default=False

    Returns
    -------
    Path
    """
    import h5py
    changed = changed or {}
    with atomic_output(path, force=force) as tmp:
        with h5py.File(tmp, "w") as f:
            f.attrs["format"] = _FORMAT
            f.attrs["epoch"] = int(epoch)
            f.attrs["layers"] = json.dumps(list(masks))
            f.attrs["fractions"] = json.dumps({k: float(fractions[k]) for k in masks})
            f.attrs["net"] = str(net)
            f.create_dataset("stimID", data=np.asarray([str(s) for s in stim_ids],
                                                       dtype=object),
                             dtype=h5py.string_dtype())
            g = f.create_group("masks")
            for layer, m in masks.items():
                m = np.asarray(m, dtype=bool)
                d = g.create_dataset(layer, data=m, compression="gzip", shuffle=True)
                d.attrs["fraction"] = float(fractions[layer])
                d.attrs["k"] = int(m[:1, :1].sum()) if m.size else 0
                d.attrs["changed_fraction"] = float(changed.get(layer, np.nan))
    return Path(path)


def read_topk_snapshot(path):
    """Read a file written by :func:`write_topk_snapshot`.

    Returns
    -------
    dict
        ``epoch`` (int), ``stimID`` (list of str), ``masks`` ({layer: bool ndarray
        (n_stimuli, C, H, W)}, in the written order), ``fractions`` and
        ``changed`` ({layer: float}), ``net`` (str).

    Raises
    ------
    MissingFileError, FileFormatError

    Examples
    --------
    >>> snap = read_topk_snapshot("run/topk_snapshots/epoch_003.topk.h5")   # doctest: +SKIP
    >>> snap["masks"]["layer3"].shape                                         # doctest: +SKIP
    (8, 256, 14, 14)
    """
    with open_h5(path, what="Top-K snapshot") as f:
        if f.attrs.get("format") != _FORMAT:
            raise FileFormatError(f"{path} is not a db_train Top-K snapshot.")
        layers = json.loads(f.attrs["layers"])
        return {"epoch": int(f.attrs["epoch"]),
                "stimID": [s.decode() if isinstance(s, bytes) else str(s)
                           for s in f["stimID"][()]],
                "masks": {l: f["masks"][l][()].astype(bool) for l in layers},
                "fractions": json.loads(f.attrs["fractions"]),
                "changed": {l: float(f["masks"][l].attrs["changed_fraction"]) for l in layers},
                "net": str(f.attrs.get("net", ""))}


def _changed(prev, masks):
    """Fraction of positions that differ, per layer (NaN where shapes differ)."""
    out = {}
    for layer, m in masks.items():
        p = prev.get(layer)
        out[layer] = float(np.mean(p != m)) if p is not None and p.shape == m.shape \
            else float("nan")
    return out


# ------------------------------------------------------------------------ snapshots
class TopKSnapshots:
    """``snapshot(dnn, epoch, folder)`` callable writing Top-K masks per epoch.

    Parameters
    ----------
    stim : Stimulus
        A small fixed image set (the same every epoch).
    spec : dict
        ``{layer: fraction}`` (see :func:`snapshot_spec`).
    n_show : int, default=4
        Stimuli drawn in each epoch's figure (the first ones of the table).
    n_channels : int, default=3
        Channels drawn per layer (evenly spaced, the same every epoch).
    batch_size : int, default=32
    workers : int, optional
    title : str, optional
        Start of the figures' titles (e.g. the network's name).

    Attributes
    ----------
    settings : dict
        Recorded with the training settings (a resume must use the same).

    Examples
    --------
    >>> snaps = TopKSnapshots(Stimulus.load("probe.stim.csv"), {"layer3": 0.2})  # doctest: +SKIP
    >>> train_classifier(dnn, stim, out="run", topk={"layer3": 0.2},
    ...                  snapshot=snaps)                                         # doctest: +SKIP
    """

    def __init__(self, stim, spec, *, n_show=4, n_channels=3, batch_size=32, workers=None,
                 title=None):
        if len(stim) == 0:
            raise InputError("the snapshot stimulus table has no rows.")
        check_scalar(n_show, name="n_show", min_val=1)
        check_scalar(n_channels, name="n_channels", min_val=1)
        self.stim, self.spec = stim, snapshot_spec(list(spec), None, topk=spec)
        self.n_show, self.n_channels = int(n_show), int(n_channels)
        self.batch_size, self.workers, self.title = batch_size, workers, title
        self.settings = {"stim": stimulus_digest(stim)[:16], "n_stim": len(stim),
                         "layers": dict(self.spec)}

    def __call__(self, dnn, epoch, folder):
        where = Path(folder) / SNAPSHOT_DIR
        where.mkdir(exist_ok=True)
        masks, images = layer_topk_masks(dnn, self.stim, self.spec, batch_size=self.batch_size,
                                         workers=self.workers, return_images=True)
        prev_path = where / snapshot_name(epoch - 1)
        changed = (_changed(read_topk_snapshot(prev_path)["masks"], masks)
                   if epoch > 0 and prev_path.is_file() else {})
        write_topk_snapshot(where / snapshot_name(epoch), masks, stim_ids=self.stim.ids,
                            epoch=epoch, fractions=self.spec, changed=changed, net=dnn.name,
                            force=True)
        with atomic_output(where / snapshot_name(epoch, ".pth"), force=True) as tmp:
            torch.save(dnn.module.state_dict(), tmp)
        show = slice(0, min(self.n_show, len(self.stim)))
        when = "before training" if epoch == 0 else f"after epoch {epoch}"
        title = f"{self.title + ': ' if self.title else ''}Top-K masks {when}"
        plot_topk_snapshot(where / snapshot_name(epoch, ".png"), images[show].transpose(0, 2, 3, 1),
                           {l: m[show] for l, m in masks.items()},
                           stim_ids=list(self.stim.ids[show]), fractions=self.spec,
                           n_channels=self.n_channels, title=title, force=True)
        table = self._change_table(where, epoch)
        if table["epoch"]:
            write_table(where / "changes.csv", table, force=True)
            plot_topk_changes(where / "changes.png", table, force=True,
                              title=f"{self.title + ': ' if self.title else ''}Top-K mask "
                                    f"change per epoch")
        log.info("Top-K snapshot %s: %s", when,
                 ", ".join(f"{l} {c:.3f} changed" for l, c in changed.items()) or "written")

    def _change_table(self, where, epoch):
        """Rows ``epoch, layer, fraction, changed_fraction`` for epochs 1..epoch on disk."""
        table = {"epoch": [], "layer": [], "fraction": [], "changed_fraction": []}
        for e in range(1, epoch + 1):
            path = where / snapshot_name(e)
            if not path.is_file():
                continue
            with open_h5(path, what="Top-K snapshot") as f:       # attributes only
                for layer in json.loads(f.attrs["layers"]):
                    attrs = f["masks"][layer].attrs
                    table["epoch"].append(e)
                    table["layer"].append(layer)
                    table["fraction"].append(float(attrs["fraction"]))
                    table["changed_fraction"].append(float(attrs["changed_fraction"]))
        return table
