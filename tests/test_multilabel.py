"""A model of several genres per song (issue 19), trained here by ``genrekit train --labels tags``
on synthetic songs tagged with one or two genres: every output names every genre above its
threshold, and ``genrekit evaluate --labels tags`` scores it (and a one-genre model) on new songs
tagged the same way."""

from __future__ import annotations

import csv
import io
import json
from urllib.parse import urlparse

import pytest

from genrekit.tagging.names import NameMap
from genrekit.tagging.formats import read_genres

from browser import CHROMIUM, CHROMIUM_ARGS, needs_chromium
from own_genres_runs import genrekit, plan, trained_run
from servers import Server
from synthetic_songs import OTHER_KINDS, write_song
from tagged_songs import tagged_library

pytestmark = pytest.mark.slow  # the backbone analyses every song

#: The labels the shipped name map gives the tag values of :data:`own_genres_runs.TAGS`.
CANONICAL = {"Classical": "classical", "Hip Hop": "hiphop", "Metal": "metal", "Noise": "Noise"}


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> dict:
    return trained_run(tmp_path_factory.getbasetemp() / "multilabel-run", several=True)


@pytest.fixture(scope="module")
def new_songs(tmp_path_factory):
    """Songs the model never heard (other seeds), tagged like its library, and one tagged only "Ska"."""
    folder = tmp_path_factory.mktemp("new-songs")
    songs = plan(several=True, per_genre=4) + [("metal", ["Ska"], None, None)]
    tagged_library(folder, songs, seed=1000)
    truth = {f"song{i:02d}{('.flac', '.mp3', '.ogg')[i % 3]}": {CANONICAL.get(g, g) for g in genres}
             for i, (_, genres, _, _) in enumerate(songs)}
    return folder, truth


def _classify(folder, run, fmt):
    proc = genrekit("classify", folder, "--model", run["run"], "--format", fmt)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_table_and_csv_name_every_genre_above_its_threshold(run, new_songs):
    folder, _ = new_songs
    records = {r["path"]: r for r in json.loads(_classify(folder, run, "json"))}
    assert len(records) == 13 and all(isinstance(r["genres"], list) for r in records.values())
    assert any(len(r["genres"]) > 1 for r in records.values())  # the tagged pairs come back as pairs
    show = NameMap.default().display
    table = _classify(folder, run, "table")
    rows = [line for line in table.splitlines()[1:] if not line.startswith("  ")]
    assert len(rows) == 13
    for line in rows:
        path, rest = line.split(maxsplit=1)
        genres, closest = records[path]["genres"], show(records[path]["label"])
        shown = f"unknown (closest: {closest})" if records[path]["unknown"] else \
            " + ".join(show(g) for g in genres) if genres else f"none above threshold (closest: {closest})"
        assert rest.startswith(shown + " "), (line, genres)
    assert "Hip-Hop + Noise" in table or "Metal + Noise" in table

    sheet = list(csv.DictReader(io.StringIO(_classify(folder, run, "csv"))))
    assert list(sheet[0])[:5] == ["path", "label", "unknown", "unknown_score", "genres"]
    for row in sheet:
        assert (row["genres"].split(";") if row["genres"] else []) == records[row["path"]]["genres"]


def test_songs_of_a_kind_never_trained_on_are_mostly_unknown(run, new_songs, tmp_path):
    """The several-genre bundle stores the "none of these" decision fitted on its training songs
    (genre means over the songs carrying each genre; 5% of known songs out-of-fold): 12 new songs of
    the kinds it learnt are mostly known, 9 of kinds it never heard (plucks, sweeps, a drone) mostly
    unknown; the table says so and --write-tags leaves the unknown ones untouched."""
    meta = json.loads((run["run"] / "own-genres/bundle.json").read_text())
    unknown = meta["unknown"]
    assert unknown["method"] == "mahalanobis" and unknown["false_unknown_rate"] == 0.05
    assert "grouped by album on the 24 training songs" in unknown["fitted_on"]  # refitted on every labelled song
    assert len(unknown["means"]) == 4 and len(unknown["means"][0]) == len(meta["input"]["features"])
    folder, truth = new_songs
    known = {r["path"]: r["unknown"] for r in json.loads(_classify(folder, run, "json")) if truth[r["path"]] != {"Ska"}}
    assert len(known) == 12 and all(isinstance(v, bool) for v in known.values())
    assert sum(known.values()) <= 4, known
    others = tmp_path / "others"
    for i, kind in enumerate(OTHER_KINDS * 3):
        write_song(others / f"{kind}{i}.flac", kind, seconds=6.0, seed=2000 + i)
    records = json.loads(_classify(others, run, "json"))
    flagged = [r["path"] for r in records if r["unknown"]]
    assert len(records) == 9 and len(flagged) >= 8, records
    table = _classify(others, run, "table")
    show = NameMap.default().display
    for r in records:
        if r["unknown"]:
            assert f"{r['path']}  unknown (closest: {show(r['label'])})" in table
    proc = genrekit("classify", others, "--model", run["run"], "--write-tags")
    assert proc.returncode == 0, proc.stderr
    for r in records:
        assert (read_genres(others / r["path"]) == []) == r["unknown"], r["path"]


def test_evaluate_scores_the_several_genres_model_on_tagged_songs(run, new_songs, tmp_path):
    folder, truth = new_songs
    out = tmp_path / "figures.json"
    proc = genrekit("evaluate", "--model", run["run"], "--data", folder, "--labels", "tags", "--out", out)
    assert proc.returncode == 0, proc.stderr
    assert "1 file(s) skipped, none of their genres is the model's: Ska (1)" in proc.stderr
    figures = json.loads(out.read_text())
    assert figures["n_tracks"] == 12 and figures["data"]["skipped_other_genres"] == 1
    assert set(figures["per_genre"]) == {"Noise", "classical", "hiphop", "metal"}
    assert {g: f["support"] for g, f in figures["per_genre"].items()} == \
        {"Noise": 4, "classical": 4, "hiphop": 4, "metal": 4}
    # subset accuracy is the share of songs whose genres (as classify gives them) are exactly their tags
    records = json.loads(_classify(folder, run, "json"))
    scored = [r for r in records if truth[r["path"]] != {"Ska"}]
    exact = sum(set(r["genres"]) == truth[r["path"]] for r in scored) / len(scored)
    assert figures["subset_accuracy"] == pytest.approx(exact)
    assert 0 <= figures["mean_average_precision"] <= 1 and figures["mean_average_precision"] >= 0.5
    assert f"subset accuracy {figures['subset_accuracy']:.3f}" in proc.stdout
    assert f"mean average precision {figures['mean_average_precision']:.3f}" in proc.stdout


def test_evaluate_scores_a_one_genre_model_on_tagged_songs(new_songs, tmp_path):
    folder, truth = new_songs
    out = tmp_path / "figures.json"
    proc = genrekit("evaluate", "--model", "gtzan-musicnn", "--data", folder, "--labels", "tags", "--out", out)
    assert proc.returncode == 0, proc.stderr
    figures = json.loads(out.read_text())
    track = figures["track"]
    assert figures["n_tracks"] == 12 and 0 <= track["ece"] <= 1 and sum(b["n"] for b in track["reliability"]) == 12
    # accuracy: songs whose top genre (the shipped model's) is their first tag the model knows
    records = json.loads(genrekit("classify", folder, "--model", "gtzan-musicnn", "--format", "json").stdout)
    known = [r for r in records if truth[r["path"]] != {"Ska"}]
    hits = [r["label"] == next(g for g in truth[r["path"]] if g != "Noise") for r in known]  # Noise: not GTZAN's
    assert track["accuracy"] == pytest.approx(sum(hits) / len(hits))
    assert f"ece {track['ece']:.3f}" in proc.stdout


@pytest.mark.parametrize("args, says", [
    ([], "a model of several genres per song is scored on files labelled with several genres: add --labels tags"),
    (["--names", "names.toml"], "--names: only with --labels tags"),
    (["--labels", "tags", "--side", "test"], "--side test with --labels tags"),
])
def test_evaluate_refusals_are_one_line(run, new_songs, args, says):
    folder, _ = new_songs
    proc = genrekit("evaluate", "--model", run["run"], "--data", folder, *args)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert says in proc.stderr


def test_evaluate_says_when_no_file_has_a_genre_the_model_knows(run, tmp_path):
    tagged_library(tmp_path / "lib", [("metal", ["Ska"], None, None), ("classical", ["Polka"], None, None)], seconds=1.0)
    proc = genrekit("evaluate", "--model", run["run"], "--data", tmp_path / "lib", "--labels", "tags")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "no file has a genre the model knows (Noise, classical, hiphop, metal)" in proc.stderr


def test_train_with_tags_takes_a_classical_family_as_the_head(run, new_songs, tmp_path):
    proc = genrekit("train", "--data", run["lib"], "--labels", "tags", "--model", "logreg", "--out", tmp_path / "run",
                    "--cache", run["cache"])  # the library's rows come from the cache the first run filled
    assert proc.returncode == 0, proc.stderr
    results = json.loads((tmp_path / "run/results.json").read_text())
    entry = results["models"]["own-genres"]
    assert entry["params"] == {"model": "logreg"} and set(entry["test"]["per_genre"]) == {"Noise", "classical",
                                                                                         "hiphop", "metal"}
    meta = json.loads((tmp_path / "run/own-genres/bundle.json").read_text())
    assert meta["card"]["model"] == "logreg (fixed parameters) one-vs-rest" and len(meta["multilabel"]["thresholds"]) == 4
    folder, truth = new_songs
    records = json.loads(genrekit("classify", folder / "song00.flac", "--model", tmp_path / "run",
                                  "--format", "json").stdout)
    assert isinstance(records[0]["genres"], list)


@needs_chromium
def test_the_web_page_names_every_genre_above_its_threshold(run, new_songs, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (the test extra)")
    folder, _ = new_songs
    song = folder / "song04.mp3"  # hip-hop tagged with Noise
    server = Server(run["run"], tmp_path)
    try:
        _, answer = server.upload(song.name, song.read_bytes())
        assert isinstance(answer["genres"], list)
        show = NameMap.default().display
        closest = show(answer["label"])
        expected = f"unknown (closest: {closest})" if answer["unknown"] else \
            " + ".join(show(g) for g in answer["genres"]) or f"none above threshold (closest: {closest})"
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page()
                page.route("**/*", lambda route: route.continue_() if urlparse(route.request.url).hostname
                           == "127.0.0.1" else route.abort())
                page.goto(f"http://127.0.0.1:{server.port}/")
                page.wait_for_function("() => document.getElementById('model-name').textContent.startsWith('Model:')")
                page.set_input_files("#file", str(song))
                page.wait_for_selector("#results:not([hidden])", timeout=60_000)
                assert page.text_content("#top-label") == expected
            finally:
                browser.close()
    finally:
        server.stop()
