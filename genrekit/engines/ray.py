"""The Ray engine: the same batch jobs on a Ray instance on this machine or on a Ray cluster.

The driver (the ``genrekit`` process) keeps the job: it hashes files, reads and fills
the feature cache and the results store, and writes the outputs, exactly as with the
local engine. Ray only runs the function of one file: one task per file, at most a
few per CPU in flight (so results stream back and memory stays flat), each retried by
Ray when its worker process or node dies (``max_retries``). A retried task still has
one result, and the driver stores each result once, as it arrives: nothing is lost or
written twice.

The function (for ``classify``: the model's files, see :class:`genrekit.models.registry.PackedModel`)
is put in Ray's object store once per job and fetched by each worker process once.

Workers open the paths they are given, so inputs must be on storage every node reads
at the same path. Before a job starts, :meth:`RayEngine.check_readable` has a worker on
every node open the first few files and stops with a clear message if one cannot.

Ray is imported when the engine starts, never before: ``import genrekit`` and the
local engine work without it. References: Moritz et al., "Ray: A Distributed
Framework for Emerging AI Applications", OSDI 2018; https://docs.ray.io.
"""

from __future__ import annotations

import logging
import os
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from genrekit.engines.batch import CRASH_REASON, Failure, Result, _call, resolve_jobs
from genrekit.engines.base import Engine
from genrekit.errors import EngineError, ParameterError

#: How to get Ray, said whenever it is missing.
INSTALL_HINT = "pip install 'genrekit[ray]'"

#: Files the driver asks a worker on every node to open before the job starts.
CHECK_FILES = 3

#: Seconds the start-up check waits for every node's answer.
CHECK_TIMEOUT = 120.0

#: Tasks in flight per CPU: enough that no worker waits for the driver, few enough
#: that results stream back as they finish and nothing piles up.
IN_FLIGHT_PER_CPU = 2

#: Ray settings genrekit sets unless the user has: nothing is sent to the network
#: (no usage statistics) and nothing is printed to the user's terminal by Ray itself.
QUIET_ENV = {
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_DISABLE_DOCKER_CPU_WARNING": "1",
    "RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO": "0",
}

# Worker side: the function of the current job, fetched from the object store once
# per worker process (key: its ObjectRef), then reused for every file of the job.
_WORKERS: dict[str, Callable[[Any], Any]] = {}


def import_ray():
    """Import Ray (quietly, statistics off), or say in one line how to install it.

    Raises
    ------
    EngineError
        When Ray is not installed.
    """
    for name, value in QUIET_ENV.items():
        os.environ.setdefault(name, value)
    try:
        import ray
    except ImportError:
        raise EngineError(f"--engine ray needs Ray, which is not installed: {INSTALL_HINT}") from None
    return ray


def run_file(box: list, path: str) -> tuple[bool, Any, tuple[str, ...]]:
    """The Ray task: apply the job's function to one file, errors and warnings captured.

    ``box`` holds the function's ObjectRef inside a list, so that Ray passes the
    reference rather than the value: the value is fetched only by a worker process
    that does not have it yet.
    """
    ref = box[0]
    key = ref.hex()
    worker = _WORKERS.get(key)
    if worker is None:
        import ray

        if len(_WORKERS) >= 4:  # functions of finished jobs of this driver
            _WORKERS.clear()
        worker = _WORKERS[key] = ray.get(ref)
    return _call(worker, path)


def probe_files(paths: list[str]) -> tuple[str, str, list[tuple[str, str | None]]]:
    """The Ray task of the start-up check: ``(host, genrekit version, [(path, problem or None)])``."""
    import socket

    from genrekit._version import __version__

    answers = []
    for path in paths:
        try:
            with open(path, "rb") as f:
                f.read(1)
        except OSError as exc:
            answers.append((path, exc.strerror or type(exc).__name__))
        else:
            answers.append((path, None))
    return socket.gethostname(), __version__, answers


class RayEngine(Engine):
    """Run each file as a Ray task, on a local Ray instance or a cluster.

    Parameters
    ----------
    address : str or None
        ``None``: start a Ray instance on this machine for the job (and stop it after),
        unless this process has already called ``ray.init``; ``"auto"``: join the
        cluster running here (``ray start --head``); ``"HOST:PORT"``: join that
        cluster's head; ``"ray://HOST:10001"``: Ray Client.
    jobs : int or None
        Files at once. ``None`` or ``0``: every CPU Ray has. With a Ray instance
        started here, ``N`` gives it ``N`` CPUs; on a cluster, at most ``N`` files run
        at once.
    max_retries : int
        Times Ray reruns a file whose worker process died (crash, out of memory, a lost
        node); a file that still kills its worker is reported with
        :data:`genrekit.engines.batch.CRASH_REASON`.
    check_files : int
        Files opened on every node by :meth:`check_readable` before the job starts.
    """

    name = "ray"
    shares_files = False

    def __init__(self, address: str | None = None, *, jobs: int | None = None, max_retries: int = 3,
                 check_files: int = CHECK_FILES) -> None:
        if jobs is not None and jobs < 0:
            raise ParameterError(f"jobs must be >= 0, got {jobs}")
        self.address = address
        self.jobs = jobs
        self.max_retries = max_retries
        self.check_files = check_files
        self._ray = None
        self._owns_instance = False  # started by us: stopped by close()
        self._tasks = None

    # --- life cycle --------------------------------------------------------------------
    def check(self) -> None:
        """Raise :class:`EngineError` at once when Ray is not installed."""
        import_ray()

    def start(self) -> None:
        if self._ray is not None:
            return
        ray = import_ray()
        if not ray.is_initialized():
            options: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.ERROR}
            if self.address is None:
                options.update(include_dashboard=False,
                               num_cpus=resolve_jobs(self.jobs) if self.jobs else None)
            where = "start a Ray instance on this machine" if self.address is None else \
                f"join the Ray cluster at {self.address}"
            if self.address not in (None, "auto") and "://" not in self.address:
                _check_reachable(self.address)  # Ray itself waits for an absent head for ever
            try:
                ray.init(address=self.address, **options)
            except Exception as exc:  # ConnectionError, RuntimeError, ValueError from Ray's start-up
                raise EngineError(f"cannot {where}: {_first_line(exc)}") from None
            self._owns_instance = True
        self._ray = ray
        self._tasks = ray.remote(num_cpus=1, max_retries=self.max_retries)(run_file)

    def close(self) -> None:
        if self._ray is not None and self._owns_instance:
            self._ray.shutdown()
        self._ray, self._owns_instance, self._tasks = None, False, None

    def cpus(self) -> int:
        """CPUs of the Ray instance or cluster (after :meth:`start`)."""
        return max(1, int(self._ray.cluster_resources().get("CPU", 1)))

    def _in_flight_limit(self) -> int:
        if self.jobs and not (self._owns_instance and self.address is None):
            return self.jobs  # a cluster (or someone else's instance): at most `jobs` at once
        return IN_FLIGHT_PER_CPU * self.cpus()

    # --- the job -------------------------------------------------------------------------
    def check_readable(self, items: Sequence[Any]) -> None:
        """Have a worker on every node open the first few files this process can read.

        Raises
        ------
        EngineError
            Naming the node, the file and the problem, when a worker cannot read one of
            them or a node runs another genrekit version. Files this process cannot
            read either are left to the job, which reports them as bad files.
        """
        from genrekit._version import __version__

        self.start()
        ray = self._ray
        sample = []
        for item in items:
            path = os.path.abspath(os.fspath(item))
            if os.path.isfile(path) and os.access(path, os.R_OK):
                sample.append(path)
                if len(sample) == self.check_files:
                    break
        if not sample:
            return
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        probe = ray.remote(num_cpus=0, max_retries=1)(probe_files)
        nodes = [n for n in ray.nodes() if n.get("Alive") and n.get("Resources", {}).get("CPU", 0) > 0]
        refs = [probe.options(scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False))
                .remote(sample) for n in nodes] or [probe.remote(sample)]
        try:
            answers = ray.get(refs, timeout=CHECK_TIMEOUT)
        except ray.exceptions.GetTimeoutError:
            raise EngineError(f"Ray workers did not answer within {CHECK_TIMEOUT:g} s "
                              f"(is the cluster short of resources?)") from None
        for host, version, results in answers:
            if version != __version__:
                raise EngineError(f"Ray workers on {host} run genrekit {version}, this process {__version__}: "
                                  f"install the same genrekit on every node")
            for path, problem in results:
                if problem is not None:
                    raise EngineError(
                        f"Ray workers on {host} cannot read {path} ({problem}): inputs must be on storage "
                        f"every node reads at the same path (a shared filesystem); "
                        f"see 'Running on a cluster' in the README")

    def run(self, items: Sequence[Any], worker: Callable[[Any], Any]) -> Iterator[Result]:
        items = list(items)
        if not items:
            return
        self.check_readable(items)
        ray, tasks = self._ray, self._tasks
        box = [ray.put(worker)]  # once per job; see run_file
        limit = self._in_flight_limit()
        todo = deque(items)
        pending: dict = {}  # ObjectRef -> (item, absolute path sent)
        try:
            while todo or pending:
                while todo and len(pending) < limit:
                    item = todo.popleft()
                    # Absolute: a worker's working folder is not this process's.
                    path = os.path.abspath(os.fspath(item))
                    pending[tasks.remote(box, path)] = (item, path)
                ready, _ = ray.wait(list(pending), num_returns=1)
                for ref in ready:
                    item, path = pending.pop(ref)
                    try:
                        ok, payload, caught = ray.get(ref)
                    except ray.exceptions.RayError as exc:  # its worker died on every try
                        yield Result(item, failure=Failure(str(item), _lost_reason(ray, exc)))
                        continue
                    caught = tuple(_as_given(w, path, item) for w in caught)
                    if ok:
                        yield Result(item, payload, warnings=caught)
                    else:
                        yield Result(item, failure=Failure(str(item), _as_given(payload, path, item)),
                                     warnings=caught)
        finally:
            # Ctrl-C, an error, or an abandoned generator: stop what is still queued or running.
            for ref in pending:
                ray.cancel(ref)

    def __repr__(self) -> str:
        return f"RayEngine(address={self.address!r}, jobs={self.jobs!r})"


def _check_reachable(address: str, timeout: float = 10.0) -> None:
    """Fail in seconds, not never, when nothing listens at a cluster's ``HOST:PORT``."""
    import socket

    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise EngineError(f"--address {address}: expected HOST:PORT (the head's `ray start --port`), "
                          f"auto, or ray://HOST:PORT")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as exc:
        raise EngineError(f"cannot join the Ray cluster at {address}: nothing answers there "
                          f"({exc.strerror or exc}); is `ray start --head --port {port}` running on {host}?") from None


def _as_given(text: str, path: str, item: Any) -> str:
    """A message naming the absolute path sent to the worker, naming the item as given instead."""
    return text.replace(path, str(item)) if path != str(item) else text


def _lost_reason(ray, exc: BaseException) -> str:
    if isinstance(exc, (ray.exceptions.WorkerCrashedError, ray.exceptions.OutOfMemoryError)):
        return CRASH_REASON
    return f"Ray could not run it ({type(exc).__name__}: {_first_line(exc)})"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__
