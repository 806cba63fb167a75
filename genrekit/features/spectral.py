"""The shared STFT front end and the spectral descriptors computed from it.

Every spectral feature in genrekit starts from one short-time Fourier transform per
analysis window (:func:`stft`); mel spectrograms, MFCCs, chroma, centroid, bandwidth,
roll-off and HPSS all reuse it. Conventions follow librosa's defaults so that numbers
agree with tables made with librosa (the Kaggle GTZAN table in particular):

- periodic Hann window, frames centred on ``t * hop_length`` with zero padding
  of ``n_fft // 2`` samples at both ends;
- mel filters on the Slaney scale with Slaney area normalisation
  (Slaney 1998, *Auditory Toolbox*; librosa ``filters.mel(htk=False, norm="slaney")``);
- decibels as ``10 log10(max(amin, S) / ref)`` clipped to ``top_db`` below the peak.

Spectrograms are laid out ``(n_bins, n_frames)`` like librosa's.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import scipy.fft
from numpy.lib.stride_tricks import sliding_window_view

from genrekit.errors import ParameterError
from genrekit.features.defaults import HOP_LENGTH, N_FFT, N_MELS, SAMPLE_RATE

AMIN = 1e-10


# --- framing and the STFT -------------------------------------------------------
def hann_window(n: int) -> np.ndarray:
    """Periodic Hann window of ``n`` samples (float64), as ``scipy.signal.get_window('hann', n)``."""
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n) / n)


def frame(y: np.ndarray, frame_length: int, hop_length: int) -> np.ndarray:
    """View ``y`` as overlapping frames, shape ``(n_frames, frame_length)`` (no copy)."""
    return sliding_window_view(y, frame_length)[::hop_length]


def n_frames(n_samples: int, hop_length: int) -> int:
    """Number of centred STFT frames for a signal of ``n_samples`` samples."""
    return 1 + n_samples // hop_length


def stft(y: np.ndarray, n_fft: int = 2048, hop_length: int = 512, pad_mode: str = "constant") -> np.ndarray:
    """Complex STFT of a mono signal, shape ``(1 + n_fft // 2, n_frames)``, complex64.

    Frames are centred (``n_fft // 2`` samples of padding at both ends) and weighted by
    a periodic Hann window. ``pad_mode`` is a :func:`numpy.pad` mode: ``"constant"``
    (zeros, librosa >= 0.10) or ``"reflect"`` (librosa < 0.10, which made the Kaggle
    GTZAN tables). Computed in single precision: the difference from librosa's
    double-precision transform is far below the 1e-3 dB the log-mel promises.
    """
    y = np.asarray(y, dtype=np.float32)
    padded = np.pad(y, n_fft // 2, mode=pad_mode)
    frames = frame(padded, n_fft, hop_length) * hann_window(n_fft).astype(np.float32)
    # Frames-major FFT (contiguous rows) is several times faster than transforming columns;
    # the transposed view gives librosa's (bins, frames) layout at no cost.
    return scipy.fft.rfft(frames, axis=-1, overwrite_x=True).T


def istft(D: np.ndarray, hop_length: int = 512, length: int | None = None) -> np.ndarray:
    """Inverse of :func:`stft` by weighted overlap-add (Griffin & Lim 1984), float32.

    Parameters
    ----------
    D : np.ndarray, shape (1 + n_fft // 2, n_frames)
    hop_length : int
    length : int or None
        Length of the output in samples; the centring padding is removed first.
    """
    n_fft = 2 * (D.shape[0] - 1)
    window = hann_window(n_fft)
    frames = scipy.fft.irfft(D.T, n=n_fft, axis=-1) * window.astype(np.float32)
    total = n_fft + hop_length * (frames.shape[0] - 1)
    y = _overlap_add(frames, hop_length, total)
    # Squared-window envelope: constant in the interior, tapering at both ends.
    norm = _overlap_add(np.broadcast_to((window**2).astype(np.float32), frames.shape), hop_length, total)
    tiny = np.finfo(np.float32).tiny
    y[norm > tiny] /= norm[norm > tiny]
    start = n_fft // 2
    stop = total - n_fft // 2 if length is None else start + length
    out = y[start:stop]
    if length is not None and len(out) < length:
        out = np.pad(out, (0, length - len(out)))
    return out


def _overlap_add(frames: np.ndarray, hop_length: int, total: int) -> np.ndarray:
    n, n_fft = frames.shape
    out = np.zeros(total, dtype=np.float32)
    if n_fft % hop_length == 0:
        # Add the frames as n_fft/hop strided blocks: a few vector adds, no Python loop per frame.
        blocks = out.reshape(-1, hop_length) if total % hop_length == 0 else None
        if blocks is not None:
            split = frames.reshape(n, n_fft // hop_length, hop_length)
            for k in range(n_fft // hop_length):
                blocks[k : k + n] += split[:, k, :]
            return out
    for i in range(n):
        out[i * hop_length : i * hop_length + n_fft] += frames[i]
    return out


def fft_frequencies(sr: float, n_fft: int) -> np.ndarray:
    """Centre frequency in Hz of each STFT bin, shape ``(1 + n_fft // 2,)``."""
    return np.fft.rfftfreq(n_fft, d=1.0 / sr)


# --- mel scale ----------------------------------------------------------------------
_F_SP = 200.0 / 3  # Hz per mel below 1 kHz on the Slaney scale
_MIN_LOG_HZ = 1000.0
_MIN_LOG_MEL = _MIN_LOG_HZ / _F_SP
_LOGSTEP = np.log(6.4) / 27.0


def hz_to_mel(freqs: np.ndarray) -> np.ndarray:
    """Slaney mel scale: linear below 1 kHz, logarithmic above."""
    freqs = np.asarray(freqs, dtype=np.float64)
    return np.where(
        freqs >= _MIN_LOG_HZ,
        _MIN_LOG_MEL + np.log(np.maximum(freqs, _MIN_LOG_HZ) / _MIN_LOG_HZ) / _LOGSTEP,
        freqs / _F_SP,
    )


def mel_to_hz(mels: np.ndarray) -> np.ndarray:
    """Inverse of :func:`hz_to_mel`."""
    mels = np.asarray(mels, dtype=np.float64)
    return np.where(
        mels >= _MIN_LOG_MEL,
        _MIN_LOG_HZ * np.exp(_LOGSTEP * (mels - _MIN_LOG_MEL)),
        _F_SP * mels,
    )


@lru_cache(maxsize=16)
def mel_filterbank(sr: float, n_fft: int, n_mels: int = 128, fmin: float = 0.0, fmax: float | None = None) -> np.ndarray:
    """Triangular mel filters with Slaney area normalisation, shape ``(n_mels, 1 + n_fft // 2)``.

    Equal to ``librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax)``.
    The returned array is read-only because it is shared between calls.
    """
    fmax = sr / 2.0 if fmax is None else fmax
    edges = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    ramps = edges[:, None] - fft_frequencies(sr, n_fft)[None, :]
    widths = np.diff(edges)
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper)).astype(np.float32)
    weights *= (2.0 / (edges[2:] - edges[:-2]))[:, None]
    weights.setflags(write=False)
    return weights


@lru_cache(maxsize=16)
def _mel_blocks(sr: float, n_fft: int, n_mels: int, fmin: float, fmax: float | None, per_block: int = 8):
    # Each mel filter touches a short run of bins, so the product is done block by block over
    # only the bins a block of filters touches: about 5x fewer flops than the dense product.
    weights = mel_filterbank(sr, n_fft, n_mels, fmin, fmax)
    blocks = []
    for first in range(0, n_mels, per_block):
        rows = weights[first : first + per_block]
        used = np.flatnonzero(rows.any(axis=0))
        lo, hi = (int(used[0]), int(used[-1]) + 1) if len(used) else (0, 0)
        blocks.append((first, first + len(rows), lo, hi, np.ascontiguousarray(rows[:, lo:hi])))
    return blocks


def mel_power(power: np.ndarray, sr: float, n_fft: int, n_mels: int = 128, fmin: float = 0.0,
              fmax: float | None = None) -> np.ndarray:
    """Mel power spectrogram ``mel_filterbank(...) @ power``, shape ``(n_mels, n_frames)``, float32.

    Parameters
    ----------
    power : np.ndarray, shape (1 + n_fft // 2, n_frames)
        STFT power spectrogram ``|D|**2``.
    """
    out = np.zeros((n_mels, power.shape[-1]), dtype=np.float32)
    for first, last, lo, hi, block in _mel_blocks(sr, n_fft, n_mels, fmin, fmax):
        if hi > lo:
            out[first:last] = block @ power[lo:hi]
    return out


def power_to_db(S: np.ndarray, ref: float = 1.0, amin: float = AMIN, top_db: float | None = 80.0) -> np.ndarray:
    """Power to decibels: ``10 log10(max(amin, S) / ref)``, floored ``top_db`` below the peak."""
    db = 10.0 * np.log10(np.maximum(amin, S))
    db -= 10.0 * np.log10(max(amin, abs(ref)))
    if top_db is not None:
        if top_db < 0:
            raise ParameterError("top_db must be non-negative")
        db = np.maximum(db, db.max() - top_db)
    return db


def mfcc_from_logmel(logmel: np.ndarray, n_mfcc: int = 20) -> np.ndarray:
    """MFCCs: orthonormal DCT-II of a log-mel spectrogram along frequency, first ``n_mfcc`` rows.

    Equal to ``librosa.feature.mfcc(S=logmel, n_mfcc=n_mfcc)`` (Davis & Mermelstein 1980).
    """
    return scipy.fft.dct(logmel, type=2, norm="ortho", axis=-2)[..., :n_mfcc, :]


# --- spectral shape -----------------------------------------------------------------
def _moments(S: np.ndarray, freqs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    # First and second frequency moments of each frame's magnitude distribution, as two
    # matrix-vector products: no normalised copy of the spectrogram is ever made.
    total = S.sum(axis=0, dtype=np.float64)
    f = freqs.astype(S.dtype)
    m1 = (f @ S).astype(np.float64)
    m2 = ((f * f) @ S).astype(np.float64)
    # Frames whose sum is below the smallest float are left unnormalised (all-zero frames).
    total[total < np.finfo(S.dtype).tiny] = 1.0
    return m1 / total, m2 / total


def spectral_centroid(S: np.ndarray, freqs: np.ndarray) -> np.ndarray:
    """Magnitude-weighted mean frequency of each frame in Hz, shape ``(n_frames,)``."""
    return _moments(S, freqs)[0]


def spectral_centroid_bandwidth(S: np.ndarray, freqs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centroid and bandwidth (Hz) of each frame from one pass over the spectrogram."""
    mean, second = _moments(S, freqs)
    return mean, np.sqrt(np.maximum(second - mean * mean, 0.0))


def spectral_bandwidth(S: np.ndarray, freqs: np.ndarray, centroid: np.ndarray | None = None) -> np.ndarray:
    """Second-order spectral bandwidth in Hz (Klapuri & Davy 2006), shape ``(n_frames,)``.

    ``sqrt(sum_f p(f) (f - c)^2)`` with ``p`` the frame's normalised magnitudes and ``c``
    its centroid, computed as ``sqrt(E[f^2] - 2 c E[f] + c^2 sum p)``.
    """
    mean, second = _moments(S, freqs)
    c = mean if centroid is None else centroid
    mass = (S.sum(axis=0, dtype=np.float64) >= np.finfo(S.dtype).tiny).astype(np.float64)
    # With the frame's own centroid this is the variance E[f^2] - E[f]^2 (clipped at 0 for rounding).
    return np.sqrt(np.maximum(second - 2 * c * mean + c * c * mass, 0.0))


def spectral_rolloff(S: np.ndarray, freqs: np.ndarray, roll_percent: float = 0.85) -> np.ndarray:
    """Frequency in Hz below which ``roll_percent`` of each frame's magnitude lies."""
    cumulative = np.cumsum(S, axis=0)
    reached = cumulative >= roll_percent * cumulative[-1:]
    return freqs[np.argmax(reached, axis=0)]


# --- time-domain descriptors -------------------------------------------------------
def rms(y: np.ndarray, frame_length: int = 2048, hop_length: int = 512, pad_mode: str = "constant") -> np.ndarray:
    """Root-mean-square of each centred frame of the signal, shape ``(n_frames,)``.

    ``pad_mode`` as in :func:`stft`.
    """
    padded = np.pad(np.asarray(y, dtype=np.float32), frame_length // 2, mode=pad_mode)
    frames = frame(padded, frame_length, hop_length)
    return np.sqrt(np.mean(frames * frames, axis=-1))


def zero_crossing_rate(y: np.ndarray, frame_length: int = 2048, hop_length: int = 512) -> np.ndarray:
    """Fraction of sample pairs in each centred frame whose signs differ, shape ``(n_frames,)``.

    Frames are padded by repeating the edge samples; samples within 1e-10 of zero count
    as positive, as in ``librosa.feature.zero_crossing_rate``.
    """
    padded = np.pad(np.asarray(y, dtype=np.float32), frame_length // 2, mode="edge")
    sign = np.signbit(np.where(np.abs(padded) <= 1e-10, 0.0, padded))
    crossing = np.concatenate(([0], np.cumsum(sign[1:] != sign[:-1])))
    starts = np.arange(n_frames(len(y), hop_length)) * hop_length
    # Crossings between samples start..start+frame_length-1, i.e. within the frame.
    counts = crossing[starts + frame_length - 1] - crossing[starts]
    return counts / frame_length


# --- the front end as one object -----------------------------------------------------
@dataclass
class SpectralFrontEnd:
    """STFT + mel parameters bundled, with cached filters.

    >>> front = SpectralFrontEnd(sr=22050)
    >>> logmel = front.logmel(y)            # (n_mels, n_frames), dB
    """

    sr: int = SAMPLE_RATE
    n_fft: int = N_FFT
    hop_length: int = HOP_LENGTH
    n_mels: int = N_MELS
    fmin: float = 0.0
    fmax: float | None = None
    @property
    def freqs(self) -> np.ndarray:
        return fft_frequencies(self.sr, self.n_fft)

    def stft(self, y: np.ndarray) -> np.ndarray:
        return stft(y, self.n_fft, self.hop_length)

    def mel_power(self, power: np.ndarray) -> np.ndarray:
        """Mel power spectrogram from an STFT power spectrogram ``|D|**2``."""
        return mel_power(power, self.sr, self.n_fft, self.n_mels, self.fmin, self.fmax)

    def logmel(self, y: np.ndarray, top_db: float | None = 80.0) -> np.ndarray:
        """Log-power mel spectrogram in dB (ref 1.0), shape ``(n_mels, n_frames)``, float32."""
        return power_to_db(self.mel_power(np.abs(self.stft(y)) ** 2), top_db=top_db)
