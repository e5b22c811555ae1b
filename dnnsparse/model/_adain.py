"""AdaIN style transfer (Huang & Belongie 2017), the Top-K paper's stylised test sets (Fig. 6).

An encoder (VGG-19 with a colour-normalising 1x1 convolution in front and reflection
padding, up to ``relu4_1``) maps content and style images to features ``f_c`` and
``f_s``; adaptive instance normalisation gives every channel of ``f_c`` the mean and
standard deviation of the same channel of ``f_s``,

``t = sigma(f_s) (f_c - mu(f_c)) / sigma(f_c) + mu(f_s)``,

``alpha`` mixes it with the content features (``alpha t + (1 - alpha) f_c``) and a
decoder mirroring the encoder turns the result into an image.

The module layouts are those of the public weights of ``naoto0804/pytorch-AdaIN``
(``vgg_normalised.pth``: the normalised VGG-19 to ``relu5_4`` as an ``nn.Sequential``
state dict, of which the first :data:`ENCODER_MODULES` modules are used;
``decoder.pth``), so their state dicts load as they are. Nothing is downloaded: give
the two files, or put them in torch's hub cache (``torch.hub.get_dir()/checkpoints``).

- :func:`adain_encoder`, :func:`adain_decoder` -- the two ``nn.Sequential``\\ s.
- :func:`adaptive_instance_norm` -- the formula above.
- :class:`AdaIN` -- encoder + decoder, ``forward(content, style, alpha)``.
- :func:`find_adain_weights`, :func:`load_adain` -- the weight files, or one line
  saying what to supply.
"""
import logging
from pathlib import Path

import torch
from torch import nn

from ..errors import FileFormatError, WeightsUnavailableError
from ..utils.validation import check_scalar

__all__ = ["ADAIN_FILES", "AdaIN", "ENCODER_MODULES", "adain_decoder", "adain_encoder",
           "adaptive_instance_norm", "find_adain_weights", "load_adain"]

log = logging.getLogger(__name__)

#: File names of the public weights (looked up in torch's hub checkpoints folder).
ADAIN_FILES = {"encoder": "vgg_normalised.pth", "decoder": "decoder.pth"}

#: Modules of the normalised VGG-19 up to and including ``relu4_1``.
ENCODER_MODULES = 31

# normalised VGG-19: (in, out) channels of the 3x3 convolutions, "M" a max pool
_VGG19 = [(3, 64), (64, 64), "M", (64, 128), (128, 128), "M", (128, 256), (256, 256),
          (256, 256), (256, 256), "M", (256, 512), (512, 512), (512, 512), (512, 512), "M",
          (512, 512), (512, 512), (512, 512), (512, 512)]


def _vgg_normalised():
    mods = [nn.Conv2d(3, 3, 1)]
    for item in _VGG19:
        if item == "M":
            mods.append(nn.MaxPool2d(2, 2, 0, ceil_mode=True))
        else:
            mods += [nn.ReflectionPad2d(1), nn.Conv2d(*item, 3), nn.ReLU()]
    return nn.Sequential(*mods)


def adain_encoder():
    """The normalised VGG-19 up to ``relu4_1`` (:data:`ENCODER_MODULES` modules).

    Input: images ``(n, 3, H, W)`` in ``[0, 1]``; output ``(n, 512, H/8, W/8)``
    (rounded up). Module indices are those of the full ``vgg_normalised.pth``.

    Examples
    --------
    >>> tuple(adain_encoder()(torch.zeros(1, 3, 32, 32)).shape)
    (1, 512, 4, 4)
    """
    return nn.Sequential(*list(_vgg_normalised().children())[:ENCODER_MODULES])


def adain_decoder():
    """The decoder mirroring :func:`adain_encoder`: ``(n, 512, h, w) -> (n, 3, 8h, 8w)``.

    Examples
    --------
    >>> tuple(adain_decoder()(torch.zeros(1, 512, 4, 4)).shape)
    (1, 3, 32, 32)
    """
    mods = []
    for cin, cout, up in ((512, 256, True), (256, 256, False), (256, 256, False),
                          (256, 256, False), (256, 128, True), (128, 128, False),
                          (128, 64, True), (64, 64, False), (64, 3, None)):
        mods += [nn.ReflectionPad2d(1), nn.Conv2d(cin, cout, 3)]
        if up is not None:
            mods.append(nn.ReLU())
        if up:
            mods.append(nn.Upsample(scale_factor=2, mode="nearest"))
    return nn.Sequential(*mods)


def _mean_std(features, eps):
    n, c = features.shape[:2]
    flat = features.reshape(n, c, -1)
    var = flat.var(dim=2) + eps          # unbiased, as the reference implementation
    return flat.mean(dim=2).view(n, c, 1, 1), var.sqrt().view(n, c, 1, 1)


def adaptive_instance_norm(content, style, *, eps=1e-5):
    """``sigma(s) (c - mu(c)) / sigma(c) + mu(s)`` per image and channel.

    Parameters
    ----------
    content, style : tensor of shape (n, c, h, w)
        Spatial sizes may differ. ``sigma`` is the square root of the unbiased
        variance over the positions plus ``eps``.

    Returns
    -------
    tensor of the shape of ``content``

    Examples
    --------
    >>> c = torch.tensor([[[[0., 2.]]]]); s = torch.tensor([[[[5., 9.]]]])
    >>> adaptive_instance_norm(c, s, eps=0).tolist()
    [[[[5.0, 9.0]]]]
    """
    c_mean, c_std = _mean_std(content, eps)
    s_mean, s_std = _mean_std(style, eps)
    return (content - c_mean) / c_std * s_std + s_mean


class AdaIN(nn.Module):
    """Encoder, AdaIN and decoder: ``forward(content, style, alpha) -> images``.

    Parameters
    ----------
    encoder, decoder : nn.Module
        :func:`adain_encoder`, :func:`adain_decoder` with their weights.

    Examples
    --------
    >>> net = AdaIN(adain_encoder(), adain_decoder())
    >>> x = torch.rand(1, 3, 32, 32)
    >>> tuple(net.stylise(x, x).shape)
    (1, 3, 32, 32)
    """

    def __init__(self, encoder, decoder):
        super().__init__()
        self.encoder, self.decoder = encoder, decoder

    def forward(self, content, style, alpha=1.0):
        """The decoded image (not clipped) of ``alpha`` AdaIN + ``1 - alpha`` content."""
        check_scalar(alpha, name="alpha", min_val=0, max_val=1)
        f_c, f_s = self.encoder(content), self.encoder(style)
        t = adaptive_instance_norm(f_c, f_s)
        return self.decoder(alpha * t + (1 - alpha) * f_c)

    @torch.no_grad()
    def stylise(self, content, style, alpha=1.0):
        """:meth:`forward` clipped to ``[0, 1]``, cropped to the content's size."""
        out = self.forward(content, style, alpha).clamp(0, 1)
        return out[..., :content.shape[-2], :content.shape[-1]]


def find_adain_weights(encoder=None, decoder=None):
    """The encoder and decoder weight files: the given paths, else torch's hub cache.

    Raises
    ------
    WeightsUnavailableError
        One line naming the files to supply (nothing is downloaded).
    """
    cache = Path(torch.hub.get_dir()) / "checkpoints"
    found = {}
    for part, given in (("encoder", encoder), ("decoder", decoder)):
        path = Path(given) if given is not None else cache / ADAIN_FILES[part]
        if not path.is_file():
            where = (f"-adain-{part} {path} does not exist" if given is not None else
                     f"no {ADAIN_FILES[part]} in {cache}")
            raise WeightsUnavailableError(
                f"AdaIN needs its weights ({where}): give -adain-encoder vgg_normalised.pth "
                f"and -adain-decoder decoder.pth (the pytorch-AdaIN release) or copy them "
                f"into {cache}; nothing is downloaded.")
        found[part] = path
    return found["encoder"], found["decoder"]


def _load_state(module, path, part):
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:       # unpickling errors of every kind
        raise FileFormatError(f"cannot read the AdaIN {part} weights {path}: "
                              f"{' '.join(str(exc).split())[:200]}.") from None
    if not isinstance(state, dict):
        raise FileFormatError(f"the AdaIN {part} weights {path} are not a state dict.")
    own = module.state_dict()
    # vgg_normalised.pth holds the VGG-19 to relu5_4: the modules past relu4_1 are unused
    state = {k: v for k, v in state.items() if k in own or part != "encoder"}
    missing = sorted(set(own) - set(state))
    extra = sorted(set(state) - set(own))
    bad = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or extra or bad:
        what = (f"missing {', '.join(missing[:3])}" if missing else
                f"unexpected {', '.join(extra[:3])}" if extra else
                f"shape of {bad[0]} is {tuple(state[bad[0]].shape)}, expected "
                f"{tuple(own[bad[0]].shape)}")
        raise FileFormatError(f"the AdaIN {part} weights {path} do not fit the "
                              f"pytorch-AdaIN layout ({what}); give {ADAIN_FILES[part]}.")
    module.load_state_dict(state)
    return module


def load_adain(encoder=None, decoder=None):
    """:class:`AdaIN` with the weights of :func:`find_adain_weights`, in eval mode.

    Returns
    -------
    AdaIN, (Path, Path)
        The network and the two files used.
    """
    enc_path, dec_path = find_adain_weights(encoder, decoder)
    net = AdaIN(_load_state(adain_encoder(), enc_path, "encoder"),
                _load_state(adain_decoder(), dec_path, "decoder"))
    for p in net.parameters():
        p.requires_grad_(False)
    log.info("AdaIN weights: %s, %s", enc_path, dec_path)
    return net.eval(), (enc_path, dec_path)
