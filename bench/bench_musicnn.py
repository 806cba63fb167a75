"""Speed of the default model (MSD-musicnn head) against the musicnn package's own extractor.

    python bench/bench_musicnn.py --tf-python /tmp/musicnn-convert/tf-venv/bin/python [--repeat 5]

The reference is ``musicnn.extractor.extractor(file, model="MSD_musicnn", input_length=3,
input_overlap=1)`` of the musicnn 0.1.0 wheel, run in the TensorFlow environment that
``scripts/convert_musicnn.py`` makes (``--tf-python``; TensorFlow is never a genrekit
dependency). Both sides run pinned to one core with one thread, in the same run, on:

1. a 30-s GTZAN clip (the shared ``blues.00000.wav``), genrekit with the bundle's plan;
2. the 4-minute 44.1-kHz stereo MP3 of ``bench_classify.py`` (eight clips of eight genres),
   genrekit with ``--timeline`` (the dense plan: 3-s patches end to end over the whole song,
   81 of them, against the extractor's patch every 61 frames, ~245).

The bundle's plan (its feature set's ``step`` and ``max_patches``) is patches end to end
(step 187 frames, a third of musicnn's ``input_overlap=1`` patches) and at most 32 a song,
chosen by ``scripts/patch_plan_study.py`` (artist-grouped CV on the 443 training taggrams;
``docs/patch_plan.json``, RESULTS "Which patches the default model reads"). The accuracy
table printed last is the same kind of measurement on musicnn's 61-frame grid: "a patch
every 183 frames" is the nearest to the default's 187.

Printed: median wall (and CPU) seconds per call of ``GenreClassifier.classify_file`` (decode +
front end + network + head + timeline; the model loaded once, as in a library run) and of
the package's ``extractor`` call (decode + front end + network; it builds its graph and
restores its checkpoint on every call, as its API does), the ratio, and the bundle's plan.
Targets: >= 3x faster than the extractor. For CPU against musicnn's plain recipe on
onnxruntime, and songs an hour, see ``bench_speed.py``.
"""

from __future__ import annotations

import os

# No thread variables here: genrekit is measured as a user runs it (issue 31); it holds its own
# workers at one BLAS thread (genrekit.engines.threads).

import argparse  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from bench_classify import SHARED, make_song, median_time  # noqa: E402

_REFERENCE = r"""
import json, os, statistics, sys, time
os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
sys.path.insert(0, sys.argv[1])
import numpy as np
import tensorflow as tf
tf.config.threading.set_intra_op_parallelism_threads(1)
tf.config.threading.set_inter_op_parallelism_threads(1)
from musicnn.extractor import extractor
repeat = int(sys.argv[2])
out = {}
for path in sys.argv[3:]:
    extractor(path, model="MSD_musicnn", input_length=3, input_overlap=1, extract_features=False)  # warm up
    walls, cpus = [], []
    for _ in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        taggram, _ = extractor(path, model="MSD_musicnn", input_length=3, input_overlap=1, extract_features=False)
        walls.append(time.perf_counter() - t)
        cpus.append(time.process_time() - c)
    out[path] = {"wall": statistics.median(walls), "cpu": statistics.median(cpus), "patches": int(len(taggram))}
print("RESULT " + json.dumps(out))
"""


def reference(tf_python: Path, package: Path, files: list[Path], repeat: int) -> dict:
    proc = subprocess.run(["taskset", "-c", "0", str(tf_python), "-c", _REFERENCE, str(package), str(repeat),
                           *map(str, files)], capture_output=True, text=True,
                          env=dict(os.environ, PYTHONWARNINGS="ignore", CUDA_VISIBLE_DEVICES="",
                                   # the reference's own setting for "one thread": TensorFlow's pools
                                   TF_NUM_INTRAOP_THREADS="1", TF_NUM_INTEROP_THREADS="1", OMP_NUM_THREADS="1"))
    line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
    if not line:
        raise SystemExit(f"the musicnn reference failed:\n{proc.stderr[-3000:]}")
    return json.loads(line[0][len("RESULT "):])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tf-python", type=Path, default=Path("/tmp/musicnn-convert/tf-venv/bin/python"),
                        help="python of the TensorFlow venv made by scripts/convert_musicnn.py (default %(default)s)")
    parser.add_argument("--package", type=Path, default=Path("/tmp/musicnn-convert/package"),
                        help="the unpacked musicnn wheel (default %(default)s)")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per file (default %(default)s)")
    args = parser.parse_args(argv)
    os.sched_setaffinity(0, {0})

    from genrekit.models.registry import load_model

    clf = load_model()
    from genrekit.backbones import msd_musicnn as backbone

    backbone._SHARED.clear()
    backbone._SHARED[str(backbone.FOLDER / backbone.ONNX_FILE)] = backbone.Backbone(threads=1)
    clip = SHARED / "gtzan/genres/blues/blues.00000.wav"
    with tempfile.TemporaryDirectory() as tmp:
        song, _ = make_song(Path(tmp), SHARED / "gtzan/genres")
        ref = reference(args.tf_python, args.package, [clip, song], args.repeat) if args.tf_python.exists() else None
        rows = []
        for path, timeline in ((clip, False), (song, True)):
            clf.classify_file(path, timeline=timeline)  # warm up
            wall, cpu, pred = median_time(lambda: clf.classify_file(path, timeline=timeline), args.repeat)
            theirs = ref[str(path)] if ref else None
            rows.append((path.name, wall, cpu, pred, theirs))
    fs = clf.bundle.feature_set
    print(f"default model: {clf.bundle.card.get('model')} on musicnn (the bundle's plan: patch step {fs.step} frames, "
          f"max_patches {fs.max_patches}; with --timeline patches end to end over the whole song); "
          f"one core, one thread; medians of {args.repeat}")
    for name, wall, cpu, pred, theirs in rows:
        line = f"  {name:<22} genrekit {wall:6.3f} s (cpu {cpu:.3f}), {pred.label}"
        if theirs:
            line += (f" | musicnn extractor {theirs['wall']:6.3f} s (cpu {theirs['cpu']:.3f}; {theirs['patches']} "
                     f"patches) | {theirs['wall'] / wall:4.1f}x faster (cpu {theirs['cpu'] / cpu:4.1f}x)")
        print(line)
    if not ref:
        print(f"  (no reference: {args.tf_python} missing; run scripts/convert_musicnn.py first)")
    accuracy_by_patches()
    return 0


def accuracy_by_patches() -> None:
    """What fewer patches per song cost in accuracy: the default model's head family, fitted on the
    musicnn authors' training taggrams, scored on held-out clips whose tags are averaged over every
    k-th patch only (artist-grouped 5-fold CV, 4 repeats, 443 clips; the test clips are not used)."""
    import warnings

    import numpy as np
    from sklearn.model_selection import StratifiedGroupKFold

    from genrekit.datasets.gtzan import read_artist_index
    from genrekit.models.classical import make_model

    npz = SHARED / "gtzan/musicnn/training_data_GTZAN_MSDmusicnn_taggram.npz"
    with np.load(npz, allow_pickle=False) as z:
        X, Y, ids = z["X"], z["Y"], z["IDS"]
    artists = read_artist_index(SHARED / "gtzan/GTZANindex.txt")
    clips = sorted(set(ids))
    patches = [X[ids == c] for c in clips]
    y = np.array([Y[ids == c][0] for c in clips])
    groups = np.array([artists[c.split("/")[1].rsplit(".", 1)[0]] for c in clips])
    full = np.array([p.mean(axis=0) for p in patches])
    print("accuracy against patches per 30 s (artist-grouped CV on the 443 training clips):")
    for every in (1, 2, 3, 4, 6, 9):
        accs = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for r in range(4):
                for tr, va in StratifiedGroupKFold(5, shuffle=True, random_state=r).split(full, y, groups):
                    head = make_model("logreg", C=0.05).fit(full[tr], y[tr])
                    held = np.array([patches[i][::every].mean(axis=0) for i in va])
                    accs.append(float(np.mean(head.predict(held) == y[va])))
        print(f"  a patch every {61 * every:>3} frames ({61 * every * 256 / 16000:4.1f} s, ~{28 // every:>2} patches "
              f"per 30 s): {100 * np.mean(accs):.1f}%")


if __name__ == "__main__":
    sys.exit(main())
