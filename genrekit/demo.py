"""A short synthesised song for trying genrekit without any music at hand (``genrekit classify --demo``).

Two halves of different genres, so that ``--timeline`` has a change to show:

1. **rock** (0-30 s): a distorted power-chord riff in E (two clipped sawtooth voices a
   fifth apart, eighth notes at 180 BPM) over sixteenth-note kicks, a backbeat snare
   and cymbal hiss;
2. **classical** (30-60 s): a quiet piano in C, arpeggios over a I-vi-IV-V
   progression (decaying tones with a few harmonics), no drums.

The default model hears the first as rock and the second as classical
(``tests/test_first_hour.py`` checks that the first and last windows differ, whatever
the default model is). It is generated on the fly: no audio ships with genrekit.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

#: The genre each half is written in, in order.
DEMO_GENRES = ("rock", "classical")


def _tone(f: float, n: int, sr: int, harmonics) -> np.ndarray:
    t = np.arange(n) / sr
    return sum(a * np.sin(2 * np.pi * f * h * t) for h, a in harmonics)


def rock_part(seconds: float, sr: int, rng: np.random.Generator, bpm: float = 180.0) -> np.ndarray:
    """The first half: distorted riff, drums and hiss, peak 0.9."""
    from scipy.signal import butter, lfilter

    n = int(seconds * sr)
    y = np.zeros(n)
    beat = int(60 / bpm * sr)
    riff = (82.4, 82.4, 98.0, 82.4, 110.0, 103.8, 82.4, 73.4)  # E2 G2 A2 G#2 D2: a minor-pentatonic riff
    saw = [(k, 1 / k) for k in range(1, 20)]
    for i, start in enumerate(range(0, n, beat // 2)):
        m = min(beat // 2, n - start)
        f = riff[(i // 2) % len(riff)]
        chord = _tone(f, m, sr, saw) + _tone(1.5 * f, m, sr, saw)  # root and fifth: a power chord
        y[start:start + m] += 0.5 * np.tanh(6 * chord)  # the distortion pedal
    k = np.arange(int(0.08 * sr))
    kick = np.sin(2 * np.pi * 60 * k / sr) * np.exp(-k / (0.02 * sr))
    s = np.arange(int(0.15 * sr))
    snare = rng.standard_normal(len(s)) * np.exp(-s / (0.04 * sr))
    for start in range(0, n - len(snare), beat // 4):
        y[start:start + len(kick)] += 0.8 * kick
    for start in range(beat, n - len(snare), 2 * beat):
        y[start:start + len(snare)] += 0.7 * snare
    b, a = butter(2, 5000 / (sr / 2), "high")
    y += 0.15 * lfilter(b, a, rng.standard_normal(n))
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
    first, second = rock_part(half, sr, rng), classical_part(seconds - half, sr)
    fade = int(0.05 * sr)  # no click at the change
    first[-fade:] *= np.linspace(1, 0, fade)
    return np.concatenate([first, second]).astype(np.float32)


def write_demo(path: str | Path, sr: int = 22050) -> Path:
    """Write the demo song to ``path`` (format from its suffix) and return the path."""
    import soundfile as sf

    path = Path(path)
    sf.write(path, demo_signal(sr), sr)
    return path
