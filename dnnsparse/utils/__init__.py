"""Small helpers shared by every layer of the package (no torch): validation, progress
bars, parallel map, memory, file digests, lazy package namespaces, registries and the
shared numerics (:mod:`.extmath`)."""
from .lazy import lazy_exports

_WHERE = {
    "audio": "audio",
    "engine": "engine",
    "extmath": "extmath",
    "filehash": "filehash",
    "lazy": "lazy",
    "memory": "memory",
    "parallel": "parallel",
    "progress": "progress",
    "registry": "registry",
    "validation": "validation",
    "xp": "xp",
}
__all__ = sorted(_WHERE)
__getattr__, __dir__ = lazy_exports(__name__, _WHERE)
