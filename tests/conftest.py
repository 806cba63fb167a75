"""Fixtures shared by the test modules; plain helpers live in the support modules beside this file.

Support modules (not tests; pytest puts this folder on ``sys.path``): ``synthetic_songs``
(songs of three synthetic genres and the small bundle trained on them), ``cli_helpers``
(running ``genrekit``), ``results_files`` (reading results stores), ``processes``
(``/proc``), ``servers`` (real servers on 127.0.0.1), ``report_runs`` (the runs the report
tests read), ``tagged_songs`` and ``own_genres_runs`` (genre-tagged libraries and the runs
``train --labels tags`` makes of them), ``shared_data_policy`` (skip or fail without the shared
data), and ``browser``, ``datasets_server``, ``fuzz_corpus``, ``ray_helpers``.
"""

import os
from pathlib import Path

import pytest

from shared_data_policy import missing, shared_data_dir
from synthetic_songs import build_bundle


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The read-only shared data folder (``$GENREKIT_SHARED_DATA``, default ``../shared/data``).

    Missing, the test skips, or fails when ``GENREKIT_REQUIRE_SHARED_DATA=1`` (CI).
    """
    path = shared_data_dir()
    if not path.is_dir():
        missing(f"shared data not found at {path}")
    return path


@pytest.fixture(autouse=True)
def _fresh_settings(monkeypatch, tmp_path_factory):
    """genrekit reads ``GENREKIT_*`` once per process (:func:`genrekit.config.settings`): each test,
    and whatever it sets with ``monkeypatch.setenv`` before genrekit first looks, starts afresh.
    genrekit's own data folder (tag journals) is a temporary one, never the user's."""
    from genrekit.config import settings

    if not os.environ.get("GENREKIT_STATE"):
        monkeypatch.setenv("GENREKIT_STATE", str(tmp_path_factory.mktemp("genrekit-state")))
    settings.cache_clear()
    yield
    settings.cache_clear()


@pytest.fixture(scope="session")
def bundle_dir(tmp_path_factory) -> Path:
    """The small test bundle of :mod:`synthetic_songs`, trained once per session."""
    # In the session's base folder, so every module shares one build.
    return build_bundle(tmp_path_factory.getbasetemp() / "classify-test-bundle")


@pytest.fixture(scope="session")
def default_bundle() -> Path:
    """The bundled default model (gtzan-musicnn), as a user gets it: what the server tests serve."""
    from genrekit.models.registry import DEFAULT_MODEL

    assert (DEFAULT_MODEL / "bundle.json").is_file(), f"{DEFAULT_MODEL}: the shipped default model is missing"
    return DEFAULT_MODEL


@pytest.fixture(scope="module")
def browser():
    """Debian's chromium driven by Playwright (never Playwright's own browser download)."""
    from browser import CHROMIUM, CHROMIUM_ARGS

    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (the test extra)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()
