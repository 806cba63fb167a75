"""`datasets validate` offline: GTZAN's per-file index ships with genrekit; Ballroom's does not.

A copy made by hand (no genrekit download record, no downloaded mirdata index) is checked
file by file against the shipped index: files made in the test under the index's names
are corrupt, the others missing; the shared real clips (linked, never copied) are present.
"""

import json

import numpy as np
import pytest
import soundfile as sf

from genrekit.cli import main
from genrekit.datasets.install import UNCHECKED, validate
from genrekit.datasets.registry import get_dataset
from genrekit.datasets.shipped_indexes import INDEX_DIR, FileIndex, read_index, shipped_index, write_index
from genrekit.errors import DatasetError


def _gtzan_index():
    gtzan = get_dataset("gtzan")
    return gtzan, shipped_index(gtzan.resource(gtzan.index).checksum)


def test_the_shipped_gtzan_index_is_the_published_index_the_entry_names():
    gtzan, index = _gtzan_index()
    assert index is not None and index.dataset == "gtzan" and index.algorithm == "md5"
    assert index.source["checksum"] == gtzan.resource("index").checksum == "md5:533ca050855f22acf2feb283d9957fe3"
    assert len(index.files) == 1000
    for genre in gtzan.genres:
        names = [p for p in index.files if p.startswith(f"{gtzan.audio_root}/{genre}/")]
        assert len(names) == 100, genre
    assert (INDEX_DIR / "gtzan.json").stat().st_size < 200_000  # data in the package: keep it small
    notice = (INDEX_DIR / "NOTICE").read_text(encoding="utf-8")
    assert "gtzan.json" in notice and "mirdata==0.3.8" in notice and "BSD-3-Clause" in notice
    assert "Redistributions of source code must retain the above copyright notice" in notice
    assert shipped_index("md5:" + "0" * 32) is None and shipped_index(None) is None


def _sine(path, seconds=0.05, sr=22050):
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * sr)) / sr
    sf.write(path, 0.3 * np.sin(2 * np.pi * 440 * t), sr, subtype="PCM_16")


def test_validate_a_hand_made_partial_gtzan_copy_offline(tmp_path, capsys):
    """Clips under the index's names with other contents are corrupt, the rest missing: file by file."""
    gtzan, index = _gtzan_index()
    folder = tmp_path / "root/gtzan"
    made = sorted(index.files)[::200]  # five clips, in different genres
    for rel in made:
        _sine(folder / rel)

    assert main(["datasets", "validate", "gtzan", "--root", str(tmp_path / "root")]) == 1
    out = capsys.readouterr().out
    assert "using the copy genrekit ships of the same index (1000 files, from mirdata==0.3.8" in out
    assert "audio: 0 present, 995 missing, 5 corrupt" in out
    assert "index: not needed: genrekit ships a copy of this index" in out
    assert f"corrupt: {made[0]} (md5 differs from {index.files[made[0]]})" in out
    assert "missing: gtzan_genre/genres/blues/blues.00001.wav" in out
    assert "Traceback" not in out

    result = validate(gtzan, tmp_path / "root", use_mirdata=False)
    audio = {c.path: c.status for c in result.checks if c.resource == "audio"}
    assert audio == {rel: "corrupt" if rel in made else "missing" for rel in index.files}
    assert "index" not in {c.resource for c in result.checks}


@pytest.mark.parametrize("use_mirdata", [None, False])
def test_the_shared_clips_are_original_gtzan_files(use_mirdata, shared_data, tmp_path):
    """The 70 shared clips, linked (not copied) into a hand-made layout, match the shipped md5s."""
    if use_mirdata is None:
        pytest.importorskip("mirdata")
    gtzan, index = _gtzan_index()
    folder = tmp_path / "root/gtzan"
    clips = sorted((shared_data / "gtzan/genres").glob("*/*.wav"))
    assert len(clips) == 70
    linked = set()
    for clip in clips:
        rel = f"{gtzan.audio_root}/{clip.parent.name}/{clip.name}"
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).symlink_to(clip)
        linked.add(rel)

    result = validate(gtzan, tmp_path / "root", use_mirdata=use_mirdata)
    audio = {c.path: c.status for c in result.checks if c.resource == "audio"}
    assert {rel for rel, status in audio.items() if status == "present"} == linked
    assert result.counts("audio") == {"present": 70, "missing": 930, "corrupt": 0}


def test_ballroom_copied_by_hand_says_no_index_ships_and_what_to_run(tmp_path, capsys):
    ballroom = get_dataset("ballroom")
    root = tmp_path / "root"
    _sine(root / "ballroom" / ballroom.audio_root / "Jive/Albums-Commitments-01.wav")

    assert main(["datasets", "validate", "ballroom", "--root", str(root)]) == 1
    out = capsys.readouterr().out
    assert "no per-file index for ballroom" in out and "genrekit ships no copy of it" in out
    assert f"genrekit datasets download ballroom --only index --root {root}" in out
    assert str(root / "ballroom/mirdata_indexes/ballroom_full_index_1.0.json") in out
    assert f"unchecked: {ballroom.audio_root} ({UNCHECKED})" in out
    assert "Traceback" not in out
    result = validate(ballroom, root)
    assert [c.path for c in result.unchecked] == [ballroom.audio_root]

    # Nothing there at all: the plain "not downloaded", no index note.
    assert main(["datasets", "validate", "ballroom", "--root", str(tmp_path / "empty")]) == 1
    out = capsys.readouterr().out
    assert "missing: B_1.0/audio (not downloaded (data1.tar.gz))" in out and "note:" not in out


def test_compact_index_round_trip_and_errors(tmp_path):
    index = FileIndex("toy", "md5", {"audio/b.wav": "0" * 32, "audio/a.wav": "f" * 32},
                      {"checksum": "md5:" + "1" * 32, "package": "toy==1"}, {"audio/a.wav": 12})
    path = tmp_path / "toy.json"
    write_index(path, index)
    assert read_index(path) == index
    assert index.checksums()["audio/a.wav"] == "md5:" + "f" * 32

    bad = {"format": "genrekit-file-index/1", "algorithm": "md5", "files": {"../escape.wav": "0" * 32}}
    cases = {
        b"{not json": "not JSON",
        json.dumps({"format": "other"}).encode(): "not a genrekit file index",
        json.dumps({**bad, "algorithm": "crc"}).encode(): "expected 'algorithm'",
        json.dumps(bad).encode(): "must be relative",
        json.dumps({**bad, "files": {"a.wav": "abc"}}).encode(): "'abc' is not a md5 digest",
    }
    for raw, message in cases.items():
        path.write_bytes(raw)
        with pytest.raises(DatasetError, match=message) as err:
            read_index(path)
        assert str(path) in str(err.value)
    with pytest.raises(DatasetError, match="cannot read"):
        read_index(tmp_path / "absent.json")
