"""Corrupted audio files made on the spot: bit flips, truncations and header edits of five formats.

Used by ``test_fuzz.py`` and ``bench/reliability.py``. Every variant is derived from a
short synthesised song by a seeded random generator, so a failing variant can be made
again from its name alone.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import soundfile as sf

SR = 22050
FORMATS = ("wav", "flac", "mp3", "ogg", "m4a")


def song(seconds: float = 3.0, sr: int = 44100) -> np.ndarray:
    """A stereo phrase: two tones and a noise burst on every beat."""
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * sr)) / sr
    left = 0.3 * np.sin(2 * np.pi * 220 * t) + 0.1 * rng.standard_normal(len(t)) * (np.sin(2 * np.pi * 2 * t) > 0.8)
    right = 0.3 * np.sin(2 * np.pi * 330 * t)
    return np.c_[left, right].astype(np.float32)


def write_base(folder: Path, fmt: str, seconds: float = 3.0) -> Path | None:
    """The intact file of one format (``None`` for m4a without PyAV)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"base.{fmt}"
    x, sr = song(seconds), 44100
    if fmt == "m4a":
        if importlib.util.find_spec("av") is None:
            return None
        import av

        with av.open(str(path), "w") as out:
            stream = out.add_stream("aac", rate=sr, layout="stereo")
            for i in range(0, len(x), 1024):
                frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(x[i : i + 1024].T), format="fltp",
                                                   layout="stereo")
                frame.sample_rate = sr
                out.mux(stream.encode(frame))
            out.mux(stream.encode(None))
        return path
    kinds = {"wav": ("WAV", "PCM_16"), "flac": ("FLAC", "PCM_16"), "mp3": ("MP3", None), "ogg": ("OGG", "VORBIS")}
    sf.write(path, x, sr, format=kinds[fmt][0], subtype=kinds[fmt][1])
    return path


def variants(data: bytes, n: int, seed: int) -> list[tuple[str, bytes]]:
    """``n`` corrupted copies of ``data``: ``(kind, bytes)``, a third each of flips, cuts and header edits."""
    rng = np.random.default_rng(seed)
    out = []
    size = len(data)
    for i in range(n):
        kind = ("flip", "cut", "header")[i % 3]
        buf = bytearray(data)
        if kind == "flip":
            for pos in rng.integers(0, size, int(rng.choice([1, 4, 32, 256]))):
                buf[pos] ^= 1 << int(rng.integers(0, 8))
        elif kind == "cut":
            keep = int(size * rng.choice([0.001, 0.01, 0.1, 0.3, 0.5, 0.7, 0.9, 0.99])) + int(rng.integers(0, 64))
            buf = buf[: max(1, min(keep, size - 1))]
        else:
            # Overwrite a run of bytes in the first 256 (where headers live) with zeros, 0xFF or noise.
            start = int(rng.integers(0, min(256, size - 1)))
            length = int(rng.choice([1, 2, 4, 8, 16]))
            fill = rng.choice(["zero", "ones", "noise"])
            patch = (bytes(length) if fill == "zero" else b"\xff" * length if fill == "ones"
                     else rng.integers(0, 256, length, np.uint8).tobytes())
            buf[start : start + length] = patch[: max(0, size - start)]
        out.append((kind, bytes(buf)))
    return out


def make_corpus(folder: Path, per_format: int = 62, seconds: float = 3.0) -> list[Path]:
    """Write ``per_format`` variants of each available format into ``folder``; their paths."""
    paths = []
    for k, fmt in enumerate(FORMATS):
        base = write_base(folder / "base", fmt, seconds)
        if base is None:
            continue
        for i, (kind, data) in enumerate(variants(base.read_bytes(), per_format, seed=1000 + k)):
            path = folder / "corpus" / f"{fmt}-{i:03d}-{kind}.{fmt}"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            paths.append(path)
    return paths
