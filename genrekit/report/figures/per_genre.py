"""Per-genre scores: precision, recall and F1 by genre (bars and a table), and F1 of several-genre models.

Scores are track level, on a model's main evaluation
(:func:`genrekit.report.evaluations.main_evaluation`); hovering a bar gives the number of
tracks of the genre, which a score rests on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from genrekit.report.evaluations import genre_labels, main_evaluation
from genrekit.report.figures.collector import Figures
from genrekit.report.figures.layout import cycled, plot_axis, plot_layout, toggle_buttons
from genrekit.report.markup import count_text, esc, finite, percent, plotly_text
from genrekit.report.theme import GENRE_COLOURS, METRIC_COLOURS

__all__ = ["per_genre_chart", "per_genre_table", "multilabel_chart"]


def per_genre_chart(models: Sequence[Mapping], run: Mapping, figs: Figures) -> str:
    """Per-genre precision, recall and F1.

    One model: bars grouped by metric. Several: a bar per model, one metric at a time (buttons).
    """
    found = [(m, main_evaluation(m)) for m in models]
    found = [(m, f) for m, f in found if f and (f[2].get("track") or {}).get("per_genre")]
    if not found:
        return ""
    labels = []
    for _, (_, _, ev) in found:
        per = ev["track"]["per_genre"]
        labels += [g for g in (genre_labels(ev) or list(per)) if g in per and g not in labels]
    metrics = ("f1", "precision", "recall")
    names = {"f1": "F1", "precision": "precision", "recall": "recall"}
    data = []

    def values(ev, metric):
        per = ev["track"]["per_genre"]
        return [finite(per[g].get(metric)) if g in per else None for g in labels]

    def support(ev):
        per = ev["track"]["per_genre"]
        return [per[g].get("support") if g in per else None for g in labels]

    if len(found) == 1:
        model, (_, what, ev) = found[0]
        for metric in ("precision", "recall", "f1"):
            data.append({
                "type": "bar", "name": names[metric], "x": [plotly_text(g) for g in labels], "y": values(ev, metric),
                "marker": {"color": METRIC_COLOURS[metric]}, "customdata": support(ev),
                "hovertemplate": f"%{{x}}<br>{names[metric]} %{{y:.2f}}<br>%{{customdata}} tracks<extra></extra>",
                "meta": {"model": model["name"], "metric": metric},
            })
        menus = []
        caption = f"{esc(model['name'])}, track level, {esc(what)} (hover for the number of tracks of each genre)."
    else:
        for metric in metrics:
            for i, (model, (_, what, ev)) in enumerate(found):
                data.append({
                    "type": "bar", "name": plotly_text(model["name"]), "x": [plotly_text(g) for g in labels],
                    "y": values(ev, metric),
                    "visible": metric == "f1", "marker": {"color": cycled(GENRE_COLOURS, i)},
                    "customdata": support(ev), "legendgroup": plotly_text(model["name"]),
                    "hovertemplate": (f"%{{x}} · {plotly_text(model['name'])}<br>{names[metric]} %{{y:.2f}}<br>"
                                      "%{customdata} tracks<extra></extra>"),
                    "meta": {"model": model["name"], "metric": metric},
                })
        menus = [toggle_buttons([names[m] for m in metrics], len(data), len(found), x=1.0,
                                extra=[{"yaxis.title.text": names[m]} for m in metrics])]
        whats = sorted({f[1] for _, f in found})
        caption = (f"Track level, {esc(' / '.join(whats))}; the buttons switch between F1, precision and recall "
                   "(hover for the number of tracks of each genre).")
    layout = plot_layout(330, barmode="group", bargap=0.22, bargroupgap=0.04,
                         margin={"l": 64, "r": 24, "t": 40, "b": 64},
                         xaxis=plot_axis(None, tickangle=-30 if len(labels) > 8 else 0),
                         yaxis=plot_axis("F1" if menus else None, range=[0, 1.02], tickformat=".1f"),
                         legend={"orientation": "h", "x": 0, "y": 1.0, "yanchor": "bottom"},
                         updatemenus=menus)
    return figs.add(data, layout, caption=caption, run=run, kind="per-genre")


def multilabel_chart(model: Mapping, run: Mapping, figs: Figures) -> str:
    """Per-genre F1 bars of a model of several genres per song, on its test songs, and its subset
    accuracy (a song is right when its genres above their thresholds are exactly its own) and mean
    average precision (ranking, threshold-free), with the number of songs they rest on."""
    ml = model["multilabel"]
    per = ml["per_genre"]
    labels = list(per)
    data = [{"type": "bar", "name": "F1", "x": [plotly_text(g) for g in labels], "y": [per[g]["f1"] for g in labels],
             "marker": {"color": METRIC_COLOURS["f1"]}, "customdata": [per[g]["support"] for g in labels],
             "hovertemplate": "%{x}<br>F1 %{y:.2f}<br>%{customdata} test songs carry it<extra></extra>",
             "meta": {"model": model["name"], "metric": "f1"}}]
    layout = plot_layout(300, margin={"l": 64, "r": 24, "t": 24, "b": 64},
                         xaxis=plot_axis(None, tickangle=-30 if len(labels) > 8 else 0),
                         yaxis=plot_axis("F1", range=[0, 1.02], tickformat=".1f"))
    mean_ap, macro = ml.get("mean_average_precision"), ml.get("macro_f1")
    caption = (f"{esc(model['name'])}, test songs: subset accuracy <strong>{percent(ml['subset_accuracy'])}</strong>"
               + (f", mean average precision <strong>{mean_ap:.3f}</strong>" if mean_ap is not None else "")
               + (f", macro-F1 {macro:.3f}" if macro is not None else "")
               + f" over {count_text(ml['n_tracks'])} songs. Subset accuracy counts a song right when the genres above "
                 "their thresholds are exactly its own; hover a bar for how many test songs carry the genre.")
    return figs.add(data, layout, caption=caption, run=run, kind="multilabel")


def per_genre_table(model: Mapping) -> str:
    """A folded table of a model's per-genre precision, recall, F1 and tracks."""
    found = main_evaluation(model)
    if found is None:
        return ""
    _, what, ev = found
    per = (ev.get("track") or {}).get("per_genre") or {}
    if not per:
        return ""
    def f3(x):
        return "–" if finite(x) is None else f"{x:.3f}"

    rows = "".join(
        f"<tr><td>{esc(g)}</td><td>{f3(p.get('precision'))}</td><td>{f3(p.get('recall'))}</td>"
        f"<td>{f3(p.get('f1'))}</td><td>{count_text(p.get('support'))}</td></tr>"
        for g, p in per.items() if isinstance(p, Mapping))
    return (f"<details><summary>Per-genre table ({esc(what)})</summary><table class=\"grid\"><thead><tr><th>genre</th>"
            "<th>precision</th><th>recall</th><th>F1</th><th>tracks</th></tr></thead><tbody>"
            + rows + "</tbody></table></details>")
