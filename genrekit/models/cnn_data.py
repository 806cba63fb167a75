"""Data for the CNNs: tracks as whole log-mel spectrograms, training crops, augmentation, windows.

This module needs numpy only; it never imports torch, so that prediction with a CNN
bundle (:func:`genrekit.models.cnn_inputs.bundle_inputs`) runs where torch is not
installed. The training loop (:mod:`genrekit.training.cnn`) turns the arrays
made here into tensors.

Windows and frames
------------------
A track's log-mel spectrogram (``feature_set("logmel")``: centred STFT frames every
``hop_length`` samples) is computed **once, over the whole signal**, both in training
and in prediction. A window of ``window`` seconds is then the run of
:func:`window_frames` frames (130 for 3 s at 22050 Hz with a 512-sample hop) that
starts at the frame nearest the window's first sample. Evaluation and prediction take
the windows of :func:`genrekit.audio.windows.window_bounds` with ``cover_end=True`` (3-s
windows every 1.5 s by default, the last one ending at the signal's end); a last
window that ``window_bounds`` lengthened to absorb a short tail (at most 5 % of a
window) keeps the window's frame count and drops those few frames.

Inputs
------
Every network takes ``(batch, 1, bands, frames)`` images of one of :data:`CNN_INPUTS`
(:func:`cnn_feature_set`), recorded in the bundle's feature set so that classification
computes them the same way:

- ``logmel``: 128-band log-power mel spectrogram in dB, 22050 Hz, hop 512 (the default);
- ``mfcc``: its first ``n_mfcc`` cepstral coefficients (the seeds fed 128 × 599 and
  40 × 217 MFCC images to their CNNs);
- ``musicnn_frontend``: MSD-musicnn's front end (96 bands, 16 kHz, hop 256,
  ``log10(10000 x + 1)``), the only input of ``--arch musicnn``, whose patches are
  187 frames (2.99 s).

Short signals
-------------
One rule for every input, in training and in classification alike: a spectrogram with
fewer frames than a window is **repeated** (wrapped around in time) until it fills the
window — musicnn's authors' "repeat-pad" of short clips. A loop of the music has the
music's texture and rhythm, where zero or silence padding would add a stretch of
"silence" the network never saw in training. The shared 2–3-s GTZAN excerpts are thus
one window each (a 2-s excerpt is 126 musicnn frames, repeated to 187; 87 log-mel
frames, repeated to 130). Training crops of such tracks follow the same rule.

Augmentation (training only)
----------------------------
Random crops (a new start per track and epoch), SpecAugment frequency and time masks
(Park et al. 2019), a random gain (a dB offset of the whole crop), and optionally
mixup (Zhang et al. 2018). See :class:`Augment`.

References
----------
- D. S. Park et al., "SpecAugment: a simple data augmentation method for automatic
  speech recognition", Interspeech 2019.
- H. Zhang, M. Cisse, Y. N. Dauphin, D. Lopez-Paz, "mixup: beyond empirical risk
  minimization", ICLR 2018.
"""

from __future__ import annotations

import csv
import os
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from genrekit.features.sets import FeatureSet

# The inference half (windows, frames, patches) lives in cnn_inputs; re-exported for training code.
from genrekit.models.cnn_inputs import (  # noqa: F401
    DEFAULT_WINDOW, DEFAULT_HOP, CNN_INPUTS, cnn_feature_set, input_bands, window_frames, fit_frames, frame_starts, patches, signal_windows, bundle_inputs, spectrogram_inputs, _bundle_frames,
)


# --- tracks -----------------------------------------------------------------------------
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
    from genrekit.datasets.tables import DatasetError
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
        """A one-row-per-track :class:`~genrekit.datasets.feature_table.FeatureTable` (no feature columns).

        Row ``i`` is track ``i``, so the row indices of
        :func:`~genrekit.datasets.splits.make_splits` index :attr:`specs` directly.
        """
        from genrekit.datasets.feature_table import FeatureTable

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
        One of :data:`CNN_INPUTS` (default :func:`cnn_feature_set`).
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
    from genrekit.datasets.tables import DatasetError
    from genrekit.datasets.gtzan import track_id
    from genrekit.features.extract import extract
    from genrekit.features.cache import FeatureStore, default_cache_dir

    fs = fs or cnn_feature_set()
    if fs.name not in CNN_INPUTS:
        raise ValueError(f"CNNs take {', '.join(CNN_INPUTS)} features, got {fs.name!r}")
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


# --- training batches -------------------------------------------------------------------------
@dataclass(frozen=True)
class Augment:
    """Training-time augmentation of log-mel crops.

    Parameters
    ----------
    freq_masks, time_masks : int
        Number of SpecAugment masks per crop (Park et al. 2019).
    freq_mask, time_mask : float
        Largest mask width as a fraction of the bands / frames (widths are uniform in
        ``[0, max]``). Masked cells take the crop's mean level: in dB, zero is not
        neutral, and the mean is what Park et al.'s zero is after normalisation.
    gain_db : float
        A dB offset uniform in ``[-gain_db, gain_db]`` is added to each crop (a louder
        or quieter recording of the same music).
    mixup : float
        Mixup's Beta(α, α) parameter (Zhang et al. 2018; 0.2 is typical); ``0`` turns
        mixup off. Each batch is mixed with a shuffled copy of itself, with one weight.
    """

    freq_masks: int = 2
    freq_mask: float = 0.1
    time_masks: int = 2
    time_mask: float = 0.1
    gain_db: float = 6.0
    mixup: float = 0.0

    @classmethod
    def none(cls) -> "Augment":
        """No augmentation at all (random crops remain)."""
        return cls(0, 0.0, 0, 0.0, 0.0, 0.0)


def random_crops(
    specs: Sequence[np.ndarray], idx: np.ndarray, n_frames: int, rng: np.random.Generator
) -> np.ndarray:
    """A random ``n_frames`` crop of each track ``idx``: ``(len(idx), 1, n_mels, n_frames)`` float32."""
    out = np.empty((len(idx), 1, specs[idx[0]].shape[0], n_frames), dtype=np.float32)
    for k, i in enumerate(idx):
        spec = fit_frames(specs[i], n_frames)
        start = int(rng.integers(0, spec.shape[1] - n_frames + 1))
        out[k, 0] = spec[:, start : start + n_frames]
    return out


def augment_batch(
    X: np.ndarray, targets: np.ndarray, aug: Augment, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Apply ``aug`` to a batch of crops (in place) and their one-hot targets.

    Parameters
    ----------
    X : np.ndarray [shape=(batch, 1, n_mels, n_frames), dtype=float32]
    targets : np.ndarray [shape=(batch, n_classes)]
        One-hot rows; mixup makes them soft.
    aug : Augment
    rng : np.random.Generator

    Returns
    -------
    X, targets
    """
    n, _, n_mels, n_frames = X.shape
    for k in range(n):
        x = X[k, 0]
        fill = float(x.mean())
        for _ in range(aug.freq_masks):
            w = int(rng.integers(0, int(aug.freq_mask * n_mels) + 1))
            f0 = int(rng.integers(0, n_mels - w + 1))
            x[f0 : f0 + w] = fill
        for _ in range(aug.time_masks):
            w = int(rng.integers(0, int(aug.time_mask * n_frames) + 1))
            t0 = int(rng.integers(0, n_frames - w + 1))
            x[:, t0 : t0 + w] = fill
        if aug.gain_db:
            x += np.float32(rng.uniform(-aug.gain_db, aug.gain_db))
    if aug.mixup > 0 and n > 1:
        lam = np.float32(rng.beta(aug.mixup, aug.mixup))
        perm = rng.permutation(n)
        X = lam * X + (1 - lam) * X[perm]
        targets = lam * targets + (1 - lam) * targets[perm]
    return X, targets


def epoch_batches(
    specs: Sequence[np.ndarray],
    y: np.ndarray,
    idx: np.ndarray,
    *,
    n_classes: int,
    n_frames: int,
    batch_size: int,
    crops_per_track: int,
    augment: Augment,
    rng: np.random.Generator,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """One epoch of training batches: ``crops_per_track`` random crops of every track, shuffled.

    Yields
    ------
    X : np.ndarray [shape=(b, 1, n_mels, n_frames), dtype=float32]
    targets : np.ndarray [shape=(b, n_classes), dtype=float32]
        One-hot, or soft under mixup.

    Every random draw comes from ``rng``, so an epoch is a function of the generator's
    state. A last batch of a single crop is dropped (batch normalisation cannot train
    on one example).
    """
    order = rng.permutation(np.repeat(np.asarray(idx), crops_per_track))
    eye = np.eye(n_classes, dtype=np.float32)
    for s in range(0, len(order), batch_size):
        chunk = order[s : s + batch_size]
        if len(chunk) < 2:
            break
        X = random_crops(specs, chunk, n_frames, rng)
        yield augment_batch(X, eye[y[chunk]], augment, rng)


def track_windows(
    tracks: TrackSet, idx: np.ndarray, window: float, hop: float, n_frames: int, max_windows: int = 256
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Evaluation windows of tracks ``idx`` in batches of at most ``max_windows`` windows.

    Yields
    ------
    X : np.ndarray [shape=(b, 1, n_mels, n_frames), dtype=float32]
    owner : np.ndarray [shape=(b,)]
        Track index (into ``tracks``) of each window.

    Windows are those of :func:`signal_windows`, deterministic, in track order.
    """
    buf_x, buf_o, held = [], [], 0
    for i in idx:
        _, X = signal_windows(tracks.specs[i], int(tracks.n_samples[i]), tracks.fs, window, hop, n_frames)
        buf_x.append(X)
        buf_o.append(np.full(len(X), i))
        held += len(X)
        if held >= max_windows:
            yield np.concatenate(buf_x), np.concatenate(buf_o)
            buf_x, buf_o, held = [], [], 0
    if buf_x:
        yield np.concatenate(buf_x), np.concatenate(buf_o)

