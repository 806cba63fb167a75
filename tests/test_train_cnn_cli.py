"""`genrekit train --model cnn` through the real command line, then `genrekit classify` with the run."""

import json
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("torch")

SR = 22050


def test_cnn_trains_from_the_cli_and_its_run_classifies(tmp_path):
    rng = np.random.default_rng(0)
    t = np.arange(4 * SR) / SR
    for genre in ("bursts", "tones"):
        (tmp_path / "data" / genre).mkdir(parents=True)
        for i in range(6):
            if genre == "bursts":
                y = rng.standard_normal(len(t)) * (np.sin(2 * np.pi * 4 * t) > 0.7) * 0.5
            else:
                y = 0.3 * np.sin(2 * np.pi * (220 + 20 * i) * t)
            sf.write(tmp_path / "data" / genre / f"{genre}.{i:05d}.wav", y.astype(np.float32), SR)
    run = tmp_path / "run"
    train = subprocess.run(
        [sys.executable, "-m", "genrekit", "train", "--model", "cnn", "--arch", "seed3", "--data", str(tmp_path / "data"),
         "--epochs", "2", "--crops-per-track", "4", "--threads", "1", "--cache", str(tmp_path / "cache"),
         "--out", str(run)], capture_output=True, text=True, timeout=600)
    assert train.returncode == 0, train.stderr
    history = (run / "history.csv").read_text().splitlines()
    assert history[0].startswith("epoch,train_loss,train_acc,valid_loss,valid_acc") and len(history) == 3
    assert json.loads((run / "bundle.json").read_text())["kind"] == "cnn"
    classify = subprocess.run(
        [sys.executable, "-m", "genrekit", "classify", str(tmp_path / "data"), "--model", str(run), "--format", "json"],
        capture_output=True, text=True, timeout=600)
    assert classify.returncode == 0, classify.stderr
    results = json.loads(classify.stdout)
    assert len(results) == 12
    for r in results:
        assert set(r["probabilities"]) == {"bursts", "tones"}
        assert abs(sum(r["probabilities"].values()) - 1) < 1e-4


def _tones(folder, genres=("bursts", "tones"), per_genre=10, seconds=2.0):
    rng = np.random.default_rng(1)
    t = np.arange(int(seconds * SR)) / SR
    for genre in genres:
        (folder / genre).mkdir(parents=True)
        for i in range(per_genre):
            if genre == "bursts":
                y = rng.standard_normal(len(t)) * (np.sin(2 * np.pi * 4 * t) > 0.7) * 0.5
            else:
                y = 0.3 * np.sin(2 * np.pi * (220 + 20 * i) * t)
            sf.write(folder / genre / f"{genre}.{i:05d}.wav", y.astype(np.float32), SR)
    return folder


def test_cnn_honours_test_and_valid_sizes(tmp_path):
    # Was: --test-size and --valid-size were ignored for --model cnn (0.2 and 0.1 whatever was given).
    data = _tones(tmp_path / "data")
    run = tmp_path / "run"
    train = subprocess.run(
        [sys.executable, "-m", "genrekit", "train", "--model", "cnn", "--arch", "seed3", "--data", str(data),
         "--epochs", "1", "--crops-per-track", "1", "--threads", "1", "--cache", str(tmp_path / "cache"),
         "--test-size", "0.3", "--valid-size", "0.2", "--out", str(run)], capture_output=True, text=True, timeout=600)
    assert train.returncode == 0, train.stderr
    text = (run / "results.json").read_text()
    sizes = json.loads(text)["split"]["sizes"]
    tracks = {part: sizes[part]["tracks"] for part in ("train", "valid", "test")}
    assert tracks["test"] == 6 and tracks["valid"] in (4, 5) and sum(tracks.values()) == 20, tracks


def test_a_dataset_too_small_for_the_split_is_one_clean_line(tmp_path):
    # Was: a DatasetError traceback ("cannot make a stratified split of 56 tracks").
    data = _tones(tmp_path / "data", per_genre=3)
    train = subprocess.run(
        [sys.executable, "-m", "genrekit", "train", "--model", "cnn", "--data", str(data), "--epochs", "1",
         "--cache", str(tmp_path / "cache"), "--out", str(tmp_path / "run")], capture_output=True, text=True,
        timeout=600)
    assert train.returncode == 1
    assert "Traceback" not in train.stderr
    errors = [line for line in train.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1, train.stderr
    assert "--valid-size 0.1 of 6 tracks" in errors[0] and "use at least 6 tracks" not in errors[0]
    assert "use --valid-size between" in errors[0] or "use at least" in errors[0]
