"""``genrekit results``: a results store printed or exported without classifying again, read-only."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os

from genrekit.cli import main
from synthetic_songs import write_song


def run_cli(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def _fingerprint(path):
    return hashlib.sha256(path.read_bytes()).hexdigest(), os.stat(path).st_mtime_ns


def test_results_prints_and_exports_what_classify_kept_and_changes_no_byte(tmp_path, bundle_dir, capsys):
    music = tmp_path / "music"
    for i, kind in enumerate(["classical", "hiphop", "metal"]):
        write_song(music / f"{kind}.flac", kind, seconds=4.0, seed=i)
    for suffix in (".jsonl", ".sqlite"):
        store = tmp_path / f"r{suffix}"
        code, out, err = run_cli(capsys, "classify", music, "--model", bundle_dir, "--out", store, "--format", "json")
        assert code == 0, err
        classified = {os.path.basename(r["path"]): r for r in json.loads(out)}
        before = _fingerprint(store)

        code, out, err = run_cli(capsys, "results", store, "--format", "json")
        assert code == 0, err
        shown = {os.path.basename(r["path"]): r for r in json.loads(out)}
        assert shown.keys() == classified.keys() == {"classical.flac", "hiphop.flac", "metal.flac"}
        for name, row in shown.items():
            assert row["label"] == classified[name]["label"]
            assert row["probabilities"] == classified[name]["probabilities"]
        assert "results: 3 song(s)" in err

        export = tmp_path / f"export{suffix}.csv"
        code, _, err = run_cli(capsys, "results", store, "--format", "csv", "--out", export)
        assert code == 0, err
        rows = list(csv.DictReader(io.StringIO(export.read_text())))
        assert sorted(os.path.basename(r["path"]) for r in rows) == sorted(shown)
        assert {r["label"] for r in rows} == {r["label"] for r in shown.values()}

        code, out, _ = run_cli(capsys, "results", store)  # the table
        assert code == 0 and all(name in out for name in shown)
        assert _fingerprint(store) == before  # read-only: not a byte, not the mtime


def test_results_refuses_what_is_not_a_results_store_in_one_line(tmp_path, capsys):
    notes = tmp_path / "notes.jsonl"
    notes.write_bytes(b'{"a": 1}\nmy last line')
    before = _fingerprint(notes)
    code, out, err = run_cli(capsys, "results", notes)
    assert code == 1 and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert "not a genrekit results file" in err
    assert _fingerprint(notes) == before
    code, _, err = run_cli(capsys, "results", tmp_path / "missing.jsonl")
    assert code == 1 and "no such results file" in err
