"""Features of a song of any length in bounded memory: analyses fed block by block.

Decoding gives a stream of sample blocks (:class:`genrekit.audio.decode.Decoder`); the
analyses here take them one at a time (:meth:`feed`) and give the same numbers as
the whole-signal functions when the stream ends (:meth:`finish`), while holding only
a few minutes of audio, whatever the song's length.

- :class:`WindowedAnalysis`: any per-window analysis (the gtzan57 rows, a model's
  probabilities) over the windows of :func:`genrekit.audio.windows.window_bounds`. Windows are
  analysed in groups as soon as the stream has gone far enough past them that no later
  sample can change which windows exist; each group's span carries ``margin`` samples
  of real audio on both sides, so frame-level steps that look at neighbours (STFT
  frames, the 31-frame HPSS median, the inverse STFT) see exactly what they see in a
  whole-signal analysis, and spans start on the ``align`` grid (the STFT hop) so
  frames fall where they fall on the whole signal.
- :class:`LogmelStream`: the log-mel spectrogram (and so MFCCs) frame by frame, with
  the whole-signal ``top_db`` floor applied at the end. A feature set computed on
  patches of a spectrogram (3-s patches of a 16-kHz log-mel, say) cuts them from its
  output, or runs its network per group through a :class:`WindowedAnalysis` with a
  margin of half an STFT frame.
- :func:`compute_stream`: :meth:`FeatureSet.compute` of a decoded stream.

Memory: a :class:`WindowedAnalysis` holds about ``span + window + hop`` seconds of
audio and one group's frame-level arrays; a :class:`LogmelStream` holds one STFT frame
of audio plus its output (1.3 MB per minute at the defaults).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import numpy as np
import scipy.fft

from genrekit.audio.windows import TAIL_TOLERANCE, window_bounds
from genrekit.engines.threads import on_one_blas_thread
from genrekit.features import spectral
from genrekit.features.defaults import HOP_LENGTH, N_FFT, N_MELS, SAMPLE_RATE

#: Seconds of audio analysed per group of windows (beyond one window): the memory/overhead trade.
DEFAULT_SPAN = 90.0
#: STFT frames computed per batch by :class:`LogmelStream`.
FRAME_BATCH = 1024


class WindowedAnalysis:
    """Run ``analyse(y, bounds) -> rows`` over a stream's windows, a group at a time.

    Parameters
    ----------
    sr : int
        Sample rate of the stream (Hz).
    window, hop : float or None
        As :func:`genrekit.audio.windows.window_bounds` (seconds; ``window=None``: the whole
        signal as one window, which needs the whole signal in memory).
    analyse : callable
        ``analyse(y, bounds)``: rows (an array, first axis one per window) for the
        windows ``bounds`` (sample ranges within ``y``).
    cover_end : bool
        As :func:`genrekit.audio.windows.window_bounds`.
    margin : int
        Samples of context kept on both sides of a group (0: windows are analysed
        alone, as the gtzan57 table does).
    align : int
        Group spans start on multiples of this (the STFT hop), so frames stay on the
        whole signal's grid.
    span : float
        Seconds of audio per group (at least one window).

    Examples
    --------
    >>> run = WindowedAnalysis(22050, 30.0, 15.0, rows_of)   # doctest: +SKIP
    >>> for block in decoder:
    ...     run.feed(block)
    >>> bounds, rows = run.finish()
    """

    def __init__(self, sr: int, window: float | None, hop: float | None,
                 analyse: Callable[[np.ndarray, list[tuple[int, int]]], np.ndarray], *,
                 cover_end: bool = False, margin: int = 0, align: int = 1, span: float = DEFAULT_SPAN) -> None:
        self.sr, self.window, self.hop, self.cover_end = sr, window, hop, cover_end
        self.analyse, self.margin, self.align = analyse, int(margin), max(1, int(align))
        self.whole = window is None
        if not self.whole:
            self.length = max(1, int(round(window * sr)))
            self.step = max(1, int(round((hop if hop is not None else window) * sr)))
            self.group = max(1, int((span * sr - self.length) // self.step) + 1)
            # A window is final once the stream is this far past its end: it cannot be
            # stretched over a short tail any more, and its right margin is available.
            self.settle = max(TAIL_TOLERANCE * self.length, self.margin)
        self.n = 0
        self.base = 0  # stream position of the first held sample
        self._held: list[np.ndarray] = []
        self._held_n = 0
        self.done = 0  # grid windows analysed
        self.bounds: list[tuple[int, int]] = []
        self._rows: list[np.ndarray] = []

    def feed(self, block: np.ndarray) -> None:
        """Take the next samples of the stream."""
        if not len(block):
            return
        self._held.append(np.asarray(block, dtype=np.float32))
        self._held_n += len(block)
        self.n += len(block)
        if self.whole:
            return
        while self._settled(self.n) - self.done >= self.group:
            first = self.done
            grid = [(k * self.step, k * self.step + self.length) for k in range(first, first + self.group)]
            self._run(grid)
            self.done += self.group
            self._drop_before(min(self.done * self.step, self.n - self.length) - self.margin)

    def finish(self) -> tuple[list[tuple[int, int]], np.ndarray]:
        """``(bounds, rows)`` of every window of the whole stream (bounds in stream samples)."""
        final = window_bounds(self.n, self.sr, self.window, self.hop, cover_end=self.cover_end)
        if final[: self.done] != self.bounds[: self.done]:  # pragma: no cover - a logic error, not bad input
            raise AssertionError("block-wise windows disagree with window_bounds")
        rest = final[self.done :]
        step = self.group if not self.whole else max(1, len(rest))
        for i in range(0, len(rest), step):
            self._run(rest[i : i + step])
        rows = np.concatenate(self._rows) if self._rows else np.zeros((0,))
        return final, rows

    # --- internals --------------------------------------------------------------------
    def _settled(self, n: int) -> int:
        """How many grid windows are final when ``n`` samples are known."""
        room = n - self.length - self.settle
        return 0 if room <= 0 else math.ceil(room / self.step)

    def _run(self, bounds: list[tuple[int, int]]) -> None:
        lo = max(self.base, (bounds[0][0] - self.margin) // self.align * self.align)
        hi = min(self.n, max(stop for _, stop in bounds) + self.margin)
        y = self._span(lo, hi)
        rows = np.asarray(self.analyse(y, [(s - lo, e - lo) for s, e in bounds]))
        self._rows.append(rows)
        self.bounds.extend(bounds)

    def _span(self, lo: int, hi: int) -> np.ndarray:
        if lo < self.base:  # pragma: no cover - a logic error, not bad input
            raise AssertionError(f"samples {lo}..{self.base} were already dropped")
        if len(self._held) > 1:
            self._held = [np.concatenate(self._held)]
        return self._held[0][lo - self.base : hi - self.base] if self._held else np.zeros(0, np.float32)

    def _drop_before(self, position: int) -> None:
        keep = max(0, position) // self.align * self.align
        cut = keep - self.base
        if cut <= 0:
            return
        joined = np.concatenate(self._held) if len(self._held) > 1 else self._held[0]
        self._held = [joined[cut:].copy()]
        self._held_n = len(self._held[0])
        self.base = keep


class LogmelStream:
    """Log-power mel spectrogram (dB) of a stream, frame by frame: equal to ``SpectralFrontEnd.logmel``.

    Frames are centred with zero padding (``n_fft // 2`` zeros before the first
    sample and after the last), ``1 + n // hop_length`` of them, as :func:`spectral.stft`.

    Parameters
    ----------
    sr, n_fft, hop_length, n_mels, fmin, fmax
        As :class:`genrekit.features.spectral.SpectralFrontEnd`.
    top_db : float or None
        Floor, in dB below the whole spectrogram's peak, applied by :meth:`finish`.
    """

    def __init__(self, sr: int = SAMPLE_RATE, n_fft: int = N_FFT,
                 hop_length: int = HOP_LENGTH, n_mels: int = N_MELS,
                 fmin: float = 0.0, fmax: float | None = None, top_db: float | None = 80.0) -> None:
        self.sr, self.n_fft, self.hop, self.n_mels = sr, n_fft, hop_length, n_mels
        self.fmin, self.fmax, self.top_db = fmin, fmax, top_db
        self._window = spectral.hann_window(n_fft).astype(np.float32)
        self._buf = np.zeros(n_fft // 2, np.float32)  # the leading padding
        self._pos = 0  # padded-stream index of _buf[0]
        self._next = 0  # next frame to compute
        self._out: list[np.ndarray] = []
        self.n = 0

    def feed(self, block: np.ndarray) -> None:
        if not len(block):
            return
        self.n += len(block)
        self._buf = np.concatenate((self._buf, np.asarray(block, dtype=np.float32)))
        if len(self._buf) >= self.n_fft + FRAME_BATCH * self.hop:
            self._frames(None)

    def finish(self) -> np.ndarray:
        """The spectrogram, shape ``(n_mels, 1 + n // hop_length)``, float32."""
        self._buf = np.concatenate((self._buf, np.zeros(self.n_fft // 2, np.float32)))
        self._frames(1 + self.n // self.hop)
        out = np.concatenate(self._out, axis=1) if self._out else np.zeros((self.n_mels, 0), np.float32)
        self._out = [out]
        if self.top_db is not None and out.size:
            np.maximum(out, out.max() - self.top_db, out=out)
        return out

    def _frames(self, total: int | None) -> None:
        while True:
            start = self._next * self.hop - self._pos
            available = len(self._buf) - start
            count = 0 if available < self.n_fft else (available - self.n_fft) // self.hop + 1
            if total is not None:
                count = min(count, total - self._next)
            count = min(count, FRAME_BATCH)
            if count <= 0:
                break
            segment = self._buf[start : start + (count - 1) * self.hop + self.n_fft]
            frames = spectral.frame(segment, self.n_fft, self.hop) * self._window
            power = np.abs(scipy.fft.rfft(frames, axis=-1, overwrite_x=True).T) ** 2
            mel = spectral.mel_power(power, self.sr, self.n_fft, self.n_mels, self.fmin, self.fmax)
            self._out.append(spectral.power_to_db(mel, top_db=None))
            self._next += count
        drop = self._next * self.hop - self._pos
        if drop > 0:
            self._buf = self._buf[drop:].copy()
            self._pos += drop


#: Context an analysis of gtzan57 rows needs on each side of its windows (samples at
#: 22050 Hz): half an STFT frame, the 15 frames either side of the HPSS time median, and
#: a few frames of slack; a multiple of the hop.
GTZAN57_MARGIN = 32 * 512


def gtzan57_window_rows(sr: int, window: float | None, hop: float | None, rows_of, *,
                        cover_end: bool, span: float = DEFAULT_SPAN) -> WindowedAnalysis:
    """A :class:`WindowedAnalysis` of ``rows_of(y, bounds)`` computed like :func:`gtzan57_windows`.

    ``rows_of`` gets spans with :data:`GTZAN57_MARGIN` of context on the hop grid, so
    its rows equal those of one whole-signal call.
    """
    from genrekit.features.gtzan57 import HOP_LENGTH

    return WindowedAnalysis(sr, window, hop, rows_of, cover_end=cover_end, margin=GTZAN57_MARGIN,
                            align=HOP_LENGTH, span=span)


def analysis_for(fs) -> "WindowedAnalysis | LogmelStream | _WholeSignal":
    """The streaming analysis computing :meth:`FeatureSet.compute` for ``fs``."""
    if fs.name == "gtzan57":
        if fs.window is None:
            return _WholeSignal(fs)
        from genrekit.features.gtzan57 import gtzan57_features

        def rows(y, bounds):
            return np.stack([gtzan57_features(y[start:stop], fs.sample_rate) for start, stop in bounds])

        # Each window of the table is analysed alone, so no context is needed.
        return WindowedAnalysis(fs.sample_rate, fs.window, None, rows)
    if fs.name in ("logmel", "mfcc"):
        return LogmelStream(fs.sample_rate, fs.n_fft, fs.hop_length, fs.n_mels, fs.fmin, fs.fmax, fs.top_db)
    if fs.name == "msd_musicnn" and fs.max_patches is None:  # (a patch budget needs the length up front)
        from genrekit.backbones.msd_musicnn import FeatureRowsStream

        return FeatureRowsStream(step=fs.step, window=fs.window)
    # A set without a block-wise recipe yet: correct, but its memory grows with the song.
    return _WholeSignal(fs)


class _WholeSignal:
    """A feature set that needs the whole signal at once (gtzan57 with ``window=None``)."""

    def __init__(self, fs) -> None:
        self.fs = fs
        self._blocks: list[np.ndarray] = []

    def feed(self, block: np.ndarray) -> None:
        self._blocks.append(np.asarray(block, dtype=np.float32))

    def finish(self) -> np.ndarray:
        return self.fs.compute(np.concatenate(self._blocks) if self._blocks else np.zeros(0, np.float32))


@on_one_blas_thread
def compute_stream(fs, blocks: Iterable[np.ndarray]) -> tuple[np.ndarray, int]:
    """:meth:`FeatureSet.compute` of the concatenated ``blocks``, in bounded memory: ``(array, n_samples)``.

    Equal to ``fs.compute(np.concatenate(blocks))`` (to float rounding in the mel
    products). The caller makes sure the stream is long enough (``fs.min_samples``),
    e.g. with :class:`genrekit.audio.decode.Decoder`'s ``min_samples``.
    """
    analysis = analysis_for(fs)
    n = 0
    for block in blocks:
        n += len(block)
        analysis.feed(block)
    if isinstance(analysis, WindowedAnalysis):
        _, rows = analysis.finish()
        return rows, n
    out = analysis.finish()
    if fs.name == "mfcc" and isinstance(analysis, LogmelStream):
        out = spectral.mfcc_from_logmel(out, n_mfcc=fs.n_mfcc)
    return out, n
