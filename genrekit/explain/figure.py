"""The saliency figure: the song's spectrogram over its occlusion saliency, with axes, colour bars
and a title, as one indexed PNG (no plotting library: :mod:`genrekit.report.images` writes the
PNG, :mod:`genrekit.explain.font` draws the labels).

Layout, top to bottom: a title (the song; the model and its kind; the genre and its
probability), the spectrogram panel with its caption, the saliency panel with its caption, the
time axis in seconds. Both panels share the time axis and a frequency axis in Hz with ticks at
their places on the mel scale; each has a colour bar on the right with its scale (the
spectrogram's in its own unit, the saliency's in probability drop, symmetric around 0: red
where silencing a cell lowers the genre's probability, blue where it raises it, white where it
changes nothing).
"""

from __future__ import annotations

import numpy as np

from genrekit.explain.font import HEIGHT as GLYPH_HEIGHT
from genrekit.explain.font import WIDTH as GLYPH_WIDTH
from genrekit.explain.font import draw_text, text_width

#: Text scale (pixels per font pixel), line height, and the figure's margins in pixels.
SCALE = 2
LINE = (GLYPH_HEIGHT + 2) * SCALE
#: A panel's caption line, with room above the panel's top tick label.
CAPTION = LINE + 6
LEFT, RIGHT, PAD = 64, 120, 8
#: Height of each panel in pixels (the bands are stretched or squeezed to it).
PANEL = 160
#: Narrowest plot area: shorter songs are widened by repeating columns.
MIN_PLOT = 480
TOP = PAD + 2 * LINE + PAD            # two title lines
BOTTOM = PAD + LINE + LINE + PAD      # tick labels, axis title
COLORBAR = 14

# palette: 0..127 the spectrogram's colour map, 128..248 the diverging saliency map, then ink
SPEC_LEVELS, SAL_FIRST, SAL_LEVELS = 128, 128, 121
WHITE, BLACK, GREY = SAL_FIRST + SAL_LEVELS, SAL_FIRST + SAL_LEVELS + 1, SAL_FIRST + SAL_LEVELS + 2


def figure_size(n_frames: int) -> tuple[int, int]:
    """``(width, height)`` in pixels of the figure of a plane of ``n_frames`` frames."""
    return LEFT + plot_width(n_frames) + RIGHT, TOP + 2 * (CAPTION + PANEL) + BOTTOM


def plot_width(n_frames: int) -> int:
    """Pixels of the plot area for ``n_frames`` frames (see :func:`_columns`)."""
    from genrekit.report.images import MAX_WIDTH

    k = -(-n_frames // MAX_WIDTH)  # frames averaged per column
    width = -(-n_frames // k)
    return width * max(1, -(-MIN_PLOT // width))


def diverging(n: int) -> np.ndarray:
    """Blue → white → red, ``(n, 3)`` uint8 (n odd: the middle entry is white)."""
    t = np.linspace(-1.0, 1.0, n)[:, None]
    blue, red, white = np.array([33, 102, 172.0]), np.array([178, 24, 43.0]), np.array([255, 255, 255.0])
    rgb = np.where(t < 0, white + (blue - white) * -t, white + (red - white) * t)
    return np.round(rgb).astype(np.uint8)


def _palette() -> np.ndarray:
    from genrekit.report.images import colormap

    ink = np.array([[255, 255, 255], [0, 0, 0], [150, 150, 150]], dtype=np.uint8)
    return np.vstack([colormap(SPEC_LEVELS), diverging(SAL_LEVELS), ink])


def _columns(S: np.ndarray, width: int) -> np.ndarray:
    """``S`` (bands × frames) averaged down, or repeated up, to ``width`` columns."""
    from genrekit.report.images import MAX_WIDTH, shrink_time

    S = shrink_time(S, MAX_WIDTH)
    return np.repeat(S, width // S.shape[1], axis=1)


def _rows(S: np.ndarray) -> np.ndarray:
    """``S`` resampled to :data:`PANEL` rows (nearest band), low bands at the bottom."""
    idx = np.minimum((np.arange(PANEL) * S.shape[0]) // PANEL, S.shape[0] - 1)
    return S[idx][::-1]


def _number(v: float) -> str:
    return f"{v:.3g}" if abs(v) >= 1e-3 or v == 0 else f"{v:.1e}"


def _hz(v: float) -> str:
    return f"{v / 1000:g}k" if v >= 1000 else f"{v:g}"


def _time_step(duration: float, width: int) -> float:
    for step in (0.1, 0.25, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600):
        if step / max(duration, 1e-9) * width >= 70:
            return step
    return 1200.0


def _fit(text: str, width: int) -> str:
    """``text`` shortened with ``...`` to fit ``width`` pixels at :data:`SCALE`."""
    room = max(4, (width + SCALE) // ((GLYPH_WIDTH + 1) * SCALE))
    return text if len(text) <= room else text[: room - 3] + "..."


def saliency_png(s, *, title: str | None = None, top_db: float | None = 80.0) -> bytes:
    """The figure of a :class:`genrekit.explain.saliency.Saliency` as PNG bytes.

    Parameters
    ----------
    s : Saliency
    title : str, optional
        The first title line (default: ``"occlusion saliency"``); callers pass the song's name.
    top_db : float or None
        dB range of the spectrogram's colours below its peak (``None``: its whole range);
        used for dB planes only.
    """
    from genrekit.features.spectral import hz_to_mel
    from genrekit.report.images import TICK_HZ, indexed_png

    plane = s.plane
    width, height = figure_size(plane.n_frames)
    plot = width - LEFT - RIGHT
    canvas = np.full((height, width), WHITE, dtype=np.uint8)

    # title
    p = s.probabilities[s.label]
    draw_text(canvas, PAD, PAD, _fit(title or "occlusion saliency", width - 2 * PAD), BLACK, SCALE)
    draw_text(canvas, PAD, PAD + LINE, _fit(f"model {s.model} ({s.kind}); genre {s.label}, p = {p:.2f}",
                                            width - 2 * PAD), BLACK, SCALE)

    # the two panels
    image = _columns(plane.image.astype(np.float64), plot)
    hi = float(image.max())
    lo = hi - top_db if (top_db and plane.unit == "dB") else float(image.min())
    spec = np.clip((image - lo) / max(hi - lo, 1e-9), 0, 1)
    sal = _columns(s.per_frame(), plot)
    vmax = float(np.abs(s.grid).max()) or 1.0
    panels = [
        (f"spectrogram, {plane.unit}", np.round(_rows(spec) * (SPEC_LEVELS - 1)).astype(np.uint8),
         (lo, hi), 0, SPEC_LEVELS),
        (f"saliency: drop in p({s.label}) when a cell is silenced",
         (SAL_FIRST + np.round((_rows(sal) / vmax + 1) / 2 * (SAL_LEVELS - 1))).astype(np.uint8),
         (-vmax, vmax), SAL_FIRST, SAL_LEVELS),
    ]
    mel0, mel1 = float(hz_to_mel(plane.fmin)), float(hz_to_mel(plane.fmax))
    step = (mel1 - mel0) / (plane.n_bands + 1)
    for k, (caption, pixels, (v0, v1), first, levels) in enumerate(panels):
        top = TOP + k * (CAPTION + PANEL) + CAPTION
        draw_text(canvas, LEFT, top - CAPTION, _fit(caption, plot + RIGHT - PAD), BLACK, SCALE)
        draw_text(canvas, PAD, top - CAPTION, "Hz", BLACK, SCALE)
        canvas[top : top + PANEL, LEFT : LEFT + plot] = pixels
        _frame(canvas, top, LEFT, PANEL, plot)
        # frequency ticks where the mel scale puts them, labelled in Hz; none closer than a line
        last = None
        for hz in TICK_HZ:
            if not plane.fmin <= hz <= plane.fmax:
                continue
            frac = ((float(hz_to_mel(hz)) - mel0) / step - 0.5) / plane.n_bands
            y = top + PANEL - 1 - int(round(np.clip(frac, 0, 1) * (PANEL - 1)))
            if last is not None and last - y < LINE:
                continue
            last = y
            canvas[y, LEFT - 5 : LEFT] = BLACK
            label = _hz(hz)
            draw_text(canvas, LEFT - 8 - text_width(label, SCALE), max(y - GLYPH_HEIGHT * SCALE // 2, top - 2),
                      label, BLACK, SCALE)
        # colour bar with its scale
        x = LEFT + plot + PAD
        bar = first + np.round(np.linspace(levels - 1, 0, PANEL)).astype(np.uint8)
        canvas[top : top + PANEL, x : x + COLORBAR] = bar[:, None]
        _frame(canvas, top, x, PANEL, COLORBAR)
        ticks = [(v1, 0), (v0, PANEL - 1)] + ([(0.0, (PANEL - 1) // 2)] if v0 < 0 < v1 else [])
        for value, dy in ticks:
            canvas[top + dy, x + COLORBAR : x + COLORBAR + 4] = BLACK
            text = ("+" if value > 0 and v0 < 0 else "") + _number(value)
            ty = min(max(top + dy - GLYPH_HEIGHT * SCALE // 2, top - 2), top + PANEL - GLYPH_HEIGHT * SCALE)
            draw_text(canvas, x + COLORBAR + 6, ty, text, BLACK, SCALE)

    # time axis, under the second panel
    base = TOP + 2 * (CAPTION + PANEL)
    duration = s.duration
    tick = _time_step(duration, plot)
    for t in np.arange(0.0, duration + 1e-9, tick):
        x = LEFT + int(round(t / duration * (plot - 1)))
        canvas[base : base + 5, x] = BLACK
        label = f"{t:g}"
        draw_text(canvas, min(x - text_width(label, SCALE) // 2, LEFT + plot - text_width(label, SCALE)),
                  base + PAD, label, BLACK, SCALE)
    axis = "time (s)"
    draw_text(canvas, LEFT + plot - text_width(axis, SCALE), base + PAD + LINE, axis, BLACK, SCALE)
    return indexed_png(canvas, _palette())


def _frame(canvas: np.ndarray, top: int, left: int, h: int, w: int) -> None:
    """A one-pixel black outline just outside the rectangle."""
    canvas[top - 1, left - 1 : left + w + 1] = BLACK
    canvas[top + h, left - 1 : left + w + 1] = BLACK
    canvas[top - 1 : top + h + 1, left - 1] = BLACK
    canvas[top - 1 : top + h + 1, left + w] = BLACK
