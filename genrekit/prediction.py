"""The one result object: :class:`Prediction`, the genres of one song (or why it has none).

Every model kind finishes into a :class:`Prediction` (:mod:`genrekit.models.protocol`);
library runs keep it in a results store as a *record* (:meth:`Prediction.to_record`,
:meth:`Prediction.from_record`); :mod:`genrekit.output` is the only place that turns it
into what people and programs read (table, CSV, JSON, JSON lines, the API, the Python API).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: Fields a stored record holds besides the store's own keys (content hash, model key, time).
RECORD_FIELDS = ("path", "label", "unknown", "unknown_score", "genres", "probabilities", "timeline", "tags", "embedding",
                 "duration", "model", "notes", "error")


@dataclass
class Prediction:
    """The genres of one song.

    Attributes
    ----------
    path : str or None
        The file, as given (``None`` for a signal).
    label : str or None
        The top genre (``None`` when :attr:`error` is set).
    probabilities : dict of str to float
        Every genre's probability (mean over the song's windows; they sum to 1), full floats,
        in the output order of :mod:`genrekit.output` (score descending, ties by name).
    duration : float or None
        Seconds of audio analysed.
    model : str
        The model's name.
    timeline : list of dict or None
        ``[{"start", "end", "probabilities"}, ...]`` (seconds) covering the whole song, when asked for.
    windows : int
        How many analysis windows the song's figures are the mean of.
    notes : list of str
        Cautions (:func:`genrekit.output.prediction_notes`): a short input, an uncertain result.
    tags : list of dict or None
        The song's strongest descriptive tags ``[{"label", "score"}, ...]``, best first (models
        on a pretrained backbone only).
    embedding : np.ndarray or None
        The song's embedding (float32; backbone models only), for similar songs.
    error : str or None
        Why the file could not be classified (then ``label``, ``probabilities`` and ``duration``
        are ``None``).
    unknown : bool or None
        Whether the song lies outside the genres the model knows ("none of these"; ``label`` is
        then still the closest genre); ``None`` when the model stores no such decision.
    unknown_score : float or None
        How unlike the model's training songs the song is, in [0, 1): the share of known training
        songs lying nearer (one minus the conformal p-value, 4 decimals); the song is unknown at a
        false-unknown rate ``r`` when it reaches ``1 - r``. ``None`` when the model stores no
        out-of-fold scores (older bundles) or no decision.
    genres : list of str or None
        Every genre whose probability reaches its own threshold, best first (a model trained on
        songs with several genres: its probabilities are then independent and need not sum to
        1); ``None`` for a single-genre model.
    """

    path: str | None
    label: str | None
    probabilities: dict[str, float] | None
    duration: float | None
    model: str
    timeline: list[dict] | None = None
    windows: int = 0
    notes: list[str] = field(default_factory=list)
    tags: list[dict] | None = None
    embedding: np.ndarray | None = field(default=None, repr=False)
    error: str | None = None
    unknown: bool | None = None
    unknown_score: float | None = None
    genres: list[str] | None = None

    @classmethod
    def failure(cls, path: str | None, model: str, reason: str) -> "Prediction":
        """The result of a file that could not be classified."""
        return cls(path=path, label=None, probabilities=None, duration=None, model=model, error=reason)

    @property
    def ok(self) -> bool:
        return self.error is None

    def top(self, k: int | None = None, precision: int | None = None) -> list[dict]:
        """``[{"label", "score"}, ...]`` by score, the first ``k`` (all when ``None``), rounded to ``precision``."""
        from genrekit.output import top_list

        return top_list(self.probabilities or {}, k, precision)

    def to_dict(self, precision: int | None = None) -> dict:
        """JSON-ready data in :mod:`genrekit.output`'s convention (4 decimals unless ``precision``)."""
        from genrekit.output import public

        return public(self, timeline=self.timeline is not None, precision=precision)

    # --- the results store's form ---------------------------------------------------------
    def to_record(self) -> dict:
        """The fields a results store keeps (:data:`RECORD_FIELDS`): plain JSON types, the
        embedding as a list of floats (float32 values, kept exactly by JSON and SQLite)."""
        return {
            "path": self.path, "label": self.label, "probabilities": self.probabilities,
            "timeline": self.timeline, "tags": self.tags,
            "embedding": None if self.embedding is None else [float(v) for v in self.embedding],
            "duration": None if self.duration is None else round(float(self.duration), 3),
            "model": self.model, "notes": list(self.notes), "error": self.error, "unknown": self.unknown,
            "unknown_score": self.unknown_score, "genres": self.genres,
        }

    @classmethod
    def from_record(cls, record: dict) -> "Prediction":
        """A stored record (:meth:`to_record`, or a results-store row) as a :class:`Prediction`."""
        embedding = record.get("embedding")
        timeline = record.get("timeline")
        return cls(
            path=record.get("path"), label=record.get("label"), probabilities=record.get("probabilities"),
            duration=record.get("duration"), model=record.get("model") or "",
            timeline=timeline, windows=int(record.get("windows") or 0),
            notes=list(record.get("notes") or []), tags=record.get("tags"),
            embedding=None if embedding is None else np.asarray(embedding, dtype=np.float32),
            error=record.get("error"), unknown=record.get("unknown"), unknown_score=record.get("unknown_score"),
            genres=record.get("genres"),
        )
