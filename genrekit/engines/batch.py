"""Run one function over many items, in-process or on a local process pool.

Every batch verb (``features``, ``classify``, ...) works the same way: items go to a
picklable worker function; results come back in completion order; an item whose
worker raises becomes a :class:`Failure` with a readable reason and the batch goes
on; a :class:`Summary` says what happened. Workers run the same code in-process
(``jobs=1``) and in pool processes, so both give the same numbers.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import threading
import time
import warnings
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Any, TextIO

from genrekit.engines.threads import one_blas_thread
from genrekit.errors import AudioError, GenrekitError, ParameterError
from genrekit.output import LINE_MAX, printable

#: Reason given for an item whose worker process died (segfault in a decoder, OOM kill).
CRASH_REASON = "the worker process died while processing this file (crash or out of memory)"


@dataclass(frozen=True)
class Failure:
    """An item that could not be processed, and why (one line, no traceback)."""

    item: str
    reason: str

    def __str__(self) -> str:
        return f"{self.item}: {self.reason}"


@dataclass(frozen=True)
class Result:
    """What became of one item: ``value`` on success, else ``failure``.

    ``warnings`` holds the messages of warnings the worker raised (e.g. silent audio);
    they are captured in the worker so they reach the parent from pool processes too.
    """

    item: Any
    value: Any = None
    failure: Failure | None = None
    warnings: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.failure is None


@dataclass
class Summary:
    """Counts of a batch run, printed at the end.

    Parameters
    ----------
    verb : str
        Name the summary line starts with (``"features"``).
    total : int
        Items in the batch.
    done_label, cached_label : str
        How to name items processed now and items taken from a cache (or skipped).
    unknown : list of (item, closest genre, unknown score or None)
        Items of none of the model's genres ("none of these"), listed after the line.
    """

    verb: str
    total: int = 0
    done: int = 0
    cached: int = 0
    failed: list[Failure] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    done_label: str = "computed"
    cached_label: str = "from cache"
    unknown: list[tuple[str, str, float | None]] = field(default_factory=list)

    def record(self, result: Result) -> None:
        """Count a result from :func:`run_batch` (a success counts as done)."""
        if result.ok:
            self.done += 1
        else:
            self.failed.append(result.failure)
        name = str(result.item)
        # Name the item unless the message already does (AudioError-style "path: ...").
        self.warnings.extend(w if w.startswith(name) else f"{name}: {w}" for w in result.warnings)

    @property
    def line(self) -> str:
        """``features: 70 files, 0 computed, 70 from cache, 0 failed``."""
        unit = "file" if self.total == 1 else "files"
        return (
            f"{self.verb}: {self.total} {unit}, {self.done} {self.done_label}, "
            f"{self.cached} {self.cached_label}, {len(self.failed)} failed"
        )

    def __str__(self) -> str:
        # printable: a newline or an escape code in a file name must not forge or hide a line.
        lines = [f"warning: {printable(w, LINE_MAX)}" for w in sorted(self.warnings)]
        lines.append(self.line)
        # Sorted: pool runs finish in any order, the report should not.
        lines += [f"  failed: {printable(str(f), LINE_MAX)}" for f in sorted(self.failed, key=lambda f: f.item)]
        for item, closest, score in sorted(self.unknown, key=lambda u: str(u[0])):
            said = "" if score is None else f"; unknown score {score:g}"
            lines.append(printable(f"  unknown: {item} (closest: {closest}{said})", LINE_MAX))
        return "\n".join(lines)

    def print(self, stream: TextIO | None = None) -> None:
        """Write the summary to ``stream`` (default: stderr)."""
        print(self, file=stream if stream is not None else sys.stderr)


def failure_reason(exc: BaseException) -> str:
    """One-line reason for a failed item: an ``AudioError``'s problem, another genrekit error's
    message, else ``Type: message`` (an internal error, named as such)."""
    if isinstance(exc, AudioError):
        return str(exc.problem)
    if isinstance(exc, GenrekitError):  # a sentence naming what is wrong (a broken model...), no type name
        return str(exc)
    message = str(exc)
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def progress_bar(total: int, desc: str, *, stream: TextIO | None = None):
    """A tqdm bar on stderr when it is a terminal; a silent stand-in otherwise.

    Logs and pipes stay clean: progress is only drawn for a human watching.
    """
    stream = stream if stream is not None else sys.stderr
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="file", file=stream,
                disable=not _isatty(stream), leave=False, dynamic_ncols=True)


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _call(worker: Callable[[Any], Any], item: Any) -> tuple[bool, Any, tuple[str, ...]]:
    """Run ``worker(item)`` and turn any exception into its reason, in the worker's process.

    Why here: exceptions with custom constructors do not always survive pickling back
    from a pool process, and warnings printed by a child would garble the parent's
    progress bar. Plain tuples always travel.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            with one_blas_thread():  # one worker, one core: no BLAS thread spinning beside it
                value = worker(item)
        except Exception as exc:  # noqa: BLE001 - any worker error becomes a failure record
            return False, failure_reason(exc), tuple(str(w.message) for w in caught)
    return True, value, tuple(str(w.message) for w in caught)


def _result(item: Any, outcome: tuple[bool, Any, tuple[str, ...]]) -> Result:
    ok, payload, caught = outcome
    if ok:
        return Result(item, payload, warnings=caught)
    return Result(item, failure=Failure(str(item), payload), warnings=caught)


def resolve_jobs(jobs: int | None) -> int:
    """``None`` or ``0`` means one process per CPU; otherwise ``jobs`` (at least 1)."""
    if not jobs:
        return os.cpu_count() or 1
    if jobs < 0:
        raise ParameterError(f"jobs must be >= 0, got {jobs}")
    return jobs


def run_batch(
    items: Iterable[Any],
    worker: Callable[[Any], Any],
    *,
    jobs: int = 1,
) -> Iterator[Result]:
    """Apply ``worker`` to every item; yield a :class:`Result` per item as each finishes.

    Parameters
    ----------
    items : iterable
        Picklable items (usually paths); ``str(item)`` names an item in failure records.
    worker : callable
        ``worker(item) -> value``. Must be picklable for ``jobs > 1``: a module-level
        function, or a ``functools.partial`` of one, since pool processes are started
        with ``spawn`` (the same on every platform, and safe with open databases and
        threads in the parent).
    jobs : int
        ``1`` runs in this process, in order; ``N > 1`` runs on ``N`` worker processes
        and yields in completion order; ``0`` means one per CPU.

    Yields
    ------
    Result
        One per item. A worker exception gives a failed result and the batch goes on.
        If a worker process dies, the items it may have held are retried one at a
        time so that only the item that kills a worker is failed (:data:`CRASH_REASON`).
    """
    items = list(items)
    jobs = min(resolve_jobs(jobs), max(1, len(items)))
    if jobs == 1:
        for item in items:
            yield _result(item, _call(worker, item))
        return
    yield from _run_pool(items, worker, jobs)


#: Seconds between a worker's checks that its parent is still alive (where prctl is not available).
PARENT_WATCH_INTERVAL = 0.5


def worker_init(parent_pid: int) -> None:
    """Initializer of every pool process: ignore Ctrl-C and die with the parent.

    Ctrl-C reaches the whole process group; the parent alone handles it (and stops
    the pool), so workers don't each print a KeyboardInterrupt traceback. A parent
    killed outright (SIGKILL, OOM) cannot stop its pool, so each worker ends itself:
    on Linux the kernel sends it SIGKILL when the parent dies (``PR_SET_PDEATHSIG``),
    and everywhere a daemon thread exits the worker once it has been re-parented.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _kill_me_with_parent()
    if os.getppid() != parent_pid:  # the parent died before the line above took effect
        os._exit(1)
    threading.Thread(target=_watch_parent, args=(parent_pid,), name="genrekit-parent-watch", daemon=True).start()


def _kill_me_with_parent() -> None:
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        PR_SET_PDEATHSIG = 1
        libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    except (OSError, AttributeError):  # not glibc/musl: the watch thread still works
        pass


def _watch_parent(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(PARENT_WATCH_INTERVAL)
    os._exit(1)


def process_pool(jobs: int) -> ProcessPoolExecutor:
    """A spawn-started pool whose workers ignore Ctrl-C and end when this process dies."""
    context = multiprocessing.get_context("spawn")
    return ProcessPoolExecutor(max_workers=jobs, mp_context=context, initializer=worker_init,
                               initargs=(os.getpid(),))


def stop_pool(pool: ProcessPoolExecutor) -> None:
    """Stop a pool now: queued work dropped, running workers terminated (not waited for)."""
    procs = list((getattr(pool, "_processes", None) or {}).values())  # private, hence the care
    pool.shutdown(wait=False, cancel_futures=True)
    for proc in procs:
        try:
            proc.terminate()
        except (OSError, AttributeError, ValueError):
            pass


def _run_pool(items: list, worker: Callable, jobs: int) -> Iterator[Result]:
    def new_pool() -> ProcessPoolExecutor:
        return process_pool(jobs)

    todo = deque(items)
    suspects: deque = deque()  # items in flight when a worker died: rerun one at a time
    pool = new_pool()
    try:
        while todo or suspects:
            if suspects:
                item = suspects.popleft()
                try:
                    outcome = pool.submit(_call, worker, item).result()
                except BrokenProcessPool:
                    # Alone in the pool and a worker still died: this item is the culprit.
                    pool.shutdown(wait=False, cancel_futures=True)
                    pool = new_pool()
                    yield Result(item, failure=Failure(str(item), CRASH_REASON))
                else:
                    yield _result(item, outcome)
                continue

            # Keep two tasks per worker queued: workers never wait, and results
            # never pile up in memory faster than the caller takes them.
            in_flight: dict = {}
            broken = False
            while todo or in_flight:
                while not broken and todo and len(in_flight) < 2 * jobs:
                    try:
                        future = pool.submit(_call, worker, todo[0])
                    except BrokenProcessPool:  # a worker died since the last wait
                        broken = True
                        break
                    in_flight[future] = todo.popleft()
                if not in_flight:
                    break
                done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                for future in done:
                    item = in_flight.pop(future)
                    try:
                        outcome = future.result()
                    except BrokenProcessPool:
                        suspects.append(item)
                        broken = True
                    else:
                        yield _result(item, outcome)
                if broken:
                    # Every other in-flight future fails the same way; rerun them all alone.
                    suspects.extend(in_flight.values())
                    break
            if broken:
                if not suspects and todo:
                    suspects.append(todo.popleft())  # guarantees progress
                pool.shutdown(wait=False, cancel_futures=True)
                pool = new_pool()
    except BaseException:
        # Ctrl-C, SIGTERM or an abandoned generator: drop queued work and stop the
        # workers now, rather than waiting for the files they hold.
        stop_pool(pool)
        raise
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
