"""Similar songs in the server's ``--library``: its embeddings, checked row by row, re-read when the file changes.

The library is a results store of ``genrekit classify --out`` with embeddings
(:class:`genrekit.library.similar.SimilarityIndex`). It is a file from elsewhere, so each row
is checked before use (:func:`load_library`): a row whose ``path`` is not text, whose
embedding is not a list of finite numbers, or whose embedding length differs from the
library's is skipped with a warning, never a failed upload. When the file is replaced while
the server runs it is read again on the next upload; if the new file cannot be used, the
copy loaded before is kept (with a warning in the server log).

Songs are named for the client without the server's absolute paths: relative to the
library's common folder when that folder is a real one (two levels deep or more, such as
``/srv/music``), else as their folder and file name (``jazz/take-five.flac``).
"""

from __future__ import annotations

import logging
import math
import os
from collections import Counter
from pathlib import Path

from genrekit.audio.files import relative_name
from genrekit.errors import GenrekitError, SimilarityError
from genrekit.output import printable

log = logging.getLogger("genrekit.web")

#: Problems listed one by one in a load's warnings; past that they are counted.
LISTED_MAX = 5


def open_library(path: Path):
    """The results store at ``path``, opened for reading (the one place the server opens its library)."""
    from genrekit.library.results import open_results

    return open_results(path, mode="r")  # read-only: a served library is never changed (issue 30)


def _row_problem(record) -> str | None:
    """Why ``record`` cannot be a song of the index (``None``: it can)."""
    if not isinstance(record, dict):
        return "not a JSON object"
    if not isinstance(record.get("path"), str) or not record["path"]:
        return f"'path' is {type(record.get('path')).__name__}, not a file name"
    if not isinstance(record.get("model_key"), str):
        return "'model_key' is not text"
    for field in ("label", "content_hash"):
        if record.get(field) is not None and not isinstance(record[field], str):
            return f"'{field}' is not text"
    vector = record.get("embedding")
    if not isinstance(vector, list) or not vector:
        return "'embedding' is not a list of numbers"
    if not all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in vector):
        return "'embedding' holds something other than finite numbers"
    return None


def load_library(path: Path):
    """The :class:`~genrekit.library.similar.SimilarityIndex` of the store at ``path``, and the warnings of its load.

    Rows without an embedding (failed songs, a model without a backbone) are left out
    silently, as :meth:`SimilarityIndex.from_results` does; rows that are malformed (see the
    module docstring) are left out with a warning naming the row. The model most songs have
    is kept; within it, the embedding length most rows have.

    Raises
    ------
    genrekit.errors.SimilarityError
        If the file cannot be read or no usable row is left.
    """
    import numpy as np

    from genrekit.library.similar import SimilarityIndex

    if not path.is_file():
        raise SimilarityError(f"{path}: no such results file (make one with genrekit classify "
                              f"FOLDER --out {path.name})")
    try:
        store = open_library(path)
    except (GenrekitError, OSError) as exc:
        raise SimilarityError(f"{path}: cannot read the results: {exc}") from None
    try:
        records = store.records()
    except (GenrekitError, OSError, ValueError) as exc:  # a damaged database, an unreadable line
        raise SimilarityError(f"{path}: cannot read the results: {exc}") from None
    finally:
        store.close()
    # rows the read-only store already refused as not genrekit results, then the server's own checks
    bad: list[str] = [f"{printable(where)}: {problem}" for where, problem in getattr(store, "skipped", [])]
    usable = []
    for number, record in enumerate(records, 1):
        if isinstance(record, dict) and (record.get("error") is not None or record.get("embedding") is None):
            continue
        problem = _row_problem(record)
        if problem is None:
            usable.append(record)
        else:
            where = record.get("path") if isinstance(record, dict) and isinstance(record.get("path"), str) else f"record {number}"
            bad.append(f"{printable(where)}: {problem}")
    if not usable:
        more = f" ({len(bad)} malformed row(s), e.g. {bad[0]})" if bad else ""
        raise SimilarityError(f"{path}: no song in it has a usable embedding{more} (classify the library with a "
                              f"backbone model, such as the default, to store them)")
    key = Counter(r["model_key"] for r in usable).most_common(1)[0][0]
    usable = [r for r in usable if r["model_key"] == key]
    dim = Counter(len(r["embedding"]) for r in usable).most_common(1)[0][0]
    for r in usable:
        if len(r["embedding"]) != dim:
            bad.append(f"{printable(r['path'])}: embedding of {len(r['embedding'])} numbers where the library's have {dim}")
    usable = [r for r in usable if len(r["embedding"]) == dim]
    by_hash: dict = {}  # one entry per content: the same song under two names is one song
    for r in usable:
        by_hash.setdefault(r.get("content_hash") or r["path"], r)
    chosen = sorted(by_hash.values(), key=lambda r: r["path"])
    vectors = np.asarray([r["embedding"] for r in chosen], dtype=np.float64)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    vectors = vectors / np.where(norms > 0, norms, 1.0)  # unit length, as SimilarityIndex keeps them
    index = SimilarityIndex([r["path"] for r in chosen], [r.get("label") or "" for r in chosen],
                            [r.get("content_hash") or "" for r in chosen], vectors, key, str(path))
    warnings = []
    if bad:
        listed = "; ".join(bad[:LISTED_MAX]) + (f"; and {len(bad) - LISTED_MAX} more" if len(bad) > LISTED_MAX else "")
        warnings.append(f"{path}: skipped {len(bad)} malformed row(s): {listed}")
    return index, warnings


class LibraryIndex:
    """The checked :class:`~genrekit.library.similar.SimilarityIndex` of ``path``, and the songs most like an upload.

    Parameters
    ----------
    path : Path or None
        The results store; ``None``: no library (every query answers ``None``). Read now, so
        that a library with no usable song fails at start, not on the first upload.

    Attributes
    ----------
    warnings : list of str
        What the last load skipped (``genrekit serve`` prints them at start).

    Raises
    ------
    genrekit.errors.SimilarityError
        If ``path`` cannot answer similarity queries (no such file, no usable embeddings...).
    """

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self.warnings: list[str] = []
        self._index = None  # (file identity, SimilarityIndex)
        if self.path is not None:  # the warnings of this first load are the caller's to show (serve prints them)
            index, self.warnings = load_library(self.path)
            self._index = (self._identity(), index)

    def _identity(self):
        try:
            st = self.path.stat()
        except OSError:
            return None
        return (st.st_ino, st.st_size, st.st_mtime_ns)

    def _load(self):
        index, self.warnings = load_library(self.path)
        for warning in self.warnings:
            log.warning("%s", warning)
        return index

    def index(self):
        """The library's index: read again when the file changed; the copy loaded before when the new one is unusable."""
        if self.path is None:
            return None
        identity = self._identity()
        if identity is not None and identity != self._index[0]:
            try:
                self._index = (identity, self._load())
            except SimilarityError as exc:
                log.warning("%s; the library loaded before is kept", exc)
                self._index = (identity, self._index[1])  # not read again until the file changes once more
        return self._index[1]

    def similar_to(self, clf, prediction, top: int = 5, exclude: str | None = None) -> list[dict] | None:
        """The library's songs most like ``prediction``'s, or ``None`` (no library, or another model's);
        ``exclude``: the upload's audio key, so that the library's own copy of it is not listed."""
        from genrekit.library.run import model_key

        if self.path is None or prediction.embedding is None:
            return None
        index = self.index()
        if index.model_key != model_key(clf) or len(prediction.embedding) != index.vectors.shape[1]:
            return None
        root = _common_folder(index.paths)
        return [{**s, "path": _below(s["path"], root), "score": round(s["score"], 4)}
                for s in index.query(prediction.embedding, top=top, exclude_hash=exclude)]


#: A common folder this shallow (``/``, ``/home``, ``/mnt``) says nothing: songs are named by folder and file.
MEANINGFUL_DEPTH = 2


def _common_folder(paths) -> str:
    """The deepest folder holding every path of ``paths``, or "" when that is no meaningful folder.

    "" when there are none, when they share none (mixed drives, relative and absolute), or
    when the shared folder is less than :data:`MEANINGFUL_DEPTH` levels deep (``/``, ``/home``).
    """
    try:
        folders = {os.path.dirname(os.path.abspath(p)) for p in paths}
        root = os.path.commonpath(list(folders)) if folders else ""
    except ValueError:  # os.path.commonpath: mixed drives, or relative and absolute
        return ""
    parts = [p for p in Path(root).parts[1:] if p] if root else []
    return root if len(parts) >= MEANINGFUL_DEPTH else ""


def _below(path: str, root: str) -> str:
    """``path`` relative to ``root`` with ``/`` separators; without a root, its folder's name and its own."""
    if not root:
        absolute = Path(os.path.abspath(path))
        folder = absolute.parent.name
        return f"{folder}/{absolute.name}" if folder else absolute.name
    return relative_name(path, root)
