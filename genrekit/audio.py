"""Audio in: decoding any file to a mono float32 signal, and cutting it into windows.

Decoding
--------
`load` turns a file into one float32 mono array at the requested rate; `info`
describes a file without decoding it. wav, flac, ogg (vorbis, opus), mp3, aiff
and au go through soundfile (libsndfile); m4a/aac and anything else FFmpeg can
read go through PyAV when it is installed (``pip install "genrekit[av]"``).
Channels are averaged and the rate is converted with soxr at "HQ" quality, so the
result matches ``librosa.load(path, sr=sr)``. Files are decoded in blocks, so the
memory needed is about the size of the output.

Every failure is an `AudioError` naming the file and the problem: missing,
a directory, unreadable, empty, not audio, truncated, no samples, NaN/inf
samples, too short. Silence is not a failure: it gives a `SilentAudioWarning`.

Short clips
-----------
Callers pass ``min_samples``, the shortest signal their features can use (for
the spectral feature sets: one STFT frame, 2048 samples at 22050 Hz, about
93 ms). A signal shorter than that after resampling is refused ("too short").
A signal longer than that but shorter than one analysis window is not padded:
it is analysed as a single window covering all of it (see `window_bounds`).
"""

from __future__ import annotations

import math
import os
import stat
import struct
import warnings
from dataclasses import dataclass

import numpy as np
import soundfile as sf
import soxr

DEFAULT_SR = 22050

_BLOCK = 1 << 16  # input frames decoded at a time (~1.5 s at 44.1 kHz)
_SILENCE = 1e-6  # peak below this counts as silent
_AV_ONLY = {".m4a", ".m4b", ".mp4", ".aac", ".wma", ".webm", ".mka", ".ac3"}
_AV_HINT = 'pip install "genrekit[av]"'


class AudioError(Exception):
    """A file that cannot be turned into a usable signal.

    Attributes
    ----------
    path : str
        The file.
    problem : str
        What is wrong, in plain words.
    """

    def __init__(self, path, problem: str):
        self.path = os.fspath(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class SilentAudioWarning(UserWarning):
    """The decoded signal is silent (peak below 1e-6); features of it mean little."""


@dataclass(frozen=True)
class AudioInfo:
    """What a file holds, read from its header.

    Attributes
    ----------
    path : str
    samplerate : int
        Native sample rate in Hz.
    channels : int
    frames : int
        Samples per channel (estimated from the duration for PyAV files).
    duration : float
        Length in seconds.
    format : str
        Container and encoding, e.g. ``"WAV PCM_16"`` or ``"mov,mp4,m4a,3gp,3g2,mj2 aac"``.
    """

    path: str
    samplerate: int
    channels: int
    frames: int
    duration: float
    format: str


def load(path, sr: int = DEFAULT_SR, *, min_samples: int = 1) -> np.ndarray:
    """Decode an audio file to a mono float32 signal.

    Parameters
    ----------
    path : str or os.PathLike
        The audio file.
    sr : int
        Output sample rate in Hz (default 22050).
    min_samples : int
        Shortest acceptable output, in samples at ``sr`` (see "Short clips" in
        the module docstring).

    Returns
    -------
    y : np.ndarray [shape=(n,), dtype=float32]
        The channels' average, resampled to ``sr`` with soxr "HQ"; ``n`` is
        ``ceil(frames * sr / native_sr)``, as in ``librosa.load``.

    Raises
    ------
    AudioError
        If the file is missing, unreadable, not audio, truncated, holds no
        samples or non-finite ones, or is shorter than ``min_samples``.

    Warns
    -----
    SilentAudioWarning
        If the peak amplitude is below 1e-6. The signal is still returned.
    """
    if int(sr) != sr or sr <= 0:
        raise ValueError(f"sr must be a positive integer (Hz), got {sr!r}")
    path = _check_file(path)
    try:
        f = sf.SoundFile(path)
    except sf.LibsndfileError as err:
        y, peak = _load_av(path, int(sr), _sf_reason(err))
    else:
        with f:
            y, peak = _load_sf(f, path, int(sr))

    if y.size == 0:
        raise AudioError(path, "contains no audio (decodes to 0 samples)")
    if y.size < min_samples:
        raise AudioError(
            path, f"too short: {y.size / sr:.3f} s, at least {min_samples / sr:.3f} s needed"
        )
    if peak < _SILENCE:
        warnings.warn(
            SilentAudioWarning(f"{path}: audio is silent (peak {peak:.1e}), features will be flat"),
            stacklevel=2,
        )
    return y


def info(path) -> AudioInfo:
    """Describe an audio file from its header, without decoding it.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    AudioInfo

    Raises
    ------
    AudioError
        Same checks as `load` that need no decoding.
    """
    path = _check_file(path)
    try:
        i = sf.info(path)
    except sf.LibsndfileError as err:
        reason = _sf_reason(err)
    else:
        return AudioInfo(path, i.samplerate, i.channels, i.frames, i.duration, f"{i.format} {i.subtype}")

    av = _import_av(path, reason)
    with _open_av(av, path, reason) as container:
        stream = container.streams.audio[0]
        seconds = _av_seconds(av, container, stream)
        return AudioInfo(
            path,
            stream.rate,
            stream.channels,
            round(seconds * stream.rate),
            seconds,
            f"{container.format.name} {stream.codec_context.name}",
        )


# --- checks before decoding ---------------------------------------------------


def _check_file(path) -> str:
    """Refuse what is not a readable, non-empty file; return the path as str."""
    path = os.fspath(path)
    try:
        st = os.stat(path)
        if stat.S_ISDIR(st.st_mode):
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
        raise AudioError(path, "file not found") from None
    except PermissionError:
        raise AudioError(path, "permission denied (cannot read the file)") from None
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


def _sf_reason(err: sf.LibsndfileError) -> str:
    reason = err.error_string.rstrip(".")
    # libsndfile's MP3 reader says this of any file it cannot sync to; the file
    # does exist (checked already), so the message would mislead.
    if reason.startswith("File does not exist"):
        reason = "no valid audio frames found"
    return reason


# --- decoding -----------------------------------------------------------------


class _MonoSink:
    """Resample mono blocks into one growing float32 array at the output rate.

    The array is preallocated from the expected length, so decoding needs about
    the output's memory and no concatenation at the end.
    """

    def __init__(self, path: str, sr_in: int, sr_out: int, expected_in: int):
        self.path, self.sr_in, self.sr_out = path, sr_in, sr_out
        self.stream = None
        if sr_in != sr_out:
            self.stream = soxr.ResampleStream(sr_in, sr_out, 1, dtype="float32", quality="HQ")
        self.out = np.zeros(self._n_out(max(expected_in, 0)), dtype=np.float32)
        self.n_in = self.n_out = 0
        self.peak = 0.0

    def _n_out(self, n_in: int) -> int:
        return -(-n_in * self.sr_out // self.sr_in)  # ceil, as librosa.resample

    def add(self, mono: np.ndarray) -> None:
        if mono.size == 0:
            return
        if not np.isfinite(mono).all():
            raise AudioError(self.path, "contains NaN or infinite sample values")
        self.peak = max(self.peak, float(mono.max()), -float(mono.min()))
        self.n_in += mono.size
        self._put(self.stream.resample_chunk(mono) if self.stream else mono)

    def _put(self, y: np.ndarray) -> None:
        end = self.n_out + y.size
        if end > self.out.size:
            # In place where the allocator can; the header's length was an estimate.
            self.out.resize(max(end, self.out.size + self.out.size // 8), refcheck=False)
        self.out[self.n_out : end] = y
        self.n_out = end

    def finish(self) -> tuple[np.ndarray, float]:
        if self.stream:
            self._put(self.stream.resample_chunk(np.zeros(0, np.float32), last=True))
        # librosa's length: the flushed tail is cut or zero-padded to ceil(n * ratio).
        self.out.resize(self._n_out(self.n_in), refcheck=False)
        return self.out, self.peak


def _load_sf(f: sf.SoundFile, path: str, sr: int) -> tuple[np.ndarray, float]:
    sink = _MonoSink(path, f.samplerate, sr, f.frames)
    buf = np.empty((_BLOCK, f.channels), dtype=np.float32)
    while len(block := _read_block(f, buf, path)):
        sink.add(block[:, 0] if f.channels == 1 else block.mean(axis=1))
    return sink.finish()


def _read_block(f: sf.SoundFile, buf: np.ndarray, path: str) -> np.ndarray:
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
        raise AudioError(path, f"could not be decoded ({_sf_reason(sf.LibsndfileError(code))})")
    return buf[:n]


def _load_av(path: str, sr: int, sf_reason: str) -> tuple[np.ndarray, float]:
    av = _import_av(path, sf_reason)
    with _open_av(av, path, sf_reason) as container:
        stream = container.streams.audio[0]
        expected = math.ceil(_av_seconds(av, container, stream) * stream.rate)
        sink = _MonoSink(path, stream.rate, sr, expected)
        planar = av.AudioResampler(format="fltp")  # keeps rate and channels
        try:
            for frame in container.decode(stream):
                for f in planar.resample(frame):
                    x = f.to_ndarray()  # (channels, samples)
                    sink.add(x[0] if len(x) == 1 else x.mean(axis=0))
        except av.error.FFmpegError as err:
            raise AudioError(path, f"could not be decoded ({_av_reason(err)})") from None
    return sink.finish()


def _import_av(path: str, sf_reason: str):
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


def _open_av(av, path: str, sf_reason: str):
    """Open with PyAV, refusing files without a decodable audio stream."""
    try:
        container = av.open(path)
    except av.error.FFmpegError as err:
        raise AudioError(
            path, f"not an audio file (soundfile: {sf_reason}; PyAV: {_av_reason(err)})"
        ) from None
    audio = container.streams.audio
    if not audio or not audio[0].rate:
        container.close()
        raise AudioError(path, f"not an audio file (soundfile: {sf_reason}; PyAV: no audio stream)")
    return container


def _av_reason(err) -> str:
    return getattr(err, "strerror", None) or str(err)


def _av_seconds(av, container, stream) -> float:
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    return (container.duration or 0) / av.time_base


# --- windows ------------------------------------------------------------------


#: Largest tail (fraction of a window) that is folded into the last window rather than dropped.
TAIL_TOLERANCE = 0.05


def window_bounds(
    n_samples: int,
    sr: int,
    window: float | None,
    hop: float | None = None,
    *,
    cover_end: bool = False,
) -> list[tuple[int, int]]:
    """Sample ranges ``[(start, stop), ...]`` of the analysis windows of a signal.

    The rule, used everywhere in genrekit:

    - windows are ``round(window * sr)`` samples long and start every
      ``round(hop * sr)`` samples (``hop=None``: non-overlapping, hop = window);
    - only whole windows are made, as in the Kaggle GTZAN tables; a tail after the
      last whole window shorter than :data:`TAIL_TOLERANCE` of a window is absorbed
      into the last window (a 30.01-s clip is one 30-s row over all of it, not a row
      that loses 0.01 s); a longer tail is dropped, unless ``cover_end`` is true, in
      which case one more window ending exactly at the signal's end is added (used
      for timelines, which must cover the whole song);
    - a signal shorter than one window is analysed as one window covering all of it
      (no padding, so a 29.98-s GTZAN clip still yields its whole-clip row);
    - ``window=None`` means one window over the whole signal.

    Signals shorter than one STFT frame are refused earlier, by :func:`load`'s
    ``min_samples``.

    Parameters
    ----------
    n_samples : int
        Length of the signal in samples.
    sr : int
        Sample rate in Hz.
    window, hop : float or None
        Window length and hop in seconds.
    cover_end : bool
        Add a final window aligned to the end when the tail would be dropped.
    """
    if n_samples <= 0:
        return []
    if window is None:
        return [(0, n_samples)]
    length = max(1, int(round(window * sr)))
    step = max(1, int(round((hop if hop is not None else window) * sr)))
    if n_samples <= length:
        return [(0, n_samples)]
    starts = list(range(0, n_samples - length + 1, step))
    bounds = [(s, s + length) for s in starts]
    tail = n_samples - bounds[-1][1]
    if 0 < tail <= TAIL_TOLERANCE * length:
        bounds[-1] = (bounds[-1][0], n_samples)
    elif tail > 0 and cover_end:
        bounds.append((n_samples - length, n_samples))
    return bounds
