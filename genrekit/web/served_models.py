"""The models a server offers: its default (loaded at start), the shipped ones, and those under ``--runs``.

The default model is loaded when the app is made, so a bad bundle fails before the server
listens. The others are listed by name (``/api/models``) and loaded on their first use by
``POST /api/classify?model=NAME``; a broken one is listed with its problem and fails alone.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from genrekit.errors import ParameterError


class ServedModels:
    """The server's models by name, the default first.

    Parameters
    ----------
    default : path or None
        Bundle folder (or run folder holding one) of the default model; ``None``: the bundled one.
    runs_dir : Path or None
        A folder searched (three levels deep, :func:`genrekit.models.registry.find_bundles`)
        for more bundles to offer.

    Attributes
    ----------
    default : genrekit.models.protocol.GenreClassifier
        The default model, loaded.
    bundles : dict
        Name -> bundle folder of every model offered, the default first.

    Raises
    ------
    genrekit.errors.BundleError
        If the default model cannot be loaded.
    genrekit.errors.ParameterError
        If ``runs_dir`` is not a folder.
    """

    def __init__(self, default: str | os.PathLike | None = None, runs_dir: Path | None = None) -> None:
        from genrekit.models.registry import load_model

        self.default = load_model(default)
        self._default_source = default
        self.runs_dir = runs_dir
        self.bundles = self._find_bundles()
        self._loaded = {self.default.name: self.default}
        self._load_lock = threading.Lock()

    def _find_bundles(self) -> dict[str, Path | None]:
        from genrekit.models.registry import SHIPPED_MODELS, find_bundles, relative_name, shipped_models

        found: dict[str, Path | None] = {self.default.name: self.default.bundle.path}
        for name in shipped_models():  # every shipped model, by the name --model takes
            found.setdefault(name, SHIPPED_MODELS / name)
        if self.runs_dir is None:
            return found
        if not self.runs_dir.is_dir():
            raise ParameterError(f"runs folder {self.runs_dir} does not exist")
        default_path = Path(self.default.bundle.path).resolve()
        for folder in find_bundles(self.runs_dir):
            if folder.resolve() != default_path:
                found.setdefault(relative_name(folder, self.runs_dir), folder)
        return found

    def classifier(self, name: str | None):
        """The loaded model called ``name`` (``None``: the default); ``KeyError`` if unknown,
        :class:`~genrekit.errors.BundleError` if it is broken."""
        from genrekit.models.registry import classifier, load_model

        if name is None or name == self.default.name:
            return self.default
        if name not in self.bundles:
            raise KeyError(name)
        with self._load_lock:
            if name not in self._loaded:
                self._loaded[name] = classifier(load_model(self.bundles[name]).bundle, name)
            return self._loaded[name]

    def source(self, name: str | None):
        """What an analysis worker passes to :func:`genrekit.models.registry.load_model` for ``name``."""
        if name is None or name == self.default.name:
            return self._default_source
        return self.bundles[name]

    def meta(self, name: str) -> dict:
        """``bundle.json`` of a listed model (read and checked, not loaded).

        Raises :class:`~genrekit.errors.BundleError` for a broken one.
        """
        from genrekit.models.registry import read_meta

        if name in self._loaded:
            return self._loaded[name].bundle.meta
        return read_meta(Path(self.bundles[name]))
