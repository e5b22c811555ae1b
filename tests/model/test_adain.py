"""AdaIN (model._adain) against a direct computation with independently written modules."""
import pytest
import torch
from torch import nn

from dnnsparse.errors import FileFormatError, WeightsUnavailableError
from dnnsparse.model import (AdaIN, adain_decoder, adain_encoder, adaptive_instance_norm,
                             find_adain_weights, load_adain)


def _reference_encoder():
    """naoto0804/pytorch-AdaIN's ``vgg`` up to relu4_1, written out module by module."""
    pad = lambda: nn.ReflectionPad2d((1, 1, 1, 1))      # noqa: E731
    return nn.Sequential(
        nn.Conv2d(3, 3, (1, 1)),
        pad(), nn.Conv2d(3, 64, (3, 3)), nn.ReLU(),
        pad(), nn.Conv2d(64, 64, (3, 3)), nn.ReLU(),
        nn.MaxPool2d((2, 2), (2, 2), (0, 0), ceil_mode=True),
        pad(), nn.Conv2d(64, 128, (3, 3)), nn.ReLU(),
        pad(), nn.Conv2d(128, 128, (3, 3)), nn.ReLU(),
        nn.MaxPool2d((2, 2), (2, 2), (0, 0), ceil_mode=True),
        pad(), nn.Conv2d(128, 256, (3, 3)), nn.ReLU(),
        pad(), nn.Conv2d(256, 256, (3, 3)), nn.ReLU(),
        pad(), nn.Conv2d(256, 256, (3, 3)), nn.ReLU(),
        pad(), nn.Conv2d(256, 256, (3, 3)), nn.ReLU(),
        nn.MaxPool2d((2, 2), (2, 2), (0, 0), ceil_mode=True),
        pad(), nn.Conv2d(256, 512, (3, 3)), nn.ReLU())


def _reference_decoder():
    pad = lambda: nn.ReflectionPad2d((1, 1, 1, 1))      # noqa: E731
    up = lambda: nn.Upsample(scale_factor=2, mode="nearest")   # noqa: E731
    return nn.Sequential(
        pad(), nn.Conv2d(512, 256, (3, 3)), nn.ReLU(), up(),
        pad(), nn.Conv2d(256, 256, (3, 3)), nn.ReLU(),
        pad(), nn.Conv2d(256, 256, (3, 3)), nn.ReLU(),
        pad(), nn.Conv2d(256, 256, (3, 3)), nn.ReLU(),
        pad(), nn.Conv2d(256, 128, (3, 3)), nn.ReLU(), up(),
        pad(), nn.Conv2d(128, 128, (3, 3)), nn.ReLU(),
        pad(), nn.Conv2d(128, 64, (3, 3)), nn.ReLU(), up(),
        pad(), nn.Conv2d(64, 64, (3, 3)), nn.ReLU(),
        pad(), nn.Conv2d(64, 3, (3, 3)))


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """Random reference modules and their state dicts saved as .pth files."""
    torch.manual_seed(0)
    enc, dec = _reference_encoder().eval(), _reference_decoder().eval()
    for m in dec.modules():          # keep the decoded values in a moderate range
        if isinstance(m, nn.Conv2d):
            m.weight.data.mul_(0.5)
    d = tmp_path_factory.mktemp("adain")
    state = dict(enc.state_dict())
    # the released vgg_normalised.pth also holds conv4_2..conv5_4: ignored
    state["31.weight"], state["31.bias"] = torch.zeros(512, 512, 3, 3), torch.zeros(512)
    torch.save(state, d / "vgg_normalised.pth")
    torch.save(dec.state_dict(), d / "decoder.pth")
    return enc, dec, d / "vgg_normalised.pth", d / "decoder.pth"


def _images():
    g = torch.Generator().manual_seed(1)
    return torch.rand(1, 3, 32, 32, generator=g), torch.rand(1, 3, 40, 24, generator=g)


def _direct(enc, dec, content, style, alpha, eps=1e-5):
    """Encoder -> per-channel mean/std swap (unbiased std) -> mix -> decoder, by hand."""
    with torch.no_grad():
        fc, fs = enc(content), enc(style)
        c = fc.flatten(2)
        s = fs.flatten(2)
        mc, sc = c.mean(-1), (c.var(-1, unbiased=True) + eps).sqrt()
        ms, ss = s.mean(-1), (s.var(-1, unbiased=True) + eps).sqrt()
        t = (fc - mc[..., None, None]) / sc[..., None, None] * ss[..., None, None] \
            + ms[..., None, None]
        return dec(alpha * t + (1 - alpha) * fc)


def test_layouts_match_the_public_state_dicts(weights):
    enc, dec, _, _ = weights
    for ours, ref in ((adain_encoder(), enc), (adain_decoder(), dec)):
        assert [(k, tuple(v.shape)) for k, v in ours.state_dict().items()] == \
            [(k, tuple(v.shape)) for k, v in ref.state_dict().items()]
        assert [type(m) for m in ours] == [type(m) for m in ref]


@pytest.mark.parametrize("alpha", [1.0, 0.4])
def test_output_equals_direct_computation(weights, alpha):
    enc, dec, enc_path, dec_path = weights
    net, files = load_adain(enc_path, dec_path)
    assert files == (enc_path, dec_path)
    content, style = _images()
    want = _direct(enc, dec, content, style, alpha)
    with torch.no_grad():
        got = net(content, style, alpha)
    assert got.shape == (1, 3, 32, 32)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(net.stylise(content, style, alpha), want.clamp(0, 1),
                               rtol=1e-4, atol=1e-5)
    # alpha 0: the decoded content features; the style makes no difference
    with torch.no_grad():
        torch.testing.assert_close(net(content, style, 0.0), dec(enc(content)))


def test_adaptive_instance_norm_moves_the_statistics():
    g = torch.Generator().manual_seed(0)
    c = torch.randn(2, 4, 5, 6, generator=g) * 3 + 1
    s = torch.randn(2, 4, 7, 3, generator=g) * 0.5 - 2
    out = adaptive_instance_norm(c, s, eps=0.0)
    torch.testing.assert_close(out.mean(dim=(2, 3)), s.mean(dim=(2, 3)))
    torch.testing.assert_close(out.flatten(2).std(-1), s.flatten(2).std(-1))


def test_missing_weights_name_what_to_supply(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    with pytest.raises(WeightsUnavailableError, match="vgg_normalised.pth.*decoder.pth"):
        find_adain_weights()
    with pytest.raises(WeightsUnavailableError, match="-adain-decoder"):
        find_adain_weights(None, tmp_path / "nope.pth")


def test_weights_found_in_the_hub_cache(weights, tmp_path, monkeypatch):
    _, _, enc_path, dec_path = weights
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    (tmp_path / "hub" / "checkpoints").mkdir(parents=True)
    for p in (enc_path, dec_path):
        (tmp_path / "hub" / "checkpoints" / p.name).write_bytes(p.read_bytes())
    assert [p.name for p in find_adain_weights()] == ["vgg_normalised.pth", "decoder.pth"]


def test_wrong_files_are_refused(weights, tmp_path):
    _, _, enc_path, dec_path = weights
    with pytest.raises(FileFormatError, match="encoder"):
        load_adain(dec_path, dec_path)           # the decoder's keys as an encoder
    bad = tmp_path / "bad.pth"
    bad.write_text("not a checkpoint")
    with pytest.raises(FileFormatError, match="cannot read"):
        load_adain(enc_path, bad)


def test_alpha_outside_unit_interval(weights):
    net = AdaIN(adain_encoder(), adain_decoder())
    x = torch.rand(1, 3, 16, 16)
    with pytest.raises(Exception, match="alpha"):
        net(x, x, 1.5)
