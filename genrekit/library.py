"""Classify a music library: many files, results kept as each finishes, reruns skip what is done.

The job behind ``genrekit classify``. For each file:

1. its content hash is found (:func:`genrekit.files.content_hash`, remembered by
   path, size and modification time so an unchanged library is only ``stat``-ed);
2. a results store (a JSON-lines log or a SQLite database) is asked for a result of
   that content with this model (:func:`model_key`); one found means the file is
   *skipped*;
3. the others are classified on an engine (:mod:`genrekit.engines`: in-process, a
   process pool, or Ray, where each worker loads the model once), and each
   result is stored, durably, as soon as it arrives, by this single process.

A run killed at any moment (even SIGKILL) keeps every result stored before the kill,
and the next run classifies only the rest. Files that fail are recorded with the
reason and retried by the next run (a failure that repeats unchanged is not recorded
twice). The store keeps every genre's probability and the timeline of every file, so
any later run, with or without ``--timeline``, can be answered from it; with a backbone
model (the default) it also keeps each song's descriptive tags and its embedding, which
``genrekit similar`` ranks songs by (:mod:`genrekit.similar`).

Results are keyed by content, not by name: a renamed or copied file is not
classified again, and an edited one is. Writing genre tags changes a file's bytes,
so its result is stored under the new content hash as well.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from ._io import jsonable
from .batch import Failure, Result, Summary, progress_bar
from .errors import ResultsError
from .files import FILE_HASHES_TABLE, FileHashes, FileId, SqliteFileHashes
from .prediction import Prediction

#: Suffixes of ``--out`` files that are results stores (resumable), by kind.
STORE_SUFFIXES = {".jsonl": "jsonl", ".sqlite": "sqlite", ".sqlite3": "sqlite", ".db": "sqlite"}



def model_key(clf) -> str:
    """What a stored result must have been computed with to be reused.

    The weights' SHA-256 (first 16 hex digits) and the feature set's key, which
    together fix every number, plus the window and hop, which fix the timeline:
    ``"3f2a...-9c1e...-w30-h15"``.

    Parameters
    ----------
    clf : genrekit.predict.GenreClassifier
    """
    b = clf.bundle

    def seconds(value):
        return "all" if value is None else f"{value:g}"

    return f"{b.sha256[:16]}-{b.feature_set.key}-w{seconds(b.window)}-h{seconds(b.hop)}"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


# --- results stores ------------------------------------------------------------------
class ResultsStore:
    """Where results go as they finish, and where a rerun finds them.

    Subclasses: :class:`JsonlResults` and :class:`SqliteResults`; open one with
    :func:`open_results`. A record is a dict with the :data:`~genrekit.prediction.RECORD_FIELDS` (all
    probabilities in the model's label order, the whole timeline) and
    ``content_hash``, ``model_key`` and ``time``.
    """

    path: Path

    def lookup(self, content_hash: str, key: str) -> dict | None:
        """The latest record of this content and model, or ``None``."""
        raise NotImplementedError

    def put(self, record: dict, fid: FileId | None) -> None:
        """Store ``record`` durably before returning (``fid``: the file it describes, as now)."""
        raise NotImplementedError

    def records(self) -> list[dict]:
        """The latest record of every (content, model) pair."""
        raise NotImplementedError

    #: Content hashes of files by path, size and mtime (:class:`genrekit.files.FileHashes`).
    hashes: FileHashes

    def file_id(self, path: str | os.PathLike) -> FileId:
        """The content hash of ``path``, re-reading the file only if its size or mtime changed.

        Raises ``OSError`` when the file cannot be read.
        """
        return self.hashes.identify(path)

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r})"


class JsonlResults(ResultsStore):
    """Results as JSON lines, one object per file, appended and fsynced as each finishes.

    The file is an append-only log: a rerun reads it, then appends. The latest line
    for a (content_hash, model_key) pair wins. Besides the record's fields each line
    carries ``file``, ``size`` and ``mtime_ns``, so that a rerun need not re-read
    unchanged files to know their hashes. Only line offsets are kept in memory.

    A line half-written when a run was killed (no newline at the end of the file) is
    cut off when the file is opened again, with a warning; a complete object merely
    lacking its newline gets one. Lines elsewhere that are not JSON objects are
    ignored (with a warning) and kept. While open, the file is locked (``flock``)
    so that two runs cannot interleave their lines.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            _lock(self._fd, self.path)
            self._by_key: dict[tuple[str, str], tuple[int, int]] = {}  # -> (offset, length) of the line
            self.hashes = FileHashes()  # seeded from the lines' file, size and mtime_ns
            self._load()
        except BaseException:
            os.close(self._fd)
            raise

    def _load(self) -> None:
        bad, number, offset = [], 0, 0
        with open(self.path, "rb") as f:  # streamed: a large log is never all in memory
            for line in f:
                number += 1
                if not line.endswith(b"\n"):  # the last line, unfinished
                    self._repair_tail(offset, line)
                    break
                record = _json_object(line) if line.strip() else {}
                if record is None or (record and not isinstance(record.get("model_key"), str)):
                    bad.append(number)
                elif record:
                    self._index(record, offset, len(line))
                offset += len(line)
        if bad:
            warnings.warn(f"{self.path}: ignored {len(bad)} line(s) that are not genrekit results "
                          f"(line {', '.join(map(str, bad[:5]))}{', ...' if len(bad) > 5 else ''})", stacklevel=3)

    def _repair_tail(self, offset: int, tail: bytes) -> None:
        record = _json_object(tail)
        if record is not None:
            self._append(b"\n")  # a whole record that lost only its newline
            if isinstance(record.get("model_key"), str):
                self._index(record, offset, len(tail) + 1)
            return
        os.ftruncate(self._fd, offset)
        os.fsync(self._fd)
        warnings.warn(f"{self.path}: dropped a half-written last line ({len(tail)} bytes) "
                      f"left by an interrupted run; that file will be classified again", stacklevel=4)

    def _index(self, record: dict, offset: int, length: int) -> None:
        h = record.get("content_hash")
        if isinstance(h, str):
            self._by_key[(h, record["model_key"])] = (offset, length)
            if isinstance(record.get("file"), str) and isinstance(record.get("size"), int) \
                    and isinstance(record.get("mtime_ns"), int):
                self.hashes.remember(FileId(h, record["file"], record["size"], record["mtime_ns"]))

    def _append(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view):]
        os.fsync(self._fd)

    def _read(self, where: tuple[int, int]) -> dict:
        offset, length = where
        return json.loads(os.pread(self._fd, length, offset))

    def lookup(self, content_hash: str, key: str) -> dict | None:
        where = self._by_key.get((content_hash, key))
        return None if where is None else self._read(where)

    def put(self, record: dict, fid: FileId | None) -> None:
        record = dict(record)
        if fid is not None:
            record.update(file=fid.file, size=fid.size, mtime_ns=fid.mtime_ns)
        line = json.dumps(jsonable(record), ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        data = line.encode("utf-8") + b"\n"
        # One write of the whole line, then fsync: a kill leaves at most one partial last line.
        offset = os.fstat(self._fd).st_size
        self._append(data)
        self._index(record, offset, len(data))

    def records(self) -> list[dict]:
        return [self._read(where) for where in self._by_key.values()]

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # releases the lock
            self._fd = None


def _json_object(line: bytes) -> dict | None:
    try:
        value = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _lock(fd: int, path: Path) -> None:
    try:
        import fcntl
    except ImportError:  # not POSIX: no locking, as with any other tool appending to a file
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise ResultsError(f"{path} is being written by another genrekit run") from None


#: Bump with a migration (:data:`_MIGRATIONS`) when the tables change.
SCHEMA_VERSION = 2

_SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    content_hash  TEXT NOT NULL,     -- genrekit.files.content_hash of the file's bytes
    model_key     TEXT NOT NULL,     -- genrekit.library.model_key
    path          TEXT NOT NULL,     -- as given when it was classified
    label         TEXT,              -- NULL when error is set
    probabilities TEXT,              -- JSON {genre: score}, the model's label order
    duration      REAL,              -- seconds
    timeline      TEXT,              -- JSON [{start, end, probabilities}]
    tags          TEXT,              -- JSON [{label, score}] (backbone models), best first
    embedding     BLOB,              -- float32 little-endian (backbone models)
    model         TEXT NOT NULL,     -- the model's name
    error         TEXT,              -- why the file could not be classified
    time          TEXT NOT NULL,     -- ISO 8601, UTC
    PRIMARY KEY (content_hash, model_key)
);
""" + FILE_HASHES_TABLE
#: Statements taking a database of version N - 1 to N.
_MIGRATIONS = {2: "ALTER TABLE results ADD COLUMN tags TEXT; ALTER TABLE results ADD COLUMN embedding BLOB;"}


class SqliteResults(ResultsStore):
    """Results in a SQLite database: table ``results`` keyed by (content_hash, model_key).

    Each :meth:`put` is its own committed transaction (WAL journal), so a kill at
    any moment leaves a consistent database holding every finished result. Other
    programs can read it while a run writes.
    """

    def __init__(self, path: str | os.PathLike, *, timeout: float = 30.0) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, timeout=timeout, isolation_level=None)
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")  # crash-consistent under WAL
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise ResultsError(f"{self.path} was written by a newer genrekit (schema {version}, "
                                   f"this version reads {SCHEMA_VERSION})")
            has_results = self._db.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'results'").fetchone()
            steps = "".join(_MIGRATIONS[v] for v in range(max(version, 1) + 1, SCHEMA_VERSION + 1)) if has_results else ""
            self._db.executescript(f"BEGIN; {_SCHEMA} {steps} PRAGMA user_version={SCHEMA_VERSION}; COMMIT;")
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise ResultsError(f"{self.path}: not a usable SQLite results database ({exc})") from None
        except BaseException:
            self._db.close()
            raise
        self.hashes = SqliteFileHashes(self._sql)

    _COLUMNS = ("content_hash", "model_key", "path", "label", "probabilities", "duration",
                "timeline", "tags", "embedding", "model", "error", "time")
    _JSON = ("probabilities", "timeline", "tags")

    def _sql(self, query: str, params=()) -> list:
        """Run one statement and fetch its rows; a damaged database is a one-line :class:`ResultsError`."""
        try:
            return self._db.execute(query, params).fetchall()
        except sqlite3.DatabaseError as exc:
            raise ResultsError(f"{self.path}: the results database is damaged ({exc}); move it away "
                               f"and run again (its files will be classified again), or give another --out") from None

    def lookup(self, content_hash: str, key: str) -> dict | None:
        rows = self._sql(
            f"SELECT {', '.join(self._COLUMNS)} FROM results WHERE content_hash = ? AND model_key = ?",
            (content_hash, key),
        )
        if not rows:
            return None
        try:
            return self._record(rows[0])
        except (ValueError, TypeError):  # a damaged JSON field: classify the file again
            return None

    def _record(self, row) -> dict:
        record = dict(zip(self._COLUMNS, row))
        for field in self._JSON:
            if record[field] is not None:
                record[field] = json.loads(record[field])
        if record["embedding"] is not None:
            record["embedding"] = _embedding_from_bytes(record["embedding"])
        return record

    def put(self, record: dict, fid: FileId | None) -> None:
        values = dict(record)
        for field in self._JSON:
            if values.get(field) is not None:
                values[field] = json.dumps(jsonable(values[field]), allow_nan=False, separators=(",", ":"))
        if values.get("embedding") is not None:
            values["embedding"] = _embedding_to_bytes(values["embedding"])
        params = [values.get(c) for c in self._COLUMNS]
        with self._transaction():
            self._sql(
                f"INSERT OR REPLACE INTO results ({', '.join(self._COLUMNS)}) "
                f"VALUES ({', '.join('?' * len(self._COLUMNS))})", params,
            )
            if fid is not None:
                self.hashes.remember(fid)

    def records(self) -> list[dict]:
        rows = self._sql(f"SELECT {', '.join(self._COLUMNS)} FROM results ORDER BY path, model_key")
        return [self._record(row) for row in rows]

    @contextlib.contextmanager
    def _transaction(self):
        self._sql("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("ROLLBACK")
            raise
        self._sql("COMMIT")

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


def _embedding_to_bytes(vector) -> bytes:
    import numpy as np

    return np.asarray(vector, dtype="<f4").tobytes()


def _embedding_from_bytes(blob: bytes) -> list[float]:
    import numpy as np

    return np.frombuffer(blob, dtype="<f4").astype(float).tolist()


def open_results(path: str | os.PathLike) -> ResultsStore:
    """The results store in ``path``: ``.jsonl`` lines, or a SQLite database (``.sqlite``, ``.db``).

    Raises :class:`ResultsError` (or ``OSError``) when it cannot be opened.
    """
    kind = STORE_SUFFIXES.get(Path(path).suffix.lower())
    if kind is None:
        raise ValueError(f"{path}: a results store is a {', '.join(sorted(STORE_SUFFIXES))} file")
    return JsonlResults(path) if kind == "jsonl" else SqliteResults(path)


# --- classifying ------------------------------------------------------------------------
def classify_worker(path: str | os.PathLike, model) -> tuple[str, Prediction]:
    """Classify one file: the worker of :class:`LibraryRun` (module-level: pool processes import it).

    ``model`` is a bundle path (or ``None``) or a :class:`genrekit.models.registry.PackedModel`
    (engines whose workers may not see this machine's files), loaded once per worker process
    (:func:`genrekit.models.registry.worker_model`). Returns the model's :func:`model_key` and
    the file's :class:`~genrekit.prediction.Prediction`, with its timeline (a store keeps it).
    Raises :class:`genrekit.audio.AudioError` for a file that cannot be decoded.
    """
    from .models.registry import worker_model

    clf = worker_model(model)
    return model_key(clf), clf.classify_file(path, timeline=True)


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
    tag : genrekit.tags.TagChange or None
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
        from .output import public

        return public(self.prediction, timeline=timeline, top=top, precision=precision, name=name)


class LibraryRun:
    """Classify many files; iterate to get each :class:`FileResult` as it becomes available.

    Skipped files come first (input order), then classified ones in completion order
    (input order with ``jobs=1``). :attr:`summary` (done / skipped / failed) and
    :attr:`tags` are complete once iteration ends.

    Parameters
    ----------
    paths : sequence of path
        Audio files (:func:`genrekit.files.collect_audio_files` finds them in folders).
    model : str, path, GenreClassifier or None
        A bundle (folder), a loaded model, or ``None`` for the bundled default.
    store : ResultsStore or None
        Where results go and reruns find them (:func:`open_results`); ``None``: keep nothing.
    jobs : int
        Worker processes (``1``: this process; ``0``: one per CPU), when no ``engine`` is given.
    engine : genrekit.engines.Engine, optional
        Where files are classified (default: ``LocalEngine(jobs)``); opened and closed
        by the caller.
    write_tags : bool
        Write each file's top genre into its tags (:func:`genrekit.tags.write_genre`),
        skipped files included.
    dry_run : bool
        With ``write_tags``: only say what would change.
    min_score : float
        With ``write_tags``: leave files whose top score is below this untouched
        (their :class:`~genrekit.tags.TagChange` says :data:`~genrekit.tags.UNCERTAIN`).
    progress : bool
        Draw a progress bar on stderr when it is a terminal.

    Raises
    ------
    genrekit.models.bundle.BundleError
        When the model cannot be loaded (before any file is looked at).
    """

    def __init__(self, paths: Sequence[str | os.PathLike], model=None, *, store: ResultsStore | None = None,
                 jobs: int = 1, engine=None, write_tags: bool = False, dry_run: bool = False, min_score: float = 0.0,
                 progress: bool = True) -> None:
        from .models.protocol import GenreClassifier
        from .models.registry import load_model

        self.paths = list(dict.fromkeys(Path(p) for p in paths))  # each file once, in order
        if isinstance(model, GenreClassifier):
            self.clf, self._model_arg = model, str(model.bundle.path)
        else:
            self.clf = load_model(model)
            self._model_arg = None if model is None else os.fspath(model)
        self.key = model_key(self.clf)
        self.store = store
        self.jobs = jobs
        if engine is None:
            from .engines.local import LocalEngine

            engine = LocalEngine(jobs)
        self.engine = engine
        self.write_tags = write_tags
        self.dry_run = dry_run
        self.min_score = min_score
        self.progress = progress
        self.summary = Summary("classify", total=len(self.paths), done_label="done", cached_label="skipped")
        self.tags: list = []

    @property
    def labels(self) -> list[str]:
        return self.clf.labels

    def __iter__(self) -> Iterator[FileResult]:
        import functools

        bar = progress_bar(len(self.paths), "classify") if self.progress else None
        if self.write_tags and not self.dry_run:
            self._remove_stale_copies()
        try:
            todo: list[Path] = []
            pending: dict[Path, tuple[int, FileId | None, dict | None]] = {}
            for index, path in enumerate(self.paths):
                fid = previous = None
                if self.store is not None:
                    try:
                        fid = self.store.file_id(path)
                    except OSError:
                        fid = None  # missing or unreadable: the decoder says why, in its words
                    else:
                        previous = self.store.lookup(fid.content_hash, self.key)
                if previous is not None and previous.get("error") is None:
                    self.summary.cached += 1
                    # Today's notes (this model's rules), not the stored run's.
                    pred = self.clf.annotate(Prediction.from_record(dict(previous, path=str(path),
                                                                         model=self.clf.name)))
                    result = FileResult(index, path, pred, previous.get("content_hash"), self.key, skipped=True,
                                        time=previous.get("time") or "")
                    self._tag(result, fid, store_always=False)
                    _tick(bar)
                    yield result
                    continue
                pending[path] = (index, fid, previous)
                todo.append(path)

            worker = functools.partial(classify_worker, model=self._worker_model() if todo else None)
            for outcome in self.engine.run(todo, worker):
                index, fid, previous = pending.pop(outcome.item)
                if outcome.ok and outcome.value[0] != self.key:
                    # The bundle on disk changed under a pool worker: its numbers are not this model's.
                    outcome = Result(outcome.item, failure=Failure(
                        str(outcome.item), "the model bundle changed on disk during the run"))
                self.summary.record(outcome)
                result = self._result(index, outcome, fid)
                if result.ok:
                    self._tag(result, fid, store_always=True)
                elif self.store is not None and fid is not None and (
                        previous is None or previous.get("error") != result.prediction.error):
                    self.store.put(result.record, fid)  # a repeated, unchanged failure is not logged again
                _tick(bar)
                yield result
        finally:
            if bar is not None:
                bar.close()

    def _remove_stale_copies(self) -> None:
        """Delete tagged copies a killed run left next to these files (genrekit's own pattern only)."""
        from .tags import remove_stale_copies

        for folder in sorted({os.path.dirname(os.path.realpath(p)) for p in self.paths}):
            for path in remove_stale_copies(folder):
                self.summary.warnings.append(f"{path}: removed a temporary tagged copy left by an interrupted run")

    def _worker_model(self):
        """The model as workers get it: its path where they share our files, else its bytes."""
        if self.engine.shares_files:
            return self._model_arg
        from .models.registry import PackedModel

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
        if self.write_tags:
            from .tags import UNCERTAIN, TagChange, write_genre

            label = result.prediction.label
            score = (result.prediction.probabilities or {}).get(label, 0.0)
            if score < self.min_score:
                result.tag = TagChange(str(result.path), None, label, UNCERTAIN,
                                       f"top score {label} {score:.2f} < --min-score {self.min_score:g}")
            else:
                result.tag = write_genre(result.path, label, dry_run=self.dry_run)
            self.tags.append(result.tag)
            if result.tag.changed and self.store is not None:
                # New bytes, same audio: file the result under the new hash too, so the
                # next run skips this file.
                try:
                    fid = self.store.file_id(result.path)
                except OSError:
                    fid = None
                if fid is not None:
                    result.content_hash = fid.content_hash
                    store_always = True
        if store_always and self.store is not None and fid is not None:
            self.store.put(result.record, fid)


def classify_library(inputs, model=None, *, out: str | os.PathLike | None = None,
                     **kwargs) -> tuple[list[FileResult], Summary]:
    """Classify files and folders: every file's :class:`FileResult` in input order, and a summary.

    Parameters
    ----------
    inputs : iterable of str or path-like
        Files and folders, searched as :func:`genrekit.files.collect_audio_files` does.
    model : bundle path, GenreClassifier or None
        ``None``: the bundled default model.
    out : str or path-like, optional
        A results store to write and resume from (``.jsonl``, ``.sqlite``, ``.db``);
        opened and closed here. Or pass an open one as ``store=``.
    **kwargs
        As :class:`LibraryRun` (``jobs``, ``write_tags``, ``dry_run``, ``progress``, ``store``).

    Examples
    --------
    >>> results, summary = classify_library(["~/Music"], out="genres.jsonl", jobs=2)  # doctest: +SKIP
    >>> [(r.path.name, r.record["label"]) for r in results if r.ok][:2]               # doctest: +SKIP
    [('song.mp3', 'jazz'), ('tune.flac', 'blues')]
    """
    from .files import collect_audio_files

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
