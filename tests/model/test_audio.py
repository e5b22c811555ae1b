"""Audio extraction: VGGish's layout and names, activations equal to the module applied
directly to the log-mel examples, segments read from the right samples, bad rows."""
import numpy as np
import pytest
import soundfile as sf
import torch
from scipy.signal import resample_poly

from dnnsparse.base.stimulus import Stimulus
from dnnsparse.errors import InputError, WeightsUnavailableError
from dnnsparse.model import load_dnn, wrap_module
from dnnsparse.model import AudioDNN, VGGish, as_audio_dnn, vggish_names
from dnnsparse.utils.audio import log_mel_examples

RATE = 44100


class Energy(torch.nn.Module):
    """Tiny audio network: a conv and the mean input energy per example."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(1, 3, 5, stride=4)
        self.relu = torch.nn.ReLU()

    def forward(self, x):
        return self.relu(self.conv(x))


def _clicks(seconds, at, rate=RATE):
    x = np.zeros(int(round(seconds * rate)))
    for s in at:
        x[int(round(s * rate))] = 0.9
    return x


def _examples(x, rate=RATE):
    return log_mel_examples(resample_poly(x, 160, 441) if rate == RATE else x)


@pytest.fixture
def long_file(tmp_path):
    rng = np.random.default_rng(3)
    x = 1e-3 * rng.standard_normal(int(6 * RATE))
    x[int(4.1 * RATE)] = 0.99                                 # a click at 4.1 s
    sf.write(tmp_path / "long.wav", x, RATE, subtype="FLOAT")
    return tmp_path / "long.wav", sf.read(tmp_path / "long.wav")[0]


def test_vggish_layout_and_names():
    with torch.device("meta"):
        net = VGGish()
    names = vggish_names(net)
    assert [n for n in names if not n.endswith(("_relu", "_maxpool"))] == \
        ["conv1", "conv2", "conv3", "conv4", "conv5", "conv6", "fc1", "fc2", "fc3"]
    assert [net.get_submodule(names[f"conv{i}"]).out_channels for i in range(1, 7)] == \
        [64, 128, 256, 256, 512, 512]
    assert [n for n in names if n.endswith("_maxpool")] == \
        ["conv1_maxpool", "conv2_maxpool", "conv4_maxpool", "conv6_maxpool"]
    assert [(m.in_features, m.out_features) for m in net.embeddings
            if isinstance(m, torch.nn.Linear)] == [(12288, 4096), (4096, 4096), (4096, 128)]
    # the port's state-dict keys, so its released file loads as it is
    assert {k.split(".")[0] for k in net.state_dict()} == {"features", "embeddings"}
    assert "features.0.weight" in net.state_dict() and "embeddings.4.bias" in net.state_dict()


def test_vggish_activations_equal_the_module_on_the_examples(tmp_path):
    x = 0.5 * np.sin(2 * np.pi * 440 * np.arange(int(2.2 * RATE)) / RATE)
    sf.write(tmp_path / "a.wav", x, RATE, subtype="DOUBLE")
    dnn = load_dnn("vggish", weights="random", seed=1)
    assert isinstance(dnn, AudioDNN) and dnn.weights == "random(seed=1)"
    act = dnn.extract(Stimulus(["a.wav"], root=tmp_path, type="audio"),
                      ["conv2", "fc3_relu"], show_progress=False)
    ex = torch.from_numpy(_examples(x).astype(np.float32))[:, None]
    with torch.inference_mode():
        conv2 = dnn.module.features[:4](ex)
        fc3 = dnn.module(ex)
    assert act.stim_ids.tolist() == ["a.wav#1", "a.wav#2"]
    np.testing.assert_allclose(act.get("conv2"), conv2.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(act.get("fc3_relu")[:, :, 0, 0], fc3.numpy(), rtol=1e-5,
                               atol=1e-6)


def test_any_module_on_segments_reads_the_right_samples(long_file):
    path, x = long_file
    onsets, durations = [0.5, 3.0, 1.0], [2.0, 2.5, 1.0]
    stim = Stimulus(["a", "b", "c"], root=path, type="audio",
                    columns={"onset": onsets, "duration": durations, "label": [0, 1, 0]})
    with pytest.raises(InputError, match="energy is not an audio network"):
        wrap_module(Energy(), name="energy").extract(stim, ["conv"], show_progress=False)
    dnn = as_audio_dnn(wrap_module(Energy(), name="energy"))  # any module on examples
    act = dnn.extract(stim, ["conv", "relu"], batch_size=2, show_progress=False)
    want = [_examples(x[int(round(o * RATE)):int(round((o + d) * RATE))])
            for o, d in zip(onsets, durations)]
    assert act.stim_ids.tolist() == ["a#1", "a#2", "b#1", "b#2", "c#1"]
    np.testing.assert_allclose(act.attrs["onset"], [0.5, 1.46, 3.0, 3.96, 1.0])
    np.testing.assert_allclose(act.attrs["duration"], 0.96)
    ex = torch.from_numpy(np.concatenate(want).astype(np.float32))[:, None]
    with torch.inference_mode():
        np.testing.assert_allclose(act.get("relu"), dnn.module(ex).numpy(), rtol=1e-5,
                                   atol=1e-6)
    # the click at 4.1 s is in segment b's second example (3.96-4.92 s), nowhere else
    mel = np.exp(np.concatenate(want)) - 0.01
    loud = mel.sum(axis=2).max(axis=1)                      # the loudest frame
    assert np.argmax(loud) == 3 and loud[3] > 3 * np.delete(loud, 3).max()
    means = dnn.extract(stim, ["relu"], aggregate="label", show_progress=False)
    np.testing.assert_allclose(means.get("relu")[0],
                               act.get("relu")[[0, 1, 4]].astype(np.float64).mean(0),
                               rtol=1e-6)


def test_bad_rows_are_refused_before_any_computation(long_file, tmp_path):
    path, _ = long_file
    dnn = AudioDNN(Energy(), name="energy")
    cases = [
        (Stimulus(["a"], root=path, type="audio", columns={"onset": [5.0], "duration": [2]}),
         r"row 1: segment 5-7 s runs past the end of .*long.wav \(6 s\)"),
        (Stimulus(["a"], root=path, type="audio", columns={"onset": [1.0], "duration": [.9]}),
         r"lasts 0.900 s; energy needs at least 0.975 s"),
        (Stimulus(["a"], root=path, type="audio", columns={"onset": [1.0]}),
         r"needs 'onset' and 'duration' columns"),
    ]
    sf.write(tmp_path / "odd.wav", np.zeros(30000), 7919)
    cases.append((Stimulus(["odd.wav"], root=tmp_path, type="audio"),
                  r"7919 Hz cannot be resampled to 16000 Hz"))
    for stim, pattern in cases:
        with pytest.raises(InputError, match=pattern):
            dnn.extract(stim, ["conv"], out=tmp_path / "o.act.h5", show_progress=False)
        assert not (tmp_path / "o.act.h5").exists()


def test_networks_and_stimulus_types_must_match(long_file, tmp_path):
    path, _ = long_file
    segs = Stimulus(["a"], root=path, type="audio", columns={"onset": [0], "duration": [2]})
    alexnet = load_dnn("alexnet", weights="random")
    with pytest.raises(InputError, match="cannot run on log-mel examples"):
        as_audio_dnn(alexnet).extract(segs, ["conv1"], show_progress=False)
    from PIL import Image
    Image.new("RGB", (8, 8)).save(tmp_path / "x.png")
    with pytest.raises(InputError, match="audio network; it needs type=audio"):
        AudioDNN(Energy()).extract(Stimulus(["x.png"], root=tmp_path), ["conv"],
                                   show_progress=False)
    clip = load_dnn("r3d_18", weights="random", clip_len=2)
    with pytest.raises(InputError, match="clip network; type=audio"):
        as_audio_dnn(clip)


def test_offline_weights_name_the_file_to_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(WeightsUnavailableError,
                       match=r"AudioSet weights for vggish .*vggish-10086976\.pth"):
        load_dnn("vggish", offline=True)
