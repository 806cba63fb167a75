"""Writing the genre into audio files' tags, without ever damaging a file.

Which tag, by the format mutagen finds in the file (not by its extension):

========================  =====================================================
format                    tag
========================  =====================================================
MP3                       ID3v2 ``TCON`` (the ID3 version already there is kept)
FLAC, Ogg Vorbis/Opus     Vorbis comment ``GENRE``
MP4 / M4A                 ``©gen`` (a numeric ``gnre`` atom is removed: it would
                          contradict the new genre)
WAV, AIFF                 ID3 ``TCON`` in an ``id3`` chunk
========================  =====================================================

Other files (AU, raw AAC...) are reported as "tags not supported", and the run goes on.

How a file is changed: it is copied (data, mode bits, extended attributes) to a
temporary file in its own folder; the tag is written there; the copy is re-opened
with mutagen and must hold the new genre and the same stream (length, rate,
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
from dataclasses import dataclass
from pathlib import Path

from ._io import fsync_dir
from .errors import TagError

#: Outcomes of :func:`write_genre`.
WRITTEN, WOULD_WRITE, UNCHANGED, UNSUPPORTED, READ_ONLY, FAILED = (
    "written", "would write", "unchanged", "not supported", "read-only", "failed",
)
#: Not attempted: the model's top score was below the asked minimum (``classify --min-score``).
UNCERTAIN = "skipped (uncertain)"


@dataclass(frozen=True)
class TagChange:
    """What :func:`write_genre` did (or would do) to one file.

    Attributes
    ----------
    path : str
    old : str or None
        The genre tag before (several values joined with ``"; "``), ``None`` if absent.
    new : str
        The genre asked for.
    status : str
        :data:`WRITTEN`, :data:`WOULD_WRITE` (dry run), :data:`UNCHANGED` (already
        that genre), :data:`UNSUPPORTED`, :data:`READ_ONLY`, :data:`FAILED` or
        :data:`UNCERTAIN` (not attempted: a top score below the minimum).
    reason : str or None
        Why, for the last three.
    """

    path: str
    old: str | None
    new: str
    status: str
    reason: str | None = None

    @property
    def ok(self) -> bool:
        """Nothing went wrong (an unsupported format is not an error: there is nothing to do)."""
        return self.status not in (READ_ONLY, FAILED)

    @property
    def changed(self) -> bool:
        """The file's bytes were replaced."""
        return self.status == WRITTEN

    def __str__(self) -> str:
        old = "(none)" if self.old is None else repr(self.old)
        if self.status in (WRITTEN, WOULD_WRITE):
            return f"{self.path}: genre {old} -> {self.new!r} ({self.status})"
        if self.status == UNCHANGED:
            return f"{self.path}: genre already {self.new!r}"
        if self.status == UNCERTAIN:
            return f"{self.path}: tags not written, uncertain: {self.reason}"
        return f"{self.path}: tags not written: {self.reason}"


# --- reading -----------------------------------------------------------------------
def _open(path: str, cls=None):
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


def _genres(f, kind: str) -> list[str]:
    tags = f.tags
    if tags is None:
        return []
    if kind == "id3":
        frame = tags.get("TCON")
        # .genres turns ID3v1 numeric references ("(17)") into names
        return list(frame.genres) if frame is not None else []
    if kind == "vorbis":
        return list(tags.get("GENRE", []))  # Vorbis comment keys are case-insensitive
    values = list(tags.get("\xa9gen", []))
    if not values and tags.get("gnre"):
        from mutagen.id3 import TCON

        # gnre holds 1-based ID3v1 genre numbers; TCON knows their names
        values = TCON(text=[f"({n - 1})" for n in tags["gnre"]]).genres
    return values


def read_genre(path: str | os.PathLike) -> str | None:
    """The genre tag of an audio file (several values joined with ``"; "``), or ``None``.

    Raises :class:`TagError` for a file mutagen cannot read or whose format has no
    genre tag that genrekit writes.
    """
    f, kind = _open(os.fspath(path))
    if f is None:
        raise TagError(f"tags not supported for {_ext(path)} files")
    values = _genres(f, kind)
    return "; ".join(values) if values else None


# --- writing -----------------------------------------------------------------------
def write_genre(path: str | os.PathLike, genre: str, *, dry_run: bool = False) -> TagChange:
    """Set the genre tag of ``path`` to ``genre``, replacing the file atomically.

    Parameters
    ----------
    path : str or path-like
        An audio file (a symlink is followed: its target is changed).
    genre : str
        The new genre; it replaces every genre value the file had.
    dry_run : bool
        Only say what would change; touch nothing.

    Returns
    -------
    TagChange
        Never raises for a file that cannot be tagged: the outcome says why.
    """
    path = os.fspath(path)
    if not genre:
        raise ValueError("genre must be a non-empty string")
    real = os.path.realpath(path)
    try:
        f, kind = _open(real)
        if f is None:
            return TagChange(path, None, genre, UNSUPPORTED, f"tags not supported for {_ext(path)} files")
        values = _genres(f, kind)
        blocked = _read_only(real)
    except TagError as exc:
        return TagChange(path, None, genre, FAILED, str(exc))
    except OSError as exc:
        return TagChange(path, None, genre, FAILED, f"cannot read: {exc.strerror or exc}")
    old = "; ".join(values) if values else None
    if values == [genre]:
        return TagChange(path, old, genre, UNCHANGED)
    if blocked:
        return TagChange(path, old, genre, READ_ONLY, blocked)
    if dry_run:
        return TagChange(path, old, genre, WOULD_WRITE)
    try:
        _replace_with_tagged_copy(real, genre, type(f))
    except Exception as exc:  # noqa: BLE001 - whatever went wrong, the original was not replaced
        if isinstance(exc, TagError):
            reason = str(exc)
        elif isinstance(exc, OSError):
            reason = exc.strerror or str(exc)
        else:
            reason = f"{type(exc).__name__}: {exc}"
        return TagChange(path, old, genre, FAILED, f"{reason}; the file was left unchanged")
    return TagChange(path, old, genre, WRITTEN)


def _read_only(real: str) -> str | None:
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


def _set_genre(f, kind: str, genre: str) -> None:
    if kind == "id3":
        from mutagen.id3 import TCON

        if f.tags is None:
            f.add_tags()
        f.tags.setall("TCON", [TCON(encoding=3, text=[genre])])  # 3: UTF-8
    elif kind == "vorbis":
        if f.tags is None:
            f.add_tags()
        f.tags["GENRE"] = [genre]
    else:
        if f.tags is None:
            f.add_tags()
        f.tags.pop("gnre", None)
        f.tags["\xa9gen"] = [genre]


def _stream(f) -> tuple:
    info = f.info
    return float(getattr(info, "length", 0.0) or 0.0), getattr(info, "sample_rate", None), getattr(info, "channels", None)


def _same_stream(a: tuple, b: tuple) -> bool:
    # Lengths of tag-less CBR MP3s are estimated from the file size: allow a little slack.
    return a[1:] == b[1:] and abs(a[0] - b[0]) <= 0.1


def _save(f, kind: str, target: str) -> None:
    if kind == "id3":
        # Keep an existing ID3v2.3 tag at 2.3: older players cannot read 2.4.
        version = 3 if getattr(f.tags, "version", (2, 4, 0))[1] == 3 else 4
        f.save(target, v2_version=version)
    else:
        f.save(target)


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
            if not stat.S_ISREG(os.fstat(fd).st_mode) or not _try_lock(fd):
                continue
            os.unlink(path)
            removed.append(path)
        except OSError:
            continue
        finally:
            os.close(fd)
    return removed


def _try_lock(fd: int) -> bool:
    try:
        import fcntl
    except ImportError:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


def _replace_with_tagged_copy(real: str, genre: str, cls) -> None:
    folder = os.path.dirname(real) or "."
    before = os.stat(real)
    # Hidden, so that a folder scan running meanwhile does not pick it up; locked while it
    # exists, so that remove_stale_copies in another run leaves it alone.
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(real)}.", suffix=TMP_SUFFIX)
    _try_lock(fd)
    try:
        shutil.copy2(real, tmp)  # bytes, mode bits, times, extended attributes
        with contextlib.suppress(OSError):  # only root may give a file away; others keep their own
            os.chown(tmp, before.st_uid, before.st_gid)
        f, kind = _open(tmp, cls)
        stream = _stream(f)
        _set_genre(f, kind, genre)
        try:
            _save(f, kind, tmp)
        except Exception as exc:  # noqa: BLE001 - mutagen raises many types; the original is untouched
            raise TagError(f"mutagen could not write the tag ({type(exc).__name__}: {exc})") from None

        # Verify before anything replaces the original.
        check, check_kind = _open(tmp, cls)
        if _genres(check, check_kind) != [genre]:
            raise TagError("the written tag did not read back")
        if not _same_stream(_stream(check), stream):
            raise TagError(f"the audio stream looks different after tagging "
                           f"(length, rate, channels {_stream(check)} instead of {stream})")
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, stat.S_IMODE(before.st_mode))

        now = os.stat(real)
        if (now.st_size, now.st_mtime_ns, now.st_ino) != (before.st_size, before.st_mtime_ns, before.st_ino):
            raise TagError("the file changed while its tag was being written")
        os.replace(tmp, real)
    except BaseException:  # Ctrl-C and SIGTERM included: no copy is left behind
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    finally:
        os.close(fd)
    fsync_dir(folder)


def _ext(path) -> str:
    return Path(path).suffix.lower() or "extension-less"
