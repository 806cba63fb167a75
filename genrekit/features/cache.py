"""A feature cache on disk: arrays keyed by (file identity, feature-set key), in embedded SQLite.

The identity is the hash of a file's audio (:mod:`genrekit.audio.identity`): a tag edit keeps the
file's cached features. A cache written before identities is re-keyed when opened.

Why SQLite: one file, no server, atomic commits, and safe concurrent readers. Each
:meth:`FeatureStore.put` is its own committed transaction, so a run killed at any
moment (even with SIGKILL) leaves a consistent store that keeps everything finished
before the kill; the next run computes only the rest.

Arrays are stored in ``.npy`` format (``np.save(allow_pickle=False)``) so reading a
cache never unpickles anything, each with a BLAKE2b checksum of its bytes: an entry
whose bytes changed on disk (a flipped bit) is not served but recomputed, and counted
in :attr:`FeatureStore.damaged`. A database SQLite itself finds damaged, or one written by a
newer genrekit, raises :class:`StoreError`, one line saying which file and what to do.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from genrekit.config import settings
from genrekit.errors import StoreError
from genrekit.features.sets import FeatureSet
from genrekit.audio.files import FILE_HASHES_TABLE, SqliteFileHashes
from genrekit.audio.rekey import apply_identity_plan, identity_plan

STORE_FILENAME = "features.sqlite"

#: Bump with a migration when the tables change (2: the ``checksum`` column; 3: files keyed by their
#: audio, :mod:`genrekit.audio.identity`).
SCHEMA_VERSION = 3

_SCHEMA = """
CREATE TABLE IF NOT EXISTS features (
    content_hash TEXT NOT NULL,
    feature_key  TEXT NOT NULL,
    array        BLOB NOT NULL,     -- np.save bytes, no pickles
    n_samples    INTEGER NOT NULL,  -- decoded length at the set's sample rate
    feature_set  TEXT NOT NULL,     -- FeatureSet.to_dict() as JSON
    created      REAL NOT NULL,     -- Unix time, seconds
    checksum     TEXT,              -- BLAKE2b-128 hex of `array`; NULL in entries of schema 1
    PRIMARY KEY (content_hash, feature_key)
);
""" + FILE_HASHES_TABLE


class _NewerCache(StoreError):
    """A cache written by a newer genrekit (a later :data:`SCHEMA_VERSION`): a :class:`StoreError`
    that :func:`genrekit.commands.common.open_store` rewords as a ``--cache`` problem, where a
    damaged cache's own message already says what to do."""


def _checksum(blob: bytes) -> str:
    return hashlib.blake2b(blob, digest_size=16).hexdigest()


def default_cache_dir() -> Path:
    """``$GENREKIT_CACHE`` if set, else ``~/.cache/genrekit`` (:class:`genrekit.config.Settings`)."""
    return settings().cache_dir


@dataclass(frozen=True)
class Entry:
    """One cached array and what it was computed from.

    Attributes
    ----------
    content_hash : str
        The file's identity key (:func:`genrekit.audio.files.identity`: its audio's hash).
    feature_key : str
        :attr:`FeatureSet.key` of the recipe.
    array : np.ndarray
        The features, as :meth:`FeatureSet.compute` returned them.
    n_samples : int
        Length of the decoded signal in samples at the set's sample rate (needed to
        rebuild window bounds without decoding again).
    feature_set : dict
        The recipe's parameters (:meth:`FeatureSet.to_dict`).
    created : float
        When the entry was stored, Unix time in seconds.
    """

    content_hash: str
    feature_key: str
    array: np.ndarray
    n_samples: int
    feature_set: dict
    created: float


class FeatureStore:
    """Feature cache in ``<directory>/features.sqlite``, created as needed.

    Parameters
    ----------
    directory : str or path-like
        Folder holding the database (see :func:`default_cache_dir`).
    timeout : float
        Seconds to wait for another process's write lock before failing.

    Examples
    --------
    >>> with FeatureStore(tmp) as store:                      # doctest: +SKIP
    ...     h = store.file_hash("blues.00000.wav")
    ...     if (h, fs) not in store:
    ...         store.put(h, fs, fs.compute(y), n_samples=len(y))
    ...     store.get(h, fs).array
    """

    def __init__(self, directory: str | os.PathLike, *, timeout: float = 30.0) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.path = self.directory / STORE_FILENAME
        # isolation_level=None: no implicit transactions; every write below is an
        # explicit, immediately committed statement or BEGIN ... COMMIT block.
        self._db = sqlite3.connect(self.path, timeout=timeout, isolation_level=None)
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            # In WAL mode NORMAL is still crash-consistent; a power cut may only lose the
            # last commits, never corrupt the file.
            self._db.execute("PRAGMA synchronous=NORMAL")
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise _NewerCache(
                    f"{self.path} was written by a newer genrekit (schema {version}, "
                    f"this version reads {SCHEMA_VERSION}); use another --cache folder"
                )
            # Schema 3: files keyed by their audio; the files are read before the write lock is taken.
            plan = identity_plan(self._sql) if version < 3 else {}
            self._db.executescript(f"BEGIN; {_SCHEMA} COMMIT;")
            columns = {row[1] for row in self._db.execute("PRAGMA table_info(features)")}
            if "checksum" not in columns:  # schema 1: entries without a checksum stay readable
                self._db.execute("ALTER TABLE features ADD COLUMN checksum TEXT")
            self._db.execute("BEGIN IMMEDIATE")
            apply_identity_plan(self._sql, plan, "features", "created")
            self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            self._db.execute("COMMIT")
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise StoreError(self._damaged_message(exc)) from None
        except BaseException:
            self._db.close()
            raise
        #: Files' content hashes by path, size and mtime (:class:`genrekit.audio.files.FileHashes`).
        self.hashes = SqliteFileHashes(self._sql)
        #: ``(content_hash, feature_key)`` of entries found damaged (and so recomputed) by :meth:`get`.
        self.damaged: list[tuple[str, str]] = []

    def _damaged_message(self, exc: Exception) -> str:
        return (f"the feature cache {self.path} is damaged or unusable ({exc}); delete it "
                f"(it is only a cache) or use --cache DIR / --no-cache")

    def _sql(self, query: str, params=()):
        """Run one statement and fetch its rows; a damaged database becomes a :class:`StoreError`."""
        try:
            return self._db.execute(query, params).fetchall()
        except sqlite3.DatabaseError as exc:
            raise StoreError(self._damaged_message(exc)) from None

    # --- features -------------------------------------------------------------
    def get(self, content_hash: str, fs: FeatureSet) -> Entry | None:
        """The entry for a file's content and a feature set, or ``None`` if absent.

        An entry whose bytes fail their checksum, or whose array no longer loads or
        holds non-finite values, is treated as absent (so it is recomputed and replaced)
        and noted in :attr:`damaged`.
        """
        rows = self._sql(
            "SELECT array, n_samples, feature_set, created, checksum FROM features "
            "WHERE content_hash = ? AND feature_key = ?",
            (content_hash, fs.key),
        )
        if not rows:
            return None
        blob, n_samples, fs_json, created, checksum = rows[0]
        if checksum is not None and (not isinstance(blob, bytes) or _checksum(blob) != checksum):
            self.damaged.append((content_hash, fs.key))
            return None
        try:
            array = np.load(io.BytesIO(blob), allow_pickle=False)
            meta = json.loads(fs_json)
        except (ValueError, OSError, EOFError, TypeError):
            self.damaged.append((content_hash, fs.key))
            return None
        if not np.issubdtype(array.dtype, np.number) or not np.isfinite(array).all():
            self.damaged.append((content_hash, fs.key))
            return None
        return Entry(content_hash, fs.key, array, int(n_samples), meta, float(created))

    def put(self, content_hash: str, fs: FeatureSet, array: np.ndarray, n_samples: int) -> None:
        """Store (or replace) one array, committed before returning.

        Parameters
        ----------
        content_hash : str
            Hash of the audio file's bytes.
        fs : FeatureSet
            The recipe the array was computed with.
        array : np.ndarray
            Numeric array; object arrays are refused (they would need pickling).
        n_samples : int
            Decoded signal length in samples at ``fs.sample_rate``.
        """
        buf = io.BytesIO()
        np.save(buf, np.asarray(array), allow_pickle=False)
        blob = buf.getvalue()
        self._sql(
            "INSERT OR REPLACE INTO features "
            "(content_hash, feature_key, array, n_samples, feature_set, created, checksum) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (content_hash, fs.key, blob, int(n_samples),
             json.dumps(fs.to_dict(), sort_keys=True), time.time(), _checksum(blob)),
        )

    def __contains__(self, key: tuple[str, FeatureSet]) -> bool:
        """``(content_hash, fs) in store``."""
        content_hash, fs = key
        row = self._sql(
            "SELECT 1 FROM features WHERE content_hash = ? AND feature_key = ?",
            (content_hash, fs.key),
        )
        return bool(row)

    def count(self, fs: FeatureSet | None = None) -> int:
        """Number of stored arrays, for one feature set or (``None``) all of them."""
        if fs is None:
            return self._sql("SELECT COUNT(*) FROM features")[0][0]
        return self._sql("SELECT COUNT(*) FROM features WHERE feature_key = ?", (fs.key,))[0][0]

    # --- file hashes ----------------------------------------------------------
    def file_hash(self, path: str | os.PathLike) -> str:
        """Identity key of a file (its audio's hash), remembered by (path, size, mtime) to skip re-reading
        (:class:`genrekit.audio.files.FileHashes`). Raises ``OSError`` when the file cannot be read."""
        return self.hashes.identify(path).content_hash

    # --- lifetime -------------------------------------------------------------
    def close(self) -> None:
        """Close the database (idempotent)."""
        if self._db is not None:
            self._db.close()
            self._db = None

    def __enter__(self) -> "FeatureStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"FeatureStore({str(self.directory)!r})"
