"""Issue 30's hostile inputs for ``bench/reliability.py`` (section 8): journals, ``--names`` files, hand-made
results files, FIFOs and tag values, each run by the command that reads it, in a sandbox of its own.

Every case runs ``python -m genrekit ...`` (or ``genrekit serve`` plus one upload) in a fresh
sandbox folder with its own ``GENREKIT_STATE`` and ``TMPDIR``, under a 30-s timeout (a hang is a
failure) and a 4 GB address-space limit (a command reading ``/dev/zero`` whole fails instead of
taking the machine). Before and after, every file in the sandbox is listed with its type, size,
mtime and SHA-256 (links and FIFOs are never followed or read): a file the command was not
asked to change that changed or went away is a failure, whatever the exit status.

Outcomes, one per case: ``ok`` (exit 0) and ``refused`` (exit 1 or 2 with a one-line message)
pass; ``traceback``, ``hang``, ``killed`` (by a signal), ``500`` (the server), ``changed``
(bytes changed, files named) and ``raw control`` (control characters from the input reached
the terminal unescaped) fail.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sqlite3
import stat
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ENV = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
#: Seconds a command may run before it counts as a hang (the server: to start, then to answer).
TIMEOUT = 30.0
#: Address space of each command (bytes): reading /dev/zero whole ends in MemoryError, not swap.
MEMORY_LIMIT = 4 * 2**30
PASS = ("ok", "refused")
#: Control characters a terminal acts on (newline, tab and carriage return are text).
_RAW_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1a\x1c-\x1f\x7f]|\x1b(?!\[[0-9;]*m)")


@dataclass
class Case:
    klass: str  # journal, names, results, fifo, tags
    kind: str  # what is hostile, in the words
    verb: str  # the command, as the summary shows it
    args: list  # genrekit's arguments; "{S}" is replaced by the sandbox path
    may_change: tuple = ()  # sandbox-relative paths (or folders) the command is asked to change
    server: bool = False  # args are serve's; one upload follows
    setup: object = None  # callable(sandbox) that adds the hostile file(s)
    outcome: str = ""
    detail: str = ""
    changed: list = field(default_factory=list)


# --- the sandbox ---------------------------------------------------------------------------------
def _common(base: Path) -> dict:
    """What every sandbox holds, made once and copied: songs (one tagged), a victim file, a results
    file of the songs, the default model's key."""
    sys.path.insert(0, str(REPO / "tests"))
    from genrekit.audio.files import content_hash
    from genrekit.library.run import model_key
    from genrekit.models.registry import load_model
    from tagged_files import make_tagged

    songs = base / "songs"
    (songs / "b").mkdir(parents=True)
    (base / "victim").mkdir()
    a = make_tagged(songs, "flac", ["Rock"], seed=1)
    b = make_tagged(songs / "b", "ogg", ["Jazz"], seed=2)
    (base / "victim.txt").write_text("a file no command here was asked to change\n")
    make_tagged(base / "victim", "flac", ["Rock"], seed=3)
    key = model_key(load_model(None))
    return {"songs": [a, b], "hashes": [content_hash(a), content_hash(b)], "key": key}


def _record(info: dict, i: int, base: Path, **change) -> dict:
    import numpy as np

    song = info["songs"][i]
    record = {"content_hash": info["hashes"][i], "model_key": info["key"],
              "path": str(base / song.relative_to(info["root"])), "label": ["rock", "jazz"][i],
              "probabilities": {"rock": 0.8, "jazz": 0.2} if i == 0 else {"jazz": 0.7, "rock": 0.3},
              "duration": 6.0, "embedding": np.random.default_rng(i).standard_normal(200).round(5).tolist(),
              "model": "gtzan-musicnn", "error": None, "timeline": None, "tags": None, "unknown": False,
              "time": "2026-01-01T00:00:00+00:00"}
    record.update(change)
    return record


def _jsonl(path: Path, records: list, raw: dict | None = None, newline: bool = True) -> None:
    text = "\n".join(json.dumps(r) for r in records) + ("\n" if newline else "")
    for placeholder, value in (raw or {}).items():
        text = text.replace(json.dumps(placeholder), value)
    path.write_text(text)


def _tag_state(path: Path) -> dict:
    from genrekit.tagging.formats import open_state

    return open_state(path)[0].to_json()


# --- the cases -----------------------------------------------------------------------------------
DEEP = "[" * 100_000 + "]" * 100_000
BIG = "9" * 100_000


def _journal_cases(info: dict) -> list[Case]:
    def journal(edit=None, raw=None):
        def setup(s: Path):
            song = s / "songs" / info["songs"][0].name
            after = _tag_state(song)
            header = {"journal": 1, "time": "2026-01-01T00:00:00+00:00", "copies": [str(s / "j.jsonl")],
                      "model": "gtzan-musicnn", "mode": "fill", "command": "genrekit classify songs --write-tags"}
            entry = {"path": str(song), "before": {**after, "genre": ["Jazz"]}, "after": after,
                     "time": "2026-01-01T00:00:01+00:00"}
            if edit:
                edit(header, entry, s)
            _jsonl(s / "j.jsonl", [header, entry], raw)
            folder = s / "state" / "tag-journals"
            folder.mkdir(parents=True, exist_ok=True)
            shutil.copy(s / "j.jsonl", folder / "20260101T000000.000000-1.jsonl")
        return setup

    def entry_set(key, value):
        return lambda h, e, s: e.__setitem__(key, value)

    kinds = {
        "before genre: 5": lambda h, e, s: e["before"].__setitem__("genre", 5),
        "before missing": lambda h, e, s: e.pop("before"),
        "before a list": entry_set("before", []),
        "after: null": entry_set("after", None),
        "path a number": entry_set("path", 5),
        "path null": entry_set("path", None),
        "path a list": entry_set("path", ["songs"]),
        "100,000-digit integer": entry_set("time", "__BIG__"),
        "100,000-deep nesting": entry_set("extra", "__DEEP__"),
        "copies naming a victim file": lambda h, e, s: h.__setitem__("copies", [str(s / "victim.txt")]),
        "entry naming a file the run never wrote": lambda h, e, s: e.update(
            path=str(s / "victim" / "song-flac.flac"), after=_tag_state(s / "victim" / "song-flac.flac"),
            before={**_tag_state(s / "victim" / "song-flac.flac"), "genre": ["Jazz"]}),
    }
    raw = {"__BIG__": BIG, "__DEEP__": DEEP}
    cases = []
    for kind, edit in kinds.items():
        # the journal and its state copy may be marked undone; nothing else may change
        cases.append(Case("journal", kind, "tags undo", ["tags", "undo", "{S}/j.jsonl"],
                          ("j.jsonl", "state/tag-journals", "songs"), setup=journal(edit, raw)))
        cases.append(Case("journal", kind, "tags history", ["tags", "history"], setup=journal(edit, raw)))

    def zero_link(s: Path):
        journal()(s)
        (s / "state" / "tag-journals" / "zz.jsonl").symlink_to("/dev/zero")

    cases.append(Case("journal", "/dev/zero as the journal", "tags undo", ["tags", "undo", "/dev/zero"]))
    cases.append(Case("journal", "/dev/zero link in the journal folder", "tags history", ["tags", "history"],
                      setup=zero_link))
    cases.append(Case("journal", "/dev/zero link in the journal folder", "tags undo", ["tags", "undo"],
                      ("state/tag-journals",), setup=zero_link))
    return cases


def _names_cases(info: dict) -> list[Case]:
    texts = {
        "deep nesting": "hiphop = " + DEEP + "\n",
        "100,000-digit integer": "hiphop = " + BIG + "\n",
        "control characters": 'rock = "Ro\\u001b[2J\\u001b]0;pwned\\u0007ck"\njazz = "J\\u0000azz"\n',
        "10 KB value": 'rock = "' + "R" * 10_000 + '"\n',
    }

    def names(text):
        def setup(s: Path):
            _jsonl(s / "lib.jsonl", [_record(info, 0, s), _record(info, 1, s)])
            (s / "names.toml").write_text(text)
        return setup

    def zero(s: Path):
        names("")(s)
        (s / "names.toml").unlink()
        (s / "names.toml").symlink_to("/dev/zero")

    cases = []
    for kind, setup in [*((k, names(t)) for k, t in texts.items()), ("/dev/zero", zero)]:
        cases.append(Case("names", kind, "playlists --names", ["playlists", "{S}/lib.jsonl", "--out", "{S}/pl",
                                                               "--names", "{S}/names.toml"], ("pl",), setup=setup))
        cases.append(Case("names", kind, "serve --names", ["--names", "{S}/names.toml"], server=True, setup=setup))
    return cases


def _results_cases(info: dict) -> list[Case]:
    def jsonl(edit=None, raw=None, newline=True):
        def setup(s: Path):
            records = [_record(info, 0, s), _record(info, 1, s)]
            if edit:
                edit(records)
            _jsonl(s / "lib.jsonl", records, raw, newline)
        return setup

    def sqlite(edit):
        def setup(s: Path):
            from genrekit.library.results import SqliteResults

            store = SqliteResults(s / "lib.sqlite")
            for i in range(2):
                store.put(_record(info, i, s), None)
            store.close()
            with sqlite3.connect(s / "lib.sqlite") as db:
                edit(db)
            db.close()
        return setup

    def foreign(s: Path):
        with sqlite3.connect(s / "lib.sqlite") as db:
            db.execute("CREATE TABLE photos (id INTEGER PRIMARY KEY, caption TEXT)")
            db.execute("INSERT INTO photos (caption) VALUES ('a cat')")
        db.close()

    def wrong_types(records):
        records[0].update(label=5, probabilities="high", duration="long")
        records[1].update(embedding={"a": 1}, model_key=7)

    kinds = [
        ("wrong types", "lib.jsonl", jsonl(wrong_types)),
        ("3-byte embeddings", "lib.sqlite", sqlite(lambda db: db.execute("UPDATE results SET embedding = x'010203'"))),
        ("deep timeline", "lib.jsonl", jsonl(lambda r: r[0].update(timeline="__DEEP__"), {"__DEEP__": DEEP})),
        ("path a number", "lib.jsonl", jsonl(lambda r: r[0].update(path=12345))),
        (".jsonl without final newline", "lib.jsonl", jsonl(newline=False)),
        ("foreign SQLite db", "lib.sqlite", foreign),
    ]
    cases = []
    for kind, name, setup in kinds:
        lib = "{S}/" + name
        cases.append(Case("results", kind, "playlists", ["playlists", lib, "--out", "{S}/pl"], ("pl",), setup=setup))
        cases.append(Case("results", kind, "similar --library",
                          ["similar", "{S}/songs/" + info["songs"][0].name, "--library", lib], setup=setup))
        cases.append(Case("results", kind, "serve --library", ["--library", lib], server=True, setup=setup))
    return cases


def _fifo_cases(info: dict) -> list[Case]:
    def fifo(name: str, also=None):
        def setup(s: Path):
            if also:
                also(s)
            (s / name).parent.mkdir(parents=True, exist_ok=True)
            os.mkfifo(s / name)
        return setup

    def library(s: Path):
        _jsonl(s / "lib.jsonl", [_record(info, 0, s), _record(info, 1, s)])

    return [
        Case("fifo", "a FIFO song in a library", "classify --out", ["classify", "{S}/songs", "--out", "{S}/out.jsonl"],
             ("out.jsonl", "out.jsonl.tag-journals"), setup=fifo("songs/pipe.flac")),
        Case("fifo", "FIFO as the journal", "tags undo", ["tags", "undo", "{S}/j.jsonl"], setup=fifo("j.jsonl")),
        Case("fifo", "FIFO in the journal folder", "tags history", ["tags", "history"],
             setup=fifo("state/tag-journals/zz.jsonl")),
        Case("fifo", "FIFO as --names", "playlists --names",
             ["playlists", "{S}/lib.jsonl", "--out", "{S}/pl", "--names", "{S}/names.toml"], ("pl",),
             setup=fifo("names.toml", library)),
        Case("fifo", "FIFO as the results", "playlists", ["playlists", "{S}/lib.jsonl", "--out", "{S}/pl"], ("pl",),
             setup=fifo("lib.jsonl")),
        Case("fifo", "FIFO as the results", "serve --library", ["--library", "{S}/lib.jsonl"], server=True,
             setup=fifo("lib.jsonl")),
    ]


def _tags_cases(info: dict) -> list[Case]:
    sys.path.insert(0, str(REPO / "tests"))
    from tagged_files import set_raw_genres

    def tagged(value: str):
        def setup(s: Path):
            set_raw_genres(s / "songs" / info["songs"][0].name, "flac", [value])
        return setup

    values = {"control characters": "Ro\x1b[2J\x1b]0;pwned\x07ck\x00", "10 MB value": "R" * (10 * 2**20)}
    cases = []
    for kind, value in values.items():
        cases.append(Case("tags", kind, "classify --write-tags --dry-run",
                          ["classify", "{S}/songs", "--write-tags", "--tag-mode", "merge", "--dry-run"],
                          setup=tagged(value)))
        cases.append(Case("tags", kind, "classify --write-tags", ["classify", "{S}/songs", "--write-tags",
                                                                  "--tag-mode", "merge"], ("songs", "state"),
                          setup=tagged(value)))
    return cases


# --- running -------------------------------------------------------------------------------------
def _limit() -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def _snapshot(root: Path) -> dict:
    files = {}
    for folder, dirs, names in os.walk(root):  # links to folders are not followed
        for name in names + [d for d in dirs if os.path.islink(os.path.join(folder, d))]:
            path = os.path.join(folder, name)
            rel = os.path.relpath(path, root)
            if rel.startswith("tmp" + os.sep):
                continue
            st = os.lstat(path)
            digest = None
            if stat.S_ISREG(st.st_mode):
                with open(path, "rb") as fh:
                    digest = hashlib.file_digest(fh, "sha256").hexdigest()
            files[rel] = (stat.S_IFMT(st.st_mode), st.st_size, st.st_mtime_ns, digest)
    return files


def _changed(before: dict, after: dict, allowed: tuple) -> list[str]:
    def free(rel):
        return any(rel == a or rel.startswith(a + os.sep) for a in allowed)

    return sorted(rel for rel, was in before.items() if not free(rel) and after.get(rel) != was)


def _judge(case: Case, rc: int | None, out: str, err: str) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    if rc is None:
        case.outcome, case.detail = "hang", f"no answer in {TIMEOUT:g} s"
    elif "Traceback" in err:
        case.outcome, case.detail = "traceback", (lines[-1] if lines else "")
    elif rc < 0:
        case.outcome, case.detail = "killed", f"signal {-rc}"
    elif rc == 0:
        case.outcome, case.detail = "ok", (lines[-1] if lines else "")
    else:
        case.outcome, case.detail = "refused", (lines[-1] if lines else f"exit {rc}, nothing said")
    if case.outcome in PASS and _RAW_CONTROL.search(out + err):
        case.outcome = "raw control"


def _run_cli(case: Case, sandbox: Path) -> None:
    args = [a.replace("{S}", str(sandbox)) for a in case.args]
    env = dict(ENV, GENREKIT_STATE=str(sandbox / "state"), TMPDIR=str(sandbox / "tmp"))
    proc = subprocess.Popen([sys.executable, "-m", "genrekit", *args], cwd=sandbox, env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=_limit)
    try:
        out, err = proc.communicate(timeout=TIMEOUT)
        rc = proc.returncode
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        rc = None
    _judge(case, rc, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"))


def _run_server(case: Case, sandbox: Path, song: bytes) -> None:
    import http.client

    sys.path.insert(0, str(REPO / "tests"))
    from servers import free_port, multipart

    port = free_port()
    args = [a.replace("{S}", str(sandbox)) for a in case.args]
    env = dict(ENV, GENREKIT_STATE=str(sandbox / "state"), TMPDIR=str(sandbox / "tmp"))
    proc = subprocess.Popen([sys.executable, "-m", "genrekit", "serve", "--port", str(port), "--workers", "1",
                             "--log-level", "warning", *args], cwd=sandbox, env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, preexec_fn=_limit)
    status = exited = None
    deadline = time.monotonic() + TIMEOUT
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                conn.request("GET", "/api/health")
                if conn.getresponse().status == 200:
                    boundary, body = multipart("song.flac", song)
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
                    conn.request("POST", "/api/classify?spectrogram=false", body,
                                 {"Content-Type": f"multipart/form-data; boundary={boundary}"})
                    resp = conn.getresponse()
                    status, answer = resp.status, resp.read().decode("utf-8", "replace")
                    break
            except OSError:
                time.sleep(0.2)
    finally:
        exited = proc.poll()  # None: still running (it served, or it hung)
        if exited is None:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    err = proc.stderr.read().decode("utf-8", "replace")
    if status is not None:  # it served: judge the upload's answer
        if status >= 500:
            case.outcome, case.detail = "500", answer[:160]
        elif "Traceback" in err:
            case.outcome, case.detail = "traceback", "in the server's log"
        else:
            case.outcome, case.detail = "ok", f"upload answered {status}"
        if case.outcome == "ok" and _RAW_CONTROL.search(err + answer):
            case.outcome = "raw control"
        return
    _judge(case, exited, "", err)  # exited None: it neither served nor stopped within TIMEOUT


def run_cases(tmp: Path, classes: set[str] | None = None) -> list[Case]:
    """Build and run every case (of ``classes``; default all); each case is judged in place."""
    base = tmp / "hostile-base"
    info = _common(base)
    info["root"] = base
    cases = [*_journal_cases(info), *_names_cases(info), *_results_cases(info), *_fifo_cases(info),
             *_tags_cases(info)]
    cases = [c for c in cases if classes is None or c.klass in classes]
    song = info["songs"][0].read_bytes()
    for n, case in enumerate(cases):
        sandbox = tmp / f"case-{n:03d}"
        shutil.copytree(base, sandbox, symlinks=True)
        (sandbox / "tmp").mkdir()
        if case.setup is not None:
            try:
                case.setup(sandbox)
            except Exception as exc:  # noqa: BLE001 - the bench reports it and goes on
                case.outcome, case.detail = "setup failed", f"{type(exc).__name__}: {exc}"
                continue
        before = _snapshot(sandbox)
        (_run_server(case, sandbox, song) if case.server else _run_cli(case, sandbox))
        case.changed = _changed(before, _snapshot(sandbox), case.may_change)
        if case.changed:
            case.outcome, case.detail = "changed", f"{case.outcome}; changed: {', '.join(case.changed[:3])}"
        shutil.rmtree(sandbox, ignore_errors=True)
    return cases


def report(cases: list[Case]) -> None:
    """Print the tally by class and outcome, then each failing case: class, input, command, outcome."""
    from collections import Counter

    classes = sorted({c.klass for c in cases}, key=["journal", "names", "results", "fifo", "tags"].index)
    failed = [c for c in cases if c.outcome not in PASS]
    print(f"8. hostile inputs (issue 30): {len(cases)} runs, {len(cases) - len(failed)} passed, {len(failed)} failed "
          f"(timeout {TIMEOUT:g} s each; bytes of every sandbox file compared before/after)")
    for klass in classes:
        mine = [c for c in cases if c.klass == klass]
        counts = Counter(c.outcome for c in mine)
        print(f"   {klass:<8} {len(mine):>3} runs: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    from genrekit.output import printable

    for c in failed:
        print(f"   FAIL {c.klass:<8} {c.kind:<40} {c.verb:<32} {c.outcome}: {printable(c.detail, limit=140)}")
