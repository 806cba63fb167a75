"""``genrekit classify`` and the Python API, end to end, on real files the tests write.

The model is a real bundle built once per session (the ``bundle_dir`` fixture of
``conftest.py``): a scikit-learn logistic regression on the 57 GTZAN features of short
synthetic clips of three kinds (sustained harmonic tones = "classical", regular clicks =
"hiphop", loud broadband noise = "metal"; see ``synthetic_songs.py``), saved with 3-s
windows and a 1.5-s hop so that the test songs can be a few seconds long. The bundled
default model is used where the test is about it (skipped, saying so, while it is not
built yet).
"""

from __future__ import annotations

import functools
import csv
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import soundfile as sf

from cli_helpers import classify_main, cli_env, summary
from genrekit.cli import main
from genrekit.tagging.names import NameMap
from synthetic_songs import GENRES, SR, song_folder, write_song


def default_model_or_skip():
    from genrekit.models.registry import DEFAULT_MODEL

    if not (DEFAULT_MODEL / "bundle.json").exists():
        pytest.skip(f"the bundled default model is not built yet ({DEFAULT_MODEL}/bundle.json missing)")
    return DEFAULT_MODEL


def check_timeline(timeline: list[dict], duration: float, labels) -> None:
    """Windows cover the whole song: start 0, end at the duration, no gaps, rows sum to 1."""
    assert timeline[0]["start"] == 0.0
    assert timeline[-1]["end"] == pytest.approx(duration, abs=1e-3)
    for before, after in zip(timeline, timeline[1:]):
        assert before["start"] < after["start"] <= before["end"]  # contiguous or overlapping
        assert before["end"] <= after["end"]
    for window in timeline:
        assert set(window["probabilities"]) == set(labels)
        assert sum(window["probabilities"].values()) == pytest.approx(1.0, abs=1e-3)  # 4-decimal outputs


# --- the command's formats ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def songs(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("songs")
    song_folder(root)
    (root / ".hidden.wav").write_bytes((root / "metal" / "metal.0.wav").read_bytes())
    (root / "notes.txt").write_text("not a song")
    return root


def test_json_lists_every_file_with_every_genre(capsys, songs, bundle_dir):
    code, out, err = classify_main(capsys, songs, "--model", bundle_dir, "--format", "json")
    assert code == 0, err
    results = json.loads(out)
    assert [Path(r["path"]).name for r in results] == ["classical.0.wav", "hiphop.0.wav", "metal.0.wav"]
    for r in results:
        assert list(r) == ["path", "label", "unknown", "unknown_score", "name", "probabilities", "duration", "model", "notes", "error"]
        assert set(r["probabilities"]) == set(GENRES)
        assert sum(r["probabilities"].values()) == pytest.approx(1.0, abs=1e-3)
        scores = list(r["probabilities"].values())
        assert scores == sorted(scores, reverse=True) and r["label"] == next(iter(r["probabilities"]))
        assert r["label"] == Path(r["path"]).parent.name  # the synthetic genres are easy
        assert r["duration"] == pytest.approx(5.0, abs=1e-3) and r["error"] is None
        assert r["model"] == bundle_dir.name
    assert summary(err) == dict(total=3, done=3, skipped=0, failed=0)

    code, out2, _ = classify_main(capsys, songs, "--model", bundle_dir, "--format", "json", "--top", "2")
    top2 = json.loads(out2)
    for full, short in zip(results, top2):
        assert list(short["probabilities"].items()) == list(full["probabilities"].items())[:2]


def test_csv_table_and_jsonl_agree_with_json(capsys, songs, bundle_dir, tmp_path):
    # Classified once into a results store; the other formats are answered from it.
    store = ["--out", tmp_path / "results.sqlite"]
    _, out, _ = classify_main(capsys, songs, "--model", bundle_dir, "--format", "json", *store)
    results = json.loads(out)

    code, out, err = classify_main(capsys, songs, "--model", bundle_dir, "--format", "csv", *store)
    assert summary(err)["skipped"] == 3
    assert code == 0
    lines = out.splitlines()
    labels = sorted(GENRES)  # the bundle's label order: LogisticRegression.classes_
    assert lines[0] == ",".join(["path", "label", "unknown", "unknown_score", *labels, "duration", "notes", "error"])
    for cells, r in zip(list(csv.reader(io.StringIO(out)))[1:], results):
        assert cells[:2] == [r["path"], r["label"]] and cells[-1] == ""
        assert cells[3] == "" and [float(c) for c in cells[4:-3]] == [r["probabilities"][g] for g in labels]
        assert float(cells[-3]) == r["duration"] and cells[-2] == "; ".join(r["notes"])

    code, out, _ = classify_main(capsys, songs, "--model", bundle_dir, "--format", "jsonl", *store)
    assert [json.loads(line) for line in out.splitlines()] == results

    code, out, _ = classify_main(capsys, songs, "--model", bundle_dir, "--format", "table", "--top", "2", *store)
    header, *rows = out.splitlines()
    assert header.split() == ["path", "genre", "score", "next"]
    assert [line[len("  note: "):] for line in rows if line.startswith("  note: ")] == [
        n for r in results for n in r["notes"]]
    rows = [line for line in rows if not line.startswith("  ")]
    show = NameMap.default().display  # a table shows genres by their display names
    for row, r in zip(rows, results):
        (first, p1), (second, p2) = list(r["probabilities"].items())[:2]
        assert row.split() == [r["path"], show(first), f"{p1:.4f}", show(second), f"{p2:.4f}"]
    assert len({row.index(" " + r["name"]) for row, r in zip(rows, results)}) == 1  # aligned


def test_timeline_windows_cover_every_song(capsys, songs, bundle_dir, tmp_path):
    odd = write_song(tmp_path / "odd.flac", "hiphop", seconds=8.2, seed=5)  # a tail shorter than the hop
    short = write_song(tmp_path / "short.wav", "metal", seconds=1.2, seed=6)  # shorter than one window
    code, out, err = classify_main(capsys, songs, odd, short, "--model", bundle_dir, "--format", "json",
                                   "--timeline")
    assert code == 0, err
    results = json.loads(out)
    assert len(results) == 5
    for r in results:
        check_timeline(r["timeline"], r["duration"], GENRES)
        mean = {g: np.mean([w["probabilities"][g] for w in r["timeline"]]) for g in GENRES}
        assert mean == pytest.approx(r["probabilities"], abs=2e-4)  # the song is its windows' mean (4 decimals)
    by_name = {Path(r["path"]).name: r for r in results}
    assert [(w["start"], w["end"]) for w in by_name["short.wav"]["timeline"]] == [(0.0, 1.2)]
    assert by_name["odd.flac"]["timeline"][-1]["end"] == 8.2

    code, out, _ = classify_main(capsys, songs / "metal", "--model", bundle_dir, "--timeline")  # a table
    assert re.search(r"^  0:00\.0-0:03\.0  Metal \d\.\d{4}$", out, re.M)  # the table lists windows too


def test_bad_files_are_listed_and_the_rest_classified(capsys, songs, bundle_dir, tmp_path):
    folder = tmp_path / "mixed"
    write_song(folder / "good.wav", "metal", seed=3)
    write_song(folder / "sub" / "good.ogg", "classical", seed=4)
    (folder / "text.mp3").write_text("this is not audio\n" * 50)
    (folder / "empty.wav").write_bytes(b"")
    code, out, err = classify_main(capsys, folder, "--model", bundle_dir, "--format", "json")
    assert code == 1
    results = {Path(r["path"]).name: r for r in json.loads(out)}
    assert sorted(results) == ["empty.wav", "good.ogg", "good.wav", "text.mp3"]
    for name in ("empty.wav", "text.mp3"):
        r = results[name]
        assert r["label"] is None and r["probabilities"] is None and r["duration"] is None
        assert r["error"]
        assert f"failed: {r['path']}: {r['error']}" in err
    assert "empty" in results["empty.wav"]["error"]
    assert results["good.wav"]["label"] == "metal" and results["good.ogg"]["label"] == "classical"
    assert summary(err) == dict(total=4, done=2, skipped=0, failed=2)

    code, out, _ = classify_main(capsys, folder, "--model", bundle_dir, "--format", "csv")
    rows = {Path(line.split(",")[0]).name: line for line in out.splitlines()[1:]}
    assert rows["empty.wav"].startswith("empty.wav,,,,,,,")  # named relative to the folder; blank label, genres, duration, notes
    code, out, _ = classify_main(capsys, folder, "--model", bundle_dir)
    assert re.search(r"text\.mp3 +error: not an audio file", out)


def test_usage_errors(capsys, songs, bundle_dir, tmp_path):
    for args, message in (
        (["--format", "csv", "--timeline"], "--timeline: not available in csv"),
        (["--dry-run"], "--dry-run: only with --write-tags"),
        (["--top", "0"], "expected a positive integer"),
    ):
        with pytest.raises(SystemExit) as exc:
            main(["classify", str(songs), "--model", str(bundle_dir), *args])
        assert exc.value.code == 2
        assert message in capsys.readouterr().err

    code, _, err = classify_main(capsys, songs, "--model", tmp_path / "nowhere")
    assert code == 1 and "no such model" in err and "nowhere" in err
    code, _, err = classify_main(capsys, tmp_path, "--model", bundle_dir)
    assert code == 1 and "no audio files found" in err


def test_out_file_formats_and_the_real_command(songs, bundle_dir, tmp_path):
    out = tmp_path / "genres.csv"
    proc = subprocess.run([sys.executable, "-m", "genrekit", "classify", str(songs), "--model", str(bundle_dir),
                           "--out", str(out)], capture_output=True, text=True, env=cli_env(), timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""  # the results went to the file
    assert out.read_text().startswith("path,label,unknown,unknown_score,classical,hiphop,metal,duration,notes,error\n")
    assert len(out.read_text().splitlines()) == 4
    assert summary(proc.stderr)["done"] == 3


# --- pools ----------------------------------------------------------------------------------------
def _model_in_worker(item, model):
    # Module-level, so spawned pool processes can import it.
    from genrekit import load_model

    clf = load_model(model)
    _KEEP.append(clf)  # kept alive: a new object could not reuse a freed one's id
    return os.getpid(), id(clf)


_KEEP: list = []


@pytest.mark.slow
def test_pool_workers_load_the_model_once_and_jobs_2_equals_jobs_1(capsys, songs, bundle_dir, tmp_path):
    from genrekit.engines.batch import run_batch

    outcomes = [r.value for r in run_batch(range(8), functools.partial(_model_in_worker, model=str(bundle_dir)),
                                           jobs=2)]
    by_pid: dict[int, set] = {}
    for pid, ident in outcomes:
        by_pid.setdefault(pid, set()).add(ident)
    assert os.getpid() not in by_pid  # really in other processes
    assert all(len(ids) == 1 for ids in by_pid.values()), by_pid  # one load per worker process

    args = [songs, "--model", bundle_dir, "--format", "json", "--timeline"]
    code1, out1, _ = classify_main(capsys, *args, "--jobs", "1")
    code2, out2, err2 = classify_main(capsys, *args, "--jobs", "2")
    assert code1 == code2 == 0, err2
    assert out1 == out2  # same numbers, same (input) order


# --- the Python API ---------------------------------------------------------------------------
def test_python_api(bundle_dir, tmp_path):
    import soxr

    from genrekit import classify, load_model

    path = write_song(tmp_path / "song.wav", "hiphop", seed=8)
    ranked = classify(path, model=bundle_dir)
    assert [r["label"] for r in ranked][0] == "hiphop"
    assert sorted(r["label"] for r in ranked) == sorted(GENRES)
    scores = [r["score"] for r in ranked]
    assert scores == sorted(scores, reverse=True) and sum(scores) == pytest.approx(1.0, abs=1e-3)
    assert classify([path, path], model=bundle_dir, top_k=1) == [ranked[:1], ranked[:1]]

    model = load_model(bundle_dir)
    assert load_model(bundle_dir) is model  # loaded once per process
    assert model.labels == sorted(GENRES) and model.sample_rate == SR

    y, sr = sf.read(path, dtype="float32")
    proba = model.predict_proba(y, sr)
    assert proba.shape == (3,) and proba.sum() == pytest.approx(1.0, abs=1e-9)
    assert dict(zip(model.labels, proba)) == pytest.approx({r["label"]: r["score"] for r in ranked}, abs=1e-4)
    timeline = model.timeline(y, sr)
    check_timeline(timeline, len(y) / sr, GENRES)

    # Another rate is resampled to the model's; stereo is averaged.
    y44 = soxr.resample(y, sr, 44100, quality="HQ")
    proba44 = model.predict_proba(np.stack([y44, y44]), 44100)
    assert proba44.sum() == pytest.approx(1.0, abs=1e-9)
    assert proba44 == pytest.approx(proba, abs=0.02)
    check_timeline(model.timeline(y44, 44100), round(len(y44) / 44100, 3), GENRES)
    assert classify(y44, model=bundle_dir, sr=44100)[0]["label"] == "hiphop"
    with pytest.raises(ValueError, match="sr="):
        classify(y44, model=bundle_dir)


def test_default_model_through_the_api(tmp_path):
    default_model_or_skip()
    from genrekit import classify, load_model

    ranked = classify(write_song(tmp_path / "song.wav", "metal", seconds=31.0, seed=2))
    assert sum(r["score"] for r in ranked) == pytest.approx(1.0, abs=1e-3)
    assert sorted(r["label"] for r in ranked) == sorted(load_model().labels)
    assert load_model() is load_model(None)


# --- 2. multi-genre songs -------------------------------------------------------------------------
def test_timeline_follows_a_change_of_genre(shared_data, tmp_path, capsys):
    """30 s of a real classical clip, then 30 s of a real metal clip, in one file."""
    default_model_or_skip()
    from genrekit.audio import decode as audio

    genres = shared_data / "gtzan" / "genres"
    first = audio.load(genres / "classical" / "classical.00000.wav", sr=SR)[: 30 * SR]
    second = audio.load(genres / "metal" / "metal.00000.wav", sr=SR)[: 30 * SR]
    joined = tmp_path / "classical-then-metal.wav"
    sf.write(joined, np.concatenate([first, second]), SR, subtype="FLOAT")

    code, out, err = classify_main(capsys, joined, "--format", "json", "--timeline")
    assert code == 0, err
    (result,) = json.loads(out)
    timeline = result["timeline"]
    check_timeline(timeline, 60.0, result["probabilities"])
    inside_first = [w for w in timeline if w["end"] <= 30.0]
    inside_second = [w for w in timeline if w["start"] >= 30.0]
    assert inside_first and inside_second

    def favours(w, genre, other):
        return w["probabilities"][genre] > w["probabilities"][other]

    # The first and the last windows without fail; most windows of each half (a model with
    # short windows may waver on a few seconds of either clip).
    assert favours(timeline[0], "classical", "metal") and favours(timeline[-1], "metal", "classical"), timeline
    assert sum(favours(w, "classical", "metal") for w in inside_first) > len(inside_first) / 2
    assert sum(favours(w, "metal", "classical") for w in inside_second) > len(inside_second) / 2


def test_demo_song_needs_no_data_and_its_timeline_covers_it():
    import subprocess
    import sys

    run = subprocess.run([sys.executable, "-m", "genrekit", "classify", "--demo", "--timeline", "--format", "json"],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    (result,) = json.loads(run.stdout)
    assert result["error"] is None and result["path"] == "(demo song)"
    # each of the printed probabilities is rounded to 4 decimals: the sum may be off by half a unit each
    assert abs(sum(result["probabilities"].values()) - 1) <= len(result["probabilities"]) * 0.5e-4 + 1e-12
    assert result["timeline"][0]["start"] == 0 and result["timeline"][-1]["end"] == pytest.approx(60.0)
    assert not Path(result["path"]).exists()  # the synthesised file is removed afterwards
