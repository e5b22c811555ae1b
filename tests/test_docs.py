"""The documentation's command reference covers every console script of setup.cfg.

Imports only docs/_gen_cli.py (the standard library), never Sphinx. That the README's
command table lists every console script is checked by
tests/cli/test_all_commands.py::test_readme_command_table_lists_every_console_script.
"""
import ast
import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


GEN = _load(ROOT / "docs" / "_gen_cli.py", "_docs_gen_cli")
# The command list of the contract tests (parsed there independently of the generator).
COMMANDS = _load(ROOT / "tests" / "cli" / "test_all_commands.py", "_all_commands").COMMANDS


def _directive(text):
    """The options of the page's ``.. argparse::`` directive: {name: value}."""
    block = text.split(".. argparse::", 1)[1]
    return dict(re.findall(r"^   :(\w+): *(.*)$", block, flags=re.M))


def test_generator_reads_the_same_console_scripts_as_the_contract_tests():
    assert {name: f"{module}:{func}" for name, (module, func)
            in GEN.console_scripts().items()} == COMMANDS


def test_every_console_script_has_a_reference_page(tmp_path):
    written = GEN.write_pages(tmp_path)
    assert sorted(p.name for p in written) == sorted(f"{name}.rst" for name in COMMANDS)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"{n}.rst" for n in COMMANDS)
    for name, target in COMMANDS.items():
        module = target.split(":")[0]
        options = _directive((tmp_path / f"{name}.rst").read_text())
        assert options == {"module": module, "func": "get_parser", "prog": name}, name
        # The page renders the command's real parser: the module defines get_parser.
        source = ROOT.joinpath(*module.split(".")).with_suffix(".py").read_text()
        functions = {node.name for node in ast.parse(source).body
                     if isinstance(node, ast.FunctionDef)}
        assert "get_parser" in functions, module


def test_a_command_missing_from_setup_cfg_loses_its_page(tmp_path):
    cfg = tmp_path / "setup.cfg"
    cfg.write_text("[options.entry_points]\nconsole_scripts =\n"
                   "    db_act = dnnsparse.cli.act:main\n"
                   "    db_psi = dnnsparse.cli.psi:main\n")
    pages = tmp_path / "cli"
    GEN.write_pages(pages, cfg)
    (pages / "db_gone.rst").write_text("stale")
    (pages / "index.rst").write_text("kept")
    cfg.write_text("[options.entry_points]\nconsole_scripts =\n"
                   "    db_act = dnnsparse.cli.act:main\n")
    GEN.write_pages(pages, cfg)
    assert sorted(p.name for p in pages.iterdir()) == ["db_act.rst", "index.rst"]


def test_an_unchanged_page_is_not_rewritten(tmp_path):
    path, = [p for p in GEN.write_pages(tmp_path) if p.stem == "db_act"]
    path.touch()
    before = path.stat().st_mtime_ns
    GEN.write_pages(tmp_path)
    assert path.stat().st_mtime_ns == before


def test_the_command_index_collects_the_generated_pages():
    index = (ROOT / "docs" / "cli" / "index.rst").read_text()
    assert ":glob:" in index and re.search(r"^   db_\*$", index, flags=re.M)


@pytest.mark.parametrize("page", ["formats", "models", "cluster", "benchmarks"])
def test_user_guide_includes_the_markdown_pages(page):
    assert (ROOT / "docs" / f"{page}.md").is_file()
    assert f"   ../{page}\n" in (ROOT / "docs" / "user_guide" / "index.rst").read_text()


def test_help_of_the_package_names_the_entry_points():
    import dnnsparse
    import dnnsparse.base
    import dnnsparse.model

    doc = dnnsparse.__doc__
    for name in ("Stimulus.from_folder", "load_dnn", "DNN.extract", "population_sparseness",
                 "db_demo", "sphinx"):
        assert name in doc, name
    # the names it points to exist
    assert callable(dnnsparse.base.Stimulus.from_folder)
    assert callable(dnnsparse.model.load_dnn) and callable(dnnsparse.model.DNN.extract)
    from dnnsparse.algo.sparseness import population_sparseness
    assert callable(population_sparseness)
