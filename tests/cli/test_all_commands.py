"""Contract checks run once for every command in setup.cfg's console_scripts."""
import configparser
import importlib
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _commands():
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    lines = cfg["options.entry_points"]["console_scripts"].strip().splitlines()
    return dict(tuple(part.strip() for part in line.split("=")) for line in lines)


COMMANDS = _commands()


def test_every_cli_module_is_a_console_script():
    modules = {p.stem for p in (ROOT / "dnnsparse" / "cli").glob("*.py")
               if not p.name.startswith("_")}
    assert {target.split(":")[0].rsplit(".", 1)[1] for target in COMMANDS.values()} == modules


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_help_shows_an_example(name, capsys):
    module, func = COMMANDS[name].split(":")
    main = getattr(importlib.import_module(module), func)
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: {name}") and "example:" in out
    assert f"{name} " in out.split("example:")[1]


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_usage_error_is_exit_2(name, capsys):
    module, func = COMMANDS[name].split(":")
    main = getattr(importlib.import_module(module), func)
    assert main(["--no-such-option"]) == 2
    assert "error:" in capsys.readouterr().err


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_bin_wrapper(name):
    wrapper = ROOT / "bin" / name
    assert wrapper.is_file() and os.access(wrapper, os.X_OK)
    assert f"from {COMMANDS[name].split(':')[0]} import main" in wrapper.read_text()


def test_readme_command_table_lists_every_console_script():
    text = (ROOT / "README.md").read_text()
    rows = [line for line in text.splitlines() if line.startswith("| `db_")]
    listed = {name for row in rows for name in row.split("|")[1].replace("`", "").split(",")}
    assert {name.strip() for name in listed} >= set(COMMANDS), \
        sorted(set(COMMANDS) - {name.strip() for name in listed})
