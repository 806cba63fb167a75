"""The songs ``scripts/build_broad_model.py`` trains and scores on, as rows of MSD-musicnn outputs.

    python scripts/broad_model_data.py [--data ../shared/data]   # fills the cache, prints a summary

- **GTZAN** (:func:`gtzan_rows`): the musicnn authors' taggrams of the fault-filtered split's
  443 training and 290 test clips (50 tags, mean over each clip's 3-s patches), artists from
  ``GTZANindex.txt``. Tags only: the authors kept no embedding.
- **Emotify** (:func:`emotify_rows`): the 200 shared Magnatune songs, through genrekit's own
  decoder, front end and ONNX network with the shipped default's patch plan (3-s patches end to
  end, at most 32), exactly as ``genrekit classify`` sees them; one row per song (the mean of
  its 30-s windows' rows: 50 tags then the 200-d embedding), artist and ID3 genre from
  ``labels.csv``.

Rows computed from audio are cached outside the repository (``~/.cache/genrekit-build/``, or
``$GENREKIT_BUILD_CACHE``), one file per song, keyed by the file's content hash and the
backbone's weights, so the build recomputes nothing it has already computed.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from genrekit.datasets.musicnn_taggrams import artists, fault_filtered_taggrams  # noqa: E402

CACHE = Path(os.environ.get("GENREKIT_BUILD_CACHE", Path.home() / ".cache/genrekit-build")) / "broad"
#: The shipped default's patch plan (scripts/build_musicnn_model.py).
WINDOW, HOP, STEP, MAX_PATCHES = 30.0, 15.0, 187, 32


@dataclass
class Songs:
    """One row per song: ``X`` (tags, then the embedding where there is one), genre ``y``,
    ``groups`` (artist, prefixed by the dataset), ``ids`` and, for Emotify, ``id3``."""

    X: np.ndarray
    y: np.ndarray
    groups: np.ndarray
    ids: np.ndarray
    id3: np.ndarray | None = None

    def subset(self, keep) -> "Songs":
        return Songs(self.X[keep], self.y[keep], self.groups[keep], self.ids[keep],
                     None if self.id3 is None else self.id3[keep])


def gtzan_rows(data: Path) -> dict[str, Songs]:
    """The authors' taggrams of GTZAN's fault-filtered training and test clips (50 tags per row)."""
    out = {}
    for part, table in fault_filtered_taggrams(data).items():
        groups = np.array(["gtzan:" + a for a in artists(data, table.tracks)])
        out[part] = Songs(np.asarray(table.X, dtype=np.float64), np.asarray(table.labels).astype(str), groups,
                          np.asarray(table.tracks).astype(str))
    return out


def cached_row(name: str, compute) -> np.ndarray:
    """The row cached as ``name`` under :data:`CACHE`, or ``compute()``'s, cached (written atomically)."""
    cached = CACHE / f"{name}.npy"
    if cached.exists():
        return np.load(cached)
    row = compute()
    CACHE.mkdir(parents=True, exist_ok=True)
    tmp = cached.with_suffix(".tmp.npy")
    np.save(tmp, row)
    tmp.replace(cached)
    return row


def _model():
    from genrekit.models.registry import load_model

    return load_model("gtzan-musicnn")


def song_row(path: Path, model=None) -> np.ndarray:
    """The mean over ``path``'s 30-s windows of MSD-musicnn's 250 outputs (tags, embedding), with the
    shipped default's decoder, stream and patch plan; cached by content hash."""
    from genrekit.audio.decode import Decoder
    from genrekit.backbones.msd_musicnn import weights_sha256, window_rows

    key = hashlib.sha256(path.read_bytes()).hexdigest()[:20] + "-" + weights_sha256()[:12] + f"-{STEP}-{MAX_PATCHES}"

    def compute():
        clf = model or _model()
        with Decoder(path, clf.sample_rate, min_samples=clf.min_samples) as decoder:
            analysis = clf.stream(expected_samples=decoder.expected_samples)
            for block in decoder:
                analysis.feed(block)
            n = decoder.n_samples
        sr = clf.sample_rate
        return window_rows(analysis.finish(), [(a / sr, b / sr) for a, b in clf.window_bounds(n)]).mean(axis=0)

    return cached_row(key, compute)


def emotify_rows(data: Path, log=None) -> Songs:
    """The 200 shared Emotify songs: 250 columns per row (50 tags, 200-d embedding)."""
    folder = data / "emotify"
    with open(folder / "labels.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    X = []
    for i, r in enumerate(rows):
        X.append(song_row(folder / r["path"]))
        if log and (i + 1) % 25 == 0:
            log(f"  emotify: {i + 1}/{len(rows)} songs")
    return Songs(np.stack(X), np.array([r["genre"] for r in rows]), np.array(["emotify:" + r["artist"] for r in rows]),
                 np.array([r["path"] for r in rows]), np.array([r["id3_genre"] for r in rows]))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT / "../shared/data")
    args = parser.parse_args(argv)
    log = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    e = emotify_rows(args.data, log)
    g = gtzan_rows(args.data)
    log(f"emotify {e.X.shape}, {len(set(e.groups))} artists; gtzan train {g['train'].X.shape}, test {g['test'].X.shape}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
