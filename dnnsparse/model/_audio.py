"""The log-mel example batches of ``type=audio`` stimuli.

A row of a ``type=audio`` table is one audio file (``path=`` a folder) or a segment
``[onset, onset + duration)`` of one long file (``path=`` the file). Each row is read
(a segment alone: a seek and a read, never the whole file), mixed down to mono (the
mean of the channels), resampled to the network's rate with
:func:`scipy.signal.resample_poly` at the exact rational ratio (each row on its own),
and cut into VGGish log-mel examples (:mod:`dnnsparse.utils.audio`): 96 frames x 64
mel bands, one every 0.96 s. The rows of the activations are these examples:
``stimID#k`` is the k-th (1-based) example of a row, with onset
``row onset + (k - 1) * 0.96`` s (row onset: the segment's ``onset``, or the table's
``onset`` column for files, else 0) and duration 0.96 s.

The networks (VGGish, :class:`~._audionet.AudioDNN`) are in :mod:`._audionet`; this
module only reads rows, so extraction can use it without importing the DNN class.
"""
import logging

import numpy as np
import torch

from ..errors import InputError
from ..io.audio import probe_audio, read_audio
from ..utils.audio import (VGGISH_FRONT_END, log_mel_examples, n_examples, resample,
                           resample_length, resample_ratio)

__all__ = ["audio_batches", "audio_examples", "audio_plan"]

log = logging.getLogger(__name__)

# --------------------------------------------------------------------- rows
def _number_column(stim, name):
    values = stim.columns.get(name)
    if values is None:
        return None
    if values.dtype.kind not in "iuf":
        raise InputError(f"the {name} column of an audio table must hold seconds; got "
                         f"{values[0]!r}.")
    values = values.astype(np.float64)
    bad = np.flatnonzero(~np.isfinite(values) | (values < 0))
    if bad.size:
        raise InputError(f"row {bad[0] + 1}: {name} {values[bad[0]]} is not a time >= 0 s.")
    return values


def audio_plan(stim, dnn):
    """Check every row of a ``type=audio`` table and say what to read.

    Returns
    -------
    sources : list of (AudioInfo, start frame, n frames), one per table row
    counts : ndarray of int64, shape (n_rows,)
        Examples per row (each >= 1).
    onsets : ndarray of float64, shape (n_rows,)
        Each row's start (seconds), the onset of its first example.
    names : list of str
        Each row's data in messages.
    """
    fe = dnn.front_end
    onset_col, duration_col = _number_column(stim, "onset"), _number_column(stim, "duration")
    if stim.layout == "stream":
        if onset_col is None or duration_col is None:
            raise InputError(f"a type=audio table on one file ({stim.root}) needs 'onset' "
                             f"and 'duration' columns (seconds) for its segments.")
        info = probe_audio(stim.root)
        infos = [info] * len(stim)
        starts = np.rint(onset_col * info.rate).astype(np.int64)
        lengths = np.rint(duration_col * info.rate).astype(np.int64)
        past = np.flatnonzero(starts + lengths > info.frames)
        if past.size:
            i = int(past[0])
            raise InputError(f"row {i + 1}: segment {onset_col[i]:g}-"
                             f"{onset_col[i] + duration_col[i]:g} s runs past the end of "
                             f"{info.path} ({info.seconds:g} s); shorten or drop it.")
        names = [f"{stim.root} at {o:g} s" for o in onset_col]
        onsets = onset_col
    else:
        infos = [probe_audio(p) for p in stim.paths]
        starts = np.zeros(len(stim), dtype=np.int64)
        lengths = np.array([i.frames for i in infos], dtype=np.int64)
        names = [str(p) for p in stim.paths]
        onsets = onset_col if onset_col is not None else np.zeros(len(stim))
    counts = np.empty(len(stim), dtype=np.int64)
    for r, (info, n) in enumerate(zip(infos, lengths)):
        up, down = resample_ratio(info.rate, fe.sample_rate, where=f"{names[r]} (row {r + 1})")
        counts[r] = n_examples(resample_length(int(n), up, down), fe)
        if counts[r] == 0:
            raise InputError(f"{names[r]} (row {r + 1}) lasts {n / info.rate:.3f} s; "
                             f"{dnn.name} needs at least {fe.min_samples / fe.sample_rate:g} s "
                             f"for one {fe.example_seconds:g} s example.")
    return list(zip(infos, starts.tolist(), lengths.tolist())), counts, onsets, names


def audio_examples(source, front_end=VGGISH_FRONT_END):
    """Log-mel examples ``(k, 96, 64)`` float64 of one row ``(info, start, n)``."""
    info, start, n = source
    x = read_audio(info, start, n)
    return log_mel_examples(resample(x, info.rate, front_end.sample_rate,
                                     where=str(info.path)), front_end)


def audio_batches(sources, front_end, batch_size):
    """``(example indices, float32 batch (b, 1, 96, 64), [])`` over all rows' examples.

    One row's waveform and the examples of at most one batch (plus one row) are in
    memory at a time.
    """
    pending, done = [], 0
    for source in sources:
        pending.append(torch.from_numpy(audio_examples(source, front_end)
                                        .astype(np.float32))[:, None])
        while sum(len(p) for p in pending) >= batch_size:
            x = torch.cat(pending)
            pending = [x[batch_size:]] if len(x) > batch_size else []
            yield list(range(done, done + batch_size)), x[:batch_size], []
            done += batch_size
    if pending:
        x = torch.cat(pending)
        if len(x):
            yield list(range(done, done + len(x))), x, []
