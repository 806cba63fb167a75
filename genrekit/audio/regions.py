"""Decoding only parts of a file: seek to each region an analysis needs, decode and resample it alone.

A label read from a budget of patches (the default model: at most 32 patches of 3 s) needs
about 100 s of a 4-minute song; :class:`RegionReader` decodes those regions only, so a long
song costs the decoder and resampler a fraction of a full pass. The result equals what
:class:`genrekit.audio.decode.Decoder` gives for the same samples:

- **Positions are exact.** soundfile (libsndfile) seeks to the sample in WAV, AIFF, FLAC,
  Ogg (vorbis, opus) and MP3 (libmpg123 decodes the frames a seek lands among, bit
  reservoir included); PyAV seeks to the AAC frame before the region and every decoded
  frame carries its time stamp, which places its samples. Measured against full decoding,
  the samples are bit-identical for all five (``tests/test_region_decoding.py``).
- **The resampler sees the same neighbourhood.** Each region is widened by
  :data:`MARGIN` native samples on both sides and its native start put on the grid where
  native and output samples coincide (multiples of ``sr_in / gcd(sr_in, sr_out)``), so a
  one-shot soxr "HQ" resampling of the region gives the full stream's samples to float
  precision (max. difference ~2e-7 on a full-scale signal; 64 samples of margin already
  suffice at 44.1 → 16 kHz).
- **The length is known before reading.** The plan of patches depends on the song's length:
  it is the header's exact count (WAV, AIFF, FLAC, Ogg, MP3 with a Xing/Info/VBRI frame) or,
  for PyAV files, the end of the last frame, found by decoding the last seconds.

Where this cannot hold, :meth:`RegionReader.open` answers ``None`` and the caller decodes the
whole file as before: an MP3 without a Xing/Info/VBRI frame (its length is an estimate from
the first bit rate), a file soundfile cannot seek in, a PyAV stream without time stamps. A
region that reads short (a truncated file) raises :attr:`RegionReader.Unavailable`, and the caller
decodes the whole file, whose checks name the problem. The checks on samples (NaN, absurd
values, silence) see the decoded regions only.

Memory: one region (a patch and its margins, ~3.2 s) at a time.
"""

from __future__ import annotations

import math

import numpy as np
import soxr

from genrekit.audio import decode as audio
from genrekit.audio.containers import ogg_ends_cleanly, open_av, read_block

#: Native samples decoded beyond each edge of a region, for the resampler's filter (soxr "HQ"
#: needs fewer than 64 at 44.1 → 16 kHz; 1024 leave room for other rates).
MARGIN = 1024
#: Regions closer than this (native samples) are read as one (a seek costs more than the gap).
_JOIN = 8192
#: Native samples decoded before a PyAV region and dropped (measured: 4096 give AAC's samples exactly).
_AV_PREROLL = 4096
#: Seconds decoded at the end of a PyAV file to find its exact length.
_AV_TAIL = 5.0


class _RegionsUnavailable(Exception):
    """A region could not be read as planned (control flow: the caller decodes the whole file)."""


class RegionReader:
    """Read chosen sample ranges of an open :class:`genrekit.audio.decode.Decoder`'s file, at its rate.

    Use :meth:`open`, which answers ``None`` where regions cannot be exact.

    Attributes
    ----------
    n_samples : int
        The song's exact length at the decoder's rate (what full decoding would yield).
    peak : float
        Largest absolute sample of the regions read so far.
    Unavailable : type
        What :meth:`read` raises when a region cannot be read as planned (decode the whole file).
    """

    Unavailable = _RegionsUnavailable

    def __init__(self, decoder: "audio.Decoder", native_frames: int) -> None:
        self.decoder = decoder
        self.native_frames = native_frames
        self.sr_in, self.sr_out = decoder.native_sr, decoder.sr
        g = math.gcd(self.sr_in, self.sr_out)
        self._grid_in, self._grid_out = self.sr_in // g, self.sr_out // g
        self.n_samples = -(-native_frames * self.sr_out // self.sr_in)  # ceil, as full decoding
        #: Largest absolute sample of the regions read so far (a silent song's note needs it).
        self.peak = 0.0

    @classmethod
    def open(cls, decoder: "audio.Decoder") -> "RegionReader | None":
        """A reader for ``decoder``'s file, or ``None`` where only full decoding is exact (see the module)."""
        fmt = decoder.format
        if fmt == "AV":
            frames = _av_length(decoder)
            return None if frames is None else cls(decoder, frames)
        source = decoder.source
        if not source.seekable() or not decoder.declared or not decoder.length_is_declared():
            return None
        if fmt == "OGG" and not ogg_ends_cleanly(decoder.path):
            return None  # a cut-off Ogg file: full decoding says so
        return cls(decoder, decoder.declared)

    def read(self, spans: list[tuple[int, int]]):
        """Yield ``(start, samples)`` covering each ``[lo, hi)`` of ``spans`` (samples at the decoder's
        rate, sorted), nearby spans joined; mono float32, equal to full decoding's samples there.

        Raises
        ------
        Unavailable
            A region read short or could not be placed (the caller decodes the whole file).
        genrekit.errors.AudioError
            Samples that full decoding would refuse too (NaN, absurd values).
        """
        for s0, s1 in self._native_ranges(spans):
            x = self._decode(s0, s1)
            if len(x) < s1 - s0:
                raise _RegionsUnavailable(f"read {len(x)} of {s1 - s0} samples at {s0}")
            self.decoder.check_block(x, 0)
            if len(x):
                self.peak = max(self.peak, float(np.abs(x).max()))
            o0 = s0 // self._grid_in * self._grid_out
            y = x if self.sr_in == self.sr_out else soxr.resample(x, self.sr_in, self.sr_out, "HQ")
            y = np.asarray(y, dtype=np.float32)
            if s1 == self.native_frames and len(y) < self.n_samples - o0:
                # full decoding pads its last samples to ceil(frames * sr_out / sr_in), as librosa does
                y = np.concatenate([y, np.zeros(self.n_samples - o0 - len(y), np.float32)])
            yield o0, y

    def _native_ranges(self, spans) -> list[tuple[int, int]]:
        """Native ``[s0, s1)`` ranges covering ``spans`` with margins, starts on the common grid."""
        g, ratio = self._grid_in, self.sr_in / self.sr_out
        ranges: list[list[int]] = []
        for lo, hi in spans:
            s0 = max(0, math.floor(lo * ratio) - MARGIN) // g * g
            s1 = min(self.native_frames, math.ceil(hi * ratio) + MARGIN)
            if ranges and s0 <= ranges[-1][1] + _JOIN:
                ranges[-1][1] = max(ranges[-1][1], s1)
            else:
                ranges.append([s0, s1])
        return [(a, b) for a, b in ranges]

    def _decode(self, s0: int, s1: int) -> np.ndarray:
        if self.decoder.format == "AV":
            return _av_range(self.decoder, s0, s1)
        f = self.decoder.source
        with self.decoder.chatter:
            f.seek(s0)
            buf = np.empty((s1 - s0, f.channels), dtype=np.float32)
            block = read_block(f, buf, self.decoder.path)
        return block[:, 0].copy() if f.channels == 1 else block.mean(axis=1)


# --- PyAV -------------------------------------------------------------------------------------
def _av_frames(decoder, s0: int):
    """``(first sample, mono samples)`` of the decoded frames from the last key frame before ``s0``."""
    av = decoder.av
    at = max(0, s0 - _AV_PREROLL)
    if at == 0:  # from the start: a fresh container decodes the first frames as full decoding does
        decoder.source.close()
        decoder.source = open_av(av, decoder.path, "seek to the start")
    container = decoder.source
    stream = container.streams.audio[0]
    base = stream.time_base
    origin = stream.start_time or 0
    if at > 0:
        # AAC frames overlap their neighbours (MDCT): the frames just after a seek are not yet exact
        container.seek(int(at / decoder.native_sr / base) + origin, stream=stream, backward=True)
    planar = av.AudioResampler(format="fltp")
    for frame in container.decode(stream):
        if frame.pts is None:
            raise _RegionsUnavailable("a frame without a time stamp")
        first = round((frame.pts - origin) * base * decoder.native_sr)
        for f in planar.resample(frame):
            x = f.to_ndarray()
            if x.ndim == 2 and x.size:
                yield first, x[0] if len(x) == 1 else x.mean(axis=0)
                first += x.shape[1]


def _av_range(decoder, s0: int, s1: int) -> np.ndarray:
    out = np.zeros(s1 - s0, np.float32)
    filled = 0
    try:
        with decoder.chatter:
            for first, x in _av_frames(decoder, s0):
                if first > s0 + filled:
                    raise _RegionsUnavailable(f"the seek landed at {first}, after {s0 + filled}")
                a, b = max(first, s0), min(first + len(x), s1)
                if b > a:
                    out[a - s0:b - s0] = x[a - first:b - first]
                    filled = b - s0
                if first + len(x) >= s1:
                    break
    except decoder.av.error.FFmpegError as err:
        raise _RegionsUnavailable(str(err)) from None
    return out[:filled]


def _av_length(decoder) -> int | None:
    """The samples full decoding of a PyAV file yields (the end of its last frame), or ``None``."""
    if not decoder.declared:
        return None
    end = None
    try:
        with decoder.chatter:
            for first, x in _av_frames(decoder, max(0, decoder.declared - int(_AV_TAIL * decoder.native_sr))):
                end = first + len(x)
    except (_RegionsUnavailable, decoder.av.error.FFmpegError, ValueError, RuntimeError):
        return None
    # a tail far from the container's claim (a truncated file): full decoding names the problem
    if end is None or abs(end - decoder.declared) > 0.01 * decoder.declared + 4096:
        return None
    return end
