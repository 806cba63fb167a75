"""Argument setup and handlers of the ``genrekit`` verbs that are not in :mod:`genrekit.cli` itself."""
