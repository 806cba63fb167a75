"""Genre values and genrekit's own field, read and written the way each format keeps several values.

==================  ==========================================  ================================
format              several genres                              genrekit's field
==================  ==========================================  ================================
MP3, WAV, AIFF      ID3v2.4: one ``TCON`` frame, several values  ``TXXX:GENREKIT``
(ID3)               (NUL-separated); ID3v2.3: one value, joined
                    by a separator (``/`` by default, as Picard)
FLAC, Ogg           one ``GENRE`` comment per value              ``GENREKIT`` comment
Vorbis/Opus
MP4 / M4A           several ``©gen`` values (a numeric ``gnre``  ``----:org.genrekit:GENREKIT``
                    is read, and dropped when genrekit writes)
==================  ==========================================  ================================

Reading follows the same rules (:func:`read_genres`), so a merge sees every value a
file has. ID3v1-style numeric genres (``(17)``) are read as their names, as mutagen does.
Writing goes through :func:`genrekit.tagging.safe_write.replace_with_tagged_copy`: a verified temporary
copy replaces the file; only tag blocks change, never the audio frames.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from genrekit.errors import TagError
from genrekit.tagging.safe_write import ext_of, open_tags, replace_with_tagged_copy

#: Name of genrekit's provenance field (ID3 ``TXXX`` description, Vorbis comment, MP4 freeform name).
FIELD = "GENREKIT"
#: The MP4 freeform atom of genrekit's field.
MP4_FIELD = "----:org.genrekit:GENREKIT"
#: How ID3v2.3 joins several genres in its one value, unless told otherwise (Picard's default).
#: genrekit's own field in each kind of tag, for integrations that declare it (beets' mediafile):
#: ID3 ``TXXX:GENREKIT``, Vorbis ``GENREKIT``, MP4 ``----:org.genrekit:GENREKIT``.
PROVENANCE_FIELDS = {"id3": FIELD, "vorbis": FIELD, "mp4": MP4_FIELD}
ID3V23_SEP = "/"


@dataclass(frozen=True)
class TagState:
    """A file's genre tags exactly as stored: what an undo restores and what it compares.

    Attributes
    ----------
    kind : str
        ``"id3"``, ``"vorbis"`` or ``"mp4"``.
    genre : tuple of str or None
        The raw genre values (ID3: ``TCON``'s text; Vorbis: the ``GENRE`` comments;
        MP4: ``©gen``), ``None`` when the file has none.
    field : str or None
        genrekit's field, ``None`` when absent.
    gnre : tuple of int or None
        MP4's numeric genre atom.
    id3_version : int or None
        3 or 4 for ID3 tags (a file without tags is written as 2.4).
    """

    kind: str
    genre: tuple[str, ...] | None = None
    field: str | None = None
    gnre: tuple[int, ...] | None = None
    id3_version: int | None = None

    def to_json(self) -> dict:
        return {"kind": self.kind, "genre": None if self.genre is None else list(self.genre), "field": self.field,
                "gnre": None if self.gnre is None else list(self.gnre), "id3_version": self.id3_version}

    @classmethod
    def from_json(cls, obj: dict) -> TagState:
        return cls(obj["kind"], None if obj.get("genre") is None else tuple(obj["genre"]), obj.get("field"),
                   None if obj.get("gnre") is None else tuple(obj["gnre"]), obj.get("id3_version"))

    def same_tags(self, other: TagState) -> bool:
        """Same genre values and field (what an undo checks before it restores)."""
        return (self.genre, self.field, self.gnre) == (other.genre, other.field, other.gnre)


def _state(f, kind: str) -> TagState:
    tags = f.tags
    if tags is None:
        return TagState(kind, id3_version=4 if kind == "id3" else None)
    if kind == "id3":
        frame = tags.get("TCON")
        txxx = tags.get(f"TXXX:{FIELD}")
        version = 3 if getattr(tags, "version", (2, 4, 0))[1] == 3 else 4
        return TagState(kind, tuple(frame.text) if frame is not None and frame.text else None,
                        "/".join(txxx.text) if txxx is not None else None, None, version)
    if kind == "vorbis":
        genre = tags.get("GENRE") or None  # Vorbis comment keys are case-insensitive
        field = tags.get(FIELD)
        return TagState(kind, tuple(genre) if genre else None, field[0] if field else None)
    genre = tags.get("\xa9gen")
    field = tags.get(MP4_FIELD)
    gnre = tags.get("gnre")
    return TagState(kind, tuple(genre) if genre else None,
                    bytes(field[0]).decode("utf-8", "replace") if field else None,
                    tuple(int(n) for n in gnre) if gnre else None)


def genre_values(state: TagState, id3v23_sep: str = ID3V23_SEP) -> list[str]:
    """The genres a :class:`TagState` holds, one per value, by its format's rules."""
    values: list[str] = []
    if state.kind == "id3" and state.genre:
        from mutagen.id3 import TCON

        for value in TCON(text=list(state.genre)).genres:  # numeric references ("(17)") become names
            parts = value.split(id3v23_sep) if state.id3_version == 3 and id3v23_sep else [value]
            values += [p.strip() for p in parts if p.strip()]
    elif state.genre:
        values = [v.strip() for v in state.genre if v.strip()]
    elif state.kind == "mp4" and state.gnre:
        from mutagen.id3 import TCON

        # gnre holds 1-based ID3v1 genre numbers; TCON knows their names
        values = TCON(text=[f"({n - 1})" for n in state.gnre]).genres
    return list(dict.fromkeys(values))


def encode_genres(state: TagState, values: list[str], id3v23_sep: str = ID3V23_SEP) -> tuple[str, ...]:
    """The raw values that hold ``values`` in the file ``state`` describes (ID3v2.3: joined)."""
    if state.kind == "id3" and state.id3_version == 3:
        return (id3v23_sep.join(values),)
    return tuple(values)


def open_state(path: str | os.PathLike) -> tuple[TagState, type]:
    """The genre tags of ``path`` and the mutagen class it opens as.

    Raises :class:`TagError` for a file mutagen cannot read or a format genrekit does not tag.
    """
    f, kind = open_tags(os.fspath(path))
    if f is None:
        raise TagError(f"tags not supported for {ext_of(path)} files")
    return _state(f, kind), type(f)


def read_state(path: str | os.PathLike) -> TagState:
    """:class:`TagState` of ``path`` (raises :class:`TagError` as :func:`open_state`)."""
    return open_state(path)[0]


def read_genres(path: str | os.PathLike, *, id3v23_sep: str = ID3V23_SEP) -> list[str]:
    """The genres an audio file's tags hold, one string per value, in the file's order.

    The public reader of genre tags (training from a library's own tags uses it too):
    ID3v2.4 ``TCON`` values; ID3v2.3 ``TCON`` split at ``id3v23_sep``; every Vorbis ``GENRE``
    comment; MP4 ``©gen`` values, else the numeric ``gnre``'s name. ID3v1 numeric genres
    (``(17)``) are given as names (``Rock``). Values are stripped; empty ones and repeats dropped.

    Parameters
    ----------
    path : str or path-like
        An MP3, FLAC, Ogg Vorbis/Opus, MP4/M4A, WAV or AIFF file.
    id3v23_sep : str
        The separator of several genres in an ID3v2.3 tag (``""``: never split).

    Returns
    -------
    list of str
        Empty when the file has no genre.

    Raises
    ------
    genrekit.errors.TagError
        The file cannot be read by mutagen, or its format has no genre tag genrekit knows.

    Examples
    --------
    >>> read_genres("song.mp3")          # doctest: +SKIP
    ['Hip-Hop', 'Electronic']
    """
    return genre_values(read_state(path), id3v23_sep)


def _apply(f, kind: str, state: TagState) -> None:
    """Make ``f``'s tags hold ``state``'s genre, field and gnre (absent ones removed)."""
    if f.tags is None:
        f.add_tags()
    tags = f.tags
    if kind == "id3":
        from mutagen.id3 import TCON, TXXX

        tags.delall("TCON")
        if state.genre is not None:
            tags.add(TCON(encoding=3, text=list(state.genre)))  # 3: UTF-8 (ID3v2.3 saving turns it into UTF-16)
        tags.delall(f"TXXX:{FIELD}")
        if state.field is not None:
            tags.add(TXXX(encoding=3, desc=FIELD, text=[state.field]))
    elif kind == "vorbis":
        for key, value in (("GENRE", state.genre), (FIELD, None if state.field is None else (state.field,))):
            if value is None:
                if key in tags:  # a Vorbis comment's pop takes no default
                    del tags[key]
            else:
                tags[key] = list(value)
    else:
        from mutagen.mp4 import MP4FreeForm

        for key, value in (("\xa9gen", state.genre), ("gnre", state.gnre)):
            if value is None:
                tags.pop(key, None)
            else:
                tags[key] = list(value)
        if state.field is None:
            tags.pop(MP4_FIELD, None)
        else:
            tags[MP4_FIELD] = [MP4FreeForm(state.field.encode("utf-8"))]


def write_state(path: str | os.PathLike, state: TagState, cls=None, before_replace=None) -> None:
    """Make the file's genre tags exactly ``state`` (genre values, genrekit's field, MP4 ``gnre``).

    The file is replaced by a verified copy (:func:`genrekit.tagging.safe_write.replace_with_tagged_copy`);
    the ID3 version the file has is kept. ``cls``: the mutagen class (from :func:`open_state`);
    ``before_replace(tmp)``: called with the verified copy before it replaces the file (a journal entry).

    Raises
    ------
    genrekit.errors.TagError, OSError
        Nothing was changed.
    """
    real = os.path.realpath(path)
    if cls is None:
        cls = open_state(real)[1]

    def edit(f, kind, target):
        _apply(f, kind, state)
        if kind == "id3":
            f.save(target, v2_version=state.id3_version or 4)  # keep 2.3: older players cannot read 2.4
        else:
            f.save(target)

    def check(f, kind):
        if not _state(f, kind).same_tags(state):
            raise TagError("the written tag did not read back")

    replace_with_tagged_copy(real, cls, edit, check,
                             None if before_replace is None else lambda _real, tmp: before_replace(tmp))
