"""The server's limits and options: one frozen :class:`WebSettings` per app.

>>> from genrekit.web.settings import WebSettings
>>> settings = WebSettings(max_upload_mb=20, workers=2)
>>> settings.max_upload_bytes
20971520

``genrekit serve`` builds it from its options (:mod:`genrekit.commands.serve`),
:func:`genrekit.web.app.create_app` takes it, and a route that needs a limit receives it
through the FastAPI dependency :data:`genrekit.web.state.ServerSettings`. This module imports
no web framework, so the command line can read the defaults below without loading one.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from genrekit.config import settings as environment
from genrekit.errors import ParameterError

if TYPE_CHECKING:
    from genrekit.tagging.names import NameMap

#: Largest accepted upload by default, in MiB (2**20 bytes).
DEFAULT_MAX_UPLOAD_MB = 50.0
#: Longest decoded audio analysed by default (seconds): 30 minutes.
DEFAULT_MAX_DURATION = 30 * 60.0
#: Uploads in progress at once (beyond: 503 with Retry-After).
DEFAULT_MAX_UPLOADS = 16
#: Seconds an upload may stall before it is refused with 408 (see :func:`genrekit.web.uploads.receive_upload`).
DEFAULT_BODY_TIMEOUT = 30.0
#: Bytes allowed in a request body beyond the upload limit: the multipart envelope.
ENVELOPE_BYTES = 64 * 1024
#: Slowest average body rate accepted after the first ``body_timeout`` seconds (bytes/s).
MIN_BODY_RATE = 8 * 1024
#: Seconds a client is told to wait (Retry-After) when the upload cap is reached.
RETRY_AFTER = 5


def _stats_from_environment() -> bool:
    return environment().web_stats


@dataclass(frozen=True)
class WebSettings:
    """What a genrekit server offers and how much it accepts; fixed for the app's life.

    Parameters
    ----------
    model : path or None
        Bundle folder (or run folder holding one) of the default model, loaded when the app
        is made (a bad bundle fails before the server listens); ``None``: the bundled one.
    max_upload_mb : float
        Largest upload accepted, in MiB (2**20 bytes); bigger ones get 413, refused while
        streaming (and at once when ``Content-Length`` says so).
    runs_dir : path or None
        A folder of ``genrekit train`` runs: their reports are served at ``/reports``, and
        their bundles (searched three levels deep) are listed by ``/api/models`` for
        ``POST /api/classify?model=NAME``.
    library : path or None
        Results of ``genrekit classify --out`` (with embeddings): each classification also
        lists the most similar songs there (:mod:`genrekit.library.similar`); re-read when
        the file changes.
    names : genrekit.tagging.names.NameMap or None
        Genre display names (default: the shipped ones).
    workers : int or None
        Analyses run at the same time (default: one per CPU; each analysis runs its network
        on one thread, :mod:`genrekit.onnx_sessions`).
    stats : bool
        Expose ``GET /api/_stats`` (request-body byte counts; for tests). Default: the
        ``GENREKIT_WEB_STATS=1`` environment variable (:mod:`genrekit.config`).
    max_duration : float or None
        Longest decoded audio analysed, in seconds (default 30 minutes); longer uploads get
        413 as soon as the header or the decoder shows it. ``None``: no limit.
    max_uploads : int
        Uploads in progress at once; more get 503 with ``Retry-After``.
    body_timeout : float
        Seconds an upload may stall (or trickle in slower than :data:`MIN_BODY_RATE`) before 408.
    processes : bool
        Analyse in worker processes (default) rather than threads.
    unknown_rate : float or None
        The "none of these" decision's false-unknown rate for every analysis (``None``: each
        model's own); a request's ``unknown_rate`` field overrides it.
    warm_up : bool
        Start the analysis workers with the server and have each load the default model, so
        the first upload does not wait for them (``genrekit serve`` does).

    Raises
    ------
    genrekit.errors.ParameterError
        If ``max_upload_mb`` is not positive.
    """

    model: str | os.PathLike | None = None
    max_upload_mb: float = DEFAULT_MAX_UPLOAD_MB
    runs_dir: Path | None = None
    library: Path | None = None
    names: NameMap | None = None
    workers: int | None = None
    stats: bool = dataclasses.field(default_factory=_stats_from_environment)
    max_duration: float | None = DEFAULT_MAX_DURATION
    max_uploads: int = DEFAULT_MAX_UPLOADS
    body_timeout: float = DEFAULT_BODY_TIMEOUT
    processes: bool = True
    warm_up: bool = False
    unknown_rate: float | None = None

    def __post_init__(self) -> None:
        if not self.max_upload_mb > 0:
            raise ParameterError(f"max_upload_mb must be positive, got {self.max_upload_mb}")
        if self.unknown_rate is not None:
            from genrekit.models.unknown import check_rate

            check_rate(self.unknown_rate)
        for name in ("runs_dir", "library"):  # frozen: set through object's own setattr
            value = getattr(self, name)
            if value is not None and not isinstance(value, Path):
                object.__setattr__(self, name, Path(value))

    @property
    def max_upload_bytes(self) -> int:
        """The upload limit in bytes."""
        return int(self.max_upload_mb * 1024 * 1024)

    @property
    def max_body_bytes(self) -> int:
        """The request-body limit in bytes: the upload's and the multipart envelope's (:data:`ENVELOPE_BYTES`)."""
        return self.max_upload_bytes + ENVELOPE_BYTES

    @property
    def analysis_workers(self) -> int:
        """Analyses at the same time: ``workers``, else one per CPU (single-threaded sessions: one per core)."""
        return self.workers or max(1, os.cpu_count() or 1)
