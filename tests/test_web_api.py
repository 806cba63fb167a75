"""The JSON API against a real ``genrekit serve`` (uvicorn on 127.0.0.1) with real uploads.

Two servers per module: one with the default 50 MB limit, one started with
``--max-upload-mb 1`` for the oversized uploads. Each runs with ``TMPDIR`` pointing at a
folder of its own, so the tests can see that no upload is left on disk, and with
``GENREKIT_WEB_STATS=1``, which exposes how many body bytes the server pulled off the
connection (``GET /api/_stats``): the proof that an oversized upload was refused while
streaming rather than after reading it all.
"""

from __future__ import annotations

import http.client
import json
import select
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from genrekit.report.images import png_size
from servers import Server, multipart

REPO = Path(__file__).resolve().parents[1]
MB = 1024 * 1024

pytestmark = pytest.mark.slow


# --- servers -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def server(default_bundle, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("web-api-tmp")
    srv = Server(default_bundle, tmp)
    yield srv
    srv.stop()
    # At shutdown the server removes its private upload folder too.
    assert srv.upload_dirs() == [], "the upload folder outlived the server"


@pytest.fixture(scope="module")
def small_server(default_bundle, tmp_path_factory):
    srv = Server(default_bundle, tmp_path_factory.mktemp("web-api-small-tmp"), "--max-upload-mb", "1")
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def clip(shared_data) -> Path:
    return shared_data / "gtzan" / "genres" / "jazz" / "jazz.00000.wav"


# --- the good path ---------------------------------------------------------------------------------
def test_health_models_and_docs(server, default_bundle):
    health = server.json("/api/health")
    assert health["status"] == "ok" and health["max_upload_mb"] == 50
    assert {"wav", "flac", "ogg", "mp3"} <= set(health["formats"])

    models = server.json("/api/models")["models"]
    (model,) = [m for m in models if m["default"]]  # the shipped models are listed too
    meta = json.loads((default_bundle / "bundle.json").read_text())
    assert model["default"] and model["labels"] == meta["labels"]
    assert model["window"] == meta["window"] and model["hop"] == meta["hop"]
    assert model["card"]["figures"] == meta["card"]["figures"]
    assert "command" not in model["card"]  # may name server folders

    spec = server.json("/openapi.json")
    body = spec["paths"]["/api/classify"]["post"]["requestBody"]["content"]
    assert "file" in body["multipart/form-data"]["schema"]["properties"]
    assert server.get("/docs")[0] == 200

    status, headers, page = server.get("/")
    assert status == 200 and b'<input type="file" id="file"' in page
    assert "default-src 'self'" in headers["content-security-policy"]
    for asset in ("/static/app.js", "/static/app.css", "/static/favicon.svg"):
        assert server.get(asset)[0] == 200, asset


def test_classify_a_real_clip(server, clip, default_bundle):
    from genrekit.models.registry import load_model

    status, out = server.upload(clip.name, clip.read_bytes())
    assert status == 200, out
    labels = json.loads((default_bundle / "bundle.json").read_text())["labels"]
    probs = out["probabilities"]
    assert sorted(probs) == sorted(labels)
    assert sum(probs.values()) == pytest.approx(1.0, abs=1e-3)  # 4-decimal outputs
    assert out["label"] in labels and out["label"] == max(probs, key=probs.get)
    assert list(probs)[0] == out["label"] and "ranking" not in out  # probabilities are the ranking
    names = {"blues": "Blues", "classical": "Classical", "country": "Country", "disco": "Disco", "hiphop": "Hip-Hop",
             "jazz": "Jazz", "metal": "Metal", "pop": "Pop", "reggae": "Reggae", "rock": "Rock"}
    assert out["name"] == names.get(out["label"], out["label"])  # the display name beside the label
    assert list(probs.values()) == sorted(probs.values(), reverse=True)
    assert out["filename"] == clip.name
    assert out["duration"] == pytest.approx(30.0, abs=0.2)

    # The timeline covers the song, window after window.
    timeline = out["timeline"]
    assert len(timeline) >= out["windows"] >= 1  # backbone models draw their timeline finer than their windows
    assert timeline[0]["start"] == 0
    assert timeline[-1]["end"] == pytest.approx(out["duration"], abs=0.01)
    assert all(b["start"] <= a["end"] for a, b in zip(timeline, timeline[1:]))
    for window in timeline:
        assert sum(window["probabilities"].values()) == pytest.approx(1.0, abs=1e-3)

    # The same numbers as classifying the file in-process with its timeline (the server always draws one,
    # and a timeline is read from every second of the song: the dense patch plan).
    local = load_model(default_bundle).classify_file(clip, timeline=True)
    assert np.allclose([probs[k] for k in labels], [local.probabilities[k] for k in labels], atol=1e-4)
    assert out["notes"] == local.notes

    # The spectrogram image is fetchable, a PNG of the stated size with mel-spaced ticks.
    spec = out["spectrogram"]
    status, headers, png = server.get(spec["url"])
    assert status == 200 and headers["content-type"] == "image/png"
    assert png_size(png) == (spec["width"], spec["height"])
    sr = load_model(default_bundle).sample_rate  # the image is drawn at the model's rate
    assert spec["height"] == spec["n_mels"] == 128
    assert spec["width"] == pytest.approx(out["duration"] * sr / 512, abs=2)  # one column per 512-sample hop
    assert spec["duration"] == pytest.approx(out["duration"])
    assert spec["fmin"] == 0 and spec["fmax"] == sr / 2
    positions = [t["position"] for t in spec["freq_ticks"]]
    assert positions == sorted(positions) and 0 <= positions[0] and positions[-1] <= 1
    tick = {t["hz"]: t["position"] for t in spec["freq_ticks"]}
    assert tick[1000.0] < 0.5 < tick[4000.0]  # mel scale: 1 kHz sits low, far from 1000/11025
    assert server.get("/api/spectrogram/nope.png")[0] == 404
    assert server.leftovers() == []


# --- bad uploads -------------------------------------------------------------------------------
def test_bad_uploads_are_refused_with_a_reason(server, clip):
    status, out = server.upload("empty.wav", b"")
    assert status == 400 and out["error"] == "empty.wav: empty upload (0 bytes)"

    status, out = server.upload("notes.mp3", b"these are my notes, not a song\n" * 50)
    assert status == 422 and out["error"].startswith("notes.mp3: not an audio file")
    assert "genrekit-web" not in out["error"] and str(server.tmp) not in out["error"]

    truncated = clip.read_bytes()[:200_000]
    status, out = server.upload("cut.wav", truncated)
    assert status == 422 and out["error"].startswith("cut.wav: truncated")

    # The client's file name is text, never a path: nothing is written next to it.
    status, out = server.upload("../../../evil/passwd.wav", b"RIFF....WAVEjunk" * 10)
    assert status == 422 and out["error"].startswith("passwd.wav: ")
    assert not (server.tmp.parent / "evil").exists()

    status, out = server.upload("song.wav", clip.read_bytes()[:100], field="audio")
    assert status == 400 and "field 'file'" in out["error"]

    status, _, raw = server.request("POST", "/api/classify", b"x=1", {"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 415 and "multipart/form-data" in json.loads(raw)["error"]

    status, _, raw = server.request("POST", "/api/classify?model=nope", b"", {"Content-Type": "multipart/form-data; boundary=x"})
    assert status == 404 and "unknown model" in json.loads(raw)["error"]

    status, _, raw = server.get("/api/no-such-thing")
    assert status == 404 and "error" in json.loads(raw)

    # A client that goes away half-way through its upload leaves nothing behind either.
    boundary, body = multipart(clip.name, clip.read_bytes())
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(_request_head(server.port, boundary, f"Content-Length: {len(body)}\r\n") + body[:300_000])
        deadline = time.monotonic() + 60  # hang guards, here and below
        while not server.leftovers() and time.monotonic() < deadline:
            time.sleep(0.02)  # until the server has started writing the upload
        assert server.leftovers(), "the partial upload never reached the server's temp folder"
    deadline = time.monotonic() + 60
    while server.leftovers() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.leftovers() == [], "the partial upload was still on disk 60 s after its client went"


# --- oversized uploads ------------------------------------------------------------------------------
def _raw_upload(port: int, head: bytes, chunks) -> tuple[int, dict, bool]:
    """Send ``head`` then ``chunks``, stopping as soon as the server answers.

    Returns the status, the JSON body and whether the server closed the connection.
    """
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    try:
        sock.sendall(head)
        for chunk in chunks:
            if select.select([sock], [], [], 0)[0]:
                break  # the answer is in: stop sending
            try:
                sock.sendall(chunk)
            except (BrokenPipeError, ConnectionResetError):
                break
        data = b""
        closed = False
        while True:
            try:
                part = sock.recv(65536)
            except ConnectionResetError:
                closed = True
                break
            if not part:
                closed = True
                break
            data += part
            head_end = data.find(b"\r\n\r\n")
            if head_end >= 0:
                length = [int(line.split(b":")[1]) for line in data[:head_end].split(b"\r\n")
                          if line.lower().startswith(b"content-length:")]
                if length and len(data) >= head_end + 4 + length[0]:
                    # Whole response read; the server must now close (or reset) the connection.
                    sock.settimeout(5)
                    try:
                        closed = sock.recv(1) == b""
                    except ConnectionResetError:
                        closed = True
                    except socket.timeout:
                        closed = False
                    break
        head_end = data.find(b"\r\n\r\n")
        status = int(data.split(b" ", 2)[1])
        return status, json.loads(data[head_end + 4:]), closed
    finally:
        sock.close()


def _request_head(port: int, boundary: str, extra: str) -> bytes:
    return (f"POST /api/classify HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Content-Type: multipart/form-data; boundary={boundary}\r\n{extra}\r\n").encode()


def test_oversized_upload_is_refused_while_streaming(small_server):
    rng = np.random.default_rng(0)
    boundary, body = multipart("big.wav", rng.integers(0, 256, 3 * MB, dtype=np.uint8).tobytes())
    port = small_server.port

    # Chunked transfer, no Content-Length: refused once the bytes received pass the limit.
    def chunked(size=64 * 1024):
        for i in range(0, len(body), size):
            piece = body[i:i + size]
            yield f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
        yield b"0\r\n\r\n"

    status, out, closed = _raw_upload(port, _request_head(port, boundary, "Transfer-Encoding: chunked\r\n"), chunked())
    assert status == 413 and "limit is 1 MB" in out["error"]
    assert closed, "the server kept the connection open after refusing the upload"
    pulled = small_server.json("/api/_stats")["last"]["body_bytes"]
    print(f"chunked 3 MB upload, 1 MB limit: the server pulled {pulled} bytes before refusing")
    assert 1 * MB < pulled < 2 * MB, f"the server read {pulled} of {len(body)} bytes"

    # With a Content-Length over the limit: refused before reading any of the body.
    head = _request_head(port, boundary, f"Content-Length: {len(body)}\r\n")
    status, out, closed = _raw_upload(port, head, (body[i:i + 65536] for i in range(0, len(body), 65536)))
    assert status == 413 and closed
    assert small_server.json("/api/_stats")["last"]["body_bytes"] == 0

    # Just under the limit is fine as far as size goes (it is not audio: 422).
    status, out = small_server.upload("almost.wav", b"\0" * (MB - 1000))
    assert status == 422
    assert small_server.leftovers() == []
    assert small_server.json("/api/health")["status"] == "ok"


# --- concurrency ---------------------------------------------------------------------------------
def test_slow_upload_and_analysis_do_not_block_the_server(server, clip, shared_data, tmp_path):
    import soundfile as sf

    # A 2-minute medley (analysis takes a while) and a clip uploaded at a trickle.
    parts = [sf.read(shared_data / "gtzan" / "genres" / g / f"{g}.00002.wav", dtype="float32")[0]
             for g in ("metal", "classical", "reggae", "disco")]
    medley = tmp_path / "medley.wav"
    sf.write(medley, np.concatenate(parts), 22050, subtype="PCM_16")

    results: dict[str, object] = {}
    sending, sent = threading.Event(), threading.Event()  # the slow upload's body: begun, all sent

    def slow_upload():
        boundary, body = multipart(clip.name, clip.read_bytes())
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
        conn.putrequest("POST", "/api/classify")
        conn.putheader("Content-Type", f"multipart/form-data; boundary={boundary}")
        conn.putheader("Content-Length", str(len(body)))
        conn.endheaders()
        step = len(body) // 20
        sending.set()
        for i in range(0, len(body), step):  # about 2 s for the whole upload
            conn.send(body[i:i + step])
            time.sleep(0.1)
        sent.set()
        resp = conn.getresponse()
        results["slow"] = (resp.status, json.loads(resp.read()))
        conn.close()

    def analysis():
        results["medley"] = server.upload("medley.wav", medley.read_bytes())

    threads = [threading.Thread(target=slow_upload), threading.Thread(target=analysis)]
    for t in threads:
        t.start()
    calls = mid_body = busy_seen = 0
    while any(t.is_alive() for t in threads):
        asked_mid_body = sending.is_set() and not sent.is_set()
        health = server.json("/api/health")
        calls += 1
        mid_body += asked_mid_body and not sent.is_set()  # asked and answered while the body trickled in
        busy_seen = max(busy_seen, health["busy"])
        time.sleep(0.1)
    for t in threads:
        t.join()

    assert results["slow"][0] == 200 and results["slow"][1]["label"]
    status, out = results["medley"]
    assert status == 200 and out["windows"] >= 7
    print(f"/api/health during a slow upload and a 2-min analysis: {calls} calls, {mid_body} mid-upload")
    # Answered all along: while the slow body was still coming in, and while an analysis ran.
    # (How quickly is bench/reliability.py's measure, not an assertion on a shared machine.)
    assert mid_body >= 1, "/api/health was never answered while the slow upload was still sending"
    assert busy_seen >= 1, "/api/health was never answered while an analysis was running"
    assert server.leftovers() == []


# --- the image writer (no server needed) ------------------------------------------------------------
def _decode_indexed_png(data: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Pixels and palette of an 8-bit indexed PNG with filters 0/1, checking every chunk's CRC."""
    import struct
    import zlib

    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks = 8, {}
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + n]
        assert struct.unpack(">I", data[pos + 8 + n:pos + 12 + n])[0] == zlib.crc32(kind + body)
        chunks[kind] = chunks.get(kind, b"") + body
        pos += 12 + n
    width, height, depth, colour = struct.unpack(">IIBB", chunks[b"IHDR"][:10])
    assert (depth, colour) == (8, 3) and b"IEND" in chunks
    rows = np.frombuffer(zlib.decompress(chunks[b"IDAT"]), np.uint8).reshape(height, width + 1)
    assert set(rows[:, 0]) <= {0, 1}
    pixels = np.where(rows[:, :1] == 1, np.cumsum(rows[:, 1:], axis=1, dtype=np.uint64) % 256, rows[:, 1:])
    return pixels.astype(np.uint8), np.frombuffer(chunks[b"PLTE"], np.uint8).reshape(-1, 3)


def test_png_writer_and_colour_map():
    from genrekit.report.images import colormap, indexed_png
    from genrekit.web.spectrogram import mel_spectrogram_png

    rng = np.random.default_rng(1)
    pixels = rng.integers(0, 256, (37, 53), dtype=np.uint8)
    decoded, palette = _decode_indexed_png(indexed_png(pixels, colormap()))
    assert np.array_equal(decoded, pixels) and np.array_equal(palette, colormap())

    # Dark to light, monotonically in CIELAB lightness L*.
    c = colormap() / 255.0
    linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    Y = linear @ [0.2126, 0.7152, 0.0722]
    L = np.where(Y > (6 / 29) ** 3, 116 * np.cbrt(Y) - 16, Y * (29 / 3) ** 3)
    assert L[0] < 8 and L[-1] > 92 and np.all(np.diff(L) > -0.3)

    # A 440 Hz tone lights up the row where the axis says 440 Hz is.
    sr = 22050
    t = np.arange(3 * sr) / sr
    png, meta = mel_spectrogram_png((0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), sr)
    image, _ = _decode_indexed_png(png)
    brightest_row = int(np.argmax(image.astype(float).mean(axis=1)))
    position = 1 - (brightest_row + 0.5) / meta.height  # from the bottom
    from genrekit.report.images import mel_ticks

    (tick,) = mel_ticks(meta.fmin, meta.fmax, meta.n_mels, candidates=(440,))
    assert abs(position - tick["position"]) < 1.5 / meta.n_mels
