"""File input/output: parse, validate and write. Never imports torch.

One module per format, as DNNBrain names them: :mod:`.stim` (``.stim.csv``),
:mod:`.dmask` (``.dmask.csv``), :mod:`.act` (``.act.h5``), :mod:`.rdm` (``.rdm.h5``),
:mod:`.roi` (``.roi.h5``), :mod:`.table` (CSV/TSV tables) and :mod:`.brain` (NIfTI,
CIFTI-2, GIFTI, MGH through nibabel). The file helpers every layer uses to read and
write safely (:func:`atomic_output`, :func:`check_input_file`, ...) are exported here.
Names are imported on first use.
"""
from ..utils.lazy import lazy_exports

_WHERE = {
    "act": "act",
    "audio": "audio",
    "atomic_output": "_files",
    "atomic_output_dir": "_files",
    "brain": "brain",
    "check_input_file": "_files",
    "check_output_dir": "_files",
    "check_output_path": "_files",
    "copy_act": "_merge",
    "dmask": "dmask",
    "events": "events",
    "maps": "maps",
    "open_h5": "_files",
    "prepare_output_dir": "_files",
    "rdm": "rdm",
    "roi": "roi",
    "stim": "stim",
    "table": "table",
    "video": "video",
    "write_virtual_act": "_merge",
}
__all__ = sorted(_WHERE)
__getattr__, __dir__ = lazy_exports(__name__, _WHERE)
