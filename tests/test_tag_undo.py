"""Undo is exact, checked and journalled (issue 30; issue 29 item 2).

Every file is made here: songs written by soundfile or PyAV, given tags by mutagen the way other
taggers leave them (an ID3v1 genre byte, a numeric ``(17)`` genre, a lower-case Vorbis ``genre``
key among several comments, a non-UTF-8 MP4 value). genrekit's own plan writes the genres and
its own journal undoes them; the tests compare whole files' bytes and their mtimes.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from genrekit.cli import main
from genrekit.errors import GenrekitError
from genrekit.prediction import Prediction
from genrekit.tagging.formats import read_genres
from genrekit.tagging.journal import Journal, history, journal_dir
from genrekit.tagging.plan import REPLACED, WRITTEN, TagPlan
from genrekit.tagging.undo import ALREADY, CHANGED_SINCE, RESTORED, undo
from tagged_files import make_song

PRED = Prediction(path="x", label="hiphop", probabilities={"hiphop": 0.81, "pop": 0.12, "rock": 0.05, "jazz": 0.02},
                  duration=2.0, model="gtzan-musicnn")
OTHER = Prediction(path="x", label="jazz", probabilities={"jazz": 0.7, "hiphop": 0.3}, duration=2.0, model="m2")


def _mp3(path: Path, version: int, genre: str | None, v1: bool = False) -> Path:
    from mutagen.id3 import ID3, TCON, TIT2, TPE1

    make_song(path)
    if genre is None and not v1:
        return path
    tags = ID3()
    tags.add(TIT2(encoding=3, text=["A title"]))
    if genre is not None:
        tags.add(TCON(encoding=1 if version == 3 else 3, text=[genre]))
    tags.add(TPE1(encoding=3, text=["An artist"]))
    tags.save(path, v2_version=version, v1=2 if v1 else 0)
    return path


def _ogg_lower_case(path: Path) -> Path:
    from mutagen.oggvorbis import OggVorbis

    make_song(path)
    f = OggVorbis(path)
    f.tags.clear()
    f.tags.extend([("title", "A title"), ("genre", "Folk"), ("Artist", "An artist"), ("genre", "Jazz"),
                   ("comment", "kept in this order")])
    f.save()
    return path


def _flac(path: Path, genre: list[str] | None) -> Path:
    from mutagen.flac import FLAC

    make_song(path)
    f = FLAC(path)
    f["ARTIST"] = ["An artist"]
    if genre:
        f["genre"] = genre
    f.save()
    return path


def _m4a(path: Path) -> Path:
    from mutagen.mp4 import MP4, MP4FreeForm

    make_song(path)
    f = MP4(path)
    f["\xa9nam"] = ["A title"]
    f["\xa9gen"] = ["Folk"]
    f["----:org.genrekit:GENREKIT"] = [MP4FreeForm(b"caf\xe9 latin-1, not UTF-8")]
    f.save()
    return path


def _songs(folder: Path) -> dict[str, Path]:
    folder.mkdir(exist_ok=True)
    songs = {
        "v23-numeric.mp3": _mp3(folder / "v23-numeric.mp3", 3, "(17)"),
        "v24.mp3": _mp3(folder / "v24.mp3", 4, "Folk"),
        "v1.mp3": _mp3(folder / "v1.mp3", 4, "Rock", v1=True),
        "untagged.mp3": make_song(folder / "untagged.mp3"),
        "folk.flac": _flac(folder / "folk.flac", ["Folk"]),
        "bare.flac": _flac(folder / "bare.flac", None),
        "lower.ogg": _ogg_lower_case(folder / "lower.ogg"),
        "latin1.m4a": _m4a(folder / "latin1.m4a"),
    }
    for n, path in enumerate(sorted(songs.values())):  # mtimes from long ago, distinct
        os.utime(path, ns=(1_500_000_000_000_000_000 + n * 1_000_000_007,) * 2)
    return songs


def _snapshot(songs: dict[str, Path]) -> dict[str, tuple[bytes, int]]:
    return {name: (p.read_bytes(), os.stat(p).st_mtime_ns) for name, p in songs.items()}


def test_fill_and_replace_then_undo_leave_every_file_byte_identical_with_its_mtime(tmp_path):
    songs = _songs(tmp_path / "music")
    snapshot = _snapshot(songs)
    fill = Journal({"mode": "fill"})
    for name in ("untagged.mp3", "bare.flac"):
        assert TagPlan(journal=fill).apply(songs[name], PRED).status == WRITTEN
    replace = Journal({"mode": "replace"})
    plan = TagPlan(count=2, mode="replace", journal=replace)
    for name in sorted(set(songs) - {"untagged.mp3", "bare.flac"}):
        assert plan.apply(songs[name], PRED).status == REPLACED, name
        assert songs[name].read_bytes() != snapshot[name][0]
    assert read_genres(songs["v1.mp3"]) == ["Hip-Hop", "Pop"]

    assert [r.status for r in undo(replace.paths[0])] == [RESTORED] * 6
    assert [r.status for r in undo(fill.paths[0])] == [RESTORED] * 2
    assert _snapshot(songs) == snapshot  # the ID3v1 byte, the empty tag, (17), key case and order, non-UTF-8
    assert [info.undone for info in history() if info.meta.get("command") != "undo"] != [None, None]


def test_undo_out_of_order_refuses_the_files_a_later_run_wrote_on(tmp_path):
    songs = _songs(tmp_path / "music")
    snapshot = _snapshot(songs)
    a, b = Journal({"mode": "replace", "command": "A"}), Journal({"mode": "replace", "command": "B"})
    names = sorted(songs)
    for name in names:
        TagPlan(mode="replace", journal=a).apply(songs[name], PRED)
    for name in names[:4]:  # run B writes on four of them
        assert TagPlan(mode="replace", journal=b).apply(songs[name], OTHER).status == REPLACED
    b_state = _snapshot({n: songs[n] for n in names[:4]})

    results = {Path(r.path).name: r for r in undo(a.paths[0])}
    for name in names[:4]:
        assert results[name].status == CHANGED_SINCE and b.name in results[name].reason, results[name]
    assert _snapshot({n: songs[n] for n in names[:4]}) == b_state  # refused: left exactly as B left them
    assert {results[n].status for n in names[4:]} == {RESTORED}
    info_a = next(i for i in history() if i.path.name == a.name)
    assert not info_a.undone and info_a.undone_files == 4  # not marked undone for the files it refused

    assert {r.status for r in undo(b.paths[0])} == {RESTORED}
    assert {r.status for r in undo(a.paths[0])} == {RESTORED, ALREADY}
    assert _snapshot(songs) == snapshot
    assert all(i.undone for i in history() if i.meta.get("command") in ("A", "B"))


def test_an_undo_is_journalled_and_undoing_it_restores_the_written_state(tmp_path, capsys):
    songs = _songs(tmp_path / "music")
    original = _snapshot(songs)
    journal = Journal({"mode": "replace", "command": "classify"})
    for path in songs.values():
        TagPlan(mode="replace", journal=journal).apply(path, PRED)
    written = _snapshot(songs)
    assert main(["tags", "undo"]) == 0 and _snapshot(songs) == original
    undo_journal = [i for i in history() if i.meta.get("command") == "undo"]
    assert len(undo_journal) == 1 and undo_journal[0].files == len(songs)
    assert main(["tags", "undo", str(undo_journal[0].path)]) == 0  # the undo of the undo
    assert {n: c for n, (c, _) in _snapshot(songs).items()} == {n: c for n, (c, _) in written.items()}
    assert main(["tags", "undo"]) == 0 and _snapshot(songs) == original  # and the run can be undone again
    capsys.readouterr()


def test_the_journal_is_created_before_any_file_is_touched(tmp_path, monkeypatch, capsys, bundle_dir):
    songs = _songs(tmp_path / "music")
    snapshot = _snapshot(songs)
    state = tmp_path / "state-is-a-file"
    state.write_text("not a folder")
    monkeypatch.setenv("GENREKIT_STATE", str(state))
    from genrekit.config import settings

    settings.cache_clear()
    code = main(["classify", str(tmp_path / "music"), "--model", str(bundle_dir), "--write-tags",
                 "--tag-mode", "replace"])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err and "journal" in err and str(state) in err, err
    assert len(err.strip().splitlines()) == 1, err
    assert _snapshot(songs) == snapshot and state.read_text() == "not a folder"


def test_a_journal_write_that_fails_mid_run_stops_the_run_and_leaves_the_file_unchanged(tmp_path):
    songs = _songs(tmp_path / "music")
    journal = Journal({"mode": "replace"})
    plan = TagPlan(mode="replace", journal=journal)
    first, second = songs["v24.mp3"], songs["folk.flac"]
    assert plan.apply(first, PRED).status == REPLACED
    content = second.read_bytes()
    # The journal folder goes away under the run (a full or removed disk): a file takes its place.
    shutil.rmtree(journal_dir())
    journal_dir().write_text("in the way")
    with pytest.raises(GenrekitError, match="journal"):
        plan.apply(second, PRED)
    assert second.read_bytes() == content
    assert not [p for p in second.parent.iterdir() if p.name.startswith(".")]  # no temporary copy left


def test_history_and_undo_escape_what_a_journal_says(tmp_path, capsys):
    folder = tmp_path / "a\x1b[2Jfolder"
    folder.mkdir()
    path = _flac(folder / "song\x1b]0;pwned\x07.flac", ["\x1b[31mred" + "x" * 100_000])
    journal = Journal({"mode": "replace", "model": "m\x1b[2J" + "y" * 50_000})
    TagPlan(mode="replace", journal=journal).apply(path, PRED)
    assert main(["tags", "history"]) == 0
    assert main(["tags", "undo", "--dry-run"]) == 0
    assert main(["tags", "undo"]) == 0
    out, err = capsys.readouterr()
    assert "\x1b" not in out + err and "\x07" not in out + err
    assert max(len(line) for line in (out + err).splitlines()) < 2000


def test_kept_and_merged_lines_escape_and_bound_tag_values(tmp_path, capsys, bundle_dir):
    music = tmp_path / "music"
    music.mkdir()
    song = _flac(music / "song.flac", ["\x1b[2J" + "z" * 10_000_000])
    many = _mp3(music / "many.mp3", 4, None)
    from mutagen.id3 import ID3, TCON

    tags = ID3()
    tags.add(TCON(encoding=3, text=[f"g{n}" for n in range(100_000)]))
    tags.save(many)
    code = main(["classify", str(music), "--model", str(bundle_dir), "--write-tags"])
    out, err = capsys.readouterr()
    assert code == 0 and "\x1b" not in err and len(err) < 20_000, len(err)
    assert "kept its genre" in err and song.exists()


@pytest.mark.parametrize("where", ["start", "middle", "end", "whole"])
@pytest.mark.parametrize("grow", [-70_000, -1, 0, 1, 3_000_000])
def test_the_changed_span_and_its_rebuild_are_exact_across_read_chunks(tmp_path, where, grow):
    """Files of several read chunks (CHUNK is 1 MiB): an edit of any size anywhere is found, kept and put back."""
    import numpy as np

    from genrekit.tagging.spans import CHUNK, compare, fingerprint, load_span, rebuild, save_span

    rng = np.random.default_rng(len(where) * 7 + grow % 97)
    before = rng.integers(0, 4, 3 * CHUNK + 12_345, dtype=np.uint8).tobytes()  # few symbols: long common runs
    at = {"start": 0, "middle": 3 * CHUNK // 2, "end": len(before) - 100, "whole": 0}[where]
    cut = len(before) if where == "whole" else at + 100
    edit = rng.integers(0, 4, max(0, 100 + grow), dtype=np.uint8).tobytes()
    after = before[:at] + edit + before[cut:]
    a, b = tmp_path / "before", tmp_path / "after"
    a.write_bytes(before)
    b.write_bytes(after)
    was, will, (offset, old, new) = compare(str(a), str(b))
    assert was.same_content(fingerprint(a)) and will.same_content(fingerprint(b))
    assert after[:offset] + before[offset:offset + old] + after[offset + new:] == before
    save_span(str(a), offset, old, str(tmp_path / "span.z"))
    rebuild(str(b), fingerprint(b), (offset, new), load_span(tmp_path / "span.z", old), was)
    assert b.read_bytes() == before


def test_past_the_byte_limit_undo_restores_the_values_and_says_so(tmp_path):
    from genrekit.tagging.plan import FAILED
    from genrekit.tagging.undo import TAGS_ONLY

    folk = _flac(tmp_path / "folk.flac", ["Folk", "Jazz"])
    journal = Journal({"mode": "replace"}, span_max=0)  # keep no bytes: the values are the undo
    assert TagPlan(mode="replace", journal=journal).apply(folk, PRED).status == REPLACED
    [result] = undo(journal.path)
    assert result.status == TAGS_ONLY and "kept for an exact undo" in result.reason, result
    assert read_genres(folk) == ["Folk", "Jazz"]
    from genrekit.tagging.formats import read_state

    assert read_state(folk).field is None

    # Values too long to keep as well: the change could not be undone, so it is not made.
    huge = _flac(tmp_path / "huge.flac", ["x" * 70_000])
    content = huge.read_bytes()
    change = TagPlan(mode="replace", journal=Journal({"mode": "replace"}, span_max=0)).apply(huge, PRED)
    assert change.status == FAILED and "could not be undone" in change.reason and huge.read_bytes() == content


def test_undo_leaves_a_file_made_read_only_since_as_it_is(tmp_path):
    from genrekit.tagging.undo import UNDO_FAILED

    song = _flac(tmp_path / "song.flac", None)
    journal = Journal({"mode": "fill"})
    assert TagPlan(journal=journal).apply(song, PRED).status == WRITTEN
    os.chmod(song, 0o444)
    content = song.read_bytes()
    try:
        [result] = undo(journal.path)
        assert result.status == UNDO_FAILED and "read-only" in result.reason and song.read_bytes() == content
    finally:
        os.chmod(song, 0o644)
    assert [r.status for r in undo(journal.path)] == [RESTORED]
