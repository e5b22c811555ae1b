"""Write one command-reference page per console script of ``setup.cfg``.

Run by ``docs/conf.py`` before every build (and by ``tests/test_docs.py``): for each
``db_NAME = dnnsparse.cli.MODULE:main`` entry it writes ``cli/db_NAME.rst`` holding a
``.. argparse::`` directive over ``dnnsparse.cli.MODULE.get_parser``, so the reference
is rendered from the real parser at build time and never copied by hand. Pages of
commands that left ``setup.cfg`` are removed. Only the standard library is imported:
neither Sphinx nor dnnsparse is needed to run this.

    python docs/_gen_cli.py [OUT_DIR]
"""
import configparser
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGE_PREFIX = "db_"


def console_scripts(setup_cfg=ROOT / "setup.cfg"):
    """Console scripts of ``setup.cfg``: ``{name: (module, function)}``, in file order."""
    cfg = configparser.ConfigParser()
    if not cfg.read(setup_cfg):
        raise FileNotFoundError(f"{setup_cfg}: not found.")
    lines = cfg["options.entry_points"]["console_scripts"].strip().splitlines()
    scripts = {}
    for line in lines:
        name, target = (part.strip() for part in line.split("=", 1))
        module, func = target.split(":")
        scripts[name] = (module, func)
    return scripts


def page_text(name, module):
    """reST of the reference page of command ``name`` whose parser is ``module.get_parser``."""
    title = f"``{name}``"
    return "\n".join([
        f".. _cli-{name}:",
        "",
        title,
        "=" * len(title),
        "",
        f"Rendered at build time from ``{module}.get_parser()``; the same text as "
        f"``{name} --help``.",
        "",
        ".. argparse::",
        f"   :module: {module}",
        "   :func: get_parser",
        f"   :prog: {name}",
        "",
    ])


def write_pages(out_dir=ROOT / "docs" / "cli", setup_cfg=ROOT / "setup.cfg"):
    """Write ``out_dir/<name>.rst`` for every console script; return the paths written.

    A page is rewritten only when its text changes (so Sphinx does not rebuild it), and
    ``db_*.rst`` pages of commands no longer in ``setup.cfg`` are deleted.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    scripts = console_scripts(setup_cfg)
    paths = []
    for name, (module, _) in scripts.items():
        path = out_dir / f"{name}.rst"
        text = page_text(name, module)
        if not path.is_file() or path.read_text() != text:
            path.write_text(text)
        paths.append(path)
    for stale in out_dir.glob(f"{PAGE_PREFIX}*.rst"):
        if stale.stem not in scripts:
            stale.unlink()
    return paths


if __name__ == "__main__":
    for written in write_pages(*sys.argv[1:2]):
        print(written)
