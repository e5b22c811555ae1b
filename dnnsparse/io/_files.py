"""Checking input paths and writing outputs atomically.

Every writer in dnnsparse goes through :func:`atomic_output` (one file) or
:func:`atomic_output_dir` (a folder of results): data are written under a
hidden temporary name beside the target and put in place only once complete,
so an interrupted run never leaves a truncated output under the real name.

An existing output is never replaced unless ``force`` is given -- checked when
the run starts (to fail early) and again, atomically, when the result is put in
place: a file is hard-linked to its final name, which fails if another process
created that name meanwhile.

Temporary names carry the writing process's id and host
(``.partial-<pid>-<host>-<token>-<name>``); a later run preparing the same
output removes those of processes that no longer exist (killed, crashed).
"""
import contextlib
import errno
import logging
import os
import re
import secrets
import shutil
import socket
from pathlib import Path

from .. import __version__
from ..errors import FileFormatError, MissingFileError, OutputExistsError, OutputWriteError
from ..utils.signals import process_exists, raise_if_terminated

__all__ = ["atomic_output", "atomic_output_dir", "check_input_file", "check_output_dir",
           "check_output_path", "h5_read_error", "open_h5", "partial_name",
           "prepare_output_dir", "remove_stale_partials", "write_failure"]

log = logging.getLogger(__name__)

_PARTIAL = ".partial-"
#: File in every folder written by :func:`atomic_output_dir`; ``force`` replaces
#: only folders that hold it (never a folder of the user's own files).
OUTPUT_DIR_MARKER = ".dnnsparse-output"
# errno of a link(2) on a file system without hard links (FAT, some FUSE/SMB mounts)
_NO_HARD_LINKS = {errno.EPERM, errno.EACCES, errno.EMLINK, errno.ENOSYS,
                  getattr(errno, "EOPNOTSUPP", errno.EPERM), getattr(errno, "ENOTSUP", errno.EPERM)}
# errno of a write that fails because of where it goes, not because of the data
_WRITE_FAILURES = {errno.ENOSPC: "no space left on the device",
                   errno.EDQUOT: "disk quota exceeded",
                   errno.EFBIG: "file too large for the file system",
                   errno.EROFS: "the file system is read-only"}
_ERRNO_IN_TEXT = re.compile(r"errno\s*=\s*(\d+)")


def check_input_file(path, *, what="file"):
    """Return ``Path(path)`` after checking it is an existing, non-empty file.

    Raises
    ------
    MissingFileError
        The path does not exist (or is a directory).
    FileFormatError
        The file is empty.
    """
    path = Path(path)
    if not path.is_file():
        hint = " (it is a directory)" if path.is_dir() else ""
        raise MissingFileError(f"{what} not found: {path}{hint}.")
    if path.stat().st_size == 0:
        raise FileFormatError(f"{what} is empty: {path}.")
    return path


def open_h5(path, *, what="HDF5 file"):
    """Open an existing HDF5 file read-only; a missing or non-HDF5 file is a clear error."""
    import h5py
    path = check_input_file(path, what=what)
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        raise FileFormatError(f"{path} is not an HDF5 {what} ({exc}).") from None


def h5_read_error(path, what, exc, *, dataset=None):
    """The :class:`FileFormatError` for an ``OSError`` h5py raised reading ``what``.

    With a Fletcher-32 checksum on ``dataset`` (HDF5 checks it before any
    decompression) a failed read means the bytes on disk are not those written;
    without one, a compressed chunk that does not decode means the same. The
    message names the file and the dataset (``what``, e.g. ``"layer 'conv5'"``).

    >>> err = h5_read_error("a.act.h5", "layer 'fc1'", OSError("filter returned failure"))
    >>> str(err).split(";")[0]
    "a.act.h5: layer 'fc1' is corrupted (its data do not decode: filter returned failure)"
    """
    text = " ".join(str(exc).split())
    if getattr(dataset, "fletcher32", False) or "checksum" in text.lower():
        why = "its Fletcher-32 checksum does not match"
    else:
        why = f"its data do not decode: {text[:200]}"
    return FileFormatError(f"{path}: {what} is corrupted ({why}); the file was damaged "
                           f"after it was written: copy it again or recompute it.")


# ----------------------------------------------------------------------------
# Temporary (partial) names
# ----------------------------------------------------------------------------
def _host_tag():
    return re.sub(r"[^A-Za-z0-9.]", "_", socket.gethostname())[:40] or "host"


def partial_name(path):
    """Hidden temporary name beside ``path`` that records this process.

    ``.partial-<pid>-<host>-<token>-<name>``: the full name stays at the end so
    writers that dispatch on the extension (nibabel: ``.nii.gz``) still see it;
    the random token keeps two writers of one output in one process apart.
    """
    path = Path(path)
    return path.with_name(f"{_PARTIAL}{os.getpid()}-{_host_tag()}-{secrets.token_hex(4)}-"
                          f"{path.name}")


def _partial_owner(entry, target):
    """``(pid, host)`` if ``entry`` is a partial name of ``target``, else None.

    Names from earlier versions (``.partial-<pid>-<name>``) have host None.
    """
    if not entry.startswith(_PARTIAL) or not entry.endswith("-" + target):
        return None
    middle = entry[len(_PARTIAL):-len(target) - 1]
    m = re.fullmatch(r"(\d+)(?:-([A-Za-z0-9._]+)-[0-9a-f]{8})?", middle)
    return (int(m.group(1)), m.group(2)) if m else None


def remove_stale_partials(path):
    """Remove partial outputs of ``path`` left by processes that no longer run.

    Only entries of this host whose process is gone are removed (a partial file
    of a live process, or of another machine sharing the folder, is kept).
    Called by :func:`atomic_output` and :func:`atomic_output_dir`.

    Returns
    -------
    list of Path
        The removed files or folders.
    """
    path = Path(path)
    try:
        entries = list(os.scandir(path.parent))
    except OSError:
        return []
    removed, host = [], _host_tag()
    for entry in entries:
        owner = _partial_owner(entry.name, path.name)
        if owner is None or owner[1] not in (None, host) or process_exists(owner[0]):
            continue
        stale = Path(entry.path)
        try:
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(stale)
            else:
                stale.unlink()
        except FileNotFoundError:      # another run cleaned it first
            continue
        except OSError as exc:
            log.warning("could not remove stale partial output %s: %s", stale, exc)
            continue
        log.info("removed %s, left by process %d that no longer runs", stale, owner[0])
        removed.append(stale)
    return removed


# ----------------------------------------------------------------------------
# Write failures
# ----------------------------------------------------------------------------
def write_failure(exc, path):
    """The :class:`OutputWriteError` for ``exc`` if it is a no-space/read-only failure.

    ``exc`` is an ``OSError`` from Python or h5py (whose messages carry the
    system's ``errno = N``); returns None for other errors.

    >>> import errno
    >>> str(write_failure(OSError(errno.ENOSPC, "No space left"), "x.csv")).split(";")[0]
    'cannot write x.csv: no space left on the device'
    """
    if isinstance(exc, OutputWriteError) or not isinstance(exc, OSError):
        return None
    code = exc.errno
    if code not in _WRITE_FAILURES:
        m = _ERRNO_IN_TEXT.search(str(exc))
        code = int(m.group(1)) if m else code
    if code not in _WRITE_FAILURES:
        return None
    fix = ("choose an output on a writable file system" if code == errno.EROFS
           else "free some space or choose an output on another file system")
    return OutputWriteError(f"cannot write {path}: {_WRITE_FAILURES[code]}; {fix}. "
                            f"No partial output was kept.")


def _remove(path):
    """Delete a temporary file or folder; never raise (we may be handling an error)."""
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    except OSError as exc:
        log.warning("could not remove partial output %s: %s", path, exc)


@contextlib.contextmanager
def _staged(path, *, create, install):
    """Temporary name beside ``path``: ``create(tmp)``, the caller writes, ``install(tmp)``.

    Stale partial outputs of ``path`` are removed first; the temporary is always
    removed at the end; a no-space/read-only failure becomes OutputWriteError.
    """
    tmp = partial_name(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_partials(path)
        create(tmp)
        yield tmp
        raise_if_terminated()          # a SIGTERM whose exception was swallowed
        install(tmp)
    except OSError as exc:
        failure = write_failure(exc, path)
        if failure is None:
            raise
        raise failure from None
    finally:
        _remove(tmp)


# ----------------------------------------------------------------------------
# One output file
# ----------------------------------------------------------------------------
def check_output_path(path, *, force=False):
    """Raise :class:`OutputExistsError` early if ``path`` exists and ``force`` is not set."""
    path = Path(path)
    if path.is_dir():
        raise OutputExistsError(f"output {path} is a directory; give a file name.")
    if path.exists() and not force:
        raise OutputExistsError(f"output exists: {path}; pass --force to overwrite it "
                                f"or choose another output name.")
    return path


def _created_meanwhile(path):
    return OutputExistsError(f"output {path} was created by another process while this one "
                             f"was writing it; nothing was overwritten: pass --force to "
                             f"replace it or choose another output name.")


def _install_file(tmp, path, force):
    """Give the complete temporary file ``tmp`` its final name ``path``."""
    if force:
        try:
            os.replace(tmp, path)
        except IsADirectoryError:
            raise OutputExistsError(f"output {path} became a directory while this run "
                                    f"was writing it; give a file name.") from None
        return
    try:
        os.link(tmp, path)              # atomic and exclusive: fails if path exists
    except FileExistsError:
        raise _created_meanwhile(path) from None
    except OSError as exc:
        if exc.errno not in _NO_HARD_LINKS:
            raise
        # No hard links here: claim the name by creating it exclusively, then
        # move the data over our own (empty) claim. Readers may briefly see an
        # empty file, never a replaced output.
        try:
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
        except FileExistsError:
            raise _created_meanwhile(path) from None
        os.replace(tmp, path)
        return
    tmp.unlink()


@contextlib.contextmanager
def atomic_output(path, *, force=False):
    """Context manager giving a temporary path that becomes ``path`` on success.

    Parameters
    ----------
    path : str or Path
        Final output name.
    force : bool, default=False
        Replace an existing ``path``; otherwise :class:`OutputExistsError`, also
        when another process creates ``path`` while this one writes.

    Raises
    ------
    OutputExistsError
        ``path`` exists (at the start or when the result is put in place).
    OutputWriteError
        No space left, quota exceeded or a read-only file system; the partial
        file is removed.

    Examples
    --------
    >>> with atomic_output(tmp / "x.csv") as tmp_path:      # doctest: +SKIP
    ...     tmp_path.write_text("a,b\\n")
    """
    path = check_output_path(path, force=force)
    with _staged(path, create=lambda tmp: None,
                 install=lambda tmp: _install_file(tmp, path, force)) as tmp:
        yield tmp


# ----------------------------------------------------------------------------
# A folder of outputs
# ----------------------------------------------------------------------------
def _is_our_output(path):
    return (path / OUTPUT_DIR_MARKER).is_file()


def check_output_dir(path, *, force=False):
    """Check that ``path`` can become an output folder; create nothing.

    Call it before any work so that a refused output costs nothing. An absent
    or empty folder is fine; a non-empty one needs ``force``, and ``force``
    replaces only a folder written by dnnsparse (holding ``.dnnsparse-output``).
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputExistsError(f"output {path} exists and is not a directory.")
    if path.is_dir() and any(path.iterdir()):
        if not force:
            raise OutputExistsError(f"output directory {path} is not empty; pass --force "
                                    f"to replace it or choose another -out.")
        if not _is_our_output(path):
            raise OutputExistsError(f"output directory {path} holds files that dnnsparse "
                                    f"did not write (no {OUTPUT_DIR_MARKER} file), so "
                                    f"--force does not delete them; remove the folder "
                                    f"yourself or choose another -out.")
    return path


def _install_dir(tmp, path, force):
    """Rename the complete folder ``tmp`` to ``path`` (replacing it with ``force``)."""
    try:
        os.rename(tmp, path)          # succeeds when path is absent or an empty folder
        return
    except OSError as exc:
        if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR, errno.EISDIR):
            raise
    if not path.is_dir():
        raise OutputExistsError(f"output {path} was created as a file by another process "
                                f"while this one was writing; nothing was overwritten.")
    if not force:
        raise OutputExistsError(f"output directory {path} was filled by another process "
                                f"while this one was writing; nothing was overwritten: pass "
                                f"--force to replace it or choose another -out.")
    check_output_dir(path, force=True)
    old = partial_name(path)          # a killed run's leftover is removed as stale
    os.rename(path, old)
    try:
        os.rename(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            os.rename(old, path)      # put the previous output back
        raise OutputExistsError(f"output directory {path} was recreated by another process "
                                f"while this one replaced it; nothing was overwritten.") from None
    _remove(old)


@contextlib.contextmanager
def atomic_output_dir(path, *, force=False):
    """Context manager giving a temporary folder that becomes ``path`` on success.

    The folder is written as a whole: results go into a hidden folder beside
    ``path`` that is renamed into place when the block ends without error, and
    removed on error or interruption. With ``force`` a previous output folder is
    replaced entirely, so no file of the previous run stays behind.

    Parameters
    ----------
    path : str or Path
        Final output folder.
    force : bool, default=False
        Replace a non-empty ``path`` written by dnnsparse (see
        :func:`check_output_dir`); otherwise :class:`OutputExistsError`, also
        when another process fills ``path`` while this one writes.

    Examples
    --------
    >>> with atomic_output_dir("results", force=True) as out:   # doctest: +SKIP
    ...     write_table(out / "psi.csv", {"layer": ["fc1"], "psi": [0.3]})
    """
    def create(tmp):
        tmp.mkdir()
        (tmp / OUTPUT_DIR_MARKER).write_text(f"written by dnnsparse {__version__}\n")

    path = check_output_dir(path, force=force)
    with _staged(path, create=create, install=lambda tmp: _install_dir(tmp, path, force)) as tmp:
        yield tmp


def prepare_output_dir(path, *, force=False):
    """Create output directory ``path``; refuse a non-empty one unless ``force``.

    Files inside are then written with :func:`atomic_output` (``force=True``).
    Prefer :func:`atomic_output_dir`, which writes the folder as a whole and
    leaves nothing behind when the run fails.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputExistsError(f"output {path} exists and is not a directory.")
    if path.is_dir() and any(path.iterdir()) and not force:
        raise OutputExistsError(f"output directory {path} is not empty; pass --force "
                                f"to write into it or choose another -out.")
    path.mkdir(parents=True, exist_ok=True)
    return path
