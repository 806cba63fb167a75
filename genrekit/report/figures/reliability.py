"""Reliability diagrams: how often a model's top genre is right at each level of its confidence.

After C. Guo, G. Pleiss, Y. Sun, K. Q. Weinberger, "On calibration of modern neural
networks", ICML 2017 (fig. 1); the bins and the expected calibration error come from
``results.json`` (:mod:`genrekit.evaluation.calibration`).
"""

from __future__ import annotations

from collections.abc import Mapping

from genrekit.report.evaluations import main_evaluation
from genrekit.report.figures.collector import Figures
from genrekit.report.figures.layout import plot_axis, plot_layout
from genrekit.report.markup import count_text, esc, finite
from genrekit.report.theme import SIDE_COLOURS

__all__ = ["reliability_diagram"]


def reliability_diagram(model: Mapping, run: Mapping, figs: Figures) -> str:
    """Reliability diagram of a model's track-level probabilities (Guo et al. 2017, fig. 1).

    Top: per bin of the top genre's probability, the share of tracks whose top genre is right
    (bars spanning the bin), their mean confidence (dots) and the diagonal of perfect
    calibration; bottom: how many tracks fall in each bin. Caption: the expected calibration error.
    """
    found = main_evaluation(model)
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
    layout = plot_layout(
        380, margin={"l": 64, "r": 24, "t": 40, "b": 50}, bargap=0,
        xaxis=plot_axis(None, range=[0, 1], tickformat=".0%", anchor="y", showticklabels=False),
        yaxis=plot_axis("accuracy", domain=[0.3, 1], range=[0, 1.02], tickformat=".0%"),
        xaxis2=plot_axis("confidence (top genre's probability)", range=[0, 1], tickformat=".0%", anchor="y2",
                         matches="x"),
        yaxis2=plot_axis("tracks", domain=[0, 0.22], rangemode="tozero"),
    )
    n = sum(b["n"] for b in bins)
    ece = finite(track.get("ece"))
    window_ece = finite((ev.get("window") or {}).get("ece"))
    caption = (f"Track level, {esc(what)}: "
               + (f"expected calibration error <strong>{ece:.3f}</strong>" if ece is not None else "no ECE recorded")
               + f" over {count_text(n)} tracks in {len(bins)} non-empty bins of equal width"
               + (f" (window level: {window_ece:.3f})" if window_ece is not None else "")
               + ". Bars: the share right in each bin of confidence; diamonds: the bin's mean confidence; "
                 "on the dashed diagonal a model's confidence equals its accuracy. Below: tracks per bin.")
    return figs.add(data, layout, caption=caption, run=run, kind="reliability")
