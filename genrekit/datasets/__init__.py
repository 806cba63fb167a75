"""Datasets: feature tables, GTZAN's names and lists, and honest train/test splits.

>>> from genrekit.datasets import load_table, make_splits          # doctest: +SKIP
>>> table = load_table("features_30_sec.csv")
>>> split, = make_splits(table, "artist", artists="GTZANindex.txt", seed=0)
>>> train, test = table.subset(split.train), table.subset(split.test)

Public datasets by name (GTZAN, FMA, Ballroom): :mod:`.registry` (what and where),
:mod:`.install` (download, validate), :mod:`.resolve` (files and labels of a downloaded one).
"""

from .tables import DatasetError, FeatureTable, load_audio_files, load_table
from .gtzan import GENRES, read_artist_index, read_split_list, track_id
from .splits import KINDS, Split, make_splits

__all__ = [
    "DatasetError", "FeatureTable", "load_audio_files", "load_table",
    "GENRES", "read_artist_index", "read_split_list", "track_id",
    "KINDS", "Split", "make_splits",
]
