"""Evaluation: metrics at window and track level, bootstrap intervals, model selection, results.json."""

import json

import numpy as np
import pytest
from sklearn.metrics import (
    accuracy_score, balanced_accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support,
)

from genrekit._io import write_json_atomic
from genrekit.datasets.splits import Split
from genrekit.datasets.feature_table import FeatureTable
from genrekit.evaluation.metrics import (
    aggregate_tracks, evaluate, model_entry, results_json, select_model, split_summary,
)

LABELS = ["a", "b"]


def table(labels, tracks):
    n = len(labels)
    return FeatureTable(
        X=np.zeros((n, 1)), labels=np.asarray(labels), tracks=np.asarray(tracks),
        rows=np.array([f"{t}.{i}" for i, t in enumerate(tracks)]), feature_names=["f"], source="test",
    )


def hand_case():
    """4 tracks x 2 windows; window-level and track-level answers differ."""
    tracks = ["t1", "t1", "t2", "t2", "t3", "t3", "t4", "t4"]
    truth = ["a", "a", "a", "a", "b", "b", "b", "b"]
    proba = np.array([
        [0.9, 0.1], [0.4, 0.6],    # t1: a, b -> mean (.65, .35): a, right
        [0.3, 0.7], [0.45, 0.55],  # t2: b, b -> b, wrong
        [0.2, 0.8], [0.6, 0.4],    # t3: b, a -> mean (.4, .6): b, right
        [0.1, 0.9], [0.2, 0.8],    # t4: b, b -> b, right
    ])
    return proba, table(truth, tracks)


def test_perfect_predictions():
    labels = ["blues", "jazz", "rock"]
    truth = np.repeat(labels, 6)
    tracks = np.repeat([f"t{i}" for i in range(9)], 2)
    proba = np.eye(3)[np.repeat([0, 1, 2], 6)]
    result = evaluate(proba, table(truth, tracks), labels)
    assert result["n_windows"] == 18 and result["n_tracks"] == 9
    for level, per_class in (("window", 6), ("track", 3)):
        figs = result[level]
        assert figs["accuracy"] == figs["balanced_accuracy"] == figs["macro_f1"] == 1.0
        assert figs["accuracy_ci"] == [1.0, 1.0]
        np.testing.assert_array_equal(figs["confusion"], np.diag([per_class] * 3))
        assert figs["per_genre"]["jazz"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": per_class}


def test_hand_checkable_track_aggregation():
    proba, tab = hand_case()
    result = evaluate(proba, tab, LABELS)
    window, track = result["window"], result["track"]
    assert window["accuracy"] == 0.5
    assert window["confusion"] == [[1, 3], [1, 3]]
    assert window["macro_f1"] == pytest.approx((1 / 3 + 0.6) / 2)
    assert track["accuracy"] == 0.75
    assert track["confusion"] == [[1, 1], [0, 2]]
    assert track["balanced_accuracy"] == 0.75
    assert track["per_genre"]["a"] == pytest.approx({"precision": 1.0, "recall": 0.5, "f1": 2 / 3, "support": 2})
    assert track["macro_f1"] == pytest.approx((2 / 3 + 0.8) / 2)

    ids, track_proba, index = aggregate_tracks(proba, tab.tracks)
    assert list(ids) == ["t1", "t2", "t3", "t4"]
    np.testing.assert_allclose(track_proba[0], [0.65, 0.35])
    np.testing.assert_array_equal(index, [0, 0, 1, 1, 2, 2, 3, 3])


def test_agrees_with_scikit_learn():
    rng = np.random.default_rng(1)
    labels = ["blues", "country", "jazz", "pop", "rock"]
    tracks = np.repeat([f"t{i}" for i in range(60)], 3)
    truth = np.repeat(rng.choice(labels, 60), 3)
    proba = rng.dirichlet(np.ones(5), size=len(truth))
    proba[np.arange(len(truth)), [labels.index(t) for t in truth]] += 0.4  # better than chance
    proba /= proba.sum(axis=1, keepdims=True)
    figs = evaluate(proba, table(truth, tracks), labels, n_bootstrap=50)["window"]
    pred = np.array(labels)[proba.argmax(axis=1)]
    assert figs["accuracy"] == pytest.approx(accuracy_score(truth, pred))
    assert figs["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(truth, pred))
    assert figs["macro_f1"] == pytest.approx(f1_score(truth, pred, average="macro"))
    np.testing.assert_array_equal(figs["confusion"], confusion_matrix(truth, pred, labels=labels))
    p, r, f, s = precision_recall_fscore_support(truth, pred, labels=labels, zero_division=0)
    for i, genre in enumerate(labels):
        assert figs["per_genre"][genre] == pytest.approx({"precision": p[i], "recall": r[i], "f1": f[i], "support": s[i]})


def _noisy(n_tracks, seed=0, windows=2, right=0.7):
    """Predictions right for a fraction of tracks (every window of a track agrees)."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 2, n_tracks)
    pred = np.where(rng.random(n_tracks) < right, truth, 1 - truth)
    proba = np.repeat(np.eye(2)[pred] * 0.6 + 0.2, windows, axis=0)
    tab = table(np.repeat(np.array(LABELS)[truth], windows), np.repeat([f"t{i}" for i in range(n_tracks)], windows))
    return proba, tab


def test_bootstrap_interval_contains_the_estimate_and_narrows_with_more_tracks():
    widths = []
    for n_tracks in (20, 500):
        result = evaluate(*_noisy(n_tracks), LABELS)
        for level in ("window", "track"):
            figs = result[level]
            for key in ("accuracy", "macro_f1"):
                lo, hi = figs[f"{key}_ci"]
                assert lo <= figs[key] <= hi, (n_tracks, level, key)
        lo, hi = result["track"]["accuracy_ci"]
        widths.append(hi - lo)
    assert widths[1] < widths[0] / 2
    assert result["bootstrap"] == {"unit": "track", "resamples": 1000, "confidence": 0.95, "seed": 0}


def test_ece_interval_by_bootstrap_of_tracks_agrees_with_a_plain_resampling_loop():
    from genrekit.evaluation.metrics import ECE_BINS
    from genrekit.models.calibration import ece

    rng = np.random.default_rng(5)  # confidences spread over many bins, hits more likely when confident
    n_tracks, windows = 60, 3
    top = rng.uniform(0.5, 1.0, n_tracks * windows)
    truth_codes = np.repeat(rng.integers(0, 2, n_tracks), windows)
    pred = np.where(rng.random(len(top)) < top - 0.1, truth_codes, 1 - truth_codes)
    proba = np.where(pred[:, None] == np.arange(2), top[:, None], 1 - top[:, None])
    part = table(np.array(LABELS)[truth_codes], np.repeat([f"t{i}" for i in range(n_tracks)], windows))
    figs = evaluate(proba, part, LABELS, n_bootstrap=400, seed=3)["window"]
    assert len(figs["reliability"]) >= 5
    lo, hi = figs["ece_ci"]
    assert 0.0 <= lo < hi <= 1.0 and lo <= figs["ece"] <= hi
    # The vectorised resampling against a loop that resamples tracks and recomputes the ECE.
    truth = np.array([LABELS.index(x) for x in part.labels])
    tracks = np.unique(part.tracks)
    rng = np.random.default_rng(7)
    looped = []
    for _ in range(400):
        drawn = rng.choice(tracks, size=len(tracks))
        rows = np.concatenate([np.flatnonzero(part.tracks == t) for t in drawn])
        looped.append(ece(proba[rows], truth[rows], ECE_BINS))
    assert np.percentile(looped, [2.5, 97.5]) == pytest.approx([lo, hi], abs=0.03)


def test_bootstrap_resamples_tracks_not_windows():
    # the same 20 tracks cut into 10x more windows: more rows but no more evidence
    few = evaluate(*_noisy(20, windows=1), LABELS)["window"]["accuracy_ci"]
    many = evaluate(*_noisy(20, windows=10), LABELS)["window"]["accuracy_ci"]
    assert many == pytest.approx(few)


def test_evaluate_is_deterministic_and_checks_its_inputs():
    proba, tab = _noisy(30)
    assert evaluate(proba, tab, LABELS) == evaluate(proba, tab, LABELS)
    assert evaluate(proba, tab, LABELS, seed=1)["bootstrap"]["seed"] == 1
    with pytest.raises(ValueError, match="shape"):
        evaluate(proba[:, :1], tab, LABELS)
    with pytest.raises(ValueError, match="not among"):
        evaluate(proba, tab, ["a", "c"])


def _entry(valid_acc, test_acc):
    def figs(acc):
        return {"track": {"accuracy": acc}, "window": {"accuracy": acc}}
    return model_entry(valid=None if valid_acc is None else figs(valid_acc), test=figs(test_acc), params={"C": 1})


def test_select_model_uses_validation_only():
    models = {"forest": _entry(0.80, 0.60), "svm-rbf": _entry(0.70, 0.95)}
    assert select_model({"models": models}) == "forest"  # test says svm-rbf; test never chooses
    tie = {"a": model_entry(valid={"track": {"accuracy": 0.8}, "window": {"accuracy": 0.7}}),
           "b": model_entry(valid={"track": {"accuracy": 0.8}, "window": {"accuracy": 0.75}})}
    assert select_model({"models": tie}) == "b"
    with pytest.raises(ValueError, match="validation"):
        select_model({"models": {"forest": _entry(None, 0.6), "svm-rbf": _entry(None, 0.9)}})


def test_results_json(tmp_path):
    proba, tab = hand_case()
    split = Split(train=np.array([0, 1, 2, 3]), valid=np.array([4, 5]), test=np.array([6, 7]),
                  name="random", description="random by track, seed 0", leaky=False)
    info = split_summary(split, tab)
    assert info["sizes"] == {"train": {"windows": 4, "tracks": 2}, "valid": {"windows": 2, "tracks": 1},
                             "test": {"windows": 2, "tracks": 1}}
    results = results_json(info, {"forest": _entry(0.8, 0.6), "knn": _entry(0.9, float("nan"))})
    assert results["selected"] == "knn" and results["leaky"] is False
    assert results["selected_by"].startswith("valid accuracy")
    assert results["models"]["knn"]["test"]["track"]["accuracy"] is None  # NaN is not JSON

    path = tmp_path / "out" / "results.json"
    write_json_atomic(path, results)
    assert json.loads(path.read_text()) == results
    assert [p.name for p in path.parent.iterdir()] == ["results.json"]

    no_valid = results_json(dict(info, leaky=True), {"forest": _entry(None, 0.6)})
    assert no_valid["selected"] is None and no_valid["leaky"] is True


def test_evaluate_says_which_files_of_an_audio_folder_have_no_label(tmp_path, bundle_dir, capsys):
    """A folder that is not named by a genre gives its files no label: the refusal counts them, not ''."""
    from genrekit.cli import main
    from synthetic_songs import write_song

    data = tmp_path / "data"
    write_song(data / "classical" / "classical.00000.wav", "classical", seconds=4.0)
    write_song(data / "metal" / "metal.00000.wav", "metal", seconds=4.0)
    write_song(data / "ambient" / "song.wav", "classical", seconds=4.0, seed=1)  # no genre in its name
    write_song(data / "ambient" / "other.wav", "metal", seconds=4.0, seed=2)
    code = main(["evaluate", "--model", str(bundle_dir), "--data", str(data), "--cache", str(tmp_path / "cache")])
    err = capsys.readouterr().err
    assert code == 1
    assert err.rstrip().endswith("labels the model does not know: none, for 2 files whose folder names no genre "
                                 "(label them with --labels FILE.csv)"), err
