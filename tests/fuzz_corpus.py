"""Corrupted audio files made on the spot: bit flips, truncations and header edits of five formats,
and the second round's hostile inputs (:func:`make_hostile`).

Used by ``test_fuzz.py`` and ``bench/reliability.py``. Every variant is derived from a
short synthesised song by a seeded random generator, so a failing variant can be made
again from its name alone.
"""

from __future__ import annotations

import importlib.util
import os
import struct
from pathlib import Path

import numpy as np
import soundfile as sf

SR = 22050
FORMATS = ("wav", "flac", "mp3", "ogg", "m4a")


def song(seconds: float = 3.0, sr: int = 44100) -> np.ndarray:
    """A stereo phrase: two tones and a noise burst on every beat."""
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * sr)) / sr
    left = 0.3 * np.sin(2 * np.pi * 220 * t) + 0.1 * rng.standard_normal(len(t)) * (np.sin(2 * np.pi * 2 * t) > 0.8)
    right = 0.3 * np.sin(2 * np.pi * 330 * t)
    return np.c_[left, right].astype(np.float32)


def write_base(folder: Path, fmt: str, seconds: float = 3.0) -> Path | None:
    """The intact file of one format (``None`` for m4a without PyAV)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"base.{fmt}"
    x, sr = song(seconds), 44100
    if fmt == "m4a":
        if importlib.util.find_spec("av") is None:
            return None
        import av

        with av.open(str(path), "w") as out:
            stream = out.add_stream("aac", rate=sr, layout="stereo")
            for i in range(0, len(x), 1024):
                frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(x[i : i + 1024].T), format="fltp",
                                                   layout="stereo")
                frame.sample_rate = sr
                out.mux(stream.encode(frame))
            out.mux(stream.encode(None))
        return path
    kinds = {"wav": ("WAV", "PCM_16"), "flac": ("FLAC", "PCM_16"), "mp3": ("MP3", None), "ogg": ("OGG", "VORBIS")}
    sf.write(path, x, sr, format=kinds[fmt][0], subtype=kinds[fmt][1])
    return path


def variants(data: bytes, n: int, seed: int) -> list[tuple[str, bytes]]:
    """``n`` corrupted copies of ``data``: ``(kind, bytes)``, a third each of flips, cuts and header edits."""
    rng = np.random.default_rng(seed)
    out = []
    size = len(data)
    for i in range(n):
        kind = ("flip", "cut", "header")[i % 3]
        buf = bytearray(data)
        if kind == "flip":
            for pos in rng.integers(0, size, int(rng.choice([1, 4, 32, 256]))):
                buf[pos] ^= 1 << int(rng.integers(0, 8))
        elif kind == "cut":
            keep = int(size * rng.choice([0.001, 0.01, 0.1, 0.3, 0.5, 0.7, 0.9, 0.99])) + int(rng.integers(0, 64))
            buf = buf[: max(1, min(keep, size - 1))]
        else:
            # Overwrite a run of bytes in the first 256 (where headers live) with zeros, 0xFF or noise.
            start = int(rng.integers(0, min(256, size - 1)))
            length = int(rng.choice([1, 2, 4, 8, 16]))
            fill = rng.choice(["zero", "ones", "noise"])
            patch = (bytes(length) if fill == "zero" else b"\xff" * length if fill == "ones"
                     else rng.integers(0, 256, length, np.uint8).tobytes())
            buf[start : start + length] = patch[: max(0, size - start)]
        out.append((kind, bytes(buf)))
    return out


def make_corpus(folder: Path, per_format: int = 62, seconds: float = 3.0) -> list[Path]:
    """Write ``per_format`` variants of each available format into ``folder``; their paths."""
    paths = []
    for k, fmt in enumerate(FORMATS):
        base = write_base(folder / "base", fmt, seconds)
        if base is None:
            continue
        for i, (kind, data) in enumerate(variants(base.read_bytes(), per_format, seed=1000 + k)):
            path = folder / "corpus" / f"{fmt}-{i:03d}-{kind}.{fmt}"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            paths.append(path)
    return paths


# --- the second round (issue 20): inputs built differently ----------------------------------------
def _wav_header(tag: int, bits: int, rate: int = 22050, channels: int = 1, data: bytes = b"\x01\x02" * 4000) -> bytes:
    """A WAVE file with any format tag, bit depth and rate in its header."""
    block = channels * max(bits, 8) // 8
    fmt = struct.pack("<HHIIHH", tag, channels, rate, rate * block, block, bits)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


def make_hostile(folder: Path) -> list[Path]:
    """Files of the second attack: absurd rates, odd stream formats, containers that name other
    files, m4a with 1-byte atoms, names that are not UTF-8 or hold control characters.

    Every one must come out as a result or a named error (a sibling file named by a concat
    list is never read: the list is refused).
    """
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    out: list[Path] = []

    def put(name: str | bytes, data: bytes) -> None:
        raw = os.fsencode(folder) + b"/" + (name if isinstance(name, bytes) else os.fsencode(name))
        with open(raw, "wb") as fh:
            fh.write(data)
        out.append(Path(os.fsdecode(raw)))

    pcm = (0.1 * rng.standard_normal(4000) * 32767).astype("<i2").tobytes()
    for rate in (1, 8, 37, 999):
        put(f"rate-{rate}hz.wav", _wav_header(1, 16, rate=rate, data=pcm))
    aiff = folder / "aiff-src.aiff"
    sf.write(aiff, 0.1 * rng.standard_normal(8000).astype(np.float32), 8000, format="AIFF", subtype="PCM_16")
    data = bytearray(aiff.read_bytes())
    aiff.unlink()
    comm = data.find(b"COMM")
    data[comm + 16 : comm + 26] = bytes.fromhex("3FFE8000000000000000")  # 0.5 Hz, as an 80-bit float
    put("rate-half-hz.aiff", bytes(data))
    for tag, bits in ((3, 24), (3, 12), (3, 8), (1234, 16), (0xFFFE, 16), (1, 0), (3, 0)):
        put(f"format-{tag}-{bits}bit.wav", _wav_header(tag, bits))
    put("sibling-of-lists.wav", _wav_header(1, 16, data=pcm))
    put("concat.m4a", b"ffconcat version 1.0\nfile sibling-of-lists.wav\n")
    put("concat-many.mp3", b"ffconcat version 1.0\n" + b"file sibling-of-lists.wav\n" * 1000)
    put("playlist.m4a", b"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\nsibling-of-lists.wav\n#EXT-X-ENDLIST\n")
    base = write_base(folder.parent / f"{folder.name}-base", "m4a")
    if base is not None:
        for atom in (b"minf", b"stbl", b"stsd"):
            m4a = bytearray(base.read_bytes())
            at = m4a.find(atom) - 4
            m4a[at : at + 4] = struct.pack(">I", 1)
            put(f"atom-{atom.decode()}-1byte.m4a", bytes(m4a))
    put(b"caf\xe9-latin1.wav", _wav_header(1, 16, data=pcm))
    put("new\nline  failed: forged.wav", _wav_header(1, 16, data=pcm))
    put("\x1b[2Jescape.wav", b"not audio" * 50)
    return out


def nan_bundle(src: Path, folder: Path) -> Path:
    """``src`` with weights whose every output is NaN (0 / 0), checksum updated: a valid bundle that lies."""
    import hashlib
    import json
    import shutil

    from onnx import TensorProto, helper

    meta = json.loads((src / "bundle.json").read_text())
    n, k = len(meta["input"]["features"]), len(meta["labels"])
    zeros = helper.make_tensor("W", TensorProto.FLOAT, [n, k], [0.0] * (n * k))
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["features", "W"], ["Z"]), helper.make_node("Div", ["Z", "Z"], ["probabilities"])],
        "nan", [helper.make_tensor_value_info("features", TensorProto.FLOAT, [None, n])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [None, k])], [zeros])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    weights = model.SerializeToString()

    shutil.copytree(src, folder)
    meta["weights"]["sha256"] = hashlib.sha256(weights).hexdigest()
    (folder / "bundle.json").write_text(json.dumps(meta))
    (folder / "model.onnx").write_bytes(weights)
    return folder


def huge_tensor_bundle(src: Path, folder: Path) -> Path:
    """``src`` with a graph that asks, at run time, for a tensor of 10^12 floats (``ConstantOfShape``
    of a shape computed from the input, so that no constant folding meets it at load): onnxruntime
    fails inside ``run``. A valid bundle whose graph is broken; checksum updated."""
    import hashlib
    import json
    import shutil

    from onnx import TensorProto, helper

    meta = json.loads((src / "bundle.json").read_text())
    n, k = len(meta["input"]["features"]), len(meta["labels"])
    weights = [helper.make_tensor("W", TensorProto.FLOAT, [n, k], [0.01] * (n * k)),
               helper.make_tensor("big", TensorProto.INT64, [2], [10**6, 10**6]),
               helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0])]
    nodes = [
        helper.make_node("Shape", ["features"], ["shape"]),
        helper.make_node("Mul", ["shape", "big"], ["huge"]),  # (n_windows * 10^6, n * 10^6)
        helper.make_node("ConstantOfShape", ["huge"], ["filled"]),
        helper.make_node("ReduceSum", ["filled"], ["total"], keepdims=0),
        helper.make_node("Mul", ["total", "zero"], ["nothing"]),
        helper.make_node("MatMul", ["features", "W"], ["Z"]),
        helper.make_node("Add", ["Z", "nothing"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
    ]
    graph = helper.make_graph(nodes, "huge", [helper.make_tensor_value_info("features", TensorProto.FLOAT, [None, n])],
                              [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [None, k])], weights)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    data = model.SerializeToString()

    shutil.copytree(src, folder)
    meta["weights"]["sha256"] = hashlib.sha256(data).hexdigest()
    (folder / "bundle.json").write_text(json.dumps(meta))
    (folder / "model.onnx").write_bytes(data)
    return folder
