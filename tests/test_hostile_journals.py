"""Tag journals are data from elsewhere (issue 30): ``genrekit tags undo`` and ``tags history`` on
39 hostile journals give one-line errors or per-file refusals, never a traceback, never a hang,
and change no byte outside genrekit's own journal folder.

The corpus is the attack report's: journals naming victims in ``copies``, entries that would
"restore" any audio file, wrong types, huge numbers, deep nesting, devices, FIFOs and links.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from genrekit.cli import main
from genrekit.tagging.journal import Journal, journal_dir
from genrekit.tagging.plan import TagPlan
from tagged_files import make_song, raw_tags

#: The attack report's journals were version 1; the rest of the corpus carries a well-formed
#: version-2 header, so that each hostile entry reaches the checks of its own fields.
V1 = {"journal": 1, "time": "t", "model": "m", "mode": "replace", "command": "classify"}
HEADER = {"journal": 2, "name": "20000101T000000.000000-1.jsonl", "time": "t", "model": "m", "mode": "replace",
          "command": "classify"}
TAGS = {"before": {"kind": "vorbis", "genre": ["Pwned"], "field": "owned"},
        "after": {"kind": "vorbis", "genre": None, "field": None}}


def _lines(*objs) -> bytes:
    return b"".join(json.dumps(o).encode() + b"\n" for o in objs)


def _fingerprint(path: Path) -> dict:
    import hashlib

    st = os.stat(path)
    return {"sha256": hashlib.sha256(path.read_bytes()).hexdigest(), "size": st.st_size,
            "mtime_ns": st.st_mtime_ns, "atime_ns": 0}


def corpus(victims: dict[str, Path]) -> dict[str, bytes]:
    """Name -> bytes of each hostile journal (those needing a special file are made in the test)."""
    flac = str(victims["untagged.flac"])
    # The strongest forgery: the victim's true fingerprint as "after", and tags to "restore".
    entry = {"n": 0, "path": flac, "before": {"sha256": "0" * 64, "size": 1, "mtime_ns": 0, "atime_ns": 0},
             "after": _fingerprint(victims["untagged.flac"]), "span": None, "tags": TAGS, "time": "t"}
    v1_entry = dict(TAGS, path=flac)
    deep = b"[" * 100_000 + b"]" * 100_000

    def tags(**before):
        return dict(entry, tags={"before": dict(TAGS["before"], **before), "after": TAGS["after"]})

    cases = {
        "copies-victim": _lines(dict(V1, copies=[str(victims["victim.txt"])])),
        "copies-string": _lines(dict(V1, copies="a"), v1_entry),
        "v1-restore-untagged": _lines(V1, v1_entry),
        "restore-untagged": _lines(HEADER, entry),
        "restore-relative": _lines(HEADER, dict(entry, path="../music/untagged.flac")),
        "restore-symlink": _lines(HEADER, dict(entry, path=str(victims["link.flac"]))),
        "restore-huge-value": _lines(HEADER, tags(genre=["x" * 100_000])),
        "restore-escapes": _lines(HEADER, tags(genre=["\x1b[2J\x1b]0;t\x07"])),
        "restore-bogus-kind": _lines(HEADER, tags(kind="bogus")),
        "restore-forged-span": _lines(HEADER, dict(entry, span={"offset": 0, "before": 1, "after": 0})),
        "genre-number": _lines(HEADER, tags(genre=5)),
        "before-missing": _lines(HEADER, {k: v for k, v in entry.items() if k != "before"}),
        "before-list": _lines(HEADER, dict(entry, before=[1, 2])),
        "after-null": _lines(HEADER, dict(entry, after=None)),
        "path-number": _lines(HEADER, dict(entry, path=5)),
        "escape-header": _lines(dict(HEADER, time="\x1b[2J\x1b]0;pwned\x07", model="\x1b[31m" * 1000)),
        "path-list": _lines(HEADER, dict(entry, path=[flac])),
        "path-escapes": _lines(HEADER, dict(entry, path="/tmp/\x1b[2J\n.flac")),
        "huge-integer": b'{"journal": ' + b"9" * 100_000 + b', "time": "t"}\n',
        "huge-integer-entry": _lines(HEADER) + b'{"n": ' + b"1" * 100_000 + b"}\n",
        "deep-nesting": deep + b"\n",
        "deep-nesting-entry": _lines(HEADER) + b'{"path": ' + deep + b"}\n" + _lines(entry),
        "empty": b"",
        "not-json": b"hello\nworld\n",
        "header-a-list": _lines([1, 2, 3]),
        "header-a-string": _lines("journal"),
        "version-string": _lines(dict(HEADER, journal="2")),
        "version-future": _lines(dict(HEADER, journal=99)),
        "name-a-path": _lines(dict(HEADER, name="../../victim.txt"), entry),
        "header-only": _lines(HEADER),
        "binary": bytes(range(256)) * 10,
        "bad-utf8": b'{"journal": 2, "time": "\xff\xfe"}\n',
        "nan": _lines(HEADER) + b'{"n": NaN}\n',
        "entry-a-string": _lines(HEADER, "entry"),
        "time-a-dict": _lines(dict(HEADER, time={"a": 1}), entry),
    }
    return cases


@pytest.fixture
def victims(tmp_path, monkeypatch):
    music = tmp_path / "music"
    music.mkdir()
    flac = make_song(music / "untagged.flac")
    (tmp_path / "victim.txt").write_text("victim\n")
    (music / "link.flac").symlink_to(flac)
    work = tmp_path / "cwd"
    work.mkdir()
    (work / "a").write_text("a\n")
    monkeypatch.chdir(work)
    return {"untagged.flac": flac, "victim.txt": tmp_path / "victim.txt", "link.flac": music / "link.flac",
            "a": work / "a"}


def _bytes_under(folder: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file() and not p.is_symlink()}


def test_39_hostile_journals_give_no_traceback_and_change_nothing_outside_the_journal_folder(
        tmp_path, victims, capsys):
    state = journal_dir()
    state.mkdir(parents=True)
    cases = corpus(victims)
    hostile = tmp_path / "hostile"
    hostile.mkdir()
    for name, data in cases.items():
        (hostile / f"{name}.jsonl").write_bytes(data)
    os.mkfifo(hostile / "fifo.jsonl")
    (hostile / "dev-zero.jsonl").symlink_to("/dev/zero")
    (hostile / "a-folder.jsonl").mkdir()
    big = hostile / "too-big.jsonl"
    with open(big, "wb") as fh:  # sparse: size without the bytes
        fh.write(_lines(HEADER))
        fh.truncate(2 ** 31)
    targets = sorted(str(p) for p in hostile.iterdir()) + ["/dev/zero", str(hostile / "missing.jsonl")]
    assert len(targets) == 41  # 39 journals, plus /dev/zero itself and a missing one
    assert len(cases) == 35
    before = _bytes_under(tmp_path)

    for target in targets:
        for args in (["tags", "undo", target], ["tags", "undo", "--dry-run", target]):
            code = main(args)
            err = capsys.readouterr().err
            assert code in (0, 1), (target, err)
            assert "\x1b" not in err and "Traceback" not in err, (target, err)
            assert max(map(len, err.splitlines() or [""])) < 2000, target
    assert _bytes_under(tmp_path) == before
    assert raw_tags(victims["untagged.flac"], "flac") == (None, None)

    # The same journals inside genrekit's own folder (FIFO and /dev/zero link included)
    for name, data in cases.items():
        (state / f"2000{name}.jsonl").write_bytes(data)
    os.mkfifo(state / "fifo.jsonl")
    (state / "zero.jsonl").symlink_to("/dev/zero")
    assert main(["tags", "history"]) == 0
    out, err = capsys.readouterr()
    assert "\x1b" not in out + err and "0 journal(s)" in err and err.count("skipped journal") == len(cases) + 2
    for path in sorted(state.iterdir()):
        code = main(["tags", "undo", str(path)])
        err = capsys.readouterr().err
        assert code in (0, 1) and "\x1b" not in err, (path, err)
    code = main(["tags", "undo"])
    assert code == 1 and "Traceback" not in capsys.readouterr().err
    assert _bytes_under(tmp_path / "music") == {k: v for k, v in before.items() if "/music/" in k}
    assert (tmp_path / "victim.txt").read_text() == "victim\n" and victims["a"].read_text() == "a\n"


def test_a_copy_of_a_journal_beside_the_results_undoes_only_what_genrekit_kept(tmp_path, victims, capsys):
    """The copy in RESULTS.tag-journals/ is a pointer to genrekit's own journal: edited, it is refused."""
    song = make_song(tmp_path / "music" / "song.flac")
    beside = tmp_path / "results.tag-journals"
    journal = Journal({"mode": "fill"}, [journal_dir(), beside])
    TagPlan(journal=journal).apply(song, _pred())
    copy = beside / journal.name
    text = copy.read_text().replace(str(song), str(victims["untagged.flac"]))
    copy.write_text(text)
    victim = victims["untagged.flac"].read_bytes()
    assert main(["tags", "undo", str(copy)]) == 1
    err = capsys.readouterr().err
    assert "does not match" in err and len(err.strip().splitlines()) == 1, err
    assert victims["untagged.flac"].read_bytes() == victim


def _pred():
    from genrekit.prediction import Prediction

    return Prediction(path="x", label="rock", probabilities={"rock": 0.9, "pop": 0.1}, duration=2.0, model="m")
