"""Which of a model's evaluations the report shows, and the one number that sums a model up.

A model of a run (:func:`genrekit.report.build.load_run`) may carry a validation, a test
and a pooled k-fold evaluation. Its detail figures (per-genre scores, confusion matrix,
reliability diagram) show one: the test set, else the validation set, else the pooled
out-of-fold predictions of cross-validation; tests are reported once, models are chosen on
validation data only.
"""

from __future__ import annotations

from collections.abc import Mapping

from genrekit.report.markup import finite

__all__ = ["main_evaluation", "headline", "genre_labels"]


def main_evaluation(model: Mapping) -> tuple[str, str, dict] | None:
    """The evaluation a model's detail figures show: test, else valid, else the pooled k-fold one."""
    if model.get("test"):
        return "test", "test set", model["test"]
    if model.get("valid"):
        return "valid", "validation set", model["valid"]
    cv = model.get("cv")
    if cv and cv.get("pooled"):
        return "pooled", f"pooled out-of-fold predictions of {cv.get('folds', '?')}-fold cross-validation", cv["pooled"]
    return None


def headline(model: Mapping) -> tuple[str, float | None, list | None, int | None] | None:
    """(what, track accuracy, CI, tracks) that sums a model up in the overview."""
    found = main_evaluation(model)
    if found is None:
        return None
    side, _, ev = found
    track = ev.get("track") or {}
    return side, finite(track.get("accuracy")), track.get("accuracy_ci"), ev.get("n_tracks")


def genre_labels(ev: Mapping) -> list[str]:
    """The genres of an evaluation, in its confusion matrix's order."""
    return [str(x) for x in ev.get("labels") or []]
