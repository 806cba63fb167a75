"""A results store's records read as untrusted data: every field's type and range checked before use.

A results file may be hand-made, damaged or another program's. The read-only verbs
(``playlists``, ``similar --library``, ``serve --library``) take only the records that pass
:func:`record_problem`; the others are skipped and named in one warning line
(:func:`skipped_line`), never a traceback.
"""

from __future__ import annotations

import math

#: How many skipped records a warning names before it only counts.
NAMED_MAX = 5


def _number(value) -> bool:
    """A finite real number (JSON's numbers; ``True``/``False`` are not)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:  # an integer of thousands of digits
        return False


def _text(value) -> bool:
    return isinstance(value, str) and "\x00" not in value


def record_problem(record) -> str | None:
    """What makes ``record`` unusable as a genrekit result, or ``None`` when every field is sound.

    Checked: ``content_hash``, ``model_key`` and ``path`` are non-empty strings; ``label``,
    ``error``, ``model`` and ``time`` strings or absent; ``probabilities`` a map of genre to a
    finite number; ``duration`` a finite number >= 0; ``embedding`` a non-empty list of finite
    numbers; ``timeline`` and ``tags`` lists; ``genres`` a list of names; ``unknown`` true, false or absent; ``unknown_score``
    a number from 0 to 1 or absent (stores written before it have none).
    """
    if not isinstance(record, dict):
        return "not a JSON object"
    for field in ("content_hash", "model_key", "path"):
        if not _text(record.get(field)) or not record[field]:
            return f"{field} is not a non-empty string"
    for field in ("label", "error", "model", "time"):
        if record.get(field) is not None and not _text(record[field]):
            return f"{field} is not a string"
    probabilities = record.get("probabilities")
    if probabilities is not None and not (
            isinstance(probabilities, dict) and all(_text(k) and _number(v) for k, v in probabilities.items())):
        return "probabilities is not a map of genre to a number"
    duration = record.get("duration")
    if duration is not None and not (_number(duration) and float(duration) >= 0):
        return "duration is not a number of seconds"
    embedding = record.get("embedding")
    if embedding is not None and not (isinstance(embedding, list) and embedding and all(map(_number, embedding))):
        return "embedding is not a list of numbers"
    for field in ("timeline", "tags", "notes", "genres"):
        if record.get(field) is not None and not isinstance(record[field], list):
            return f"{field} is not a list"
    genres = record.get("genres")
    if genres is not None and not all(_text(g) and g for g in genres):
        return "genres is not a list of genre names"
    if record.get("unknown") is not None and not isinstance(record["unknown"], bool):
        return "unknown is not true or false"
    score = record.get("unknown_score")
    if score is not None and not (_number(score) and 0 <= float(score) <= 1):
        return "unknown_score is not a number from 0 to 1"
    return None


def skipped_line(source, skipped: list[tuple[str, str]]) -> str:
    """One warning line for records skipped from ``source``: how many, and the first few (where: problem)."""
    from genrekit.output import printable

    named = "; ".join(f"{printable(where)}: {printable(problem)}" for where, problem in skipped[:NAMED_MAX])
    more = f"; and {len(skipped) - NAMED_MAX} more" if len(skipped) > NAMED_MAX else ""
    return f"{printable(source)}: skipped {len(skipped)} record(s) that are not valid genrekit results ({named}{more})"
