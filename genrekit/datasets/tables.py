"""Feature tables: the rows every model trains on, read from a file or computed from audio.

:func:`load_table` reads

- a Kaggle-layout table, ``.csv`` or ``.parquet`` (``filename, length, <features>, label``):
  Kaggle's ``features_30_sec.csv`` (one row per clip, ``blues.00000.wav``) and
  ``features_3_sec.csv`` (one row per 3-s window, ``blues.00000.3.wav``), or the same
  layout written by ``genrekit features --out table.csv``;
- a Marsyas ``bextract`` table, ``.arff`` (one row per clip, each row preceded by a
  ``% filename genres/<genre>/<genre>.NNNNN.au`` comment);
- a musicnn taggram archive, ``.npz`` with arrays ``X`` (patches × 50 tag probabilities),
  ``Y`` (genre index, GTZAN's alphabetical order) and ``IDS`` (the clip of each patch), as
  the musicnn authors published for GTZAN's fault-filtered split: one row per clip, the mean
  of its patches' tags (the ``musicnn`` feature set's window row);
- a folder of audio files in GTZAN's ``<genre>/<file>`` layout, analysed through
  genrekit's feature cache.

Every row belongs to a *track* (all windows of one clip share its id, ``blues.00000``),
so that splits can keep a track's windows on one side (see :mod:`genrekit.datasets.splits`).
"""

from __future__ import annotations

import os
import warnings
from collections import Counter
from pathlib import Path

import numpy as np

from genrekit.errors import DatasetError
from genrekit.datasets.feature_table import FeatureTable, track_of_file
from genrekit.datasets.table_files import gtzan57_set, kaggle_table, read_arff, read_csv, read_parquet, read_taggram_npz

#: Sample rate of the Kaggle tables' ``length`` column (and of every gtzan57 set).
def load_table(
    path: str | os.PathLike,
    *,
    audio_feature_set=None,
    cache=None,
    jobs: int = 1,
    engine=None,
    progress: bool = False,
) -> FeatureTable:
    """Load a feature table from a table file or a folder of audio.

    Parameters
    ----------
    path : str or path-like
        ``.csv`` / ``.parquet`` (Kaggle layout), ``.arff`` (Marsyas), or a folder of
        audio files (GTZAN layout ``<genre>/<file>``; labels from the folders).
    audio_feature_set : FeatureSet, optional
        Folders only: the recipe, a table-valued set (default
        ``feature_set("gtzan57", window=30)``, one row per 30-s window).
    cache : FeatureStore, path, None or False
        Folders only: the feature cache. ``None`` opens the default cache
        (``$GENREKIT_CACHE`` or ``~/.cache/genrekit``), a path opens the cache in that
        folder, ``False`` computes without caching.
    jobs : int
        Folders only: worker processes (``0``: one per CPU), when no ``engine`` is given.
    engine : genrekit.engines.Engine, optional
        Folders only: where features are computed (default: the local engine with ``jobs``).
    progress : bool
        Folders only: draw a progress bar on stderr when it is a terminal.

    Returns
    -------
    FeatureTable

    Raises
    ------
    DatasetError
        If the path is missing or of an unknown kind, or the table is malformed
        (missing columns, non-numeric or missing values, no labels column...).
    """
    path = Path(path)
    if path.is_dir():
        return _load_audio_folder(path, audio_feature_set, cache, jobs, progress, engine)
    if not path.exists():
        raise DatasetError(f"{path}: no such file or folder")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return kaggle_table(path, *read_csv(path))
    if suffix in (".parquet", ".pq"):
        return kaggle_table(path, *read_parquet(path))
    if suffix == ".arff":
        return read_arff(path)
    if suffix == ".npz":
        return read_taggram_npz(path)
    raise DatasetError(
        f"{path}: unknown table kind {suffix or '(no extension)'}; expected .csv or .parquet "
        "(Kaggle layout), .arff (Marsyas), .npz (musicnn taggrams) or a folder of audio"
    )


# --- a folder of audio ------------------------------------------------------------
def _load_audio_folder(folder: Path, fs, cache, jobs: int, progress: bool, engine=None) -> FeatureTable:
    from genrekit.audio.files import collect_audio_files
    from genrekit.datasets.gtzan import gtzan_label

    paths = collect_audio_files([folder])
    if not paths:
        raise DatasetError(f"{folder}: no audio files found")
    return load_audio_files([(p, gtzan_label(p)) for p in paths], folder, audio_feature_set=fs, cache=cache,
                            jobs=jobs, progress=progress, engine=engine)


def load_audio_files(files, root: str | os.PathLike, *, audio_feature_set=None, cache=None, jobs: int = 1,
                     progress: bool = False, description: str = "audio folder", engine=None) -> FeatureTable:
    """A feature table of the given audio files and labels, analysed through the feature cache.

    The job of :func:`load_table` for a folder, for files whose labels do not come from
    their folders (a dataset by name: FMA's labels are in ``tracks.csv``).

    Parameters
    ----------
    files : list of (path, str)
        Each audio file and its label (``""`` when unknown).
    root : path-like
        The folder the files lie under (names the table; disambiguates equal file stems).
    audio_feature_set, cache, jobs, progress, engine
        As for :func:`load_table`.
    description : str
        What the files are, for the table's ``source``.
    """
    from genrekit.features.extract import extract
    from genrekit.features.export import window_names
    from genrekit.features.cache import FeatureStore, default_cache_dir

    folder = Path(root)
    fs = audio_feature_set if audio_feature_set is not None else gtzan57_set(30.0)
    if fs.name == "msd_musicnn" and fs.window is None:
        fs = fs.with_params(window=30.0)  # table rows are window means, not single patches
    if not fs.columns:
        raise DatasetError(
            f"{folder}: feature set {fs.name!r} gives arrays, not table rows; use a table set such as gtzan57"
        )
    label_of = {Path(p): label for p, label in files}
    paths = list(label_of)
    if not paths:
        raise DatasetError(f"{folder}: no audio files found")

    own_store = not isinstance(cache, FeatureStore) and cache is not False
    if cache is False:
        store = None
    elif isinstance(cache, FeatureStore):
        store = cache
    else:
        directory = default_cache_dir() if cache is None else Path(cache)
        try:
            store = FeatureStore(directory)
        except Exception as exc:  # sqlite3.Error, OSError, RuntimeError (newer schema)
            raise DatasetError(f"cannot open the feature cache in {directory}: {exc}") from exc
    try:
        results, summary = extract(paths, fs, store=store, jobs=jobs, engine=engine, progress=progress)
    finally:
        if own_store and store is not None:
            store.close()
    if not results:
        reasons = "; ".join(str(f) for f in summary.failed[:3])
        raise DatasetError(f"{folder}: no file could be analysed ({reasons})")
    if summary.failed:
        # One bad file (GTZAN's jazz.00054 is one) should not sink a whole dataset; say so loudly.
        warnings.warn(
            f"{folder}: {len(summary.failed)} of {len(paths)} files left out: "
            + "; ".join(str(f) for f in summary.failed[:5]),
            stacklevel=3,
        )

    # Track id = file stem, unless two files share one (two albums' "01 Intro.mp3"):
    # then the folder below the root is kept in both track id and row names.
    stems = [track_of_file(r.path.name) for r in results]
    clash = {s for s, n in Counter(stems).items() if n > 1}
    X, labels, tracks, rows = [], [], [], []
    for r, stem in zip(results, stems):
        array = np.atleast_2d(np.asarray(r.array, dtype=np.float64))
        names = window_names(r.path, len(array), fs.window)
        if stem in clash:
            parent = r.path.parent.relative_to(folder).as_posix()
            stem, names = f"{parent}/{stem}", [f"{parent}/{n}" for n in names]
        X.append(array)
        labels += [label_of.get(Path(r.path), "")] * len(array)
        tracks += [stem] * len(array)
        rows += names
    failed = f", {len(summary.failed)} files failed" if summary.failed else ""
    window = f"{fs.window:g}-s windows" if fs.window else "whole files"
    source = (
        f"{folder} ({description}: {len(results)} files{failed}; {fs.name} features, {window}, "
        f"feature set {fs.key})"
    )
    return FeatureTable(np.vstack(X), np.array(labels), np.array(tracks), np.array(rows),
                        list(fs.columns), source, fs.to_dict())
