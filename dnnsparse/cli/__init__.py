"""Command-line tools (``db_*``): one module per command, each a thin ``main`` over the
pipelines. Option groups shared by several commands live in ``_common`` and ``_args``; no
command imports another. The public API is the console scripts (``setup.cfg``).
"""
from ..utils.lazy import lazy_exports

_WHERE = {
    "act": "act",
    "corr": "corr",
    "decode": "decode",
    "demo": "demo",
    "encode": "encode",
    "hrf": "hrf",
    "info": "info",
    "map": "map",
    "mask": "mask",
    "merge": "merge",
    "pool": "pool",
    "probe": "probe",
    "psi": "psi",
    "roi": "roi",
    "rsa": "rsa",
    "stim": "stim",
    "topk": "topk",
    "train": "train",
}
__all__ = sorted(_WHERE)
__getattr__, __dir__ = lazy_exports(__name__, _WHERE)
