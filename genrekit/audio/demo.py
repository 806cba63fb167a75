"""A short synthesised song for trying genrekit without any music at hand (``genrekit classify --demo``).

Two halves of different genres, so that ``--timeline`` has a change to show:

1. **hip-hop** (0-30 s): a boom-bap drum pattern at 100 BPM (pitch-dropping kicks, noisy
   snares on the backbeat, eighth-note hi-hats) over a saturated bass line;
2. **classical** (30-60 s): a quiet piano in C, arpeggios over a I-vi-IV-V
   progression (decaying tones with a few harmonics), no drums.

The default model (the MSD-musicnn head) hears the first as hip-hop and the second as
classical, and its timeline shows the change (``tests/test_first_hour.py``). It is generated on the fly: no audio ships with genrekit.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

#: The genre each half is written in, in order.
DEMO_GENRES = ("hiphop", "classical")


def _tone(f: float, n: int, sr: int, harmonics) -> np.ndarray:
    t = np.arange(n) / sr
    return sum(a * np.sin(2 * np.pi * f * h * t) for h, a in harmonics)


def hiphop_part(seconds: float, sr: int, rng: np.random.Generator, bpm: float = 100.0) -> np.ndarray:
    """The first half: a boom-bap beat with a saturated bass line, peak 0.9.

    Kicks on beat 1 and the "and" of 3, snares on 2 and 4, eighth-note hi-hats, and a bass
    note on 1 and 3 following A1 A1 C2 G1, one a bar.
    """
    from scipy.signal import butter, lfilter

    n = int(seconds * sr)
    y = np.zeros(n)
    beat = int(60 / bpm * sr)
    k = np.arange(int(0.25 * sr))
    kick = np.sin(2 * np.pi * (50 + 80 * np.exp(-k / (0.01 * sr))) * k / sr) * np.exp(-k / (0.08 * sr))  # pitch drop
    s = np.arange(int(0.2 * sr))
    snare = rng.standard_normal(len(s)) * np.exp(-s / (0.05 * sr)) + 0.5 * np.sin(2 * np.pi * 180 * s / sr) * np.exp(
        -s / (0.03 * sr))
    h = np.arange(int(0.05 * sr))
    b, a = butter(2, 7000 / (sr / 2), "high")
    hat = lfilter(b, a, rng.standard_normal(len(h))) * np.exp(-h / (0.01 * sr))
    bass_line = (55.0, 55.0, 65.4, 49.0)
    t = np.arange(2 * beat) / sr
    for bar, start in enumerate(range(0, n - 4 * beat, 4 * beat)):
        for at in (0, int(2.5 * beat)):
            y[start + at:start + at + len(kick)] += kick
        for at in (beat, 3 * beat):
            y[start + at:start + at + len(snare)] += 0.6 * snare
        for i in range(8):
            at = start + i * beat // 2
            y[at:at + len(hat)] += 0.25 * hat
        note = 0.35 * np.tanh(3 * np.sin(2 * np.pi * bass_line[bar % 4] * t)) * np.exp(-t / 0.6)
        for at in (0, 2 * beat):
            y[start + at:start + at + len(note)] += note
    return 0.9 * y / np.max(np.abs(y))


def classical_part(seconds: float, sr: int, level: float = 0.2) -> np.ndarray:
    """The second half: piano arpeggios, quiet (peak ``level``)."""
    n = int(seconds * sr)
    y = np.zeros(n)
    progression = ((261.6, 329.6, 392.0), (220.0, 261.6, 329.6), (174.6, 220.0, 261.6), (196.0, 246.9, 293.7))
    note, ring = int(0.2 * sr), int(2.5 * sr)
    harmonics = [(1, 1.0), (2, 0.4), (3, 0.2), (4, 0.1), (5, 0.05)]
    decay = np.exp(-np.arange(ring) / (1.0 * sr))
    for i, start in enumerate(range(0, n, note)):
        chord = progression[(i // 8) % 4]
        m = min(ring, n - start)
        bass = (chord[0] / 2, chord[2] / 2, chord[1] / 2, chord[2] / 2)[i % 4]  # an Alberti bass
        y[start:start + m] += 0.5 * _tone(bass, m, sr, harmonics) * decay[:m]
        if i % 2 == 0:
            tune = (chord[2] * 2, chord[1] * 2, chord[0] * 2, chord[1] * 2)[(i // 2) % 4]
            y[start:start + m] += 0.6 * _tone(tune, m, sr, harmonics) * decay[:m]
    return level * y / np.max(np.abs(y))


def demo_signal(sr: int = 22050, seconds: float = 60.0, seed: int = 0) -> np.ndarray:
    """The demo song as a float32 mono signal at ``sr`` Hz: :data:`DEMO_GENRES`, half each."""
    rng = np.random.default_rng(seed)
    half = seconds / 2
    first, second = hiphop_part(half, sr, rng), classical_part(seconds - half, sr)
    fade = int(0.05 * sr)  # no click at the change
    first[-fade:] *= np.linspace(1, 0, fade)
    return np.concatenate([first, second]).astype(np.float32)


def write_demo(path: str | Path, sr: int = 22050) -> Path:
    """Write the demo song to ``path`` (format from its suffix) and return the path."""
    import soundfile as sf

    path = Path(path)
    sf.write(path, demo_signal(sr), sr)
    return path
