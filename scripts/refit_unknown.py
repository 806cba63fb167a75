"""Refit the "none of these" decision of every shipped bundle with the scorer the study chose.

    python scripts/refit_unknown.py [--data ../shared/data] [--report docs/unknown_refit.json]

The weights and the calibration are not touched: ``bundle.json``'s ``unknown`` is refitted by
:func:`genrekit.models.unknown.unknown_decision` with :data:`genrekit.models.unknown.DEFAULT_SCORER`
(chosen by ``scripts/unknown_study.py`` on GTZAN's fault-filtered train list only), on each bundle's
own training songs, folds grouped by artist, and now stores the out-of-fold scores
(``classify --unknown-rate`` moves the operating point with them).

Then each bundle's false-unknown rate is measured on known-genre songs it was **not** fitted on
(stated rate: 5%), and how many songs of a genre it lacks it flags:

- ``gtzan-musicnn`` (fitted on the 443 train clips): GTZAN's 290 fault-filtered test clips (the
  authors' taggrams); Emotify's 150 classical/pop/rock songs (genres it knows, from elsewhere) and
  its 50 electronic songs (a genre it lacks), from genrekit's own analysis of the audio.
- ``broad-musicnn`` (fitted on the 443 train clips and the 200 Emotify songs): GTZAN's 290 test clips.
- ``gtzan57`` (fitted on all 1000 rows of the Kaggle table): no unseen songs here; only its
  out-of-fold rate.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from broad_model_data import emotify_rows, gtzan_rows  # noqa: E402
from genrekit.datasets.musicnn_taggrams import artists as artists_of  # noqa: E402
from genrekit.datasets.tables import load_table  # noqa: E402
from genrekit.models.bundle import load_bundle  # noqa: E402
from genrekit.models.bundle_save import add_calibration  # noqa: E402
from genrekit.models.unknown import DEFAULT_SCORER, UnknownDetector, unknown_decision  # noqa: E402

SHIPPED = ROOT / "genrekit/models/shipped"
N_TAGS = 50


def wilson(k: int, n: int) -> list[float]:
    """95% Wilson interval of ``k`` of ``n``."""
    if not n:
        return [0.0, 1.0]
    z, p = 1.959964, k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return [round(float(centre - half), 4), round(float(centre + half), 4)]


def flagged(detector: UnknownDetector, X: np.ndarray, what: str) -> dict:
    k = int(sum(detector.is_unknown(row[None]) for row in X))
    return {"songs": what, "n": int(len(X)), "flagged": k, "share": round(k / len(X), 4), "ci": wilson(k, len(X))}


def refit(name: str, X, y, groups, songs: str) -> UnknownDetector:
    bundle = load_bundle(SHIPPED / name)
    unknown = unknown_decision(X, y, list(bundle.labels), groups=groups, grouped_by="artist", songs=songs,
                               method=DEFAULT_SCORER)
    add_calibration(SHIPPED / name, {"unknown": unknown})
    return UnknownDetector(unknown)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT / "../shared/data")
    parser.add_argument("--report", type=Path, default=ROOT / "docs/unknown_refit.json")
    args = parser.parse_args(argv)
    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    gtzan = gtzan_rows(args.data)
    train, test = gtzan["train"], gtzan["test"]
    emotify = emotify_rows(args.data, log)
    known = np.isin(emotify.y, ["classical", "pop", "rock"])
    report = {"scorer": DEFAULT_SCORER, "stated_rate": 0.05, "models": {}}

    d = refit("gtzan-musicnn", train.X, train.y, train.groups, "training clips (GTZAN fault-filtered train list)")
    report["models"]["gtzan-musicnn"] = [
        flagged(d, test.X, "GTZAN fault-filtered test clips (known genres, unseen artists)"),
        flagged(d, emotify.X[known, :N_TAGS], "Emotify classical/pop/rock songs (known genres, another dataset)"),
        flagged(d, emotify.X[~known, :N_TAGS], "Emotify electronic songs (a genre the model lacks)")]

    X = np.vstack([train.X, emotify.X[:, :N_TAGS]])
    y, groups = np.concatenate([train.y, emotify.y]), np.concatenate([train.groups, emotify.groups])
    d = refit("broad-musicnn", X, y, groups, "training songs (GTZAN + Emotify)")
    report["models"]["broad-musicnn"] = [flagged(d, test.X, "GTZAN fault-filtered test clips (known genres, unseen artists)")]

    table = load_table(args.data / "gtzan/features_30_sec.csv")
    bundle = load_bundle(SHIPPED / "gtzan57")
    X57 = table.X[:, [table.feature_names.index(c) for c in bundle.feature_names]]
    refit("gtzan57", X57, np.asarray(table.labels).astype(str), artists_of(args.data, table.tracks),
          "training songs (the Kaggle table's 1000 rows)")
    report["models"]["gtzan57"] = []
    for name, rows in report["models"].items():
        for r in rows:
            log(f"{name}: {r['songs']}: flagged {r['flagged']} of {r['n']} ({100 * r['share']:.1f}%, "
                f"95% CI {100 * r['ci'][0]:.1f}-{100 * r['ci'][1]:.1f}%)")
    args.report.write_text(json.dumps(report, indent=1) + "\n")
    return 0


def section(report) -> list[str]:
    """The RESULTS.md lines of ``docs/unknown_refit.json``."""
    if not report:
        return []
    lines = [f"**The shipped bundles' decision** (`python scripts/refit_unknown.py`: scorer `{report['scorer']}`, "
             f"threshold for {100 * report['stated_rate']:.0f}% false unknown on each bundle's own training songs, "
             "folds grouped by artist), measured on songs it was not fitted on:", "",
             "| model | songs | flagged unknown | share [95% Wilson CI] |", "|---|---|---|---|"]
    for name, rows in report["models"].items():
        for r in rows:
            lines.append(f"| {name} | {r['songs']} | {r['flagged']} of {r['n']} | {100 * r['share']:.1f}% "
                         f"[{100 * r['ci'][0]:.1f}, {100 * r['ci'][1]:.1f}] |")
    return lines + [""]


if __name__ == "__main__":
    sys.exit(main())
