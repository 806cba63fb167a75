"""Mel-spectrogram images for the web page (colour map and PNG writer: :mod:`genrekit.report.images`).

No plotting library is needed: the log-mel spectrogram (:func:`genrekit.features.sets.feature_set`
``"logmel"``, the same front end the models use) is scaled to 0..255, written as an
8-bit indexed PNG (one byte per pixel, a 256-colour palette) with :mod:`zlib`, and the
axes are left to the page, which gets the tick positions in :class:`SpectrogramMeta`.

The colour map ("ember") is computed here, not copied: 256 colours along a path in
CIELAB whose lightness rises linearly from near black to near white while the hue turns
from violet through red and orange to yellow (the family of matplotlib's *magma*, whose
design goals it follows: perceptually ordered, readable in greyscale). Colours outside
the sRGB gamut have their chroma reduced until they fit, so lightness stays monotonic.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from genrekit.features.defaults import HOP_LENGTH, N_FFT, N_MELS
from genrekit.report.images import MAX_WIDTH, colormap, indexed_png, mel_ticks, shrink_time

__all__ = ["SpectrogramMeta", "mel_spectrogram_png", "spectrogram_png"]


# --- the spectrogram --------------------------------------------------------------------
@dataclass(frozen=True)
class SpectrogramMeta:
    """What the page needs to draw axes around the image.

    Attributes
    ----------
    width, height : int
        Image size in pixels (``height == n_mels``; time runs left to right, frequency
        bottom to top).
    duration : float
        Seconds spanned by the image's width.
    fmin, fmax : float
        Frequency range of the mel bands (Hz).
    n_mels : int
    db_min, db_max : float
        Decibel values of the darkest and lightest colours.
    freq_ticks : list of ``{"hz", "position"}``
        ``position`` is the height fraction from the bottom edge at which that frequency
        lies on the (Slaney) mel axis.
    """

    width: int
    height: int
    duration: float
    fmin: float
    fmax: float
    n_mels: int
    db_min: float
    db_max: float
    freq_ticks: list

    def to_dict(self) -> dict:
        return asdict(self)


def mel_spectrogram_png(y: np.ndarray, sr: int, *, n_mels: int = N_MELS, n_fft: int = N_FFT, hop_length: int = HOP_LENGTH,
                        fmin: float = 0.0, fmax: float | None = None, top_db: float = 80.0,
                        max_width: int = MAX_WIDTH) -> tuple[bytes, SpectrogramMeta]:
    """The log-mel spectrogram of ``y`` as a PNG image and its axes.

    Parameters
    ----------
    y : np.ndarray
        Mono signal at ``sr`` Hz (at least ``n_fft`` samples).
    sr, n_mels, n_fft, hop_length, fmin, fmax, top_db
        As for the ``logmel`` feature set (fmax ``None``: ``sr / 2``).
    max_width : int
        Longest image in pixels; longer spectrograms are averaged (in dB) over time.

    Returns
    -------
    png : bytes
    meta : SpectrogramMeta
    """
    from genrekit.features.sets import feature_set

    fs = feature_set("logmel", sample_rate=sr, n_fft=n_fft, hop_length=hop_length, n_mels=n_mels,
                     fmin=fmin, fmax=fmax, top_db=top_db)
    return spectrogram_png(fs.compute(y), len(y) / sr, sr, fmin=fmin, fmax=fmax, top_db=top_db,
                           max_width=max_width)


def spectrogram_png(S: np.ndarray, duration: float, sr: int, *, fmin: float = 0.0, fmax: float | None = None,
                    top_db: float = 80.0, max_width: int = MAX_WIDTH) -> tuple[bytes, SpectrogramMeta]:
    """:func:`mel_spectrogram_png` from a log-mel spectrogram ``S`` (dB, bands x frames) already made.

    The web server streams the spectrogram while it classifies
    (:class:`genrekit.features.blockwise.LogmelStream`) rather than keeping the audio.
    """
    n_mels = S.shape[0]
    S = shrink_time(S, max_width)
    hi = float(S.max())
    lo = hi - top_db if top_db else float(S.min())
    scaled = np.clip((S - lo) / max(hi - lo, 1e-9), 0.0, 1.0)
    pixels = np.round(scaled[::-1] * 255).astype(np.uint8)  # low frequencies at the bottom
    png = indexed_png(pixels, colormap())
    fmax_hz = float(sr / 2 if fmax is None else fmax)
    meta = SpectrogramMeta(
        width=int(pixels.shape[1]), height=int(pixels.shape[0]), duration=duration,
        fmin=float(fmin), fmax=fmax_hz, n_mels=n_mels, db_min=round(lo, 2), db_max=round(hi, 2),
        freq_ticks=mel_ticks(float(fmin), fmax_hz, n_mels),
    )
    return png, meta
