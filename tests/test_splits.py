"""Splits: every kind keeps tracks (and artists, where known) on one side, reproducibly.

Most tests use a table built here: 40 tracks x 10 windows, 4 genres of 10 tracks, 2 tracks
per artist; a few tracks have no known artist. Real-file tests use the GTZAN lists.
"""

import numpy as np
import pytest

from genrekit.errors import DatasetError
from genrekit.datasets.feature_table import FeatureTable
from genrekit.datasets.splits import make_splits
from genrekit.datasets.gtzan import read_artist_index
from genrekit.datasets.splits import Split

GENRES4 = ("blues", "jazz", "metal", "pop")
WINDOWS = 10


def make_table(n_per_genre=10, windows=WINDOWS, seed=0) -> FeatureTable:
    rng = np.random.default_rng(seed)
    labels, tracks, rows = [], [], []
    for g in GENRES4:
        for i in range(n_per_genre):
            t = f"{g}.{i:05d}"
            for k in range(windows):
                labels.append(g)
                tracks.append(t)
                rows.append(f"{t}.{k}.wav")
    X = rng.standard_normal((len(rows), 3))
    return FeatureTable(X, np.array(labels), np.array(tracks), np.array(rows), ["a", "b", "c"], "test table")


def make_artists(table: FeatureTable, unknown=("blues.00009", "jazz.00009", "pop.00008", "pop.00009")):
    """Two tracks per artist within a genre (``blues-a0`` has blues.00000 and .00001); a few unknown."""
    out = {}
    for t in np.unique(table.tracks):
        genre, number = t.split(".")
        out[t] = f"?{t}" if t in unknown else f"{genre}-a{int(number) // 2}"
    return out


def sides(split: Split):
    return [s for s in (split.train, split.valid, split.test) if s is not None]


def assert_disjoint(values_per_side):
    seen = {}
    for n, values in enumerate(values_per_side):
        for v in set(values):
            assert seen.setdefault(v, n) == n, f"{v} is on sides {seen[v]} and {n}"


def assert_partition(table, split, complete=True):
    all_rows = np.concatenate(sides(split))
    assert len(all_rows) == len(set(all_rows)), "a row is on two sides"
    for s in sides(split):
        assert np.all(np.diff(s) > 0), "indices are sorted"
    if complete:
        assert sorted(all_rows) == list(range(len(table)))


def per_genre(table, rows):
    """Number of tracks of each genre among ``rows``."""
    labels = [t.split(".")[0] for t in np.unique(table.tracks[rows])]
    return {g: labels.count(g) for g in GENRES4}


# --- random ----------------------------------------------------------------------
def test_random_split_keeps_tracks_together_and_is_stratified():
    table = make_table()
    (split,) = make_splits(table, "random", test_size=0.25, seed=0)
    assert split.name == "random" and not split.leaky and split.valid is None and split.fold is None
    assert_partition(table, split)
    assert_disjoint([table.tracks[s] for s in sides(split)])
    assert len(np.unique(table.tracks[split.test])) == 10  # 25% of 40 tracks
    assert all(c in (2, 3) for c in per_genre(table, split.test).values())  # 2.5 per genre
    assert len(split.test) == 10 * WINDOWS  # whole tracks
    assert "30/10 tracks" in split.description and "seed 0" in split.description


def test_random_split_with_validation_and_seeds():
    table = make_table()
    (a,) = make_splits(table, "random", test_size=0.25, valid_size=0.25, seed=3)
    assert_partition(table, a)
    assert_disjoint([table.tracks[s] for s in sides(a)])
    assert [len(np.unique(table.tracks[s])) for s in sides(a)] == [20, 10, 10]
    assert all(c >= 2 for c in per_genre(table, a.valid).values())
    (b,) = make_splits(table, "random", test_size=0.25, valid_size=0.25, seed=3)
    (c,) = make_splits(table, "random", test_size=0.25, valid_size=0.25, seed=4)
    assert all(np.array_equal(x, y) for x, y in zip(sides(a), sides(b)))
    assert not np.array_equal(a.test, c.test)


# --- random-rows (leaky) -----------------------------------------------------------
def test_random_rows_is_leaky_and_says_so():
    table = make_table()
    (split,) = make_splits(table, "random-rows", test_size=0.25, seed=0)
    assert split.leaky and split.name == "random-rows"
    assert_partition(table, split)
    straddling = np.intersect1d(table.tracks[split.train], table.tracks[split.test])
    assert len(straddling) > 20  # windows of most tracks land on both sides
    assert "LEAKY" in split.description and "both train and test" in split.description
    assert f"{len(straddling)} of 40 tracks straddle" in split.description
    counts = {g: int((table.labels[split.test] == g).sum()) for g in GENRES4}
    assert counts == {g: 25 for g in GENRES4}  # stratified by row label: 25% of 100 rows
    (again,) = make_splits(table, "random-rows", test_size=0.25, seed=0)
    assert np.array_equal(split.test, again.test)


# --- artist ------------------------------------------------------------------------
def test_artist_split_keeps_artists_apart(tmp_path):
    table = make_table()
    artists = make_artists(table)
    (split,) = make_splits(table, "artist", artists=artists, test_size=0.25, valid_size=0.2, seed=1)
    assert split.name == "artist" and not split.leaky
    assert_partition(table, split)
    assert_disjoint([table.tracks[s] for s in sides(split)])
    assert_disjoint([[artists[t] for t in table.tracks[s]] for s in sides(split)])
    # Stratified as far as artists allow: every genre is on the test side.
    assert all(c >= 1 for c in per_genre(table, split.test).values())
    assert "artist" in split.description and "artists" in split.description

    # The same from an index file in GTZANindex format; an empty artist is its own group.
    index = tmp_path / "index.txt"
    index.write_text("## comment\n" + "".join(
        f"{t}.wav ::: {'' if a.startswith('?') else a} ::: title\n" for t, a in artists.items()
    ))
    assert read_artist_index(index) == artists
    (from_file,) = make_splits(table, "artist", artists=index, test_size=0.25, valid_size=0.2, seed=1)
    assert all(np.array_equal(x, y) for x, y in zip(sides(split), sides(from_file)))


def test_unknown_artists_are_not_one_group():
    table = make_table(windows=1)
    # Every track unknown: one group per track, so a 4-fold holdout is still possible.
    artists = {t: f"?{t}" for t in table.tracks}
    (split,) = make_splits(table, "artist", artists=artists, test_size=0.25)
    assert 0 < len(split.test) < len(table)


def test_artist_split_names_tracks_missing_from_the_index():
    table = make_table()
    artists = make_artists(table)
    for t in ("blues.00003", "pop.00001"):
        del artists[t]
    with pytest.raises(DatasetError, match=r"2 of 40 tracks are not in .*blues\.00003, pop\.00001"):
        make_splits(table, "artist", artists=artists)
    with pytest.raises(DatasetError, match="needs artists="):
        make_splits(table, "artist")


# --- k-fold ----------------------------------------------------------------------------
@pytest.mark.parametrize("with_artists", [False, True])
def test_kfold_covers_every_row_once(with_artists):
    table = make_table()
    artists = make_artists(table) if with_artists else None
    splits = make_splits(table, "kfold", folds=4, artists=artists, seed=2)
    assert [s.fold for s in splits] == [0, 1, 2, 3]
    assert all(s.name == "kfold-4" and s.valid is None and not s.leaky for s in splits)
    tests = np.concatenate([s.test for s in splits])
    assert sorted(tests) == list(range(len(table)))  # each row tested exactly once
    for s in splits:
        assert_partition(table, s)
        assert_disjoint([table.tracks[x] for x in sides(s)])
        if with_artists:
            assert_disjoint([[artists[t] for t in table.tracks[x]] for x in sides(s)])
        assert all(c >= 1 for c in per_genre(table, s.test).values())
    again = make_splits(table, "kfold", folds=4, artists=artists, seed=2)
    assert all(np.array_equal(a.test, b.test) for a, b in zip(splits, again))


# --- predefined lists ------------------------------------------------------------
def write_lists(folder, lists: dict[str, list[str]]):
    folder.mkdir(parents=True, exist_ok=True)
    for side, tracks in lists.items():
        (folder / f"{side}_filtered.txt").write_text("".join(f"{t.split('.')[0]}/{t}.wav\n" for t in tracks))
    return folder


def test_fault_filtered_uses_the_lists_and_counts_what_is_left_out(tmp_path):
    table = make_table()
    tracks = sorted(set(table.tracks))
    folder = write_lists(tmp_path / "ff", {
        "train": tracks[0:20],
        "valid": tracks[20:25] + ["rock.00001"],  # not in the table
        "test": tracks[25:35] + ["rock.00002", "rock.00003"],
    })  # tracks[35:] are in no list
    (split,) = make_splits(table, "fault-filtered", split_dir=folder)
    assert split.name == "fault-filtered" and not split.leaky
    assert_partition(table, split, complete=False)
    assert [sorted(set(table.tracks[s])) for s in sides(split)] == [tracks[0:20], tracks[20:25], tracks[25:35]]
    assert [len(s) for s in sides(split)] == [200, 50, 100]
    assert "20/5/10 tracks" in split.description
    assert "5 tracks of the table are in no list" in split.description
    assert "3 listed tracks are missing from the table" in split.description


def test_fault_filtered_errors(tmp_path):
    table = make_table()
    tracks = sorted(set(table.tracks))
    empty = write_lists(tmp_path / "empty", {"train": tracks[:10], "valid": tracks[10:12], "test": ["rock.00000"]})
    with pytest.raises(DatasetError, match="none of the 1 test tracks"):
        make_splits(table, "fault-filtered", split_dir=empty)
    twice = write_lists(tmp_path / "twice", {"train": tracks[:10], "valid": tracks[9:12], "test": tracks[12:]})
    with pytest.raises(DatasetError, match=f"{tracks[9]} is listed in both train and valid"):
        make_splits(table, "fault-filtered", split_dir=twice)
    with pytest.raises(DatasetError, match="needs split_dir="):
        make_splits(table, "fault-filtered")
    with pytest.raises(DatasetError, match="train_filtered.txt: file not found"):
        make_splits(table, "fault-filtered", split_dir=tmp_path)
    no_valid = write_lists(tmp_path / "novalid", {"train": tracks[:30], "test": tracks[30:]})
    (split,) = make_splits(table, "fault-filtered", split_dir=no_valid)
    assert split.valid is None and "30/10 tracks" in split.description


def test_predefined_folds_read_sturm_naming(tmp_path):
    table = make_table()
    tracks = sorted(set(table.tracks))
    for k, (lo, hi) in enumerate([(0, 20), (20, 40)], start=1):
        test = tracks[lo:hi]
        train = [t for t in tracks if t not in test]
        (tmp_path / f"f{k}_train.txt").write_text("".join(f"./{t.replace('.', '_')}.wav\tx\n" for t in train))
        (tmp_path / f"f{k}_test.txt").write_text("".join(f"./{t.replace('.', '_')}.wav\n" for t in test))
    splits = make_splits(table, "folds", split_dir=tmp_path)
    assert [(s.name, s.fold) for s in splits] == [("folds-2", 0), ("folds-2", 1)]
    assert sorted(set(table.tracks[splits[0].test])) == tracks[:20]
    for s in splits:
        assert_partition(table, s)


# --- validation ---------------------------------------------------------------------
def test_bad_arguments_and_unlabelled_rows():
    table = make_table()
    with pytest.raises(DatasetError, match="unknown split kind 'bogus'"):
        make_splits(table, "bogus")
    with pytest.raises(DatasetError, match="test_size"):
        make_splits(table, "random", test_size=1.5)
    with pytest.raises(DatasetError, match="valid_size does not apply to kfold"):
        make_splits(table, "kfold", valid_size=0.1)
    unlabelled = FeatureTable(table.X, np.where(table.tracks == "pop.00000", "", table.labels),
                              table.tracks, table.rows, table.feature_names, "t")
    with pytest.raises(DatasetError, match="1 tracks have no label.*pop.00000"):
        make_splits(unlabelled, "random")
    one_track_genre = table.subset(np.flatnonzero((table.labels != "pop") | (table.tracks == "pop.00000")))
    with pytest.raises(DatasetError, match=r"pop \(1\)"):
        make_splits(one_track_genre, "random")


# --- the real GTZAN lists -----------------------------------------------------------
@pytest.fixture(scope="module")
def gtzan30(shared_data):
    from genrekit.datasets.tables import load_table

    return load_table(shared_data / "gtzan" / "features_30_sec.csv")


def test_real_fault_filtered_split(gtzan30, shared_data):
    (split,) = make_splits(gtzan30, "fault-filtered", split_dir=shared_data / "gtzan/splits/fault_filtered")
    assert [len(np.unique(gtzan30.tracks[s])) for s in sides(split)] == [443, 197, 290]
    assert "70 tracks of the table are in no list" in split.description
    assert "0 listed tracks are missing" in split.description


def test_real_artist_split_shares_no_artist(gtzan30, shared_data):
    index = shared_data / "gtzan" / "GTZANindex.txt"
    artists = read_artist_index(index)
    (split,) = make_splits(gtzan30, "artist", artists=index, valid_size=0.15, seed=0)
    assert_partition(gtzan30, split)
    assert_disjoint([[artists[t] for t in gtzan30.tracks[s]] for s in sides(split)])
    n_test = len(split.test)
    assert 150 <= n_test <= 350  # about a quarter; exact size depends on artist sizes
    labels, counts = np.unique(gtzan30.labels[split.test], return_counts=True)
    assert len(labels) == 10 and counts.min() >= 5  # every genre tested


def test_real_sturm_folds(gtzan30, shared_data):
    splits = make_splits(gtzan30, "folds", split_dir=shared_data / "gtzan/splits/sturm_3fold")
    assert len(splits) == 3
    tested = np.concatenate([gtzan30.tracks[s.test] for s in splits])
    assert len(tested) == len(set(tested)) == 948  # the three test folds partition 948 clips
