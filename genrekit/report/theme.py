"""The report's look: its font stack, the colours of its charts and its style sheet.

One place for both sides of the page: the style sheet (:data:`STYLE`) and the plotly charts
(:mod:`genrekit.report.figures.layout`) use the same font and colours. Genres and k-means
clusters get palettes unlike each other, so that the two colourings of a cluster map are
not confused; red marks a leaky protocol everywhere.
"""

from __future__ import annotations

__all__ = ["FONT", "GENRE_COLOURS", "CLUSTER_COLOURS", "SIDE_COLOURS", "METRIC_COLOURS", "CURVE_COLOURS",
           "LEAKY_COLOUR", "INK", "MUTED", "GRID", "STYLE"]


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

#: The page's style sheet (also the server's run list, :func:`genrekit.report.page.page_shell`).
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
