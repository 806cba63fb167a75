"""Cutting signals into analysis windows and streams into overlapping blocks.

:func:`window_bounds` is the one rule for where analysis windows fall (features, models,
timelines); :func:`overlapping_blocks` regroups a stream of decoded chunks into blocks that
share the context an analysis needs across their edges (:mod:`genrekit.features.blockwise`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np

from genrekit.errors import ParameterError


def overlapping_blocks(chunks: Iterable[np.ndarray], size: int, overlap: int = 0) -> Iterator[tuple[int, np.ndarray]]:
    """Regroup a stream of sample chunks into blocks of ``size`` samples overlapping by ``overlap``.

    Block ``k`` holds samples ``[k * step, k * step + size)`` of the stream, with
    ``step = size - overlap``; the last block holds whatever remains (shorter, never
    empty unless the stream is). Memory: one block plus one chunk. This is the building
    block for analyses that need context across block edges (STFT frames, patches of a
    spectrogram): give ``overlap`` = the context needed.

    Parameters
    ----------
    chunks : iterable of np.ndarray (1-D)
        E.g. a :class:`Decoder`.
    size : int
        Samples per block.
    overlap : int
        Samples shared by consecutive blocks, ``0 <= overlap < size``.

    Yields
    ------
    (start, block) : (int, np.ndarray)
        ``start`` is the block's first sample in the stream.
    """
    if size <= 0 or not 0 <= overlap < size:
        raise ParameterError(f"need size > 0 and 0 <= overlap < size, got size={size}, overlap={overlap}")
    step = size - overlap
    pending: list[np.ndarray] = []
    held = start = 0
    emitted_to = 0  # stream position up to which samples were yielded
    for chunk in chunks:
        pending.append(np.asarray(chunk))
        held += len(chunk)
        if held < size:
            continue
        buf = np.concatenate(pending)
        pos = 0
        while len(buf) - pos >= size:
            yield start, buf[pos : pos + size]
            emitted_to = start + size
            start += step
            pos += step
        pending, held = [buf[pos:]], len(buf) - pos
    rest = np.concatenate(pending) if pending else np.zeros(0, np.float32)
    if len(rest) and start + len(rest) > emitted_to:
        yield start, rest


#: Largest tail (fraction of a window) that is folded into the last window rather than dropped.
TAIL_TOLERANCE = 0.05
#: Closest two windows of a ``cover_end`` plan may start (s): a shorter tail moves the last window
#: to the end where the windows overlap enough, instead of adding a sliver of a window beside it.
MIN_WINDOW_SHIFT = 1.0


def window_bounds(
    n_samples: int,
    sr: int,
    window: float | None,
    hop: float | None = None,
    *,
    cover_end: bool = False,
    exact: bool = False,
) -> list[tuple[int, int]]:
    """Sample ranges ``[(start, stop), ...]`` of the analysis windows of a signal.

    The rule, used everywhere in genrekit:

    - windows are ``round(window * sr)`` samples long and start every
      ``round(hop * sr)`` samples (``hop=None``: non-overlapping, hop = window);
    - only whole windows are made, as in the Kaggle GTZAN tables; a tail after the
      last whole window shorter than :data:`TAIL_TOLERANCE` of a window is absorbed
      into the last window (a 30.01-s clip is one 30-s row over all of it, not a row
      that loses 0.01 s); a longer tail is dropped, unless ``cover_end`` is true, in
      which case one more window ending exactly at the signal's end is added (used
      for timelines, which must cover the whole song); where that window would start less
      than :data:`MIN_WINDOW_SHIFT` s after the last one and the windows overlap by more
      than the tail, the last window moves to end at the signal's end instead (a 30.013-s
      clip's 10-s timeline windows start at 0, 5, 10, 15 and 20.013 s, not 20 and 20.013);
    - a signal shorter than one window is analysed as one window covering all of it
      (no padding, so a 29.98-s GTZAN clip still yields its whole-clip row);
    - ``window=None`` means one window over the whole signal.

    Signals shorter than one STFT frame are refused earlier, by :func:`load`'s
    ``min_samples``.

    Parameters
    ----------
    n_samples : int
        Length of the signal in samples.
    sr : int
        Sample rate in Hz.
    window, hop : float or None
        Window length and hop in seconds.
    cover_end : bool
        Add a final window aligned to the end when the tail would be dropped.
    exact : bool
        With ``cover_end``: no window longer than ``window``, not even to absorb a short tail
        (an end-aligned window covers it; timelines promise their windows' length).
    """
    if n_samples <= 0:
        return []
    if window is None:
        return [(0, n_samples)]
    length = max(1, int(round(window * sr)))
    step = max(1, int(round((hop if hop is not None else window) * sr)))
    if n_samples <= length:
        return [(0, n_samples)]
    starts = list(range(0, n_samples - length + 1, step))
    bounds = [(s, s + length) for s in starts]
    tail = n_samples - bounds[-1][1]
    if 0 < tail <= TAIL_TOLERANCE * length and not (exact and cover_end):
        bounds[-1] = (bounds[-1][0], n_samples)
    elif tail > 0 and cover_end:
        if len(bounds) > 1 and tail < MIN_WINDOW_SHIFT * sr and length - step >= tail:
            bounds[-1] = (n_samples - length, n_samples)  # still all covered: the one before overlaps it
        else:
            bounds.append((n_samples - length, n_samples))
    return bounds
