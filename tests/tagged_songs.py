"""Synthetic songs with genre, artist and album tags written by mutagen, as a tagger would
(ID3v2.4 ``TCON`` with one value per genre in MP3; one ``GENRE`` comment per genre in FLAC
and Ogg Vorbis), for training from a library's own tags."""

from __future__ import annotations

from pathlib import Path

import mutagen
from mutagen.easyid3 import EasyID3
from mutagen.id3 import ID3, ID3NoHeaderError

from synthetic_songs import write_song

#: The formats the songs cycle through.
FORMATS = (".flac", ".mp3", ".ogg")


def tag(path: Path, genres=(), artist: str | None = None, album: str | None = None) -> Path:
    """Write ``genres`` (several values), ``artist`` and ``album`` into ``path``'s tags."""
    if path.suffix == ".mp3":
        try:
            ID3(path)
        except ID3NoHeaderError:
            ID3().save(path)
        f = EasyID3(path)
    else:
        f = mutagen.File(path, easy=True)
        if f.tags is None:
            f.add_tags()
    for key, value in (("genre", list(genres)), ("artist", [artist] if artist else []),
                       ("album", [album] if album else [])):
        if value:
            f[key] = value
    f.save(path) if path.suffix != ".mp3" else f.save(path, v2_version=4)
    return path


def tagged_library(root: Path, plan, seconds: float = 6.0, seed: int = 0) -> list[Path]:
    """Songs under ``root`` from ``plan``: ``[(kind, genres, artist, album), ...]`` (``kind`` a
    :func:`synthetic_songs.synth` kind), formats cycling through :data:`FORMATS`; song ``i`` is
    synthesised with seed ``seed + i`` (another ``seed``: other songs of the same kinds)."""
    root.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, (kind, genres, artist, album) in enumerate(plan):
        path = write_song(root / f"song{i:02d}{FORMATS[i % len(FORMATS)]}", kind, seconds=seconds, seed=seed + i)
        paths.append(tag(path, genres, artist, album))
    return paths
