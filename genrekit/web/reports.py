"""Experiment reports in the web app: ``genrekit serve --runs DIR``.

Routes (added by :func:`reports_router`):

- ``GET /reports``: a page listing the runs under ``DIR`` (folders holding ``results.json``,
  searched recursively; newest first) with their models, split, leaky flag and date;
- ``GET /reports/{run}``: that run's report (:mod:`genrekit.report`), built on the first
  request and cached until one of its files changes (keyed by modification time and size);
- ``GET /api/reports``: the same list as JSON;
- ``GET /report-assets/plotly-<hash>.min.js``: plotly.js, cached for a year (the name
  changes with its content), so report pages stay small.

A ``{run}`` in the URL is only ever looked up in the list of runs found under ``DIR``;
no path is built from it, so ``/reports/../../etc/passwd`` is a 404 like any other
unknown name.

Report pages carry a Content-Security-Policy that allows plotly.js from this server, the
one inline script the page has (by its hash) and nothing from elsewhere.
"""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import quote

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, Field

from genrekit.report.build import ReportError, build_report, find_runs, load_run, run_inputs
from genrekit.training.run_folder import RESULTS_JSON
from genrekit.report.html import _e, _int, _leaky_badge, boot_script_hash, page_shell, plotly_js, plotly_js_name, render_html

__all__ = ["RunReports", "reports_router", "ReportRun", "REPORT_CSP", "LIST_CSP"]

ASSETS = "/report-assets"
#: CSP of the run list: no scripts at all.
LIST_CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; base-uri 'none'; "
            "form-action 'none'; frame-ancestors 'none'")


def _report_csp() -> str:
    return ("default-src 'none'; script-src 'self' " + boot_script_hash() + "; style-src 'unsafe-inline'; "
            "img-src 'self' data: blob:; font-src 'self' data:; connect-src 'none'; base-uri 'none'; "
            "form-action 'none'; frame-ancestors 'none'")


REPORT_CSP = _report_csp()


class ReportRun(BaseModel):
    """One run under the server's runs folder."""

    name: str = Field(description="Path of the run folder relative to the runs folder ('/' separated).")
    url: str = Field(description="Where its report is.")
    kind: str | None = Field(None, description="classical, cnn or mixed.")
    models: list[str] = Field(default_factory=list)
    split: str | None = None
    leaky: bool = Field(False, description="Its split leaks (windows of one track on both sides): optimistic figures.")
    n_tracks: int | None = None
    date: str = Field(description="When results.json was last written (UTC, ISO 8601).")
    error: str | None = Field(None, description="Why the run cannot be read, if it cannot.")


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
    """

    def __init__(self, runs_dir: str | os.PathLike, *, max_pages: int = 16, rescan_seconds: float = 1.0) -> None:
        self.runs_dir = Path(runs_dir)
        if not self.runs_dir.is_dir():
            raise ValueError(f"runs folder {self.runs_dir} does not exist")
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


def _list_page(runs: list[ReportRun], runs_dir: Path) -> str:
    rows = []
    for r in runs:
        if r.error:
            rows.append(f'<tr><td>{_e(r.name)}</td><td colspan="5" class="text wrap">cannot read: {_e(r.error)}</td>'
                        f"<td>{_e(r.date)}</td></tr>")
            continue
        badge = _leaky_badge({"id": r.name, "warning": "this run's split leaks: optimistic figures"}) if r.leaky else ""
        rows.append(
            f'<tr class="{"leaky" if r.leaky else ""}"><td><a href="{_e(r.url)}">{_e(r.name)}</a></td>'
            f'<td class="text">{_e("CNN" if r.kind == "cnn" else r.kind)}</td>'
            f'<td class="text wrap">{_e(", ".join(r.models))}</td>'
            f'<td class="text">{_e(r.split)} {badge}</td><td>{_int(r.n_tracks)}</td>'
            f"<td>{_e(r.date.replace('T', ' ').replace('+00:00', ' UTC'))}</td></tr>")
    if rows:
        body = ('<section class="card"><div class="scroll"><table class="grid runs"><thead><tr><th>run</th>'
                '<th class="text">kind</th><th class="text">models</th><th class="text">split</th><th>tracks</th>'
                "<th>results written</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table></div></section>")
    else:
        body = ('<section class="card"><p>No runs yet: no <code>results.json</code> under this folder. Train one with '
                "<code>genrekit train ... --out RUN_DIR</code>.</p></section>")
    sub = f"{len(runs)} run{'s' * (len(runs) != 1)} under <code>{_e(runs_dir)}</code>"
    return page_shell("genrekit runs", body, subtitle=sub, nav='<a href="/">classify a song</a>') + "</body>\n</html>\n"


def _not_found(name: str) -> HTMLResponse:
    body = (f'<section class="card"><p>There is no run called <code>{_e(name)}</code> here.</p>'
            '<p><a href="/reports">All runs</a></p></section>')
    return HTMLResponse(page_shell("Run not found", body) + "</body>\n</html>\n", status_code=404,
                        headers={"Content-Security-Policy": LIST_CSP})


def reports_router(runs_dir: str | os.PathLike, **options) -> APIRouter:
    """A router serving the reports of the runs under ``runs_dir`` (see the module docstring).

    ``options`` go to :class:`RunReports`. Raises ValueError if ``runs_dir`` is not a folder.
    """
    store = RunReports(runs_dir, **options)
    router = APIRouter(tags=["reports"])

    @router.get("/api/reports", response_model=list[ReportRun], summary="The training runs this server has reports of")
    def list_json() -> list[ReportRun]:
        return store.summaries()

    @router.get("/reports", response_class=HTMLResponse, include_in_schema=False)
    def list_page() -> HTMLResponse:
        return HTMLResponse(_list_page(store.summaries(), store.runs_dir),
                            headers={"Content-Security-Policy": LIST_CSP, "Cache-Control": "no-cache"})

    @router.get("/reports/{name:path}", response_class=HTMLResponse, include_in_schema=False)
    def report_page(name: str) -> Response:
        if name == "":
            return RedirectResponse("/reports", status_code=307)
        try:
            page = store.page(name)
        except ReportError as exc:
            body = f'<section class="card"><p>This run cannot be shown: {_e(exc)}</p></section>'
            return HTMLResponse(page_shell("Unreadable run", body) + "</body>\n</html>\n", status_code=500,
                                headers={"Content-Security-Policy": LIST_CSP})
        if page is None:
            return _not_found(name)
        return HTMLResponse(page, headers={"Content-Security-Policy": REPORT_CSP, "Cache-Control": "no-cache"})

    @router.get(ASSETS + "/{filename}", include_in_schema=False)
    def asset(filename: str) -> Response:
        try:
            wanted = plotly_js_name()
        except ReportError as exc:
            return Response(str(exc), status_code=500, media_type="text/plain")
        if filename != wanted:
            return Response("not found", status_code=404, media_type="text/plain")
        return Response(plotly_js(), media_type="text/javascript; charset=utf-8",
                        headers={"Cache-Control": "public, max-age=31536000, immutable"})

    router.store = store  # for tests and the app
    return router
