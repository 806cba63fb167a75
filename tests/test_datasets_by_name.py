"""`--data NAME`: train, evaluate, features and cluster on a downloaded dataset, its splits and artists by name.

The datasets are downloaded by `genrekit datasets download` from a server on 127.0.0.1:
GTZAN-named clips synthesised here, and the real published fault-filtered lists and
artist index (read from the shared data and served, not copied into the repository).
"""

import csv
import io
import json
import zipfile

import numpy as np
import pytest
import soundfile as sf
from datasets_server import FileServer, sha256, tar_bytes, write_catalogue

from genrekit.cli import main
from genrekit.datasets.resolve import read_fma_genres

SR = 22050
# Fault-filtered sides of these clips: blues.* valid; hiphop/pop .00000 test, .00002/.00003 train.
CLIPS = ["blues.00000", "blues.00001", "hiphop.00000", "hiphop.00002", "hiphop.00003",
         "pop.00000", "pop.00002", "pop.00003"]
TONE = {"blues": 220.0, "hiphop": 80.0, "pop": 880.0}


def clip(name: str, fmt: str = "WAV", seconds: float = 4.0) -> bytes:
    """A few seconds of a genre-specific tone plus noise, as a file's bytes."""
    genre, number = name.split(".")[0], int(name.split(".")[-1])
    rng = np.random.default_rng(number + len(genre))
    t = np.arange(int(seconds * SR)) / SR
    y = 0.5 * np.sin(2 * np.pi * TONE.get(genre, 440.0) * (1 + 0.01 * number) * t) + 0.05 * rng.standard_normal(t.size)
    buf = io.BytesIO()
    sf.write(buf, y.astype(np.float32), SR, format=fmt, **({"subtype": "PCM_16"} if fmt == "WAV" else {}))
    return buf.getvalue()


@pytest.fixture(scope="module")
def toy_gtzan(shared_data, tmp_path_factory):
    """A GTZAN-like dataset downloaded into a fresh data root; yields (root, catalogue path)."""
    tmp = tmp_path_factory.mktemp("by_name")
    lists = shared_data / "gtzan/splits/fault_filtered"
    with FileServer() as server:
        archive = tar_bytes({f"genres/{n.split('.')[0]}/{n}.wav": clip(n) for n in CLIPS})
        server.files["/genres.tar.gz"] = archive
        resources = [{"name": "audio", "filename": "genres.tar.gz", "url": server.url + "/genres.tar.gz",
                      "checksum": sha256(archive), "kind": "archive", "target": "gtzan_genre"}]
        for side in ("train", "valid", "test"):
            data = (lists / f"{side}_filtered.txt").read_bytes()
            server.files[f"/{side}_filtered.txt"] = data
            resources.append({"name": f"split-{side}", "filename": f"{side}_filtered.txt",
                              "url": f"{server.url}/{side}_filtered.txt", "checksum": sha256(data),
                              "target": f"splits/fault_filtered/{side}_filtered.txt"})
        index = (shared_data / "gtzan/GTZANindex.txt").read_bytes()
        server.files["/GTZANindex.txt"] = index
        resources.append({"name": "artists", "filename": "GTZANindex.txt", "url": server.url + "/GTZANindex.txt",
                          "checksum": sha256(index), "target": "GTZANindex.txt"})
        catalogue = write_catalogue(tmp / "cat.json", [{
            "name": "toy-gtzan", "title": "GTZAN-like", "folder": "toy-gtzan", "resources": resources,
            "audio_root": "gtzan_genre/genres", "artists": "artists",
            "splits": {"fault-filtered": "splits/fault_filtered"}}])
        root = tmp / "root"
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("GENREKIT_CATALOGUE", str(catalogue))
            assert main(["datasets", "download", "toy-gtzan", "--root", str(root)]) == 0
    return root, catalogue


@pytest.fixture
def named(toy_gtzan, monkeypatch, tmp_path):
    root, catalogue = toy_gtzan
    monkeypatch.setenv("GENREKIT_CATALOGUE", str(catalogue))
    monkeypatch.setenv("GENREKIT_DATA", str(root))
    monkeypatch.setenv("GENREKIT_CACHE", str(tmp_path.parent / "cache"))  # shared by this module's tests
    return root


def test_train_by_name_uses_the_downloaded_fault_filtered_lists(named, tmp_path):
    out = tmp_path / "run"
    assert main(["train", "--data", "toy-gtzan", "--model", "logreg", "--split", "fault-filtered",
                 "--out", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())
    sizes = results["split"]["sizes"]
    assert (sizes["train"]["tracks"], sizes["valid"]["tracks"], sizes["test"]["tracks"]) == (4, 2, 2)
    assert results["config"]["split_dir"] == str(named / "toy-gtzan/splits/fault_filtered")
    assert "dataset toy-gtzan" in results["data"]["source"]

    # evaluate by name, on the test side of the same split
    figures = tmp_path / "eval.json"
    assert main(["evaluate", "--model", str(out / "logreg"), "--data", "toy-gtzan", "--side", "test",
                 "--split", "fault-filtered", "--out", str(figures)]) == 0
    assert json.loads(figures.read_text())["n_tracks"] == 2


def test_artists_without_a_file_is_the_dataset_s_index(named, tmp_path):
    out = tmp_path / "kfold"
    assert main(["train", "--data", "toy-gtzan", "--model", "logreg", "--split", "kfold", "--folds", "2",
                 "--artists", "--out", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["config"]["artists"] == str(named / "toy-gtzan/GTZANindex.txt")
    assert "artists" in results["split"]["description"]


def test_features_and_cluster_by_name(named, tmp_path, capsys):
    table = tmp_path / "t.csv"
    assert main(["features", "toy-gtzan", "--out", str(table)]) == 0
    rows = list(csv.DictReader(table.open()))
    assert sorted((r["filename"], r["label"]) for r in rows) == sorted((f"{n}.wav", n.split(".")[0]) for n in CLIPS)
    assert main(["cluster", "--features", "toy-gtzan", "--k", "3"]) == 0
    assert "k-means, k=3, on 8 rows" in capsys.readouterr().out


def test_a_dataset_not_downloaded_is_a_clear_error(named, tmp_path, capsys):
    code = main(["train", "--data", "toy-gtzan", "--data-root", str(tmp_path / "empty"), "--out", str(tmp_path / "r")])
    assert code == 1
    err = capsys.readouterr().err
    assert "is not downloaded" in err and "genrekit datasets download toy-gtzan" in err
    assert "Traceback" not in err


def test_a_damaged_dataset_is_refused_after_validate(toy_gtzan, tmp_path, monkeypatch, capsys):
    root, catalogue = toy_gtzan
    monkeypatch.setenv("GENREKIT_CATALOGUE", str(catalogue))
    copy = tmp_path / "copy"
    import shutil

    shutil.copytree(root, copy)
    (copy / "toy-gtzan/gtzan_genre/genres/pop/pop.00002.wav").write_bytes(b"damaged")
    assert main(["datasets", "validate", "toy-gtzan", "--root", str(copy)]) == 1
    capsys.readouterr()
    assert main(["cluster", "--features", "toy-gtzan", "--data-root", str(copy)]) == 1
    assert "found 1 corrupt files" in capsys.readouterr().err


def _tracks_csv(rows):
    """FMA's three-header-line tracks.csv with the columns genrekit reads (and one it does not)."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["", "artist", "set", "set", "track"])
    w.writerow(["", "name", "split", "subset", "genre_top"])
    w.writerow(["track_id", "", "", "", ""])
    for tid, subset, genre in rows:
        w.writerow([tid, "someone, with a comma", "training", subset, genre])
    return buf.getvalue().encode()


def _zip(members):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def test_fma_labels_come_from_tracks_csv_of_the_required_metadata(tmp_path, monkeypatch):
    tracks = [(2, "small", "Hip-Hop"), (5, "small", "Hip-Hop"), (10, "small", "Pop"), (140, "small", "Folk"),
              (141, "medium", "Folk")]
    with FileServer() as server:
        meta = _zip({"fma_metadata/tracks.csv": _tracks_csv(tracks), "fma_metadata/genres.csv": b"genre_id\n"})
        audio = _zip({f"fma_small/{t:06d}"[:13] + f"/{t:06d}.mp3": clip(f"x.{t:05d}", "MP3", 2.0)
                      for t, subset, _ in tracks if subset == "small"})
        server.files["/fma_metadata.zip"], server.files["/fma_small.zip"] = meta, audio
        common = {"folder": "fma", "labels": "fma"}
        catalogue = write_catalogue(tmp_path / "cat.json", [
            {"name": "toy-fma-metadata", "title": "m", **common, "resources": [
                {"name": "metadata", "filename": "fma_metadata.zip", "url": server.url + "/fma_metadata.zip",
                 "checksum": sha256(meta), "kind": "archive", "target": ".", "provides": ["fma_metadata"]}]},
            {"name": "toy-fma-small", "title": "s", **common, "requires": ["toy-fma-metadata"],
             "audio_root": "fma_small", "fma_subset": "small", "resources": [
                {"name": "audio", "filename": "fma_small.zip", "url": server.url + "/fma_small.zip",
                 "checksum": sha256(audio), "kind": "archive", "target": ".", "provides": ["fma_small"]}]},
        ])
        monkeypatch.setenv("GENREKIT_CATALOGUE", str(catalogue))
        root = tmp_path / "root"
        # Downloading the audio brings the metadata it needs for its labels.
        assert main(["datasets", "download", "toy-fma-small", "--root", str(root)]) == 0
    assert (root / "fma/fma_metadata/tracks.csv").is_file()
    table = tmp_path / "fma.csv"
    assert main(["features", "toy-fma-small", "--data-root", str(root), "--out", str(table), "--no-cache"]) == 0
    labels = {r["filename"]: r["label"] for r in csv.DictReader(table.open())}
    assert labels == {"000002.mp3": "Hip-Hop", "000005.mp3": "Hip-Hop", "000010.mp3": "Pop", "000140.mp3": "Folk"}


def test_fma_taxonomy_reads_genres_csv(shared_data):
    genres = read_fma_genres(shared_data / "fma/genres.csv")
    assert len(genres) == 163
    top = sorted(g["title"] for g in genres if g["parent"] == 0)
    assert len(top) == 16 and "Hip-Hop" in top and "Rock" in top
    assert all(g["top_level"] in {t["genre_id"] for t in genres if t["parent"] == 0} for g in genres)


@pytest.mark.slow
def test_cnn_trains_by_name_on_the_fault_filtered_split(named, tmp_path):
    pytest.importorskip("torch")
    run = tmp_path / "cnn"
    assert main(["train", "--model", "cnn", "--arch", "seed3", "--data", "toy-gtzan", "--split", "fault-filtered",
                 "--epochs", "1", "--crops-per-track", "2", "--threads", "1", "--out", str(run)]) == 0
    assert json.loads((run / "bundle.json").read_text())["kind"] == "cnn"
    manifest = named / "toy-gtzan/.genrekit/toy-gtzan/manifest.csv"
    assert len(manifest.read_text().splitlines()) == 1 + len(CLIPS)


def test_label_map_merges_folders_into_one_label(tmp_path, monkeypatch):
    """Ballroom's three Rumba folders are one dance style."""
    from genrekit.datasets.resolve import resolve

    members = {f"BallroomData/{style}/{style}-{i}.wav": clip(f"x.{i:05d}", seconds=1.0)
               for style in ("Jive", "Rumba-American", "Rumba-Misc") for i in range(2)}
    with FileServer() as server:
        archive = tar_bytes(members)
        server.files["/data1.tar.gz"] = archive
        catalogue = write_catalogue(tmp_path / "cat.json", [{
            "name": "toy-ballroom", "title": "b", "folder": "ballroom", "audio_root": "B_1.0/audio",
            "label_map": {"Rumba-American": "Rumba", "Rumba-Misc": "Rumba"},
            "resources": [{"name": "audio", "filename": "data1.tar.gz", "url": server.url + "/data1.tar.gz",
                           "checksum": sha256(archive), "kind": "archive", "target": "B_1.0/audio",
                           "strip": "BallroomData"}]}])
        monkeypatch.setenv("GENREKIT_CATALOGUE", str(catalogue))
        assert main(["datasets", "download", "toy-ballroom", "--root", str(tmp_path / "root")]) == 0
    resolved = resolve("toy-ballroom", tmp_path / "root")
    labels = sorted((p.relative_to(resolved.audio_root).as_posix(), label) for p, label in resolved.files)
    assert labels == [("Jive/Jive-0.wav", "Jive"), ("Jive/Jive-1.wav", "Jive"),
                      ("Rumba-American/Rumba-American-0.wav", "Rumba"), ("Rumba-American/Rumba-American-1.wav", "Rumba"),
                      ("Rumba-Misc/Rumba-Misc-0.wav", "Rumba"), ("Rumba-Misc/Rumba-Misc-1.wav", "Rumba")]


def test_fma_validate_uses_the_checksums_list_shipped_in_the_archive(tmp_path, monkeypatch):
    """A copy made by hand (no genrekit record): fma_small/checksums alone says what is missing or damaged."""
    import hashlib

    from genrekit.datasets.install import validate
    from genrekit.datasets.registry import get_dataset

    mp3 = {f"000/{t:06d}.mp3": clip(f"x.{t:05d}", "MP3", 1.0) for t in (2, 5, 10)}
    catalogue = write_catalogue(tmp_path / "cat.json", [{
        "name": "toy-fma-small", "title": "s", "folder": "fma", "labels": "fma", "audio_root": "fma_small",
        "fma_subset": "small", "checksums_file": "fma_small/checksums", "resources": [
            {"name": "audio", "filename": "fma_small.zip", "url": "http://127.0.0.1:9/fma_small.zip",
             "checksum": "sha1:" + "0" * 40, "kind": "archive", "target": ".", "provides": ["fma_small"]}]}])
    monkeypatch.setenv("GENREKIT_CATALOGUE", str(catalogue))
    small = tmp_path / "root/fma/fma_small"
    (small / "000").mkdir(parents=True)
    (small / "checksums").write_text("".join(f"{hashlib.sha1(d).hexdigest()}  {n}\n" for n, d in mp3.items()))
    (small / "000/000002.mp3").write_bytes(mp3["000/000002.mp3"])
    (small / "000/000005.mp3").write_bytes(b"damaged")
    result = validate(get_dataset("toy-fma-small"), tmp_path / "root")
    assert {c.path: c.status for c in result.checks} == {
        "fma_small/000/000002.mp3": "present", "fma_small/000/000005.mp3": "corrupt",
        "fma_small/000/000010.mp3": "missing"}
