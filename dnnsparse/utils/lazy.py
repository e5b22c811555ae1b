"""Package namespaces that import their implementation modules on first use.

A package's ``__init__`` lists its public names and the private module that defines
each; ``import dnnsparse.pipelines`` then costs nothing, and ``pipelines.run_demo``
imports ``pipelines._demo`` (and torch) only when it is first touched. This keeps
``--help`` of every command fast and lets ``import dnnsparse.algo`` stay free of torch.

Examples
--------
>>> __getattr__, __dir__ = lazy_exports("dnnsparse.viz", {"new_figure": "_figures"})
>>> __getattr__("new_figure").__name__
'new_figure'
"""
import importlib

__all__ = ["lazy_exports"]


def lazy_exports(package, where):
    """``(__getattr__, __dir__)`` for ``package`` whose names live in ``where``.

    Parameters
    ----------
    package : str
        The package's dotted name (its ``__name__``).
    where : dict of str to str
        Public name -> the package's module defining it (relative, e.g. ``"_psi"``); a
        name mapped to itself is a public submodule (``{"act": "act"}``).
    """
    def __getattr__(name):
        try:
            module = where[name]
        except KeyError:
            raise AttributeError(f"module {package!r} has no attribute {name!r}") from None
        found = importlib.import_module(f"{package}.{module}")
        return found if module == name else getattr(found, name)

    def __dir__():
        return sorted(where)

    return __getattr__, __dir__
