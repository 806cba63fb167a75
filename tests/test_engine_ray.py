"""The Ray engine on a real local Ray instance (``ray.init`` in this process, 2 CPUs).

Same numbers as the local engine for ``classify`` and ``features``, bad files reported,
crashes pinned on the file that crashes, the worker function sent once per worker
process, files named as given, and workers that cannot read the inputs stopping the
job before it starts. ``test_engine_ray_cluster.py`` runs the command line against a
cluster started with ``ray start``, and kills workers and the driver.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from genrekit.errors import EngineError
from genrekit.engines.local import LocalEngine
from genrekit.features.extract import extract
from genrekit.features.sets import feature_set
from genrekit.library.run import LibraryRun
from genrekit.features.cache import FeatureStore
from ray_helpers import (
    RAY_ENV, TESTS, CountingWorker, crash_on_crash_wav, descendants, processes_mentioning, ray_or_skip,
    short_temp_dir,
)
from synthetic_songs import song_folder

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ray_instance():
    """One local Ray instance for the module: 2 CPUs, no dashboard, its own short temp folder."""
    ray = ray_or_skip()
    saved = dict(os.environ)
    os.environ.update(RAY_ENV)
    # Workers inherit this environment: they import genrekit from this checkout and the
    # test worker functions from this folder.
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TESTS.parent), str(TESTS),
                                                             saved.get("PYTHONPATH")]))
    temp_dir = short_temp_dir()
    ray.init(num_cpus=2, include_dashboard=False, _temp_dir=temp_dir, log_to_driver=False)
    try:
        yield ray
    finally:
        ray.shutdown()
        os.environ.clear()
        os.environ.update(saved)
        deadline = time.monotonic() + 30
        while ray_processes(temp_dir) and time.monotonic() < deadline:
            time.sleep(0.2)
        left = ray_processes(temp_dir)
        shutil.rmtree(temp_dir, ignore_errors=True)
        assert not left, f"Ray processes left behind by ray.shutdown(): {left}"


def ray_processes(temp_dir: str) -> list[tuple[int, str]]:
    """Processes of the instance this module started: below this process, or naming its temp folder."""
    below = {pid for pid in descendants(os.getpid())
             if Path(f"/proc/{pid}/cmdline").exists()}
    found = set(processes_mentioning(temp_dir))
    for pid in below:
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if cmdline.startswith("ray::") or "/ray/" in cmdline:
            found.add((pid, cmdline.strip()))
    return sorted(found)


@pytest.fixture(scope="module")
def songs(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("ray-songs")
    song_folder(root, per_genre=2, seconds=5.0)
    (root / "metal" / "broken.wav").write_bytes(b"RIFF\x00\x00not really a wav")
    return root


def _engine():
    from genrekit.engines.ray import RayEngine

    return RayEngine()  # joins the instance this process started


def test_classify_on_ray_matches_local(ray_instance, songs, bundle_dir):
    from genrekit.audio.files import collect_audio_files

    paths = collect_audio_files([songs])
    # With timelines, so that the windows are compared too (a run makes them only when asked).
    local = sorted(LibraryRun(paths, bundle_dir, progress=False, timeline=True), key=lambda r: r.index)
    with _engine() as engine:
        run = LibraryRun(paths, bundle_dir, engine=engine, progress=False, timeline=True)
        remote = sorted(run, key=lambda r: r.index)
    assert [r.path for r in remote] == [r.path for r in local] == paths
    for a, b in zip(local, remote):
        assert a.record["label"] == b.record["label"]
        assert a.record["error"] == b.record["error"]
        if a.ok:
            np.testing.assert_allclose([b.record["probabilities"][g] for g in run.labels],
                                       [a.record["probabilities"][g] for g in run.labels], atol=1e-6, rtol=0)
            assert len(a.record["timeline"]) == len(b.record["timeline"]) > 0
    assert run.summary.done == len(paths) - 1
    [failure] = run.summary.failed
    assert failure.item == str(songs / "metal" / "broken.wav") and "not an audio file" in failure.reason


def test_the_unknown_rate_travels_to_ray_tasks(ray_instance, songs, bundle_dir, tmp_path_factory):
    """Ray workers rebuild the model from its bytes: the run's false-unknown rate must go with each task."""
    from genrekit.audio.files import collect_audio_files
    from genrekit.models.registry import load_model
    from synthetic_songs import build_open_bundle

    bundle = build_open_bundle(tmp_path_factory.getbasetemp() / "ray-unknown-rate-bundle", bundle_dir)
    paths = [p for p in collect_audio_files([songs]) if p.name != "broken.wav"]

    def flags(model, engine=None):
        return {r.path: (r.prediction.unknown, r.prediction.unknown_score)
                for r in LibraryRun(paths, model, engine=engine, progress=False)}

    moved = load_model(bundle).at_unknown_rate(0.95)
    local = flags(moved)
    with _engine() as engine:
        remote = flags(moved, engine)
    assert remote == local and all(u is (s >= 1 - 0.95) for u, s in remote.values())
    assert remote != flags(load_model(bundle))  # some songs are unknown at 0.95 and not at the stored 0.05


def test_features_on_ray_match_local_and_fill_the_cache(ray_instance, songs, tmp_path):
    from genrekit.audio.files import collect_audio_files

    paths = collect_audio_files([songs])
    fs = feature_set("gtzan57", window=3.0)
    local, _ = extract(paths, fs, progress=False)
    with _engine() as engine, FeatureStore(tmp_path / "cache") as store:
        remote, summary = extract(paths, fs, store=store, engine=engine, progress=False)
        assert (summary.done, summary.cached, len(summary.failed)) == (len(paths) - 1, 0, 1)
        assert store.count(fs) == len(paths) - 1  # stored by this process as each arrived
        again, summary2 = extract(paths, fs, store=store, engine=engine, progress=False)
        assert (summary2.done, summary2.cached) == (0, len(paths) - 1)  # the bad file is tried again
    assert [r.path for r in remote] == [r.path for r in local] == [r.path for r in again]
    for a, b in zip(local, remote):
        np.testing.assert_allclose(b.array, a.array, atol=1e-6, rtol=1e-6)
        assert a.n_samples == b.n_samples


def test_worker_function_is_sent_once_per_worker_process(ray_instance, tmp_path):
    items = [str(tmp_path / f"f{i}.wav") for i in range(16)]
    with _engine() as engine:
        results = list(engine.run(items, CountingWorker()))
    assert all(r.ok for r in results), [r.failure for r in results if not r.ok]
    assert sorted(r.item for r in results) == sorted(items)  # each item once
    counts: dict[int, set[int]] = {}
    for r in results:
        pid, unpickled, path = r.value
        assert path == r.item  # absolute already: sent as given
        counts.setdefault(pid, set()).add(unpickled)
    assert os.getpid() not in counts
    assert all(c == {1} for c in counts.values()), counts  # 1 MiB "model" unpickled once per process


def test_a_ray_task_runs_on_one_blas_thread(ray_instance, tmp_path):
    from blas_probe import BlasProbe

    items = [str(tmp_path / f"f{i}.wav") for i in range(6)]
    with _engine() as engine:
        results = list(engine.run(items, BlasProbe()))  # widens BLAS to 4 threads in each Ray worker
    assert all(r.ok for r in results), [r.failure for r in results if not r.ok]
    assert [r.value for r in results] == [1] * 6


def test_crashes_are_pinned_on_the_file_and_names_stay_as_given(ray_instance, tmp_path, monkeypatch):
    from genrekit.engines.batch import CRASH_REASON
    from genrekit.engines.ray import RayEngine

    monkeypatch.chdir(tmp_path)
    items = ["a.wav", "crash.wav", "b.wav", "c.wav"]
    with RayEngine(max_retries=1) as engine:
        results = {r.item: r for r in engine.run(items, crash_on_crash_wav)}
    assert sorted(results) == sorted(items)
    assert results["crash.wav"].failure.reason == CRASH_REASON
    assert results["crash.wav"].failure.item == "crash.wav"  # relative, as given, not the path sent
    assert {i: r.value for i, r in results.items() if r.ok} == {"a.wav": "a.wav", "b.wav": "b.wav", "c.wav": "c.wav"}


def test_inputs_workers_cannot_read_stop_the_job_before_it_starts(ray_instance, songs, tmp_path, bundle_dir):
    # A file this process reads but Ray's workers do not: /proc/self/fd/N is this
    # process's descriptor N, which a worker does not have - as a laptop's folder is
    # not on a cluster's nodes.
    from genrekit.audio.files import collect_audio_files

    fd = os.open(songs / "classical" / "classical.0.wav", os.O_RDONLY)
    high = os.dup2(fd, 987)
    os.close(fd)
    try:
        (tmp_path / "here-only.wav").symlink_to(f"/proc/self/fd/{high}")
        paths = collect_audio_files([tmp_path])
        assert paths and os.access(paths[0], os.R_OK)
        with _engine() as engine:
            with pytest.raises(EngineError, match=r"cannot read .*here-only\.wav .*every node"):
                list(LibraryRun(paths, bundle_dir, engine=engine, progress=False))
        # The local engine reads it, so it is not a bad file.
        [result] = list(LibraryRun(paths, bundle_dir, engine=LocalEngine(1), progress=False))
        assert result.ok
    finally:
        os.close(high)
