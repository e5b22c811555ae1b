"""Sphinx configuration of the dnnsparse documentation site.

Build (from the repository root, after ``pip install -e ".[docs]"``)::

    python -m sphinx -W --keep-going -b html docs docs/_build/html

The command reference (``cli/db_*.rst``) is regenerated from ``setup.cfg`` by
``_gen_cli.py`` on every build. The sphinx-gallery tutorials (``examples/plot_*.py``)
run on every build; ``DNNSPARSE_DOCS_GALLERY=0`` lists them without running them.
"""
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import _gen_cli  # noqa: E402  (docs/ is on sys.path only from here on)

import dnnsparse  # noqa: E402

_gen_cli.write_pages(HERE / "cli")

# The public packages of the API reference, in the order the imports flow (bottom up).
API_PACKAGES = ["io", "base", "model", "algo", "viz", "pipelines", "utils", "errors"]


def _write_api_pages(out_dir=HERE / "api"):
    """Write ``api/dnnsparse.<pkg>.rst``: an autosummary of the package's ``__all__``.

    Generated on every build from the packages themselves, so a name added to a
    ``_WHERE`` table appears in the reference without anyone editing the docs.
    """
    import importlib

    for short in API_PACKAGES:
        name = f"dnnsparse.{short}"
        package = importlib.import_module(name)
        title = f"``{name}``"
        lines = [f".. _api-{short}:", "", title, "=" * len(title), "",
                 f".. automodule:: {name}", "   :no-members:", "",
                 f".. currentmodule:: {name}", "",
                 ".. autosummary::", "   :toctree: generated", ""]
        lines += [f"   {item}" for item in sorted(package.__all__)]
        text = "\n".join(lines) + "\n"
        path = out_dir / f"{name}.rst"
        if not path.is_file() or path.read_text() != text:
            path.write_text(text)


_write_api_pages()

project = "dnnsparse"
author = "the dnnsparse developers"
copyright = "the dnnsparse developers"
release = version = dnnsparse.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinxarg.ext",
    "sphinx_gallery.gen_gallery",
    "myst_parser",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "auto_examples/*.ipynb",
                    "auto_examples/*.py", "auto_examples/*.zip"]
templates_path = ["api/_templates"]

# The Markdown pages (formats.md, models.md, ...) link to their own headings as
# "#movies-typevideo-and-typevideo_clip": let MyST make those anchors.
myst_heading_anchors = 4
myst_enable_extensions = ["colon_fence", "dollarmath", "amsmath"]

# API reference: one page per public name, from the numpydoc docstrings.
autosummary_generate = True
autosummary_imported_members = False
autosummary_ignore_module_all = False
autodoc_typehints = "none"
# numpydoc adds no member tables of its own: api/_templates/autosummary/class.rst
# lists and renders them (from _class_members below), as scikit-learn's pages do.
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False


def _class_members(cls):
    """The public API of ``cls`` that dnnsparse defines: what its reference page shows.

    A member counts when the first class of the MRO defining it is a dnnsparse class,
    so members inherited from a dnnsparse base class are shown (``AudioDNN.extract``)
    and those of torch, scikit-learn or the standard library are not (``nn.Module``'s
    ``train``, ``BaseEstimator.get_params``, ``tuple.count``, scikit-learn's generated
    ``set_*_request``). Plain data attributes count only when documented with ``#:``.

    Returns ``{"methods": [...], "attributes": [...]}``, names sorted.
    """
    import functools
    import inspect

    from sphinx.pycode import ModuleAnalyzer

    ours = [k for k in cls.__mro__ if k.__module__.split(".")[0] == "dnnsparse"]
    documented = {}
    for owner in ours:
        try:
            attr_docs = ModuleAnalyzer.for_module(owner.__module__).find_attr_docs()
        except Exception:  # no source to read: no ``#:`` comments
            attr_docs = {}
        for (namespace, name) in attr_docs:
            if namespace == owner.__qualname__:
                documented.setdefault(name, owner)
    methods, attributes = [], []
    for name in sorted(set(dir(cls)) | set(documented)):
        if name.startswith("_"):
            continue
        owner = next((k for k in cls.__mro__ if name in vars(k)), documented.get(name))
        if owner not in ours:
            continue
        raw = vars(owner).get(name)
        if inspect.isfunction(raw) or isinstance(raw, (classmethod, staticmethod)):
            methods.append(name)
        elif isinstance(raw, (property, functools.cached_property)) or name in documented:
            attributes.append(name)
    return {"methods": methods, "attributes": attributes}


def _api_classes():
    """``{full name: _class_members(cls)}`` for every class a reference page can show.

    Keyed by every public module path of the API packages (``dnnsparse.base.Stimulus``
    and ``dnnsparse.base.stimulus.Stimulus``), so the class template finds the class
    under whichever name autosummary documents it. Plain data, so Sphinx can cache it.
    """
    import importlib
    import inspect
    import pkgutil

    found = {}
    for short in API_PACKAGES:
        package = importlib.import_module(f"dnnsparse.{short}")
        modules = [package]
        for info in pkgutil.walk_packages(getattr(package, "__path__", []),
                                          prefix=f"{package.__name__}."):
            if not any(part.startswith("_") for part in info.name.split(".")):
                modules.append(importlib.import_module(info.name))
        for module in modules:
            names = set(getattr(module, "__all__", ())) | set(vars(module))
            for name in sorted(n for n in names if not n.startswith("_")):
                value = getattr(module, name, None)
                if (inspect.isclass(value)
                        and value.__module__.split(".")[0] == "dnnsparse"):
                    found[f"{module.__name__}.{name}"] = _class_members(value)
    return found


autosummary_context = {"api_classes": _api_classes()}

intersphinx_mapping = {}  # offline builds: no inventories are fetched

# Gallery: examples/plot_*.py run on every build (offline, small data, a few minutes);
# DNNSPARSE_DOCS_GALLERY=0 lists them without running them, for a quick build.
_run_gallery = os.environ.get("DNNSPARSE_DOCS_GALLERY", "1") != "0"
sphinx_gallery_conf = {
    "examples_dirs": str(HERE.parent / "examples"),
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    # Only plot_*.py are gallery examples (an rST docstring with a title); the other
    # scripts of examples/ are plain programs, run as ``python examples/NAME.py``.
    "ignore_pattern": r"^(?!plot_)",
    "plot_gallery": _run_gallery,
    "download_all_examples": False,
    "remove_config_comments": True,
    "within_subsection_order": "FileNameSortKey",
}

html_theme = "pydata_sphinx_theme"
html_title = f"dnnsparse {version}"
html_static_path = ["_static"]
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
}


# The commands' help texts are terminal text, not reST (``|r|``, ``*_relu``, indented
# example lines): render them verbatim instead of letting docutils parse them, so the
# page reads exactly like ``--help`` and stray markup characters raise no warnings.
def _plain_help(items, markdown_help=False, settings=None):
    from docutils import nodes

    children = []
    for item in items:
        if isinstance(item, str):
            children.append(nodes.paragraph(item, item))
        elif isinstance(item, nodes.definition):
            children += item
    return children


def setup(app):
    from docutils import nodes
    import sphinxarg.ext

    class PlainArgParseDirective(sphinxarg.ext.ArgParseDirective):
        def _nested_parse_paragraph(self, text):
            # The module docstring (description) with its line breaks and examples.
            return nodes.literal_block(text, text)

    sphinxarg.ext.render_list = _plain_help
    app.add_directive("argparse", PlainArgParseDirective, override=True)
