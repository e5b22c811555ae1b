"""Network weights: ImageNet (torch's cache), seeded random, or a local ``.pth`` file.

ImageNet weights go through torch's normal cache (``torch.hub.get_dir()``,
i.e. ``$TORCH_HOME/hub/checkpoints``): a cached file is used as is; otherwise
the file is downloaded when the network allows. Offline (or with
``DNNSPARSE_OFFLINE=1``) a missing file raises
:class:`~dnnsparse.errors.WeightsUnavailableError` naming the expected file,
its URL and how to supply it.
"""
from concurrent.futures import ThreadPoolExecutor
import logging
import os
import socket
from pathlib import Path
from urllib.parse import urlparse

import torch

from ..errors import FileFormatError, InputError, WeightsUnavailableError
from ..io import check_input_file
from ..utils.filehash import sha256_file

__all__ = ["load_state_dict_file", "cached_download", "apply_state_dict"]

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


def cached_download(url, *, net):
    """Path of the cached file for ``url``, downloading it if needed and allowed."""
    filename = os.path.basename(urlparse(url).path)
    cache = Path(torch.hub.get_dir()) / "checkpoints" / filename
    if cache.is_file():
        return cache
    how = (f"Download {url} and save it as {cache} (or set TORCH_HOME), or pass a local "
           f"file with -weights FILE.pth, or use -weights random.")
    if os.environ.get("DNNSPARSE_OFFLINE"):
        raise WeightsUnavailableError(f"ImageNet weights for {net} are not cached at {cache} "
                                      f"and DNNSPARSE_OFFLINE is set. {how}")
    log.info("downloading %s weights to %s", net, cache)
    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(30)
    try:
        torch.hub.download_url_to_file(url, str(cache), progress=True)
    except Exception as exc:   # no network, proxy, DNS, HTTP error: all the same advice
        raise WeightsUnavailableError(f"ImageNet weights for {net} are not cached at {cache} "
                                      f"and could not be downloaded ({exc.__class__.__name__}). "
                                      f"{how}") from None
    finally:
        socket.setdefaulttimeout(old)
    return cache
