"""Objects a scientist scripts with: stimuli, masks, activations, RDMs, brain data, ROIs.

``from dnnsparse.base import Stimulus``; each class's module (:mod:`.stimulus`, ...) is
public too. Names are imported on first use.
"""
from ..utils.lazy import lazy_exports

_WHERE = {
    "Activation": "activation",
    "BrainData": "brain",
    "Mask": "mask",
    "RDM": "rdm",
    "ROISet": "roi",
    "Stimulus": "stimulus",
    "activation": "activation",
    "brain": "brain",
    "mask": "mask",
    "rdm": "rdm",
    "roi": "roi",
    "stimulus": "stimulus",
}
__all__ = sorted(_WHERE)
__getattr__, __dir__ = lazy_exports(__name__, _WHERE)
