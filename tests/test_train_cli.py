"""`genrekit train`, `evaluate` and `cluster` end to end, on the real shared tables and on tables the tests write."""

import csv
import json

import numpy as np
import pytest

from genrekit.cli import main
from genrekit.datasets.tables import load_table
from genrekit.features.gtzan57 import COLUMNS
from genrekit.models.bundle import load_bundle


@pytest.fixture(scope="module")
def gtzan(shared_data):
    g = shared_data / "gtzan"
    return {"table": g / "features_30_sec.csv", "index": g / "GTZANindex.txt",
            "split_dir": g / "splits/fault_filtered", "marsyas": g / "marsyas/genres_mfcc.arff"}


@pytest.fixture(scope="module")
def ff_run(gtzan, tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "ff"
    code = main(["train", "--data", str(gtzan["table"]), "--model", "logreg,knn", "--split", "fault-filtered",
                 "--split-dir", str(gtzan["split_dir"]), "--out", str(out)])
    assert code == 0
    return out


def test_fault_filtered_run_selects_on_valid_and_reports_both_sides(ff_run):
    results = json.loads((ff_run / "results.json").read_text())
    assert results["split"]["sizes"]["train"]["tracks"] == 443
    assert results["split"]["sizes"]["valid"]["tracks"] == 197
    assert results["split"]["sizes"]["test"]["tracks"] == 290
    assert results["leaky"] is False
    models = results["models"]
    valid_acc = {m: models[m]["valid"]["track"]["accuracy"] for m in models}
    assert results["selected"] == max(valid_acc, key=valid_acc.get)
    for m in ("logreg", "knn"):
        test = models[m]["test"]
        assert test["n_tracks"] == 290
        low, high = test["track"]["accuracy_ci"]
        assert low <= test["track"]["accuracy"] <= high
        assert 0.3 < test["track"]["accuracy"] < 0.8  # ten genres: far above chance, far below perfect
        assert len(test["track"]["confusion"]) == 10
        assert set(test["track"]["per_genre"]) == set(test["labels"])


def test_bundles_of_the_run_load_and_reproduce_the_test_figure(ff_run, gtzan, tmp_path, capsys):
    results = json.loads((ff_run / "results.json").read_text())
    bundle = load_bundle(ff_run / "logreg")
    assert bundle.feature_set.name == "gtzan57" and bundle.window == 30.0
    assert bundle.card["split"] and "fault" in bundle.card["split"].lower()
    out = tmp_path / "eval.json"
    code = main(["evaluate", "--model", str(ff_run / "logreg"), "--data", str(gtzan["table"]), "--side", "test",
                 "--split", "fault-filtered", "--split-dir", str(gtzan["split_dir"]), "--out", str(out)])
    assert code == 0
    figures = json.loads(out.read_text())
    assert figures["n_tracks"] == 290
    # onnxruntime (float32) and scikit-learn (float64) may differ on a near-tie, not more.
    assert figures["track"]["accuracy"] == pytest.approx(results["models"]["logreg"]["test"]["track"]["accuracy"],
                                                         abs=2 / 290)


def test_rerun_keeps_finished_models(ff_run, gtzan, capsys):
    before = json.loads((ff_run / "results.json").read_text())
    code = main(["train", "--data", str(gtzan["table"]), "--model", "logreg,knn", "--split", "fault-filtered",
                 "--split-dir", str(gtzan["split_dir"]), "--out", str(ff_run)])
    assert code == 0
    assert capsys.readouterr().err.count("done in an earlier run") == 2
    after = json.loads((ff_run / "results.json").read_text())
    assert after["models"] == before["models"]


def test_artist_kfold_keeps_artists_apart_and_pools_all_tracks(gtzan, tmp_path):
    out = tmp_path / "kfold"
    assert main(["train", "--data", str(gtzan["table"]), "--model", "logreg", "--split", "kfold", "--folds", "5",
                 "--artists", str(gtzan["index"]), "--out", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())
    cv = results["models"]["logreg"]["cv"]
    assert cv["folds"] == 5 and len(cv["fold_track_accuracy"]) == 5
    assert cv["pooled"]["n_tracks"] == 1000
    assert results["selected"] is None  # no validation set: nothing is chosen
    assert not (out / "logreg" / "bundle.json").exists()
    # Artist-grouped CV is harder than a random split of tracks (shared artists leak into random splits).
    rand = tmp_path / "rand"
    assert main(["train", "--data", str(gtzan["table"]), "--model", "logreg", "--split", "random",
                 "--out", str(rand)]) == 0
    random_acc = json.loads((rand / "results.json").read_text())["models"]["logreg"]["test"]["track"]["accuracy"]
    assert cv["mean_track_accuracy"] < random_acc


def _write_3s_table(path, n_tracks=30, windows=12, seed=0):
    """A Kaggle 3-s style table whose windows carry a strong per-track signature."""
    rng = np.random.default_rng(seed)
    genres = ["blues", "rock", "jazz"]
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["filename", "length", *COLUMNS, "label"])
        for t in range(n_tracks):
            genre = genres[t % 3]
            track_sig = rng.normal(0, 3, len(COLUMNS))  # what a leaky split can memorise
            genre_sig = np.zeros(len(COLUMNS))
            genre_sig[genres.index(genre)] = 0.8
            for k in range(windows):
                row = track_sig + genre_sig + rng.normal(0, 0.3, len(COLUMNS))
                w.writerow([f"{genre}.{t:05d}.{k}.wav", 66149, *row, genre])


def test_random_rows_is_flagged_as_leaky_and_ships_no_bundle(tmp_path, capsys):
    table = tmp_path / "three.csv"
    _write_3s_table(table)
    out = tmp_path / "leaky"
    assert main(["train", "--data", str(table), "--model", "knn", "--split", "random-rows", "--out", str(out)]) == 0
    assert "WARNING" in capsys.readouterr().err
    results = json.loads((out / "results.json").read_text())
    assert results["leaky"] is True and "leak" in results["warning"]
    assert not (out / "knn" / "bundle.json").exists()
    # The same data split by track: windows stay together, so no memorised track signature helps.
    honest = tmp_path / "honest"
    assert main(["train", "--data", str(table), "--model", "knn", "--split", "random", "--out", str(honest)]) == 0
    by_track = json.loads((honest / "results.json").read_text())
    assert by_track["leaky"] is False
    leaky_acc = results["models"]["knn"]["test"]["window"]["accuracy"]
    honest_acc = by_track["models"]["knn"]["test"]["window"]["accuracy"]
    assert leaky_acc > honest_acc + 0.2


def test_marsyas_table_trains_without_a_bundle(gtzan, tmp_path):
    out = tmp_path / "marsyas"
    assert main(["train", "--data", str(gtzan["marsyas"]), "--model", "logreg", "--split", "fault-filtered",
                 "--split-dir", str(gtzan["split_dir"]), "--out", str(out)]) == 0
    entry = json.loads((out / "results.json").read_text())["models"]["logreg"]
    assert entry["test"]["n_tracks"] == 290
    assert entry["bundle"] is None and "feature set" in entry["no_bundle_because"]


def test_cluster_reports_agreement_and_writes_coordinates(gtzan, tmp_path, capsys):
    out, table_out = tmp_path / "clusters.json", tmp_path / "clusters.csv"
    assert main(["cluster", "--features", str(gtzan["table"]), "--out", str(out), "--table-out", str(table_out)]) == 0
    printed = capsys.readouterr().out
    result = json.loads(out.read_text())
    assert result["k"] == 10 and result["n_rows"] == 1000 and len(result["pca"]["points"]) == 1000
    assert 0 < result["ari"] < 1 and 0 < result["nmi"] < 1 and 0.1 < result["purity"] <= 1
    assert f"ARI {result['ari']:.3f}" in printed
    counts = np.array(result["table"]["counts"])
    assert counts.sum() == 1000 and counts.shape == (10, 10)
    assert np.isclose(counts.max(axis=1).sum() / 1000, result["purity"])
    lines = table_out.read_text().splitlines()
    assert lines[0].startswith("cluster,") and len(lines) == 11


def test_train_refuses_unknown_models_and_bad_tables(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["train", "--data", "x.csv", "--model", "resnet", "--out", str(tmp_path / "r")])
    bad = tmp_path / "bad.csv"
    bad.write_text("filename,length,a,label\nx.00000.wav,1,not-a-number,blues\n")
    assert main(["train", "--data", str(bad), "--model", "logreg", "--out", str(tmp_path / "r")]) == 1
    assert "bad.csv" in capsys.readouterr().err


def test_table_loaded_for_training_matches_the_csv(gtzan):
    table = load_table(gtzan["table"])
    assert table.X.shape == (1000, 57) and table.feature_names == list(COLUMNS)
