"""Calibrated probabilities and the "none of these" decision (issue 19).

Real data: the musicnn authors' taggrams of GTZAN's fault-filtered split (shared data);
real files: synthesised songs classified and tagged by the shipped default.
"""

from __future__ import annotations

import json
import subprocess
import sys
import warnings

import numpy as np
import pytest

from genrekit.datasets.tables import load_table
from genrekit.datasets.gtzan import read_artist_index
from genrekit.library.run import classify_library
from genrekit.models.calibration import (apply_calibration, apply_temperature, check_meta, ece, fit_calibration,
                                         fit_calibrator, reliability)
from genrekit.models.unknown import UnknownDetector, conformal_threshold
from genrekit.models.classical import make_model
from genrekit.tagging.formats import read_genres
from genrekit.tagging.plan import UNCERTAIN, TagPlan

from cli_helpers import cli_env
from synthetic_songs import write_song


def test_the_threshold_keeps_its_rate_for_a_small_library():
    """30 known songs set the threshold; a new known song like them must exceed it at most 5% of the time.
    A plain 95% quantile of 30 scores breaks that promise (about 8%); the conformal rank keeps it."""
    rng = np.random.default_rng(0)
    trials, n = 20000, 30
    scores = rng.gamma(4.0, size=(trials, n + 1))  # distances are positive and skewed
    conformal = np.array([conformal_threshold(row[:n], 0.05) for row in scores])
    quantile = np.quantile(scores[:, :n], 0.95, axis=1)
    assert np.mean(scores[:, n] > conformal) <= 0.05
    assert np.mean(scores[:, n] > quantile) > 0.065
    # fewer songs than 1/rate - 1: the largest distance, and never past it
    assert conformal_threshold(np.arange(1.0, 11.0), 0.05) == 10.0
    assert conformal_threshold(np.arange(1.0, 101.0), 0.05) == 96.0  # ceil(101 x 0.95) = 96th smallest
    with pytest.raises(ValueError):
        conformal_threshold(np.array([]), 0.05)


def test_calibrators_map_out_of_fold_probabilities_closer_to_their_accuracy():
    """Each method, fitted on over-confident probabilities, lowers their ECE and keeps rows summing to 1."""
    rng = np.random.default_rng(1)
    truth = rng.integers(0, 4, 600)
    logits = rng.normal(size=(600, 4)) + 1.5 * np.eye(4)[truth]
    p = np.exp(3 * logits) / np.exp(3 * logits).sum(1, keepdims=True)  # too sharp
    for method in ("temperature", "vector", "platt"):
        cal = fit_calibrator(method, p, truth)
        q = apply_calibration(p, cal)
        assert np.allclose(q.sum(1), 1.0)
        assert ece(q, truth) < ece(p, truth) / 2, method
        assert check_meta(cal, None, 4, 1) is None


def test_temperature_keeps_the_top_genre_and_ece_counts_bins():
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(5), size=200)
    for t in (0.5, 2.0):
        q = apply_temperature(p, t)
        assert np.allclose(q.sum(axis=1), 1.0) and (q.argmax(1) == p.argmax(1)).all()
    truth = p.argmax(1)  # always right: ECE is 1 - mean confidence
    assert ece(p, truth) == pytest.approx(1.0 - p.max(1).mean())
    curve = reliability(p, truth)
    assert sum(b["n"] for b in curve["bins"]) == 200 and len(curve["bins"]) <= 15


def test_genres_left_out_of_training_are_mostly_unknown(shared_data):
    """Two GTZAN genres held out of training: their test songs are mostly called unknown,
    songs of the eight known genres rarely (the threshold is set for 5% on training data)."""
    npz = shared_data / "gtzan/musicnn"
    train = load_table(npz / "training_data_GTZAN_MSDmusicnn_taggram.npz")
    test = load_table(npz / "evaluation_data_GTZAN_MSDmusicnn_taggram.npz")
    artists = read_artist_index(shared_data / "gtzan/GTZANindex.txt")
    left_out = ("blues", "metal")
    keep = ~np.isin(train.labels, left_out)
    labels = sorted(set(train.labels[keep]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fields = fit_calibration(make_model("logreg", random_state=0, C=0.05), train.X[keep], train.labels[keep],
                                 labels, groups=np.array([artists[t] for t in train.tracks[keep]]),
                                 grouped_by="artist")
    detector = UnknownDetector(fields["unknown"])
    flagged = np.array([detector.is_unknown(row[None]) for row in test.X])
    outside = np.isin(test.labels, left_out)
    assert flagged[outside].mean() > 0.6, flagged[outside].mean()
    assert flagged[~outside].mean() < 0.15, flagged[~outside].mean()


def test_default_model_is_calibrated_on_the_fault_filtered_test(shared_data, tmp_path):
    """`genrekit evaluate` of the shipped default on the 290 test taggrams: accuracy unchanged (82.8%)
    and ECE below the uncalibrated 0.169. The calibration was chosen on training data only and the
    test scored once, giving 0.060 per track: above the issue's 0.05, so 0.05 is not asserted."""
    out = tmp_path / "figures.json"
    proc = subprocess.run([sys.executable, "-m", "genrekit", "evaluate", "--model", "gtzan-musicnn", "--data",
                           str(shared_data / "gtzan/musicnn/evaluation_data_GTZAN_MSDmusicnn_taggram.npz"),
                           "--out", str(out)], capture_output=True, text=True, env=cli_env(), timeout=300)
    assert proc.returncode == 0, proc.stderr
    figures = json.loads(out.read_text())
    assert figures["n_tracks"] == 290
    for level in ("track", "window"):
        assert figures[level]["accuracy"] >= 0.8275
        assert figures[level]["ece"] < 0.169
        assert figures[level]["reliability"]


def test_write_tags_skips_unknown_songs(tmp_path):
    """A synthetic 'metal' noise burst is nothing the default model knows: it is listed, not tagged."""
    song = write_song(tmp_path / "noise.flac", "metal", seconds=31.0, seed=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the "unknown" note also comes as a warning
        results, _ = classify_library([song], tagger=TagPlan(), progress=False)
    (result,) = results
    assert result.prediction.unknown is True
    assert result.tag.status == UNCERTAIN and "unknown" in result.tag.reason
    assert read_genres(song) == []


def test_classify_in_python_says_unknown_on_the_result_not_only_in_a_warning(tmp_path):
    from genrekit import classify

    song = write_song(tmp_path / "noise.flac", "metal", seconds=31.0, seed=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ranked = classify(song)
        known = classify(write_song(tmp_path / "tone.flac", "classical", seconds=31.0, seed=2), model=None)
    assert ranked.unknown is True and any("unknown" in n for n in ranked.notes)
    assert known.unknown in (True, False) and isinstance(known, list)
    assert ranked == [dict(r) for r in ranked]  # still the plain list of {"label", "score"}


def test_the_unknown_note_names_the_closest_genre_as_the_table_does(tmp_path):
    """Issue 29 item 7: "unknown (closest: Metal)" in the table and "(closest: Metal)" in its note, not "metal"."""
    import re

    song = write_song(tmp_path / "noise.flac", "metal", seconds=31.0, seed=2)
    proc = subprocess.run([sys.executable, "-m", "genrekit", "classify", str(song)], capture_output=True, text=True,
                          env=cli_env(), timeout=600)
    assert proc.returncode == 0, proc.stderr
    (shown,) = re.findall(r"unknown \(closest: ([^)]+)\)", proc.stdout)
    # the note may go on with the song's unknown score: "(closest: Metal; unknown score 0.98)"
    (noted,) = re.findall(r"note: unknown: fits none of the model's genres well \(closest: ([^;)]+)[;)]", proc.stdout)
    assert noted == shown and shown[0].isupper(), proc.stdout
