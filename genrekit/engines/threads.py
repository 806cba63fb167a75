"""One thread per worker for the numeric libraries: genrekit's parallelism is its workers.

Every analysis (a file classified, a feature row extracted) runs in a worker: the process
itself with ``--jobs 1`` or the Python API, a ``--jobs N`` pool process, a server analysis
worker, a Ray task. Its matrix products are small (the mel filterbank, a head on 50 tags), so
a second BLAS thread never shortens them; but OpenBLAS, left at its default of a thread per
core, wakes its threads for them and lets them spin-wait afterwards. Measured on 2 cores with
nothing set in the environment, 20 four-minute MP3s with ``--jobs 2`` cost 29.9 CPU s for 15.5 s
of wall against 14.6 and 7.9 with one BLAS thread (issue 31): the spinning thread burnt a core.

So :func:`one_blas_thread` holds every loaded BLAS library at one thread for the length of an
analysis (threadpoolctl, which scikit-learn uses for the same purpose), whatever the environment
says, and gives back the previous setting afterwards: the Python API does not change a user's
process for good, and training (scikit-learn, PyTorch), which can use several threads, is left
alone. onnxruntime's sessions are set up the same way by :mod:`genrekit.onnx_sessions`.
"""

from __future__ import annotations

import contextlib
import functools
import sys
import threading
from collections.abc import Iterator

#: The libraries limited: BLAS (numpy's and scipy's OpenBLAS, MKL where numpy uses it).
USER_API = "blas"

_lock = threading.RLock()
_controller = None
#: ``len(sys.modules)`` when the controller last listed the loaded libraries: a new import may
#: have loaded another BLAS (scipy brings its own), so the list is redone when it grows.
_modules_seen = -1
#: Analyses inside :func:`one_blas_thread` now, and the limiter that restores the setting after the last.
_holders = 0
_limiter = None


def _threadpools():
    """A threadpoolctl controller that knows every library loaded now (rebuilt after new imports)."""
    global _controller, _modules_seen
    with _lock:
        if _controller is None or len(sys.modules) != _modules_seen:
            from threadpoolctl import ThreadpoolController

            _controller = ThreadpoolController()
            _modules_seen = len(sys.modules)
        return _controller


@contextlib.contextmanager
def one_blas_thread() -> Iterator[None]:
    """Hold the loaded BLAS libraries at one thread inside the ``with`` block (about 12 µs a use).

    Nested and concurrent uses (the server's in-process mode runs analyses on threads) share one
    limit: the first to enter sets it, the last to leave gives back the setting found before.
    """
    global _holders, _limiter
    with _lock:
        if _holders == 0:
            blas = _threadpools().select(user_api=USER_API)
            if any(pool.num_threads != 1 for pool in blas.lib_controllers):
                _limiter = blas.limit(limits=1)
        _holders += 1
    try:
        yield
    finally:
        with _lock:
            _holders -= 1
            if _holders == 0 and _limiter is not None:
                _limiter.restore_original_limits()
                _limiter = None


def on_one_blas_thread(fn):
    """Decorator: ``fn`` runs inside :func:`one_blas_thread` (the analysis entry points of the API)."""

    @functools.wraps(fn)
    def run(*args, **kwargs):
        with one_blas_thread():
            return fn(*args, **kwargs)

    return run


def blas_threads() -> int:
    """The largest thread count of the BLAS libraries loaded in this process (0 when none is)."""
    from threadpoolctl import threadpool_info

    return max((info["num_threads"] for info in threadpool_info() if info["user_api"] == USER_API), default=0)
