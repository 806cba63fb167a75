"""Classical (scikit-learn) genre classifiers on feature tables.

Every model is a :class:`~sklearn.pipeline.Pipeline` ending in a step named ``"clf"``
that has ``predict_proba``; scale-sensitive models start with a
:class:`~sklearn.preprocessing.StandardScaler` step named ``"scale"``. All of them
convert to ONNX through skl2onnx (see :mod:`genrekit.models.bundle`), which is why the
choices below stay inside what skl2onnx converts faithfully:

- ``gboost`` is :class:`~sklearn.ensemble.GradientBoostingClassifier`; the
  histogram variant does not convert here.
- SVMs get probabilities from :class:`~sklearn.calibration.CalibratedClassifierCV`
  (Platt scaling on out-of-fold decision values) rather than the deprecated
  ``SVC(probability=True)``, whose internal 5-fold split cannot be told about tracks.
  ``ensemble=True`` because scikit-learn 1.9's ``ensemble=False`` path does not pass
  ``groups`` on to its splitter, so its calibration folds would split tracks.
- ``knn`` searches only uniform weights: skl2onnx's distance-weighted k-NN gives
  probabilities that differ from scikit-learn's.

Hyper-parameter search (:func:`fit_model` with ``search=True``) runs
:class:`~sklearn.model_selection.RandomizedSearchCV` inside the training data only, with
folds grouped by track (or artist), so the windows of one track never straddle folds.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import sklearn
from scipy.stats import loguniform, randint, uniform
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import RandomizedSearchCV, StratifiedGroupKFold, StratifiedKFold
from sklearn.neighbors import KNeighborsClassifier
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import PowerTransformer, StandardScaler
from sklearn.svm import SVC, LinearSVC
from sklearn.tree import DecisionTreeClassifier

from genrekit._io import jsonable
from genrekit.errors import ParameterError

MODEL_NAMES = ("logreg", "knn", "tree", "forest", "svm-linear", "svm-poly", "svm-rbf", "mlp", "gboost")

#: Folds of the SVMs' probability calibration. Three rather than scikit-learn's five:
#: each fold fits a full SVM, and three already give every window an out-of-fold score.
CALIBRATION_FOLDS = 3


def _check_name(name: str) -> None:
    if name not in MODEL_NAMES:
        raise ParameterError(f"unknown model {name!r}; expected one of {', '.join(MODEL_NAMES)}")


def _classifier(name: str, random_state: int):
    if name == "logreg":
        return LogisticRegression(C=1.0, max_iter=2000, random_state=random_state)
    if name == "knn":
        return KNeighborsClassifier(n_neighbors=10)
    if name == "tree":
        return DecisionTreeClassifier(random_state=random_state)
    if name == "forest":
        return RandomForestClassifier(n_estimators=200, random_state=random_state)
    if name == "gboost":
        return GradientBoostingClassifier(random_state=random_state)
    if name == "mlp":
        # No early stopping: its validation split is random, so it would mix a track's windows.
        return MLPClassifier(hidden_layer_sizes=(128,), max_iter=500, random_state=random_state)
    if name == "svm-linear":
        svm = LinearSVC(C=1.0, max_iter=10000, random_state=random_state)
    elif name == "svm-poly":
        # coef0=1: the inhomogeneous kernel keeps the lower-degree terms that coef0=0 drops.
        svm = SVC(kernel="poly", degree=3, coef0=1.0, C=1.0, random_state=random_state)
    else:
        svm = SVC(kernel="rbf", C=1.0, gamma="scale", random_state=random_state)
    return CalibratedClassifierCV(svm, cv=CALIBRATION_FOLDS, ensemble=True)


#: Scalers a pipeline may start with: "power" is Yeo-Johnson (Yeo & Johnson 2000), which
#: tames the heavy-tailed variance columns of the GTZAN table (+2-3 points of artist-grouped
#: CV accuracy for logreg and SVMs) and still converts to ONNX.
SCALERS = ("standard", "power")


def _scaler(kind):
    if not isinstance(kind, str):  # an estimator, as the search hands it over
        return kind
    if kind == "standard":
        return StandardScaler()
    if kind == "power":
        return PowerTransformer(method="yeo-johnson", standardize=True)
    raise ParameterError(f"unknown scale {kind!r}; expected one of {', '.join(SCALERS)}")


def _scaler_name(step) -> str:
    return "power" if isinstance(step, PowerTransformer) else "standard"


def _param_prefix(name: str) -> str:
    """Pipeline path of the estimator whose hyper-parameters a user means by a short name."""
    return "clf__estimator__" if name.startswith("svm-") else "clf__"


def _full_key(name: str, key: str) -> str:
    return key if "__" in key else _param_prefix(name) + key


def _short_key(name: str, key: str) -> str:
    if key == "scale":
        return key
    prefix = _param_prefix(name)
    return key[len(prefix):] if key.startswith(prefix) else key


def make_model(name: str, random_state: int = 0, **params) -> Pipeline:
    """Build an unfitted pipeline for one of :data:`MODEL_NAMES`.

    Parameters
    ----------
    name : str
        One of :data:`MODEL_NAMES`.
    random_state : int
        Seed of every random choice the model makes.
    **params
        Hyper-parameters of the classifier by their scikit-learn names (``C=10``,
        ``n_neighbors=5``; for SVMs these reach the SVM inside the calibrator), or full
        pipeline paths containing ``__`` (``clf__method="isotonic"``); ``scale`` picks
        the first step of scaled models from :data:`SCALERS` (default ``"standard"``).

    Returns
    -------
    sklearn.pipeline.Pipeline
        Steps ``[("scale", StandardScaler()),] ("clf", classifier)``; the classifier has
        ``predict_proba``.
    """
    _check_name(name)
    params = dict(params)
    scale = params.pop("scale", "standard")
    steps = []
    if name not in ("tree", "forest", "gboost"):  # trees split on thresholds: scale-free
        steps.append(("scale", _scaler(scale)))
    steps.append(("clf", _classifier(name, random_state)))
    pipe = Pipeline(steps)
    if params:
        pipe.set_params(**{_full_key(name, k): v for k, v in params.items()})
    return pipe


def search_space(name: str) -> dict[str, Any]:
    """Parameter distributions for :class:`~sklearn.model_selection.RandomizedSearchCV`.

    Keys are full pipeline paths (``clf__C``), values scipy distributions or lists.
    """
    _check_name(name)
    if name == "logreg":
        space = {"C": loguniform(1e-3, 1e2)}
    elif name == "knn":
        # Uniform weights only: distance weighting does not survive ONNX conversion.
        space = {"n_neighbors": randint(1, 41)}
    elif name == "tree":
        space = {
            "max_depth": [None, 5, 10, 15, 20, 30],
            "min_samples_leaf": randint(1, 21),
            "criterion": ["gini", "entropy"],
        }
    elif name == "forest":
        space = {
            "n_estimators": randint(100, 401),
            "max_depth": [None, 10, 20, 30],
            "max_features": ["sqrt", "log2", 0.5],
            "min_samples_leaf": randint(1, 6),
        }
    elif name == "svm-linear":
        space = {"C": loguniform(1e-3, 1e2)}
    elif name == "svm-poly":
        space = {
            "C": loguniform(1e-2, 1e3),
            "gamma": loguniform(1e-4, 1e0),
            "degree": [2, 3, 4],
            "coef0": [0.0, 1.0],
        }
    elif name == "svm-rbf":
        space = {"C": loguniform(1e-2, 1e3), "gamma": loguniform(1e-4, 1e0)}
    elif name == "mlp":
        space = {
            "hidden_layer_sizes": [(64,), (128,), (256,), (128, 64), (256, 128)],
            "alpha": loguniform(1e-5, 1e-1),
            "learning_rate_init": loguniform(1e-4, 1e-2),
        }
    else:  # gboost
        space = {
            # one tree per class per stage: keep it modest (10 genres x 300 stages = 3000 trees)
            "n_estimators": randint(50, 301),
            "learning_rate": loguniform(1e-2, 3e-1),
            "max_depth": randint(2, 6),
            "subsample": uniform(0.6, 0.4),  # U[0.6, 1.0]
        }
    space = {_full_key(name, k): v for k, v in space.items()}
    if name not in ("tree", "forest", "gboost"):
        space["scale"] = [StandardScaler(), PowerTransformer(method="yeo-johnson", standardize=True)]
    return space


def _cv_splitter(y: np.ndarray, groups: np.ndarray | None, cv, random_state: int):
    """The outer search folds: grouped and stratified where groups are known."""
    if not isinstance(cv, (int, np.integer)):
        return cv  # a splitter object chosen by the caller
    if groups is None:
        return StratifiedKFold(n_splits=int(cv), shuffle=True, random_state=random_state)
    n_groups = len(np.unique(groups))
    if n_groups < 2:
        raise ParameterError(f"grouped cross-validation needs at least 2 groups, got {n_groups}")
    return StratifiedGroupKFold(n_splits=min(int(cv), n_groups), shuffle=True, random_state=random_state)


def _is_calibrated(pipe: Pipeline) -> bool:
    return isinstance(pipe.named_steps["clf"], CalibratedClassifierCV)


def fit_model(
    name: str,
    X: np.ndarray,
    y: np.ndarray,
    groups: np.ndarray | None = None,
    search: bool = False,
    n_iter: int = 20,
    cv=5,
    random_state: int = 0,
    n_jobs: int = 1,
    params: dict | None = None,
) -> tuple[Pipeline, dict]:
    """Fit one model on training rows, optionally searching its hyper-parameters.

    Parameters
    ----------
    name : str
        One of :data:`MODEL_NAMES`.
    X : ndarray, shape (n_windows, n_features)
        Training features only: the search never sees validation or test rows.
    y : ndarray of str, shape (n_windows,)
        Genre label of each row.
    groups : ndarray, shape (n_windows,), optional
        Track (or artist) id of each row. When given, search folds and the SVMs'
        calibration folds keep each group whole. Without it, folds are stratified at
        random and the windows of one track may straddle them (optimistic CV scores).
    search : bool
        Run :class:`~sklearn.model_selection.RandomizedSearchCV` over
        :func:`search_space` and refit the best candidate on all of ``X``.
    n_iter : int
        Candidates drawn by the search.
    cv : int or splitter
        Number of search folds (reduced to the number of groups if fewer), or a
        scikit-learn splitter object used as is.
    random_state : int
        Seed of the model, of the candidate draw and of the fold shuffle: equal inputs
        give equal models.
    n_jobs : int
        Parallel jobs of the search.
    params : dict, optional
        Fixed hyper-parameters (as for :func:`make_model`); searched ones override them.

    Returns
    -------
    pipeline : sklearn.pipeline.Pipeline
        Fitted; ``pipeline.classes_`` are the sorted labels.
    info : dict
        JSON-ready: ``model``, ``params`` (short names, enough for
        ``make_model(name, **params)``), ``search`` and, with ``search=True``, ``cv``
        (``splitter``, ``n_splits``, ``grouped``, ``scoring``, ``n_iter``, ``best_score``,
        ``std_score``), plus ``n_train`` and ``n_groups``.
    """
    X = np.asarray(X)
    y = np.asarray(y)
    if X.ndim != 2 or len(X) != len(y):
        raise ParameterError(f"expected X of shape (n, n_features) and y of length n, got {X.shape} and {y.shape}")
    if groups is not None:
        groups = np.asarray(groups)
        if len(groups) != len(y):
            raise ParameterError(f"groups has {len(groups)} entries for {len(y)} rows")
    params = dict(params or {})
    pipe = make_model(name, random_state=random_state, **params)
    fit_kw = {}
    if groups is not None and _is_calibrated(pipe):
        # Calibration folds must not split tracks either; groups reach them via metadata routing.
        pipe.set_params(clf__cv=StratifiedGroupKFold(n_splits=CALIBRATION_FOLDS))
        fit_kw["groups"] = groups
    info: dict[str, Any] = {
        "model": name,
        "search": bool(search),
        "n_train": int(len(y)),
        "n_groups": None if groups is None else int(len(np.unique(groups))),
    }
    with sklearn.config_context(enable_metadata_routing=True):
        if not search:
            pipe.fit(X, y, **fit_kw)
            info["params"] = jsonable({_short_key(name, k): v for k, v in params.items()})
            return pipe, info
        splitter = _cv_splitter(y, groups, cv, random_state)
        searcher = RandomizedSearchCV(
            pipe, search_space(name), n_iter=n_iter, scoring="accuracy", cv=splitter,
            random_state=random_state, n_jobs=n_jobs, refit=True, error_score="raise",
        )
        searcher.fit(X, y, **({} if groups is None else {"groups": groups}))
    best = searcher.best_index_
    found = {_short_key(name, k): v for k, v in searcher.best_params_.items()}
    if "scale" in found:
        found["scale"] = _scaler_name(found["scale"])
    chosen = dict(params, **found)
    info["params"] = jsonable(chosen)
    info["cv"] = jsonable({
        "splitter": type(splitter).__name__,
        "n_splits": searcher.n_splits_,
        "grouped": groups is not None,
        "scoring": "accuracy",
        "n_iter": n_iter,
        "best_score": searcher.best_score_,
        "std_score": searcher.cv_results_["std_test_score"][best],
    })
    return searcher.best_estimator_, info
