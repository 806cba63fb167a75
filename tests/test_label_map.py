"""``genrekit evaluate --label-map``: scoring a model on songs labelled in another vocabulary (issue 27).

Real files: synthetic songs in folders named in a dataset's own words ("orchestral", "beats", "noise",
and "sweeps", a kind the test model never learnt), scored by the small test bundle given a real
"none of these" decision fitted on its training songs.
"""

from __future__ import annotations

import json
import os

import pytest

from genrekit.cli import main
from genrekit.errors import ParameterError
from genrekit.evaluation.label_map import MAX_BYTES, map_figures, read_label_map, shipped_map

from synthetic_songs import GENRES, build_open_bundle, write_song

#: The dataset's words for the test model's genres; "sweeps" has none.
WORDS = {"orchestral": "classical", "beats": "hiphop", "noise": "metal"}
PER_LABEL = 4


@pytest.fixture(scope="module")
def open_bundle(bundle_dir, tmp_path_factory):
    """The test bundle with a "none of these" decision fitted on 8 training songs per genre."""
    return build_open_bundle(tmp_path_factory.getbasetemp() / "label-map-bundle", bundle_dir)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """``<word>/<word>.<i>.wav``: 4 songs of each of the dataset's labels, never heard by the model."""
    root = tmp_path_factory.mktemp("other-vocabulary")
    kinds = {**WORDS, "sweeps": "chirp"}
    for n, (word, kind) in enumerate(kinds.items()):
        for i in range(PER_LABEL):
            write_song(root / word / f"{word}.{i}.wav", kind, 5.0, seed=500 + 10 * n + i)
    return root


def write_map(path, text: str):
    path.write_text(text, encoding="utf-8")
    return path


def evaluate(capsys, *args):
    code = main(["evaluate", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def test_a_label_the_model_lacks_counts_right_when_flagged_unknown(open_bundle, dataset, tmp_path, capsys):
    lm = write_map(tmp_path / "map.csv", "dataset_label,model_label\norchestral,classical\nbeats,hiphop\n"
                                         "noise,metal\nsweeps,none\n")
    out_json = tmp_path / "figures.json"
    code, out, err = evaluate(capsys, "--model", open_bundle, "--data", dataset, "--label-map", lm, "--out", out_json)
    assert code == 0, err
    figures = json.loads(out_json.read_text())
    songs = figures["songs"]
    assert len(songs) == 4 * PER_LABEL
    # each figure recomputed from the songs' own answers
    for label, block in figures["per_label"].items():
        mine = [s for s in songs if s["label"] == label]
        if label == "sweeps":
            right = [s for s in mine if s["unknown"]]
        else:
            right = [s for s in mine if s["named"] == WORDS[label]]
        assert block["n"] == PER_LABEL and block["right"] == len(right), label
        assert block["flagged_unknown"] == sum(bool(s["unknown"]) for s in mine)
        lo, hi = block["accuracy_ci"]
        assert lo <= block["accuracy"] <= hi
    sweeps = figures["per_label"]["sweeps"]
    assert sweeps["right_by_unknown"] == sweeps["right"] == PER_LABEL  # the decision finds every sweep
    assert figures["right"] == sum(b["right"] for b in figures["per_label"].values())
    assert figures["accuracy"] == figures["right"] / figures["n"]
    assert figures["flagged_unknown"] == sum(bool(s["unknown"]) for s in songs)
    assert sum(figures["confusion"]["sweeps"].values()) == PER_LABEL + sweeps["flagged_unknown"]
    # the report says it all
    assert f"{figures['right']} of {4 * PER_LABEL} songs right" in out
    assert f"{figures['right_by_unknown']} counted right because their label maps to none" in out
    assert "right when: flagged unknown" in out and "right when: classical" in out


def test_without_none_an_unknown_song_is_wrong_and_a_broader_genre_can_be_allowed(open_bundle, dataset, tmp_path,
                                                                                 capsys):
    """The same songs through a JSON map: "sweeps" allowed only as the genre each sweep is named (the
    genre the model gives them), never by the flag; the songs that count right follow."""
    first = tmp_path / "first.json"
    lm = write_map(tmp_path / "map.json", json.dumps({**WORDS, "sweeps": "none"}))
    assert evaluate(capsys, "--model", open_bundle, "--data", dataset, "--label-map", lm, "--out", first)[0] == 0
    named = {s["named"] for s in json.loads(first.read_text())["songs"] if s["label"] == "sweeps"}
    allowed = sorted(named)[:1]
    lm = write_map(tmp_path / "map.json", json.dumps({**WORDS, "sweeps": allowed}))
    out_json = tmp_path / "figures.json"
    code, out, err = evaluate(capsys, "--model", open_bundle, "--data", dataset, "--label-map", lm, "--out", out_json)
    assert code == 0, err
    figures = json.loads(out_json.read_text())
    sweeps = [s for s in figures["songs"] if s["label"] == "sweeps"]
    assert figures["per_label"]["sweeps"]["right"] == sum(s["named"] in allowed for s in sweeps)
    assert figures["per_label"]["sweeps"]["right_by_unknown"] == 0


def test_labels_the_model_lacks_are_refused_before_any_song_is_classified(open_bundle, dataset, tmp_path, capsys):
    lm = write_map(tmp_path / "map.csv", "dataset_label,model_label\norchestral,Classical\nsweeps,ambient\n"
                                         "beats,trap\n")
    code, out, err = evaluate(capsys, "--model", open_bundle, "--data", dataset, "--label-map", lm)
    assert code != 0 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "labels the model does not have: ambient, trap" in lines[0]
    lm = write_map(tmp_path / "map.csv", "dataset_label,model_label\norchestral,classical\n")
    code, out, err = evaluate(capsys, "--model", open_bundle, "--data", dataset, "--label-map", lm)
    assert code != 0 and "neither in the map nor the model's genres: beats, noise, sweeps" in err


@pytest.mark.parametrize("name, content, says", [
    ("m.txt", "a,b\n", "must be a .csv"),
    ("m.csv", "from,to\na,b\n", "first row must be the header"),
    ("m.csv", "dataset_label,model_label\na,b,c\n", "row 2: expected 2 fields"),
    ("m.csv", "dataset_label,model_label\na,\x1b[2J\n", "without control characters"),
    ("m.json", "[1, 2]", "must be a JSON object"),
    ("m.json", '{"a": 3}', "a label must be a non-empty string"),
    ("m.json", "{", "not valid JSON"),
    ("m.csv", b"dataset_label,model_label\n\xff,a\n", "not UTF-8"),
    ("m.csv", "dataset_label,model_label\n" + "a,b\n" * (MAX_BYTES // 4), "more than a label map's"),
])
def test_a_bad_map_file_is_one_line_naming_it(name, content, says, tmp_path):
    path = tmp_path / name
    (path.write_bytes if isinstance(content, bytes) else path.write_text)(content)
    with pytest.raises(ParameterError, match=says) as info:
        read_label_map(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_a_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "map.csv"
    os.mkfifo(fifo)
    with pytest.raises(ParameterError, match="not a regular file"):
        read_label_map(fifo)


def test_figures_by_hand():
    lm = read_label_map(shipped_map("emotify-gtzan")).resolve(["classical", "pop", "rock", "disco"],
                                                              {"classical", "electronic", "rock"})
    truth = ["classical", "classical", "electronic", "electronic", "electronic", "rock"]
    named = ["classical", "pop", "disco", "disco", "classical", "disco"]
    unknown = [False, True, True, False, True, True]
    f = map_figures(truth, named, unknown, lm)
    assert (f["n"], f["right"], f["flagged_unknown"], f["right_by_unknown"]) == (6, 3, 4, 2)
    assert f["per_label"]["electronic"]["counts_as"] == "flagged unknown"
    assert f["per_label"]["rock"]["right"] == 0  # flagged, but rock maps to rock: scored by the genre named
    assert f["confusion"]["electronic"] == {"disco": 2, "flagged unknown": 2, "classical": 1}


def test_evaluate_counts_unknown_songs_in_its_usual_report(open_bundle, tmp_path, capsys):
    """Without a map: songs of the model's own genres in GTZAN layout, two of them sweeps filed as
    classical; the usual report says how many were flagged unknown."""
    root = tmp_path / "lib"
    for n, g in enumerate(GENRES):
        for i in range(2):
            write_song(root / g / f"{g}.{i}.wav", g, 5.0, seed=700 + 10 * n + i)
    for i in range(2):
        write_song(root / "classical" / f"classical.d{i}.wav", "chirp", 5.0, seed=800 + i)
    out_json = tmp_path / "figures.json"
    code, out, err = evaluate(capsys, "--model", open_bundle, "--data", root, "--cache", tmp_path / "cache",
                              "--out", out_json)
    assert code == 0, err
    figures = json.loads(out_json.read_text())
    assert figures["flagged_unknown"]["songs"] == 8 and figures["flagged_unknown"]["flagged"] >= 2
    assert f"flagged unknown: {figures['flagged_unknown']['flagged']} of 8 songs" in out


@pytest.mark.slow  # the backbone analyses 8 real songs
def test_the_default_on_real_emotify_songs_through_the_ready_made_map(shared_data, tmp_path, capsys):
    """Two real Emotify songs of each genre (chosen by a labels CSV over the shared folder, read where
    they lie), scored by the shipped default through emotify-gtzan: electronic is right only when flagged."""
    import csv

    from shared_data_policy import require

    root = require(shared_data / "emotify")
    require(root / "labels.csv")
    with open(root / "labels.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    chosen = [r for g in ("classical", "electronic", "pop", "rock") for r in [r for r in rows if r["genre"] == g][:2]]
    labels = tmp_path / "labels.csv"
    labels.write_text("path,label\n" + "".join(f"{r['path']},{r['genre']}\n" for r in chosen))
    out_json = tmp_path / "figures.json"
    code, out, err = evaluate(capsys, "--model", "gtzan-musicnn", "--data", root, "--labels", labels,
                              "--label-map", "emotify-gtzan", "--out", out_json)
    assert code == 0, err
    f = json.loads(out_json.read_text())
    assert f["n"] == 8 and all(b["n"] == 2 for b in f["per_label"].values())
    assert f["per_label"]["electronic"]["counts_as"] == "flagged unknown"
    for s in f["songs"]:
        assert s["named"] in f["labels"] and isinstance(s["unknown"], bool)
    assert f["right"] == sum((s["unknown"] if s["label"] == "electronic" else s["named"] == s["label"])
                             for s in f["songs"])


def test_a_map_named_with_control_characters_is_named_escaped(tmp_path, capsys):
    path = tmp_path / "evil\x1b[2J.csv"
    code = main(["evaluate", "--model", "gtzan-musicnn", "--data", str(tmp_path), "--label-map", str(path)])
    err = capsys.readouterr().err
    assert code != 0 and "\x1b" not in err and len(err.strip().splitlines()) == 1 and "cannot read it" in err
