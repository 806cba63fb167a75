"""The genre › style tree: FMA's 163-genre taxonomy, looked up by name, rolled up to a level.

The tree is the Free Music Archive's (Defferrard et al., ISMIR 2017; CC BY 4.0, see ``NOTICE``):
16 top-level genres (Rock, Electronic, Hip-Hop, Classical, ...), each with styles below it, some
several levels deep (Rock › Metal › Death-Metal). Every style has one parent.

Names are looked up by a *key*: case-folded, ``&`` read as "and", everything but letters and digits
dropped, so ``"hip hop"``, ``"Hip-Hop"`` and ``"HIPHOP"`` are one genre, as are ``"Drum & Bass"`` and
``"drum and bass"``. Only the tree's own titles and the documented :data:`ALIASES` are known; a name
neither holds is not guessed at (``find`` returns ``None``).

:data:`ALIASES` are genrekit's additions: common tag spellings that are not FMA titles, each placed as
a style under an FMA genre (``"Alternative Rock"`` under Rock), or another spelling of an FMA title
(``"R&B"`` for Soul-RnB).

Examples
--------
>>> tree = GenreTree.fma()
>>> tree.chain("death metal")
['Death-Metal', 'Metal', 'Rock']
>>> tree.top("Alternative Rock")
'Rock'
>>> tree.roll_up("Techno", ["Rock", "Electronic"])
'Electronic'
"""

from __future__ import annotations

import csv
import functools
import re
from dataclasses import dataclass
from pathlib import Path

from genrekit.errors import ParameterError

__all__ = ["GenreTree", "genre_key", "ALIASES", "TOP", "FMA_CSV"]

#: The shipped tree: FMA's genres.csv (track counts left out; see NOTICE).
FMA_CSV = Path(__file__).with_name("fma_genres.csv")
#: The level :meth:`GenreTree.roll_up` rolls to when no genres are chosen: the top-level genres.
TOP = "top"
#: Names that are not FMA titles -> the FMA genre they sit under (a style of it) or stand for.
#: ``(name, parent, is_style)``: a style is a new node under ``parent``; otherwise ``name`` is
#: another spelling of ``parent`` itself.
ALIASES: tuple[tuple[str, str, bool], ...] = (
    ("Alternative Rock", "Rock", True),
    ("Alt Rock", "Rock", True),
    ("Hard Rock", "Rock", True),
    ("Classic Rock", "Rock", True),
    ("Electro Rock", "Rock", True),
    ("Heavy Metal", "Metal", True),
    ("World", "International", False),
    ("World Music", "International", False),
    ("R&B", "Soul-RnB", False),
    ("RnB", "Soul-RnB", False),
    ("Rhythm and Blues", "Soul-RnB", False),
    ("Soul", "Soul-RnB", False),
    ("Rap", "Hip-Hop", False),
    ("Electronica", "Electronic", False),
    ("Reggae", "Reggae - Dub", False),
    ("Dub", "Reggae - Dub", False),
    ("Dancehall", "Reggae - Dancehall", False),
)

_NOT_KEY = re.compile(r"[\W_]+", re.UNICODE)


def genre_key(name: str) -> str:
    """How names are compared: case-folded, ``&`` as "and", letters and digits only."""
    return _NOT_KEY.sub("", str(name).casefold().replace("&", "and"))


@dataclass(frozen=True)
class _Node:
    title: str
    parent: str | None  # the parent's key; None for a top-level genre


class GenreTree:
    """A genre › style tree. :meth:`fma` is the shipped one."""

    def __init__(self, nodes: dict[str, _Node], spellings: dict[str, str], source: str) -> None:
        self._nodes = nodes          # key -> node
        self._spellings = spellings  # key of another spelling -> key of the node it names
        self.source = source

    @classmethod
    @functools.cache
    def fma(cls) -> "GenreTree":
        """FMA's taxonomy with :data:`ALIASES` (read once per process)."""
        return cls.from_csv(FMA_CSV, aliases=ALIASES)

    @classmethod
    def from_csv(cls, path: str | Path, aliases=()) -> "GenreTree":
        """A tree from a CSV of ``genre_id,parent_id,title`` rows (``parent_id`` 0: top level)."""
        with open(path, newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
        titles = {row["genre_id"]: row["title"].strip() for row in rows}
        nodes: dict[str, _Node] = {}
        for row in rows:
            parent = titles.get(row["parent_id"]) if row["parent_id"] not in ("", "0") else None
            nodes[genre_key(row["title"])] = _Node(row["title"].strip(), None if parent is None else genre_key(parent))
        spellings: dict[str, str] = {}
        for name, parent, style in aliases:
            if genre_key(parent) not in nodes:
                raise ParameterError(f"genre tree alias {name!r}: {parent!r} is not in {path}")
            if style:
                nodes.setdefault(genre_key(name), _Node(name, genre_key(parent)))
            else:
                spellings.setdefault(genre_key(name), genre_key(parent))
        return cls(nodes, spellings, str(path))

    def _key(self, name: str) -> str | None:
        key = genre_key(name)
        key = self._spellings.get(key, key)
        return key if key in self._nodes else None

    def find(self, name: str) -> str | None:
        """The tree's title for ``name`` (case and punctuation do not count), or ``None``."""
        key = self._key(name)
        return None if key is None else self._nodes[key].title

    def chain(self, name: str) -> list[str]:
        """``name``'s title, then its parent's, up to its top-level genre (``[]``: not in the tree)."""
        key, out = self._key(name), []
        while key is not None and len(out) <= len(self._nodes):
            node = self._nodes[key]
            out.append(node.title)
            key = node.parent
        return out

    def parent(self, name: str) -> str | None:
        """The genre ``name`` is a style of (``None``: a top-level genre, or not in the tree)."""
        chain = self.chain(name)
        return chain[1] if len(chain) > 1 else None

    def top(self, name: str) -> str | None:
        """``name``'s top-level genre (itself when it is one; ``None``: not in the tree)."""
        chain = self.chain(name)
        return chain[-1] if chain else None

    def roll_up(self, name: str, level=TOP) -> str | None:
        """The genre ``name`` counts for: with ``level`` :data:`TOP`, its top-level genre; with a list of
        chosen genres, the nearest of them on its chain (itself first), compared by key and returned as
        spelled in ``level``; ``None`` when it is not in the tree or no chosen genre is above it."""
        chain = self.chain(name)
        if not chain:
            return None
        if isinstance(level, str) and level == TOP:
            return chain[-1]
        chosen = {}
        for genre in level:
            chosen.setdefault(self._key(genre) or genre_key(genre), genre)
        for title in chain:
            if genre_key(title) in chosen:
                return chosen[genre_key(title)]
        return None

    def tops(self) -> list[str]:
        """The top-level genres, in the tree's order."""
        return [n.title for n in self._nodes.values() if n.parent is None]

    def styles(self, name: str) -> list[str]:
        """The styles directly below ``name``."""
        key = self._key(name)
        return [n.title for n in self._nodes.values() if key is not None and n.parent == key]
