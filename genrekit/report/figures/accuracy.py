"""Accuracy of runs and models: the comparison charts, the overview chart and the metrics tables.

Accuracy is the track-level accuracy (a track's prediction: the mean of its windows'
probabilities) with its 95% bootstrap interval, tracks resampled; a k-fold run shows the
fold mean ± standard deviation beside the accuracy of its pooled out-of-fold predictions.
A dotted line marks the accuracy of guessing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from genrekit.report.evaluations import genre_labels, headline
from genrekit.report.figures.collector import Figures
from genrekit.report.figures.layout import chance_line, error_bars, plot_axis, plot_layout
from genrekit.report.markup import ci_text, count_text, esc, finite, leaky_badge, percent, plotly_text
from genrekit.report.theme import LEAKY_COLOUR, SIDE_COLOURS

__all__ = ["comparison_chart", "cv_comparison_chart", "overview_chart", "metrics_table"]


def comparison_chart(run: Mapping, figs: Figures) -> str:
    """Track accuracy of a run's models on the validation and test sets, with intervals (★: the selected one)."""
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
        acc = [finite((ev or {}).get("track", {}).get("accuracy")) if ev else None for ev in evs]
        cis = [(ev or {}).get("track", {}).get("accuracy_ci") if ev else None for ev in evs]
        tracks = [ev.get("n_tracks") if ev else None for ev in evs]
        n = next((t for t in tracks if t is not None), None)
        n_labels = max(n_labels, *(len(genre_labels(ev)) for ev in evs if ev))
        data.append({
            "type": "bar", "name": f"{side} ({n} tracks)" if n is not None else side,
            "x": [plotly_text(x) for x in names], "y": acc, "error_y": error_bars(acc, cis),
            "marker": {"color": SIDE_COLOURS[side]},
            "customdata": [[t, (c or [None, None])[0], (c or [None, None])[1]] for t, c in zip(tracks, cis)],
            "hovertemplate": (f"%{{x}} · {side}<br>track accuracy %{{y:.1%}}<br>"
                              "95% CI %{customdata[1]:.1%}–%{customdata[2]:.1%}<br>"
                              "%{customdata[0]} tracks<extra></extra>"),
            "meta": {"side": side},
        })
    shapes, notes = chance_line(n_labels)
    ticks = [plotly_text(m["name"]) + (" ★" if m.get("selected") else "") for m in models]
    layout = plot_layout(360, barmode="group", bargap=0.3, bargroupgap=0.06, shapes=shapes, annotations=notes,
                         showlegend=True, margin={"l": 64, "r": 60, "t": 30, "b": 56},
                         xaxis=plot_axis(None, tickvals=[plotly_text(x) for x in names], ticktext=ticks),
                         yaxis=plot_axis("track-level accuracy", range=[0, 1.05], tickformat=".0%"))
    caption = "Bars: track-level accuracy; whiskers: 95% bootstrap interval (tracks resampled)."
    if run.get("selected"):
        caption += f" ★ {esc(run['selected'])}: selected by {esc(run.get('selected_by') or 'validation accuracy')}."
    return figs.add(data, layout, caption=caption, run=run, kind="comparison")


def cv_comparison_chart(run: Mapping, figs: Figures) -> str:
    """Cross-validated models: fold mean ± std, the single folds, and the pooled accuracy with its interval."""
    models = [m for m in run["models"] if m.get("cv")]
    if not models:
        return ""
    names = [plotly_text(m["name"]) for m in models]
    cvs = [m["cv"] for m in models]
    folds = next((c.get("folds") for c in cvs if c.get("folds")), None)
    mean = [finite(c.get("mean_track_accuracy")) for c in cvs]
    std = [finite(c.get("std_track_accuracy")) for c in cvs]
    pooled = [c.get("pooled") or {} for c in cvs]
    p_acc = [finite(p.get("track", {}).get("accuracy")) for p in pooled]
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
         "offsetgroup": "pooled", "error_y": error_bars(p_acc, p_ci), "marker": {"color": SIDE_COLOURS["pooled"]},
         "customdata": [[(c or [None, None])[0], (c or [None, None])[1]] for c in p_ci],
         "hovertemplate": ("%{x}<br>pooled %{y:.1%}<br>95% CI %{customdata[0]:.1%}–%{customdata[1]:.1%}"
                           "<extra></extra>"),
         "meta": {"side": "pooled"}},
    ]
    n_labels = max((len(genre_labels(p)) for p in pooled if p), default=0)
    shapes, notes = chance_line(n_labels)
    layout = plot_layout(360, barmode="group", scattermode="group", bargap=0.3, bargroupgap=0.06, shapes=shapes,
                         annotations=notes, margin={"l": 64, "r": 60, "t": 30, "b": 56}, xaxis=plot_axis(None),
                         yaxis=plot_axis("track-level accuracy", range=[0, 1.05], tickformat=".0%"))
    caption = (f"{esc(folds)}-fold cross-validation: fold mean ± standard deviation (circles: single folds), "
               "and the accuracy of all out-of-fold predictions pooled, with its 95% bootstrap interval.")
    return figs.add(data, layout, caption=caption, run=run, kind="comparison")


def overview_chart(runs: Sequence[Mapping], figs: Figures) -> str:
    """Every model of every run by its headline accuracy, leaky runs in red and warned about (two or more)."""
    rows = []
    for run in runs:
        for m in run["models"]:
            head = headline(m)
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
        labels = [f"{plotly_text(r['name'])} · {plotly_text(m['name'])}" for r, m, _ in part]
        acc = [h[1] for _, _, h in part]
        data.append({
            "type": "bar", "orientation": "h", "name": "leaky protocol (optimistic)" if leaky else "leak-free split",
            "y": labels, "x": acc,
            "error_x": dict(error_bars(acc, [h[2] for _, _, h in part]), width=4),
            "marker": {"color": LEAKY_COLOUR if leaky else SIDE_COLOURS["test"]},
            "customdata": [[h[0], h[3]] for _, _, h in part],
            "hovertemplate": "%{y}<br>%{customdata[0]}: %{x:.1%}<br>%{customdata[1]} tracks<extra></extra>",
            "meta": {"leaky": leaky},
        })
    order = [f"{plotly_text(r['name'])} · {plotly_text(m['name'])}" for r, m, _ in rows]
    layout = plot_layout(110 + 28 * len(rows), barmode="overlay",
                         margin={"l": 20, "r": 24, "t": 30, "b": 46},
                         yaxis=plot_axis(None, categoryorder="array", categoryarray=order[::-1]),
                         xaxis=plot_axis("track-level accuracy (test set; k-fold: pooled out-of-fold)", range=[0, 1.02],
                                         tickformat=".0%"))
    leaky_runs = [r for r in runs if r["leaky"]]
    caption = "Whiskers: 95% bootstrap intervals over tracks."
    html_out = figs.add(data, layout, caption=caption, kind="overview")
    if leaky_runs:
        notes = "".join(f'<div class="warning">{leaky_badge(r)} <strong>{esc(r["name"])}</strong>: '
                        f'{esc(r["warning"])}</div>' for r in leaky_runs)
        html_out = notes + html_out
    return html_out


def metrics_table(run: Mapping) -> str:
    """A run's track and window accuracy, macro-F1 and balanced accuracy per model and side, as tables."""
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
                    f'<tr data-model="{esc(m["name"])}" data-side="{side}"><td>{esc(m["name"])}{star}</td>'
                    f'<td class="text">{side}</td><td>{count_text(ev.get("n_tracks"))}</td>'
                    f'<td data-value="{esc(tr.get("accuracy"))}">'
                    f'{percent(tr.get("accuracy"))}{ci_text(tr.get("accuracy_ci"))}</td>'
                    f'<td>{percent(tr.get("macro_f1"))}{ci_text(tr.get("macro_f1_ci"))}</td>'
                    f'<td>{percent(tr.get("balanced_accuracy"))}</td><td>{count_text(ev.get("n_windows"))}</td>'
                    f'<td>{percent(wi.get("accuracy"))}{ci_text(wi.get("accuracy_ci"))}</td></tr>')
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
            fold_text = ", ".join(percent(a) for a in cv.get("fold_track_accuracy", []))
            mean, std = finite(cv.get("mean_track_accuracy")), finite(cv.get("std_track_accuracy"))
            rows.append(
                f'<tr data-model="{esc(m["name"])}" data-side="cv"><td>{esc(m["name"])}</td>'
                f'<td>{esc(cv.get("folds"))}</td>'
                f'<td data-value="{esc(mean)}">{percent(mean)} ± {percent(std)}</td>'
                f'<td class="text">{esc(fold_text)}</td>'
                f'<td>{count_text(pooled.get("n_tracks"))}</td>'
                f'<td data-value="{esc(tr.get("accuracy"))}">'
                f'{percent(tr.get("accuracy"))}{ci_text(tr.get("accuracy_ci"))}</td>'
                f'<td>{percent(tr.get("macro_f1"))}{ci_text(tr.get("macro_f1_ci"))}</td></tr>')
        out.append('<div class="scroll"><table class="grid metrics"><thead><tr><th>model</th><th>folds</th>'
                   '<th>fold mean ± std</th><th class="text">single folds</th><th>tracks</th>'
                   "<th>pooled track accuracy [95% CI]</th><th>pooled macro-F1 [95% CI]</th></tr></thead><tbody>"
                   + "".join(rows) + "</tbody></table></div>")
    return "".join(out)
