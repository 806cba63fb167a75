"""The page's sections: the overview of all runs, and one section per run with its facts, figures and tables.

A run's section lists its data, split, selected model and command, then, as the run has
them: the model comparison and metrics tables, several-genre F1, training curves, per-genre
scores, confusion matrices and reliability diagrams (:mod:`genrekit.report.figures`). A
leaky run is marked in red throughout.
"""

from __future__ import annotations

from collections.abc import Mapping

from genrekit.report.evaluations import headline, main_evaluation
from genrekit.report.figures.accuracy import comparison_chart, cv_comparison_chart, metrics_table, overview_chart
from genrekit.report.figures.collector import Figures
from genrekit.report.figures.confusion import confusion_matrix
from genrekit.report.figures.curves import training_curves
from genrekit.report.figures.per_genre import multilabel_chart, per_genre_chart, per_genre_table
from genrekit.report.figures.reliability import reliability_diagram
from genrekit.report.markup import count_text, esc, facts_list, leaky_badge, percent

__all__ = ["overview_section", "run_section"]


def overview_section(report: Mapping, figs: Figures) -> str:
    """A table and a chart of every run's headline accuracy; nothing for a report of one run."""
    runs = report["runs"]
    if len(runs) < 2:
        return ""
    rows = []
    for run in runs:
        heads = []
        for m in run["models"]:
            h = headline(m)
            if h and h[1] is not None:
                heads.append(f"{esc(m['name'])} {percent(h[1])}")
        badge = leaky_badge(run) if run["leaky"] else ""
        split = run["split"]
        rows.append(
            f'<tr class="{"leaky" if run["leaky"] else ""}"><td><a href="#{esc(run["id"])}">{esc(run["name"])}</a></td>'
            f'<td class="text">{esc("CNN" if run["kind"] == "cnn" else run["kind"])}</td>'
            f'<td class="text wrap">{esc(split.get("name"))} {badge}</td>'
            f'<td>{count_text(run["data"].get("n_tracks"))}</td>'
            f'<td class="text wrap">{"; ".join(heads) or "–"}</td></tr>')
    table = ('<div class="scroll"><table class="grid overview"><thead><tr><th>run</th><th class="text">kind</th>'
             '<th class="text">split</th><th>tracks</th><th class="text">track accuracy (test; k-fold: pooled)</th>'
             "</tr></thead><tbody>" + "".join(rows) + "</tbody></table></div>")
    chart = overview_chart(runs, figs)
    return ('<section class="card" id="overview"><h2>Overview</h2>'
            '<p class="note">Models are chosen on validation data only; test figures are reported once. '
            "Every interval is a 95% bootstrap interval in which whole tracks are resampled.</p>"
            + table + chart + "</section>")


def run_section(run: Mapping, figs: Figures) -> str:
    """The section of one run (:func:`genrekit.report.build.load_run`)."""
    leaky = bool(run["leaky"])
    badge = leaky_badge(run) if leaky else ""
    kind = run["kind"]
    head = (f'<h2>{esc(run["name"])} '
            f'<span class="badge kind-{esc(kind)}">{esc("CNN" if kind == "cnn" else kind)}</span>{badge}</h2>')
    klass = "card run leaky" if leaky else "card run"
    parts = [f'<section class="{klass}" id="{esc(run["id"])}" data-leaky="{str(leaky).lower()}">', head]
    if leaky:
        parts.append(f'<div class="warning">{badge} <strong>Leaky protocol.</strong> {esc(run["warning"])}</div>')
    data, split = run["data"], run["split"]
    selected = ""
    if run.get("selected"):
        by = esc(run.get("selected_by") or "validation")
        selected = f'{esc(run["selected"])} <span class="note">(by {by})</span>'
    parts.append(facts_list([
        ("Data", esc(data.get("source"))),
        ("Size", _data_text(data)),
        ("Split", (f"<strong>{esc(split.get('name'))}</strong>" + (f" — {esc(split.get('description'))}"
                                                                   if split.get("description") else ""))
         if split.get("name") else ""),
        ("Split sizes", _sizes_text(split)),
        ("Selected model", selected),
        ("Command", f"<code>{esc(run['command'])}</code>" if run.get("command") else ""),
        ("Recorded", esc(run["date"]) if run.get("date") else ""),
        ("Folder", f"<code>{esc(run['path'])}</code>"),
    ]))
    comparison = comparison_chart(run, figs) + cv_comparison_chart(run, figs)
    several = [(m, multilabel_chart(m, run, figs)) for m in run["models"] if m.get("multilabel")]
    if comparison:
        parts.append(f"<h3>Model comparison</h3>{comparison}{metrics_table(run)}")
    elif not several:
        parts.append('<p class="note">This run holds no evaluated models yet.</p>')
    if several:
        parts.append("<h3>Several genres per song: per-genre F1</h3>")
        for m, fig in several:
            parts.append(f'<div class="model-block" data-model="{esc(m["name"])}"><h4>{esc(m["name"])}</h4>'
                         + fig + "</div>")
    curves = [(m, training_curves(m, run, figs)) for m in run["models"]]
    curves = [(m, c) for m, c in curves if c]
    if curves:
        parts.append("<h3>Training and validation curves</h3>")
        for m, c in curves:
            p = m.get("params", {})
            info = _params_text({k: p[k] for k in ("arch", "n_parameters", "epochs_run", "best_epoch", "lr",
                                                   "batch_size") if k in p})
            parts.append(f"<h4>{esc(m['name'])}</h4>" + (f'<p class="note">{esc(info)}</p>' if info else "") + c)
    detail = [m for m in run["models"] if main_evaluation(m)]
    if detail:
        parts.append("<h3>Per-genre precision, recall and F1</h3>" + per_genre_chart(detail, run, figs))
        parts.append("<h3>Confusion matrices</h3><div class=\"grid2\">")
        for m in detail:
            side, what, ev = main_evaluation(m)
            star = ' <span class="badge selected">selected</span>' if m.get("selected") else ""
            params = _params_text(m.get("params") or {}) if m["kind"] != "cnn" else ""
            parts.append(f'<div class="model-block" data-model="{esc(m["name"])}"><h4>{esc(m["name"])}{star}'
                         f'<span class="note">{esc(what)}, {count_text(ev.get("n_tracks"))} tracks</span></h4>'
                         + (f'<p class="note">parameters: {esc(params)}</p>' if params else "")
                         + confusion_matrix(m, run, figs) + per_genre_table(m) + "</div>")
        parts.append("</div>")
        calibrated = [(m, reliability_diagram(m, run, figs)) for m in detail]
        calibrated = [(m, fig) for m, fig in calibrated if fig]
        if calibrated:
            parts.append("<h3>Calibration: reliability diagrams</h3><div class=\"grid2\">")
            for m, fig in calibrated:
                parts.append(f'<div class="model-block" data-model="{esc(m["name"])}"><h4>{esc(m["name"])}</h4>'
                             + fig + "</div>")
            parts.append("</div>")
    parts.append("</section>")
    return "".join(parts)


def _sizes_text(split: Mapping) -> str:
    sizes = split.get("sizes") or {}
    if split.get("folds"):
        tests = sizes.get("test")
        if isinstance(tests, list):
            return f"{split['folds']} folds; test tracks per fold: {esc(', '.join(str(t) for t in tests))}"
        return f"{esc(split['folds'])} folds"
    parts = []
    for side in ("train", "valid", "test"):
        s = sizes.get(side)
        if isinstance(s, Mapping):
            windows = s.get("windows")
            tracks = s.get("tracks")
            extra = f" ({count_text(windows)} windows)" if windows is not None and windows != tracks else ""
            parts.append(f"{side} {count_text(tracks)} tracks{extra}")
    return esc("; ".join(parts)) if parts else ""


def _data_text(data: Mapping) -> str:
    bits = []
    if data.get("n_rows") is not None:
        bits.append(f"{count_text(data['n_rows'])} rows")
    if data.get("n_tracks") is not None:
        bits.append(f"{count_text(data['n_tracks'])} tracks")
    if data.get("n_features") is not None:
        bits.append(f"{count_text(data['n_features'])} features")
    fs = data.get("feature_set")
    if fs:
        window = data.get("window")
        bits.append(f"feature set {fs}" + (f", {window:g}-s windows" if isinstance(window, (int, float)) else ""))
    return esc(", ".join(bits))


def _params_text(params: Mapping) -> str:
    shown = []
    for k, v in params.items():
        if isinstance(v, Mapping):
            continue
        text = f"{v:.4g}" if isinstance(v, float) else str(v)
        shown.append(f"{k}={text}")
    return ", ".join(shown)
