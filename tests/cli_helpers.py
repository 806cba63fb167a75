"""Running the ``genrekit`` command from the tests: its environment, in process, and its summary line."""

from __future__ import annotations

import os
import re
from pathlib import Path

from genrekit.cli import main

REPO = Path(__file__).resolve().parents[1]
SUMMARY = re.compile(
    r"^classify: (?P<total>\d+) files?, (?P<done>\d+) done, (?P<skipped>\d+) skipped, (?P<failed>\d+) failed$",
    re.M,
)


def cli_env() -> dict:
    """This environment with the checkout first on ``PYTHONPATH``, for ``python -m genrekit`` subprocesses."""
    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    return dict(os.environ, PYTHONPATH=path)


def summary(stderr: str) -> dict:
    """The counts of classify's summary line in ``stderr`` (fails the test without one)."""
    match = SUMMARY.search(stderr)
    assert match, f"no summary line in:\n{stderr}"
    return {k: int(v) for k, v in match.groupdict().items()}


def classify_main(capsys, *args) -> tuple[int, str, str]:
    """``genrekit classify ARGS`` in this process: (exit status, stdout, stderr)."""
    code = main(["classify", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err
