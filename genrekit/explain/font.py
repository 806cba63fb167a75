"""A 5 × 7 pixel font for the labels of genrekit's PNG figures (no plotting library needed).

The glyphs are the classic 5 × 7 dot-matrix character set of HD44780-style LCD controllers
and small-display libraries (printable ASCII, 32–126): five column bytes per glyph, the
least significant bit the top row.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

#: Glyph width and height in pixels; a character advances one more column.
WIDTH, HEIGHT = 5, 7

_GLYPHS = (
    "000000000000005F00000007000700147F147F14242A7F2A12231308646236495522500005030000001C224100"
    "0041221C00082A1C2A0808083E080800503000000808080808006060000020100804023E5149453E00427F4000"
    "42615149462141454B311814127F1027454545393C4A49493001710905033649494936064949291E0036360000"
    "00563600000814224100141414141400412214080201510906324979413E7E1111117E7F494949363E41414122"
    "7F4141221C7F494949417F090901013E414151327F0808087F00417F41002040413F017F081422417F40404040"
    "7F0204027F7F0408107F3E4141413E7F090909063E4151215E7F09192946464949493101017F01013F4040403F"
    "1F2040201F7F2018207F63140814630304780403615149454300007F4141020408102041417F00000402010204"
    "4040404040000102040020545454787F484444383844444420384444487F3854545418087E090102081454543C"
    "7F0804047800447D40002040443D00007F10284400417F40007C041804787C0804047838444444387C14141408"
    "081414187C7C080404084854545420043F4440203C4040207C1C2040201C3C4030403C44281028440C5050503C"
    "4464544C44000836410000007F000000413608000804081008"
)


@lru_cache(maxsize=1)
def _bitmaps() -> np.ndarray:
    """``(95, HEIGHT, WIDTH)`` booleans for characters 32 (space) to 126 (tilde)."""
    data = np.frombuffer(bytes.fromhex("".join(_GLYPHS)), dtype=np.uint8).reshape(95, WIDTH)
    bits = (data[:, None, :] >> np.arange(HEIGHT)[None, :, None]) & 1  # (glyph, row, column)
    return bits.astype(bool)


def text_width(text: str, scale: int = 1) -> int:
    """Width in pixels of ``text`` drawn at ``scale`` (the last character's spacing excluded)."""
    return max(0, len(text) * (WIDTH + 1) * scale - scale)


def draw_text(canvas: np.ndarray, x: int, y: int, text: str, value: int, scale: int = 1) -> None:
    """Draw ``text`` with its top-left corner at ``(x, y)`` into a 2-D array, setting pixels to ``value``.

    Characters outside printable ASCII are drawn as ``?``; what falls outside the canvas is clipped.
    """
    glyphs = _bitmaps()
    height, width = canvas.shape
    for i, ch in enumerate(text):
        code = ord(ch)
        glyph = glyphs[(code if 32 <= code <= 126 else ord("?")) - 32]
        if scale > 1:
            glyph = np.repeat(np.repeat(glyph, scale, axis=0), scale, axis=1)
        left = x + i * (WIDTH + 1) * scale
        h, w = glyph.shape
        y0, y1, x0, x1 = max(y, 0), min(y + h, height), max(left, 0), min(left + w, width)
        if y1 <= y0 or x1 <= x0:
            continue
        region = canvas[y0:y1, x0:x1]
        region[glyph[y0 - y : y1 - y, x0 - left : x1 - left]] = value
