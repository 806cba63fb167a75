"""Datasets: feature tables, GTZAN's names and lists, and honest train/test splits.

>>> from genrekit.datasets.tables import load_table                  # doctest: +SKIP
>>> from genrekit.datasets.splits import make_splits
>>> table = load_table("features_30_sec.csv")
>>> split, = make_splits(table, "artist", artists="GTZANindex.txt", seed=0)
>>> train, test = table.subset(split.train), table.subset(split.test)

Public datasets by name (GTZAN, FMA, Ballroom): :mod:`.registry` (what and where),
:mod:`.install` (download, validate), :mod:`.resolve` (files and labels of a downloaded one).
"""
