"""The cross-dataset table of docs/RESULTS.md: every shipped model on GTZAN and on music from elsewhere.

    python scripts/cross_dataset_table.py [--data ../shared/data] [--out docs] [--models NAME ...]

(``--models``: recompute those models' rows only, keeping the others' from the existing JSON.)

For each model the registry ships (``genrekit models``: a new default appears by itself) and each of

- **GTZAN fault-filtered test** (290 clips): from the musicnn authors' taggrams, where the model's
  inputs are MSD-musicnn's 50 tags; "not computable" otherwise (the clips' audio is not shared);
- **GTZAN audio, fault-filtered valid list**: the shared GTZAN clips on the split's *valid* list,
  classified from audio as a user would;
- **Emotify** (200 Magnatune songs, 4 genres): classified from audio and scored through a ready-made
  label map (``emotify-electronic`` when the model has an electronic genre, else ``emotify-gtzan``,
  where electronic songs count right only when flagged unknown),

track accuracy, n and a 95% bootstrap interval (songs resampled), and what the model was trained on (its
model card). **Leave one dataset out**: a cell whose songs the model saw in training is marked, and its
figure comes from the model card's artist-grouped cross-validation on that dataset when the card has
one, else the cell says "seen in training". What a card says it was trained on is read from
``card["trained_on"]`` (``{"gtzan": "fault-filtered train" | "all", "emotify": "all" | ...}``) and, for
cards without it, from its ``data`` and ``split`` lines; CV figures from ``card["figures"]``: a
``{"<dataset>_artist_grouped_cv": {"track_accuracy" | "accuracy", "accuracy_ci", "n_tracks" | "n"}}``
entry, or for GTZAN seen whole, ``artist_grouped_nested_cv``; else from the bundle's
``metrics["evaluation"]`` list (the artist-grouped entry over all of the dataset's songs).

Writes ``docs/cross_dataset.json``; ``scripts/make_results.py`` renders it as a RESULTS.md section
(:func:`section`).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DATASETS = {"gtzan_test": "GTZAN fault-filtered test (taggrams)",
            "gtzan_valid_audio": "GTZAN audio, valid list",
            "emotify": "Emotify (label map)"}


def trained_on(card: dict) -> dict:
    """``{"gtzan": what of GTZAN or None, "emotify": what of Emotify or None}`` from a model card."""
    given = card.get("trained_on")
    if isinstance(given, dict):
        return {"gtzan": given.get("gtzan"), "emotify": given.get("emotify")}
    text = f"{card.get('data', '')} {card.get('split', '')}".lower()
    gtzan = None
    if "gtzan" in text:
        gtzan = "all" if "all 1000" in text else "fault-filtered train" if "443" in text else "some"
    return {"gtzan": gtzan, "emotify": "all" if "emotify" in text else None}


def seen(cell: str, trained: dict) -> bool:
    """Whether a model trained on ``trained`` saw the songs of ``cell``."""
    if cell == "emotify":
        return trained["emotify"] is not None
    g = trained["gtzan"]
    if g is None or g == "fault-filtered train":
        return False
    return True  # all of GTZAN, or a part the card does not name: count it as seen


def card_cv(card: dict, dataset: str) -> dict | None:
    """The model card's artist-grouped CV figure on ``dataset`` (``gtzan``/``emotify``), or ``None``."""
    figures = card.get("figures") or {}
    entry = figures.get(f"{dataset}_artist_grouped_cv")
    if entry is None and dataset == "gtzan":
        entry = figures.get("artist_grouped_nested_cv")
    if not isinstance(entry, dict):
        return None
    acc = entry.get("track_accuracy", entry.get("accuracy"))
    n = entry.get("n_tracks", entry.get("n"))
    if acc is None:
        return None
    return {"accuracy": acc, "accuracy_ci": entry.get("accuracy_ci"), "n": n, "from": "model card: artist-grouped CV"}


def evaluation_cv(metrics: dict, dataset: str) -> dict | None:
    """The artist-grouped CV figure on all of ``dataset``'s songs from a bundle's ``metrics["evaluation"]``
    (the figures-by-dataset list a build script writes: dataset, protocol, labels, n, accuracy, ci)."""
    whole = {"emotify": "all four", "gtzan": "ten genres"}[dataset]
    for entry in (metrics or {}).get("evaluation") or []:
        if (isinstance(entry, dict) and entry.get("dataset") == dataset and entry.get("labels") == whole
                and "artist-grouped" in str(entry.get("protocol", ""))):
            return {"accuracy": entry["accuracy"], "accuracy_ci": entry.get("ci"), "n": entry.get("n"),
                    "from": f"model card: {entry['protocol']}"}
    return None


def gtzan_test(bundle, data: Path) -> dict:
    """Track accuracy on the 290 fault-filtered test clips from the authors' taggrams (the 50 tags)."""
    import numpy as np

    from genrekit.datasets.musicnn_taggrams import fault_filtered_taggrams
    from genrekit.evaluation.metrics import evaluate

    if bundle.feature_set.name != "msd_musicnn" or not bundle.feature_names:
        return {"not_computable": f"its inputs are {bundle.feature_set.name} features, not the 50 musicnn tags"}
    table = fault_filtered_taggrams(data)["test"]
    missing = [f for f in bundle.feature_names if f not in table.feature_names]
    if missing:
        return {"not_computable": f"its inputs are not the 50 musicnn tags (e.g. {missing[0]})"}
    cols = [list(table.feature_names).index(f) for f in bundle.feature_names]
    known = np.isin(table.labels, bundle.labels)
    proba = bundle.predict_proba(table.X[:, cols].astype(np.float32))
    sub = table.subset(np.flatnonzero(known))
    track = evaluate(proba[known], sub, bundle.labels)["track"]
    return {"accuracy": track["accuracy"], "accuracy_ci": track["accuracy_ci"], "n": int(known.sum()),
            "from": "the musicnn authors' taggrams"}


def audio_answers(clf, files) -> list:
    """``(named genre, unknown flag)`` of each file, classified by the model as a user would."""
    out = []
    for path in files:
        p = clf.classify_file(path)
        out.append((p.label, p.unknown))
    return out


def gtzan_valid_audio(clf, data: Path) -> dict:
    """Accuracy on the shared GTZAN clips on the fault-filtered *valid* list, from audio."""
    from genrekit.datasets.gtzan import read_split_list
    from genrekit.evaluation.metrics import hit_rate_interval

    listed = set(read_split_list(data / "gtzan/splits/fault_filtered/valid_filtered.txt"))  # "blues.00000"
    files = sorted(p for p in (data / "gtzan/genres").glob("*/*.wav") if p.stem in listed)
    said = audio_answers(clf, files)
    hits = [named == f.parent.name for f, (named, _) in zip(files, said)]
    return {"accuracy": sum(hits) / len(hits), "accuracy_ci": hit_rate_interval(hits), "n": len(hits),
            "right": sum(hits), "from": "audio"}


def emotify(clf, bundle, data: Path) -> dict:
    """Accuracy on the 200 Emotify songs through the ready-made label map that fits the model."""
    from genrekit.evaluation.label_map import map_figures, read_label_map, shipped_map

    name = "emotify-electronic" if "electronic" in [str(x).lower() for x in bundle.labels] else "emotify-gtzan"
    root = data / "emotify"
    files = sorted(root.glob("*/*.mp3"))
    truth = [f.parent.name for f in files]
    lm = read_label_map(shipped_map(name)).resolve(bundle.labels, set(truth))
    said = audio_answers(clf, files)
    f = map_figures(truth, [n for n, _ in said], [u for _, u in said], lm)
    return {"accuracy": f["accuracy"], "accuracy_ci": f["accuracy_ci"], "n": f["n"], "right": f["right"],
            "from": f"audio, label map {name}", "map": name,
            "per_label": {k: {"n": v["n"], "right": v["right"], "counts_as": v["counts_as"],
                              "flagged_unknown": v["flagged_unknown"]} for k, v in f["per_label"].items()},
            "flagged_unknown": f["flagged_unknown"], "right_by_unknown": f["right_by_unknown"],
            "confusion": f["confusion"]}


def model_row(name: str, data: Path, log) -> dict:
    from genrekit.models.bundle import load_bundle
    from genrekit.models.registry import classifier, resolve_model

    bundle = load_bundle(resolve_model(name))
    clf = classifier(bundle, name)
    card = bundle.card
    trained = trained_on(card)
    row = {"model": name, "trained_on": card.get("data", "not stated"), "datasets_seen": trained,
           "labels": list(bundle.labels), "unknown_decision": bundle.unknown is not None, "cells": {}}
    for cell, compute in (("gtzan_test", lambda: gtzan_test(bundle, data)),
                          ("gtzan_valid_audio", lambda: gtzan_valid_audio(clf, data)),
                          ("emotify", lambda: emotify(clf, bundle, data))):
        started = time.perf_counter()
        if cell == "gtzan_test" and "not_computable" in (test := gtzan_test(bundle, data)):
            row["cells"][cell] = {**test, "seen_in_training": seen(cell, trained)}
        elif seen(cell, trained):
            dataset = "emotify" if cell == "emotify" else "gtzan"
            figure = card_cv(card, dataset) or evaluation_cv(bundle.metrics, dataset) or {}
            row["cells"][cell] = {**figure, "seen_in_training": True}
        else:
            row["cells"][cell] = compute()
        log(f"{name} · {cell}: {row['cells'][cell]} ({time.perf_counter() - started:.0f} s)")
    return row


def _pct(x) -> str:
    return f"{100 * x:.1f}"


def cell_text(c: dict) -> str:
    """One cell of the table."""
    if "not_computable" in c:
        return f"not computable ({c['not_computable']})" + (" · seen in training" if c.get("seen_in_training") else "")
    if "accuracy" not in c:
        return "seen in training (no held-out figure)"
    ci = c.get("accuracy_ci")
    text = f"**{_pct(c['accuracy'])}** [{_pct(ci[0])}, {_pct(ci[1])}]" if ci else f"**{_pct(c['accuracy'])}**"
    text += f", n={c['n']}" if c.get("n") is not None else ""
    if c.get("seen_in_training"):
        text += " · seen in training: " + c.get("from", "")
    return text


def section(cd: dict | None) -> list[str]:
    """The RESULTS.md section of ``docs/cross_dataset.json``."""
    if not cd:
        return []
    lines = ["## Across datasets: GTZAN and music from elsewhere", "",
             "`python scripts/cross_dataset_table.py` (every shipped model, from the registry). Track accuracy in "
             "percent, [95% bootstrap interval], n songs. GTZAN test: the 290 fault-filtered test clips from the "
             "musicnn authors' taggrams (computable only for models whose inputs are the 50 musicnn tags). "
             "GTZAN valid: the shared GTZAN clips on the fault-filtered *valid* list, classified from audio. "
             "Emotify: the 200 shared Magnatune songs (classical, electronic, pop, rock; artists GTZAN never "
             "had), classified from audio and scored through a label map (`genrekit evaluate --label-map`): for "
             "a model without an electronic genre, `emotify-gtzan` counts an electronic song right only when the "
             "model flags it unknown. A cell whose songs the model saw in training says so, and its figure is "
             "the model card's artist-grouped cross-validation (leave the dataset's artists out), never a "
             "score on training songs.", "",
             "| model | trained on | " + " | ".join(DATASETS.values()) + " |",
             "|---|---|" + "---|" * len(DATASETS)]
    for row in cd["models"]:
        lines.append(f"| `{row['model']}` | {row['trained_on']} | "
                     + " | ".join(cell_text(row["cells"][k]) for k in DATASETS) + " |")
    lines.append("")
    for row in cd["models"]:
        e = row["cells"].get("emotify", {})
        if "per_label" in e:
            parts = [f"{k} {v['right']}/{v['n']} (right when {v['counts_as']})" for k, v in e["per_label"].items()]
            flagged = (f"flagged unknown {e['flagged_unknown']} of {e['n']}" if row.get("unknown_decision", True)
                       else "the model has no unknown decision, so no electronic song can be right")
            lines.append(f"- `{row['model']}` on Emotify: " + "; ".join(parts) + f"; {flagged}.")
    lines.append("")
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT / "../shared/data")
    parser.add_argument("--out", type=Path, default=ROOT / "docs")
    parser.add_argument("--models", nargs="*", default=None,
                        help="recompute these shipped models' rows only, keeping the others' (default: all)")
    args = parser.parse_args(argv)
    from genrekit.models.registry import shipped_models

    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    names = args.models or shipped_models()
    rows = {name: model_row(name, args.data.resolve(), log) for name in names}
    out = args.out / "cross_dataset.json"
    if args.models and out.exists():  # the other models' rows are kept, in the registry's order
        kept = {row["model"]: row for row in json.loads(out.read_text())["models"]}
        rows = {name: rows.get(name) or kept[name] for name in [*shipped_models(), *names]
                if name in rows or name in kept}
    result = {"command": "python scripts/cross_dataset_table.py", "models": list(rows.values())}
    out.write_text(json.dumps(result, indent=1) + "\n")
    log(f"wrote {out}; now: python scripts/make_results.py --render-only")
    return 0


if __name__ == "__main__":
    sys.exit(main())
