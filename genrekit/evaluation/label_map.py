"""A label map between taxonomies: scoring a model on a dataset labelled in another vocabulary.

A dataset's labels (Emotify's ``classical, electronic, pop, rock``) and a model's genres (GTZAN's ten)
are different vocabularies. A label map says, for each dataset label, which of the model's genres count
as a right answer, or ``none`` where the model has no word for it. A song is **right** when

- the genre the model names is one its label maps to, or
- its label maps to ``none`` and the model flags it unknown ("none of these", the bundle's stored
  decision).

So ``electronic,none`` scores a GTZAN model's electronic songs right only when flagged unknown; adding
``electronic,disco`` also accepts "disco" as a broader (or neighbouring) genre the map allows for them.
A song whose label maps to genres only is scored by the genre named, flagged unknown or not (how many
were flagged is reported beside).

The file is untrusted input, read as data: a regular file of at most :data:`MAX_BYTES` bytes, UTF-8,
either

- CSV (``.csv``): a header ``dataset_label,model_label``, then one row per pair; several rows per
  dataset label allowed; ``#`` starts a comment line; or
- JSON (``.json``): one object ``{"dataset label": "model label" | ["model label", ...] | "none"}``.

Labels compare case-insensitively. A dataset label the map does not name maps to itself when the model
has that genre; otherwise the map must name it. Model labels the model lacks are refused, named.
Ready-made maps ship in ``genrekit/evaluation/label_maps/`` (:func:`shipped_map`).
"""

from __future__ import annotations

import csv
import io
import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from genrekit.errors import ParameterError

__all__ = ["NONE", "MAX_BYTES", "LabelMap", "read_label_map", "shipped_map", "SHIPPED", "map_figures"]

#: The model label that stands for "the model has no word for it: right when flagged unknown".
NONE = "none"
#: The most bytes a label-map file may hold.
MAX_BYTES = 256 * 1024
#: The longest label accepted.
MAX_LABEL = 200
#: The folder of the ready-made maps.
SHIPPED = Path(__file__).with_name("label_maps")
HEADER = ("dataset_label", "model_label")


@dataclass(frozen=True)
class LabelMap:
    """Dataset label (lower case) -> the model labels that count as right, and whether ``none`` is allowed.

    ``accept`` values are tuples of model labels as the file spells them until :meth:`resolve` checks them
    against a model (then as the model spells them)."""

    accept: dict[str, tuple[str, ...]]
    unknown_ok: frozenset[str]
    source: str

    def resolve(self, model_labels, dataset_labels) -> "LabelMap":
        """This map checked against a model's genres and a dataset's labels: every model label must be
        the model's (spelled as the model spells it); every dataset label must be in the map or be a
        genre of the model (then it maps to itself).

        Raises
        ------
        genrekit.errors.ParameterError
            Naming the labels the model lacks, or the dataset labels neither the map nor the model has.
        """
        spelled = {str(m).lower(): str(m) for m in model_labels}
        foreign = sorted({m for ms in self.accept.values() for m in ms if m.lower() not in spelled})
        if foreign:
            raise ParameterError(f"label map {self.source}: labels the model does not have: {', '.join(foreign)} "
                                 f"(its labels: {', '.join(spelled.values())}; write {NONE} for a label it lacks)")
        accept = {d: tuple(dict.fromkeys(spelled[m.lower()] for m in ms)) for d, ms in self.accept.items()}
        missing = []
        for label in sorted({str(d) for d in dataset_labels}):
            key = label.lower()
            if key in accept or key in self.unknown_ok:
                continue
            if key in spelled:
                accept[key] = (spelled[key],)
            else:
                missing.append(label or "(none: files outside a genre folder)")
        if missing:
            raise ParameterError(f"label map {self.source}: dataset labels neither in the map nor the model's "
                                 f"genres: {', '.join(missing)}; add a row for each ({NONE} where the model "
                                 f"has no word for it)")
        return LabelMap(accept, self.unknown_ok, self.source)

    def outcome(self, label: str, named: str, unknown: bool | None) -> str:
        """``"named"`` (right: the genre named is allowed), ``"unknown"`` (right: flagged unknown where the
        label allows ``none``) or ``"wrong"``."""
        key = str(label).lower()
        if named in self.accept.get(key, ()):
            return "named"
        if unknown and key in self.unknown_ok:
            return "unknown"
        return "wrong"

    def describe(self, label: str) -> str:
        """What counts as right for ``label``, in words."""
        key = str(label).lower()
        parts = list(self.accept.get(key, ()))
        if key in self.unknown_ok:
            parts.append("flagged unknown")
        return " or ".join(parts)


def _read_bounded(path: str | os.PathLike, shown: str) -> bytes:
    """The bytes of a regular file of at most :data:`MAX_BYTES` (a FIFO or device is refused, not opened
    for a blocking read); ``shown``: the path as messages name it."""
    path, opened = shown, path
    try:
        fd = os.open(opened, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise ParameterError(f"label map {path}: cannot read it: {exc.strerror or exc}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ParameterError(f"label map {path}: not a regular file")
        if st.st_size > MAX_BYTES:
            raise ParameterError(f"label map {path}: {st.st_size} bytes, more than a label map's "
                                 f"{MAX_BYTES} bytes")
        with os.fdopen(fd, "rb", closefd=False) as fh:
            data = fh.read(MAX_BYTES + 1)
    finally:
        os.close(fd)
    if len(data) > MAX_BYTES:
        raise ParameterError(f"label map {path}: more than a label map's {MAX_BYTES} bytes")
    return data


def _label(path, value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ParameterError(f"label map {path}: {where}: a label must be a non-empty string")
    value = value.strip()
    if len(value) > MAX_LABEL or any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ParameterError(f"label map {path}: {where}: a label must be at most {MAX_LABEL} characters "
                             f"without control characters")
    return value


def read_label_map(path: str | os.PathLike) -> LabelMap:
    """Read a label-map file (CSV or JSON, see the module's notes), checked as untrusted data.

    Raises
    ------
    genrekit.errors.ParameterError
        Naming the file and what is wrong with it.
    """
    from genrekit.output import printable

    shown = printable(os.fspath(path))
    suffix = Path(path).suffix.lower()
    if suffix not in (".csv", ".json"):
        raise ParameterError(f"label map {shown}: must be a .csv (dataset_label,model_label rows) or a .json "
                             f"object")
    data = _read_bounded(path, shown)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ParameterError(f"label map {shown}: not UTF-8 text") from None
    pairs: list[tuple[str, str]] = []
    if suffix == ".json":
        try:
            obj = json.loads(text)
        except ValueError as exc:
            raise ParameterError(f"label map {shown}: not valid JSON: {exc}") from None
        if not isinstance(obj, dict) or not obj:
            raise ParameterError(f"label map {shown}: must be a JSON object of dataset label -> model label(s)")
        for key, value in obj.items():
            values = value if isinstance(value, list) else [value]
            if not values:
                raise ParameterError(f"label map {shown}: {printable(key)!r}: give a model label or {NONE!r}")
            for v in values:
                pairs.append((_label(shown, key, "a key"), _label(shown, v, f"the value of {printable(key)!r}")))
    else:
        rows = [r for r in csv.reader(io.StringIO(text)) if r and not r[0].lstrip().startswith("#")]
        if not rows or tuple(c.strip().lower() for c in rows[0]) != HEADER:
            raise ParameterError(f"label map {shown}: the first row must be the header {','.join(HEADER)}")
        for n, row in enumerate(rows[1:], start=2):
            if len(row) != 2:
                raise ParameterError(f"label map {shown}: row {n}: expected 2 fields "
                                     f"(dataset_label,model_label), found {len(row)}")
            pairs.append((_label(shown, row[0], f"row {n}"), _label(shown, row[1], f"row {n}")))
        if not pairs:
            raise ParameterError(f"label map {shown}: no rows after the header")
    accept: dict[str, tuple[str, ...]] = {}
    unknown_ok = set()
    for dataset_label, model_label in pairs:
        key = dataset_label.lower()
        accept.setdefault(key, ())
        if model_label.lower() == NONE:
            unknown_ok.add(key)
        elif model_label not in accept[key]:
            accept[key] += (model_label,)
    return LabelMap(accept, frozenset(unknown_ok), shown)


def shipped_map(name: str) -> Path:
    """The path of a ready-made map (``emotify-gtzan``, ``emotify-electronic``: file stems in
    :data:`SHIPPED`)."""
    path = SHIPPED / f"{name}.csv"
    if not path.is_file():
        known = sorted(p.stem for p in SHIPPED.glob("*.csv"))
        raise ParameterError(f"no ready-made label map {name!r}; there are: {', '.join(known)}")
    return path


def map_figures(truth, named, unknown, label_map: LabelMap, *, n_bootstrap: int | None = None,
                confidence: float | None = None, seed: int = 0) -> dict[str, Any]:
    """The figures of songs scored through a (resolved) label map.

    Parameters
    ----------
    truth : each song's dataset label
    named : the genre the model named for each song
    unknown : whether the model flagged each song unknown (``None``: the model has no such decision)
    label_map : :meth:`LabelMap.resolve`'d for the model and these labels

    Returns
    -------
    dict
        ``n``, ``right``, ``accuracy``, ``accuracy_ci`` (bootstrap over songs,
        :func:`genrekit.evaluation.metrics.hit_rate_interval`), ``flagged_unknown``, ``right_by_unknown``,
        ``unknown_decision`` (whether the model has one), ``per_label`` (``{label: {n, right, accuracy,
        accuracy_ci, flagged_unknown, right_by_unknown, counts_as}}``), ``confusion``
        (``{label: {named genre or "unknown (flagged)": count}}``, where a flagged song is counted under the
        genre named and once more under ``"flagged unknown"``) and ``map`` (the map's source).
    """
    from genrekit.evaluation.metrics import CONFIDENCE, N_BOOTSTRAP, hit_rate_interval

    n_bootstrap = N_BOOTSTRAP if n_bootstrap is None else n_bootstrap
    confidence = CONFIDENCE if confidence is None else confidence
    truth = [str(t) for t in truth]
    outcomes = [label_map.outcome(t, n, u) for t, n, u in zip(truth, named, unknown)]
    hits = np.array([o != "wrong" for o in outcomes], dtype=float)
    flagged = np.array([bool(u) for u in unknown])

    def block(rows: np.ndarray) -> dict[str, Any]:
        h = hits[rows]
        return {"n": int(len(h)), "right": int(h.sum()), "accuracy": float(h.mean()) if len(h) else 0.0,
                "accuracy_ci": hit_rate_interval(h, n_bootstrap=n_bootstrap, confidence=confidence, seed=seed),
                "flagged_unknown": int(flagged[rows].sum()),
                "right_by_unknown": int(sum(outcomes[i] == "unknown" for i in rows))}

    result = block(np.arange(len(truth)))
    result["unknown_decision"] = any(u is not None for u in unknown)
    result["per_label"] = {}
    result["confusion"] = {}
    for label in sorted(set(truth), key=str.lower):
        rows = np.array([i for i, t in enumerate(truth) if t == label])
        result["per_label"][label] = {**block(rows), "counts_as": label_map.describe(label)}
        counts: dict[str, int] = {}
        for i in rows:
            counts[named[i]] = counts.get(named[i], 0) + 1
        if flagged[rows].any():
            counts["flagged unknown"] = int(flagged[rows].sum())
        result["confusion"][label] = dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
    result["map"] = label_map.source
    result["bootstrap"] = {"unit": "song", "resamples": int(n_bootstrap), "confidence": confidence, "seed": seed}
    return result
