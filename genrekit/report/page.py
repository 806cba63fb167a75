"""The report page: the data model (:mod:`genrekit.report.build`) as one self-contained HTML file.

>>> from genrekit.report.page import write_report                                # doctest: +SKIP
>>> write_report(["runs/ff", "runs/kfold"], ["clusters.json"], "report.html")

The page holds everything it needs: its style sheet (:mod:`genrekit.report.theme`),
plotly.js (:mod:`genrekit.report.plotly_embed`), every figure's data as JSON and the
report's data model as JSON (``<script type="application/json" id="genrekit-report">``,
for scripts and tests; cluster points are left out of it, they are in the figures). It makes
no network request. The server (:mod:`genrekit.web.reports`) renders the same page with
plotly.js as a separate, cached URL instead.

Its sections are :func:`genrekit.report.sections.overview_section`, one
:func:`~genrekit.report.sections.run_section` per run and one
:func:`~genrekit.report.figures.clusters.cluster_section` per clustering, in that order.

Safety: every text that comes from a file is HTML-escaped; JSON inside ``<script>`` has
``<``, ``>`` and ``&`` written as ``\\u003c``..., so no ``</script>`` can end it early; texts
handed to plotly (which reads a little HTML in labels) are escaped too
(:mod:`genrekit.report.markup`).

Determinism: no clock, no random ids; the same inputs and versions give the same bytes.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from genrekit._io import write_bytes_atomic
from genrekit._version import __version__
from genrekit.report.build import build_report, load_cluster, load_run
from genrekit.report.figures.clusters import cluster_section
from genrekit.report.figures.collector import Figures
from genrekit.report.markup import esc, script_json
from genrekit.report.plotly_embed import BOOT_SCRIPT, plotly_js
from genrekit.report.sections import overview_section, run_section
from genrekit.report.theme import STYLE

__all__ = ["page_shell", "render_html", "write_report"]


def page_shell(title: str, body: str, *, subtitle: str = "", nav: str = "", head_extra: str = "") -> str:
    """The page frame (header, style sheet) shared by reports and the server's run list."""
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            "<link rel=\"icon\" href=\"data:,\">\n"
            "<meta name=\"generator\" content=\"genrekit " + esc(__version__) + "\">\n"
            f"<title>{esc(title)}</title>\n<style>{STYLE}</style>\n{head_extra}</head>\n<body>\n"
            f'<header class="top"><div class="wrap"><h1>{esc(title)}</h1>'
            + (f'<span class="sub">{subtitle}</span>' if subtitle else "")
            + (f"<nav>{nav}</nav>" if nav else "") + "</div></header>\n"
            f'<main class="wrap">{body}</main>\n')


def _model_for_embedding(report: Mapping) -> dict:
    """The data model without the cluster points (the figures hold them)."""
    out = dict(report)
    out["clusters"] = [dict({k: v for k, v in c.items() if k != "points"}, n_points=len(c["points"]["x"]))
                       for c in report["clusters"]]
    return out


def render_html(report: Mapping, *, plotly_src: str | None = None, back_link: tuple[str, str] | None = None) -> str:
    """The report page.

    Parameters
    ----------
    report : dict
        From :func:`genrekit.report.build.build_report`.
    plotly_src : str, optional
        URL of plotly.js; by default the library is embedded in the page (self-contained).
    back_link : (href, text), optional
        A link shown first in the page's navigation (the server's run list).
    """
    figs = Figures()
    sections = [overview_section(report, figs)]
    sections += [run_section(run, figs) for run in report["runs"]]
    sections += [cluster_section(item, figs) for item in report["clusters"]]
    nav = []
    if back_link:
        nav.append(f'<a href="{esc(back_link[0])}">{esc(back_link[1])}</a>')
    if len(report["runs"]) > 1:
        nav.append('<a href="#overview">overview</a>')
    nav += [f'<a href="#{esc(r["id"])}">{esc(r["name"])}{" ⚠" if r["leaky"] else ""}</a>' for r in report["runs"]]
    nav += [f'<a href="#{esc(c["id"])}">clusters: {esc(c["name"])}</a>' for c in report["clusters"]]
    n_runs, n_cl = len(report["runs"]), len(report["clusters"])
    subtitle = ", ".join(x for x in (f"{n_runs} run{'s' * (n_runs != 1)}" if n_runs else "",
                                     f"{n_cl} clustering{'s' * (n_cl != 1)}" if n_cl else "") if x)
    footer = ('<footer class="wrap">Made with genrekit ' + esc(__version__) + " and plotly.js. "
              "Accuracy is reported per track (a track's prediction: the mean of its windows' probabilities) unless "
              "marked window; intervals are 95% bootstrap intervals over tracks.</footer>\n")
    if plotly_src is None:
        plotly_tag = f"<script>{plotly_js()}</script>\n"
    else:
        plotly_tag = f'<script src="{esc(plotly_src)}"></script>\n'
    return (page_shell(report["title"], '<div id="plot-status" hidden></div>' + "".join(sections),
                       subtitle=esc(subtitle), nav="".join(nav))
            + footer
            + '<script type="application/json" id="genrekit-report">' + script_json(_model_for_embedding(report))
            + "</script>\n"
            + '<script type="application/json" id="genrekit-figures">' + script_json(figs.items) + "</script>\n"
            + plotly_tag + f"<script>{BOOT_SCRIPT}</script>\n</body>\n</html>\n")


def write_report(run_dirs: Iterable[str | os.PathLike] = (), cluster_files: Iterable[str | os.PathLike] = (),
                 out: str | os.PathLike | None = None, *, title: str | None = None) -> str:
    """Build the report of ``run_dirs`` and ``cluster_files``; write it to ``out`` (atomically) when given.

    Returns
    -------
    str
        The HTML page.

    Raises
    ------
    ReportError
        An unreadable input, or plotly not installed.
    """
    runs = [load_run(p) for p in run_dirs]
    clusters = [load_cluster(p) for p in cluster_files]
    page = render_html(build_report(runs, clusters, title=title))
    if out is not None:
        write_bytes_atomic(Path(out), page.encode("utf-8"))
    return page
