"""Targets: what in a network a probe looks at (a channel, a unit or an output class).

One syntax for every command that probes units (``db_rf``, and the visualisation
commands ``db_topstim``, ``db_saliency``, ``db_optstim``)::

    LAYER:CHN              a channel (1-based, DNNBrain's convention)
    LAYER:CHN@STAT         the channel summarised by STAT: mean, max, or ROW,COL
    LAYER:CHN,ROW,COL      one unit (all 1-based)
    LAYER:class=NAME       an output class by ImageNet name (case-insensitive,
                           '_' for spaces: class=great_white_shark)
    LAYER:class=INDEX      an output class by ImageNet class index (0-based, as in
                           torchvision and the literature: class=1 is goldfish, which
                           is channel 2 of the output layer, fc3:2)

A channel target without ``@STAT`` takes the command's ``-stat`` (default mean).
:func:`parse_target` checks only the spelling; :func:`resolve_targets` also checks
each target against a network (layer exists, channel/row/col in range, class known)
and returns :class:`Target` objects whose :meth:`Target.values` turns a layer output
batch into one number per image.

Examples
--------
>>> t = parse_target("conv5:12,3,4")
>>> t.kind, t.channel, t.row, t.col
('unit', 12, 3, 4)
>>> parse_target("conv5:12@max").name
'conv5:12@max'
"""
import difflib
from dataclasses import dataclass, replace

import torch

from ..errors import InputError, UnknownLayerError
from ._hooks import LayerCapture, as_4d

__all__ = ["TARGET_KINDS", "TARGET_STATS", "Target", "imagenet_classes", "parse_stat",
           "parse_target", "resolve_targets", "target_responses"]

TARGET_KINDS = ("channel", "unit", "class")

#: Statistics of a channel's map ``(n, n_row, n_col)`` → ``(n,)``; "position" (a
#: ``ROW,COL`` spelling) takes the value at one place. Reductions run in the layer's
#: dtype, as :data:`dnnsparse.model.TORCH_POOLS` does.
TARGET_STATS = {
    "mean": lambda m: m.mean(dim=(1, 2)),
    "max": lambda m: m.amax(dim=(1, 2)),
}

_SYNTAX = ("write LAYER:CHN, LAYER:CHN@STAT (STAT: mean, max or ROW,COL), "
           "LAYER:CHN,ROW,COL or LAYER:class=NAME|INDEX, e.g. conv5:12 or fc3:class=goldfish")


@dataclass(frozen=True)
class Target:
    """A channel, unit or output class of one layer.

    Attributes
    ----------
    layer : str
    kind : {"channel", "unit", "class"}
    channel : int
        1-based channel (for a class target: ImageNet index + 1).
    row, col : int or None
        1-based position (unit targets, and channel targets with a position stat).
    stat : str
        "mean", "max" or "position" for channel targets; "value" for units and classes.
    class_name : str or None
        The class's name, when the network's output has the 1000 ImageNet classes.
    """
    layer: str
    kind: str
    channel: int
    row: int = None
    col: int = None
    stat: str = "value"
    class_name: str = None

    @property
    def name(self):
        """Canonical spelling (``conv5:12``, ``conv5:12@max``, ``fc3:class=goldfish``)."""
        if self.kind == "unit":
            return f"{self.layer}:{self.channel},{self.row},{self.col}"
        if self.kind == "class":
            label = (self.class_name.replace(" ", "_") if self.class_name
                     else str(self.channel - 1))
            return f"{self.layer}:class={label}"
        stat = f"{self.row},{self.col}" if self.stat == "position" else self.stat
        return f"{self.layer}:{self.channel}" + ("" if stat == "mean" else f"@{stat}")

    def __str__(self):
        return self.name

    def values(self, output):
        """The target's value per image from the layer's output batch.

        Parameters
        ----------
        output : tensor of shape (n, n_chn, n_row, n_col), (n, n_units), ...
            What the layer returns (made 4-D by :func:`dnnsparse.model.as_4d`).

        Returns
        -------
        tensor of shape (n,)
            In the layer's dtype; differentiable (saliency maps take its gradient).
        """
        out = as_4d(output)
        c = self.channel - 1
        # indexing gives a view: copy it, or a later in-place ReLU would change it
        if self.row is not None:
            return out[:, c, self.row - 1, self.col - 1].clone()
        if self.kind == "class":
            return out[:, c, 0, 0].clone()
        return TARGET_STATS[self.stat](out[:, c])


def _positive_int(text, what, spec):
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or value < 1:
        raise InputError(f"target {spec!r}: {what} must be a whole number >= 1 (1-based), "
                         f"got {text!r}; {_SYNTAX}.")
    return value


def parse_stat(text, *, spec="-stat"):
    """``"mean"``/``"max"`` → ``(stat, None, None)``; ``"ROW,COL"`` → ``("position", r, c)``.

    >>> parse_stat("max"), parse_stat("3,4")
    (('max', None, None), ('position', 3, 4))
    """
    text = str(text).strip().lower()
    if text in TARGET_STATS:
        return text, None, None
    parts = text.split(",")
    if len(parts) != 2:
        raise InputError(f"{spec}: unknown statistic {text!r}; choose mean, max or a 1-based "
                         f"position ROW,COL such as 3,4.")
    return ("position",) + tuple(_positive_int(p.strip(), w, spec)
                                 for p, w in zip(parts, ("row", "column")))


def parse_target(text, *, stat="mean"):
    """Read one target's spelling (no network needed; see :func:`resolve_targets`).

    Parameters
    ----------
    text : str
        ``LAYER:CHN``, ``LAYER:CHN@STAT``, ``LAYER:CHN,ROW,COL`` or ``LAYER:class=...``.
    stat : str, default="mean"
        Statistic of channel targets written without ``@STAT``.

    Returns
    -------
    Target
        Class targets given by name keep ``channel=0`` until resolved.

    Raises
    ------
    InputError
        Bad spelling (one line saying how to write a target).
    """
    spec = str(text).strip()
    layer, sep, rest = spec.partition(":")
    layer, rest = layer.strip(), rest.strip()
    if not sep or not layer or not rest:
        raise InputError(f"cannot read target {spec!r}; {_SYNTAX}.")
    if rest.lower().startswith("class="):
        label = rest[len("class="):].strip()
        if not label:
            raise InputError(f"target {spec!r} names no class; {_SYNTAX}.")
        if label.isdigit():
            return Target(layer, "class", int(label) + 1)
        return Target(layer, "class", 0, class_name=label)
    body, at, stat_text = rest.partition("@")
    parts = [p.strip() for p in body.split(",")]
    if len(parts) == 3:
        if at:
            raise InputError(f"target {spec!r}: a unit (CHN,ROW,COL) takes no @STAT.")
        chn, row, col = (_positive_int(p, w, spec)
                         for p, w in zip(parts, ("channel", "row", "column")))
        return Target(layer, "unit", chn, row, col)
    if len(parts) != 1:
        raise InputError(f"cannot read target {spec!r}; {_SYNTAX}.")
    chn = _positive_int(parts[0], "channel", spec)
    name, row, col = parse_stat(stat_text if at else stat, spec=spec if at else "-stat")
    return Target(layer, "channel", chn, row, col, stat=name)


def imagenet_classes():
    """The 1000 ImageNet class names in index order (torchvision's list; offline)."""
    from torchvision.models import AlexNet_Weights
    return list(AlexNet_Weights.IMAGENET1K_V1.meta["categories"])


def _close(word, choices, n=3):
    found = difflib.get_close_matches(word, choices, n=n, cutoff=0.5)
    return f" (did you mean {', '.join(found)}?)" if found else ""


def _check_layer(dnn, target, spec):
    try:
        dnn.resolve(target.layer)
    except UnknownLayerError:
        raise UnknownLayerError(
            f"unknown layer {target.layer!r} in target {spec!r} for {dnn.name}"
            f"{_close(target.layer, dnn.layers)}; 'db_info -net {dnn.name}' lists its "
            f"layers.") from None


def _check_class(target, spec, shape, classes):
    n_chn, n_row, n_col = shape
    if (n_row, n_col) != (1, 1):
        raise InputError(f"target {spec!r}: layer {target.layer!r} has a {n_row}x{n_col} map "
                         f"per channel; a class target needs an output layer (one value per "
                         f"class), e.g. the network's last layer.")
    if target.class_name is None:
        if target.channel > n_chn:
            raise InputError(f"target {spec!r}: class index {target.channel - 1} is out of "
                             f"range; layer {target.layer!r} has {n_chn} outputs "
                             f"(indices 0..{n_chn - 1}).")
        name = classes[target.channel - 1] if n_chn == len(classes) else None
        return replace(target, class_name=name)
    if n_chn != len(classes):
        raise InputError(f"target {spec!r}: layer {target.layer!r} has {n_chn} outputs, not "
                         f"the {len(classes)} ImageNet classes; give the class by index "
                         f"(class=0..{n_chn - 1}).")
    wanted = target.class_name.replace("_", " ").lower()
    lowered = [c.lower() for c in classes]
    if wanted not in lowered:
        raise InputError(f"target {spec!r}: no ImageNet class is called "
                         f"{target.class_name!r}{_close(wanted, lowered)}; give a name from "
                         f"torchvision's ImageNet list or an index 0..{n_chn - 1}.")
    i = lowered.index(wanted)
    return replace(target, channel=i + 1, class_name=classes[i])


def _check_range(target, spec, shape):
    n_chn, n_row, n_col = shape
    if target.channel > n_chn:
        raise InputError(f"target {spec!r}: channel {target.channel} is out of range; layer "
                         f"{target.layer!r} has {n_chn} channels (1..{n_chn}).")
    if target.row is not None and (target.row > n_row or target.col > n_col):
        raise InputError(f"target {spec!r}: position ({target.row}, {target.col}) is outside "
                         f"layer {target.layer!r}'s {n_row}x{n_col} map (rows 1..{n_row}, "
                         f"columns 1..{n_col}).")
    return target


def resolve_targets(specs, dnn, *, stat="mean", shapes=None):
    """Parse target spellings and check them against ``dnn``.

    Parameters
    ----------
    specs : iterable of str or Target
    dnn : DNN
    stat : str, default="mean"
        Statistic of channel targets written without ``@STAT``.
    shapes : dict, optional
        ``{layer: (n_chn, n_row, n_col)}``; default: one forward pass of a blank image
        (:meth:`DNN.layer_shapes`).

    Returns
    -------
    list of Target
        In the given order, class names resolved to channels.

    Raises
    ------
    InputError, UnknownLayerError
        One line naming the target: bad spelling, unknown layer (with close names),
        channel/position out of range, unknown class.
    """
    parsed = []
    for spec in specs:
        target = spec if isinstance(spec, Target) else parse_target(spec, stat=stat)
        _check_layer(dnn, target, str(spec))
        parsed.append((str(spec), target))
    if not parsed:
        raise InputError("no targets given; " + _SYNTAX + ".")
    if shapes is None:
        shapes = dnn.layer_shapes(list(dict.fromkeys(t.layer for _, t in parsed)))
    classes = imagenet_classes() if any(t.kind == "class" for _, t in parsed) else None
    out = []
    for spec, target in parsed:
        shape = tuple(shapes[target.layer])
        if target.kind == "class":
            target = _check_class(target, spec, shape, classes)
        out.append(_check_range(target, spec, shape))
    return out


def target_responses(dnn, x, targets):
    """Every target's value for a batch of network inputs, in one forward pass.

    The pass stops once the deepest target layer has run. Values are computed inside
    the hooks, before any later in-place operation could change the layer's output.

    Parameters
    ----------
    dnn : DNN
    x : tensor of shape (n, 3, H, W)
        Normalised input batch on ``dnn``'s device.
    targets : list of Target

    Returns
    -------
    tensor of shape (n, n_targets)
        In the network's dtype; runs under the caller's grad mode.

    Examples
    --------
    >>> values = target_responses(dnn, x, resolve_targets(["conv5:3"], dnn))  # doctest: +SKIP
    """
    by_layer = {}
    for i, t in enumerate(targets):
        by_layer.setdefault(t.layer, []).append(i)

    def reducer(idx):
        return lambda output: [targets[i].values(output) for i in idx]

    with LayerCapture(dnn.register_layer_hook,
                      {layer: reducer(idx) for layer, idx in by_layer.items()}) as capture:
        captured = capture.run(dnn.module, x)
    missing = [layer for layer in by_layer if layer not in captured]
    if missing:
        raise UnknownLayerError(f"target layers {missing} were not reached in a forward pass of "
                                f"{dnn.name}; they are not used by its forward().")
    found = [None] * len(targets)
    for layer, idx in by_layer.items():
        for i, v in zip(idx, captured[layer]):
            found[i] = v
    return torch.stack(found, dim=1)
