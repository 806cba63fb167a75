"""Indexed PNG images without a plotting library: a generated colour map, a small PNG writer,
tick positions on a mel axis, and time-averaging of wide images.

Shared by the web page's spectrograms (:mod:`genrekit.web.spectrogram`) and the saliency and
filter figures of :mod:`genrekit.explain`. Images are written as 8-bit indexed PNGs (one byte
per pixel, a palette of at most 256 colours) with :mod:`zlib`.

The colour map ("ember") is computed here, not copied: 256 colours along a path in
CIELAB whose lightness rises linearly from near black to near white while the hue turns
from violet through red and orange to yellow (the family of matplotlib's *magma*, whose
design goals it follows: perceptually ordered, readable in greyscale). Colours outside
the sRGB gamut have their chroma reduced until they fit, so lightness stays monotonic.
"""

from __future__ import annotations

import struct
import zlib
from functools import lru_cache

import numpy as np

from genrekit.errors import ParameterError

#: Widest image made (pixels); longer spectrograms are averaged down in time by a whole
#: number of frames per pixel (a 30-s clip keeps its 1292 frames).
MAX_WIDTH = 1600
#: Frequencies offered as axis ticks (Hz); those inside the image's range are used.
TICK_HZ = (0, 128, 256, 512, 1000, 2000, 4000, 8000, 16000)

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


# --- colour map ---------------------------------------------------------------------
def _lab_to_srgb(L: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """CIELAB (D65 white) to gamma-encoded sRGB in [0, 1] (unclipped), shape ``(n, 3)``."""
    fy = (L + 16.0) / 116.0
    fx = fy + a / 500.0
    fz = fy - b / 200.0
    eps = 6.0 / 29.0

    def finv(t):
        return np.where(t > eps, t**3, 3 * eps**2 * (t - 4.0 / 29.0))

    white = (0.95047, 1.0, 1.08883)
    xyz = np.stack([white[0] * finv(fx), white[1] * finv(fy), white[2] * finv(fz)], axis=-1)
    m = np.array([[3.2406, -1.5372, -0.4986],
                  [-0.9689, 1.8758, 0.0415],
                  [0.0557, -0.2040, 1.0570]])
    linear = xyz @ m.T
    mag = np.abs(linear)
    encoded = np.where(mag <= 0.0031308, 12.92 * mag, 1.055 * np.power(mag, 1 / 2.4) - 0.055)
    return np.sign(linear) * encoded


@lru_cache(maxsize=1)
def colormap(n: int = 256) -> np.ndarray:
    """The "ember" colour map: ``(n, 3)`` uint8 sRGB, dark (low values) to light (high values)."""
    t = np.linspace(0.0, 1.0, n)
    L = 3.0 + 94.0 * t
    hue = np.deg2rad(285.0 + 170.0 * t)  # violet -> magenta -> red -> orange -> yellow
    chroma = 72.0 * np.sin(np.pi * np.clip(t, 0, 1) ** 0.85) + 18.0 * t
    # Largest chroma scale in [0, 1] that keeps each colour in gamut (bisection, per entry).
    lo, hi = np.zeros(n), np.ones(n)
    for _ in range(30):
        mid = (lo + hi) / 2
        rgb = _lab_to_srgb(L, mid * chroma * np.cos(hue), mid * chroma * np.sin(hue))
        ok = ((rgb >= 0) & (rgb <= 1)).all(axis=1)
        lo, hi = np.where(ok, mid, lo), np.where(ok, hi, mid)
    rgb = _lab_to_srgb(L, lo * chroma * np.cos(hue), lo * chroma * np.sin(hue))
    out = np.round(np.clip(rgb, 0, 1) * 255).astype(np.uint8)
    out.setflags(write=False)
    return out


# --- PNG --------------------------------------------------------------------------------
def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def indexed_png(pixels: np.ndarray, palette: np.ndarray, *, level: int = 6) -> bytes:
    """An 8-bit indexed-colour PNG (ISO/IEC 15948, colour type 3).

    Parameters
    ----------
    pixels : np.ndarray [shape=(height, width), dtype=uint8]
        Palette indices, top row first.
    palette : np.ndarray [shape=(n, 3), dtype=uint8], n <= 256
        sRGB colours.
    level : int
        zlib compression level.
    """
    pixels = np.asarray(pixels)
    if pixels.ndim != 2 or pixels.dtype != np.uint8 or 0 in pixels.shape:
        raise ParameterError(f"expected a non-empty (height, width) uint8 array, got {pixels.dtype} {pixels.shape}")
    palette = np.asarray(palette, dtype=np.uint8)
    if palette.ndim != 2 or palette.shape[1] != 3 or not 1 <= len(palette) <= 256:
        raise ParameterError(f"expected a palette of shape (n <= 256, 3), got {palette.shape}")
    height, width = pixels.shape
    # Each scanline starts with its filter type; 1 ("Sub") stores the difference from the
    # pixel to the left, which suits smooth images and costs one vectorised subtraction.
    rows = np.empty((height, width + 1), dtype=np.uint8)
    rows[:, 0] = 1
    rows[:, 1] = pixels[:, 0]
    rows[:, 2:] = pixels[:, 1:] - pixels[:, :-1]  # uint8 arithmetic wraps modulo 256, as PNG wants
    header = struct.pack(">IIBBBBB", width, height, 8, 3, 0, 0, 0)
    return b"".join([
        _PNG_SIGNATURE,
        _chunk(b"IHDR", header),
        _chunk(b"PLTE", palette.tobytes()),
        _chunk(b"IDAT", zlib.compress(rows.tobytes(), level)),
        _chunk(b"IEND", b""),
    ])


def png_size(data: bytes) -> tuple[int, int]:
    """``(width, height)`` from a PNG's header; raises :class:`~genrekit.errors.ParameterError` for anything else."""
    if len(data) < 24 or data[:8] != _PNG_SIGNATURE or data[12:16] != b"IHDR":
        raise ParameterError("not a PNG file")
    return struct.unpack(">II", data[16:24])


def mel_ticks(fmin: float, fmax: float, n_mels: int, candidates=TICK_HZ) -> list[dict]:
    """Positions of ``candidates`` (Hz) on an image of ``n_mels`` mel bands, bottom = 0, top = 1.

    Band ``i`` is centred on the mel value ``m0 + (i + 1) * step`` (the filter bank's
    centres) and drawn as row ``i`` from the bottom, so a frequency's position is
    ``((mel(f) - m0) / step - 0.5) / n_mels``.
    """
    from genrekit.features.spectral import hz_to_mel

    m0, m1 = float(hz_to_mel(fmin)), float(hz_to_mel(fmax))
    step = (m1 - m0) / (n_mels + 1)
    ticks = []
    for hz in candidates:
        if not fmin <= hz <= fmax:
            continue
        position = ((float(hz_to_mel(hz)) - m0) / step - 0.5) / n_mels
        if -0.005 <= position <= 1.005:
            ticks.append({"hz": float(hz), "position": round(min(max(position, 0.0), 1.0), 5)})
    return ticks


def shrink_time(S: np.ndarray, width: int) -> np.ndarray:
    """Average every ``k`` columns of ``S`` (the smallest ``k`` giving at most ``width`` columns)."""
    n = S.shape[1]
    k = -(-n // width)
    if k <= 1:
        return S
    edges = np.arange(0, n, k)
    counts = np.diff(np.append(edges, n))
    return np.add.reduceat(S, edges, axis=1) / counts
