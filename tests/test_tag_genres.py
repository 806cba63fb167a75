"""Genres from the backbone's tags (issue 27, item 3): a bundle's ``tag_genres`` rules add genres after
the head's own, never in their place; ``bundle.json``'s rules are read as untrusted data; the shipped
rules carry their evidence into the model card.

Real files: copies of the shipped default bundle whose rules are rewritten, and a synthetic song.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from genrekit.cli import main
from genrekit.errors import BundleError
from genrekit.models.bundle import load_bundle
from genrekit.models.registry import load_model
from genrekit.models.tag_genres import MAX_RULES, fired_genres
from genrekit.tagging.names import NameMap

from browser import needs_chromium
from cli_helpers import classify_main
from script_modules import import_script
from synthetic_songs import write_song

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "genrekit/models/shipped"


def bundle_with(tmp_path: Path, rules, name: str = "rules") -> Path:
    """A copy of the shipped default with ``rules`` as its ``tag_genres`` (``None``: the field removed)."""
    folder = tmp_path / name
    shutil.copytree(SHIPPED / "gtzan-musicnn", folder)
    meta = json.loads((folder / "bundle.json").read_text())
    meta.pop("tag_genres", None)
    if rules is not None:
        meta["tag_genres"] = rules
    (folder / "bundle.json").write_text(json.dumps(meta))
    return folder


def rule(genre="Test Genre", tags=("rock",), threshold=0.5, **evidence):
    return {"genre": genre, "tags": list(tags), "threshold": threshold, "evidence": evidence}


@pytest.fixture(scope="module")
def song(tmp_path_factory):
    return write_song(tmp_path_factory.mktemp("tag-genres") / "song.wav", "classical", seconds=8.0)


def test_rules_add_genres_after_the_label_and_change_nothing_else(tmp_path, song):
    plain = load_model(bundle_with(tmp_path, None, "plain")).classify_file(song)
    ruled = load_model(bundle_with(tmp_path, [rule("Always", threshold=1e-9), rule("Never", threshold=1.0),
                                              rule("Also Always", tags=("rock", "pop"), threshold=1e-9)])
                       ).classify_file(song)
    assert plain.genres is None  # a single-genre model without rules: the label says it all
    assert ruled.label == plain.label and ruled.probabilities == plain.probabilities
    assert ruled.unknown == plain.unknown and ruled.unknown_score == plain.unknown_score
    assert ruled.genres[0] == ruled.label and set(ruled.genres[1:]) == {"Always", "Also Always"}
    assert "Never" not in ruled.genres


def test_a_song_called_unknown_keeps_its_closest_genre_and_shows_only_the_genres_of_its_tags(tmp_path, song,
                                                                                               capsys):
    """``genres`` does not depend on the unknown decision (as ``label``, the closest genre); the table
    shows only the tags' genres beside "unknown"."""
    model = bundle_with(tmp_path, [rule("Always", threshold=1e-9)])
    prediction = load_model(model).at_unknown_rate(0.99).classify_file(song)
    assert prediction.unknown is True
    assert prediction.genres == [prediction.label, "Always"]
    code, out, err = classify_main(capsys, song, "--model", model, "--unknown-rate", "0.99")
    assert code == 0, err
    assert f"unknown (closest: {NameMap.default().display(prediction.label)}) + Always  " in out, out


@pytest.mark.parametrize("suffix", [".sqlite", ".jsonl"])
def test_stored_results_keep_their_genres_at_any_rate(tmp_path, song, capsys, suffix):
    """A library run's store keeps ``genres``; a rerun at another rate, and the read-only ``results`` verb,
    give what a fresh run gives."""
    model = bundle_with(tmp_path, [rule("Always", threshold=1e-9)])
    store = tmp_path / f"r{suffix}"
    fresh = {}
    for rate in ("0.99", "0.05"):
        code, out, err = classify_main(capsys, song, "--model", model, "--format", "json", "--unknown-rate", rate)
        fresh[rate] = json.loads(out)[0]
    assert fresh["0.99"]["unknown"] and not fresh["0.05"]["unknown"]
    for rate in ("0.99", "0.05"):
        code, out, err = classify_main(capsys, song, "--model", model, "--format", "json", "--unknown-rate", rate,
                                       "--out", store)
        assert code == 0, err
        got = json.loads(out)[0]
        assert (got["genres"], got["unknown"]) == (fresh[rate]["genres"], fresh[rate]["unknown"])
    assert "1 skipped" in err  # the second rate was decided again from the store, not classified
    assert main(["results", str(store), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["genres"] == fresh["0.05"]["genres"]


def test_a_store_written_before_genres_were_kept_is_classified_again_for_a_model_that_gives_them(tmp_path, song,
                                                                                                 capsys):
    model = bundle_with(tmp_path, [rule("Always", threshold=1e-9)])
    store = tmp_path / "r.sqlite"
    assert classify_main(capsys, song, "--model", model, "--out", store)[0] == 0
    with closing(sqlite3.connect(store)) as db, db:  # as genrekit wrote it before (schema 5, no genres)
        db.execute("ALTER TABLE results DROP COLUMN genres")
    assert main(["results", str(store), "--format", "json"]) == 0  # read-only: opened as it is
    assert json.loads(capsys.readouterr().out)[0].get("genres") is None
    code, out, err = classify_main(capsys, song, "--model", model, "--out", store, "--format", "json")
    assert code == 0 and "1 done" in err, err
    assert json.loads(out)[0]["genres"][1:] == ["Always"]
    with closing(sqlite3.connect(store)) as db:
        assert db.execute("SELECT genres FROM results").fetchall() != [(None,)]


def test_fired_genres_are_ordered_by_margin():
    rules = [rule("A", tags=("rock",), threshold=0.5), rule("B", tags=("pop", "jazz"), threshold=0.1),
             rule("C", tags=("metal",), threshold=0.9)]
    assert fired_genres(rules, {"rock": 0.6, "pop": 0.05, "jazz": 0.4, "metal": 0.2}) == ["B", "A"]
    assert fired_genres(rules, {"rock": 0.49, "pop": 0.0, "jazz": 0.0, "metal": 0.95}) == ["C"]


@pytest.mark.parametrize("rules, problem", [
    ("Electronic", "must be a list"),
    ([rule()] * (MAX_RULES + 1), "must be a list"),
    ([rule(tags=("not a tag",))], "backbone's tag names"),
    ([rule(tags=())], "backbone's tag names"),
    ([rule(threshold=0)], "threshold"),
    ([rule(threshold=float("nan"))], "NaN is not a finite number"),
    ([rule(threshold=True)], "threshold"),
    ([rule(threshold=1.5)], "threshold"),
    ([rule(genre="Rock")], "already one of the bundle's genres"),
    ([rule(genre="X"), rule(genre="x")], "already one of the bundle's genres or rules"),
    ([rule(genre="bad\x1bname")], "printable"),
    ([dict(rule(), code="import os")], "must be an object with genre"),
    ([rule(deep={"a": {"b": {"c": 1}}})], "evidence"),
    ([rule(long="x" * 10_000)], "evidence"),
])
def test_stored_rules_are_checked_before_use(tmp_path, rules, problem):
    with pytest.raises(BundleError) as caught:
        load_bundle(bundle_with(tmp_path, rules))
    assert problem in str(caught.value) and "bundle.json" in str(caught.value)


def test_rules_need_the_backbone_tags(tmp_path):
    folder = tmp_path / "gtzan57"
    shutil.copytree(SHIPPED / "gtzan57", folder)
    meta = json.loads((folder / "bundle.json").read_text())
    meta["tag_genres"] = [rule()]
    (folder / "bundle.json").write_text(json.dumps(meta))
    with pytest.raises(BundleError, match="MSD-musicnn"):
        load_bundle(folder)


def test_rules_are_part_of_the_model_key(tmp_path):
    """Stored results of a model with other rules are not taken for this one's."""
    low = load_bundle(bundle_with(tmp_path, [rule(threshold=0.1)], "low"))
    high = load_bundle(bundle_with(tmp_path, [rule(threshold=0.2)], "high"))
    assert low.decision_sha256 != high.decision_sha256


@pytest.mark.parametrize("name", ["gtzan-musicnn", "broad-musicnn"])
def test_shipped_rules_are_measured_and_on_the_card(name):
    """Every shipped rule passed the offer rule fixed in scripts/tag_genre_evidence.py, and its
    evidence is on the model card; none repeats one of the bundle's genres."""
    script = import_script("tag_genre_evidence")
    bundle = load_bundle(SHIPPED / name)
    card = (SHIPPED / name / "MODEL_CARD.md").read_text()
    assert bundle.tag_genres, f"{name} ships no genres from tags"
    for r in bundle.tag_genres:
        ev = r["evidence"]
        assert ev["measured"] and ev["n_positive"] >= script.MIN_POSITIVE and ev["artists"] >= script.MIN_ARTISTS
        assert ev["auroc"][1] >= script.MIN_AUROC_LOW
        assert r["genre"].casefold() not in {g.casefold() for g in bundle.labels}
        assert f"| {r['genre']} |" in card
    report = json.loads((ROOT / "docs/tag_genres.json").read_text())
    assert report["models"][name] == [r["genre"] for r in bundle.tag_genres]


def test_with_style_writes_a_style_from_tags_after_its_genre_only(tmp_path, capsys):
    """``--with-style``: a genre from tags that the genre tree knows as a style of the genre written
    (Opera under Classical) follows it; one of another genre (Alternative Rock) and a top-level one
    (Electronic) are never written; without ``--with-style`` nothing from tags is written."""
    from genrekit.tagging.formats import read_genres

    model = bundle_with(tmp_path, [rule("Opera", threshold=1e-9), rule("Alternative Rock", threshold=1e-9),
                                   rule("Electronic", threshold=1e-9)])
    for option, expected in ((["--with-style"], ["Classical", "Opera"]), ([], ["Classical"])):
        lib = tmp_path / ("styled" if option else "plain")
        song = write_song(lib / "song.flac", "classical", seconds=8.0)
        code, out, err = classify_main(capsys, lib, "--model", model, "--write-tags", "--format", "json", *option)
        assert code == 0, err
        assert json.loads(out)[0]["label"] == "classical"
        assert read_genres(song) == expected


@pytest.mark.slow
@needs_chromium
def test_the_api_and_the_page_show_the_genres_of_the_tags(browser, tmp_path, song):
    """Served at a rate that calls every song unknown, the API gives the closest genre and the tags' ones,
    and the page says "none of these (closest: …) + Always"."""
    from servers import Server

    server = Server(bundle_with(tmp_path, [rule("Always", threshold=1e-9)]), tmp_path, "--unknown-rate", "0.99")
    try:
        status, body = server.upload(song.name, song.read_bytes())
        assert status == 200 and body["unknown"] is True and body["genres"] == [body["label"], "Always"], body
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        page.goto(f"http://127.0.0.1:{server.port}/")
        page.set_input_files("#file", str(song))
        page.wait_for_selector("#results:not([hidden])", timeout=120_000)
        assert page.text_content("#top-label") == f"none of these (closest: {body['name']}) + Always"
        context.close()
    finally:
        server.stop()
