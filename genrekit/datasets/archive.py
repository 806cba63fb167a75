"""Unpack ``.tar``, ``.tar.gz``/``.tgz``/``.tar.bz2``/``.tar.xz`` and ``.zip`` archives safely.

Only regular files and folders are written, each under the destination folder: a
member with an absolute path, a drive letter, a ``..`` component, or one that is a
symbolic or hard link, a device or a FIFO is refused, and the whole unpacking stops
(the caller unpacks into a temporary folder and deletes it, so nothing reaches the
dataset). Members are copied by reading them, never with ``extractall``; permissions
and owners in the archive are ignored (files 0644, folders 0755).

Each file's sha256 is computed while it is written, so that ``validate`` can later tell
a damaged file without the archive.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath
from typing import IO

from genrekit.errors import DatasetError, UnsafeArchiveError

_CHUNK = 1 << 20


def member_path(name: str, archive: str | os.PathLike) -> PurePosixPath | None:
    """The relative path a member may be written to, or ``None`` for the archive's own root (``./``).

    Raises
    ------
    UnsafeArchiveError
        For an absolute path, a drive letter, or a ``..`` component.
    """
    text = name.replace("\\", "/")
    if text.startswith("/") or re.match(r"^[A-Za-z]:", text):
        raise UnsafeArchiveError(f"{archive}: member {name!r} has an absolute path; refusing to unpack")
    parts = [p for p in text.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UnsafeArchiveError(f"{archive}: member {name!r} climbs out of the folder ('..'); refusing to unpack")
    return PurePosixPath(*parts) if parts else None


#: Default cap on what an archive may unpack to: this many times its own size, and at least
#: :data:`MIN_UNPACKED_CAP` bytes. Audio barely compresses (GTZAN's tar.gz: 1.2 GB for 1.3 GB),
#: while a zip bomb expands a thousandfold.
MAX_EXPANSION = 20
MIN_UNPACKED_CAP = 1 << 30


def unpack(archive: str | os.PathLike, dest: str | os.PathLike, *,
           on_file: Callable[[str, str, int], None] | None = None, max_bytes: int | None = None) -> int:
    """Unpack ``archive`` into the folder ``dest`` (created), refusing unsafe members.

    Parameters
    ----------
    archive : path-like
    dest : path-like
        Should be a fresh temporary folder: on an error it is left half-filled for the
        caller to delete.
    on_file : callable, optional
        Called as ``on_file(relative_path, sha256, size)`` for each file written.
    max_bytes : int, optional
        Most bytes written in all (default: :data:`MAX_EXPANSION` times the archive's size,
        at least :data:`MIN_UNPACKED_CAP`); unpacking stops as soon as it is passed.

    Returns
    -------
    int
        Number of files written.

    Raises
    ------
    UnsafeArchiveError
        For a member that escapes ``dest`` or is a link or special file, a name that is
        both a file and a folder, or more than ``max_bytes`` unpacked.
    DatasetError
        If the file is not a readable archive of a known kind, a member uses a compression
        method this Python cannot read, or a member's name cannot be written (too long).
    """
    archive, dest = Path(archive), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    if max_bytes is None:
        max_bytes = max(MAX_EXPANSION * archive.stat().st_size, MIN_UNPACKED_CAP)
    n = total = 0
    for rel, is_dir, opener in _members(archive):
        target = dest.joinpath(*rel.parts)
        _check_place(archive, dest, rel, is_dir)
        try:
            if is_dir:
                target.mkdir(parents=True, exist_ok=True, mode=0o755)
                continue
            target.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
            h = hashlib.sha256()
            size = 0
            with opener() as src, open(target, "wb") as out:
                for block in iter(lambda: src.read(_CHUNK), b""):
                    total += len(block)
                    if total > max_bytes:
                        raise UnsafeArchiveError(f"{archive}: unpacks to more than {max_bytes} bytes (at member "
                                                 f"{rel}); refusing (a damaged or hostile archive)")
                    out.write(block)
                    h.update(block)
                    size += len(block)
        except (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error) as exc:
            raise DatasetError(f"{archive}: damaged archive at {rel}: {exc}") from None
        except NotImplementedError as exc:  # zipfile: "That compression method is not supported"
            raise DatasetError(f"{archive}: member {rel}: {exc} (compression method unknown to this Python)") from None
        except OSError as exc:  # a name too long for this file system, a folder in the way...
            raise DatasetError(f"{archive}: member {str(rel)[:120]}: cannot be written ({exc.strerror or exc})") from None
        os.chmod(target, 0o644)
        n += 1
        if on_file is not None:
            on_file(rel.as_posix(), h.hexdigest(), size)
    return n


def _check_place(archive: Path, dest: Path, rel: PurePosixPath, is_dir: bool) -> None:
    """Refuse a member whose name is, or passes through, a place of the other kind (file vs folder)."""
    for depth in range(1, len(rel.parts) + 1):
        here = dest.joinpath(*rel.parts[:depth])
        wants_dir = is_dir or depth < len(rel.parts)
        if os.path.lexists(here) and here.is_dir() != wants_dir:
            raise UnsafeArchiveError(f"{archive}: member {rel} is both a folder and a file "
                                     f"({PurePosixPath(*rel.parts[:depth])}); refusing to unpack")


def _members(archive: Path) -> Iterator[tuple[PurePosixPath, bool, Callable[[], IO[bytes]]]]:
    """``(relative path, is_folder, open)`` of each member, in archive order, after the safety checks."""
    if zipfile.is_zipfile(archive):
        yield from _zip_members(archive)
        return
    try:
        tar = tarfile.open(archive, "r:*")
    except (tarfile.TarError, OSError) as exc:
        raise DatasetError(f"{archive}: not a readable .tar(.gz/.bz2/.xz) or .zip archive: {exc}") from None
    with tar:
        try:
            for info in tar:  # streaming: members are read as the file is decompressed
                rel = member_path(info.name, archive)
                if info.issym() or info.islnk():
                    raise UnsafeArchiveError(
                        f"{archive}: member {info.name!r} is a link (to {info.linkname!r}); refusing to unpack")
                if not (info.isfile() or info.isdir()):
                    raise UnsafeArchiveError(f"{archive}: member {info.name!r} is not a file or folder; refusing")
                if rel is None:
                    continue
                yield rel, info.isdir(), (lambda info=info: tar.extractfile(info))
        except (tarfile.TarError, EOFError, OSError) as exc:
            if isinstance(exc, DatasetError):
                raise
            raise DatasetError(f"{archive}: damaged archive: {exc}") from None


def _zip_members(archive: Path):
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as exc:
        raise DatasetError(f"{archive}: not a readable .zip archive: {exc}") from None
    with zf:
        for info in zf.infolist():
            rel = member_path(info.filename, archive)
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                raise UnsafeArchiveError(f"{archive}: member {info.filename!r} is a link; refusing to unpack")
            # Unix type bits are set only by some zip writers; absent means a plain file or folder.
            if stat.S_IFMT(mode) not in (0, stat.S_IFREG, stat.S_IFDIR):
                raise UnsafeArchiveError(f"{archive}: member {info.filename!r} is not a file or folder; refusing")
            if rel is None:
                continue
            yield rel, info.is_dir(), (lambda info=info: zf.open(info))
