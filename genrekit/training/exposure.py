"""Outlier exposure from the owner's library: songs known to be of none of the chosen genres.

When a model is trained from a library's own tags (:mod:`genrekit.training.own_genres`), the
files whose genres all fall outside the chosen labels (every genre given ``""`` by ``--names``:
:attr:`~genrekit.training.own_genres.LabelledFiles.dropped`) are "known unknowns". They never
train the classifier and are never test songs; their rows serve the "none of these" decision
instead (Hendrycks, Mazeika & Dietterich 2019): :func:`genrekit.models.unknown.unknown_decision`
with ``exposure=`` their rows and ``exposure_labels=`` their own (dropped) genres, so a song
nearer them than the known genres scores as less known.

A song's row is measured as a known song's is when the decision is fitted and when a song is
classified: the mean of its windows' backbone rows (:func:`genrekit.models.calibration.song_means`),
computed through the same feature cache and engine as the labelled files.

References
----------
D. Hendrycks, M. Mazeika, T. Dietterich, "Deep anomaly detection with outlier exposure", ICLR 2019.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from genrekit.errors import DatasetError


@dataclass
class Exposure:
    """The exposure songs' rows (one per song) and their genres, ready for ``unknown_decision``.

    Attributes
    ----------
    rows : array (n_songs, n_features)
    labels : array of str
        Each song's first dropped genre: the songs of one genre share a mean.
    listed : int
        Files the name map left out (``dropped``); ``failed`` of them could not be analysed.
    """

    rows: np.ndarray
    labels: np.ndarray
    listed: int
    failed: int

    @property
    def n(self) -> int:
        return int(len(self.rows))

    def params(self) -> dict:
        """Keyword arguments of :func:`genrekit.models.unknown.unknown_decision` (none for no songs)."""
        return {"exposure": self.rows, "exposure_labels": self.labels} if self.n else {}

    def summary(self) -> dict:
        """What ``results.json`` and the model card record."""
        counts: dict[str, int] = {}
        for label in self.labels.tolist():
            counts[label] = counts.get(label, 0) + 1
        return {"songs": self.n, "failed": self.failed, "genres": dict(sorted(counts.items()))}


def exposure_songs(labelled, analyse) -> Exposure:
    """The rows of ``labelled.dropped`` (:class:`~genrekit.training.own_genres.LabelledFiles`); files that
    cannot be analysed are counted and left out (all of them: no exposure; training goes on).

    ``analyse(files, genres)``: the files' window rows and each row's file index, computed as the labelled
    files' are (the trainer passes its :func:`~genrekit.training.own_genres.backbone_table`, through the
    same feature cache and engine); this module stays below the trainer that uses it.
    """
    from genrekit.models.calibration import song_means

    dropped = list(labelled.dropped)
    genres = list(labelled.dropped_genres) or [[""] for _ in dropped]
    if not dropped:
        return no_exposure()
    try:
        table, file_of_row = analyse(dropped, genres)
    except DatasetError:  # none could be analysed: they only help, so training goes on without them
        return Exposure(np.zeros((0, 0)), np.zeros(0, dtype=str), len(dropped), len(dropped))
    ids, rows, _ = song_means(table.X, file_of_row)
    labels = np.array([genres[i][0] if genres[i] else "" for i in ids.tolist()], dtype=str)
    return Exposure(rows, labels, len(dropped), len(dropped) - len(ids))


def no_exposure() -> Exposure:
    """No exposure songs (``--no-exposure``, or none in the library)."""
    return Exposure(np.zeros((0, 0)), np.zeros(0, dtype=str), 0, 0)


def leave_out_rare(labelled, minimum: int):
    """``labelled`` less its labels on fewer than ``minimum`` files (``--leave-out-rare``), and those
    labels with their counts, rarest first.

    Each such label is removed from every file's genres; a file left with none joins the files the
    name map left out (``dropped``, with the removed labels as its ``dropped_genres``): it becomes
    an exposure song, as a genre given ``""`` by ``--names`` would. The other labels' counts do not
    change (a label's count is the files carrying it).
    """
    from dataclasses import replace

    rare = {label: n for label, n in labelled.counts.items() if n < minimum}
    if not rare:
        return labelled, []
    files, genres, groups, dropped, dropped_genres = [], [], [], list(labelled.dropped), list(labelled.dropped_genres)
    for path, labels, group in zip(labelled.files, labelled.genres, labelled.groups):
        kept = [g for g in labels if g not in rare]
        if kept:
            files.append(path)
            genres.append(kept)
            groups.append(group)
        else:
            dropped.append(path)
            dropped_genres.append(labels)
    left = replace(labelled, files=files, genres=genres, groups=groups, dropped=dropped, dropped_genres=dropped_genres)
    return left, sorted(rare.items(), key=lambda kv: (kv[1], kv[0]))
