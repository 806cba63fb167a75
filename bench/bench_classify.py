"""Speed of ``genrekit classify`` against the plain librosa calls, measured in the same run.

    python bench/bench_classify.py [--model BUNDLE] [--repeat 5] [--ref-repeat 3] [--jobs 2]

1. **One song.** A 4-minute MP3 (44.1 kHz stereo, like a real library's) is made from
   eight 30-s shared GTZAN clips of different genres (resampled with soxr, written with
   soundfile to a temporary folder). It is classified with a timeline by the model
   (default: the bundled one), in one process pinned to one core with BLAS/OpenMP
   threads at 1: the median of ``--repeat`` runs of decode + features + model. The
   reference does the same work with plain librosa calls: ``librosa.load(sr=22050)``,
   the Kaggle table's feature recipe on every window (``librosa_gtzan57`` of
   ``bench_features.py``) and the same model's ``predict_proba`` through onnxruntime.
   Targets: at most 1.5 s per 4-minute song, at least 5x faster than librosa.
   Also printed: how many timeline windows inside one clip name that clip's genre.
2. **A folder.** The 70 shared clips classified by ``genrekit classify --jobs N`` in a
   fresh process with a fresh results file (cold: start-up and model loading
   included): songs per second, and the model's accuracy on those clips (the bundled
   default model saw them in training, so that figure is optimistic).
"""

from __future__ import annotations

import os

# No thread variables here: genrekit is measured as a user runs it (issue 31); it holds its own
# workers at one BLAS thread (genrekit.engines.threads).

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SHARED = Path(os.environ.get("GENREKIT_SHARED_DATA", REPO / "../shared/data"))
#: The clips the 4-minute song is made of, in order (30 s each).
SONG_CLIPS = ("classical.00000", "metal.00000", "jazz.00000", "hiphop.00000",
              "country.00000", "reggae.00000", "blues.00000", "pop.00000")


def make_song(folder: Path, genres: Path) -> tuple[Path, list[tuple[float, float, str]]]:
    """The 4-minute MP3 and its parts ``[(start, end, genre), ...]`` in seconds."""
    import soundfile as sf
    import soxr

    from genrekit.audio import decode as audio

    parts, pieces, t = [], [], 0.0
    for name in SONG_CLIPS:
        genre = name.split(".")[0]
        y = audio.load(genres / genre / f"{name}.wav", sr=22050)[: 30 * 22050]
        pieces.append(y)
        parts.append((t, t + len(y) / 22050, genre))
        t += len(y) / 22050
    mono = soxr.resample(np.concatenate(pieces), 22050, 44100, quality="HQ")
    # Two channels differing in level only (a delay would comb-filter their average).
    stereo = np.stack([mono, 0.95 * mono], axis=1)
    path = folder / "four-minutes.mp3"
    # 256 kbit/s constant bit rate: what a library ripped or bought today holds
    sf.write(path, np.clip(stereo, -1, 1), 44100, format="MP3", subtype="MPEG_LAYER_III",
             bitrate_mode="CONSTANT", compression_level=0.2)
    return path, parts


def median_time(fn, repeat: int) -> tuple[float, float, object]:
    """Median wall and CPU seconds of ``repeat`` calls, and the last value.

    CPU time is printed too: on a busy machine wall time also counts waiting for the core.
    """
    walls, cpus, value = [], [], None
    for _ in range(repeat):
        start, cpu = time.perf_counter(), time.process_time()
        value = fn()
        walls.append(time.perf_counter() - start)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus), value


def librosa_path(librosa, clf, path: Path):
    """The same job with plain librosa calls: decode, the Kaggle recipe per window, the model."""
    from bench_features import librosa_gtzan57

    y, sr = librosa.load(path, sr=22050)
    bounds = clf.window_bounds(len(y))
    rows = np.stack([librosa_gtzan57(librosa, y[a:b], sr) for a, b in bounds])
    return bounds, clf.bundle.predict_proba(rows.astype(np.float32))


def timeline_agreement(timeline: list[dict], parts) -> tuple[int, int]:
    """Windows lying inside one clip, and how many of them have that clip's genre on top."""
    inside = hits = 0
    for w in timeline:
        for start, end, genre in parts:
            if w["start"] >= start - 0.05 and w["end"] <= end + 0.05:
                inside += 1
                hits += max(w["probabilities"], key=w["probabilities"].get) == genre
    return inside, hits


def one_song(args, librosa) -> None:
    from genrekit import load_model

    clf = load_model(args.model)
    genres = SHARED / "gtzan" / "genres"
    with tempfile.TemporaryDirectory() as tmp:
        path, parts = make_song(Path(tmp), genres)
        print(f"song: {len(SONG_CLIPS)} shared clips joined, {parts[-1][1]:.1f} s, MP3 44.1 kHz stereo 256 kbit/s, "
              f"{path.stat().st_size / 1e6:.1f} MB; model {clf.bundle.card.get('model', '?')} "
              f"({clf.name}), windows {clf.window:g} s, hop {clf.hop:g} s")

        clf.classify_file(path, timeline=True)  # warm-up: page cache, lazy imports
        ours, ours_cpu, pred = median_time(lambda: clf.classify_file(path, timeline=True), args.repeat)
        inside, hits = timeline_agreement(pred.timeline, parts)

        # librosa's warm-up (numba compiles beat tracking) on one clip, not the whole song
        librosa_gtzan57_warmup(librosa)
        theirs, theirs_cpu, (bounds, proba) = median_time(lambda: librosa_path(librosa, clf, path), args.ref_repeat)
        decode, features, model = stages(clf, path)

    ours_proba = np.array([[w["probabilities"][g] for g in clf.labels] for w in pred.timeline])
    print(f"windows: {len(pred.timeline)} (librosa path {len(bounds)}); top genre agrees on "
          f"{int((ours_proba.argmax(1) == proba.argmax(1)).sum())} of {len(bounds)} windows; "
          f"song label {pred.label}")
    print(f"timeline: {hits} of {inside} windows inside one clip name that clip's genre")
    print()
    print(f"{'4-min song, --timeline':<26}{'genrekit (s)':>14}{'librosa (s)':>14}{'ratio':>9}   target")
    ok = ours <= 1.5 and theirs / ours >= 5
    print(f"{'decode+features+model':<26}{ours:>14.3f}{theirs:>14.3f}{theirs / ours:>8.1f}x   "
          f"<= 1.5 s and >= 5x  {'ok' if ok else 'MISSED'}")
    print(f"{'  same, CPU time':<26}{ours_cpu:>14.3f}{theirs_cpu:>14.3f}{theirs_cpu / ours_cpu:>8.1f}x")
    print(f"(genrekit: median of {args.repeat}; librosa: median of {args.ref_repeat}; one core, one thread)")
    print(f"genrekit stages: decode+resample {decode:.3f} s, features {features:.3f} s, model {model:.4f} s")


def librosa_gtzan57_warmup(librosa) -> None:
    from bench_features import librosa_gtzan57

    y = np.random.default_rng(0).standard_normal(22050 * 5).astype(np.float32) * 0.1
    librosa_gtzan57(librosa, y, 22050)


def stages(clf, path: Path) -> tuple[float, float, float]:
    """Where genrekit's time goes for this song: decode, features, model (one run each, seconds)."""
    from genrekit.audio import decode as audio

    t0 = time.perf_counter()
    y = audio.load(path, sr=clf.sample_rate, min_samples=clf.min_samples)
    t1 = time.perf_counter()
    X = clf._inputs(y, clf.window_bounds(len(y)))
    t2 = time.perf_counter()
    clf.bundle.predict_proba(X)
    t3 = time.perf_counter()
    return t1 - t0, t2 - t1, t3 - t2


def folder(args) -> None:
    genres = SHARED / "gtzan" / "genres"
    n = len(list(genres.glob("*/*.wav")))
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "results.jsonl"
        cmd = [sys.executable, "-m", "genrekit", "classify", str(genres), "--jobs", str(args.jobs),
               "--out", str(out)]
        if args.model is not None:
            cmd += ["--model", str(args.model)]
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
        cpus = set(range(os.cpu_count() or 1))

        def unpin():  # the song benchmark pinned this process to one core; the pool needs them all
            if hasattr(os, "sched_setaffinity"):
                os.sched_setaffinity(0, cpus)

        start = time.perf_counter()
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, preexec_fn=unpin)
        wall = time.perf_counter() - start
        if proc.returncode != 0:
            print(proc.stderr, file=sys.stderr)
            raise SystemExit(f"genrekit classify failed with status {proc.returncode}")
        records = [json.loads(line) for line in out.read_text().splitlines()]
    right = sum(r["label"] == Path(r["path"]).parent.name for r in records)
    print()
    print(f"folder: {n} shared clips, genrekit classify --jobs {args.jobs}, cold process, fresh results file")
    print(f"  {wall:.1f} s wall, {n / wall:.2f} songs/s ({os.cpu_count()} CPUs)")
    seen = " (the bundled default model saw them in training: optimistic)" if args.model is None else ""
    print(f"  accuracy on these clips: {right}/{len(records)} = {right / len(records):.3f}{seen}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="gtzan57",
                        help="model: the 57-feature one by default, which the librosa reference can reproduce")
    parser.add_argument("--repeat", type=int, default=5, help="runs of genrekit per song (median; default 5)")
    parser.add_argument("--ref-repeat", type=int, default=3, help="runs of the librosa path (median; default 3)")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes for the folder (default 2)")
    parser.add_argument("--skip-folder", action="store_true", help="only the one-song benchmark")
    args = parser.parse_args(argv)
    if args.repeat < 5:
        parser.error("--repeat must be at least 5")
    if not (SHARED / "gtzan" / "genres").is_dir():
        print(f"shared data not found at {SHARED} (set GENREKIT_SHARED_DATA)", file=sys.stderr)
        return 2
    if args.model is None:
        from genrekit.models.registry import DEFAULT_MODEL

        if not (DEFAULT_MODEL / "bundle.json").exists():
            print(f"no default model at {DEFAULT_MODEL}; give one with --model BUNDLE", file=sys.stderr)
            return 2
    try:
        import librosa
    except ImportError:
        print("librosa is the reference: pip install -e '.[bench]'", file=sys.stderr)
        return 2
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core: onnxruntime's pool too
    sys.path.insert(0, str(HERE))  # bench_features, for the librosa recipe

    one_song(args, librosa)
    if not args.skip_folder:
        folder(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
