"""Small file helpers: atomic writes and JSON-ready values.

Every write goes to a temporary file in the destination's folder, is fsynced, then
``os.replace``-d onto the destination, so a reader sees the old file or the complete
new one, never a part.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
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


def dumps(obj: Any) -> str:
    """Strict, indented, key-order-preserving JSON text of :func:`jsonable` ``(obj)``."""
    return json.dumps(jsonable(obj), indent=2, ensure_ascii=False, allow_nan=False) + "\n"


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


def check_writable(path: str | os.PathLike, *, folder: bool = False) -> None:
    """Raise ``OSError`` unless genrekit can write ``path`` (a file; ``folder=True``: files inside it).

    Atomic writes create a temporary file next to the target, so the test is to make
    (and remove) one there: run before any work starts, so that a read-only ``--out``
    is refused at once instead of after hours of work.
    """
    path = Path(path)
    where = path if folder else path.parent
    where.mkdir(parents=True, exist_ok=True)
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
    write_bytes_atomic(path, dumps(obj).encode("utf-8"))
