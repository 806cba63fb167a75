"""A song's identity: a hash of its audio payload, tag blocks excluded, so that a tag edit keeps it.

:func:`keys_of` reads a file once, front to back, in bounded chunks, and parses its container
as it goes: MP3 (ID3v2 tags at the start skipped, ID3v1, APEv2, Lyrics3 and an appended ID3v2 at
the end), FLAC (metadata blocks skipped, frames hashed), Ogg Vorbis, Opus and FLAC (the packets
after the header packets: page headers, sequence numbers and CRCs, which a tagger rewrites when
it repaginates the comment header, do not count), MP4/M4A (the ``mdat`` payloads) and WAV/AIFF
(the format and sample-data chunks). The key says which kind it is:

- ``a1:<hex>``: BLAKE2b-256 of the audio payload (and the container's name);
- ``f1:<hex>``: the whole file's hash, for any other file and any file that does not parse cleanly
  (a truncated file, a header claiming more bytes than the file has, no audio bytes at all).

Keys written before (plain hex, no ``:``) are whole-file hashes: :func:`is_legacy` tells them, and
:mod:`genrekit.audio.rekey` maps them to today's keys where the file is still there unchanged. The parser never seeks, never reads past the file's end, never allocates by a
header's claim (reads are at most :data:`CHUNK` bytes) and always moves forward, so a hostile
header can only make it fall back to the whole-file key.
"""

from __future__ import annotations

import hashlib
import os
import struct

#: Bytes read at a time.
CHUNK = 1 << 20
_BLOCK = 1 << 16  # read-ahead for headers and small chunks (Ogg pages)
AUDIO_PREFIX, FILE_PREFIX = "a1:", "f1:"
_MAX_STREAMS = 64  # logical streams in one Ogg file before it is not parsed (whole-file key)


class _Unparsed(Exception):
    """The container did not parse cleanly: the file gets its whole-file key."""


def is_legacy(key: str) -> bool:
    """Whether ``key`` was written before audio identities (a bare whole-file hash)."""
    return ":" not in key


class _Stream:
    """The file read once, front to back: every byte goes into the whole-file digest, the ones
    :meth:`take` is told are audio into the audio digest too."""

    def __init__(self, f, size: int, whole: bool) -> None:
        self.f, self.size, self.pos = f, size, 0
        self.whole = hashlib.blake2b(digest_size=32) if whole else None
        self.audio = hashlib.blake2b(digest_size=32)
        self.audio_bytes = 0
        self._buf, self._off = b"", 0  # bytes read and hashed whole, not yet parsed: _buf[_off:]

    def _fill(self, n: int) -> None:
        """At least ``n`` bytes ahead in the buffer, if the file has them (reads of :data:`_BLOCK`)."""
        if len(self._buf) - self._off >= n:
            return
        parts, have = [self._buf[self._off:]], len(self._buf) - self._off
        while have < n:
            more = self.f.read(max(n - have, _BLOCK))
            if not more:
                break
            if self.whole:
                self.whole.update(more)
            parts.append(more)
            have += len(more)
        self._buf, self._off = b"".join(parts), 0

    def peek(self, n: int) -> bytes:
        """Up to ``n`` (small) bytes ahead, not consumed."""
        self._fill(n)
        return self._buf[self._off:self._off + n]

    def read(self, n: int) -> bytes:
        """Exactly ``n`` (small) bytes, or :class:`_Unparsed` at the file's end."""
        data = self.peek(n)
        if len(data) < n:
            raise _Unparsed("truncated")
        self._off += n
        self.pos += n
        return data

    def take(self, n: int, audio: bool) -> None:
        """Move ``n`` bytes on, hashing them as audio if ``audio``; :class:`_Unparsed` if the file is shorter."""
        if n < 0 or n > self.size - self.pos:
            raise _Unparsed("a size beyond the file's end")
        if n <= _BLOCK:
            self._fill(n)
        while n:
            if self._off < len(self._buf):
                data = memoryview(self._buf)[self._off:self._off + n]
                self._off += len(data)
            else:
                data = self.f.read(min(n, CHUNK))
                if not data:
                    raise _Unparsed("truncated")
                if self.whole:
                    self.whole.update(data)
            if audio:
                self.audio.update(data)
                self.audio_bytes += len(data)
            n -= len(data)
            self.pos += len(data)

    def drain(self) -> None:
        """Read the rest into the whole-file digest (started over from the file's start if there was none)."""
        self._buf, self._off = b"", 0
        if self.whole is None:
            self.f.seek(0)
            self.whole = hashlib.blake2b(digest_size=32)
        while data := self.f.read(CHUNK):
            self.whole.update(data)


def keys_of(f, whole: bool = True) -> tuple[str, str | None]:
    """``(identity key, whole-file hash)`` of the binary file ``f``, open at its start, in one pass.

    The identity is ``a1:...`` (audio payload) or ``f1:<whole-file hash>``; the whole-file hash is
    :func:`genrekit.audio.files.content_hash`'s (``None`` with ``whole=False`` where the audio
    parsed: one digest instead of two, and the file read again only where it did not parse).
    Files are opened by :func:`genrekit.audio.files.file_keys`, which refuses pipes and devices.
    """
    size = os.fstat(f.fileno()).st_size
    s = _Stream(f, size, whole)
    try:
        kind = _parse(s, f, size)
    except (_Unparsed, struct.error):
        kind = None
    parsed = kind is not None and s.audio_bytes > 0
    if whole or not parsed:
        s.drain()
    digest = s.whole.hexdigest() if s.whole else None
    if not parsed:
        return FILE_PREFIX + digest, digest
    return AUDIO_PREFIX + s.audio.hexdigest(), digest


def _parse(s: _Stream, f, size: int) -> str | None:
    head = s.peek(12)
    if head[:3] == b"ID3" or head[:4] == b"fLaC" or (len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        while s.peek(3) == b"ID3":
            _skip_id3v2(s)
        if s.peek(4) == b"fLaC":
            _flac(s)
            return "flac"
        sync = s.peek(2)
        if len(sync) == 2 and sync[0] == 0xFF and sync[1] & 0xE0 == 0xE0:
            end = _mpeg_end(f, size, s.pos)
            s.audio.update(b"mpeg\0")
            s.take(end - s.pos, audio=True)
            return "mpeg"
        return None
    if head[:4] == b"OggS":
        _ogg(s)
        return "ogg"
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        _chunks(s, "<", {b"fmt ", b"data"}, b"wave")
        return "wave"
    if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        _chunks(s, ">", {b"COMM", b"SSND"}, b"aiff")
        return "aiff"
    if head[4:8] == b"ftyp":
        _mp4(s)
        return "mp4"
    return None


def _syncsafe(b: bytes) -> int:
    if any(x & 0x80 for x in b):
        raise _Unparsed("not a syncsafe integer")
    return (b[0] << 21) | (b[1] << 14) | (b[2] << 7) | b[3]


def _skip_id3v2(s: _Stream) -> None:
    header = s.read(10)
    if header[3] not in (2, 3, 4):
        raise _Unparsed("unknown ID3v2 version")
    footer = 10 if header[3] == 4 and header[5] & 0x10 else 0
    s.take(_syncsafe(header[6:10]) + footer, audio=False)


def _mpeg_end(f, size: int, start: int) -> int:
    """Where an MPEG stream's audio ends: before ID3v1, APEv2, Lyrics3 and appended ID3v2 tags."""
    end = size
    for _ in range(8):  # each step moves ``end`` back; a few tags at most
        before = end
        tail = os.pread(f.fileno(), min(32, end - start), end - min(32, end - start)) if end > start else b""
        if end - start >= 128 and os.pread(f.fileno(), 3, end - 128) == b"TAG":
            end -= 128
        elif len(tail) == 32 and tail[:8] == b"APETAGEX":
            (length,), (flags,) = struct.unpack("<I", tail[12:16]), struct.unpack("<I", tail[20:24])
            end -= length + (32 if flags & 0x80000000 else 0)
        elif len(tail) >= 15 and tail[-9:] == b"LYRICS200" and tail[-15:-9].isdigit():
            end -= int(tail[-15:-9]) + 15
        elif len(tail) >= 9 and tail[-9:] == b"LYRICSEND":
            window = min(5100 + 9, end - start)
            found = os.pread(f.fileno(), window, end - window).rfind(b"LYRICSBEGIN")
            if found < 0:
                break
            end -= window - found
        elif len(tail) >= 10 and tail[-10:-7] == b"3DI":
            end -= _syncsafe(tail[-4:]) + 20
        if end >= before or end < start:
            if end < start:
                raise _Unparsed("tags larger than the file")
            break
    return end


def _flac(s: _Stream) -> None:
    s.read(4)
    last = False
    while not last:
        header = s.read(4)
        last = bool(header[0] & 0x80)
        if header[0] & 0x7F == 0x7F:
            raise _Unparsed("invalid FLAC metadata block")
        s.take(int.from_bytes(header[1:4], "big"), audio=False)
    s.audio.update(b"flac\0")
    s.take(s.size - s.pos, audio=True)


def _ogg(s: _Stream) -> None:
    """Hash the payload of every packet after each logical stream's header packets."""
    streams: dict[int, list] = {}  # serial -> [header packets still to skip (None: unknown yet), packet so far]
    lengths = hashlib.blake2b(digest_size=32)  # the audio packets' lengths, in order
    s.audio.update(b"ogg\0")
    while s.pos < s.size:
        header = s.read(27)
        if header[:4] != b"OggS" or header[4] != 0:
            raise _Unparsed("not an Ogg page")
        serial = struct.unpack("<I", header[14:18])[0]
        lacing = s.read(header[26])
        state = streams.get(serial)
        if state is None:
            if not header[5] & 0x02 or len(streams) >= _MAX_STREAMS:
                raise _Unparsed("a page of a stream that did not begin")
            state = streams[serial] = [None, 0]
        if state[0] == 0:  # past the header packets: the page's body is audio
            s.take(sum(lacing), audio=True)
            for n in lacing:
                state[1] += n
                if n < 255:  # a packet ends: its length counts (whatever the pages), not where pages end
                    lengths.update(state[1].to_bytes(8, "little"))
                    state[1] = 0
            continue
        for n in lacing:
            if state[0] is None:  # the stream's first packet says how many header packets it has
                first = s.peek(8)
                if first[:7] == b"\x01vorbis":
                    state[0] = 3
                elif first[:8] == b"OpusHead":
                    state[0] = 2
                else:
                    raise _Unparsed("an Ogg codec without a known header")
            if state[0] == 0:  # the first audio packet begins on the page of the last header packet
                s.take(n, audio=True)
                state[1] += n
                if n < 255:
                    lengths.update(state[1].to_bytes(8, "little"))
                    state[1] = 0
                continue
            s.take(n, audio=False)
            if n < 255:  # a header packet ends here
                state[0] -= 1
    s.audio.update(lengths.digest())


def _chunks(s: _Stream, order: str, wanted: set[bytes], name: bytes) -> None:
    """RIFF/IFF chunks: those in ``wanted`` are hashed (id, then payload), the others skipped."""
    s.read(12)
    s.audio.update(name + b"\0")
    while s.pos < s.size:
        cid, length = struct.unpack(order + "4sI", s.read(8))
        if cid in wanted:
            s.audio.update(cid)
        s.take(length, audio=cid in wanted)
        if length & 1 and s.pos < s.size:
            s.take(1, audio=False)


def _mp4(s: _Stream) -> None:
    """Top-level boxes: the payload of each ``mdat`` is hashed, every other box skipped."""
    s.audio.update(b"mp4\0")
    while s.pos < s.size:
        length, box = struct.unpack(">I4s", s.read(8))
        header = 8
        if length == 1:
            length, header = struct.unpack(">Q", s.read(8))[0], 16
        elif length == 0:
            length = s.size - s.pos + 8
        if length < header:
            raise _Unparsed("an MP4 box smaller than its header")
        s.take(length - header, audio=box == b"mdat")
