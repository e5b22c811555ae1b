"""Options found by audit/bad_inputs.py: counts, empty layer names, DNNBrain's -iteraxis.

A batch size of 0 crashed db_ablate deep inside image loading and -1 ran; ``-layer ''``
named the whole network (the root module's path is ""); DNNBrain spells the position axis
``row_col``.
"""
import numpy as np
import pytest

from dnnsparse.base.activation import Activation
from dnnsparse.cli import ablate as db_ablate
from dnnsparse.cli import act as db_act
from dnnsparse.cli import rf as db_rf
from dnnsparse.cli import rsa as db_rsa
from dnnsparse.io.rdm import read_rdm_file

NET = """from torch import nn


def build():
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Flatten())
"""


@pytest.fixture
def net(tmp_path):
    (tmp_path / "net.py").write_text(NET)
    return ["-net", f"{tmp_path / 'net.py'}:build", "-weights", "random"]


@pytest.mark.parametrize("main", [db_act.main, db_ablate.main])
@pytest.mark.parametrize("option, value, message", [
    ("-batch-size", "0", "'0' is below 1"), ("-batch-size", "-1", "'-1' is below 1"),
    ("-batch-size", "2.5", "'2.5' is not a whole number"),
    ("-workers", "-1", "'-1' is below 0")])
def test_counts_are_checked_at_parse_time(cli_error, tmp_path, net, main, option, value,
                                          message):
    msg = cli_error(main, *net, "-stim", tmp_path / "missing.stim.csv", "-out",
                    tmp_path / "out", option, value)
    assert message in msg and option in msg
    assert not (tmp_path / "out").exists()


def test_an_empty_layer_name_is_refused(cli_error, tmp_path, net):
    msg = cli_error(db_rf.main, *net, "-theoretical", "-layer", "", "-out",
                    tmp_path / "rf.csv")
    assert "empty layer name ''" in msg and "valid layers: 0, 1, 2" in msg
    assert not (tmp_path / "rf.csv").exists()


def test_iteraxis_row_col_is_dnnbrains_name_for_position(run_cli, tmp_path, rng):
    ids = [f"s{i}" for i in range(7)]
    Activation({"conv": rng.standard_normal((7, 2, 2, 3))}, stim_ids=ids).save(
        tmp_path / "a.act.h5")
    for axis in ("row_col", "position"):
        status, _, err = run_cli(db_rsa.main, "-act", tmp_path / "a.act.h5", "-iteraxis",
                                 axis, "-out", tmp_path / axis, "-q", "-no-plot")
        assert status == 0, err
    _, by_row_col, _ = read_rdm_file(tmp_path / "row_col" / "dnn.rdm.h5")
    _, by_position, _ = read_rdm_file(tmp_path / "position" / "dnn.rdm.h5")
    assert list(by_row_col) == list(by_position) == ["conv"]
    assert by_row_col["conv"].shape == (6, 21)             # one RDM per (row, col)
    np.testing.assert_array_equal(by_row_col["conv"], by_position["conv"])
