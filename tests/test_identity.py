"""A song's identity is its audio (issue 29 item 1): tag edits keep it, one audio byte changes it,
hostile headers fall back to the whole file's hash, and stores written before it migrate on open."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import struct
import tracemalloc
from pathlib import Path

import mutagen
import numpy as np
import pytest
import soundfile as sf

from cli_helpers import classify_main, summary
from tagged_files import KINDS, audio_frames, make_song, set_raw_genres, suffix
from genrekit.audio.files import content_hash, file_keys, identity
from genrekit.cli import main
from genrekit.library.results import SCHEMA_VERSION, open_results

FORMATS = (*KINDS, "opus", "aiff")


def _song(tmp_path: Path, kind: str) -> Path:
    if kind == "aiff":
        from synthetic_songs import synth

        path = tmp_path / "song.aiff"
        sf.write(path, synth("hiphop", 2.0), 22050, format="AIFF")
        return path
    return make_song(tmp_path / f"song-{kind}{'.opus' if kind == 'opus' else suffix(kind)}")


def _set_genre(path: Path, kind: str, values: list[str] | None) -> None:
    """Give ``path`` these genres (``None``: remove the genre) with mutagen, as a tagger would."""
    if kind in KINDS and values is not None:
        set_raw_genres(path, kind, values)
        return
    f = mutagen.File(path)
    if f.tags is None:
        f.add_tags()
    id3 = kind.startswith("mp3") or kind in ("wav", "aiff")
    key = "TCON" if id3 else "\xa9gen" if kind == "m4a" else "GENRE"
    if values is None:
        if id3:
            f.tags.delall(key)
        elif key in f.tags:
            del f.tags[key]
    elif id3:
        from mutagen.id3 import TCON

        f.tags.setall("TCON", [TCON(encoding=3, text=values)])
    else:
        f.tags[key] = values
    if kind.startswith("mp3"):
        f.tags.save(path, v2_version=3 if kind == "mp3-v23" else 4)
    else:
        f.save()


@pytest.mark.parametrize("kind", FORMATS)
def test_the_identity_is_the_audio_not_the_tags(tmp_path, kind):
    path = _song(tmp_path, kind)
    first, whole = file_keys(path)
    assert first.startswith("a1:") and whole == content_hash(path)
    sizes = {path.stat().st_size}
    for values in (["Rock"], ["Jazz", "Blues"], None, ["Ambient " * 4000]):  # add, change, remove, outgrow padding
        _set_genre(path, kind, values)
        sizes.add(path.stat().st_size)
        key, now = file_keys(path)
        assert key == first, f"{kind}: a tag edit ({values and values[0][:20]}) changed the identity"
        assert now == content_hash(path)
    assert max(sizes) - min(sizes) > 30000  # the file's bytes really changed, and grew past the tag's padding


@pytest.mark.parametrize("kind", FORMATS)
def test_one_audio_byte_changes_the_identity(tmp_path, kind):
    path = _song(tmp_path, kind)
    _set_genre(path, kind, ["Rock"])
    data = bytearray(path.read_bytes())
    if kind == "aiff":
        offset = data.index(b"SSND") + 8 + 8 + 100  # after its offset and block size fields
    else:
        frames = audio_frames(path)
        middle = frames[len(frames) // 2:len(frames) // 2 + 64]
        offset = data.index(middle) + 10
    before = identity(path)
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))
    after = identity(path)
    assert after != before and after.startswith("a1:")


def _whole(path: Path) -> str:
    return "f1:" + content_hash(path)


def _id3v2(size: int) -> bytes:
    return b"ID3\x04\x00\x00" + bytes((size >> 21 & 0x7F, size >> 14 & 0x7F, size >> 7 & 0x7F, size & 0x7F))


MPEG = b"\xff\xfb\x90\x64" + bytes(range(256)) * 4

HOSTILE = {
    "id3-claims-256MB": _id3v2(0x0FFFFFFF) + MPEG,
    "id3-not-syncsafe": b"ID3\x04\x00\x00\xff\xff\xff\xff" + MPEG,
    "id3-repeated-to-the-end": _id3v2(0) * 500,
    "id3-then-nothing-known": _id3v2(4) + b"abcd" + b"plain text",
    "ape-claims-more-than-the-file": MPEG + b"APETAGEX" + struct.pack("<IIII", 2000, 0xFFFFFFF0, 1, 0x80000000) + bytes(8),
    "lyrics3-claims-more": MPEG + b"999999LYRICS200",
    "appended-id3-claims-more": MPEG + b"3DI\x04\x00\x00\x7f\x7f\x7f\x7f",
    "only-tags": _id3v2(0) + b"TAG" + bytes(125),
    "flac-block-past-the-end": b"fLaC" + b"\x00\xff\xff\xff" + bytes(40),
    "flac-invalid-block": b"fLaC" + b"\xff\x00\x00\x04" + bytes(40),
    "flac-no-frames": b"fLaC" + b"\x80\x00\x00\x22" + bytes(0x22),
    "ogg-truncated-page": b"OggS\x00\x02" + bytes(20) + b"\xff" + b"\xff" * 255 + b"\x01vorbis" + bytes(100),
    "ogg-not-beginning": b"OggS\x00\x00" + bytes(20) + b"\x01\x10" + bytes(16),
    "ogg-unknown-codec": b"OggS\x00\x02" + bytes(20) + b"\x01\x10" + b"\x7fFLAC" + bytes(11),
    "ogg-garbage-after": b"OggS\x00\x02" + bytes(20) + b"\x01\x10" + b"OpusHead" + bytes(8) + b"junk" * 10,
    "wav-data-claims-4GB": b"RIFF\xff\xff\xff\xffWAVEfmt \x10\x00\x00\x00" + bytes(16) + b"data\xff\xff\xff\xff" + bytes(64),
    "wav-no-chunks": b"RIFF\x04\x00\x00\x00WAVE",
    "aiff-ssnd-claims-more": b"FORM\x00\x00\x10\x00AIFFSSND\x7f\xff\xff\xff" + bytes(32),
    "mp4-64-bit-size": b"\x00\x00\x00\x10ftypM4A \x00\x00\x00\x00" + b"\x00\x00\x00\x01mdat" + b"\x7f" + bytes(7) + bytes(32),
    "mp4-box-smaller-than-header": b"\x00\x00\x00\x10ftypM4A \x00\x00\x00\x00" + b"\x00\x00\x00\x04mdat" + bytes(32),
    "mp4-empty-mdat": b"\x00\x00\x00\x10ftypM4A \x00\x00\x00\x00" + b"\x00\x00\x00\x08mdat",
    "empty": b"",
    "one-byte": b"\xff",
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_or_truncated_headers_fall_back_to_the_whole_file(tmp_path, name):
    path = tmp_path / f"{name}.mp3"
    path.write_bytes(HOSTILE[name])
    assert identity(path) == _whole(path)


def test_mp3_tags_at_the_end_are_not_audio(tmp_path):
    from mutagen.apev2 import APEv2
    from mutagen.id3 import ID3

    path = _song(tmp_path, "mp3-v24")
    first = identity(path)
    _set_genre(path, "mp3-v24", ["Rock"])
    ID3(path).save(path, v1=2)  # an ID3v1 tag at the end too
    assert path.read_bytes()[-128:-125] == b"TAG" and identity(path) == first
    ape = APEv2()
    ape["Genre"] = "Jazz"
    ape.save(path)  # APEv2 before the ID3v1 tag
    assert b"APETAGEX" in path.read_bytes()[-300:] and identity(path) == first
    with open(path, "ab") as f:
        f.write(b"LYRICSBEGIN" + b"words" + b"000016LYRICS200")  # a Lyrics3 v2 block last
    assert identity(path) == first
    with open(path, "ab") as f:
        f.write(b"TAG" + bytes(125))  # and another ID3v1 tag after it
    assert identity(path) == first


def test_a_truncated_song_falls_back_and_big_claims_allocate_nothing(tmp_path):
    path = make_song(tmp_path / "song.flac")
    _set_genre(path, "flac", ["Rock"])
    data = path.read_bytes()
    (tmp_path / "cut.flac").write_bytes(data[:60])  # inside its metadata blocks
    assert identity(tmp_path / "cut.flac") == _whole(tmp_path / "cut.flac")
    # 8 MB of samples in a WAV whose data chunk claims 4 GB: read in bounded chunks, whole-file key.
    big = tmp_path / "big.wav"
    big.write_bytes(HOSTILE["wav-data-claims-4GB"][:-64] + bytes(8 << 20))
    tracemalloc.start()
    try:
        key = identity(big)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert key == _whole(big) and peak < 4 << 20


def test_a_pipe_or_device_is_refused_not_read(tmp_path):
    fifo = tmp_path / "song.mp3"
    os.mkfifo(fifo)
    with pytest.raises(OSError, match="not a regular file"):
        identity(fifo)
    with pytest.raises(OSError, match="not a regular file"):
        identity("/dev/zero")


# --- the done-when: a library classified, then tagged, is still four songs -----------------------
@pytest.fixture
def library(shared_data, tmp_path):
    """Four real clips (10 s) as MP3, FLAC, Ogg Vorbis and WAV, untagged."""
    folder = tmp_path / "music"
    folder.mkdir()
    picks = [("hiphop", ".mp3"), ("classical", ".flac"), ("metal", ".ogg"), ("jazz", ".wav")]
    songs = []
    for genre, ext in picks:
        y, sr = sf.read(shared_data / f"gtzan/genres/{genre}/{genre}.00000.wav", frames=220500)
        if ext == ".mp3" and "MP3" not in sf.available_formats():
            pytest.skip("this libsndfile cannot write MP3")
        songs.append(folder / f"{genre}{ext}")
        sf.write(songs[-1], y, sr)
    return folder, songs


def _store(path: Path) -> list[tuple]:
    with open_results(path) as store:
        return sorted((r["content_hash"], r["path"]) for r in store.records())


@pytest.mark.parametrize("store", ["r.sqlite", "r.jsonl"])
def test_tag_writes_keep_the_song_and_similar_lists_each_song_once(library, tmp_path, capsys, store):
    folder, songs = library
    out = tmp_path / store
    code, _, err = classify_main(capsys, folder, "--out", out)
    assert code == 0 and summary(err)["done"] == 4
    before = {p.name: p.read_bytes() for p in songs}
    code, _, err = classify_main(capsys, folder, "--write-tags", "--tag-mode", "fill", "--out", out)
    assert code == 0, err
    assert summary(err) == {"total": 4, "done": 0, "skipped": 4, "failed": 0}  # nothing analysed again
    changed = [p for p in songs if p.read_bytes() != before[p.name]]
    assert len(changed) >= 2, err  # tags really were written
    rows = _store(out)
    assert len(rows) == 4 and len({h for h, _ in rows}) == 4 and all(h.startswith("a1:") for h, _ in rows)
    code, _, err = classify_main(capsys, folder, "--out", out)  # and a third run reads nothing again
    assert summary(err)["skipped"] == 4
    for song in changed:
        assert main(["similar", str(song), "--library", str(out), "--format", "json", "--top", "10"]) == 0
        found = [r["path"] for r in json.loads(capsys.readouterr().out)]
        assert str(song) not in found and len(found) == len(set(found)) == 3
    # A re-tagged, renamed copy is the same song: not similar to itself.
    copy = tmp_path / "elsewhere.mp3"
    copy.write_bytes(songs[0].read_bytes())
    _set_genre(copy, "mp3-v24", ["Something Else"])
    assert main(["similar", str(copy), "--library", str(out), "--format", "json"]) == 0
    found = [r["path"] for r in json.loads(capsys.readouterr().out)]
    assert str(songs[0]) not in found and len(found) == 3


def _make_legacy(out: Path, extra: dict | None = None) -> None:
    """Turn a results database into what genrekit wrote before identities (schema 3, whole-file keys)."""
    with sqlite3.connect(out) as db:
        for path, key in db.execute("SELECT path, content_hash FROM file_hashes").fetchall():
            db.execute("UPDATE results SET content_hash = ? WHERE content_hash = ?", (content_hash(path), key))
            db.execute("UPDATE file_hashes SET content_hash = ? WHERE path = ?", (content_hash(path), path))
        for key, values in (extra or {}).items():
            db.execute("INSERT INTO results (content_hash, model_key, path, label, model, time) "
                       "VALUES (?, ?, ?, ?, ?, ?)", (key, *values))
        db.execute("PRAGMA user_version = 3")
    db.close()


def test_a_store_written_before_identities_migrates_on_open(library, tmp_path, capsys):
    folder, songs = library
    out = tmp_path / "r.sqlite"
    assert classify_main(capsys, folder, "--out", out)[0] == 0
    with contextlib.closing(sqlite3.connect(out)) as db:
        (model_key,) = {r[0] for r in db.execute("SELECT model_key FROM results")}
    _make_legacy(out, {"0" * 64: (model_key, str(tmp_path / "gone.wav"), "rock", "m", "2020-01-01T00:00:00Z")})
    with sqlite3.connect(out) as db:
        legacy = db.execute("SELECT content_hash FROM results").fetchall()
    db.close()
    assert len(legacy) == 5 and not any(h.startswith("a1:") for (h,) in legacy)
    # Read-only (similar, playlists, serve --library): the keys are mapped in memory, no byte changes.
    before = out.read_bytes()
    assert main(["similar", str(songs[1]), "--library", str(out), "--format", "json"]) == 0
    found = [r["path"] for r in json.loads(capsys.readouterr().out)]
    assert str(songs[1]) not in found and len(found) == len(set(found))
    with open_results(out, mode="r") as store:
        keys = sorted(r["content_hash"] for r in store.records())
        assert keys[0] == "0" * 64 and all(k.startswith("a1:") for k in keys[1:]) and len(keys) == 5
        assert store.lookup(identity(songs[1]), model_key)["path"] == str(songs[1])
    assert out.read_bytes() == before
    code, _, err = classify_main(capsys, folder, "--out", out)
    assert summary(err) == {"total": 4, "done": 0, "skipped": 4, "failed": 0}, err  # no re-analysis
    rows = _store(out)
    assert len(rows) == 5 and sum(h.startswith("a1:") for h, _ in rows) == 4
    assert ("0" * 64, str(tmp_path / "gone.wav")) in rows  # a file gone: its record kept as it was
    with sqlite3.connect(out) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_similar_counts_a_song_once_in_a_store_with_its_pre_tagging_record(library, tmp_path, capsys):
    """What the old code left after classify, then classify --write-tags: two records of one path."""
    folder, songs = library
    out = tmp_path / "r.sqlite"
    assert classify_main(capsys, folder, "--out", out)[0] == 0
    with sqlite3.connect(out) as db:
        columns = [r[1] for r in db.execute("PRAGMA table_info(results)")]
        picked = ", ".join("?" if c == "content_hash" else "'2020-01-01T00:00:00Z'" if c == "time" else c
                           for c in columns)
        db.execute(f"INSERT INTO results SELECT {picked} FROM results WHERE path = ?", ("1" * 64, str(songs[0])))
    db.close()
    assert main(["similar", str(songs[1]), "--library", str(out), "--format", "json"]) == 0
    found = [r["path"] for r in json.loads(capsys.readouterr().out)]
    assert sorted(found) == sorted(str(p) for p in (songs[0], *songs[2:]))


def test_a_jsonl_store_and_a_feature_cache_written_before_identities_migrate(tmp_path):
    from genrekit.features.cache import FeatureStore
    from genrekit.features.sets import feature_set
    from genrekit.library.results import JsonlResults

    song = make_song(tmp_path / "song.flac")
    old, st = content_hash(song), song.stat()
    line = {"content_hash": old, "model_key": "k", "path": str(song), "label": "rock", "model": "m",
            "time": "2020-01-01T00:00:00Z", "file": os.path.realpath(song), "size": st.st_size, "mtime_ns": st.st_mtime_ns}
    (tmp_path / "r.jsonl").write_text(json.dumps(line) + "\n")
    legacy = (tmp_path / "r.jsonl").read_bytes()
    with open_results(tmp_path / "r.jsonl", mode="r") as store:  # read-only: keys mapped in memory only
        assert store.lookup(identity(song), "k")["label"] == "rock"
        assert [r["content_hash"] for r in store.records()] == [identity(song)]
    assert (tmp_path / "r.jsonl").read_bytes() == legacy
    with JsonlResults(tmp_path / "r.jsonl") as store:
        assert store.lookup(store.file_id(song).content_hash, "k")["label"] == "rock"
        assert store.file_id(song).content_hash == identity(song)
    migrated = (tmp_path / "r.jsonl").read_bytes()
    assert migrated.count(b"\n") == 2  # the line again, under the identity
    with JsonlResults(tmp_path / "r.jsonl") as store:  # once: a second opening adds nothing
        assert store.lookup(identity(song), "k")["label"] == "rock"
    assert (tmp_path / "r.jsonl").read_bytes() == migrated

    fs = feature_set("logmel")
    cache = tmp_path / "cache"
    with FeatureStore(cache) as store:
        store.put(old, fs, np.ones(3, dtype=np.float32), n_samples=10)
        store._sql("INSERT INTO file_hashes VALUES (?, ?, ?, ?)", (os.path.realpath(song), st.st_size, st.st_mtime_ns, old))
    with sqlite3.connect(cache / "features.sqlite") as db:
        db.execute("PRAGMA user_version = 2")
    db.close()
    with FeatureStore(cache) as store:
        assert store.file_hash(song) == identity(song)
        assert store.get(identity(song), fs).n_samples == 10 and store.get(old, fs) is None
