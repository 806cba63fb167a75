"""The model protocol: every model kind turns decoded audio into one :class:`~genrekit.prediction.Prediction`.

A model kind (a head on a pretrained backbone, a classical model on a feature table, a
CNN on a spectrogram) is a subclass of :class:`GenreClassifier` that provides three things:

- :meth:`~GenreClassifier.stream`: an analysis fed the song's decoded blocks (mono float32
  at :attr:`~GenreClassifier.sample_rate`) that keeps bounded memory, whatever the length;
- :meth:`~GenreClassifier.scores`: what that analysis finished with, as :class:`WindowScores`
  (per-window probabilities, the timeline's windows, and extras: tags, embedding);
- :meth:`~GenreClassifier.signal_scores`: the same from a whole signal in memory.

Everything else (decoding once, feeding other consumers of the same blocks, the song's
probabilities as the mean of its windows, the timeline rows, the notes) is written once,
here. Verbs, the server, engines and the report ask this protocol, never a model's name
or kind; :mod:`genrekit.models.registry` picks the kind of a bundle.

A song is cut into the bundle's windows (:func:`genrekit.audio.windows.window_bounds` with
``cover_end=True``: the windows cover the whole song; a song shorter than one window is
one window); its probabilities are the mean over its windows.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from genrekit.audio import decode as audio
from genrekit.audio import windows
from genrekit.engines.threads import on_one_blas_thread
from genrekit.errors import ParameterError
from genrekit.output import prediction_notes, ranked, seconds, silent_note
from genrekit.prediction import Prediction


#: Songs shorter than this (seconds, the header's length) are decoded whole: a plan of patches
#: reads nearly all of a short one.
REGIONS_FROM = 60.0
#: Regions are read only when they hold at most this fraction of the song (seeks cost too).
REGIONS_BELOW = 0.6
#: Decimals a bundle's out-of-fold unknown scores are stored to (:func:`genrekit.models.unknown.unknown_fields`).
STORED_DIGITS = 8


@dataclass
class WindowScores:
    """What a model says of a song, before it becomes a :class:`Prediction`.

    Attributes
    ----------
    n_samples : int
        Length of the song at the model's sample rate.
    bounds : list of (int, int)
        The song's windows, in samples.
    probabilities : np.ndarray [shape=(len(bounds), n_labels)]
        Each window's probabilities, columns in the model's label order.
    timeline_bounds, timeline_probabilities : as above, or None
        The timeline's windows, when asked for (they may differ from the song's windows).
    tags : list of dict or None
        The song's strongest descriptive tags, best first (backbone models).
    embedding : np.ndarray or None
        The song's embedding, float32 (backbone models).
    rows : np.ndarray or None
        The model's input row of each of the song's windows (table-row kinds), for the
        bundle's "none of these" decision.
    tag_genres : list of str or None
        Genres beyond the model's own that the song's tags reach (the bundle's ``tag_genres``
        rules, :mod:`genrekit.models.tag_genres`), largest margin first; ``None`` where it has none.
    """

    n_samples: int
    bounds: list
    probabilities: np.ndarray
    timeline_bounds: list | None = None
    timeline_probabilities: np.ndarray | None = None
    tags: list[dict] | None = None
    embedding: np.ndarray | None = None
    rows: np.ndarray | None = None
    tag_genres: list[str] | None = None


class GenreClassifier:
    """A loaded model bundle that turns audio into genre probabilities (the protocol's base).

    Use :func:`genrekit.load_model` rather than building one: it picks the bundle's kind
    and loads each bundle once per process.

    Parameters
    ----------
    bundle : genrekit.models.bundle.Bundle
    name : str
        What outputs call the model.
    """

    #: Whether the model is a head on a pretrained network (it then also gives tags and embeddings).
    has_backbone: bool = False
    #: Share of known songs the "none of these" decision may wrongly call unknown (``None``: the rate
    #: the bundle was fitted for); set through :meth:`at_unknown_rate`.
    unknown_rate: float | None = None

    def __init__(self, bundle, name: str) -> None:
        self.bundle = bundle
        self.name = name

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, labels={len(self.labels)})"

    @classmethod
    def accepts(cls, bundle) -> bool:
        """Whether this kind can classify audio with ``bundle``."""
        raise NotImplementedError

    # --- what the bundle says ------------------------------------------------------
    @property
    def labels(self) -> list[str]:
        return list(self.bundle.labels)

    @property
    def sample_rate(self) -> int:
        """Hz of the signal the model analyses."""
        return self.bundle.feature_set.sample_rate

    @property
    def window(self) -> float:
        """Seconds of one analysis window."""
        return float(self.bundle.window)

    @property
    def hop(self) -> float:
        """Seconds between analysis windows."""
        return float(self.bundle.hop)

    @property
    def min_samples(self) -> int:
        """The shortest signal the model can analyse (samples at :attr:`sample_rate`)."""
        return self.bundle.feature_set.min_samples

    def window_bounds(self, n_samples: int) -> list[tuple[int, int]]:
        """Sample ranges of the windows a signal of ``n_samples`` (at :attr:`sample_rate`) is cut into."""
        return windows.window_bounds(n_samples, self.sample_rate, self.window, self.hop, cover_end=True)

    # --- what each kind provides -------------------------------------------------------
    def stream(self, expected_samples: int | None = None, timeline: bool = False):
        """A block-wise analysis: ``feed(block)`` samples at :attr:`sample_rate`, then ``finish()``,
        whose value :meth:`scores` reads. ``expected_samples`` (the header's length, a hint)
        lets a kind plan a long song before it has been read; ``timeline`` asks for an analysis
        whose timeline covers the whole song (a kind that samples a long song then reads it all)."""
        raise NotImplementedError

    def scores(self, finished, n_samples: int, timeline: bool = False) -> WindowScores:
        """The :class:`WindowScores` of a :meth:`stream` that finished with ``finished``."""
        raise NotImplementedError

    def signal_scores(self, y: np.ndarray, timeline: bool = False) -> WindowScores:
        """The :class:`WindowScores` of a whole signal at :attr:`sample_rate` (in memory)."""
        raise NotImplementedError

    def region_planner(self, timeline: bool = False):
        """``planner(n_samples)``: an analysis of a song of known length that says which samples it
        needs (``spans()``) and is fed only those (``feed_region``), finishing as :meth:`stream`
        does; ``None`` (the default) for kinds that need the whole signal."""
        return None

    # --- prediction, the same for every kind ------------------------------------------------
    def window_probabilities(self, y: np.ndarray, sr: int | None = None) -> tuple[list, np.ndarray]:
        """Window bounds (samples at :attr:`sample_rate`) and probabilities ``(n_windows, n_labels)``."""
        s = self.signal_scores(self.at_model_rate(y, sr))
        return s.bounds, s.probabilities

    @on_one_blas_thread
    def predict_proba(self, y: np.ndarray, sr: int | None = None) -> np.ndarray:
        """Song-level probabilities (mean over windows), shape ``(n_labels,)`` in :attr:`labels` order."""
        return self.window_probabilities(y, sr)[1].mean(axis=0)

    @on_one_blas_thread
    def timeline(self, y: np.ndarray, sr: int | None = None) -> list[dict]:
        """``[{"start", "end", "probabilities"}, ...]`` covering the whole signal (seconds)."""
        return self.classify_signal(y, sr, timeline=True).timeline

    @on_one_blas_thread
    def classify_signal(self, y: np.ndarray, sr: int | None = None, *, path: str | None = None,
                        timeline: bool = False) -> Prediction:
        """The :class:`Prediction` of a signal in memory (``sr``: its rate; ``None``: the model's)."""
        y = self.at_model_rate(y, sr)
        prediction = self.prediction(self.signal_scores(y, timeline), path)
        return with_silence(prediction, float(np.abs(y).max()) if y.size else 0.0)

    @on_one_blas_thread
    def classify_file(self, path: str | os.PathLike, *, timeline: bool = False, max_duration: float | None = None,
                      also: Iterable = ()) -> Prediction:
        """Decode ``path`` and classify it, block by block (memory does not grow with the song).

        ``also``: other consumers of the same decoded blocks (objects with ``feed(block)``, such
        as the server's spectrogram), so that a file is decoded once whatever else is made of it.
        Without ``also``, a song of :data:`REGIONS_FROM` s or more whose analysis needs at most
        :data:`REGIONS_BELOW` of it (the default model's patch budget, without a timeline) is read
        in regions: only those are decoded and resampled (:mod:`genrekit.audio.regions`; where a
        format cannot seek exactly, the whole file is decoded).
        Raises :class:`genrekit.errors.AudioError` for a file that cannot be decoded
        (:class:`genrekit.errors.TooLongError` past ``max_duration`` seconds).
        """
        also = list(also)
        with audio.Decoder(path, self.sample_rate, min_samples=self.min_samples,
                           max_duration=max_duration) as decoder:
            if not also:
                sampled = self._classify_regions(decoder, timeline)
                if sampled is not None:
                    analysis, n_samples, peak = sampled
                    return with_silence(self.finish_stream(analysis, n_samples, str(path), timeline), peak)
            analysis = self.stream(expected_samples=decoder.expected_samples, timeline=timeline)
            for block in decoder:
                analysis.feed(block)
                for consumer in also:
                    consumer.feed(block)
        return with_silence(self.finish_stream(analysis, decoder.n_samples, str(path), timeline), decoder.peak)

    def _classify_regions(self, decoder, timeline: bool):
        """``(analysis, n_samples, peak)`` fed only the regions the analysis needs, or ``None`` where the
        whole file is to be decoded: the analysis reads most of it anyway (a short song, a dense
        timeline), cannot say what it needs, or the file cannot be read in exact regions
        (:mod:`genrekit.audio.regions`)."""
        from genrekit.audio.regions import RegionReader

        if decoder.expected_samples < REGIONS_FROM * self.sample_rate:
            return None
        planner = self.region_planner(timeline)
        if planner is None:
            return None
        spans = planner(decoder.expected_samples).spans()
        if sum(hi - lo for lo, hi in spans) > REGIONS_BELOW * decoder.expected_samples:
            return None
        reader = RegionReader.open(decoder)
        if reader is None:
            decoder.reopen()  # finding a PyAV file's length read its end
            return None
        analysis = planner(reader.n_samples)
        spans = analysis.spans()
        try:
            for start, samples in reader.read(spans):
                analysis.feed_region(start, samples)
        except reader.Unavailable:
            decoder.reopen()
            return None
        decoder.finish_regions(reader.n_samples)
        return analysis, reader.n_samples, reader.peak

    def finish_stream(self, analysis, n_samples: int, path: str | None = None, timeline: bool = False) -> Prediction:
        """The :class:`Prediction` of a :meth:`stream` that has been fed all ``n_samples`` samples."""
        return self.prediction(self.scores(analysis.finish(), n_samples, timeline), path)

    def prediction(self, scores: WindowScores, path: str | None = None) -> Prediction:
        """The :class:`Prediction` of ``scores``: the mean of the windows, the timeline rows, the notes."""
        mean = scores.probabilities.mean(axis=0)
        probabilities = ranked(dict(zip(self.labels, mean.tolist())), None)
        line = None
        if scores.timeline_bounds is not None:
            line = self.timeline_rows(scores.timeline_bounds, scores.timeline_probabilities)
        prediction = Prediction(
            path=path, label=next(iter(probabilities)), probabilities=probabilities,
            duration=scores.n_samples / self.sample_rate, model=self.name, timeline=line,
            windows=len(scores.bounds), tags=scores.tags, embedding=scores.embedding,
            genres=self.genres_above_threshold(probabilities),
        )
        prediction.unknown, prediction.unknown_score = self.assess_unknown(scores)
        if scores.tag_genres is not None:
            # added after what the head measured, never in its place; as the label, they do not depend on
            # the unknown decision (a stored result is decided again at another rate: genrekit.library.run)
            named = prediction.genres if prediction.genres is not None else [prediction.label]
            prediction.genres = named + [g for g in scores.tag_genres if g not in named]
        return self.annotate(prediction)

    def genres_above_threshold(self, probabilities: dict) -> list[str] | None:
        """Every genre reaching its own threshold, best first, for a bundle trained on several genres
        per song (``bundle.multilabel``); ``None`` for a single-genre model."""
        multilabel = getattr(getattr(self, "bundle", None), "multilabel", None)
        if not multilabel:
            return None
        threshold = dict(zip(self.labels, multilabel["thresholds"]))
        return [g for g, p in probabilities.items() if p >= threshold[g]]

    def assess_unknown(self, scores: WindowScores) -> tuple[bool | None, float | None]:
        """``(unknown, unknown_score)``: whether the song lies outside the genres the model knows (the
        bundle's stored decision on the song's input rows, at :attr:`unknown_rate`) and its unknown
        score (4 decimals; ``None`` where the bundle stores no out-of-fold scores); ``(None, None)``
        for a bundle that stores no decision."""
        detector = self._unknown_detector
        if detector is None or scores.rows is None or len(scores.rows) == 0:
            return None, None
        unknown, score = detector.assess(scores.rows, self.unknown_rate)
        return unknown, None if score is None else round(score, 4)

    def is_unknown(self, scores: WindowScores) -> bool | None:
        """Whether the song lies outside the genres the model knows (:meth:`assess_unknown`)."""
        return self.assess_unknown(scores)[0]

    def at_unknown_rate(self, rate: float | None) -> "GenreClassifier":
        """This model deciding "none of these" at false-unknown rate ``rate`` (``None``: itself, at
        the bundle's rate): a shallow copy sharing the loaded weights, so the model that
        :func:`genrekit.models.registry.load_model` keeps for the process is left as it is.

        Raises :class:`~genrekit.errors.ParameterError` for a rate outside (0, 1), a bundle that
        makes no such decision, or one whose rate cannot move (it stores no out-of-fold scores).
        """
        import copy

        from genrekit.models.unknown import check_rate

        if rate is None:
            return self
        rate = check_rate(rate)
        detector = self._unknown_detector
        if detector is None:
            raise ParameterError(f"model {self.name} makes no \"none of these\" decision, so it has no "
                                 f"false-unknown rate to set")
        detector.threshold_at(rate)  # a bundle that cannot move says so here
        moved = copy.copy(self)
        moved.unknown_rate = rate
        return moved

    def stored_unknown(self, record: dict) -> tuple[bool, bool | None]:
        """``(holds, unknown)``: a stored result's "none of these" flag decided again at
        :attr:`unknown_rate` from its ``unknown_score`` (the rate of the run that stored it may have
        been another); ``holds`` is false where that cannot be done exactly (a result stored
        without a score while a rate is asked for), and the song is to be classified again."""
        detector, score = self._unknown_detector, record.get("unknown_score")
        if detector is None:
            return True, record.get("unknown")
        if score is None or not detector.movable:
            return self.unknown_rate is None, record.get("unknown")
        decided = decided_from_score(detector.oof_scores, float(score), detector.threshold_at(self.unknown_rate))
        return decided is not None, decided

    @property
    def _unknown_detector(self):
        if not hasattr(self, "_detector"):
            getter = getattr(self.bundle, "unknown_detector", None)
            self._detector = getter() if getter is not None else None
        return self._detector

    def annotate(self, prediction: Prediction) -> Prediction:
        """Give ``prediction`` today's notes (:func:`genrekit.output.prediction_notes`): the one place
        notes are computed, for new results and for results read back from a store."""
        prediction.notes = prediction_notes(prediction, self) if prediction.ok else []
        return prediction

    def timeline_rows(self, bounds, proba) -> list[dict]:
        """``[{"start", "end", "probabilities"}, ...]`` (seconds, probabilities in the output order)."""
        sr = self.sample_rate
        return [
            {"start": seconds(start / sr), "end": seconds(stop / sr),
             "probabilities": ranked(dict(zip(self.labels, row.tolist())), None)}
            for (start, stop), row in zip(bounds, proba)
        ]

    def at_model_rate(self, y: np.ndarray, sr: int | None) -> np.ndarray:
        """``y`` as a mono float32 signal at :attr:`sample_rate` (``sr``: its rate, ``None``: already so).

        Raises :class:`~genrekit.errors.ParameterError` (a ``ValueError``) for a signal of another
        shape or shorter than one analysis frame.
        """
        y = audio.pcm_to_float(y)  # int16 from scipy.io.wavfile is scaled, not cast
        if y.ndim == 2:  # (channels, samples), as librosa and soundfile(always_2d=False).T give
            y = y.mean(axis=0 if y.shape[0] < y.shape[1] else 1).astype(np.float32)
        if y.ndim != 1:
            raise ParameterError(f"expected a mono signal or (channels, samples), got shape {y.shape}")
        if sr is not None and sr != self.sample_rate:
            import soxr

            y = soxr.resample(y, sr, self.sample_rate, quality="HQ").astype(np.float32)
        if len(y) < self.min_samples:
            raise ParameterError(f"signal of {len(y)} samples at {self.sample_rate} Hz is shorter than one "
                                 f"analysis frame ({self.min_samples} samples)")
        return y



def decided_from_score(oof: np.ndarray, shown: float, threshold: float) -> bool | None:
    """Whether a song whose unknown score was ``shown`` (4 decimals) lies past ``threshold``, from the
    sorted out-of-fold scores ``oof`` it was ranked among; ``None`` when that cannot be told exactly
    (the rounded score fits several ranks, or the threshold falls between the song's neighbours).
    A threshold within :data:`STORED_DIGITS` rounding of a stored score is that score (a bundle's
    threshold is computed before its out-of-fold scores are rounded for storing)."""
    n = len(oof)
    at = int(np.searchsorted(oof, threshold))
    for k in (at - 1, at):
        if 0 <= k < n and abs(oof[k] - threshold) <= 10.0 ** -STORED_DIGITS:
            threshold = oof[k]

    def shown_at(below: int) -> float:  # the score a song with ``below`` known songs nearer shows
        return round(float(1.0 - (1 + (n - below)) / (n + 1)), 4)

    near = round(shown * (n + 1))
    ranks = [j for j in range(near - 1, near + 2) if 0 <= j <= n and shown_at(j) == shown]
    if len(ranks) != 1:
        return None
    j = ranks[0]  # the song's score lies in (oof[j - 1], oof[j]]
    if j > 0 and oof[j - 1] >= threshold:
        return True
    if j < n and oof[j] <= threshold:
        return False
    return None


def table_scores(n_samples: int, bounds, probabilities: np.ndarray, timeline: bool,
                 rows: np.ndarray | None = None) -> WindowScores:
    """:class:`WindowScores` of a kind whose timeline is its own windows."""
    return WindowScores(n_samples, list(bounds), probabilities,
                        timeline_bounds=list(bounds) if timeline else None,
                        timeline_probabilities=probabilities if timeline else None, rows=rows)


def with_silence(prediction: Prediction, peak: float) -> Prediction:
    """``prediction`` with the silent note first when ``peak`` (largest absolute sample) is below 1e-6.

    The decoder warns too (:class:`genrekit.audio.decode.SilentAudioWarning`); the note travels with the
    result (JSON, results stores, the web page), where a warning on stderr does not.
    """
    if prediction.ok and peak < audio.SILENCE:
        prediction.notes.insert(0, silent_note(peak))
    return prediction
