"""Training from a library's own genre tags (issue 19): real FLAC/MP3/Ogg files made here,
genre, artist and album values written with mutagen; the real backbone; the run classifies."""

from __future__ import annotations

import json

import pytest

from genrekit.training.own_genres import check_counts, labels_from_tags, min_files
from genrekit.errors import DatasetError

from own_genres_runs import genrekit, plan, train
from tagged_songs import tag, tagged_library
from synthetic_songs import write_song


def _classify(tmp_path, song):
    proc = genrekit("classify", song, "--model", tmp_path / "run", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    (record,) = json.loads(proc.stdout)
    return record


@pytest.mark.slow
def test_train_from_tags_and_classify_with_the_run(tmp_path):
    lib = tmp_path / "lib"
    tagged_library(lib, plan())
    write_song(lib / "untagged.flac", "metal", seconds=6.0, seed=99)  # no genre: skipped and counted
    proc = train(tmp_path, "tags")
    assert proc.returncode == 0, proc.stderr
    assert "24 files labelled from tags; 1 without a genre skipped; 3 genres" in proc.stderr
    results = json.loads((tmp_path / "run/results.json").read_text())
    labels = results["labels"]
    assert labels["counts"] == {"classical": 8, "hiphop": 8, "metal": 8}  # "Hip Hop" merged by the name map
    assert labels["grouped_by"] == "album" and labels["skipped_without_genre"] == 1 and not labels["multilabel"]
    meta = json.loads((tmp_path / "run/own-genres/bundle.json").read_text())
    assert meta["card"]["labels"]["source"] == "tags" and meta["calibration"] and meta["unknown"]
    assert results["models"]["own-genres"]["test"]["track"]["accuracy"] >= 0.8
    # the run folder is a --model; a new song of a known kind gets its genre, no "genres" list
    record = _classify(tmp_path, write_song(tmp_path / "new.ogg", "classical", seconds=6.0, seed=123))
    assert record["label"] == "classical" and "genres" not in record and record["unknown"] in (True, False)
    # a second run on the same library reads the feature cache: nothing is analysed again
    again = train(tmp_path, "tags")
    assert again.returncode == 0, again.stderr


@pytest.mark.slow
def test_several_genres_train_one_vs_rest_and_report_every_genre_above_its_threshold(tmp_path):
    tagged_library(tmp_path / "lib", plan(several=True))
    proc = train(tmp_path, "tags")
    assert proc.returncode == 0, proc.stderr
    assert "several on some files (one-vs-rest)" in proc.stderr
    assert "onnxruntime" not in proc.stderr  # the conversion check's session keeps its C++ log lines to itself
    results = json.loads((tmp_path / "run/results.json").read_text())
    test = results["models"]["own-genres"]["test"]
    assert set(test) >= {"subset_accuracy", "mean_average_precision", "per_genre"}
    assert set(test["per_genre"]) == {"Noise", "classical", "hiphop", "metal"}
    assert all(0 <= g["f1"] <= 1 for g in test["per_genre"].values())
    meta = json.loads((tmp_path / "run/own-genres/bundle.json").read_text())
    assert len(meta["multilabel"]["thresholds"]) == 4
    record = _classify(tmp_path, write_song(tmp_path / "new.flac", "metal", seconds=6.0, seed=321))
    assert isinstance(record["genres"], list) and "metal" in record["genres"]


def test_labels_with_too_few_files_are_refused_in_one_line(tmp_path):
    songs = plan(per_genre=min_files())
    songs += [("classical", ["Ska"], "A", "B"), ("metal", ["Ska", "Metal"], "A", "C"), ("hiphop", ["Polka"], "D", "E")]
    tagged_library(tmp_path / "lib", songs, seconds=1.0)
    labelled = labels_from_tags(tmp_path / "lib")
    with pytest.raises(DatasetError) as err:
        check_counts(labelled, min_files())
    message = str(err.value)
    assert "\n" not in message
    assert f"each needs {min_files()}" in message and "Polka (1)" in message and "Ska (2)" in message
    assert "metal" not in message.split(":", 1)[1]


def test_names_file_merges_tag_values_before_training(tmp_path):
    lib = tmp_path / "lib"
    tagged_library(lib, [("hiphop", ["Rap"], None, None), ("hiphop", ["Hip-Hop"], None, None),
                         ("hiphop", ["hip hop", "Rap"], None, None), ("metal", ["Heavy Metal"], None, None)], seconds=1.0)
    names = tmp_path / "names.toml"
    names.write_text('[aliases]\n"Rap" = "hiphop"\n"Heavy Metal" = "metal"\n')
    from genrekit.tagging.names import load_names

    labelled = labels_from_tags(lib, load_names(names))
    assert labelled.genres == [["hiphop"], ["hiphop"], ["hiphop"], ["metal"]]
    assert labelled.grouped_by == "file" and not labelled.multilabel
    plain = labels_from_tags(lib)  # without the map, "Rap" stays its own genre
    assert plain.counts["Rap"] == 2 and plain.counts["hiphop"] == 2


def test_cli_refusal_is_one_line_without_traceback(tmp_path):
    tagged_library(tmp_path / "lib", [("classical", ["Classical"], None, None), ("metal", ["Metal"], None, None)],
                   seconds=1.0)
    tag(write_song(tmp_path / "lib/x.mp3", "hiphop", seconds=1.0), ["Jazz"])
    (tmp_path / "lib/broken.mp3").write_bytes(b"\xff\xfb" + bytes(range(256)) * 8)  # not MPEG frames
    proc = train(tmp_path, "tags")
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    # a file whose tags cannot be read is named with its problem, not only counted
    assert "train: skipped " in proc.stderr and "broken.mp3: tags not readable: " in proc.stderr
    assert "1 whose tags could not be read" in proc.stderr
    assert "labels with too few files for the split" in proc.stderr and "jazz (1)" in proc.stderr  # the shipped name map knows Jazz


@pytest.mark.parametrize("model", ["logreg,knn", "cnn", "all"])
def test_train_with_tags_refuses_a_head_it_cannot_build_before_any_work(tmp_path, model):
    proc = genrekit("train", "--data", tmp_path, "--labels", "tags", "--model", model, "--out", tmp_path / "run")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"--model {model} with --labels tags: one of logreg, knn," in proc.stderr
    assert not (tmp_path / "run").exists()


# --- issue 30: labels are values shown on one line, written into tags and playlists -------------------------


@pytest.mark.parametrize("value, problem", [
    ("!!!", "has no letter or digit"), ("???", "has no letter or digit"), ("---", "has no letter or digit"),
    ("\u200b", "holds a control character"), ("Rock\n#EXTINF:1,pwned", "holds a control character"),
    ("Jazz\x1b[2J", "holds a control character"), ("x" * 10_000, "is 10000 characters long (at most 100)"),
])
def test_training_labels_that_are_not_values_are_refused_naming_them(tmp_path, value, problem):
    from genrekit.training.own_genres import labels_from_csv

    csv = tmp_path / "labels.csv"
    rows = [("a.wav", "Rock"), ("b.wav", "Jazz"), ("c.wav", value)]
    csv.write_text("path,label\n" + "".join(f'{p},"{label}"\n' for p, label in rows), encoding="utf-8")
    with pytest.raises(DatasetError) as err:
        labels_from_csv(csv, tmp_path)
    message = str(err.value)
    assert f"labels.csv, row 3: the genre {repr(value[:60])}" in message and problem in message, message
    assert "\n" not in message and "\x1b" not in message and len(message) < 400


def test_a_genre_tag_with_a_newline_is_refused_naming_the_file(tmp_path):
    lib = tmp_path / "lib"
    tagged_library(lib, [("metal", ["Metal"], None, None), ("classical", ["Classical"], None, None)], seconds=1.0)
    evil = tag(write_song(lib / "evil.flac", "metal", seconds=1.0), ["Rock\n#EXTINF:1,pwned\nhttp://127.0.0.1:9/evil.mp3"])
    with pytest.raises(DatasetError, match="holds a control character") as err:
        labels_from_tags(lib)
    assert str(err.value).startswith(f"{evil}: the genre 'Rock\\n#EXTINF")
    proc = train(tmp_path, "tags")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert "evil.flac: the genre" in line and "holds a control character" in line


def test_a_fifo_as_the_labels_file_is_refused_not_read(tmp_path):
    import os

    os.mkfifo(tmp_path / "labels.csv")
    proc = genrekit("train", "--data", tmp_path, "--labels", tmp_path / "labels.csv", "--out", tmp_path / "run",
                    timeout=120)  # the old reader waited for a writer forever
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "labels.csv: cannot read the labels file: is not a regular file" in proc.stderr, proc.stderr


# --- issue 29 item 5: "" drops a label, cards count songs, refit on every labelled song ------------------


def test_an_empty_name_drops_a_label_and_its_only_files_are_counted_as_left_out(tmp_path):
    from genrekit.tagging.names import load_names

    lib = tmp_path / "lib"
    tagged_library(lib, [("metal", ["Metal"], None, None), ("metal", ["Polka", "Metal"], None, None),
                         ("classical", ["Polka"], None, None), ("hiphop", ["polka"], None, None),
                         ("classical", ["Classical"], None, None)], seconds=1.0)
    names = tmp_path / "names.toml"
    names.write_text('Polka = ""\n')
    labelled = labels_from_tags(lib, load_names(names))
    assert labelled.genres == [["metal"], ["metal"], ["classical"]]
    assert [p.name for p in labelled.dropped] == ["song02.ogg", "song03.flac"] and not labelled.skipped
    assert labelled.summary()["left_out_dropped_genres"] == 2
    # without it, the refusal says how to leave a label out
    with pytest.raises(DatasetError, match='leave them out \\(--names FILE with classical = ""\\)'):
        check_counts(labels_from_tags(lib), 3)  # the hint names the rarest (classical 1, metal 2)


def _long_songs_library(lib):
    """``plan()``'s 24 songs, the first of each genre 65 s long (several windows), and 3 songs tagged Polka only."""
    songs = tagged_library(lib, plan())
    for i in (0, 8, 16):  # one song of each kind made long: more windows than songs
        kind = plan()[i][0]
        genres, artist, album = plan()[i][1:]
        tag(write_song(songs[i], kind, seconds=65.0, seed=i), genres, artist, album)
    for j, kind in enumerate(("classical", "metal", "hiphop")):
        tag(write_song(lib / f"polka{j}.flac", kind, seconds=6.0, seed=500 + j), ["Polka"], "Polka band", "Polkas")


@pytest.mark.slow
def test_training_drops_empty_names_counts_songs_and_refits_on_every_labelled_song(tmp_path):
    lib = tmp_path / "lib"
    _long_songs_library(lib)
    names = tmp_path / "names.toml"
    names.write_text('Polka = ""\n')
    proc = genrekit("train", "--data", lib, "--labels", "tags", "--names", names, "--out", tmp_path / "run",
                    "--cache", tmp_path / "cache")
    assert proc.returncode == 0, proc.stderr
    assert "24 files labelled from tags; 0 without a genre skipped; 3 left out (only genres --names drops)" in proc.stderr
    results = json.loads((tmp_path / "run/results.json").read_text())
    assert results["labels"]["counts"] == {"classical": 8, "hiphop": 8, "metal": 8}
    assert results["labels"]["left_out_dropped_genres"] == 3
    n_rows, sizes = results["data"]["n_rows"], results["split"]["sizes"]
    assert n_rows > 24 and sizes["train"] + sizes["test"] == 24 and sizes["test"] > 0
    meta = json.loads((tmp_path / "run/own-genres/bundle.json").read_text())
    # refitted on all 24 songs: the calibration says songs (and windows apart), not windows as songs
    assert f"on the 24 training songs ({n_rows} windows)" in meta["calibration"]["fitted_on"]
    assert "on the 24 training songs" in meta["unknown"]["fitted_on"]
    card = (tmp_path / "run/own-genres/MODEL_CARD.md").read_text()
    assert f"held out); this model was then refitted on all 24 labelled songs" in card
    assert "refitted on all 24 labelled songs after the test" in proc.stderr

    # --no-refit keeps the split's model: the same test figures, fitted on the training part's songs
    kept = genrekit("train", "--data", lib, "--labels", "tags", "--names", names, "--out", tmp_path / "kept",
                    "--cache", tmp_path / "cache", "--no-refit")
    assert kept.returncode == 0, kept.stderr
    kept_results = json.loads((tmp_path / "kept/results.json").read_text())
    assert kept_results["models"]["own-genres"]["test"] == results["models"]["own-genres"]["test"]
    kept_meta = json.loads((tmp_path / "kept/own-genres/bundle.json").read_text())
    assert f"on the {sizes['train']} training songs (" in kept_meta["calibration"]["fitted_on"]
    assert kept_meta["unknown"]["means"] != meta["unknown"]["means"]
    kept_card = (tmp_path / "kept/own-genres/MODEL_CARD.md").read_text()
    assert f"(--no-refit): fitted on {sizes['train']} of the 24 labelled songs" in kept_card
