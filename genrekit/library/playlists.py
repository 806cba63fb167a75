"""Playlists by genre from a results store: one extended M3U8 file per genre.

Each classified file goes into the playlist of its top genre when that genre's score is
at least ``min_score``; a song the model called unknown (its record's ``unknown``: it fits
none of the model's genres) goes into its own playlist, ``Unknown`` (named through the name
map as the genres are: ``unknown = "Unclassified"``), never into a genre's, and its entry
names its closest genre. A playlist lists its songs best-scoring first (ties by path).
Files are named by genre display name (:class:`genrekit.tagging.names.NameMap`:
``Hip-Hop.m3u8``); entries carry ``#EXTINF:<seconds>,<title>`` and the song's path,
relative to the playlists' folder where it can be (same drive), else absolute. The title is
``Artist - Title`` from the file's tags when it has both (read with mutagen), else the
file's name. A file
classified several times (before and after its tags were written, or by several models)
counts once: its latest result. Files that no longer exist are left out.

A results file may be hand-made, so its text is treated as values, never as lines: a
record lists a song only when its path names an existing audio file (an extension of
:data:`genrekit.audio.files.AUDIO_EXTENSIONS`) inside the library folder ``root`` and
holds no control character; others are left out and reported. Genre names and titles are
escaped onto one line (:func:`genrekit.output.printable`), and a playlist's file name is
bounded (:data:`FILE_NAME_MAX` bytes) and made of safe characters.

References
----------
M3U8: extended M3U in UTF-8 (RFC 8216 §4 for the ``#EXTM3U``/``#EXTINF`` tags).
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from genrekit._io import write_bytes_atomic

_UNSAFE = re.compile(r'[\\/:*?"<>|\x00-\x1f\x7f-\x9f]+')
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
#: The longest playlist file name, in UTF-8 bytes, before ``.m3u8`` (file systems allow 255).
FILE_NAME_MAX = 120
#: The longest genre name shown in a playlist's ``#PLAYLIST`` and ``#EXTINF`` lines, in characters.
SHOWN_NAME_MAX = 100
#: The label of unknown songs' playlist in a name map, and its name when the map gives none.
UNKNOWN_LABEL, UNKNOWN_NAME = "unknown", "Unknown"


@dataclass(frozen=True)
class Playlist:
    """One genre's playlist: its display name, file, and ``(path, score, duration, closest)`` entries,
    best first (``closest``: the display name of an unknown song's closest genre, else ``None``)."""

    name: str
    path: Path
    entries: list


def _entry_problem(path: str, root: str) -> str | None:
    """Why ``path`` may not be a playlist entry, or ``None``."""
    from genrekit.audio.files import AUDIO_EXTENSIONS

    if _CONTROL.search(path):
        return "its name holds a control character (a newline?)"
    absolute = os.path.abspath(path)
    if os.path.commonpath([absolute, root]) != root:
        return f"outside the library folder {root}"
    if Path(absolute).suffix.lower() not in AUDIO_EXTENSIONS:
        return "not an audio file's name"
    try:
        if not stat.S_ISREG(os.stat(absolute).st_mode):
            return "not a regular file"
    except (OSError, ValueError):
        return "no longer exists"
    return None


def plan_playlists(records, out_dir: str | os.PathLike, *, root: str | os.PathLike, min_score: float = 0.0,
                   names=None) -> tuple[list[Playlist], list[tuple[str, str]]]:
    """The playlists ``records`` (a results store's) make, by genre display name, and the songs left out.

    Parameters
    ----------
    records : iterable of dict
        Results store records (``path``, ``label``, ``probabilities``, ``duration``, ``time``, ``error``).
    out_dir : path
        The playlists' folder (entries are relative to it).
    root : path
        The library folder: only songs inside it are listed (a hand-made results file
        cannot make a playlist name any other file).
    min_score : float
        Leave out files whose top score is below this.
    names : NameMap or None
        Display names (default: the shipped ones).

    Returns
    -------
    playlists : list of Playlist
    left_out : list of (path, reason)
        Songs not listed, and why (outside ``root``, not an audio file, gone, a control
        character in the name); records that are not valid results count here too.
    """
    from genrekit.library.records import record_problem
    from genrekit.tagging.names import NameMap

    names = names or NameMap.default()
    root = os.path.abspath(root)
    latest: dict[str, dict] = {}
    left_out: list[tuple[str, str]] = []
    for rec in records:
        problem = record_problem(rec)
        if problem is not None:
            left_out.append((str(rec.get("path") if isinstance(rec, dict) else "?"), problem))
        elif rec.get("error") is None and rec.get("label"):
            if rec["path"] not in latest or (latest[rec["path"]].get("time") or "") <= (rec.get("time") or ""):
                latest[rec["path"]] = rec
    groups: dict[str, list] = {}
    unknown_name = names.display(UNKNOWN_LABEL) if names.names.get(UNKNOWN_LABEL) else UNKNOWN_NAME
    for path, rec in latest.items():
        score = float((rec.get("probabilities") or {}).get(rec["label"], 0.0))
        if score < min_score:
            continue
        problem = _entry_problem(path, root)
        if problem is not None:
            left_out.append((path, problem))
            continue
        if rec.get("unknown") is True:  # fits none of the genres: never listed as one of them
            groups.setdefault(unknown_name, []).append((path, score, rec.get("duration"), names.display(rec["label"])))
        else:
            groups.setdefault(names.display(rec["label"]), []).append((path, score, rec.get("duration"), None))
    out_dir = Path(out_dir)
    playlists, taken = [], set()
    for name in sorted(groups):
        entries = sorted(groups[name], key=lambda e: (-e[1], e[0]))
        playlists.append(Playlist(name, out_dir / _file_name(name, taken), entries))
    return playlists, left_out


def _file_name(name: str, taken: set) -> str:
    """A safe, bounded file name for genre ``name``, distinct (case-insensitively) from those in ``taken``."""
    base = _UNSAFE.sub("_", name).strip(" .")
    base = base.encode("utf-8")[:FILE_NAME_MAX].decode("utf-8", "ignore").strip(" .") or "genre"
    filename, n = f"{base}.m3u8", 1
    while filename.casefold() in taken:
        n += 1
        filename = f"{base} ({n}).m3u8"
    taken.add(filename.casefold())
    return filename


def _one_line(text: str) -> str:
    """``text`` as one line of a playlist: control characters escaped, length bounded."""
    from genrekit.output import printable

    return printable(text, limit=SHOWN_NAME_MAX)


def song_title(path: str | os.PathLike) -> str:
    """``Artist - Title`` from the song's tags when it has both (first values), else its file name's stem.

    Tags are read with mutagen from the regular file only (never a FIFO or device); a file
    mutagen cannot read is named by its file name. The text is raw: :func:`m3u8_text` escapes it
    onto one bounded line."""
    import mutagen

    from genrekit.audio.files import open_regular

    def first(tags, key):
        try:
            values = tags.get(key) or []
        except (KeyError, ValueError, TypeError):
            return None
        value = str(values[0]).strip() if values else ""
        return value[: 4 * SHOWN_NAME_MAX] or None

    try:
        with open_regular(path) as fh:
            f = mutagen.File(fh, easy=True)
        tags = None if f is None else f.tags
        artist, title = (first(tags, "artist"), first(tags, "title")) if tags is not None else (None, None)
    except Exception:  # noqa: BLE001 (mutagen raises many kinds for a damaged file; the name still serves)
        artist = title = None
    return f"{artist} - {title}" if artist and title else Path(path).stem


def m3u8_text(playlist: Playlist) -> str:
    """The extended M3U8 text of ``playlist``."""
    folder = os.path.abspath(playlist.path.parent)
    name = _one_line(playlist.name)
    lines = ["#EXTM3U", f"#PLAYLIST:{name}"]
    for path, score, duration, closest in playlist.entries:
        absolute = os.path.abspath(path)
        try:
            shown = os.path.relpath(absolute, folder)
        except ValueError:  # another drive (Windows): only an absolute path reaches it
            shown = absolute
        shown = Path(shown).as_posix()
        if shown.startswith("#"):  # a song named "#EXTINF..." is a path, not a tag
            shown = "./" + shown
        seconds = -1 if duration is None else int(round(float(duration)))
        what = f"{name} {score:.2f}" if closest is None else f"{name}, closest: {_one_line(closest)} {score:.2f}"
        lines += [f"#EXTINF:{seconds},{_one_line(song_title(path))} ({what})", shown]
    return "\n".join(lines) + "\n"


def write_playlists(records, out_dir: str | os.PathLike, **kwargs) -> tuple[list[Playlist], list[tuple[str, str]]]:
    """Write one M3U8 per genre into ``out_dir`` (created; each file replaced atomically); as
    :func:`plan_playlists`, the playlists and the songs left out."""
    playlists, left_out = plan_playlists(records, out_dir, **kwargs)
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    for playlist in playlists:
        # A name that is not UTF-8 (lone surrogates, caf\udce9) is written as the file's own bytes.
        write_bytes_atomic(playlist.path, m3u8_text(playlist).encode("utf-8", "surrogateescape"))
    return playlists, left_out
