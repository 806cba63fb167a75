"""Audio in: decoding any file to a mono float32 signal, and cutting it into windows.

Decoding
--------
`load` turns a file into one float32 mono array at the requested rate (`load_audio`,
the Python API's, also returns the rate, by default the file's own); `info`
describes a file without decoding it. wav, flac, ogg (vorbis, opus), mp3, aiff
and au go through soundfile (libsndfile); m4a/aac and anything else FFmpeg can
read go through PyAV when it is installed (``pip install "genrekit[av]"``).
Channels are averaged and the rate is converted with soxr at "HQ" quality, so the
result matches ``librosa.load(path, sr=sr)``. Files are decoded in blocks, so the
memory needed is about the size of the output. `Decoder` gives the same signal as a
stream of blocks, for analyses whose memory must not grow with the song
(:mod:`genrekit.features.blockwise`); `overlapping_blocks` regroups such a stream
into blocks that share the context an analysis needs across their edges.

Every failure is an `AudioError` naming the file and the problem: missing,
a directory, unreadable, empty, not audio, truncated, no samples, NaN/inf
samples, absurd samples (beyond ±1000), too short, or (with ``max_duration``) too
long, :class:`TooLongError`. Silence is not a failure: it gives a `SilentAudioWarning`.
What decoder libraries print about a file (libmpg123 writes to the C-level stderr)
is captured and given as `DecoderWarning` s that name the file.

Truncated files: one rule for every format
------------------------------------------
A file that ends before the length its header declares is refused as
"truncated", whatever the format: WAV/AIFF/AU data chunks, FLAC STREAMINFO, MP3
Xing/Info/VBRI headers, the container duration of m4a/aac (more than 1% missing);
an Ogg file (vorbis, opus) whose last page lacks the end-of-stream flag. Files
whose header declares no length (an MP3 without a Xing header, a streamed WAV)
cannot be told from a shorter song and are decoded as they are.

Short clips
-----------
Callers pass ``min_samples``, the shortest signal their features can use (for
the spectral feature sets: one STFT frame, 2048 samples at 22050 Hz, about
93 ms). A signal shorter than that after resampling is refused ("too short").
A signal longer than that but shorter than one analysis window is not padded:
it is analysed as a single window covering all of it (see `window_bounds`).
"""

from __future__ import annotations

import errno
import math
import os
import stat
import struct
import sys
import tempfile
import threading
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import soundfile as sf
import soxr

from genrekit.errors import AudioError, TooLongError

DEFAULT_SR = 22050

#: Largest block, in samples: frames read at a time, and output samples resampled at a time
#: (a 1-Hz header turns 3 input frames into 66,150 output samples, so input is cut by output).
_BLOCK = 1 << 16
SILENCE = 1e-6  # peak below this counts as silent
#: Largest absolute sample value accepted: float files hold audio within ±1, a little over
#: after clipping-free mastering; 1e30 is not a signal (and overflows the float32 power spectrum).
MAX_SAMPLE = 1000.0
_MAX_RATE = 1_000_000  # Hz; a header claiming more is corrupt
#: Hz; a header claiming less holds no music (telephone speech is 8 kHz, the oldest AU files
#: 5.5 kHz). Below it the resampler's bursts grow with the ratio: soxr turns about 800 input
#: samples into one output burst, 17.6 M samples (70 MB) at 1 Hz, whatever the input block.
MIN_RATE = 1000
_MAX_CHANNELS = 256
_TRUNCATED = 0.99  # decoded / declared length below this: truncated (libmpg123's own 1% rule)
_HOLDBACK = 4096  # output samples held until the end is known (the resampler's tail)
_HINT_CAP = 1 << 23  # at most this many samples are allocated from a header's claim
_CHATTER_LOCK = threading.Lock()
_AV_ONLY = {".m4a", ".m4b", ".mp4", ".aac", ".wma", ".webm", ".mka", ".ac3"}
_AV_HINT = 'pip install "genrekit[av]"'


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


class DecoderWarning(UserWarning):
    """Something a decoder library printed about a file (captured, never printed raw)."""


def load(path, sr: int = DEFAULT_SR, *, min_samples: int = 1, max_duration: float | None = None) -> np.ndarray:
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
    max_duration : float or None
        Longest acceptable audio in seconds (:class:`TooLongError` beyond it).

    Returns
    -------
    y : np.ndarray [shape=(n,), dtype=float32]
        The channels' average, resampled to ``sr`` with soxr "HQ"; ``n`` is
        ``ceil(frames * sr / native_sr)``, as in ``librosa.load``.

    Raises
    ------
    AudioError
        If the file is missing, unreadable, not audio, truncated, holds no
        samples, non-finite or absurd ones, or is shorter than ``min_samples``.

    Warns
    -----
    SilentAudioWarning
        If the peak amplitude is below 1e-6. The signal is still returned.
    DecoderWarning
        For each message the decoder library printed about the file.
    """
    with Decoder(path, sr, min_samples=min_samples, max_duration=max_duration) as decoder:
        out = _Growing(decoder.expected_samples)
        for block in decoder:
            out.add(block)
    return out.array()


def pcm_to_float(y) -> np.ndarray:
    """A signal as float32 in the PCM convention: integers scaled to [-1, 1), floats kept.

    ``int16`` (what ``scipy.io.wavfile.read`` returns) is divided by 2**15, ``int32`` by
    2**31, ``uint8`` (8-bit WAV, offset binary) has 128 subtracted, then is divided by 128;
    a plain cast would hand the model values in the thousands and a wrong answer.

    Raises
    ------
    TypeError
        For arrays that are not numbers (booleans, objects, complex values).
    """
    y = np.asarray(y)
    if np.issubdtype(y.dtype, np.floating):
        return y.astype(np.float32, copy=False)
    if np.issubdtype(y.dtype, np.signedinteger):
        return (y / float(2 ** (8 * y.dtype.itemsize - 1))).astype(np.float32)
    if np.issubdtype(y.dtype, np.unsignedinteger):
        half = 2 ** (8 * y.dtype.itemsize - 1)
        return ((y.astype(np.float64) - half) / half).astype(np.float32)
    raise TypeError(f"expected an array of audio samples (float or integer PCM), got dtype {y.dtype}")


def load_audio(path, sr: int | None = None) -> tuple[np.ndarray, int]:
    """Decode an audio file for the Python API: ``(y, sr)``, as ``librosa.load`` returns.

    Parameters
    ----------
    path : str or os.PathLike
        The audio file (any format :func:`load` reads).
    sr : int or None
        Output sample rate in Hz; ``None`` keeps the file's own rate (no resampling).

    Returns
    -------
    y : np.ndarray [shape=(n,), dtype=float32]
        The mono signal (the channels' average), samples nominally within ±1.
    sr : int
        Its sample rate in Hz; ``len(y) / sr`` is the duration in seconds.

    Raises
    ------
    AudioError
        As :func:`load`.

    Examples
    --------
    >>> y, sr = load_audio("song.mp3")          # doctest: +SKIP
    >>> load_model().predict_proba(y, sr)       # doctest: +SKIP
    """
    rate = info(path).samplerate if sr is None else int(sr)
    return load(path, rate), rate


class Decoder:
    """Decode a file incrementally: iterating gives mono float32 blocks at ``sr``.

    Memory stays at one block however long the file is; nothing is allocated from
    the header's frame count (which a corrupt or hostile file may set to anything).
    Concatenated, the blocks are exactly what :func:`load` returns: the checks that
    need the whole file (too short, no samples, truncated, silent) run when the
    last block has been read, and raise (or warn) from the iteration.

    Parameters
    ----------
    path, sr, min_samples, max_duration
        As for :func:`load`. ``max_duration`` is checked against the header
        first, so an over-long file is refused before decoding starts.

    Attributes
    ----------
    native_sr : int
        The file's sample rate (Hz).
    n_samples : int
        Samples yielded so far (at ``sr``).
    peak : float
        Largest absolute sample so far (at the native rate).

    Examples
    --------
    >>> with Decoder("song.flac", 22050) as decoder:      # doctest: +SKIP
    ...     for block in decoder:
    ...         consume(block)
    """

    def __init__(self, path, sr: int = DEFAULT_SR, *, min_samples: int = 1, max_duration: float | None = None):
        if int(sr) != sr or sr <= 0:
            raise ValueError(f"sr must be a positive integer (Hz), got {sr!r}")
        self.path = _check_file(path)
        self.sr, self.min_samples, self.max_duration = int(sr), min_samples, max_duration
        self.n_samples = 0
        self.peak = 0.0
        self._chatter = _Chatter()
        self._source = None
        self._started = False
        try:
            self._open()
        except BaseException:
            self.close()
            raise

    # --- opening ---------------------------------------------------------------------
    def _open(self) -> None:
        path = self.path
        try:
            with self._chatter:
                f = sf.SoundFile(os.fsencode(path))  # bytes: a Latin-1 name is not UTF-8
        except sf.LibsndfileError as err:
            self._open_av(_sf_reason(err))
            return
        except (RuntimeError, ValueError, OverflowError) as err:  # soundfile on absurd headers
            raise AudioError(path, f"not a usable audio file ({err})") from None
        self._source = f
        self.native_sr, self.channels, self.declared = f.samplerate, f.channels, max(f.frames, 0)
        self._format = f.format
        self._check_header()

    def _open_av(self, sf_reason: str) -> None:
        av = _import_av(self.path, sf_reason)
        with self._chatter:
            container = _open_av(av, self.path, sf_reason)
        self._av, self._source = av, container
        stream = container.streams.audio[0]
        self.native_sr, self.channels = int(stream.rate), int(stream.channels or 1)
        self._format = "AV"
        self.declared = max(0, math.ceil(_av_seconds(av, container, stream) * stream.rate))
        self._check_header()

    def _check_header(self) -> None:
        """Refuse absurd rates and channel counts, and (with ``max_duration``) an over-long declared length."""
        if not 0 < self.channels <= _MAX_CHANNELS or not 0 < self.native_sr <= _MAX_RATE:
            raise AudioError(self.path, f"not a usable audio file (header says {self.native_sr} Hz, "
                                        f"{self.channels} channels)")
        if self.native_sr < MIN_RATE:
            raise AudioError(self.path, f"not a usable audio file (header says {self.native_sr} Hz; "
                                        f"music needs at least {MIN_RATE} Hz)")
        if self.max_duration is not None and self.declared / self.native_sr > self.max_duration:
            raise TooLongError(self.path, self.declared / self.native_sr, self.max_duration, declared=True)

    @property
    def expected_samples(self) -> int:
        """Length at ``sr`` the header declares (a hint only: headers can lie)."""
        return -(-self.declared * self.sr // self.native_sr)

    # --- decoding ----------------------------------------------------------------------
    def __iter__(self):
        if self._started:
            raise RuntimeError("a Decoder can be iterated once")
        self._started = True
        try:
            sink = _MonoSink(self, self.native_sr, self.sr)
            raw = self._read_sf() if self._format != "AV" else self._read_av()
            for mono in raw:
                for block in sink.add(mono):
                    self.n_samples += block.size
                    yield block
            for block in sink.finish():
                self.n_samples += block.size
                yield block
            self._final_checks(sink.n_in)
        finally:
            self.close()

    def _read_sf(self):
        f = self._source
        # Counted in output samples: at a low native rate a few frames make a long block.
        frames = max(1, min(_BLOCK, _BLOCK * self.native_sr // self.sr))
        buf = np.empty((frames, f.channels), dtype=np.float32)
        while True:
            with self._chatter:
                block = _read_block(f, buf, self.path)
            if not len(block):
                return
            # A copy: ``buf`` is refilled by the next read, and consumers may keep blocks.
            yield block[:, 0].copy() if f.channels == 1 else block.mean(axis=1)

    def _read_av(self):
        av, container = self._av, self._source
        stream = container.streams.audio[0]
        planar = av.AudioResampler(format="fltp")  # keeps rate and channels
        frames = container.decode(stream)
        while True:
            try:
                with self._chatter:
                    frame = next(frames, None)
                    converted = planar.resample(frame) if frame is not None else []
            except av.error.FFmpegError as err:
                raise AudioError(self.path, f"could not be decoded ({_av_reason(err)})") from None
            except (ValueError, RuntimeError, MemoryError, UnicodeDecodeError) as err:
                raise AudioError(self.path, f"could not be decoded ({type(err).__name__}: {err})") from None
            if frame is None:
                return
            for f in converted:
                x = f.to_ndarray()  # (channels, samples)
                if x.ndim != 2 or not x.size:
                    continue
                yield x[0] if len(x) == 1 else x.mean(axis=0)

    def check_block(self, mono: np.ndarray, n_in: int) -> None:
        """Refuse non-finite or absurd samples and audio past ``max_duration`` (called per block)."""
        if not np.isfinite(mono).all():
            raise AudioError(self.path, "contains NaN or infinite sample values")
        self.peak = max(self.peak, float(mono.max()), -float(mono.min()))
        if self.peak > MAX_SAMPLE:
            raise AudioError(self.path, f"sample values out of range (peak {self.peak:.3g}; audio is "
                                        f"expected within ±1): not a usable signal")
        if self.max_duration is not None and n_in / self.native_sr > self.max_duration:
            raise TooLongError(self.path, n_in / self.native_sr, self.max_duration)

    def _final_checks(self, n_in: int) -> None:
        path, sr = self.path, self.sr
        self._warn_chatter()
        if self._format == "AV":
            # Seconds from the container can be rounded; a lost tail is much more than a frame.
            if self.declared and n_in < _TRUNCATED * self.declared - 4096:
                raise AudioError(path, f"truncated: the container declares {self.declared / self.native_sr:.2f} s, "
                                       f"only {n_in / self.native_sr:.2f} s could be decoded")
        elif self.declared and n_in < _TRUNCATED * self.declared and self._length_is_declared():
            raise AudioError(path, f"truncated: header declares {self.declared} frames, "
                                   f"only {n_in} could be decoded")
        elif self._format == "OGG" and not _ogg_ends_cleanly(path):
            raise AudioError(path, "truncated: the Ogg stream ends without its last page "
                                   f"(decoded {n_in / self.native_sr:.2f} s)")
        if self.n_samples == 0:
            raise AudioError(path, "contains no audio (decodes to 0 samples)")
        if self.n_samples < self.min_samples:
            raise AudioError(path, f"too short: {self.n_samples / sr:.3f} s, "
                                   f"at least {self.min_samples / sr:.3f} s needed")
        if self.peak < SILENCE:
            warnings.warn(SilentAudioWarning(
                f"{path}: audio is silent (peak {self.peak:.1e}), features will be flat"), stacklevel=3)

    def reopen(self) -> None:
        """Open the file afresh, for a full pass after regions were read from it
        (:mod:`genrekit.audio.regions`)."""
        if self._started:
            raise RuntimeError("a Decoder can be iterated once")
        if self._source is not None:
            self._source.close()
            self._source = None
        self.peak, self.n_samples = 0.0, 0
        self._open()

    def finish_regions(self, n_samples: int) -> None:
        """The end of a song read in regions (:mod:`genrekit.audio.regions`) of ``n_samples`` in all:
        the checks of :meth:`__iter__`'s end that apply to regions (too short, silent as far as read,
        what the decoder library said)."""
        self._started = True
        self.n_samples = n_samples
        self._warn_chatter()
        if n_samples < self.min_samples:
            raise AudioError(self.path, f"too short: {n_samples / self.sr:.3f} s, "
                                        f"at least {self.min_samples / self.sr:.3f} s needed")
        if self.peak < SILENCE:
            warnings.warn(SilentAudioWarning(
                f"{self.path}: audio is silent (peak {self.peak:.1e}), features will be flat"), stacklevel=3)

    def _length_is_declared(self) -> bool:
        """Whether the header's frame count is a declaration rather than libsndfile's estimate."""
        if self._format != "MP3":
            return True  # WAV, AIFF, AU, FLAC: exact counts in the header
        # MP3: exact only with a Xing/Info/VBRI frame; else estimated from the first bit rate.
        try:
            with open(self.path, "rb") as fh:
                head = fh.read(10)
                skip = 0
                if head[:3] == b"ID3" and len(head) == 10:
                    skip = 10 + ((head[6] << 21) | (head[7] << 14) | (head[8] << 7) | head[9])
                fh.seek(skip)
                first = fh.read(4096)
        except OSError:
            return False
        return any(tag in first for tag in (b"Xing", b"Info", b"VBRI"))

    def _warn_chatter(self) -> None:
        for line in self._chatter.lines():
            warnings.warn(DecoderWarning(f"{self.path}: decoder: {line}"), stacklevel=4)

    # --- lifetime ------------------------------------------------------------------------
    def close(self) -> None:
        if self._source is not None:
            try:
                self._source.close()
            except Exception:  # noqa: BLE001 - closing a broken decoder must not hide the real error
                pass
            self._source = None
        self._chatter.close()

    def __enter__(self) -> "Decoder":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def overlapping_blocks(chunks: Iterable[np.ndarray], size: int, overlap: int = 0) -> Iterator[tuple[int, np.ndarray]]:
    """Regroup a stream of sample chunks into blocks of ``size`` samples overlapping by ``overlap``.

    Block ``k`` holds samples ``[k * step, k * step + size)`` of the stream, with
    ``step = size - overlap``; the last block holds whatever remains (shorter, never
    empty unless the stream is). Memory: one block plus one chunk. This is the building
    block for analyses that need context across block edges (STFT frames, patches of a
    spectrogram): give ``overlap`` = the context needed.

    Parameters
    ----------
    chunks : iterable of np.ndarray (1-D)
        E.g. a :class:`Decoder`.
    size : int
        Samples per block.
    overlap : int
        Samples shared by consecutive blocks, ``0 <= overlap < size``.

    Yields
    ------
    (start, block) : (int, np.ndarray)
        ``start`` is the block's first sample in the stream.
    """
    if size <= 0 or not 0 <= overlap < size:
        raise ValueError(f"need size > 0 and 0 <= overlap < size, got size={size}, overlap={overlap}")
    step = size - overlap
    pending: list[np.ndarray] = []
    held = start = 0
    emitted_to = 0  # stream position up to which samples were yielded
    for chunk in chunks:
        pending.append(np.asarray(chunk))
        held += len(chunk)
        if held < size:
            continue
        buf = np.concatenate(pending)
        pos = 0
        while len(buf) - pos >= size:
            yield start, buf[pos : pos + size]
            emitted_to = start + size
            start += step
            pos += step
        pending, held = [buf[pos:]], len(buf) - pos
    rest = np.concatenate(pending) if pending else np.zeros(0, np.float32)
    if len(rest) and start + len(rest) > emitted_to:
        yield start, rest


def iter_blocks(path, sr: int = DEFAULT_SR, size: int = 30 * DEFAULT_SR, overlap: int = 0,
                **decoder_options) -> Iterator[tuple[int, np.ndarray]]:
    """Decode ``path`` and yield ``(start, block)`` pairs of ``size`` samples with ``overlap``.

    :func:`overlapping_blocks` over a :class:`Decoder`; ``decoder_options`` are its
    keyword arguments (``min_samples``, ``max_duration``).
    """
    with Decoder(path, sr, **decoder_options) as decoder:
        yield from overlapping_blocks(decoder, size, overlap)


class _Growing:
    """A float32 array grown in place (``realloc``): no concatenation copy, no preallocation trust."""

    def __init__(self, hint: int):
        self.out = np.zeros(min(max(hint, 0), _HINT_CAP), dtype=np.float32)
        self.n = 0

    def add(self, y: np.ndarray) -> None:
        end = self.n + y.size
        if end > self.out.size:
            self.out.resize(max(end, self.out.size + self.out.size // 8), refcheck=False)
        self.out[self.n : end] = y
        self.n = end

    def array(self) -> np.ndarray:
        self.out.resize(self.n, refcheck=False)
        return self.out


class _MonoSink:
    """Resample mono blocks to the output rate, holding back a short tail.

    The output has librosa's length, ``ceil(n_in * sr_out / sr_in)``: the resampler's
    flushed tail is cut or zero-padded to it. Only the last :data:`_HOLDBACK` samples
    are held until the end is known, so the blocks can be streamed.
    """

    def __init__(self, decoder: Decoder, sr_in: int, sr_out: int):
        self.decoder, self.sr_in, self.sr_out = decoder, sr_in, sr_out
        self.stream = None
        if sr_in != sr_out:
            self.stream = soxr.ResampleStream(sr_in, sr_out, 1, dtype="float32", quality="HQ")
        self.n_in = 0
        self.emitted = 0
        self.held = np.zeros(0, np.float32)
        # Input samples per resampling call, so that no call makes more than _BLOCK output samples
        # whatever rate the header claims (PyAV's frames come in the decoder's own sizes).
        self.step = max(1, min(_BLOCK, _BLOCK * sr_in // sr_out))

    def add(self, mono: np.ndarray) -> Iterator[np.ndarray]:
        if mono.size == 0:
            return
        mono = np.ascontiguousarray(mono, dtype=np.float32)
        for start in range(0, mono.size, self.step):
            part = mono[start : start + self.step]
            self.n_in += part.size
            self.decoder.check_block(part, self.n_in)
            y = self.stream.resample_chunk(part) if self.stream else part
            yield from self._release(y)

    def _release(self, y: np.ndarray) -> list[np.ndarray]:
        data = np.concatenate((self.held, y)) if self.held.size else y
        if data.size <= _HOLDBACK:
            self.held = data.copy()
            return []
        out, self.held = data[:-_HOLDBACK], data[-_HOLDBACK:].copy()
        self.emitted += out.size
        return [out]

    def finish(self) -> list[np.ndarray]:
        tail = self.held
        if self.stream:
            tail = np.concatenate((tail, self.stream.resample_chunk(np.zeros(0, np.float32), last=True)))
        want = -(-self.n_in * self.sr_out // self.sr_in) - self.emitted  # ceil, as librosa.resample
        if want <= 0:
            return []
        if tail.size < want:
            tail = np.concatenate((tail, np.zeros(want - tail.size, np.float32)))
        return [tail[:want]]


class _Chatter:
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


def _ogg_ends_cleanly(path: str) -> bool:
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
        with _Chatter() as chatter:  # libmpg123's header warnings are not for the terminal
            i = sf.info(os.fsencode(path))
        chatter.close()
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


def _sf_reason(err: sf.LibsndfileError) -> str:
    reason = err.error_string.rstrip(".")
    # libsndfile's MP3 reader says this of any file it cannot sync to; the file
    # does exist (checked already), so the message would mislead.
    if reason.startswith("File does not exist"):
        reason = "no valid audio frames found"
    return reason


# --- PyAV ---------------------------------------------------------------------


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


#: The FFmpeg demuxers PyAV may use: audio containers that read nothing but the file itself.
#: Refused by omission: concat lists and playlists (hls, which open the files they name), image
#: sequences (image2), network and device inputs, and every other demuxer.
AV_FORMATS = ("mov", "mp4", "m4a", "mp3", "ogg", "flac", "wav", "w64", "aiff", "matroska", "webm", "aac", "ac3",
              "eac3", "asf", "au", "caf", "wv", "ape", "tta", "mpc", "mpc8", "dts", "amr", "loas", "truehd", "dsf")
_AV_OPTIONS = {
    "format_whitelist": ",".join(AV_FORMATS),
    "protocol_whitelist": "file",  # no network, no concat: or subfile: protocols
}


def _open_av(av, path: str, sf_reason: str):
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
        raise AudioError(path, f"not an audio file (soundfile: {sf_reason}; PyAV: {_av_reason(err)})") from None
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
    exact: bool = False,
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
    exact : bool
        With ``cover_end``: no window longer than ``window``, not even to absorb a short tail
        (an end-aligned window covers it; timelines promise their windows' length).
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
    if 0 < tail <= TAIL_TOLERANCE * length and not (exact and cover_end):
        bounds[-1] = (bounds[-1][0], n_samples)
    elif tail > 0 and cover_end:
        bounds.append((n_samples - length, n_samples))
    return bounds
