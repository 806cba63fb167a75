"""Small file helpers: atomic writes and JSON-ready values.

Every write goes to a temporary file in the destination's folder, is fsynced, then
``os.replace``-d onto the destination, so a reader sees the old file or the complete
new one, never a part.
"""

from __future__ import annotations

import contextlib
import errno
import json
import re
import math
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np


def jsonable(obj: Any) -> Any:
    """``obj`` with numpy values, tuples and paths turned into plain JSON types.

    Non-finite floats become ``None`` (strict JSON has no NaN); dict keys become strings.
    """
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return [jsonable(v) for v in obj.tolist()]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    return obj


#: An indented JSON array holding only numbers (a newline never occurs inside a JSON string).
_NUMBER_ARRAY = re.compile(r"\[\n\s*-?[0-9][0-9.eE+-]*(?:,\n\s*-?[0-9][0-9.eE+-]*)*\n\s*\]")


def _one_line(match: "re.Match[str]") -> str:
    return "[" + ", ".join(item.strip() for item in match.group(0)[1:-1].split(",")) + "]"


def dumps(obj: Any) -> str:
    """Strict, indented, key-order-preserving JSON text of :func:`jsonable` ``(obj)``.

    Arrays of numbers stay on one line (a matrix: one line a row), so a bundle's
    covariance or a reliability curve reads as a table instead of thousands of lines.
    """
    text = json.dumps(jsonable(obj), indent=2, ensure_ascii=False, allow_nan=False)
    return _NUMBER_ARRAY.sub(_one_line, text) + "\n"


def read_json(path: str | os.PathLike, what: str, error: type[Exception]) -> Any:
    """The JSON value in ``path``; an unreadable or malformed file raises ``error`` with a sentence
    naming the file and ``what`` it should hold (``"the dataset catalogue"``)."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise error(f"{path}: cannot read {what}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise error(f"{path}: {what} is not JSON: {exc}") from None


def sql_name(name: str) -> str | bytes:
    """A file name as an SQLite value: text when it is UTF-8, else its raw bytes (a BLOB).

    A name that is not UTF-8 (``café`` in Latin-1) reaches Python as ``caf\\udce9``, which
    ``sqlite3`` cannot encode; its bytes are stored instead, and :func:`name_from_sql`
    gives back the same ``str``, so lookups by path keep working.
    """
    try:
        name.encode("utf-8")
        return name
    except UnicodeEncodeError:
        return os.fsencode(name)


def name_from_sql(value: str | bytes | None) -> str | None:
    """The inverse of :func:`sql_name`."""
    return os.fsdecode(value) if isinstance(value, bytes) else value


#: How genrekit encodes text it writes: a file name that is not UTF-8 holds lone surrogates
#: (``caf\\udce9``), written as the six characters ``\\udce9``, which JSON reads back exactly.
TEXT_ERRORS = "backslashreplace"


def try_lock(fd: int) -> bool | None:
    """Take ``fd``'s exclusive ``flock`` without waiting: ``True`` taken, ``False`` held by another
    process, ``None`` no locking here (not POSIX, or a file system that refuses locks)."""
    try:
        import fcntl
    except ImportError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError:
        return None
    return True


def fsync_dir(directory: str | os.PathLike) -> None:
    """Make renames inside ``directory`` durable (POSIX); a no-op where folders cannot be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO[Any]]:
    """Open a temporary file next to ``path``; on success fsync it and move it onto ``path``.

    On an exception the temporary file is removed and ``path`` is untouched. The
    temporary name starts with ``.`` so folder scans skip it. The new file gets the
    mode an existing ``path`` had, else what ``open`` would give (0666 less the umask),
    not ``mkstemp``'s private 0600.
    """
    path = Path(path)
    try:
        existing = os.stat(path).st_mode
    except OSError:
        existing = 0
    for test, what in _SPECIAL:
        if test(existing):  # os.replace would put a regular file in its place
            raise OSError(errno.EPERM, f"is a {what}, not a regular file: not replaced", str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        newline = "" if "b" not in mode else None  # csv writes its own line endings
        with open(fd, mode, newline=newline) as f:
            yield f
            f.flush()
            os.fchmod(f.fileno(), _mode_for(path))
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)


def _mode_for(path: Path) -> int:
    """Permission bits for a file written over ``path``: its current ones, else 0666 & ~umask."""
    try:
        return path.stat().st_mode & 0o7777
    except OSError:
        return 0o666 & ~current_umask()


def current_umask() -> int:
    """The process's umask, read without changing it where the system allows (Linux)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # elsewhere: set and restore (not thread-safe, but brief)
    os.umask(mask)
    return mask


#: What ``stat`` calls the files genrekit never writes over.
_SPECIAL = ((stat.S_ISCHR, "character device"), (stat.S_ISBLK, "block device"), (stat.S_ISFIFO, "FIFO (named pipe)"),
            (stat.S_ISSOCK, "socket"))


def check_out(path: str | os.PathLike, *, kind: str = "file", option: str = "--out") -> None:
    """Refuse an output path genrekit must not write, before any work starts.

    The one check of every verb's output options (``cli.main`` runs it on each option
    declared with :func:`genrekit.commands.common.output_option`). Refused, with what
    to do instead:

    - a character or block device, a FIFO or a socket, or a symbolic link to one: an
      atomic write would replace it with a regular file (as root, ``--out /dev/null``
      would destroy ``/dev/null``);
    - a folder where a file is expected (``kind="file"``), a file where a folder is
      (``kind="folder"``); ``kind="any"`` takes either (the verb decides later);
    - a missing parent folder (it is not created: a typo would scatter folders);
    - a place genrekit cannot write (probed by making and removing a temporary file).

    Parameters
    ----------
    path : str or os.PathLike
        The output path as given.
    kind : {"file", "folder", "any"}
        What the option names.
    option : str
        The option's name, for the message.

    Raises
    ------
    CommandError
        Naming the option, the path and the problem.
    """
    from genrekit.errors import CommandError

    path = Path(path)
    try:
        st = os.stat(path)  # follows links: a link to a FIFO is a FIFO
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise CommandError(f"cannot write {option} {path}: {exc.strerror or exc}") from None
    if st is not None:
        for test, what in _SPECIAL:
            if test(st.st_mode):
                via = " (through a symbolic link)" if path.is_symlink() else ""
                raise CommandError(f"{option} {path}: is a {what}{via}, not a regular file; genrekit writes "
                                   f"a new file in its place, so give the path of a regular file")
        if stat.S_ISDIR(st.st_mode) and kind == "file":
            raise CommandError(f"{option} {path}: is a folder; give a file name (e.g. {path / 'results'}"
                               f"{path.suffix or '.csv'})")
        if not stat.S_ISDIR(st.st_mode) and kind == "folder":
            raise CommandError(f"{option} {path}: is a file, not a folder; give a folder (it is created "
                               f"if missing)")
    parent = path.parent
    if st is None and not parent.is_dir():
        raise CommandError(f"{option} {path}: the folder {parent} does not exist; create it first "
                           f"(mkdir -p {parent}) or give another path")
    try:
        check_writable(path, folder=st is not None and stat.S_ISDIR(st.st_mode))
    except OSError as exc:  # before any work: a read-only --out must not lose a whole run
        raise CommandError(f"cannot write {option} {path}: {exc.strerror or exc}") from None


def check_writable(path: str | os.PathLike, *, folder: bool = False) -> None:
    """Raise ``OSError`` unless genrekit can write ``path`` (a file; ``folder=True``: files inside it).

    Atomic writes create a temporary file next to the target, so the test is to make
    (and remove) one there. Nothing is created: a missing folder raises ``FileNotFoundError``.
    """
    path = Path(path)
    where = path if folder else path.parent
    fd, probe = tempfile.mkstemp(dir=where, prefix=".genrekit-probe-", suffix=".tmp")
    os.close(fd)
    os.unlink(probe)
    if not folder and path.exists() and not os.access(path, os.W_OK) and not path.is_dir():
        # Replacing it would work, but appending to it (results logs) would not.
        raise PermissionError(13, "the file is read-only", str(path))


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temporary file, fsync, ``os.replace``)."""
    with atomic_write(path, "wb") as f:
        f.write(data)


def write_json_atomic(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as strict UTF-8 JSON to ``path`` atomically."""
    write_bytes_atomic(path, dumps(obj).encode("utf-8", TEXT_ERRORS))
