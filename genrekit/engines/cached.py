"""The loop of every batch job that keeps its results: answer from the store what it holds, compute the rest.

``genrekit features`` (the feature cache, :mod:`genrekit.features.extract`) and ``genrekit classify``
(a results store, :mod:`genrekit.library.run`) both look each item up first, in input order, and
hand only the misses to an engine, whose results arrive in completion order. The caller keeps the
store: it writes each computed result as it arrives, so the store has a single writer and a run
killed at any moment keeps everything finished before the kill.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from genrekit.engines.batch import Result


def cached_or_computed(items: Iterable[Any], lookup: Callable[[Any], Any | None], engine,
                       make_worker: Callable[[list], Callable[[Any], Any]]) -> Iterator[tuple[Any, Any, Result | None]]:
    """Yield ``(item, found, None)`` for each item ``lookup`` answers, then ``(item, None, result)`` for the rest.

    Parameters
    ----------
    items : iterable
        The job's items (files), each looked up once, in order.
    lookup : callable
        ``lookup(item)``: the stored value, or ``None`` to compute the item.
    engine : genrekit.engines.base.Engine
        Where the misses are computed.
    make_worker : callable
        ``make_worker(todo)``: the picklable function of one item, built once the misses are known
        (a job with nothing to compute need not load its model).

    Yields
    ------
    (item, found, result)
        Stored items first, as they are looked up; then computed ones as the engine finishes them
        (``result`` is a :class:`~genrekit.engines.batch.Result`, ``ok`` or a failure).
    """
    todo = []
    for item in items:
        found = lookup(item)
        if found is None:
            todo.append(item)
        else:
            yield item, found, None
    worker = make_worker(todo)
    for result in engine.run(todo, worker):
        yield result.item, None, result
