"""Real audio files with existing genre tags, and their audio frames, for the tagging tests.

:func:`make_tagged` writes a short song in one of :data:`KINDS` (soundfile for
mp3/flac/ogg/wav, PyAV's AAC encoder for m4a) and gives it genres in that format's
own convention. :func:`audio_frames` returns the bytes of the file's audio alone
(everything but its tag blocks), parsed from the container, so that tests can say
"the audio frames are byte-identical".
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from synthetic_songs import SR, synth

#: File kinds: extension, plus the ID3 version for MP3.
KINDS = ("mp3-v23", "mp3-v24", "flac", "ogg", "m4a", "wav")


def suffix(kind: str) -> str:
    return "." + kind.split("-")[0]


def write_m4a(path: Path, y: np.ndarray, sr: int = SR) -> Path:
    av = pytest.importorskip("av", reason="PyAV makes the m4a file")
    if "aac" not in av.codecs_available:
        pytest.skip("this FFmpeg build has no AAC encoder")
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("aac", rate=sr)
        stream.layout = "mono"
        frame = av.AudioFrame.from_ndarray(y[None, :].astype(np.float32), format="fltp", layout="mono")
        frame.sample_rate = sr
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)
    return path


def make_song(path: Path, seed: int = 0) -> Path:
    """An untagged 2-s song at ``path`` (its suffix picks the format)."""
    y = synth("hiphop", 2.0, seed=seed)
    ext = path.suffix
    if ext == ".m4a":
        return write_m4a(path, y)
    if ext == ".mp3" and "MP3" not in sf.available_formats():
        pytest.skip("this libsndfile cannot write MP3")
    kwargs = {"format": "OGG", "subtype": "OPUS"} if ext == ".opus" else {}
    sf.write(path, y, 48000 if ext == ".opus" else SR, **kwargs)
    return path


def set_raw_genres(path: Path, kind: str, values: list[str]) -> None:
    """Give ``path`` the genres ``values`` as its format keeps several (ID3v2.3: joined by ``/``)."""
    import mutagen
    from mutagen.id3 import ID3, TCON

    if kind.startswith("mp3") or kind == "wav":
        f = mutagen.File(path)
        if f.tags is None:
            f.add_tags()
        version = 3 if kind == "mp3-v23" else 4
        f.tags.setall("TCON", [TCON(encoding=3, text=["/".join(values)] if version == 3 else values)])
        if kind == "wav":
            f.save()
        else:
            f.tags.save(path, v2_version=version)
            assert ID3(path).version[1] == version
        return
    f = mutagen.File(path)
    if f.tags is None:
        f.add_tags()
    f.tags["\xa9gen" if kind == "m4a" else "GENRE"] = values
    f.save()


def make_tagged(folder: Path, kind: str, genres: list[str] | None, seed: int = 0) -> Path:
    path = make_song(folder / f"song-{kind}{suffix(kind)}", seed=seed)
    if genres is not None:
        set_raw_genres(path, kind, genres)
    return path


def raw_tags(path: Path, kind: str) -> tuple[list | None, list | None]:
    """``(genre values, genrekit field)`` exactly as the format stores them."""
    import mutagen

    tags = mutagen.File(path).tags
    if tags is None:
        return None, None
    if kind.startswith("mp3") or kind == "wav":
        genre, field = tags.get("TCON"), tags.get("TXXX:GENREKIT")
        return (list(genre.text) if genre else None), (list(field.text) if field else None)
    if kind == "m4a":
        field = tags.get("----:org.genrekit:GENREKIT")
        return tags.get("\xa9gen"), ([bytes(v).decode() for v in field] if field else None)
    return tags.get("GENRE") or None, tags.get("GENREKIT") or None


def id3_version(path: Path) -> int:
    from mutagen.id3 import ID3

    return ID3(path).version[1]


# --- the audio alone ---------------------------------------------------------------------------
def audio_frames(path: Path) -> bytes:
    """The file's audio bytes without any tag block (by container: MP3, FLAC, Ogg, MP4, WAV)."""
    data = Path(path).read_bytes()
    ext = Path(path).suffix
    if ext == ".mp3":
        if data[:3] == b"ID3":
            size = _syncsafe(data[6:10]) + 10 + (10 if data[5] & 0x10 else 0)
            data = data[size:]
        if data[-128:-125] == b"TAG":
            data = data[:-128]
        return data
    if ext == ".flac":
        assert data[:4] == b"fLaC"
        pos = 4
        while True:
            header = data[pos]
            length = int.from_bytes(data[pos + 1:pos + 4], "big")
            if header & 0x7F == 0:  # STREAMINFO: part of the stream
                streaminfo = data[pos + 4:pos + 4 + length]
            pos += 4 + length
            if header & 0x80:
                return streaminfo + data[pos:]
    if ext == ".wav":
        return _chunks(data[12:], little=True)[b"data"]
    if ext in (".ogg", ".opus"):
        import io

        from mutagen.ogg import OggPage

        fh, pages = io.BytesIO(data), []
        while fh.tell() < len(data):
            pages.append(OggPage(fh))
        packets = OggPage.to_packets(pages, strict=False)
        return b"".join(packets[:1] + packets[2:])  # every packet but the comment header
    if ext == ".m4a":
        return _atoms(data)[b"mdat"]
    raise ValueError(ext)


def _syncsafe(b: bytes) -> int:
    return (b[0] << 21) | (b[1] << 14) | (b[2] << 7) | b[3]


def _chunks(data: bytes, little: bool) -> dict:
    out, pos = {}, 0
    while pos + 8 <= len(data):
        cid, size = data[pos:pos + 4], struct.unpack("<I" if little else ">I", data[pos + 4:pos + 8])[0]
        out[cid] = data[pos + 8:pos + 8 + size]
        pos += 8 + size + (size & 1)
    return out


def _atoms(data: bytes) -> dict:
    out, pos = {}, 0
    while pos + 8 <= len(data):
        size, name = struct.unpack(">I", data[pos:pos + 4])[0], data[pos + 4:pos + 8]
        header = 8
        if size == 1:
            size, header = struct.unpack(">Q", data[pos + 8:pos + 16])[0], 16
        elif size == 0:
            size = len(data) - pos
        out[name] = data[pos + header:pos + size]
        pos += size
    return out
