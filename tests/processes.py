"""Processes seen from ``/proc`` (Linux): a process's live descendants, whether one still runs, and
killing a run at the moment a test needs."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path


def children(pid: int) -> set[int]:
    """Every live descendant of ``pid`` (from /proc)."""
    found, frontier = set(), {pid}
    while frontier:
        parent = frontier.pop()
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                if int(fields[1]) == parent and int(entry) not in found:
                    found.add(int(entry))
                    frontier.add(int(entry))
    return found


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie or a dead process does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def sigkill_when(proc: subprocess.Popen, ready: Callable[[], bool], what: str, *, within: float = 120.0) -> None:
    """SIGKILL ``proc`` as soon as ``ready()`` holds (polled every 5 ms), and reap it.

    The kill-mid-run tests (a features or classify run, CNN training) all need this moment: some
    work done, the rest not. The test fails if the run ends before ``ready()`` (``what``: what the
    test waited for) or if ``within`` seconds pass (a hang guard, never a speed target).
    """
    deadline = time.monotonic() + within
    try:
        while not ready():
            assert proc.poll() is None, f"the run finished before it could be killed ({what}); use longer work"
            assert time.monotonic() < deadline, f"{what} did not happen within {within:.0f} s"  # a hang guard
            time.sleep(0.005)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
