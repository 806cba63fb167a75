"""Synthetic songs and the small test bundle that tells their three "genres" apart.

The three kinds: sustained harmonic tones = "classical", regular clicks = "hiphop", loud
broadband noise = "metal". The bundle is a real scikit-learn logistic regression on the
57 GTZAN features of short clips of each kind, saved with
:func:`genrekit.models.bundle_save.save_bundle` with 3-s windows and a 1.5-s hop so that the
test songs can be a few seconds long (``conftest.py`` builds it once per session as the
``bundle_dir`` fixture).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

SR = 22050  # Hz
GENRES = ("classical", "hiphop", "metal")
#: Kinds no test model is trained on, for "none of these": plucked notes decaying fast, sine
#: sweeps, a low sine drone.
OTHER_KINDS = ("pluck", "chirp", "drone")


def synth(kind: str, seconds: float, seed: int = 0, sr: int = SR) -> np.ndarray:
    """``seconds`` of one of the three synthetic "genres" (or of :data:`OTHER_KINDS`) at ``sr`` Hz,
    different for every seed."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    if kind == "classical":  # a sustained harmonic tone, a little hiss
        f0 = 220 * 2 ** (rng.integers(0, 12) / 12)
        y = sum(0.2 / k * np.sin(2 * np.pi * f0 * k * t) for k in (1, 2, 3)) + 0.003 * rng.standard_normal(t.size)
    elif kind == "metal":  # loud broadband noise
        y = np.convolve(0.4 * rng.standard_normal(t.size), np.ones(3) / 3, "same")
    elif kind == "hiphop":  # quiet noise and a regular beat of clicks
        y = 0.02 * rng.standard_normal(t.size)
        step = int(sr * 60 / (90 + rng.integers(0, 40)))
        for start in range(0, t.size - 400, step):
            y[start:start + 400] += 0.9 * np.hanning(400)
    elif kind == "pluck":  # four decaying notes a second, two octaves of pitches
        y = np.zeros(t.size)
        step = sr // 4
        for start in range(0, t.size, step):
            n = min(step, t.size - start)
            f0 = 220 * 2 ** (rng.integers(0, 24) / 12)
            y[start:start + n] += 0.5 * np.sin(2 * np.pi * f0 * t[:n]) * np.exp(-12 * t[:n])
    elif kind == "chirp":  # a sine sweeping five octaves up from 100 Hz, again and again
        f = 100 * 2 ** (5 * ((t * (0.5 + rng.random())) % 1))
        y = 0.3 * np.sin(2 * np.pi * np.cumsum(f) / sr)
    elif kind == "drone":  # a loud low sine
        y = 0.6 * np.sin(2 * np.pi * (40 + rng.integers(0, 20)) * t)
    else:
        raise ValueError(kind)
    return np.clip(y, -1, 1).astype(np.float32)


def write_song(path: Path, kind: str = "classical", seconds: float = 5.0, seed: int = 0, **sf_kwargs) -> Path:
    """Write a synthetic song of ``seconds`` s with soundfile (format from the suffix unless given)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, synth(kind, seconds, seed), SR, **sf_kwargs)
    return path


def song_folder(root: Path, per_genre: int = 1, seconds: float = 5.0) -> list[Path]:
    """``root/<genre>/<genre>.<i>.wav`` for the three synthetic genres."""
    return [write_song(root / g / f"{g}.{i}.wav", g, seconds, seed=10 * n + i)
            for n, g in enumerate(GENRES) for i in range(per_genre)]


def build_bundle(folder: Path) -> Path:
    """Train and save the small test bundle in ``folder`` (once: reused if already there)."""
    if (folder / "bundle.json").exists():
        return folder
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from genrekit.audio.windows import window_bounds
    from genrekit.features.sets import feature_set
    from genrekit.features.gtzan57 import COLUMNS, gtzan57_windows
    from genrekit.models.bundle_save import save_bundle

    X, y = [], []
    for kind in GENRES:
        for seed in range(3):
            signal = synth(kind, 4.5, seed=1000 + seed)
            bounds = window_bounds(len(signal), SR, 3.0, 1.5, cover_end=True)
            X.append(gtzan57_windows(signal, SR, bounds))
            y += [kind] * len(bounds)
    X = np.vstack(X)
    pipe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, random_state=0)).fit(X, y)
    save_bundle(folder, pipe, labels=list(pipe.classes_), feature_set=feature_set("gtzan57", window=3.0),
                feature_names=list(COLUMNS), window=3.0, hop=1.5, metrics={},
                card={"model": "logreg", "data": "synthetic test clips", "split": "none"}, sample=X)
    return folder


def build_open_bundle(folder: Path, base: Path, *, out_of_fold: bool = True, per_genre: int = 8) -> Path:
    """The small test bundle ``base`` copied to ``folder`` with a real "none of these" decision fitted
    on ``per_genre`` training songs per genre (once: reused if already there); without ``out_of_fold``
    the decision lacks its out-of-fold scores, as bundles made before them do (its rate cannot move)."""
    import shutil

    if (folder / "bundle.json").exists():
        return folder
    from genrekit.audio.windows import window_bounds
    from genrekit.features.gtzan57 import gtzan57_windows
    from genrekit.models.bundle_save import add_calibration
    from genrekit.models.unknown import unknown_decision

    shutil.copytree(base, folder)
    rows, labels = [], []
    for kind in GENRES:
        for seed in range(per_genre):
            signal = synth(kind, 4.5, seed=2000 + seed)
            rows.append(gtzan57_windows(signal, SR, window_bounds(len(signal), SR, 3.0, 1.5, cover_end=True))
                        .mean(axis=0))
            labels.append(kind)
    decision = unknown_decision(np.array(rows), np.array(labels), list(GENRES))
    if not out_of_fold:
        del decision["oof_scores"]
    add_calibration(folder, {"unknown": decision})
    return folder
