"""Engines without Ray: the flags, the local engine importing no Ray, and the message when Ray is missing."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from genrekit.engines import make_engine
from genrekit.engines.local import LocalEngine
from cli_helpers import cli_env
from synthetic_songs import write_song

#: Runs ``genrekit ARGS`` with Ray made unimportable (``import ray`` raises ImportError),
#: then says whether anything imported Ray.
WITHOUT_RAY = (
    "import sys; sys.modules['ray'] = None\n"
    "from genrekit.cli import main\n"
    "code = main(sys.argv[1:])\n"
    "sys.exit(code)\n"
)
#: Runs ``genrekit ARGS`` and prints which Ray modules got imported.
RAY_IMPORTED = (
    "import sys\n"
    "from genrekit.cli import main\n"
    "code = main(sys.argv[1:])\n"
    "print('RAY:' + ' '.join(sorted(m for m in sys.modules if m == 'ray' or m.startswith('ray.'))))\n"
    "sys.exit(code)\n"
)


def run_python(code: str, *args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], env=cli_env(),
                          capture_output=True, text=True, timeout=300)


def test_make_engine():
    assert isinstance(make_engine("local"), LocalEngine) and make_engine("local").jobs == 1
    assert make_engine("local", jobs=0).jobs == 0
    with pytest.raises(ValueError, match="--address: only with --engine ray"):
        make_engine("local", address="auto")
    with pytest.raises(ValueError, match="unknown engine"):
        make_engine("spark")


def test_local_engine_never_imports_ray(tmp_path, bundle_dir):
    song = write_song(tmp_path / "song.wav", "classical", seconds=4.0)
    for verb in (["features", song, "--no-cache", "--window", "3"],
                 ["classify", song, "--model", bundle_dir, "--jobs", "2", "--engine", "local"]):
        done = run_python(RAY_IMPORTED, *verb)
        assert done.returncode == 0, done.stderr
        assert done.stdout.rstrip().endswith("RAY:"), done.stdout[-300:]


@pytest.mark.parametrize("verb", ["classify", "features", "evaluate"])
def test_engine_ray_without_ray_says_how_to_install_it(tmp_path, bundle_dir, verb):
    song = write_song(tmp_path / "classical" / "song.wav", "classical", seconds=4.0)
    args = {"classify": ["classify", song, "--model", bundle_dir],
            "features": ["features", song, "--no-cache"],
            "evaluate": ["evaluate", "--model", bundle_dir, "--data", tmp_path, "--cache", tmp_path / "c"]}[verb]
    done = run_python(WITHOUT_RAY, *args, "--engine", "ray")
    assert done.returncode == 1
    assert done.stderr == (f"genrekit {verb}: error: --engine ray needs Ray, which is not installed: "
                           f"pip install 'genrekit[ray]'\n")


def test_address_needs_the_ray_engine(tmp_path, capsys):
    from genrekit.cli import main

    song = write_song(tmp_path / "song.wav", "classical", seconds=4.0)
    with pytest.raises(SystemExit) as exit_info:
        main(["features", str(song), "--no-cache", "--address", "auto"])
    assert exit_info.value.code == 2
    assert "--address: only with --engine ray" in capsys.readouterr().err


def test_an_address_where_no_cluster_runs_fails_in_seconds(tmp_path):
    pytest.importorskip("ray", reason="Ray is not installed (pip install 'genrekit[ray]')")
    from ray_helpers import free_ports

    song = write_song(tmp_path / "song.wav", "classical", seconds=4.0)
    [port] = free_ports(1)
    done = subprocess.run([sys.executable, "-m", "genrekit", "features", str(song), "--no-cache",
                           "--engine", "ray", "--address", f"127.0.0.1:{port}"],
                          env=cli_env(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert done.stderr == (f"genrekit features: error: cannot join the Ray cluster at 127.0.0.1:{port}: nothing "
                           f"answers there (Connection refused); is `ray start --head --port {port}` running on "
                           f"127.0.0.1?\n")


@pytest.mark.slow
def test_engine_ray_starts_its_own_instance_and_leaves_nothing_behind(tmp_path):
    pytest.importorskip("ray", reason="Ray is not installed (pip install 'genrekit[ray]')")
    import shutil

    from ray_helpers import processes_with_environment, ray_env, short_temp_dir

    for i, kind in enumerate(("classical", "hiphop", "metal")):
        write_song(tmp_path / "songs" / f"{kind}.wav", kind, seconds=4.0, seed=i)
    ray_tmp = short_temp_dir()  # Ray's files go there, and its processes carry it in their environment
    env = dict(ray_env(), RAY_TMPDIR=ray_tmp)
    args = [sys.executable, "-m", "genrekit", "features", str(tmp_path / "songs"), "--no-cache", "--window", "3"]
    try:
        # One BLAS/OpenMP thread, as Ray gives a 1-CPU task: then even the last digits agree
        # (with more threads, sums taken in another order differ by ~1e-7 relative).
        local = subprocess.run(args, env=dict(cli_env(), OMP_NUM_THREADS="1"), capture_output=True, text=True,
                               timeout=300)
        remote = subprocess.run([*args, "--engine", "ray", "--jobs", "2"], env=env, capture_output=True,
                                text=True, timeout=300)
        assert local.returncode == remote.returncode == 0, remote.stderr
        assert remote.stdout == local.stdout and remote.stderr == local.stderr
        assert (Path(ray_tmp) / "ray").is_dir()  # it really started one, there
        deadline = time.monotonic() + 60  # a hang guard
        while processes_with_environment(ray_tmp) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not processes_with_environment(ray_tmp), "Ray processes still alive 60 s after the run"
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)


def test_a_packed_model_loads_in_memory_and_is_checked(tmp_path, bundle_dir, monkeypatch):
    """Workers rebuild a packed model from its bytes without writing a file (a worker killed while
    loading leaves no temporary folder), and the bytes are checked as a folder would be."""
    import pickle
    import tempfile

    from genrekit.errors import BundleError
    from genrekit.models.registry import PackedModel, load_model

    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(tempfile, "tempdir", None)  # re-read TMPDIR
    clf = load_model(bundle_dir)
    packed = pickle.loads(pickle.dumps(PackedModel.of(clf)))
    model = packed.load()
    assert model.labels == clf.labels and type(model) is type(clf)
    assert list(tmp_path.iterdir()) == []
    weights = clf.bundle.meta["weights"]["file"]
    broken = PackedModel({**packed.files, weights: packed.files[weights][:-1] + b"x"}, "broken")
    with pytest.raises(BundleError, match="does not match the checksum"):
        broken.load()
