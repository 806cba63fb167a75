"""The command line on a real Ray cluster: ``ray start --head`` on 127.0.0.1, joined with ``--address``.

One cluster (2 CPUs, its own ports and temp folder) for the module, started as this
test's subprocess and stopped by its PID, checking that no Ray process is left. The
same commands run with ``--engine local`` give the same output; a worker killed
mid-job loses and duplicates nothing; a driver killed mid-job leaves no task running
and the rerun resumes.
"""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from genrekit.library.results import open_results
from ray_helpers import RayCluster, ray_env, ray_or_skip
from cli_helpers import summary
from results_files import jsonl_records, stored
from synthetic_songs import GENRES, song_folder, write_song

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster():
    ray_or_skip()
    c = RayCluster(num_cpus=2)
    try:
        yield c
    finally:
        c.stop()  # asserts that no process of the cluster is left


def genrekit(*args, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "genrekit", *map(str, args)], env=ray_env(),
                          capture_output=True, text=True, timeout=timeout)


def popen(*args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "genrekit", *map(str, args)], env=ray_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


@pytest.fixture(scope="module")
def songs(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("cluster-songs")
    song_folder(root, per_genre=2, seconds=5.0)
    (root / "metal" / "broken.wav").write_bytes(b"not audio at all")
    return root


def long_songs(folder: Path, n: int, seconds: float) -> list[Path]:
    return [write_song(folder / f"song{i:02d}.wav", GENRES[i % 3], seconds=seconds, seed=100 + i) for i in range(n)]


def test_classify_and_features_on_the_cluster_match_local(cluster, songs, bundle_dir, tmp_path):
    ray = ["--engine", "ray", "--address", cluster.address]
    local = genrekit("classify", songs, "--model", bundle_dir, "--format", "json")
    remote = genrekit("classify", songs, "--model", bundle_dir, "--format", "json", *ray)
    assert local.returncode == remote.returncode == 1, remote.stderr  # the broken file
    assert remote.stderr == local.stderr  # same summary, same failure and reason
    a, b = json.loads(local.stdout), json.loads(remote.stdout)
    assert [r["path"] for r in b] == [r["path"] for r in a]  # input order
    for x, y in zip(a, b):
        assert (x["label"], x["error"]) == (y["label"], y["error"])
        if x["probabilities"]:
            assert x["probabilities"].keys() == y["probabilities"].keys()
            np.testing.assert_allclose(list(y["probabilities"].values()), list(x["probabilities"].values()),
                                       atol=1e-6, rtol=0)

    cache = tmp_path / "cache"
    local = genrekit("features", songs, "--window", "3", "--no-cache")
    remote = genrekit("features", songs, "--window", "3", "--cache", cache, *ray)
    assert remote.returncode == local.returncode == 1, remote.stderr
    rows_a, rows_b = list(csv.reader(io.StringIO(local.stdout))), list(csv.reader(io.StringIO(remote.stdout)))
    assert rows_a[0] == rows_b[0] and [r[0] for r in rows_a] == [r[0] for r in rows_b]
    numeric = [i for i, v in enumerate(rows_a[1]) if _is_number(v)]
    np.testing.assert_allclose([[float(r[i]) for i in numeric] for r in rows_b[1:]],
                               [[float(r[i]) for i in numeric] for r in rows_a[1:]], atol=1e-6, rtol=1e-6)
    assert "features: 7 files, 6 computed, 0 from cache, 1 failed" in remote.stderr
    again = genrekit("features", songs, "--window", "3", "--cache", cache, *ray)
    assert "features: 7 files, 0 computed, 6 from cache, 1 failed" in again.stderr
    assert again.stdout == remote.stdout


def test_evaluate_on_an_audio_folder_through_the_cluster(cluster, bundle_dir, tmp_path):
    data = tmp_path / "data"
    song_folder(data, per_genre=2, seconds=4.0)
    ray = ["--engine", "ray", "--address", cluster.address]
    local = genrekit("evaluate", "--model", bundle_dir, "--data", data, "--cache", tmp_path / "c1")
    remote = genrekit("evaluate", "--model", bundle_dir, "--data", data, "--cache", tmp_path / "c2", *ray)
    assert local.returncode == remote.returncode == 0, remote.stderr
    assert "accuracy" in remote.stdout and remote.stdout == local.stdout


def test_a_worker_killed_mid_job_loses_and_duplicates_nothing(cluster, bundle_dir, tmp_path):
    total = 16
    long_songs(tmp_path / "music", total, seconds=12.0)
    out = tmp_path / "results.jsonl"
    args = ["classify", tmp_path / "music", "--model", bundle_dir, "--out", out,
            "--engine", "ray", "--address", cluster.address]
    proc = popen(*args)
    deadline = time.monotonic() + 120
    killed = None
    while killed is None:
        assert proc.poll() is None, f"the run ended before a worker could be killed: {proc.stderr.read()}"
        assert time.monotonic() < deadline, "no worker ever ran a file"
        busy = cluster.busy_workers()
        if busy and stored(out) >= 1:
            os.kill(busy[0], signal.SIGKILL)
            killed = busy[0]
        time.sleep(0.01)
    assert stored(out) < total, "killed too late: the job was over"
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert summary(err) == dict(total=total, done=total, skipped=0, failed=0)
    records = jsonl_records(out)
    assert sorted(Path(r["path"]).name for r in records) == [f"song{i:02d}.wav" for i in range(total)]

    rerun = genrekit(*args)  # a second run finds everything done
    assert summary(rerun.stderr) == dict(total=total, done=0, skipped=total, failed=0)
    assert len(jsonl_records(out)) == total


def test_a_killed_driver_keeps_finished_files_and_the_rerun_resumes(cluster, bundle_dir, tmp_path):
    total = 16
    long_songs(tmp_path / "music", total, seconds=12.0)
    out = tmp_path / "results.sqlite"
    args = ["classify", tmp_path / "music", "--model", bundle_dir, "--out", out,
            "--engine", "ray", "--address", cluster.address]
    proc = popen(*args)
    deadline = time.monotonic() + 120
    while stored(out) < 2:
        assert proc.poll() is None, f"the run ended before it could be killed: {proc.stderr.read()}"
        assert time.monotonic() < deadline, "no two results were stored within 120 s"  # a hang guard
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    kept = stored(out)
    assert 2 <= kept < total, "killed too late to show a resume"

    # The cluster stops the dead driver's tasks: no worker goes on with its files.
    deadline = time.monotonic() + 60
    while cluster.busy_workers():
        assert time.monotonic() < deadline, "tasks of the killed driver still running"
        time.sleep(0.2)

    rerun = genrekit(*args)
    assert rerun.returncode == 0, rerun.stderr
    assert summary(rerun.stderr) == dict(total=total, done=total - kept, skipped=kept, failed=0)
    with open_results(out) as store:
        records = store.records()
    assert sorted(Path(r["path"]).name for r in records) == [f"song{i:02d}.wav" for i in range(total)]


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
