"""The one interface every engine offers: files in, one result per file out, as each finishes."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from genrekit.engines.batch import Result


class Engine:
    """Applies a function of one file to many files.

    Contract of :meth:`run`, which every engine keeps so that the calling job (cache,
    results store, output) behaves the same on all of them:

    - exactly one :class:`~genrekit.engines.batch.Result` per item, yielded as soon as that
      item is finished (completion order); ``result.item`` is the item as given, so the
      caller restores input order (every whole output is written in input order);
    - an item whose function raises becomes a failed result with a one-line reason,
      and the rest goes on; an item whose worker process dies is retried, and only an
      item that keeps killing workers is failed
      (:data:`genrekit.engines.batch.CRASH_REASON`);
    - ``worker`` is sent to each worker process once, not once per item.

    Engines are context managers: :meth:`close` releases what :meth:`start` took.

    Attributes
    ----------
    name : str
        As ``--engine`` names it.
    shares_files : bool
        Workers see this process's files at the same paths (so a model can be sent as
        a path); ``False`` when they may run on other machines.
    """

    name = "engine"
    shares_files = True

    def check(self) -> None:
        """Raise :class:`~genrekit.errors.EngineError` now if this engine cannot be used at all (cheap: starts nothing)."""

    def start(self) -> None:
        """Acquire workers (idempotent; :meth:`run` calls it)."""

    def run(self, items: Sequence[Any], worker: Callable[[Any], Any]) -> Iterator[Result]:
        """Apply ``worker`` (picklable) to every item; yield each :class:`Result` as it finishes."""
        raise NotImplementedError

    def close(self) -> None:
        """Release the workers (idempotent)."""

    def __enter__(self) -> "Engine":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"
