"""Network weights: ImageNet (torch's cache), seeded random, or a local ``.pth`` file.

ImageNet weights go through torch's normal cache (``torch.hub.get_dir()``,
i.e. ``$TORCH_HOME/hub/checkpoints``, created when missing): a cached file is used
as is; otherwise the file is downloaded when the network allows (each network
operation of the download waits at most ``timeout`` seconds; nothing process-wide
is changed).
Without network access, or with downloads off, a missing file raises
:class:`~dnnsparse.errors.WeightsUnavailableError` naming the expected file, its
URL and how to supply it.

Downloads are off when a call says ``offline=True`` (``load_dnn(..., offline=True)``)
or, for calls that leave ``offline=None``, when the environment variable
``DNNSPARSE_OFFLINE`` is set to anything non-empty -- the user's setting, read
here only (:func:`offline_from_env`).
"""
from concurrent.futures import ThreadPoolExecutor
import logging
import os
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import torch

from ..errors import FileFormatError, InputError, WeightsUnavailableError
from ..io import atomic_output, check_input_file
from ..utils.filehash import sha256_file
from ..utils.progress import progress

__all__ = ["OFFLINE_ENV", "load_state_dict_file", "cached_download", "apply_state_dict",
           "offline_from_env"]

#: Environment variable turning weight downloads off (any non-empty value).
OFFLINE_ENV = "DNNSPARSE_OFFLINE"

log = logging.getLogger(__name__)


def load_state_dict_file(path):
    """Load a state dict from a ``.pth`` file (plain, or under ``state_dict``/``model``).

    Returns ``(state_dict, sha256)``. Only
    tensors are unpickled (``weights_only=True``): a ``.pth`` holding a whole
    pickled model is refused with advice to save ``model.state_dict()``.
    """
    path = check_input_file(path, what="weights file")
    with open(path, "rb") as f:
        magic = f.read(4)
    # Files in torch's zip format are memory-mapped: tensors are not copied (the
    # network built on the meta device adopts them; writes, e.g. lesions, are
    # copy-on-write and never reach the file). Hashing reads the file in a
    # thread meanwhile, or finds the digest in the cache (utils.filehash).
    # Loading AlexNet: 0.28 s -> 0.15 s (0.02 s with the digest cached).
    with ThreadPoolExecutor(max_workers=1) as pool:
        digest = pool.submit(sha256_file, path)
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True,
                             mmap=magic == b"PK\x03\x04")
        except Exception as exc:   # pickle, zip and format errors all mean "not usable"
            # torch saves zip archives (or, formerly, pickles starting with 0x80)
            reason = ("not a PyTorch file" if magic != b"PK\x03\x04" and magic[:1] != b"\x80"
                      else (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160])
            raise FileFormatError(f"cannot load weights from {path} ({reason}); it must be a "
                                  f"state dict saved with torch.save(model.state_dict(), "
                                  f"path).") from None
        sha = digest.result()
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not all(torch.is_tensor(v) for v in obj.values()):
        raise FileFormatError(f"{path} does not hold a state dict of tensors.")
    # checkpoints saved from nn.DataParallel prefix every key with "module."
    if obj and all(k.startswith("module.") for k in obj):
        obj = {k[len("module."):]: v for k, v in obj.items()}
    return obj, sha


def apply_state_dict(module, state_dict, *, source, ignore=(), assign=False):
    """Load ``state_dict`` into ``module``; mismatches are an InputError naming ``source``.

    ``assign=True`` adopts the loaded tensors instead of copying into existing
    ones (for a module built on the ``meta`` device).
    """
    state_dict = {k: v for k, v in state_dict.items()
                  if not any(k.startswith(p) for p in ignore)}
    own = module.state_dict()
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    wrong = [k for k in state_dict if k in own and state_dict[k].shape != own[k].shape]
    if missing or unexpected or wrong:
        def few(keys):
            return ", ".join(keys[:4]) + (f" (+{len(keys) - 4} more)" if len(keys) > 4 else "")
        parts = [f"missing {few(missing)}" if missing else "",
                 f"unexpected {few(unexpected)}" if unexpected else "",
                 f"wrong shape {few(wrong)}" if wrong else ""]
        raise InputError(f"weights in {source} do not fit this network: "
                         f"{'; '.join(p for p in parts if p)}.")
    module.load_state_dict(state_dict, assign=assign)


def offline_from_env():
    """Whether the user turned downloads off: ``DNNSPARSE_OFFLINE`` set, non-empty."""
    return bool(os.environ.get(OFFLINE_ENV))


def _download(url, path, *, timeout, desc):
    """``url`` → ``path`` (atomically), each socket operation waiting ``timeout`` s."""
    request = urllib.request.Request(url, headers={"User-Agent": "dnnsparse"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        size = response.headers.get("Content-Length")
        with atomic_output(path, force=True) as tmp, open(tmp, "wb") as f, \
                progress(total=int(size) if size else None, desc=desc, unit="B",
                         unit_scale=True, unit_divisor=1024) as bar:
            while chunk := response.read(1 << 20):
                f.write(chunk)
                bar.update(len(chunk))


def cached_download(url, *, net, offline=None, timeout=30):
    """Path of the cached file for ``url``, downloading it if needed and allowed.

    Parameters
    ----------
    url : str
    net : str
        Network name, for messages.
    offline : bool, optional
        True: never download (a missing file raises). None: as the environment
        variable ``DNNSPARSE_OFFLINE`` says (:func:`offline_from_env`).
    timeout : float, default=30
        Seconds each network operation of the download may wait.

    Raises
    ------
    WeightsUnavailableError
        When the file is not cached and cannot (or may not) be downloaded.
    """
    filename = os.path.basename(urlparse(url).path)
    cache = Path(torch.hub.get_dir()) / "checkpoints" / filename
    if cache.is_file():
        return cache
    how = (f"Download {url} and save it as {cache} (or set TORCH_HOME), or pass a local "
           f"file with -weights FILE.pth, or use -weights random.")
    off = (f"{OFFLINE_ENV} is set" if offline is None and offline_from_env() else
           "downloads are off (offline=True)" if offline else "")
    if off:
        raise WeightsUnavailableError(f"ImageNet weights for {net} are not cached at {cache} "
                                      f"and {off}. {how}")
    log.info("downloading %s weights to %s", net, cache)
    try:
        # a fresh machine has no $TORCH_HOME/hub/checkpoints yet
        cache.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise WeightsUnavailableError(f"ImageNet weights for {net} are not cached at {cache} "
                                      f"and its folder cannot be created ({exc.strerror or exc}"
                                      f"). Set TORCH_HOME to a writable folder, or pass a "
                                      f"local file with -weights FILE.pth, or use -weights "
                                      f"random.") from None
    try:
        _download(url, cache, timeout=timeout, desc=filename)
    except Exception as exc:   # no network, proxy, DNS, HTTP error: all the same advice
        raise WeightsUnavailableError(f"ImageNet weights for {net} are not cached at {cache} "
                                      f"and could not be downloaded ({exc.__class__.__name__}). "
                                      f"{how}") from None
    return cache
