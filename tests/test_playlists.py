"""``genrekit playlists``: one M3U8 per genre from a results store, best-scoring first."""

from __future__ import annotations

import json
from pathlib import Path

from genrekit.cli import main
from cli_helpers import classify_main
from synthetic_songs import write_song


def test_playlists_by_genre_relative_paths_best_first_and_min_score(capsys, bundle_dir, tmp_path):
    music = tmp_path / "music"
    songs = [write_song(music / f"{kind}{i}.flac", kind, seed=i)
             for i, kind in enumerate(("metal", "metal", "hiphop", "classical"))]
    out = tmp_path / "results.jsonl"
    code, stdout, _ = classify_main(capsys, music, "--model", bundle_dir, "--out", out, "--format", "json")
    assert code == 0
    results = {Path(r["path"]).name: r for r in json.loads(stdout)}
    names = tmp_path / "names.toml"
    names.write_text('hiphop = "Hip Hop"\n')

    lists = tmp_path / "lists"
    assert main(["playlists", str(out), "--out", str(lists), "--names", str(names)]) == 0
    files = sorted(p.name for p in lists.iterdir())
    assert files == ["Classical.m3u8", "Hip Hop.m3u8", "Metal.m3u8"]
    lines = (lists / "Metal.m3u8").read_text(encoding="utf-8").splitlines()
    assert lines[:2] == ["#EXTM3U", "#PLAYLIST:Metal"]
    entries = [line for line in lines if not line.startswith("#")]
    assert all(e.startswith("../music/metal") for e in entries)  # relative to the playlists' folder
    scores = [results[Path(e).name]["probabilities"]["metal"] for e in entries]
    assert len(entries) == 2 and scores == sorted(scores, reverse=True)
    assert all((lists / e).resolve() in {s.resolve() for s in songs} for e in entries)
    assert lines[2].startswith("#EXTINF:5,")

    # --min-score above every score: no playlist
    capsys.readouterr()
    assert main(["playlists", str(out), "--out", str(tmp_path / "none"), "--min-score", "1"]) == 0
    assert "0 playlist(s)" in capsys.readouterr().err

    assert main(["playlists", str(tmp_path / "missing.jsonl"), "--out", str(lists)]) == 1
    assert "missing.jsonl: no such results file" in capsys.readouterr().err
