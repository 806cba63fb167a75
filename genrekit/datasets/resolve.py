"""A dataset name (``--data gtzan``) turned into its audio files, their labels, splits and artists.

Only a dataset that ``genrekit datasets download`` installed is used: its archives must be
recorded as unpacked, every file it unpacked must still be there, and the last
``genrekit datasets validate`` (if any) must have found nothing corrupt. Anything else is
a clear error that says which command to run.

Labels:

- ``folders`` (GTZAN, Ballroom): a clip's label is its folder under the dataset's audio
  folder (``gtzan_genre/genres/blues/blues.00000.wav`` → ``blues``), mapped through the
  entry's ``label_map`` (Ballroom's three Rumba folders → ``Rumba``);
- ``fma``: ``track.genre_top`` in FMA's ``tracks.csv`` for the tracks whose ``set.subset``
  is in the entry's subset (``small`` ⊂ ``medium``), file ``fma_<subset>/XXX/XXXXXX.mp3``.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from pathlib import Path

from genrekit.errors import DatasetError
from genrekit.datasets.install import _meta, dataset_folder, installed, read_state
from genrekit.datasets.registry import Dataset, default_root, get_dataset

#: Subsets of FMA each subset includes (the medium set contains the small one).
FMA_SUBSETS = {"small": ("small",), "medium": ("small", "medium"), "large": ("small", "medium", "large")}


@dataclass
class Resolved:
    """A downloaded dataset, ready to use.

    Attributes
    ----------
    dataset : Dataset
    folder : Path
        The dataset folder.
    audio_root : Path
    files : list of (Path, str)
        Each audio file and its label.
    artists : Path or None
        The artist index, when the entry has one and it is downloaded.
    split_dirs : dict
        Split kind → folder of its lists (present or not).
    """

    dataset: Dataset
    folder: Path
    audio_root: Path
    files: list[tuple[Path, str]]
    artists: Path | None = None
    split_dirs: dict[str, Path] = field(default_factory=dict)

    @property
    def labels(self) -> dict[Path, str]:
        """``{path: label}``."""
        return dict(self.files)

    def split_dir(self, kind: str) -> Path:
        """The folder of the lists of split ``kind``; an error says how to get them if absent."""
        d = self.split_dirs.get(kind)
        if d is None:
            raise DatasetError(f"{self.dataset.name} has no published {kind} split")
        if not d.is_dir():
            raise DatasetError(f"{self.dataset.name}: the {kind} split lists are not downloaded "
                               f"(run genrekit datasets download {self.dataset.name})")
        return d

    def artist_index(self) -> Path:
        """The artist index file; an error says how to get it if absent."""
        if self.dataset.artists is None:
            raise DatasetError(f"{self.dataset.name} has no artist index; give --artists FILE")
        if self.artists is None:
            raise DatasetError(f"{self.dataset.name}: its artist index is not downloaded "
                               f"(run genrekit datasets download {self.dataset.name})")
        return self.artists


def resolve(name: str, root: str | os.PathLike | None = None) -> Resolved:
    """The files and labels of the downloaded dataset ``name``.

    Parameters
    ----------
    name : str
    root : path-like, optional
        The data root (default ``$GENREKIT_DATA`` or ``~/genrekit-data``).

    Raises
    ------
    DatasetError
        If the dataset (or one it requires) is not downloaded, files it unpacked are
        missing, or its last validation found corrupt files.
    """
    ds = get_dataset(name)
    root = Path(root).expanduser() if root is not None else default_root()
    root_hint = f" --root {root}" if root != default_root() else ""
    for need in (ds, *(get_dataset(n) for n in ds.requires)):
        if not installed(need, root):
            raise DatasetError(f"{need.name} is not downloaded in {dataset_folder(need, root)}: run "
                               f"genrekit datasets download {ds.name}{root_hint}")
        _check_whole(need, root, root_hint)
    folder = dataset_folder(ds, root)
    audio_root = folder / ds.audio_root
    files = _fma_files(ds, folder) if ds.labels == "fma" else _folder_files(ds, audio_root)
    if not files:
        raise DatasetError(f"{audio_root}: no labelled audio files for {ds.name}")
    artists = None
    if ds.artists is not None:
        path = folder / ds.resource(ds.artists).target
        artists = path if path.is_file() else None
    return Resolved(ds, folder, audio_root, files, artists, {k: folder / v for k, v in ds.splits.items()})


def _check_whole(ds: Dataset, root: Path, root_hint: str) -> None:
    """Refuse a dataset whose unpacked files are gone or whose last validation found damage."""
    state = read_state(ds, root)
    last = state.get("validated") or {}
    if last.get("corrupt"):
        raise DatasetError(
            f"the last 'genrekit datasets validate {ds.name}' found {last['corrupt']} corrupt files in "
            f"{dataset_folder(ds, root)}: run genrekit datasets download {ds.name}{root_hint} to fetch it again"
        )
    folder = dataset_folder(ds, root)
    missing = 0
    for r in ds.resources:
        manifest = _meta(ds, root) / f"{r.name}.sha256"
        if r.kind == "archive" and manifest.exists():
            for line in manifest.read_text(encoding="utf-8").splitlines():
                rel = line.partition("  ")[2]
                if rel and not (folder / rel).exists():
                    missing += 1
    if missing:
        raise DatasetError(f"{missing} files of {ds.name} are missing from {folder}: run genrekit datasets "
                           f"validate {ds.name}{root_hint} to list them, download {ds.name} to restore them")


def _folder_files(ds: Dataset, audio_root: Path) -> list[tuple[Path, str]]:
    from genrekit.audio.files import collect_audio_files

    out = []
    for path in collect_audio_files([audio_root]):
        parts = path.relative_to(audio_root).parts
        if len(parts) > 1:
            out.append((path, ds.label_map.get(parts[0], parts[0])))
    return out


def _fma_files(ds: Dataset, folder: Path) -> list[tuple[Path, str]]:
    tracks = folder / "fma_metadata" / "tracks.csv"
    subsets = FMA_SUBSETS.get(ds.fma_subset or "")
    if subsets is None:
        raise DatasetError(f"{ds.name}: metadata only; use an audio subset such as fma-small")
    audio = folder / ds.audio_root
    out = []
    for tid, label in read_fma_tracks(tracks, subsets).items():
        stem = f"{tid:06d}"
        out.append((audio / stem[:3] / f"{stem}.mp3", label))
    return out


def read_fma_tracks(path: str | os.PathLike, subsets=("small",)) -> dict[int, str]:
    """``{track_id: genre_top}`` of the tracks of FMA's ``tracks.csv`` in ``subsets``.

    ``tracks.csv`` has three header lines: the column group (``track``, ``set``...), the
    column (``genre_top``, ``subset``...) and ``track_id``. Tracks without a top-level
    genre are left out.

    Raises
    ------
    DatasetError
        If the file is missing or lacks the ``track.genre_top`` / ``set.subset`` columns.
    """
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.reader(f)
            head = [next(reader, []), next(reader, []), next(reader, [])]
            cols = {(a, b): j for j, (a, b) in enumerate(zip(head[0], head[1]))}
            try:
                genre, subset = cols[("track", "genre_top")], cols[("set", "subset")]
            except KeyError:
                raise DatasetError(f"{path}: not FMA's tracks.csv (no track.genre_top and set.subset columns)") from None
            out = {}
            for row in reader:
                if len(row) > max(genre, subset) and row[subset] in subsets and row[genre] and row[0].isdigit():
                    out[int(row[0])] = row[genre]
    except FileNotFoundError:
        raise DatasetError(f"{path}: not found (download fma-metadata)") from None
    except (OSError, csv.Error, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: cannot read: {exc}") from None
    return out


def read_fma_genres(path: str | os.PathLike) -> list[dict]:
    """FMA's genre taxonomy from ``genres.csv``: ``genre_id, #tracks, parent, title, top_level`` per genre.

    Returns
    -------
    list of dict
        ``{"genre_id", "tracks", "parent", "title", "top_level"}`` (ids as int; parent 0 for a root).
    """
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except FileNotFoundError:
        raise DatasetError(f"{path}: not found (download fma-metadata)") from None
    except (OSError, csv.Error, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: cannot read: {exc}") from None
    need = {"genre_id", "#tracks", "parent", "title", "top_level"}
    if not rows or need - set(rows[0]):
        raise DatasetError(f"{path}: not FMA's genres.csv (expected columns {', '.join(sorted(need))})")
    try:
        return [{"genre_id": int(r["genre_id"]), "tracks": int(r["#tracks"]), "parent": int(r["parent"]),
                 "title": r["title"], "top_level": int(r["top_level"])} for r in rows]
    except ValueError as exc:
        raise DatasetError(f"{path}: a genre row is not numeric where it should be: {exc}") from None
