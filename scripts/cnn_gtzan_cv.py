"""Artist-grouped 5-fold cross-validation of every CNN architecture on GTZAN clips.

    python scripts/cnn_gtzan_cv.py [GENRES_DIR] [--artists GTZANindex.txt] [--epochs 12]
                                   [--arch shortres choi ...] [--out docs/cnn_gtzan_cv.json]

By default the 70 GTZAN clips of the shared data folder (``$GENREKIT_SHARED_DATA``,
default ``../shared/data``: ``gtzan/genres`` and ``gtzan/GTZANindex.txt``). Folds are
artist-disjoint and stratified by genre (:func:`genrekit.datasets.splits.make_splits`, kind
``kfold`` with Sturm's artist index; clips without an artist are their own group); each
training fold gives up an artist-disjoint tenth of its tracks for validation (early
stopping and the choice of the best epoch), and the held-out fold is scored once, at
track level (mean of the 3-s windows' probabilities) and window level.

The JSON written to ``--out`` holds, per architecture, every fold's track accuracy,
macro-F1, window accuracy, number of test tracks, epochs run and wall time, and the mean
± standard deviation over folds. It is rewritten after every fold, and a rerun with the
same settings skips the folds already in it.

With about 56 training clips per fold and a CPU budget of minutes, these figures say
how the architectures compare on little data, not what they reach on all of GTZAN.

References: G. Tzanetakis & P. Cook, IEEE TSAP 2002 (GTZAN); B. L. Sturm, "The GTZAN
dataset...", 2013 (artist index, faults).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from genrekit import __version__  # noqa: E402
from genrekit._io import write_json_atomic  # noqa: E402
from genrekit.models import cnn  # noqa: E402
from genrekit.training.cnn.tracks import load_tracks  # noqa: E402
from genrekit.training.cnn.trainer import train_cnn  # noqa: E402
from genrekit.training.run_folder import results_path  # noqa: E402

SHARED = REPO / os.environ.get("GENREKIT_SHARED_DATA", "../shared/data")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("genres", nargs="?", type=Path, default=SHARED / "gtzan" / "genres",
                   help="GTZAN-layout folder (default: the shared 70 clips)")
    p.add_argument("--artists", type=Path, default=None,
                   help="artist index (default: GTZANindex.txt beside the genres folder)")
    p.add_argument("--arch", nargs="+", default=list(cnn.ARCHITECTURES), choices=list(cnn.ARCHITECTURES))
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--patience", type=int, default=6)
    p.add_argument("--crops-per-track", type=int, default=6)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1: the CPU is shared)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--cache", type=Path, default=None, help="feature cache (default: genrekit's)")
    p.add_argument("--out", type=Path, default=REPO / "docs" / "cnn_gtzan_cv.json")
    args = p.parse_args(argv)
    artists = args.artists or args.genres.parent / "GTZANindex.txt"

    settings = {
        "folds": args.folds, "epochs": args.epochs, "patience": args.patience,
        "crops_per_track": args.crops_per_track, "batch_size": args.batch_size, "lr": args.lr,
        "seed": args.seed, "window": 3.0, "hop": 1.5, "features": "logmel, 128 bands, 22050 Hz, hop 512",
    }
    report = _previous(args.out, settings) or {
        "data": str(args.genres),
        "artists": str(artists),
        "protocol": (
            f"{args.folds}-fold cross-validation over artists (GTZANindex.txt; clips without an artist are "
            f"their own group), stratified by genre; in each training fold an artist-disjoint tenth of the "
            f"tracks is held out for early stopping; test figures at track level (mean of 3-s windows every "
            f"1.5 s) and window level"
        ),
        "settings": settings,
        "architectures": {},
    }

    tracks = load_tracks(args.genres, cache=args.cache, progress=False)
    report["n_tracks"] = len(tracks)
    unseen = _unseen_genres(tracks, artists, args.folds, args.seed)
    report["ceiling"] = {
        "test_tracks_of_a_genre_absent_from_training": int(sum(unseen)),
        "best_possible_accuracy": 1 - sum(unseen) / len(tracks),
        "why": "a genre whose clips all come from one artist (in the shared 70 clips: blues, classical, reggae "
               "and rock) has no training example in the fold that tests that artist",
    }
    print(f"{tracks.source}; {args.folds} artist-grouped folds; archs {', '.join(args.arch)}", flush=True)
    with tempfile.TemporaryDirectory(prefix="cnn-cv-") as work:
        for arch in args.arch:
            entry = report["architectures"].setdefault(arch, {"folds": []})
            done = {f["fold"] for f in entry["folds"]}
            for fold in range(args.folds):
                if fold in done:
                    continue
                t0 = time.perf_counter()
                run = train_cnn(
                    tracks, Path(work) / f"{arch}-{fold}", arch=arch, split="kfold", artists=artists,
                    folds=args.folds, fold=fold, epochs=args.epochs, patience=args.patience,
                    crops_per_track=args.crops_per_track, batch_size=args.batch_size, lr=args.lr,
                    seed=args.seed, device=args.device, threads=args.threads, progress=False, verbose=False,
                    command=" ".join([sys.argv[0], *sys.argv[1:]]),
                )
                seconds = time.perf_counter() - t0
                results = json.loads(results_path(run).read_text())
                model = results["models"][f"cnn-{arch}"]
                test, params = model["test"], model["params"]
                entry["folds"].append({
                    "fold": fold,
                    "test_tracks": test["n_tracks"],
                    "test_tracks_genre_unseen": unseen[fold],
                    "accuracy": test["track"]["accuracy"],
                    "macro_f1": test["track"]["macro_f1"],
                    "window_accuracy": test["window"]["accuracy"],
                    "valid_accuracy": model["valid"]["track"]["accuracy"],
                    "epochs_run": params["epochs_run"],
                    "best_epoch": params["best_epoch"],
                    "seconds": round(seconds, 1),
                    "split": results["split"]["description"],
                })
                entry["folds"].sort(key=lambda f: f["fold"])
                entry.update(_summary(entry["folds"]), n_parameters=params["n_parameters"])
                _write(args.out, report)
                print(f"{arch} fold {fold}: track accuracy {test['track']['accuracy']:.3f} of "
                      f"{test['n_tracks']} tracks, macro-F1 {test['track']['macro_f1']:.3f}, "
                      f"{params['epochs_run']} epochs, {seconds:.0f} s", flush=True)
            print(f"{arch}: accuracy {entry['accuracy_mean']:.3f} ± {entry['accuracy_std']:.3f}, "
                  f"macro-F1 {entry['macro_f1_mean']:.3f} ± {entry['macro_f1_std']:.3f} "
                  f"({entry['n_tracks']} tracks)", flush=True)
    _write(args.out, report)
    return 0


def _unseen_genres(tracks, artists, folds: int, seed: int) -> list[int]:
    """Per fold, test tracks whose genre has no track in the fold's training side (they cannot be right)."""
    from genrekit.datasets.splits import make_splits

    splits = make_splits(tracks.table(), "kfold", seed=seed, artists=artists, folds=folds)
    return [int(np.sum(~np.isin(tracks.labels[s.test], tracks.labels[s.train]))) for s in splits]


def _summary(folds: list[dict]) -> dict:
    acc = np.array([f["accuracy"] for f in folds])
    f1 = np.array([f["macro_f1"] for f in folds])
    n = np.array([f["test_tracks"] for f in folds])
    return {
        "accuracy_mean": float(acc.mean()),
        "accuracy_std": float(acc.std(ddof=1)) if len(acc) > 1 else 0.0,
        "pooled_accuracy": float((acc * n).sum() / n.sum()),  # every test clip counted once
        "macro_f1_mean": float(f1.mean()),
        "macro_f1_std": float(f1.std(ddof=1)) if len(f1) > 1 else 0.0,
        "window_accuracy_mean": float(np.mean([f["window_accuracy"] for f in folds])),
        "n_tracks": int(n.sum()),
        "epochs_run": [f["epochs_run"] for f in folds],
        "seconds": round(float(sum(f["seconds"] for f in folds)), 1),
    }


def _previous(path: Path, settings: dict) -> dict | None:
    """The report of an earlier run with the same settings, to skip its finished folds."""
    try:
        report = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return report if report.get("settings") == settings else None


def _write(path: Path, report: dict) -> None:
    import torch

    report.update(
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        genrekit_version=__version__, torch_version=str(torch.__version__),
        command=" ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
    )
    write_json_atomic(path, report)
    os.chmod(path, 0o644)  # the temporary file it was written as is private


if __name__ == "__main__":
    sys.exit(main())
