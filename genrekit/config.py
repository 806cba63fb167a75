"""genrekit's settings from the environment, read in one place, once per process.

>>> from genrekit.config import settings
>>> settings().cache_dir                      # doctest: +SKIP
PosixPath('/home/me/.cache/genrekit')

The variables (an empty value counts as unset):

- ``GENREKIT_DATA``: where named datasets are downloaded and looked for (``~/genrekit-data``);
- ``GENREKIT_CACHE``: the feature cache folder (``~/.cache/genrekit``);
- ``GENREKIT_CATALOGUE``: a JSON file of extra datasets (see
  :func:`genrekit.datasets.registry.load_catalogue`);
- ``GENREKIT_STATE``: genrekit's own data folder, where tag-writing runs keep their undo
  journals (``$XDG_DATA_HOME/genrekit``, else ``~/.local/share/genrekit``);
- ``GENREKIT_WEB_STATS``: ``1`` turns on the server's ``GET /api/_stats`` byte counters (tests).

Command-line options and function arguments override these. :func:`settings` reads the
environment on its first call and keeps the result; code that changes ``os.environ`` afterwards
(tests do) calls ``settings.cache_clear()``, or builds its own with :meth:`Settings.from_env`.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

#: The environment variables genrekit reads, by :class:`Settings` field.
VARIABLES = {
    "data_root": "GENREKIT_DATA",
    "cache_dir": "GENREKIT_CACHE",
    "catalogue": "GENREKIT_CATALOGUE",
    "web_stats": "GENREKIT_WEB_STATS",
    "state_dir": "GENREKIT_STATE",
}


@dataclass(frozen=True)
class Settings:
    """What the environment says, with genrekit's defaults where it says nothing.

    Attributes
    ----------
    data_root : Path
        Data root of named datasets: ``$GENREKIT_DATA`` (``~`` expanded), else ``~/genrekit-data``.
    cache_dir : Path
        Feature cache folder: ``$GENREKIT_CACHE`` (``~`` expanded), else ``~/.cache/genrekit``.
    catalogue : Path or None
        JSON catalogue of extra datasets, ``$GENREKIT_CATALOGUE``; ``None``: the built-in ones only.
    web_stats : bool
        ``$GENREKIT_WEB_STATS`` is ``1``: the server exposes ``GET /api/_stats`` (for tests).
    state_dir : Path
        genrekit's own data folder (tag journals: :mod:`genrekit.tagging.journal`):
        ``$GENREKIT_STATE``, else ``$XDG_DATA_HOME/genrekit``, else ``~/.local/share/genrekit``.
    """

    data_root: Path
    cache_dir: Path
    catalogue: Path | None = None
    web_stats: bool = False
    state_dir: Path = Path.home() / ".local" / "share" / "genrekit"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """The settings an environment gives (default: ``os.environ``, read now)."""
        env = os.environ if environ is None else environ

        def get(field: str) -> str | None:
            return env.get(VARIABLES[field]) or None  # empty: unset, as a shell's `VAR=` means

        data, cache, catalogue, state = get("data_root"), get("cache_dir"), get("catalogue"), get("state_dir")
        xdg = env.get("XDG_DATA_HOME") or None
        return cls(
            data_root=Path(data).expanduser() if data else Path.home() / "genrekit-data",
            cache_dir=Path(cache).expanduser() if cache else Path.home() / ".cache" / "genrekit",
            catalogue=Path(catalogue) if catalogue else None,
            web_stats=get("web_stats") == "1",
            state_dir=(Path(state).expanduser() if state else
                       Path(xdg) / "genrekit" if xdg else Path.home() / ".local" / "share" / "genrekit"),
        )


@functools.cache
def settings() -> Settings:
    """This process's settings: the environment as it was at the first call (see the module's notes)."""
    return Settings.from_env()
