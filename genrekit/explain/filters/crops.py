"""A window's input patch as a picture: dB values on the spectrogram colour map, the filter's peak marked.

The PNG is written by :func:`genrekit.report.images.indexed_png`, the writer the web page's
spectrograms and the saliency figures use.
"""

from __future__ import annotations

import numpy as np

__all__ = ["MARKER", "db_pixels", "crop_png"]


#: Marker colour (palette index 255) for the peak time in the crops: cyan, absent from the map.
MARKER = (0, 230, 255)


def db_pixels(S: np.ndarray, levels: int, top_db: float | None = 80.0) -> np.ndarray:
    """dB values scaled to palette indices ``0..levels-1``, low frequencies at the bottom (uint8).

    The range is ``max - top_db .. max`` of ``S`` (its own range when ``top_db`` is None).
    """
    hi = float(S.max())
    lo = hi - top_db if top_db else float(S.min())
    scaled = np.clip((S - lo) / max(hi - lo, 1e-9), 0.0, 1.0)
    return np.round(scaled[::-1] * (levels - 1)).astype(np.uint8)


def crop_png(patch: np.ndarray, peak_frame: float, cell: float, top_db: float | None = 80.0) -> bytes:
    """A log-mel patch as a PNG with the peak's time span marked at the top and bottom edges.

    Parameters
    ----------
    patch : np.ndarray [shape=(n_mels, n_frames)]
        dB values.
    peak_frame : float
        Centre of the peak, in frames.
    cell : float
        Frames one feature-map cell spans (the width of the mark).
    """
    from genrekit.report.images import colormap, indexed_png

    pixels = db_pixels(patch, 255, top_db)
    a = int(np.clip(np.floor(peak_frame - cell / 2), 0, pixels.shape[1] - 1))
    b = int(np.clip(np.ceil(peak_frame + cell / 2), a + 1, pixels.shape[1]))
    tick = max(2, pixels.shape[0] // 24)
    # ticks on the edges only: the spectrogram under the peak stays visible
    pixels[:tick, a:b] = 255
    pixels[-tick:, a:b] = 255
    palette = np.vstack([colormap(255), np.array([MARKER], dtype=np.uint8)])
    return indexed_png(pixels, palette)
