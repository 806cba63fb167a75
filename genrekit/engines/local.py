"""The local engine: this process, or a process pool on this machine (:func:`genrekit.engines.batch.run_batch`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from genrekit.engines.batch import Result, run_batch
from genrekit.engines.base import Engine


class LocalEngine(Engine):
    """Run on this machine: in this process (``jobs=1``) or on ``jobs`` spawned processes.

    A thin wrapper: the pool, its crash handling and its Ctrl-C handling are
    :func:`genrekit.engines.batch.run_batch`'s.

    Parameters
    ----------
    jobs : int
        ``1``: this process, in input order; ``N > 1``: ``N`` worker processes;
        ``0``: one per CPU.
    """

    name = "local"
    shares_files = True

    def __init__(self, jobs: int = 1) -> None:
        self.jobs = jobs

    def run(self, items: Sequence[Any], worker: Callable[[Any], Any]) -> Iterator[Result]:
        return run_batch(items, worker, jobs=self.jobs)

    def __repr__(self) -> str:
        return f"LocalEngine(jobs={self.jobs})"
