"""The maths: NumPy, SciPy and scikit-learn only -- no torch, no files.

- :mod:`.sparseness` -- population/lifetime sparseness, Hoyer, kurtosis, active
  fraction, per-category means (and the compiled kernel, when numba is installed).
- :mod:`.rsa` -- RDMs, their comparison, permutation tests, bootstrap, noise ceiling.
- :mod:`.searchlight` -- searchlight RSA over volume spheres and surface discs.
- :mod:`.encoding` -- voxel-wise ridge and other encoders, their outer cross-validation.
- :mod:`.model_selection` -- splits and permutations; :mod:`.metrics` -- scores.
- :mod:`.stats` -- hierarchy trend, PSI-accuracy correlation, stepwise regression.
- :mod:`.correlation` -- in-sample best-unit correlation maps (db_corr).
- :mod:`.decoding`, :mod:`.hrf`, :mod:`.shape_bias`.
"""

from ..utils.lazy import lazy_exports

_WHERE = {
    "correlation": "correlation",
    "decoding": "decoding",
    "encoding": "encoding",
    "hrf": "hrf",
    "metrics": "metrics",
    "model_selection": "model_selection",
    "ranking": "ranking",
    "reduction": "reduction",
    "rsa": "rsa",
    "searchlight": "searchlight",
    "segmentation": "segmentation",
    "shape_bias": "shape_bias",
    "sparseness": "sparseness",
    "stats": "stats",
}
__all__ = sorted(_WHERE)
__getattr__, __dir__ = lazy_exports(__name__, _WHERE)
