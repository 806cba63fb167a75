"""Load on ``genrekit serve``: concurrent clients uploading a 30-s clip, on loopback only.

    python bench/bench_web.py [--clients 8] [--requests 30] [--model BUNDLE] [--workers N]
                              [--clip WAV] [--no-spectrogram]

1. Starts ``python -m genrekit serve`` on a free 127.0.0.1 port (a subprocess, access log
   off) and waits for ``/api/health``.
2. Warms it up with the same concurrency (``--clients`` threads x 2 uploads), so that the
   allocator's pools and the image cache reach their working size, then reads the server's
   resident memory (``VmRSS`` in ``/proc/<pid>/status``): "before".
3. ``--clients`` threads, each with one keep-alive ``http.client`` connection, upload the
   clip ``--requests`` times each (``POST /api/classify``, multipart, with the spectrogram
   unless ``--no-spectrogram``): requests per second, p50/p95/max latency, errors (any
   status but 200, or a failed connection; must be 0).
4. Server memory "after", its peak (``VmHWM``) and samples at each quarter of the run;
   growth beyond noise would mean a leak (uploads, images and results are all bounded),
   a plateau is the allocator keeping freed memory for reuse.

Reference, measured in the same run: the same clip classified in this process with
``load_model().classify_file`` plus the spectrogram PNG, one after another (no HTTP, no
concurrency). The ratio served/in-process shows what HTTP, uploads and concurrency cost
(or gain, with more than one core). A fixed, bounded loop: clients x requests uploads.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SHARED = Path(os.environ.get("GENREKIT_SHARED_DATA", REPO / "../shared/data"))
DEFAULT_CLIP = SHARED / "gtzan" / "genres" / "jazz" / "jazz.00000.wav"


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} for pid {pid}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def multipart(name: str, data: bytes) -> tuple[str, bytes]:
    boundary = "bench-" + secrets.token_hex(8)
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n"
            "Content-Type: audio/wav\r\n\r\n").encode()
    return boundary, head + data + f"\r\n--{boundary}--\r\n".encode()


def start_server(args, port: int) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "genrekit", "serve", "--port", str(port), "--log-level", "warning"]
    if args.model:
        cmd += ["--model", str(args.model)]
    if args.workers:
        cmd += ["--workers", str(args.workers)]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while True:
        if proc.poll() is not None:
            sys.exit(f"server exited with {proc.returncode}: {proc.stderr.read()}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/api/health")
            if conn.getresponse().status == 200:
                conn.close()
                return proc
        except OSError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            sys.exit("server did not answer /api/health within 120 s")
        time.sleep(0.2)


def client(port: int, path: str, body: bytes, headers: dict, n: int, latencies: list, errors: list) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    for _ in range(n):
        t0 = time.perf_counter()
        try:
            conn.request("POST", path, body=body, headers=headers)
            resp = conn.getresponse()
            payload = resp.read()
            if resp.status != 200:
                errors.append(f"{resp.status}: {payload[:200]!r}")
            else:
                json.loads(payload)
                latencies.append(time.perf_counter() - t0)
        except (OSError, http.client.HTTPException, ValueError) as exc:
            errors.append(repr(exc))
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    conn.close()


def in_process_reference(clip: Path, model, repeat: int, spectrogram: bool) -> float:
    """Median seconds per clip: decode + classify (+ spectrogram PNG), in this process."""
    from genrekit.models.registry import load_model
    from genrekit.web.spectrogram import mel_spectrogram_png
    from genrekit.audio import decode as audio

    clf = load_model(model)
    times = []
    for _ in range(repeat + 1):
        t0 = time.perf_counter()
        y = audio.load(clip, sr=clf.sample_rate, min_samples=clf.min_samples)
        clf.classify_signal(y, timeline=True)
        if spectrogram:
            mel_spectrogram_png(y, clf.sample_rate)
        times.append(time.perf_counter() - t0)
    return statistics.median(times[1:])  # the first run pays for imports and caches


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--requests", type=int, default=30, help="uploads per client")
    ap.add_argument("--clip", type=Path, default=DEFAULT_CLIP, help="a ~30-s audio clip (default: a shared GTZAN clip)")
    ap.add_argument("--model", type=Path, help="model bundle (default: the bundled one)")
    ap.add_argument("--workers", type=int, help="server analysis workers (default: the server's)")
    ap.add_argument("--no-spectrogram", action="store_true", help="ask for JSON only (no PNG)")
    ap.add_argument("--ref-repeat", type=int, default=5)
    args = ap.parse_args()
    if not args.clip.is_file():
        sys.exit(f"clip not found: {args.clip} (set GENREKIT_SHARED_DATA or --clip)")

    data = args.clip.read_bytes()
    boundary, body = multipart(args.clip.name, data)
    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    path = "/api/classify" + ("?spectrogram=false" if args.no_spectrogram else "")
    port = free_port()
    print(f"bench_web: {args.clients} clients x {args.requests} uploads of {args.clip.name} "
          f"({len(data) / 1e6:.2f} MB), spectrogram {'off' if args.no_spectrogram else 'on'}, "
          f"{os.cpu_count()} CPUs", flush=True)

    proc = start_server(args, port)
    try:
        rss_start = rss_mb(proc.pid)
        warm_lat, warm_err = [], []
        warm = [threading.Thread(target=client, args=(port, path, body, headers, 2, warm_lat, warm_err))
                for _ in range(args.clients)]
        for t in warm:
            t.start()
        for t in warm:
            t.join()
        if warm_err:
            sys.exit(f"warm-up failed: {warm_err[0]}")
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/api/health")
        health = json.loads(conn.getresponse().read())
        conn.close()
        rss_before = rss_mb(proc.pid)

        latencies: list[float] = []
        errors: list[str] = []
        threads = [threading.Thread(target=client, args=(port, path, body, headers, args.requests, latencies, errors))
                   for _ in range(args.clients)]
        samples: list[tuple[float, float]] = []
        done = threading.Event()

        def sample_memory():
            while not done.wait(0.5):
                samples.append((time.perf_counter(), rss_mb(proc.pid)))

        monitor = threading.Thread(target=sample_memory)
        t0 = time.perf_counter()
        monitor.start()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - t0
        done.set()
        monitor.join()
        rss_after = rss_mb(proc.pid)
        rss_peak = rss_mb(proc.pid, "VmHWM")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()

    total = args.clients * args.requests
    ok = len(latencies)
    lat = sorted(latencies)
    q = statistics.quantiles(lat, n=100) if len(lat) >= 2 else lat * 99
    rps = ok / wall
    ref = in_process_reference(args.clip, args.model, args.ref_repeat, not args.no_spectrogram)

    print(f"server: model '{health['model']}', {health['workers']} analysis worker(s)")
    print(f"requests   {ok}/{total} ok, errors {len(errors)}" + (f" (first: {errors[0]})" if errors else ""))
    print(f"throughput {rps:.2f} requests/s over {wall:.1f} s")
    if lat:
        print(f"latency    p50 {q[49] * 1000:.0f} ms, p95 {q[94] * 1000:.0f} ms, max {lat[-1] * 1000:.0f} ms "
              f"(each request waits behind up to {args.clients - 1} others)")
    print(f"reference  in-process, one at a time: {ref * 1000:.0f} ms per clip = {1 / ref:.2f} clips/s; "
          f"served/in-process throughput ratio {rps * ref:.2f}x")
    growth = rss_after - rss_before
    quarters = [next((mb for t, mb in samples if t - t0 >= f * wall), rss_after) for f in (0.25, 0.5, 0.75)]
    print(f"memory     server RSS {rss_start:.0f} MB at start, {rss_before:.0f} MB after warm-up, "
          f"{rss_after:.0f} MB after the load ({growth:+.1f} MB), peak {rss_peak:.0f} MB; "
          f"at 1/4, 1/2, 3/4 of the run: {', '.join(f'{m:.0f}' for m in quarters)} MB")
    steady = rss_after - quarters[0]
    verdict = "OK" if not errors and steady < 25 else "FAIL"
    print(f"{verdict}: {len(errors)} errors; memory from 1/4 of the run to the end {steady:+.1f} MB "
          f"(limits: 0 errors, < 25 MB: a plateau, not a leak)")
    return 0 if verdict == "OK" else 1


if __name__ == "__main__":
    sys.exit(main())
