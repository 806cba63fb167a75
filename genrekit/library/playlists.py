"""Playlists by genre from a results store: one extended M3U8 file per genre.

Each classified file goes into the playlist of its top genre when that genre's score is
at least ``min_score``; a playlist lists its songs best-scoring first (ties by path).
Files are named by genre display name (:class:`genrekit.tagging.names.NameMap`:
``Hip-Hop.m3u8``); entries carry ``#EXTINF:<seconds>,<title>`` and the song's path,
relative to the playlists' folder where it can be (same drive), else absolute. A file
classified several times (before and after its tags were written, or by several models)
counts once: its latest result. Files that no longer exist are left out.

References
----------
M3U8: extended M3U in UTF-8 (RFC 8216 §4 for the ``#EXTM3U``/``#EXTINF`` tags).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from genrekit._io import write_bytes_atomic

_UNSAFE = re.compile(r'[\\/:*?"<>|\x00-\x1f]+')


@dataclass(frozen=True)
class Playlist:
    """One genre's playlist: its display name, file, and ``(path, score, duration)`` entries, best first."""

    name: str
    path: Path
    entries: list


def plan_playlists(records, out_dir: str | os.PathLike, *, min_score: float = 0.0, names=None) -> list[Playlist]:
    """The playlists ``records`` (a results store's) make, by genre display name.

    Parameters
    ----------
    records : iterable of dict
        Results store records (``path``, ``label``, ``probabilities``, ``duration``, ``time``, ``error``).
    out_dir : path
        The playlists' folder (entries are relative to it).
    min_score : float
        Leave out files whose top score is below this.
    names : NameMap or None
        Display names (default: the shipped ones).
    """
    from genrekit.tagging.names import NameMap

    names = names or NameMap.default()
    latest: dict[str, dict] = {}
    for rec in sorted(records, key=lambda r: r.get("time") or ""):
        if rec.get("error") is None and rec.get("label") and rec.get("path"):
            latest[rec["path"]] = rec
    groups: dict[str, list] = {}
    for path, rec in latest.items():
        score = float((rec.get("probabilities") or {}).get(rec["label"], 0.0))
        if score < min_score or not os.path.exists(path):
            continue
        groups.setdefault(names.display(rec["label"]), []).append((path, score, rec.get("duration")))
    out_dir = Path(out_dir)
    playlists = []
    for name in sorted(groups):
        entries = sorted(groups[name], key=lambda e: (-e[1], e[0]))
        filename = (_UNSAFE.sub("_", name).strip(" .") or "genre") + ".m3u8"
        playlists.append(Playlist(name, out_dir / filename, entries))
    return playlists


def m3u8_text(playlist: Playlist) -> str:
    """The extended M3U8 text of ``playlist``."""
    folder = os.path.abspath(playlist.path.parent)
    lines = ["#EXTM3U", f"#PLAYLIST:{playlist.name}"]
    for path, score, duration in playlist.entries:
        absolute = os.path.abspath(path)
        try:
            shown = os.path.relpath(absolute, folder)
        except ValueError:  # another drive (Windows): only an absolute path reaches it
            shown = absolute
        seconds = -1 if duration is None else int(round(float(duration)))
        lines += [f"#EXTINF:{seconds},{Path(path).stem} ({playlist.name} {score:.2f})", Path(shown).as_posix()]
    return "\n".join(lines) + "\n"


def write_playlists(records, out_dir: str | os.PathLike, **kwargs) -> list[Playlist]:
    """Write one M3U8 per genre into ``out_dir`` (created; each file replaced atomically)."""
    playlists = plan_playlists(records, out_dir, **kwargs)
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    for playlist in playlists:
        write_bytes_atomic(playlist.path, m3u8_text(playlist).encode("utf-8"))
    return playlists
