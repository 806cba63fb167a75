"""The helpers behind RESULTS.md's own-genres figures, on the musicnn authors' GTZAN taggrams
(shared data): accuracy grows with examples per genre, and genres held out of training lie
farther from the known genres than the known songs do."""

from __future__ import annotations

import numpy as np

from genrekit.datasets.musicnn_taggrams import artists, fault_filtered_taggrams, joined
from genrekit.evaluation.learning_curve import draw_per_genre, first_k, learning_curve, summary
from genrekit.models.classical import make_model
from genrekit.evaluation.open_set import held_out_genres
from genrekit.training.own_genres import recipe


def taggrams(shared_data):
    parts = fault_filtered_taggrams(shared_data)
    table = joined(parts["train"], parts["test"])
    return table, artists(shared_data, table.tracks)


def test_draws_are_k_per_genre_and_nested():
    y = np.array(["a"] * 6 + ["b"] * 4 + ["c"] * 5)
    order = draw_per_genre(y, np.random.default_rng(0))
    one, three, every = first_k(order, 1), first_k(order, 3), first_k(order, None)
    assert sorted(y[three].tolist()) == ["a"] * 3 + ["b"] * 3 + ["c"] * 3
    assert set(one) <= set(three) and every.tolist() == list(range(len(y)))


def test_accuracy_grows_with_examples_per_genre(shared_data):
    table, groups = taggrams(shared_data)
    assert len(table.X) == 733 and len(set(table.tracks)) == 733  # 443 train + 290 test clips
    scores = learning_curve(recipe(), table.X, table.labels, groups, [1, 20], small_model=make_model("logreg", C=0.05),
                            min_per_genre=3, repeats=1)
    assert scores["1"]["small_model"] and not scores["20"]["small_model"]
    assert sum(scores["20"]["n_test"]) == 733  # every clip tested once per repeat
    assert scores["20"]["n_train"] == [200] * 5 and scores["1"]["n_train"] == [10] * 5
    one, twenty = summary(scores["1"]["accuracy"]), summary(scores["20"]["accuracy"])
    assert 0.3 < one["mean"] < twenty["mean"]  # one song per genre is far above chance (10%)
    assert twenty["mean"] > 0.7 and twenty["n_scores"] == 5


def test_held_out_genres_lie_farther_than_known_songs(shared_data):
    table, groups = taggrams(shared_data)
    r = held_out_genres(recipe(), table.X, table.labels, groups, ("blues", "metal"), folds=3)
    assert r["n_unknown"] == int(np.isin(table.labels, ["blues", "metal"]).sum()) and r["n_known"] + r["n_unknown"] == 733
    assert r["auroc_distance"] > 0.85 and r["auroc_distance"] > r["auroc_max_probability"]
    assert r["known_called_unknown"] < 0.12  # the threshold is set for 5% of known training songs
    assert 0.0 < r["unknown_called_known"] < 0.5
    assert len(r["per_fold"]["auroc_distance"]) == 3
