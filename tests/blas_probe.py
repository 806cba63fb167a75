"""A worker function that reports the BLAS threads of the process it runs in, while it runs."""

from __future__ import annotations

#: Threads a machine of that many cores would give BLAS with nothing set in the environment.
WIDE = 4


def widen_blas() -> None:
    """Give every loaded BLAS library :data:`WIDE` threads (numpy's is loaded first)."""
    import numpy  # noqa: F401 - loads numpy's OpenBLAS
    from threadpoolctl import threadpool_limits

    threadpool_limits(WIDE, user_api="blas")


class BlasProbe:
    """Returns the largest BLAS thread count of its process at the moment it is called.

    Unpickled in a worker (a pool process, a Ray worker), it first widens BLAS to :data:`WIDE`
    threads, as a 4-core machine with nothing set would have them: what it then reports says
    whether genrekit held the worker at one thread for the item.
    """

    def __init__(self) -> None:
        self.seen = 0  # also: pickle calls __setstate__ only for a non-empty state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        widen_blas()

    def __call__(self, item) -> int:
        from threadpoolctl import threadpool_info

        return max(info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas")

    def feed(self, block) -> None:
        """As a consumer of a decoded file's blocks (``classify_file(also=...)``): record the count."""
        self.seen = max(self.seen, self(None))
