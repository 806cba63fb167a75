"""A short synthesised song for trying genrekit without any music at hand (``genrekit classify --demo``).

The first half is a drum-and-bass groove at 120 BPM (kick, snare and hi-hat made of
shaped noise and sines), the second half sustained chords with vibrato and no drums,
so the timeline has something to follow. It is generated on the fly: no audio ships
with genrekit.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def demo_signal(sr: int = 22050, seconds: float = 60.0, seed: int = 0) -> np.ndarray:
    """The demo song as a float32 mono signal at ``sr`` Hz."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sr)
    half = n // 2
    t = np.arange(n) / sr
    y = np.zeros(n)
    beat = int(0.5 * sr)  # 120 BPM

    def hit(length_s, decay_s, source):
        k = np.arange(int(length_s * sr))
        return source(k) * np.exp(-k / (decay_s * sr))

    kick = hit(0.25, 0.05, lambda k: np.sin(2 * np.pi * 55 * k / sr))
    snare = hit(0.2, 0.04, lambda k: rng.standard_normal(len(k)) * 0.6)
    hat = hit(0.05, 0.01, lambda k: rng.standard_normal(len(k)) * 0.3)
    for i, start in enumerate(range(0, half - len(kick), beat)):
        y[start:start + len(kick)] += kick if i % 2 == 0 else 0
        y[start:start + len(snare)] += snare if i % 2 == 1 else 0
        for off in (0, beat // 2):
            s = start + off
            y[s:s + len(hat)] += hat
    bass_notes = [55.0, 55.0, 65.4, 49.0]
    for i, start in enumerate(range(0, half, 4 * beat)):
        seg = slice(start, min(start + 4 * beat, half))
        y[seg] += 0.3 * np.sign(np.sin(2 * np.pi * bass_notes[i % 4] * t[seg]))
    chords = [(220.0, 277.2, 329.6), (196.0, 246.9, 293.7), (174.6, 220.0, 261.6), (164.8, 207.7, 246.9)]
    vibrato = 0.004 * np.sin(2 * np.pi * 5.5 * t)
    for i, start in enumerate(range(half, n, 8 * beat)):
        seg = slice(start, min(start + 8 * beat, n))
        for f in chords[i % 4]:
            for h, amp in ((1, 0.12), (2, 0.05), (3, 0.03)):
                y[seg] += amp * np.sin(2 * np.pi * f * h * t[seg] * (1 + vibrato[seg]))
    y /= np.max(np.abs(y)) * 1.1
    return y.astype(np.float32)


def write_demo(path: str | Path, sr: int = 22050) -> Path:
    """Write the demo song to ``path`` (format from its suffix) and return the path."""
    import soundfile as sf

    path = Path(path)
    sf.write(path, demo_signal(sr), sr)
    return path
