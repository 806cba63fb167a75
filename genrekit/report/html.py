"""Render the report's data model (:mod:`genrekit.report.build`) as one self-contained HTML page.

The page holds everything it needs: its style sheet, plotly.js (read from the installed
``plotly`` package, ``plotly/package_data/plotly.min.js``), every figure's data as JSON and
the report's data model as JSON (``<script type="application/json" id="genrekit-report">``,
for scripts and tests; cluster points are left out of it, they are in the figures). It makes
no network request. The server (:mod:`genrekit.web.reports`) renders the same page with
plotly.js as a separate, cached URL instead.

Safety: every text that comes from a file is HTML-escaped; JSON inside ``<script>`` has
``<``, ``>`` and ``&`` written as ``\\u003c``..., so no ``</script>`` can end it early; texts
handed to plotly (which reads a little HTML in labels) are escaped too.

Determinism: no clock, no random ids; the same inputs and versions give the same bytes.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from genrekit._version import __version__
from genrekit._io import write_bytes_atomic
from genrekit.report.build import ReportError, build_report, load_cluster, load_run

__all__ = ["render_html", "write_report", "plotly_js", "plotly_js_name", "BOOT_SCRIPT", "boot_script_hash",
           "STYLE", "page_shell"]

FONT = ('system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, "Noto Sans", '
        '"Liberation Sans", sans-serif')
#: Genre colours (Tableau 10, then 10 lighter ones); cycled beyond 20.
GENRE_COLOURS = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
                 "#9c755f", "#bab0ac", "#a0cbe8", "#ffbe7d", "#ff9d9a", "#86bcb6", "#8cd17d", "#f1ce63",
                 "#d4a6c8", "#fabfd2", "#d7b5a6", "#79706e"]
#: k-means cluster colours (a palette unlike the genres', so the two colourings are not confused).
CLUSTER_COLOURS = ["#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#666666",
                   "#1f78b4", "#b2df8a", "#fb9a99", "#cab2d6", "#6a3d9a", "#b15928", "#17becf", "#bcbd22"]
SIDE_COLOURS = {"valid": "#9fbfdf", "test": "#2f5d8a", "cv": "#7f9fbf", "pooled": "#2f5d8a"}
METRIC_COLOURS = {"precision": "#4e79a7", "recall": "#f28e2b", "f1": "#59a14f"}
CURVE_COLOURS = {"train": "#4e79a7", "valid": "#e15759"}
LEAKY_COLOUR = "#c0392b"
INK = "#1f2933"
MUTED = "#616e7c"
GRID = "#e4e7eb"

#: Starts every plot; the only inline script of the page (its hash goes in the server's CSP).
BOOT_SCRIPT = """(function () {
  "use strict";
  var figures = JSON.parse(document.getElementById("genrekit-figures").textContent);
  var status = document.getElementById("plot-status");
  if (typeof Plotly === "undefined") {
    status.textContent = "The charts could not be drawn: plotly.js did not load.";
    status.hidden = false;
    return;
  }
  var config = {displaylogo: false, responsive: true,
                modeBarButtonsToRemove: ["sendDataToCloud", "select2d", "lasso2d"]};
  Promise.all(figures.map(function (f) {
    return Plotly.newPlot(document.getElementById(f.id), f.data, f.layout, config);
  })).then(function () {
    document.body.setAttribute("data-plots", String(figures.length));
  }, function (err) {
    status.textContent = "A chart could not be drawn: " + err;
    status.hidden = false;
    document.body.setAttribute("data-plots", "error");
  });
})();"""

STYLE = """
:root { --ink: #1f2933; --muted: #616e7c; --line: #e4e7eb; --bg: #f5f7fa; --card: #ffffff;
        --accent: #2f5d8a; --leaky: #c0392b; --leaky-bg: #fdecea; }
* { box-sizing: border-box; }
html { background: var(--bg); }
body { margin: 0; color: var(--ink); font: 14px/1.5 %(font)s; -webkit-font-smoothing: antialiased; }
a { color: var(--accent); text-decoration: none; }
a:hover { text-decoration: underline; }
header.top { background: #1f2d3d; color: #fff; padding: 20px 0 14px; }
header.top .wrap { display: flex; flex-wrap: wrap; align-items: baseline; gap: 6px 24px; }
header.top h1 { margin: 0; font-size: 22px; font-weight: 600; letter-spacing: .01em; }
header.top .sub { color: #c3cfd9; font-size: 13px; }
header.top nav { width: 100%%; display: flex; flex-wrap: wrap; gap: 6px; margin-top: 8px; }
header.top nav a { color: #e6edf3; background: rgba(255,255,255,.09); border-radius: 4px; padding: 2px 9px;
                   font-size: 13px; }
header.top nav a:hover { background: rgba(255,255,255,.18); text-decoration: none; }
.wrap { max-width: 1240px; margin: 0 auto; padding: 0 24px; }
main.wrap { padding-top: 22px; padding-bottom: 36px; }
header.top code { background: rgba(255,255,255,.12); color: #e6edf3; }
table.grid td { font-variant-numeric: tabular-nums; }
section.card { background: var(--card); border: 1px solid var(--line); border-radius: 8px;
               padding: 18px 22px 22px; margin: 0 0 22px; box-shadow: 0 1px 2px rgba(16,24,40,.04); }
section.card.leaky { border-color: #e6a39b; box-shadow: inset 4px 0 0 var(--leaky); }
h2 { font-size: 19px; margin: 0 0 6px; font-weight: 600; display: flex; flex-wrap: wrap; align-items: center;
     gap: 8px; }
h3 { font-size: 15px; margin: 22px 0 6px; font-weight: 600; display: flex; flex-wrap: wrap; align-items: center;
     gap: 8px; border-top: 1px solid var(--line); padding-top: 16px; }
h4 { font-size: 14px; margin: 18px 0 4px; font-weight: 600; display: flex; flex-wrap: wrap; align-items: center;
     gap: 8px; }
p.note, .note { color: var(--muted); font-size: 13px; margin: 2px 0 8px; }
.badge { display: inline-block; font-size: 11px; font-weight: 600; letter-spacing: .03em; text-transform: uppercase;
         border-radius: 999px; padding: 1px 9px; line-height: 18px; background: #e8eef5; color: #34495e;
         white-space: nowrap; }
.badge.kind-cnn { background: #efe7f7; color: #5b3b80; }
.badge.kind-classical { background: #e6f2ec; color: #2d6a4f; }
.badge.selected { background: #fff4d6; color: #7a5b00; }
.badge.badge-leaky { background: var(--leaky); color: #fff; }
.warning { background: var(--leaky-bg); border: 1px solid #f1b0a8; color: #7b241c; border-radius: 6px;
           padding: 8px 12px; margin: 8px 0; font-size: 13px; }
.warning strong { color: var(--leaky); }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 4px 18px; margin: 10px 0 4px;
           font-size: 13px; }
dl.facts dt { color: var(--muted); }
dl.facts dd { margin: 0; overflow-wrap: anywhere; }
code { font: 12px/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; background: #f0f3f6;
       border-radius: 3px; padding: 1px 4px; }
table.grid { border-collapse: collapse; font-size: 13px; margin: 8px 0; width: 100%%; }
table.grid th, table.grid td { padding: 5px 10px; border-bottom: 1px solid var(--line); text-align: right;
                               white-space: nowrap; }
table.grid th { color: var(--muted); font-weight: 600; background: #f8fafc; }
table.grid th:first-child, table.grid td:first-child, table.grid td.text, table.grid th.text { text-align: left; }
table.grid td.wrap { white-space: normal; }
table.grid tr.leaky td:first-child { box-shadow: inset 3px 0 0 var(--leaky); }
.scroll { overflow-x: auto; }
.tiles { display: flex; flex-wrap: wrap; gap: 10px; margin: 10px 0; }
.tile { border: 1px solid var(--line); border-radius: 6px; padding: 8px 14px; min-width: 110px; background: #fbfcfd; }
.tile .v { font-size: 20px; font-weight: 600; }
.tile .k { font-size: 12px; color: var(--muted); }
figure { margin: 6px 0 0; }
figure.leaky { border-left: 3px solid var(--leaky); padding-left: 10px; }
figcaption { font-size: 12px; color: var(--muted); margin: 2px 0 0; }
figcaption .leaky-note { display: block; margin-top: 4px; color: #7b241c; }
.plot { width: 100%%; min-height: 200px; }
details { margin: 6px 0; }
details summary { cursor: pointer; color: var(--accent); font-size: 13px; }
.model-block { min-width: 0; }
.model-block h4 { margin-top: 8px; }
.grid2 { display: grid; grid-template-columns: repeat(auto-fill, minmax(520px, 1fr)); gap: 8px 28px; }
.grid2 > * { min-width: 0; }
footer { color: var(--muted); font-size: 12px; padding: 0 0 30px; }
#plot-status { background: var(--leaky-bg); color: #7b241c; padding: 10px; border-radius: 6px; }
@media print { header.top nav { display: none; } section.card { break-inside: avoid; } }
""" % {"font": FONT}


# --- helpers -----------------------------------------------------------------------------------------------
def _e(value: Any) -> str:
    """HTML-escaped text (``None`` → an en dash)."""
    return "–" if value is None else html.escape(str(value), quote=True)


def _t(value: Any) -> str:
    """Text for plotly labels (plotly reads a few HTML tags and entities in them): escaped."""
    return html.escape(str(value), quote=False)


def _json_for_script(obj: Any) -> str:
    """JSON that is safe inside ``<script>``: no ``<``, ``>``, ``&`` or line separators as such."""
    text = json.dumps(obj, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    for raw, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                         ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(raw, escaped)
    return text


def _num(x: Any) -> float | None:
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) else None


def _pct(x: Any, digits: int = 1) -> str:
    x = _num(x)
    return "–" if x is None else f"{100 * x:.{digits}f}%"


def _ci(ci: Any) -> str:
    if not (isinstance(ci, list) and len(ci) == 2 and all(_num(v) is not None for v in ci)):
        return ""
    return f" [{100 * ci[0]:.1f}–{100 * ci[1]:.1f}]"


def _int(x: Any) -> str:
    return f"{x:,}" if isinstance(x, int) and not isinstance(x, bool) else "–"


def _colour(palette: Sequence[str], i: int) -> str:
    return palette[i % len(palette)]


def _layout(height: int, **extra) -> dict:
    layout = {
        "height": height,
        "font": {"family": FONT, "size": 12, "color": INK},
        "paper_bgcolor": "#ffffff",
        "plot_bgcolor": "#ffffff",
        "margin": {"l": 64, "r": 24, "t": 30, "b": 56},
        "hoverlabel": {"font": {"family": FONT}},
        "legend": {"orientation": "h", "x": 0, "y": 1.02, "yanchor": "bottom"},
    }
    layout.update(extra)
    return layout


def _axis(title: str | None = None, **extra) -> dict:
    axis = {"gridcolor": GRID, "linecolor": "#9aa5b1", "zerolinecolor": GRID, "automargin": True}
    if title:
        axis["title"] = {"text": title}
    axis.update(extra)
    return axis


class _Figures:
    """Collects the page's figures; :meth:`add` returns the HTML of the figure's container."""

    def __init__(self) -> None:
        self.items: list[dict] = []

    def add(self, data: list, layout: dict, *, caption: str = "", run: Mapping | None = None,
            kind: str = "") -> str:
        fid = f"fig-{len(self.items) + 1}"
        if run and run.get("leaky"):
            # The mark travels with the chart (also in a PNG saved from its toolbar).
            layout = dict(layout, margin=dict(layout.get("margin", {}), t=layout.get("margin", {}).get("t", 30) + 26),
                          title={"text": "<b>LEAKY PROTOCOL</b>: optimistic figures", "x": 1, "xanchor": "right",
                                 "xref": "paper", "y": 1, "yanchor": "top", "yref": "container", "pad": {"t": 6},
                                 "font": {"size": 12, "color": LEAKY_COLOUR}})
            layout["height"] = layout["height"] + 26
        self.items.append({"id": fid, "kind": kind, "run": run["id"] if run else None, "data": data,
                           "layout": layout})
        leaky = bool(run and run.get("leaky"))
        cap = f"<span>{caption}</span>" if caption else ""
        if leaky:
            cap += f'<span class="leaky-note">{_leaky_badge(run)} {_e(run["warning"])}</span>'
        klass = ' class="leaky"' if leaky else ""
        return (f"<figure{klass}>"
                f'<div class="plot" id="{fid}" data-kind="{_e(kind)}" style="height:{int(layout["height"])}px"></div>'
                + (f"<figcaption>{cap}</figcaption>" if cap else "") + "</figure>")


def _leaky_badge(run: Mapping) -> str:
    return (f'<span class="badge badge-leaky" data-run="{_e(run["id"])}" title="{_e(run["warning"])}">'
            "leaky protocol</span>")


# --- evaluations ---------------------------------------------------------------------------------------------
def _main_eval(model: Mapping) -> tuple[str, str, dict] | None:
    """The evaluation a model's detail figures show: test, else valid, else the pooled k-fold one."""
    if model.get("test"):
        return "test", "test set", model["test"]
    if model.get("valid"):
        return "valid", "validation set", model["valid"]
    cv = model.get("cv")
    if cv and cv.get("pooled"):
        return "pooled", f"pooled out-of-fold predictions of {cv.get('folds', '?')}-fold cross-validation", cv["pooled"]
    return None


def _headline(model: Mapping) -> tuple[str, float | None, list | None, int | None] | None:
    """(what, track accuracy, CI, tracks) that sums a model up in the overview."""
    found = _main_eval(model)
    if found is None:
        return None
    side, _, ev = found
    track = ev.get("track") or {}
    return side, _num(track.get("accuracy")), track.get("accuracy_ci"), ev.get("n_tracks")


def _labels(ev: Mapping) -> list[str]:
    return [str(x) for x in ev.get("labels") or []]


# --- figures ---------------------------------------------------------------------------------------------------
def _error_bars(values: list, cis: list) -> dict:
    plus, minus = [], []
    for v, ci in zip(values, cis):
        if v is None or not (isinstance(ci, list) and len(ci) == 2 and None not in ci):
            plus.append(None)
            minus.append(None)
        else:
            plus.append(max(0.0, ci[1] - v))
            minus.append(max(0.0, v - ci[0]))
    return {"type": "data", "symmetric": False, "array": plus, "arrayminus": minus, "color": "#3e4c59",
            "thickness": 1.3, "width": 5}


def _chance(n_labels: int) -> tuple[list, list]:
    if n_labels < 2:
        return [], []
    y = 1.0 / n_labels
    shape = {"type": "line", "xref": "paper", "x0": 0, "x1": 1, "yref": "y", "y0": y, "y1": y,
             "line": {"color": "#9aa5b1", "width": 1, "dash": "dot"}}
    note = {"xref": "paper", "x": 1, "xanchor": "left", "xshift": 4, "yref": "y", "y": y, "yanchor": "middle",
            "text": f"chance<br>{100 * y:.0f}%", "showarrow": False, "align": "left",
            "font": {"size": 10, "color": MUTED}}
    return [shape], [note]


def _comparison_single(run: Mapping, figs: _Figures) -> str:
    models = [m for m in run["models"] if m.get("valid") or m.get("test")]
    if not models:
        return ""
    names = [m["name"] for m in models]
    data = []
    n_labels = 0
    for side in ("valid", "test"):
        evs = [m.get(side) for m in models]
        if not any(evs):
            continue
        acc = [_num((ev or {}).get("track", {}).get("accuracy")) if ev else None for ev in evs]
        cis = [(ev or {}).get("track", {}).get("accuracy_ci") if ev else None for ev in evs]
        tracks = [ev.get("n_tracks") if ev else None for ev in evs]
        n = next((t for t in tracks if t is not None), None)
        n_labels = max(n_labels, *(len(_labels(ev)) for ev in evs if ev))
        data.append({
            "type": "bar", "name": f"{side} ({n} tracks)" if n is not None else side, "x": [_t(x) for x in names],
            "y": acc, "error_y": _error_bars(acc, cis), "marker": {"color": SIDE_COLOURS[side]},
            "customdata": [[t, (c or [None, None])[0], (c or [None, None])[1]] for t, c in zip(tracks, cis)],
            "hovertemplate": (f"%{{x}} · {side}<br>track accuracy %{{y:.1%}}<br>"
                              "95% CI %{customdata[1]:.1%}–%{customdata[2]:.1%}<br>"
                              "%{customdata[0]} tracks<extra></extra>"),
            "meta": {"side": side},
        })
    shapes, notes = _chance(n_labels)
    ticks = [_t(m["name"]) + (" ★" if m.get("selected") else "") for m in models]
    layout = _layout(360, barmode="group", bargap=0.3, bargroupgap=0.06, shapes=shapes, annotations=notes,
                     showlegend=True, margin={"l": 64, "r": 60, "t": 30, "b": 56},
                     xaxis=_axis(None, tickvals=[_t(x) for x in names], ticktext=ticks),
                     yaxis=_axis("track-level accuracy", range=[0, 1.05], tickformat=".0%"))
    caption = "Bars: track-level accuracy; whiskers: 95% bootstrap interval (tracks resampled)."
    if run.get("selected"):
        caption += f" ★ {_e(run['selected'])}: selected by {_e(run.get('selected_by') or 'validation accuracy')}."
    return figs.add(data, layout, caption=caption, run=run, kind="comparison")


def _comparison_cv(run: Mapping, figs: _Figures) -> str:
    models = [m for m in run["models"] if m.get("cv")]
    if not models:
        return ""
    names = [_t(m["name"]) for m in models]
    cvs = [m["cv"] for m in models]
    folds = next((c.get("folds") for c in cvs if c.get("folds")), None)
    mean = [_num(c.get("mean_track_accuracy")) for c in cvs]
    std = [_num(c.get("std_track_accuracy")) for c in cvs]
    pooled = [c.get("pooled") or {} for c in cvs]
    p_acc = [_num(p.get("track", {}).get("accuracy")) for p in pooled]
    p_ci = [p.get("track", {}).get("accuracy_ci") for p in pooled]
    n_tracks = next((p.get("n_tracks") for p in pooled if p.get("n_tracks")), None)
    data = [
        {"type": "bar", "name": f"mean ± std over {folds} folds", "x": names, "y": mean, "offsetgroup": "cv",
         "error_y": {"type": "data", "array": std, "color": "#3e4c59", "thickness": 1.3, "width": 5},
         "marker": {"color": SIDE_COLOURS["cv"]},
         "customdata": std, "hovertemplate": "%{x}<br>fold mean %{y:.1%} ± %{customdata:.1%}<extra></extra>",
         "meta": {"side": "cv-mean"}},
        {"type": "scatter", "mode": "markers", "name": "single folds", "offsetgroup": "cv",
         "x": [n for n, c in zip(names, cvs) for _ in c.get("fold_track_accuracy", [])],
         "y": [a for c in cvs for a in c.get("fold_track_accuracy", [])],
         "marker": {"color": "#1f2d3d", "size": 6, "symbol": "circle-open"},
         "hovertemplate": "%{x}<br>one fold: %{y:.1%}<extra></extra>", "meta": {"side": "fold"}},
        {"type": "bar", "name": f"pooled out-of-fold ({n_tracks} tracks, 95% CI)", "x": names, "y": p_acc,
         "offsetgroup": "pooled", "error_y": _error_bars(p_acc, p_ci), "marker": {"color": SIDE_COLOURS["pooled"]},
         "customdata": [[(c or [None, None])[0], (c or [None, None])[1]] for c in p_ci],
         "hovertemplate": ("%{x}<br>pooled %{y:.1%}<br>95% CI %{customdata[0]:.1%}–%{customdata[1]:.1%}"
                           "<extra></extra>"),
         "meta": {"side": "pooled"}},
    ]
    n_labels = max((len(_labels(p)) for p in pooled if p), default=0)
    shapes, notes = _chance(n_labels)
    layout = _layout(360, barmode="group", scattermode="group", bargap=0.3, bargroupgap=0.06, shapes=shapes,
                     annotations=notes, margin={"l": 64, "r": 60, "t": 30, "b": 56}, xaxis=_axis(None),
                     yaxis=_axis("track-level accuracy", range=[0, 1.05], tickformat=".0%"))
    caption = (f"{_e(folds)}-fold cross-validation: fold mean ± standard deviation (circles: single folds), "
               "and the accuracy of all out-of-fold predictions pooled, with its 95% bootstrap interval.")
    return figs.add(data, layout, caption=caption, run=run, kind="comparison")


def _toggle(labels: list[str], n_traces: int, per_button: int, x: float = 1.0, xanchor: str = "right",
            extra: list[dict] | None = None) -> dict:
    """Buttons showing one group of ``per_button`` consecutive traces at a time."""
    buttons = []
    for i, label in enumerate(labels):
        visible = [i * per_button <= j < (i + 1) * per_button for j in range(n_traces)]
        args = [{"visible": visible}]
        if extra:
            args.append(extra[i])
        buttons.append({"label": label, "method": "update", "args": args})
    return {"type": "buttons", "direction": "right", "x": x, "xanchor": xanchor, "y": 1.0, "yanchor": "bottom",
            "pad": {"b": 6}, "showactive": True, "active": 0, "bgcolor": "#f0f3f6", "bordercolor": "#cbd2d9",
            "font": {"size": 11}, "buttons": buttons}


def _confusion(model: Mapping, run: Mapping, figs: _Figures) -> str:
    found = _main_eval(model)
    if found is None:
        return ""
    side, what, ev = found
    track = ev.get("track") or {}
    labels = _labels(ev)
    counts = track.get("confusion")
    if not labels or not isinstance(counts, list) or len(counts) != len(labels):
        return '<p class="note">No confusion matrix in this run.</p>'
    counts = [[int(v) if isinstance(v, (int, float)) else 0 for v in row] for row in counts]
    norm = []
    for row in counts:
        total = sum(row)
        norm.append([round(v / total, 6) if total else None for v in row])
    ticks = [_t(g) for g in labels]
    common = {"type": "heatmap", "x": ticks, "y": ticks, "xgap": 1, "ygap": 1, "showscale": False,
              "colorscale": [[0, "#f7fbff"], [0.25, "#c6dbef"], [0.5, "#6baed6"], [0.75, "#2171b5"], [1, "#08306b"]]}
    data = [
        dict(common, z=counts, name="counts", texttemplate="%{z}", visible=True,
             hovertemplate="true %{y}<br>predicted %{x}<br>%{z} tracks<extra></extra>", meta={"values": "counts"}),
        dict(common, z=norm, name="row-normalised", texttemplate="%{z:.0%}", zmin=0, zmax=1, visible=False,
             hovertemplate="true %{y}<br>predicted %{x}<br>%{z:.1%} of the row<extra></extra>",
             meta={"values": "row-normalised"}),
    ]
    n = len(labels)
    size = 10 if n > 12 else 11
    layout = _layout(
        max(300, 150 + 27 * n), margin={"l": 84, "r": 12, "t": 40, "b": 84}, showlegend=False,
        xaxis=_axis("predicted", tickangle=-45, showgrid=False, tickfont={"size": size}, constrain="domain"),
        yaxis=_axis("true", autorange="reversed", showgrid=False, tickfont={"size": size}),
        updatemenus=[_toggle(["counts", "row-normalised"], 2, 1)],
    )
    caption = (f"Track level, {_e(what)}: {_int(ev.get('n_tracks'))} tracks. Rows: true genre; columns: predicted; "
               "row-normalised: the share of each true genre (recall on the diagonal).")
    return figs.add(data, layout, caption=caption, run=run, kind="confusion")


def _per_genre(models: Sequence[Mapping], run: Mapping, figs: _Figures) -> str:
    """Per-genre precision, recall and F1.

    One model: bars grouped by metric. Several: a bar per model, one metric at a time (buttons).
    """
    found = [(m, _main_eval(m)) for m in models]
    found = [(m, f) for m, f in found if f and (f[2].get("track") or {}).get("per_genre")]
    if not found:
        return ""
    labels = []
    for _, (_, _, ev) in found:
        per = ev["track"]["per_genre"]
        labels += [g for g in (_labels(ev) or list(per)) if g in per and g not in labels]
    metrics = ("f1", "precision", "recall")
    names = {"f1": "F1", "precision": "precision", "recall": "recall"}
    data = []

    def values(ev, metric):
        per = ev["track"]["per_genre"]
        return [_num(per[g].get(metric)) if g in per else None for g in labels]

    def support(ev):
        per = ev["track"]["per_genre"]
        return [per[g].get("support") if g in per else None for g in labels]

    if len(found) == 1:
        model, (_, what, ev) = found[0]
        for metric in ("precision", "recall", "f1"):
            data.append({
                "type": "bar", "name": names[metric], "x": [_t(g) for g in labels], "y": values(ev, metric),
                "marker": {"color": METRIC_COLOURS[metric]}, "customdata": support(ev),
                "hovertemplate": f"%{{x}}<br>{names[metric]} %{{y:.2f}}<br>%{{customdata}} tracks<extra></extra>",
                "meta": {"model": model["name"], "metric": metric},
            })
        menus = []
        caption = f"{_e(model['name'])}, track level, {_e(what)} (hover for the number of tracks of each genre)."
    else:
        for metric in metrics:
            for i, (model, (_, what, ev)) in enumerate(found):
                data.append({
                    "type": "bar", "name": _t(model["name"]), "x": [_t(g) for g in labels], "y": values(ev, metric),
                    "visible": metric == "f1", "marker": {"color": _colour(GENRE_COLOURS, i)},
                    "customdata": support(ev), "legendgroup": _t(model["name"]),
                    "hovertemplate": (f"%{{x}} · {_t(model['name'])}<br>{names[metric]} %{{y:.2f}}<br>"
                                      "%{customdata} tracks<extra></extra>"),
                    "meta": {"model": model["name"], "metric": metric},
                })
        menus = [_toggle([names[m] for m in metrics], len(data), len(found), x=1.0,
                         extra=[{"yaxis.title.text": names[m]} for m in metrics])]
        whats = sorted({f[1] for _, f in found})
        caption = (f"Track level, {_e(' / '.join(whats))}; the buttons switch between F1, precision and recall "
                   "(hover for the number of tracks of each genre).")
    layout = _layout(330, barmode="group", bargap=0.22, bargroupgap=0.04, margin={"l": 64, "r": 24, "t": 40, "b": 64},
                     xaxis=_axis(None, tickangle=-30 if len(labels) > 8 else 0),
                     yaxis=_axis("F1" if menus else None, range=[0, 1.02], tickformat=".1f"),
                     legend={"orientation": "h", "x": 0, "y": 1.0, "yanchor": "bottom"},
                     updatemenus=menus)
    return figs.add(data, layout, caption=caption, run=run, kind="per-genre")


def _multilabel(model: Mapping, run: Mapping, figs: _Figures) -> str:
    """Per-genre F1 bars of a model of several genres per song, on its test songs, and its subset
    accuracy (a song is right when its genres above their thresholds are exactly its own) and mean
    average precision (ranking, threshold-free), with the number of songs they rest on."""
    ml = model["multilabel"]
    per = ml["per_genre"]
    labels = list(per)
    data = [{"type": "bar", "name": "F1", "x": [_t(g) for g in labels], "y": [per[g]["f1"] for g in labels],
             "marker": {"color": METRIC_COLOURS["f1"]}, "customdata": [per[g]["support"] for g in labels],
             "hovertemplate": "%{x}<br>F1 %{y:.2f}<br>%{customdata} test songs carry it<extra></extra>",
             "meta": {"model": model["name"], "metric": "f1"}}]
    layout = _layout(300, margin={"l": 64, "r": 24, "t": 24, "b": 64},
                     xaxis=_axis(None, tickangle=-30 if len(labels) > 8 else 0),
                     yaxis=_axis("F1", range=[0, 1.02], tickformat=".1f"))
    mean_ap, macro = ml.get("mean_average_precision"), ml.get("macro_f1")
    caption = (f"{_e(model['name'])}, test songs: subset accuracy <strong>{_pct(ml['subset_accuracy'])}</strong>"
               + (f", mean average precision <strong>{mean_ap:.3f}</strong>" if mean_ap is not None else "")
               + (f", macro-F1 {macro:.3f}" if macro is not None else "")
               + f" over {_int(ml['n_tracks'])} songs. Subset accuracy counts a song right when the genres above "
                 "their thresholds are exactly its own; hover a bar for how many test songs carry the genre.")
    return figs.add(data, layout, caption=caption, run=run, kind="multilabel")


def _reliability(model: Mapping, run: Mapping, figs: _Figures) -> str:
    """Reliability diagram of a model's track-level probabilities (Guo et al. 2017, fig. 1).

    Top: per bin of the top genre's probability, the share of tracks whose top genre is right
    (bars spanning the bin), their mean confidence (dots) and the diagonal of perfect
    calibration; bottom: how many tracks fall in each bin. Caption: the expected calibration error.
    """
    found = _main_eval(model)
    if found is None:
        return ""
    _, what, ev = found
    track = ev.get("track") or {}
    bins = track.get("reliability")
    if not bins:
        return ""
    centres = [round((b["low"] + b["high"]) / 2, 6) for b in bins]
    widths = [round(b["high"] - b["low"], 6) for b in bins]
    info = [[b["low"], b["high"], b["n"], b["confidence"]] for b in bins]
    data = [
        {"type": "bar", "name": "accuracy", "x": centres, "y": [b["accuracy"] for b in bins], "width": widths,
         "marker": {"color": SIDE_COLOURS["test"], "line": {"color": "#ffffff", "width": 1}}, "customdata": info,
         "hovertemplate": ("confidence %{customdata[0]:.2f}–%{customdata[1]:.2f}<br>accuracy %{y:.1%}<br>"
                           "mean confidence %{customdata[3]:.1%}<br>%{customdata[2]} tracks<extra></extra>"),
         "meta": {"series": "accuracy"}},
        {"type": "scatter", "mode": "markers", "name": "mean confidence", "x": [b["confidence"] for b in bins],
         "y": [b["accuracy"] for b in bins], "marker": {"color": "#e15759", "size": 7, "symbol": "diamond"},
         "hovertemplate": "mean confidence %{x:.1%}<br>accuracy %{y:.1%}<extra></extra>",
         "meta": {"series": "confidence"}},
        {"type": "scatter", "mode": "lines", "name": "perfect calibration", "x": [0, 1], "y": [0, 1],
         "line": {"color": "#9aa5b1", "width": 1.5, "dash": "dash"}, "hoverinfo": "skip",
         "meta": {"series": "diagonal"}},
        {"type": "bar", "name": "tracks per bin", "x": centres, "y": [b["n"] for b in bins], "width": widths,
         "xaxis": "x2", "yaxis": "y2", "marker": {"color": "#9fbfdf"}, "showlegend": False,
         "hovertemplate": "%{y} tracks<extra></extra>", "meta": {"series": "count"}},
    ]
    layout = _layout(
        380, margin={"l": 64, "r": 24, "t": 40, "b": 50}, bargap=0,
        xaxis=_axis(None, range=[0, 1], tickformat=".0%", anchor="y", showticklabels=False),
        yaxis=_axis("accuracy", domain=[0.3, 1], range=[0, 1.02], tickformat=".0%"),
        xaxis2=_axis("confidence (top genre's probability)", range=[0, 1], tickformat=".0%", anchor="y2",
                     matches="x"),
        yaxis2=_axis("tracks", domain=[0, 0.22], rangemode="tozero"),
    )
    n = sum(b["n"] for b in bins)
    ece = _num(track.get("ece"))
    window_ece = _num((ev.get("window") or {}).get("ece"))
    caption = (f"Track level, {_e(what)}: "
               + (f"expected calibration error <strong>{ece:.3f}</strong>" if ece is not None else "no ECE recorded")
               + f" over {_int(n)} tracks in {len(bins)} non-empty bins of equal width"
               + (f" (window level: {window_ece:.3f})" if window_ece is not None else "")
               + ". Bars: the share right in each bin of confidence; diamonds: the bin's mean confidence; "
                 "on the dashed diagonal a model's confidence equals its accuracy. Below: tracks per bin.")
    return figs.add(data, layout, caption=caption, run=run, kind="reliability")


def _curves(model: Mapping, run: Mapping, figs: _Figures) -> str:
    history = model.get("history")
    if not history or not history.get("epoch"):
        return ""
    epochs = history["epoch"]
    data = []
    for key, axis in (("loss", ("x", "y")), ("acc", ("x2", "y2"))):
        for side in ("train", "valid"):
            column = f"{side}_{key}"
            if column not in history:
                continue
            data.append({
                "type": "scatter", "mode": "lines+markers", "name": f"{side} {'loss' if key == 'loss' else 'accuracy'}",
                "x": epochs, "y": history[column], "xaxis": axis[0], "yaxis": axis[1],
                "line": {"color": CURVE_COLOURS[side], "width": 2, "dash": "solid" if key == "loss" else "dash"},
                "marker": {"size": 5, "color": CURVE_COLOURS[side]},
                "hovertemplate": f"epoch %{{x}}<br>{side} {key} %{{y:.4f}}<extra></extra>",
            })
    best = _num(model.get("params", {}).get("best_epoch"))
    shapes = []
    if best is not None:
        for xref in ("x", "x2"):
            shapes.append({"type": "line", "xref": xref, "x0": best, "x1": best, "yref": "paper", "y0": 0, "y1": 1,
                           "line": {"color": "#9aa5b1", "width": 1, "dash": "dot"}})
    layout = _layout(
        320, shapes=shapes, margin={"l": 64, "r": 24, "t": 40, "b": 50},
        xaxis=_axis("epoch", domain=[0, 0.46], dtick=max(1, len(epochs) // 10)),
        yaxis=_axis("cross-entropy loss"),
        xaxis2=_axis("epoch", domain=[0.56, 1], dtick=max(1, len(epochs) // 10)),
        yaxis2=_axis("accuracy", anchor="x2", range=[0, 1.02], tickformat=".0%"),
    )
    caption = ("Training: augmented crops; validation: loss of the validation windows, accuracy per track."
               + (f" Dotted line: best epoch ({int(best)}), whose weights were kept." if best is not None else ""))
    return figs.add(data, layout, caption=caption, run=run, kind="curves")


def _overview_chart(runs: Sequence[Mapping], figs: _Figures) -> str:
    rows = []
    for run in runs:
        for m in run["models"]:
            head = _headline(m)
            if head is None or head[1] is None:
                continue
            rows.append((run, m, head))
    if len(rows) < 2:
        return ""
    data = []
    for leaky in (False, True):
        part = [(r, m, h) for r, m, h in rows if bool(r["leaky"]) == leaky]
        if not part:
            continue
        labels = [f"{_t(r['name'])} · {_t(m['name'])}" for r, m, _ in part]
        acc = [h[1] for _, _, h in part]
        data.append({
            "type": "bar", "orientation": "h", "name": "leaky protocol (optimistic)" if leaky else "leak-free split",
            "y": labels, "x": acc,
            "error_x": dict(_error_bars(acc, [h[2] for _, _, h in part]), width=4),
            "marker": {"color": LEAKY_COLOUR if leaky else SIDE_COLOURS["test"]},
            "customdata": [[h[0], h[3]] for _, _, h in part],
            "hovertemplate": "%{y}<br>%{customdata[0]}: %{x:.1%}<br>%{customdata[1]} tracks<extra></extra>",
            "meta": {"leaky": leaky},
        })
    order = [f"{_t(r['name'])} · {_t(m['name'])}" for r, m, _ in rows]
    layout = _layout(110 + 28 * len(rows), barmode="overlay",
                     margin={"l": 20, "r": 24, "t": 30, "b": 46},
                     yaxis=_axis(None, categoryorder="array", categoryarray=order[::-1]),
                     xaxis=_axis("track-level accuracy (test set; k-fold: pooled out-of-fold)", range=[0, 1.02],
                                 tickformat=".0%"))
    leaky_runs = [r for r in runs if r["leaky"]]
    caption = "Whiskers: 95% bootstrap intervals over tracks."
    html_out = figs.add(data, layout, caption=caption, kind="overview")
    if leaky_runs:
        notes = "".join(f'<div class="warning">{_leaky_badge(r)} <strong>{_e(r["name"])}</strong>: '
                        f'{_e(r["warning"])}</div>' for r in leaky_runs)
        html_out = notes + html_out
    return html_out


def _scatter(item: Mapping, figs: _Figures) -> str:
    pts = item["points"]
    n = len(pts["x"])
    if not n:
        return '<p class="note">No PCA points in this file.</p>'
    genres = item["table"]["genres"] or sorted(set(pts["genre"]))
    genres = genres + sorted(set(pts["genre"]) - set(genres))
    clusters = sorted(set(pts["cluster"]))
    hover = [f"{_t(t)}<br>genre {_t(g)} · cluster {c}" for t, g, c in zip(pts["track"], pts["genre"], pts["cluster"])]

    def trace(name, members, colour, visible, group):
        return {"type": "scatter3d", "mode": "markers", "name": name, "legendgroup": group, "visible": visible,
                "x": [pts["x"][i] for i in members], "y": [pts["y"][i] for i in members],
                "z": [pts["z"][i] for i in members], "text": [hover[i] for i in members],
                "hovertemplate": "%{text}<extra></extra>",
                "marker": {"size": 2.5, "color": colour, "opacity": 0.85, "line": {"width": 0}},
                "meta": {"colour_by": group}}

    data = []
    for i, g in enumerate(genres):
        members = [j for j in range(n) if pts["genre"][j] == g]
        if members:
            data.append(trace(_t(g), members, _colour(GENRE_COLOURS, i), True, "genre"))
    n_genre = len(data)
    for i, c in enumerate(clusters):
        members = [j for j in range(n) if pts["cluster"][j] == c]
        data.append(trace(f"cluster {c}", members, _colour(CLUSTER_COLOURS, i), False, "cluster"))
    n_cluster = len(data) - n_genre
    var = item.get("explained_variance") or []
    titles = [f"PC{i + 1}" + (f" ({100 * var[i]:.1f}%)" if i < len(var) and var[i] is not None else "")
              for i in range(3)]
    axis = lambda t: {"title": {"text": t}, "backgroundcolor": "#fbfcfd", "gridcolor": GRID,  # noqa: E731
                      "showbackground": True, "zerolinecolor": "#cbd2d9"}
    layout = _layout(
        600, margin={"l": 0, "r": 0, "t": 44, "b": 0},
        legend={"title": {"text": "genre"}, "itemsizing": "constant", "x": 1, "xanchor": "right", "y": 0.95},
        scene={"xaxis": axis(titles[0]), "yaxis": axis(titles[1]), "zaxis": axis(titles[2]),
               "aspectmode": "manual", "aspectratio": {"x": 1, "y": 1, "z": 0.7},
               "camera": {"eye": {"x": 1.2, "y": 1.2, "z": 0.62}, "center": {"x": 0, "y": 0, "z": -0.16}}},
        updatemenus=[{
            "type": "buttons", "direction": "right", "x": 0, "xanchor": "left", "y": 1.06, "yanchor": "bottom",
            "showactive": True, "pad": {"r": 4, "t": 0}, "bgcolor": "#f0f3f6", "bordercolor": "#cbd2d9",
            "font": {"size": 12},
            "buttons": [
                {"label": "Colour by genre", "method": "update",
                 "args": [{"visible": [True] * n_genre + [False] * n_cluster}, {"legend.title.text": "genre"}]},
                {"label": "Colour by k-means cluster", "method": "update",
                 "args": [{"visible": [False] * n_genre + [True] * n_cluster},
                          {"legend.title.text": "k-means cluster"}]},
            ],
        }],
    )
    caption = (f"{_int(n)} rows, first three principal components of the standardised features "
               "(drag to turn, scroll to zoom; the buttons switch the colouring).")
    return figs.add(data, layout, caption=caption, kind="pca")


# --- HTML pieces -------------------------------------------------------------------------------------------
def _facts(pairs: Iterable[tuple[str, str]]) -> str:
    return '<dl class="facts">' + "".join(f"<dt>{_e(k)}</dt><dd>{v}</dd>" for k, v in pairs if v) + "</dl>"


def _sizes_text(split: Mapping) -> str:
    sizes = split.get("sizes") or {}
    if split.get("folds"):
        tests = sizes.get("test")
        if isinstance(tests, list):
            return f"{split['folds']} folds; test tracks per fold: {_e(', '.join(str(t) for t in tests))}"
        return f"{_e(split['folds'])} folds"
    parts = []
    for side in ("train", "valid", "test"):
        s = sizes.get(side)
        if isinstance(s, Mapping):
            windows = s.get("windows")
            tracks = s.get("tracks")
            extra = f" ({_int(windows)} windows)" if windows is not None and windows != tracks else ""
            parts.append(f"{side} {_int(tracks)} tracks{extra}")
    return _e("; ".join(parts)) if parts else ""


def _data_text(data: Mapping) -> str:
    bits = []
    if data.get("n_rows") is not None:
        bits.append(f"{_int(data['n_rows'])} rows")
    if data.get("n_tracks") is not None:
        bits.append(f"{_int(data['n_tracks'])} tracks")
    if data.get("n_features") is not None:
        bits.append(f"{_int(data['n_features'])} features")
    fs = data.get("feature_set")
    if fs:
        window = data.get("window")
        bits.append(f"feature set {fs}" + (f", {window:g}-s windows" if isinstance(window, (int, float)) else ""))
    return _e(", ".join(bits))


def _metrics_table(run: Mapping) -> str:
    single = [m for m in run["models"] if m.get("valid") or m.get("test")]
    folded = [m for m in run["models"] if m.get("cv")]
    out = []
    if single:
        rows = []
        for m in single:
            for side in ("valid", "test"):
                ev = m.get(side)
                if not ev:
                    continue
                tr, wi = ev.get("track") or {}, ev.get("window") or {}
                star = ' <span class="badge selected" title="selected on validation accuracy">selected</span>' \
                    if m.get("selected") and side == "valid" else ""
                rows.append(
                    f'<tr data-model="{_e(m["name"])}" data-side="{side}"><td>{_e(m["name"])}{star}</td>'
                    f'<td class="text">{side}</td><td>{_int(ev.get("n_tracks"))}</td>'
                    f'<td data-value="{_e(tr.get("accuracy"))}">'
                    f'{_pct(tr.get("accuracy"))}{_ci(tr.get("accuracy_ci"))}</td>'
                    f'<td>{_pct(tr.get("macro_f1"))}{_ci(tr.get("macro_f1_ci"))}</td>'
                    f'<td>{_pct(tr.get("balanced_accuracy"))}</td><td>{_int(ev.get("n_windows"))}</td>'
                    f'<td>{_pct(wi.get("accuracy"))}{_ci(wi.get("accuracy_ci"))}</td></tr>')
        out.append('<div class="scroll"><table class="grid metrics"><thead><tr><th>model</th><th class="text">side</th>'
                   "<th>tracks</th><th>track accuracy [95% CI]</th><th>track macro-F1 [95% CI]</th>"
                   "<th>balanced accuracy</th><th>windows</th><th>window accuracy [95% CI]</th></tr></thead><tbody>"
                   + "".join(rows) + "</tbody></table></div>")
    if folded:
        rows = []
        for m in folded:
            cv = m["cv"]
            pooled = cv.get("pooled") or {}
            tr = pooled.get("track") or {}
            fold_text = ", ".join(_pct(a) for a in cv.get("fold_track_accuracy", []))
            mean, std = _num(cv.get("mean_track_accuracy")), _num(cv.get("std_track_accuracy"))
            rows.append(
                f'<tr data-model="{_e(m["name"])}" data-side="cv"><td>{_e(m["name"])}</td>'
                f'<td>{_e(cv.get("folds"))}</td>'
                f'<td data-value="{_e(mean)}">{_pct(mean)} ± {_pct(std)}</td><td class="text">{_e(fold_text)}</td>'
                f'<td>{_int(pooled.get("n_tracks"))}</td>'
                f'<td data-value="{_e(tr.get("accuracy"))}">{_pct(tr.get("accuracy"))}{_ci(tr.get("accuracy_ci"))}</td>'
                f'<td>{_pct(tr.get("macro_f1"))}{_ci(tr.get("macro_f1_ci"))}</td></tr>')
        out.append('<div class="scroll"><table class="grid metrics"><thead><tr><th>model</th><th>folds</th>'
                   '<th>fold mean ± std</th><th class="text">single folds</th><th>tracks</th>'
                   "<th>pooled track accuracy [95% CI]</th><th>pooled macro-F1 [95% CI]</th></tr></thead><tbody>"
                   + "".join(rows) + "</tbody></table></div>")
    return "".join(out)


def _per_genre_table(model: Mapping) -> str:
    found = _main_eval(model)
    if found is None:
        return ""
    _, what, ev = found
    per = (ev.get("track") or {}).get("per_genre") or {}
    if not per:
        return ""
    def f3(x):
        return "–" if _num(x) is None else f"{x:.3f}"

    rows = "".join(
        f"<tr><td>{_e(g)}</td><td>{f3(p.get('precision'))}</td><td>{f3(p.get('recall'))}</td>"
        f"<td>{f3(p.get('f1'))}</td><td>{_int(p.get('support'))}</td></tr>"
        for g, p in per.items() if isinstance(p, Mapping))
    return (f"<details><summary>Per-genre table ({_e(what)})</summary><table class=\"grid\"><thead><tr><th>genre</th>"
            "<th>precision</th><th>recall</th><th>F1</th><th>tracks</th></tr></thead><tbody>"
            + rows + "</tbody></table></details>")


def _params_text(params: Mapping) -> str:
    shown = []
    for k, v in params.items():
        if isinstance(v, Mapping):
            continue
        text = f"{v:.4g}" if isinstance(v, float) else str(v)
        shown.append(f"{k}={text}")
    return ", ".join(shown)


def _run_section(run: Mapping, figs: _Figures) -> str:
    leaky = bool(run["leaky"])
    badge = _leaky_badge(run) if leaky else ""
    kind = run["kind"]
    head = (f'<h2>{_e(run["name"])} <span class="badge kind-{_e(kind)}">{_e("CNN" if kind == "cnn" else kind)}</span>'
            f"{badge}</h2>")
    klass = "card run leaky" if leaky else "card run"
    parts = [f'<section class="{klass}" id="{_e(run["id"])}" data-leaky="{str(leaky).lower()}">', head]
    if leaky:
        parts.append(f'<div class="warning">{badge} <strong>Leaky protocol.</strong> {_e(run["warning"])}</div>')
    data, split = run["data"], run["split"]
    selected = ""
    if run.get("selected"):
        by = _e(run.get("selected_by") or "validation")
        selected = f'{_e(run["selected"])} <span class="note">(by {by})</span>'
    parts.append(_facts([
        ("Data", _e(data.get("source"))),
        ("Size", _data_text(data)),
        ("Split", (f"<strong>{_e(split.get('name'))}</strong>" + (f" — {_e(split.get('description'))}"
                                                                   if split.get("description") else ""))
         if split.get("name") else ""),
        ("Split sizes", _sizes_text(split)),
        ("Selected model", selected),
        ("Command", f"<code>{_e(run['command'])}</code>" if run.get("command") else ""),
        ("Recorded", _e(run["date"]) if run.get("date") else ""),
        ("Folder", f"<code>{_e(run['path'])}</code>"),
    ]))
    comparison = _comparison_single(run, figs) + _comparison_cv(run, figs)
    several = [(m, _multilabel(m, run, figs)) for m in run["models"] if m.get("multilabel")]
    if comparison:
        parts.append(f"<h3>Model comparison</h3>{comparison}{_metrics_table(run)}")
    elif not several:
        parts.append('<p class="note">This run holds no evaluated models yet.</p>')
    if several:
        parts.append("<h3>Several genres per song: per-genre F1</h3>")
        for m, fig in several:
            parts.append(f'<div class="model-block" data-model="{_e(m["name"])}"><h4>{_e(m["name"])}</h4>'
                         + fig + "</div>")
    curves = [(m, _curves(m, run, figs)) for m in run["models"]]
    curves = [(m, c) for m, c in curves if c]
    if curves:
        parts.append("<h3>Training and validation curves</h3>")
        for m, c in curves:
            p = m.get("params", {})
            info = _params_text({k: p[k] for k in ("arch", "n_parameters", "epochs_run", "best_epoch", "lr",
                                                   "batch_size") if k in p})
            parts.append(f"<h4>{_e(m['name'])}</h4>" + (f'<p class="note">{_e(info)}</p>' if info else "") + c)
    detail = [m for m in run["models"] if _main_eval(m)]
    if detail:
        parts.append("<h3>Per-genre precision, recall and F1</h3>" + _per_genre(detail, run, figs))
        parts.append("<h3>Confusion matrices</h3><div class=\"grid2\">")
        for m in detail:
            side, what, ev = _main_eval(m)
            star = ' <span class="badge selected">selected</span>' if m.get("selected") else ""
            params = _params_text(m.get("params") or {}) if m["kind"] != "cnn" else ""
            parts.append(f'<div class="model-block" data-model="{_e(m["name"])}"><h4>{_e(m["name"])}{star}'
                         f'<span class="note">{_e(what)}, {_int(ev.get("n_tracks"))} tracks</span></h4>'
                         + (f'<p class="note">parameters: {_e(params)}</p>' if params else "")
                         + _confusion(m, run, figs) + _per_genre_table(m) + "</div>")
        parts.append("</div>")
        calibrated = [(m, _reliability(m, run, figs)) for m in detail]
        calibrated = [(m, fig) for m, fig in calibrated if fig]
        if calibrated:
            parts.append("<h3>Calibration: reliability diagrams</h3><div class=\"grid2\">")
            for m, fig in calibrated:
                parts.append(f'<div class="model-block" data-model="{_e(m["name"])}"><h4>{_e(m["name"])}</h4>'
                             + fig + "</div>")
            parts.append("</div>")
    parts.append("</section>")
    return "".join(parts)


def _cluster_section(item: Mapping, figs: _Figures) -> str:
    def stat(label, value):
        return f'<div class="tile"><div class="v">{value}</div><div class="k">{_e(label)}</div></div>'

    fmt = lambda x: "–" if _num(x) is None else f"{x:.3f}"  # noqa: E731
    tiles = ('<div class="tiles">' + stat("adjusted Rand index", fmt(item.get("ari")))
             + stat("normalised mutual information", fmt(item.get("nmi"))) + stat("purity", fmt(item.get("purity")))
             + stat("clusters (k)", _int(item.get("k"))) + stat("rows", _int(item.get("n_rows")))
             + stat("tracks", _int(item.get("n_tracks"))) + "</div>")
    table = item["table"]
    genres, counts = table["genres"], table["counts"]
    peak = max((v for row in counts for v in row), default=0) or 1
    head = "".join(f"<th>{_e(g)}</th>" for g in genres)
    body = []
    for c, row in zip(table["clusters"], counts):
        cells = "".join(
            f'<td style="background:rgba(33,113,181,{0.06 + 0.74 * v / peak:.3f});'
            f'color:{"#ffffff" if v / peak > 0.55 else INK}">{v}</td>' if v else "<td>·</td>"
            for v in row)
        total = sum(row)
        top = genres[row.index(max(row))] if total else "–"
        body.append(f"<tr><td>cluster {_e(c)}</td>{cells}<td><strong>{total}</strong></td>"
                    f'<td class="text">{_e(top)} ({_pct(max(row) / total if total else None, 0)})</td></tr>')
    totals = [sum(row[j] for row in counts) for j in range(len(genres))]
    body.append("<tr><td><strong>total</strong></td>" + "".join(f"<td><strong>{t}</strong></td>" for t in totals)
                + f"<td><strong>{sum(totals)}</strong></td><td></td></tr>")
    table_html = (f'<div class="scroll"><table class="grid clusters"><thead><tr><th>cluster \\ genre</th>{head}'
                  f'<th>total</th><th class="text">majority genre</th></tr></thead><tbody>{"".join(body)}</tbody>'
                  "</table></div>")
    return (f'<section class="card cluster" id="{_e(item["id"])}"><h2>Clusters: {_e(item["name"])}</h2>'
            + _facts([("Data", _e(item.get("source"))), ("Method", _e(item.get("method"))),
                      ("File", f"<code>{_e(item['path'])}</code>")])
            + tiles + "<h3>PCA map (3-D)</h3>" + _scatter(item, figs)
            + "<h3>Clusters × genres</h3>"
            + '<p class="note">Rows of the table in each k-means cluster, by true genre. ARI and NMI: 0 = chance '
              "agreement with the genres, 1 = the same partition; purity: share of rows in their cluster's "
              "majority genre.</p>" + table_html + "</section>")


def _overview(report: Mapping, figs: _Figures) -> str:
    runs = report["runs"]
    if len(runs) < 2:
        return ""
    rows = []
    for run in runs:
        heads = []
        for m in run["models"]:
            h = _headline(m)
            if h and h[1] is not None:
                heads.append(f"{_e(m['name'])} {_pct(h[1])}")
        badge = _leaky_badge(run) if run["leaky"] else ""
        split = run["split"]
        rows.append(
            f'<tr class="{"leaky" if run["leaky"] else ""}"><td><a href="#{_e(run["id"])}">{_e(run["name"])}</a></td>'
            f'<td class="text">{_e("CNN" if run["kind"] == "cnn" else run["kind"])}</td>'
            f'<td class="text wrap">{_e(split.get("name"))} {badge}</td>'
            f'<td>{_int(run["data"].get("n_tracks"))}</td>'
            f'<td class="text wrap">{"; ".join(heads) or "–"}</td></tr>')
    table = ('<div class="scroll"><table class="grid overview"><thead><tr><th>run</th><th class="text">kind</th>'
             '<th class="text">split</th><th>tracks</th><th class="text">track accuracy (test; k-fold: pooled)</th>'
             "</tr></thead><tbody>" + "".join(rows) + "</tbody></table></div>")
    chart = _overview_chart(runs, figs)
    return ('<section class="card" id="overview"><h2>Overview</h2>'
            '<p class="note">Models are chosen on validation data only; test figures are reported once. '
            "Every interval is a 95% bootstrap interval in which whole tracks are resampled.</p>"
            + table + chart + "</section>")


# --- plotly.js --------------------------------------------------------------------------------------------
@lru_cache(maxsize=1)
def plotly_js() -> str:
    """The text of ``plotly.min.js`` from the installed ``plotly`` package (made safe for inline use)."""
    try:
        path = resources.files("plotly") / "package_data" / "plotly.min.js"
        text = path.read_text(encoding="utf-8")
    except ModuleNotFoundError:
        raise ReportError("the report needs plotly.js from the plotly package: "
                          "pip install 'genrekit[report]'") from None
    except (FileNotFoundError, OSError) as exc:
        raise ReportError(f"plotly.min.js not found in the installed plotly package ({exc})") from None
    # Inside <script>, only "</script" could end the element early; "<\/" means the same in JS.
    return text.replace("</script", "<\\/script").replace("</SCRIPT", "<\\/SCRIPT")


def plotly_js_name() -> str:
    """A versioned file name for serving :func:`plotly_js` with long caching."""
    digest = hashlib.sha256(plotly_js().encode("utf-8")).hexdigest()[:16]
    return f"plotly-{digest}.min.js"


def boot_script_hash() -> str:
    """CSP source (``'sha256-...'``) allowing :data:`BOOT_SCRIPT` and nothing else inline."""
    digest = hashlib.sha256(BOOT_SCRIPT.encode("utf-8")).digest()
    return "'sha256-" + base64.b64encode(digest).decode("ascii") + "'"


# --- the page ---------------------------------------------------------------------------------------------
def page_shell(title: str, body: str, *, subtitle: str = "", nav: str = "", head_extra: str = "") -> str:
    """The page frame (header, style sheet) shared by reports and the server's run list."""
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            "<link rel=\"icon\" href=\"data:,\">\n"
            "<meta name=\"generator\" content=\"genrekit " + _e(__version__) + "\">\n"
            f"<title>{_e(title)}</title>\n<style>{STYLE}</style>\n{head_extra}</head>\n<body>\n"
            f'<header class="top"><div class="wrap"><h1>{_e(title)}</h1>'
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
    figs = _Figures()
    sections = [_overview(report, figs)]
    sections += [_run_section(run, figs) for run in report["runs"]]
    sections += [_cluster_section(item, figs) for item in report["clusters"]]
    nav = []
    if back_link:
        nav.append(f'<a href="{_e(back_link[0])}">{_e(back_link[1])}</a>')
    if len(report["runs"]) > 1:
        nav.append('<a href="#overview">overview</a>')
    nav += [f'<a href="#{_e(r["id"])}">{_e(r["name"])}{" ⚠" if r["leaky"] else ""}</a>' for r in report["runs"]]
    nav += [f'<a href="#{_e(c["id"])}">clusters: {_e(c["name"])}</a>' for c in report["clusters"]]
    n_runs, n_cl = len(report["runs"]), len(report["clusters"])
    subtitle = ", ".join(x for x in (f"{n_runs} run{'s' * (n_runs != 1)}" if n_runs else "",
                                     f"{n_cl} clustering{'s' * (n_cl != 1)}" if n_cl else "") if x)
    footer = ('<footer class="wrap">Made with genrekit ' + _e(__version__) + " and plotly.js. "
              "Accuracy is reported per track (a track's prediction: the mean of its windows' probabilities) unless "
              "marked window; intervals are 95% bootstrap intervals over tracks.</footer>\n")
    if plotly_src is None:
        plotly_tag = f"<script>{plotly_js()}</script>\n"
    else:
        plotly_tag = f'<script src="{_e(plotly_src)}"></script>\n'
    return (page_shell(report["title"], '<div id="plot-status" hidden></div>' + "".join(sections),
                       subtitle=_e(subtitle), nav="".join(nav))
            + footer
            + '<script type="application/json" id="genrekit-report">' + _json_for_script(_model_for_embedding(report))
            + "</script>\n"
            + '<script type="application/json" id="genrekit-figures">' + _json_for_script(figs.items) + "</script>\n"
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
