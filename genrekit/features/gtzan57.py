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

from genrekit.audio.windows import window_bounds
from genrekit.engines.threads import on_one_blas_thread
from genrekit.features import spectral
from genrekit.features.chroma import chroma_from_power, spectral_peaks, tuning_from_peaks
from genrekit.features.hpss import hpss_signals
from genrekit.features.rhythm import onset_strength, tempo

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
TOP_DB = 80.0


@on_one_blas_thread  # the same numbers whichever way it is called (genrekit.engines.threads)
def gtzan57_features(y: np.ndarray, sr: int = 22050) -> np.ndarray:
    """The 57 features of one whole signal, float64 array in :data:`COLUMNS` order.

    Parameters
    ----------
    y : np.ndarray
        Mono float32 signal, at least ``N_FFT`` samples long.
    sr : int
        Its sample rate in Hz (the Kaggle table used 22050).
    """
    return gtzan57_windows(y, sr, [(0, len(y))])[0]


@on_one_blas_thread
def gtzan57_table(y: np.ndarray, sr: int = 22050, window: float | None = 30.0,
                  hop: float | None = None) -> np.ndarray:
    """One row per analysis window, each computed on its window alone, shape ``(n_windows, 57)``.

    This is how the Kaggle 3-sec table was made (each 3-s segment analysed as a clip of
    its own). Windows follow :func:`genrekit.audio.windows.window_bounds` (whole windows only;
    a signal shorter than one window is one row over the whole signal).
    """
    bounds = window_bounds(len(y), sr, window, hop)
    return np.stack([gtzan57_features(y[start:stop], sr) for start, stop in bounds])


@on_one_blas_thread
def gtzan57_windows(y: np.ndarray, sr: int, bounds: list[tuple[int, int]]) -> np.ndarray:
    """Rows for many (possibly overlapping) windows of one signal, analysing the signal once.

    Frame-level quantities (the STFT, spectral shape, RMS, ZCR, spectral peaks, HPSS
    and the mel spectrogram) are computed once over the whole signal; each window then
    takes the frames whose centres lie in it. Per-window steps stay per window: the
    tuning estimate behind the chroma, the dB floor ``top_db`` below the window's peak,
    the onset envelope and tempo, and all means and variances. A window covering the
    whole signal gives exactly :func:`gtzan57_features`. An inner window differs from
    analysing its samples alone because its edge frames see real neighbouring audio
    instead of reflected padding and its frames sit on the signal's hop grid (up to
    half a hop away); on real music that moves values by a few hundredths of a
    standard deviation (tests check < 0.05). Timelines use this, at about the cost of
    one analysis of the signal however much the windows overlap.

    Parameters
    ----------
    y : np.ndarray
        Mono signal.
    sr : int
        Sample rate in Hz.
    bounds : list of (start, stop)
        Sample ranges of the windows, e.g. from :func:`genrekit.audio.windows.window_bounds`.

    Returns
    -------
    np.ndarray, shape (len(bounds), 57), float64
    """
    y = np.asarray(y, dtype=np.float32)
    D = spectral.stft(y, N_FFT, HOP_LENGTH, PAD_MODE)
    magnitude = np.abs(D)
    power = magnitude * magnitude
    freqs = spectral.fft_frequencies(sr, N_FFT)

    centroid, bandwidth = spectral.spectral_centroid_bandwidth(magnitude, freqs)
    per_frame = {
        "spectral_centroid": centroid,
        "spectral_bandwidth": bandwidth,
        "rolloff": spectral.spectral_rolloff(magnitude, freqs),
        "rms": spectral.rms(y, N_FFT, HOP_LENGTH, PAD_MODE),
        "zero_crossing_rate": spectral.zero_crossing_rate(y, N_FFT, HOP_LENGTH),
    }
    pitches, peak_mags, peak_frames = spectral_peaks(power, sr, N_FFT)

    harmonic, percussive = hpss_signals(D, len(y), HOP_LENGTH, y=y)

    mel_db = spectral.power_to_db(spectral.mel_power(power, sr, N_FFT, N_MELS), top_db=None)

    rows = np.empty((len(bounds), len(COLUMNS)))
    for i, (start, stop) in enumerate(bounds):
        # The frames a separate analysis of y[start:stop] would have, on the whole signal's grid.
        first = int(round(start / HOP_LENGTH))
        frames = slice(first, min(first + spectral.n_frames(stop - start, HOP_LENGTH), power.shape[1]))
        in_window = (peak_frames >= frames.start) & (peak_frames < frames.stop)
        tuning = tuning_from_peaks(pitches[in_window], peak_mags[in_window])
        chroma = chroma_from_power(power[:, frames], sr, N_FFT, tuning=tuning)
        window_db = mel_db[:, frames]
        logmel = np.maximum(window_db, window_db.max() - TOP_DB)
        bpm = tempo(onset_strength(logmel, N_FFT, HOP_LENGTH), sr, HOP_LENGTH)
        mfcc = spectral.mfcc_from_logmel(logmel, N_MFCC)

        values = [chroma]
        values += [per_frame[name][frames] for name in ("rms", "spectral_centroid", "spectral_bandwidth",
                                                          "rolloff", "zero_crossing_rate")]
        values += [harmonic[start:stop], percussive[start:stop]]
        row = [stat for series in values for stat in (np.mean(series), np.var(series))]
        row.append(bpm)
        row += [stat for coefficient in mfcc for stat in (np.mean(coefficient), np.var(coefficient))]
        rows[i] = row
    return rows
