"""HTTP downloads that resume after an interruption and are checked against a published checksum.

A download is written to ``<name>.part``; when the connection drops, the next attempt
(in the same run, up to ``retries`` times, or in a later run) asks the server for the
rest with an HTTP ``Range`` request and appends it. Only a file whose checksum matches
is handed on (:func:`fetch` returns it; the caller renames or unpacks it).

Standard library only (``urllib``), so that the core install needs nothing more.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import socket
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from genrekit.errors import DownloadError

_CHUNK = 1 << 20  # 1 MiB per read: progress updates often, memory stays flat
_TIMEOUT = 60.0  # seconds without a byte before a connection counts as dropped
_BACKOFF = 1.0  # seconds before the first retry; doubled for each further one
_USER_AGENT = "genrekit-datasets (+https://github.com/genrekit)"


def file_checksum(path: str | os.PathLike, algorithm: str) -> str:
    """Hex digest of a file (read in 1-MiB chunks).

    Parameters
    ----------
    path : path-like
    algorithm : {"md5", "sha1", "sha256"}
    """
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def fetch(url: str, part: str | os.PathLike, *, checksum: str | None, size: int | None = None,
          retries: int = 3, progress: bool = False, label: str = "") -> str:
    """Download ``url`` into ``part`` (resuming what is there) and check it.

    Parameters
    ----------
    url : str
        ``http://``, ``https://`` or ``file://``.
    part : path-like
        The partial file; created or extended. On a checksum mismatch it is deleted.
    checksum : str or None
        ``"<algorithm>:<hex>"``; ``None`` accepts any content.
    size : int or None
        Expected size in bytes, when published: a longer ``part`` is refused at once.
    retries : int
        Further attempts after a dropped connection, each resuming (1, 2, 4... s apart).
    progress : bool
        Draw a progress bar (size, rate, time left) on stderr.
    label : str
        Name shown on the progress bar.

    Returns
    -------
    str
        The sha256 of the downloaded file (recorded where no checksum is published).

    Raises
    ------
    DownloadError
        When every attempt failed (the ``.part`` is kept, so the next run resumes), the
        server refuses the file (HTTP error), or the checksum does not match.
    """
    part = Path(part)
    part.parent.mkdir(parents=True, exist_ok=True)
    algorithm, _, expected = checksum.partition(":") if checksum else ("sha256", "", "")
    for first_pass in (True, False):
        _download(url, part, size, retries, progress, label or part.name.removesuffix(".part"))
        actual = file_checksum(part, algorithm)
        if not expected or actual == expected:
            break
        resumed = _resumed(part)
        _discard(part)
        if not (first_pass and resumed):
            raise DownloadError(
                f"{url}: checksum mismatch: expected {algorithm} {expected}, got {actual}; the download was "
                f"deleted and nothing was unpacked (a wrong --mirror, or the publisher changed the file?)"
            )
        # A resumed file can be wrong because the server's copy changed between the parts: start over once.
    _mark_resumed(part, False)
    return actual if algorithm == "sha256" else file_checksum(part, "sha256")


def _download(url: str, part: Path, size: int | None, retries: int, progress: bool, label: str) -> None:
    """Get every byte of ``url`` into ``part``, resuming after each dropped connection."""
    attempt = 0
    while True:
        try:
            _get(url, part, size, progress, label)
            return
        except _Dropped as exc:
            if attempt >= retries:
                have = part.stat().st_size if part.exists() else 0
                if not have:
                    raise DownloadError(f"{url}: cannot download ({exc}; {attempt + 1} attempts)") from None
                raise DownloadError(
                    f"{url}: download interrupted after {have:,} bytes ({exc}); run the same command again "
                    f"to resume from there"
                ) from None
            attempt += 1
            time.sleep(min(_BACKOFF * 2 ** (attempt - 1), 30.0))


def _discard(part: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        part.unlink()
    _mark_resumed(part, False)


class _Dropped(Exception):
    """The connection failed part-way (or before a byte came): worth resuming."""


def _resumed_flag(part: Path) -> Path:
    return part.with_name(part.name + ".resumed")


def _resumed(part: Path) -> bool:
    return _resumed_flag(part).exists()


def _mark_resumed(part: Path, value: bool) -> None:
    flag = _resumed_flag(part)
    if value:
        flag.touch()
    else:
        with contextlib.suppress(FileNotFoundError):
            flag.unlink()


def _get(url: str, part: Path, size: int | None, progress: bool, label: str) -> None:
    """One attempt: request the bytes after those in ``part`` and append them."""
    have = part.stat().st_size if part.exists() else 0
    if size is not None and have > size:
        part.unlink()
        have = 0
    request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
    if have:
        request.add_header("Range", f"bytes={have}-")
    try:
        response = urllib.request.urlopen(request, timeout=_TIMEOUT)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:
            # Range not satisfiable: we already have every byte; the checksum decides.
            return
        if exc.code in (408, 429, 500, 502, 503, 504):
            raise _Dropped(f"HTTP {exc.code} {exc.reason}") from None
        raise DownloadError(f"{url}: HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, (ConnectionError, socket.timeout, TimeoutError)):
            raise _Dropped(str(reason)) from None
        raise DownloadError(f"{url}: cannot connect: {reason}") from None
    except (ConnectionError, socket.timeout, TimeoutError, http.client.HTTPException) as exc:
        raise _Dropped(str(exc) or type(exc).__name__) from None

    with response:
        status = getattr(response, "status", 200)
        if have and status != 206:
            have = 0  # the server ignored Range and sends the whole file: start the part again
        elif have:
            _mark_resumed(part, True)
        length = response.headers.get("Content-Length")
        total = have + int(length) if length and length.isdigit() else size
        bar = _progress_bar(total, have, label) if progress else None
        received = 0
        try:
            with open(part, "ab" if have else "wb") as out:
                while True:
                    try:
                        block = response.read(_CHUNK)
                    except (ConnectionError, socket.timeout, TimeoutError, http.client.HTTPException) as exc:
                        raise _Dropped(str(exc) or type(exc).__name__) from None
                    if not block:
                        break
                    out.write(block)
                    received += len(block)
                    if bar is not None:
                        bar.update(len(block))
                out.flush()
                os.fsync(out.fileno())
        finally:
            if bar is not None:
                bar.close()
        if length and length.isdigit() and received < int(length):
            raise _Dropped(f"connection closed after {have + received:,} of {have + int(length):,} bytes")


def _progress_bar(total: int | None, initial: int, label: str):
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, unit="B", unit_scale=True, unit_divisor=1024,
                desc=label, file=sys.stderr, dynamic_ncols=True, leave=True)
