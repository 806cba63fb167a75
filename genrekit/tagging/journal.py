"""Undo journals: every run that writes tags keeps each changed file's previous tags.

A journal is a JSON-lines file: a header line (``{"journal": 1, "time", "model", "mode",
"command"}``), then one line per changed file (``{"path", "before", "after", "time"}``,
each side a :class:`~genrekit.tagging.formats.TagState`), appended and fsynced as each
file is replaced, so a killed run can be undone as far as it went; an undo appends
``{"undone": time}``. Journals live in ``<GENREKIT_STATE>/tag-journals`` (:mod:`genrekit.config`)
and, for a run with ``--out RESULTS``, also in ``RESULTS.tag-journals/`` beside the store.

:func:`undo` restores every file whose tags are still what genrekit wrote: exactly the
previous genre values, and genrekit's field removed (or as it was). A file whose tags
changed since is reported and left alone.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from genrekit.errors import TagError
from genrekit.tagging.formats import TagState, open_state, write_state

#: Version of the journal format (the header's ``journal``).
JOURNAL_VERSION = 1
#: Outcomes of :func:`undo` for one file.
RESTORED, ALREADY, CHANGED_SINCE, UNDO_FAILED = "restored", "already as before", "changed since", "failed"


def journal_dir() -> Path:
    """Where journals are kept: ``<GENREKIT_STATE>/tag-journals``."""
    from genrekit.config import settings

    return settings().state_dir / "tag-journals"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class Journal:
    """The journal of one tag-writing run, created at its first change.

    Parameters
    ----------
    meta : dict
        What the header says of the run (``model``, ``mode``, ``command``...).
    folders : list of path
        Where copies are kept (default: :func:`journal_dir`); each gets the same file name.
    """

    def __init__(self, meta: dict, folders=None) -> None:
        self.meta = dict(meta)
        self.folders = [Path(f) for f in (folders or [journal_dir()])]
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S.%f")  # names sort as runs started
        self.name = f"{stamp}-{os.getpid()}.jsonl"
        self.paths: list[Path] = []
        self.count = 0

    def _lines(self, obj: dict) -> None:
        line = (json.dumps(obj, ensure_ascii=False) + "\n").encode("utf-8")
        if not self.paths:
            copies = [str((folder / self.name).resolve()) for folder in self.folders]
            header = (json.dumps(dict(journal=JOURNAL_VERSION, time=_now(), copies=copies, **self.meta),
                                 ensure_ascii=False) + "\n").encode("utf-8")
            for folder in self.folders:
                folder.mkdir(parents=True, exist_ok=True)
                path = folder / self.name
                with open(path, "xb") as fh:
                    fh.write(header)
                self.paths.append(path)
        for path in self.paths:
            with open(path, "ab") as fh:
                fh.write(line)
                fh.flush()
                os.fsync(fh.fileno())

    def record(self, path: str, before: TagState, after: TagState) -> None:
        """Keep one changed file's tags before and after (called once the file was replaced)."""
        self._lines({"path": os.path.realpath(path), "before": before.to_json(), "after": after.to_json(),
                     "time": _now()})
        self.count += 1


@dataclass(frozen=True)
class JournalInfo:
    """One journal as ``genrekit tags history`` lists it."""

    path: Path
    time: str
    files: int
    undone: str | None
    meta: dict

    def __str__(self) -> str:
        state = f"undone {self.undone}" if self.undone else "can be undone"
        what = ", ".join(f"{k} {v}" for k, v in self.meta.items() if k in ("mode", "model") and v)
        return f"{self.path.name}  {self.time}  {self.files} file(s)  {what}  ({state})"


def read_journal(path: str | os.PathLike) -> tuple[JournalInfo, list[dict]]:
    """A journal's summary and its file entries, in the order they were written.

    Raises :class:`TagError` naming the file when it cannot be read or is not a journal.
    A torn last line (a run killed while writing it) is ignored.
    """
    path = Path(path)
    try:
        lines = path.read_bytes().splitlines()
    except OSError as exc:
        raise TagError(f"journal {path}: cannot read it: {exc.strerror or exc}") from None
    objs = []
    for n, line in enumerate(lines):
        try:
            objs.append(json.loads(line))
        except (json.JSONDecodeError, UnicodeDecodeError):
            if n == len(lines) - 1:
                break
            raise TagError(f"journal {path}: line {n + 1} is not JSON") from None
    if not objs or not isinstance(objs[0], dict) or objs[0].get("journal") != JOURNAL_VERSION:
        raise TagError(f"journal {path}: not a genrekit tag journal")
    header = objs[0]
    entries = [o for o in objs[1:] if isinstance(o, dict) and "path" in o]
    undone = [o["undone"] for o in objs[1:] if isinstance(o, dict) and "undone" in o]
    meta = {k: v for k, v in header.items() if k not in ("journal", "time", "copies")}
    meta["copies"] = [str(c) for c in header.get("copies") or [] if isinstance(c, str)]
    return JournalInfo(path, header.get("time", ""), len(entries), undone[-1] if undone else None, meta), entries


def history(folder: str | os.PathLike | None = None) -> list[JournalInfo]:
    """Every journal in ``folder`` (default :func:`journal_dir`), oldest first; unreadable ones skipped."""
    folder = Path(folder) if folder is not None else journal_dir()
    infos = []
    for path in sorted(folder.glob("*.jsonl")) if folder.is_dir() else []:
        try:
            infos.append(read_journal(path)[0])
        except TagError:
            continue
    return infos


def last_journal(folder=None) -> Path:
    """The newest journal not undone yet; :class:`TagError` when there is none."""
    pending = [info for info in history(folder) if not info.undone]
    if not pending:
        raise TagError(f"no tag-writing run to undo (journals are kept in {folder or journal_dir()})")
    return pending[-1].path


@dataclass(frozen=True)
class UndoResult:
    """What :func:`undo` did to one file."""

    path: str
    status: str
    reason: str | None = None

    def __str__(self) -> str:
        return f"{self.path}: {self.status}" + (f": {self.reason}" if self.reason else "")


def undo(path: str | os.PathLike | None = None, *, dry_run: bool = False) -> list[UndoResult]:
    """Restore the tags a run changed, newest change first.

    Parameters
    ----------
    path : path or None
        The journal (default: :func:`last_journal`).
    dry_run : bool
        Only say what would be restored.

    Returns
    -------
    list of UndoResult
        :data:`RESTORED`, :data:`ALREADY` (the file has its old tags), :data:`CHANGED_SINCE`
        (its genre or genrekit's field changed after genrekit wrote them: left alone) or
        :data:`UNDO_FAILED`.
    """
    path = Path(path) if path is not None else last_journal()
    info, entries = read_journal(path)
    results = []
    for entry in reversed(entries):
        file = entry["path"]
        before, after = TagState.from_json(entry["before"]), TagState.from_json(entry["after"])
        try:
            now, cls = open_state(file)
        except TagError as exc:
            results.append(UndoResult(file, UNDO_FAILED, str(exc)))
            continue
        if now.same_tags(before):
            results.append(UndoResult(file, ALREADY))
        elif not now.same_tags(after):
            results.append(UndoResult(file, CHANGED_SINCE, "its genre tags changed after genrekit wrote them "
                                                          "(left alone)"))
        elif dry_run:
            results.append(UndoResult(file, RESTORED, "dry run: would restore"))
        else:
            try:
                write_state(file, TagState(now.kind, before.genre, before.field, before.gnre, now.id3_version), cls)
            except (TagError, OSError) as exc:
                reason = str(exc) if isinstance(exc, TagError) else (exc.strerror or str(exc))
                results.append(UndoResult(file, UNDO_FAILED, f"{reason}; the file was left unchanged"))
                continue
            results.append(UndoResult(file, RESTORED))
    if not dry_run:
        # Every copy says it was undone (the data folder's and the one beside the results).
        for copy in dict.fromkeys([str(path.resolve()), *info.meta.get("copies", [])]):
            if not os.path.isfile(copy):
                continue  # a copy moved or deleted since: the others still say it
            try:
                with open(copy, "ab") as fh:
                    fh.write((json.dumps({"undone": _now()}) + "\n").encode("utf-8"))
                    fh.flush()
                    os.fsync(fh.fileno())
            except OSError:
                continue
    return results
