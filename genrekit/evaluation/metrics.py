"""Honest evaluation: window- and track-level metrics, bootstrap intervals, ``results.json``.

A track's prediction is the argmax of the mean of its windows' probabilities. Every
figure is reported at both levels, with the number of tracks it rests on, and accuracy
and macro-F1 carry a 95% bootstrap interval in which *tracks* are resampled (windows of
one track are not independent evidence, so resampling windows would give intervals
that are too narrow).

Models are chosen on the validation set only (:func:`select_model`); test figures are
reported, never used to choose.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from genrekit._io import jsonable, write_json_atomic
from genrekit.errors import ParameterError

__all__ = [
    "aggregate_tracks", "evaluate", "split_summary", "model_entry", "results_json",
    "select_model", "write_json_atomic", "SELECTED_BY", "hit_rate_interval",
]

SELECTED_BY = "valid accuracy (track level; ties: window level)"
N_BOOTSTRAP = 1000
CONFIDENCE = 0.95
#: Equal-width bins of the expected calibration error (Guo et al. 2017).
ECE_BINS = 15


def aggregate_tracks(proba: np.ndarray, tracks: Sequence) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean window probabilities per track.

    Parameters
    ----------
    proba : ndarray, shape (n_windows, n_labels)
    tracks : sequence, shape (n_windows,)
        Track id of each window.

    Returns
    -------
    track_ids : ndarray, shape (n_tracks,)
        In order of first appearance.
    track_proba : ndarray, shape (n_tracks, n_labels)
    index : ndarray of int, shape (n_windows,)
        Position in ``track_ids`` of each window's track.
    """
    proba = np.asarray(proba, dtype=np.float64)
    tracks = np.asarray(tracks)
    _, first, inverse = np.unique(tracks, return_index=True, return_inverse=True)
    order = np.argsort(first)  # unique() sorts ids; keep the order tracks appear in
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    index = rank[inverse.ravel()]
    sums = np.zeros((len(order), proba.shape[1]))
    np.add.at(sums, index, proba)
    counts = np.bincount(index, minlength=len(order))
    return tracks[np.sort(first)], sums / counts[:, None], index


# --- the metrics ---------------------------------------------------------------------
def _counts(y_true: np.ndarray, y_pred: np.ndarray, k: int) -> np.ndarray:
    """Confusion matrix (rows true, columns predicted) of integer label codes."""
    return np.bincount(y_true * k + y_pred, minlength=k * k).reshape(k, k)


def _f1_parts(tp: np.ndarray, n_pred: np.ndarray, n_true: np.ndarray) -> np.ndarray:
    """Per-class F1 (last axis) from true-positive, predicted and true counts; 0 where undefined."""
    denom = n_pred + n_true
    return np.divide(2.0 * tp, denom, out=np.zeros(np.shape(tp)), where=denom > 0)


def _macro_f1(tp, n_pred, n_true) -> np.ndarray:
    """Mean F1 over the classes that occur (as truth or prediction), like scikit-learn's default."""
    present = (n_pred + n_true) > 0
    f1 = _f1_parts(tp, n_pred, n_true)
    return np.sum(f1, axis=-1) / np.maximum(np.sum(present, axis=-1), 1)


def _level_metrics(true: np.ndarray, pred: np.ndarray, labels: list[str]) -> dict[str, Any]:
    k = len(labels)
    conf = _counts(true, pred, k)
    tp, n_pred, n_true = np.diag(conf), conf.sum(axis=0), conf.sum(axis=1)
    precision = np.divide(tp, n_pred, out=np.zeros(k), where=n_pred > 0)
    recall = np.divide(tp, n_true, out=np.zeros(k), where=n_true > 0)
    f1 = _f1_parts(tp, n_pred, n_true)
    supported = n_true > 0
    return {
        "accuracy": float(tp.sum() / max(len(true), 1)),
        "balanced_accuracy": float(recall[supported].mean()) if supported.any() else 0.0,
        "macro_f1": float(_macro_f1(tp, n_pred, n_true)),
        "per_genre": {
            label: {"precision": float(precision[i]), "recall": float(recall[i]),
                    "f1": float(f1[i]), "support": int(n_true[i])}
            for i, label in enumerate(labels)
        },
        "confusion": conf.tolist(),
    }


def _bootstrap(true, pred, track_index, n_tracks, k, rng, n_boot, top=None, bins=ECE_BINS,
               chunk=200) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Accuracy, macro-F1 and (given each row's top probability ``top``) the expected
    calibration error of ``n_boot`` resamples of whole tracks.

    Each resample draws ``n_tracks`` tracks with replacement and keeps all their rows;
    per-track tallies make that a matrix product instead of a loop over resamples. The ECE
    of a resample is ``sum over bins |hits - confidences| / rows``, from per-track, per-bin sums.
    """
    hit = np.bincount(track_index, weights=(true == pred), minlength=n_tracks)
    rows = np.bincount(track_index, minlength=n_tracks).astype(float)
    tally = np.zeros((3, n_tracks, k))  # true positives, predictions, truths per track and class
    np.add.at(tally[0], (track_index, true), true == pred)
    np.add.at(tally[1], (track_index, pred), 1.0)
    np.add.at(tally[2], (track_index, true), 1.0)
    if top is not None:
        which = np.clip(np.searchsorted(np.linspace(0.0, 1.0, bins + 1), top, side="left") - 1, 0, bins - 1)
        gap = np.zeros((n_tracks, bins))  # per track and bin: hits minus confidences
        np.add.at(gap, (track_index, which), (true == pred) - np.asarray(top, dtype=float))
    acc, f1, ece = [], [], []
    for start in range(0, n_boot, chunk):
        m = rng.multinomial(n_tracks, np.full(n_tracks, 1.0 / n_tracks), size=min(chunk, n_boot - start))
        acc.append((m @ hit) / (m @ rows))
        tp, n_pred, n_true = (m @ t for t in tally)
        f1.append(_macro_f1(tp, n_pred, n_true))
        if top is not None:
            ece.append(np.abs(m @ gap).sum(axis=1) / (m @ rows))
    return np.concatenate(acc), np.concatenate(f1), (np.concatenate(ece) if ece else None)


def _interval(samples: np.ndarray, confidence: float) -> list[float]:
    tail = (1.0 - confidence) / 2.0 * 100.0
    lo, hi = np.percentile(samples, [tail, 100.0 - tail])
    return [float(lo), float(hi)]


def hit_rate_interval(hits, *, n_bootstrap: int = N_BOOTSTRAP, confidence: float = CONFIDENCE,
                      seed: int = 0) -> list[float]:
    """The bootstrap interval of a share of right answers, one per song (``hits``: 1 right, 0 wrong),
    songs resampled with replacement as :func:`evaluate` resamples tracks; ``[0, 0]`` for no songs."""
    hits = np.asarray(hits, dtype=float)
    if len(hits) == 0:
        return [0.0, 0.0]
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(len(hits), np.full(len(hits), 1.0 / len(hits)), size=n_bootstrap)
    return _interval(draws @ hits / len(hits), confidence)


def evaluate(
    proba: np.ndarray,
    table_subset,
    labels: Sequence[str],
    *,
    n_bootstrap: int = N_BOOTSTRAP,
    confidence: float = CONFIDENCE,
    seed: int = 0,
) -> dict[str, Any]:
    """Window- and track-level metrics of predicted probabilities.

    Parameters
    ----------
    proba : ndarray, shape (n_windows, n_labels)
        Predicted probabilities, columns in ``labels`` order.
    table_subset : FeatureTable
        The rows ``proba`` was predicted for; its ``labels`` (true genre per row) and
        ``tracks`` (track id per row) are used. Any object with those attributes works.
    labels : sequence of str
        Genre names in column order.
    n_bootstrap : int
        Bootstrap resamples of whole tracks.
    confidence : float
        Coverage of the bootstrap intervals.
    seed : int
        Seed of the resampling: equal inputs give equal intervals.

    Returns
    -------
    dict
        ``n_windows``, ``n_tracks``, ``labels``, ``bootstrap`` (settings), and for
        ``"window"`` and ``"track"``: ``accuracy``, ``accuracy_ci`` ([low, high]),
        ``balanced_accuracy``, ``macro_f1``, ``macro_f1_ci``, ``per_genre``
        (``{genre: {precision, recall, f1, support}}``) and ``confusion`` (rows true,
        columns predicted, both in ``labels`` order), ``ece`` (expected calibration error of the
        top genre's probability, :data:`ECE_BINS` equal-width bins; ``ece_ci`` its bootstrap interval)
        and ``reliability`` (those
        bins: ``low``, ``high``, ``n``, mean ``confidence``, ``accuracy``). Macro-F1 averages over genres that
        occur as truth or prediction. Track level: a track's probabilities are the mean
        of its windows', its prediction their argmax.
    """
    labels = [str(x) for x in labels]
    proba = np.asarray(proba, dtype=np.float64)
    truth = np.asarray(table_subset.labels).astype(str)
    tracks = np.asarray(table_subset.tracks)
    if proba.ndim != 2 or proba.shape != (len(truth), len(labels)):
        raise ParameterError(f"expected probabilities of shape ({len(truth)}, {len(labels)}), got {proba.shape}")
    if len(tracks) != len(truth):
        raise ParameterError(f"{len(tracks)} track ids for {len(truth)} rows")
    if len(truth) == 0:
        raise ParameterError("nothing to evaluate: no rows")
    code = {label: i for i, label in enumerate(labels)}
    unknown = sorted(set(truth) - set(code))
    if unknown:
        raise ParameterError(f"true labels not among the model's labels: {', '.join(unknown)}")
    true = np.array([code[t] for t in truth])

    track_ids, track_proba, index = aggregate_tracks(proba, tracks)
    track_true = np.zeros(len(track_ids), dtype=int)
    track_true[index] = true
    mixed = np.flatnonzero(np.bincount(index, weights=track_true[index] != true, minlength=len(track_ids)))
    if len(mixed):
        raise ParameterError(f"track {track_ids[mixed[0]]!r} has windows with different true labels")

    rng = np.random.default_rng(seed)
    result: dict[str, Any] = {
        "n_windows": int(len(truth)),
        "n_tracks": int(len(track_ids)),
        "labels": labels,
        "bootstrap": {"unit": "track", "resamples": int(n_bootstrap), "confidence": confidence, "seed": seed},
    }
    levels = {
        "window": (true, proba.argmax(axis=1), index, proba),
        "track": (track_true, track_proba.argmax(axis=1), np.arange(len(track_ids)), track_proba),
    }
    from genrekit.models.calibration import reliability

    for level, (t, p, idx, probs) in levels.items():
        figs = _level_metrics(t, p, labels)
        curve = reliability(probs, t, ECE_BINS)
        figs["ece"] = curve["ece"]
        figs["reliability"] = curve["bins"]
        acc, f1, ece = _bootstrap(t, p, idx, len(track_ids), len(labels), rng, n_bootstrap, probs.max(axis=1))
        figs["accuracy_ci"] = _interval(acc, confidence)
        figs["macro_f1_ci"] = _interval(f1, confidence)
        figs["ece_ci"] = _interval(ece, confidence)
        result[level] = figs
    return result


# --- results.json ------------------------------------------------------------------------
def split_summary(split, table) -> dict[str, Any]:
    """The ``"split"`` entry of ``results.json``: what the split is and how much it holds.

    Parameters
    ----------
    split : Split
        With ``name``, ``description``, ``leaky``, ``fold`` and row-index arrays
        ``train``, ``valid`` (or None), ``test``.
    table : FeatureTable
        The table the indices refer to (for track counts).
    """
    tracks = np.asarray(table.tracks)
    sizes = {}
    for part in ("train", "valid", "test"):
        rows = getattr(split, part)
        if rows is not None:
            rows = np.asarray(rows, dtype=int)
            sizes[part] = {"windows": int(len(rows)), "tracks": int(len(np.unique(tracks[rows])))}
    return {
        "name": split.name,
        "description": split.description,
        "leaky": bool(split.leaky),
        "fold": getattr(split, "fold", None),
        "sizes": sizes,
    }


def model_entry(*, valid: dict | None = None, test: dict | None = None, cv: dict | None = None,
                params: dict | None = None, **extra) -> dict[str, Any]:
    """One model's entry under ``"models"``: :func:`evaluate` results and training info."""
    return jsonable({"valid": valid, "test": test, "cv": cv, "params": params or {}, **extra})


def results_json(split_info: Mapping[str, Any], models: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Assemble ``results.json``.

    Parameters
    ----------
    split_info : dict
        From :func:`split_summary`.
    models : dict
        ``{model name: model_entry(...)}``.

    Returns
    -------
    dict
        ``{"split", "models", "selected", "selected_by", "leaky"}``; ``selected`` is
        :func:`select_model`'s choice, or None when there is no validation set.
    """
    results = {
        "split": dict(split_info),
        "models": {name: dict(entry) for name, entry in models.items()},
        "selected": None,
        "selected_by": SELECTED_BY,
        "leaky": bool(split_info.get("leaky", False)),
    }
    if any(_valid_figures(entry) for entry in results["models"].values()):
        results["selected"] = select_model(results)
    return jsonable(results)


def _valid_figures(entry: Mapping[str, Any]) -> tuple[float, float] | None:
    valid = entry.get("valid")
    if not isinstance(valid, Mapping):
        return None
    track = (valid.get("track") or {}).get("accuracy")
    window = (valid.get("window") or {}).get("accuracy")
    if track is None and window is None:
        return None
    return (track if track is not None else window, window if window is not None else track)


def select_model(results: Mapping[str, Any]) -> str:
    """The model with the best validation accuracy; test figures are never read.

    Track-level accuracy decides; ties go to window-level accuracy, then to the model
    listed first.

    Raises
    ------
    genrekit.errors.ParameterError
        If no model has validation figures (choosing on test figures would make them
        optimistic; make a split with a validation set, or choose by CV score yourself).
    """
    models = results.get("models", results)
    best, best_key = None, None
    for name, entry in models.items():
        key = _valid_figures(entry)
        if key is not None and (best_key is None or key > best_key):
            best, best_key = name, key
    if best is None:
        raise ParameterError("no model has validation figures: cannot select without a validation set")
    return best
