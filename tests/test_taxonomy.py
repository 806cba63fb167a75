"""The genre › style tree (FMA's taxonomy, issue 27): lookups, rolling styles up, and its use in names
maps and in training labels read from real tagged files."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from genrekit.errors import TagError
from genrekit.tagging.names import load_names
from genrekit.taxonomy.tree import ALIASES, FMA_CSV, GenreTree
from genrekit.training.own_genres import labels_from_tags

from tagged_songs import tagged_library

REPO = Path(__file__).resolve().parents[1]


def test_the_shipped_tree_is_fma_with_its_licence_notice():
    tree = GenreTree.fma()
    assert len(FMA_CSV.read_text().splitlines()) == 1 + 163
    assert len(tree.tops()) == 16 and {"Rock", "Electronic", "Hip-Hop", "Classical"} <= set(tree.tops())
    notice = (FMA_CSV.parent / "NOTICE").read_text()
    for needed in ("CC BY 4.0", "https://creativecommons.org/licenses/by/4.0/", "Defferrard", "fma_metadata"):
        assert needed in notice
    data = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["genrekit"]
    assert "taxonomy/*.csv" in data and "taxonomy/NOTICE" in data


def test_lookups_ignore_case_and_punctuation_and_know_only_the_tree_and_its_aliases():
    tree = GenreTree.fma()
    assert tree.find("hip hop") == tree.find("HIPHOP") == "Hip-Hop"
    assert tree.find("drum and bass") == "Drum & Bass"
    assert tree.find("alt-rock") == "Alt Rock"  # a documented alias, a style of Rock
    assert tree.find("Vaporwave") is None  # not guessed at
    assert tree.chain("death metal") == ["Death-Metal", "Metal", "Rock"]
    assert tree.parent("Techno") == "Electronic" and tree.parent("Rock") is None
    assert tree.top("Alternative Rock") == "Rock" and tree.top("World") == "International"
    assert "Techno" in tree.styles("electronic")
    assert tree.chain("nothing") == [] and tree.top("nothing") is None
    for name, parent, _ in ALIASES:  # every alias hangs under (or spells) a genre of the tree
        assert tree.top(name) == tree.top(parent) and tree.top(name) is not None


def test_roll_up_to_the_top_or_to_chosen_genres():
    tree = GenreTree.fma()
    assert tree.roll_up("Death-Metal") == "Rock"
    assert tree.roll_up("Death-Metal", ["metal", "rock"]) == "metal"  # the nearest chosen, as spelled there
    assert tree.roll_up("Techno", ["rock", "pop"]) is None
    assert tree.roll_up("Rock", ["rock"]) == "rock"


def test_names_tree_rolls_styles_up_and_keeps_what_the_map_knows(tmp_path):
    names = load_names("tree")
    assert [names.canonical(v) for v in ("Alternative Rock", "alt rock", "Death Metal", "Rap", "Techno",
                                         "Metal", "no such genre")] == \
        ["rock", "rock", "metal", "hiphop", "electronic", "metal", None]  # the map names electronic now
    assert load_names(None).canonical("Alternative Rock") is None  # only on request
    chosen = tmp_path / "names.toml"
    chosen.write_text('"*" = ["rock", "Electronic"]\nrock = "Rock"\n')
    names = load_names(chosen)
    assert names.canonical("Hard Rock") == "rock" and names.canonical("House") == "electronic"
    assert names.canonical("Bebop") is None  # Jazz is not chosen: left as it is
    top = tmp_path / "top.toml"
    top.write_text('"*" = "tree"\n')
    assert load_names(top).canonical("Indie-Rock") == "rock"
    bad = tmp_path / "bad.toml"
    bad.write_text('"*" = 3\n')
    with pytest.raises(TagError, match='"\\*" must be "tree"'):
        load_names(bad)


def test_training_from_tags_counts_a_style_for_its_genre(tmp_path):
    """Real tagged files (mp3, flac, ogg, ...): songs tagged "Alternative Rock", "Hard Rock" and "Techno"
    count for rock and Electronic with --names tree, and stay apart without it."""
    plan = [("metal", ["Alternative Rock"], "A", "a1"), ("metal", ["Hard Rock"], "B", "b1"),
            ("metal", ["Rock"], "C", "c1"), ("hiphop", ["Techno"], "D", "d1"), ("hiphop", ["House"], "E", "e1"),
            ("classical", ["Baroque"], "F", "f1")]
    tagged_library(tmp_path / "lib", plan, seconds=1.0)
    rolled = labels_from_tags(tmp_path / "lib", load_names("tree"))
    assert rolled.counts == {"rock": 3, "electronic": 2, "Baroque": 1}  # Baroque: not in the tree, kept
    plain = labels_from_tags(tmp_path / "lib", None)
    assert plain.counts == {"Alternative Rock": 1, "Baroque": 1, "Hard Rock": 1, "House": 1, "Techno": 1,
                            "rock": 1}


def test_classify_writes_a_style_after_its_genre_on_request(bundle_dir, tmp_path, capsys):
    """The test model's "metal" is a style of Rock in the tree: --with-style writes "Rock" then "Metal"
    (beets' discogs plugin's genre-then-style order); "classical", a top-level genre, is written alone;
    without --with-style nothing changes."""
    from genrekit.tagging.formats import read_genres

    from cli_helpers import classify_main
    from synthetic_songs import write_song

    for option, metal_values in ((["--with-style"], ["Rock", "Metal"]), ([], ["Metal"])):
        lib = tmp_path / ("styled" if option else "plain")
        metal = write_song(lib / "metal.flac", "metal", 5.0, seed=3)
        classical = write_song(lib / "classical.ogg", "classical", 5.0, seed=4)
        code, _, err = classify_main(capsys, lib, "--model", bundle_dir, "--write-tags", *option)
        assert code == 0, err
        assert read_genres(metal) == metal_values
        assert read_genres(classical) == ["Classical"]
    assert load_names(None).tag_names("metal") == ["Metal"]
    with pytest.raises(SystemExit) as exit_:
        classify_main(capsys, lib, "--model", bundle_dir, "--with-style")
    assert exit_.value.code == 2 and "--with-style: only with --write-tags" in capsys.readouterr().err
