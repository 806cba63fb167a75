"""The analysis of one upload, and the workers that run it away from the event loop.

:func:`analysis_job` runs in a worker: it decodes the upload block by block, feeding both
the model's decode loop and the spectrogram, so memory does not grow with the song, and
returns its outcome as a plain tuple. :class:`AnalysisWorkers` submits it, at most
``workers`` at a time (an :class:`anyio.CapacityLimiter`), to a pool of worker processes
(:func:`genrekit.engines.batch.process_pool`), or to threads.

Why processes: an analysis then holds no lock the event loop needs, so ``/api/health`` and
uploads in progress are never held up by one, and a request whose memory kills its worker
fails alone (422) while the pool is replaced. Workers end with the server.
"""

from __future__ import annotations

import logging
import threading
import time
from functools import partial

import anyio

from genrekit.audio.decode import DecoderWarning, SilentAudioWarning
from genrekit.engines.threads import one_blas_thread
from genrekit.errors import AudioError, BundleError, TooLongError

log = logging.getLogger("genrekit.web")


def analyse_upload(model, name: str, path: str, spectrogram: bool, max_duration: float | None,
                   unknown_rate: float | None = None):
    """Decode, classify and draw one upload, block by block (in an analysis worker process).

    ``model`` is the bundle folder (``None``: the bundled default) and ``name`` the name
    the server lists it under; ``unknown_rate`` the "none of these" decision's false-unknown rate
    (``None``: the bundle's). One pass of the decoder feeds both the classifier and the
    spectrogram, and neither keeps the audio, so memory does not grow with the song.
    Raises :class:`genrekit.errors.AudioError` (``TooLongError`` past ``max_duration``)
    or ``ValueError`` for bad audio.
    """
    from genrekit.features.blockwise import LogmelStream
    from genrekit.models.registry import load_model
    from genrekit.web.spectrogram import spectrogram_png

    t0 = time.perf_counter()
    clf = load_model(model).at_unknown_rate(unknown_rate)
    image = LogmelStream(clf.sample_rate) if spectrogram else None
    # The spectrogram is one more consumer of the blocks the model's decode loop reads.
    prediction = clf.classify_file(path, timeline=True, max_duration=max_duration,
                                   also=[image] if image is not None else [])
    prediction.model = name
    prediction.path = None  # the upload's temporary file: the client knows its file by its own name
    png = meta = None
    if image is not None:
        png, meta = spectrogram_png(image.finish(), prediction.duration, clf.sample_rate)
    return prediction, png, meta, time.perf_counter() - t0


def analysis_job(model, name: str, path: str, spectrogram: bool, max_duration: float | None,
                 unknown_rate: float | None = None) -> tuple:
    """:func:`analyse_upload` in an analysis worker, its errors as plain tuples.

    Returns ``("ok", prediction, png, meta, elapsed, identity)`` (``identity``: the upload's audio
    key, :func:`genrekit.audio.files.identity`, so that a library's copy of the same song is not
    listed as similar to itself), ``("too long", problem)``,
    ``("bad audio", problem)`` or ``("bad model", problem)``. Plain tuples, because exceptions with custom constructors
    do not always survive the trip back from a worker process.
    """
    import warnings

    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with one_blas_thread():  # one analysis worker, one core (genrekit.engines.threads)
                result = analyse_upload(model, name, path, spectrogram, max_duration, unknown_rate)
        for w in caught:  # decoder chatter and silence: logged by the server with the client's name
            if isinstance(w.message, (DecoderWarning, SilentAudioWarning)):
                log.info("%s", w.message)
        from genrekit.audio.files import identity

        try:
            key = identity(path)
        except OSError:
            key = None
        return ("ok", *result, key)
    except TooLongError as exc:
        return ("too long", exc.problem)
    except AudioError as exc:
        return ("bad audio", exc.problem)
    except BundleError as exc:  # e.g. a graph that outputs NaN: the model's fault, named as such
        return ("bad model", exc.problem)
    # A signal shorter than one analysis frame fails inside the numeric code, and a client's file
    # must not take the server down: the upload is refused with the error's name in the message.
    except (ValueError, MemoryError) as exc:
        return ("bad audio", f"could not be analysed ({type(exc).__name__}: {exc})")


class AnalysisWorkers:
    """Runs :func:`analysis_job`, at most ``workers`` at a time, in worker processes or threads.

    Parameters
    ----------
    workers : int
        Analyses at the same time (and worker processes).
    processes : bool
        Worker processes (default) rather than threads of the server's process.
    max_duration : float or None
        Longest decoded audio analysed (s); longer uploads come back ``("too long", ...)``.

    Attributes
    ----------
    busy : int
        Analyses running now.
    """

    def __init__(self, workers: int, *, processes: bool = True, max_duration: float | None = None) -> None:
        self.workers = workers
        self.processes = processes
        self.max_duration = max_duration
        self.busy = 0
        self.limiter: anyio.CapacityLimiter | None = None
        self._pool = None
        self._pool_lock = threading.Lock()

    def start(self) -> None:
        """Make the limiter (inside the event loop, which it belongs to)."""
        if self.limiter is None:
            self.limiter = anyio.CapacityLimiter(self.workers)

    async def run(self, model, name: str, path: str, spectrogram: bool, unknown_rate: float | None = None) -> tuple:
        """Run :func:`analysis_job` on a worker; its outcome tuple.

        ``model`` is what the worker passes to :func:`genrekit.models.registry.load_model`
        (:meth:`genrekit.web.served_models.ServedModels.source`), ``name`` the model's name.
        """
        import asyncio
        from concurrent.futures.process import BrokenProcessPool

        job = partial(analysis_job, model, name, path, spectrogram, self.max_duration, unknown_rate)
        async with self.limiter:
            self.busy += 1
            try:
                if not self.processes:
                    return await anyio.to_thread.run_sync(job)
                pool = self._worker_pool()
                try:
                    return await asyncio.wrap_future(pool.submit(job))
                except BrokenProcessPool:
                    self._replace_pool(pool)
                    return ("bad audio", "the analysis worker died on this file (out of memory, or a crash "
                                         "in the decoder); the server goes on")
            finally:
                self.busy -= 1

    def warm_up(self, model) -> None:
        """Start the worker processes now and have each load ``model`` (in the background)."""
        if not self.processes:
            return
        from genrekit.models.registry import load_model

        pool = self._worker_pool()
        for _ in range(self.workers):
            pool.submit(load_model, model)

    def stop(self) -> None:
        """End the worker processes."""
        if self._pool is not None:
            from genrekit.engines.batch import stop_pool

            stop_pool(self._pool)
            self._pool = None

    def _worker_pool(self):
        with self._pool_lock:
            if self._pool is None:
                from genrekit.engines.batch import process_pool

                self._pool = process_pool(self.workers)
            return self._pool

    def _replace_pool(self, broken) -> None:
        from genrekit.engines.batch import stop_pool

        with self._pool_lock:
            if self._pool is broken:
                self._pool = None
        stop_pool(broken)
