import os
import re

import pytest
import torch
import torchvision

from dnnsparse.errors import InputError, UnknownLayerError, WeightsUnavailableError
from dnnsparse.model import NETS, load_dnn


def test_alexnet_and_vgg_names_follow_dnnbrain():
    alex = load_dnn("alexnet", weights="random")
    assert [l for l in alex.layers if l != "avgpool"] == [
        "conv1", "conv1_relu", "conv1_maxpool", "conv2", "conv2_relu", "conv2_maxpool",
        "conv3", "conv3_relu", "conv4", "conv4_relu", "conv5", "conv5_relu", "conv5_maxpool",
        "fc1", "fc1_relu", "fc2", "fc2_relu", "fc3"]
    assert alex.layer_map["fc1"] == "classifier.1" and alex.layer_map["fc2_relu"] == "classifier.5"
    vgg = load_dnn("vgg19_bn", weights="random")
    # conv, then bn, then relu -- DNNBrain had conv1_relu/conv1_bn swapped
    assert vgg.layer_map["conv1"] == "features.0"
    assert vgg.layer_map["conv1_bn"] == "features.1"
    assert vgg.layer_map["conv1_relu"] == "features.2"
    assert sum(l.startswith("conv") and l[4:].isdigit() for l in vgg.layers) == 16


def test_random_weights_are_seeded():
    a = load_dnn("resnet18", weights="random", seed=3).module.state_dict()
    b = load_dnn("resnet18", weights="random", seed=3).module.state_dict()
    c = load_dnn("resnet18", weights="random", seed=4).module.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["conv1.weight"], c["conv1.weight"])


def test_pth_weights_and_mismatch(tmp_path):
    ref = torchvision.models.alexnet(weights=None)
    torch.save({"state_dict": ref.state_dict()}, tmp_path / "w.pth")
    dnn = load_dnn("alexnet", weights=str(tmp_path / "w.pth"))
    assert torch.equal(dnn.module.features[0].weight, ref.features[0].weight)
    assert len(dnn.weights_sha256) == 64
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), tmp_path / "r.pth")
    with pytest.raises(InputError, match="do not fit this network: missing features.0.weight"):
        load_dnn("alexnet", weights=str(tmp_path / "r.pth"))


def test_imagenet_offline_names_expected_file(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setenv("DNNSPARSE_OFFLINE", "1")
    with pytest.raises(WeightsUnavailableError,
                       match=r"not cached at .*checkpoints/alexnet-owt-7be5be79.pth.*-weights"):
        load_dnn("alexnet")


def test_imagenet_uses_torch_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setenv("DNNSPARSE_OFFLINE", "1")
    ref = torchvision.models.alexnet(weights=None)
    (tmp_path / "hub" / "checkpoints").mkdir(parents=True)
    torch.save(ref.state_dict(), tmp_path / "hub" / "checkpoints" / "alexnet-owt-7be5be79.pth")
    dnn = load_dnn("alexnet")
    assert dnn.weights == "imagenet"
    assert torch.equal(dnn.module.classifier[6].bias, ref.classifier[6].bias)


def test_efficientnet_lite0_pretrained_offline():
    pytest.importorskip("efficientnet_lite_pytorch",
                        reason="install the [efficientnet] extra")  # part of [all]
    dnn = load_dnn("efficientnet_lite0")
    shapes = dnn.layer_shapes(["stem_relu", "block1_relu", "head_relu", "fc"])
    assert shapes == {"stem_relu": (32, 112, 112), "block1_relu": (32, 112, 112),
                      "head_relu": (1280, 7, 7), "fc": (1000, 1, 1)}
    # the shared ReLU6 module is called for stem and head: the #k reference picks the call
    x = torch.randn(1, 3, 224, 224)
    out = dnn.forward_layers(x, ["stem_relu", "head_relu"], stop_early=False)
    m = dnn.module
    with torch.no_grad():
        stem = m._swish(m._bn0(m._conv_stem(x)))
    torch.testing.assert_close(out["stem_relu"], stem)


def test_custom_network_from_file(tmp_path):
    (tmp_path / "mynet.py").write_text(
        "import torch.nn as nn\n"
        "def build():\n"
        "    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1))\n")
    dnn = load_dnn(f"{tmp_path / 'mynet.py'}:build", weights="random")
    assert dnn.layers == ["0", "1", "2"]
    assert dnn.layer_shapes(["1"])["1"] == (4, 222, 222)
    with pytest.raises(UnknownLayerError, match="valid layers: 0, 1, 2"):
        dnn.resolve("conv9")
    with pytest.raises(InputError, match="no ImageNet weights"):
        load_dnn(f"{tmp_path / 'mynet.py'}:build")
    with pytest.raises(InputError, match="unknown network 'nope'"):
        load_dnn("nope")


@pytest.mark.parametrize("net", ["googlenet", "resnet152", "vgg11", "vgg16"])
def test_zoo_networks_build_and_name_layers(net):
    dnn = load_dnn(net, weights="random")
    assert net in NETS
    assert dnn.layer_shapes([dnn.layers[0], dnn.layers[-1]])[dnn.layers[-1]] == (1000, 1, 1)


def test_weights_file_that_is_not_pytorch(tmp_path):
    from dnnsparse.errors import FileFormatError
    (tmp_path / "bad.pth").write_text("garbage")
    with pytest.raises(FileFormatError, match=r"bad.pth \(not a PyTorch file\)"):
        load_dnn("alexnet", weights=str(tmp_path / "bad.pth"))
    torch.save({"a": [1, 2]}, tmp_path / "obj.pth")
    with pytest.raises(FileFormatError, match="does not hold a state dict of tensors"):
        load_dnn("alexnet", weights=str(tmp_path / "obj.pth"))


# ------------------------------------------------- downloads: explicit offline, timeout
def test_offline_parameter_overrides_the_environment(tmp_path, monkeypatch):
    from dnnsparse.model import cached_download
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv("DNNSPARSE_OFFLINE", raising=False)
    with pytest.raises(WeightsUnavailableError,
                       match=r"alexnet-owt-7be5be79.pth and downloads are off \(offline=True\)"):
        load_dnn("alexnet", offline=True)
    assert "DNNSPARSE_OFFLINE" not in os.environ
    # a local file:// "download": offline=False downloads although the variable is set
    source = tmp_path / "remote" / "tiny-0123.pth"
    source.parent.mkdir()
    torch.save({"w": torch.arange(3.0)}, source)
    monkeypatch.setenv("DNNSPARSE_OFFLINE", "1")
    with pytest.raises(WeightsUnavailableError, match="and DNNSPARSE_OFFLINE is set. Download"):
        cached_download(source.as_uri(), net="tiny")
    path = cached_download(source.as_uri(), net="tiny", offline=False)
    assert path == tmp_path / "torch" / "hub" / "checkpoints" / "tiny-0123.pth"
    assert path.read_bytes() == source.read_bytes()
    assert list(path.parent.iterdir()) == [path]                   # no temporary left
    source.unlink()
    assert cached_download(source.as_uri(), net="tiny") == path   # cached: no download


def test_download_timeout_is_per_call(tmp_path, monkeypatch):
    # a loopback server that accepts the connection and never answers
    import socket
    import threading
    from dnnsparse.model import cached_download
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.delenv("DNNSPARSE_OFFLINE", raising=False)
    server = socket.create_server(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{server.getsockname()[1]}/stalled-0123.pth"
    errors, seen = [], set()

    def download():
        try:
            cached_download(url, net="stalled", timeout=0.5)
        except WeightsUnavailableError as exc:
            errors.append(str(exc))

    before = socket.getdefaulttimeout()
    thread = threading.Thread(target=download)
    try:
        thread.start()
        while thread.is_alive():            # the process-wide default is never touched
            seen.add(socket.getdefaulttimeout())
            thread.join(0.01)
    finally:
        server.close()
    assert seen == {before} and socket.getdefaulttimeout() == before
    assert len(errors) == 1
    assert re.search(r"could not be downloaded \((TimeoutError|URLError)\)", errors[0])
    assert not (tmp_path / "hub" / "checkpoints" / "stalled-0123.pth").exists()


def test_imagenet_weights_download_on_a_fresh_machine(tmp_path, monkeypatch):
    # an HTTP server on the loopback interface serves the weights file under torchvision's
    # name; TORCH_HOME is an empty folder, as on a machine that never downloaded anything
    import functools
    import http.server
    import threading
    import types
    import torchvision.models as tvm
    served = tmp_path / "served"
    served.mkdir()
    ref = load_dnn("googlenet", weights="random", seed=3).module.state_dict()
    name = os.path.basename(tvm.get_model_weights("googlenet").DEFAULT.url)
    torch.save(ref, served / name)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/{name}"
    real = tvm.get_model_weights
    monkeypatch.setattr(tvm, "get_model_weights", lambda arch: types.SimpleNamespace(
        DEFAULT=types.SimpleNamespace(url=url)) if arch == "googlenet" else real(arch))
    home = tmp_path / "torch_home"
    home.mkdir()
    monkeypatch.setenv("TORCH_HOME", str(home))
    monkeypatch.delenv("DNNSPARSE_OFFLINE", raising=False)
    try:
        dnn = load_dnn("googlenet")
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
    cached = home / "hub" / "checkpoints" / name
    assert sorted(p.name for p in cached.parent.iterdir()) == [name]   # no temporary left
    assert cached.read_bytes() == (served / name).read_bytes()
    assert dnn.weights == "imagenet"
    state = dnn.module.state_dict()
    assert all(torch.equal(state[k], v) for k, v in ref.items())


def test_uncreatable_weights_cache_names_the_folder(tmp_path, monkeypatch):
    from dnnsparse.model import cached_download
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "file" / "torch"))
    with pytest.raises(WeightsUnavailableError,
                       match=r"hub/checkpoints/w-1.pth and its folder cannot be created "
                             r"\(Not a directory\). Set TORCH_HOME"):
        cached_download("http://127.0.0.1:9/w-1.pth", net="w", offline=False)
