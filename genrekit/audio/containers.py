"""Opening audio files safely: the checks before decoding, the two decoder libraries, their chatter.

Every decode starts here (:mod:`genrekit.audio.decode`, :mod:`genrekit.audio.regions`,
:func:`genrekit.audio.info.info`):

- :func:`check_file` refuses what is not a readable, non-empty regular file (folders, pipes,
  devices, broken links) and a WAVE file whose data chunk claims more bytes than the file holds;
- soundfile (libsndfile) reads wav, flac, ogg, mp3, aiff and au; :func:`read_block` reads its
  frames sequentially (``SoundFile.read`` seeks, which is inexact in VBR MP3s);
- PyAV (FFmpeg) reads m4a/aac and other containers when installed (:func:`import_av`), through
  the demuxers of :data:`AV_FORMATS` and the ``file`` protocol only (:func:`open_av`);
- :class:`Chatter` captures what the C libraries print to file descriptor 2 (libmpg123's
  warnings), so that it reaches the user as warnings naming the file, never raw.

Every failure is an :class:`~genrekit.errors.AudioError` naming the file and the problem.
"""

from __future__ import annotations

import errno
import os
import stat
import struct
import sys
import tempfile
import threading

import numpy as np
import soundfile as sf

from genrekit.errors import AudioError

_CHATTER_LOCK = threading.Lock()
_AV_ONLY = {".m4a", ".m4b", ".mp4", ".aac", ".wma", ".webm", ".mka", ".ac3"}
_AV_HINT = 'pip install "genrekit[av]"'


class Chatter:
    """Capture what C libraries write to file descriptor 2 while decoding (libmpg123's warnings).

    Used as a context manager around each decoder call; the text is collected in an
    unnamed temporary file and turned into :class:`DecoderWarning` s naming the file.
    Only one thread captures at a time (fd 2 is the process's); others decode uncaptured.
    """

    def __init__(self):
        self._file = None
        self._saved = None
        self._owned = False

    def __enter__(self):
        if not _CHATTER_LOCK.acquire(blocking=False):
            return self
        self._owned = True
        try:
            if self._file is None:
                self._file = tempfile.TemporaryFile()
            sys.stderr.flush()
            self._saved = os.dup(2)
            os.dup2(self._file.fileno(), 2)
        except (OSError, ValueError, AttributeError):
            self._restore()
        return self

    def __exit__(self, *exc) -> None:
        self._restore()

    def _restore(self) -> None:
        if self._saved is not None:
            os.dup2(self._saved, 2)
            os.close(self._saved)
            self._saved = None
        if self._owned:
            self._owned = False
            _CHATTER_LOCK.release()

    def lines(self, limit: int = 5) -> list[str]:
        if self._file is None:
            return []
        self._file.seek(0)
        text = self._file.read(64 * 1024).decode("utf-8", "replace")
        seen = list(dict.fromkeys(line.strip() for line in text.splitlines() if line.strip()))
        if len(seen) > limit:
            seen = seen[:limit] + [f"... and {len(seen) - limit} more messages"]
        return seen

    def close(self) -> None:
        self._restore()
        if self._file is not None:
            self._file.close()
            self._file = None


def ogg_ends_cleanly(path: str) -> bool:
    """Whether the last Ogg page carries the end-of-stream flag (a cut-off file's does not)."""
    try:
        with open(path, "rb") as fh:
            size = fh.seek(0, os.SEEK_END)
            fh.seek(max(0, size - 65536))
            tail = fh.read()
    except OSError:
        return True
    last = tail.rfind(b"OggS")
    if last < 0 or last + 6 > len(tail):
        return False
    if not tail[last + 5] & 0x04:
        return False
    # The page itself must be complete: header (27 bytes + segment table) plus its segments.
    if last + 27 > len(tail):
        return False
    n_segments = tail[last + 26]
    if last + 27 + n_segments > len(tail):
        return False
    body = sum(tail[last + 27 : last + 27 + n_segments])
    return last + 27 + n_segments + body <= len(tail)


def read_block(f: sf.SoundFile, buf: np.ndarray, path: str) -> np.ndarray:
    """Read the next frames into ``buf`` with libsndfile directly.

    ``SoundFile.read`` seeks to the end of what it read after every call. In
    VBR MP3s that seek is inexact and silences thousands of samples at each
    block boundary, so the blocks are read sequentially, as one whole-file read
    (and librosa) would.
    """
    ptr = sf._ffi.cast("float *", buf.ctypes.data)
    n = sf._snd.sf_readf_float(f._file, ptr, len(buf))
    code = sf._snd.sf_error(f._file)
    if code:
        raise AudioError(path, f"could not be decoded ({sf_reason(sf.LibsndfileError(code))})")
    return buf[:n]


# --- checks before decoding ---------------------------------------------------


def check_file(path) -> str:
    """Refuse what is not a readable, non-empty file; return the path as str."""
    path = os.fspath(path)
    try:
        st = os.stat(path)
        if stat.S_ISDIR(st.st_mode):
            if not os.access(path, os.R_OK | os.X_OK):
                raise AudioError(path, "cannot read this folder (permission denied): "
                                       "the audio files in it were not looked at")
            raise AudioError(path, "is a directory, not an audio file")
        if not stat.S_ISREG(st.st_mode):
            raise AudioError(path, "not a regular file (a pipe or device?)")
        if st.st_size == 0:
            raise AudioError(path, "empty file (0 bytes)")
        with open(path, "rb") as fh:
            head = fh.read(12)
            if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
                _check_wav_sizes(path, fh, st.st_size)
    except FileNotFoundError:
        problem = "file not found"
        if os.path.islink(path):
            problem = "broken symbolic link (its target does not exist)"
        raise AudioError(path, problem) from None
    except PermissionError:
        raise AudioError(path, "permission denied (cannot read the file, or a folder on its way)") from None
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise AudioError(path, "symbolic link loop (the link leads back to itself)") from None
        raise AudioError(path, f"cannot be read ({err.strerror or err})") from None
    return path


def _check_wav_sizes(path: str, fh, size: int) -> None:
    """Refuse a WAVE file whose data chunk declares more bytes than the file holds.

    libsndfile reads such a file without complaint and returns only the frames
    present, so a cut-off download would pass as a shorter song.
    """
    block_align = 0
    pos = 12
    while pos + 8 <= size:
        fh.seek(pos)
        chunk_id, chunk_size = struct.unpack("<4sI", fh.read(8))
        if chunk_id == b"fmt ":
            fmt = fh.read(14)
            if len(fmt) == 14:
                block_align = struct.unpack_from("<H", fmt, 12)[0]
        elif chunk_id == b"data":
            held = size - pos - 8
            # 0 and 0xFFFFFFFF mean "unknown", written by streaming encoders.
            if block_align and chunk_size not in (0, 0xFFFFFFFF) and chunk_size > held:
                raise AudioError(
                    path,
                    f"truncated: header declares {chunk_size // block_align} frames, "
                    f"file holds {held // block_align}",
                )
            return
        pos += 8 + chunk_size + (chunk_size & 1)  # chunks are padded to even sizes


def sf_reason(err: sf.LibsndfileError) -> str:
    reason = err.error_string.rstrip(".")
    # libsndfile's MP3 reader says this of any file it cannot sync to; the file
    # does exist (checked already), so the message would mislead.
    if reason.startswith("File does not exist"):
        reason = "no valid audio frames found"
    return reason


# --- PyAV ---------------------------------------------------------------------


def import_av(path: str, sf_reason: str):
    try:
        import av
    except ImportError:
        ext = os.path.splitext(path)[1].lower()
        if ext in _AV_ONLY:
            raise AudioError(path, f"cannot decode {ext} files without PyAV: {_AV_HINT}") from None
        raise AudioError(
            path, f"not an audio file soundfile can read ({sf_reason}); for m4a/aac: {_AV_HINT}"
        ) from None
    return av


#: The FFmpeg demuxers PyAV may use: audio containers that read nothing but the file itself.
#: Refused by omission: concat lists and playlists (hls, which open the files they name), image
#: sequences (image2), network and device inputs, and every other demuxer.
AV_FORMATS = ("mov", "mp4", "m4a", "mp3", "ogg", "flac", "wav", "w64", "aiff", "matroska", "webm", "aac", "ac3",
              "eac3", "asf", "au", "caf", "wv", "ape", "tta", "mpc", "mpc8", "dts", "amr", "loas", "truehd", "dsf")
_AV_OPTIONS = {
    "format_whitelist": ",".join(AV_FORMATS),
    "protocol_whitelist": "file",  # no network, no concat: or subfile: protocols
}


def open_av(av, path: str, sf_reason: str):
    """Open with PyAV, refusing files without a decodable audio stream.

    Only the demuxers of :data:`AV_FORMATS` may open the file, and only through the
    ``file`` protocol (the path is given as a ``file:`` URL, so a name like
    ``concat:a|b`` or ``http://...`` is a file name, not an instruction).
    """
    url = "file:" + os.path.abspath(path)
    try:
        url.encode("utf-8")
    except UnicodeEncodeError:  # a name that is not UTF-8 (Latin-1 café): PyAV reads it through Python
        url = open(path, "rb")
    try:
        # Tags in a corrupt file need not be valid UTF-8: they are replaced, not fatal.
        container = av.open(url, metadata_errors="replace", container_options=dict(_AV_OPTIONS))
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError, OSError) as err:
        if not isinstance(url, str):
            url.close()
        if getattr(err, "errno", None) == errno.EINVAL:  # what FFmpeg answers a demuxer off the list
            raise AudioError(path, f"not an audio file (soundfile: {sf_reason}; PyAV: not an audio container "
                                   f"genrekit opens; it opens {', '.join(AV_FORMATS)})") from None
        raise AudioError(path, f"not an audio file (soundfile: {sf_reason}; PyAV: {av_reason(err)})") from None
    try:
        audio = container.streams.audio
        problem = "no audio stream" if not audio else None
        if audio:
            stream = audio[0]
            # A stream of an unknown codec (WAV format tag 1234, float of 24 bits, a damaged stsd
            # atom) has no codec context: PyAV then raises AttributeError for .rate.
            if stream.codec_context is None or not getattr(stream.codec_context, "sample_rate", 0):
                problem = "no decodable audio stream (unknown or damaged codec description)"
    except (ValueError, UnicodeDecodeError, AttributeError, av.error.FFmpegError):
        problem = "no decodable audio stream (unreadable stream description)"
    if problem:
        container.close()
        raise AudioError(path, f"not an audio file (soundfile: {sf_reason}; PyAV: {problem})")
    return container


def av_reason(err) -> str:
    return getattr(err, "strerror", None) or str(err)


def av_seconds(av, container, stream) -> float:
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    return (container.duration or 0) / av.time_base
