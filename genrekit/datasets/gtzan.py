"""GTZAN's names, artist index and published split lists.

Every GTZAN clip is named by a *track id* ``<genre>.<NNNNN>`` (``blues.00000``):
the clip's file name without its extension. The readers here accept the spellings
found in the wild and normalise them to that form, so that an artist index, a split
list and a feature table written by different people all name a clip the same way:

- ``blues.00000.wav``, ``blues/blues.00029.wav``, ``genres/blues/blues.00043.au``
  (GTZANindex, the fault-filtered lists, Marsyas);
- ``./blues_00000.wav`` (the 3-fold lists after Sturm's advice).

References: G. Tzanetakis & P. Cook, "Musical genre classification of audio signals",
IEEE TSAP 2002; B. L. Sturm, "The GTZAN dataset: its contents, its faults, their
effects on evaluation, and its future use", 2013; C. Kereliuk, B. L. Sturm & J. Larsen,
"Deep learning and music adversaries", IEEE TMM 2015 (the fault-filtered split).
"""

from __future__ import annotations

import csv
import os
import re
from collections import Counter
from pathlib import Path

from genrekit.errors import DatasetError

#: The ten genres, in GTZAN's (and Marsyas's label-number) order.
GENRES: tuple[str, ...] = (
    "blues", "classical", "country", "disco", "hiphop", "jazz", "metal", "pop", "reggae", "rock",
)

#: Prefix of the group given to a clip whose artist is unknown (one group per clip).
UNKNOWN_ARTIST = "?"

_GTZAN_NAME = re.compile(r"^(?P<genre>[A-Za-z]+)[._](?P<number>\d{5})$")


def track_id(name: str) -> str:
    """The track id of a clip named in any of GTZAN's spellings.

    Folders and a ``./`` prefix are dropped, then the extension (a suffix that is not
    all digits, so ``blues.00000`` keeps its number). GTZAN names become
    ``<genre>.<NNNNN>`` in lower case (``./Blues_00000.wav`` → ``blues.00000``); other
    names are returned as their stem (``take five.mp3`` → ``take five``).

    Parameters
    ----------
    name : str
        A file name or path.

    Returns
    -------
    str
    """
    base = name.strip().replace("\\", "/").rsplit("/", 1)[-1]
    stem, ext = os.path.splitext(base)
    if ext and not ext[1:].isdigit():
        base = stem
    m = _GTZAN_NAME.match(base)
    if m:
        return f"{m['genre'].lower()}.{m['number']}"
    return base


def read_artist_index(path: str | os.PathLike) -> dict[str, str]:
    """Map each clip's track id to its artist.

    Two formats are read:

    - Sturm's ``GTZANindex.txt``: ``blues.00000.wav ::: John Lee Hooker ::: Title``
      lines; lines starting with ``#`` are comments;
    - a CSV file with a header holding ``filename`` (or ``track``) and ``artist``.

    A clip whose artist is empty gets the artist ``"?<track id>"``, a group of its
    own: grouping every unidentified clip together would tie unrelated music into one
    artist (81 GTZAN clips, across 9 genres, have no artist in the index). Names that
    differ only in case or spacing are one artist, spelled as most clips spell it
    (GTZANindex has both "Rage Against The Machine" and "Rage Against the Machine").

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    dict
        ``{track_id: artist}``.

    Raises
    ------
    DatasetError
        If the file is missing or unreadable, a line is malformed, or a clip is listed
        twice with different artists.
    """
    path = Path(path)
    text = _read_text(path)
    pairs: list[tuple[str, str]] = []
    if ":::" in text:
        for n, line in enumerate(text.splitlines(), start=1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            parts = line.split(":::")
            if len(parts) < 2:
                raise DatasetError(f"{path}: line {n} is not 'file ::: artist ::: title': {line.strip()!r}")
            pairs.append((parts[0], parts[1].strip()))
    else:
        rows = list(csv.reader(text.splitlines()))
        header = [h.strip().lower() for h in rows[0]] if rows else []
        name_col = next((header.index(c) for c in ("filename", "track") if c in header), None)
        if name_col is None or "artist" not in header:
            raise DatasetError(
                f"{path}: expected GTZANindex lines ('file ::: artist ::: title') "
                f"or a CSV with 'filename' and 'artist' columns, found header {rows[0] if rows else []}"
            )
        artist_col = header.index("artist")
        for n, row in enumerate(rows[1:], start=2):
            if not any(cell.strip() for cell in row):
                continue
            if len(row) <= max(name_col, artist_col):
                raise DatasetError(f"{path}: line {n} has {len(row)} fields, expected {len(header)}")
            pairs.append((row[name_col], row[artist_col].strip()))

    index: dict[str, str] = {}
    for name, artist in pairs:
        tid = track_id(name)
        if not tid:
            raise DatasetError(f"{path}: an entry has no file name (artist {artist!r})")
        artist = " ".join(artist.split()) or UNKNOWN_ARTIST + tid
        if index.get(tid, artist) != artist:
            raise DatasetError(f"{path}: {tid} is listed twice, as {index[tid]!r} and {artist!r}")
        index[tid] = artist
    return _unify_spellings(index)


def _unify_spellings(index: dict[str, str]) -> dict[str, str]:
    """Spell case variants of one artist the way most of their clips do (ties: first met)."""
    counts = Counter(index.values())
    best: dict[str, str] = {}
    for artist in index.values():  # insertion order: first met wins ties
        key = artist.casefold()
        if key not in best or counts[artist] > counts[best[key]]:
            best[key] = artist
    return {tid: best[artist.casefold()] for tid, artist in index.items()}


def read_split_list(path: str | os.PathLike) -> list[str]:
    """The track ids listed in a split file, in file order, without repeats.

    Each non-empty line names one clip in its first field (fields are separated by
    whitespace; later fields such as a genre or a group number are ignored):
    ``blues/blues.00029.wav`` (fault-filtered lists) or ``./blues_00000.wav	blues``
    (3-fold lists). Lines starting with ``#`` are comments.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    list of str
        Track ids, normalised by :func:`track_id`.

    Raises
    ------
    DatasetError
        If the file is missing or unreadable.
    """
    path = Path(path)
    seen: dict[str, None] = {}
    for line in _read_text(path).splitlines():
        fields = line.split()
        if fields and not fields[0].startswith("#"):
            seen.setdefault(track_id(fields[0]), None)
    return list(seen)


def _read_text(path: Path) -> str:
    try:
        # errors="replace": an odd byte in a title must not make the whole index unreadable.
        return path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        raise DatasetError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise DatasetError(f"{path}: is a folder, expected a file") from None
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read: {exc.strerror or exc}") from None


def gtzan_label(path: str | os.PathLike) -> str:
    """The genre of a file laid out as GTZAN's ``<genre>/<file>``, else ``""``.

    The parent folder's name is the label when the file name starts with
    ``<parent>.`` (``blues/blues.00000.wav``, ``ambient/ambient.017.wav``) or when the
    parent is one of the ten GTZAN genres (``jazz/take5.mp3``). Comparisons ignore
    case; the folder name is returned as spelled on disk.
    """
    p = Path(path)
    parent = p.parent.name
    if not parent:
        return ""
    if p.name.lower().startswith(parent.lower() + ".") or parent.lower() in GENRES:
        return parent
    return ""
