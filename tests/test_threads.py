"""Every worker runs its analysis on one BLAS thread (issue 31): no thread spins beside it.

OpenBLAS starts a thread per core and lets them spin-wait after each product; with the small
products of an analysis that only burns a core. The probe widens BLAS to 4 threads where it
runs, as a 4-core machine with nothing set in the environment would, and reports the count
while the item is processed: genrekit must have brought it to 1. Nothing is timed.
"""

from __future__ import annotations

import pytest
from threadpoolctl import threadpool_info, threadpool_limits

from blas_probe import WIDE, BlasProbe
from genrekit.engines.batch import run_batch
from genrekit.engines.threads import blas_threads, one_blas_thread
from synthetic_songs import write_song


def test_one_blas_thread_holds_blas_at_one_and_gives_the_setting_back():
    with threadpool_limits(WIDE, user_api="blas"):
        assert blas_threads() == WIDE
        with one_blas_thread():
            assert blas_threads() == 1
            with one_blas_thread():  # nested: still one, and the outer exit restores
                assert blas_threads() == 1
            assert blas_threads() == 1
        assert blas_threads() == WIDE  # the Python API leaves a user's process as it found it
    assert {info["user_api"] for info in threadpool_info()} >= {"blas"}


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_batch_worker_runs_on_one_blas_thread(jobs):
    with threadpool_limits(WIDE, user_api="blas"):  # this process too (jobs=1 runs here)
        results = list(run_batch(range(6), BlasProbe(), jobs=jobs))
    assert all(r.ok for r in results), [r.failure for r in results if not r.ok]
    assert [r.value for r in results] == [1] * 6


def test_classifying_a_file_in_python_runs_on_one_blas_thread(tmp_path, bundle_dir):
    from genrekit.models.registry import load_model

    song = write_song(tmp_path / "song.wav", seconds=8)
    model = load_model(bundle_dir)
    probe = BlasProbe()
    with threadpool_limits(WIDE, user_api="blas"):
        model.classify_file(song, also=[probe])
        assert blas_threads() == WIDE
    assert probe.seen == 1
