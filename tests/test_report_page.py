"""The report in a real browser: Debian's chromium driven by Playwright, with no network.

Needs ``/usr/bin/chromium`` (``bash .ci/install-browser``; Playwright's own browser download
is never used) and the ``playwright`` package. The report file is opened from disk with the
context offline and every request that is not ``file://`` aborted and recorded; the page
served by ``/reports`` is opened with every request to a host other than 127.0.0.1 aborted.
Screenshots go to ``artifacts/screenshots/`` (a CI artifact).
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

import pytest
from browser import SCREENSHOTS, needs_chromium

from report_runs import report_runs
from servers import serve_reports

REPO = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.slow, needs_chromium]

#: Every plot on the page: is it a plotly plot, how many traces, how many points each trace has.
PLOTS_JS = """() => Array.from(document.querySelectorAll('div.plot')).map(d => ({
    id: d.id, kind: d.dataset.kind, plotly: d.classList.contains('js-plotly-plot'),
    traces: (d.data || []).map(t => (t.z || t.x || t.y || []).length),
    drawn: !!d.querySelector('.main-svg'), webgl: !!d.querySelector('canvas'),
}))"""


@pytest.fixture(scope="module")
def runs(shared_data, tmp_path_factory) -> dict:
    return report_runs(tmp_path_factory.getbasetemp() / "report-runs", shared_data)


@pytest.fixture(scope="module")
def report_file(runs, tmp_path_factory) -> Path:
    from genrekit.cli import main

    out = tmp_path_factory.mktemp("report-page") / "report.html"
    args = ["report", str(runs["ff"]), str(runs["kfold"]), str(runs["leaky"])]
    if runs["cnn"]:
        args.append(str(runs["cnn"]))
    assert main(args + ["--cluster", str(runs["cluster"]), "--out", str(out)]) == 0
    return out


class Watch:
    """Console errors, page errors and blocked requests of one browser context."""

    def __init__(self, context, page, allowed) -> None:
        self.blocked: list[str] = []
        self.errors: list[str] = []
        self.allowed = allowed
        context.route("**/*", self._route)
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))

    def _route(self, route) -> None:
        if self.allowed(route.request.url):
            route.continue_()
        else:
            self.blocked.append(route.request.url)
            route.abort()


def _wait_for_plots(page) -> list[dict]:
    page.wait_for_function("() => document.body.hasAttribute('data-plots')", timeout=60_000)
    assert page.locator("#plot-status").is_hidden()
    return page.evaluate(PLOTS_JS)


def _check_plots(plots: list[dict]) -> None:
    assert plots
    for p in plots:
        assert p["plotly"] and p["drawn"], p
        assert p["traces"] and all(n > 0 for n in p["traces"]), p


def _shot(page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / name
    page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")
    return path


def test_report_file_opens_offline_with_every_plot_drawn(browser, report_file, runs):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_offline(True)
    page = context.new_page()
    watch = Watch(context, page, lambda url: urlparse(url).scheme == "file")
    try:
        page.goto(report_file.as_uri())
        plots = _wait_for_plots(page)
        _check_plots(plots)
        kinds = [p["kind"] for p in plots]
        assert kinds.count("comparison") == 3 + bool(runs["cnn"]) and "overview" in kinds and "pca" in kinds
        assert kinds.count("curves") == (1 if runs["cnn"] else 0)
        assert kinds.count("confusion") == 4 + bool(runs["cnn"])  # one per model
        assert kinds.count("per-genre") == 3 + bool(runs["cnn"])  # one per run
        assert kinds.count("reliability") == 4 + bool(runs["cnn"])  # one per model with reliability bins
        pca = next(p for p in plots if p["kind"] == "pca")
        assert pca["webgl"] and sum(pca["traces"]) == 2 * 1000  # every row, coloured by genre and by cluster
        assert page.locator(".badge-leaky").count() >= 3

        # the colouring switch of the 3-D map
        fig = page.locator(f"#{pca['id']}")
        fig.scroll_into_view_if_needed()
        fig.locator(".updatemenu-button").nth(1).click()
        page.wait_for_function(
            f"() => document.getElementById('{pca['id']}').data.filter(t => t.visible === true)"
            ".every(t => t.name.startsWith('cluster'))")
        visible = page.evaluate(f"() => document.getElementById('{pca['id']}').data"
                                ".filter(t => t.visible === true).length")
        assert visible == 10
        page.evaluate("() => window.scrollTo(0, 0)")
        _shot(page, "report.png")
        assert watch.errors == [], watch.errors
        assert watch.blocked == [], f"the report asked the network for {watch.blocked}"
    finally:
        context.close()


def test_served_report_draws_under_its_content_security_policy(browser, runs, tmp_path):
    import shutil

    root = tmp_path / "runs"
    shutil.copytree(runs["ff"], root / "ff")
    shutil.copytree(runs["leaky"], root / "more" / "leaky")
    server = serve_reports(root)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    watch = Watch(context, page, lambda url: urlparse(url).hostname == "127.0.0.1")
    try:
        page.goto(f"http://127.0.0.1:{server.port}/reports")
        assert page.locator("table.runs tbody tr").count() == 2
        page.click("text=more/leaky")
        page.wait_for_url("**/reports/more/leaky")
        _check_plots(_wait_for_plots(page))
        assert page.locator("h2 .badge-leaky").count() == 1
        page.click("text=← all runs")
        page.wait_for_url("**/reports")
        page.click("text=ff")
        _check_plots(_wait_for_plots(page))
        _shot(page, "report-served.png")
        assert watch.errors == [], watch.errors  # a CSP violation would be logged here
        assert watch.blocked == []
    finally:
        context.close()
        server.stop()
