"""Registries: name -> entry tables whose entries carry their own metadata.

A command's ``choices`` are the registry's names and its help text is generated from
the entries' descriptions, so a new entry shows up everywhere without editing any
help text by hand.

Examples
--------
>>> from typing import NamedTuple
>>> class Entry(NamedTuple):
...     description: str
>>> Registry(a=Entry("the first"), b=Entry("the second")).describe()
'a: the first; b: the second'
"""

__all__ = ["Registry"]


class Registry(dict):
    """A ``dict`` of name -> entry, each entry having a one-line ``description``."""

    def describe(self, sep="; "):
        """``"name: description"`` of every entry, in the registry's order, joined by ``sep``."""
        return sep.join(f"{name}: {entry.description}" for name, entry in self.items())
