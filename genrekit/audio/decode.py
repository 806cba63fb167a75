"""Decoding any audio file to a mono float32 signal at the rate asked for, in bounded memory.

Decoding
--------
`load` turns a file into one float32 mono array at the requested rate (`load_audio`,
the Python API's, also returns the rate, by default the file's own);
:func:`genrekit.audio.info.info` describes a file without decoding it. wav, flac, ogg (vorbis, opus), mp3, aiff
and au go through soundfile (libsndfile); m4a/aac and anything else FFmpeg can
read go through PyAV when it is installed (``pip install "genrekit[av]"``).
Channels are averaged and the rate is converted with soxr at "HQ" quality, so the
result matches ``librosa.load(path, sr=sr)``. Files are decoded in blocks, so the
memory needed is about the size of the output. `Decoder` gives the same signal as a
stream of blocks, for analyses whose memory must not grow with the song
(:mod:`genrekit.features.blockwise`); :func:`genrekit.audio.windows.overlapping_blocks` regroups such a stream
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
it is analysed as a single window covering all of it (see
:func:`genrekit.audio.windows.window_bounds`). Opening a file safely (the checks before
decoding, soundfile or PyAV) is :mod:`genrekit.audio.containers`.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Iterator

import numpy as np
import soundfile as sf
import soxr

from genrekit.audio.containers import (Chatter, av_reason, av_seconds, check_file, import_av, ogg_ends_cleanly,
                                       open_av, read_block, sf_reason)
from genrekit.audio.info import info
from genrekit.audio.windows import overlapping_blocks
from genrekit.errors import AudioError, ParameterError, TooLongError

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


class SilentAudioWarning(UserWarning):
    """The decoded signal is silent (peak below 1e-6); features of it mean little."""


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
        For arrays that are not numbers (booleans, objects, complex values), as numpy says of a wrong dtype.
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
            raise ParameterError(f"sr must be a positive integer (Hz), got {sr!r}")
        self.path = check_file(path)
        self.sr, self.min_samples, self.max_duration = int(sr), min_samples, max_duration
        self.n_samples = 0
        self.peak = 0.0
        self.chatter = Chatter()
        self.source = None
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
            with self.chatter:
                f = sf.SoundFile(os.fsencode(path))  # bytes: a Latin-1 name is not UTF-8
        except sf.LibsndfileError as err:
            self._open_av(sf_reason(err))
            return
        except (RuntimeError, ValueError, OverflowError) as err:  # soundfile on absurd headers
            raise AudioError(path, f"not a usable audio file ({err})") from None
        self.source = f
        self.native_sr, self.channels, self.declared = f.samplerate, f.channels, max(f.frames, 0)
        self.format = f.format
        self._check_header()

    def _open_av(self, sf_reason: str) -> None:
        av = import_av(self.path, sf_reason)
        with self.chatter:
            container = open_av(av, self.path, sf_reason)
        self.av, self.source = av, container
        stream = container.streams.audio[0]
        self.native_sr, self.channels = int(stream.rate), int(stream.channels or 1)
        self.format = "AV"
        self.declared = max(0, math.ceil(av_seconds(av, container, stream) * stream.rate))
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
            # Misuse by genrekit's own code, never by a file or a user: a bug if it happens.
            raise RuntimeError("a Decoder can be iterated once")
        self._started = True
        try:
            sink = _MonoSink(self, self.native_sr, self.sr)
            raw = self._read_sf() if self.format != "AV" else self._read_av()
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
        f = self.source
        # Counted in output samples: at a low native rate a few frames make a long block.
        frames = max(1, min(_BLOCK, _BLOCK * self.native_sr // self.sr))
        buf = np.empty((frames, f.channels), dtype=np.float32)
        while True:
            with self.chatter:
                block = read_block(f, buf, self.path)
            if not len(block):
                return
            # A copy: ``buf`` is refilled by the next read, and consumers may keep blocks.
            yield block[:, 0].copy() if f.channels == 1 else block.mean(axis=1)

    def _read_av(self):
        av, container = self.av, self.source
        stream = container.streams.audio[0]
        planar = av.AudioResampler(format="fltp")  # keeps rate and channels
        frames = container.decode(stream)
        while True:
            try:
                with self.chatter:
                    frame = next(frames, None)
                    converted = planar.resample(frame) if frame is not None else []
            except av.error.FFmpegError as err:
                raise AudioError(self.path, f"could not be decoded ({av_reason(err)})") from None
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
        if self.format == "AV":
            # Seconds from the container can be rounded; a lost tail is much more than a frame.
            if self.declared and n_in < _TRUNCATED * self.declared - 4096:
                raise AudioError(path, f"truncated: the container declares {self.declared / self.native_sr:.2f} s, "
                                       f"only {n_in / self.native_sr:.2f} s could be decoded")
        elif self.declared and n_in < _TRUNCATED * self.declared and self.length_is_declared():
            raise AudioError(path, f"truncated: header declares {self.declared} frames, "
                                   f"only {n_in} could be decoded")
        elif self.format == "OGG" and not ogg_ends_cleanly(path):
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
        if self.source is not None:
            self.source.close()
            self.source = None
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

    def length_is_declared(self) -> bool:
        """Whether the header's frame count is a declaration rather than libsndfile's estimate."""
        if self.format != "MP3":
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
        for line in self.chatter.lines():
            warnings.warn(DecoderWarning(f"{self.path}: decoder: {line}"), stacklevel=4)

    # --- lifetime ------------------------------------------------------------------------
    def close(self) -> None:
        if self.source is not None:
            try:
                self.source.close()
            except Exception:  # noqa: BLE001 - closing a broken decoder must not hide the real error
                pass
            self.source = None
        self.chatter.close()

    def __enter__(self) -> "Decoder":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


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
