"""The name map: model labels as people see them and as genrekit writes them into tags.

A model's labels are identifiers (``hiphop``, ``metal``); taggers, players and people
expect ``Hip-Hop``, ``Metal``. One :class:`NameMap` turns a label into its display
name (tables, the web page, the API's ``name``) and into the names written into tags,
and turns a tag value someone wrote (``hip hop``, ``HIP-HOP``) back into a label.

The shipped map (:data:`DEFAULT_NAMES`) names the GTZAN labels. A user's TOML file
(``--names FILE``, beets' ``names:``) overrides it, label by label::

    hiphop = "Hip-Hop"              # one name
    rock = ["Rock", "Classic Rock"] # several names, all written
    disco = ""                      # never write this label (still shown as "Disco")

    [aliases]                       # tag values that mean a label (for reading and merging)
    "Rap" = "hiphop"

Labels no map names (a trained model's own labels) are shown and written as they are.

Styles roll up to genres through the genre tree (:mod:`genrekit.taxonomy.tree`, FMA's taxonomy) when
asked: ``--names tree`` (or ``"*" = "tree"`` in a file) reads a tag value the map does not know, but
the tree does, as the nearest genre above it that the map knows, else its top-level genre
(``"Alternative Rock"`` -> ``rock``, ``"Death Metal"`` -> ``metal``, ``"Techno"`` -> ``Electronic``); ``"*" = ["rock", "electronic"]`` rolls it to the nearest of those genres above it
instead (a value with none of them above it stays as it is). Values the map knows keep their label.
Tag values are compared by their *key*: case-folded, with everything but letters and
digits removed, so ``Hip-Hop``, ``hip hop`` and ``HipHop`` are the same genre.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from genrekit.errors import TagError

#: Display and tag names of the shipped models' labels (GTZAN's ten, and broad-musicnn's electronic).
DEFAULT_NAMES: dict[str, str] = {
    "blues": "Blues", "classical": "Classical", "country": "Country", "disco": "Disco", "hiphop": "Hip-Hop",
    "jazz": "Jazz", "metal": "Metal", "pop": "Pop", "reggae": "Reggae", "rock": "Rock",
    "electronic": "Electronic",  # broad-musicnn's eleventh genre
}

_NOT_KEY = re.compile(r"[\W_]+", re.UNICODE)

#: The longest label or genre name accepted (``--names`` values, training labels), in characters.
LABEL_MAX = 100
#: The largest ``--names`` file read, in bytes.
NAMES_FILE_MAX = 1 << 20


def label_problem(value: str) -> str | None:
    """What makes ``value`` unfit as a genre label or name, or ``None``.

    A label is a value shown on one line, written into tags and playlists: it holds no
    control or format character (a newline, ESC, a zero-width space), is at most
    :data:`LABEL_MAX` characters long, and has a letter or digit (:func:`name_key` is not
    empty, so ``"!!!"`` and ``"???"`` cannot merge into one nameless genre).
    """
    import unicodedata

    if any(unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Zl", "Zp") for ch in value):
        return "holds a control character"
    if len(value) > LABEL_MAX:
        return f"is {len(value)} characters long (at most {LABEL_MAX})"
    if not name_key(value):
        return "has no letter or digit"
    return None


def name_key(value: str) -> str:
    """How two genre names are compared: case-folded, letters and digits only (``"Hip-Hop"`` → ``"hiphop"``)."""
    return _NOT_KEY.sub("", str(value).casefold())


@dataclass(frozen=True)
class NameMap:
    """Model labels to names, and tag values back to labels.

    Parameters
    ----------
    names : mapping of str to tuple of str
        Each label's tag names, in order; an empty tuple: never write that label.
    aliases : mapping of str to str
        Extra tag values (any case or punctuation) and the label each means.
    source : str or None
        The file the map was read from (``None``: the shipped map).

    Examples
    --------
    >>> names = NameMap.default()
    >>> names.display("hiphop"), names.tag_names("hiphop"), names.canonical("hip hop")
    ('Hip-Hop', ['Hip-Hop'], 'hiphop')
    >>> names.display("drum_and_bass")   # a label no map names is kept as it is
    'drum_and_bass'
    """

    names: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    aliases: Mapping[str, str] = field(default_factory=dict)
    source: str | None = None
    #: Roll tag values the map does not know up the genre tree: ``"top"`` (its top-level genres), a
    #: tuple of chosen genres (the nearest above), or ``None`` (no rolling up).
    roll_up: str | tuple[str, ...] | None = None
    #: Write a style with its genre (``classify --write-tags --with-style``): a label the genre tree
    #: knows as a style is written as its top-level genre's name, then its own.
    styles: bool = False

    @classmethod
    def default(cls) -> NameMap:
        """The shipped map (:data:`DEFAULT_NAMES`)."""
        return cls({label: (name,) for label, name in DEFAULT_NAMES.items()})

    def display(self, label: str) -> str:
        """The name shown for ``label``: its first tag name; a never-written label keeps the
        shipped name (or the label); a label no map names is shown as it is."""
        names = self.names.get(label)
        if names:
            return names[0]
        return DEFAULT_NAMES.get(label, label)

    def tag_names(self, label: str) -> list[str]:
        """The names written into tags for ``label`` (empty: never write it)."""
        names = self.names.get(label)
        names = list(names) if names is not None else [label]
        if self.styles and names:
            genre = self.genre_of_style(label)
            if genre is not None and name_key(genre) not in {name_key(n) for n in names}:
                names.insert(0, genre)
        return names

    def genre_of_style(self, label: str) -> str | None:
        """The name of the top-level genre ``label`` is a style of, in the genre tree (this map's name
        for it where the map has one; ``None``: not a style the tree knows)."""
        from genrekit.taxonomy.tree import GenreTree

        chain = GenreTree.fma().chain(self.display(label))
        if len(chain) < 2:
            return None
        top = self._lookup.get(name_key(chain[-1]))
        return self.display(top) if top is not None else chain[-1]

    def canonical(self, value: str) -> str | None:
        """The model label a tag value stands for, or ``None`` when no label matches.

        ``value`` matches a label, any of its names (shipped or from the file) or an alias,
        by :func:`name_key` (case and punctuation do not count). With :attr:`roll_up`, a value none
        matches but the genre tree knows stands for the genre it rolls up to (that genre's label when
        the map knows it, else the tree's title).
        """
        lookup = self._lookup
        label = lookup.get(name_key(value))
        if label is None and self.roll_up is not None:
            from genrekit.taxonomy.tree import GenreTree

            tree = GenreTree.fma()
            if self.roll_up == "top":  # the nearest genre above that the map knows, else the top level
                chain = tree.chain(value)
                label = next((lookup[name_key(g)] for g in chain if name_key(g) in lookup),
                             chain[-1] if chain else None)
            else:
                genre = tree.roll_up(value, self.roll_up)
                label = None if genre is None else lookup.get(name_key(genre), genre)
        return label

    def label_among(self, value: str, labels: Iterable[str]) -> str | None:
        """The label of ``labels`` (a model's) that ``value`` names, or ``None``.

        ``value`` may be the label, its display name as tables print it, any of its names or a value
        the map reads as it (:meth:`canonical`); case and punctuation do not count (:func:`name_key`),
        so ``Country``, ``country`` and ``Hip Hop`` name ``country`` and ``hiphop``.
        """
        labels = list(labels)
        if value in labels:
            return value
        key = name_key(value)
        for label in labels:
            if key in {name_key(label), name_key(self.display(label)), *map(name_key, self.names.get(label, ()))}:
                return label
        label = self.canonical(value)
        return label if label in labels else None

    def same(self, a: str, b: str) -> bool:
        """Whether two tag values name the same genre (through the map, else by :func:`name_key`)."""
        ka, kb = self.canonical(a) or name_key(a), self.canonical(b) or name_key(b)
        return ka == kb

    @property
    def _lookup(self) -> dict[str, str]:
        table: dict[str, str] = {}
        for label, name in DEFAULT_NAMES.items():
            table.setdefault(name_key(label), label)
            table.setdefault(name_key(name), label)
        for label, names in self.names.items():
            table[name_key(label)] = label
            for name in names:
                table[name_key(name)] = label
        for alias, label in self.aliases.items():
            table[name_key(alias)] = label
        return table

    def as_dict(self, labels: Iterable[str]) -> dict[str, str]:
        """``{label: display name}`` for ``labels`` (the API's model description)."""
        return {label: self.display(label) for label in labels}


def load_names(path: str | os.PathLike | None = None) -> NameMap:
    """The name map: the shipped one, overridden label by label by the TOML file ``path``.

    Parameters
    ----------
    path : str, path-like or None
        A TOML file (see the module's notes); ``None``: the shipped map alone.

    Raises
    ------
    genrekit.errors.TagError
        The file cannot be read, is not TOML, or gives a label something other than a
        string or a list of strings (the message names the file and the label).
    """
    base = NameMap.default()
    if path is None:
        return base
    if os.fspath(path) == TREE and not os.path.exists(path):
        return NameMap(base.names, roll_up="top", source=TREE)
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib
    from genrekit.audio.files import open_regular

    path = os.fspath(path)
    shown = path  # the command line escapes its error lines (genrekit.commands.common.error_line)
    try:
        with open_regular(path) as fh:
            raw = fh.read(NAMES_FILE_MAX + 1)
    except OSError as exc:
        raise TagError(f"names file {shown}: cannot read it: {exc.strerror or exc}") from None
    if len(raw) > NAMES_FILE_MAX:
        raise TagError(f"names file {shown}: larger than {NAMES_FILE_MAX >> 20} MiB; a names file is a few lines")
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise TagError(f"names file {shown}: not valid TOML: {exc}") from None
    except (ValueError, RecursionError):  # integers of thousands of digits, nesting thousands deep
        raise TagError(f"names file {shown}: not a names file (values nested too deep or numbers too long)") from None

    def check(what: str, value: str) -> None:
        problem = label_problem(value)
        if problem is not None:
            raise TagError(f"names file {shown}: {what} {_quoted(value)} {problem}")

    names = dict(base.names)
    aliases: dict[str, str] = {}
    claimed: dict[str, str] = {}  # a name's key -> the file's label that names it
    roll_up = None
    for label, value in data.items():
        if label == "*":
            roll_up = _roll_up_value(path, value)
            continue
        if label == "aliases":
            if not isinstance(value, dict) or not all(isinstance(v, str) and v for v in value.values()):
                raise TagError(f"names file {shown}: [aliases] must map tag values to labels (strings)")
            for alias, target in value.items():
                check("alias", alias)
                check("label", target)
            aliases.update(value)
            continue
        check("label", label)
        if isinstance(value, str):
            value = [value] if value.strip() else []
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            raise TagError(f"names file {shown}: {_quoted(label)} must be a name, a list of names, "
                           f"or \"\" (never write it); got {_quoted(value)}")
        for v in value:
            check("name", v.strip())
            other = claimed.setdefault(name_key(v), label)
            if other != label:  # "Hip Hop" for hiphop and "HipHop" for rap: which would a tag mean?
                raise TagError(f"names file {shown}: the name {_quoted(v.strip())} of {_quoted(label)} is the same "
                               f"genre as a name of {_quoted(other)} (case and punctuation do not count)")
        names[label] = tuple(v.strip() for v in value)
    return NameMap(names, aliases, source=path, roll_up=roll_up)


def _quoted(value, limit: int = 60) -> str:
    """``value`` quoted for a message: control characters escaped (``repr``), at most ``limit`` characters."""
    text = value if isinstance(value, str) else repr(value)
    return repr(text[:limit]) + (f"… ({len(text) - limit} more characters)" if len(text) > limit else "")


#: ``--names tree``: the shipped names, rolling styles up to the genre tree's top-level genres.
TREE = "tree"


def _roll_up_value(path, value) -> str | tuple[str, ...]:
    """A names file's ``"*"`` entry: ``"tree"`` (roll up to the top level) or a list of chosen genres."""
    if value == TREE:
        return "top"
    if isinstance(value, list) and value and all(isinstance(v, str) and v.strip() for v in value):
        return tuple(v.strip() for v in value)
    raise TagError(f"names file {path}: \"*\" must be \"tree\" (roll styles up to the genre tree's top level) "
                   f"or a list of genres to roll up to; got {_quoted(value)}")
