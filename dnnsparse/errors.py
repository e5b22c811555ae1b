"""Exceptions raised for user mistakes.

Every error a user can cause (a bad file, an unknown layer, mismatched sizes) is
a :class:`DnnsparseError`. The command-line tools print its message on one line
and exit with status 2; library users can catch it, or the standard exception
it also derives from (``ValueError``, ``FileNotFoundError``, ...).

Messages say what was expected, what was given, and how to fix it.
"""

__all__ = [
    "DnnsparseError",
    "InputError",
    "FileFormatError",
    "MissingFileError",
    "OutputExistsError",
    "OutputWriteError",
    "UnknownLayerError",
    "WeightsUnavailableError",
]


class DnnsparseError(Exception):
    """Base class of errors caused by user input (exit status 2 in the CLIs)."""


class InputError(DnnsparseError, ValueError):
    """A value, shape or combination of arguments that cannot be used."""


class FileFormatError(DnnsparseError, ValueError):
    """A file that exists but is malformed; the message names file and line."""


class MissingFileError(DnnsparseError, FileNotFoundError):
    """An input file (or several) that does not exist."""


class OutputExistsError(DnnsparseError, FileExistsError):
    """An output that exists already and may not be overwritten without force."""


class OutputWriteError(DnnsparseError, OSError):
    """An output that cannot be written: no space left, quota, read-only file system."""


class UnknownLayerError(DnnsparseError, ValueError):
    """A layer name that the network (or the file) does not have."""


class WeightsUnavailableError(DnnsparseError, FileNotFoundError):
    """Pretrained weights that are neither cached nor downloadable."""
