"""The 57 features of the Kaggle GTZAN tables (``features_30_sec.csv`` / ``features_3_sec.csv``).

Per analysis window: mean and variance over frames of the chromagram, RMS energy,
spectral centroid, bandwidth and roll-off, zero-crossing rate, the harmonic and
percussive signals of HPSS (named ``harmony`` and ``perceptr`` in the table), the global
tempo, and 20 MFCCs. The table was made with librosa's defaults (22050 Hz, n_fft 2048,
hop 512, 128 mel bands); genrekit reproduces each value from a single STFT, so all
spectral descriptors share one transform. Column names and order are the table's.

References: G. Tzanetakis & P. Cook, "Musical genre classification of audio signals",
IEEE TSAP 2002; the Kaggle "GTZAN Dataset - Music Genre Classification" tables
(A. Olteanu, 2020).
"""

from __future__ import annotations

import numpy as np

from ..audio import window_bounds
from . import spectral
from .chroma import chroma_from_power
from .hpss import hpss
from .rhythm import onset_strength, tempo

_DESCRIPTORS = (
    "chroma_stft", "rms", "spectral_centroid", "spectral_bandwidth", "rolloff",
    "zero_crossing_rate", "harmony", "perceptr",
)

#: The 57 feature columns, in the Kaggle table's order.
COLUMNS: tuple[str, ...] = (
    *(f"{name}_{stat}" for name in _DESCRIPTORS for stat in ("mean", "var")),
    "tempo",
    *(f"mfcc{i}_{stat}" for i in range(1, 21) for stat in ("mean", "var")),
)
assert len(COLUMNS) == 57

N_FFT = 2048
HOP_LENGTH = 512
N_MELS = 128
N_MFCC = 20
#: The table was computed with librosa < 0.10, whose centred frames were padded by
#: reflection; with zero padding, the estimated tuning (and so the chroma) of some
#: clips changes (rock.00004: chroma_stft_var moves 0.1 standard deviation).
PAD_MODE = "reflect"


def gtzan57_features(y: np.ndarray, sr: int = 22050) -> np.ndarray:
    """The 57 features of one window of a mono signal, float64 array in :data:`COLUMNS` order.

    Parameters
    ----------
    y : np.ndarray
        Mono float32 signal, at least ``N_FFT`` samples long.
    sr : int
        Its sample rate in Hz (the Kaggle table used 22050).
    """
    y = np.asarray(y, dtype=np.float32)
    D = spectral.stft(y, N_FFT, HOP_LENGTH, PAD_MODE)
    magnitude = np.abs(D)
    power = magnitude * magnitude
    freqs = spectral.fft_frequencies(sr, N_FFT)

    chroma = chroma_from_power(power, sr, N_FFT)
    centroid = spectral.spectral_centroid(magnitude, freqs)
    bandwidth = spectral.spectral_bandwidth(magnitude, freqs, centroid)
    rolloff = spectral.spectral_rolloff(magnitude, freqs)
    rms = spectral.rms(y, N_FFT, HOP_LENGTH, PAD_MODE)
    zcr = spectral.zero_crossing_rate(y, N_FFT, HOP_LENGTH)

    # Harmonic part by inverse STFT; the masks sum to one, so the percussive part is the rest.
    D_harm, _ = hpss(D)
    harmonic = spectral.istft(D_harm, HOP_LENGTH, len(y))
    percussive = spectral.istft(D, HOP_LENGTH, len(y)) - harmonic

    logmel = spectral.power_to_db(spectral.mel_power(power, sr, N_FFT, N_MELS))
    bpm = tempo(onset_strength(logmel, N_FFT, HOP_LENGTH), sr, HOP_LENGTH)
    mfcc = spectral.mfcc_from_logmel(logmel, N_MFCC)

    values = []
    for series in (chroma, rms, centroid, bandwidth, rolloff, zcr, harmonic, percussive):
        values += [np.mean(series), np.var(series)]
    values.append(bpm)
    for row in mfcc:
        values += [np.mean(row), np.var(row)]
    return np.asarray(values, dtype=np.float64)


def gtzan57_table(y: np.ndarray, sr: int = 22050, window: float | None = 30.0,
                  hop: float | None = None) -> np.ndarray:
    """One row of :func:`gtzan57_features` per analysis window, shape ``(n_windows, 57)``.

    Windows follow :func:`genrekit.audio.window_bounds` (whole windows only; a signal
    shorter than one window is one row over the whole signal).
    """
    bounds = window_bounds(len(y), sr, window, hop)
    return np.stack([gtzan57_features(y[start:stop], sr) for start, stop in bounds])
