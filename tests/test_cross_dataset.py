"""scripts/cross_dataset_table.py's leave-one-dataset-out rule: a cell whose songs a model trained on is
marked, and its figure is the model card's artist-grouped CV, never a score on training songs."""

from __future__ import annotations

import pytest

from script_modules import import_script


@pytest.fixture(scope="module")
def table():
    return import_script("cross_dataset_table")


def test_what_a_card_says_it_trained_on(table):
    from genrekit.models.bundle import load_bundle
    from genrekit.models.registry import resolve_model

    shipped = {name: table.trained_on(load_bundle(resolve_model(name)).card) for name in ("gtzan-musicnn", "gtzan57")}
    assert shipped["gtzan-musicnn"] == {"gtzan": "fault-filtered train", "emotify": None}
    assert shipped["gtzan57"] == {"gtzan": "all", "emotify": None}
    assert not table.seen("gtzan_test", shipped["gtzan-musicnn"])  # trained on the train list only
    assert table.seen("gtzan_valid_audio", shipped["gtzan57"])  # all 1000 clips
    joint = {"trained_on": {"gtzan": "fault-filtered train", "emotify": "all"},
             "figures": {"emotify_artist_grouped_cv": {"accuracy": 0.8, "accuracy_ci": [0.74, 0.85], "n": 200}}}
    seen = table.trained_on(joint)
    assert table.seen("emotify", seen) and not table.seen("gtzan_valid_audio", seen)
    cv = table.card_cv(joint, "emotify")
    assert cv["accuracy"] == 0.8 and cv["n"] == 200 and "artist-grouped CV" in cv["from"]
    assert table.card_cv({"figures": {}}, "emotify") is None


def test_cells_say_what_they_rest_on(table):
    assert table.cell_text({"accuracy": 0.5, "accuracy_ci": [0.4, 0.6], "n": 34}) == "**50.0** [40.0, 60.0], n=34"
    assert table.cell_text({"seen_in_training": True}) == "seen in training (no held-out figure)"
    assert "seen in training: model card" in table.cell_text(
        {"accuracy": 0.8, "accuracy_ci": [0.7, 0.9], "n": 200, "seen_in_training": True,
         "from": "model card: artist-grouped CV"})
    assert table.cell_text({"not_computable": "why", "seen_in_training": True}) == \
        "not computable (why) · seen in training"
