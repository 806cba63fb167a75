"""The tracks a CNN learns from: a dataset's files and labels, and their spectrograms held in memory.

A dataset is a ``<genre>/<file>`` folder or a ``path,label[,artist]`` CSV manifest
(:func:`read_manifest`). :func:`load_tracks` computes every track's spectrogram once,
**over the whole signal**, through the feature cache (the input of
:func:`genrekit.models.cnn_inputs.cnn_feature_set`: a dB log-mel, its MFCCs or musicnn's
front end), and keeps them in a :class:`TrackSet`; crops and evaluation windows are cut
from them (:mod:`genrekit.training.cnn.crops`) by the rules prediction follows
(:mod:`genrekit.models.cnn_inputs`: "Windows and frames", "Short signals").

numpy only: the training loop (:mod:`genrekit.training.cnn.loop`) turns these arrays into tensors.
"""

from __future__ import annotations

import csv
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from genrekit.errors import DatasetError, ParameterError
from genrekit.features.sets import FeatureSet
from genrekit.models.cnn_inputs import CNN_INPUTS, cnn_feature_set, input_bands


@dataclass(frozen=True)
class TrackRef:
    """One audio file of a dataset.

    Attributes
    ----------
    path : Path
    label : str
    artist : str or None
        From the manifest's ``artist`` column, when it has one.
    """

    path: Path
    label: str
    artist: str | None = None


def read_manifest(data: str | os.PathLike) -> list[TrackRef]:
    """The files and labels of a dataset: a folder in ``<genre>/<file>`` layout or a CSV manifest.

    - **Folder**: every audio file below it (:func:`genrekit.audio.files.collect_audio_files`);
      the label is the name of the top-level folder the file is in
      (``data/jazz/live/take5.wav`` → ``jazz``). Files directly in ``data`` are refused.
    - **CSV**: columns ``path,label[,artist]``, with or without that header line; paths
      are relative to the CSV's folder (or absolute).

    Raises
    ------
    genrekit.errors.DatasetError
        If the folder holds no audio, a file lies outside any label folder, or a CSV
        row is malformed.
    """
    from genrekit.audio.files import collect_audio_files

    data = Path(data)
    if data.is_dir():
        refs = []
        for path in collect_audio_files([data]):
            parts = path.relative_to(data).parts
            if len(parts) < 2:
                raise DatasetError(
                    f"{path}: not in a label folder; expected the layout {data}/<genre>/<file>"
                )
            refs.append(TrackRef(path, parts[0]))
        if not refs:
            raise DatasetError(f"{data}: no audio files found")
        return refs
    if not data.is_file():
        raise DatasetError(f"{data}: no such folder or CSV manifest")
    try:
        with open(data, newline="", encoding="utf-8") as f:
            rows = [r for r in csv.reader(f) if r and any(c.strip() for c in r)]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DatasetError(f"{data}: cannot read the manifest ({exc})") from None
    if rows and [c.strip().lower() for c in rows[0][:2]] == ["path", "label"]:
        rows = rows[1:]
    refs = []
    for n, row in enumerate(rows, start=1):
        if len(row) not in (2, 3) or not row[0].strip() or not row[1].strip():
            raise DatasetError(f"{data}: row {n} is not 'path,label[,artist]': {row}")
        path = Path(row[0].strip())
        refs.append(TrackRef(
            path if path.is_absolute() else data.parent / path,
            row[1].strip(),
            (row[2].strip() or None) if len(row) == 3 else None,
        ))
    if not refs:
        raise DatasetError(f"{data}: the manifest lists no files")
    return refs


@dataclass
class TrackSet:
    """Whole-track log-mel spectrograms with labels, held in memory.

    Attributes
    ----------
    specs : list of np.ndarray [shape=(n_mels, frames), dtype=float32]
    n_samples : np.ndarray [shape=(n_tracks,)]
        Decoded length of each track, in samples at ``fs.sample_rate``.
    labels : np.ndarray [shape=(n_tracks,), dtype=str]
    tracks : np.ndarray [shape=(n_tracks,), dtype=str]
        Track ids: the file stem (GTZAN names normalised by
        :func:`genrekit.datasets.gtzan.track_id`), with the folder kept where two files share a stem.
    paths : list of Path
    artists : dict or None
        ``{track_id: artist}`` when the manifest names artists.
    fs : FeatureSet
    source : str
        What the data is, for results and model cards.
    failed : list of str
        Files left out, with the reason.
    """

    specs: list[np.ndarray]
    n_samples: np.ndarray
    labels: np.ndarray
    tracks: np.ndarray
    paths: list[Path]
    artists: dict[str, str] | None
    fs: FeatureSet
    source: str
    failed: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.specs)

    @property
    def classes(self) -> list[str]:
        """The labels, sorted: the order of the network's outputs."""
        return sorted(set(self.labels.tolist()))

    @property
    def y(self) -> np.ndarray:
        """Each track's class index into :attr:`classes`."""
        return np.searchsorted(np.array(self.classes), self.labels)

    def table(self):
        """A one-row-per-track :class:`~genrekit.datasets.tables.FeatureTable` (no feature columns).

        Row ``i`` is track ``i``, so the row indices of
        :func:`~genrekit.datasets.splits.make_splits` index :attr:`specs` directly.
        """
        from genrekit.datasets.tables import FeatureTable

        return FeatureTable(
            np.zeros((len(self), 0)), self.labels, self.tracks,
            np.array([p.as_posix() for p in self.paths], dtype=str), [], self.source, self.fs.to_dict(),
        )


def load_tracks(
    data: str | os.PathLike,
    fs: FeatureSet | None = None,
    *,
    cache=None,
    jobs: int = 1,
    progress: bool = True,
) -> TrackSet:
    """Log-mel spectrograms of every track of a dataset, computed once through the feature cache.

    Parameters
    ----------
    data : str or path-like
        A folder or CSV manifest (see :func:`read_manifest`).
    fs : FeatureSet, optional
        One of :data:`~genrekit.models.cnn_inputs.CNN_INPUTS`
        (default :func:`~genrekit.models.cnn_inputs.cnn_feature_set`).
    cache : FeatureStore, path, None or False
        ``None``: the default cache (``$GENREKIT_CACHE`` or ``~/.cache/genrekit``); a
        path: the cache in that folder; ``False``: compute without caching.
    jobs : int
        Worker processes for files not in the cache (``0``: one per CPU).
    progress : bool
        Progress bar on stderr when it is a terminal.

    Returns
    -------
    TrackSet
        Files that cannot be decoded are left out with a warning (and listed in
        ``failed``); memory is about 0.5 MB per 30-s track at the defaults.
    """
    from genrekit.datasets.gtzan import track_id
    from genrekit.features.extract import extract
    from genrekit.features.cache import FeatureStore, default_cache_dir

    fs = fs or cnn_feature_set()
    if fs.name not in CNN_INPUTS:
        raise ParameterError(f"CNNs take {', '.join(CNN_INPUTS)} features, got {fs.name!r}")
    refs = read_manifest(data)
    by_path = {r.path: r for r in refs}
    if len(by_path) != len(refs):
        raise DatasetError(f"{data}: a file is listed more than once")

    store, own = cache, False
    if cache is False:
        store = None
    elif not isinstance(cache, FeatureStore):
        store, own = FeatureStore(default_cache_dir() if cache is None else Path(cache)), True
    try:
        results, summary = extract([r.path for r in refs], fs, store=store, jobs=jobs, progress=progress)
    finally:
        if own:
            store.close()
    failed = [str(f) for f in summary.failed]
    if failed:
        warnings.warn(f"{data}: {len(failed)} of {len(refs)} files left out: " + "; ".join(failed[:5]), stacklevel=2)
    if not results:
        raise DatasetError(f"{data}: no file could be analysed")

    ids = [track_id(r.path.name) for r in results]
    clash = {t for t in ids if ids.count(t) > 1}
    root = Path(data) if Path(data).is_dir() else Path(data).parent
    for i, r in enumerate(results):
        if ids[i] in clash:  # two albums' "01 Intro.mp3": keep the folders in the id
            rel = os.path.relpath(r.path.with_suffix(""), root)
            ids[i] = Path(rel).as_posix()
    artists = None
    if any(by_path[r.path].artist for r in results):
        # A row without an artist is a group of its own, as in read_artist_index.
        artists = {t: by_path[r.path].artist or f"?{t}" for t, r in zip(ids, results)}
    labels = np.array([by_path[r.path].label for r in results], dtype=str)
    n_labels = len(set(labels.tolist()))
    if n_labels < 2:
        raise DatasetError(f"{data}: a classifier needs at least 2 labels, found {n_labels}")
    source = (
        f"{data} ({len(results)} tracks, {n_labels} labels"
        + (f", {len(failed)} files failed" if failed else "")
        + f"; {fs.name} {input_bands(fs)} bands at {fs.sample_rate} Hz, hop {fs.hop_length})"
    )
    return TrackSet(
        specs=[np.asarray(r.array, dtype=np.float32) for r in results],
        n_samples=np.array([r.n_samples for r in results], dtype=np.int64),
        labels=labels,
        tracks=np.array(ids, dtype=str),
        paths=[r.path for r in results],
        artists=artists,
        fs=fs,
        source=source,
        failed=failed,
    )
