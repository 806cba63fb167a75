"""The feature table: rows of features with their labels and the track each row comes from.

Every row belongs to a *track* (all windows of one clip share its id, ``blues.00000``), so that
splits can keep a track's windows on one side (see :mod:`genrekit.datasets.splits`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from genrekit.errors import DatasetError

#: Sample rate of the Kaggle tables' ``length`` column (and of every gtzan57 set).
@dataclass
class FeatureTable:
    """Feature rows with their labels and the track each row comes from.

    Attributes
    ----------
    X : np.ndarray [shape=(n_rows, n_features), dtype=float64]
    labels : np.ndarray [shape=(n_rows,), dtype=str]
        Genre of each row; ``""`` when unknown. All rows of a track share one label.
    tracks : np.ndarray [shape=(n_rows,), dtype=str]
        Track id of each row (``blues.00000``); all windows of a track share it.
    rows : np.ndarray [shape=(n_rows,), dtype=str]
        Row names, unique (``blues.00000.3.wav`` or ``blues.00000.wav``).
    feature_names : list of str
    source : str
        Where the table came from and what it is, for model cards.
    feature_set : dict or None
        :meth:`genrekit.features.sets.FeatureSet.to_dict` of the recipe when known
        (so a model trained on the table can compute the same features from audio).
    """

    X: np.ndarray
    labels: np.ndarray
    tracks: np.ndarray
    rows: np.ndarray
    feature_names: list[str]
    source: str
    feature_set: dict | None = None

    def __post_init__(self) -> None:
        self.X = np.asarray(self.X, dtype=np.float64)
        if self.X.ndim != 2:
            raise DatasetError(f"{self.source}: X must be 2-D (rows, features), got shape {self.X.shape}")
        n = self.X.shape[0]
        for attr in ("labels", "tracks", "rows"):
            value = np.asarray(getattr(self, attr), dtype=str)
            if value.shape != (n,):
                raise DatasetError(f"{self.source}: {attr} has shape {value.shape}, expected ({n},)")
            setattr(self, attr, value)
        self.feature_names = [str(f) for f in self.feature_names]
        if len(self.feature_names) != self.X.shape[1]:
            raise DatasetError(
                f"{self.source}: {len(self.feature_names)} feature names for {self.X.shape[1]} columns"
            )
        uniq, first, inverse = np.unique(self.tracks, return_index=True, return_inverse=True)
        mixed = np.flatnonzero(self.labels != self.labels[first][inverse])
        if mixed.size:
            t = self.tracks[mixed[0]]
            found = sorted({str(v) for v in self.labels[self.tracks == t]})
            raise DatasetError(f"{self.source}: track {t} has rows labelled {', '.join(map(repr, found))}")

    def __len__(self) -> int:
        return self.X.shape[0]

    @property
    def n_tracks(self) -> int:
        """Number of distinct tracks."""
        return len(np.unique(self.tracks))

    def track_labels(self) -> tuple[np.ndarray, np.ndarray]:
        """The distinct track ids (sorted) and the label of each."""
        uniq, first = np.unique(self.tracks, return_index=True)
        return uniq, self.labels[first]

    def subset(self, idx) -> "FeatureTable":
        """The rows ``idx`` (indices or a boolean mask) as a new table with the same metadata."""
        idx = np.asarray(idx)
        return FeatureTable(
            self.X[idx], self.labels[idx], self.tracks[idx], self.rows[idx],
            list(self.feature_names), self.source, self.feature_set,
        )

    def __repr__(self) -> str:
        return (
            f"FeatureTable({len(self)} rows, {self.n_tracks} tracks, "
            f"{len(self.feature_names)} features, source={self.source!r})"
        )


def track_of_file(name: str) -> str:
    # An all-digit suffix is part of the name (``blues.00000``), not an extension.
    stem, ext = os.path.splitext(name)
    return stem if ext and not ext[1:].isdigit() else name
