"""SHA-256 of (large) files, remembered between runs.

Every activation file records the SHA-256 of the network weights it came from.
Hashing AlexNet's 233 MiB takes 0.15 s, VGG-16's 528 MiB about 0.35 s -- on every
run, for the same file. Like ``git`` and ``make``, we trust a file whose path,
size, modification time (ns) and inode are unchanged, and keep the digests in
``$DNNSPARSE_CACHE/sha256.json`` (default ``$XDG_CACHE_HOME/dnnsparse``, i.e.
``~/.cache/dnnsparse``). ``DNNSPARSE_CACHE=off`` turns the cache off. A file
modified in the last few seconds is not cached (it could change again within
the same timestamp tick), and an unwritable cache is silently not used.
"""
import hashlib
import json
import logging
import os
import tempfile
import time
from pathlib import Path

__all__ = ["cache_dir", "sha256_file"]

log = logging.getLogger(__name__)

_RACY_SECONDS = 2.0      # younger files are hashed but not remembered
_MAX_ENTRIES = 1000      # oldest entries are dropped beyond this


def cache_dir():
    """The cache directory, or None when ``DNNSPARSE_CACHE=off``."""
    env = os.environ.get("DNNSPARSE_CACHE")
    if env:
        return None if env.lower() == "off" else Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "dnnsparse"


def _digest(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(2 ** 20), b""):   # hashlib releases the GIL
            digest.update(block)
    return digest.hexdigest()


def _read_entries(cache_file):
    try:
        entries = json.loads(cache_file.read_text())
        return entries if isinstance(entries, dict) else {}
    except (OSError, ValueError):
        return {}


def _store(cache_file, key, value):
    entries = _read_entries(cache_file)
    entries.pop(key, None)
    entries[key] = value                               # newest last
    entries = dict(list(entries.items())[-_MAX_ENTRIES:])
    try:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=cache_file.parent, suffix=".tmp")
        with os.fdopen(fd, "w") as f:
            json.dump(entries, f)
        os.replace(tmp, cache_file)                    # readers never see half a file
    except OSError as exc:
        log.debug("not caching the SHA-256 of %s: %s", key, exc)


def sha256_file(path):
    """Hex SHA-256 of the file at ``path``, from the cache when the file is unchanged.

    >>> sha256_file("weights.pth")                      # doctest: +SKIP
    '5d1c...'
    """
    path = Path(path).resolve()
    folder = cache_dir()
    if folder is None:
        return _digest(path)
    st = path.stat()
    key = f"{path}|{st.st_size}|{st.st_mtime_ns}|{st.st_ino}|{st.st_dev}"
    cache_file = folder / "sha256.json"
    known = _read_entries(cache_file).get(key)
    if known is not None:
        return known
    value = _digest(path)
    if time.time() - st.st_mtime > _RACY_SECONDS:
        _store(cache_file, key, value)
    return value
