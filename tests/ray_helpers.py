"""A real Ray for the engine tests: a local instance in this process, or a cluster of its own.

The cluster is ``ray start --head --block`` run as a subprocess in its own session, on
127.0.0.1, with every port it opens chosen free (two test runs on one machine do not
meet) and its own temp folder; it is stopped through that process (SIGTERM, then the
whole process group), and :meth:`RayCluster.stop` checks that no process of it is left.
Nothing reaches the network: usage statistics are off, and token authentication (on
by default in recent Ray when ``~/.ray/auth_token`` exists) is off for this private
cluster.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent

#: Environment of everything Ray in the tests: this checkout (and the tests, whose
#: worker functions Ray workers import) on the path, no statistics, no token.
RAY_ENV = {
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_AUTH_MODE": "disabled",
    "RAY_DISABLE_DOCKER_CPU_WARNING": "1",
}


def ray_or_skip():
    return pytest.importorskip("ray", reason="Ray is not installed (pip install 'genrekit[ray]')")


def ray_env() -> dict:
    path = os.pathsep.join(filter(None, [str(REPO), str(TESTS), os.environ.get("PYTHONPATH")]))
    return dict(os.environ, PYTHONPATH=path, **RAY_ENV)


def free_ports(n: int) -> list[int]:
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def short_temp_dir() -> str:
    # Ray puts unix sockets under its temp folder: keep the path short (sun_path is 108 bytes).
    return tempfile.mkdtemp(prefix="gkray-", dir="/tmp")


def processes_mentioning(text: str) -> list[tuple[int, str]]:
    """``(pid, command line)`` of the processes whose command line contains ``text``."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            cmdline = Path("/proc", entry, "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline:
            found.append((int(entry), cmdline.strip()))
    return found


def processes_with_environment(text: str) -> list[tuple[int, str]]:
    """``(pid, command line)`` of the processes whose environment contains ``text``."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            if text.encode() not in Path("/proc", entry, "environ").read_bytes():
                continue
            cmdline = Path("/proc", entry, "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        found.append((int(entry), cmdline.strip()))
    return found


def session_processes(sid: int) -> list[tuple[int, str]]:
    """``(pid, command line)`` of the processes of session ``sid`` (Ray workers retitle themselves)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path("/proc", entry, "stat").read_text()
            cmdline = Path("/proc", entry, "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[3]) == sid and fields[0] != "Z":
            found.append((int(entry), cmdline.strip()))
    return found


def descendants(pid: int) -> set[int]:
    """Every process below ``pid`` (from /proc's parent links)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path("/proc", entry, "stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry))
    out, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in out:
                out.add(child)
                todo.append(child)
    return out


def busy_workers(root_pid: int, task: str = "run_file") -> list[int]:
    """Ray worker processes below ``root_pid`` running ``task`` now (their title is ``ray::<task>``)."""
    busy = []
    for pid in descendants(root_pid):
        try:
            cmdline = Path("/proc", str(pid), "cmdline").read_bytes()
        except OSError:
            continue
        if cmdline.startswith(f"ray::{task}".encode()):
            busy.append(pid)
    return busy


class RayCluster:
    """``ray start --head --port P --num-cpus N`` on 127.0.0.1, as this test's own subprocess."""

    def __init__(self, num_cpus: int = 2) -> None:
        self.temp_dir = short_temp_dir()
        (self.port, node_manager, object_manager, dashboard, agent_listen, agent_grpc, metrics,
         runtime_env) = free_ports(8)
        self.address = f"127.0.0.1:{self.port}"
        self.log = Path(self.temp_dir) / "ray-start.log"
        cmd = [
            sys.executable, "-m", "ray.scripts.scripts", "start", "--head", "--block",
            "--port", str(self.port), "--node-ip-address", "127.0.0.1", "--num-cpus", str(num_cpus),
            "--include-dashboard=false", "--disable-usage-stats", "--temp-dir", self.temp_dir,
            "--node-manager-port", str(node_manager), "--object-manager-port", str(object_manager),
            "--dashboard-port", str(dashboard), "--dashboard-agent-listen-port", str(agent_listen),
            "--dashboard-agent-grpc-port", str(agent_grpc), "--metrics-export-port", str(metrics),
            "--runtime-env-agent-port", str(runtime_env),
        ]
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(cmd, env=ray_env(), stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        deadline = time.monotonic() + 120
        while b"block forever" not in self.log.read_bytes():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                text = self.log.read_text(errors="replace")[-3000:]
                self.stop()
                raise RuntimeError(f"ray start failed:\n{text}")
            time.sleep(0.2)

    def left(self) -> list[tuple[int, str]]:
        """Processes of this cluster still alive (its session, or naming its temp folder)."""
        return sorted(set(session_processes(self.proc.pid)) | set(processes_mentioning(self.temp_dir)))

    def busy_workers(self) -> list[int]:
        """Worker processes of this cluster running a genrekit task now."""
        return busy_workers(self.proc.pid)

    def stop(self) -> None:
        """Stop the cluster through its process, then make sure nothing of it is left."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # ray start --block drains and stops its processes
            try:
                self.proc.wait(timeout=45)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)  # whatever did not stop (its own session)
        except ProcessLookupError:
            pass
        self.proc.wait()
        deadline = time.monotonic() + 30
        while self.left() and time.monotonic() < deadline:
            time.sleep(0.2)
        left = self.left()
        shutil.rmtree(self.temp_dir, ignore_errors=True)
        assert not left, f"Ray processes left behind: {left}"


# --- worker functions the Ray workers import (this folder is on their path) ---------------
class CountingWorker:
    """A worker function that says how often its process has unpickled one (there: once per job)."""

    unpickled = 0  # per process

    def __init__(self, payload: int = 1 << 20) -> None:
        self.payload = b"m" * payload  # stands in for a model's weights

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        CountingWorker.unpickled += 1

    def __call__(self, path: str) -> tuple[int, int, str]:
        time.sleep(0.05)
        return os.getpid(), CountingWorker.unpickled, path


def crash_on_crash_wav(path: str) -> str:
    """Dies like a decoder segfault on ``crash.wav``; gives the file's name otherwise."""
    if os.path.basename(path) == "crash.wav":
        os._exit(9)
    return os.path.basename(path)
