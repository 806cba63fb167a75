"""Classical models: every model learns, searches keep tracks whole, results are reproducible."""

import numpy as np
import pytest
from sklearn.calibration import CalibratedClassifierCV
from sklearn.datasets import make_classification
from sklearn.model_selection import StratifiedGroupKFold

from genrekit.models.classical import MODEL_NAMES, fit_model, make_model, search_space

GENRES = np.array(["blues", "classical", "jazz", "metal"])
# small, fixed settings for the slow learners so the whole file stays fast
FAST = {"forest": {"n_estimators": 50}, "gboost": {"n_estimators": 50}}


def synthetic(n_tracks=80, windows=4, n_features=8, seed=0):
    """Tracks of several windows: each window is its track's centre plus noise."""
    centres, codes = make_classification(
        n_samples=n_tracks, n_features=n_features, n_informative=6, n_redundant=0,
        n_classes=len(GENRES), class_sep=2.0, random_state=seed,
    )
    rng = np.random.default_rng(seed)
    X = np.repeat(centres, windows, axis=0) + 0.3 * rng.standard_normal((n_tracks * windows, n_features))
    labels = np.repeat(GENRES[codes], windows)
    tracks = np.repeat([f"{g}.{i:05d}" for i, g in enumerate(GENRES[codes])], windows)
    return X, labels, tracks


def split_by_track(tracks, test_fraction=0.3, seed=0):
    ids = np.unique(tracks)
    test_ids = np.random.default_rng(seed).choice(ids, int(len(ids) * test_fraction), replace=False)
    test = np.isin(tracks, test_ids)
    return ~test, test


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_every_model_learns_well_above_chance(name):
    X, y, tracks = synthetic()
    train, test = split_by_track(tracks)
    pipe, info = fit_model(name, X[train], y[train], groups=tracks[train], params=FAST.get(name))
    proba = pipe.predict_proba(X[test])
    assert proba.shape == (test.sum(), len(GENRES))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-9)
    assert list(pipe.classes_) == sorted(GENRES)
    accuracy = np.mean(pipe.classes_[proba.argmax(axis=1)] == y[test])
    assert accuracy > 0.6, f"{name}: {accuracy:.2f} (chance is 0.25)"
    assert info["model"] == name and info["search"] is False and info["n_groups"] == 56


def test_scaler_only_where_it_matters():
    for name in MODEL_NAMES:
        has_scaler = "scale" in make_model(name).named_steps
        assert has_scaler == (name not in ("tree", "forest", "gboost")), name


class RecordingSplitter(StratifiedGroupKFold):
    """A real grouped splitter that also keeps the groups and folds it produced."""

    def __init__(self, n_splits=3):
        super().__init__(n_splits=n_splits, shuffle=True, random_state=0)
        self.calls = []

    def split(self, X, y=None, groups=None):
        folds = list(super().split(X, y, groups))
        self.calls.append((None if groups is None else np.asarray(groups).copy(), folds))
        return iter(folds)


@pytest.mark.parametrize("name", ["logreg", "svm-rbf"])
def test_search_folds_never_split_a_track(name):
    X, y, tracks = synthetic()
    train, _ = split_by_track(tracks)
    splitter = RecordingSplitter(3)
    pipe, info = fit_model(name, X[train], y[train], groups=tracks[train], search=True, n_iter=3, cv=splitter)
    assert splitter.calls, "the search did not use the splitter"
    for groups, folds in splitter.calls:
        np.testing.assert_array_equal(groups, tracks[train])  # the track ids reached the splitter
        assert len(folds) == 3
        for fit_rows, score_rows in folds:
            assert not set(groups[fit_rows]) & set(groups[score_rows])
    assert set(info["params"]) == {k.split("__")[-1] for k in search_space(name)}
    assert info["cv"]["grouped"] is True and info["cv"]["n_splits"] == 3
    assert 0.5 < info["cv"]["best_score"] <= 1.0
    if name == "svm-rbf":
        # calibration folds are grouped too; a grouped splitter without groups would have raised
        clf = pipe.named_steps["clf"]
        assert isinstance(clf, CalibratedClassifierCV) and isinstance(clf.cv, StratifiedGroupKFold)


@pytest.mark.parametrize(("name", "search"), [("tree", True), ("mlp", False)])
def test_fits_are_deterministic(name, search):
    X, y, tracks = synthetic(n_tracks=40, windows=2)
    runs = [fit_model(name, X, y, groups=tracks, search=search, n_iter=2, cv=2, random_state=7) for _ in range(2)]
    (a, info_a), (b, info_b) = runs
    assert info_a == info_b
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))


def test_search_without_groups_and_with_few_groups():
    X, y, tracks = synthetic(n_tracks=40)
    _, info = fit_model("knn", X, y, search=True, n_iter=2, cv=3)
    assert info["cv"]["grouped"] is False and info["cv"]["splitter"] == "StratifiedKFold"
    with pytest.raises(ValueError, match="at least 2 groups"):
        fit_model("knn", X, y, groups=np.zeros(len(y)), search=True, n_iter=1)


def test_params_reach_the_estimator_and_names_are_checked():
    assert make_model("svm-rbf", C=10.0).get_params()["clf__estimator__C"] == 10.0
    assert make_model("knn", n_neighbors=3).get_params()["clf__n_neighbors"] == 3
    with pytest.raises(ValueError, match="unknown model"):
        make_model("xgboost")


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_search_space_names_real_parameters(name):
    params = make_model(name).get_params()
    space = search_space(name)
    assert space and all(key in params for key in space)
