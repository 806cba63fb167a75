"""Outlier exposure from the owner's library (issue 28 item 2): songs whose genres ``--names`` leaves
out fit the unknown decision as "known unknowns"; real tagged FLAC/MP3/Ogg files made here, the
real backbone, ``genrekit train`` in a subprocess, the run's bundle read back."""

from __future__ import annotations

import json

import numpy as np
import pytest

from genrekit.models.bundle import load_bundle
from genrekit.tagging.names import load_names
from genrekit.training.own_genres import labels_from_csv, labels_from_tags

from own_genres_runs import genrekit, plan
from synthetic_songs import write_song
from tagged_songs import tag, tagged_library


def test_the_genres_names_drops_are_kept_for_each_left_out_file(tmp_path):
    lib = tmp_path / "lib"
    tagged_library(lib, [("metal", ["Metal"], None, None), ("classical", ["Polka", "Waltz"], None, None),
                         ("hiphop", ["waltz"], None, None), ("classical", ["Classical", "Polka"], None, None)],
                   seconds=1.0)
    names = tmp_path / "names.toml"
    names.write_text('Polka = ""\nWaltz = ""\n')
    labelled = labels_from_tags(lib, load_names(names))
    assert [p.name for p in labelled.dropped] == ["song01.mp3", "song02.ogg"]
    assert labelled.dropped_genres == [["Polka", "Waltz"], ["Waltz"]]
    assert labelled.genres == [["metal"], ["classical"]]  # a file keeping a genre is no exposure song
    csv = tmp_path / "labels.csv"
    csv.write_text("path,label\nsong00.flac,Metal\nsong01.mp3,Polka;Waltz\nsong02.ogg,waltz\n", encoding="utf-8")
    from_csv = labels_from_csv(csv, lib, load_names(names))
    assert [p.name for p in from_csv.dropped] == ["song01.mp3", "song02.ogg"]
    assert from_csv.dropped_genres == labelled.dropped_genres


def _library(lib):
    """``plan()``'s 24 songs of three kinds (8 each, 4 albums per kind) and 6 songs of a fourth kind,
    chirps, tagged "Noise Rock" on 2 albums: the genre ``--names`` leaves out."""
    tagged_library(lib, plan())
    for j in range(6):
        tag(write_song(lib / f"noise{j}.flac", "chirp", seconds=6.0, seed=700 + j), ["Noise Rock"],
            f"Noise band {j % 2}", f"Noise album {j % 2}")


@pytest.mark.slow
def test_songs_names_leaves_out_are_the_unknown_decisions_outlier_exposure(tmp_path):
    lib = tmp_path / "lib"
    _library(lib)
    names = tmp_path / "names.toml"
    names.write_text('"Noise Rock" = ""\n')
    common = ("train", "--data", lib, "--labels", "tags", "--names", names, "--cache", tmp_path / "cache")
    proc = genrekit(*common, "--out", tmp_path / "run")
    assert proc.returncode == 0, proc.stderr
    assert "6 left out (only genres --names drops)" in proc.stderr
    assert "fitted with 6 songs of genres --names leaves out as outlier exposure" in proc.stderr
    results = json.loads((tmp_path / "run/results.json").read_text())
    labels = results["labels"]
    assert labels["exposure"] == {"used": True, "songs": 6, "failed": 0, "genres": {"Noise Rock": 6}}
    # never a training or test song: the split and the classifier see the 24 labelled songs only
    assert results["split"]["sizes"]["train"] + results["split"]["sizes"]["test"] == 24
    assert labels["counts"] == {"classical": 8, "hiphop": 8, "metal": 8}
    meta = json.loads((tmp_path / "run/own-genres/bundle.json").read_text())
    unknown = meta["unknown"]
    assert "with 6 songs of other genres as outlier exposure" in unknown["fitted_on"]
    assert np.asarray(unknown["exposure_means"]).shape == (1, np.asarray(unknown["means"]).shape[1])
    card = (tmp_path / "run/own-genres/MODEL_CARD.md").read_text()
    assert "6 of them the unknown decision's outlier exposure" in card

    # --no-exposure: the same songs left out, the decision fitted without them
    plain = genrekit(*common, "--out", tmp_path / "plain", "--no-exposure")
    assert plain.returncode == 0, plain.stderr
    assert "--no-exposure: the 6 songs --names leaves out were not used" in plain.stderr
    plain_meta = json.loads((tmp_path / "plain/own-genres/bundle.json").read_text())
    assert "exposure_means" not in plain_meta["unknown"] and "exposure" not in plain_meta["unknown"]["fitted_on"]
    plain_results = json.loads((tmp_path / "plain/results.json").read_text())
    assert plain_results["labels"]["exposure"] == {"used": False, "songs": 0, "failed": 0, "genres": {}}
    assert plain_results["models"]["own-genres"]["test"] == results["models"]["own-genres"]["test"]

    # --leave-out-rare: the same 6 songs (a genre on fewer than 8 files) left out and used the same way
    rare = genrekit("train", "--data", lib, "--labels", "tags", "--cache", tmp_path / "cache", "--out",
                    tmp_path / "rare", "--leave-out-rare")
    assert rare.returncode == 0, rare.stderr
    assert "--leave-out-rare: left out Noise Rock (6 files)" in rare.stderr
    rare_results = json.loads((tmp_path / "rare/results.json").read_text())
    assert rare_results["labels"]["left_out_rare"] == {"Noise Rock": 6}
    assert rare_results["labels"]["exposure"] == labels["exposure"]
    assert json.loads((tmp_path / "rare/own-genres/bundle.json").read_text())["unknown"] == unknown
    refused = genrekit("train", "--data", lib, "--labels", "tags", "--cache", tmp_path / "cache", "--out",
                       tmp_path / "refused")
    assert refused.returncode == 1 and "Noise Rock (6)" in refused.stderr and "--leave-out-rare" in refused.stderr

    # a new song of the left-out kind: called unknown with exposure, and further past the threshold than
    # without it (this one, seeded, is not called unknown without exposure)
    new = write_song(tmp_path / "new.flac", "chirp", seconds=6.0, seed=900)
    flagged, margins = {}, {}
    for run in ("run", "plain"):
        proc = genrekit("classify", new, "--model", tmp_path / run, "--format", "json")
        assert proc.returncode == 0, proc.stderr
        flagged[run] = json.loads(proc.stdout)[0]["unknown"]
        margins[run] = _margin(tmp_path / run / "own-genres", new)
    assert flagged["run"] is True and margins["run"] > 0
    assert margins["run"] > margins["plain"]


def _margin(bundle_path, path):
    """How far past its threshold the bundle's stored decision puts ``path`` (the score of its backbone rows,
    as classify measures them, less the threshold), in units of the out-of-fold scores' spread."""
    import soundfile

    from genrekit.models.registry import load_model

    model, detector = load_model(bundle_path), load_bundle(bundle_path).unknown_detector()
    y, sr = soundfile.read(str(path), dtype="float32")
    rows = model.signal_scores(model.at_model_rate(y, sr)).rows
    spread = np.subtract(*np.percentile(detector.oof_scores, [75, 25]))
    return (detector.score(rows) - detector.threshold) / spread


@pytest.mark.parametrize("flag", ["--no-exposure", "--leave-out-rare"])
def test_exposure_flags_are_refused_without_own_labels(tmp_path, flag):
    proc = genrekit("train", "--data", tmp_path, "--out", tmp_path / "run", flag)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"{flag}: only with --labels tags or --labels FILE.csv" in proc.stderr


def test_leave_out_rare_moves_files_left_without_a_genre_to_the_left_out_ones(tmp_path):
    from genrekit.training.exposure import leave_out_rare

    lib = tmp_path / "lib"
    tagged_library(lib, [("metal", ["Metal"], None, None), ("metal", ["Metal", "Polka"], None, None),
                         ("classical", ["Polka"], None, None), ("classical", ["Classical"], None, None),
                         ("hiphop", ["Waltz"], None, None), ("metal", ["Metal"], None, None)], seconds=1.0)
    names = tmp_path / "names.toml"
    names.write_text('Waltz = ""\n')
    left, rare = leave_out_rare(labels_from_tags(lib, load_names(names)), 3)
    assert rare == [("classical", 1), ("Polka", 2)]  # rarest first; metal (3 files) stays
    assert left.genres == [["metal"], ["metal"], ["metal"]] and len(left.groups) == 3
    assert [p.name for p in left.dropped] == ["song04.mp3", "song02.ogg", "song03.flac"]
    assert left.dropped_genres == [["Waltz"], ["Polka"], ["classical"]]


@pytest.mark.slow
def test_a_several_genres_model_gets_outlier_exposure_too(tmp_path):
    lib = tmp_path / "lib"
    tagged_library(lib, plan(several=True))
    for j in range(6):
        tag(write_song(lib / f"noise{j}.flac", "chirp", seconds=6.0, seed=700 + j), ["Noise Rock"],
            f"Noise band {j % 2}", f"Noise album {j % 2}")
    names = tmp_path / "names.toml"
    names.write_text('"Noise Rock" = ""\n')
    proc = genrekit("train", "--data", lib, "--labels", "tags", "--names", names, "--out", tmp_path / "run",
                    "--cache", tmp_path / "cache")
    assert proc.returncode == 0, proc.stderr
    assert "several on some files (one-vs-rest)" in proc.stderr
    meta = json.loads((tmp_path / "run/own-genres/bundle.json").read_text())
    assert meta["multilabel"] and "with 6 songs of other genres as outlier exposure" in meta["unknown"]["fitted_on"]
    assert len(meta["unknown"]["exposure_means"]) == 1
    record = json.loads(genrekit("classify", write_song(tmp_path / "new.flac", "chirp", seconds=6.0, seed=901),
                                 "--model", tmp_path / "run", "--format", "json").stdout)[0]
    assert record["unknown"] is True


@pytest.mark.slow
def test_a_left_out_file_that_cannot_be_analysed_is_counted_not_fatal(tmp_path):
    lib = tmp_path / "lib"
    songs = tagged_library(lib, plan())
    (lib / "broken.flac").write_bytes(b"fLaC not really" * 100)
    (lib / "gone.flac").write_bytes(b"")
    labels = tmp_path / "labels.csv"
    labels.write_text("path,label\n" + "".join(f"{p.name},{plan()[i][1][0]}\n" for i, p in enumerate(songs))
                      + "broken.flac,Noise Rock\ngone.flac,Noise Rock\n", encoding="utf-8")
    names = tmp_path / "names.toml"
    names.write_text('"Noise Rock" = ""\n')
    proc = genrekit("train", "--data", lib, "--labels", labels, "--names", names, "--out", tmp_path / "run",
                    "--cache", tmp_path / "cache")
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    assert "0 songs of genres --names leaves out as outlier exposure of the unknown decision (2 failed)" in proc.stderr
    exposure = json.loads((tmp_path / "run/results.json").read_text())["labels"]["exposure"]
    assert exposure == {"used": True, "songs": 0, "failed": 2, "genres": {}}
    assert "exposure" not in json.loads((tmp_path / "run/own-genres/bundle.json").read_text())["unknown"]["fitted_on"]
