"""Features for many files, through the cache: the job behind ``genrekit features``.

For each file: hash its bytes, look the (hash, feature set) pair up in the
:class:`~genrekit.features.cache.FeatureStore`, and only on a miss decode and compute in a
worker. Results are stored by this (parent) process as soon as each arrives, so the
store has a single writer and a killed run keeps everything finished.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from genrekit.audio import decode as audio
from genrekit.engines import make_engine
from genrekit.engines.batch import Summary, progress_bar
from genrekit.engines.threads import on_one_blas_thread
from genrekit.engines.cached import cached_or_computed
from genrekit.features.sets import FeatureSet
from genrekit.features.cache import FeatureStore


@dataclass(frozen=True)
class FileFeatures:
    """The features of one file.

    Attributes
    ----------
    path : Path
        The file, as collected.
    array : np.ndarray
        :meth:`FeatureSet.compute` of the decoded signal.
    n_samples : int
        Decoded length in samples at the set's sample rate.
    content_hash : str or None
        Hash of the file's bytes (``None`` when running without a cache).
    cached : bool
        Taken from the cache rather than computed now.
    """

    path: Path
    array: np.ndarray
    n_samples: int
    content_hash: str | None
    cached: bool


@on_one_blas_thread
def compute_file(path: str | os.PathLike, fs: FeatureSet) -> tuple[np.ndarray, int]:
    """Decode one file for ``fs`` and compute its features: ``(array, n_samples)``.

    The worker of :func:`extract`; module-level so that pool processes can import it.
    Raises :class:`~genrekit.errors.AudioError` for a file that cannot be analysed.
    """
    from genrekit.features.blockwise import compute_stream

    # Decoded and analysed block by block: memory does not grow with the song.
    with audio.Decoder(path, fs.sample_rate, min_samples=fs.min_samples) as decoder:
        return compute_stream(fs, decoder)


class Extraction:
    """Iterate to get each file's :class:`FileFeatures` as it becomes available.

    Cached files come first (in input order), then computed ones in completion order.
    :attr:`summary` is complete once iteration ends.

    Parameters
    ----------
    paths : sequence of path
        Files to analyse (see :func:`genrekit.audio.files.collect_audio_files`).
    fs : FeatureSet
        The recipe.
    store : FeatureStore or None
        Cache to read and fill; ``None`` computes everything and stores nothing.
    jobs : int
        Worker processes (``1``: in this process; ``0``: one per CPU), when no ``engine`` is given.
    engine : genrekit.engines.Engine, optional
        Where features are computed (default: ``LocalEngine(jobs)``); the caller closes it.
    progress : bool
        Draw a progress bar on stderr (only shown when stderr is a terminal).
    """

    def __init__(
        self,
        paths: Sequence[str | os.PathLike],
        fs: FeatureSet,
        *,
        store: FeatureStore | None = None,
        jobs: int = 1,
        engine=None,
        progress: bool = True,
    ) -> None:
        self.paths = [Path(p) for p in paths]
        self.fs = fs
        self.store = store
        self.engine = engine if engine is not None else make_engine("local", jobs=jobs)
        self.progress = progress
        self.summary = Summary("features", total=len(self.paths))

    def __iter__(self) -> Iterator[FileFeatures]:
        fs, store, summary = self.fs, self.store, self.summary
        bar = progress_bar(len(self.paths), "features") if self.progress else None
        hashes: dict[Path, str | None] = {}

        def lookup(path: Path):
            digest = entry = None
            if store is not None:
                try:
                    digest = store.file_hash(path)
                except OSError:
                    # Unreadable or missing: the decoder will say why, in its words.
                    digest = None
                else:
                    damaged = len(store.damaged)
                    entry = store.get(digest, fs)
                    if len(store.damaged) > damaged:
                        summary.warnings.append(f"{path}: its cached features were damaged "
                                                f"(checksum mismatch); computed again")
            hashes[path] = digest
            return entry

        try:
            for path, entry, result in cached_or_computed(self.paths, lookup, self.engine,
                                                          lambda todo: functools.partial(compute_file, fs=fs)):
                if entry is not None:
                    summary.cached += 1
                    _tick(bar)
                    yield FileFeatures(path, entry.array, entry.n_samples, hashes[path], cached=True)
                    continue
                summary.record(result)
                _tick(bar)
                if not result.ok:
                    continue
                array, n_samples = result.value
                digest = hashes[path]
                if store is not None and digest is not None:
                    store.put(digest, fs, array, n_samples)  # committed now: survives a kill
                yield FileFeatures(path, array, n_samples, digest, cached=False)
        finally:
            if bar is not None:
                bar.close()


def extract(
    paths: Sequence[str | os.PathLike],
    fs: FeatureSet,
    *,
    store: FeatureStore | None = None,
    jobs: int = 1,
    engine=None,
    progress: bool = True,
) -> tuple[list[FileFeatures], Summary]:
    """Features of every file, in the order of ``paths``, and a summary of the run.

    Files that fail are left out of the list and named, with the reason, in
    ``summary.failed``. ``summary.done`` counts files computed now and
    ``summary.cached`` files taken from ``store``. Parameters as :class:`Extraction`.
    """
    run = Extraction(paths, fs, store=store, jobs=jobs, engine=engine, progress=progress)
    order = {p: i for i, p in enumerate(run.paths)}
    results = sorted(run, key=lambda r: order[r.path])
    return results, run.summary


def _tick(bar) -> None:
    if bar is not None:
        bar.update(1)
