"""Moving the "none of these" decision's operating point (issue 28 items 3 and 4): ``unknown_score`` in
every output and ``--unknown-rate P`` for classify, evaluate and serve, and the API's ``unknown_rate``.

Real files: the small test bundle given a real decision fitted on 24 synthetic training songs (it
stores their out-of-fold scores), the same decision without them (a bundle made before them), and
synthetic songs of the model's genres and of kinds it never learnt.
"""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest

from genrekit.cli import main
from genrekit.tagging.formats import read_genres

from browser import needs_chromium
from cli_helpers import classify_main, cli_env, summary
from synthetic_songs import GENRES, build_open_bundle, write_song

#: The songs classified: three of the model's genres, and two kinds it never learnt.
KINDS = (*GENRES, "chirp", "drone")


@pytest.fixture(scope="module")
def open_bundle(bundle_dir, tmp_path_factory):
    return build_open_bundle(tmp_path_factory.getbasetemp() / "unknown-rate-bundle", bundle_dir)


@pytest.fixture(scope="module")
def old_bundle(bundle_dir, tmp_path_factory):
    return build_open_bundle(tmp_path_factory.getbasetemp() / "no-oof-bundle", bundle_dir, out_of_fold=False)


@pytest.fixture(scope="module")
def songs(tmp_path_factory) -> list[Path]:
    root = tmp_path_factory.mktemp("unknown-rate-songs")
    return [write_song(root / f"{kind}.flac", kind, 5.0, seed=300) for kind in KINDS]


def classify_json(capsys, model, songs, *args) -> dict:
    """``genrekit classify --format json``: each song's record by file name."""
    code, out, err = classify_main(capsys, *songs, "--model", model, "--format", "json", *args)
    assert code == 0, err
    return {Path(r["path"]).name: r for r in json.loads(out)}


def usage_error(capsys, *argv) -> str:
    """The one error line of a usage error (exit status 2, no traceback)."""
    with pytest.raises(SystemExit) as stop:
        main(list(map(str, argv)))
    err = capsys.readouterr().err
    assert stop.value.code == 2 and "Traceback" not in err, err
    (line,) = [ln for ln in err.splitlines() if "error:" in ln]
    return line


# --- classify ---------------------------------------------------------------------------------------------
def test_the_flag_follows_the_unknown_score_at_the_rate_asked_and_json_csv_and_table_agree(open_bundle, songs,
                                                                                            capsys):
    runs = {rate: classify_json(capsys, open_bundle, songs, "--unknown-rate", rate) for rate in ("0.9", "0.05")}
    default = classify_json(capsys, open_bundle, songs)  # the rate the bundle was fitted for: 0.05
    for rate, records in runs.items():
        for name, r in records.items():
            assert 0 <= r["unknown_score"] < 1 and r["unknown_score"] == round(r["unknown_score"], 4)
            assert r["unknown"] is (r["unknown_score"] >= 1 - float(rate)), (rate, name, r)
            assert r["unknown_score"] == default[name]["unknown_score"]  # the score does not depend on the rate
    assert {n: r["unknown"] for n, r in default.items()} == {n: r["unknown"] for n, r in runs["0.05"].items()}
    flips = [n for n in runs["0.9"] if runs["0.9"][n]["unknown"] and not runs["0.05"][n]["unknown"]]
    assert flips and not [n for n in runs["0.9"] if runs["0.05"][n]["unknown"] and not runs["0.9"][n]["unknown"]]
    assert runs["0.05"]["chirp.flac"]["unknown"]  # a kind it never learnt, far from every genre

    code, out, err = classify_main(capsys, *songs, "--model", open_bundle, "--format", "csv", "--unknown-rate", "0.9")
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert list(rows[0])[:4] == ["path", "label", "unknown", "unknown_score"]
    for row in rows:
        record = runs["0.9"][Path(row["path"]).name]
        assert float(row["unknown_score"]) == record["unknown_score"]
        assert row["unknown"] == str(record["unknown"]).lower()

    code, out, err = classify_main(capsys, *songs, "--model", open_bundle, "--unknown-rate", "0.9")
    assert code == 0, err
    for name, record in runs["0.9"].items():
        block = out.split(name, 1)[1].split(".flac", 1)[0]  # the song's line and its notes
        if record["unknown"]:
            closest = block.split("unknown (closest: ", 1)[1].split(")", 1)[0]
            assert (f"note: unknown: fits none of the model's genres well (closest: {closest}; "
                    f"unknown score {record['unknown_score']:g})") in block, block
        else:
            assert "unknown" not in block, block  # a known song: nothing new


def test_a_bundle_without_out_of_fold_scores_refuses_another_rate_in_one_line(open_bundle, old_bundle, bundle_dir,
                                                                             songs, capsys):
    line = usage_error(capsys, "classify", songs[0], "--model", old_bundle, "--unknown-rate", "0.2")
    assert "--unknown-rate 0.2: this model stores no out-of-fold unknown scores" in line and "retrain" in line
    line = usage_error(capsys, "classify", songs[0], "--model", bundle_dir, "--unknown-rate", "0.2")
    assert "makes no \"none of these\" decision" in line  # a model without a decision at all
    for bad in ("0", "1", "1.5", "nan", "many"):
        line = usage_error(capsys, "classify", songs[0], "--model", open_bundle, "--unknown-rate", bad)
        assert "--unknown-rate" in line and f"expected a number between 0 and 1, got {bad}" in line, line
    # without the option an old bundle still decides, at its own rate, and has no score to give
    old = classify_json(capsys, old_bundle, songs)
    new = classify_json(capsys, open_bundle, songs)
    assert all(r["unknown_score"] is None for r in old.values())
    assert {n: r["unknown"] for n, r in old.items()} == {n: r["unknown"] for n, r in new.items()}


def test_the_python_api_gives_the_score_and_moves_the_rate(open_bundle, old_bundle, songs):
    import warnings

    from genrekit import classify, load_model
    from genrekit.errors import ParameterError

    model = load_model(open_bundle)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the unknown note also comes as a warning
        for rate in (0.9, 0.05):
            for ranked in classify([str(s) for s in songs], model.at_unknown_rate(rate)):
                assert ranked.unknown is (ranked.unknown_score >= 1 - rate)
        assert classify(str(songs[0]), old_bundle).unknown_score is None
    assert model.unknown_rate is None  # the model the process keeps is left at its own rate
    with pytest.raises(ParameterError, match="retrain it to move it"):
        load_model(old_bundle).at_unknown_rate(0.2)


def test_the_rate_travels_to_pool_workers(open_bundle, songs, capsys):
    alone = classify_json(capsys, open_bundle, songs, "--unknown-rate", "0.9")
    pooled = classify_json(capsys, open_bundle, songs, "--unknown-rate", "0.9", "--jobs", "2")
    assert {n: (r["unknown"], r["unknown_score"]) for n, r in pooled.items()} == \
        {n: (r["unknown"], r["unknown_score"]) for n, r in alone.items()}
    assert any(r["unknown"] for n, r in pooled.items() if not n.startswith(("chirp", "drone")))


def test_unknown_songs_at_the_rate_asked_are_listed_and_never_tagged(open_bundle, songs, tmp_path, capsys):
    rates = classify_json(capsys, open_bundle, songs, "--unknown-rate", "0.9")
    folder = tmp_path / "lib"
    folder.mkdir()
    copies = [folder / s.name for s in songs]
    for s, c in zip(songs, copies):
        c.write_bytes(s.read_bytes())
    code, _, err = classify_main(capsys, folder, "--model", open_bundle, "--unknown-rate", "0.9", "--write-tags")
    assert code == 0, err
    for c in copies:
        if rates[c.name]["unknown"]:
            assert read_genres(c) == []
            # listed under the run's summary line, and in the tag report
            assert f"\n  unknown: {c.name} (closest: {rates[c.name]['name']}; unknown score " \
                   f"{rates[c.name]['unknown_score']:g})" in err.split("classify: ", 1)[1], err
            (line,) = [ln for ln in err.splitlines() if c.name in ln and "tags not written" in ln]
            assert line.endswith(f"tags not written, uncertain: unknown: fits none of the model's genres (closest: "
                                 f"{line.split('(closest: ')[1].split(';')[0]}; unknown score "
                                 f"{rates[c.name]['unknown_score']:g})"), line
        else:
            assert read_genres(c) != []
    unknown = sum(r["unknown"] for r in rates.values())
    assert err.count("\n  unknown: ") == unknown, err
    assert f"tags: {len(songs) - unknown} written, 0 kept, 0 unchanged, {unknown} skipped (uncertain)" in err, err


# --- results stores ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("suffix", [".sqlite", ".jsonl"])
def test_a_rerun_at_another_rate_decides_stored_results_again_without_classifying(open_bundle, songs, tmp_path,
                                                                                   capsys, suffix):
    store = tmp_path / f"r{suffix}"
    first = classify_json(capsys, open_bundle, songs, "--out", store, "--unknown-rate", "0.9")
    code, out, err = classify_main(capsys, *songs, "--model", open_bundle, "--out", store, "--format", "json",
                                   "--unknown-rate", "0.05")
    assert code == 0 and summary(err)["skipped"] == len(songs), err
    again = {Path(r["path"]).name: r for r in json.loads(out)}
    fresh = classify_json(capsys, open_bundle, songs, "--unknown-rate", "0.05")
    assert {n: (r["unknown"], r["unknown_score"]) for n, r in again.items()} == \
        {n: (r["unknown"], r["unknown_score"]) for n, r in fresh.items()}
    assert {n: r["unknown_score"] for n, r in first.items()} == {n: r["unknown_score"] for n, r in again.items()}
    # the read-only verb shows what was stored
    assert main(["results", str(store), "--format", "json"]) == 0
    shown = {Path(r["path"]).name: r for r in json.loads(capsys.readouterr().out)}
    assert {n: r["unknown_score"] for n, r in shown.items()} == {n: r["unknown_score"] for n, r in first.items()}


def test_a_store_written_before_unknown_scores_still_reads_and_migrates(open_bundle, songs, tmp_path, capsys):
    store = tmp_path / "r.sqlite"
    classify_json(capsys, open_bundle, songs, "--out", store)
    with closing(sqlite3.connect(store)) as db, db:  # as genrekit wrote it before (schema 4)
        db.execute("ALTER TABLE results DROP COLUMN unknown_score")
        db.execute("PRAGMA user_version = 4")
    assert main(["results", str(store), "--format", "json"]) == 0  # read-only: opened as it is
    shown = json.loads(capsys.readouterr().out)
    assert len(shown) == len(songs) and all(r["unknown_score"] is None for r in shown)
    code, _, err = classify_main(capsys, *songs, "--model", open_bundle, "--out", store)
    assert code == 0 and summary(err)["skipped"] == len(songs), err  # same rate: the stored flags hold
    with closing(sqlite3.connect(store)) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 5
        assert db.execute("SELECT COUNT(*) FROM results WHERE unknown_score IS NULL").fetchone()[0] == len(songs)
    # another rate needs the scores these results lack: the songs are classified again, and keep them
    code, _, err = classify_main(capsys, *songs, "--model", open_bundle, "--out", store, "--unknown-rate", "0.9")
    assert code == 0 and summary(err)["done"] == len(songs), err
    with closing(sqlite3.connect(store)) as db:
        assert db.execute("SELECT COUNT(*) FROM results WHERE unknown_score IS NULL").fetchone()[0] == 0


def test_a_stored_unknown_score_out_of_range_is_skipped_by_the_read_only_verbs(open_bundle, songs, tmp_path,
                                                                                capsys):
    store = tmp_path / "r.jsonl"
    classify_json(capsys, open_bundle, songs[:2], "--out", store)
    lines = store.read_text().splitlines()
    bad = dict(json.loads(lines[0]), unknown_score=1.5, content_hash="a1:" + "0" * 64)
    store.write_text("\n".join([*lines, json.dumps(bad)]) + "\n")
    assert main(["results", str(store), "--format", "json"]) == 0
    out, err = capsys.readouterr()
    assert len(json.loads(out)) == 2
    assert "line 3: unknown_score is not a number from 0 to 1" in err, err


# --- evaluate -----------------------------------------------------------------------------------------------
def test_evaluate_counts_unknown_songs_at_the_rate_asked(open_bundle, old_bundle, tmp_path, capsys):
    root = tmp_path / "lib"
    for n, g in enumerate(GENRES):
        for i in range(2):
            write_song(root / g / f"{g}.{i}.wav", g, 5.0, seed=300 + 10 * n + i)
    flagged = {}
    for rate in ("0.9", "0.05"):
        out_json = tmp_path / f"figures-{rate}.json"
        code = main(["evaluate", "--model", str(open_bundle), "--data", str(root), "--cache", str(tmp_path / "cache"),
                     "--out", str(out_json), "--unknown-rate", rate])
        assert code == 0, capsys.readouterr().err
        flagged[rate] = json.loads(out_json.read_text())["flagged_unknown"]["flagged"]
    capsys.readouterr()
    assert flagged["0.9"] > flagged["0.05"]
    line = usage_error(capsys, "evaluate", "--model", old_bundle, "--data", root, "--unknown-rate", "0.2")
    assert "this model stores no out-of-fold unknown scores" in line


# --- serve and the API ------------------------------------------------------------------------------------------
def test_serve_refuses_a_rate_the_model_cannot_move_to(old_bundle, tmp_path):
    from servers import free_port

    proc = subprocess.run([sys.executable, "-m", "genrekit", "serve", "--model", str(old_bundle), "--port",
                           str(free_port()), "--unknown-rate", "0.2"], capture_output=True, text=True, env=cli_env(),
                          timeout=300)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert "--unknown-rate 0.2: this model stores no out-of-fold unknown scores" in proc.stderr.splitlines()[-1]


@pytest.fixture(scope="module")
def server(open_bundle, tmp_path_factory):
    from servers import Server

    srv = Server(open_bundle, tmp_path_factory.mktemp("unknown-rate-server"), "--unknown-rate", "0.9")
    yield srv
    srv.stop()


def test_the_api_takes_an_unknown_rate_field_and_gives_the_unknown_score(server, open_bundle, songs, capsys):
    cli = {rate: classify_json(capsys, open_bundle, songs, "--unknown-rate", rate) for rate in ("0.9", "0.05")}
    for song in songs:
        for fields, rate in (({}, "0.9"), ({"unknown_rate": "0.05"}, "0.05"), ({"unknown_rate": " 0.9 "}, "0.9")):
            status, body = server.upload(song.name, song.read_bytes(), fields=fields)
            assert status == 200, body
            expected = cli[rate][song.name]
            assert (body["unknown"], body["unknown_score"]) == (expected["unknown"], expected["unknown_score"])
            assert body["unknown"] is (body["unknown_score"] >= 1 - float(rate))
    for bad in ("1.5", "0", "abc", "nan"):
        status, body = server.upload(songs[0].name, songs[0].read_bytes(), fields={"unknown_rate": bad})
        assert status == 422 and "unknown_rate must be a number strictly between 0 and 1" in body["error"], body
    schema = server.json("/openapi.json")["components"]["schemas"]["ClassifyResponse"]["properties"]
    assert "unknown_score" in schema
    assert server.leftovers() == []


@pytest.mark.slow
@needs_chromium
def test_the_page_says_none_of_these_for_an_unknown_song(browser, server, songs):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(f"http://127.0.0.1:{server.port}/")
    chirp = next(s for s in songs if s.name == "chirp.flac")
    page.set_input_files("#file", str(chirp))
    page.wait_for_selector("#results:not([hidden])", timeout=120_000)
    shown = page.text_content("#top-label")
    assert shown.startswith("none of these (closest: ") and shown.endswith(")"), shown
    status, body = server.upload(chirp.name, chirp.read_bytes())
    assert status == 200 and body["unknown"], body
    facts = page.text_content("#facts")  # each fact is a <dt> and its <dd>
    assert f"Unknown score{body['unknown_score']:.2f}" in facts, facts
    assert f"closest: {body['name']}; unknown score {body['unknown_score']:g}" in facts, facts  # the note
    context.close()
