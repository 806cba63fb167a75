"""Shared pytest fixtures."""

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The read-only shared data folder (``$GENREKIT_SHARED_DATA``, default ``../shared/data``)."""
    path = REPO / os.environ.get("GENREKIT_SHARED_DATA", "../shared/data")  # relative: to the repo
    if not path.is_dir():
        pytest.skip(f"shared data not found at {path} (set GENREKIT_SHARED_DATA)")
    return path


@pytest.fixture(autouse=True)
def _fresh_settings():
    """genrekit reads ``GENREKIT_*`` once per process (:func:`genrekit.config.settings`): each test,
    and whatever it sets with ``monkeypatch.setenv`` before genrekit first looks, starts afresh."""
    from genrekit.config import settings

    settings.cache_clear()
    yield
    settings.cache_clear()
