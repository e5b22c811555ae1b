"""ROI signals cleaned as nilearn's maskers clean them (``db_roi -standardize ...``).

:func:`read_confounds` reads an fMRIPrep-style confounds table (TSV/CSV, one row
per volume, ``n/a`` for missing values); :func:`clean_signals` applies
:func:`nilearn.signal.clean` with the arguments a ``NiftiLabelsMasker`` passes
(detrend, standardize, confounds with standardised confounds, high-pass
Butterworth filter); :func:`extract_roi_signals` is both steps after
:func:`dnnsparse.base.roi.roi_signals`, so its output equals
``NiftiLabelsMasker(labels, standardize=..., detrend=..., high_pass=..., t_r=...)
.fit_transform(img, confounds=...)``.
"""
import logging
import math

import numpy as np

from ..base.roi import roi_signals
from ..errors import InputError
from ..io.brain.info import repetition_time
from ..io.table import read_table

__all__ = ["STANDARDIZE", "check_clean_options", "clean_signals", "extract_roi_signals",
           "read_confounds"]

log = logging.getLogger(__name__)

#: -standardize choice -> nilearn's ``standardize`` (zscore: sample std, ddof=1)
STANDARDIZE = {"zscore": "zscore_sample", "psc": "psc"}
_MISSING = {"n/a", "na", "nan", ""}


def _as_float(values, path, column):
    out = np.empty(len(values))
    for i, v in enumerate(values):
        text = str(v).strip()
        if text.lower() in _MISSING:
            out[i] = np.nan
            continue
        try:
            out[i] = float(text)
        except ValueError:
            raise InputError(f"{path}, row {i + 2}: confound {column!r} is {text!r}, not a "
                             "number (write n/a for a missing value).") from None
    return out


def read_confounds(path, *, n_samples, columns=None):
    """Confound regressors from a TSV/CSV table (fMRIPrep's ``*_desc-confounds_timeseries.tsv``).

    Parameters
    ----------
    path : str or Path
        Header line of column names, then one row per sample (volume).
    n_samples : int
        Samples of the brain data; the table must have as many rows.
    columns : list of str, optional
        Columns to use, in this order (default: all).

    Returns
    -------
    names : list of str
    confounds : ndarray, shape (n_samples, n_columns), float64
        As nilearn's ``load_confounds`` prepares them: NaN in the first row
        (fMRIPrep's derivatives and power terms) are replaced by the second row's
        values. NaN anywhere else is refused.

    Examples
    --------
    >>> names, conf = read_confounds("sub-01_desc-confounds_timeseries.tsv",
    ...                              n_samples=200, columns=["trans_x", "rot_x"])  # doctest: +SKIP
    """
    table = read_table(path)
    if columns:
        unknown = [c for c in columns if c not in table]
        if unknown:
            shown = ", ".join(list(table)[:20]) + (", ..." if len(table) > 20 else "")
            raise InputError(f"-confound-cols: {path} has no column(s) {unknown}; it has "
                             f"{len(table)}: {shown}.")
        names = list(columns)
    else:
        names = list(table)
    if not names:
        raise InputError(f"-confounds {path}: the table has no columns.")
    n_rows = len(table[names[0]])
    if n_rows != n_samples:
        raise InputError(f"-confounds {path} has {n_rows} rows but the brain data have "
                         f"{n_samples} samples; give one row per volume.")
    conf = np.column_stack([_as_float(table[c], path, c) for c in names])
    if n_rows > 1:
        first = np.isnan(conf[0])
        conf[0, first] = conf[1, first]
    bad = np.argwhere(np.isnan(conf))
    if len(bad):
        row, col = bad[0]
        raise InputError(f"-confounds {path}: confound {names[col]!r} is missing (n/a) at "
                         f"row {row + 2} (only the first row may be n/a); choose columns "
                         "with -confound-cols.")
    return names, conf


def clean_signals(signals, *, standardize=None, detrend=False, confounds=None,
                  high_pass=None, t_r=None):
    """Detrend, filter, regress out confounds and standardise, with nilearn.

    Calls :func:`nilearn.signal.clean` exactly as ``NiftiLabelsMasker`` does
    (``standardize_confounds=True``, Butterworth filter).

    Parameters
    ----------
    signals : array, shape (n_samples, n_signals)
    standardize : {None, "zscore", "psc"}
        zscore: mean 0, sample standard deviation 1; psc: percent signal change.
    detrend : bool
        Remove a linear trend.
    confounds : array, shape (n_samples, n_confounds), optional
    high_pass : float, optional
        Cut-off in Hz; needs ``t_r``.
    t_r : float, optional
        Seconds between samples.

    Returns
    -------
    ndarray, shape (n_samples, n_signals), float64

    Examples
    --------
    >>> clean_signals(np.random.rand(50, 3), standardize="zscore", detrend=True).shape
    (50, 3)
    """
    signals = np.asarray(signals, dtype=np.float64)
    confounds = check_clean_options(signals.shape[0], standardize=standardize,
                                    detrend=detrend, confounds=confounds,
                                    high_pass=high_pass, t_r=t_r)
    if not (standardize or detrend or confounds is not None or high_pass is not None):
        return signals
    try:
        from nilearn.signal import clean
    except ImportError:
        raise InputError("-standardize/-detrend/-confounds/-high-pass need nilearn: pip "
                         "install 'dnnsparse[plot]' (or pip install nilearn).") from None
    return clean(signals, detrend=bool(detrend),
                 standardize=STANDARDIZE[standardize] if standardize else None,
                 standardize_confounds=True, confounds=confounds, high_pass=high_pass,
                 low_pass=None, t_r=t_r)


def check_clean_options(n, *, standardize=None, detrend=False, confounds=None,
                        high_pass=None, t_r=None):
    """Refuse bad :func:`clean_signals` options for ``n`` samples; the confounds as 2-D."""
    if standardize is not None and standardize not in STANDARDIZE:
        raise InputError(f"-standardize {standardize!r}: choose one of "
                         f"{', '.join(STANDARDIZE)}.")
    if standardize and n < 2:
        raise InputError(f"-standardize {standardize}: the data have {n} sample; a z-score "
                         "or percent signal change needs at least 2 samples (a time series).")
    if detrend and n < 2:
        raise InputError(f"-detrend: the data have {n} sample; a trend needs at least 2.")
    if high_pass is not None:
        if not (isinstance(high_pass, (int, float)) and math.isfinite(high_pass)
                and high_pass > 0):
            raise InputError(f"-high-pass {high_pass}: give a cut-off above 0 Hz.")
        if t_r is None:
            raise InputError("-high-pass needs the sampling interval: give -t-r SECONDS "
                             "(the data's header has none).")
        if high_pass >= 0.5 / t_r:
            raise InputError(f"-high-pass {high_pass} Hz is not below the Nyquist "
                             f"frequency {0.5 / t_r:g} Hz of TR {t_r:g} s.")
    if t_r is not None and not (math.isfinite(t_r) and t_r > 0):
        raise InputError(f"-t-r {t_r}: give the seconds between volumes (> 0).")
    if confounds is not None:
        confounds = np.asarray(confounds, dtype=np.float64)
        if confounds.ndim == 1:
            confounds = confounds[:, None]
        if confounds.shape[0] != n:
            raise InputError(f"{confounds.shape[0]} confound rows for {n} samples; give "
                             "one row per sample.")
    return confounds


def extract_roi_signals(brain, rois, *, stat="mean", standardize=None, detrend=False,
                        confounds=None, confound_cols=None, high_pass=None, t_r=None):
    """ROI signals of ``brain``, cleaned like a nilearn masker's (see module doc).

    Parameters
    ----------
    brain : BrainData
    rois : ROISet
    stat : str, default="mean"
        See :func:`dnnsparse.base.roi.roi_signals`.
    standardize, detrend, high_pass, t_r
        See :func:`clean_signals`; ``t_r`` defaults to the data header's TR
        (only needed, and only looked up, with ``high_pass``).
    confounds : str or Path or array, optional
        A confounds table (:func:`read_confounds`) or an array (n_samples, k).
    confound_cols : list of str, optional
        Columns of the table (default: all).

    Returns
    -------
    ndarray, shape (n_samples, n_roi), float64

    Examples
    --------
    >>> extract_roi_signals(BrainData.load("bold.nii.gz"), rois, standardize="zscore",
    ...                     confounds="confounds.tsv", confound_cols=["trans_x"])  # doctest: +SKIP
    """
    if confound_cols and confounds is None:
        raise InputError("-confound-cols picks columns of -confounds TABLE; give -confounds.")
    if isinstance(confounds, (str, bytes)) or hasattr(confounds, "__fspath__"):
        _, confounds = read_confounds(confounds, n_samples=brain.n_samples,
                                      columns=confound_cols)
    if high_pass is not None and t_r is None:
        t_r = repetition_time(brain.space)
        if t_r is not None:
            log.info("TR %g s from the header of %s", t_r, brain.space.describe())
    # validate the options before the (possibly long) extraction
    check_clean_options(brain.n_samples, standardize=standardize, detrend=detrend,
                        confounds=confounds, high_pass=high_pass, t_r=t_r)
    signals = roi_signals(brain, rois, stat=stat)
    return clean_signals(signals, standardize=standardize, detrend=detrend,
                         confounds=confounds, high_pass=high_pass, t_r=t_r)
