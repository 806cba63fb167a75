"""Undo a run that replaced files: each file back to its exact bytes, or left alone with the reason.

Only genrekit's own journals are followed (:func:`own_journal`): a journal named on the command
line must be one in genrekit's journal folder, or a copy that agrees with it byte for byte; the
journal is read as untrusted data (:func:`genrekit.tagging.journal.read_journal`). A file is
touched only when it is still exactly as the run left it (its SHA-256 and size are the entry's
``after``); it is then rebuilt from its current bytes and the bytes the journal kept, and the
rebuilt copy must be the entry's ``before`` byte for byte (its mtime too) before it replaces the
file. Where the journal kept no bytes (a stretch over the limit), the tag values are restored,
and the outcome says so. Every undo keeps its own journal, so an undo can be undone.
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass
from pathlib import Path

from genrekit.errors import JournalError, TagError
from genrekit.tagging.journal import (Journal, JournalInfo, history, journal_dir, last_journal, read_bytes,
                                      parse_journal, spans_dir)
from genrekit.tagging.safe_write import read_only_reason
from genrekit.tagging.spans import Fingerprint, fingerprint, load_span, rebuild

#: Outcomes of :func:`undo` for one file.
RESTORED, TAGS_ONLY, ALREADY, CHANGED_SINCE, UNDO_FAILED = (
    "restored", "tags restored", "already as before", "changed since", "failed")
OUTCOMES = (RESTORED, TAGS_ONLY, ALREADY, CHANGED_SINCE, UNDO_FAILED)


@dataclass(frozen=True)
class UndoResult:
    """What :func:`undo` did to one file."""

    path: str
    status: str
    reason: str | None = None

    def describe(self, show=str) -> str:
        return f"{show(self.path)}: {self.status}" + (f": {show(self.reason)}" if self.reason else "")

    def __str__(self) -> str:
        return self.describe()


def own_journal(path: str | os.PathLike) -> JournalInfo:
    """The journal at ``path`` as genrekit's own folder keeps it; :class:`JournalError` otherwise."""
    path = Path(path)
    data = read_bytes(path)
    info = parse_journal(path, data)
    folder = journal_dir()
    own = folder / info.name
    if path.name == info.name and os.path.realpath(path.parent) == os.path.realpath(folder):
        return info
    try:
        mine = read_bytes(own)
    except JournalError:
        raise JournalError(f"journal {path}: genrekit kept no journal {info.name} in {folder}; only runs "
                           "genrekit recorded can be undone") from None
    if mine != data:
        raise JournalError(f"journal {path} does not match genrekit's own copy of it ({info.name}); only what "
                           "genrekit recorded is undone")
    return parse_journal(own, mine)


def _fp(obj: dict) -> Fingerprint:
    return Fingerprint(obj["sha256"], obj["size"], obj["mtime_ns"], obj.get("atime_ns", 0))


class _Later:
    """Which later run wrote on a file (for "changed since" reasons), looked up once."""

    def __init__(self, name: str) -> None:
        self.name, self.index = name, None

    def find(self, path: str, sha: str) -> str:
        if self.index is None:
            self.index = {}
            for info in history():
                for entry in info.entries:
                    if info.name > self.name:
                        self.index.setdefault((entry["path"], entry["before"]["sha256"]), info)
        info = self.index.get((path, sha))
        if info is None:
            return "it changed after genrekit wrote it (left alone)"
        return (f"it changed after genrekit wrote it: run {info.name} at {info.time} wrote on it; "
                "undo that run first (left alone)")


def undo(path: str | os.PathLike | None = None, *, dry_run: bool = False) -> list[UndoResult]:
    """Restore the files a run changed, newest change first.

    Parameters
    ----------
    path : path or None
        The journal (default: :func:`~genrekit.tagging.journal.last_journal`).
    dry_run : bool
        Only say what would be restored.

    Returns
    -------
    list of UndoResult
        :data:`RESTORED` (byte for byte, mtime included), :data:`TAGS_ONLY` (the genre values
        only, with the reason), :data:`ALREADY`, :data:`CHANGED_SINCE` (left alone) or
        :data:`UNDO_FAILED`.

    Raises
    ------
    genrekit.errors.JournalError
        The journal is not one genrekit kept, or this undo's own journal cannot be written.
    """
    info = own_journal(path if path is not None else last_journal())
    journal = None if dry_run else Journal({"command": "undo", "undoes": info.name})
    later = _Later(info.name)
    results = []
    try:
        for entry in reversed(info.entries):
            results.append(_undo_one(info, entry, journal, later, dry_run))
    finally:
        if journal is not None:
            journal.discard()
    return results


def _undo_one(info: JournalInfo, entry: dict, journal: Journal | None, later: _Later, dry_run: bool) -> UndoResult:
    file = entry["path"]
    before, after = _fp(entry["before"]), _fp(entry["after"])
    if os.path.realpath(file) != file:
        return UndoResult(file, UNDO_FAILED, "its path now goes through a symbolic link (left alone)")
    try:
        now = fingerprint(file)
    except FileNotFoundError:
        return UndoResult(file, UNDO_FAILED, "the file is gone")
    except OSError as exc:
        why = "not a regular file" if exc.errno in (0, errno.ELOOP) else exc.strerror or str(exc)
        return UndoResult(file, UNDO_FAILED, f"{why} (left alone)")
    tags = entry.get("tags")
    swapped = {} if tags is None else {"before": _state(tags["after"]), "after": _state(tags["before"])}
    if now.same_content(before):
        if journal is not None:  # counted as undone by the history
            journal.record_unchanged(file, now, entry=entry["n"])
        return UndoResult(file, ALREADY)
    if not now.same_content(after):
        return UndoResult(file, CHANGED_SINCE, later.find(file, after.sha256))
    blocked = read_only_reason(file)  # made read-only since: meant to stay as it is
    if blocked:
        return UndoResult(file, UNDO_FAILED, f"{blocked} (left alone)")
    if dry_run:
        return UndoResult(file, RESTORED, "dry run: would restore")

    def record(tmp: str) -> None:
        journal.record_replacement(file, tmp, entry=entry["n"], **swapped)

    span = entry.get("span")
    try:
        if span is not None:
            data = load_span(spans_dir(info.path) / f"{entry['n']}.z", span["before"])
            rebuild(file, now, (span["offset"], span["after"]), data, before, before_replace=record)
            return UndoResult(file, RESTORED)
        if tags is None:
            return UndoResult(file, UNDO_FAILED, "the journal kept neither its bytes nor its tags (left alone)")
        from genrekit.tagging.formats import open_state, write_state

        state, cls = open_state(file)
        target = _state(tags["before"])
        if target.kind != state.kind:
            return UndoResult(file, UNDO_FAILED, "its tags are of another kind now (left alone)")
        write_state(file, type(target)(state.kind, target.genre, target.field, target.gnre, state.id3_version), cls,
                    before_replace=record)
        return UndoResult(file, TAGS_ONLY, f"the genre tags only: {entry.get('why') or 'no bytes were kept'}")
    except JournalError:
        raise
    except (TagError, OSError) as exc:
        reason = str(exc) if isinstance(exc, TagError) else (exc.strerror or str(exc))
        return UndoResult(file, UNDO_FAILED, f"{reason}; the file was left unchanged")


def _state(obj: dict):
    from genrekit.tagging.formats import TagState

    return TagState.from_json(obj)
