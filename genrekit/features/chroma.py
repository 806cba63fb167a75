"""Chroma from an STFT power spectrogram, with automatic tuning estimation.

Follows Ellis's ``chromagram_E`` (D. Ellis, "Chroma feature analysis and synthesis",
2007) as implemented in ``librosa.feature.chroma_stft``: Gaussian bumps per pitch
class over the FFT bins, weighted by an octave window centred on C5, after the
tuning offset is estimated from spectral peaks (parabolic interpolation,
Smith & Serra 1987).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from genrekit.features.spectral import fft_frequencies


def hz_to_octs(freqs: np.ndarray, tuning: float = 0.0, bins_per_octave: int = 12) -> np.ndarray:
    """Octaves above C0 (A440 / 16, shifted by ``tuning`` bins)."""
    a440 = 440.0 * 2.0 ** (tuning / bins_per_octave)
    return np.log2(np.asarray(freqs) / (a440 / 16))


def spectral_peaks(S: np.ndarray, sr: float, n_fft: int, fmin: float = 150.0, fmax: float = 4000.0,
                   threshold: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """Interpolated frequencies (Hz) and magnitudes of the peaks in each frame of ``S``.

    Peaks are local maxima between ``fmin`` and ``fmax`` of ``S`` gated at
    ``threshold`` times the frame's maximum; each is refined by a parabola through the
    bin and its two neighbours. Returns three 1-D arrays with one entry per peak:
    frequency (Hz, float32), magnitude (float32) and frame index; the first two are
    the values ``librosa.piptrack`` places in its sparse output.
    """
    freqs = fft_frequencies(sr, n_fft)
    band = np.flatnonzero((max(fmin, 0.0) <= freqs) & (freqs < min(fmax, sr / 2)))
    if not len(band):
        return np.zeros(0, np.float32), np.zeros(0, np.float32), np.zeros(0, np.intp)
    lo, hi = max(int(band[0]), 1), int(band[-1]) + 1
    # Work on the band plus one neighbour each side: the rest of the spectrum only sets the gate.
    sub = S[lo - 1 : hi + 1]
    gated = sub * (sub > threshold * S.max(axis=0, keepdims=True))
    mid = gated[1:-1]
    is_peak = (mid > gated[:-2]) & (mid >= gated[2:])
    if hi == S.shape[0]:  # the top bin has no upper neighbour: a peak if it rises
        is_peak[-1] = gated[-2] > gated[-3]
    rows, frames = np.nonzero(is_peak)
    bins = rows + lo
    s0, below, above = S[bins, frames], S[bins - 1, frames], S[np.minimum(bins + 1, S.shape[0] - 1), frames]
    curvature = above + below - 2 * s0
    slope = (above - below) / 2
    steady = np.abs(slope) < np.abs(curvature)
    shift = np.zeros_like(s0)
    shift[steady] = -slope[steady] / curvature[steady]
    pitches = ((bins + shift) * float(sr) / n_fft).astype(np.float32)
    mags = (s0 + 0.5 * slope * shift).astype(np.float32)
    return pitches, mags, frames


def tuning_from_peaks(pitches: np.ndarray, mags: np.ndarray, resolution: float = 0.01,
                      bins_per_octave: int = 12) -> float:
    """Tuning offset in fractions of a bin, in ``[-0.5, 0.5)``, from spectral peaks.

    The stronger half of the peaks vote in a histogram of their deviation from the
    equal-tempered grid (A440); the fullest bin wins.
    """
    voiced = pitches > 0
    if not voiced.any():
        return 0.0
    chosen = pitches[voiced & (mags >= np.median(mags[voiced]))]
    if not len(chosen):
        return 0.0
    residual = np.mod(bins_per_octave * hz_to_octs(chosen), 1.0)
    residual[residual >= 0.5] -= 1.0
    edges = np.linspace(-0.5, 0.5, int(np.ceil(1.0 / resolution)) + 1)
    counts, edges = np.histogram(residual, edges)
    return float(edges[np.argmax(counts)])


def estimate_tuning(S: np.ndarray, sr: float, n_fft: int, resolution: float = 0.01,
                    bins_per_octave: int = 12) -> float:
    """Tuning offset of a spectrogram in fractions of a bin (see :func:`tuning_from_peaks`)."""
    pitches, mags, _ = spectral_peaks(S, sr, n_fft)
    return tuning_from_peaks(pitches, mags, resolution, bins_per_octave)


@lru_cache(maxsize=64)
def chroma_filterbank(sr: float, n_fft: int, tuning: float = 0.0, n_chroma: int = 12) -> np.ndarray:
    """Chroma filters, shape ``(n_chroma, 1 + n_fft // 2)``, rows starting at C.

    Equal to ``librosa.filters.chroma(sr=sr, n_fft=n_fft, tuning=tuning, n_chroma=n_chroma)``.
    """
    freqs = np.linspace(0, sr, n_fft, endpoint=False)[1:]
    frqbins = n_chroma * hz_to_octs(freqs, tuning=tuning, bins_per_octave=n_chroma)
    # The DC bin gets a virtual position 1.5 octaves below bin 1.
    frqbins = np.concatenate(([frqbins[0] - 1.5 * n_chroma], frqbins))
    widths = np.concatenate((np.maximum(frqbins[1:] - frqbins[:-1], 1.0), [1]))
    D = frqbins[None, :] - np.arange(n_chroma, dtype=float)[:, None]
    half = np.round(n_chroma / 2)
    D = np.remainder(D + half + 10 * n_chroma, n_chroma) - half
    weights = np.exp(-0.5 * (2 * D / widths[None, :]) ** 2)
    weights /= np.sqrt(np.sum(weights**2, axis=0, keepdims=True))
    # Octave weighting: Gaussian over log-frequency centred on C5 with a 2-octave width.
    weights *= np.exp(-0.5 * ((frqbins / n_chroma - 5.0) / 2.0) ** 2)[None, :]
    weights = np.roll(weights, -3 * (n_chroma // 12), axis=0)
    out = np.ascontiguousarray(weights[:, : 1 + n_fft // 2], dtype=np.float32)
    out.setflags(write=False)
    return out


def chroma_from_power(power: np.ndarray, sr: float, n_fft: int, tuning: float | None = None,
                      n_chroma: int = 12) -> np.ndarray:
    """Chromagram, shape ``(n_chroma, n_frames)``, each frame scaled to a maximum of 1.

    Parameters
    ----------
    power : np.ndarray, shape (1 + n_fft // 2, n_frames)
        STFT power spectrogram.
    tuning : float or None
        Tuning offset in bins; ``None`` estimates it with :func:`estimate_tuning`.
    """
    if tuning is None:
        tuning = estimate_tuning(power, sr, n_fft, bins_per_octave=n_chroma)
    raw = chroma_filterbank(sr, n_fft, round(tuning, 6), n_chroma) @ power
    peak = raw.max(axis=0, keepdims=True).astype(np.float64)
    peak[peak < np.finfo(raw.dtype).tiny] = 1.0
    return (raw / peak).astype(np.float32)
