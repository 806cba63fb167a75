"""Speed of the default model against plain recipes, measured in one run: CPU seconds and songs an hour.

    python bench/bench_speed.py [--only abcd] [--clips 20] [--repeat 3] [--songs 4]

(a) **30-s clips, whole process, one core.** Two child processes pinned to one core
    (``os.sched_setaffinity``), each importing what it needs and labelling ``--clips`` shared
    GTZAN clips: genrekit (``load_model().classify_file``: decode, front end, the bundle's patch
    plan, head, tags) against the plain recipe of musicnn on onnxruntime (``librosa.load`` at
    16 kHz, musicnn's mel (``librosa.feature.melspectrogram``, n_fft 512, hop 256, 96 bands,
    ``log10(10000 x + 1)``), the shipped ONNX on a patch every 61 frames, one thread). The
    children's CPU seconds (``RUSAGE_CHILDREN``), median of ``--repeat`` runs. Target <= 0.6x.
(b) **A 4-minute MP3 with the dense timeline** (``classify_file(timeline=True)``, every second
    in a patch) against librosa's mere ``load`` at 16 kHz + ``melspectrogram`` of it, in this
    process pinned to one core, CPU seconds, median of ``--repeat``. Target <= 1.0x.
(c) **Library throughput**: ``genrekit classify FOLDER --out results.jsonl`` on ``--songs``
    distinct 4-minute MP3s (label + tags, and with ``--timeline``), ``--jobs`` 1 and 2, cold
    (new results store) and warm (the same store again: every song skipped). Songs an hour
    by wall time (on a machine shared with others: busy cores slow it) and by CPU seconds a
    song (what two free cores would do: 7200 / CPU s). Target >= 6,000 an hour on 2 cores.
(d) **The server**: ``bench_web.py --clients 8`` (8 concurrent uploads of a 30-s clip; its
    own in-process reference in the same run): p50/p95. Target p95 < 1 s.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(HERE))

from bench_classify import SHARED, make_song  # noqa: E402

GENREKIT_CHILD = """
import os, sys
os.sched_setaffinity(0, [CORE])
from genrekit.predict import load_model
model = load_model()
for path in sys.argv[1:]:
    model.classify_file(path)
"""

PLAIN_CHILD = """
import os, sys
os.sched_setaffinity(0, [CORE])
import numpy as np, librosa, onnxruntime as ort
from genrekit.backbones.msd_musicnn import FOLDER, ONNX_FILE
options = ort.SessionOptions()
options.intra_op_num_threads = 1
session = ort.InferenceSession(str(FOLDER / ONNX_FILE), options, providers=["CPUExecutionProvider"])
for path in sys.argv[1:]:
    y, sr = librosa.load(path, sr=16000)
    mel = librosa.feature.melspectrogram(y=y, sr=16000, hop_length=256, n_fft=512, n_mels=96).T
    mel = np.log10(10000 * mel + 1).astype(np.float32)
    patches = np.stack([mel[i:i + 187] for i in range(0, len(mel) - 187 + 1, 61)])
    tags = session.run(["tags"], {"patches": patches})[0].mean(axis=0)
"""


def child_cpu(code: str, files: list[Path]) -> float:
    """CPU seconds (user + system) of a child process running ``code`` on ``files``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    subprocess.run([sys.executable, "-c", code, *map(str, files)], check=True, env=env, cwd=REPO)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def one_core() -> int:
    return sorted(os.sched_getaffinity(0))[-1]


def bench_clips(args) -> None:
    clips = sorted((SHARED / "gtzan/genres").glob("*/*.wav"))[:: max(1, 70 // args.clips)][: args.clips]
    core = one_core()
    ours, plain = [], []
    for _ in range(args.repeat):  # alternated, so that both see the same machine load
        ours.append(child_cpu(GENREKIT_CHILD.replace("CORE", str(core)), clips))
        plain.append(child_cpu(PLAIN_CHILD.replace("CORE", str(core)), clips))
    o, p = statistics.median(ours), statistics.median(plain)
    print(f"(a) {len(clips)} 30-s clips, whole process, one core (CPU s, median of {args.repeat}): "
          f"genrekit {o:.2f} ({o / len(clips):.3f} a clip), plain musicnn recipe {p:.2f} ({p / len(clips):.3f} a clip): "
          f"{o / p:.2f}x (target <= 0.6x)")


def cpu_median(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.process_time()
        fn()
        times.append(time.process_time() - started)
    return statistics.median(times)


def bench_timeline(args, song: Path) -> None:
    import librosa

    from genrekit.predict import load_model

    os.sched_setaffinity(0, {one_core()})
    model = load_model()
    model.classify_file(song)  # warm: the model and the decoder libraries loaded

    def plain():
        y, _ = librosa.load(song, sr=16000)
        librosa.feature.melspectrogram(y=y, sr=16000, hop_length=256, n_fft=512, n_mels=96)

    plain()
    ours_label = cpu_median(lambda: model.classify_file(song), args.repeat)
    ours = cpu_median(lambda: model.classify_file(song, timeline=True), args.repeat)
    ref = cpu_median(plain, args.repeat)
    windows = len(model.classify_file(song, timeline=True).timeline)
    os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))
    print(f"(b) 4-minute MP3, one core (CPU s, median of {args.repeat}): genrekit --timeline {ours:.2f} "
          f"({windows} windows), librosa load + mel {ref:.2f}: {ours / ref:.2f}x (target <= 1.0x); "
          f"label + tags without timeline {ours_label:.2f} ({ours_label / ref:.2f}x)")


def make_library(folder: Path, song: Path, n: int) -> None:
    """``n`` distinct 4-minute MP3s (the same music at slightly different levels: other content)."""
    import soundfile as sf

    y, sr = sf.read(song, dtype="float32")
    for i in range(n):
        sf.write(folder / f"song{i:02d}.mp3", y * (0.97 - 0.01 * i), sr, format="MP3", subtype="MPEG_LAYER_III",
                 bitrate_mode="CONSTANT", compression_level=0.2)


def run_library(folder: Path, out: Path, jobs: int, timeline: bool) -> tuple[float, float]:
    args = [sys.executable, "-m", "genrekit", "classify", str(folder), "--out", str(out), "--jobs", str(jobs),
            "--format", "jsonl"] + (["--timeline"] if timeline else [])
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(args, check=True, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=dict(os.environ, PYTHONPATH=str(REPO)))
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def bench_library(args, song: Path, tmp: Path) -> None:
    folder = tmp / "library"
    folder.mkdir()
    make_library(folder, song, args.songs)
    n = args.songs
    for timeline in (False, True):
        for jobs in (1, 2):
            out = tmp / f"results-{int(timeline)}-{jobs}.jsonl"
            cold_wall, cold_cpu = run_library(folder, out, jobs, timeline)
            warm_wall, _ = run_library(folder, out, jobs, timeline)
            what = "label + tags + timeline" if timeline else "label + tags"
            print(f"(c) {what:<23} --jobs {jobs}: cold {n / cold_wall * 3600:7.0f} songs/h by wall "
                  f"({cold_cpu / n:.2f} CPU s a song, whole process: {2 * 3600 * n / cold_cpu:7.0f} songs/h on 2 free cores), "
                  f"warm {n / warm_wall * 3600:8.0f} songs/h (all {n} skipped)")
    print("    target: >= 6,000 four-minute songs/h on 2 cores, label + tags")


def bench_server(args) -> None:
    run = subprocess.run([sys.executable, str(HERE / "bench_web.py"), "--clients", "8", "--requests", str(args.requests)],
                         cwd=REPO, capture_output=True, text=True)
    for line in run.stdout.splitlines():
        if line.startswith(("server", "latency", "throughput", "reference", "requests")):
            print(f"(d) {line}")
    if run.returncode:
        print(run.stderr[-2000:])
    print("    target: p95 < 1 s")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="abcd", help="which parts to run (default abcd)")
    parser.add_argument("--clips", type=int, default=20, help="30-s clips in (a) (default 20 of the 70)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--songs", type=int, default=4, help="4-minute songs in the library of (c)")
    parser.add_argument("--requests", type=int, default=4, help="uploads per client in (d)")
    args = parser.parse_args(argv)
    print(f"bench_speed: {os.cpu_count()} CPUs (shared with other work: quote medians; CPU seconds are "
          "steadier than wall time)")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        song = make_song(tmp, SHARED / "gtzan/genres")[0] if set(args.only) & set("bc") else None
        if "a" in args.only:
            bench_clips(args)
        if "b" in args.only:
            bench_timeline(args, song)
        if "c" in args.only:
            bench_library(args, song, tmp)
    if "d" in args.only:
        bench_server(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
