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
        return list(names) if names is not None else [label]

    def canonical(self, value: str) -> str | None:
        """The model label a tag value stands for, or ``None`` when no label matches.

        ``value`` matches a label, any of its names (shipped or from the file) or an alias,
        by :func:`name_key` (case and punctuation do not count).
        """
        return self._lookup.get(name_key(value))

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
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib
    path = os.fspath(path)
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except OSError as exc:
        raise TagError(f"names file {path}: cannot read it: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise TagError(f"names file {path}: not valid TOML: {exc}") from None
    names = dict(base.names)
    aliases: dict[str, str] = {}
    for label, value in data.items():
        if label == "aliases":
            if not isinstance(value, dict) or not all(isinstance(v, str) and v for v in value.values()):
                raise TagError(f"names file {path}: [aliases] must map tag values to labels (strings)")
            aliases.update(value)
            continue
        if isinstance(value, str):
            value = [value] if value.strip() else []
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            raise TagError(f"names file {path}: {label!r} must be a name, a list of names, or \"\" "
                           f"(never write it); got {value!r}")
        names[label] = tuple(v.strip() for v in value)
    return NameMap(names, aliases, source=path)
