"""Reliability figures: memory against song length, processes left after kill -9, health under
load, the upload cap, and corrupted files. Loopback only, bounded loops, synthetic audio.

    python bench/reliability.py [--minutes 1,10,60] [--skip memory,kill,health,cap,fuzz,rates,idle,hostile]
                                [--only hostile] [--hostile journal,names,results,fifo,tags]

1. **Peak RSS** (``VmHWM`` of a fresh process) of ``classify`` with the default model and
   of ``features`` for every set (logmel, mfcc, gtzan57), for 1-, 10- and 60-minute FLACs.
   Reference, same run: the whole-song path (``audio.load`` then the whole-signal analysis)
   for the durations up to 10 minutes (an hour of it needs about 7 GB).
2. **kill -9**: ``classify --jobs 2`` and ``serve --workers 2`` are killed with SIGKILL while
   analysing; the processes they had started that are still alive 5 s later are counted.
3. **Health under load**: 8 clients keep uploading a 60-s song to ``serve --workers 4``
   while ``/api/health`` is polled every 20 ms: p50/p99/max latency. Reference, same run: the
   same server with analyses in threads (``WebSettings(processes=False)``), as before.
4. **Upload cap**: ``--max-uploads 8`` and 13 idle uploads: how many got 503 (with
   Retry-After), the temp files held, and those left 1 s after the clients went away.
5. **Fuzz**: the 310 corrupted files of ``tests/fuzz_corpus.py`` and the second round's 22
   hostile ones (``make_hostile``) through ``classify`` and ``POST /api/classify``: results,
   named errors, tracebacks, internal errors (a reason that is an exception's name), 500s.
6. **Absurd rates**: peak RSS of ``classify`` (default model, fresh process) of 4-KB WAVs whose
   headers claim 1, 8 and 37 Hz (33, 4 and 1 minutes of audio), against a normal 30-s clip
   at 44.1 kHz in the same run. Bar: no more than the normal clip.
7. **Idle connections**: ``/api/health`` answer time (p50/max of 20) while 2,000 connections
   to 127.0.0.1 are open and send nothing, against the same server with none open; and how
   many of the 2,000 the server has closed after its header deadline (``--header-timeout 5``).
8. **Hostile inputs** (issue 30; :mod:`hostile_cases`): hostile tag journals for ``tags undo`` and
   ``tags history`` (a genre that is a number, ``before`` missing or a list, ``after: null``, a
   ``path`` that is a number, null or a list, a 100,000-digit integer, 100,000-deep nesting,
   ``/dev/zero`` and a link to it, ``copies`` naming a victim file, an entry naming a file the run
   never wrote); hostile ``--names`` files (deep nesting, a huge integer, ``/dev/zero``, control
   characters, a 10-KB value) for ``playlists`` and ``serve``; hand-made results files (wrong types,
   3-byte embeddings, a deep timeline, a path that is a number, a ``.jsonl`` without its final
   newline, a foreign SQLite database) for ``playlists``, ``similar --library`` and
   ``serve --library``; FIFOs (a song in a library with ``--out``, the journal, ``--names``, the
   results); tag values with control characters and of 10 MB for ``classify --write-tags``. Each
   run in a sandbox under a 30-s timeout (a hang fails), with every sandbox file's bytes compared
   before and after: the tally by class and outcome, then each failure (class, input, command,
   outcome, its last line).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import soundfile as sf

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "tests"))
SR = 22050
ENV = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))


# --- helpers ------------------------------------------------------------------------------------
def song_flac(path: Path, minutes: float) -> Path:
    """A FLAC of a faint gliding tone with noise bursts, written a minute at a time."""
    rng = np.random.default_rng(0)
    t = np.arange(60 * SR) / SR
    with sf.SoundFile(path, "w", SR, 1, subtype="PCM_16") as f:
        for m in range(max(1, int(round(minutes)))):
            y = 0.1 * np.sin(2 * np.pi * (220 + 10 * m) * t) + 0.02 * rng.standard_normal(len(t)) * (
                np.sin(2 * np.pi * 2 * t) > 0.8)
            f.write(y.astype(np.float32))
    return path


_PEAK = """
import json, sys
from genrekit.audio import decode as audio
from genrekit.features.extract import compute_file
from genrekit.features.sets import feature_set
from genrekit.models.registry import load_model
what, path, how = sys.argv[1:4]
if what == "classify":
    clf = load_model()
    if how == "blockwise":
        clf.classify_file(path, timeline=True)
    else:
        clf.classify_signal(audio.load(path, sr=clf.sample_rate), timeline=True)
else:
    fs = feature_set(what)
    if how == "blockwise":
        compute_file(path, fs)
    else:
        fs.compute(audio.load(path, sr=fs.sample_rate))
# VmHWM, not ru_maxrss: the latter keeps the RSS of the process that forked us.
print(json.dumps(next(int(l.split()[1]) / 1024 for l in open('/proc/self/status') if l.startswith('VmHWM:'))))
"""


def peak_mb(what: str, path: Path, how: str) -> tuple[float, float]:
    t0 = time.perf_counter()
    run = subprocess.run([sys.executable, "-c", _PEAK, what, str(path), how], env=ENV, capture_output=True,
                         text=True, timeout=3600)
    if run.returncode:
        return float("nan"), time.perf_counter() - t0
    return json.loads(run.stdout.splitlines()[-1]), time.perf_counter() - t0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def descendants(pid: int) -> set[int]:
    from processes import children

    return children(pid)


def alive(pid: int) -> bool:
    from processes import alive as is_alive

    return is_alive(pid)


def serve(tmp: Path, *args: str, code: str | None = None) -> tuple[subprocess.Popen, int]:
    """``genrekit serve`` (or ``code`` run with the port) on a free port; waits for /api/health."""
    import http.client

    port = free_port()
    env = dict(ENV, TMPDIR=str(tmp), GENREKIT_STATE=str(tmp / "state"))  # upload folders: state/uploads
    cmd = ([sys.executable, "-c", code, str(port)] if code else
           [sys.executable, "-m", "genrekit", "serve", "--port", str(port), "--log-level", "warning", *args])
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/api/health")
            if conn.getresponse().status == 200:
                return proc, port
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("server did not start")


def upload(port: int, name: str, data: bytes, timeout: float = 600) -> int:
    import http.client

    from servers import multipart

    boundary, body = multipart(name, data)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("POST", "/api/classify?spectrogram=false", body,
                     {"Content-Type": f"multipart/form-data; boundary={boundary}"})
        resp = conn.getresponse()
        resp.read()
        return resp.status
    finally:
        conn.close()


# --- 1. memory ----------------------------------------------------------------------------------
def bench_memory(tmp: Path, minutes: list[float]) -> None:
    print("1. peak RSS (MB) by song length; reference: the whole-song path (load, then analyse)")
    print(f"   {'what':<9} {'minutes':>7} {'block-wise':>11} {'whole-song':>11} {'ratio':>6} {'time s':>7}")
    for m in minutes:
        path = song_flac(tmp / f"song-{m:g}min.flac", m)
        for what in ("classify", "logmel", "mfcc", "gtzan57"):
            ours, seconds = peak_mb(what, path, "blockwise")
            ref = peak_mb(what, path, "whole")[0] if m <= 10 else float("nan")
            ratio = ref / ours if ref == ref else float("nan")
            print(f"   {what:<9} {m:>7g} {ours:>11.0f} {ref:>11.0f} {ratio:>6.2f} {seconds:>7.1f}", flush=True)


# --- 2. kill -9 ---------------------------------------------------------------------------------
def bench_kill(tmp: Path) -> None:
    print("2. processes left 5 s after kill -9 of the parent")
    music = tmp / "kill-music"
    music.mkdir(exist_ok=True)
    for i in range(4):
        song_flac(music / f"s{i}.flac", 1)
    proc = subprocess.Popen([sys.executable, "-m", "genrekit", "classify", str(music), "--jobs", "2",
                             "--out", str(tmp / "kill.jsonl")], env=ENV, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    started = _wait_children(proc, 3)
    time.sleep(1.0)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    time.sleep(5)
    left = [p for p in started if alive(p)]
    print(f"   classify --jobs 2: {len(started)} child processes (workers + resource tracker), {len(left)} left")

    srv, port = serve(tmp, "--workers", "2")
    data = (music / "s0.flac").read_bytes()
    threading.Thread(target=lambda: _quiet(upload, port, "s.flac", data), daemon=True).start()
    started = _wait_children(srv, 2)
    time.sleep(1.0)
    os.kill(srv.pid, signal.SIGKILL)
    srv.wait()
    time.sleep(5)
    left = [p for p in started if alive(p)]
    print(f"   serve --workers 2:  {len(started)} child processes, {len(left)} left")


def _quiet(fn, *args):
    try:
        fn(*args)
    except OSError:
        pass


def _wait_children(proc, n: int, timeout: float = 120) -> set[int]:
    deadline = time.monotonic() + timeout
    found: set[int] = set()
    while time.monotonic() < deadline and proc.poll() is None:
        found = descendants(proc.pid)
        if len(found) >= n:
            break
        time.sleep(0.1)
    return found


# --- 3. health under load -----------------------------------------------------------------------
_THREADED = """
import sys, uvicorn
from genrekit.web.app import create_app
from genrekit.web.settings import WebSettings
app = create_app(WebSettings(workers=4, processes=False))
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)
"""


def bench_health(tmp: Path, clients: int = 8, seconds: float = 30.0) -> None:
    import http.client

    print(f"3. /api/health latency (ms) while {clients} clients upload a 60-s song, {seconds:g} s each")
    data = song_flac(tmp / "load.flac", 1).read_bytes()
    for label, kwargs in (("worker processes", {}), ("threads (before)", {"code": _THREADED})):
        srv, port = serve(tmp, "--workers", "4", **kwargs)
        try:
            upload(port, "warm.flac", data)  # workers started, model loaded
            stop = time.monotonic() + seconds
            done = []

            def client():
                while time.monotonic() < stop:
                    done.append(upload(port, "load.flac", data))

            threads = [threading.Thread(target=client) for _ in range(clients)]
            for t in threads:
                t.start()
            latencies = []
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            while time.monotonic() < stop:
                t0 = time.perf_counter()
                conn.request("GET", "/api/health")
                conn.getresponse().read()
                latencies.append((time.perf_counter() - t0) * 1000)
                time.sleep(0.02)
            for t in threads:
                t.join()
            q = np.percentile(latencies, [50, 99])
            print(f"   {label:<17} p50 {q[0]:7.1f}  p99 {q[1]:7.1f}  max {max(latencies):7.1f}  "
                  f"({len(latencies)} polls, {len(done)} analyses, statuses {sorted(set(done))})", flush=True)
        finally:
            srv.terminate()
            srv.wait(timeout=30)


# --- 4. upload cap ------------------------------------------------------------------------------
def bench_cap(tmp: Path, cap: int = 8, clients: int = 13) -> None:
    from test_web_limits import open_upload, response_of

    print(f"4. upload cap: --max-uploads {cap}, {clients} idle uploads")
    srv, port = serve(tmp, "--max-uploads", str(cap), "--body-timeout", "20")
    try:
        socks = [open_upload(port) for _ in range(cap)]
        time.sleep(0.5)
        refused = []
        for _ in range(clients - cap):
            s = open_upload(port)
            status, headers, _ = response_of(s)
            refused.append((status, headers.get("retry-after")))
            s.close()
        folder = next(p for p in (tmp / "state" / "uploads").glob(f"genrekit-web-{srv.pid}-*") if p.is_dir())
        held = len(list(folder.iterdir()))
        for s in socks:
            s.close()
        time.sleep(1.0)
        left = len(list(folder.iterdir()))
        print(f"   {len(refused)} refused with {sorted(set(refused))}; temp files held {held}, "
              f"left 1 s after the clients went away {left}")
    finally:
        srv.terminate()
        srv.wait(timeout=30)


# --- 5. fuzz ------------------------------------------------------------------------------------
def bench_fuzz(tmp: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    import re

    from fuzz_corpus import make_corpus, make_hostile

    paths = make_corpus(tmp / "fuzz")
    paths += make_hostile(paths[0].parent)
    run = subprocess.run([sys.executable, "-m", "genrekit", "classify", str(paths[0].parent), "--format", "json",
                          "--jobs", "2"], env=ENV, capture_output=True, text=True, timeout=1800)
    results = json.loads(run.stdout)
    errors = sum(r["error"] is not None for r in results)
    internal = re.compile(r"^[A-Za-z_.]*(Error|Exception|Warning)\b")
    n_internal = sum(bool(r["error"] and internal.match(r["error"])) for r in results)
    print(f"5. fuzz: {len(paths)} corrupted and hostile files")
    print(f"   classify: {len(results) - errors} classified, {errors} named errors, "
          f"{run.stderr.count('Traceback')} tracebacks, {n_internal} internal errors, exit {run.returncode}")
    srv, port = serve(tmp)
    try:
        def send(item):
            i, p = item
            name = p.name if p.name.isprintable() and p.name.isascii() else f"renamed-{i}{p.suffix}"
            return upload(port, name, p.read_bytes())

        with ThreadPoolExecutor(4) as pool:
            statuses = list(pool.map(send, enumerate(paths)))
    finally:
        srv.terminate()
        srv.wait(timeout=30)
    counts = {s: statuses.count(s) for s in sorted(set(statuses))}
    print(f"   POST /api/classify: statuses {counts}, 500s: {counts.get(500, 0)}")


# --- 6. absurd rates ----------------------------------------------------------------------------
_RATE_PEAK = """
import json, sys
from genrekit.audio.decode import AudioError
from genrekit.models.registry import load_model
outcome = "classified"
try:
    load_model().classify_file(sys.argv[1])
except AudioError as exc:
    outcome = "refused: " + exc.problem
peak = next(int(l.split()[1]) / 1024 for l in open('/proc/self/status') if l.startswith('VmHWM:'))
print(json.dumps([peak, outcome]))
"""


def bench_rates(tmp: Path) -> None:
    from fuzz_corpus import _wav_header

    rng = np.random.default_rng(0)
    normal = tmp / "normal-30s.wav"
    sf.write(normal, 0.1 * rng.standard_normal((30 * 44100, 2)).astype(np.float32), 44100, subtype="PCM_16")
    pcm = (0.1 * rng.standard_normal(2000) * 32767).astype("<i2").tobytes()
    files = [("normal 30 s, 44.1 kHz", normal)]
    for rate in (1, 8, 37):
        path = tmp / f"rate-{rate}.wav"
        path.write_bytes(_wav_header(1, 16, rate=rate, data=pcm))
        files.append((f"{rate}-Hz header, {len(pcm) // 2 / rate / 60:.1f} min", path))
    print("6. peak RSS (MB) of classify, fresh process: absurd rates against a normal 30-s clip")
    base = None
    for what, path in files:
        run = subprocess.run([sys.executable, "-c", _RATE_PEAK, str(path)], env=ENV, capture_output=True,
                             text=True, timeout=1800)
        peak, outcome = json.loads(run.stdout.splitlines()[-1]) if run.returncode == 0 else (float("nan"), run.stderr[-200:])
        base = base or peak
        print(f"   {what:<28} {peak:7.1f} MB  ratio {peak / base:5.2f}  ({outcome[:70]})")


# --- 7. idle connections -----------------------------------------------------------------------
def _health_ms(port: int, n: int = 20) -> list[float]:
    import http.client

    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            conn.request("GET", "/api/health")
            conn.getresponse().read()
        finally:
            conn.close()
        times.append(1000 * (time.perf_counter() - t0))
        time.sleep(0.05)
    return times


def bench_idle(tmp: Path, idle: int = 2000) -> None:
    import resource

    from synthetic_songs import build_bundle

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 4 * idle)), hard))
    bundle = build_bundle(tmp / "bundle")
    srv, port = serve(tmp, "--model", str(bundle), "--header-timeout", "5", "--workers", "1")
    socks = []
    try:
        quiet = _health_ms(port)
        for _ in range(idle):
            socks.append(socket.create_connection(("127.0.0.1", port), timeout=10))
        time.sleep(0.5)
        loaded = _health_ms(port)
        time.sleep(6)  # past the header deadline
        closed = 0
        for s in socks:
            s.setblocking(False)
            try:
                closed += s.recv(1) == b""
            except BlockingIOError:
                pass
            except OSError:
                closed += 1
    finally:
        for s in socks:
            s.close()
        srv.terminate()
        srv.wait(timeout=30)
    q50, l50 = statistics.median(quiet), statistics.median(loaded)
    print(f"7. /api/health (ms, 20 requests) with {idle} idle connections open: p50 {l50:.1f}, max {max(loaded):.1f}; "
          f"with none: p50 {q50:.1f}, max {max(quiet):.1f}; ratio of medians {l50 / q50:.2f}")
    print(f"   idle connections closed by the server 6 s later (--header-timeout 5): {closed} of {idle}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", default="1,10,60", help="song lengths for the memory figures")
    parser.add_argument("--skip", default="", help="comma list of memory,kill,health,cap,fuzz,rates,idle,hostile")
    parser.add_argument("--only", default="", help="comma list of the sections to run (default: all but --skip)")
    parser.add_argument("--hostile", default="", help="section 8's classes: journal,names,results,fifo,tags (default all)")
    args = parser.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    only = set(filter(None, args.only.split(",")))
    if only:
        skip |= {"memory", "kill", "health", "cap", "fuzz", "rates", "idle", "hostile"} - only
    with tempfile.TemporaryDirectory(prefix="genrekit-reliability-") as tmp:
        tmp = Path(tmp)
        if "memory" not in skip:
            bench_memory(tmp, [float(m) for m in args.minutes.split(",")])
        if "kill" not in skip:
            bench_kill(tmp)
        if "health" not in skip:
            bench_health(tmp)
        if "cap" not in skip:
            bench_cap(tmp)
        if "fuzz" not in skip:
            bench_fuzz(tmp)
        if "rates" not in skip:
            bench_rates(tmp)
        if "idle" not in skip:
            bench_idle(tmp)
        if "hostile" not in skip:
            from hostile_cases import report, run_cases

            report(run_cases(tmp, set(filter(None, args.hostile.split(","))) or None))


if __name__ == "__main__":
    main()
