"""Training batches and evaluation windows for the CNNs: random crops, augmentation, deterministic windows.

Each epoch draws random crops of the training tracks (a new start per track and epoch),
with SpecAugment frequency and time masks (Park et al. 2019), a random gain (a dB offset
of the whole crop), and optionally mixup (Zhang et al. 2018): see :class:`Augment`.
Validation and test tracks are scored on the deterministic windows prediction uses
(:func:`track_windows`, :func:`genrekit.models.cnn_inputs.signal_windows`). A track
shorter than a crop is repeated in time to fill it, as in prediction
(:func:`genrekit.models.cnn_inputs.fit_frames`). numpy only.

References
----------
- D. S. Park et al., "SpecAugment: a simple data augmentation method for automatic
  speech recognition", Interspeech 2019.
- H. Zhang, M. Cisse, Y. N. Dauphin, D. Lopez-Paz, "mixup: beyond empirical risk
  minimization", ICLR 2018.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from genrekit.models.cnn_inputs import fit_frames, signal_windows
from genrekit.training.cnn.tracks import TrackSet


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

    Windows are those of :func:`~genrekit.models.cnn_inputs.signal_windows`, deterministic, in track order.
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
