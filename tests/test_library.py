"""Libraries: results kept as each file finishes, reruns that skip, runs that survive SIGKILL.

Real files and a real (small) model bundle, see ``synthetic_songs.py``; the command runs
in this process through ``main([...])`` or, to be killed, as ``python -m genrekit``.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from genrekit.library.run import LibraryRun, classify_library, model_key
from genrekit.errors import ResultsError
from genrekit.library.results import JsonlResults, SqliteResults, open_results
from cli_helpers import classify_main, cli_env, summary
from results_files import jsonl_records, stored
from synthetic_songs import GENRES, song_folder, write_song
from processes import sigkill_when


@pytest.fixture(scope="module")
def library(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("library")
    song_folder(root, per_genre=2)
    return root


# --- reruns -----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["results.jsonl", "results.sqlite"])
def test_second_run_skips_everything_and_changes_nothing(capsys, library, bundle_dir, tmp_path, name):
    out = tmp_path / name
    args = [library, "--model", bundle_dir, "--out", out, "--format", "json", "--timeline"]
    code, first, err = classify_main(capsys, *args)
    assert code == 0, err
    assert summary(err) == dict(total=6, done=6, skipped=0, failed=0)
    assert f"results in {out}" in err
    before = out.read_bytes() if out.suffix == ".jsonl" else None
    assert stored(out) == 6

    code, second, err = classify_main(capsys, *args)
    assert code == 0
    assert summary(err) == dict(total=6, done=0, skipped=6, failed=0)
    assert second == first  # the same output, from the store
    if before is not None:
        assert out.read_bytes() == before  # nothing appended
    assert stored(out) == 6

    with open_results(out) as store:
        records = store.records()
    assert sorted(Path(r["path"]).name for r in records) == sorted(Path(r["path"]).name for r in json.loads(first))
    r = records[0]
    assert {"content_hash", "model_key", "time", "timeline", "probabilities"} <= set(r)
    assert r["content_hash"].startswith("a1:") and len(r["content_hash"]) == 67 and r["timeline"][0]["start"] == 0.0

    # Without --out nothing is skipped: the store is only used when named.
    code, _, err = classify_main(capsys, library, "--model", bundle_dir, "--format", "json")
    assert summary(err)["done"] == 6


def test_files_are_known_by_content_and_model(capsys, bundle_dir, tmp_path):
    folder = tmp_path / "music"
    write_song(folder / "a.wav", "metal", seed=1)
    write_song(folder / "b.wav", "hiphop", seed=2)
    out = tmp_path / "results.jsonl"
    base = [folder, "--model", bundle_dir, "--out", out]
    assert classify_main(capsys, *base)[0] == 0

    os.rename(folder / "a.wav", folder / "renamed.wav")  # same bytes: skipped, reported under its new name
    write_song(folder / "b.wav", "classical", seed=3)  # edited: classified again
    code, out_json, err = classify_main(capsys, *base, "--format", "json")
    assert summary(err) == dict(total=2, done=1, skipped=1, failed=0)
    results = {Path(r["path"]).name: r for r in json.loads(out_json)}
    assert results["renamed.wav"]["label"] == "metal" and results["b.wav"]["label"] == "classical"

    # Another model (same weights, another hop: other timelines) has no results yet.
    other = tmp_path / "other-model"
    shutil.copytree(bundle_dir, other)
    meta = json.loads((other / "bundle.json").read_text())
    meta["hop"] = 1.0
    (other / "bundle.json").write_text(json.dumps(meta))
    code, _, err = classify_main(capsys, folder, "--model", other, "--out", out)
    assert summary(err) == dict(total=2, done=2, skipped=0, failed=0)
    keys = {r["model_key"] for r in jsonl_records(out)}
    assert len(keys) == 2 and all(k.endswith(("-w3-h1.5", "-w3-h1")) for k in keys)


def test_bad_files_are_recorded_once_and_retried(capsys, bundle_dir, tmp_path):
    folder = tmp_path / "music"
    write_song(folder / "good.wav", "metal", seed=1)
    (folder / "text.mp3").write_text("not audio at all\n" * 40)
    (folder / "empty.wav").write_bytes(b"")
    out = tmp_path / "results.jsonl"
    code, _, err = classify_main(capsys, folder, "--model", bundle_dir, "--out", out)
    assert code == 1
    assert summary(err) == dict(total=3, done=1, skipped=0, failed=2)
    errors = {Path(r["path"]).name: r["error"] for r in jsonl_records(out)}
    assert errors["good.wav"] is None and "empty" in errors["empty.wav"] and errors["text.mp3"]
    before = out.read_bytes()

    code, _, err = classify_main(capsys, folder, "--model", bundle_dir, "--out", out)
    assert code == 1
    assert summary(err) == dict(total=3, done=0, skipped=1, failed=2)  # failures are tried again...
    assert out.read_bytes() == before  # ...but the same failure is not logged twice

    write_song(folder / "text.mp3", "hiphop", seed=4, format="WAV")  # fixed (a WAV named .mp3 decodes)
    (folder / "empty.wav").unlink()
    code, _, err = classify_main(capsys, folder, "--model", bundle_dir, "--out", out)
    assert code == 0
    assert summary(err) == dict(total=2, done=1, skipped=1, failed=0)


# --- surviving a kill ----------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("name", ["results.jsonl", "results.sqlite"])
def test_sigkill_then_rerun_resumes(bundle_dir, tmp_path, name):
    total = 10
    for i in range(total):
        write_song(tmp_path / "music" / f"song{i:02d}.wav", GENRES[i % 3], seconds=8.0, seed=i)
    out = tmp_path / name
    cmd = [sys.executable, "-m", "genrekit", "classify", str(tmp_path / "music"), "--model", str(bundle_dir),
           "--out", str(out), "--jobs", "1"]

    proc = subprocess.Popen(cmd, env=cli_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    sigkill_when(proc, lambda: stored(out) >= 2, "two results stored")

    kept_bytes = out.read_bytes() if out.suffix == ".jsonl" else None
    if out.suffix == ".sqlite":
        con = sqlite3.connect(out)
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        con.close()
    kept = stored(out)
    assert 2 <= kept < total, "killed too late to show a resume"
    print(f"killed with {kept} of {total} results stored")

    rerun = subprocess.run(cmd, env=cli_env(), capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert summary(rerun.stderr) == dict(total=total, done=total - kept, skipped=kept, failed=0)

    with open_results(out) as store:
        records = store.records()
    assert sorted(Path(r["path"]).name for r in records) == [f"song{i:02d}.wav" for i in range(total)]
    if kept_bytes is not None:
        whole = kept_bytes[: kept_bytes.rfind(b"\n") + 1]
        assert out.read_bytes().startswith(whole)  # finished lines untouched, none written twice
        assert len(jsonl_records(out)) == total


def test_half_written_last_line_is_dropped_on_resume(capsys, library, bundle_dir, tmp_path):
    out = tmp_path / "results.jsonl"
    args = [library / "metal", library / "hiphop", "--model", bundle_dir, "--out", out]
    assert classify_main(capsys, *args)[0] == 0
    whole = out.read_bytes()
    lines = whole.splitlines(keepends=True)
    assert len(lines) == 4
    cut = whole[: len(whole) - len(lines[-1]) // 2]  # a kill in the middle of the last line
    out.write_bytes(cut)

    code, _, err = classify_main(capsys, *args)
    assert code == 0, err
    assert f"warning: {out}: dropped a half-written last line" in err
    assert summary(err) == dict(total=4, done=1, skipped=3, failed=0)
    assert out.read_bytes().startswith(b"".join(lines[:3]))
    records = jsonl_records(out)  # every line parses again
    assert sorted(r["path"] for r in records) == sorted(json.loads(line)["path"] for line in lines)

    # A whole record that lost only its newline is kept, and the newline restored.
    out.write_bytes(out.read_bytes()[:-1])
    code, _, err = classify_main(capsys, *args)
    assert summary(err) == dict(total=4, done=0, skipped=4, failed=0)
    assert out.read_bytes().endswith(b"}\n") and len(jsonl_records(out)) == 4


def test_stores_are_exclusive_and_refuse_strangers(bundle_dir, tmp_path):
    out = tmp_path / "results.jsonl"
    with JsonlResults(out):
        with pytest.raises(ResultsError, match="another genrekit run"):
            JsonlResults(out)
    JsonlResults(out).close()  # released on close

    out.write_text('{"path": "x"}\nnot json\n')
    with pytest.warns(UserWarning, match=r"ignored 2 line\(s\)"):
        store = JsonlResults(out)
    assert store.records() == []
    store.close()

    (tmp_path / "junk.sqlite").write_bytes(b"not a database" * 100)
    with pytest.raises(ResultsError, match="not a usable SQLite"):
        SqliteResults(tmp_path / "junk.sqlite")
    with pytest.raises(ValueError):
        open_results(tmp_path / "results.csv")


# --- the Python side ----------------------------------------------------------------------------
def test_library_api(library, bundle_dir, tmp_path):
    from genrekit import load_model

    clf = load_model(bundle_dir)
    paths = sorted(library.rglob("*.wav"))
    results, summ = classify_library([library], bundle_dir, out=tmp_path / "results.jsonl", progress=False)
    assert [r.path for r in results] == paths and summ.done == 6 and summ.total == 6
    with SqliteResults(tmp_path / "results.db") as store:
        results, summ = classify_library(paths, clf, store=store, progress=False)
        assert [r.path for r in results] == paths and summ.done == 6
        assert all(r.ok and not r.skipped for r in results)
        again = list(LibraryRun(paths, clf, store=store, progress=False))
        assert all(r.skipped for r in again)
        assert {r.path: r.record["probabilities"] for r in again} == {r.path: r.record["probabilities"] for r in results}
        row = store.lookup(results[0].record["content_hash"], model_key(clf))
    assert row["label"] == results[0].record["label"] and row["timeline"] == results[0].record["timeline"]
    public = results[0].public(top=1)
    assert list(public) == ["path", "label", "unknown", "unknown_score", "name", "probabilities", "duration", "model", "notes", "error"]
    assert list(public["probabilities"]) == [public["label"]]


def test_a_timeline_is_computed_only_when_asked_and_then_reused(tmp_path, bundle_dir):
    """A run without --timeline stores no timeline (the label's patches only); a later run with
    --timeline classifies those files again, and a run without one reuses results that have one."""
    songs = song_folder(tmp_path / "songs", per_genre=1, seconds=4.0)
    store = open_results(tmp_path / "results.jsonl")
    plain = list(LibraryRun(songs, bundle_dir, store=store, progress=False))
    assert all(r.prediction.timeline is None and not r.skipped for r in plain)
    lined = list(LibraryRun(songs, bundle_dir, store=store, progress=False, timeline=True))
    assert all(r.prediction.timeline and not r.skipped for r in lined)
    again = list(LibraryRun(songs, bundle_dir, store=store, progress=False))
    assert all(r.skipped and r.prediction.timeline for r in again)


def test_a_refitted_decision_or_calibration_is_another_model(capsys, bundle_dir, tmp_path):
    """Same weights, another "none of these" decision (a refit: scripts/refit_unknown.py) or calibration:
    stored flags, scores and probabilities came from the old one, so the songs are classified again."""
    from synthetic_songs import build_open_bundle

    folder = tmp_path / "music"
    write_song(folder / "a.wav", "metal", seed=1)
    out = tmp_path / "results.jsonl"
    first = build_open_bundle(tmp_path / "decided", bundle_dir)
    classify_main(capsys, folder, "--model", first, "--out", out)
    refitted = tmp_path / "refitted"
    shutil.copytree(first, refitted)
    meta = json.loads((refitted / "bundle.json").read_text())
    meta["unknown"]["threshold"] = meta["unknown"]["oof_scores"][0]  # a refit that calls far more songs unknown
    (refitted / "bundle.json").write_text(json.dumps(meta))
    code, _, err = classify_main(capsys, folder, "--model", refitted, "--out", out)
    assert code == 0 and summary(err) == dict(total=1, done=1, skipped=0, failed=0), err
    assert len({r["model_key"] for r in jsonl_records(out)}) == 2
    # the same bundle again: nothing to do
    code, _, err = classify_main(capsys, folder, "--model", refitted, "--out", out)
    assert summary(err) == dict(total=1, done=0, skipped=1, failed=0), err
