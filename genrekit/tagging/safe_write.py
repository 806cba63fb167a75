"""Changing audio files' tags without ever damaging a file: the verified temporary-copy write.

Which tag, by the format mutagen finds in the file (not by its extension):

========================  =====================================================
format                    tag
========================  =====================================================
MP3                       ID3v2 (the ID3 version already there is kept)
FLAC, Ogg Vorbis/Opus     Vorbis comments
MP4 / M4A                 MP4 atoms
WAV, AIFF                 ID3 in an ``id3`` chunk
========================  =====================================================

Other files (AU, raw AAC...) are reported as "tags not supported", and the run goes on.
What is written, and how several values are kept in each format, is :mod:`genrekit.tagging`'s.

How a file is changed: it is copied (data, mode bits, extended attributes) to a
temporary file in its own folder; the tag is written there; the copy is re-opened
with mutagen and must hold the new tags and the same stream (length, rate,
channels); it is fsynced, and only then ``os.replace``-d over the original, so a
crash at any moment leaves the old file or the new one, never a mix. Only the tag
blocks change: the audio frames are mutagen's to copy, never re-encoded. The file's
modification time changes (it was modified); its owner is kept where permitted.
A file with other hard links is detached from them (the other names keep the old
file). A read-only file, or one in a read-only folder, is reported and left alone
(read-only by its mode bits too, so that running as root does not override it).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import stat
import tempfile
from pathlib import Path

from genrekit._io import fsync_dir
from genrekit.errors import TagError

# --- reading -----------------------------------------------------------------------
def open_tags(path: str, cls=None):
    """The mutagen object for ``path`` and its kind: ``"id3"``, ``"vorbis"`` or ``"mp4"``.

    ``cls`` opens the file as that mutagen type instead of guessing (a temporary
    copy's name says nothing of its format).
    """
    import mutagen
    from mutagen.aiff import AIFF
    from mutagen.flac import FLAC
    from mutagen.mp3 import MP3
    from mutagen.mp4 import MP4
    from mutagen.ogg import OggFileType
    from mutagen.wave import WAVE

    try:
        f = mutagen.File(path) if cls is None else cls(path)
    except (FileNotFoundError, PermissionError) as exc:
        raise TagError(f"cannot read: {exc.strerror}") from None
    except Exception as exc:  # noqa: BLE001 - MutagenError mostly, but a malformed file may raise anything
        raise TagError(f"mutagen cannot read the file ({exc or type(exc).__name__})") from None
    if isinstance(f, (MP3, WAVE, AIFF)):
        return f, "id3"
    if isinstance(f, (FLAC, OggFileType)):
        return f, "vorbis"
    if isinstance(f, MP4):
        return f, "mp4"
    return None, None


def read_only_reason(real: str) -> str | None:
    """Why ``real`` must not be replaced, or ``None``.

    Mode bits count as well as access rights: root may write anything, but a file
    or folder someone made read-only is meant to stay as it is.
    """
    folder = os.path.dirname(real) or "."
    st = os.stat(real)
    if not os.access(real, os.W_OK) or not st.st_mode & 0o222:
        return "the file is read-only"
    if not os.access(folder, os.W_OK | os.X_OK) or not os.stat(folder).st_mode & 0o222:
        return "its folder is read-only (the tagged copy could not replace it)"
    return None


def _stream(f) -> tuple:
    info = f.info
    return float(getattr(info, "length", 0.0) or 0.0), getattr(info, "sample_rate", None), getattr(info, "channels", None)


def _same_stream(a: tuple, b: tuple) -> bool:
    # Lengths of tag-less CBR MP3s are estimated from the file size: allow a little slack.
    return a[1:] == b[1:] and abs(a[0] - b[0]) <= 0.1


#: Suffix of the tagged copies; with the hidden prefix and mkstemp's 8 random characters it
#: makes the pattern :func:`remove_stale_copies` looks for.
TMP_SUFFIX = ".genrekit-tmp"
_STALE = re.compile(r"^\..+\.[A-Za-z0-9_]{8}" + re.escape(TMP_SUFFIX) + "$")


def remove_stale_copies(folder: str | os.PathLike) -> list[str]:
    """Delete tagged copies that a killed run left in ``folder``; return their paths.

    Only files of genrekit's own pattern (``.<name>.<8 random characters>.genrekit-tmp``)
    are considered, and only those no running genrekit holds: a copy being written is
    locked (``flock``) by its writer for as long as it exists.
    """
    removed = []
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    for name in names:
        if not _STALE.match(name):
            continue
        path = os.path.join(folder, name)
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except OSError:
            continue
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode) or not try_lock(fd):
                continue
            os.unlink(path)
            removed.append(path)
        except OSError:
            continue
        finally:
            os.close(fd)
    return removed


def try_lock(fd: int) -> bool:
    """Lock ``fd`` (``flock``, not waiting) as a tagged copy's writer does; ``False`` if another holds it.

    Unlike :func:`genrekit._io.try_lock`, a lock that fails for any reason counts as held: a copy
    that might be another run's is never removed as stale."""
    try:
        import fcntl
    except ImportError:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


def replace_with_tagged_copy(real: str, cls, edit, check, before_replace=None) -> None:
    """Replace ``real`` by a tagged copy of it, verified before it replaces anything.

    Parameters
    ----------
    real : str
        The file (symlinks already resolved).
    cls : type
        The mutagen class the file was opened as (the copy's name says nothing of its format).
    edit : callable
        ``edit(f, kind, target)`` changes the tags of the opened copy ``f`` and saves it to ``target``.
    check : callable
        ``check(f, kind)`` raises :class:`TagError` unless the re-opened copy holds what was written.
    before_replace : callable, optional
        ``before_replace(real, tmp)`` runs once the copy is verified and fsynced, before it replaces
        ``real`` (the journal's write-ahead entry); if it raises, nothing is replaced.

    Raises
    ------
    TagError, OSError
        The original is then untouched and no copy is left behind.
    """
    folder = os.path.dirname(real) or "."
    before = os.stat(real)
    unnamed = _unnamed_file(folder)
    if unnamed is not None:
        # A file with no name in the song's folder (Linux's O_TMPFILE): a run killed before the
        # copy replaces the song leaves nothing behind. It gets a name only for the instant
        # between linking it in and renaming it over the song.
        fd, tmp = unnamed, UnnamedCopy(f"/proc/self/fd/{unnamed}")
    else:
        # Hidden, so that a folder scan running meanwhile does not pick it up; locked while it
        # exists, so that remove_stale_copies in another run leaves it alone.
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(real)}.", suffix=TMP_SUFFIX)
    try_lock(fd)
    named = None if unnamed is not None else tmp
    try:
        with open(real, "rb") as src, open(tmp, "r+b") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        shutil.copystat(real, tmp)  # mode bits, times, extended attributes
        with contextlib.suppress(OSError):  # only root may give a file away; others keep their own
            os.chown(tmp, before.st_uid, before.st_gid)
        f, kind = open_tags(tmp, cls)
        stream = _stream(f)
        try:
            edit(f, kind, tmp)
        except TagError:
            raise
        except Exception as exc:  # noqa: BLE001 - mutagen raises many types; the original is untouched
            raise TagError(f"mutagen could not write the tag ({type(exc).__name__}: {exc})") from None

        # Verify before anything replaces the original.
        again, again_kind = open_tags(tmp, cls)
        check(again, again_kind)
        if not _same_stream(_stream(again), stream):
            raise TagError(f"the audio stream looks different after tagging "
                           f"(length, rate, channels {_stream(again)} instead of {stream})")
        os.fsync(fd)
        os.chmod(tmp, stat.S_IMODE(before.st_mode))
        if before_replace is not None:
            before_replace(real, tmp)

        now = os.stat(real)
        if (now.st_size, now.st_mtime_ns, now.st_ino) != (before.st_size, before.st_mtime_ns, before.st_ino):
            raise TagError("the file changed while its tag was being written")
        if named is None:
            named = _link_in(tmp, folder, os.path.basename(real))
        os.replace(named, real)
    except BaseException:  # Ctrl-C and SIGTERM included: no copy is left behind
        if named is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(named)
        raise
    finally:
        os.close(fd)
    fsync_dir(folder)


class UnnamedCopy(str):
    """The path (``/proc/self/fd/N``) of the unnamed copy this process is writing: a link readers
    must follow, where every path from elsewhere is opened without following links."""


def _unnamed_file(folder: str) -> int | None:
    """A read-write descriptor of a new file with no name in ``folder`` (``O_TMPFILE``), or ``None``
    where the system or the file system has none (the named, hidden copy is used then)."""
    flag = getattr(os, "O_TMPFILE", None)
    if flag is None or not os.path.isdir("/proc/self/fd"):
        return None
    try:
        return os.open(folder, flag | os.O_RDWR, 0o600)
    except OSError:  # EOPNOTSUPP, EISDIR on old kernels, EINVAL on some file systems
        return None


def _link_in(tmp: str, folder: str, base: str) -> str:
    """Give the unnamed file ``tmp`` (``/proc/self/fd/N``) a hidden name in ``folder``, just before it
    replaces the song (a name of the pattern remove_stale_copies knows, in case of a crash right here)."""
    folder_fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        while True:
            name = f".{base}.{os.urandom(4).hex()}{TMP_SUFFIX}"  # 8 characters, as mkstemp's
            try:
                # With a dir_fd, Python calls linkat(AT_SYMLINK_FOLLOW): the file, not the /proc link.
                os.link(tmp, name, dst_dir_fd=folder_fd, follow_symlinks=True)
                return os.path.join(folder, name)
            except FileExistsError:
                continue
    finally:
        os.close(folder_fd)


def ext_of(path) -> str:
    return Path(path).suffix.lower() or "extension-less"
