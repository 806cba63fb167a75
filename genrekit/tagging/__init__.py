"""Genre tags of a music library: the name map, each format's tags, the plan, and the undo journal.

Public for reuse (training from a library's own tags, the beets plugin):

- :func:`read_genres` — a file's genres, one string per value, by its format's rules
  (:mod:`genrekit.tagging.formats`);
- :func:`load_names`, :class:`NameMap` — model labels to names and back
  (:meth:`NameMap.display`, :meth:`NameMap.tag_names`, :meth:`NameMap.canonical`;
  :mod:`genrekit.tagging.names`).
"""

from .formats import FIELD, ID3V23_SEP, TagState, read_genres, read_state, write_state
from .names import DEFAULT_NAMES, NameMap, load_names, name_key

__all__ = ["read_genres", "read_state", "write_state", "TagState", "FIELD", "ID3V23_SEP",
           "NameMap", "load_names", "name_key", "DEFAULT_NAMES"]
