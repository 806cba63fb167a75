"""Classify audio: decode → model → :class:`~genrekit.prediction.Prediction`, Hugging Face pipeline style.

>>> from genrekit import classify, load_model
>>> classify("song.mp3")[:2]
[{'label': 'jazz', 'score': 0.71}, {'label': 'blues', 'score': 0.12}]
>>> model = load_model()                 # the bundled default model
>>> model.predict_proba(y, sr)           # (n_labels,) mean over the song's windows
>>> model.timeline(y, sr)                # [{'start': 0.0, 'end': 10.0, 'probabilities': {...}}, ...]

The work is done by the model protocol (:mod:`genrekit.models.protocol`: decoding in
blocks, the model kinds) and the registry (:mod:`genrekit.models.registry`: which model
a name means, loading once per process); this module holds :func:`classify`, the pipeline
call of the public API (:mod:`genrekit`).
"""

from __future__ import annotations

import os
import warnings

import numpy as np

from genrekit.errors import ParameterError
from genrekit.models.protocol import GenreClassifier
from genrekit.models.registry import load_model

__all__ = ["classify", "GenreNote"]


class GenreNote(UserWarning):
    """A caution about one result of :func:`classify` (a short input, an uncertain result)."""


class Genres(list):
    """What :func:`classify` returns for one input: the ``[{"label", "score"}, ...]`` list, which
    also says whether the song is of none of the model's genres (``unknown``: ``True``/``False``,
    ``None`` for a model without that decision) and how unlike the model's training songs it is
    (``unknown_score``, 0 to 1; ``None`` where the model stores no out-of-fold scores), and carries
    the result's ``notes``."""

    def __init__(self, items, *, unknown: bool | None = None, notes=(), unknown_score: float | None = None):
        super().__init__(items)
        self.unknown = unknown
        self.unknown_score = unknown_score
        self.notes = tuple(notes)


def classify(inputs, model: str | os.PathLike | GenreClassifier | None = None, *, sr: int | None = None,
             top_k: int | None = None, precision: int | None = 4):
    """Genres of a song, Hugging Face pipeline style.

    Parameters
    ----------
    inputs : path, numpy array, or a list of paths
        A file to decode, or a signal (then give ``sr``).
    model : str, path, a loaded model, or None
        A shipped model's name, a bundle or run folder (:func:`resolve_model`), or
        ``None`` for the default shipped model.
    sr : int, optional
        The sample rate of an array input, in Hz.
    top_k : int or None
        Keep the ``top_k`` best labels.
    precision : int or None
        Decimals of the scores (default 4, as every genrekit output); ``None``: full floats.

    Returns
    -------
    :class:`Genres`: ``[{"label": ..., "score": ...}, ...]`` sorted by score, ties by label (a
    list of them for a list of paths), with ``.unknown`` (the song is of none of the model's
    genres; ``model.at_unknown_rate(P)`` moves that decision), ``.unknown_score`` and ``.notes``.
    A result with notes (an input much shorter than the model's clips, an uncertain result) also
    issues a :class:`GenreNote` warning.
    """
    clf = model if isinstance(model, GenreClassifier) else load_model(model)
    if isinstance(inputs, (list, tuple)):
        return [classify(item, clf, sr=sr, top_k=top_k, precision=precision) for item in inputs]
    if isinstance(inputs, np.ndarray):
        if sr is None:
            raise ParameterError("give sr= (the signal's sample rate in Hz) with an array input")
        prediction = clf.classify_signal(inputs, sr)
    else:
        prediction = clf.classify_file(inputs)
    if prediction.notes:  # the list has no room for them: say them as a warning, as the CLI prints them
        where = prediction.path or "signal"
        warnings.warn(f"{where}: {'; '.join(prediction.notes)}", GenreNote, stacklevel=2)
    return Genres(prediction.top(top_k, precision), unknown=prediction.unknown, notes=prediction.notes,
                  unknown_score=prediction.unknown_score)
