"""Onset strength and global tempo estimation.

The onset strength is the spectral flux of the log-mel spectrogram (positive
first differences, median over bands; Böck & Widmer 2013 without the maximum
filter). The tempo is the period that maximises the time-averaged autocorrelation
tempogram weighted by a log-normal prior around 120 BPM (Ellis 2007, "Beat tracking
by dynamic programming"), as returned by ``librosa.beat.beat_track``; the beat
positions themselves are not needed for the GTZAN table, so they are not tracked.
"""

from __future__ import annotations

import numpy as np
import scipy.fft

from genrekit.features.spectral import frame, hann_window


def onset_strength(logmel: np.ndarray, n_fft: int = 2048, hop_length: int = 512, lag: int = 1) -> np.ndarray:
    """Onset strength envelope, one value per frame of ``logmel`` (dB, bands × frames).

    The envelope is shifted right by ``lag + n_fft // (2 * hop_length)`` frames so that
    it lines up with centred STFT frames, as librosa does.
    """
    flux = np.maximum(0.0, logmel[:, lag:] - logmel[:, :-lag])
    env = np.median(flux, axis=0)
    shift = lag + n_fft // (2 * hop_length)
    return np.concatenate((np.zeros(shift, dtype=env.dtype), env))[: logmel.shape[1]]


def tempogram(onset_env: np.ndarray, win_length: int) -> np.ndarray:
    """Autocorrelation tempogram (lags × frames), each frame scaled to a peak of 1 (Grosche et al. 2010)."""
    n = len(onset_env)
    half = win_length // 2
    padded = np.pad(onset_env, (half, half), mode="linear_ramp", end_values=(0, 0))
    frames = frame(padded, win_length, 1)[:n] * hann_window(win_length)
    n_pad = scipy.fft.next_fast_len(2 * win_length - 1, real=True)
    spectrum = scipy.fft.rfft(frames, n=n_pad, axis=-1)
    acf = scipy.fft.irfft(spectrum.real**2 + spectrum.imag**2, n=n_pad, axis=-1)[:, :win_length]
    peak = np.max(np.abs(acf), axis=-1, keepdims=True)
    peak[peak < np.finfo(acf.dtype).tiny] = 1.0
    return (acf / peak).T


def tempo(onset_env: np.ndarray, sr: float, hop_length: int = 512, start_bpm: float = 120.0,
          std_bpm: float = 1.0, ac_size: float = 8.0, max_tempo: float = 320.0) -> float:
    """Global tempo in BPM of an onset envelope; 0.0 when the envelope is all zero.

    Parameters
    ----------
    ac_size : float
        Autocorrelation window in seconds.
    start_bpm, std_bpm : float
        Centre (BPM) and width (octaves) of the log-normal tempo prior.
    max_tempo : float
        Tempi at or above this (BPM) are not considered.
    """
    if not np.any(onset_env):
        return 0.0
    win_length = int(np.floor(ac_size * sr / hop_length))
    tg = tempogram(onset_env, win_length).mean(axis=1)
    with np.errstate(divide="ignore"):
        bpms = 60.0 * sr / (hop_length * np.arange(win_length, dtype=float))
        logprior = -0.5 * ((np.log2(bpms) - np.log2(start_bpm)) / std_bpm) ** 2
    logprior[: int(np.argmax(bpms < max_tempo))] = -np.inf
    return float(bpms[np.argmax(np.log1p(1e6 * tg) + logprior)])
