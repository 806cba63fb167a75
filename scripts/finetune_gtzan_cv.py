"""Fine-tuned MSD-musicnn against CNNs from scratch and a head on frozen tags, by artist-grouped CV.

    python scripts/finetune_gtzan_cv.py [--arms pretrained classical choi shortres scratch]
                                        [--fold-list 0 1 2 3 4] [--epochs 4] [--out docs/finetune_gtzan_cv.json]

Data: the 70 shared GTZAN clips (``gtzan/genres``, 30 s) plus the 469 shared excerpts
(``gtzan/excerpts``, 2–3 s, each cut from clip NNNNN of its genre), 539 tracks. Folds: 5-fold
artist-grouped and genre-stratified (:func:`genrekit.datasets.splits.make_splits`, kind ``kfold``,
seed 0) with Sturm's ``GTZANindex.txt``; a clip without a known artist is its own group, and
an excerpt takes its clip's group, so an excerpt never lands on the other side from its clip
(nor from its artist's other clips). Each CNN carves an artist-disjoint tenth of its training
tracks for validation (early stopping, best epoch); the held-out fold is scored once at track
level (mean of the windows' probabilities; windows of 3 s every 3 s, a 2–3-s excerpt being
one window, repeat-padded).

Arms (``--arms``):

- ``pretrained``: ``--arch musicnn --pretrained``: the shipped MSD-musicnn weights, a new
  output layer, head-only training (lr 1e-2);
- ``unfreeze``: the same, then the whole network for the second half of the epochs (lr 1e-3);
- ``scratch``: ``--arch musicnn`` from random weights (lr 1e-3);
- ``shortres``, ``choi``: genrekit's from-scratch CNNs on 128-band log-mel (lr 1e-3);
- ``classical``: the default model's approach: logistic regression (C = 0.05) on each
  track's mean MSD-musicnn tag probabilities (``FeatureSet("msd_musicnn")`` rows, 50 tags),
  fitted on all non-test tracks of the fold.

All CNN arms use the same epochs, batch size and crops per track. Results go to ``--out``,
rewritten (under a file lock, so two runs with different arms can share it) after every
fold; a fold already in it with the same settings is skipped. Each fold records the command
that ran it and the git revision it ran at (``+dirty`` when tracked files other than
``--out`` differed from it): ``scripts/make_results.py`` shows only figures that say so.
"""

from __future__ import annotations

import argparse
import csv
import fcntl
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from genrekit import __version__  # noqa: E402

SHARED = REPO / os.environ.get("GENREKIT_SHARED_DATA", "../shared/data")
ARMS = {
    "pretrained": dict(arch="musicnn", pretrained=True, lr=1e-2),
    "unfreeze": dict(arch="musicnn", pretrained=True, unfreeze=True, lr=1e-2, unfreeze_lr=1e-3),
    "scratch": dict(arch="musicnn", lr=1e-3),
    "shortres": dict(arch="shortres", lr=1e-3),
    "choi": dict(arch="choi", lr=1e-3),
}


def git_revision(out: Path) -> str:
    """The checkout's commit (12 hex digits), ``+dirty`` if tracked files other than ``out`` differ from it."""
    def git(*args):
        return subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True, check=True).stdout
    try:
        rev = git("rev-parse", "--short=12", "HEAD").strip()
        dirty = git("status", "--porcelain", "--untracked-files=no", "--", ".", f":!{os.path.relpath(out, REPO)}")
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return rev + ("+dirty" if dirty.strip() else "")


def manifest(gtzan: Path, out: Path) -> Path:
    """A ``path,label,artist`` CSV of the clips and excerpts; an excerpt gets its clip's artist."""
    from genrekit.datasets.gtzan import read_artist_index

    index = read_artist_index(gtzan / "GTZANindex.txt")
    rows = []
    for folder in ("genres", "excerpts"):
        for path in sorted((gtzan / folder).glob("*/*.wav")):
            clip = path.stem  # genre.NNNNN, the id of the clip it is (or was cut from)
            rows.append((str(path), path.parent.name, index.get(clip) or f"?{clip}"))
    with open(out, "w", newline="") as f:
        csv.writer(f).writerows([("path", "label", "artist"), *rows])
    return out


def fold_tests(tracks, folds: int, seed: int) -> list[np.ndarray]:
    """The test rows of each fold: the call :func:`genrekit.training.cnn.trainer.train_cnn` makes."""
    from genrekit.datasets.splits import make_splits

    splits = make_splits(tracks.table(), "kfold", test_size=0.2, valid_size=0.0, seed=seed,
                         artists=tracks.artists, folds=folds)
    return [s.test for s in splits]


def run_cnn(arm: str, tracks, fold: int, args) -> dict:
    from genrekit.training.cnn.trainer import train_cnn
    from genrekit.training.run_folder import HISTORY_CSV, results_path

    opts = dict(ARMS[arm])
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        train_cnn(tracks, Path(tmp) / "run", split="kfold", folds=args.folds, fold=fold, epochs=args.epochs,
                  patience=args.epochs, batch_size=args.batch_size, crops_per_track=args.crops_per_track,
                  seed=args.seed, hop=args.hop, threads=args.threads, progress=False, verbose=True, **opts)
        seconds = time.perf_counter() - t0
        results = json.loads(results_path(Path(tmp) / "run").read_text())
        with open(Path(tmp) / "run" / HISTORY_CSV) as f:
            history = list(csv.DictReader(f))
    entry = next(iter(results["models"].values()))
    test = entry["test"]
    return {
        "accuracy": test["track"]["accuracy"], "macro_f1": test["track"]["macro_f1"],
        "n_tracks": test["n_tracks"], "epochs_run": len(history),
        "seconds_per_epoch": float(np.median([float(r["seconds"]) for r in history])),
        "seconds": round(seconds, 1),
    }


def run_classical(tags: np.ndarray, y: np.ndarray, test: np.ndarray, seed: int) -> dict:
    from sklearn.metrics import f1_score

    from genrekit.models.classical import make_model

    train = np.setdiff1d(np.arange(len(y)), test)
    t0 = time.perf_counter()
    model = make_model("logreg", random_state=seed, C=0.05).fit(tags[train], y[train])
    pred = model.predict(tags[test])
    return {"accuracy": float(np.mean(pred == y[test])),
            "macro_f1": float(f1_score(y[test], pred, average="macro")),
            "n_tracks": int(len(test)), "seconds": round(time.perf_counter() - t0, 2)}


def mean_tags(tracks) -> np.ndarray:
    """Each track's mean MSD-musicnn tag probabilities (50 columns of ``FeatureSet("msd_musicnn")``)."""
    from genrekit.audio import decode as audio
    from genrekit.features.sets import feature_set

    fs = feature_set("msd_musicnn")
    rows = []
    for path in tracks.paths:
        y = audio.load(path, sr=fs.sample_rate, min_samples=fs.min_samples)
        rows.append(fs.compute(y)[:, :50].mean(axis=0))
    return np.asarray(rows)


def update(out: Path, settings: dict, arm: str, fold: int, result: dict, base: dict) -> None:
    """Add one fold's result to ``out`` under a lock (read, merge, write atomically)."""
    from genrekit._io import write_json_atomic

    out.parent.mkdir(parents=True, exist_ok=True)
    lock_path = Path(tempfile.gettempdir()) / f"genrekit-{out.name}.lock"  # not beside the results: no stray file
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        report = json.loads(out.read_text()) if out.exists() else {}
        if report.get("settings") != settings:
            report = {k: v for k, v in base.items() if k not in ("command", "revision")}
            report.update(settings=settings, arms={}, commands=[base["command"]])
        report.update({k: v for k, v in base.items() if k not in ("command", "revision")})  # data, protocol... as of now
        commands = report.setdefault("commands", [report.pop("command", base["command"])])
        if base["command"] not in commands:  # runs of other arms or folds that share the file
            commands.append(base["command"])
        folds = report["arms"].setdefault(arm, {"folds": {}})["folds"]
        folds[str(fold)] = dict(result, command=base["command"], revision=base["revision"])
        summary = report["arms"][arm]
        accs = [f["accuracy"] for f in folds.values()]
        n = sum(f["n_tracks"] for f in folds.values())
        summary.update({
            "folds_run": sorted(int(k) for k in folds),
            "accuracy_mean": float(np.mean(accs)), "accuracy_std": float(np.std(accs)),
            "pooled_accuracy": float(sum(f["accuracy"] * f["n_tracks"] for f in folds.values()) / n),
            "n_tracks": n,
        })
        if "seconds_per_epoch" in result:
            summary["seconds_per_epoch_median"] = float(np.median([f["seconds_per_epoch"] for f in folds.values()]))
        report["updated"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        write_json_atomic(out, report)


def done(out: Path, settings: dict, arm: str, fold: int) -> bool:
    if not out.exists():
        return False
    report = json.loads(out.read_text())
    return report.get("settings") == settings and str(fold) in report.get("arms", {}).get(arm, {}).get("folds", {})


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--gtzan", type=Path, default=SHARED / "gtzan")
    p.add_argument("--arms", nargs="+", default=["classical", "pretrained", "choi", "shortres", "scratch"],
                   choices=["classical", *ARMS])
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--fold-list", type=int, nargs="+", default=None, help="folds to run (default all)")
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--crops-per-track", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--hop", type=float, default=3.0, help="evaluation window hop in seconds (default 3)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--cache", type=Path, default=None)
    p.add_argument("--out", type=Path, default=REPO / "docs" / "finetune_gtzan_cv.json")
    args = p.parse_args(argv)

    from genrekit.models.cnn_inputs import cnn_feature_set
    from genrekit.training.cnn.tracks import load_tracks

    settings = {"folds": args.folds, "epochs": args.epochs, "crops_per_track": args.crops_per_track,
                "batch_size": args.batch_size, "window": 3.0, "hop": args.hop, "seed": args.seed,
                "threads": args.threads, "arms": {k: v for k, v in ARMS.items()},
                "classical": "logreg C=0.05 on mean musicnn tags"}
    with tempfile.TemporaryDirectory() as tmp:
        csv_path = manifest(args.gtzan, Path(tmp) / "gtzan.csv")
        loaded = {}

        def tracks_for(name):
            if name not in loaded:
                loaded[name] = load_tracks(csv_path, cnn_feature_set(name), cache=args.cache, progress=False)
            return loaded[name]

        base_tracks = tracks_for("logmel")
        tests = fold_tests(base_tracks, args.folds, args.seed)
        shown = os.path.relpath(args.gtzan, REPO)  # a path that means the same on another checkout
        n_clips = sum(1 for p in base_tracks.paths if p.parent.parent.name == "genres")
        base = {
            "data": f"{shown}/genres ({n_clips} clips, 30 s) + {shown}/excerpts "
                    f"({len(base_tracks) - n_clips} excerpts, 2-3 s): {len(base_tracks)} tracks, 10 genres",
            "protocol": ("5-fold artist-grouped, genre-stratified CV (make_splits kfold, seed 0, GTZANindex.txt; "
                         "an excerpt takes its clip's artist group); track accuracy on the held-out fold"),
            "fold_sizes": [int(len(t)) for t in tests],
            "cpu": f"{os.cpu_count()} cores shared with other jobs, torch threads {args.threads}",
            "genrekit_version": __version__,
            "command": " ".join(["python", "scripts/finetune_gtzan_cv.py", *(argv or sys.argv[1:])]),
            "revision": git_revision(args.out),
        }
        folds = args.fold_list if args.fold_list is not None else list(range(args.folds))
        for arm in args.arms:
            if arm == "classical":
                tags = None
                for k in folds:
                    if done(args.out, settings, arm, k):
                        continue
                    if tags is None:
                        tags = mean_tags(base_tracks)
                    update(args.out, settings, arm, k, run_classical(tags, base_tracks.y, tests[k], args.seed), base)
                continue
            tracks = tracks_for("musicnn_frontend" if ARMS[arm]["arch"] == "musicnn" else "logmel")
            for k in folds:
                if done(args.out, settings, arm, k):
                    continue
                result = run_cnn(arm, tracks, k, args)
                print(f"{arm} fold {k}: {result}", file=sys.stderr, flush=True)
                update(args.out, settings, arm, k, result, base)
    return 0


if __name__ == "__main__":
    sys.exit(main())
