"""Per-file indexes shipped inside the package, so that ``datasets validate`` needs no download.

A dataset's per-file index (every clip's path and checksum) is what lets ``genrekit
datasets validate`` answer file by file for a copy genrekit did not unpack itself (a
copy made by hand, or a partial one). The publisher's index is a download of its own;
genrekit ships a compact copy of it in ``genrekit/datasets/indexes/`` so that the check
works offline and before anything is downloaded.

Each shipped file is JSON::

    {"format": "genrekit-file-index/1", "dataset": "gtzan", "algorithm": "md5",
     "source": {"checksum": "md5:<hex of the published index>", "package": ..., "file": ...,
                "licence": ..., "url": ...},
     "files": {"<path relative to the dataset folder>": "<hex digest>", ...},
     "sizes": {"<path>": <bytes>, ...}}                  # only where the source gives sizes

``source.checksum`` is the checksum of the published index it was converted from: a
dataset entry whose index resource has that checksum may use the shipped copy in its
place (:func:`shipped_index`). ``scripts/build_dataset_indexes.py`` writes these files;
``genrekit/datasets/indexes/NOTICE`` names their sources and licences.

Shipped today: GTZAN (from mirdata 0.3.8's ``gtzan_genre_index_1.0.json``, the very file
the ``gtzan`` entry names, md5 ``533ca050855f22acf2feb283d9957fe3``). Not Ballroom: no
package on PyPI carries mirdata's ``ballroom_full_index_1.0.json``.
"""

from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from genrekit._io import atomic_write, read_json
from genrekit.errors import DatasetError
from genrekit.datasets.registry import ALGORITHMS, _check_relative

#: Where the shipped indexes live (package data).
INDEX_DIR = Path(__file__).with_name("indexes")
FORMAT = "genrekit-file-index/1"


@dataclass(frozen=True)
class FileIndex:
    """Every file of a dataset with its checksum (and size where known).

    Attributes
    ----------
    dataset : str
        The dataset it describes (``"gtzan"``).
    algorithm : {"md5", "sha1", "sha256"}
    files : dict
        Path relative to the dataset folder → hex digest.
    source : dict
        Where it comes from: ``checksum`` (``"md5:<hex>"`` of the published index it was
        converted from), ``package``, ``file``, ``licence``, ``url``.
    sizes : dict
        Path → size in bytes, for the paths whose size the source gives (may be empty).
    """

    dataset: str
    algorithm: str
    files: dict
    source: dict = field(default_factory=dict)
    sizes: dict = field(default_factory=dict)

    def checksums(self) -> dict[str, str]:
        """``{path: "<algorithm>:<hex>"}``, the form the validator takes."""
        return {path: f"{self.algorithm}:{digest}" for path, digest in self.files.items()}

    def describe(self) -> str:
        """One line for the user: where this index comes from."""
        s = self.source
        what = " ".join(x for x in (s.get("package"), s.get("file")) if x)
        return f"{len(self.files)} files, from {what or 'its publisher'}" + (
            f" ({s['licence']})" if s.get("licence") else "")


def read_index(path: str | os.PathLike) -> FileIndex:
    """Read a compact per-file index.

    Raises
    ------
    DatasetError
        If the file is unreadable, not JSON, or not in :data:`FORMAT`.
    """
    path = Path(path)
    data = read_json(path, "the file index", DatasetError)
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise DatasetError(f"{path}: not a genrekit file index (format {FORMAT!r})")
    algorithm, files = data.get("algorithm"), data.get("files")
    if algorithm not in ALGORITHMS or not isinstance(files, dict):
        raise DatasetError(f"{path}: expected 'algorithm' (md5, sha1 or sha256) and a 'files' object")
    for rel, digest in files.items():
        _check_relative(rel, str(path))
        if not isinstance(digest, str) or len(digest) != ALGORITHMS[algorithm]:
            raise DatasetError(f"{path}: {rel}: {digest!r} is not a {algorithm} digest")
    return FileIndex(str(data.get("dataset", "")), algorithm, dict(files), dict(data.get("source") or {}),
                     {k: int(v) for k, v in (data.get("sizes") or {}).items()})


def write_index(path: str | os.PathLike, index: FileIndex) -> None:
    """Write ``index`` atomically, one file per line (small diffs when a source changes)."""
    head = {"format": FORMAT, "dataset": index.dataset, "algorithm": index.algorithm, "source": index.source}
    lines = [json.dumps(head, sort_keys=True)[:-1] + ', "files": {']
    items = sorted(index.files.items())
    lines += [f"{json.dumps(rel)}: {json.dumps(d)}" + ("," if n < len(items) - 1 else "")
              for n, (rel, d) in enumerate(items)]
    lines.append("}, \"sizes\": " + json.dumps(dict(sorted(index.sizes.items()))) + "}")
    with atomic_write(path, "w") as f:
        f.write("\n".join(lines) + "\n")


@functools.lru_cache(maxsize=None)
def _shipped() -> dict[str, Path]:
    """``{source checksum: path}`` of every index in :data:`INDEX_DIR`."""
    found = {}
    for path in sorted(INDEX_DIR.glob("*.json")):
        try:
            head = json.loads(path.read_text(encoding="utf-8"))["source"]["checksum"]
        except (OSError, ValueError, KeyError, TypeError):
            continue  # not ours; read_index would say why if it were asked for
        found[str(head).lower()] = path
    return found


def shipped_index(checksum: str | None) -> FileIndex | None:
    """The shipped copy of the published index whose checksum is ``checksum`` (``"md5:<hex>"``), if any."""
    path = _shipped().get((checksum or "").lower())
    return read_index(path) if path is not None else None


__all__ = ["FORMAT", "INDEX_DIR", "FileIndex", "read_index", "shipped_index", "write_index"]
