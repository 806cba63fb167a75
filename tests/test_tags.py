"""Genre tags: each format's multi-value convention, the modes, the name map, genrekit's field,
dry runs, undo, and never at the audio's expense.

Files are made by the tests (soundfile for mp3/flac/ogg/opus/wav, PyAV's AAC encoder for m4a),
most with genres already in them. "Audio frames byte-identical" is :func:`tagged_files.audio_frames`
(the container parsed, tag blocks left out); "samples unchanged" is :func:`genrekit.audio.decode.load`.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from genrekit.audio import decode as audio
from genrekit.errors import TagError
from genrekit.prediction import Prediction
from genrekit.tagging.names import load_names
from genrekit.tagging.formats import read_genres
from genrekit.tagging.journal import Journal, history, journal_dir
from genrekit.tagging.undo import CHANGED_SINCE, RESTORED, undo
from genrekit.tagging.plan import (KEPT, MERGED, READ_ONLY, REPLACED, UNCERTAIN, UNCHANGED, UNSUPPORTED, WRITTEN,
                                   TagPlan)
from cli_helpers import classify_main, summary
from synthetic_songs import SR, synth, write_song
from tagged_files import KINDS, audio_frames, id3_version, make_song, make_tagged, raw_tags

#: A result as the default model gives it (genrekit's own object, built here).
PRED = Prediction(path="x", label="hiphop", probabilities={"hiphop": 0.81, "pop": 0.12, "rock": 0.05, "jazz": 0.02},
                  duration=2.0, model="gtzan-musicnn")
FIELD = "Hip-Hop 0.81; Pop 0.12 (gtzan-musicnn)"


def expected_raw(kind: str, values: list[str]) -> list[str]:
    """How ``kind`` stores several genres: ID3v2.3 one value joined by "/", the others one per value."""
    return ["/".join(values)] if kind == "mp3-v23" else values


def leftovers(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if p.name.startswith(".")]


# --- every format, every mode, and undo --------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
def test_modes_several_genres_field_and_undo_keep_the_audio(tmp_path, kind):
    path = make_tagged(tmp_path, kind, ["Electronic", "hip hop"])
    os.chmod(path, 0o640)
    frames, samples = audio_frames(path), audio.load(path, sr=SR)
    original = raw_tags(path, kind)
    assert original == (expected_raw(kind, ["Electronic", "hip hop"]), None)
    assert read_genres(path) == ["Electronic", "hip hop"]  # the format's own rule, read back

    # fill (the default): the file has a genre, so it is kept, byte for byte
    content = path.read_bytes()
    change = TagPlan(count=2).apply(path, PRED)
    assert (change.status, change.old) == (KEPT, ["Electronic", "hip hop"]) and path.read_bytes() == content

    # merge: "hip hop" is Hip-Hop through the name map, so only Pop is appended
    journal = Journal({"mode": "merge"})
    change = TagPlan(count=2, mode="merge", journal=journal).apply(path, PRED)
    assert change.status == MERGED and change.new == ["Electronic", "hip hop", "Pop"], change
    assert raw_tags(path, kind) == (expected_raw(kind, ["Electronic", "hip hop", "Pop"]), [FIELD])
    assert read_genres(path) == ["Electronic", "hip hop", "Pop"]
    assert audio_frames(path) == frames and np.array_equal(audio.load(path, sr=SR), samples)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640 and leftovers(tmp_path) == []
    if kind.startswith("mp3"):
        assert id3_version(path) == (3 if kind == "mp3-v23" else 4)  # the file's ID3 version is kept
    # a second merge adds nothing
    assert TagPlan(count=2, mode="merge").apply(path, PRED).status == UNCHANGED

    # undo: exactly the values before, genrekit's field gone, the audio untouched
    results = undo(journal.paths[0])
    assert [r.status for r in results] == [RESTORED]
    assert raw_tags(path, kind) == original and read_genres(path) == ["Electronic", "hip hop"]
    assert audio_frames(path) == frames and np.array_equal(audio.load(path, sr=SR), samples)

    # replace: two genres, best first, in the format's convention
    journal = Journal({"mode": "replace"})
    change = TagPlan(count=2, mode="replace", journal=journal).apply(path, PRED)
    assert (change.status, change.new) == (REPLACED, ["Hip-Hop", "Pop"])
    assert raw_tags(path, kind) == (expected_raw(kind, ["Hip-Hop", "Pop"]), [FIELD])
    assert audio_frames(path) == frames
    assert [r.status for r in undo(journal.paths[0])] == [RESTORED] and raw_tags(path, kind) == original
    assert audio_frames(path) == frames


@pytest.mark.parametrize("kind", KINDS)
def test_a_file_without_genre_is_written_and_undone_to_none(tmp_path, kind):
    path = make_tagged(tmp_path, kind, None)
    frames = audio_frames(path)
    journal = Journal({"mode": "fill"})
    change = TagPlan(journal=journal).apply(path, PRED)  # fill, one genre
    assert (change.status, change.old, change.new) == (WRITTEN, [], ["Hip-Hop"])
    assert raw_tags(path, kind) == (["Hip-Hop"], ["Hip-Hop 0.81 (gtzan-musicnn)"])
    assert audio_frames(path) == frames
    undo(journal.paths[0])
    assert raw_tags(path, kind)[0] is None and raw_tags(path, kind)[1] is None and read_genres(path) == []
    assert audio_frames(path) == frames


def test_the_default_models_electronic_is_written_and_read_back_as_electronic(tmp_path):
    """broad-musicnn's eleventh genre has a display name like GTZAN's ten: "Electronic", not the label."""
    pred = Prediction(path="x", label="electronic", probabilities={"electronic": 0.74, "pop": 0.2, "rock": 0.06},
                      duration=2.0, model="broad-musicnn")
    path = make_tagged(tmp_path, "flac", None)
    change = TagPlan(count=2, min_score=0.1).apply(path, pred)
    assert (change.status, change.new) == (WRITTEN, ["Electronic", "Pop"])
    assert raw_tags(path, "flac") == (["Electronic", "Pop"], ["Electronic 0.74; Pop 0.20 (broad-musicnn)"])
    (tmp_path / "m").mkdir()
    merged = make_tagged(tmp_path / "m", "flac", ["electronica", "ELECTRONIC"])
    change = TagPlan(mode="merge").apply(merged, pred)  # the same genre written another way is not added twice
    assert raw_tags(merged, "flac")[0] == ["electronica", "ELECTRONIC"] and change.status == UNCHANGED


def test_a_file_changed_after_writing_is_left_alone_by_undo(tmp_path):
    from tagged_files import set_raw_genres

    changed = make_tagged(tmp_path, "flac", ["Folk"], seed=1)
    untouched = make_tagged(tmp_path, "mp3-v24", ["Folk"], seed=2)
    journal = Journal({"mode": "replace"})
    plan = TagPlan(mode="replace", journal=journal)
    assert plan.apply(changed, PRED).status == REPLACED and plan.apply(untouched, PRED).status == REPLACED
    set_raw_genres(changed, "flac", ["Trip-Hop"])  # another tagger, after genrekit
    content = changed.read_bytes()
    results = {Path(r.path).name: r for r in undo(journal.paths[0])}
    assert results[changed.name].status == CHANGED_SINCE and "left alone" in str(results[changed.name])
    assert changed.read_bytes() == content and read_genres(changed) == ["Trip-Hop"]
    assert results[untouched.name].status == RESTORED and read_genres(untouched) == ["Folk"]
    # the history counts the one file restored; the run stays pending for the file left alone
    run = next(info for info in history() if info.path == journal.path)
    assert not run.undone and run.undone_files == 1


def test_min_score_count_and_names_that_are_never_written(tmp_path):
    names_file = tmp_path / "names.toml"
    names_file.write_text('hiphop = ["Hip Hop", "Rap"]\npop = ""\nrock = "Rock & Roll"\n'
                          '[aliases]\n"Boom Bap" = "hiphop"\n')
    names = load_names(names_file)
    assert names.display("hiphop") == "Hip Hop" and names.tag_names("pop") == [] and names.display("pop") == "Pop"
    assert names.canonical("boom-bap") == "hiphop" and names.canonical("HIP-HOP") == "hiphop"
    assert names.canonical("rock and roll") is None and names.canonical("Rock & Roll") == "rock"
    assert names.display("drum_and_bass") == "drum_and_bass"  # a trained model's own label: as it is

    path = make_tagged(tmp_path, "ogg", None)
    # pop is never written, so the next best (rock) takes its place; jazz is below the minimum
    change = TagPlan(names, count=3, min_score=0.04).apply(path, PRED)
    assert change.new == ["Hip Hop", "Rap", "Rock & Roll"]
    assert raw_tags(path, "ogg") == (["Hip Hop", "Rap", "Rock & Roll"],
                                     ["Hip Hop 0.81; Rap 0.81; Rock & Roll 0.05 (gtzan-musicnn)"])
    other = make_tagged(tmp_path, "flac", None)
    change = TagPlan(count=1, min_score=0.9).apply(other, PRED)
    assert change.status == UNCERTAIN and "0.81 < --min-score 0.9" in change.reason and read_genres(other) == []


@pytest.mark.parametrize("text, message", [("hiphop = 3\n", "'hiphop' must be a name"),
                                           ("hiphop = [\n", "not valid TOML")])
def test_a_bad_names_file_is_named_in_the_error(tmp_path, text, message):
    bad = tmp_path / "names.toml"
    bad.write_text(text)
    with pytest.raises(TagError, match=message) as info:
        load_names(bad)
    assert str(bad) in str(info.value)


def test_reading_rules_id3v23_separator_and_numeric_genres(tmp_path):
    from mutagen.id3 import ID3, TCON

    mp3 = make_song(tmp_path / "a.mp3")
    tags = ID3()
    tags.add(TCON(encoding=3, text=["Rock; Pop"]))
    tags.save(mp3, v2_version=3)
    assert read_genres(mp3) == ["Rock; Pop"] and read_genres(mp3, id3v23_sep=";") == ["Rock", "Pop"]
    tags.setall("TCON", [TCON(encoding=3, text=["(17)"])])
    tags.save(mp3, v2_version=4)
    assert read_genres(mp3) == ["Rock"]  # an ID3v1 number, by name



def test_custom_id3v23_separator_when_writing(tmp_path):
    path = make_tagged(tmp_path, "mp3-v23", ["Folk"])
    TagPlan(count=2, mode="merge", id3v23_sep=" / ").apply(path, PRED)
    assert raw_tags(path, "mp3-v23")[0] == ["Folk / Hip-Hop / Pop"]
    assert read_genres(path, id3v23_sep=" / ") == ["Folk", "Hip-Hop", "Pop"]


# --- never damage a file -------------------------------------------------------------------------
def test_unsupported_and_unreadable_files_are_reported(tmp_path):
    au = tmp_path / "song.au"
    sf.write(au, synth("metal", 1.0), SR)
    content = au.read_bytes()
    change = TagPlan().apply(au, PRED)
    assert change.status == UNSUPPORTED and change.ok and "not supported for .au" in change.reason
    assert au.read_bytes() == content
    with pytest.raises(TagError, match="not supported"):
        read_genres(au)

    bad = tmp_path / "bad.flac"
    bad.write_bytes(b"fLaC" + b"\x00" * 10)
    change = TagPlan().apply(bad, PRED)
    assert change.status == "failed" and not change.ok and "mutagen cannot read the file" in change.reason
    assert bad.read_bytes() == b"fLaC" + b"\x00" * 10


def test_dry_run_touches_nothing_and_keeps_no_journal(tmp_path):
    path = make_tagged(tmp_path, "flac", ["Folk"])
    content, mtime = path.read_bytes(), os.stat(path).st_mtime_ns
    change = TagPlan(mode="replace", dry_run=True).apply(path, PRED)
    assert (change.status, change.old, change.new) == (REPLACED, ["Folk"], ["Hip-Hop"])
    assert "genre Folk -> Hip-Hop (would replace)" in str(change)
    assert path.read_bytes() == content and os.stat(path).st_mtime_ns == mtime
    assert leftovers(tmp_path) == [] and history() == []


def test_read_only_files_and_folders_are_left_alone(tmp_path):
    path = make_song(tmp_path / "ro.mp3")
    content = path.read_bytes()
    os.chmod(path, 0o444)
    try:
        change = TagPlan().apply(path, PRED)
        assert change.status == READ_ONLY and not change.ok and "read-only" in change.reason
        assert path.read_bytes() == content
    finally:
        os.chmod(path, 0o644)

    folder = tmp_path / "locked"
    folder.mkdir()
    inside = make_song(folder / "song.ogg")
    content = inside.read_bytes()
    os.chmod(folder, 0o555)
    try:
        change = TagPlan().apply(inside, PRED)
        assert change.status == READ_ONLY and "folder" in change.reason
        assert inside.read_bytes() == content and sorted(os.listdir(folder)) == ["song.ogg"]
    finally:
        os.chmod(folder, 0o755)


def test_a_symlink_is_followed_and_kept(tmp_path):
    target = make_song(tmp_path / "real.flac")
    link = tmp_path / "link.flac"
    link.symlink_to(target)
    assert TagPlan().apply(link, PRED).status == WRITTEN
    assert link.is_symlink() and read_genres(target) == ["Hip-Hop"]


# --- through the command ------------------------------------------------------------------------
def test_classify_write_tags_dry_run_fill_merge_and_undo(capsys, bundle_dir, tmp_path):
    """The old single-label behaviour changed: tags hold display names ("Metal", not "metal"),
    files with a genre are kept by default (fill), and every run can be undone."""
    from genrekit.cli import main

    folder = tmp_path / "music"
    songs = {
        "a.flac": write_song(folder / "a.flac", "metal", seed=1),
        "b.ogg": write_song(folder / "b.ogg", "classical", seed=2),
        "c.au": write_song(folder / "c.au", "hiphop", seed=3),
        "ro.flac": write_song(folder / "ro.flac", "hiphop", seed=4),
        "folk.flac": write_song(folder / "folk.flac", "metal", seed=5),
    }
    from tagged_files import set_raw_genres
    set_raw_genres(songs["folk.flac"], "flac", ["Folk"])
    os.chmod(songs["ro.flac"], 0o444)
    snapshot = {name: p.read_bytes() for name, p in songs.items()}
    out = tmp_path / "results.jsonl"

    code, stdout, err = classify_main(capsys, folder, "--model", bundle_dir, "--write-tags", "--dry-run",
                                      "--format", "json")
    assert {name: p.read_bytes() for name, p in songs.items()} == snapshot  # nothing touched
    assert f"{songs['a.flac']}: genre (none) -> Metal (would write)" in err
    assert "tags not supported for .au" in err and "ro.flac: tags not written: the file is read-only" in err
    assert "folk.flac: kept its genre Folk (fill mode" in err
    assert "tags (dry run, nothing written): 2 would write, 1 kept, 0 unchanged, 1 not supported, 1 read-only" in err
    assert history() == []  # a dry run keeps no journal
    assert code == 1  # a tag that cannot be written counts as a failure
    rows = {Path(r["path"]).name: r for r in json.loads(stdout)}
    assert (rows["a.flac"]["label"], rows["a.flac"]["name"]) == ("metal", "Metal")

    code, stdout, err = classify_main(capsys, folder, "--model", bundle_dir, "--write-tags", "--out", out,
                                      "--format", "json")
    assert read_genres(songs["a.flac"]) == ["Metal"] and read_genres(songs["b.ogg"]) == ["Classical"]
    assert read_genres(songs["folk.flac"]) == ["Folk"]
    assert songs["ro.flac"].read_bytes() == snapshot["ro.flac"] and songs["c.au"].read_bytes() == snapshot["c.au"]
    assert "tags: 2 written, 1 kept, 0 unchanged, 1 not supported, 1 read-only" in err
    assert code == 1
    journals = list((tmp_path / "results.jsonl.tag-journals").glob("*.jsonl"))
    assert len(journals) == 1 and len(history()) == 1 and history()[0].files == 2

    # Tagged files have new bytes, but their results were filed under the new content: all skipped.
    code, _, err = classify_main(capsys, folder, "--model", bundle_dir, "--write-tags", "--out", out,
                                 "--tag-mode", "merge")
    assert summary(err) == dict(total=5, done=0, skipped=5, failed=0)
    assert "tags: 0 written, 1 merged, 0 kept, 2 unchanged" in err and read_genres(songs["folk.flac"]) == ["Folk", "Metal"]

    # undo, newest run first: folk.flac gets back exactly "Folk"; then the first run's files lose their genre
    os.chmod(songs["ro.flac"], 0o644)
    assert main(["tags", "history"]) == 0
    assert main(["tags", "undo"]) == 0
    assert read_genres(songs["folk.flac"]) == ["Folk"] and read_genres(songs["a.flac"]) == ["Metal"]
    assert main(["tags", "undo"]) == 0
    for name in ("a.flac", "b.ogg", "folk.flac"):
        assert songs[name].read_bytes() == snapshot[name] or audio_frames(songs[name]) == audio_frames_of(snapshot[name], tmp_path, name)
    assert read_genres(songs["a.flac"]) == [] and read_genres(songs["b.ogg"]) == []
    err = capsys.readouterr().err
    assert "undo" in err and "2 restored" in err
    assert main(["tags", "undo"]) == 1 and "no tag-writing run to undo" in capsys.readouterr().err
    assert [info.undone for info in history() if info.meta.get("command") == "classify"] == [True, True]
    assert journals[0].read_bytes() == (journal_dir() / journals[0].name).read_bytes()  # a copy never appended to


def audio_frames_of(content: bytes, folder: Path, name: str) -> bytes:
    copy = folder / f"copy-{name}"
    copy.write_bytes(content)
    return audio_frames(copy)
