"""The musicnn authors' taggrams of GTZAN's fault-filtered split, as the shipped default's head reads them.

One row per clip: the mean of MSD-musicnn's 50 tag probabilities over the clip's 3-s patches
(:func:`genrekit.datasets.tables.load_table` on the ``.npz`` archives), for the 443 training and 290
test clips of Kereliuk, Sturm & Larsen's (2015) fault-filtered split, with each clip's artist
from Sturm's ``GTZANindex.txt`` for grouped cross-validation. The shipped head
(``scripts/build_musicnn_model.py``), its calibration (``scripts/calibrate_shipped.py``) and
the own-genres study (``scripts/own_genres_study.py``) read these same rows.

References
----------
J. Pons, X. Serra, "musicnn: pre-trained convolutional neural networks for music audio tagging",
ISMIR LBD 2019 (the taggrams, from jordipons/sklearn-audio-transfer-learning).
C. Kereliuk, B. L. Sturm, J. Larsen, "Deep learning and music adversaries", IEEE TMM 2015.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from genrekit.datasets.gtzan import read_artist_index
from genrekit.datasets.tables import load_table
from genrekit.datasets.feature_table import FeatureTable

#: The archives under the shared data folder, by part of the fault-filtered split.
ARCHIVES = {"train": "gtzan/musicnn/training_data_GTZAN_MSDmusicnn_taggram.npz",
            "test": "gtzan/musicnn/evaluation_data_GTZAN_MSDmusicnn_taggram.npz"}
#: Sturm's artist index under the shared data folder.
ARTIST_INDEX = "gtzan/GTZANindex.txt"


def fault_filtered_taggrams(data: str | os.PathLike) -> dict[str, FeatureTable]:
    """``{"train": table, "test": table}``: one row per clip (its mean tags) of each part.

    Parameters
    ----------
    data : str or path-like
        The shared data folder (holding ``gtzan/musicnn/``).

    Raises
    ------
    DatasetError
        If an archive is missing or malformed (it names the file).
    """
    return {part: load_table(Path(data) / name) for part, name in ARCHIVES.items()}


def artists(data: str | os.PathLike, tracks) -> np.ndarray:
    """The artist of each GTZAN track id in ``tracks`` (``blues.00029``), from ``GTZANindex.txt``.

    A track the index does not know is its own group (its id), as an unnamed artist is
    (:func:`genrekit.datasets.gtzan.read_artist_index`).
    """
    index = read_artist_index(Path(data) / ARTIST_INDEX)
    return np.array([index.get(str(t), str(t)) for t in tracks])


def joined(*tables: FeatureTable) -> FeatureTable:
    """The rows of ``tables`` one after the other (same features), e.g. train + test for a CV over both."""
    first = tables[0]
    return FeatureTable(np.concatenate([t.X for t in tables]), np.concatenate([t.labels for t in tables]),
                        np.concatenate([t.tracks for t in tables]), np.concatenate([t.rows for t in tables]),
                        first.feature_names, " + ".join(t.source for t in tables), first.feature_set)
