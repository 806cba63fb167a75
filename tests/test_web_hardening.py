"""Issue 30's server hardening: no HTTP 500 and no traceback from a broken model under ``--runs`` or a
hand-made ``--library``, similar songs named without server paths, no upload left by a killed server.

Real ``genrekit serve`` processes on 127.0.0.1 (:mod:`servers`), real uploads of synthetic songs,
real results files written by hand (what a user may be handed), a real ONNX graph that fails
inside onnxruntime (:func:`fuzz_corpus.huge_tensor_bundle`).
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import numpy as np
import pytest

from fuzz_corpus import huge_tensor_bundle
from genrekit.models.registry import DEFAULT_MODEL
from processes import sigkill_when
from servers import Server
from synthetic_songs import write_song

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def key() -> str:
    """The default model's key: what a library's rows must carry to be its songs."""
    from genrekit.library.run import model_key
    from genrekit.models.registry import load_model

    return model_key(load_model(None))


def _row(key: str, path, dim: int = 200, seed: int = 0) -> dict:
    vector = np.random.default_rng(seed).standard_normal(dim).round(6).tolist()
    return {"content_hash": f"hash-{path}-{seed}", "model_key": key, "path": path, "label": "jazz",
            "embedding": vector}


def _write_jsonl(path: Path, rows: list[dict]) -> Path:
    """Write ``rows`` as a results file, replacing ``path`` at once (as a user's `mv` would)."""
    tmp = path.with_suffix(".new")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in rows))
    os.replace(tmp, path)
    return path


@pytest.fixture(scope="module")
def hostile(tmp_path_factory, key):
    """A server with a --runs bundle whose graph fails at run time and a --library of songs in two
    folders far apart, with rows whose path is a number, whose embedding is 3 numbers long, or text."""
    root = tmp_path_factory.mktemp("web-hardening")
    huge_tensor_bundle(DEFAULT_MODEL, root / "runs" / "huge")
    library = _write_jsonl(root / "library.jsonl", [
        _row(key, "/srv/a/jazz/one.wav", seed=1),
        _row(key, "/home/b/rock/two.wav", seed=2),
        _row(key, 12345, seed=3),                       # path a number
        _row(key, "/srv/a/jazz/short.wav", dim=3),      # another length under the same model key
        {**_row(key, "/srv/a/jazz/text.wav"), "embedding": "not a list"},
    ])
    song = write_song(root / "song.wav", "classical", seconds=4.0).read_bytes()
    srv = Server(DEFAULT_MODEL, root, "--runs", str(root / "runs"), "--library", str(library), "--workers", "1")
    yield srv, library, song
    srv.stop()


def test_a_graph_that_fails_inside_onnxruntime_is_a_422_naming_the_model(hostile):
    srv, _, song = hostile
    status, out = srv.upload("song.wav", song, query="?model=huge")
    assert status == 422, out
    assert "huge" in out["error"] and "ConstantOfShape" in out["error"] and "broken" in out["error"], out
    assert str(srv.tmp) not in out["error"], out  # no server path
    assert srv.upload("song.wav", song)[0] == 200  # the default model still serves


def test_classify_and_evaluate_name_a_graph_that_fails_inside_onnxruntime(hostile, tmp_path, capsys):
    from genrekit.cli import main

    srv, _, song = hostile
    bundle = srv.tmp / "runs" / "huge"
    (tmp_path / "classical").mkdir()
    (tmp_path / "jazz").mkdir()
    (tmp_path / "classical" / "a.wav").write_bytes(song)
    (tmp_path / "jazz" / "b.wav").write_bytes(song)
    main(["classify", str(tmp_path / "classical" / "a.wav"), "--model", str(bundle)])
    err = capsys.readouterr().err
    assert "ConstantOfShape" in err and "the bundle is broken" in err and "[ONNXRuntimeError]" not in err, err
    code = main(["evaluate", "--model", str(bundle), "--data", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and "ConstantOfShape" in err and str(bundle) in err, err


def test_library_rows_that_are_malformed_are_skipped_with_a_warning(hostile):
    srv, _, song = hostile
    status, out = srv.upload("song.wav", song)
    assert status == 200, out
    # The rows skipped are named on stderr at start: test_the_start_warns_about_the_skipped_library_rows.
    assert {s["path"] for s in out["similar"]} == {"jazz/one.wav", "rock/two.wav"}, out["similar"]


def test_similar_songs_are_named_without_server_paths(hostile, key):
    """Folders far apart: folder and file name; one deep common folder: the path below it."""
    srv, library, song = hostile
    assert all(not s["path"].startswith(("/", "srv", "home")) for s in srv.upload("song.wav", song)[1]["similar"])
    _write_jsonl(library, [_row(key, "/srv/music/jazz/one.wav", seed=1),
                           _row(key, "/srv/music/live/2001/two.wav", seed=2)])
    status, out = srv.upload("song.wav", song)
    assert status == 200 and {s["path"] for s in out["similar"]} == {"jazz/one.wav", "live/2001/two.wav"}, out


def test_a_library_replaced_while_serving_never_gives_500(hostile, key):
    srv, library, song = hostile
    _write_jsonl(library, [_row(key, "/srv/music/jazz/one.wav", seed=1)])
    assert [s["path"] for s in srv.upload("song.wav", song)[1]["similar"]] == ["one.wav"]
    # Every song of another length under the same model key: no similar songs, not a failed upload.
    _write_jsonl(library, [_row(key, "/srv/music/jazz/three.wav", dim=3), _row(key, "/srv/music/x/y.wav", dim=3)])
    status, out = srv.upload("song.wav", song)
    assert status == 200 and not out["similar"], out
    # A file that is no results file at all: the copy loaded before is kept.
    _write_jsonl(library, [_row(key, "/srv/music/jazz/four.wav", seed=4)])
    assert [s["path"] for s in srv.upload("song.wav", song)[1]["similar"]] == ["four.wav"]
    library.write_text("this is not a results file\n")
    status, out = srv.upload("song.wav", song)
    assert status == 200 and [s["path"] for s in out["similar"]] == ["four.wav"], out


def test_the_start_warns_about_the_skipped_library_rows(hostile):
    srv, _, _ = hostile
    srv.stop()
    err = srv.proc.stderr.read()
    assert "Traceback" not in err, err
    warning = next(line for line in err.splitlines() if "skipped" in line)
    assert warning.startswith("genrekit serve: warning:") and "3 malformed row(s)" in warning, err
    # the number-as-path row is named by where it is (the read-only store checks rows first)
    assert "line 3: path" in warning and "embedding of 3 numbers" in warning, warning


def test_a_killed_servers_upload_is_removed_by_the_next_start_whatever_its_tmpdir(tmp_path):
    """SIGKILL mid-upload leaves the upload; the next start (another TMPDIR, as a service manager or a
    container may give) removes it, even when the dead server's pid now names a live process."""
    state = tmp_path / "state"
    for reused_pid in (False, True):
        (tmp_path / f"tmp-a-{reused_pid}").mkdir()
        first = Server(DEFAULT_MODEL, tmp_path / f"tmp-a-{reused_pid}", "--workers", "1", state=state)
        sock = socket.create_connection(("127.0.0.1", first.port), timeout=60)
        boundary = "genrekit-killed"
        sock.sendall((f"POST /api/classify HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {2**20}\r\n"
                      f"Content-Type: multipart/form-data; boundary={boundary}\r\n\r\n--{boundary}\r\n"
                      f"Content-Disposition: form-data; name=\"file\"; filename=\"s.wav\"\r\n\r\n").encode()
                     + b"\0" * 8192)
        places = (state, tmp_path / f"tmp-a-{reused_pid}")  # wherever the server keeps it
        uploads = lambda: [p for place in places for p in place.rglob("upload-*")]  # noqa: E731
        sigkill_when(first.proc, lambda: bool(uploads()), "the upload file to appear")
        sock.close()
        (left,) = uploads()
        if reused_pid:  # the dead server's pid now belongs to a running process (this one)
            folder = left.parent
            left = folder.with_name(f"genrekit-web-{os.getpid()}-reused") / left.name
            folder.rename(left.parent)
            folder.with_name(folder.name + ".lock").rename(left.parent.with_name(left.parent.name + ".lock"))
        (tmp_path / f"tmp-b-{reused_pid}").mkdir()
        second = Server(DEFAULT_MODEL, tmp_path / f"tmp-b-{reused_pid}", "--workers", "1", state=state)
        try:
            assert not left.exists(), f"{left} outlived its killed server after another start"
            assert len(second.upload_dirs()) == 1
        finally:
            second.stop()
        assert second.upload_dirs() == []
        assert sorted(p.name for p in (state / "uploads").iterdir()) == []  # no lock file left either
