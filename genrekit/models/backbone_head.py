"""Model kind: a classical head on a pretrained backbone's outputs (the shipped default).

The backbone (:mod:`genrekit.backbones.msd_musicnn`, MSD-musicnn on onnxruntime) gives each
3-s patch of the song 50 tag probabilities and a 200-d embedding (its *taggram*); a
window's row is the mean of its patches' outputs, and the head (a bundle whose feature
set is the backbone's, ``"msd_musicnn"``) turns the row into genre probabilities. The same
patches give the timeline, the song's descriptive tags and its embedding.
"""

from __future__ import annotations

import numpy as np

from .. import audio
from .protocol import GenreClassifier, WindowScores

#: Descriptive tags given per song (the strongest first).
SONG_TAGS = 10
#: Timeline windows, in seconds (widened where the song's patches are sparser).
TIMELINE_WINDOW, TIMELINE_HOP = 10.0, 5.0
#: The feature-set name of the backbone's outputs, which a head's bundle records.
BACKBONE_FEATURES = "msd_musicnn"


class BackboneHeadModel(GenreClassifier):
    """A head on MSD-musicnn's per-patch tags (and embedding); also gives tags and embeddings."""

    has_backbone = True

    def __init__(self, bundle, name: str) -> None:
        super().__init__(bundle, name)
        from ..backbones.msd_musicnn import COLUMNS

        self._columns = [COLUMNS.index(column) for column in bundle.feature_names]

    @classmethod
    def accepts(cls, bundle) -> bool:
        return bundle.feature_set.name == BACKBONE_FEATURES and getattr(bundle, "kind", "classical") == "classical"

    @property
    def _plan(self) -> dict:
        fs = self.bundle.feature_set
        return {"step": fs.step or 61, "max_patches": fs.max_patches}

    def taggram(self, y: np.ndarray, sr: int | None = None):
        """The backbone's tags and embeddings per patch (:class:`genrekit.backbones.msd_musicnn.Taggram`)."""
        from ..backbones.msd_musicnn import load_backbone

        return load_backbone().taggram(self.at_model_rate(y, sr), cover_end=True, **self._plan)

    def stream(self, expected_samples: int | None = None):
        from ..backbones.msd_musicnn import TaggramStream, load_backbone

        return TaggramStream(load_backbone(), expected_samples=expected_samples, cover_end=True, **self._plan)

    def signal_scores(self, y: np.ndarray, timeline: bool = False) -> WindowScores:
        return self.scores(self.taggram(y), len(y), timeline)

    def scores(self, taggram, n_samples: int, timeline: bool = False) -> WindowScores:
        """The head on window means of the song's patches; the timeline from the same patches;
        the song's tags and embedding (means over its patches)."""
        from ..backbones.msd_musicnn import TAGS

        bounds = self.window_bounds(n_samples)
        line_bounds = line_proba = None
        if timeline:
            line_bounds = self.timeline_bounds(n_samples, taggram)
            line_proba = self.head_probabilities(taggram, line_bounds)
        tag_mean = taggram.tags.mean(axis=0)
        order = sorted(range(len(TAGS)), key=lambda i: (-tag_mean[i], TAGS[i]))[:SONG_TAGS]
        rows = self.head_rows(taggram, bounds)
        return WindowScores(
            n_samples, bounds, self.bundle.predict_proba(rows), line_bounds, line_proba,
            tags=[{"label": TAGS[i], "score": float(tag_mean[i])} for i in order],
            embedding=taggram.embeddings.mean(axis=0).astype(np.float32), rows=rows,
        )

    def head_rows(self, taggram, bounds) -> np.ndarray:
        """The head's input rows for windows ``bounds`` (samples) of the song's ``taggram``."""
        from ..backbones.msd_musicnn import window_rows

        sr = self.sample_rate
        return window_rows(taggram, [(a / sr, b / sr) for a, b in bounds])[:, self._columns]

    def head_probabilities(self, taggram, bounds) -> np.ndarray:
        """The head's probabilities for windows ``bounds`` (samples) of the song's ``taggram``."""
        return self.bundle.predict_proba(self.head_rows(taggram, bounds))

    def timeline_bounds(self, n_samples: int, taggram=None) -> list[tuple[int, int]]:
        """:data:`TIMELINE_WINDOW`-s windows every :data:`TIMELINE_HOP` s, wider where the song's
        patches are sparser (a long song's patches are spread by the patch budget), so that every
        window holds at least two patches."""
        if taggram is None or len(taggram) < 2:
            return self.window_bounds(n_samples)
        spacing = float(np.median(np.diff(taggram.starts)))
        hop = max(TIMELINE_HOP, spacing)
        return audio.window_bounds(n_samples, self.sample_rate, max(TIMELINE_WINDOW, 2 * hop), hop, cover_end=True)
