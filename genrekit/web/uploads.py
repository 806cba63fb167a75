"""Uploads: a ``multipart/form-data`` body streamed to a server-named temp file, within the server's limits.

The body is read as it arrives and its ``file`` part written to a file the server names
(``tempfile`` in the server's private folder, suffix kept only when it is a known audio
extension); nothing is kept in memory but the parser's chunk. :func:`receive_upload` turns
every way a body can fail into the HTTP error the client gets:

- 413 as soon as the bytes received pass the limit (the connection is then closed: the rest
  is never read);
- 408 when no byte arrives for ``body_timeout`` seconds, or the body trickles in slower than
  :data:`~genrekit.web.settings.MIN_BODY_RATE` on average after its first ``body_timeout`` seconds;
- 400 for a malformed form, one without a ``file`` part, or an empty file.

The private folder (mode 0700) is made at start-up by :func:`make_upload_dir` under the state
folder (``GENREKIT_STATE``/uploads, the same whatever ``TMPDIR`` says); the server holds a lock
file in it while it runs, so that a later start removes those of servers that were killed
(:func:`remove_stale_tmp_dirs`), SIGKILL included.
"""

from __future__ import annotations

import logging
import os
import stat
import shutil
import tempfile
import time

import anyio
from fastapi import HTTPException, Request
from python_multipart.multipart import MultipartParseError, MultipartParser, parse_options_header

from genrekit._io import try_lock
from genrekit.audio.files import AUDIO_EXTENSIONS
from genrekit.web.settings import MIN_BODY_RATE, WebSettings

log = logging.getLogger("genrekit.web")

#: Headers of a 413 or 408: the server stops reading, so the connection cannot be reused.
CLOSE = {"Connection": "close"}
#: Bytes of non-file form fields accepted (kept in :attr:`MultipartUpload.fields`).
MAX_OTHER_FIELDS = 16 * 1024
#: Name prefix of the servers' private temp folders: ``genrekit-web-<pid>-<random>``.
TMP_PREFIX = "genrekit-web-"


class _TooLarge(Exception):
    pass


class _WrongField(Exception):
    """A large part under another name than ``file``: the audio sent in the wrong field."""


class _TooSlow(Exception):
    pass


def display_name(raw: bytes | None) -> str:
    """The client's file name as safe text: last path component, printable, at most 120 characters."""
    text = raw.decode("utf-8", "replace") if raw else ""
    text = text.replace("\\", "/").rsplit("/", 1)[-1]
    text = "".join(ch for ch in text if ch.isprintable()).strip()[:120]
    return text or "upload"


class MultipartUpload:
    """Stream a ``multipart/form-data`` body, writing the ``file`` part to a server-named temp file.

    Feed it chunks as they arrive (:meth:`feed`); it raises :class:`_TooLarge` as soon as
    the file part passes ``limit`` bytes. Always call :meth:`discard` at the end.
    """

    def __init__(self, boundary: bytes, tmp_dir: str, limit: int) -> None:
        self.tmp_dir, self.limit = tmp_dir, limit
        self.path: str | None = None
        self.name = "upload"
        self.size = 0
        self.received = 0  # body bytes taken from the connection
        self.complete = False
        self._fh = None
        self._writing = False
        self._other = 0
        self.other_fields: list[str] = []  # names of the form's other parts, files marked "(a file)"
        self.fields: dict[str, bytes] = {}  # the values of its other parts that are not files
        self._other_name: str | None = None
        self._headers: dict[bytes, bytes] = {}
        self._field = self._value = b""
        self._parser = MultipartParser(boundary, callbacks={
            "on_part_begin": self._part_begin,
            "on_header_field": self._header_field,
            "on_header_value": self._header_value,
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._part_data,
            "on_part_end": self._part_end,
            "on_end": self._end,
        })

    # parser callbacks
    def _part_begin(self) -> None:
        self._headers, self._field, self._value = {}, b"", b""

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def _header_end(self) -> None:
        self._headers[self._field.lower()] = self._value
        self._field, self._value = b"", b""

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        if options.get(b"name") == b"file" and self._fh is None:
            self.name = display_name(options.get(b"filename"))
            ext = os.path.splitext(self.name)[1].lower()
            # The suffix only helps the decoder's messages; it is taken from a fixed list.
            suffix = ext if ext in AUDIO_EXTENSIONS else ""
            self._fh = tempfile.NamedTemporaryFile(dir=self.tmp_dir, prefix="upload-", suffix=suffix, delete=False)
            self.path = self._fh.name
            self._writing = True
            return
        name = display_name(options.get(b"name"))
        self._other_name = None if b"filename" in options else name
        if len(self.other_fields) < 8:
            self.other_fields.append(f"'{name}' (a file)" if b"filename" in options else f"'{name}'")

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        n = end - start
        if self._writing:
            self.size += n
            if self.size > self.limit:
                raise _TooLarge
            # A write to the page cache: microseconds for the parser's chunk sizes.
            self._fh.write(data[start:end])
        else:
            self._other += n
            if self._other > MAX_OTHER_FIELDS:
                raise _WrongField(self.wrong_field_message())
            if self._other_name is not None:
                self.fields[self._other_name] = self.fields.get(self._other_name, b"") + data[start:end]

    def wrong_field_message(self) -> str:
        """What to tell a client whose form has no ``file`` part (naming the fields it did send)."""
        got = f"got {', '.join(self.other_fields)}" if self.other_fields else "the form is empty"
        return f"no 'file' field in the form ({got}): send the audio as multipart field 'file'"

    def _part_end(self) -> None:
        self._writing = False
        self._other_name = None

    def _end(self) -> None:
        self.complete = True

    # driving
    def feed(self, chunk: bytes) -> None:
        self._parser.write(chunk)

    def finish(self) -> None:
        self._parser.finalize()
        if self._fh is not None:
            self._fh.close()

    def discard(self) -> None:
        """Close and delete the temp file (safe to call more than once)."""
        if self._fh is not None:
            self._fh.close()
        if self.path is not None:
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass


# --- the request ---------------------------------------------------------------------------------
def multipart_boundary(content_type: str | None) -> bytes:
    """The boundary of a ``multipart/form-data`` Content-Type; 415 for another type, 400 without a usable one."""
    kind, options = parse_options_header(content_type or "")
    if kind != b"multipart/form-data":
        raise HTTPException(415, "send the audio as multipart/form-data with the field 'file' "
                                 f"(got Content-Type {kind.decode('latin-1') or 'none'})")
    boundary = options.get(b"boundary")
    if not boundary or len(boundary) > 200:
        raise HTTPException(400, "multipart/form-data without a valid boundary")
    return boundary


def too_large(settings: WebSettings) -> HTTPException:
    """The 413 of an upload over ``settings``' limit (the connection is closed after it)."""
    mb = settings.max_upload_bytes / 2**20
    return HTTPException(413, f"upload too large: the limit is {mb:g} MB", headers=CLOSE)


async def receive_upload(request: Request, upload: MultipartUpload, settings: WebSettings) -> None:
    """Stream ``request``'s body into ``upload``, refusing it as the module docstring says.

    Raises :class:`fastapi.HTTPException` (413, 408 or 400) for a body that cannot be used,
    and lets :class:`starlette.requests.ClientDisconnect` through (nobody is listening).
    ``upload.received`` holds the bytes taken from the connection, whatever happened.
    """
    try:
        await _receive(request, upload, settings)
        upload.finish()
    except _TooLarge:
        raise too_large(settings) from None
    except _WrongField as exc:
        raise HTTPException(400, str(exc)) from None
    except _TooSlow as exc:
        raise HTTPException(408, str(exc), headers=CLOSE) from None
    except MultipartParseError as exc:
        raise HTTPException(400, f"malformed multipart body: {exc}") from None
    if not upload.complete:
        raise HTTPException(400, "malformed multipart body: it ends before the closing boundary")
    if upload.path is None:
        raise HTTPException(400, upload.wrong_field_message())
    if upload.size == 0:
        raise HTTPException(400, f"{upload.name}: empty upload (0 bytes)")


async def _receive(request: Request, upload: MultipartUpload, settings: WebSettings) -> int:
    """Feed the body to ``upload`` as it arrives; the bytes received.

    Raises :class:`_TooSlow` when no byte arrives for ``settings.body_timeout`` seconds, or
    when the body comes in slower than :data:`MIN_BODY_RATE` on average beyond its first
    ``body_timeout`` seconds (a client trickling bytes to hold a connection and a temp file).
    """
    body_timeout = settings.body_timeout
    received = 0
    started = time.monotonic()
    chunks = request.stream().__aiter__()
    while True:
        now = time.monotonic()
        deadline = started + body_timeout + received / MIN_BODY_RATE
        wait = min(body_timeout, deadline - now)
        if wait <= 0:
            raise _TooSlow(f"upload too slow: {received} bytes in {now - started:.0f} s "
                           f"(at least {MIN_BODY_RATE // 1024} KB/s are needed)")
        try:
            with anyio.fail_after(wait):
                chunk = await chunks.__anext__()
        except StopAsyncIteration:
            return received
        except TimeoutError:
            stalled = wait >= body_timeout
            raise _TooSlow(f"upload timed out: no data for {body_timeout:g} s" if stalled else
                           f"upload too slow: {received} bytes in {time.monotonic() - started:.0f} s "
                           f"(at least {MIN_BODY_RATE // 1024} KB/s are needed)") from None
        received += len(chunk)
        upload.received = received
        if received > settings.max_body_bytes:
            raise _TooLarge
        upload.feed(chunk)


# --- the private folder ----------------------------------------------------------------------------
#: Suffix of the file beside a server's upload folder that the server holds locked (``flock``) while it runs.
LOCK_SUFFIX = ".lock"
#: The servers' locks, by folder: an open descriptor each, released by the kernel when the server dies.
_LOCKS: dict[str, int] = {}


def upload_root() -> str:
    """Where servers make their upload folders: ``uploads/`` in the state folder (``GENREKIT_STATE``).

    Not the temp folder: it is the same for every start of a user's server, whatever ``TMPDIR``
    says (a service manager, a shell or a container may each give another), so the next start
    finds and removes what a killed server left. The temp folder when the state folder cannot
    be made.
    """
    from genrekit.config import settings

    root = settings().state_dir / "uploads"
    try:
        root.mkdir(parents=True, exist_ok=True, mode=0o700)
        return str(root)
    except OSError:
        return tempfile.gettempdir()


def make_upload_dir() -> str:
    """A new private folder for this server's uploads (mode 0700), after removing dead servers' ones.

    Beside it, ``<folder>.lock`` is locked by this process until :func:`remove_upload_dir`
    or its death, however it dies (SIGKILL included): a later start tells a dead server's
    folder by the free lock, even when the dead server's pid now belongs to another process.
    """
    root = upload_root()
    remove_stale_tmp_dirs(root)
    if root != tempfile.gettempdir():
        remove_stale_tmp_dirs()  # the temp folder, where servers before this version kept them
    # the owner's pid in the name tells a later server whether it is stale (when the lock cannot)
    folder = tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{os.getpid()}-", dir=root)
    fd = os.open(folder + LOCK_SUFFIX, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    if try_lock(fd) is False:  # cannot happen for a new name, but never serve from a folder we do not hold
        os.close(fd)
        raise OSError(f"{folder}{LOCK_SUFFIX}: locked by another process")
    _LOCKS[folder] = fd
    return folder


def remove_upload_dir(folder: str) -> None:
    """Delete this server's upload folder and release its lock (at shutdown)."""
    shutil.rmtree(folder, ignore_errors=True)
    fd = _LOCKS.pop(folder, None)
    if fd is not None:
        _unlink(folder + LOCK_SUFFIX)
        os.close(fd)


def remove_stale_tmp_dirs(root: str | None = None) -> list[str]:
    """Delete upload folders (``genrekit-web-*`` in ``root``, default the temp folder) of servers that are gone.

    Only folders of this user are considered. One with its ``<folder>.lock`` is stale when
    that lock can be taken (its server is dead, whatever its pid became); one without (made
    by an older version, or this instant by a starting server) when the pid in its name
    ``genrekit-web-<pid>-...`` runs no process. Returns the removed paths.
    """
    root = root or tempfile.gettempdir()
    removed = []
    try:
        names = [n for n in os.listdir(root) if n.startswith(TMP_PREFIX)]
    except OSError:
        return removed
    for name in names:
        folder = os.path.join(root, name)
        try:
            st = os.lstat(folder)
            if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or folder in _LOCKS:
                continue
            pid = int(name[len(TMP_PREFIX):].split("-", 1)[0])
        except (OSError, ValueError):  # gone meanwhile, or not a pid: not one of ours
            continue
        if not _owner_gone(folder, pid):
            continue
        shutil.rmtree(folder, ignore_errors=True)
        _unlink(folder + LOCK_SUFFIX)
        removed.append(folder)
    for name in names:  # a lock whose folder is gone (a server killed between the two removals)
        lock = os.path.join(root, name)
        if name.endswith(LOCK_SUFFIX) and not os.path.lexists(lock[: -len(LOCK_SUFFIX)]) \
                and lock[: -len(LOCK_SUFFIX)] not in _LOCKS and _owner_gone(lock[: -len(LOCK_SUFFIX)], -1):
            _unlink(lock)
    if removed:
        log.info("removed %d upload folder(s) left by servers that stopped without cleaning up", len(removed))
    return removed


def _owner_gone(folder: str, pid: int) -> bool:
    try:
        fd = os.open(folder + LOCK_SUFFIX, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return pid > 0 and not _process_exists(pid)
    except OSError:
        return False
    try:
        locked = try_lock(fd)
        return not _process_exists(pid) if locked is None else locked
    finally:
        os.close(fd)  # releases the lock taken just now


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True
