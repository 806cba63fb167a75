"""Confusion matrices: true genre by predicted genre, as counts or row-normalised (recall on the diagonal)."""

from __future__ import annotations

from collections.abc import Mapping

from genrekit.report.evaluations import genre_labels, main_evaluation
from genrekit.report.figures.collector import Figures
from genrekit.report.figures.layout import plot_axis, plot_layout, toggle_buttons
from genrekit.report.markup import count_text, esc, plotly_text

__all__ = ["confusion_matrix"]


def confusion_matrix(model: Mapping, run: Mapping, figs: Figures) -> str:
    """The track-level confusion matrix of a model's main evaluation (buttons: counts, row-normalised)."""
    found = main_evaluation(model)
    if found is None:
        return ""
    side, what, ev = found
    track = ev.get("track") or {}
    labels = genre_labels(ev)
    counts = track.get("confusion")
    if not labels or not isinstance(counts, list) or len(counts) != len(labels):
        return '<p class="note">No confusion matrix in this run.</p>'
    counts = [[int(v) if isinstance(v, (int, float)) else 0 for v in row] for row in counts]
    norm = []
    for row in counts:
        total = sum(row)
        norm.append([round(v / total, 6) if total else None for v in row])
    ticks = [plotly_text(g) for g in labels]
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
    layout = plot_layout(
        max(300, 150 + 27 * n), margin={"l": 84, "r": 12, "t": 40, "b": 84}, showlegend=False,
        xaxis=plot_axis("predicted", tickangle=-45, showgrid=False, tickfont={"size": size}, constrain="domain"),
        yaxis=plot_axis("true", autorange="reversed", showgrid=False, tickfont={"size": size}),
        updatemenus=[toggle_buttons(["counts", "row-normalised"], 2, 1)],
    )
    caption = (f"Track level, {esc(what)}: {count_text(ev.get('n_tracks'))} tracks. "
               "Rows: true genre; columns: predicted; "
               "row-normalised: the share of each true genre (recall on the diagonal).")
    return figs.add(data, layout, caption=caption, run=run, kind="confusion")
