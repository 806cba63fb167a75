"""Genre tags: written where each format keeps them, read back, and never at the audio's expense.

Files are written by the tests (soundfile for wav/flac/ogg/opus/mp3, PyAV for m4a);
"samples unchanged" means :func:`genrekit.audio.load` gives exactly the same array
before and after.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from genrekit import audio
from genrekit.tags import (
    READ_ONLY, UNCHANGED, UNSUPPORTED, WOULD_WRITE, WRITTEN, TagError, read_genre, write_genre,
)
from cli_helpers import classify_main, summary
from synthetic_songs import SR, synth, write_song


def write_m4a(path: Path, y: np.ndarray, sr: int = SR) -> Path:
    av = pytest.importorskip("av", reason="PyAV makes the m4a file")
    if "aac" not in av.codecs_available:
        pytest.skip("this FFmpeg build has no AAC encoder")
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("aac", rate=sr)
        stream.layout = "mono"
        frame = av.AudioFrame.from_ndarray(y[None, :].astype(np.float32), format="fltp", layout="mono")
        frame.sample_rate = sr
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)
    return path


def make(path: Path, seed: int = 0) -> Path:
    y = synth("hiphop", 2.0, seed=seed)
    ext = path.suffix
    if ext == ".m4a":
        return write_m4a(path, y)
    if ext == ".mp3" and "MP3" not in sf.available_formats():
        pytest.skip("this libsndfile cannot write MP3")
    kwargs = {"format": "OGG", "subtype": "OPUS"} if ext == ".opus" else {}
    sf.write(path, y, 48000 if ext == ".opus" else SR, **kwargs)
    return path


def raw_genre(path: Path) -> list[str]:
    """The genre as mutagen sees it in the format's own tag."""
    import mutagen

    f = mutagen.File(path)
    if path.suffix in (".mp3", ".wav"):
        return f.tags["TCON"].text
    if path.suffix == ".m4a":
        return f.tags["\xa9gen"]
    return f.tags["GENRE"]


def leftovers(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if p.name.startswith(".")]


# --- formats ------------------------------------------------------------------------------------
@pytest.mark.parametrize("ext", [".mp3", ".flac", ".ogg", ".opus", ".wav", ".m4a"])
def test_genre_written_read_back_and_audio_unchanged(tmp_path, ext):
    path = make(tmp_path / f"song{ext}")
    os.chmod(path, 0o640)
    before = audio.load(path, sr=SR)
    assert read_genre(path) is None

    change = write_genre(path, "jazz")
    assert change.status == WRITTEN and change.old is None and change.new == "jazz", change
    assert raw_genre(path) == ["jazz"] and read_genre(path) == "jazz"
    after = audio.load(path, sr=SR)
    assert after.dtype == before.dtype and np.array_equal(after, before)  # the very same samples
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640
    assert leftovers(tmp_path) == []  # no temporary copy left behind

    again = write_genre(path, "blues")
    assert (again.status, again.old) == (WRITTEN, "jazz") and read_genre(path) == "blues"
    content = path.read_bytes()
    assert write_genre(path, "blues").status == UNCHANGED
    assert path.read_bytes() == content
    assert np.array_equal(audio.load(path, sr=SR), before)


def test_other_tags_and_the_id3_version_are_kept(tmp_path):
    from mutagen.id3 import ID3, TCON, TIT2

    path = make(tmp_path / "song.mp3")
    tags = ID3()
    tags.add(TIT2(encoding=3, text=["A title"]))
    tags.add(TCON(encoding=3, text=["Rock", "Pop"]))
    tags.save(path, v2_version=3)
    change = write_genre(path, "metal")
    assert change.status == WRITTEN and change.old == "Rock/Pop"  # ID3v2.3 joins values with "/"
    tags = ID3(path)
    assert tags.version[:2] == (2, 3)
    assert tags["TIT2"].text == ["A title"] and tags["TCON"].text == ["metal"]


def test_unsupported_and_unreadable_files_are_reported(tmp_path):
    au = tmp_path / "song.au"
    sf.write(au, synth("metal", 1.0), SR)
    content = au.read_bytes()
    change = write_genre(au, "metal")
    assert change.status == UNSUPPORTED and change.ok and "not supported for .au" in change.reason
    assert au.read_bytes() == content
    with pytest.raises(TagError, match="not supported"):
        read_genre(au)

    bad = tmp_path / "bad.flac"
    bad.write_bytes(b"fLaC" + b"\x00" * 10)
    change = write_genre(bad, "metal")
    assert change.status == "failed" and not change.ok and "mutagen cannot read the file" in change.reason
    assert bad.read_bytes() == b"fLaC" + b"\x00" * 10


# --- never damage a file -------------------------------------------------------------------------
def test_dry_run_touches_nothing(tmp_path):
    path = make(tmp_path / "song.flac")
    write_genre(path, "pop")
    content, mtime = path.read_bytes(), os.stat(path).st_mtime_ns
    change = write_genre(path, "jazz", dry_run=True)
    assert (change.status, change.old, change.new) == (WOULD_WRITE, "pop", "jazz")
    assert "'pop' -> 'jazz'" in str(change)
    assert path.read_bytes() == content and os.stat(path).st_mtime_ns == mtime
    assert leftovers(tmp_path) == []


def test_read_only_files_and_folders_are_left_alone(tmp_path):
    path = make(tmp_path / "ro.mp3")
    content = path.read_bytes()
    os.chmod(path, 0o444)
    try:
        change = write_genre(path, "jazz")
        assert change.status == READ_ONLY and not change.ok and "read-only" in change.reason
        assert path.read_bytes() == content
    finally:
        os.chmod(path, 0o644)

    folder = tmp_path / "locked"
    folder.mkdir()
    inside = make(folder / "song.ogg")
    content = inside.read_bytes()
    os.chmod(folder, 0o555)
    try:
        change = write_genre(inside, "jazz")
        assert change.status == READ_ONLY and "folder" in change.reason
        assert inside.read_bytes() == content and sorted(os.listdir(folder)) == ["song.ogg"]
    finally:
        os.chmod(folder, 0o755)


def test_a_symlink_is_followed_and_kept(tmp_path):
    target = make(tmp_path / "real.flac")
    link = tmp_path / "link.flac"
    link.symlink_to(target)
    assert write_genre(link, "reggae").status == WRITTEN
    assert link.is_symlink() and read_genre(target) == "reggae"


# --- through the command ------------------------------------------------------------------------
def test_classify_write_tags_dry_run_then_for_real(capsys, bundle_dir, tmp_path):
    folder = tmp_path / "music"
    songs = {
        "a.flac": write_song(folder / "a.flac", "metal", seed=1),
        "b.ogg": write_song(folder / "b.ogg", "classical", seed=2),
        "c.au": write_song(folder / "c.au", "hiphop", seed=3),
        "ro.flac": write_song(folder / "ro.flac", "hiphop", seed=4),
    }
    os.chmod(songs["ro.flac"], 0o444)
    snapshot = {name: p.read_bytes() for name, p in songs.items()}
    out = tmp_path / "results.jsonl"

    code, stdout, err = classify_main(capsys, folder, "--model", bundle_dir, "--write-tags", "--dry-run",
                                      "--format", "json")
    assert {name: p.read_bytes() for name, p in songs.items()} == snapshot  # nothing touched
    assert f"{songs['a.flac']}: genre (none) -> 'metal' (would write)" in err
    assert "tags not supported for .au" in err and "ro.flac: tags not written: the file is read-only" in err
    assert "tags (dry run, nothing written): 2 would write, 0 unchanged, 1 not supported, 1 read-only" in err
    assert code == 1  # a tag that cannot be written counts as a failure

    code, stdout, err = classify_main(capsys, folder, "--model", bundle_dir, "--write-tags", "--out", out,
                                      "--format", "json")
    labels = {Path(r["path"]).name: r["label"] for r in json.loads(stdout)}
    assert labels == {"a.flac": "metal", "b.ogg": "classical", "c.au": "hiphop", "ro.flac": "hiphop"}
    assert read_genre(songs["a.flac"]) == "metal" and read_genre(songs["b.ogg"]) == "classical"
    assert songs["ro.flac"].read_bytes() == snapshot["ro.flac"] and songs["c.au"].read_bytes() == snapshot["c.au"]
    assert "tags: 2 written, 0 unchanged, 1 not supported, 1 read-only, 0 failed" in err
    assert code == 1

    # Tagged files have new bytes, but their results were filed under the new content: all skipped.
    before = out.read_bytes()
    code, _, err = classify_main(capsys, folder, "--model", bundle_dir, "--write-tags", "--out", out)
    assert summary(err) == dict(total=4, done=0, skipped=4, failed=0)
    assert "tags: 0 written, 2 unchanged" in err
    assert out.read_bytes() == before
    os.chmod(songs["ro.flac"], 0o644)
