"""Video extraction against direct computations on frames decoded here independently:
an image network frame by frame equals the network applied to the decoded frames (and
to the same frames saved as PNG images); a clip network equals a direct call of the
torch module on the stacked, Kinetics-normalised frames (type=video and video_clip);
the video zoo's statistics are torchvision's, its Kinetics weights come through torch's
cache (offline rule) or a local .pth; clips too short are refused before any work."""
import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image

from dnnsparse.base.stimulus import Stimulus
from dnnsparse.errors import InputError, WeightsUnavailableError
from dnnsparse.model import NETS, VideoDNN, load_dnn

_spec = importlib.util.spec_from_file_location(
    "video_files", Path(__file__).parents[1] / "io" / "video_files.py")
vf = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(vf)

N = 24


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def movie(tmp_path_factory):
    path = tmp_path_factory.mktemp("video") / "m.mkv"
    times = vf.write_movie(path, N, codec=vf.CODECS[-1][1], pts_ms=vf.vfr_pts(N), gop=5)
    frames, _ = vf.decode_all(path)
    return path, times, frames


def _reference_inputs(frames, dnn):
    """Decoded RGB frames -> the network's float input, computed here: PIL resize as the
    image transform does, then (x / 255 - mean) / std in float32."""
    resized = [np.asarray(Image.fromarray(f).resize(dnn.input_size[::-1], Image.BILINEAR))
               for f in frames]
    x = torch.from_numpy(np.stack(resized)).permute(0, 3, 1, 2).float() / 255
    mean = torch.tensor(dnn.mean)[:, None, None]
    std = torch.tensor(dnn.std)[:, None, None]
    return (x - mean) / std


def _hooked(module, names, x):
    """Outputs of sub-modules ``names`` for input ``x``, with plain torch hooks."""
    out, handles = {}, []
    modules = dict(module.named_modules())
    for n in names:
        handles.append(modules[n].register_forward_hook(
            lambda m, i, o, n=n: out.__setitem__(n, o.detach().clone())))
    with torch.inference_mode():
        module(x)
    for h in handles:
        h.remove()
    return out


def _alexnet():
    dnn = load_dnn("alexnet", weights="random", seed=1)
    dnn.input_size = (64, 64)
    return dnn


def test_image_network_equals_the_network_on_decoded_frames(movie):
    path, times, frames = movie
    rows = [3, 0, 7, 7, 12, N - 1]                        # any order, repeats
    stim = Stimulus([str(r + 1) for r in rows], root=path, type="video")
    dnn = _alexnet()
    act = dnn.extract(stim, ["conv2_relu", "fc2"], batch_size=4, show_progress=False)
    ref = _hooked(dnn.module, ["features.4", "classifier.4"],
                  _reference_inputs([frames[r] for r in rows], dnn))
    np.testing.assert_allclose(act["conv2_relu"], ref["features.4"].numpy(), rtol=1e-4,
                               atol=1e-5)
    np.testing.assert_allclose(act["fc2"][:, :, 0, 0], ref["classifier.4"].numpy(),
                               rtol=1e-4, atol=1e-5)
    # rows carry the frames' real (variable-rate) timestamps
    np.testing.assert_allclose(act.attrs["onset"], times[rows], atol=1e-9)
    assert act.attrs["stim_type"] == "video"


def test_frames_by_onset_equal_the_same_frames_as_png_images(movie, tmp_path):
    path, times, frames = movie
    onsets = np.array([0.0, 0.5, times[5] + 0.001, times[9] - 0.001, 1.0])
    intended = [max(i for i in range(N) if times[i] <= t + 1e-9) for t in onsets]
    video = Stimulus([f"t{i}" for i in range(len(onsets))], root=path, type="video",
                     columns={"onset": onsets})
    for i, f in enumerate(intended):
        Image.fromarray(frames[f]).save(tmp_path / f"{i}.png")
    images = Stimulus([f"{i}.png" for i in range(len(onsets))], root=tmp_path)
    dnn = _alexnet()
    a = dnn.extract(video, ["conv5_relu"], pool="mean", batch_size=2, show_progress=False)
    b = dnn.extract(images, ["conv5_relu"], pool="mean", batch_size=2, show_progress=False)
    np.testing.assert_array_equal(a["conv5_relu"], b["conv5_relu"])   # same pixels, bits
    np.testing.assert_array_equal(a.attrs["onset"], onsets)           # the table's onsets


_R3D = {}


def _r3d(clip_len=4, clip_stride=2):
    """A random-weight r3d_18 at 32 x 32 (built once: its 33 M weights take a while)."""
    if "dnn" not in _R3D:
        _R3D["dnn"] = load_dnn("r3d_18", weights="random", seed=2)
        _R3D["dnn"].input_size = (32, 32)
    return _R3D["dnn"].set_clip(clip_len, clip_stride)


def _clip_reference(dnn, clips):
    """(n, T, H, W, 3) decoded frames -> (n, 3, T, h, w) normalised input."""
    n, t = len(clips), len(clips[0])
    x = _reference_inputs([f for c in clips for f in c], dnn)     # (n*T, 3, h, w)
    return x.reshape(n, t, *x.shape[1:]).transpose(1, 2)


def test_clip_network_equals_a_direct_call_on_stacked_frames(movie):
    path, times, frames = movie
    dnn = _r3d()
    assert isinstance(dnn, VideoDNN) and dnn.clip_span == 7
    starts = [0, 5, 2, N - 7]
    stim = Stimulus([str(s + 1) for s in starts], root=path, type="video")
    act = dnn.extract(stim, ["layer2", "layer4", "fc"], batch_size=3, show_progress=False)
    clips = [[frames[s + 2 * k] for k in range(4)] for s in starts]
    x = _clip_reference(dnn, clips)
    ref = _hooked(dnn.module, ["layer2", "layer4"], x)
    with torch.inference_mode():
        logits = dnn.module(x).numpy()
    l2 = ref["layer2"]                                   # (n, c, t, h, w)
    n, c, t, h, w = l2.shape
    np.testing.assert_allclose(act["layer2"], l2.reshape(n, c, t * h, w).numpy(),
                               rtol=1e-4, atol=1e-5)
    assert act.layer_attrs("layer2")["time_steps"] == t
    np.testing.assert_allclose(act["fc"][:, :, 0, 0], logits, rtol=1e-4, atol=1e-5)
    assert act.attrs["clip_len"] == 4 and act.attrs["clip_stride"] == 2
    np.testing.assert_allclose(act.attrs["onset"], times[starts], atol=1e-9)
    # pooling a folded 5-D layer pools time and space
    pooled = dnn.extract(stim, ["layer4"], pool="mean", batch_size=4, show_progress=False)
    np.testing.assert_allclose(pooled["layer4"][:, :, 0, 0],
                               ref["layer4"].mean(dim=(2, 3, 4)).numpy(), rtol=1e-4,
                               atol=1e-5)


def test_clip_files_equal_a_direct_call(tmp_path):
    (tmp_path / "clips").mkdir()
    lengths = [6, 9, 7]
    clips = []
    for i, n in enumerate(lengths):
        p = tmp_path / "clips" / f"c{i}.mp4"
        vf.write_movie(p, n, codec="mpeg4", image=lambda k, i=i: vf.frame_image(40 * i + k))
        clips.append(vf.decode_all(p)[0][:6:2])           # 3 frames, stride 2
    stim = Stimulus([f"c{i}.mp4" for i in range(3)], root=tmp_path / "clips",
                    type="video_clip", columns={"label": [0, 1, 1]})
    dnn = _r3d(clip_len=3, clip_stride=2)
    act = dnn.extract(stim, ["fc"], batch_size=2, show_progress=False)
    with torch.inference_mode():
        logits = dnn.module(_clip_reference(dnn, clips)).numpy()
    np.testing.assert_allclose(act["fc"][:, :, 0, 0], logits, rtol=1e-4, atol=1e-5)
    means = dnn.extract(stim, ["fc"], aggregate="label", batch_size=2, show_progress=False)
    np.testing.assert_allclose(means["fc"][1, :, 0, 0], logits[1:].mean(0), rtol=1e-4,
                               atol=1e-5)


def test_clips_shorter_than_the_input_are_refused(tmp_path, movie):
    path, _, _ = movie
    vf.write_movie(tmp_path / "short.mp4", 4, codec="mpeg4")
    stim = Stimulus(["short.mp4"], root=tmp_path, type="video_clip")
    with pytest.raises(InputError, match=r"short\.mp4 \(row 1\) has 4 frames.*3 frames "
                                         r"every 2 \(5 frames\)"):
        _r3d(clip_len=3, clip_stride=2).extract(stim, ["fc"], out=tmp_path / "a.act.h5")
    late = Stimulus(["1", str(N - 2)], root=path, type="video")
    with pytest.raises(InputError, match=r"row 2 \(frame 22\).*up to 28.*has 24"):
        _r3d().extract(late, ["fc"], out=tmp_path / "a.act.h5")
    assert not (tmp_path / "a.act.h5").exists()
    with pytest.raises(InputError, match="at least 16 frames"):
        load_dnn("mvit_v2_s", weights="random", clip_len=8)
    with pytest.raises(InputError, match="image network"):
        load_dnn("alexnet", weights="random", clip_len=8)
    with pytest.raises(InputError, match="clip network"):
        _alexnet().extract(stim, ["fc1"])
    Image.fromarray(vf.frame_image(1)).save(tmp_path / "a.png")
    with pytest.raises(InputError, match="clip network"):
        _r3d().extract(Stimulus(["a.png"], root=tmp_path), ["fc"])


def test_custom_module_as_clip_network(tmp_path, movie):
    path, _, frames = movie
    (tmp_path / "net.py").write_text(
        "import torch\n"
        "def build():\n"
        "    torch.manual_seed(0)\n"
        "    return torch.nn.Sequential(torch.nn.Conv3d(3, 4, 3, padding=1), torch.nn.ReLU(),\n"
        "                               torch.nn.AdaptiveAvgPool3d(1), torch.nn.Flatten(),\n"
        "                               torch.nn.Linear(4, 2))\n")
    dnn = load_dnn(f"{tmp_path / 'net.py'}:build", weights="random", clip_len=2)
    assert isinstance(dnn, VideoDNN)
    dnn.input_size = (16, 16)
    stim = Stimulus(["1", "4"], root=path, type="video")
    act = dnn.extract(stim, ["1", "4"], batch_size=2, show_progress=False)
    x = _clip_reference(dnn, [[frames[0], frames[1]], [frames[3], frames[4]]])
    ref = _hooked(dnn.module, ["1", "4"], x)
    np.testing.assert_allclose(act["1"], ref["1"].reshape(2, 4, 2 * 16, 16).numpy(),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(act["4"][:, :, 0, 0], ref["4"].numpy(), rtol=1e-5, atol=1e-6)


VIDEO_NETS = ["r3d_18", "mc3_18", "r2plus1d_18", "s3d", "mvit_v1_b", "mvit_v2_s"]


@pytest.mark.parametrize("arch", VIDEO_NETS)
def test_zoo_statistics_are_torchvisions(arch):
    spec = NETS[arch]
    t = torchvision.models.get_model_weights(arch).DEFAULT.transforms()
    np.testing.assert_allclose(spec.mean, t.mean)
    np.testing.assert_allclose(spec.std, t.std)
    assert list(spec.input_size) == list(t.crop_size)
    meta = torchvision.models.get_model_weights(arch).DEFAULT.meta
    assert spec.min_clip_len >= meta.get("min_temporal_size", 1)


@pytest.mark.parametrize("arch", VIDEO_NETS)
def test_layer_names_resolve_in_forward_order(arch):
    spec = NETS[arch]
    with torch.device("meta"):
        module = spec.build()
    names = spec.names(module)
    modules = dict(module.named_modules())
    assert all(ref in modules for ref in names.values())
    assert list(names)[0] in ("conv1", "conv1s") and list(names)[-1] == "fc"
    if arch.startswith(("r3d", "mc3", "r2plus1d")):
        assert {"conv1_relu", "layer1_1", "layer4", "avgpool"} <= set(names)


def test_kinetics_weights_through_the_torch_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    with pytest.raises(WeightsUnavailableError, match=r"r3d_18-b3b3357e\.pth"):
        load_dnn("r3d_18", offline=True)
    donor = load_dnn("r3d_18", weights="random", seed=5)
    cache = tmp_path / "torch" / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    torch.save(donor.module.state_dict(), cache / "r3d_18-b3b3357e.pth")
    for word in ("imagenet", "kinetics"):
        dnn = load_dnn("r3d_18", weights=word, offline=True)
        assert isinstance(dnn, VideoDNN) and dnn.weights == "kinetics400"
        assert dnn.clip_len == 16 and dnn.input_size == (112, 112)
        assert torch.equal(dnn.module.fc.weight, donor.module.fc.weight)
    local = load_dnn("r3d_18", weights=str(cache / "r3d_18-b3b3357e.pth"))
    assert torch.equal(local.module.layer1[0].conv1[0].weight,
                       donor.module.layer1[0].conv1[0].weight)
    with pytest.raises(InputError, match="no Kinetics weights"):
        load_dnn("alexnet", weights="kinetics")
