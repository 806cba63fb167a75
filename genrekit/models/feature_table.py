"""Model kind: a classical model on rows of the 57-feature GTZAN table, one row per window.

The bundle's model (scikit-learn, exported to ONNX) reads :mod:`genrekit.features.gtzan57`
rows, possibly a subset of the 57 columns in its own order. Streamed block by block
(:func:`genrekit.features.blockwise.gtzan57_window_rows`), the rows equal those of the
whole signal.
"""

from __future__ import annotations

import numpy as np

from genrekit.models.protocol import GenreClassifier, WindowScores, table_scores

#: The feature set whose rows can be computed per window of a song.
TABLE_FEATURES = "gtzan57"


class FeatureTableModel(GenreClassifier):
    """A classical model on per-window gtzan57 rows."""

    def __init__(self, bundle, name: str) -> None:
        super().__init__(bundle, name)
        from genrekit.features.gtzan57 import COLUMNS

        names = list(bundle.feature_names) or list(COLUMNS)
        self._columns = [COLUMNS.index(column) for column in names]

    @classmethod
    def accepts(cls, bundle) -> bool:
        return getattr(bundle, "kind", "classical") == "classical" and bundle.feature_set.name == TABLE_FEATURES

    def inputs(self, y: np.ndarray, bounds) -> np.ndarray:
        """The model's input rows for windows ``bounds`` (samples) of ``y`` (at :attr:`sample_rate`)."""
        from genrekit.features.gtzan57 import gtzan57_windows

        return gtzan57_windows(y, self.sample_rate, bounds)[:, self._columns].astype(np.float32)

    def signal_scores(self, y: np.ndarray, timeline: bool = False) -> WindowScores:
        bounds = self.window_bounds(len(y))
        rows = self.inputs(y, bounds)
        return table_scores(len(y), bounds, self.bundle.predict_proba(rows), timeline, rows)

    def stream(self, expected_samples: int | None = None, timeline: bool = False):
        from genrekit.features.blockwise import gtzan57_window_rows

        def probabilities(y, bounds):
            # the rows ride along beside the probabilities (for the unknown decision); split in scores()
            rows = self.inputs(y, bounds)
            return np.hstack([self.bundle.predict_proba(rows), rows])

        return gtzan57_window_rows(self.sample_rate, self.bundle.window, self.bundle.hop, probabilities,
                                   cover_end=True)

    def scores(self, finished, n_samples: int, timeline: bool = False) -> WindowScores:
        bounds, both = finished
        k = len(self.labels)
        return table_scores(n_samples, bounds, both[:, :k], timeline, both[:, k:])
