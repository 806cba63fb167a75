"""Tag journals: every file a run replaces is recorded first, so that the change can be undone exactly.

A journal is a JSON-lines file in genrekit's own folder, ``<GENREKIT_STATE>/tag-journals``
(:mod:`genrekit.config`): a header line (``{"journal": 2, "name", "time", "model", "mode",
"command", ...}``), then one line per replaced file, written and fsynced **before** the file
is replaced (a write-ahead record: a killed run leaves no change without its line)::

    {"n": 0, "path": "/music/a.flac", "before": FINGERPRINT, "after": FINGERPRINT,
     "span": {"offset": 4, "before": 310, "after": 352}, "tags": {"before": TAGS, "after": TAGS},
     "time": "..."}

A fingerprint is the file's SHA-256, size and times (:class:`~genrekit.tagging.spans.Fingerprint`);
``span`` is the stretch of bytes the write changed, whose *before* side is kept compressed in
``<journal name>.before/<n>.z`` beside the journal (``null`` past
:data:`~genrekit.tagging.spans.SPAN_MAX`: then ``why`` says so and an undo restores the tag values
in ``tags``). The journal is created, header fsynced, before the run touches its first file; a
failed journal write stops the run (:class:`~genrekit.errors.JournalError`) with the file unchanged.
With ``--out RESULTS`` a copy of the lines is kept in ``RESULTS.tag-journals/`` too: a pointer to
genrekit's own journal, which :mod:`genrekit.tagging.undo` uses only when the two agree.

An undo is a run like any other: its journal (``"command": "undo", "undoes": NAME``) records the
files it restored (``"entry"``: the line of the journal undone), so that it can be undone in turn;
:func:`history` counts a run's files as undone from those journals. Nothing ever appends to a
journal after its run.

Journals are read as untrusted data (:func:`read_journal`): a regular file only (no FIFO, device
or symlink), at most :data:`READ_MAX` bytes, every field's type and range checked; any problem is
one :class:`~genrekit.errors.JournalError` naming the journal and the line.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from genrekit.errors import JournalError, TagError
from genrekit.tagging.spans import SPAN_MAX, compare, open_regular, save_span

#: Version of the journal format (the header's ``journal``); version 1 had no content checks.
JOURNAL_VERSION = 2
#: The largest journal read (bytes), and the longest line.
READ_MAX = 256 << 20
LINE_MAX = 1 << 20
#: The longest path, text value and number of genre values a journal may hold.
PATH_MAX, TEXT_MAX, VALUES_MAX = 4096, 1 << 16, 10_000
#: The most bytes of tag values an entry keeps (its line stays under :data:`LINE_MAX`).
TAGS_MAX = 1 << 19
#: A journal's file name, as :class:`Journal` makes it: names sort as runs started.
NAME = re.compile(r"^\d{8}T\d{6}\.\d{6}-\d{1,10}\.jsonl$")
#: Header keys kept from a journal, and how long their text may be.
META_KEYS = ("model", "mode", "genres", "min_score", "names", "command", "undoes")
META_TEXT_MAX = 4096
_INT_MAX = 1 << 63


def journal_dir() -> Path:
    """Where journals are kept: ``<GENREKIT_STATE>/tag-journals``."""
    from genrekit.config import settings

    return settings().state_dir / "tag-journals"


def spans_dir(journal: Path) -> Path:
    """The folder of the bytes a journal keeps for exact undo: ``NAME.before/`` beside it."""
    return journal.with_name(journal.name[:-len(".jsonl")] + ".before")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _why(exc: OSError) -> str:
    return exc.strerror or str(exc) or type(exc).__name__


class Journal:
    """The journal of one run that replaces files; created (and fsynced) at once.

    Parameters
    ----------
    meta : dict
        What the header says of the run (``model``, ``mode``, ``command``...).
    folders : list of path
        Where it is kept (default: :func:`journal_dir`); the first keeps the bytes for exact undo,
        the others a copy of the lines.
    span_max : int
        The most bytes kept for one file's exact undo (default :data:`~genrekit.tagging.spans.SPAN_MAX`);
        past it the entry keeps the tag values (restored alone, and said so), and a file whose
        values are too long to keep as well is not changed at all (:class:`~genrekit.errors.TagError`).

    Raises
    ------
    genrekit.errors.JournalError
        A folder cannot hold it (nothing was changed yet).
    """

    def __init__(self, meta: dict, folders=None, *, span_max: int = SPAN_MAX) -> None:
        self.span_max = min(int(span_max), SPAN_MAX)
        # What the header says is for the history's eyes: text is kept to what a reader accepts.
        self.meta = {k: v[:META_TEXT_MAX] if isinstance(v, str) else v for k, v in dict(meta).items()
                     if k in META_KEYS}
        self.folders = [Path(f) for f in (folders or [journal_dir()])]
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S.%f")
        self.name = f"{stamp}-{os.getpid()}.jsonl"
        self.paths: list[Path] = []
        self.count = 0
        header = dict(journal=JOURNAL_VERSION, name=self.name, time=_now(), **self.meta)
        self.spans = spans_dir(self.folders[0] / self.name)
        try:
            for folder in self.folders:
                folder.mkdir(parents=True, exist_ok=True)
                path = folder / self.name
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
                self.paths.append(path)
                try:
                    os.write(fd, _line(header))
                    os.fsync(fd)
                finally:
                    os.close(fd)
            self.spans.mkdir()
        except OSError as exc:
            where = exc.filename or self.folders[0]
            self.discard()
            raise JournalError(f"cannot keep the tag journal in {where}: {_why(exc)}; no file was changed "
                               "(GENREKIT_STATE names genrekit's own folder)") from None

    @property
    def path(self) -> Path:
        """The journal in genrekit's own folder."""
        return self.paths[0]

    def _append(self, obj: dict) -> None:
        data = _line(obj)
        for path in self.paths:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | getattr(os, "O_NOFOLLOW", 0))
            try:
                if os.write(fd, data) != len(data):
                    raise OSError(0, "short write")
                os.fsync(fd)
            finally:
                os.close(fd)

    def record_replacement(self, real: str, new: str, before=None, after=None, **extra) -> None:
        """Record that ``real`` is about to be replaced by the verified copy ``new``.

        ``before``/``after``: the files' :class:`~genrekit.tagging.formats.TagState` (for the
        value-level undo); ``extra``: more fields of the entry (an undo's ``entry``).

        Raises :class:`~genrekit.errors.JournalError` when the entry cannot be written (the run
        stops), :class:`~genrekit.errors.TagError` when the change could not be undone (neither its
        bytes nor its values can be kept): the caller must then leave ``real`` as it is.
        """
        n = self.count
        try:
            was, will, (offset, old_len, new_len) = compare(real, new)
            span, why = None, None
            tags = _kept_tags(before, after)
            if old_len <= self.span_max:
                save_span(real, offset, old_len, str(self.spans / f"{n}.z"))
                span = {"offset": offset, "before": old_len, "after": new_len}
            elif tags is None:
                raise TagError(f"the change spans {old_len} bytes and the tags are too long to keep: it could "
                               "not be undone, so it was not made")
            else:
                why = f"{old_len} bytes changed, more than the {self.span_max} kept for an exact undo"
            entry = {"n": n, "path": real, "before": was.to_json(), "after": will.to_json(), "span": span,
                     "tags": tags, "time": _now(), **extra}
            if why:
                entry["why"] = why
            self._append(entry)
        except OSError as exc:
            raise JournalError(f"cannot write the tag journal {self.path}: {_why(exc)}; {real} was left "
                               "unchanged and the run stopped") from None
        self.count += 1

    def record_unchanged(self, real: str, now, **extra) -> None:
        """Record that ``real`` (fingerprint ``now``) needed no change (an undo finding it as it was)."""
        entry = {"n": self.count, "path": real, "before": now.to_json(), "after": now.to_json(), "span": None,
                 "tags": None, "time": _now(), **extra}
        try:
            self._append(entry)
        except OSError as exc:
            raise JournalError(f"cannot write the tag journal {self.path}: {_why(exc)}; the run stopped") from None
        self.count += 1

    def discard(self) -> None:
        """Remove the journal if it records nothing (a run that changed no file)."""
        if self.count:
            return
        for path in self.paths:
            try:
                os.unlink(path)
            except OSError:
                pass
        shutil.rmtree(self.spans, ignore_errors=True)
        self.paths = []


#: The public name (``genrekit.TagJournal``): integrations pass one to :class:`~genrekit.tagging.plan.TagPlan`.
TagJournal = Journal


def _kept_tags(before, after) -> dict | None:
    """The entry's ``tags`` (for a value-level undo), or ``None`` when a reader would refuse them."""
    if before is None or after is None:
        return None
    tags = {"before": before.to_json(), "after": after.to_json()}
    try:
        _tag_state(tags["before"], "tags before"), _tag_state(tags["after"], "tags after")
    except _Bad:
        return None
    return tags if len(json.dumps(tags, ensure_ascii=False).encode("utf-8")) <= TAGS_MAX else None


def _line(obj: dict) -> bytes:
    return (json.dumps(obj, ensure_ascii=False) + "\n").encode("utf-8")


# --- reading, as untrusted data ---------------------------------------------------------------------
def read_bytes(path: Path, what: str = "journal") -> bytes:
    """A regular file's bytes, at most :data:`READ_MAX` (:class:`JournalError` otherwise)."""
    try:
        fd = open_regular(path)
    except OSError as exc:
        import errno

        why = {errno.ELOOP: "it is a symbolic link", errno.ENOENT: "no such file",
               0: "not a regular file (a folder, FIFO or device)"}.get(exc.errno, _why(exc))
        raise JournalError(f"{what} {path}: cannot read it: {why}") from None
    try:
        size = os.fstat(fd).st_size
        if size > READ_MAX:
            raise JournalError(f"{what} {path}: {size} bytes, larger than any journal genrekit writes "
                               f"({READ_MAX >> 20} MiB)")
        chunks, total = [], 0
        while block := os.read(fd, 1 << 20):
            chunks.append(block)
            total += len(block)
            if total > READ_MAX:
                raise JournalError(f"{what} {path}: larger than any journal genrekit writes")
        return b"".join(chunks)
    except OSError as exc:
        raise JournalError(f"{what} {path}: cannot read it: {_why(exc)}") from None
    finally:
        os.close(fd)


def _no_constant(name: str):
    raise ValueError(f"{name} is not JSON")


def _parse(line: bytes):
    if len(line) > LINE_MAX:
        raise ValueError("line too long")
    return json.loads(line.decode("utf-8"), parse_constant=_no_constant)


class _Bad(Exception):
    """One field of a journal that is not what genrekit writes."""


def _int(obj, key, low=0, high=_INT_MAX) -> int:
    value = obj.get(key) if isinstance(obj, dict) else None
    if type(value) is not int or not low <= value <= high:
        raise _Bad(f"{key!r} must be a whole number from {low}")
    return value


def _text(value, what: str, limit: int = TEXT_MAX, none: bool = False):
    if value is None and none:
        return None
    if not isinstance(value, str) or len(value) > limit or "\x00" in value:
        raise _Bad(f"{what} must be text (at most {limit} characters)")
    return value


def _fingerprint(obj, what: str) -> dict:
    if not isinstance(obj, dict):
        raise _Bad(f"{what!r} must be a file's fingerprint")
    sha = obj.get("sha256")
    if not isinstance(sha, str) or not re.fullmatch(r"[0-9a-f]{64}", sha):
        raise _Bad(f"{what!r} must hold a SHA-256")
    for key in ("size", "mtime_ns", "atime_ns"):
        _int(obj, key)
    return obj


def _tag_state(obj, what: str) -> dict:
    if not isinstance(obj, dict) or obj.get("kind") not in ("id3", "vorbis", "mp4"):
        raise _Bad(f"{what} must be tags of kind id3, vorbis or mp4")
    genre = obj.get("genre")
    if genre is not None and (not isinstance(genre, list) or len(genre) > VALUES_MAX):
        raise _Bad(f"{what}: 'genre' must be a list of text")
    for value in genre or []:
        _text(value, f"{what}: a genre")
    _text(obj.get("field"), f"{what}: 'field'", none=True)
    gnre = obj.get("gnre")
    if gnre is not None and (not isinstance(gnre, list) or len(gnre) > 64
                             or any(type(n) is not int or not 0 <= n < 65536 for n in gnre)):
        raise _Bad(f"{what}: 'gnre' must be a list of small numbers")
    if obj.get("id3_version") not in (None, 3, 4):
        raise _Bad(f"{what}: 'id3_version' must be 3 or 4")
    return obj


def _entry(obj, n: int) -> dict:
    if not isinstance(obj, dict):
        raise _Bad("an entry must be an object")
    if _int(obj, "n") != n:
        raise _Bad(f"entries must be numbered in order ('n' {n})")
    path = _text(obj.get("path"), "'path'", PATH_MAX)
    if not os.path.isabs(path) or os.path.normpath(path) != path:
        raise _Bad("'path' must be an absolute, normal path")
    before, after = _fingerprint(obj.get("before"), "before"), _fingerprint(obj.get("after"), "after")
    span = obj.get("span")
    if span is not None:
        offset, old, new = _int(span, "offset"), _int(span, "before", 0, SPAN_MAX), _int(span, "after")
        if offset + old > before["size"] or offset + new > after["size"] \
                or before["size"] - old != after["size"] - new:
            raise _Bad("'span' does not fit the files' sizes")
    tags = obj.get("tags")
    if tags is not None:
        if not isinstance(tags, dict):
            raise _Bad("'tags' must be an object")
        _tag_state(tags.get("before"), "tags before"), _tag_state(tags.get("after"), "tags after")
    if "entry" in obj:
        _int(obj, "entry")
    _text(obj.get("time"), "'time'", 64)
    _text(obj.get("why"), "'why'", 1000, none=True)
    return obj


def _header(obj) -> dict:
    if not isinstance(obj, dict) or "journal" not in obj:
        raise _Bad("not a genrekit tag journal")
    if obj["journal"] == 1 and type(obj["journal"]) is int:
        raise _Bad("an older genrekit's journal, without content checks: it cannot be undone safely")
    if type(obj["journal"]) is not int or obj["journal"] != JOURNAL_VERSION:
        raise _Bad(f"journal version {json.dumps(obj['journal'])[:20]}: this genrekit reads version {JOURNAL_VERSION}")
    name = _text(obj.get("name"), "'name'", 64)
    if not NAME.match(name):
        raise _Bad("'name' is not a journal name genrekit gives")
    _text(obj.get("time"), "'time'", 64)
    meta = {}
    for key in META_KEYS:
        value = obj.get(key)
        if value is None or isinstance(value, bool) or (isinstance(value, (int, float)) and abs(value) < 1e9):
            meta[key] = value
        else:
            meta[key] = _text(value, repr(key), META_TEXT_MAX)
    if meta.get("undoes") is not None and (not NAME.match(meta["undoes"]) or meta["undoes"] >= name):
        raise _Bad("'undoes' must name an earlier journal")
    return {"name": name, "time": obj["time"], "meta": {k: v for k, v in meta.items() if v is not None}}


@dataclass(frozen=True)
class JournalInfo:
    """One journal as ``genrekit tags history`` lists it."""

    path: Path
    name: str
    time: str
    files: int
    meta: dict
    undone_files: int = 0
    entries: list = field(default_factory=list, repr=False, compare=False)

    @property
    def undone(self) -> bool:
        """Every file the run changed has been restored."""
        return bool(self.files) and self.undone_files >= self.files

    def describe(self, show=str) -> str:
        """One line: name, time, files, what, state; ``show`` makes each value printable."""
        state = ("undone" if self.undone else f"partly undone: {self.undone_files} of {self.files} files"
                 if self.undone_files else "can be undone")
        if self.meta.get("command") == "undo":
            what = f"undo of {show(self.meta.get('undoes'))}"
        else:
            what = ", ".join(f"{k} {show(v)}" for k, v in self.meta.items() if k in ("mode", "model") and v)
        return f"{show(self.path.name)}  {show(self.time)}  {self.files} file(s)  {what}  ({state})"

    def __str__(self) -> str:
        return self.describe()


def parse_journal(path: Path, data: bytes) -> JournalInfo:
    """The journal in ``data`` (read from ``path``), every field checked."""
    lines = data.split(b"\n")
    torn = lines.pop() if lines else b""  # text after the last newline: a line a killed run did not finish
    if not lines:
        raise JournalError(f"journal {path}: empty or not a genrekit tag journal" if not torn else
                           f"journal {path}: not a genrekit tag journal")
    try:
        n = 0
        header = _header(_parse(lines[0]))
        entries = []
        for n, line in enumerate(lines[1:], start=2):
            entries.append(_entry(_parse(line), len(entries)))
    except (ValueError, RecursionError, UnicodeDecodeError):
        raise JournalError(f"journal {path}: line {n or 1} is not JSON genrekit writes") from None
    except _Bad as exc:
        raise JournalError(f"journal {path}: line {n or 1}: {exc}") from None
    return JournalInfo(path, header["name"], header["time"], len(entries), header["meta"], entries=entries)


def read_journal(path: str | os.PathLike) -> JournalInfo:
    """A journal's summary and its entries (``.entries``), in the order written.

    Raises :class:`~genrekit.errors.JournalError` naming the file when it cannot be read or is not
    a journal genrekit writes.
    """
    path = Path(path)
    return parse_journal(path, read_bytes(path))


def _undone(infos: list[JournalInfo]) -> dict[str, set]:
    """Name -> the entries of that journal that later undos restored (and no redo changed again)."""
    by_name = {i.name: i for i in infos}
    undos: dict[str, list[JournalInfo]] = {}
    for info in infos:
        if info.meta.get("command") == "undo" and info.meta.get("undoes") in by_name:
            undos.setdefault(info.meta["undoes"], []).append(info)
    memo: dict[str, set] = {}
    for info in sorted(infos, key=lambda i: i.name, reverse=True):  # an undo is newer than what it undoes
        done = set()
        for undo in undos.get(info.name, []):
            redone = memo.get(undo.name, set())
            done |= {e["entry"] for i, e in enumerate(undo.entries) if "entry" in e and i not in redone}
        memo[info.name] = {e for e in done if e < info.files}
    return memo


def history(folder: str | os.PathLike | None = None, skipped: list | None = None) -> list[JournalInfo]:
    """Every journal in ``folder`` (default :func:`journal_dir`), oldest first, with how many of its
    files were undone; unreadable ones are left out (and listed in ``skipped`` when given)."""
    folder = Path(folder) if folder is not None else journal_dir()
    infos = []
    for path in sorted(folder.glob("*.jsonl")) if folder.is_dir() else []:
        try:
            info = read_journal(path)
            if info.name != path.name:
                raise JournalError(f"journal {path}: its header names another journal")
            infos.append(info)
        except JournalError as exc:
            if skipped is not None:
                skipped.append(str(exc))
    done = _undone(infos)
    return [JournalInfo(i.path, i.name, i.time, i.files, i.meta, len(done.get(i.name, ())), i.entries)
            for i in infos]


def last_journal(folder=None) -> Path:
    """The newest run (not an undo) with files left to undo; :class:`JournalError` when there is none."""
    pending = [info for info in history(folder)
               if info.files and not info.undone and info.meta.get("command") != "undo"]
    if not pending:
        raise JournalError(f"no tag-writing run to undo (journals are kept in {folder or journal_dir()})")
    return pending[-1].path
