"""What the routes share: one :class:`WebState` per app, handed to them by FastAPI dependencies.

A route names what it needs in its parameters, and FastAPI fills them in per request::

    @router.get("/api/health")
    async def health(state: ServerState, settings: ServerSettings): ...

:func:`genrekit.web.app.create_app` makes the state (``app.state.web``); its
lifespan calls :meth:`WebState.start` and :meth:`WebState.stop`.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Annotated

from fastapi import Depends, Request

from genrekit.web.analysis import AnalysisWorkers
from genrekit.web.library_index import LibraryIndex
from genrekit.web.served_models import ServedModels
from genrekit.web.settings import WebSettings
from genrekit.web.uploads import make_upload_dir, remove_upload_dir


class PngCache:
    """A bounded, thread-safe LRU of PNG images by id (at most ``max_items`` and ``max_bytes``)."""

    def __init__(self, max_items: int = 64, max_bytes: int = 48 * 1024 * 1024) -> None:
        self.max_items, self.max_bytes = max_items, max_bytes
        self._items: OrderedDict[str, bytes] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def put(self, key: str, png: bytes) -> None:
        with self._lock:
            if key in self._items:
                self._bytes -= len(self._items.pop(key))
            self._items[key] = png
            self._bytes += len(png)
            while self._items and (len(self._items) > self.max_items or self._bytes > self.max_bytes):
                _, old = self._items.popitem(last=False)
                self._bytes -= len(old)

    def get(self, key: str) -> bytes | None:
        with self._lock:
            png = self._items.get(key)
            if png is not None:
                self._items.move_to_end(key)
            return png

    def __len__(self) -> int:
        return len(self._items)

    @property
    def nbytes(self) -> int:
        return self._bytes


class WebState:
    """The server's shared resources: models, analysis workers, the upload folder, the image cache.

    Parameters
    ----------
    settings : WebSettings
        The server's limits and options.

    Attributes
    ----------
    settings : WebSettings
    models : ServedModels
        The models offered, the default one loaded.
    names : genrekit.tagging.names.NameMap
        Genre display names.
    library : LibraryIndex
        Similar songs in ``settings.library`` (none without one).
    analyses : AnalysisWorkers
        Where analyses run (``analyses.busy``: how many now).
    spectrograms : PngCache
        The most recent analyses' images (64 / 48 MB), served by ``/api/spectrogram/{id}.png``.
    uploads : int
        Requests between their first body byte and their response.
    tmp_dir : str or None
        The private upload folder (between :meth:`start` and :meth:`stop`).
    stats : dict
        Requests counted and the body bytes the last one pulled (``/api/_stats``, for tests).

    Raises
    ------
    genrekit.errors.BundleError
        If the default model cannot be loaded.
    genrekit.errors.ParameterError
        If ``settings.runs_dir`` is not a folder.
    genrekit.errors.SimilarityError
        If ``settings.library`` cannot answer similarity queries.
    """

    def __init__(self, settings: WebSettings) -> None:
        from genrekit.tagging.names import NameMap

        self.settings = settings
        self.models = ServedModels(settings.model, settings.runs_dir)
        self.names = settings.names if settings.names is not None else NameMap.default()
        self.analyses = AnalysisWorkers(settings.analysis_workers, processes=settings.processes,
                                        max_duration=settings.max_duration)
        self.spectrograms = PngCache()
        self.stats: dict = {"requests": 0, "last": None}
        self.uploads = 0
        self.tmp_dir: str | None = None
        self.library = LibraryIndex(settings.library)  # a bad --library fails at start, not on the first upload

    def note_request(self, received: int) -> None:
        """Count an upload request and the body bytes it pulled off the connection."""
        self.stats["requests"] += 1
        self.stats["last"] = {"body_bytes": received}

    def start(self) -> None:
        """Make the private upload folder and the workers' limiter (inside the event loop).

        Upload folders that crashed servers left behind are removed first
        (:func:`genrekit.web.uploads.remove_stale_tmp_dirs`).
        """
        if self.tmp_dir is None:
            self.tmp_dir = make_upload_dir()
        self.analyses.start()

    def stop(self) -> None:
        """End the analysis workers and remove the upload folder."""
        self.analyses.stop()
        if self.tmp_dir is not None:
            remove_upload_dir(self.tmp_dir)
            self.tmp_dir = None


def server_state(request: Request) -> WebState:
    """The one :class:`WebState` that ``create_app`` made, for a route's ``state: ServerState``."""
    return request.app.state.web


def server_settings(request: Request) -> WebSettings:
    """The app's :class:`~genrekit.web.settings.WebSettings`, for a route's ``settings: ServerSettings``."""
    return request.app.state.web.settings


#: A route parameter that receives the :class:`WebState`.
ServerState = Annotated[WebState, Depends(server_state)]
#: A route parameter that receives the :class:`~genrekit.web.settings.WebSettings`.
ServerSettings = Annotated[WebSettings, Depends(server_settings)]
