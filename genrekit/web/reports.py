"""The training runs' reports that ``genrekit serve --runs DIR`` serves: found, summarised, built, cached.

:class:`RunReports` finds the runs under ``DIR`` (folders holding ``results.json``, searched
recursively), summarises each for the list (:class:`~genrekit.web.schemas.ReportRun`) and
builds a run's report page (:mod:`genrekit.report`) on its first request, cached until one of
its files changes (keyed by modification time and size). The routes that serve them are
:mod:`genrekit.web.routes.reports`.

A run's name is only ever looked up in the list of runs found under ``DIR``; no path is
built from it, so ``/reports/../../etc/passwd`` is a 404 like any other unknown name.
"""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import quote

from genrekit.errors import ParameterError, ReportError
from genrekit.report.build import build_report, find_runs, load_run, run_inputs
from genrekit.report.page import render_html
from genrekit.report.plotly_embed import plotly_js_name
from genrekit.training.run_folder import RESULTS_JSON
from genrekit.web.schemas import ReportRun

#: Where the report pages load plotly.js from (:mod:`genrekit.web.routes.reports` serves it).
ASSETS = "/report-assets"


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size)


class RunReports:
    """The runs under ``runs_dir`` and their report pages, cached by the files' mtimes and sizes.

    Parameters
    ----------
    runs_dir : path
        Folder searched for run folders (see :func:`genrekit.report.build.find_runs`).
    max_pages : int
        Report pages kept in memory (least recently used dropped first).
    rescan_seconds : float
        Shortest time between two searches of ``runs_dir`` when a name is not known
        (so that unknown names cannot make the server walk the tree on every request).

    Raises
    ------
    genrekit.errors.ParameterError
        If ``runs_dir`` is not a folder.
    """

    def __init__(self, runs_dir: str | os.PathLike, *, max_pages: int = 16, rescan_seconds: float = 1.0) -> None:
        self.runs_dir = Path(runs_dir)
        if not self.runs_dir.is_dir():
            raise ParameterError(f"runs folder {self.runs_dir} does not exist")
        self.max_pages = max_pages
        self.rescan_seconds = rescan_seconds
        self._lock = threading.Lock()
        self._runs: dict[str, Path] = {}
        self._scanned = -float("inf")
        self._pages: OrderedDict[str, tuple[tuple, str]] = OrderedDict()
        self._summaries: dict[str, tuple[tuple, ReportRun]] = {}

    # --- discovery -------------------------------------------------------------------------------
    def scan(self) -> dict[str, Path]:
        """Search the runs folder now; return ``{name: folder}``."""
        runs = find_runs(self.runs_dir)
        with self._lock:
            self._runs = runs
            self._scanned = time.monotonic()
            for gone in set(self._summaries) - set(runs):
                del self._summaries[gone]
        return runs

    def folder(self, name: str) -> Path | None:
        """The folder of the run called ``name``, or None: only names found by :meth:`scan` exist."""
        with self._lock:
            folder = self._runs.get(name)
            stale = time.monotonic() - self._scanned >= self.rescan_seconds
        if folder is None and stale:
            folder = self.scan().get(name)
        return folder

    # --- the list ----------------------------------------------------------------------------------
    def summaries(self) -> list[ReportRun]:
        """Every run, newest first (results.json's modification time), then by name."""
        out = []
        for name, folder in self.scan().items():
            key = _stamp(folder / RESULTS_JSON)
            with self._lock:
                cached = self._summaries.get(name)
            if cached is not None and cached[0] == key:
                out.append(cached[1])
                continue
            summary = self._summary(name, folder, key)
            with self._lock:
                self._summaries[name] = (key, summary)
            out.append(summary)
        out.sort(key=lambda r: r.name)
        out.sort(key=lambda r: r.date, reverse=True)
        return out

    def _summary(self, name: str, folder: Path, key) -> ReportRun:
        mtime = key[0] / 1e9 if key else 0.0
        date = datetime.fromtimestamp(mtime, tz=timezone.utc).isoformat(timespec="seconds")
        url = "/reports/" + quote(name, safe="/")
        try:
            run = load_run(folder, name)
        except ReportError as exc:
            return ReportRun(name=name, url=url, date=date, error=str(exc))
        return ReportRun(name=name, url=url, kind=run["kind"], models=[m["name"] for m in run["models"]],
                         split=run["split"]["name"], leaky=run["leaky"], n_tracks=run["data"].get("n_tracks"),
                         date=date)

    # --- pages -------------------------------------------------------------------------------------
    def page(self, name: str) -> str | None:
        """The report page of run ``name`` (None if there is no such run); raises ReportError if unreadable."""
        folder = self.folder(name)
        if folder is None:
            return None
        key = tuple((str(p), _stamp(p)) for p in run_inputs(folder))
        with self._lock:
            cached = self._pages.get(name)
            if cached is not None and cached[0] == key:
                self._pages.move_to_end(name)
                return cached[1]
        report = build_report([load_run(folder, name)])
        page = render_html(report, plotly_src=f"{ASSETS}/{plotly_js_name()}", back_link=("/reports", "← all runs"))
        with self._lock:
            self._pages[name] = (key, page)
            self._pages.move_to_end(name)
            while len(self._pages) > self.max_pages:
                self._pages.popitem(last=False)
        return page
