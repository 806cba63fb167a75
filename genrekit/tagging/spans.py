"""What an exact undo needs: a file's fingerprint, and the bytes that a tag write changed.

A tag write changes one stretch of a file (the tag block; for Ogg, the pages after it as
well). :func:`changed_span` finds it in two bounded streaming passes, the common prefix and
the common suffix of the file before and after, and :func:`save_span` keeps the *before*
side of that stretch, compressed, in genrekit's journal folder. :func:`rebuild` puts it back:
the file as it is now, with that stretch swapped, written to a temporary copy whose
fingerprint must be the recorded one before it replaces anything.

Nothing here trusts what a journal says: offsets are checked against the file, the kept
bytes are read with a size cap, and a rebuilt file that is not byte for byte the recorded
one is thrown away.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import tempfile
import zlib
from dataclasses import dataclass

from genrekit._io import fsync_dir
from genrekit.errors import TagError
from genrekit.tagging.safe_write import TMP_SUFFIX, UnnamedCopy, try_lock

#: Read size of the streaming passes.
CHUNK = 1 << 20
#: The largest stretch kept for an exact undo (bytes, before compression); past it, an undo
#: restores the tag values only and says so.
SPAN_MAX = 64 << 20


@dataclass(frozen=True)
class Fingerprint:
    """A file's content as a check: SHA-256, size, and its modification time (ns)."""

    sha256: str
    size: int
    mtime_ns: int
    atime_ns: int = 0

    def to_json(self) -> dict:
        return {"sha256": self.sha256, "size": self.size, "mtime_ns": self.mtime_ns, "atime_ns": self.atime_ns}

    def same_content(self, other: Fingerprint) -> bool:
        return (self.sha256, self.size) == (other.sha256, other.size)


def open_regular(path: str | os.PathLike, flags: int = os.O_RDONLY) -> int:
    """A descriptor of ``path`` when it is a regular file (a FIFO, device or symlink raises
    :class:`OSError`, without blocking on a FIFO)."""
    for name in ("O_NONBLOCK", "O_CLOEXEC") if isinstance(path, UnnamedCopy) else ("O_NONBLOCK", "O_NOFOLLOW", "O_CLOEXEC"):
        flags |= getattr(os, name, 0)
    fd = os.open(path, flags)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(0, "not a regular file")
    return fd


def fingerprint_fd(fd: int) -> Fingerprint:
    st = os.fstat(fd)
    digest = hashlib.sha256()
    os.lseek(fd, 0, os.SEEK_SET)
    while block := os.read(fd, CHUNK):
        digest.update(block)
    return Fingerprint(digest.hexdigest(), st.st_size, st.st_mtime_ns, st.st_atime_ns)


def fingerprint(path: str | os.PathLike) -> Fingerprint:
    """The :class:`Fingerprint` of a regular file (symlinks not followed)."""
    fd = open_regular(path)
    try:
        return fingerprint_fd(fd)
    finally:
        os.close(fd)


def _pread_all(fd: int, size: int, offset: int) -> bytes:
    parts, done = [], 0
    while done < size:
        block = os.pread(fd, min(CHUNK, size - done), offset + done)
        if not block:
            break
        parts.append(block)
        done += len(block)
    return b"".join(parts)


def _first_difference(x: bytes, y: bytes) -> int:
    """The index of the first byte where ``x`` and ``y`` differ (the shorter length if none does)."""
    low, high = 0, min(len(x), len(y))
    while high - low > 64:  # halve by slice comparisons (C speed), then look at the last few bytes
        mid = (low + high) // 2
        if x[low:mid] == y[low:mid]:
            low = mid
        else:
            high = mid
    return next((i for i in range(low, high) if x[i] != y[i]), high)


def changed_span(before: str, after: str) -> tuple[int, int, int]:
    """``(offset, before_length, after_length)``: the stretch where two files differ."""
    with open(before, "rb") as a, open(after, "rb") as b:
        size_a, size_b = os.fstat(a.fileno()).st_size, os.fstat(b.fileno()).st_size
        prefix = 0
        while prefix < min(size_a, size_b):
            n = min(CHUNK, min(size_a, size_b) - prefix)
            x, y = os.pread(a.fileno(), n, prefix), os.pread(b.fileno(), n, prefix)
            if x == y:
                prefix += n
                continue
            prefix += _first_difference(x, y)
            break
        room, suffix = min(size_a, size_b) - prefix, 0
        while suffix < room:
            n = min(CHUNK, room - suffix)
            x = os.pread(a.fileno(), n, size_a - suffix - n)
            y = os.pread(b.fileno(), n, size_b - suffix - n)
            if x == y:
                suffix += n
                continue
            suffix += _first_difference(x[::-1], y[::-1])
            break
    return prefix, size_a - prefix - suffix, size_b - prefix - suffix


def compare(before: str, after: str) -> tuple[Fingerprint, Fingerprint, tuple[int, int, int]]:
    """Both files' fingerprints and :func:`changed_span`, reading each file once where their sizes
    are equal (a tag rewritten in its padding, the usual case); else the span takes its own passes."""
    fa, fb = open_regular(before), open_regular(after)
    try:
        sta, stb = os.fstat(fa), os.fstat(fb)
        ha, hb = hashlib.sha256(), hashlib.sha256()
        same_size = sta.st_size == stb.st_size
        pos, prefix, end = 0, None, None  # end: just past the last differing byte
        while True:
            x, y = os.read(fa, CHUNK), os.read(fb, CHUNK)
            if not x and not y:
                break
            ha.update(x)
            hb.update(y)
            if same_size and x != y:
                if len(x) != len(y):
                    raise OSError(0, "a file changed while it was being read")
                if prefix is None:
                    prefix = pos + _first_difference(x, y)
                end = pos + len(x) - _first_difference(x[::-1], y[::-1])
            pos += len(x)
    finally:
        os.close(fa)
        os.close(fb)
    was = Fingerprint(ha.hexdigest(), sta.st_size, sta.st_mtime_ns, sta.st_atime_ns)
    will = Fingerprint(hb.hexdigest(), stb.st_size, stb.st_mtime_ns, stb.st_atime_ns)
    if not same_size:
        return was, will, changed_span(before, after)
    if prefix is None:
        return was, will, (sta.st_size, 0, 0)
    return was, will, (prefix, end - prefix, end - prefix)


def save_span(source: str, offset: int, length: int, target: str) -> None:
    """Keep ``length`` bytes of ``source`` from ``offset``, compressed, in a new file ``target`` (fsynced)."""
    fd = open_regular(source)
    try:
        with open(target, "xb") as out:
            z = zlib.compressobj(6)
            done = 0
            while done < length:
                block = os.pread(fd, min(CHUNK, length - done), offset + done)
                if not block:
                    raise OSError(0, "the file got shorter while it was being read")
                out.write(z.compress(block))
                done += len(block)
            out.write(z.flush())
            out.flush()
            os.fsync(out.fileno())
    finally:
        os.close(fd)


def load_span(path: str | os.PathLike, length: int) -> bytes:
    """The kept bytes at ``path``, which must decompress to exactly ``length`` bytes."""
    if not 0 <= length <= SPAN_MAX:
        raise TagError("the kept bytes are larger than genrekit ever keeps")
    try:
        fd = open_regular(path)
    except OSError as exc:
        raise TagError(f"the bytes kept for an exact undo cannot be read ({exc.strerror or exc})") from None
    try:
        if os.fstat(fd).st_size > length + length // 100 + 1024:
            raise TagError("the bytes kept for an exact undo are larger than they should be")
        z = zlib.decompressobj()
        try:
            data = z.decompress(_pread_all(fd, os.fstat(fd).st_size, 0), length + 1)
        except zlib.error:
            raise TagError("the bytes kept for an exact undo are damaged") from None
    finally:
        os.close(fd)
    if len(data) != length or z.unconsumed_tail or not z.eof:
        raise TagError("the bytes kept for an exact undo are damaged")
    return data


def rebuild(real: str, now: Fingerprint, span: tuple[int, int], data: bytes, want: Fingerprint,
            before_replace=None) -> None:
    """Replace ``real`` by itself with ``span`` (offset, length now) swapped for ``data``.

    ``now`` is what the file must be before (checked again just before the replace); the
    rebuilt copy must be ``want`` byte for byte, and gets ``want``'s times, the file's mode,
    owner and extended attributes. ``before_replace(tmp)`` runs once the copy is verified (the
    undo's own journal entry). Raises :class:`TagError` or :class:`OSError`, the file untouched.
    """
    offset, length = span
    if not (0 <= offset and 0 <= length and offset + length <= now.size):
        raise TagError("the journal's byte range does not fit the file")
    folder = os.path.dirname(real) or "."
    fd = open_regular(real)
    tmp = tfd = None
    try:
        st = os.fstat(fd)
        # The safe write's pattern, locked while it exists: another run's clean-up leaves it alone.
        tfd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(real)}.", suffix=TMP_SUFFIX)
        try_lock(tfd)
        with os.fdopen(tfd, "wb", closefd=False) as out:
            digest = hashlib.sha256()

            def put(block: bytes) -> None:
                digest.update(block)
                out.write(block)

            for first, (start, end) in enumerate(((0, offset), (offset + length, now.size))):
                pos = start
                while pos < end:
                    block = os.pread(fd, min(CHUNK, end - pos), pos)
                    if not block:
                        raise TagError("the file got shorter while it was being read")
                    put(block)
                    pos += len(block)
                if first == 0:
                    put(data)
            out.flush()
            os.fsync(out.fileno())
        if (digest.hexdigest(), os.stat(tmp).st_size) != (want.sha256, want.size):
            raise TagError("the rebuilt file is not the one recorded (left unchanged)")
        with contextlib.suppress(OSError):
            os.chown(tmp, st.st_uid, st.st_gid)
        _copy_xattrs(real, tmp)
        os.chmod(tmp, stat.S_IMODE(st.st_mode))
        os.utime(tmp, ns=(want.atime_ns or want.mtime_ns, want.mtime_ns))
        if before_replace is not None:
            before_replace(tmp)
        again = os.stat(real, follow_symlinks=False)
        if (again.st_ino, again.st_size, again.st_mtime_ns) != (st.st_ino, st.st_size, st.st_mtime_ns):
            raise TagError("the file changed while it was being restored (left as it is)")
        os.replace(tmp, real)
        tmp = None
    finally:
        os.close(fd)
        if tmp is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        if tfd is not None:
            os.close(tfd)
    fsync_dir(folder)


def _copy_xattrs(src: str, dst: str) -> None:
    if not hasattr(os, "listxattr"):
        return
    with contextlib.suppress(OSError):
        for name in os.listxattr(src, follow_symlinks=False):
            with contextlib.suppress(OSError):
                os.setxattr(dst, name, os.getxattr(src, name, follow_symlinks=False), follow_symlinks=False)
