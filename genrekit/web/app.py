"""The FastAPI application behind ``genrekit serve``: a JSON API and the page that uses it.

>>> from genrekit.web.app import create_app
>>> app = create_app()                    # the bundled model, 50 MB uploads
>>> import uvicorn; uvicorn.run(app)      # what `genrekit serve` does

Routes (see :mod:`genrekit.web.api` for the shapes; OpenAPI at ``/docs`` (Swagger UI),
``/redoc`` and ``/openapi.json``; the docs' scripts come from the ``fastapi-offline``
package, so they load with no network):

- ``GET /``: the page (static files under ``/static``: one HTML, one script, one style
  sheet, no CDN, system fonts), which calls the same JSON API scripts use;
- ``POST /api/classify``, ``GET /api/spectrogram/{id}.png``, ``GET /api/models``,
  ``GET /api/health``;
- with ``runs_dir``: ``GET /reports`` and ``/api/reports``, the training runs' reports
  (:mod:`genrekit.web.reports`).

Every error is JSON ``{"error": "message"}`` with a fitting status code.

Resources
---------
- The model is loaded once, when the app is made (a bad bundle fails before the server
  listens). Models found under ``runs_dir`` are listed by ``/api/models`` and loaded
  on their first use.
- Decoding, features, the model and the PNG run in worker processes, at most ``workers``
  at a time (an :class:`anyio.CapacityLimiter`), block by block so memory does not grow
  with the song; the event loop only moves bytes, so ``/api/health`` and uploads in
  progress are never held up by an analysis, and a worker killed by one request's
  memory fails that request alone (the pool is replaced). Workers end with the server.
- Abuse limits: at most ``max_uploads`` uploads in progress (then 503 + ``Retry-After``),
  a body that stalls or trickles gets 408, audio longer than ``max_duration`` gets 413.
- Uploads go to server-named files in a private temporary folder (mode 0700, made at
  start-up, removed at shutdown; those of crashed servers are removed at the next
  start); each file is deleted when its request ends, aborted or not.
- Spectrogram images are kept in a small in-memory LRU (:class:`PngCache`).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import stat
import tempfile
import threading
from collections import OrderedDict
from functools import partial
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
from fastapi import FastAPI, Request
from fastapi_offline import FastAPIOffline
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from genrekit._version import __version__
from genrekit.config import settings

log = logging.getLogger("genrekit.web")

STATIC_DIR = Path(__file__).resolve().parent / "static"
#: Longest decoded audio analysed by default (seconds): 30 minutes.
DEFAULT_MAX_DURATION = 30 * 60.0
#: Uploads in progress at once (beyond: 503 with Retry-After).
DEFAULT_MAX_UPLOADS = 16
#: Seconds an upload may stall before it is refused with 408 (see ``api._receive``).
DEFAULT_BODY_TIMEOUT = 30.0
#: Bytes allowed in a request body beyond the upload limit: the multipart envelope.
ENVELOPE_BYTES = 64 * 1024

#: The page's Content-Security-Policy: everything from this server, nothing from elsewhere.
PAGE_CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
            "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
            "frame-ancestors 'none'; form-action 'self'")


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
    """What the routes share: models, limits, the worker limiter, the temp folder, the image cache.

    Parameters
    ----------
    model : path or None
        Bundle folder (or run folder holding one) for the default model; ``None``: the bundled one.
    max_upload_mb : float
        Largest accepted upload, in MiB (2**20 bytes).
    runs_dir : path or None
        A folder searched (three levels deep) for more bundles to offer.
    workers : int or None
        Analyses run at the same time (default: one per CPU; each analysis runs its network
        on one thread, :mod:`genrekit.onnx_sessions`).
    stats : bool
        Count request-body bytes and expose them at ``/api/_stats`` (for tests).
    library : path or None
        A results store of ``genrekit classify --out`` whose embeddings answer "similar in
        your library" (:mod:`genrekit.library.similar`); re-read when the file changes.
    """

    def __init__(self, model=None, max_upload_mb: float = 50, runs_dir=None, workers: int | None = None,
                 stats: bool = False, max_duration: float | None = DEFAULT_MAX_DURATION,
                 max_uploads: int = DEFAULT_MAX_UPLOADS, body_timeout: float = DEFAULT_BODY_TIMEOUT,
                 processes: bool = True, library=None, names=None) -> None:
        from genrekit.models.registry import load_model
        from genrekit.tagging.names import NameMap

        if not max_upload_mb > 0:
            raise ValueError(f"max_upload_mb must be positive, got {max_upload_mb}")
        self.default = load_model(model)
        self.names = names if names is not None else NameMap.default()  # genre display names
        self._default_source = model
        self.max_duration = max_duration
        self.max_upload_bytes = int(max_upload_mb * 1024 * 1024)
        self.max_body_bytes = self.max_upload_bytes + ENVELOPE_BYTES
        self.workers = workers or max(1, os.cpu_count() or 1)  # single-threaded sessions: one per core
        self.runs_dir = Path(runs_dir) if runs_dir is not None else None
        self.bundles = self._find_bundles()  # name -> folder, default first
        self._loaded = {self.default.name: self.default}
        self._load_lock = threading.Lock()
        self.spectrograms = PngCache()
        self.stats_enabled = stats
        self.stats: dict = {"requests": 0, "last": None}
        self.busy = 0
        self.uploads = 0  # requests between their first body byte and their response
        self.max_uploads = max_uploads
        self.body_timeout = body_timeout
        self.processes = processes
        self.limiter: anyio.CapacityLimiter | None = None
        self.tmp_dir: str | None = None
        self._pool = None
        self._pool_lock = threading.Lock()
        self.library_path = Path(library) if library is not None else None
        self._library = None  # (mtime_ns, SimilarityIndex)
        if self.library_path is not None:
            self.library()  # a bad --library fails at start, not on the first upload

    # --- similar songs -------------------------------------------------------------------
    def library(self):
        """The :class:`~genrekit.library.similar.SimilarityIndex` of ``--library`` (re-read when the file changed)."""
        from genrekit.library.similar import SimilarityIndex

        if self.library_path is None:
            return None
        mtime = self.library_path.stat().st_mtime_ns if self.library_path.exists() else None
        if self._library is None or self._library[0] != mtime:
            self._library = (mtime, SimilarityIndex.from_results(self.library_path))
        return self._library[1]

    def similar_to(self, clf, prediction, top: int = 5) -> list[dict] | None:
        """The library's songs most like ``prediction``'s, or ``None`` (no library, or another model's)."""
        from genrekit.library.run import model_key
        from genrekit.library.similar import SimilarityError

        if self.library_path is None or prediction.embedding is None:
            return None
        try:
            index = self.library()
        except (SimilarityError, OSError):
            return None  # the library went away or broke while serving: the page simply shows none
        if index.model_key != model_key(clf):
            return None
        root = _common_folder(index.paths)
        # Named below the library's common folder: the server's absolute paths are not the client's business.
        return [{**s, "path": _below(s["path"], root), "score": round(s["score"], 4)}
                for s in index.query(prediction.embedding, top=top)]

    # --- models --------------------------------------------------------------------------
    def _find_bundles(self) -> dict[str, Path | None]:
        from genrekit.models.registry import SHIPPED_MODELS, find_bundles, relative_name, shipped_models

        found: dict[str, Path | None] = {self.default.name: self.default.bundle.path}
        for name in shipped_models():  # every shipped model, by the name --model takes
            found.setdefault(name, SHIPPED_MODELS / name)
        if self.runs_dir is None:
            return found
        if not self.runs_dir.is_dir():
            raise ValueError(f"runs folder {self.runs_dir} does not exist")
        default_path = Path(self.default.bundle.path).resolve()
        for folder in find_bundles(self.runs_dir):
            if folder.resolve() != default_path:
                found.setdefault(relative_name(folder, self.runs_dir), folder)
        return found

    def classifier(self, name: str | None):
        """The loaded model called ``name`` (``None``: the default); ``KeyError`` if unknown,
        :class:`~genrekit.models.bundle.BundleError` if it is broken."""
        from genrekit.models.registry import classifier, load_model

        if name is None or name == self.default.name:
            return self.default
        if name not in self.bundles:
            raise KeyError(name)
        with self._load_lock:
            if name not in self._loaded:
                self._loaded[name] = classifier(load_model(self.bundles[name]).bundle, name)
            return self._loaded[name]

    def model_source(self, name: str | None):
        """What an analysis worker passes to :func:`genrekit.models.registry.load_model` for ``name``."""
        if name is None or name == self.default.name:
            return self._default_source
        return self.bundles[name]

    def bundle_meta(self, name: str) -> dict:
        """``bundle.json`` of a listed model (read and checked, not loaded).

        Raises :class:`~genrekit.models.bundle.BundleError` for a broken one.
        """
        from genrekit.models.registry import read_meta

        if name in self._loaded:
            return self._loaded[name].bundle.meta
        return read_meta(Path(self.bundles[name]))

    # --- analysis ------------------------------------------------------------------------
    async def analyse(self, model: str | None, name: str, path: str, spectrogram: bool) -> tuple:
        """Run :func:`genrekit.web.api.analysis_job` on an analysis worker; its outcome tuple.

        Workers are processes (``processes=True``): an analysis holds no lock the event
        loop needs, so ``/api/health`` and uploads stay responsive, and a request whose
        memory kills its worker fails alone (422) while the pool is replaced.
        """
        import asyncio
        from concurrent.futures.process import BrokenProcessPool

        from genrekit.web.api import analysis_job

        job = partial(analysis_job, self.model_source(model), name, path, spectrogram, self.max_duration)
        async with self.limiter:
            self.busy += 1
            try:
                if not self.processes:
                    return await anyio.to_thread.run_sync(job)
                pool = self._worker_pool()
                try:
                    return await asyncio.wrap_future(pool.submit(job))
                except BrokenProcessPool:
                    self._replace_pool(pool)
                    return ("bad audio", "the analysis worker died on this file (out of memory, or a crash "
                                         "in the decoder); the server goes on")
            finally:
                self.busy -= 1

    def _worker_pool(self):
        with self._pool_lock:
            if self._pool is None:
                from genrekit.engines.batch import process_pool

                self._pool = process_pool(self.workers)
            return self._pool

    def _replace_pool(self, broken) -> None:
        from genrekit.engines.batch import stop_pool

        with self._pool_lock:
            if self._pool is broken:
                self._pool = None
        stop_pool(broken)

    def warm_up(self) -> None:
        """Start the analysis workers now and have each load the default model (in the background)."""
        if not self.processes:
            return
        from genrekit.models.registry import load_model

        pool = self._worker_pool()
        for _ in range(self.workers):
            pool.submit(load_model, self._default_source)

    # --- lifetime ------------------------------------------------------------------------
    def start(self) -> None:
        """Make the private temp folder and the worker limiter (inside the event loop).

        Temp folders that crashed servers left behind (their name holds the pid of a
        process that no longer exists) are removed first.
        """
        if self.tmp_dir is None:
            remove_stale_tmp_dirs()
            # mode 0700; the owner's pid in the name tells a later server whether it is stale
            self.tmp_dir = tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{os.getpid()}-")
        if self.limiter is None:
            self.limiter = anyio.CapacityLimiter(self.workers)

    def stop(self) -> None:
        if self._pool is not None:
            from genrekit.engines.batch import stop_pool

            stop_pool(self._pool)
            self._pool = None
        if self.tmp_dir is not None:
            shutil.rmtree(self.tmp_dir, ignore_errors=True)
            self.tmp_dir = None


#: Name prefix of the servers' private temp folders: ``genrekit-web-<pid>-<random>``.
TMP_PREFIX = "genrekit-web-"


def remove_stale_tmp_dirs(root: str | None = None) -> list[str]:
    """Delete upload folders (``genrekit-web-*`` in the temp folder) of servers that are gone.

    Only folders of this user named ``genrekit-web-<pid>-...`` whose pid is no longer a
    running process are removed; folders of running servers are left alone. Returns the
    removed paths.
    """
    root = root or tempfile.gettempdir()
    removed = []
    try:
        names = [n for n in os.listdir(root) if n.startswith(TMP_PREFIX)]
    except OSError:
        return removed
    for name in names:
        folder = os.path.join(root, name)
        try:
            st = os.lstat(folder)
            if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid():
                continue
            pid = int(name[len(TMP_PREFIX):].split("-", 1)[0])
        except (OSError, ValueError):
            continue
        if _process_exists(pid):
            continue
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder)
    if removed:
        log.info("removed %d upload folder(s) left by servers that stopped without cleaning up", len(removed))
    return removed


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def _error(status: int, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def create_app(model=None, max_upload_mb: float = 50, runs_dir=None, *, workers: int | None = None,
               stats: bool | None = None, max_duration: float | None = DEFAULT_MAX_DURATION,
               max_uploads: int = DEFAULT_MAX_UPLOADS, body_timeout: float = DEFAULT_BODY_TIMEOUT,
               processes: bool = True, library=None, names=None) -> FastAPI:
    """The genrekit web app.

    Parameters
    ----------
    model : path or None
        Model bundle (``None``: the model bundled with genrekit). Loaded now.
    max_upload_mb : float
        Largest upload accepted, in MiB; bigger ones get 413, refused while streaming
        (and at once when ``Content-Length`` says so).
    runs_dir : path or None
        A folder of ``genrekit train`` runs: their reports are served at ``/reports``, and
        their bundles are listed by ``/api/models`` for ``POST /api/classify?model=NAME``.
    workers : int or None
        Analyses at the same time (default: one per CPU).
    stats : bool or None
        Expose ``GET /api/_stats`` (request-body byte counts; for tests). Default: the
        ``GENREKIT_WEB_STATS=1`` environment variable.
    max_duration : float or None
        Longest decoded audio analysed, in seconds (default 30 minutes); longer uploads get
        413 as soon as the header or the decoder shows it.
    max_uploads : int
        Uploads in progress at once; more get 503 with ``Retry-After``.
    body_timeout : float
        Seconds an upload may stall (or trickle in) before 408.
    processes : bool
        Analyse in worker processes (default) rather than threads.
    library : path or None
        Results of ``genrekit classify --out`` (with embeddings): each classification also
        lists the most similar songs there.
    names : genrekit.tagging.names.NameMap or None
        Genre display names (default: the shipped ones).

    Raises
    ------
    genrekit.models.bundle.BundleError
        If the model cannot be loaded.
    """
    from genrekit.web import api

    if stats is None:
        stats = settings().web_stats
    state = WebState(model, max_upload_mb, runs_dir, workers, stats, max_duration=max_duration,
                     max_uploads=max_uploads, body_timeout=body_timeout, processes=processes, library=library,
                     names=names)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        state.start()
        if getattr(state, "warm_on_start", False):
            state.warm_up()
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
    app.state.web = state

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

    app.include_router(api.health_router)
    app.include_router(api.models_router)
    app.include_router(api.classify_router)
    if stats:
        app.include_router(api.stats_router)
    if runs_dir is not None:
        from genrekit.web.reports import reports_router  # /reports: the runs' HTML reports

        app.include_router(reports_router(runs_dir))

    @app.get("/", include_in_schema=False)
    async def index():
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html",
                            headers={"Content-Security-Policy": PAGE_CSP, "Cache-Control": "no-cache"})

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app


def _common_folder(paths) -> str:
    """The deepest folder holding every path of ``paths`` ("" when there are none or they share none)."""
    try:
        folders = {os.path.dirname(os.path.abspath(p)) for p in paths}
        return os.path.commonpath(list(folders)) if folders else ""
    except ValueError:  # mixed drives, or relative and absolute
        return ""


def _below(path: str, root: str) -> str:
    """``path`` relative to ``root`` with ``/`` separators (its bare name when ``root`` is empty)."""
    if not root:
        return os.path.basename(path)
    return os.path.relpath(os.path.abspath(path), root).replace(os.sep, "/")
