"""The runs the report tests read, made once per test session from the shared GTZAN table.

A fault-filtered classical run (logreg, knn), a 3-fold artist-grouped k-fold run, a leaky
``random-rows`` run, ``genrekit cluster`` on the 30-s table, and, when PyTorch is
installed, a small CNN trained for three epochs on synthesised clips.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import soundfile as sf

from genrekit.cli import main

SR = 22050  # Hz


def synth_clips(root: Path, per_genre: int = 10, seconds: float = 4.0) -> Path:
    """Three "genres" of ``seconds``-s tones in different registers, with noise: enough for a CNN to train a few epochs."""
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * SR)) / SR
    for genre, f0 in (("low", 110.0), ("mid", 440.0), ("high", 1760.0)):
        (root / genre).mkdir(parents=True, exist_ok=True)
        for i in range(per_genre):
            y = 0.5 * np.sin(2 * np.pi * f0 * rng.uniform(0.9, 1.1) * t) + 0.05 * rng.standard_normal(len(t))
            sf.write(root / genre / f"{genre}.{i:05d}.wav", y.astype(np.float32), SR, subtype="PCM_16")
    return root


def report_runs(base: Path, shared_data: Path) -> dict:
    """Make (once; later calls reuse them) the runs the report tests read; ``{"cnn": None}`` without torch."""
    done = base / "done.json"
    if done.exists():
        return {k: (Path(v) if v else None) for k, v in json.loads(done.read_text()).items()}
    g = shared_data / "gtzan"
    table = str(g / "features_30_sec.csv")
    runs = base / "runs"
    paths = {"ff": runs / "ff", "kfold": runs / "cv" / "kfold", "leaky": runs / "leaky",
             "cluster": base / "clusters.json", "cnn": runs / "cnn" / "tiny"}
    for sub in ("cv", "cnn"):  # --out's parent folder must exist (it is not created)
        (runs / sub).mkdir(parents=True, exist_ok=True)
    assert main(["train", "--data", table, "--model", "logreg,knn", "--split", "fault-filtered",
                 "--split-dir", str(g / "splits" / "fault_filtered"), "--out", str(paths["ff"])]) == 0
    assert main(["train", "--data", table, "--model", "logreg", "--split", "kfold", "--folds", "3",
                 "--artists", str(g / "GTZANindex.txt"), "--out", str(paths["kfold"])]) == 0
    assert main(["train", "--data", table, "--model", "knn", "--split", "random-rows",
                 "--out", str(paths["leaky"])]) == 0
    assert main(["cluster", "--features", table, "--out", str(paths["cluster"])]) == 0
    try:
        from genrekit.training.cnn.trainer import train_cnn
    except ImportError:
        paths["cnn"] = None
    else:
        train_cnn(synth_clips(base / "clips"), paths["cnn"], arch="seed3", arch_options={"width": 4}, epochs=3,
                  crops_per_track=2, batch_size=8, valid_size=0.2, test_size=0.2, threads=1, cache=False,
                  progress=False, verbose=False)
    done.write_text(json.dumps({k: (str(v) if v else None) for k, v in paths.items()}))
    return paths
