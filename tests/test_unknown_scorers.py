"""The "none of these" scorers, the stored out-of-fold scores and the unknown score (issue 28).

Real data where it decides something: the musicnn authors' taggrams of GTZAN (shared data).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from genrekit.datasets.musicnn_taggrams import artists, fault_filtered_taggrams
from genrekit.errors import ParameterError
from genrekit.evaluation.open_set import auroc
from genrekit.models.unknown import (SCORERS, UnknownDetector, check_unknown, conformal_threshold, fit_scorer,
                                     score_rows, unknown_decision)


def _blobs(seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=3.0, size=(3, 12))
    y = np.repeat(["a", "b", "c"], 40)
    X = centres[np.searchsorted(["a", "b", "c"], y)] + rng.normal(size=(120, 12))
    far = rng.normal(scale=3.0, size=(30, 12)) + rng.normal(scale=6.0, size=12)  # another "genre"
    return X, y, far


@pytest.mark.parametrize("method", SCORERS)
def test_each_scorer_ranks_songs_of_an_unseen_genre_above_known_ones_and_round_trips_through_json(method):
    X, y, far = _blobs()
    unknown = unknown_decision(X[::2], y[::2], ["a", "b", "c"], method=method)
    stored = json.loads(json.dumps(unknown))  # as a bundle.json holds it
    assert check_unknown(stored, 3, 12) is None
    detector = UnknownDetector(stored)
    known_scores = [detector.score(row[None]) for row in X[1::2]]
    far_scores = [detector.score(row[None]) for row in far]
    assert auroc(np.array(known_scores), np.array(far_scores)) > 0.9
    # the stored scorer gives what the fitted one gives
    fitted = fit_scorer(method, X[::2], y[::2], ["a", "b", "c"])
    assert np.allclose(score_rows(fitted, X[1::2]), known_scores, rtol=1e-6, atol=1e-6)


def test_the_unknown_score_and_the_flag_agree_at_every_rate():
    """Unknown at rate r exactly when the unknown score reaches 1 - r (the conformal p-value is at most r)."""
    X, y, far = _blobs(1)
    detector = UnknownDetector(unknown_decision(X, y, ["a", "b", "c"]))
    rows = np.vstack([X[:20], far])
    for rate in (0.01, 0.05, 0.1, 0.3, 0.5):
        for row in rows:
            unknown, score = detector.assess(row[None], rate)
            assert unknown == (score >= 1 - rate - 1e-12), (rate, score)
    # a higher rate flags at least the songs a lower one flags
    flags = {r: [detector.assess(row[None], r)[0] for row in rows] for r in (0.05, 0.3)}
    assert sum(flags[0.3]) >= sum(flags[0.05]) and all(b for a, b in zip(flags[0.05], flags[0.3]) if a)
    assert detector.threshold_at(0.05) == detector.threshold == conformal_threshold(detector.oof_scores, 0.05)


def test_a_bundle_without_out_of_fold_scores_keeps_its_rate_and_says_so():
    X, y, _ = _blobs(2)
    legacy = unknown_decision(X, y, ["a", "b", "c"], method="mahalanobis")
    legacy.pop("oof_scores")
    detector = UnknownDetector(legacy)
    assert detector.assess(X[:1])[1] is None
    assert detector.threshold_at(None) == detector.threshold
    with pytest.raises(ParameterError, match="retrain"):
        detector.threshold_at(0.2)
    for bad in (0, 1, -0.1, 1.5, float("nan"), True, "0.1"):
        with pytest.raises(ParameterError):
            UnknownDetector(unknown_decision(X, y, ["a", "b", "c"])).threshold_at(bad)


def test_outlier_exposure_pulls_songs_near_the_exposure_songs_up():
    """Songs like the owner's other-genre songs score higher with those songs as exposure."""
    X, y, far = _blobs(3)
    for method in ("mahalanobis-pca", "knn"):
        plain = UnknownDetector(unknown_decision(X, y, ["a", "b", "c"], method=method))
        exposed = UnknownDetector(unknown_decision(X, y, ["a", "b", "c"], method=method, exposure=far[:15]))
        assert "outlier exposure" in exposed.meta["fitted_on"]
        assert check_unknown(json.loads(json.dumps(exposed.meta)), 3, 12) is None
        flagged = lambda d: sum(d.is_unknown(row[None]) for row in far[15:])  # noqa: E731
        assert flagged(exposed) >= flagged(plain)
        assert flagged(exposed) >= 14


@pytest.mark.parametrize("edit, problem", [
    (lambda u: u.update(method="lof"), "unknown.method"),
    (lambda u: u.update(oof_scores="1,2"), "oof_scores"),
    (lambda u: u.update(oof_scores=[1.0, float("inf")]), "oof_scores"),
    (lambda u: u["transform"].update(center=[0.0] * 3), "transform.center"),
    (lambda u: u["transform"].update(components=[[0.0] * 12] * 13), "components"),
    (lambda u: u.update(means=[[0.0] * 5] * 3), "means"),
    (lambda u: u.update(false_unknown_rate=1.0), "false_unknown_rate"),
    (lambda u: u.update(threshold="high"), "threshold"),
])
def test_a_malformed_stored_decision_is_named_before_use(edit, problem):
    X, y, _ = _blobs(4)
    unknown = json.loads(json.dumps(unknown_decision(X, y, ["a", "b", "c"], method="mahalanobis-pca")))
    edit(unknown)
    found = check_unknown(unknown, 3, 12)
    assert found is not None and problem in found


def test_knn_references_are_checked():
    X, y, _ = _blobs(5)
    unknown = json.loads(json.dumps(unknown_decision(X, y, ["a", "b", "c"], method="knn")))
    for edit in (lambda u: u.update(k=0), lambda u: u.update(k=10_000), lambda u: u.update(reference=[[1.0, 2.0]])):
        bad = json.loads(json.dumps(unknown))
        edit(bad)
        assert check_unknown(bad, 3, 12) is not None


def test_the_shipped_scorer_finds_held_out_gtzan_genres_better_than_the_old_distance(shared_data):
    """Two GTZAN genres held out (reggae + rock, the old distance's hardest pair): on the test list's
    known clips and every held-out clip, the chosen scorer, fitted on training clips only, separates them
    better than the raw Mahalanobis distance did."""
    parts = fault_filtered_taggrams(shared_data)
    train, test = parts["train"], parts["test"]
    held = ("reggae", "rock")
    ytr, yte = np.asarray(train.labels).astype(str), np.asarray(test.labels).astype(str)
    keep = ~np.isin(ytr, held)
    labels = sorted(set(ytr[keep].tolist()))
    groups = artists(shared_data, np.asarray(train.tracks)[keep])
    figures = {}
    for method in ("mahalanobis", "mahalanobis-pca"):
        d = UnknownDetector(unknown_decision(train.X[keep], ytr[keep], labels, groups=groups, method=method))
        scores = np.array([d.score(row[None]) for row in test.X])
        figures[method] = auroc(scores[~np.isin(yte, held)], scores[np.isin(yte, held)])
    assert figures["mahalanobis-pca"] > figures["mahalanobis"] + 0.03, figures
