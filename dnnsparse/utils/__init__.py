"""Small helpers shared by every layer of the package (no torch): validation, progress
bars, parallel map, memory, file digests, lazy package namespaces and the shared numerics
(:mod:`.extmath`)."""
from .lazy import lazy_exports

_WHERE = {
    "filehash": "filehash",
    "lazy": "lazy",
    "memory": "memory",
    "parallel": "parallel",
    "progress": "progress",
    "validation": "validation",
}
__all__ = sorted(_WHERE)
__getattr__, __dir__ = lazy_exports(__name__, _WHERE)
