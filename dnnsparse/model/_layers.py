"""Friendly layer names (DNNBrain's ``conv1``, ``conv1_relu``, ... ``fc2_relu``).

A layer name maps to a *reference*: a module path as in
``nn.Module.named_modules()`` (``"features.1"``), optionally followed by
``#k`` when that module is called several times in one forward pass and the
layer is its k-th call (0-based; e.g. EfficientNet's shared ``_swish``).

Each function here takes a built network and returns an ordered
``{name: reference}`` dict in forward order.
"""
from torch import nn

__all__ = [
    "parse_ref", "sequential_names", "resnet_names", "googlenet_names",
    "efficientnet_lite_names", "module_path_names", "video_resnet_names", "s3d_names",
    "mvit_names",
]


def parse_ref(ref):
    """Split ``"path#k"`` into ``("path", k)``; a plain path gives ``(path, None)``.

    >>> parse_ref("_swish#1"), parse_ref("features.0")
    (('_swish', 1), ('features.0', None))
    """
    path, sep, call = ref.partition("#")
    return path, (int(call) if sep else None)


def sequential_names(model):
    """AlexNet/VGG names over ``features`` then ``classifier``.

    Convolutions are numbered ``conv1..convN`` across the net; the BatchNorm,
    ReLU and max-pool that follow a convolution are ``convN_bn``,
    ``convN_relu`` and ``convN_maxpool`` (in this order for vgg*_bn: conv, bn,
    relu — DNNBrain swapped vgg19_bn's conv1_relu/conv1_bn; we do not).
    Linear layers are ``fc1..fcN`` with ``fcN_relu``; dropouts are skipped.
    """
    names = {}
    n_conv = n_fc = 0
    for i, m in enumerate(model.features):
        path = f"features.{i}"
        if isinstance(m, nn.Conv2d):
            n_conv += 1
            names[f"conv{n_conv}"] = path
        elif isinstance(m, nn.BatchNorm2d):
            names[f"conv{n_conv}_bn"] = path
        elif isinstance(m, nn.ReLU):
            names[f"conv{n_conv}_relu"] = path
        elif isinstance(m, nn.MaxPool2d):
            names[f"conv{n_conv}_maxpool"] = path
    if hasattr(model, "avgpool"):
        names["avgpool"] = "avgpool"
    for i, m in enumerate(model.classifier):
        path = f"classifier.{i}"
        if isinstance(m, nn.Linear):
            n_fc += 1
            names[f"fc{n_fc}"] = path
        elif isinstance(m, nn.ReLU):
            names[f"fc{n_fc}_relu"] = path
    return names


def resnet_names(model):
    """ResNet: ``conv1, conv1_bn, conv1_relu, conv1_maxpool``, each residual block's
    output ``layer{stage}_{block}`` (1-based), each stage's output ``layer{stage}``,
    ``avgpool`` and ``fc``."""
    names = {"conv1": "conv1", "conv1_bn": "bn1", "conv1_relu": "relu",
             "conv1_maxpool": "maxpool"}
    return _residual_stages(model, names)


def _residual_stages(model, names):
    """``names`` plus ResNet's ``layer{s}_{b}`` (1-based), ``layer{s}``, ``avgpool``, ``fc``."""
    for s in range(1, 5):
        stage = getattr(model, f"layer{s}")
        for b in range(len(stage)):
            names[f"layer{s}_{b + 1}"] = f"layer{s}.{b}"
        names[f"layer{s}"] = f"layer{s}"
    names.update(avgpool="avgpool", fc="fc")
    return names


def googlenet_names(model):
    """GoogLeNet: ``conv1`` (conv+bn+ReLU), ``conv1_maxpool``, ``conv2``, ``conv3``,
    ``conv3_maxpool``, ``inception3a`` ... ``inception5b`` with
    ``inception3_maxpool``/``inception4_maxpool``, ``avgpool``, ``fc``."""
    rename = {"maxpool1": "conv1_maxpool", "maxpool2": "conv3_maxpool",
              "maxpool3": "inception3_maxpool", "maxpool4": "inception4_maxpool"}
    return {rename.get(n, n): n for n, _ in model.named_children()
            if n not in ("dropout", "aux1", "aux2") and getattr(model, n) is not None}


def efficientnet_lite_names(model):
    """EfficientNet-Lite (``efficientnet_lite_pytorch``): ``conv_stem``, ``stem_bn``,
    ``stem_relu``, blocks ``block1..block16`` (MBConv outputs) with
    ``blockN_relu`` (the ReLU6 after the depthwise convolution), ``conv_head``,
    ``head_bn``, ``head_relu``, ``avgpool``, ``fc``.

    The network calls one ReLU6 module for both stem and head, and each block
    calls its own ReLU6 twice (after the expansion and after the depthwise
    convolution), hence the ``#k`` call indices.
    """
    names = {"conv_stem": "_conv_stem", "stem_bn": "_bn0", "stem_relu": "_swish#0"}
    for i, block in enumerate(model._blocks):
        names[f"block{i + 1}_relu"] = (f"_blocks.{i}._swish#1"
                                       if block._block_args.expand_ratio != 1
                                       else f"_blocks.{i}._swish#0")
        names[f"block{i + 1}"] = f"_blocks.{i}"
    names.update(conv_head="_conv_head", head_bn="_bn1", head_relu="_swish#1",
                 avgpool="_avg_pooling", fc="_fc")
    return names


def module_path_names(model):
    """Any ``nn.Module``: every sub-module under its own path (``"features.0"``)."""
    return {n: n for n, _ in model.named_modules() if n}


def video_resnet_names(model):
    """torchvision's video ResNets (``r3d_18``, ``mc3_18``, ``r2plus1d_18``).

    The stem is ``conv1``, ``conv1_bn``, ``conv1_relu`` (R(2+1)D's stem factorises
    it: ``conv1s``, ``conv1s_bn``, ``conv1s_relu`` for the spatial 1x7x7 convolution,
    then ``conv1``, ``conv1_bn``, ``conv1_relu`` for the temporal one), so
    ``conv1_relu`` is the stem's output in all three; then as :func:`resnet_names`:
    ``layer{s}_{b}``, ``layer{s}``, ``avgpool``, ``fc``.
    """
    convs = [i for i, m in enumerate(model.stem) if isinstance(m, nn.Conv3d)]
    prefixes = ["conv1s"] * (len(convs) - 1) + ["conv1"]
    names, prefix = {}, "conv1"
    for i, m in enumerate(model.stem):
        if i in convs:
            prefix = prefixes[convs.index(i)]
            names[prefix] = f"stem.{i}"
        elif isinstance(m, nn.BatchNorm3d):
            names[f"{prefix}_bn"] = f"stem.{i}"
        elif isinstance(m, nn.ReLU):
            names[f"{prefix}_relu"] = f"stem.{i}"
    return _residual_stages(model, names)


def s3d_names(model):
    """S3D: ``conv1``, ``conv1_maxpool``, ``conv2``, ``conv3``, ``conv3_maxpool``, the
    separable inception blocks under the paper's names (``inception3b``, ``3c``,
    ``inception3_maxpool``, ``4b``..``4f``, ``inception4_maxpool``, ``5b``, ``5c``),
    ``avgpool`` and ``fc`` (the 1x1x1 convolution classifier)."""
    names, n_conv, stage, block, previous = {}, 0, 3, 0, ""
    for i, m in enumerate(model.features):
        kind = type(m).__name__
        if kind in ("TemporalSeparableConv", "Conv3dNormActivation"):
            n_conv += 1
            previous = f"conv{n_conv}"
        elif kind == "SepInceptionBlock3D":
            previous = f"inception{stage}{'bcdef'[block]}"
            block += 1
        elif isinstance(m, nn.MaxPool3d):
            previous = (f"conv{n_conv}_maxpool" if not block else
                        f"inception{stage}_maxpool")
            if block:
                stage, block = stage + 1, 0
        names[previous] = f"features.{i}"
    names.update(avgpool="avgpool", fc="classifier.1")
    return names


def mvit_names(model):
    """MViT: ``conv1`` (the patch projection), ``block1``..``blockN``, ``norm``, ``fc``."""
    names = {"conv1": "conv_proj"}
    names.update({f"block{i + 1}": f"blocks.{i}" for i in range(len(model.blocks))})
    names.update(norm="norm", fc="head.1")
    return names
