"""Feature tables and GTZAN's names: Kaggle CSV/parquet, Marsyas ARFF, audio folders, indexes, lists.

Real-file tests read ``../shared/data`` (skipped when absent); the rest build small
files in a temporary folder.
"""

import csv
import time
import warnings

import numpy as np
import pytest
import soundfile as sf

from genrekit.datasets.gtzan import GENRES, read_artist_index, read_split_list, track_id
from genrekit.datasets.tables import load_table
from genrekit.errors import DatasetError
from genrekit.datasets.feature_table import FeatureTable
from genrekit.datasets.splits import make_splits
from genrekit.features.extract import extract
from genrekit.features.sets import feature_set
from genrekit.features.export import write_table
from genrekit.features.gtzan57 import COLUMNS
from genrekit.audio.files import identity
from genrekit.features.cache import FeatureStore

SR = 22050


# --- names, indexes, lists ------------------------------------------------------------
@pytest.mark.parametrize("name, expected", [
    ("blues.00000.wav", "blues.00000"),
    ("blues/blues.00029.wav", "blues.00029"),
    ("genres/blues/blues.00043.au", "blues.00043"),
    ("./blues_00000.wav", "blues.00000"),
    ("./HipHop_00012.wav", "hiphop.00012"),
    ("blues.00000", "blues.00000"),  # a GTZAN number is not an extension
    ("music/take five.mp3", "take five"),
])
def test_track_id_normalises_gtzan_spellings(name, expected):
    assert track_id(name) == expected


def test_genres_are_gtzan_order():
    assert GENRES == ("blues", "classical", "country", "disco", "hiphop", "jazz", "metal", "pop", "reggae", "rock")


def test_artist_index_formats(tmp_path):
    index = tmp_path / "GTZANindex.txt"
    index.write_text(
        "## Bob L. Sturm\n##\n"
        "blues.00000.wav ::: John Lee Hooker ::: One Bourbon\n"
        "blues.00001.wav ::: John Lee Hooker ::: \n"
        "classical.00059.wav ::: :::\n"
        "classical.00061.wav ::: :::\n"
        "rock.00001.wav ::: Rage Against the Machine ::: Bombtrack\n"
        "rock.00002.wav ::: Rage Against The Machine ::: Killing\n"
        "rock.00003.wav ::: Rage  Against The Machine ::: Know\n"
    )
    artists = read_artist_index(index)
    assert artists["blues.00000"] == artists["blues.00001"] == "John Lee Hooker"
    # Empty artists: one group per clip, never one shared "unknown" group.
    assert artists["classical.00059"] == "?classical.00059"
    assert artists["classical.00061"] == "?classical.00061"
    # Case/spacing variants are one artist, spelled as most clips spell it.
    assert {artists[f"rock.0000{i}"] for i in (1, 2, 3)} == {"Rage Against The Machine"}

    table = tmp_path / "artists.csv"
    table.write_text("filename,artist,title\nblues/blues.00000.wav,John Lee Hooker,x\nblues.00002.wav,,y\n")
    assert read_artist_index(table) == {"blues.00000": "John Lee Hooker", "blues.00002": "?blues.00002"}


def test_artist_index_errors(tmp_path):
    with pytest.raises(DatasetError, match="missing.txt: file not found"):
        read_artist_index(tmp_path / "missing.txt")
    bad = tmp_path / "bad.csv"
    bad.write_text("name,who\na,b\n")
    with pytest.raises(DatasetError, match="bad.csv: expected GTZANindex lines"):
        read_artist_index(bad)
    twice = tmp_path / "twice.txt"
    twice.write_text("blues.00000.wav ::: A ::: x\nblues.00000.wav ::: B ::: y\n")
    with pytest.raises(DatasetError, match="blues.00000 is listed twice"):
        read_artist_index(twice)


def test_split_lists_in_both_namings(tmp_path):
    ff = tmp_path / "train_filtered.txt"
    ff.write_text("blues/blues.00029.wav\nblues/blues.00030.wav\n\nblues/blues.00029.wav\n")
    assert read_split_list(ff) == ["blues.00029", "blues.00030"]
    sturm = tmp_path / "f1_train.txt"
    sturm.write_text("./blues_00000.wav\tblues\n./rock_00099.wav\trock\n")
    assert read_split_list(sturm) == ["blues.00000", "rock.00099"]
    with pytest.raises(DatasetError, match="nope.txt: file not found"):
        read_split_list(tmp_path / "nope.txt")


def test_real_artist_index_and_lists(shared_data):
    artists = read_artist_index(shared_data / "gtzan" / "GTZANindex.txt")
    assert len(artists) == 1000
    assert artists["blues.00000"] == "John Lee Hooker"
    unknown = [t for t, a in artists.items() if a == f"?{t}"]
    assert len(unknown) == 81
    lists = [read_split_list(shared_data / f"gtzan/splits/fault_filtered/{s}_filtered.txt")
             for s in ("train", "valid", "test")]
    assert [len(x) for x in lists] == [443, 197, 290]
    assert set().union(*lists) <= artists.keys()
    assert read_split_list(shared_data / "gtzan/splits/sturm_3fold/f1_test.txt")[0] == "blues.00012"


# --- Kaggle-layout tables ----------------------------------------------------------------
def write_kaggle(path, rows, X, labels, lengths=None, header=None):
    header = header or ["filename", "length", *COLUMNS[: X.shape[1]], "label"]
    lengths = lengths if lengths is not None else [66149] * len(rows)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        for r, n, x, y in zip(rows, lengths, X, labels):
            w.writerow([r, n, *(repr(float(v)) for v in x), y])
    return path


def three_sec_table(tmp_path, n_tracks=8, windows=10):
    """A 3-s Kaggle-layout table of 57 columns: rows ``blues.00000.0.wav`` ..."""
    rng = np.random.default_rng(0)
    rows, labels = [], []
    for i in range(n_tracks):
        genre = GENRES[i % 2]
        for k in range(windows):
            rows.append(f"{genre}.{i:05d}.{k}.wav")
            labels.append(genre)
    X = rng.standard_normal((len(rows), 57))
    return write_kaggle(tmp_path / "features_3_sec.csv", rows, X, labels), X


def test_real_kaggle_30s_table(shared_data):
    table = load_table(shared_data / "gtzan" / "features_30_sec.csv")
    assert table.X.shape == (1000, 57) and table.X.dtype == np.float64
    assert table.feature_names == list(COLUMNS)  # 'length' is not a feature
    labels, counts = np.unique(table.labels, return_counts=True)
    assert list(labels) == sorted(GENRES) and set(counts) == {100}
    assert table.rows[0] == "blues.00000.wav" and table.tracks[0] == "blues.00000"
    assert table.n_tracks == 1000
    assert table.feature_set == feature_set("gtzan57", window=30).to_dict()
    assert "features_30_sec.csv" in table.source and "one row per track" in table.source


def test_three_sec_table_keeps_windows_of_a_track_together(tmp_path):
    path, X = three_sec_table(tmp_path)
    table = load_table(path)
    np.testing.assert_array_equal(table.X, X)  # repr floats round-trip exactly
    assert table.rows[3] == "blues.00000.3.wav" and table.tracks[3] == "blues.00000"
    assert table.n_tracks == 8 and len(table) == 80
    assert table.feature_set == feature_set("gtzan57", window=3.0).to_dict()
    tracks, labels = table.track_labels()
    assert list(tracks[:2]) == ["blues.00000", "blues.00002"] and list(labels[:2]) == ["blues", "blues"]
    (split,) = make_splits(table, "random", test_size=0.25, seed=0)
    assert not set(table.tracks[split.train]) & set(table.tracks[split.test])
    assert len(split.test) == 20  # 2 whole tracks of 10 windows


def test_parquet_reads_like_csv(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path, X = three_sec_table(tmp_path)
    from_csv = load_table(path)
    cols = {"filename": from_csv.rows, "length": np.full(len(X), 66149)}
    cols.update({name: X[:, j] for j, name in enumerate(COLUMNS)})
    cols["label"] = from_csv.labels
    pq.write_table(pa.table(cols), tmp_path / "t.parquet")
    from_parquet = load_table(tmp_path / "t.parquet")
    np.testing.assert_array_equal(from_parquet.X, from_csv.X)
    assert list(from_parquet.tracks) == list(from_csv.tracks)
    assert from_parquet.feature_set == from_csv.feature_set


def test_table_without_gtzan_columns_has_no_feature_set(tmp_path):
    path = write_kaggle(tmp_path / "t.csv", ["a.wav", "b.wav"], np.ones((2, 2)), ["x", ""],
                        header=["filename", "length", "f1", "f2", "label"])
    table = load_table(path)
    assert table.feature_set is None and table.feature_names == ["f1", "f2"]
    assert list(table.labels) == ["x", ""] and list(table.tracks) == ["a", "b"]
    # One row per file, but a row of 60 s: no 30-s window gives that, so the recipe is unknown.
    rng = np.random.default_rng(1)
    long = write_kaggle(tmp_path / "long.csv", ["a.wav", "b.wav"], rng.random((2, 57)), ["x", "y"],
                        lengths=[661794, 60 * SR])
    assert load_table(long).feature_set is None


@pytest.mark.parametrize("change, message", [
    (lambda rows: [r[:-1] for r in rows], "missing column 'label'"),
    (lambda rows: [[c if (i, j) != (3, 4) else "" for j, c in enumerate(r)] for i, r in enumerate(rows)],
     "column 'rms_mean' has 1 missing, NaN or infinite value.*b.00001.wav"),
    (lambda rows: [[c if (i, j) != (2, 5) else "nan" for j, c in enumerate(r)] for i, r in enumerate(rows)],
     "column 'rms_var' has 1 missing, NaN or infinite value.*a.00001.wav"),
    (lambda rows: [[c if (i, j) != (1, 2) else "loud" for j, c in enumerate(r)] for i, r in enumerate(rows)],
     "column 'chroma_stft_mean' is not numeric: 'loud' in row 'a.00000.wav'"),
    (lambda rows: [[c if (i, j) != (1, 3) else "inf" for j, c in enumerate(r)] for i, r in enumerate(rows)],
     "column 'chroma_stft_var' has 1 .*infinite"),
    (lambda rows: [rows[0], rows[1], rows[1]], "row 'a.00000.wav' appears 2 times"),
    (lambda rows: rows[:1], "the table has no rows"),
    (lambda rows: [rows[0], rows[1][:-2]], "data row 1 has 6 fields, the header has 8"),
])
def test_bad_csv_names_file_and_column(tmp_path, change, message):
    rows = [["filename", "length", *COLUMNS[:5], "label"]]
    for i, name in enumerate(["a.00000.wav", "a.00001.wav", "b.00001.wav"]):
        rows.append([name, "661794", *(str(0.1 * (i + j)) for j in range(5)), name[0]])
    path = tmp_path / "bad.csv"
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows(change(rows))
    with pytest.raises(DatasetError, match="bad.csv: " + message):
        load_table(path)


def test_unknown_paths(tmp_path):
    with pytest.raises(DatasetError, match="nothing.csv: no such file"):
        load_table(tmp_path / "nothing.csv")
    (tmp_path / "t.xlsx").write_bytes(b"x")
    with pytest.raises(DatasetError, match=r"t.xlsx: unknown table kind \.xlsx"):
        load_table(tmp_path / "t.xlsx")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no audio files found"):
        load_table(tmp_path / "empty", cache=False)


def test_feature_table_checks_and_subsets():
    X = np.arange(12.0).reshape(4, 3)
    t = FeatureTable(X, ["a", "a", "b", "b"], ["t1", "t1", "t2", "t2"], ["r0", "r1", "r2", "r3"],
                     ["x", "y", "z"], "here")
    sub = t.subset([2, 3])
    assert sub.n_tracks == 1 and list(sub.rows) == ["r2", "r3"] and sub.source == "here"
    np.testing.assert_array_equal(sub.X, X[2:])
    assert [list(v) for v in t.track_labels()] == [["t1", "t2"], ["a", "b"]]
    with pytest.raises(DatasetError, match="here: track t1 has rows labelled 'a', 'b'"):
        FeatureTable(X, ["a", "b", "b", "b"], ["t1", "t1", "t2", "t2"], list("wxyz"), ["x", "y", "z"], "here")
    with pytest.raises(DatasetError, match="2 feature names for 3 columns"):
        FeatureTable(X, list("aabb"), list("ttuu"), list("wxyz"), ["x", "y"], "here")


# --- Marsyas ARFF --------------------------------------------------------------------------
@pytest.mark.parametrize("name, n_features", [("genres_default.arff", 124), ("genres_mfcc.arff", 52)])
def test_real_marsyas_tables(shared_data, name, n_features):
    table = load_table(shared_data / "gtzan" / "marsyas" / name)
    assert table.X.shape == (1000, n_features) and table.feature_set is None
    labels, counts = np.unique(table.labels, return_counts=True)
    assert list(labels) == sorted(GENRES) and set(counts) == {100}
    # Labels agree with each row's genre folder; names are the GTZAN .wav clips'.
    assert all(t.split(".")[0] == g for t, g in zip(table.tracks, table.labels))
    assert all(r == f"{t}.wav" for r, t in zip(table.rows, table.tracks))
    artists = read_artist_index(shared_data / "gtzan" / "GTZANindex.txt")
    assert set(table.tracks) == artists.keys()
    assert len(set(table.feature_names)) == n_features
    assert table.feature_names[0].startswith("Mean_Acc5_Mean_Mem20_")
    assert "Marsyas ARFF" in table.source


ARFF = """% Created by Marsyas
@relation tiny.arff
@attribute 'f one' real
@attribute f2 numeric
@attribute output {CLASSES}

@data
% filename genres/blues/blues.00001.au
% srate 43.0664
0.5,1.5,0
% filename genres/classical/classical.00007.au
-1e-3,2,1
"""


def test_small_arff_and_its_errors(tmp_path):
    path = tmp_path / "tiny.arff"
    path.write_text(ARFF.replace("CLASSES", "0,1,2,3,4,5,6,7,8,9"))
    table = load_table(path)
    assert table.feature_names == ["f one", "f2"]
    np.testing.assert_array_equal(table.X, [[0.5, 1.5], [-1e-3, 2.0]])
    assert list(table.labels) == ["blues", "classical"]
    assert list(table.rows) == ["blues.00001.wav", "classical.00007.wav"]

    swapped = tmp_path / "swapped.arff"
    swapped.write_text(ARFF.replace("CLASSES", "0,1,2,3,4,5,6,7,8,9").replace(",0\n", ",3\n"))
    with pytest.raises(DatasetError, match="swapped.arff: genres/blues/blues.00001.au is labelled disco"):
        load_table(swapped)
    missing = tmp_path / "missing.arff"
    missing.write_text(ARFF.replace("CLASSES", "0,1,2,3,4,5,6,7,8,9").replace("0.5,1.5", "?,1.5"))
    with pytest.raises(DatasetError, match="missing.arff: line 10: attribute 'f one' is not numeric: '\\?'"):
        load_table(missing)
    named = tmp_path / "named.arff"
    named.write_text(ARFF.replace("CLASSES", "jazz,rock").replace(",0\n", ",jazz\n").replace(",1\n", ",rock\n"))
    assert list(load_table(named).labels) == ["jazz", "rock"]  # class names used as written


# --- audio folders through the cache -----------------------------------------------------
def write_clip(path, seconds, seed):
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    y = 0.3 * np.sin(2 * np.pi * (110 + 50 * seed) * t) + 0.05 * rng.standard_normal(t.size)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, y, SR, subtype="PCM_16")


@pytest.fixture
def audio_folder(tmp_path):
    root = tmp_path / "audio"
    for g, genre in enumerate(("blues", "jazz", "rock")):
        for i in range(2):
            write_clip(root / genre / f"{genre}.{i:05d}.wav", 1.0 + 0.5 * i, seed=3 * g + i)
    return root


def test_audio_folder_loads_through_the_cache(tmp_path, audio_folder):
    cache = tmp_path / "cache"
    fs = feature_set("gtzan57")  # the default: 30-s windows
    table = load_table(audio_folder, cache=cache)
    assert table.X.shape == (6, 57) and table.feature_names == list(COLUMNS)
    assert list(table.labels) == ["blues", "blues", "jazz", "jazz", "rock", "rock"]
    assert list(table.tracks[:2]) == ["blues.00000", "blues.00001"]
    assert list(table.rows[:2]) == ["blues.00000.wav", "blues.00001.wav"]
    assert table.feature_set == fs.to_dict() and fs.key in table.source

    files = sorted(audio_folder.glob("*/*.wav"))
    with FeatureStore(cache) as store:
        assert store.count(fs) == 6
        created = [store.get(identity(f), fs).created for f in files]
    time.sleep(0.01)
    again = load_table(audio_folder, cache=cache)  # second load: from the cache, nothing recomputed
    np.testing.assert_array_equal(again.X, table.X)
    with FeatureStore(cache) as store:
        assert store.count(fs) == 6
        assert [store.get(identity(f), fs).created for f in files] == created

    # The same rows as genrekit's own `features --out table.csv` output, read back.
    results, _ = extract(files, fs, store=None, progress=False)
    write_table(results, fs, tmp_path / "table.csv")
    from_csv = load_table(tmp_path / "table.csv")
    np.testing.assert_array_equal(from_csv.X, table.X)
    assert list(from_csv.rows) == list(table.rows) and list(from_csv.tracks) == list(table.tracks)
    assert from_csv.feature_set == table.feature_set


def test_audio_folder_in_windows_and_with_a_bad_file(tmp_path, audio_folder):
    (audio_folder / "rock" / "rock.00009.wav").write_bytes(b"not audio at all")
    fs = feature_set("gtzan57", window=0.5)
    with pytest.warns(UserWarning, match=r"1 of 7 files left out: .*rock.00009.wav"):
        table = load_table(audio_folder, audio_feature_set=fs, cache=False)
    assert table.n_tracks == 6
    assert list(table.rows[:2]) == ["blues.00000.0.wav", "blues.00000.1.wav"]
    assert set(table.tracks[table.rows == "blues.00001.2.wav"]) == {"blues.00001"}
    assert table.feature_set["window"] == 0.5
    split = make_splits(table, "kfold", folds=2)[0]
    assert not set(table.tracks[split.train]) & set(table.tracks[split.test])
    # Two files named alike in different folders stay two tracks, named with their folder.
    write_clip(audio_folder / "blues" / "take.wav", 1.0, seed=20)
    write_clip(audio_folder / "jazz" / "take.wav", 1.0, seed=21)
    (audio_folder / "rock" / "rock.00009.wav").unlink()
    table = load_table(audio_folder, cache=False)
    assert {"blues/take", "jazz/take"} <= set(table.tracks) and "jazz/take.wav" in table.rows
    assert table.labels[table.tracks == "jazz/take"][0] == "jazz"
    with pytest.raises(DatasetError, match="gives arrays, not table rows"):
        load_table(audio_folder, audio_feature_set=feature_set("logmel"), cache=False)


def test_default_cache_folder_follows_environment(tmp_path, audio_folder, monkeypatch):
    monkeypatch.setenv("GENREKIT_CACHE", str(tmp_path / "envcache"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_table(audio_folder)
    assert (tmp_path / "envcache" / "features.sqlite").is_file()
