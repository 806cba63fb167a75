"""Train / validation / test splits that keep tracks (and, where known, artists) apart.

A model that has heard 27 s of a song classifies the other 3 s easily, and one that
has heard an artist's other songs recognises the artist, not the genre; both inflate
accuracy (Sturm 2013). Every kind here except ``random-rows`` therefore splits whole
tracks, and ``artist`` / ``kfold`` with an artist index split whole artists.

=================  ====================================================================
kind               what
=================  ====================================================================
``random``         tracks at random, stratified by genre
``random-rows``    rows at random, stratified by genre: the leaky protocol of many
                   published results on the 3-s table, kept to reproduce them
``artist``         whole artists on each side, stratified by genre as far as possible
``fault-filtered`` Kereliuk, Sturm & Larsen's (2015) artist- and fault-filtered lists
``kfold``          K folds of tracks (or of artists), stratified by genre
``folds``          predefined folds from ``f<k>_train.txt`` / ``f<k>_test.txt`` lists
=================  ====================================================================

Indices in a :class:`Split` are row indices into the table, sorted.
"""

from __future__ import annotations

import math

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from genrekit.datasets.gtzan import read_artist_index, read_split_list
from genrekit.datasets.feature_table import FeatureTable
from genrekit.errors import DatasetError

KINDS = ("random", "random-rows", "artist", "fault-filtered", "kfold", "folds")


@dataclass
class Split:
    """One division of a table's rows.

    Attributes
    ----------
    train, test : np.ndarray of int
        Row indices, sorted.
    valid : np.ndarray of int or None
        Validation rows (for choosing hyperparameters), or ``None``.
    name : str
        ``"random"``, ``"random-rows"``, ``"artist"``, ``"fault-filtered"``,
        ``"kfold-5"``, ``"folds-3"``.
    description : str
        One sentence for results and model cards: the protocol, seed and sizes.
    leaky : bool
        True when windows of one track may be on both sides (``random-rows`` only).
    fold : int or None
        Fold number (from 0) for k-fold kinds.
    """

    train: np.ndarray
    valid: np.ndarray | None
    test: np.ndarray
    name: str
    description: str
    leaky: bool = False
    fold: int | None = None

    def to_dict(self) -> dict:
        """Name, description, leakiness, fold and row counts, JSON-ready (no indices)."""
        return {
            "name": self.name,
            "description": self.description,
            "leaky": self.leaky,
            "fold": self.fold,
            "rows": {
                "train": len(self.train),
                "valid": None if self.valid is None else len(self.valid),
                "test": len(self.test),
            },
        }


def make_splits(
    table: FeatureTable,
    kind: str,
    *,
    test_size: float = 0.25,
    valid_size: float = 0.0,
    seed: int = 0,
    artists=None,
    split_dir: str | os.PathLike | None = None,
    folds: int = 5,
) -> list[Split]:
    """Split a table's rows for training and evaluation.

    Parameters
    ----------
    table : FeatureTable
    kind : {"random", "random-rows", "artist", "fault-filtered", "kfold", "folds"}
        See the module docstring.
    test_size : float
        Fraction of tracks (of rows for ``random-rows``) held out for testing
        (``random``, ``random-rows``, ``artist``). For ``artist`` the test side is one
        of ``round(1 / test_size)`` artist-grouped folds, so the fraction is approximate.
    valid_size : float
        Fraction of all tracks held out for validation, taken from the training side
        the same way as the test side (0: no validation set).
    seed : int
        Random seed; equal seeds give equal splits.
    artists : path or mapping, optional
        Artist of each track: a file for :func:`~genrekit.datasets.gtzan.read_artist_index`
        or a ``{track_id: artist}`` mapping. Required for ``artist``; for ``kfold``
        it makes the folds artist-disjoint.
    split_dir : path, optional
        ``fault-filtered``: the folder holding ``train_filtered.txt``,
        ``valid_filtered.txt`` (optional) and ``test_filtered.txt``.
        ``folds``: the folder holding ``f1_train.txt``, ``f1_test.txt``, ``f2_...``.
    folds : int
        ``kfold``: number of folds.

    Returns
    -------
    list of Split
        One split, or one per fold for ``kfold`` / ``folds``.

    Raises
    ------
    DatasetError
        For an unknown kind, missing arguments, tracks missing from the artist index,
        rows without a label (stratified kinds), or a side that ends up empty.
    """
    if kind not in KINDS:
        raise DatasetError(f"unknown split kind {kind!r}; expected one of {', '.join(KINDS)}")
    if kind in ("random", "random-rows", "artist") and not 0 < test_size < 1:
        raise DatasetError(f"test_size must be a fraction in (0, 1), got {test_size}")
    if not 0 <= valid_size < 1 or (kind in ("random", "random-rows", "artist") and test_size + valid_size >= 1):
        raise DatasetError(f"valid_size must be in [0, 1) with test_size + valid_size < 1, got {valid_size}")
    if valid_size and kind in ("kfold", "folds", "fault-filtered"):
        raise DatasetError(
            f"valid_size does not apply to {kind} splits (their validation side is fixed or absent); "
            "to tune within a fold, split its training rows again"
        )
    if len(table) == 0:
        raise DatasetError(f"{table.source}: the table has no rows")

    if kind == "random-rows":
        return [_random_rows(table, test_size, valid_size, seed)]
    if kind == "fault-filtered":
        return [_fault_filtered(table, _need_dir(split_dir, kind))]
    if kind == "folds":
        return _predefined_folds(table, _need_dir(split_dir, kind))

    view = _Tracks(table)
    if kind == "random":
        return [_random(view, test_size, valid_size, seed)]
    groups = None if artists is None else _artist_groups(view, artists)
    if kind == "artist":
        if groups is None:
            raise DatasetError("an artist split needs artists= (e.g. GTZANindex.txt)")
        return [_artist(view, groups, test_size, valid_size, seed)]
    return _kfold(view, groups, folds, seed)


# --- the track-level view -----------------------------------------------------------
class _Tracks:
    """The table seen as tracks: ids, labels, and each row's track number."""

    def __init__(self, table: FeatureTable) -> None:
        self.table = table
        self.ids, first, self.of_row = np.unique(table.tracks, return_index=True, return_inverse=True)
        self.labels = table.labels[first]

    def rows(self, track_idx) -> np.ndarray:
        """Sorted row indices of the given tracks."""
        return np.flatnonzero(np.isin(self.of_row, track_idx))

    def require_labels(self, kind: str) -> None:
        missing = self.ids[self.labels == ""]
        if missing.size:
            raise DatasetError(
                f"{self.table.source}: a {kind} split is stratified by genre, but {missing.size} "
                f"tracks have no label (e.g. {', '.join(missing[:3])})"
            )


def _sizes(view: _Tracks, *sides: np.ndarray | None) -> str:
    """``"750/250 tracks (7500/2500 rows)"`` for the sides given (None skipped)."""
    sides = [s for s in sides if s is not None]
    tracks = "/".join(str(len(np.unique(view.of_row[s]))) for s in sides)
    rows = "/".join(str(len(s)) for s in sides)
    return f"{tracks} tracks ({rows} rows)"


def _side_names(valid) -> str:
    return "train/valid/test" if valid is not None else "train/test"


def _stratified_holdout(items: np.ndarray, labels: np.ndarray, size: float, seed: int, what: str):
    """``train_test_split`` stratified by label, with a readable error for tiny classes."""
    from sklearn.model_selection import train_test_split

    try:
        return train_test_split(items, test_size=size, stratify=labels, random_state=seed)
    except ValueError:
        raise DatasetError(_stratify_problem(len(items), labels, size, what)) from None


def _stratify_problem(n: int, labels: np.ndarray, size: float, what: str) -> str:
    """Why ``n`` items cannot be split ``size`` : ``1 - size`` with every genre on both sides, and what would work."""
    genres, counts = np.unique(labels, return_counts=True)
    k = len(genres)
    message = f"cannot make a stratified split of {n} {what} ({k} genres) with a {size:g} share held out"
    few = [f"{g} ({c})" for g, c in zip(genres, counts) if c < 2]
    if few:
        return (f"{message}: every genre needs at least 2 {what} (one per side); too few in "
                f"{', '.join(few)}. Add {what} to those genres or leave them out")
    # Each side must hold at least one item of every genre.
    lo, hi = k / n, 1 - k / n
    if lo > hi:
        return f"{message}: that needs at least {2 * k} {what}; add {what}"
    return (f"{message}: each side needs at least one of each genre ({k} {what}), so the held-out "
            f"share must be between {math.ceil(lo * 100) / 100:g} and {math.floor(hi * 100) / 100:g}; "
            f"or use more {what}")


# --- kinds ------------------------------------------------------------------------------
def _random(view: _Tracks, test_size: float, valid_size: float, seed: int) -> Split:
    view.require_labels("random")
    idx = np.arange(len(view.ids))
    n, k = len(idx), len(np.unique(view.labels))
    try:
        train, test = _stratified_holdout(idx, view.labels, test_size, seed, "tracks")
    except DatasetError as exc:
        raise DatasetError(f"--test-size {test_size:g}: {exc}") from None
    valid = None
    if valid_size > 0:
        # valid_size is a fraction of all tracks; rescale it to the training side.
        try:
            train, valid = _stratified_holdout(
                train, view.labels[train], valid_size / (1 - test_size), seed, "tracks"
            )
        except DatasetError:
            need = k / n  # one track of each genre, as a fraction of all tracks
            most = (1 - test_size) - need
            advice = (f"use --valid-size between {math.ceil(need * 100) / 100:g} and "
                      f"{math.floor(most * 100) / 100:g}" if need <= most
                      else f"{n} tracks are too few for train, validation and test sides of {k} genres each; "
                           f"use at least {3 * k} tracks, or no validation side")
            raise DatasetError(
                f"--valid-size {valid_size:g} of {n} tracks leaves the validation side without a track of "
                f"every genre ({k}, from the {len(train)} training tracks); {advice}") from None
        valid = view.rows(valid)
    train, test = view.rows(train), view.rows(test)
    return Split(
        train, valid, test, "random",
        f"random split of tracks stratified by genre (seed {seed}), all windows of a track on one "
        f"side: {_sizes(view, train, valid, test)} {_side_names(valid)}",
    )


def _random_rows(table: FeatureTable, test_size: float, valid_size: float, seed: int) -> Split:
    view = _Tracks(table)
    view.require_labels("random-rows")
    idx = np.arange(len(table))
    train, test = _stratified_holdout(idx, table.labels, test_size, seed, "rows")
    valid = None
    if valid_size > 0:
        train, valid = _stratified_holdout(
            train, table.labels[train], valid_size / (1 - test_size), seed, "rows"
        )
        valid = np.sort(valid)
    train, test = np.sort(train), np.sort(test)
    held_out = test if valid is None else np.concatenate([valid, test])
    straddle = len(np.intersect1d(table.tracks[train], table.tracks[held_out]))
    return Split(
        train, valid, test, "random-rows",
        f"LEAKY random split of rows ignoring tracks, stratified by genre (seed {seed}): windows of "
        f"one track land in both train and test ({straddle} of {len(view.ids)} tracks straddle), "
        f"so accuracy is inflated; kept only to reproduce published numbers: "
        f"{_sizes(view, train, valid, test)} {_side_names(valid)}",
        leaky=True,
    )


def _artist_groups(view: _Tracks, artists) -> np.ndarray:
    """Artist of each track, from an index file or a mapping."""
    index = artists if isinstance(artists, Mapping) else read_artist_index(artists)
    missing = [t for t in view.ids if t not in index]
    if missing:
        where = "the artist index" if isinstance(artists, Mapping) else str(artists)
        raise DatasetError(
            f"{len(missing)} of {len(view.ids)} tracks are not in {where} "
            f"(e.g. {', '.join(missing[:5])}); artist-aware splits need every track's artist"
        )
    return np.array([index[t] for t in view.ids], dtype=str)


def artist_groups(table: FeatureTable, artists) -> np.ndarray:
    """The artist of each track of ``table`` (track order as its ``tracks`` first appear), from an
    artist index file or a mapping; :class:`DatasetError` names the tracks it does not list."""
    return _artist_groups(_Tracks(table), artists)


def _group_holdout(view: _Tracks, idx: np.ndarray, groups: np.ndarray, size: float, seed: int):
    """Hold out one of ``round(1/size)`` artist-grouped, genre-stratified folds of ``idx``."""
    from sklearn.model_selection import StratifiedGroupKFold

    n_splits = max(2, round(1 / size))
    n_groups = len(np.unique(groups[idx]))
    if n_groups < n_splits:
        raise DatasetError(f"cannot hold out 1/{n_splits} of {n_groups} artists: too few artists")
    cv = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    keep, out = next(cv.split(idx, view.labels[idx], groups[idx]))
    return idx[keep], idx[out]


def _artist(view: _Tracks, groups: np.ndarray, test_size: float, valid_size: float, seed: int) -> Split:
    view.require_labels("artist")
    train, test = _group_holdout(view, np.arange(len(view.ids)), groups, test_size, seed)
    valid = None
    if valid_size > 0:
        train, valid = _group_holdout(view, train, groups, valid_size / (1 - test_size), seed)
    sides = [s for s in (train, valid, test) if s is not None]  # track indices
    n_artists = "/".join(str(len(np.unique(groups[s]))) for s in sides)
    train, test = view.rows(train), view.rows(test)
    valid = None if valid is None else view.rows(valid)
    return Split(
        train, valid, test, "artist",
        f"artist-disjoint split, stratified by genre as far as artists allow (seed {seed}; "
        f"clips without a known artist are each their own group): {_sizes(view, train, valid, test)}, "
        f"{n_artists} artists {_side_names(valid)}",
    )


def _kfold(view: _Tracks, groups: np.ndarray | None, folds: int, seed: int) -> list[Split]:
    from sklearn.model_selection import StratifiedGroupKFold

    view.require_labels("kfold")
    if folds < 2:
        raise DatasetError(f"kfold needs folds >= 2, got {folds}")
    by_artist = groups is not None
    groups = groups if by_artist else view.ids
    if len(np.unique(groups)) < folds:
        raise DatasetError(f"cannot make {folds} folds of {len(np.unique(groups))} groups")
    cv = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    idx = np.arange(len(view.ids))
    what = "artists (clips without a known artist each their own group)" if by_artist else "tracks"
    splits = []
    for k, (train, test) in enumerate(cv.split(idx, view.labels, groups)):
        train, test = view.rows(train), view.rows(test)
        splits.append(Split(
            train, None, test, f"kfold-{folds}",
            f"fold {k + 1} of {folds}-fold cross-validation over {what}, stratified by genre "
            f"(seed {seed}): {_sizes(view, train, test)} train/test",
            fold=k,
        ))
    return splits


def _need_dir(split_dir, kind: str) -> Path:
    if split_dir is None:
        raise DatasetError(f"a {kind} split needs split_dir= (the folder of split lists)")
    split_dir = Path(split_dir)
    if not split_dir.is_dir():
        raise DatasetError(f"{split_dir}: not a folder of split lists")
    return split_dir


def _listed(table: FeatureTable, lists: dict[str, list[str] | None], origin: str):
    """Rows of each listed side, plus counts of tracks left out and listed but absent."""
    view = _Tracks(table)
    present = set(view.ids)
    owner: dict[str, str] = {}
    for side, ids in lists.items():
        for t in ids or ():
            if owner.setdefault(t, side) != side:
                raise DatasetError(f"{origin}: {t} is listed in both {owner[t]} and {side}")
    sides = {}
    for side, ids in lists.items():
        if ids is None:
            sides[side] = None
            continue
        rows = np.flatnonzero(np.isin(table.tracks, list(ids)))
        if not rows.size:
            raise DatasetError(
                f"{origin}: none of the {len(ids)} {side} tracks is in {table.source} "
                f"(e.g. {', '.join(ids[:3])})"
            )
        sides[side] = rows
    unlisted = len(present - owner.keys())
    absent = len(owner.keys() - present)
    return view, sides, unlisted, absent


def _fault_filtered(table: FeatureTable, split_dir: Path) -> Split:
    lists = {}
    for side in ("train", "valid", "test"):
        path = split_dir / f"{side}_filtered.txt"
        # Without a validation list, train/test still make a split; valid is then None.
        lists[side] = None if side == "valid" and not path.exists() else read_split_list(path)
    view, sides, unlisted, absent = _listed(table, lists, str(split_dir))
    train, valid, test = sides["train"], sides["valid"], sides["test"]
    return Split(
        train, valid, test, "fault-filtered",
        f"fault-filtered, artist-filtered GTZAN split of Kereliuk, Sturm & Larsen (2015) from "
        f"{split_dir}: {_sizes(view, train, valid, test)} {_side_names(valid)}; {unlisted} tracks of the "
        f"table are in no list and were left out; {absent} listed tracks are missing from the table",
    )


def _predefined_folds(table: FeatureTable, split_dir: Path) -> list[Split]:
    k = 1
    splits = []
    while (split_dir / f"f{k}_train.txt").exists():
        lists = {
            "train": read_split_list(split_dir / f"f{k}_train.txt"),
            "test": read_split_list(split_dir / f"f{k}_test.txt"),
        }
        view, sides, unlisted, absent = _listed(table, lists, str(split_dir / f"f{k}_*.txt"))
        splits.append((k, view, sides, unlisted, absent))
        k += 1
    if not splits:
        raise DatasetError(f"{split_dir}: no f1_train.txt / f1_test.txt fold lists")
    n = len(splits)
    return [
        Split(
            sides["train"], None, sides["test"], f"folds-{n}",
            f"predefined fold {k} of {n} from {split_dir}: {_sizes(view, sides['train'], sides['test'])} "
            f"train/test; {unlisted} tracks of the table are in neither list; {absent} listed tracks "
            f"are missing from the table",
            fold=k - 1,
        )
        for k, view, sides, unlisted, absent in splits
    ]
