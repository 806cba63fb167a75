"""One output convention for every way genrekit hands out results (CLI formats, JSON API, Python API).

- **Order**: probabilities are listed by score, highest first; equal scores (after
  rounding) by genre name, A to Z. Songs and timeline windows alike. (CSV, a table
  with one column per genre, keeps the model's label order in its header.)
- **Rounding**: probabilities to :data:`PRECISION` decimals (``--precision`` for more),
  seconds (durations, window bounds, timings) to :data:`SECONDS_DIGITS`.
- **Names**: a file is named by its path relative to the folder given
  (:func:`genrekit.audio.files.common_root` of the inputs).
- **Genre names**: a result keeps the model's ``label`` and gains its display ``name``
  (:class:`genrekit.tagging.names.NameMap`: ``hiphop`` is ``Hip-Hop``); tables show names.
- **Notes**: a result that deserves a caution carries it in ``notes``, a list of
  sentences (:func:`prediction_notes`): inputs much shorter than what the model
  learned from, and uncertain results.
- **Unknown**: ``unknown`` (true/false; null for a model that stores no such decision)
  says the song fits none of the genres the model knows; ``label`` stays the closest
  genre, and tables show ``unknown (closest: Rock)`` (:func:`shown_label`).
- **Several genres**: a model trained on several genres per song gives ``genres``, every
  genre reaching its own threshold, best first; a model whose bundle stores genres from
  the backbone's tags (:mod:`genrekit.models.tag_genres`: the default's Electronic) gives
  ``genres`` too, its label then the tags' genres (``Disco + Electronic``). Absent for other
  single-genre models. Tables show them joined by :data:`GENRES_JOIN` (``Rock + Blues``),
  CSV in a ``genres`` column joined by :data:`GENRES_SEPARATOR`, JSON as a list.

This is the only serialiser of :class:`genrekit.prediction.Prediction`: :func:`public`
gives the object every output shows (CLI JSON/JSONL, the API, ``Prediction.to_dict``),
:func:`render` the CLI's table, CSV, JSON and JSON lines. New output fields go through
here, so that every output gets them the same way.
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
#: Fields of a public result object, in output order (``timeline`` only when asked for,
#: ``tags`` only from models that give them).
PUBLIC_FIELDS = ("path", "label", "unknown", "unknown_score", "genres", "name", "probabilities", "tags", "timeline",
                 "duration", "model", "notes", "error")
#: Formats of :func:`render`.
FORMATS = ("table", "json", "csv", "jsonl")
#: Genres listed per file in a table when ``top`` is not given.
TABLE_TOP = 3
#: Descriptive tags shown per file in a table and a CSV (JSON gives every stored tag).
TABLE_TAGS = 5
#: How a table joins a song's several genres (display names).
GENRES_JOIN = " + "
#: How a CSV cell joins a song's several genres (labels), as ``--labels FILE.csv`` reads them.
GENRES_SEPARATOR = ";"


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


def timeline_of(windows, precision: int | None = PRECISION) -> list[dict] | None:
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


#: How the note of a silent input begins (see :func:`silent_note`).
SILENT_NOTE = "silent:"


def silent_note(peak: float) -> str:
    """The note of an input whose peak amplitude is below 1e-6: its genres mean little."""
    return f"{SILENT_NOTE} the audio is silent (peak {peak:.1e}); the genres of silence mean nothing"


def duration_text(value: float) -> str:
    """Seconds for a sentence: one decimal from 1 s up, else three significant digits (0.045, not 0.0)."""
    return f"{value:.1f}" if value >= 0.95 else f"{value:.3g}"


def prediction_notes(prediction, model=None, names=None) -> list[str]:
    """The cautions a result deserves, as sentences (empty when none).

    Parameters
    ----------
    prediction : genrekit.prediction.Prediction or dict
        Anything with ``probabilities`` and ``duration`` (s), as attributes or keys.
    model : genrekit.models.protocol.GenreClassifier, Bundle or None
        The model that made it (for the length of its training clips).
    names : NameMap or None
        Genres are named by their display names (default: the shipped map's), as tables show them.

    Notes
    -----
    - *short*: shorter than :data:`SHORT_SHARE` of the model's training clips
      (:func:`training_clip_seconds`: the card's ``clip_seconds`` when it says, else
      the model's analysis window);
    - *uncertain*: top score below :data:`LOW_SCORE`, or within :data:`SMALL_MARGIN`
      of the second;
    - *silent*: kept from ``prediction.notes`` (given when it was classified, :func:`silent_note`).
    """
    get = prediction.get if isinstance(prediction, dict) else lambda k: getattr(prediction, k, None)
    probabilities, duration = get("probabilities"), get("duration")
    if not probabilities:
        return []
    # Silence is a fact of the signal, which results stores do not keep: its note, once given, stays.
    notes = [n for n in get("notes") or [] if n.startswith(SILENT_NOTE)][:1]
    clip, said = _clip(model)
    if clip is not None and duration is not None and duration < SHORT_SHARE * clip:
        what = f"the model learned from {clip:g}-s clips" if said else f"the model's window is {clip:g} s"
        notes.append(f"short input: {duration_text(duration)} s, while {what}; results on less than "
                     f"{SHORT_SHARE * clip:g} s are less reliable")
    ordered = list(ranked(probabilities, None).items())
    (first, p1), (second, p2) = ordered[0], (ordered[1] if len(ordered) > 1 else (None, 0.0))
    # genres by their display names, as the tables show them ("unknown (closest: Metal)")
    display = _names(names).display
    first, second = display(first), None if second is None else display(second)
    if get("unknown"):
        score = get("unknown_score")
        score = "" if score is None else f"; unknown score {round(float(score), 4):g}"
        notes.append(f"unknown: fits none of the model's genres well (closest: {first}{score})")
    if p1 < LOW_SCORE:
        notes.append(f"uncertain: the top score, {first} {p1:.2f}, is below {LOW_SCORE:g}")
    elif second is not None and p1 - p2 < SMALL_MARGIN:
        notes.append(f"close call: {first} {p1:.2f} against {second} {p2:.2f}")
    return notes


def relative_names(paths, inputs) -> dict:
    """Each path's name relative to the folder given (the inputs' common root), POSIX style."""
    from genrekit.audio.files import common_root, relative_name

    paths = list(paths)
    if not paths or not inputs:
        return {p: str(p) for p in paths}
    root = common_root(inputs)
    return {p: relative_name(p, root) for p in paths}


# --- the public object and the CLI's formats ------------------------------------------------
def _names(names):
    if names is None:
        from genrekit.tagging.names import NameMap

        return NameMap.default()
    return names


def public(prediction, *, timeline: bool = False, top: int | None = None, precision: int | None = None,
           name: str | None = None, names=None) -> dict:
    """A :class:`~genrekit.prediction.Prediction` as every output shows it (:data:`PUBLIC_FIELDS`).

    ``probabilities`` are in the output order, the first ``top`` of them, rounded to
    ``precision`` decimals (default :data:`PRECISION`); ``timeline`` (every genre of every
    window) is included when asked; ``tags`` only from models that give them; ``error`` is
    ``None`` unless the file failed, in which case ``label``, ``probabilities`` and
    ``duration`` are ``None``. ``name`` replaces the path (the name relative to the folder given).
    The genre's display name is ``names.display(label)`` (``names``: a
    :class:`~genrekit.tagging.names.NameMap`, default the shipped one).
    """
    digits = PRECISION if precision is None else precision
    probs = prediction.probabilities
    if probs is not None:
        probs = dict(list(ranked(probs, digits).items())[:top])
    out = {
        "path": prediction.path if name is None else name, "label": prediction.label,
        "unknown": getattr(prediction, "unknown", None), "unknown_score": getattr(prediction, "unknown_score", None),
        "genres": getattr(prediction, "genres", None),
        "name": None if prediction.label is None else _names(names).display(prediction.label), "probabilities": probs,
        "tags": scores(prediction.tags, digits), "timeline": timeline_of(prediction.timeline, digits),
        "duration": seconds(prediction.duration), "model": prediction.model, "notes": list(prediction.notes),
        "error": prediction.error,
    }
    if not timeline:
        del out["timeline"]
    if out["tags"] is None:  # models without a backbone give no tags
        del out["tags"]
    if out["genres"] is None:  # single-genre models: the label says it all
        del out["genres"]
    return out


def json_line(obj: dict) -> str:
    """One compact, strict JSON line."""
    import json

    from genrekit._io import jsonable

    return json.dumps(jsonable(obj), ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def render(predictions, fmt: str, *, labels: list[str], timeline: bool = False, top: int | None = None,
           precision: int | None = None, names: dict | None = None, genre_names=None) -> str:
    """The text of ``predictions`` (in order) in ``fmt`` (one of :data:`FORMATS`).

    ``names`` maps a prediction's path to the name shown (relative to the folder given);
    ``genre_names`` is the :class:`~genrekit.tagging.names.NameMap` (default: the shipped one).
    """
    names = names or {}
    genre_names = _names(genre_names)
    rows = [public(p, timeline=timeline, top=top, precision=precision, name=names.get(p.path, names.get(str(p.path))),
                   names=genre_names)
            for p in predictions]
    if fmt == "json":
        from genrekit._io import dumps

        return dumps(rows)
    if fmt == "jsonl":
        return "".join(json_line(obj) + "\n" for obj in rows)
    if fmt == "csv":
        return render_csv(rows, labels)
    return render_table(rows, top=top or TABLE_TOP, timeline=timeline, precision=precision, names=genre_names)


def render_csv(rows: list[dict], labels: list[str]) -> str:
    """``path,label,unknown,unknown_score,[genres,]<one column per genre, the model's order>,[tags,]duration,
    notes,error``.

    ``rows`` are :func:`public` objects. ``genres`` (models trained on several genres per song
    only) holds the genres above their thresholds joined by :data:`GENRES_SEPARATOR` (empty: none
    reached its threshold); ``tags`` (backbone models only) the strongest tags as ``tag=score``
    and ``notes`` the cautions, each joined by ``"; "``.
    """
    import csv
    import io

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    with_tags = any(rec.get("tags") for rec in rows)
    with_genres = any(rec.get("genres") is not None for rec in rows)
    writer.writerow(["path", "label", "unknown", "unknown_score", *(["genres"] if with_genres else []), *labels,
                     *(["tags"] if with_tags else []), "duration", "notes", "error"])
    for rec in rows:
        probs = rec.get("probabilities") or {}
        tags = ["; ".join(f"{t['label']}={t['score']}" for t in (rec.get("tags") or [])[:TABLE_TAGS])] \
            if with_tags else []
        unknown = rec.get("unknown")
        genres = [GENRES_SEPARATOR.join(rec.get("genres") or [])] if with_genres else []
        writer.writerow([rec["path"], rec.get("label") or "", "" if unknown is None else str(bool(unknown)).lower(),
                         _num(rec.get("unknown_score")), *genres, *(_num(probs.get(g)) for g in labels), *tags,
                         _num(rec.get("duration")), "; ".join(rec.get("notes") or []), rec.get("error") or ""])
    return buf.getvalue()


def _num(value) -> str:
    return "" if value is None else repr(float(value))


def render_table(rows: list[dict], *, top: int = TABLE_TOP, timeline: bool = False,
                 precision: int | None = None, names=None) -> str:
    """Aligned columns: path, top genre (or every genre above its threshold, :func:`shown_label`), its
    score, the next ``top - 1`` genres with scores; notes below.

    Genres are shown by their display names (``names``, default the shipped map).
    """
    digits = PRECISION if precision is None else precision
    display = _names(names).display

    def show(label: str) -> str:  # a trained model's label or a --names value: one bounded line
        return printable(display(label))

    lines_of = []
    for rec in rows:
        rec = dict(rec, path=printable(rec["path"]))
        if rec.get("error") is not None:
            lines_of.append((rec["path"], "error:", "", printable(rec["error"]), []))
            continue
        ordered = list(rec["probabilities"].items())  # already in the output order
        label, score = ordered[0]
        label = shown_label(dict(rec, label=label), show)
        nxt = ", ".join(f"{show(g)} {p:.{digits}f}" for g, p in ordered[1:top])
        extra = []
        if rec.get("tags"):
            extra.append("  tags: " + ", ".join(f"{t['label']} {t['score']:.2f}" for t in rec["tags"][:TABLE_TAGS]))
        if timeline:
            for w in rec.get("timeline") or []:
                g, p = next(iter(w["probabilities"].items()))
                extra.append(f"  {clock(w['start'])}-{clock(w['end'])}  {show(g)} {p:.{digits}f}")
        extra += [f"  note: {note}" for note in rec.get("notes") or []]
        lines_of.append((rec["path"], label, f"{score:.{digits}f}", nxt, extra))
    header = ("path", "genre", "score", "next" if top > 1 else "")
    w_path = max([len(header[0])] + [len(row[0]) for row in lines_of])
    w_genre = max([len(header[1])] + [len(row[1]) for row in lines_of])
    w_score = max([len(header[2])] + [len(row[2]) for row in lines_of])
    lines = [f"{header[0]:<{w_path}}  {header[1]:<{w_genre}}  {header[2]:>{w_score}}  {header[3]}".rstrip()]
    for path, genre, score, rest, extra in lines_of:
        if genre == "error:":
            lines.append(f"{path:<{w_path}}  error: {rest}")
        else:
            lines.append(f"{path:<{w_path}}  {genre:<{w_genre}}  {score:>{w_score}}  {rest}".rstrip())
        lines.extend(extra)
    return "\n".join(lines) + "\n"


def shown_label(rec: dict, show=str) -> str:
    """The genre a person reads: the label, ``unknown (closest: rock)`` for an unknown song, and for a
    model of several genres per song every genre above its threshold (``Rock + Blues``; ``none above
    threshold (closest: rock)`` when none reached it); an unknown song keeps the genres of its tags
    (``unknown (closest: hiphop) + Electronic``, :mod:`genrekit.models.tag_genres`). ``show`` gives a
    label's or genre's display name."""
    label = show(rec.get("label") or "")
    genres = rec.get("genres")
    if rec.get("unknown"):
        own = rec.get("probabilities") or {}  # the model's own genres are not repeated after "unknown"
        return GENRES_JOIN.join([f"unknown (closest: {label})", *(show(g) for g in genres or [] if g not in own)])
    if genres is None:
        return label
    return GENRES_JOIN.join(map(show, genres)) if genres else f"none above threshold (closest: {label})"


#: Longest value shown whole on a terminal: a genre, a name, a path from a journal (characters).
SHOWN_MAX = 200
#: Longest message line (an error, a warning, a summary line), which may quote such values.
LINE_MAX = 2000


def printable(text, limit: int | None = LINE_MAX) -> str:
    """``text`` as one bounded terminal line: control characters (a newline in a file name, ``ESC[2J``
    in a tag value) escaped, and anything past ``limit`` characters cut with a count of what was left
    out. Every value from elsewhere (file names, tags, labels, names, journal text) goes through here."""
    text = str(text)
    cut = 0
    if limit is not None and len(text) > limit:
        cut, text = len(text) - limit, text[:limit]
    if not text.isprintable():
        text = "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)
    return f"{text}… ({cut} more characters)" if cut else text


def clock(seconds_: float) -> str:
    """``m:ss.s`` for a timeline row."""
    minutes, secs = divmod(float(seconds_), 60)
    return f"{int(minutes)}:{secs:04.1f}"
