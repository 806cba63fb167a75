"""Speed of genrekit's features against the plain librosa calls, measured in the same run.

    python bench/bench_features.py [--clip PATH] [--repeat 7]

Both sides run on one thread (BLAS and FFT threads pinned to 1 before numpy loads) on
the same decoded real 30-s clip; each is warmed up once (librosa's numba JIT compiles
then), and the median of ``--repeat`` runs is reported with the ratio.

- ``gtzan57``: genrekit's 57-feature row against the librosa calls that made the
  Kaggle table: chroma_stft, rms, spectral_centroid, spectral_bandwidth,
  spectral_rolloff, zero_crossing_rate, effects.hpss, beat.beat_track and mfcc.
  Target: at least 5x.
- ``logmel``: against ``librosa.power_to_db(librosa.feature.melspectrogram(...))``.
  Target: at least 2x.
"""

from __future__ import annotations

import os

# No thread variables here: genrekit is measured as a user runs it (issue 31); it holds its own
# workers at one BLAS thread (genrekit.engines.threads).

import argparse  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from genrekit.audio import decode as audio
from genrekit.features.sets import feature_set
from genrekit.features import spectral
from genrekit.features.chroma import chroma_from_power  # noqa: E402
from genrekit.features.gtzan57 import gtzan57_features  # noqa: E402
from genrekit.features.hpss import hpss_masks  # noqa: E402
from genrekit.features.rhythm import onset_strength, tempo  # noqa: E402

SHARED = Path(os.environ.get("GENREKIT_SHARED_DATA", Path(__file__).resolve().parents[1] / "../shared/data"))


def librosa_gtzan57(librosa, y, sr):
    """The Kaggle table's recipe, call for call."""
    stats = []
    for values in (
        librosa.feature.chroma_stft(y=y, sr=sr),
        librosa.feature.rms(y=y),
        librosa.feature.spectral_centroid(y=y, sr=sr),
        librosa.feature.spectral_bandwidth(y=y, sr=sr),
        librosa.feature.spectral_rolloff(y=y, sr=sr),
        librosa.feature.zero_crossing_rate(y),
        *librosa.effects.hpss(y),
    ):
        stats += [values.mean(), values.var()]
    stats.append(float(np.atleast_1d(librosa.beat.beat_track(y=y, sr=sr)[0])[0]))
    for row in librosa.feature.mfcc(y=y, sr=sr, n_mfcc=20):
        stats += [row.mean(), row.var()]
    return np.asarray(stats)


def median_time(fn, repeat):
    fn()  # warm-up: caches, JIT
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def stage_times(y, sr, repeat):
    """Where genrekit's gtzan57 time goes (medians, seconds)."""
    D = spectral.stft(y, pad_mode="reflect")
    S = np.abs(D)
    P = S * S
    freqs = spectral.fft_frequencies(sr, 2048)
    logmel = spectral.power_to_db(spectral.mel_power(P, sr, 2048))
    stages = {
        "stft": lambda: spectral.stft(y, pad_mode="reflect"),
        "chroma (with tuning)": lambda: chroma_from_power(P, sr, 2048),
        "centroid+bandwidth+rolloff": lambda: (spectral.spectral_bandwidth(S, freqs, spectral.spectral_centroid(S, freqs)),
                                               spectral.spectral_rolloff(S, freqs)),
        "rms+zcr": lambda: (spectral.rms(y, pad_mode="reflect"), spectral.zero_crossing_rate(y)),
        "hpss (medians+masks)": lambda: hpss_masks(D),
        "istft x2": lambda: (spectral.istft(D, length=len(y)), spectral.istft(D, length=len(y))),
        "mel+dB+mfcc": lambda: spectral.mfcc_from_logmel(spectral.power_to_db(spectral.mel_power(P, sr, 2048))),
        "onset+tempo": lambda: tempo(onset_strength(logmel), sr),
    }
    return {name: median_time(fn, repeat) for name, fn in stages.items()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clip", type=Path, default=SHARED / "gtzan/genres/blues/blues.00000.wav")
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args(argv)
    if args.repeat < 5:
        parser.error("--repeat must be at least 5")
    try:
        import librosa
    except ImportError:
        print("librosa is the reference: pip install -e '.[bench]'", file=sys.stderr)
        return 2

    sr = 22050
    y = audio.load(args.clip, sr=sr)
    print(f"clip: {args.clip.name}, {len(y) / sr:.2f} s at {sr} Hz; one thread; median of {args.repeat} runs")

    logmel_set = feature_set("logmel")
    rows = [
        ("gtzan57", lambda: gtzan57_features(y, sr), lambda: librosa_gtzan57(librosa, y, sr), 5.0),
        ("logmel", lambda: logmel_set.compute(y),
         lambda: librosa.power_to_db(librosa.feature.melspectrogram(y=y, sr=sr)), 2.0),
    ]
    print(f"{'feature':<10}{'genrekit (s)':>14}{'librosa (s)':>14}{'ratio':>9}{'target':>9}")
    for name, ours, ref, target in rows:
        t_ours = median_time(ours, args.repeat)
        t_ref = median_time(ref, args.repeat)
        ratio = t_ref / t_ours
        verdict = "ok" if ratio >= target else "SHORT"
        print(f"{name:<10}{t_ours:>14.4f}{t_ref:>14.4f}{ratio:>8.1f}x{target:>7.0f}x  {verdict}")

    print("\ngenrekit gtzan57 stages (median s):")
    for name, seconds in sorted(stage_times(y, sr, args.repeat).items(), key=lambda kv: -kv[1]):
        print(f"  {name:<28}{seconds:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
