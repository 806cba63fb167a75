"""``genrekit features`` end to end, on real audio files written by the tests.

Files are short synthetic signals (tones, noise, clicks) saved with soundfile in
GTZAN's layout (``blues/blues.00000.wav``); the CLI is run for real, in this process
through ``main([...])`` or as ``python -m genrekit`` in a subprocess.
"""

import io
import json
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from genrekit.audio import decode as audio
from genrekit.audio.windows import window_bounds
from genrekit.cli import main
from genrekit.features.sets import feature_set
from genrekit.audio.files import collect_audio_files
from genrekit.datasets.gtzan import gtzan_label
from genrekit.features.cache import STORE_FILENAME, FeatureStore
from processes import sigkill_when

REPO = Path(__file__).resolve().parents[1]
SR = 22050
SUMMARY = re.compile(
    r"^features: (?P<total>\d+) files?, (?P<computed>\d+) computed, "
    r"(?P<cached>\d+) from cache, (?P<failed>\d+) failed$",
    re.M,
)


# --- helpers ----------------------------------------------------------------------
def write_audio(path: Path, seconds: float, seed: int, sr: int = SR) -> Path:
    """A tone + noise + clicks signal, different for every seed, as 16-bit WAV."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    y = 0.3 * np.sin(2 * np.pi * (110 + 37 * seed) * t) + 0.05 * rng.standard_normal(t.size)
    y[:: sr // (2 + seed % 5)] += 0.8  # clicks, so there is a beat to track
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.clip(y, -1, 1), sr, subtype="PCM_16")
    return path


def gtzan_tree(root: Path, genres=("blues", "jazz"), per_genre=2, seconds=4.0) -> list[Path]:
    files = []
    for g, genre in enumerate(genres):
        for i in range(per_genre):
            files.append(write_audio(root / genre / f"{genre}.{i:05d}.wav", seconds, seed=10 * g + i))
    return files


def summary(stderr: str) -> dict:
    match = SUMMARY.search(stderr)
    assert match, f"no summary line in:\n{stderr}"
    return {k: int(v) for k, v in match.groupdict().items()}


def run_main(capsys, *args) -> tuple[int, str, str]:
    code = main(["features", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def cli_env(tmp_path: Path) -> dict:
    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    return dict(os.environ, PYTHONPATH=path, GENREKIT_CACHE=str(tmp_path / "default-cache"))


def run_cli(tmp_path: Path, *args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "genrekit", "features", *map(str, args)],
        capture_output=True, text=True, env=cli_env(tmp_path), timeout=300,
    )


def load_features(path: Path, fs) -> np.ndarray:
    return fs.compute(audio.load(path, sr=fs.sample_rate, min_samples=fs.min_samples))


@pytest.fixture(autouse=True)
def _private_default_cache(monkeypatch, tmp_path):
    # Never touch the user's ~/.cache, whatever a test forgets to pass.
    monkeypatch.setenv("GENREKIT_CACHE", str(tmp_path / "default-cache"))


# --- finding inputs -----------------------------------------------------------------
def test_collect_audio_files(tmp_path):
    (tmp_path / "d" / "sub").mkdir(parents=True)
    (tmp_path / "d" / ".hidden").mkdir()
    for name in ["b.wav", "a.FLAC", "notes.txt", ".x.wav", "sub/c.mp3", ".hidden/d.wav"]:
        (tmp_path / "d" / name).write_bytes(b"")
    (tmp_path / "odd.xyz").write_bytes(b"")
    d = tmp_path / "d"

    found = collect_audio_files([d, tmp_path / "odd.xyz", d / "b.wav", str(d) + "/./b.wav", tmp_path / "nope.wav"])
    # In the order given (issue 20), each folder's files sorted inside it.
    assert [p.relative_to(tmp_path).as_posix() for p in found] == [
        "d/a.FLAC", "d/b.wav", "d/sub/c.mp3",  # from the folder: audio only, hidden skipped, once
        "odd.xyz",  # named explicitly: taken whatever its extension
        "nope.wav",  # missing: kept so that it is reported
    ]


def test_gtzan_label():
    assert gtzan_label("data/blues/blues.00000.wav") == "blues"
    assert gtzan_label("genres/jazz/take5.mp3") == "jazz"  # a GTZAN genre folder
    assert gtzan_label("x/ambient/ambient.017.wav") == "ambient"  # <parent>.<n> naming
    assert gtzan_label("music/song.wav") == ""
    assert gtzan_label("blues.00000.wav") == ""


# --- 1. a rerun computes nothing ----------------------------------------------------
@pytest.mark.parametrize("args, out_name", [
    (["--set", "gtzan57"], "table.csv"),
    (["--set", "logmel"], "mels.npz"),
])
def test_second_run_computes_nothing(tmp_path, capsys, args, out_name):
    files = gtzan_tree(tmp_path / "data")
    out, cache = tmp_path / out_name, tmp_path / "cache"

    code, _, err = run_main(capsys, tmp_path / "data", *args, "--out", out, "--cache", cache)
    assert code == 0
    assert summary(err) == dict(total=4, computed=4, cached=0, failed=0)
    first = out.read_bytes()

    code, _, err = run_main(capsys, tmp_path / "data", *args, "--out", out, "--cache", cache)
    assert code == 0
    assert summary(err) == dict(total=4, computed=0, cached=4, failed=0)
    assert out.read_bytes() == first  # byte for byte
    assert len(files) == 4


def test_no_cache_neither_reads_nor_writes(tmp_path, capsys):
    gtzan_tree(tmp_path / "data", per_genre=1)
    cache = tmp_path / "cache"
    run_main(capsys, tmp_path / "data", "--out", tmp_path / "a.csv", "--cache", cache)
    code, _, err = run_main(capsys, tmp_path / "data", "--out", tmp_path / "b.csv", "--no-cache")
    assert code == 0
    assert summary(err) == dict(total=2, computed=2, cached=0, failed=0)
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()
    assert not (tmp_path / "default-cache").exists()


# --- 2. a killed run resumes where it stopped -----------------------------------------
def _count_entries(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)
        try:
            return con.execute("SELECT COUNT(*) FROM features").fetchone()[0]
        finally:
            con.close()
    except sqlite3.Error:  # not created yet
        return 0


@pytest.mark.slow
def test_sigkill_then_rerun_computes_only_the_rest(tmp_path):
    genres = ("blues", "jazz", "metal", "pop")
    gtzan_tree(tmp_path / "data", genres=genres, per_genre=3, seconds=8.0)  # 12 files
    total = 12
    cache, out = tmp_path / "cache", tmp_path / "table.csv"
    cmd = [sys.executable, "-m", "genrekit", "features", str(tmp_path / "data"),
           "--jobs", "1", "--cache", str(cache), "--out", str(out)]

    proc = subprocess.Popen(cmd, env=cli_env(tmp_path), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    db = cache / STORE_FILENAME
    sigkill_when(proc, lambda: _count_entries(db) >= 2, "two files cached")
    assert not out.exists()  # nothing half-written

    con = sqlite3.connect(db)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    con.close()
    with FeatureStore(cache) as store:
        kept = store.count()
    assert 2 <= kept < total
    print(f"killed with {kept} of {total} files stored")

    rerun = subprocess.run(cmd, env=cli_env(tmp_path), capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    counts = summary(rerun.stderr)
    assert counts == dict(total=total, computed=total - kept, cached=kept, failed=0)
    assert counts["computed"] >= 1

    clean = run_cli(tmp_path, tmp_path / "data", "--cache", tmp_path / "clean-cache", "--out", tmp_path / "clean.csv")
    assert clean.returncode == 0, clean.stderr
    assert out.read_bytes() == (tmp_path / "clean.csv").read_bytes()
    assert len(out.read_text().splitlines()) == 1 + total


# --- 3. bad files are reported, the rest is written -----------------------------------
def test_bad_files_are_reported_and_the_rest_written(tmp_path, capsys):
    good = gtzan_tree(tmp_path / "data")
    (tmp_path / "data" / "jazz" / "jazz.00007.mp3").write_text("this is not audio\n" * 20)
    (tmp_path / "data" / "blues" / "blues.00009.wav").write_bytes(b"")
    missing = tmp_path / "missing.wav"
    out = tmp_path / "table.csv"

    code, _, err = run_main(capsys, tmp_path / "data", missing, "--out", out, "--cache", tmp_path / "cache")
    assert code == 1
    assert summary(err) == dict(total=7, computed=4, cached=0, failed=3)
    failed = dict(re.findall(r"^  failed: (.+?): (.+)$", err, re.M))
    assert set(failed) == {
        str(tmp_path / "data" / "jazz" / "jazz.00007.mp3"),
        str(tmp_path / "data" / "blues" / "blues.00009.wav"),
        str(missing),
    }
    assert "not an audio file" in failed[str(tmp_path / "data" / "jazz" / "jazz.00007.mp3")]
    assert "empty" in failed[str(tmp_path / "data" / "blues" / "blues.00009.wav")]
    assert "not found" in failed[str(missing)]
    table = pd.read_csv(out, keep_default_na=False)
    assert list(table["filename"]) == [p.name for p in good]

    # Failures are not cached: a rerun reports them again, and takes the rest from the cache.
    code, _, err = run_main(capsys, tmp_path / "data", missing, "--out", out, "--cache", tmp_path / "cache")
    assert code == 1
    assert summary(err) == dict(total=7, computed=0, cached=4, failed=3)

    code, _, err = run_main(capsys, *good, "--out", out, "--cache", tmp_path / "cache")
    assert code == 0
    assert summary(err)["failed"] == 0


# --- 4. the Kaggle table --------------------------------------------------------------
def test_kaggle_csv_layout_labels_windows_and_parquet(tmp_path, capsys):
    data = tmp_path / "data"
    blues = write_audio(data / "blues" / "blues.00000.wav", 7.0, seed=1)  # two whole 3-s windows
    jazz = write_audio(data / "jazz" / "jazz.00003.wav", 7.0, seed=2)
    ambient = write_audio(data / "ambient" / "ambient.00001.wav", 2.0, seed=3)  # shorter than a window
    other = write_audio(data / "misc" / "song.wav", 4.0, seed=4)
    fs3 = feature_set("gtzan57", window=3)
    cache = tmp_path / "cache"

    code, _, _ = run_main(capsys, data, "--window", "3", "--out", tmp_path / "t3.csv", "--cache", cache)
    assert code == 0
    lines = (tmp_path / "t3.csv").read_text().splitlines()
    assert lines[0] == "filename,length," + ",".join(fs3.columns) + ",label"
    assert len(fs3.columns) == 57

    t3 = pd.read_csv(tmp_path / "t3.csv", keep_default_na=False)
    assert list(t3["filename"]) == [
        "ambient.00001.0.wav", "blues.00000.0.wav", "blues.00000.1.wav",
        "jazz.00003.0.wav", "jazz.00003.1.wav", "song.0.wav",
    ]
    # length = samples in the window (stop - start of window_bounds).
    lengths = [stop - start for p in (ambient, blues, jazz, other)
               for start, stop in window_bounds(sf.info(p).frames, SR, 3.0)]
    assert list(t3["length"]) == lengths == [2 * SR, 3 * SR, 3 * SR, 3 * SR, 3 * SR, 3 * SR]
    assert list(t3["label"]) == ["ambient", "blues", "blues", "jazz", "jazz", ""]
    # Full precision: the CSV reads back to exactly the computed numbers.
    np.testing.assert_array_equal(t3.loc[1:2, fs3.columns].to_numpy(), load_features(blues, fs3))
    np.testing.assert_array_equal(t3.loc[5:5, fs3.columns].to_numpy(), load_features(other, fs3))

    # Parquet: same content, read by pandas.
    code, _, _ = run_main(capsys, data, "--window", "3", "--out", tmp_path / "t3.parquet", "--cache", cache)
    assert code == 0
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "t3.parquet"), t3)

    # The 30-sec table: one row per clip, named by the file, the whole clip long.
    code, out, _ = run_main(capsys, data, "--cache", cache)  # default window 30, CSV on stdout
    assert code == 0
    t30 = pd.read_csv(io.StringIO(out), keep_default_na=False)
    assert list(t30["filename"]) == ["ambient.00001.wav", "blues.00000.wav", "jazz.00003.wav", "song.wav"]
    assert list(t30["length"]) == [2 * SR, 7 * SR, 7 * SR, 4 * SR]
    assert list(t30["label"]) == ["ambient", "blues", "jazz", ""]
    np.testing.assert_array_equal(
        t30.loc[2:2, fs3.columns].to_numpy(), load_features(jazz, feature_set("gtzan57"))
    )
    assert ambient.exists()


# --- 5. arrays: .npy folder and .npz --------------------------------------------------
def test_logmel_to_npy_folder_and_npz(tmp_path, capsys):
    files = gtzan_tree(tmp_path / "data", seconds=3.0)
    fs = feature_set("logmel", n_mels=64, hop_length=256)
    common = ["--set", "logmel", "--n-mels", "64", "--hop-length", "256", "--cache", tmp_path / "cache"]
    expected = {p.relative_to(tmp_path / "data").as_posix(): load_features(p, fs) for p in files}

    code, _, _ = run_main(capsys, tmp_path / "data", *common, "--out", tmp_path / "npy")
    assert code == 0
    meta = json.loads((tmp_path / "npy" / "feature_set.json").read_text())
    assert meta["key"] == fs.key
    assert feature_set("logmel").from_dict(meta) == fs
    written = sorted(p.relative_to(tmp_path / "npy").as_posix() for p in (tmp_path / "npy").rglob("*.npy"))
    assert written == ["blues/blues.00000.npy", "blues/blues.00001.npy", "jazz/jazz.00000.npy", "jazz/jazz.00001.npy"]
    for rel, want in expected.items():
        got = np.load(tmp_path / "npy" / rel.replace(".wav", ".npy"), allow_pickle=False)
        assert got.shape[0] == 64
        np.testing.assert_array_equal(got, want)

    code, _, _ = run_main(capsys, tmp_path / "data", *common, "--out", tmp_path / "mels.npz")
    assert code == 0
    with np.load(tmp_path / "mels.npz", allow_pickle=False) as z:
        assert sorted(z.files) == ["__feature_set__", *sorted(expected)]
        assert z["__feature_set__"].shape == () and z["__feature_set__"].dtype.kind == "U"
        assert json.loads(str(z["__feature_set__"])) == meta
        for rel, want in expected.items():
            np.testing.assert_array_equal(z[rel], want)

    # A folder holding another set's arrays is refused rather than mixed.
    code, _, err = run_main(capsys, tmp_path / "data", "--set", "mfcc", "--out", tmp_path / "npy", "--no-cache")
    assert code == 1 and "another feature set" in err


def test_usage_errors_and_version(tmp_path, capsys):
    gtzan_tree(tmp_path / "data", per_genre=1)
    with pytest.raises(SystemExit) as exc:
        main(["features", str(tmp_path / "data"), "--set", "logmel"])
    assert exc.value.code == 2
    assert "--out" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["features", str(tmp_path / "data"), "--n-mels", "40"])  # gtzan57 has fixed parameters
    assert exc.value.code == 2
    capsys.readouterr()
    code, _, err = run_main(capsys, tmp_path / "missing.wav", "--no-cache")
    assert code == 1 and "missing.wav: file not found" in err

    version = subprocess.run([sys.executable, "-m", "genrekit", "--version"],
                             capture_output=True, text=True, env=cli_env(tmp_path))
    assert version.returncode == 0 and version.stdout.startswith("genrekit ")


# --- 6. a process pool gives the same numbers -----------------------------------------
@pytest.mark.slow
def test_jobs_2_gives_the_same_numbers_as_jobs_1(tmp_path):
    gtzan_tree(tmp_path / "data", genres=("blues", "jazz", "rock"), per_genre=2, seconds=7.0)
    runs = {}
    for jobs in (1, 2):
        out = tmp_path / f"jobs{jobs}.csv"
        done = run_cli(tmp_path, tmp_path / "data", "--window", "3", "--jobs", jobs, "--no-cache", "--out", out)
        assert done.returncode == 0, done.stderr
        assert summary(done.stderr) == dict(total=6, computed=6, cached=0, failed=0)
        runs[jobs] = out.read_bytes()
    assert runs[1] == runs[2]
    assert len(runs[1].decode().splitlines()) == 1 + 6 * 2
