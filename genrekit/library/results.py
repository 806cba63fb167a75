"""Results stores: where a library run keeps each file's result as it finishes, and a rerun finds it.

Two kinds behind one interface (:class:`ResultsStore`; :func:`open_results` picks by suffix):
a JSON-lines log (:class:`JsonlResults`, appended and fsynced) and a SQLite database
(:class:`SqliteResults`, WAL, one committed transaction per result). Both are keyed by
(content hash, model key) and know the files' content hashes by path, size and mtime
(:class:`genrekit.audio.files.FileHashes`, the file identity the feature cache uses too).
A record is :meth:`genrekit.prediction.Prediction.to_record` plus ``content_hash``,
``model_key`` and ``time``.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import warnings
from pathlib import Path

from genrekit._io import jsonable, name_from_sql, sql_name, try_lock
from genrekit.errors import ParameterError, ResultsError
from genrekit.audio.files import FILE_HASHES_TABLE, FileHashes, FileId, SqliteFileHashes
from genrekit.audio.identity import is_legacy
from genrekit.audio.rekey import KeyMap, apply_identity_plan, identity_plan, legacy_lines, legacy_map

#: Suffixes of ``--out`` files that are results stores (resumable), by kind.
STORE_SUFFIXES = {".jsonl": "jsonl", ".sqlite": "sqlite", ".sqlite3": "sqlite", ".db": "sqlite"}


class ResultsStore:
    """Where results go as they finish, and where a rerun finds them: :class:`JsonlResults` or
    :class:`SqliteResults` (:func:`open_results`). A record is a dict with the
    :data:`~genrekit.prediction.RECORD_FIELDS` (probabilities in the model's label order, the whole
    timeline) and ``content_hash``, ``model_key`` and ``time``."""

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

    #: Content hashes of files by path, size and mtime (:class:`genrekit.audio.files.FileHashes`).
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
            self._legacy: list[tuple[str, int, int, str]] = []  # lines keyed by whole-file hashes
            self._load()
            for record, fid in legacy_lines(self._legacy, self.hashes.recall, self._by_key, self._read):
                self.put(record, FileId(*fid))  # migrated: the line again, under the file's identity
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
                if is_legacy(h):
                    self._legacy.append((record["file"], record["size"], record["mtime_ns"], h))

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
        # A name that is not UTF-8 holds lone surrogates (caf\udce9): written as JSON's \udce9 escape,
        # it reads back as the same str, and os.fsencode gives the file's own bytes.
        data = line.encode("utf-8", "backslashreplace") + b"\n"
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
    except (UnicodeDecodeError, ValueError, RecursionError):  # RecursionError: nesting thousands deep
        return None
    return value if isinstance(value, dict) else None


def _lock(fd: int, path: Path) -> None:
    # no locking where there is none (not POSIX), as with any other tool appending to a file
    if try_lock(fd) is False:
        raise ResultsError(f"{path} is being written by another genrekit run")


#: Bump with a migration (:data:`_MIGRATIONS`) when the tables change.
SCHEMA_VERSION = 5

_SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    content_hash  TEXT NOT NULL,     -- genrekit.audio.identity key of the file (its audio's hash)
    model_key     TEXT NOT NULL,     -- genrekit.library.run.model_key
    path          TEXT NOT NULL,     -- as given when it was classified
    label         TEXT,              -- NULL when error is set
    probabilities TEXT,              -- JSON {genre: score}, the model's label order
    duration      REAL,              -- seconds
    timeline      TEXT,              -- JSON [{start, end, probabilities}]
    tags          TEXT,              -- JSON [{label, score}] (backbone models), best first
    embedding     BLOB,              -- float32 little-endian (backbone models)
    model         TEXT NOT NULL,     -- the model's name
    error         TEXT,              -- why the file could not be classified
    unknown       INTEGER,           -- 1: fits none of the model's genres, 0: fits one, NULL: not decided
    unknown_score REAL,              -- [0, 1): share of known training songs nearer; NULL: none
    genres        TEXT,              -- JSON [genre, ...] (several-genre models, genres from tags); NULL: the label
    time          TEXT NOT NULL,     -- ISO 8601, UTC
    PRIMARY KEY (content_hash, model_key)
);
""" + FILE_HASHES_TABLE
#: Statements taking a database of version N - 1 to N.
_MIGRATIONS = {2: "ALTER TABLE results ADD COLUMN tags TEXT; ALTER TABLE results ADD COLUMN embedding BLOB;",
               3: "ALTER TABLE results ADD COLUMN unknown INTEGER;",
               4: "", 5: ""}  # 4: keys re-computed from the files' audio (genrekit.audio.files.apply_identity_plan)
#: Columns added since (schema 5 on), added where a table lacks them whatever its version says.
_ADDED = {"unknown_score": "REAL", "genres": "TEXT"}


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
            tables = {row[0] for row in self._db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if tables and "results" not in tables:  # read only so far: another program's database is untouched
                raise ResultsError(f"{self.path}: another program's SQLite database (tables "
                                   f"{', '.join(sorted(tables)[:5])}), left unchanged: give another --out")
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")  # crash-consistent under WAL
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise ResultsError(f"{self.path} was written by a newer genrekit (schema {version}, "
                                   f"this version reads {SCHEMA_VERSION})")
            has_results = self._db.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'results'").fetchone()
            steps = "".join(_MIGRATIONS[v] for v in range(max(version, 1) + 1, SCHEMA_VERSION + 1)) if has_results else ""
            # Schema 4: files keyed by their audio; the files are read before the write lock is taken.
            plan = identity_plan(self._sql) if has_results and version < 4 else {}
            self._db.executescript(f"BEGIN; {_SCHEMA} {steps}")
            apply_identity_plan(self._sql, plan, "results", "time")
            for column in set(_ADDED) - {row[1] for row in self._db.execute("PRAGMA table_info(results)")}:
                self._db.execute(f"ALTER TABLE results ADD COLUMN {column} {_ADDED[column]}")
            self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            self._db.execute("COMMIT")
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise ResultsError(f"{self.path}: not a usable SQLite results database ({exc})") from None
        except BaseException:
            self._db.close()
            raise
        self.hashes = SqliteFileHashes(self._sql)

    _COLUMNS = ("content_hash", "model_key", "path", "label", "probabilities", "duration",
                "timeline", "tags", "embedding", "model", "error", "unknown", "unknown_score", "genres", "time")
    _JSON = ("probabilities", "timeline", "tags", "genres")

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
        record["path"] = name_from_sql(record["path"])
        for field in self._JSON:
            if record[field] is not None:
                record[field] = json.loads(record[field])
        if record["embedding"] is not None:
            record["embedding"] = _embedding_from_bytes(record["embedding"])
        if record["unknown"] is not None:
            record["unknown"] = bool(record["unknown"])
        return record

    def put(self, record: dict, fid: FileId | None) -> None:
        values = dict(record)
        for field in self._JSON:
            if values.get(field) is not None:
                values[field] = json.dumps(jsonable(values[field]), allow_nan=False, separators=(",", ":"))
        if values.get("embedding") is not None:
            values["embedding"] = _embedding_to_bytes(values["embedding"])
        if values.get("path") is not None:
            values["path"] = sql_name(values["path"])  # a BLOB when the name is not UTF-8
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


# --- read-only: the verbs that only read a results store --------------------------------------------
#: The longest line a read-only JSON-lines store reads (a line is one song's result: a few KB).
LINE_MAX = 16 << 20
_SQLITE_MAGIC = b"SQLite format 3\x00"
#: Columns a ``results`` table must have to be genrekit's (schema 1 on).
_REQUIRED = {"content_hash", "model_key", "path", "label", "probabilities", "model", "error", "time"}


class _ReadOnly(ResultsStore):
    """What the read-only stores share: records checked as untrusted (:mod:`genrekit.library.records`),
    the skipped ones kept in :attr:`skipped` as ``(where, problem)``, and no :meth:`put`."""

    read_only = True
    skipped: list[tuple[str, str]]
    #: Keys written before identities -> the files' identities, kept in memory only.
    keymap = KeyMap()

    def put(self, record: dict, fid: FileId | None) -> None:
        raise ResultsError(f"{self.path} was opened read-only")

    def skipped_warning(self) -> str | None:
        """One line naming the records skipped (``None`` when none was)."""
        from genrekit.library.records import skipped_line

        return skipped_line(self.path, self.skipped) if self.skipped else None

    def _refuse_foreign(self, total: int, what: str) -> None:
        if total and len(self.skipped) == total:
            where, problem = self.skipped[0]
            raise ResultsError(f"{self.path}: not a genrekit results file (no {what} is a genrekit result; "
                               f"{where}: {problem}); nothing was changed")


class JsonlReader(_ReadOnly):
    """A ``.jsonl`` results store opened read-only: never locked, repaired nor written.

    Lines that are not JSON objects with valid genrekit fields, and an unfinished last line
    (a run still writing it, or killed), are skipped; a non-empty file with no valid line is
    refused (:class:`ResultsError`). Lines longer than :data:`LINE_MAX` are skipped unread.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        from genrekit.audio.files import open_regular

        self.path = Path(path)
        try:
            self._file = open_regular(self.path)
        except OSError as exc:
            raise ResultsError(f"{self.path}: cannot read the results: {exc.strerror or exc}") from None
        self._by_key: dict[tuple[str, str], tuple[int, int]] = {}
        self.hashes = FileHashes()
        self.skipped = []
        self._legacy: list[tuple[str, int, int, str]] = []
        try:
            self._load()
        except BaseException:
            self.close()
            raise

    def _load(self) -> None:
        from genrekit.library.records import record_problem

        f, number, offset = self._file, 0, 0
        while True:
            line = f.readline(LINE_MAX)
            if not line:
                break
            number, length = number + 1, len(line)
            if not line.endswith(b"\n") and length == LINE_MAX:  # too long: skip to its end, unread
                while (more := f.readline(LINE_MAX)) and not more.endswith(b"\n"):
                    length += len(more)
                length += len(more)
                self.skipped.append((f"line {number}", f"longer than {LINE_MAX >> 20} MiB"))
            elif line.strip():
                record = _json_object(line)
                problem = "not a JSON object" if record is None else record_problem(record)
                if problem is not None:
                    self.skipped.append((f"line {number}", problem))
                else:
                    self._by_key[(record["content_hash"], record["model_key"])] = (offset, length)
                    self._remember(record)
            offset += length
        self._refuse_foreign(number, "line")
        if self._legacy:  # keys written before identities: mapped in memory
            self.keymap = KeyMap(legacy_map(self._legacy))
            self.keymap.offsets(self._by_key)

    def _remember(self, record: dict) -> None:
        if isinstance(record.get("file"), str) and all(
                isinstance(record.get(k), int) and not isinstance(record[k], bool) for k in ("size", "mtime_ns")):
            self.hashes.remember(FileId(record["content_hash"], record["file"], record["size"], record["mtime_ns"]))
            if is_legacy(record["content_hash"]):
                self._legacy.append((record["file"], record["size"], record["mtime_ns"], record["content_hash"]))

    def _read(self, where: tuple[int, int]) -> dict | None:
        from genrekit.library.records import record_problem

        record = _json_object(os.pread(self._file.fileno(), where[1], where[0]))
        return self.keymap.record(record) if record is not None and record_problem(record) is None else None

    def lookup(self, content_hash: str, key: str) -> dict | None:
        where = self._by_key.get((content_hash, key))
        return None if where is None else self._read(where)

    def records(self) -> list[dict]:
        return [r for r in map(self._read, self._by_key.values()) if r is not None]

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class SqliteReader(_ReadOnly):
    """A SQLite results store opened read-only (``mode=ro``): no table, pragma or byte changes.

    A file that is not a SQLite database, or a database without genrekit's ``results`` table
    (beets' ``library.db``), is refused (:class:`ResultsError`); rows whose fields do not decode
    or check are skipped. A database in WAL mode may gain SQLite's ``-shm``/``-wal`` files
    beside it (how SQLite lets a reader in while a run writes); the database itself is untouched.
    """

    def __init__(self, path: str | os.PathLike, *, timeout: float = 30.0) -> None:
        from urllib.parse import quote

        from genrekit.audio.files import open_regular

        self.path = Path(path)
        self.skipped = []
        try:
            with open_regular(self.path) as f:
                magic = f.read(len(_SQLITE_MAGIC))
        except OSError as exc:
            raise ResultsError(f"{self.path}: cannot read the results: {exc.strerror or exc}") from None
        if magic != _SQLITE_MAGIC:
            raise ResultsError(f"{self.path}: not a genrekit results file (not a SQLite database); nothing was changed")
        uri = "file:" + quote(os.path.abspath(self.path)) + "?mode=ro"
        self._db = sqlite3.connect(uri, uri=True, timeout=timeout, isolation_level=None)
        try:
            self._db.execute("PRAGMA query_only = 1")
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            columns = {row[1] for row in self._db.execute("PRAGMA table_info(results)")}
        except sqlite3.DatabaseError as exc:
            self.close()
            raise ResultsError(f"{self.path}: not a usable SQLite results database ({exc})") from None
        if not _REQUIRED <= columns:
            self.close()
            raise ResultsError(f"{self.path}: not a genrekit results file (a SQLite database without genrekit's "
                               f"results table: another program's?); nothing was changed")
        if version > SCHEMA_VERSION:
            self.close()
            raise ResultsError(f"{self.path} was written by a newer genrekit (schema {version}, "
                               f"this version reads {SCHEMA_VERSION})")
        self._columns = [c for c in SqliteResults._COLUMNS if c in columns]
        self.hashes = FileHashes()
        if version < 4:  # keys written before identities: the files still there are read, nothing written
            with contextlib.suppress(sqlite3.DatabaseError):
                self.keymap = KeyMap(identity_plan(lambda query, params: self._db.execute(query, params).fetchall()))

    def _rows(self, where: str = "", params=()) -> list:
        try:
            return self._db.execute(f"SELECT rowid, {', '.join(self._columns)} FROM results {where}",
                                    params).fetchall()
        except sqlite3.DatabaseError as exc:
            raise ResultsError(f"{self.path}: the results database is damaged ({exc})") from None

    def _checked(self, row) -> dict | None:
        from genrekit.library.records import record_problem

        record = dict.fromkeys(SqliteResults._COLUMNS)
        record.update(zip(self._columns, row[1:]))
        try:
            problem = _decode_row(record)
        except (ValueError, TypeError, RecursionError, UnicodeDecodeError):
            problem = "a field that does not decode"
        problem = problem or record_problem(record)
        if problem is not None:
            self.skipped.append((f"row {row[0]}", problem))
            return None
        return record

    def lookup(self, content_hash: str, key: str) -> dict | None:
        keys = self.keymap.keys(content_hash)
        rows = self._rows(f"WHERE content_hash IN ({', '.join('?' * len(keys))}) AND model_key = ? "
                          f"ORDER BY time DESC", (*keys, key))
        return self.keymap.record(self._checked(rows[0])) if rows else None

    def records(self) -> list[dict]:
        self.skipped = []
        rows = self._rows("ORDER BY time")
        latest = {}  # two legacy keys of one identity (a file before and after a tag write): the newest
        for r in map(self._checked, rows):
            if r is not None:
                latest[(self.keymap.record(r)["content_hash"], r["model_key"])] = r
        self._refuse_foreign(len(rows), "row")
        return sorted(latest.values(), key=lambda r: (r["path"], r["model_key"]))

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


def _decode_row(record: dict) -> str | None:
    """Decode a row's JSON and BLOB fields in place; a problem, or ``None``."""
    if isinstance(record["path"], bytes):
        record["path"] = name_from_sql(record["path"])
    for field in SqliteResults._JSON:
        if record[field] is not None:
            if not isinstance(record[field], str):
                return f"{field} is not JSON text"
            record[field] = json.loads(record[field])
    blob = record["embedding"]
    if blob is not None:
        if not isinstance(blob, bytes) or not blob or len(blob) % 4:
            return "embedding is not float32 values"
        record["embedding"] = _embedding_from_bytes(blob)
    if record["unknown"] is not None:
        if record["unknown"] not in (0, 1):
            return "unknown is not 0 or 1"
        record["unknown"] = bool(record["unknown"])
    return None


def open_results(path: str | os.PathLike, mode: str = "w") -> ResultsStore:
    """The results store in ``path``: ``.jsonl`` lines, or a SQLite database (``.sqlite``, ``.db``).

    ``mode="w"`` (a library run) creates, repairs and migrates it; ``mode="r"`` (the read-only
    verbs: ``playlists``, ``similar``, ``serve --library``) opens an existing one read-only
    (:class:`JsonlReader`, :class:`SqliteReader`): no byte of it changes, and a file that is
    not a genrekit results store is refused.

    Raises :class:`ResultsError` (or ``OSError``) when it cannot be opened.
    """
    if mode not in ("r", "w"):
        raise ParameterError(f"open_results: mode is 'r' or 'w', got {mode!r}")
    kind = STORE_SUFFIXES.get(Path(path).suffix.lower())
    if kind is None:
        raise ParameterError(f"{path}: a results store is a {', '.join(sorted(STORE_SUFFIXES))} file")
    if mode == "r":
        return JsonlReader(path) if kind == "jsonl" else SqliteReader(path)
    return JsonlResults(path) if kind == "jsonl" else SqliteResults(path)
