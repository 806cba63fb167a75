"""Collect experiment runs and clusterings into the report's data model.

>>> from genrekit.report.build import build_report, load_run, load_cluster   # doctest: +SKIP
>>> report = build_report([load_run("runs/ff")], [load_cluster("clusters.json")])

Inputs (all written by genrekit itself, but read here as untrusted data):

- a **run folder** holding ``results.json`` (``genrekit train``,
  :mod:`genrekit.training.cnn`), and for CNN runs ``history.csv`` (the layout:
  :mod:`genrekit.training.run_folder`);
- a **cluster JSON** (``genrekit cluster --out``, :meth:`genrekit.evaluation.cluster.ClusterResult.to_dict`).

The data model is plain JSON-ready dicts (see :func:`load_run` and :func:`load_cluster`);
:mod:`genrekit.report.page` turns it into a page. Nothing here reads the clock: the same
inputs give the same model. Files named inside ``results.json`` (a model's history, its
bundle) are read only when they lie inside the run folder.
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from genrekit.errors import ReportError
from genrekit.training.run_folder import HISTORY_COLUMNS, RESULTS_JSON

__all__ = ["ReportError", "find_runs", "load_run", "load_cluster", "build_report", "run_inputs",
           "LEAK_NOTE"]

#: Shown for a leaky run whose results.json carries no warning of its own.
LEAK_NOTE = ("this run's split puts windows of one track on both sides: its figures are optimistic "
             "and not comparable with track-grouped splits")
#: Most reliability bins read from a results.json (genrekit writes 15).
MAX_BINS = 100
#: Most genres of a several-genre model's figures read from a results.json.
MAX_GENRES = 500


# --- reading -----------------------------------------------------------------------------------------
def _read_json(path: Path) -> Any:
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except FileNotFoundError:
        raise ReportError(f"{path}: not found") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ReportError(f"{path}: not valid JSON ({exc})") from None
    except OSError as exc:
        raise ReportError(f"{path}: cannot read ({exc.strerror or exc})") from None


def _clean(value: Any) -> Any:
    """JSON-ready copy: non-finite floats become None (``JSON.parse`` refuses NaN), keys strings."""
    if isinstance(value, Mapping):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, (str, int, bool)):
        return value
    return str(value)


def _inside(folder: Path, name: Any) -> Path | None:
    """``folder / name`` when ``name`` is a relative path that stays inside ``folder``, else None."""
    if not isinstance(name, str) or not name or "\x00" in name:
        return None
    candidate = Path(name)
    if candidate.is_absolute():
        return None
    root = folder.resolve()
    try:
        target = (root / candidate).resolve()
    except (OSError, RuntimeError):
        return None
    return target if target == root or root in target.parents else None


def _number(text: str) -> float | int | None:
    text = (text or "").strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    if not math.isfinite(value):
        return None
    return int(value) if value.is_integer() and "." not in text and "e" not in text.lower() else value


def _read_history(path: Path) -> dict[str, list] | None:
    """``history.csv`` as columns (``{"epoch": [...], "train_loss": [...], ...}``); None when absent."""
    try:
        with open(path, encoding="utf-8", newline="") as fh:
            rows = list(csv.DictReader(fh))
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ReportError(f"{path}: cannot read the training history ({exc})") from None
    if not rows:
        return None
    columns = [c for c in HISTORY_COLUMNS if c in rows[0]]
    if "epoch" not in columns:
        raise ReportError(f"{path}: not a training history (no 'epoch' column)")
    return {c: [_number(row.get(c, "")) for row in rows] for c in columns}


# --- runs --------------------------------------------------------------------------------------------
def find_runs(root: str | os.PathLike, *, max_depth: int = 6, limit: int = 10_000) -> dict[str, Path]:
    """Run folders (folders holding ``results.json``) under ``root``, by name.

    Parameters
    ----------
    root : path
        Folder to search; it may itself be a run.
    max_depth : int
        Levels of sub-folders searched below ``root``.
    limit : int
        Most runs returned (the search stops there).

    Returns
    -------
    dict
        ``{name: folder}`` sorted by name; a name is the folder's path relative to
        ``root`` with ``/`` separators (``"."`` becomes ``root``'s own name). Symbolic
        links to folders are not followed; hidden folders and :data:`genrekit.models.registry.SKIP_DIRS` are skipped
        (:func:`genrekit.models.registry.find_runs`).
    """
    from genrekit.models.registry import find_runs as find_run_folders, relative_name

    root = Path(root)
    if not root.is_dir():
        raise ReportError(f"{root}: not a folder")
    found = {relative_name(folder, root): folder for folder in find_run_folders(root, max_depth=max_depth, limit=limit)}
    return dict(sorted(found.items()))


def run_inputs(run_dir: str | os.PathLike) -> list[Path]:
    """The files a run's report is made from (``results.json``, histories): for caches keyed by mtime."""
    run_dir = Path(run_dir)
    files = [run_dir / RESULTS_JSON]
    try:
        results = _read_json(run_dir / RESULTS_JSON)
    except ReportError:
        return files
    for _, entry in _model_items(results):
        path = _history_path(run_dir, entry)
        if path is not None and path not in files:
            files.append(path)
    return files


def _model_items(results: Any) -> list[tuple[str, Mapping]]:
    models = results.get("models") if isinstance(results, Mapping) else None
    if not isinstance(models, Mapping):
        return []
    return [(str(name), entry) for name, entry in models.items() if isinstance(entry, Mapping)]


def _history_path(run_dir: Path, entry: Mapping) -> Path | None:
    name = entry.get("history")
    if name is not None:
        return _inside(run_dir, name)
    return None


def _eval(value: Any) -> dict | None:
    """An :func:`genrekit.evaluation.metrics.evaluate` dict, cleaned; None unless it has track- or window-level figures."""
    if not isinstance(value, Mapping):
        return None
    out = _clean(value)
    levels = [lv for lv in ("track", "window") if isinstance(out.get(lv), dict)]
    if not levels:
        return None
    for level in levels:
        figs = out[level]
        if not isinstance(figs.get("accuracy"), (int, float)):
            figs["accuracy"] = None
        for key in ("accuracy_ci", "macro_f1_ci"):
            ci = figs.get(key)
            if not (isinstance(ci, list) and len(ci) == 2 and all(isinstance(x, (int, float)) for x in ci)):
                figs[key] = None
        if not isinstance(figs.get("per_genre"), dict):
            figs["per_genre"] = {}
        figs["ece"] = _share(figs.get("ece"))
        figs["reliability"] = _reliability(figs.get("reliability"))
    labels = out.get("labels")
    if not (isinstance(labels, list) and all(isinstance(x, str) for x in labels)):
        first = out[levels[0]]
        out["labels"] = list(first.get("per_genre", {}))
    return out


def _share(value: Any) -> float | None:
    """A number in [0, 1] (a probability, an accuracy, an ECE), else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value) if 0.0 <= value <= 1.0 else None


def _reliability(value: Any) -> list[dict] | None:
    """Reliability bins (:func:`genrekit.models.calibration.reliability`), checked; None unless every bin is sound.

    A bin is ``{low, high, n, confidence, accuracy}`` with ``0 <= low < high <= 1``, ``n`` a positive
    count and ``confidence``, ``accuracy`` in [0, 1] (the mean confidence inside ``[low, high]``); bins
    do not overlap. One bad bin drops the whole diagram: a diagram with holes would misstate the error.
    """
    if not isinstance(value, list) or not 0 < len(value) <= MAX_BINS:
        return None
    bins = []
    for item in value:
        if not isinstance(item, Mapping):
            return None
        low, high = _share(item.get("low")), _share(item.get("high"))
        conf, acc = _share(item.get("confidence")), _share(item.get("accuracy"))
        n = item.get("n")
        if (None in (low, high, conf, acc) or isinstance(n, bool) or not isinstance(n, int) or n <= 0
                or not low < high or not low - 1e-9 <= conf <= high + 1e-9):
            return None
        bins.append({"low": low, "high": high, "n": n, "confidence": conf, "accuracy": acc})
    bins.sort(key=lambda b: b["low"])
    if any(a["high"] > b["low"] + 1e-9 for a, b in zip(bins, bins[1:])):
        return None
    return bins


def _multilabel(value: Any) -> dict | None:
    """The test figures of a model of several genres per song (:func:`genrekit.training.own_genres.multilabel_metrics`),
    checked: ``{n_tracks, subset_accuracy, mean_average_precision, macro_f1, per_genre: {genre: {f1,
    support}}}``; None unless ``n_tracks`` is a positive count, ``subset_accuracy`` a share and every
    genre's F1 a share with a count of songs (at most :data:`MAX_GENRES` genres): one bad genre
    drops the figure, whose bars would otherwise misstate the model. ``mean_average_precision`` and
    ``macro_f1`` are None when absent or not shares."""
    if not isinstance(value, Mapping):
        return None
    n, subset, per = value.get("n_tracks"), _share(value.get("subset_accuracy")), value.get("per_genre")
    if (isinstance(n, bool) or not isinstance(n, int) or n <= 0 or subset is None
            or not isinstance(per, Mapping) or not 0 < len(per) <= MAX_GENRES):
        return None
    genres = {}
    for genre, item in per.items():
        f1 = _share(item.get("f1")) if isinstance(item, Mapping) else None
        support = item.get("support") if isinstance(item, Mapping) else None
        if (f1 is None or isinstance(support, bool) or not isinstance(support, int) or not 0 <= support <= n
                or not isinstance(genre, str) or not genre):
            return None
        genres[genre] = {"f1": f1, "support": support}
    return {"n_tracks": n, "subset_accuracy": subset,
            "mean_average_precision": _share(value.get("mean_average_precision")),
            "macro_f1": _share(value.get("macro_f1")), "per_genre": genres}


def _cv(value: Any) -> dict | None:
    if not isinstance(value, Mapping):
        return None
    out = _clean(value)
    out["pooled"] = _eval(value.get("pooled"))
    folds = out.get("fold_track_accuracy")
    out["fold_track_accuracy"] = [x for x in folds if isinstance(x, (int, float))] if isinstance(folds, list) else []
    return out


def _iso_date(value: Any) -> str | None:
    """An ISO 8601 timestamp (UTC, seconds) from an ISO string or Unix seconds, else None."""
    if isinstance(value, (int, float)) and math.isfinite(value) and value > 0:
        return datetime.fromtimestamp(value, tz=timezone.utc).isoformat(timespec="seconds")
    if isinstance(value, str):
        try:
            stamp = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        if stamp.tzinfo is None:
            stamp = stamp.replace(tzinfo=timezone.utc)
        return stamp.astimezone(timezone.utc).isoformat(timespec="seconds")
    return None


def _bundle_created(run_dir: Path, entry: Mapping) -> str | None:
    folder = _inside(run_dir, entry.get("bundle")) if entry.get("bundle") else None
    if folder is None:
        return None
    try:
        meta = _read_json(folder / "bundle.json")
    except ReportError:
        return None
    card = meta.get("card") if isinstance(meta, Mapping) else None
    return _iso_date(card.get("created")) if isinstance(card, Mapping) else None


def _data_summary(results: Mapping) -> dict:
    data = results.get("data")
    if isinstance(data, Mapping):
        out = {k: _clean(data.get(k)) for k in ("source", "n_rows", "n_tracks", "n_features")}
        fs = data.get("feature_set")
        if isinstance(fs, Mapping):
            out["feature_set"] = str(fs.get("name", ""))
            window = fs.get("window")
            out["window"] = window if isinstance(window, (int, float)) and math.isfinite(window) else None
        else:
            out["feature_set"] = str(fs) if fs else None
            out["window"] = None
        return out
    return {"source": str(data) if data is not None else None, "n_rows": None,
            "n_tracks": _clean(results.get("n_tracks")) if isinstance(results.get("n_tracks"), int) else None,
            "n_features": None, "feature_set": None, "window": None}


def _split_summary(results: Mapping) -> dict:
    split = results.get("split") if isinstance(results.get("split"), Mapping) else {}
    sizes = split.get("sizes") if isinstance(split.get("sizes"), Mapping) else {}
    return {
        "name": str(split.get("name", "")) or None,
        "description": str(split.get("description", "")) or None,
        "leaky": bool(split.get("leaky", False)),
        "folds": split.get("folds") if isinstance(split.get("folds"), int) else None,
        "sizes": _clean(sizes),
    }


def _params(value: Any) -> dict:
    return _clean(value) if isinstance(value, Mapping) else {}


def load_run(path: str | os.PathLike, name: str | None = None) -> dict:
    """Read one run folder (or its ``results.json``) into the report's data model.

    Parameters
    ----------
    path : path
        A run folder holding ``results.json``, or the ``results.json`` file itself.
    name : str, optional
        Name shown for the run (default: the folder's name).

    Returns
    -------
    dict
        ``name``, ``path``, ``kind`` (``"classical"``, ``"cnn"`` or ``"mixed"``), ``data``
        (``source``, ``n_rows``, ``n_tracks``, ``n_features``, ``feature_set``, ``window``),
        ``split`` (``name``, ``description``, ``leaky``, ``folds``, ``sizes``), ``leaky``,
        ``warning`` (str or None; always set for a leaky run), ``selected``, ``selected_by``,
        ``command``, ``date`` (the run's own timestamp, from its bundles or history, or None)
        and ``models``: a list of ``{name, kind, selected, valid, test, cv, params, history,
        seconds, multilabel}`` where ``valid``/``test`` are :func:`genrekit.evaluation.metrics.evaluate` dicts
        (per level, ``ece`` and ``reliability`` are checked: None unless sound, see :func:`_reliability`),
        ``cv`` the k-fold summary with its ``pooled`` evaluation, ``multilabel`` the test figures of
        a model of several genres per song (:func:`_multilabel`; None for other models), and
        ``history`` the training history as columns (CNN runs) or None.

    Raises
    ------
    ReportError
        If ``results.json`` is missing, not JSON, or has no ``models``.
    """
    path = Path(path)
    results_path = path if path.name == RESULTS_JSON and path.is_file() else path / RESULTS_JSON
    run_dir = results_path.parent
    results = _read_json(results_path)
    if not isinstance(results, Mapping) or not isinstance(results.get("models"), Mapping):
        raise ReportError(f"{results_path}: not a genrekit results.json (expected an object with \"models\")")

    split = _split_summary(results)
    leaky = bool(results.get("leaky", False)) or split["leaky"]
    warning = results.get("warning")
    warning = str(warning) if warning else (LEAK_NOTE if leaky else None)
    selected = results.get("selected")
    selected = str(selected) if selected is not None else None

    models, dates = [], []
    for model_name, entry in _model_items(results):
        history = None
        history_file = _history_path(run_dir, entry)
        if history_file is not None:
            history = _read_history(history_file)
        kind = "cnn" if history is not None or entry.get("history") or model_name.startswith("cnn") else "classical"
        created = _bundle_created(run_dir, entry)
        if created:
            dates.append(created)
        elif history and history.get("finished"):
            stamp = _iso_date(max((x for x in history["finished"] if x is not None), default=None))
            if stamp:
                dates.append(stamp)
        seconds = entry.get("seconds")
        models.append({
            "name": model_name,
            "kind": kind,
            "selected": model_name == selected,
            "valid": _eval(entry.get("valid")),
            "test": _eval(entry.get("test")),
            "multilabel": _multilabel(entry.get("test")),
            "cv": _cv(entry.get("cv")),
            "params": _params(entry.get("params")),
            "history": history,
            "seconds": seconds if isinstance(seconds, (int, float)) and math.isfinite(seconds) else None,
        })
    kinds = sorted({m["kind"] for m in models})
    command = results.get("command")
    return {
        "name": name if name is not None else (run_dir.resolve().name or str(run_dir)),
        "path": str(run_dir),
        "kind": kinds[0] if len(kinds) == 1 else ("mixed" if kinds else "classical"),
        "data": _data_summary(results),
        "split": split,
        "leaky": leaky,
        "warning": warning,
        "selected": selected,
        "selected_by": str(results["selected_by"]) if results.get("selected_by") and selected else None,
        "command": str(command) if command else None,
        "date": max(dates) if dates else None,
        "models": models,
    }


# --- clusters ----------------------------------------------------------------------------------------
def load_cluster(path: str | os.PathLike, name: str | None = None) -> dict:
    """Read a ``genrekit cluster --out`` JSON file into the report's data model.

    Returns
    -------
    dict
        ``name``, ``path``, ``source``, ``method``, ``k``, ``n_rows``, ``n_tracks``, ``ari``,
        ``nmi``, ``purity``, ``table`` (``clusters``, ``genres``, ``counts``), ``explained_variance``
        (3 ratios) and ``points`` as columns: ``x``, ``y``, ``z``, ``genre``, ``cluster``, ``track``.

    Raises
    ------
    ReportError
        If the file is not a cluster JSON (missing table or PCA points, inconsistent sizes).
    """
    path = Path(path)
    raw = _read_json(path)
    bad = lambda what: ReportError(f"{path}: not a genrekit cluster file ({what})")  # noqa: E731
    if not isinstance(raw, Mapping):
        raise bad("expected a JSON object")
    table, pca = raw.get("table"), raw.get("pca")
    if not isinstance(table, Mapping) or not isinstance(pca, Mapping):
        raise bad("no \"table\" or \"pca\"")
    genres = [str(g) for g in table.get("genres") or []]
    clusters = list(table.get("clusters") or [])
    counts = table.get("counts") or []
    if (not genres or not isinstance(counts, list) or len(counts) != len(clusters)
            or any(not isinstance(row, list) or len(row) != len(genres) for row in counts)):
        raise bad("the cluster × genre table's sizes do not match")
    points = pca.get("points")
    if not isinstance(points, list):
        raise bad("no PCA points")
    cols: dict[str, list] = {"x": [], "y": [], "z": [], "genre": [], "cluster": [], "track": []}
    for i, p in enumerate(points):
        if not isinstance(p, Mapping):
            raise bad(f"point {i} is not an object")
        try:
            xyz = [float(p[c]) for c in ("x", "y", "z")]
            cluster = int(p["cluster"])
        except (KeyError, TypeError, ValueError):
            raise bad(f"point {i} lacks numeric x, y, z or cluster") from None
        for c, v in zip("xyz", xyz):
            cols[c].append(round(v, 5) if math.isfinite(v) else None)
        cols["genre"].append(str(p.get("genre", "")))
        cols["cluster"].append(cluster)
        cols["track"].append(str(p.get("track", p.get("row", ""))))
    variance = pca.get("explained_variance_ratio") or []
    variance = [float(v) if isinstance(v, (int, float)) and math.isfinite(v) else None for v in variance][:3]
    def num(key):
        value = raw.get(key)
        return value if isinstance(value, (int, float)) and math.isfinite(value) else None

    n_rows = raw.get("n_rows") if isinstance(raw.get("n_rows"), int) else len(points)
    return {
        "name": name if name is not None else path.name,
        "path": str(path),
        "source": str(raw.get("source") or ""),
        "method": str(raw.get("method") or ""),
        "k": raw.get("k") if isinstance(raw.get("k"), int) else len(clusters),
        "n_rows": n_rows,
        "n_tracks": raw.get("n_tracks") if isinstance(raw.get("n_tracks"), int) else None,
        "ari": num("ari"),
        "nmi": num("nmi"),
        "purity": num("purity"),
        "table": {"clusters": [_clean(c) for c in clusters], "genres": genres,
                  "counts": [[int(n) if isinstance(n, (int, float)) else 0 for n in row] for row in counts]},
        "explained_variance": variance,
        "points": cols,
    }


# --- the report ---------------------------------------------------------------------------------------
def _unique(names: Sequence[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for name in names:
        n = seen.get(name, 0) + 1
        seen[name] = n
        out.append(name if n == 1 else f"{name} ({n})")
    return out


def build_report(runs: Iterable[Mapping] = (), clusters: Iterable[Mapping] = (), *, title: str | None = None) -> dict:
    """The report's data model: runs from :func:`load_run`, clusterings from :func:`load_cluster`.

    Names are made unique (``"run (2)"``) and every item gets an HTML id (``run-1``,
    ``cluster-1``) in the order given.
    """
    runs = [dict(r) for r in runs]
    clusters = [dict(c) for c in clusters]
    if not runs and not clusters:
        raise ReportError("nothing to report: give at least one run folder or cluster file")
    for i, (run, unique) in enumerate(zip(runs, _unique([r["name"] for r in runs])), 1):
        run["name"], run["id"] = unique, f"run-{i}"
    for i, (item, unique) in enumerate(zip(clusters, _unique([c["name"] for c in clusters])), 1):
        item["name"], item["id"] = unique, f"cluster-{i}"
    if title is None:
        if len(runs) == 1 and not clusters:
            title = f"genrekit report: {runs[0]['name']}"
        else:
            title = "genrekit experiment report"
    return {"title": title, "runs": runs, "clusters": clusters, "leaky": any(r["leaky"] for r in runs)}
