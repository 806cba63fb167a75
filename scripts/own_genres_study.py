"""Your own genres in figures: few examples per genre, songs of unseen genres, calibration.

    python scripts/own_genres_study.py [--data ../shared/data] [--out docs/own_genres_study.json]

Writes ``docs/own_genres_study.json``, which ``scripts/make_results.py`` renders into
``docs/RESULTS.md``. Every cross-validation below is grouped by artist (Sturm's
``GTZANindex.txt``) and stratified by genre; nothing is chosen from its figures.

1. **Examples per genre** (:func:`genrekit.evaluation.learning_curve.learning_curve`): 5-fold CV repeated
   5 times (folds and draws reshuffled); in each outer training part ``k`` songs per genre
   (1, 3, 5, 10, 20, all) are drawn at random and the model is fitted on them alone, then
   scored on the held-out fold.

   - *Backbone head*: the shipped default's recipe (:func:`genrekit.training.own_genres.recipe`, a soft
     vote of logistic regression C=0.05 and an RBF SVM C=1) on the 733 clips of the musicnn
     authors' taggrams of GTZAN's fault-filtered train + test lists (one row per clip, its
     mean tags: :mod:`genrekit.datasets.musicnn_taggrams`). The recipe's SVM calibrates its
     probabilities by an inner 3-fold CV, which needs 3 songs per genre: with 1, the
     logistic-regression member (C=0.05) is fitted alone.
   - *Classical model on the 57 features*: a plain logistic regression (standard scaling,
     C=1, scikit-learn's defaults; :func:`genrekit.models.classical.make_model`) on the Kaggle
     30-s table's 1000 tracks. Not the shipped ``gtzan57`` vote: its hyper-parameters were
     tuned on all 1000 tracks, and its SVM needs 3 songs per genre.

   The two rest on different songs (733 clips vs 1000 tracks): compare their shapes, not
   their levels point by point.
2. **Unknown genres** (:func:`genrekit.evaluation.open_set.held_out_genres`): for each of the 45 pairs of
   GTZAN's 10 genres, both genres are left out of training; 5-fold CV over the other 8 genres'
   clips of the 733; in each fold the backbone head and its unknown decision are fitted on the
   training folds only (:func:`genrekit.models.calibration.fit_calibration`, as a bundle gets
   them: 5% of known training songs called unknown) and scored on the held-out fold's known
   clips plus every clip of the two held-out genres.
3. **Calibration**: read by ``make_results.py`` from ``docs/calibration.json``
   (``scripts/calibrate_shipped.py``), not recomputed: the test clips were scored once there.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import time
from pathlib import Path

for _threads in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_threads, "1")  # one core: the study shares its machine; set before numpy loads BLAS

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from genrekit.datasets.gtzan import GENRES
from genrekit.datasets.tables import load_table
from genrekit.datasets.musicnn_taggrams import artists, fault_filtered_taggrams, joined  # noqa: E402
from genrekit.evaluation.learning_curve import FOLDS, REPEATS, learning_curve, summary  # noqa: E402
from genrekit.models.classical import make_model  # noqa: E402
from genrekit.evaluation.open_set import held_out_genres  # noqa: E402
from genrekit.training.own_genres import recipe  # noqa: E402

#: Songs per genre of the learning curve (``None``: all of the outer training part).
KS = (1, 3, 5, 10, 20, None)
#: The recipe's inner 3-fold SVM calibration needs this many songs per genre.
RECIPE_MIN_PER_GENRE = 3


def taggram_rows(data: Path):
    """The 733 fault-filtered clips' mean-tag rows, their genres and artists."""
    parts = fault_filtered_taggrams(data)
    table = joined(parts["train"], parts["test"])
    return table, artists(data, table.tracks)


def curve_entry(scores: dict, data: str, n_tracks: int, fit, fit_small=None) -> dict:
    points = {}
    for k, r in scores.items():
        points[k] = {**summary(r["accuracy"]), "n_test_per_repeat": sum(r["n_test"]) // REPEATS,
                     "n_train_median": float(np.median(r["n_train"])),
                     "fit": fit_small if r["small_model"] else fit}
    return {"data": data, "n_tracks": n_tracks, "points": points}


def learning_curves(data: Path, log) -> dict:
    table, groups = taggram_rows(data)
    started = time.perf_counter()
    head = learning_curve(recipe(), table.X, table.labels, groups, KS, small_model=make_model("logreg", C=0.05),
                          min_per_genre=RECIPE_MIN_PER_GENRE)
    log(f"  backbone head: {time.perf_counter() - started:.0f} s")
    kaggle = load_table(data / "gtzan/features_30_sec.csv")
    started = time.perf_counter()
    classical = learning_curve(make_model("logreg"), kaggle.X, kaggle.labels, artists(data, kaggle.tracks), KS)
    log(f"  57-feature logreg: {time.perf_counter() - started:.0f} s")
    models = {
        "backbone head": curve_entry(
            head, f"musicnn authors' taggrams of GTZAN's fault-filtered train + test clips ({len(table.X)} clips, "
                  f"{len(set(groups))} artists), one row per clip (mean of its 50 tags)", len(table.X),
            "own_genres.recipe(): vote(logreg C=0.05 + svm-rbf C=1)", "logreg member alone (C=0.05)"),
        "57 features, logreg": curve_entry(
            classical, f"Kaggle GTZAN 30-s feature table ({len(kaggle.X)} tracks), 57 features",
            len(kaggle.X), "logreg (standard scaling, C=1)"),
    }
    for name, entry in models.items():
        log(f"  {name}: " + ", ".join(f"{k}: {100 * p['mean']:.1f}±{100 * p['std']:.1f}" for k, p in entry["points"].items()))
    return {"ks": ["all" if k is None else k for k in KS], "folds": FOLDS, "repeats": REPEATS,
            "protocol": (f"artist-grouped {FOLDS}-fold CV stratified by genre, repeated {REPEATS} times (folds and "
                         "draws reshuffled, seeds 0-4); k songs per genre drawn at random from each outer training "
                         "part (nested draws), scored on the held-out fold"),
            "models": models}


def open_set(data: Path, log) -> dict:
    table, groups = taggram_rows(data)
    pairs = {}
    started = time.perf_counter()
    for pair in itertools.combinations(GENRES, 2):
        r = held_out_genres(recipe(), table.X, table.labels, groups, pair, folds=FOLDS, seed=0)
        pairs["+".join(pair)] = r
        log(f"  {'+'.join(pair):<20} AUROC distance {r['auroc_distance']:.3f}  1-max p {r['auroc_max_probability']:.3f}"
            f"  known->unknown {r['known_called_unknown']:.3f}  unknown->known {r['unknown_called_known']:.3f}")
    log(f"  {len(pairs)} pairs: {time.perf_counter() - started:.0f} s")
    metrics = ("auroc_distance", "auroc_max_probability", "known_called_unknown", "unknown_called_known")
    summary_ = {m: {"mean": float(np.mean([p[m] for p in pairs.values()])),
                    "min": float(min(p[m] for p in pairs.values())), "max": float(max(p[m] for p in pairs.values()))}
                for m in metrics}
    return {"protocol": (f"every pair of the {len(GENRES)} genres held out of training; artist-grouped {FOLDS}-fold "
                         "CV stratified by genre (seed 0) over the other 8 genres' clips of the "
                         f"{len(table.X)}; head + unknown decision fitted on the training folds only "
                         "(fit_calibration: threshold at the conformal rank ceil((n+1)(1-0.05)) of the n out-of-fold distances of known "
                         "training clips, 5-fold artist-grouped); scored on the held-out fold's known clips plus "
                         "every clip of the two held-out genres; figures are means over the 5 folds"),
            "model": "own_genres.recipe(): vote(logreg C=0.05 + svm-rbf C=1), temperature-calibrated",
            "n_tracks": int(len(table.X)), "summary": summary_, "pairs": pairs}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT / "../shared/data")
    parser.add_argument("--out", type=Path, default=ROOT / "docs/own_genres_study.json")
    args = parser.parse_args(argv)
    log = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    log("examples per genre:")
    result = {"learning_curve": learning_curves(args.data, log)}
    log("two genres held out:")
    result["open_set"] = open_set(args.data, log)
    result["command"] = "python scripts/own_genres_study.py"
    tmp = args.out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=1) + "\n")
    tmp.replace(args.out)  # atomic: a failed run leaves the previous figures
    return 0


if __name__ == "__main__":
    sys.exit(main())
