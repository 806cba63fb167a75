"""The feature cache: round trips, keys, persistence, crash-safety settings, remembered file hashes."""

import os
import sqlite3

import numpy as np
import pytest

from genrekit.features.sets import feature_set
from genrekit.audio.files import content_hash
from genrekit.features.cache import STORE_FILENAME, FeatureStore, default_cache_dir

FS = feature_set("logmel")
H = "ab" * 32  # a content hash


def test_put_get_round_trip_is_exact(tmp_path):
    array = np.random.default_rng(0).standard_normal((128, 44)).astype(np.float32)
    with FeatureStore(tmp_path) as store:
        assert store.get(H, FS) is None
        store.put(H, FS, array, n_samples=22050)
        entry = store.get(H, FS)
    assert entry.array.dtype == np.float32 and entry.array.shape == (128, 44)
    np.testing.assert_array_equal(entry.array, array)
    assert entry.n_samples == 22050
    assert entry.content_hash == H and entry.feature_key == FS.key
    assert entry.feature_set == FS.to_dict()
    assert entry.created > 0


def test_entries_are_keyed_by_content_and_feature_set(tmp_path):
    other_set = FS.with_params(n_mels=64)
    with FeatureStore(tmp_path) as store:
        store.put(H, FS, np.zeros((2, 3)), n_samples=10)
        assert (H, FS) in store
        assert (H, other_set) not in store
        assert ("cd" * 32, FS) not in store
        assert store.get(H, other_set) is None
        store.put(H, other_set, np.ones((2, 3)), n_samples=10)
        store.put(H, FS, np.full((2, 3), 7.0), n_samples=11)  # replaces, does not add
        assert store.count() == 2
        assert store.count(FS) == 1
        assert store.get(H, FS).n_samples == 11
        np.testing.assert_array_equal(store.get(H, FS).array, np.full((2, 3), 7.0))


def test_entries_persist_and_store_is_crash_safe_sqlite(tmp_path):
    with FeatureStore(tmp_path / "new" / "dir") as store:  # created as needed
        store.put(H, FS, np.arange(6.0).reshape(2, 3), n_samples=5)
    db = tmp_path / "new" / "dir" / STORE_FILENAME
    assert db.is_file()
    with FeatureStore(db.parent) as store:
        np.testing.assert_array_equal(store.get(H, FS).array, np.arange(6.0).reshape(2, 3))
        assert store._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert store._db.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    # Every put was committed: a separate connection sees it without any close/flush dance.
    con = sqlite3.connect(db)
    assert con.execute("SELECT COUNT(*) FROM features").fetchone()[0] == 1
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    con.close()


def test_puts_are_visible_to_other_connections_immediately(tmp_path):
    with FeatureStore(tmp_path) as writer, FeatureStore(tmp_path) as reader:
        writer.put(H, FS, np.zeros(3), n_samples=3)
        assert (H, FS) in reader


def test_object_arrays_are_refused_nothing_is_pickled(tmp_path):
    with FeatureStore(tmp_path) as store:
        with pytest.raises(ValueError):
            store.put(H, FS, np.array([{"a": 1}], dtype=object), n_samples=1)
        assert store.count() == 0


def test_unloadable_blob_counts_as_missing(tmp_path):
    with FeatureStore(tmp_path) as store:
        store.put(H, FS, np.zeros(3), n_samples=3)
        store._db.execute("UPDATE features SET array = ?", (b"not an npy",))
        assert store.get(H, FS) is None


def test_file_hash_is_remembered_by_path_size_and_mtime(tmp_path):
    audio = tmp_path / "a.wav"
    audio.write_bytes(b"first content")
    with FeatureStore(tmp_path / "cache") as store:
        first = store.file_hash(audio)
        assert first == "f1:" + content_hash(audio)  # not audio genrekit can parse: its whole content

        # Same size and same mtime: the remembered hash is used, the bytes are not read.
        st = audio.stat()
        audio.write_bytes(b"other content")
        os.utime(audio, ns=(st.st_atime_ns, st.st_mtime_ns))
        assert store.file_hash(audio) == first

        # A new mtime: hashed again.
        os.utime(audio, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
        assert store.file_hash(audio) == "f1:" + content_hash(audio) != first

    with FeatureStore(tmp_path / "cache") as store:  # remembered across runs
        assert store.file_hash(audio) == "f1:" + content_hash(audio)
        with pytest.raises(FileNotFoundError):
            store.file_hash(tmp_path / "missing.wav")


def test_content_hash_names_bytes_not_files(tmp_path):
    (tmp_path / "a.wav").write_bytes(b"x" * 3_000_000)  # more than one read chunk
    (tmp_path / "b.flac").write_bytes(b"x" * 3_000_000)
    (tmp_path / "c.wav").write_bytes(b"x" * 2_999_999 + b"y")
    assert content_hash(tmp_path / "a.wav") == content_hash(tmp_path / "b.flac")
    assert content_hash(tmp_path / "a.wav") != content_hash(tmp_path / "c.wav")
    assert len(content_hash(tmp_path / "a.wav")) == 64


def test_default_cache_dir(monkeypatch, tmp_path):
    from genrekit.config import settings

    monkeypatch.setenv("GENREKIT_CACHE", str(tmp_path / "here"))
    assert default_cache_dir() == tmp_path / "here"
    monkeypatch.delenv("GENREKIT_CACHE")
    assert default_cache_dir() == tmp_path / "here"  # read once per process...
    settings.cache_clear()  # ...until asked to read again
    assert default_cache_dir() == default_cache_dir().home() / ".cache" / "genrekit"
