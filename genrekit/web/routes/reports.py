"""The training runs' reports: ``genrekit serve --runs DIR``.

Routes (added by :func:`reports_router`):

- ``GET /reports``: a page listing the runs under ``DIR`` (folders holding ``results.json``,
  searched recursively; newest first) with their models, split, leaky flag and date;
- ``GET /reports/{run}``: that run's report (:mod:`genrekit.report`), built on the first
  request and cached until one of its files changes (:class:`genrekit.web.reports.RunReports`);
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
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from genrekit.errors import ReportError
from genrekit.report.markup import count_text, esc, leaky_badge
from genrekit.report.page import page_shell
from genrekit.report.plotly_embed import boot_script_hash, plotly_js, plotly_js_name
from genrekit.web.reports import ASSETS, RunReports
from genrekit.web.schemas import ReportRun

#: CSP of the run list: no scripts at all.
LIST_CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; base-uri 'none'; "
            "form-action 'none'; frame-ancestors 'none'")


def _report_csp() -> str:
    return ("default-src 'none'; script-src 'self' " + boot_script_hash() + "; style-src 'unsafe-inline'; "
            "img-src 'self' data: blob:; font-src 'self' data:; connect-src 'none'; base-uri 'none'; "
            "form-action 'none'; frame-ancestors 'none'")


#: CSP of a report page: plotly.js from this server and the page's one inline script.
REPORT_CSP = _report_csp()


def _list_page(runs: list[ReportRun], runs_dir: Path) -> str:
    rows = []
    for r in runs:
        if r.error:
            rows.append(f'<tr><td>{esc(r.name)}</td><td colspan="5" class="text wrap">cannot read: {esc(r.error)}</td>'
                        f"<td>{esc(r.date)}</td></tr>")
            continue
        badge = leaky_badge({"id": r.name, "warning": "this run's split leaks: optimistic figures"}) if r.leaky else ""
        rows.append(
            f'<tr class="{"leaky" if r.leaky else ""}"><td><a href="{esc(r.url)}">{esc(r.name)}</a></td>'
            f'<td class="text">{esc("CNN" if r.kind == "cnn" else r.kind)}</td>'
            f'<td class="text wrap">{esc(", ".join(r.models))}</td>'
            f'<td class="text">{esc(r.split)} {badge}</td><td>{count_text(r.n_tracks)}</td>'
            f"<td>{esc(r.date.replace('T', ' ').replace('+00:00', ' UTC'))}</td></tr>")
    if rows:
        body = ('<section class="card"><div class="scroll"><table class="grid runs"><thead><tr><th>run</th>'
                '<th class="text">kind</th><th class="text">models</th><th class="text">split</th><th>tracks</th>'
                "<th>results written</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table></div></section>")
    else:
        body = ('<section class="card"><p>No runs yet: no <code>results.json</code> under this folder. Train one with '
                "<code>genrekit train ... --out RUN_DIR</code>.</p></section>")
    sub = f"{len(runs)} run{'s' * (len(runs) != 1)} under <code>{esc(runs_dir)}</code>"
    return page_shell("genrekit runs", body, subtitle=sub, nav='<a href="/">classify a song</a>') + "</body>\n</html>\n"


def _not_found(name: str) -> HTMLResponse:
    body = (f'<section class="card"><p>There is no run called <code>{esc(name)}</code> here.</p>'
            '<p><a href="/reports">All runs</a></p></section>')
    return HTMLResponse(page_shell("Run not found", body) + "</body>\n</html>\n", status_code=404,
                        headers={"Content-Security-Policy": LIST_CSP})


def reports_router(runs_dir: str | os.PathLike, **options) -> APIRouter:
    """A router serving the reports of the runs under ``runs_dir`` (see the module docstring).

    ``options`` go to :class:`~genrekit.web.reports.RunReports`. Raises
    :class:`~genrekit.errors.ParameterError` if ``runs_dir`` is not a folder.
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
            body = f'<section class="card"><p>This run cannot be shown: {esc(exc)}</p></section>'
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
