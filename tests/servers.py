"""Real servers on 127.0.0.1 for the tests: ``genrekit serve`` in a subprocess, or an app served in a thread.

:class:`Server` runs ``python -m genrekit serve`` on a free loopback port with ``TMPDIR``
pointing at a folder of its own (so a test can see that no upload is left on disk) and
``GENREKIT_WEB_STATS=1`` (``GET /api/_stats`` says how many body bytes it pulled off the
connection). :func:`serve_reports` serves the ``/reports`` router with uvicorn in a thread
of the test process.
"""

from __future__ import annotations

import http.client
import json
import os
import secrets
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- genrekit serve in a subprocess ---------------------------------------------------------------
class Server:
    """``python -m genrekit serve`` in a subprocess, on a free loopback port."""

    def __init__(self, bundle: Path, tmp: Path, *args: str, state: Path | None = None) -> None:
        self.port = free_port()
        self.tmp = tmp
        self.state = state or tmp  # GENREKIT_STATE: the upload folders are made under its uploads/
        env = dict(os.environ, TMPDIR=str(tmp), GENREKIT_STATE=str(self.state), GENREKIT_WEB_STATS="1")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "genrekit", "serve", "--port", str(self.port), "--model", str(bundle),
             "--log-level", "warning", *args],
            cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 180  # a hang guard: start-up loads the model
        while True:
            if self.proc.poll() is not None:
                pytest.fail(f"genrekit serve exited with {self.proc.returncode}: {self.proc.stderr.read()}")
            try:
                if self.get("/api/health", timeout=2)[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.proc.kill()
                pytest.fail("genrekit serve did not answer /api/health within 180 s")
            time.sleep(0.2)

    def request(self, method: str, path: str, body=None, headers=None, timeout: float = 120):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, dict(resp.getheaders()), resp.read()
        finally:
            conn.close()

    def get(self, path: str, timeout: float = 30):
        return self.request("GET", path, timeout=timeout)

    def json(self, path: str):
        status, _, body = self.get(path)
        assert status == 200, body
        return json.loads(body)

    def upload(self, name: str, data: bytes, field: str = "file", query: str = "", fields: dict | None = None):
        """POST ``data`` as multipart field ``field`` with file name ``name`` (``query``: e.g.
        ``"?model=NAME"``; ``fields``: other form fields, name to text): (status, parsed JSON)."""
        boundary, body = multipart(name, data, field, fields)
        status, headers, raw = self.request("POST", "/api/classify" + query, body,
                                            {"Content-Type": f"multipart/form-data; boundary={boundary}"})
        assert headers.get("content-type", "").startswith("application/json"), (status, raw[:200])
        return status, json.loads(raw)

    def upload_dirs(self) -> list[Path]:
        """The server's private upload folders (one while it runs, none after)."""
        return sorted(p for p in (self.state / "uploads").glob("genrekit-web-*") if p.is_dir())

    def leftovers(self) -> list[Path]:
        """Files in the server's upload folder (uploads must never stay).

        Only that folder: onnxruntime writes a ``.ses`` file of its own into TMPDIR.
        """
        dirs = self.upload_dirs()
        assert len(dirs) == 1, dirs
        return [p for p in dirs[0].rglob("*") if p.is_file() or p.is_symlink()]

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()



def multipart(name: str, data: bytes, field: str = "file", fields: dict | None = None) -> tuple[str, bytes]:
    """A multipart/form-data body with ``data`` as file ``name`` in ``field``, after the text ``fields``
    (name to value): (boundary, body)."""
    boundary = "genrekit-test-" + secrets.token_hex(8)
    head = "".join(f"--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n"
                   for k, v in (fields or {}).items())
    head += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{name}\"\r\n"
            f"Content-Type: application/octet-stream\r\n\r\n")
    return boundary, head.encode() + data + f"\r\n--{boundary}--\r\n".encode()




# --- an app in a thread of this process -----------------------------------------------------------
def http_get(port: int, path: str) -> tuple[int, dict, bytes]:
    """GET ``path`` from 127.0.0.1:``port``, sent as given (no client-side normalisation of "..")."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


class InProcessServer:
    """An app on 127.0.0.1 served by uvicorn in a thread of this process."""

    def __init__(self, app) -> None:
        import uvicorn

        self.port = free_port()
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 60  # a hang guard
        while not self.server.started:
            assert self.thread.is_alive(), "uvicorn stopped before it started serving"
            assert time.monotonic() < deadline, "uvicorn did not start serving within 60 s"
            time.sleep(0.05)

    def get(self, path: str) -> tuple[int, dict, bytes]:
        return http_get(self.port, path)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


def serve_reports(runs_dir: Path) -> InProcessServer:
    """The ``/reports`` pages of the runs below ``runs_dir``, served in this process."""
    from fastapi import FastAPI

    from genrekit.web.routes.reports import reports_router

    app = FastAPI()
    app.include_router(reports_router(runs_dir))
    return InProcessServer(app)
