"""Genre tags of a music library: the name map, each format's tags, the plan, and the undo journal.

Public for reuse (training from a library's own tags, the beets plugin):

- :func:`read_genres` — a file's genres, one string per value, by its format's rules
  (:mod:`genrekit.tagging.formats`);
- :func:`load_names`, :class:`NameMap` — model labels to names and back
  (:meth:`NameMap.display`, :meth:`NameMap.tag_names`, :meth:`NameMap.canonical`;
  :mod:`genrekit.tagging.names`).
"""
