"""Genres the backbone's tags give evidence for, beyond the genres a head was trained on.

MSD-musicnn's 50 tags were learned from ~200k Million Song Dataset songs (Pons & Serra 2019). Some
of them name genres and styles a head trained on GTZAN never saw: "electronic", "ambient", "hard
rock", "punk", "folk" ... A bundle may store **rules** that turn such tags into additional genres:

    "tag_genres": [{"genre": "Electronic", "tags": ["electronic", "electronica", "electro"],
                    "threshold": 0.21, "evidence": {...}}, ...]

A rule fires when the strongest of its tags, as the song's mean over its patches (a probability, 0
to 1), reaches ``threshold``. Fired genres are **added** to the prediction's ``genres``, after the
genres the head names (its label, or its genres above threshold), best margin first; they never
replace or reorder what the head measured. ``evidence`` says how far each rule can be trusted:
which data it was measured on (dataset, split, positives and negatives, artists), AUROC with a 95 %
bootstrap interval, precision and recall at ``threshold`` under artist-grouped cross-validation, or
``{"measured": false, "why": ...}``. ``scripts/tag_genre_evidence.py`` measures and stores them.

A ``bundle.json`` comes from anywhere, so :func:`check_tag_genres` reads this field as untrusted
data: bounded sizes, known tags only, finite thresholds, plain JSON values in ``evidence``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

__all__ = ["MAX_RULES", "check_tag_genres", "fired_genres"]

#: At most this many rules in one bundle, and this many tags in one rule.
MAX_RULES, MAX_TAGS = 64, 16
#: Names and evidence texts are at most this long; evidence holds at most this many fields.
MAX_TEXT, MAX_FIELDS = 300, 32


def _plain(value, depth: int = 0) -> bool:
    """Whether ``value`` is small plain JSON: strings, finite numbers, booleans, null, short lists and
    flat objects of those (two levels at most)."""
    if value is None or isinstance(value, bool):
        return True
    if isinstance(value, str):
        return len(value) <= MAX_TEXT
    if isinstance(value, (int, float)):
        return math.isfinite(value)
    if depth >= 2:
        return False
    if isinstance(value, list):
        return len(value) <= MAX_FIELDS and all(_plain(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return (len(value) <= MAX_FIELDS and all(isinstance(k, str) and len(k) <= MAX_TEXT for k in value)
                and all(_plain(v, depth + 1) for v in value.values()))
    return False


def check_tag_genres(rules, tags: Sequence[str], labels: Sequence[str] = ()) -> str | None:
    """The problem with a bundle's stored ``tag_genres`` (``None``: none).

    Parameters
    ----------
    rules : object
        The field as read from ``bundle.json``.
    tags : sequence of str
        The backbone's tag names, the only tags a rule may name.
    labels : sequence of str
        The bundle's own genres: a rule may not name one of them (it would shadow a measured label).
    """
    if not isinstance(rules, list) or len(rules) > MAX_RULES:
        return f"tag_genres must be a list of at most {MAX_RULES} rules"
    known, seen = set(tags), set()
    taken = {str(g).casefold() for g in labels}
    for i, rule in enumerate(rules):
        where = f"tag_genres[{i}]"
        if not isinstance(rule, dict) or set(rule) - {"genre", "tags", "threshold", "evidence"}:
            return f"{where} must be an object with genre, tags, threshold and evidence"
        genre = rule.get("genre")
        if not isinstance(genre, str) or not genre.strip() or len(genre) > 100 or not genre.isprintable():
            return f"{where}.genre must be a printable name of at most 100 characters"
        if genre.casefold() in taken or genre.casefold() in seen:
            return f"{where}.genre {genre!r} is already one of the bundle's genres or rules"
        seen.add(genre.casefold())
        names = rule.get("tags")
        if (not isinstance(names, list) or not 1 <= len(names) <= MAX_TAGS
                or not all(isinstance(t, str) and t in known for t in names)):
            return f"{where}.tags must be 1 to {MAX_TAGS} of the backbone's tag names"
        threshold = rule.get("threshold")
        if (not isinstance(threshold, (int, float)) or isinstance(threshold, bool)
                or not math.isfinite(threshold) or not 0 < threshold <= 1):
            return f"{where}.threshold must be a number in (0, 1]"
        if not isinstance(rule.get("evidence", {}), dict) or not _plain(rule.get("evidence", {})):
            return f"{where}.evidence must be a small object of plain values"
    return None


def fired_genres(rules: Sequence[Mapping], tag_means: Mapping[str, float] | np.ndarray,
                 tags: Sequence[str] | None = None) -> list[str]:
    """The genres of ``rules`` a song's tags reach, largest margin over the threshold first.

    ``tag_means``: the song's mean probability of each tag, by tag name, or an array in ``tags``' order.
    """
    if not isinstance(tag_means, Mapping):
        tag_means = dict(zip(tags, np.asarray(tag_means, dtype=float).tolist()))
    fired = []
    for rule in rules:
        score = max(float(tag_means[t]) for t in rule["tags"])
        if score >= rule["threshold"]:
            fired.append((score - rule["threshold"], rule["genre"]))
    return [genre for _, genre in sorted(fired, key=lambda mg: (-mg[0], mg[1]))]
