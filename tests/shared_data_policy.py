"""Where the shared real data is, and what a test does when it is missing: skip, or fail under CI's switch.

The data (GTZAN and friends, read-only) is found at ``$GENREKIT_SHARED_DATA``, a path
relative to the repository unless absolute (default ``../shared/data``). Without it the
real-data tests skip, saying what is missing; with ``GENREKIT_REQUIRE_SHARED_DATA=1``
(set by ``.ci/run``) they fail instead, so a run cannot pass without them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NoReturn

import pytest

REPO = Path(__file__).resolve().parents[1]
#: The switch: any value but empty or "0" turns "shared data missing" into a failure.
REQUIRE = "GENREKIT_REQUIRE_SHARED_DATA"


def shared_data_dir() -> Path:
    """The shared data folder as configured (it may not exist)."""
    return REPO / os.environ.get("GENREKIT_SHARED_DATA", "../shared/data")  # relative: to the repo


def required() -> bool:
    """Whether this run must have the shared data (``$GENREKIT_REQUIRE_SHARED_DATA``)."""
    return os.environ.get(REQUIRE, "") not in ("", "0")


def missing(what: str) -> NoReturn:
    """End the test for want of shared data: a skip, or a failure when the switch is on."""
    if required():
        pytest.fail(f"{what}, and {REQUIRE} is set: the real-data tests must run", pytrace=False)
    pytest.skip(f"{what} (set GENREKIT_SHARED_DATA; {REQUIRE}=1 makes this a failure)")


def require(path: Path) -> Path:
    """``path`` (a file or folder under the shared data) if it exists; else :func:`missing`."""
    if not path.exists():
        missing(f"shared data not found at {path}")
    return path
