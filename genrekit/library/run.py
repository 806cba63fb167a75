"""Classify a music library: many files, results kept as each finishes, reruns skip what is done.

The job behind ``genrekit classify``. For each file:

1. its identity is found (:func:`genrekit.audio.files.identity`, its audio's hash, remembered by
   path, size and modification time so an unchanged library is only ``stat``-ed);
2. a results store (:mod:`genrekit.library.results`: a JSON-lines log or a SQLite database) is asked for a result of
   that content with this model (:func:`model_key`); one found means the file is
   *skipped*;
3. the others are classified on an engine (:mod:`genrekit.engines`: in-process, a
   process pool, or Ray, where each worker loads the model once), and each
   result is stored, durably, as soon as it arrives, by this single process.

A run killed at any moment (even SIGKILL) keeps every result stored before the kill,
and the next run classifies only the rest. Files that fail are recorded with the
reason and retried by the next run (a failure that repeats unchanged is not recorded
twice). The store keeps every genre's probability and, for a run with ``--timeline``, the
timeline of every file: a later run with ``--timeline`` reuses only results that have one
(a run without a timeline reads a long song's patch budget only, a third of the dense
plan's cost, so it does not pay for a timeline nobody asked for); with a backbone
model (the default) it also keeps each song's descriptive tags and its embedding, which
``genrekit similar`` ranks songs by (:mod:`genrekit.library.similar`).

Results are keyed by content, not by name: a renamed or copied file is not
classified again, and an edited one is. Writing genre tags changes a file's bytes,
so its result is stored under the new content hash as well.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from genrekit.engines import make_engine
from genrekit.engines.batch import Failure, Result, Summary, progress_bar
from genrekit.engines.cached import cached_or_computed
from genrekit.audio.files import FileId
from genrekit.prediction import Prediction
from genrekit.library.results import ResultsStore, open_results

__all__ = ["LibraryRun", "FileResult", "classify_library", "classify_worker", "model_key"]



def model_key(clf) -> str:
    """What a stored result must have been computed with to be reused.

    The weights' SHA-256 (first 16 hex digits) and the feature set's key, which
    together fix every number, plus the window and hop, which fix the timeline:
    ``"3f2a...-9c1e...-w30-h15"``; and, for a bundle that stores a calibration, a "none of these"
    decision or several-genre thresholds, the first 8 hex digits of their SHA-256 (``-d...``): a
    refit of those changes the probabilities, flags and scores a stored result holds.

    Parameters
    ----------
    clf : genrekit.models.protocol.GenreClassifier
    """
    b = clf.bundle

    def seconds(value):
        return "all" if value is None else f"{value:g}"

    key = f"{b.sha256[:16]}-{b.feature_set.key}-w{seconds(b.window)}-h{seconds(b.hop)}"
    decided = getattr(b, "decision_sha256", None)  # computed once per bundle, not per song
    return key + f"-d{decided[:8]}" if decided else key


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


# --- classifying ------------------------------------------------------------------------
def classify_worker(path: str | os.PathLike, model, timeline: bool = False,
                    unknown_rate: float | None = None) -> tuple[str, Prediction]:
    """Classify one file: the worker of :class:`LibraryRun` (module-level: pool processes import it).

    ``model`` is a bundle path (or ``None``) or a :class:`genrekit.models.registry.PackedModel`
    (engines whose workers may not see this machine's files), loaded once per worker process
    (:func:`genrekit.models.registry.worker_model`). Returns the model's :func:`model_key` and
    the file's :class:`~genrekit.prediction.Prediction`; ``timeline``: with its timeline (the dense
    plan, every second of the song read; without, the bundle's patch budget, which may read only
    part of a long song: :meth:`genrekit.models.protocol.GenreClassifier.classify_file`);
    ``unknown_rate``: the run's false-unknown rate (``None``: the bundle's), which travels with
    each task since workers load the model from its files.
    Raises :class:`genrekit.errors.AudioError` for a file that cannot be decoded.
    """
    from genrekit.models.registry import worker_model

    clf = worker_model(model).at_unknown_rate(unknown_rate)
    return model_key(clf), clf.classify_file(path, timeline=timeline)


@dataclass
class FileResult:
    """What became of one file.

    Attributes
    ----------
    index : int
        Position in the run's input order.
    path : Path
    prediction : genrekit.prediction.Prediction
        The result (its ``error`` is set for a file that failed).
    content_hash : str or None
        The file's content hash, as stored (after tag writing, the new bytes' hash).
    model_key : str
    skipped : bool
        Taken from the results store, not classified now.
    tag : genrekit.tagging.plan.TagChange or None
        What tag writing did, when asked for.
    time : str
        When it was classified (ISO 8601, UTC).
    """

    index: int
    path: Path
    prediction: Prediction
    content_hash: str | None = None
    model_key: str | None = None
    skipped: bool = False
    tag: object = None
    time: str = ""

    @property
    def ok(self) -> bool:
        return self.prediction.ok

    @property
    def record(self) -> dict:
        """The result as a results store keeps it (:data:`genrekit.prediction.RECORD_FIELDS`,
        ``content_hash``, ``model_key``, ``time``)."""
        return dict(self.prediction.to_record(), content_hash=self.content_hash, model_key=self.model_key,
                    time=self.time)

    def public(self, *, timeline: bool = False, top: int | None = None, precision: int | None = None,
               name: str | None = None) -> dict:
        """The output object, in :mod:`genrekit.output`'s convention (:func:`genrekit.output.public`)."""
        from genrekit.output import public

        return public(self.prediction, timeline=timeline, top=top, precision=precision, name=name)


class LibraryRun:
    """Classify many files; iterate to get each :class:`FileResult` as it becomes available.

    Skipped files come first (input order), then classified ones in completion order
    (input order with ``jobs=1``). :attr:`summary` (done / skipped / failed) and
    :attr:`tags` are complete once iteration ends.

    Parameters
    ----------
    paths : sequence of path
        Audio files (:func:`genrekit.audio.files.collect_audio_files` finds them in folders).
    model : str, path, GenreClassifier or None
        A bundle (folder), a loaded model, or ``None`` for the bundled default.
    store : ResultsStore or None
        Where results go and reruns find them (:func:`open_results`); ``None``: keep nothing.
    jobs : int
        Worker processes (``1``: this process; ``0``: one per CPU), when no ``engine`` is given.
    engine : genrekit.engines.Engine, optional
        Where files are classified (default: ``LocalEngine(jobs)``); opened and closed
        by the caller.
    tagger : genrekit.tagging.plan.TagPlan or None
        Write each file's genres into its tags as this plan says (genres, mode, names,
        dry run, undo journal), skipped files included; ``None``: touch no file.
    progress : bool
        Draw a progress bar on stderr when it is a terminal.
    timeline : bool
        Compute each file's timeline (and reuse only stored results that have one).

    Raises
    ------
    genrekit.errors.BundleError
        When the model cannot be loaded (before any file is looked at).
    """

    def __init__(self, paths: Sequence[str | os.PathLike], model=None, *, store: ResultsStore | None = None,
                 jobs: int = 1, engine=None, tagger=None, progress: bool = True,
                 timeline: bool = False) -> None:
        from genrekit.models.protocol import GenreClassifier
        from genrekit.models.registry import load_model

        self.paths = list(dict.fromkeys(Path(p) for p in paths))  # each file once, in order
        if isinstance(model, GenreClassifier):
            self.clf, self._model_arg = model, str(model.bundle.path)
        else:
            self.clf = load_model(model)
            self._model_arg = None if model is None else os.fspath(model)
        self.key = model_key(self.clf)
        self.store = store
        self.engine = engine if engine is not None else make_engine("local", jobs=jobs)
        self.tagger = tagger
        self.progress = progress
        self.timeline = timeline
        self.summary = Summary("classify", total=len(self.paths), done_label="done", cached_label="skipped")
        self.tags: list = []

    @property
    def labels(self) -> list[str]:
        return self.clf.labels

    def __iter__(self) -> Iterator[FileResult]:
        import functools

        bar = progress_bar(len(self.paths), "classify") if self.progress else None
        if self.tagger is not None and not self.tagger.dry_run:
            self._remove_stale_copies()
        pending: dict[Path, tuple[int, FileId | None, dict | None]] = {}
        index_of = {path: index for index, path in enumerate(self.paths)}

        bundle = getattr(self.clf, "bundle", None)
        # a result stored before stores kept genres (results schema 5) is computed again for a model that gives them
        gives_genres = bool(getattr(bundle, "multilabel", None) or getattr(bundle, "tag_genres", None))

        def lookup(path: Path):
            fid = previous = None
            if self.store is not None:
                try:
                    fid = self.store.file_id(path)
                except OSError:
                    fid = None  # missing or unreadable: the decoder says why, in its words
                else:
                    previous = self.store.lookup(fid.content_hash, self.key)
            pending[path] = (index_of[path], fid, previous)
            if (previous is not None and previous.get("error") is None
                    and (previous.get("timeline") is not None or not self.timeline)
                    and (previous.get("genres") is not None or not gives_genres)):
                holds, unknown = self.clf.stored_unknown(previous)  # decided again at this run's rate
                return dict(previous, unknown=unknown) if holds else None
            return None

        def make_worker(todo):
            return functools.partial(classify_worker, model=self._worker_model() if todo else None,
                                     timeline=self.timeline, unknown_rate=self.clf.unknown_rate)

        try:
            for path, previous, outcome in cached_or_computed(self.paths, lookup, self.engine, make_worker):
                index, fid, stored = pending.pop(path)
                if previous is not None:
                    self.summary.cached += 1
                    # Today's notes (this model's rules), not the stored run's.
                    pred = self.clf.annotate(Prediction.from_record(dict(previous, path=str(path),
                                                                         model=self.clf.name)))
                    result = FileResult(index, path, pred, previous.get("content_hash"), self.key, skipped=True,
                                        time=previous.get("time") or "")
                    self._tag(result, fid, store_always=False)
                    self._note_unknown(result)
                    _tick(bar)
                    yield result
                    continue
                if outcome.ok and outcome.value[0] != self.key:
                    # The bundle on disk changed under a pool worker: its numbers are not this model's.
                    outcome = Result(outcome.item, failure=Failure(
                        str(outcome.item), "the model bundle changed on disk during the run"))
                self.summary.record(outcome)
                result = self._result(index, outcome, fid)
                if result.ok:
                    self._tag(result, fid, store_always=True)
                    self._note_unknown(result)
                elif self.store is not None and fid is not None and (
                        stored is None or stored.get("error") != result.prediction.error):
                    self.store.put(result.record, fid)  # a repeated, unchanged failure is not logged again
                _tick(bar)
                yield result
        finally:
            if bar is not None:
                bar.close()

    def _note_unknown(self, result: FileResult) -> None:
        """List a song of none of the model's genres in the summary (:attr:`genrekit.engines.batch.Summary.unknown`)."""
        if result.prediction.unknown:
            self.summary.unknown.append((str(result.path), result.prediction.label, result.prediction.unknown_score))

    def _remove_stale_copies(self) -> None:
        """Delete tagged copies a killed run left next to these files (genrekit's own pattern only)."""
        from genrekit.tagging.safe_write import remove_stale_copies

        for folder in sorted({os.path.dirname(os.path.realpath(p)) for p in self.paths}):
            for path in remove_stale_copies(folder):
                self.summary.warnings.append(f"{path}: removed a temporary tagged copy left by an interrupted run")

    def _worker_model(self):
        """The model as workers get it: its path where they share our files, else its bytes."""
        if self.engine.shares_files:
            return self._model_arg
        from genrekit.models.registry import PackedModel

        return PackedModel.of(self.clf)

    def _result(self, index: int, outcome, fid: FileId | None) -> FileResult:
        if outcome.ok:
            pred = outcome.value[1]
            pred.model = self.clf.name  # the name this run gives the model (workers load it by path)
        else:
            pred = Prediction.failure(str(outcome.item), self.clf.name, outcome.failure.reason)
        return FileResult(index, outcome.item, pred, fid.content_hash if fid else None, self.key, time=_now())

    def _tag(self, result: FileResult, fid: FileId | None, *, store_always: bool) -> None:
        """Write the tag (if asked), then store the result under the file's final content hash."""
        if self.tagger is not None:
            result.tag = self.tagger.apply(result.path, result.prediction)
            self.tags.append(result.tag)
            if result.tag.changed and self.refile(result, store=store_always) is not None:
                return
        if store_always and self.store is not None and fid is not None:
            self.store.put(result.record, fid)

    def refile(self, result: FileResult, *, store: bool = False) -> FileId | None:
        """File ``result`` under its file's content as it is now, after the file's tags were written.

        Writing tags changes a file's bytes but not its audio, so its identity mostly stays (a file
        whose container does not parse is keyed by its whole content, which changes): the result is
        stored under the identity now if it changed (or ``store``: a result not stored yet), and the
        file's size and mtime now are remembered, so that the next run skips the file without reading
        it. Returns the file's identity now, or ``None`` without a results store or when the file
        cannot be read (then nothing is stored).
        """
        if self.store is None:
            return None
        try:
            fid = self.store.file_id(result.path)
        except OSError:
            return None
        if store or fid.content_hash != result.content_hash:
            result.content_hash = fid.content_hash
            self.store.put(result.record, fid)
        else:
            self.store.hashes.remember(fid)
        return fid


def classify_library(inputs, model=None, *, out: str | os.PathLike | None = None,
                     **kwargs) -> tuple[list[FileResult], Summary]:
    """Classify files and folders: every file's :class:`FileResult` in input order, and a summary.

    Parameters
    ----------
    inputs : iterable of str or path-like
        Files and folders, searched as :func:`genrekit.audio.files.collect_audio_files` does.
    model : bundle path, GenreClassifier or None
        ``None``: the bundled default model.
    out : str or path-like, optional
        A results store to write and resume from (``.jsonl``, ``.sqlite``, ``.db``);
        opened and closed here. Or pass an open one as ``store=``.
    **kwargs
        As :class:`LibraryRun` (``jobs``, ``tagger``, ``progress``, ``store``).

    Examples
    --------
    >>> results, summary = classify_library(["~/Music"], out="genres.jsonl", jobs=2)  # doctest: +SKIP
    >>> [(r.path.name, r.record["label"]) for r in results if r.ok][:2]               # doctest: +SKIP
    [('song.mp3', 'jazz'), ('tune.flac', 'blues')]
    """
    from genrekit.audio.files import collect_audio_files

    paths = collect_audio_files(os.path.expanduser(os.fspath(p)) for p in inputs)
    store = open_results(out) if out is not None else kwargs.pop("store", None)
    try:
        run = LibraryRun(paths, model, store=store, **kwargs)
        results = sorted(run, key=lambda r: r.index)
    finally:
        if out is not None:
            store.close()
    return results, run.summary


def _tick(bar) -> None:
    if bar is not None:
        bar.update(1)
