"""The FastAPI application behind ``genrekit serve``: a JSON API and the page that uses it.

>>> from genrekit.web.app import create_app
>>> from genrekit.web.settings import WebSettings
>>> app = create_app(WebSettings())         # the bundled model, 50 MB uploads
>>> import uvicorn; uvicorn.run(app)        # what `genrekit serve` does

Routes (one module per area under :mod:`genrekit.web.routes`; the JSON shapes in
:mod:`genrekit.web.schemas`; OpenAPI at ``/docs`` (Swagger UI), ``/redoc`` and
``/openapi.json``; the docs' scripts come from the ``fastapi-offline`` package, so they
load with no network):

- ``GET /``: the page (static files under ``/static``: one HTML, one script, one style
  sheet, no CDN, system fonts), which calls the same JSON API scripts use;
- ``POST /api/classify``, ``GET /api/spectrogram/{id}.png``, ``GET /api/models``,
  ``GET /api/health``;
- with ``runs_dir``: ``GET /reports`` and ``/api/reports``, the training runs' reports
  (:mod:`genrekit.web.routes.reports`).

Every error is JSON ``{"error": "message"}`` with a fitting status code.

Resources (:class:`genrekit.web.state.WebState`, made here and handed to the routes)
------------------------------------------------------------------------------------
- The default model is loaded once, when the app is made (a bad bundle fails before the
  server listens). Models found under ``runs_dir`` are listed by ``/api/models`` and loaded
  on their first use (:mod:`genrekit.web.served_models`).
- Decoding, features, the model and the PNG run in worker processes, at most ``workers``
  at a time, block by block so memory does not grow with the song; the event loop only
  moves bytes, so ``/api/health`` and uploads in progress are never held up by an analysis,
  and a worker killed by one request's memory fails that request alone (the pool is
  replaced). Workers end with the server (:mod:`genrekit.web.analysis`).
- Abuse limits (:class:`genrekit.web.settings.WebSettings`): at most ``max_uploads`` uploads
  in progress (then 503 + ``Retry-After``), a body that stalls or trickles gets 408, audio
  longer than ``max_duration`` gets 413.
- Uploads go to server-named files in a private temporary folder (mode 0700, made at
  start-up, removed at shutdown; those of crashed servers are removed at the next
  start); each file is deleted when its request ends, aborted or not (:mod:`genrekit.web.uploads`).
- Spectrogram images are kept in a small in-memory LRU (:class:`genrekit.web.state.PngCache`).
"""

from __future__ import annotations

import json
import logging
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from starlette.exceptions import HTTPException as StarletteHTTPException

from genrekit._version import __version__
from genrekit.web.routes.classify import classify_router
from genrekit.web.routes.health import health_router
from genrekit.web.routes.models import models_router
from genrekit.web.routes.page import STATIC_DIR, page_router
from genrekit.web.routes.stats import stats_router
from genrekit.web.settings import WebSettings
from genrekit.web.state import WebState

log = logging.getLogger("genrekit.web")


def _error(status: int, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def create_app(settings: WebSettings | None = None) -> FastAPI:
    """The genrekit web app.

    Parameters
    ----------
    settings : WebSettings or None
        The server's model, folders, limits and options (default: ``WebSettings()``, the
        bundled model and the default limits). The default model is loaded now.

    Raises
    ------
    genrekit.errors.BundleError
        If the model cannot be loaded.
    genrekit.errors.ParameterError
        If ``settings.runs_dir`` is not a folder.
    genrekit.errors.SimilarityError
        If ``settings.library`` cannot answer similarity queries.
    """
    settings = settings if settings is not None else WebSettings()
    state = WebState(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        state.start()
        if settings.warm_up:  # workers load the model before the first upload
            state.analyses.warm_up(state.models.source(None))
        try:
            yield
        finally:
            state.stop()

    # Swagger UI and ReDoc served from the fastapi-offline package: /docs works with no network.
    app = FastAPIOffline(
        favicon_url="/static/favicon.svg",
        title="genrekit",
        version=__version__,
        summary="Tell the genre of a piece of music from its audio.",
        description=("Upload a song to `POST /api/classify` (multipart field `file`) and get the "
                     "probability of every genre, per-window probabilities along the song, and a "
                     "mel-spectrogram image. Errors are JSON `{\"error\": message}`."),
        lifespan=lifespan,
    )
    app.state.web = state  # what genrekit.web.state's dependencies hand to the routes

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        message = exc.detail if isinstance(exc.detail, str) else json.dumps(exc.detail)
        return _error(exc.status_code, message, getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError):
        parts = []
        for err in exc.errors()[:5]:
            where = ".".join(str(x) for x in err.get("loc", ()) if x not in ("query", "path", "body"))
            parts.append(f"{where}: {err.get('msg')}" if where else str(err.get("msg")))
        return _error(422, "invalid request: " + "; ".join(parts))

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception):
        log.exception("unexpected error in %s %s", request.method, request.url.path)
        return _error(500, f"internal server error ({type(exc).__name__})")

    @app.middleware("http")
    async def nosniff(request: Request, call_next):
        response = await call_next(request)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        return response

    app.include_router(health_router)
    app.include_router(models_router)
    app.include_router(classify_router)
    if settings.stats:
        app.include_router(stats_router)
    if settings.runs_dir is not None:
        from genrekit.web.routes.reports import reports_router  # /reports: the runs' HTML reports

        app.include_router(reports_router(settings.runs_dir))
    app.include_router(page_router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app
