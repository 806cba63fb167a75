"""Similar songs in the server's ``--library``: its embeddings, re-read when the file changes.

The library is a results store of ``genrekit classify --out`` with embeddings
(:class:`genrekit.library.similar.SimilarityIndex`). Songs are named below the library's
common folder: the server's absolute paths are not the client's business.
"""

from __future__ import annotations

import os
from pathlib import Path

from genrekit.audio.files import relative_name
from genrekit.errors import SimilarityError


class LibraryIndex:
    """The :class:`~genrekit.library.similar.SimilarityIndex` of ``path``, and the songs most like an upload.

    Parameters
    ----------
    path : Path or None
        The results store; ``None``: no library (every query answers ``None``). Read now, so
        that a bad ``--library`` fails at start, not on the first upload.

    Raises
    ------
    genrekit.errors.SimilarityError
        If ``path`` cannot answer similarity queries (no such file, no embeddings...).
    """

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self._index = None  # (mtime_ns, SimilarityIndex)
        if self.path is not None:
            self.index()

    def index(self):
        """The :class:`~genrekit.library.similar.SimilarityIndex` of the library (re-read when the file changed)."""
        from genrekit.library.similar import SimilarityIndex

        if self.path is None:
            return None
        mtime = self.path.stat().st_mtime_ns if self.path.exists() else None
        if self._index is None or self._index[0] != mtime:
            self._index = (mtime, SimilarityIndex.from_results(self.path))
        return self._index[1]

    def similar_to(self, clf, prediction, top: int = 5) -> list[dict] | None:
        """The library's songs most like ``prediction``'s, or ``None`` (no library, or another model's)."""
        from genrekit.library.run import model_key

        if self.path is None or prediction.embedding is None:
            return None
        try:
            index = self.index()
        except (SimilarityError, OSError):
            return None  # the library went away or broke while serving: the page simply shows none
        if index.model_key != model_key(clf):
            return None
        root = _common_folder(index.paths)
        return [{**s, "path": _below(s["path"], root), "score": round(s["score"], 4)}
                for s in index.query(prediction.embedding, top=top)]


def _common_folder(paths) -> str:
    """The deepest folder holding every path of ``paths`` ("" when there are none or they share none)."""
    try:
        folders = {os.path.dirname(os.path.abspath(p)) for p in paths}
        return os.path.commonpath(list(folders)) if folders else ""
    except ValueError:  # os.path.commonpath: mixed drives, or relative and absolute
        return ""


def _below(path: str, root: str) -> str:
    """``path`` relative to ``root`` with ``/`` separators (its bare name when ``root`` is empty)."""
    if not root:
        return os.path.basename(path)
    return relative_name(path, root)
