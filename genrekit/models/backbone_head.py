"""Model kind: a classical head on a pretrained backbone's outputs (the shipped default).

The backbone (:mod:`genrekit.backbones.msd_musicnn`, MSD-musicnn on onnxruntime) gives each
3-s patch of the song 50 tag probabilities and a 200-d embedding (its *taggram*); a
window's row is the mean of its patches' outputs, and the head (a bundle whose feature
set is the backbone's, ``"msd_musicnn"``) turns the row into genre probabilities. The same
patches give the timeline, the song's descriptive tags and its embedding.

Two patch plans. Without a timeline, the bundle's (its feature set's ``step`` and
``max_patches``: the shipped model's 3-s patches end to end, at most 32 a song, spread
evenly over a long one; ``docs/patch_plan.json`` measured that this costs no accuracy).
With a timeline, a dense one whatever the length: patches end to end over the whole song
(:data:`~genrekit.backbones.msd_musicnn.DENSE_STEP`, no budget, an end-aligned last patch),
so every second is seen, and :data:`TIMELINE_WINDOW`-s windows every :data:`TIMELINE_HOP` s,
each holding at least three patches; the song's own figures (label, tags, embedding) then
come from the bundle's plan's patches among them where they are all there (songs up to ~1.6
minutes: the same figures as without a timeline), else from all of them. A bundle's
``tag_genres`` rules (:mod:`genrekit.models.tag_genres`) read the song's mean tags too.
"""

from __future__ import annotations

import numpy as np

from genrekit.audio import windows
from genrekit.models.protocol import GenreClassifier, WindowScores
from genrekit.models.tag_genres import fired_genres

#: Descriptive tags given per song (the strongest first).
SONG_TAGS = 10
#: Timeline windows, in seconds, for any length (the last one end-aligned).
TIMELINE_WINDOW, TIMELINE_HOP = 10.0, 5.0
#: The feature-set name of the backbone's outputs, which a head's bundle records.
BACKBONE_FEATURES = "msd_musicnn"


class BackboneHeadModel(GenreClassifier):
    """A head on MSD-musicnn's per-patch tags (and embedding); also gives tags and embeddings."""

    has_backbone = True

    def __init__(self, bundle, name: str) -> None:
        super().__init__(bundle, name)
        from genrekit.backbones.msd_musicnn import COLUMNS

        self._columns = [COLUMNS.index(column) for column in bundle.feature_names]

    @classmethod
    def accepts(cls, bundle) -> bool:
        return bundle.feature_set.name == BACKBONE_FEATURES and getattr(bundle, "kind", "classical") == "classical"

    @property
    def _plan(self) -> dict:
        fs = self.bundle.feature_set
        return {"step": fs.step or 61, "max_patches": fs.max_patches}

    def _patches(self, timeline: bool) -> dict:
        from genrekit.backbones.msd_musicnn import DENSE_STEP

        if timeline:
            return {"step": min(self._plan["step"], DENSE_STEP), "dense": True}
        return {**self._plan, "cover_end": True}

    def taggram(self, y: np.ndarray, sr: int | None = None, timeline: bool = False):
        """The backbone's tags and embeddings per patch (:class:`genrekit.backbones.msd_musicnn.Taggram`);
        ``timeline``: the dense plan (every frame in a patch)."""
        from genrekit.backbones.msd_musicnn import load_backbone

        return load_backbone().taggram(self.at_model_rate(y, sr), **self._patches(timeline))

    def stream(self, expected_samples: int | None = None, timeline: bool = False):
        from genrekit.backbones.msd_musicnn import TaggramStream, load_backbone

        return TaggramStream(load_backbone(), expected_samples=expected_samples, **self._patches(timeline))

    def signal_scores(self, y: np.ndarray, timeline: bool = False) -> WindowScores:
        return self.scores(self.taggram(y, timeline=timeline), len(y), timeline)

    def region_planner(self, timeline: bool = False):
        """The patch plan of a song of known length (:class:`~genrekit.backbones.msd_musicnn.PlannedPatches`)."""
        from genrekit.backbones.msd_musicnn import PlannedPatches, load_backbone, patch_starts

        patches = self._patches(timeline)
        cover_end = patches.pop("cover_end", False)

        def planner(n_samples: int):
            return PlannedPatches(load_backbone(), patch_starts(n_samples, cover_end=cover_end, **patches), n_samples)

        return planner

    def scores(self, taggram, n_samples: int, timeline: bool = False) -> WindowScores:
        """The head on window means of the song's patches; the timeline from the same patches;
        the song's tags and embedding (means over its patches)."""
        from genrekit.backbones.msd_musicnn import TAGS

        bounds = self.window_bounds(n_samples)
        line_bounds = line_proba = None
        if timeline:
            line_bounds = self.timeline_bounds(n_samples)
            line_proba = self.head_probabilities(taggram, line_bounds)
            taggram = self._song_patches(taggram, n_samples)
        tag_mean = taggram.tags.mean(axis=0)
        order = sorted(range(len(TAGS)), key=lambda i: (-tag_mean[i], TAGS[i]))[:SONG_TAGS]
        rows = self.head_rows(taggram, bounds)
        rules = self.bundle.tag_genres
        return WindowScores(
            n_samples, bounds, self.bundle.predict_proba(rows), line_bounds, line_proba,
            tags=[{"label": TAGS[i], "score": float(tag_mean[i])} for i in order],
            embedding=taggram.embeddings.mean(axis=0).astype(np.float32), rows=rows,
            tag_genres=None if rules is None else fired_genres(rules, tag_mean, TAGS),
        )

    def _song_patches(self, dense, n_samples: int):
        """The song's own figures from a dense taggram: the bundle's plan's patches where the dense
        ones hold them all (every song the plan reads end to end, up to ~1.6 minutes), so that they
        do not depend on ``--timeline``; else all the dense patches (a long song's plan spreads its
        patches on another grid, and the dense ones see more of it)."""
        from genrekit.backbones.msd_musicnn import HOP_LENGTH, SAMPLE_RATE, Taggram, patch_starts

        plan = patch_starts(n_samples, self._plan["step"], self._plan["max_patches"], cover_end=True)
        frames = {int(round(t * SAMPLE_RATE / HOP_LENGTH)): i for i, t in enumerate(dense.starts)}
        if not all(f in frames for f in plan):
            return dense
        keep = np.array([frames[f] for f in plan])
        return Taggram(dense.tags[keep], dense.embeddings[keep], dense.starts[keep], dense.duration)

    def head_rows(self, taggram, bounds) -> np.ndarray:
        """The head's input rows for windows ``bounds`` (samples) of the song's ``taggram``."""
        from genrekit.backbones.msd_musicnn import window_rows

        sr = self.sample_rate
        return window_rows(taggram, [(a / sr, b / sr) for a, b in bounds])[:, self._columns]

    def head_probabilities(self, taggram, bounds) -> np.ndarray:
        """The head's probabilities for windows ``bounds`` (samples) of the song's ``taggram``."""
        return self.bundle.predict_proba(self.head_rows(taggram, bounds))

    def timeline_bounds(self, n_samples: int) -> list[tuple[int, int]]:
        """:data:`TIMELINE_WINDOW`-s windows every :data:`TIMELINE_HOP` s covering the whole song,
        the last one end-aligned (a song shorter than a window is one window), for any length:
        the dense plan puts a patch centre every 3 s, so each window holds three or more."""
        return windows.window_bounds(n_samples, self.sample_rate, TIMELINE_WINDOW, TIMELINE_HOP,
                                  cover_end=True, exact=True)
