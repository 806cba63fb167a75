"""Libraries tagged with genres and the runs ``genrekit train --labels tags`` makes from them
(issue 19), shared by the tests of training, classifying and evaluating with your own genres.

A library holds synthetic songs of three kinds (:func:`synthetic_songs.synth`) tagged
``Classical``, ``Hip Hop`` and ``Metal`` on 4 albums per kind; with ``several``, half the
hip-hop and metal songs also carry ``Noise`` (a model of several genres per song).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from cli_helpers import cli_env
from tagged_songs import tagged_library

#: The genre tag values of each synthetic kind.
TAGS = {"classical": ["Classical"], "hiphop": ["Hip Hop"], "metal": ["Metal"]}


def plan(several: bool = False, per_genre: int = 8) -> list[tuple]:
    """``per_genre`` songs of each synthetic kind, on 4 albums per kind; with ``several``, half the
    hip-hop and metal songs also carry "Noise"."""
    out = []
    for k, kind in enumerate(TAGS):
        for j in range(per_genre):
            genres = list(TAGS[kind]) + (["Noise"] if several and kind != "classical" and j < per_genre // 2 else [])
            out.append((kind, genres, f"Artist {k}{j % 4}", f"Album {k}{j % 4}"))
    return out


def genrekit(*args, timeout: float = 600) -> subprocess.CompletedProcess:
    """``python -m genrekit ARGS`` in a subprocess of this checkout (text output captured)."""
    return subprocess.run([sys.executable, "-m", "genrekit", *map(str, args)], capture_output=True, text=True,
                          env=cli_env(), timeout=timeout)


def train(base: Path, *labels) -> subprocess.CompletedProcess:
    """``genrekit train --data base/lib --labels LABELS... --out base/run --cache base/cache``."""
    return genrekit("train", "--data", base / "lib", "--labels", *labels, "--out", base / "run",
                    "--cache", base / "cache")


def trained_run(base: Path, several: bool) -> dict:
    """A tagged library and the run trained on it, made once under ``base`` (later calls reuse them).

    Returns ``{"lib", "run", "cache"}`` paths.
    """
    paths = {"lib": base / "lib", "run": base / "run", "cache": base / "cache"}
    done = base / "done.json"
    if not done.exists():
        tagged_library(paths["lib"], plan(several=several))
        proc = train(base, "tags")
        assert proc.returncode == 0, proc.stderr
        done.write_text(json.dumps({k: str(v) for k, v in paths.items()}))
    return paths
