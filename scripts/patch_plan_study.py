"""Which patch plan to run: the label's accuracy against patch overlap and patch budget.

    python scripts/patch_plan_study.py [--data ../shared/data] [--out docs/patch_plan.json] [--audio]

MSD-musicnn reads 3-s patches (187 STFT frames). musicnn's own recipe takes one every 61
frames (``input_overlap=1``: each second is seen three times); non-overlapping patches (one
every 187 frames) see each second once for a third of the network's cost; a budget spreads
at most ``k`` patches over a song. A plan is kept only if it costs no accuracy.

1. **Taggram protocol** (the musicnn authors' taggrams of the 443 training clips of GTZAN's
   fault-filtered split, 28–29 patches a clip every 61 frames). The shipped head's recipe
   (a soft vote of logistic regression C=0.05 and an RBF SVM C=1 on a clip's mean tags) is
   fitted on the training folds' all-patch rows, as the shipped head was, and scores the
   held-out fold's rows made from each plan's patches only: every 3rd patch (one every 183
   frames, the nearest the taggrams hold to 187), or ``k`` patches spread evenly. 5-fold CV
   grouped by artist, repeated 4 times (20 folds, the same for every plan); the per-fold
   difference to the all-patch plan gives its mean and a 95% interval. The test split is
   not read.
2. **From audio** (``--audio``): the shipped bundle on the 70 shared GTZAN clips with each
   step (61 and 187 frames); how many labels are right and how many change. (The 469 shared
   2–3-s excerpts are shorter than one patch: every plan gives them the same single,
   repeat-padded patch.)
3. **Batching** (``--batch``): CPU milliseconds per patch of the shipped ONNX on one
   single-threaded session (:func:`genrekit.onnx_sessions.session_options`) by batch size, to decide
   whether a worker should batch patches across files. Sections not recomputed are kept from
   an existing ``--out``.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from genrekit.datasets.gtzan import read_artist_index  # noqa: E402
from genrekit.models.classical import make_model  # noqa: E402
from sklearn.base import clone  # noqa: E402
from sklearn.ensemble import VotingClassifier  # noqa: E402
from sklearn.model_selection import StratifiedGroupKFold  # noqa: E402

REPEATS = 4
BUDGETS = (3, 5, 8, 12)


def plans(n: int) -> dict[str, np.ndarray]:
    """Patch indices (of a clip's ``n`` patches every 61 frames) that each plan keeps."""
    out = {"step 61 (musicnn, all patches)": np.arange(n), "step 183 (no overlap, every 3rd)": np.arange(0, n, 3)}
    for k in BUDGETS:
        out[f"budget {k} (step 61, spread)"] = np.unique(np.linspace(0, n - 1, k).round().astype(int))
        out[f"budget {k}, no overlap"] = np.arange(0, n, 3)[np.unique(np.linspace(0, len(range(0, n, 3)) - 1, k).round().astype(int))]
    return out


def clip_rows(npz: Path):
    d = np.load(npz, allow_pickle=False)
    ids, X, Y = d["IDS"], d["X"], d["Y"]
    order = list(dict.fromkeys(ids.tolist()))
    rows: dict[str, list] = {}
    for clip in order:
        patches = X[ids == clip]
        for name, keep in plans(len(patches)).items():
            rows.setdefault(name, []).append(patches[keep].mean(axis=0))
    labels = np.array([Y[ids == clip][0] for clip in order])
    return order, {k: np.asarray(v) for k, v in rows.items()}, labels


def _track(clip: str) -> str:
    """``blues/blues.00029.au`` -> ``blues.00029``, the artist index's key."""
    return Path(clip).stem


def head():
    members = [("logreg", make_model("logreg", random_state=0, C=0.05)), ("svm-rbf", make_model("svm-rbf", random_state=0, C=1.0))]
    return VotingClassifier(members, voting="soft", flatten_transform=False)


def taggram_study(data: Path, log) -> dict:
    clips, rows, y = clip_rows(data / "gtzan/musicnn/training_data_GTZAN_MSDmusicnn_taggram.npz")
    artists = read_artist_index(data / "gtzan/GTZANindex.txt")
    groups = np.array([artists[_track(c)] for c in clips])
    base = "step 61 (musicnn, all patches)"
    folds = [f for r in range(REPEATS) for f in StratifiedGroupKFold(5, shuffle=True, random_state=r).split(y, y, groups)]
    acc = {name: [] for name in rows}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for tr, va in folds:
            model = clone(head()).fit(rows[base][tr], y[tr])
            for name, X in rows.items():
                acc[name].append(float(np.mean(model.predict(X[va]) == y[va])))
    out = {}
    for name, a in acc.items():
        diff = np.asarray(a) - np.asarray(acc[base])
        half = 1.96 * diff.std(ddof=1) / np.sqrt(len(diff)) if len(diff) > 1 else 0.0
        n_patches = len(plans(28)[name])
        out[name] = {"cv_accuracy": float(np.mean(a)), "diff": float(diff.mean()), "diff_ci": [float(diff.mean() - half), float(diff.mean() + half)],
                     "patches_per_30s": n_patches}
        log(f"  {name:<36} {n_patches:4.0f} patches  CV {np.mean(a):.3f}  Δ {diff.mean():+.3f} [{diff.mean() - half:+.3f}, {diff.mean() + half:+.3f}]")
    return {"n_tracks": len(y), "folds": len(folds), "split": "fault-filtered train, artist-grouped 5-fold CV x4",
            "plans": out}


def audio_study(data: Path, log) -> dict:
    from genrekit.backbones.msd_musicnn import Backbone
    from genrekit.models.registry import load_model

    model = load_model()
    backbone = Backbone(threads=1)
    clips = sorted((data / "gtzan/genres").glob("*/*.wav"))
    labels = {}
    for step in (61, 187):
        got = []
        for p in clips:
            y = model.at_model_rate(*__import__("genrekit").load_audio(p))
            tg = backbone.taggram(y, step=step, cover_end=True, max_patches=32)
            got.append(model.prediction(model.scores(tg, len(y))).label)
        labels[step] = got
    truth = [p.parent.name for p in clips]
    res = {str(s): int(sum(a == b for a, b in zip(g, truth))) for s, g in labels.items()}
    changed = int(sum(a != b for a, b in zip(labels[61], labels[187])))
    log(f"  70 shared clips: right with step 61 {res['61']}, with step 187 {res['187']}; {changed} labels change")
    return {"n_clips": len(clips), "correct": res, "changed": changed}


def batch_study(log, patches: int = 32, repeats: int = 3) -> dict:
    import time

    from genrekit.backbones.msd_musicnn import Backbone

    backbone = Backbone(threads=1)
    x = np.random.default_rng(0).random((patches, 187, 96), dtype=np.float32) * 4
    out = {}
    for size in (1, 2, 4, 8, 16, 32):
        times = []
        for _ in range(repeats):
            started = time.process_time()
            for i in range(0, patches, size):
                backbone.run(x[i:i + size])
            times.append((time.process_time() - started) / patches * 1000)
        out[str(size)] = float(np.median(times))
        log(f"  batch {size:>2}: {out[str(size)]:.1f} ms CPU a patch (median of {repeats})")
    return {"ms_cpu_per_patch": out, "patches": patches, "repeats": repeats, "threads": 1}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT / "../shared/data")
    parser.add_argument("--out", type=Path, default=ROOT / "docs/patch_plan.json")
    parser.add_argument("--audio", action="store_true", help="also run the shipped bundle on the 70 shared clips")
    parser.add_argument("--batch", action="store_true", help="also time the network by batch size on one thread")
    args = parser.parse_args(argv)
    log = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    result = json.loads(args.out.read_text()) if args.out.exists() else {}
    log("taggram protocol (443 training clips):")
    result["taggrams"] = taggram_study(args.data, log)
    if args.audio:
        log("from audio:")
        result["audio"] = audio_study(args.data, log)
    if args.batch:
        log("batch size, one thread:")
        result["batch"] = batch_study(log)
    result["command"] = "python scripts/patch_plan_study.py --audio --batch"
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
