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
