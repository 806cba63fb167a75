"""Where batch work runs: engines that apply one function to many files.

Every batch job (``genrekit features``, ``genrekit classify``, the feature extraction
behind ``train``/``evaluate --data AUDIO_DIR``) hands an engine a list of files and a
picklable function of one file, and gets back one :class:`~genrekit.engines.batch.Result` per
file as each finishes (see :class:`~genrekit.engines.base.Engine`). The job itself
(the cache, the results store, the output) stays in the calling process, so every
engine gives the same results, the same resume and the same outputs.

- ``local`` (:class:`~genrekit.engines.local.LocalEngine`): this process or a process
  pool on this machine (:func:`genrekit.engines.batch.run_batch`);
- ``ray`` (:class:`~genrekit.engines.ray.RayEngine`): a Ray instance or cluster
  (needs ``pip install 'genrekit[ray]'``; Ray is imported only when this engine starts).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from genrekit.errors import EngineError
from genrekit.errors import ParameterError

#: Engine names, as ``--engine`` takes them; the first is the default.
ENGINES = ("local", "ray")


def make_engine(name: str = "local", *, address: str | None = None, jobs: int | None = None) -> Engine:
    """The engine called ``name``.

    Parameters
    ----------
    name : {"local", "ray"}
    address : str or None
        Ray only: ``None`` starts a Ray instance on this machine, ``"auto"`` joins the
        cluster running here, ``"HOST:PORT"`` (or ``"ray://HOST:10001"``) joins that one.
    jobs : int or None
        Files processed at once. Local: worker processes (``None``: 1; ``0``: one per
        CPU). Ray: ``None`` or ``0`` uses every CPU the Ray instance or cluster has.

    Raises
    ------
    genrekit.errors.ParameterError
        For an unknown engine, or an ``address`` given to the local engine.
    """
    if name == "local":
        if address is not None:
            raise ParameterError("--address: only with --engine ray")
        from genrekit.engines.local import LocalEngine

        return LocalEngine(jobs=1 if jobs is None else jobs)
    if name == "ray":
        from genrekit.engines.ray import RayEngine  # imports no Ray yet: that happens when it starts

        return RayEngine(address=address, jobs=jobs)
    raise ParameterError(f"unknown engine {name!r} (expected one of: {', '.join(ENGINES)})")


if TYPE_CHECKING:
    from genrekit.engines.base import Engine


def __getattr__(name: str):
    # Lazy: the analysis code imports genrekit.engines.threads, which must not pull in the pool
    # machinery (multiprocessing, tqdm) that the Python API never uses.
    if name == "Engine":
        from genrekit.engines.base import Engine

        return Engine
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["ENGINES", "Engine", "EngineError", "make_engine"]
