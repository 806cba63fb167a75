"""One output convention for every way genrekit hands out results (CLI formats, JSON API, Python API).

- **Order**: probabilities are listed by score, highest first; equal scores (after
  rounding) by genre name, A to Z. Songs and timeline windows alike. (CSV, a table
  with one column per genre, keeps the model's label order in its header.)
- **Rounding**: probabilities to :data:`PRECISION` decimals (``--precision`` for more),
  seconds (durations, window bounds, timings) to :data:`SECONDS_DIGITS`.
- **Names**: a file is named by its path relative to the folder given
  (:func:`genrekit.files.common_root` of the inputs).
- **Notes**: a result that deserves a caution carries it in ``notes``, a list of
  sentences (:func:`prediction_notes`): inputs much shorter than what the model
  learned from, and uncertain results.

New output fields go through here, so that every output gets them the same way.
"""

from __future__ import annotations

from collections.abc import Mapping

#: Decimals of probabilities in outputs, unless asked otherwise.
PRECISION = 4
#: Decimals of seconds (1 ms).
SECONDS_DIGITS = 3
#: A top score below this is an uncertain result (10 genres: chance is 0.1).
LOW_SCORE = 0.4
#: Top two scores closer than this are a close call.
SMALL_MARGIN = 0.05
#: Inputs shorter than this share of the model's training clips are "short".
SHORT_SHARE = 0.5


def ranked(probabilities: Mapping[str, float], precision: int | None = PRECISION) -> dict[str, float]:
    """``probabilities`` in the output order (score descending, then name), rounded to ``precision``.

    ``precision=None`` keeps full floats (still in that order).
    """
    items = [(str(k), float(v) if precision is None else round(float(v), precision))
             for k, v in probabilities.items()]
    items.sort(key=lambda kv: (-kv[1], kv[0]))
    return dict(items)


def top_list(probabilities: Mapping[str, float], k: int | None = None,
             precision: int | None = PRECISION) -> list[dict]:
    """``[{"label", "score"}, ...]`` in the output order, the first ``k`` (all when ``None``)."""
    return [{"label": label, "score": score} for label, score in list(ranked(probabilities, precision).items())[:k]]


def scores(items, precision: int | None = PRECISION) -> list[dict] | None:
    """A ``[{"label", "score"}, ...]`` list (a song's tags) rounded, in the output order."""
    if items is None:
        return None
    return top_list({i["label"]: i["score"] for i in items}, None, precision)


def seconds(value: float | None) -> float | None:
    """Seconds rounded to :data:`SECONDS_DIGITS` decimals (``None`` stays ``None``)."""
    return None if value is None else round(float(value), SECONDS_DIGITS)


def timeline(windows, precision: int | None = PRECISION) -> list[dict] | None:
    """A timeline ``[{"start", "end", "probabilities"}, ...]`` in the output convention."""
    if windows is None:
        return None
    return [{"start": seconds(w["start"]), "end": seconds(w["end"]),
             "probabilities": ranked(w["probabilities"], precision)} for w in windows]


def training_clip_seconds(model) -> float | None:
    """Length (s) of the clips ``model`` learned from: the card's ``clip_seconds``, else its window."""
    return _clip(model)[0]


def _clip(model) -> tuple[float | None, bool]:
    """``(seconds, from the card)``: the card's ``clip_seconds`` if it says, else the analysis window."""
    if model is None:
        return None, False
    bundle = getattr(model, "bundle", model)
    card = getattr(bundle, "card", None) or {}
    value = card.get("clip_seconds") if isinstance(card, dict) else None
    said = isinstance(value, (int, float)) and value > 0
    if not said:
        value = getattr(bundle, "window", None)
    return (float(value), said) if isinstance(value, (int, float)) and value > 0 else (None, False)


def prediction_notes(prediction, model=None) -> list[str]:
    """The cautions a result deserves, as sentences (empty when none).

    Parameters
    ----------
    prediction : genrekit.predict.Prediction or dict
        Anything with ``probabilities`` and ``duration`` (s), as attributes or keys.
    model : genrekit.predict.GenreClassifier, Bundle or None
        The model that made it (for the length of its training clips).

    Notes
    -----
    - *short*: shorter than :data:`SHORT_SHARE` of the model's training clips
      (:func:`training_clip_seconds`: the card's ``clip_seconds`` when it says, else
      the model's analysis window);
    - *uncertain*: top score below :data:`LOW_SCORE`, or within :data:`SMALL_MARGIN`
      of the second.
    """
    get = prediction.get if isinstance(prediction, dict) else lambda k: getattr(prediction, k, None)
    probabilities, duration = get("probabilities"), get("duration")
    if not probabilities:
        return []
    notes = []
    clip, said = _clip(model)
    if clip is not None and duration is not None and duration < SHORT_SHARE * clip:
        what = f"the model learned from {clip:g}-s clips" if said else f"the model's window is {clip:g} s"
        notes.append(f"short input: {duration:.1f} s, while {what}; results on less than "
                     f"{SHORT_SHARE * clip:g} s are less reliable")
    ordered = list(ranked(probabilities, None).items())
    (first, p1), (second, p2) = ordered[0], (ordered[1] if len(ordered) > 1 else (None, 0.0))
    if p1 < LOW_SCORE:
        notes.append(f"uncertain: the top score, {first} {p1:.2f}, is below {LOW_SCORE:g}")
    elif second is not None and p1 - p2 < SMALL_MARGIN:
        notes.append(f"close call: {first} {p1:.2f} against {second} {p2:.2f}")
    return notes


def relative_names(paths, inputs) -> dict:
    """Each path's name relative to the folder given (the inputs' common root), POSIX style."""
    import os
    from pathlib import Path

    from .files import common_root

    paths = list(paths)
    if not paths or not inputs:
        return {p: str(p) for p in paths}
    root = common_root(inputs)
    return {p: Path(os.path.relpath(os.path.abspath(p), root)).as_posix() for p in paths}
