"""The model card: ``MODEL_CARD.md``, a human-readable page generated from ``bundle.json``."""

from __future__ import annotations

from typing import Any


from genrekit.models.bundle_json import BUNDLE_JSON


# --- the model card ----------------------------------------------------------------------
#: How the card names each scorer of :mod:`genrekit.models.unknown`.
SCORER_WORDS = {
    "mahalanobis": "Mahalanobis distance to the nearest genre",
    "mahalanobis-pca": "Mahalanobis distance to the nearest genre (standardised, L2-normalised, principal components)",
    "relative-mahalanobis": "relative Mahalanobis distance to the nearest genre",
    "knn": "cosine distance to the k-th nearest training song",
}


def _fmt(value: Any, digits: int = 3) -> str:
    if isinstance(value, bool) or value is None:
        return "–" if value is None else str(value)
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _ci(level: dict, key: str, digits: int = 3) -> str:
    ci = level.get(f"{key}_ci")
    value = _fmt(level.get(key), digits)
    if isinstance(ci, list) and len(ci) == 2 and None not in ci:
        return f"{value} [{_fmt(ci[0], digits)}, {_fmt(ci[1], digits)}]"
    return value


def _evaluations(metrics: dict) -> list[tuple[str, dict]]:
    """``(set name, evaluate() result)`` pairs found in ``metrics``, test first."""
    found = [(name, metrics[name]) for name in ("test", "valid") if isinstance(metrics.get(name), dict)]
    return [(name, ev) for name, ev in found if any(isinstance(ev.get(lv), dict) for lv in ("track", "window"))]


def headline(metrics: dict) -> list[str]:
    lines = []
    for name, ev in _evaluations(metrics):
        for level in ("track", "window"):
            figs = ev.get(level)
            if isinstance(figs, dict) and "accuracy" in figs:
                lines.append(
                    f"{name} {level} accuracy {_ci(figs, 'accuracy')}, macro-F1 {_fmt(figs.get('macro_f1'))} "
                    f"({ev.get('n_tracks', '?')} tracks)"
                )
    return lines


def model_card_markdown(meta: dict) -> str:
    """The human-readable ``MODEL_CARD.md`` of a parsed ``bundle.json``."""
    card, metrics = meta.get("card", {}), meta.get("metrics", {})
    fs = meta["feature_set"]
    out = [f"# Model card: {card.get('model', 'genre model')}", ""]
    out.append(
        f"A {meta['kind']} music-genre classifier over {len(meta['labels'])} genres: "
        f"{', '.join(meta['labels'])}. Generated from `{BUNDLE_JSON}`; edit that, not this file."
    )
    out += ["", "## Input", ""]
    out.append(f"- Feature set: `{fs['name']}` (key `{meta['feature_set_key']}`), {fs['sample_rate']} Hz")
    if meta["kind"] == "cnn":
        out.append(f"- Log-mel patches of shape {meta['input']['shape'][1:]} (channel, bands, frames) per window, "
                   f"float32, input `{meta['input']['name']}`")
    else:
        out.append(f"- {len(meta['input']['features'])} features per window, float32, input `{meta['input']['name']}`")
    out.append(f"- Window {seconds_text(meta['window'])}, hop {seconds_text(meta['hop'])}; "
               f"a track's probabilities are the {meta['aggregate']} of its windows'")
    out += ["", "## Training", ""]
    for key, label in (("data", "Data"), ("split", "Split"), ("fitted", "Fitted"), ("command", "Command"),
                       ("created", "Created"), ("genrekit_version", "genrekit")):
        if card.get(key):
            value = f"`{card[key]}`" if key == "command" else card[key]
            out.append(f"- {label}: {value}")
    if card.get("params"):
        params = ", ".join(f"`{k}={v}`" for k, v in card["params"].items())
        out.append(f"- Hyper-parameters: {params}")
    if metrics.get("leaky") or card.get("leaky"):
        out += ["", "**Leaky protocol**: windows or artists shared between training and test make "
                "these figures optimistic; they are for comparison with published numbers only."]

    evaluations = _evaluations(metrics)
    if evaluations:
        out += ["", "## Results", "",
                "Accuracy with a 95% bootstrap interval (tracks resampled).", "",
                "| set | level | accuracy | balanced acc. | macro-F1 | tracks | windows |",
                "| --- | --- | --- | --- | --- | --- | --- |"]
        for name, ev in evaluations:
            for level in ("track", "window"):
                figs = ev.get(level)
                if isinstance(figs, dict):
                    out.append(
                        f"| {name} | {level} | {_ci(figs, 'accuracy')} | {_fmt(figs.get('balanced_accuracy'))} | "
                        f"{_ci(figs, 'macro_f1')} | {ev.get('n_tracks', '–')} | {ev.get('n_windows', '–')} |"
                    )
        name, ev = evaluations[0]
        figs = ev.get("track") or ev.get("window")
        per = figs.get("per_genre") if isinstance(figs, dict) else None
        if isinstance(per, dict) and per:
            out += ["", f"Per genre ({name} set, {'track' if ev.get('track') else 'window'} level):", "",
                    "| genre | precision | recall | F1 | support |", "| --- | --- | --- | --- | --- |"]
            for genre, g in per.items():
                out.append(f"| {genre} | {_fmt(g.get('precision'))} | {_fmt(g.get('recall'))} | "
                           f"{_fmt(g.get('f1'))} | {g.get('support', '–')} |")
        conf = figs.get("confusion") if isinstance(figs, dict) else None
        if isinstance(conf, list) and len(conf) == len(meta["labels"]):
            out += ["", "Confusion matrix (rows: true genre, columns: predicted):", "",
                    "| | " + " | ".join(meta["labels"]) + " |",
                    "| --- " * (len(meta["labels"]) + 1) + "|"]
            for genre, row in zip(meta["labels"], conf):
                out.append(f"| **{genre}** | " + " | ".join(str(v) for v in row) + " |")
    out += _dataset_evaluations(metrics.get("evaluation"))
    cal, unk = meta.get("calibration"), meta.get("unknown")
    if cal or unk:
        out += ["", "## Calibration and unknown songs", ""]
        if cal:
            how = (f"scaled by temperature {_fmt(cal.get('temperature'))}" if cal.get("method") == "temperature"
                   else f"mapped by {cal.get('method')} scaling")
            out.append(f"- Probabilities {how}, fitted on "
                       f"{cal.get('fitted_on', 'training data')} (out-of-fold ECE {_fmt(cal.get('oof_ece_before'))} "
                       f"before, {_fmt(cal.get('oof_ece_after'))} after)")
        if unk:
            what = ("mean log-probability over its windows" if unk.get("rows") == "log_probabilities"
                    else "mean input row")
            score = SCORER_WORDS.get(unk.get("method"), "score")
            out.append(f"- A song is called unknown when the {score} of its {what} exceeds "
                       f"{_fmt(unk.get('threshold'))}: about {_fmt(100 * unk.get('false_unknown_rate', 0), 0)}% of "
                       f"known songs, set on {unk.get('fitted_on', 'training data')}"
                       + (f"; the {len(unk['oof_scores'])} out-of-fold scores are stored, so `classify --unknown-rate` "
                          "can move that share" if isinstance(unk.get("oof_scores"), list) else ""))
    out += _tag_genre_lines(meta.get("tag_genres"))
    figures = card.get("figures")
    if isinstance(figures, dict) and figures:
        out += ["", "## Figures", ""]
        for name, value in figures.items():
            if isinstance(value, str):  # a file next to the bundle
                out.append(f"![{name}]({value})")
            elif isinstance(value, dict):
                out.append(f"- {name}: " + ", ".join(f"{k} {_fmt(v)}" for k, v in value.items()))
            else:
                out.append(f"- {name}: {_fmt(value)}")
    out += ["", "## Files", "",
            f"- `{meta['weights']['file']}` (ONNX), SHA-256 `{meta['weights']['sha256']}`",
            f"- `{BUNDLE_JSON}`: everything above, machine-readable"]
    return "\n".join(out) + "\n"

def _tag_genre_lines(rules: Any) -> list[str]:
    """The card's section on genres added from the backbone's tags (:mod:`genrekit.models.tag_genres`):
    each rule's tags, threshold and evidence, or that it was not measured here."""
    if not isinstance(rules, list) or not rules:
        return []
    out = ["", "## Genres from the backbone's tags", "",
           "Added to a song's `genres` after the genres above, never in their place, when the strongest of "
           "the named tags (the song's mean probability) reaches the threshold.", "",
           "| genre | tags | threshold | measured on | AUROC [95% CI] | precision [95% CI] | recall [95% CI] |",
           "| --- | --- | --- | --- | --- | --- | --- |"]
    notes = []
    for rule in rules:
        ev = rule.get("evidence") or {}
        tags = ", ".join(f"`{t}`" for t in rule.get("tags", []))
        if ev.get("measured") is False:
            out.append(f"| {rule.get('genre')} | {tags} | {_fmt(rule.get('threshold'))} | "
                       f"not measured here: {ev.get('why', '')} | – | – | – |")
            continue
        auroc = ev.get("auroc")
        auroc = (f"{_fmt(auroc[0])} [{_fmt(auroc[1])}, {_fmt(auroc[2])}]"
                 if isinstance(auroc, list) and len(auroc) == 3 else _fmt(auroc))
        out.append(f"| {rule.get('genre')} | {tags} | {_fmt(rule.get('threshold'))} | {ev.get('data', '–')}: "
                   f"{ev.get('n_positive', '–')} positive, {ev.get('n_negative', '–')} other songs | {auroc} | "
                   f"{_ci(ev, 'precision', 2)} | {_ci(ev, 'recall', 2)} |")
        if ev.get("note"):
            notes.append(f"- {rule.get('genre')}: {ev['note']}")
    return out + ([""] + notes if notes else [])


def _cell(value: Any) -> str:
    return _fmt(value).replace("|", "/").replace("\n", " ")


def _dataset_evaluations(entries: Any) -> list[str]:
    """The card's table of ``metrics["evaluation"]``: one figure per entry (``dataset``, ``split``,
    ``protocol``, ``labels``, ``n``, ``correct``, ``accuracy``, ``ci``, ``seen_in_training``);
    entries of another shape are left out."""
    rows = [e for e in entries if isinstance(e, dict) and isinstance(e.get("accuracy"), (int, float))] \
        if isinstance(entries, list) else []
    if not rows:
        return []
    out = ["", "## Figures by dataset", "",
           "Accuracy with a 95% bootstrap interval (songs resampled); n songs.", "",
           "| dataset | split | protocol | genres | right / n | accuracy [95% CI] | seen in training |",
           "| --- | --- | --- | --- | --- | --- | --- |"]
    for e in rows:
        ci = e.get("ci")
        ci_text = (f" [{_fmt(ci[0])}, {_fmt(ci[1])}]" if isinstance(ci, list) and len(ci) == 2
                   and all(isinstance(v, (int, float)) for v in ci) else "")
        out.append(f"| {_cell(e.get('dataset'))} | {_cell(e.get('split'))} | {_cell(e.get('protocol'))} | "
                   f"{_cell(e.get('labels'))} | {_cell(e.get('correct'))} / {_cell(e.get('n'))} | "
                   f"{_fmt(float(e['accuracy']))}{ci_text} | {_cell(e.get('seen_in_training'))} |")
    return out


def seconds_text(value: float | None) -> str:
    return "whole signal" if value is None else f"{value:g} s"


# --- the model in words (the page's header, the model picker) ------------------------------------------------
_FAMILIES = {"logreg": "logistic regression", "svm-linear": "SVM", "svm-poly": "SVM", "svm-rbf": "SVM",
             "knn": "k-nearest neighbours", "forest": "random forest", "tree": "decision tree", "mlp": "MLP",
             "gboost": "gradient boosting"}
_FEATURES = {"msd_musicnn": "MSD-musicnn tags", "gtzan57": "the Kaggle GTZAN table's 57 audio features"}


def model_in_words(meta: dict) -> str:
    """A short description of a bundle for people: what it listens to, how it decides, which genres.

    ``"MSD-musicnn tags + logistic regression/SVM vote, GTZAN's ten genres"`` for the shipped
    default, where its card's ``model`` says ``vote(logreg(C=0.05) + svm-rbf(C=1.0))``.
    """
    import re

    card = meta.get("card") or {}
    fs = (meta.get("feature_set") or {}).get("name", "")
    if meta.get("kind") == "cnn":
        features = "a CNN on log-mel spectrograms"
    else:
        features = _FEATURES.get(fs, f"{fs} features" if fs else "audio features")
    spec = str(card.get("model") or "")
    families = []
    for name in re.findall(r"svm-linear|svm-poly|svm-rbf|logreg|knn|forest|tree|mlp|gboost", spec):
        if _FAMILIES[name] not in families:
            families.append(_FAMILIES[name])
    head = "/".join(families)
    if spec.startswith("vote"):
        head = f"{head} vote" if head else "a vote of classifiers"
    if "one-vs-rest" in spec:
        head += " (one-vs-rest)"
    labels = [str(g) for g in meta.get("labels") or []]
    from genrekit.datasets.gtzan import GENRES

    genres = ("GTZAN's ten genres" if sorted(labels) == sorted(GENRES) else
              "GTZAN's ten genres + Electronic" if sorted(labels) == sorted([*GENRES, "electronic"]) else
              f"{len(labels)} genre{'s' if len(labels) != 1 else ''}")
    return (f"{features} + {head}" if head and meta.get("kind") != "cnn" else features) + f", {genres}"
