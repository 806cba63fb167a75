"""Model bundles: faithful ONNX round trips, strict loading, and no code run from a bundle."""

import hashlib
import json
import os
import pickle

import numpy as np
import pytest
from sklearn.datasets import make_classification

from genrekit.features.sets import feature_set
from genrekit.features.gtzan57 import COLUMNS
from genrekit.models.bundle import load_bundle
from genrekit.errors import BundleError
from genrekit.models.bundle_save import save_bundle
from genrekit.models.classical import MODEL_NAMES, fit_model

GENRES = np.array(["blues", "classical", "jazz", "metal"])
FAST = {"forest": {"n_estimators": 30}, "gboost": {"n_estimators": 30}}
FEATURES = list(COLUMNS[:8])


def synthetic(n_tracks=60, windows=3, seed=0):
    centres, codes = make_classification(
        n_samples=n_tracks, n_features=len(FEATURES), n_informative=6, n_redundant=0,
        n_classes=len(GENRES), class_sep=2.0, random_state=seed,
    )
    rng = np.random.default_rng(seed)
    X = np.repeat(centres, windows, axis=0) + 0.3 * rng.standard_normal((n_tracks * windows, len(FEATURES)))
    # GTZAN-like magnitudes: trees must cope with features far from unit scale
    X = X * np.geomspace(1e-3, 1e3, len(FEATURES))
    tracks = np.repeat([f"t{i:03d}" for i in range(n_tracks)], windows)
    return X, np.repeat(GENRES[codes], windows), tracks


def save(directory, pipe, **overrides):
    kw = dict(
        labels=list(pipe.classes_), feature_set=feature_set("gtzan57", window=3.0), feature_names=FEATURES,
        window=3.0, hop=1.5,
        metrics={"test": {"n_tracks": 10, "n_windows": 30,
                          "track": {"accuracy": 0.9, "accuracy_ci": [0.7, 1.0], "macro_f1": 0.88}}},
        card={"model": "logreg", "params": {"C": 1.0}, "data": "synthetic", "split": "random by track",
              "command": "genrekit train ...",
              "figures": {"valid": {"track_accuracy": 0.8, "n_tracks": 20}, "confusion": "confusion.png"}},
    )
    kw.update(overrides)
    return save_bundle(directory, pipe, **kw)


@pytest.fixture(scope="module")
def data():
    return synthetic()


@pytest.fixture(scope="module")
def logreg(data):
    X, y, tracks = data
    return fit_model("logreg", X[:120], y[:120], groups=tracks[:120])[0]


@pytest.fixture()
def bundle_dir(tmp_path, logreg):
    save(tmp_path / "model", logreg)
    return tmp_path / "model"


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_every_model_round_trips(tmp_path, data, name):
    X, y, tracks = data
    pipe, info = fit_model(name, X[:120], y[:120], groups=tracks[:120], params=FAST.get(name))
    saved = save(tmp_path / name, pipe, card={"model": name, "params": info["params"]})
    loaded = load_bundle(tmp_path / name)
    held_out = X[120:]
    got = loaded.predict_proba(held_out)
    assert got.dtype == np.float64 and got.shape == (len(held_out), len(GENRES))
    np.testing.assert_allclose(got, pipe.predict_proba(held_out), atol=1e-4)
    np.testing.assert_allclose(got.sum(axis=1), 1.0, atol=1e-12)
    assert loaded is saved  # save_bundle returns the loaded (cached) bundle
    assert loaded.labels == list(GENRES) and loaded.card["model"] == name


def test_bundle_contents(bundle_dir):
    meta = json.loads((bundle_dir / "bundle.json").read_text())
    assert meta["format"] == "genrekit-bundle" and meta["format_version"] == 1 and meta["kind"] == "classical"
    assert meta["input"] == {"name": "features", "features": FEATURES, "dtype": "float32", "shape": [None, 8]}
    assert meta["feature_set_key"] == feature_set("gtzan57", window=3.0).key
    assert meta["weights"]["sha256"] == hashlib.sha256((bundle_dir / "model.onnx").read_bytes()).hexdigest()
    assert meta["card"]["created"] and meta["card"]["genrekit_version"]
    assert sorted(p.name for p in bundle_dir.iterdir()) == ["MODEL_CARD.md", "bundle.json", "model.onnx"]
    card = (bundle_dir / "MODEL_CARD.md").read_text()
    assert "blues, classical, jazz, metal" in card and "0.900 [0.700, 1.000]" in card
    assert "- valid: track_accuracy 0.800, n_tracks 20" in card and "![confusion](confusion.png)" in card
    assert not any(p.name.startswith(".") for p in bundle_dir.parent.iterdir())  # no temp folders left

    b = load_bundle(bundle_dir)
    assert b.window == 3.0 and b.hop == 1.5 and b.feature_set == feature_set("gtzan57", window=3.0)
    assert "logreg" in b.describe() and "test track accuracy 0.900" in b.describe()


def test_figures_by_dataset_are_kept_in_bundle_json_and_tabled_in_the_card(tmp_path, logreg):
    """``metrics["evaluation"]``: one figure per dataset and protocol, as the shipped default stores them
    (scripts/build_broad_model.py) and the cross-dataset table reads them; entries of another shape are
    left out of the card, and a "|" from the file cannot break its table."""
    figure = {"dataset": "emotify", "split": "shared-200", "protocol": "artist-grouped nested 5-fold CV",
              "labels": "classical/pop/rock", "n": 150, "correct": 96, "accuracy": 0.64, "ci": [0.563, 0.713],
              "seen_in_training": False}
    entries = [figure, {"dataset": "gtzan | x", "accuracy": 0.5}, {"dataset": "no figure"}, "not an object"]
    save(tmp_path / "m", logreg, metrics={"evaluation": entries})
    assert json.loads((tmp_path / "m" / "bundle.json").read_text())["metrics"]["evaluation"] == entries
    card = (tmp_path / "m" / "MODEL_CARD.md").read_text()
    assert "## Figures by dataset" in card
    assert ("| emotify | shared-200 | artist-grouped nested 5-fold CV | classical/pop/rock | 96 / 150 | "
            "0.640 [0.563, 0.713] | False |") in card
    assert "| gtzan / x | – | – | – | – / – | 0.500 | – |" in card and "no figure" not in card


def test_loading_twice_returns_the_same_object_until_the_bundle_changes(tmp_path, bundle_dir, logreg):
    first = load_bundle(bundle_dir)
    assert load_bundle(bundle_dir) is first
    assert load_bundle(bundle_dir / "bundle.json") is first
    save(bundle_dir, logreg, hop=0.75)  # overwriting a bundle is allowed
    second = load_bundle(bundle_dir)
    assert second is not first and second.hop == 0.75


def test_dataframe_columns_are_matched_by_name(bundle_dir, data, logreg):
    pd = pytest.importorskip("pandas")
    X = data[0][120:]
    frame = pd.DataFrame(X, columns=FEATURES)[FEATURES[::-1]]  # shuffled column order
    np.testing.assert_allclose(load_bundle(bundle_dir).predict_proba(frame), logreg.predict_proba(X), atol=1e-4)
    with pytest.raises(ValueError, match="shape"):
        load_bundle(bundle_dir).predict_proba(X[:, :5])


# --- security -----------------------------------------------------------------------------
class Payload:
    """Unpickling this creates a marker file: stands for arbitrary code in a hostile bundle."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _set_meta(bundle_dir, **changes):
    path = bundle_dir / "bundle.json"
    meta = json.loads(path.read_text())
    for dotted, value in changes.items():
        node = meta
        *parents, leaf = dotted.split(".")
        for key in parents:
            node = node[key]
        node[leaf] = value
    path.write_text(json.dumps(meta))


def test_pickle_weights_are_refused_without_running(tmp_path, bundle_dir):
    marker = tmp_path / "pwned"
    payload = pickle.dumps(Payload(marker))
    (bundle_dir / "model.onnx").write_bytes(payload)

    with pytest.raises(BundleError, match="does not match the checksum") as err:
        load_bundle(bundle_dir)
    assert "model.onnx" in str(err.value)
    assert not marker.exists()

    # with a matching checksum, it is the ONNX parser that refuses
    _set_meta(bundle_dir, **{"weights.sha256": hashlib.sha256(payload).hexdigest()})
    with pytest.raises(BundleError, match="not a valid ONNX model") as err:
        load_bundle(bundle_dir)
    assert "model.onnx" in str(err.value)
    assert not marker.exists()

    pickle.loads(payload)  # control: the payload is live, so its absence above means something
    assert marker.exists()


def test_weights_outside_the_folder_are_refused(tmp_path, bundle_dir):
    weights = (bundle_dir / "model.onnx").read_bytes()
    (tmp_path / "x.onnx").write_bytes(weights)  # a valid model with the right checksum, outside
    for name in ("../x.onnx", str(tmp_path / "x.onnx"), "..", ""):
        _set_meta(bundle_dir, **{"weights.file": name})
        with pytest.raises(BundleError, match="plain file name") as err:
            load_bundle(bundle_dir)
        assert "bundle.json" in str(err.value)

    os.symlink(tmp_path / "x.onnx", bundle_dir / "link.onnx")
    _set_meta(bundle_dir, **{"weights.file": "link.onnx"})
    with pytest.raises(BundleError, match="link"):
        load_bundle(bundle_dir)


def test_external_data_is_not_followed(tmp_path, bundle_dir):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    secret = tmp_path / "secret.bin"
    np.ones(8 * 4, np.float32).tofile(secret)
    weight = numpy_helper.from_array(np.ones((8, 4), np.float32), "W")
    weight.ClearField("raw_data")
    weight.data_location = TensorProto.EXTERNAL
    for key, value in (("location", str(secret)), ("offset", "0"), ("length", "128")):
        entry = weight.external_data.add()
        entry.key, entry.value = key, value
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["features", "W"], ["logits"]), helper.make_node("Softmax", ["logits"], ["probabilities"])],
        "g", [helper.make_tensor_value_info("features", TensorProto.FLOAT, [None, 8])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [None, 4])], [weight],
    )
    data = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8).SerializeToString()
    (bundle_dir / "model.onnx").write_bytes(data)
    _set_meta(bundle_dir, **{"weights.sha256": hashlib.sha256(data).hexdigest()})
    with pytest.raises(BundleError, match="not a valid ONNX model"):
        load_bundle(bundle_dir)


def test_malformed_json_is_refused_with_the_file_named(bundle_dir):
    (bundle_dir / "bundle.json").write_text('{"format": "genrekit-bundle", ')
    with pytest.raises(BundleError, match="malformed JSON") as err:
        load_bundle(bundle_dir)
    assert err.value.path == str(bundle_dir / "bundle.json")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"format": "something-else"}, "not a genrekit model bundle"),
        ({"format_version": 2}, "newer genrekit"),
        ({"format_version": "1"}, "must be an integer"),
        ({"kind": "pickle"}, "unknown kind"),
        ({"labels": ["blues", "blues", "jazz", "metal"]}, "duplicates"),
        ({"labels": "blues"}, "labels must be"),
        ({"labels": ["blues", "jazz"]}, "does not match 2 labels"),
        ({"feature_set": {"name": "nope"}}, "invalid feature_set"),
        ({"feature_set_key": "0000000000000000"}, "feature_set_key"),
        ({"input.dtype": "float64"}, "input.dtype"),
        ({"input.features": ["mystery"] * 8}, "not produced by feature set"),
        ({"window": -3}, "window must be"),
        ({"window": 30.0}, "differs from the feature set"),
        ({"aggregate": "max"}, "aggregate"),
        ({"weights.sha256": "abc"}, "64 lower-case hex"),
        ({"metrics": []}, "metrics must be an object"),
    ],
)
def test_invalid_fields_are_refused(bundle_dir, changes, message):
    _set_meta(bundle_dir, **changes)
    with pytest.raises(BundleError, match=message):
        load_bundle(bundle_dir)


def test_missing_pieces(tmp_path, bundle_dir):
    with pytest.raises(BundleError, match="no such bundle folder"):
        load_bundle(tmp_path / "absent")
    (bundle_dir / "model.onnx").unlink()
    with pytest.raises(BundleError, match="weights file missing"):
        load_bundle(bundle_dir)
    (bundle_dir / "bundle.json").unlink()
    with pytest.raises(BundleError, match="missing: not a genrekit model bundle"):
        load_bundle(bundle_dir)


def test_save_refuses_to_overwrite_other_folders_or_mislabel(tmp_path, logreg):
    other = tmp_path / "photos"
    other.mkdir()
    (other / "holiday.jpg").write_bytes(b"\xff\xd8")
    with pytest.raises(BundleError, match="not a genrekit bundle"):
        save(other, logreg)
    assert sorted(p.name for p in other.iterdir()) == ["holiday.jpg"]

    with pytest.raises(ValueError, match="classes_"):
        save(tmp_path / "m", logreg, labels=["metal", "jazz", "classical", "blues"])
    with pytest.raises(ValueError, match="feature names"):
        save(tmp_path / "m", logreg, feature_names=FEATURES[:3])
    assert not (tmp_path / "m").exists()


def test_unfaithful_conversions_are_refused_before_writing(tmp_path, data):
    # skl2onnx ignores k-NN distance weighting; the check on probe rows must notice
    X, y, tracks = data
    pipe, _ = fit_model("knn", X[:120], y[:120], params={"weights": "distance"})
    with pytest.raises(ValueError, match="disagrees with scikit-learn"):
        save(tmp_path / "knn", pipe)
    assert not (tmp_path / "knn").exists()


def test_shipped_figures_by_dataset_carry_n_and_an_interval_around_the_figure():
    """The contract the cross-dataset table reads from a shipped bundle's ``metrics["evaluation"]``
    (broad-musicnn's, scripts/build_broad_model.py): every figure names its data and protocol, counts
    its songs, and its 95% interval holds it."""
    from genrekit.models.registry import SHIPPED_MODELS, shipped_models

    found = 0
    for name in shipped_models():
        for e in json.loads((SHIPPED_MODELS / name / "bundle.json").read_text())["metrics"].get("evaluation", []):
            found += 1
            assert {"dataset", "split", "protocol", "labels", "n", "correct", "accuracy", "ci",
                    "seen_in_training"} <= set(e), (name, e)
            assert e["n"] > 0 and e["accuracy"] == pytest.approx(e["correct"] / e["n"])
            assert e["ci"][0] <= e["accuracy"] <= e["ci"][1] and isinstance(e["seen_in_training"], bool)
    labels = json.loads((SHIPPED_MODELS / "broad-musicnn" / "bundle.json").read_text())["labels"]
    assert found >= 8 and "electronic" in labels and len(labels) == 11
