"""Which tracks a CNN trains, validates and is tested on: the split, a carved validation side, its fingerprint.

The split is :func:`genrekit.datasets.splits.make_splits`'s (one row per track). A CNN
needs a validation side (early stopping, the best epoch): when the split has none, one is
carved from the training tracks (:func:`carve_valid`), stratified by genre and
artist-disjoint when artists are known.
"""

from __future__ import annotations

import hashlib

import numpy as np

from genrekit.errors import TrainingError
from genrekit.training.cnn.tracks import TrackSet


def split_tracks(tracks: TrackSet, kind, test_size, valid_size, seed, artists, split_dir, folds, fold):
    """Track indices of each side, and the split's summary for results.json."""
    from genrekit.datasets.splits import make_splits
    from genrekit.evaluation.metrics import split_summary

    table = tracks.table()
    artists = artists if artists is not None else tracks.artists
    has_valid = kind in ("random", "artist")
    splits = make_splits(
        table, kind, test_size=test_size, valid_size=valid_size if has_valid else 0.0,
        seed=seed, artists=artists, split_dir=split_dir, folds=folds,
    )
    k = 0 if fold is None else fold
    if not 0 <= k < len(splits):
        raise TrainingError(f"fold {fold} does not exist: the {kind} split has {len(splits)} folds (0..{len(splits) - 1})")
    chosen = splits[k]
    train, valid, test = chosen.train, chosen.valid, chosen.test
    description = chosen.description
    if valid is None or not len(valid):
        train, valid, note = carve_valid(tracks, train, valid_size or 0.1, seed, artists)
        description += f"; {note}"
    chosen = type(chosen)(np.sort(train), np.sort(valid), np.sort(test), chosen.name, description,
                          chosen.leaky, chosen.fold)
    info = split_summary(chosen, table)
    return {"train": chosen.train, "valid": chosen.valid, "test": chosen.test}, info


def carve_valid(tracks: TrackSet, train: np.ndarray, fraction: float, seed: int, artists):
    """Hold out about ``fraction`` of the training tracks for validation.

    Whole artists are held out (clips without a known artist, or all clips when no
    artists are given, are groups of their own), so that validation accuracy is not
    inflated by an artist's other songs. Genres take turns (in an order shuffled by
    ``seed``), each giving up one random artist per turn, which stratifies the hold-out
    by genre; an artist is never taken when that would leave its genre with no artist
    in training. Why: in small data (GTZAN subsets) a genre is often one artist, and
    holding that artist out would teach the network nothing about the genre. When no
    artist can be spared, single tracks are held out instead and the note says so.
    """
    from genrekit.datasets.splits import artist_groups

    labels = tracks.labels[train]
    target = max(1, int(round(fraction * len(train))))
    if artists is not None:
        groups = artist_groups(tracks.table().subset(train), artists)
    else:
        groups = tracks.tracks[train]
    held = hold_out_groups(labels, groups, target, seed)
    what = "whole artists" if artists is not None else "whole tracks"
    if not len(held) and artists is not None:
        held = hold_out_groups(labels, tracks.tracks[train], target, seed)
        what = "single tracks, NOT artist-disjoint: no genre has an artist to spare"
    if not len(held):
        raise TrainingError(
            f"cannot hold out validation tracks from {len(train)} training tracks without removing a genre "
            f"from training; use a split with a validation side or more data"
        )
    keep = np.setdiff1d(np.arange(len(train)), held)
    note = (f"validation: {len(held)} of its {len(train)} training tracks held out "
            f"({what}, stratified by genre, every genre kept in training)")
    return train[keep], train[held], note


def hold_out_groups(labels: np.ndarray, groups: np.ndarray, target: int, seed: int) -> np.ndarray:
    """Positions of about ``target`` items making up whole groups, genres taking turns (see :func:`carve_valid`)."""
    rng = np.random.default_rng(seed)
    genres = rng.permutation(np.unique(labels))
    members = {g: np.flatnonzero(groups == g) for g in np.unique(groups)}
    # Per genre, its groups in random order; a group spanning genres is listed under each.
    queue = {genre: list(rng.permutation(np.unique(groups[labels == genre]))) for genre in genres}
    left = {genre: len(queue[genre]) for genre in genres}  # groups of each genre still in training
    taken: list[np.ndarray] = []
    n_taken, progress = 0, True
    while n_taken < target and progress:
        progress = False
        for genre in genres:
            while queue[genre]:
                group = queue[genre].pop(0)
                spans = np.unique(labels[members[group]])
                if any(left[s] <= 1 for s in spans):  # the last artist of a genre stays in training
                    continue
                taken.append(members[group])
                n_taken += len(members[group])
                for s in spans:
                    left[s] -= 1
                    if s != genre and group in queue[s]:
                        queue[s].remove(group)
                progress = True
                break
            if n_taken >= target:
                break
    return np.sort(np.concatenate(taken)) if taken else np.zeros(0, dtype=int)


def fingerprint(tracks: TrackSet, parts: dict) -> str:
    """A hash of the tracks, labels and split sides: a checkpoint resumes only the same data."""
    h = hashlib.sha256()
    for side in ("train", "valid", "test"):
        idx = parts[side]
        h.update(side.encode())
        for i in [] if idx is None else idx:
            h.update(f"{tracks.tracks[i]}\t{tracks.labels[i]}\n".encode())
    return h.hexdigest()[:16]
