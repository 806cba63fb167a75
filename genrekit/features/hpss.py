"""Harmonic-percussive source separation by median filtering (Fitzgerald 2010).

Harmonic sounds are smooth along time, percussive ones along frequency: a median over
31 frames and one over 31 bins of the magnitude spectrogram estimate each, and soft
Wiener-style masks split the STFT between them (Driedger, Müller & Disch 2014 for the
masking). Same algorithm and defaults as ``librosa.effects.hpss``.

The two 2-D median filters dominate the cost of the GTZAN feature table in librosa
(``scipy.ndimage.median_filter`` with a 1×31 footprint runs the general N-d rank
filter). :func:`median_filter_1d` gives the identical result about ten times faster by
running scipy's dedicated 1-D filter over all rows laid end to end, each row padded
with its own reflection so no window ever reaches into the next row.
"""

from __future__ import annotations

import numpy as np
import scipy.ndimage

from genrekit.features.spectral import istft


def median_filter_1d(S: np.ndarray, size: int, axis: int) -> np.ndarray:
    """Running median of ``size`` samples along ``axis`` of a 2-D array.

    Equal to ``scipy.ndimage.median_filter(S, size=shape, mode="reflect")`` with a
    footprint of ``size`` along ``axis`` and 1 along the other axis.
    """
    rows = np.moveaxis(S, axis, -1)
    half = size // 2
    # numpy's "symmetric" padding is scipy's "reflect" (edge sample repeated).
    padded = np.pad(rows, ((0, 0), (half, size - 1 - half)), mode="symmetric")
    flat = scipy.ndimage.median_filter(np.ascontiguousarray(padded).ravel(), size=size)
    filtered = flat.reshape(padded.shape)[:, half : half + rows.shape[1]]
    return np.moveaxis(filtered, -1, axis)


def harmonic_mask(harm: np.ndarray, perc: np.ndarray, power: float = 2.0) -> np.ndarray:
    """Wiener-like mask ``H^p / (H^p + P^p)``; 0.5 where both vanish (Driedger et al. 2014).

    The percussive mask is its complement. Computed in place on a few float32 buffers:
    on long songs this step otherwise costs as much as the median filters.
    """
    num = np.power(harm, power, dtype=np.float32) if power != 2 else harm * harm
    den = np.power(perc, power, dtype=np.float32) if power != 2 else perc * perc
    den += num
    silent = den < np.finfo(np.float32).tiny
    den[silent] = 1.0
    np.divide(num, den, out=num)
    num[silent] = 0.5
    return num


def hpss_masks(D: np.ndarray, kernel_size: int = 31, power: float = 2.0) -> np.ndarray:
    """The harmonic soft mask of a complex STFT ``D`` (bins × frames), from median-filtered magnitudes."""
    S = np.abs(D)
    return harmonic_mask(median_filter_1d(S, kernel_size, axis=1), median_filter_1d(S, kernel_size, axis=0), power)


def hpss(D: np.ndarray, kernel_size: int = 31, power: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    """Split a complex STFT ``D`` (bins × frames) into harmonic and percussive STFTs."""
    mask = hpss_masks(D, kernel_size, power)
    harmonic = D * mask
    return harmonic, D - harmonic


def hpss_signals(D: np.ndarray, length: int, hop_length: int = 512, kernel_size: int = 31,
                 y: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Harmonic and percussive time signals (float32, ``length`` samples) from an STFT.

    The masks sum to one, so the percussive signal is the whole signal minus the harmonic
    one. Pass the signal ``y`` that ``D`` was computed from to save an inverse STFT
    (``istft(stft(y))`` equals ``y`` to within 2e-7).
    """
    harmonic = istft(D * hpss_masks(D, kernel_size), hop_length, length)
    whole = istft(D, hop_length, length) if y is None else np.asarray(y, dtype=np.float32)
    return harmonic, whole - harmonic
