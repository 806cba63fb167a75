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


# --- issue 30: results are read-only input, their text is values ------------------------------------------

import sqlite3  # noqa: E402

import pytest  # noqa: E402

from results_files import fingerprint, hand_made, write_jsonl  # noqa: E402


def _playlists(capsys, results, out, *extra) -> tuple[int, str]:
    code = main(["playlists", str(results), "--out", str(out), *map(str, extra)])
    return code, capsys.readouterr().err


def _beets_like_db(path: Path) -> Path:
    db = sqlite3.connect(path)
    db.executescript("CREATE TABLE items (id INTEGER PRIMARY KEY, path BLOB, genre TEXT);"
                     "INSERT INTO items (path, genre) VALUES (X'2f612e6d7033', 'Rock'); PRAGMA user_version = 7;")
    db.close()
    return path


def _notes(path: Path) -> Path:
    path.write_bytes(b'{"a": 1}\nmy last line')  # the attack report's 46-byte example, less its padding
    return path


@pytest.mark.parametrize("make", [_notes, _beets_like_db], ids=["notes.jsonl", "library.db"])
@pytest.mark.parametrize("verb", ["playlists", "similar"])
def test_read_verbs_refuse_a_file_that_is_not_a_results_store_and_change_no_byte(capsys, tmp_path, make, verb):
    song = write_song(tmp_path / "song.wav", "metal", seconds=1.0)
    target = make(tmp_path / ("notes.jsonl" if make is _notes else "library.db"))
    before = fingerprint(target)
    argv = (["playlists", str(target), "--out", str(tmp_path / "pl")] if verb == "playlists"
            else ["similar", str(song), "--library", str(target)])
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 1 and f"{target}: not a genrekit results file" in err, err
    assert len(err.strip().splitlines()) == 1
    assert fingerprint(target) == before  # same bytes, same mtime, no -wal/-shm/-journal beside it
    if make is _beets_like_db:
        db = sqlite3.connect(f"file:{target}?mode=ro", uri=True)
        assert db.execute("PRAGMA user_version").fetchone()[0] == 7
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
        assert [r[0] for r in db.execute("SELECT name FROM sqlite_master")] == ["items"]
        db.close()


@pytest.mark.parametrize("suffix", [".jsonl", ".sqlite"])
def test_playlists_read_a_store_without_changing_it(capsys, tmp_path, suffix):
    from genrekit.library.results import open_results

    song = write_song(tmp_path / "music" / "a.wav", "metal", seconds=1.0)
    store_path = tmp_path / f"results{suffix}"
    with open_results(store_path) as store:
        store.put(hand_made(song), None)
    if suffix == ".jsonl":  # a run killed mid-line: the writer would cut it, a reader must not
        with open(store_path, "ab") as f:
            f.write(b'{"content_hash": "half-writ')
    before = fingerprint(store_path)[:3]
    code, err = _playlists(capsys, store_path, tmp_path / "pl")
    assert code == 0, err
    assert fingerprint(store_path)[:3] == before
    assert (tmp_path / "pl" / "Metal.m3u8").read_text().splitlines()[-1] == "../music/a.wav"


def _entries(folder: Path) -> list[str]:
    return [line for p in sorted(folder.glob("*.m3u8")) for line in p.read_text(encoding="utf-8").splitlines()
            if not line.startswith("#")]


def test_playlist_text_is_values_never_lines(capsys, tmp_path):
    music = tmp_path / "music"
    good = write_song(music / "good.wav", "metal", seconds=1.0)
    other = write_song(music / "other.wav", "metal", seconds=1.0)
    newline_name = write_song(music / "x\n#EXTINF:1,pwned\nevil.wav", "metal", seconds=1.0)
    outside = write_song(tmp_path / "elsewhere" / "outside.wav", "metal", seconds=1.0)
    hashy = write_song(music / "#EXTINF:2,odd name.wav", "metal", seconds=1.0)
    evil = "Rock\n#EXTINF:1,pwned\nhttp://127.0.0.1:9/evil.mp3"
    results = write_jsonl(tmp_path / "results.jsonl", [
        hand_made(good, label=evil), hand_made(other, label="metal"), hand_made(newline_name),
        hand_made(outside), hand_made("/etc/passwd"), hand_made(music / ".." / ".." / "etc" / "hostname"),
        hand_made(hashy)])
    code, err = _playlists(capsys, results, tmp_path / "pl", "--root", music)
    assert code == 0, err
    entries = _entries(tmp_path / "pl")
    assert sorted(entries) == ["../music/#EXTINF:2,odd name.wav", "../music/good.wav", "../music/other.wav"]
    for p in (tmp_path / "pl").glob("*.m3u8"):
        for line in p.read_text(encoding="utf-8").splitlines():
            assert line.startswith(("#EXTM3U", "#PLAYLIST:", "#EXTINF:")) or (tmp_path / "pl" / line).is_file(), line
            assert "http://" not in line or "\\n" in line  # the label's URL stays inside its escaped #EXTINF text
    assert "left out 4 song(s)" in err and "outside the library folder" in err and "control character" in err
    assert "/etc/passwd" in err and "\n" not in err.split("left out", 1)[1].split("\n", 1)[0]


def test_a_10_kb_label_gives_a_bounded_playlist_file_name(capsys, tmp_path):
    song = write_song(tmp_path / "music" / "a.wav", "metal", seconds=1.0)
    results = write_jsonl(tmp_path / "results.jsonl", [hand_made(song, label="x" * 10_000)])
    code, err = _playlists(capsys, results, tmp_path / "pl")
    assert code == 0, err
    (playlist,) = (tmp_path / "pl").iterdir()
    assert len(playlist.name.encode()) <= 130 and playlist.read_text().splitlines()[-1] == "../music/a.wav"
    assert all(len(line) < 400 for line in playlist.read_text().splitlines())


def test_a_song_whose_name_is_not_utf8_is_listed_by_its_own_bytes(capsys, tmp_path):
    import os

    music = tmp_path / "music"
    song = write_song(music / "a.wav", "metal", seconds=1.0)
    odd = Path(os.fsdecode(bytes(music) + b"/caf\xe9.wav"))
    song.rename(odd)
    results = write_jsonl(tmp_path / "results.jsonl", [hand_made(odd)])
    code, err = _playlists(capsys, results, tmp_path / "pl")
    assert code == 0, err
    assert (tmp_path / "pl" / "Metal.m3u8").read_bytes().splitlines()[-1] == b"../music/caf\xe9.wav"


def test_songs_outside_the_results_folder_need_root(capsys, tmp_path):
    song = write_song(tmp_path / "music" / "a.wav", "metal", seconds=1.0)
    (tmp_path / "elsewhere").mkdir()
    results = write_jsonl(tmp_path / "elsewhere" / "results.jsonl", [hand_made(song)])
    code, err = _playlists(capsys, results, tmp_path / "pl")
    assert code == 0 and "left out 1 song(s)" in err and "--root DIR lists the songs below another folder" in err
    code, err = _playlists(capsys, results, tmp_path / "pl", "--root", tmp_path / "music")
    assert code == 0 and "left out" not in err and (tmp_path / "pl" / "Metal.m3u8").exists()


# --- issue 29 item 6: unknown songs in their own playlist, #EXTINF from artist and title tags -------------


def test_unknown_songs_get_their_own_playlist_and_entries_show_artist_and_title(capsys, tmp_path):
    from tagged_songs import tag

    def titled(path, artist=None, title=None):
        song = tag(write_song(path, "metal", seconds=1.0), ["Metal"], artist)
        if title is not None:
            import mutagen

            f = mutagen.File(song, easy=True)
            f["title"] = [title]
            f.save()
        return song

    music = tmp_path / "music"
    known = titled(music / "a.mp3", "Ünïcode Band", "First Song")
    strange = titled(music / "b.flac", "Drone Unit", "Hum\n#EXTINF:1,pwned")
    no_title = titled(music / "c.ogg", "Only Artist")
    other = titled(music / "d.flac", "Somebody", "Odd One")
    results = write_jsonl(tmp_path / "results.jsonl", [
        hand_made(known), hand_made(strange, unknown=True), hand_made(no_title),
        hand_made(other, label="hiphop", unknown=True, probabilities={"hiphop": 0.4, "metal": 0.3})])
    names = tmp_path / "names.toml"
    names.write_text('hiphop = "Hip Hop"\n')
    code, err = _playlists(capsys, results, tmp_path / "pl")
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "pl").iterdir()) == ["Metal.m3u8", "Unknown.m3u8"]
    metal = (tmp_path / "pl" / "Metal.m3u8").read_text(encoding="utf-8").splitlines()
    assert metal == ["#EXTM3U", "#PLAYLIST:Metal", "#EXTINF:5,Ünïcode Band - First Song (Metal 0.90)", "../music/a.mp3",
                     "#EXTINF:5,c (Metal 0.90)", "../music/c.ogg"]
    unknown = (tmp_path / "pl" / "Unknown.m3u8").read_text(encoding="utf-8").splitlines()
    assert unknown[:2] == ["#EXTM3U", "#PLAYLIST:Unknown"]
    assert unknown[2:] == ["#EXTINF:5,Drone Unit - Hum\\n#EXTINF:1,pwned (Unknown, closest: Metal 0.90)",
                           "../music/b.flac",
                           "#EXTINF:5,Somebody - Odd One (Unknown, closest: Hip-Hop 0.40)", "../music/d.flac"]
    # the unknown playlist is named through the names map, as the genres are
    names.write_text('unknown = "Unclassified"\nhiphop = "Hip Hop"\n')
    code, err = _playlists(capsys, results, tmp_path / "named", "--names", names)
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "named").iterdir()) == ["Metal.m3u8", "Unclassified.m3u8"]
    assert "(Unclassified, closest: Hip Hop 0.40)" in (tmp_path / "named" / "Unclassified.m3u8").read_text()
