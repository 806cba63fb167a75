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
    process pinned to one core, CPU seconds, median of ``--repeat``. Target <= 1.0x. Printed
    with the arithmetic from the measured cost of one patch through the network.
(c) **Library throughput**: ``genrekit classify FOLDER --out results.jsonl`` on ``--songs``
    (default 20) distinct 4-minute MP3s (label + tags, and with ``--timeline``), ``--jobs`` 1
    and 2, cold (new results store) and warm (the same store again: every song skipped),
    medians of ``--repeat``. Every genrekit process runs with **no thread variable** in its
    environment, as from a user's shell (issue 31); ``--jobs 2`` label + tags also runs with
    ``OPENBLAS/OMP/MKL_NUM_THREADS=1`` forced, alternated, and the CPU ratio of the two is
    printed (target <= 1.2x: genrekit holds its workers at one BLAS thread by itself). One song,
    ``genrekit classify song.mp3``: CPU / wall (target <= 1.2). Process start-up (python,
    imports, model and ONNX session) is measured and printed on its own; songs an hour by wall
    time (whole runs, and without one start-up; on a machine shared with others busy cores slow
    it) and CPU seconds a song beyond start-ups beside the network's own compute (the song's
    patches x the measured cost of a patch) and their ratio. Also, in-process: label + tags with
    only the label's regions decoded against the whole MP3 decoded. The machine's load average
    is printed before and after. Target >= 8,000 an hour by wall with ``--jobs 2`` on 2 cores.
(d) **The server**: ``bench_web.py --clients 8`` (8 concurrent uploads of a 30-s clip; its
    own in-process reference in the same run): p50/p95. Target p95 < 1 s. Printed with the
    lower bound that the measured cost of a patch puts on the 8th of 8 simultaneous uploads.
"""

from __future__ import annotations

import os

# No thread variables here: genrekit is measured as a user runs it (issue 31); it holds its own
# workers at one BLAS thread (genrekit.engines.threads).

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
from genrekit.models.registry import load_model
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
    env = dict(USER_ENV, PYTHONPATH=str(REPO))
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

    from genrekit.models.registry import load_model

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
    from genrekit.backbones.msd_musicnn import DENSE_STEP, patch_starts

    patch, n_dense = patch_cost(), len(patch_starts(len(load_16k(song)), DENSE_STEP, dense=True))
    os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))
    print(f"(b) 4-minute MP3, one core (CPU s, median of {args.repeat}): genrekit --timeline {ours:.2f} "
          f"({windows} windows), librosa load + mel {ref:.2f}: {ours / ref:.2f}x (target <= 1.0x); "
          f"label + tags without timeline {ours_label:.2f} ({ours_label / ref:.2f}x)")
    print(f"(b) arithmetic: the dense timeline runs {n_dense} patches; the network alone costs {patch * 1000:.1f} ms "
          f"of one core a patch (median of 50), {n_dense * patch:.2f} s = {n_dense * patch / ref:.2f}x librosa's "
          f"load + mel before any decoding: <= 1.0x would need <= {ref / n_dense * 1000:.1f} ms a patch on this CPU")
    return patch


def load_16k(song: Path):
    from genrekit.audio import decode as audio

    return audio.load(song, 16000)


def patch_cost(n: int = 50) -> float:
    """Median CPU seconds of one 3-s patch through the backbone on one thread."""
    import numpy as np

    from genrekit.backbones.msd_musicnn import PATCH_FRAMES, load_backbone

    backbone = load_backbone()
    x = np.random.default_rng(0).random((1, PATCH_FRAMES, 96), dtype=np.float32) * 3
    backbone.run(x)
    return cpu_median(lambda: backbone.run(x), n)


def make_library(folder: Path, song: Path, n: int) -> None:
    """``n`` distinct 4-minute MP3s (the same music at slightly different levels: other content)."""
    import soundfile as sf

    y, sr = sf.read(song, dtype="float32")
    for i in range(n):
        gain = 0.97 - 0.4 * i / max(n, 1)
        with sf.SoundFile(folder / f"song{i:02d}.mp3", "w", sr, y.shape[1], format="MP3", subtype="MPEG_LAYER_III",
                          bitrate_mode="CONSTANT", compression_level=0.2) as f:
            for k in range(0, len(y), sr):  # small writes (libsndfile's encoders dislike big ones)
                f.write(y[k:k + sr] * gain)


#: The environment a user's shell has: no thread variables (issue 31). ``forced`` adds the one
#: BLAS thread that genrekit should reach by itself, for the comparison.
USER_ENV = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}
FORCED_ENV = dict(USER_ENV, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")


def run_genrekit(args: list[str], env: dict | None = None) -> tuple[float, float]:
    """Wall and CPU seconds (the process and its pool workers) of one ``genrekit`` command."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "genrekit", *args], check=True, cwd=REPO, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, env=dict(env if env is not None else USER_ENV, PYTHONPATH=str(REPO)))
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def run_library(folder: Path, out: Path, jobs: int, timeline: bool, env: dict | None = None) -> tuple[float, float]:
    """Wall and CPU seconds of one ``genrekit classify FOLDER --out`` run."""
    return run_genrekit(["classify", str(folder), "--out", str(out), "--jobs", str(jobs), "--format", "jsonl"]
                        + (["--timeline"] if timeline else []), env)


def network_seconds(song: Path, patch: float) -> tuple[int, int, float]:
    """Patches the network runs on one of the library's songs (label + tags; dense timeline), and
    the cost of a patch (CPU s): what the network alone costs a song."""
    import soundfile as sf

    from genrekit.backbones.msd_musicnn import DENSE_STEP, SAMPLE_RATE, patch_starts
    from genrekit.models.registry import load_model

    plan = load_model()._plan  # the bundle's plan: its feature set's step and max_patches
    n = int(sf.info(song).duration * SAMPLE_RATE)
    return (len(patch_starts(n, plan["step"], plan["max_patches"], cover_end=True)),
            len(patch_starts(n, DENSE_STEP, dense=True)), patch)


STARTUP_CHILD = """
from genrekit.models.registry import load_model
from genrekit.backbones.msd_musicnn import load_backbone
load_model(); load_backbone()
"""


def startup(repeat: int) -> tuple[float, float]:
    """Median wall and CPU seconds of a process that starts, imports genrekit and loads the model."""
    walls, cpus = [], []
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", STARTUP_CHILD], check=True, cwd=REPO, env=dict(USER_ENV, PYTHONPATH=str(REPO)))
        walls.append(time.perf_counter() - started)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime))
    return statistics.median(walls), statistics.median(cpus)


def region_saving(folder: Path, repeat: int) -> tuple[float, float]:
    """In-process CPU seconds a song for label + tags: regions decoded (the default) and the whole
    file decoded (regions switched off), medians over the library's first songs."""
    from genrekit.models import protocol
    from genrekit.models.registry import load_model

    import numpy as np

    model = load_model()
    songs = sorted(folder.glob("*.mp3"))[:5]
    model.classify_file(songs[0])
    fast = [model.classify_file(p) for p in songs]
    regions = cpu_median(lambda: [model.classify_file(p) for p in songs], repeat) / len(songs)
    saved, protocol.REGIONS_FROM = protocol.REGIONS_FROM, float("inf")
    try:
        full = [model.classify_file(p) for p in songs]
        whole = cpu_median(lambda: [model.classify_file(p) for p in songs], repeat) / len(songs)
    finally:
        protocol.REGIONS_FROM = saved
    same = sum(a.label == b.label for a, b in zip(fast, full))
    tag_diff = max(abs(x["score"] - {t["label"]: t["score"] for t in b.tags}[x["label"]])
                   for a, b in zip(fast, full) for x in a.tags)
    proba_diff = max(float(np.max(np.abs(np.array([a.probabilities[g] - b.probabilities[g] for g in b.probabilities]))))
                     for a, b in zip(fast, full))
    print(f"(c) regions against whole-file decoding on {len(songs)} songs: the same label for {same}, largest "
          f"difference of a song's tag mean {tag_diff:.1e}, of a probability {proba_diff:.1e}")
    return regions, whole


def bench_library(args, song: Path, tmp: Path, patch: float | None) -> None:
    folder = tmp / "library"
    folder.mkdir()
    make_library(folder, song, args.songs)
    n, r = args.songs, args.repeat
    print(f"(c) machine load (uptime) before: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}")
    print("(c) every genrekit process runs with no thread variable in its environment, as from a user's shell")
    up_wall, up_cpu = startup(r)
    print(f"(c) process start-up (python, imports, model and ONNX session; median of {r}): {up_wall:.2f} s wall, "
          f"{up_cpu:.2f} CPU s; the figures below count it once per run (and once per pool worker with --jobs 2)")
    with_regions, whole = region_saving(folder, r)
    print(f"(c) decoding only the label's regions: {with_regions:.2f} CPU s a song for label + tags, against "
          f"{whole:.2f} decoding the whole MP3 ({1 - with_regions / whole:.0%} saved; in-process, median of {r})")
    if patch is None:
        os.sched_setaffinity(0, {one_core()})
        patch = patch_cost()
        os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))
    planned, dense, _ = network_seconds(sorted(folder.glob("*.mp3"))[0], patch)
    one = sorted(folder.glob("*.mp3"))[0]
    singles = [run_genrekit(["classify", str(one)]) for _ in range(r)]
    s_wall, s_cpu = statistics.median(w for w, _ in singles), statistics.median(c for _, c in singles)
    print(f"(c) one song, `genrekit classify song.mp3` (whole process, median of {r}): {s_wall:.2f} s wall, "
          f"{s_cpu:.2f} CPU s: CPU / wall {s_cpu / s_wall:.2f} (target <= 1.2)")
    for timeline in (False, True):
        patches = dense if timeline else planned
        for jobs in (1, 2):
            colds, warms, forced = [], [], []
            for i in range(r):
                out = tmp / f"results-{int(timeline)}-{jobs}-{i}.jsonl"
                colds.append(run_library(folder, out, jobs, timeline))
                warms.append(run_library(folder, out, jobs, timeline))
                if jobs == 2 and not timeline:  # the same run with one BLAS thread forced, alternated
                    forced.append(run_library(folder, tmp / f"forced-{i}.jsonl", jobs, timeline, FORCED_ENV))
            cold_wall = statistics.median(w for w, _ in colds)
            cold_cpu = statistics.median(c for _, c in colds)
            warm_wall = statistics.median(w for w, _ in warms)
            warm_cpu = statistics.median(c for _, c in warms)
            workers = jobs if jobs > 1 else 0  # pool workers each start up and load the model
            song_cpu = max(cold_cpu - warm_cpu - workers * up_cpu, 1e-9) / n
            what = "label + tags + timeline" if timeline else "label + tags"
            print(f"(c) {what:<23} --jobs {jobs}: cold {n / cold_wall * 3600:6.0f} songs/h by wall, whole runs "
                  f"({n / max(cold_wall - up_wall, 1e-9) * 3600:6.0f} without one start-up), {cold_cpu:.1f} CPU s; "
                  f"{song_cpu:.2f} CPU s a song beyond start-ups, of which the network alone "
                  f"{patches} patches x {patch * 1000:.1f} ms = {patches * patch:.2f} ({song_cpu / (patches * patch):.2f}x); "
                  f"{2 * 3600 / song_cpu:6.0f} songs/h on 2 free cores; "
                  f"warm (all {n} skipped) {warm_wall:.2f} s wall, {warm_cpu:.2f} CPU s (median of {r})")
            if forced:
                f_wall = statistics.median(w for w, _ in forced)
                f_cpu = statistics.median(c for _, c in forced)
                print(f"(c) {what:<23} --jobs {jobs} with OPENBLAS/OMP/MKL_NUM_THREADS=1 forced: "
                      f"{n / f_wall * 3600:6.0f} songs/h by wall, {f_cpu:.1f} CPU s: nothing set costs "
                      f"{cold_cpu / f_cpu:.2f}x its CPU (target <= 1.2x) and {cold_wall / f_wall:.2f}x its wall "
                      f"(median of {r})")
    print(f"(c) machine load (uptime) after: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}")
    print("    target: >= 8,000 four-minute songs/h by wall with --jobs 2 on 2 cores, label + tags")


def bench_server(args, patch: float | None) -> None:
    if patch is None:
        os.sched_setaffinity(0, {one_core()})
        patch = patch_cost()
        os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))
    # a 30-s clip's dense plan: patches end to end and an end-aligned one (the server draws a timeline)
    from genrekit.backbones.msd_musicnn import patch_starts

    clip_patches = len(patch_starts(30 * 16000, 187, dense=True))
    cores = len(os.sched_getaffinity(0))
    floor = 8 * clip_patches * patch / cores
    print(f"(d) arithmetic: a 30-s clip is {clip_patches} patches x {patch * 1000:.1f} ms = {clip_patches * patch:.2f} "
          f"CPU s of network alone; 8 uploads arriving together on {cores} cores finish the last ones no sooner "
          f"than 8 x {clip_patches * patch:.2f} / {cores} = {floor:.2f} s, so p95 (the 8th of 8) >= {floor:.2f} s "
          f"before decoding, front end or HTTP")
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
    parser.add_argument("--songs", type=int, default=20, help="4-minute songs in the library of (c) (default 20)")
    parser.add_argument("--requests", type=int, default=4, help="uploads per client in (d)")
    args = parser.parse_args(argv)
    print(f"bench_speed: {os.cpu_count()} CPUs (shared with other work: quote medians; CPU seconds are "
          "steadier than wall time)")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        song = make_song(tmp, SHARED / "gtzan/genres")[0] if set(args.only) & set("bc") else None
        if "a" in args.only:
            bench_clips(args)
        patch = None
        if "b" in args.only:
            patch = bench_timeline(args, song)
        if "c" in args.only:
            bench_library(args, song, tmp, patch)
    if "d" in args.only:
        bench_server(args, patch)
    return 0


if __name__ == "__main__":
    sys.exit(main())
