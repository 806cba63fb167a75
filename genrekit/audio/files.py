"""Finding audio files and naming them: by content (the hash that caches and results stores key by) and by
their path relative to the folder given (what outputs show)."""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

from genrekit._io import sql_name
from genrekit.audio.identity import keys_of
from genrekit.errors import ParameterError

#: Extensions picked up when walking folders (compared lower-case).
AUDIO_EXTENSIONS = frozenset(
    {".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".m4a", ".aac", ".aiff", ".aif", ".au"}
)

#: The ten genre folders of GTZAN (Tzanetakis & Cook 2002).

_CHUNK = 1 << 20  # 1 MiB reads: large enough to be fast, small enough to stream


def collect_audio_files(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """The audio files named by command-line paths, in the order given, without duplicates.

    - A folder is walked recursively; only files with an extension in
      :data:`AUDIO_EXTENSIONS` are taken, and hidden files and folders (name starting
      with ``.``) are skipped, as are symlinked folders (no cycles).
    - A file named explicitly is taken whatever its extension, so that a bad file
      is reported by the decoder rather than silently ignored.
    - A path that does not exist is kept too: decoding it fails and the failure is
      reported with the file's name, like any other bad file. So are symlink loops
      and broken links met in a folder.
    - A folder that cannot be read (permissions) is kept as an item of its own, so
      that the run reports it ("cannot read this folder") instead of skipping its
      files silently.

    Parameters
    ----------
    paths : iterable of str or path-like
        Files and folders, as given on the command line.

    Returns
    -------
    list of Path
        In the order of ``paths``, each folder's files sorted by path components; a file
        reached twice (e.g. through a folder and by name, or as ``./a.wav`` and ``a.wav``)
        appears once, where and as first met.
    """
    found: dict[Path, Path] = {}  # resolved -> spelling as met

    def add(p: Path) -> None:
        found.setdefault(_resolved(p), p)

    for raw in paths:
        root = Path(raw)
        if not os.path.isdir(root):  # False, not an error, for loops and unreadable parents
            add(root)
            continue
        inside: list[Path] = []

        def unreadable(err: OSError) -> None:
            if err.filename is not None:
                inside.append(Path(err.filename))

        for dirpath, dirnames, filenames in os.walk(root, onerror=unreadable):
            # Pruning in place stops os.walk from descending into hidden folders.
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            for name in filenames:
                if not name.startswith(".") and Path(name).suffix.lower() in AUDIO_EXTENSIONS:
                    inside.append(Path(dirpath, name))
        for p in sorted(inside):  # a folder's files sorted; the arguments stay in the order given
            add(p)
    return list(found.values())


def _resolved(p: Path) -> Path:
    """``p`` with symlinks resolved; as given (made absolute) when it cannot be (a loop)."""
    try:
        return p.resolve()
    except (OSError, RuntimeError):  # RuntimeError: "Symlink loop" on Python < 3.13
        return Path(os.path.abspath(p))


def common_root(paths: Iterable[str | os.PathLike]) -> Path:
    """The deepest folder containing every input: folders count as themselves, files as their parent.

    Used to name outputs by their path relative to the inputs, so
    ``genrekit features data/ --out feats/`` writes ``feats/blues/blues.00000.npy``.
    Paths are made absolute without resolving symlinks.
    """
    roots = []
    for raw in paths:
        p = Path(os.path.abspath(raw))
        roots.append(p if os.path.isdir(p) else p.parent)
    if not roots:
        raise ParameterError("common_root() needs at least one path")
    return Path(os.path.commonpath(roots))


def relative_name(path: str | os.PathLike, root: str | os.PathLike) -> str:
    """``path``'s name relative to the folder ``root``, with ``/`` separators (``blues/blues.00000.wav``).

    The one rule by which every output names a file (CLI formats, tables, the server's library):
    both are made absolute without resolving symlinks, so a name says where the user put the file.
    """
    return Path(os.path.relpath(os.path.abspath(path), os.path.abspath(root))).as_posix()


def open_regular(path: str | os.PathLike):
    """``path`` opened for reading in binary, refused unless it is a regular file.

    Opened without blocking and checked with ``fstat`` before a byte is read, so that a named pipe
    (FIFO), ``/dev/zero`` or another device never hangs or floods the reader. Raises ``OSError``
    (``"not a regular file"`` for those) when it cannot be read.
    """
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            what = "a folder" if stat.S_ISDIR(mode) else "not a regular file (a pipe or device?)"
            raise OSError(errno.EISDIR if stat.S_ISDIR(mode) else errno.EINVAL, f"is {what}", os.fspath(path))
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return open(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def file_keys(path: str | os.PathLike, whole: bool = True) -> tuple[str, str | None]:
    """``(identity key, whole-file hash)`` of a regular file (:func:`genrekit.audio.identity.keys_of`:
    the hash of its audio payload, tags left out, or of its whole content). Raises ``OSError`` (a
    pipe or device is refused, never read) when the file cannot be read."""
    with open_regular(path) as f:
        return keys_of(f, whole)


def identity(path: str | os.PathLike) -> str:
    """The identity key of a file (:func:`file_keys`), the key of the feature cache and results stores."""
    return file_keys(path, whole=False)[0]


def content_hash(path: str | os.PathLike) -> str:
    """Hex BLAKE2b-256 digest of a file's bytes, read in 1-MiB chunks.

    Two files with the same bytes share cache entries whatever their names.
    Raises ``OSError`` (e.g. ``FileNotFoundError``; ``"not a regular file"`` for a named pipe
    or a device, never read) when the file cannot be read.
    """
    digest = hashlib.blake2b(digest_size=32)
    with open_regular(path) as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


# --- file identity: (path, size, mtime) -> identity key (genrekit.audio.identity) -----------------
#: The table in which the feature cache and SQLite results stores remember file hashes.
FILE_HASHES_TABLE = """
CREATE TABLE IF NOT EXISTS file_hashes (
    path         TEXT PRIMARY KEY,  -- absolute, symlinks resolved
    size         INTEGER NOT NULL,
    mtime_ns     INTEGER NOT NULL,
    content_hash TEXT NOT NULL      -- genrekit.audio.identity key (a bare hex hash: written before it)
);
"""


class FileId(NamedTuple):
    """A file's identity key (:func:`genrekit.audio.files.identity`: its audio payload's hash,
    or its whole content's) and the ``stat`` values it was computed at."""

    content_hash: str
    file: str  # absolute, symlinks resolved
    size: int
    mtime_ns: int


class FileHashes:
    """Identity keys remembered by (path, size, modification time): the one file identity of
    genrekit, used by the feature cache and the results stores. The key is the hash of the file's
    audio payload where its container parses (:mod:`genrekit.audio.identity`), so a tag edit keeps it.

    A rerun over unchanged files only ``stat``-s them; a file is hashed again whenever
    its size or modification time (ns) changes. This base class remembers in memory
    (:meth:`remember` may be overridden to persist, :meth:`recall` to look up);
    :class:`SqliteFileHashes` keeps them in a database's :data:`FILE_HASHES_TABLE`.
    """

    def __init__(self) -> None:
        self._memo: dict[tuple[str, int, int], str] = {}

    def recall(self, file: str, size: int, mtime_ns: int) -> str | None:
        """The remembered hash of ``file`` at this size and mtime, or ``None``."""
        return self._memo.get((file, size, mtime_ns))

    def remember(self, fid: FileId) -> None:
        """Keep ``fid`` for :meth:`recall`."""
        self._memo[(fid.file, fid.size, fid.mtime_ns)] = fid.content_hash

    def identify(self, path: str | os.PathLike) -> FileId:
        """The :class:`FileId` of ``path``, re-reading the file only if its size or mtime changed.

        Raises ``OSError`` when the file cannot be read.
        """
        real = os.path.realpath(path)  # never raises, even for a symlink loop (stat below does)
        st = os.stat(real)
        known = self.recall(real, st.st_size, st.st_mtime_ns)
        if known is not None and ":" in known:  # a bare hash was remembered before identities: read again
            return FileId(known, real, st.st_size, st.st_mtime_ns)
        fid = FileId(identity(real), real, st.st_size, st.st_mtime_ns)
        after = os.stat(real)
        # Remember only if the file did not change while it was read.
        if (after.st_size, after.st_mtime_ns) == (st.st_size, st.st_mtime_ns):
            self.remember(fid)
        return fid


class SqliteFileHashes(FileHashes):
    """:class:`FileHashes` in the :data:`FILE_HASHES_TABLE` of a database.

    ``sql(query, params) -> rows`` runs one statement on it (the owner's, so that its
    errors read as the owner's).
    """

    def __init__(self, sql) -> None:
        super().__init__()
        self._sql = sql

    def recall(self, file: str, size: int, mtime_ns: int) -> str | None:
        rows = self._sql("SELECT content_hash FROM file_hashes WHERE path = ? AND size = ? AND mtime_ns = ?",
                         (sql_name(file), size, mtime_ns))
        return rows[0][0] if rows and isinstance(rows[0][0], str) else None

    def remember(self, fid: FileId) -> None:
        self._sql("INSERT OR REPLACE INTO file_hashes (path, size, mtime_ns, content_hash) VALUES (?, ?, ?, ?)",
                  (sql_name(fid.file), fid.size, fid.mtime_ns, fid.content_hash))

