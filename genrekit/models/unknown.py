"""The "none of these" decision: how far a song lies from what a model knows, and when that is too far.

A song is measured by one row, the mean of its windows' input rows (or, for a CNN, of the log of its
windows' probabilities: ``rows: "log_probabilities"``). A **scorer** turns that row into a number,
larger meaning less like the training songs (:data:`SCORERS`):

- ``"mahalanobis"``: squared Mahalanobis distance to the nearest genre's mean, one covariance shared
  by all genres and shrunk by Ledoit & Wolf (2004) (Lee et al. 2018), in the rows' own units;
- ``"mahalanobis-pca"``: the same after standardising each column on the training songs,
  L2-normalising each row and keeping its first principal components (Müller & Hein 2025: on
  normalised, low-dimensional features the class Gaussians fit far better than in the raw space,
  where ~40 songs per genre leave the covariance mostly shrinkage);
- ``"relative-mahalanobis"``: the ``"mahalanobis-pca"`` distance minus the distance to one Gaussian
  of all training songs (Ren et al. 2021), which discounts directions every genre varies along;
- ``"knn"``: minus the cosine similarity to the ``k``-th nearest training song, after standardising
  and L2-normalising (Sun et al. 2022); the training songs' normalised rows are stored.

The **threshold** is the split-conformal rank of the *out-of-fold* scores of the known training
songs (each measured by a scorer fitted without its fold, grouped by artist where known): the
``ceil((n + 1)(1 - rate))``-th smallest (:func:`conformal_threshold`), so a new known song like them is
wrongly called unknown with probability at most ``rate``. Those ``n`` out-of-fold scores are stored
(``oof_scores``), so the operating point can be moved when classifying
(:meth:`UnknownDetector.assess` with ``rate``), and every song gets an **unknown score**
(:meth:`UnknownDetector.unknown_score`): one minus its conformal p-value, the share of known
training songs that lie nearer than it, in [0, 1). A song is unknown at rate ``r`` exactly when its
unknown score reaches ``1 - r``.

References
----------
K. Lee, K. Lee, H. Lee, J. Shin, "A simple unified framework for detecting out-of-distribution
samples and adversarial attacks", NeurIPS 2018.
J. Ren, S. Fort, J. Liu, A. G. Roy, S. Padhy, B. Lakshminarayanan, "A simple fix to Mahalanobis
distance for improving near-OOD detection", ICML UDL workshop 2021.
D. Hendrycks, M. Mazeika, T. Dietterich, "Deep anomaly detection with outlier exposure", ICLR 2019.
Y. Sun, Y. Ming, X. Zhu, Y. Li, "Out-of-distribution detection with deep nearest neighbors", ICML 2022.
M. Müller, M. Hein, "Mahalanobis++: improving OOD detection via feature normalization", ICML 2025.
O. Ledoit, M. Wolf, "A well-conditioned estimator for large-dimensional covariance matrices", 2004.
V. Vovk, A. Gammerman, G. Shafer, "Algorithmic learning in a random world", Springer 2005.
"""

from __future__ import annotations

import math

import numpy as np

from genrekit.errors import ParameterError

#: Default share of known songs wrongly called unknown.
FALSE_UNKNOWN_RATE = 0.05
#: Folds of the cross-validation that gives the out-of-fold scores.
FOLDS = 5
#: Probabilities are clipped here before taking logs.
EPS = 1e-12
#: What a stored decision measures: ``"features"``, the model's input row (the default when absent);
#: ``"log_probabilities"``, the log of the model's own probabilities (CNN bundles).
UNKNOWN_ROWS = ("features", "log_probabilities")
#: The scorers a bundle can store (see the module's docstring).
SCORERS = ("mahalanobis", "mahalanobis-pca", "relative-mahalanobis", "knn")
#: The scorer new bundles get, chosen by ``scripts/unknown_study.py`` on training data (docs/RESULTS.md).
DEFAULT_SCORER = "mahalanobis"
#: The scorer of a decision fitted with outlier exposure, chosen the same way with exposure songs.
EXPOSURE_SCORER = "mahalanobis"
#: Principal components kept by the ``-pca`` scorers (at most the training songs' rank).
PCA_COMPONENTS = 20
#: Neighbour whose similarity the ``knn`` scorer uses.
KNN_K = 10
#: The fields of a stored decision that :func:`score_rows` reads.
SCORER_FIELDS = ("means", "precision", "background_mean", "background_precision", "k", "reference",
                 "exposure_reference", "exposure_means", "transform")
#: Largest number of stored out-of-fold scores and ``knn`` reference rows a bundle may hold.
MAX_STORED = 100_000


# --- scorers --------------------------------------------------------------------------------------
def distances(rows: np.ndarray, means: np.ndarray, precision: np.ndarray) -> np.ndarray:
    """Squared Mahalanobis distance of each row to the nearest of ``means`` (shape ``(n_rows,)``)."""
    rows = np.atleast_2d(np.asarray(rows, dtype=np.float64))
    diff = rows[:, None, :] - np.asarray(means, dtype=np.float64)[None, :, :]
    return np.einsum("rkf,fg,rkg->rk", diff, np.asarray(precision, dtype=np.float64), diff).min(axis=1)


def indicator(y: np.ndarray, labels) -> np.ndarray:
    """``y`` as a boolean matrix, one row per song, one column per genre of ``labels``: ``y`` itself
    when it is one already (several genres per song), else ``y == label`` per column."""
    y = np.asarray(y)
    if y.ndim == 2:
        return y.astype(bool)
    return y.astype(str)[:, None] == np.asarray([str(v) for v in labels])[None, :]


def class_gaussians(X: np.ndarray, y: np.ndarray, labels) -> tuple[np.ndarray, np.ndarray]:
    """Per-genre means and the shared Ledoit-Wolf precision of ``X`` (rows) with labels ``y``.

    ``y``: each row's genre, or an indicator matrix (:func:`indicator`) for songs of several
    genres: a genre's mean is then over every row carrying it, and a row is centred on the mean
    of its genres' means before the shared covariance is estimated.
    """
    from sklearn.covariance import LedoitWolf

    X = np.asarray(X, dtype=np.float64)
    Y = indicator(y, labels)
    means = np.stack([X[Y[:, j]].mean(axis=0) for j in range(len(labels))])
    carried = Y.sum(axis=1)
    centred = X[carried > 0] - (Y[carried > 0] @ means) / carried[carried > 0, None]
    return means, LedoitWolf().fit(centred).precision_


def _normalise(rows: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(rows, axis=-1, keepdims=True)
    return rows / np.where(norm > 0, norm, 1.0)


def fit_transform(X: np.ndarray, components: int | None) -> dict:
    """The stored ``transform``: standardise each column on ``X``, L2-normalise each row, then (for
    ``components``) project on the first principal components of the normalised training rows."""
    X = np.asarray(X, dtype=np.float64)
    center, scale = X.mean(axis=0), X.std(axis=0)
    scale = np.where(scale > 1e-12, scale, 1.0)  # a constant column stays 0
    out = {"center": center, "scale": scale}
    if components:
        Z = _normalise((X - center) / scale)
        mean = Z.mean(axis=0)
        _, _, vt = np.linalg.svd(Z - mean, full_matrices=False)
        out.update(pca_mean=mean, components=vt[:min(components, len(vt), max(1, len(X) - 1))])
    return out


def apply_transform(rows: np.ndarray, transform: dict | None) -> np.ndarray:
    """``rows`` in the space a scorer measures (``transform``: :func:`fit_transform`'s; ``None``: as they are)."""
    rows = np.atleast_2d(np.asarray(rows, dtype=np.float64))
    if not transform:
        return rows
    Z = _normalise((rows - transform["center"]) / transform["scale"])
    if "components" in transform:
        Z = (Z - transform["pca_mean"]) @ np.asarray(transform["components"]).T
    return Z


def fit_scorer(method: str, X: np.ndarray, y: np.ndarray, labels, *, components: int = PCA_COMPONENTS,
               k: int = KNN_K, exposure: np.ndarray | None = None, exposure_labels=None) -> dict:
    """The parameters of scorer ``method`` fitted on song rows ``X`` with genres ``y`` (labels, or an
    indicator matrix), as arrays; :func:`score_rows` applies them.

    ``exposure``: rows of songs known to lie outside ``labels`` (outlier exposure, Hendrycks et al.
    2019: in an owner's library, the songs whose genres they did not choose), with their own genres
    ``exposure_labels`` (``None``: one group). A song nearer the exposure songs than the known ones
    (by distance to the nearest genre's mean, or similarity to the ``k``-th nearest song) then scores
    higher by that margin; a song nearer the known ones keeps its score, so songs unlike both are
    judged as without exposure.
    """
    if method not in SCORERS:
        raise ParameterError(f"unknown scorer {method!r}; expected one of {', '.join(SCORERS)}")
    X = np.asarray(X, dtype=np.float64)
    exposed = exposure is not None and len(exposure) > 0
    if exposed:
        exposure = np.asarray(exposure, dtype=np.float64)
        exposure_labels = (np.zeros(len(exposure), dtype=str) if exposure_labels is None
                           else np.asarray(exposure_labels).astype(str))
    if method == "mahalanobis":
        means, precision = class_gaussians(X, y, labels)
        fitted = {"method": method, "means": means, "precision": precision}
        if exposed:
            groups = sorted(set(exposure_labels.tolist()))
            fitted["exposure_means"] = np.stack([exposure[exposure_labels == e].mean(axis=0) for e in groups])
        return fitted
    if method == "knn":
        transform = fit_transform(X, None)
        fitted = {"method": method, "transform": transform, "k": int(k), "reference": apply_transform(X, transform)}
        if exposed:
            fitted["exposure_reference"] = apply_transform(exposure, transform)
        return fitted
    from sklearn.covariance import LedoitWolf

    transform = fit_transform(X, components)
    Z = apply_transform(X, transform)
    means, precision = class_gaussians(Z, y, labels)
    fitted = {"method": method, "transform": transform, "means": means, "precision": precision}
    if method == "relative-mahalanobis":
        fitted.update(background_mean=Z.mean(axis=0), background_precision=LedoitWolf().fit(Z).precision_)
    if exposed:
        E = apply_transform(exposure, transform)
        groups = sorted(set(exposure_labels.tolist()))
        fitted["exposure_means"] = np.stack([E[exposure_labels == e].mean(axis=0) for e in groups])
    return fitted


def _kth_similarity(Z: np.ndarray, reference, k: int) -> np.ndarray:
    reference = np.asarray(reference)
    k = min(int(k), len(reference))
    return np.sort(Z @ reference.T, axis=1)[:, -k]


def score_rows(scorer: dict, rows: np.ndarray) -> np.ndarray:
    """Each song row's score under a fitted ``scorer`` (larger: less like the training songs)."""
    method = scorer["method"]
    Z = apply_transform(rows, scorer.get("transform"))
    if method == "knn":
        near = _kth_similarity(Z, scorer["reference"], scorer["k"])
        score = -near
        if "exposure_reference" in scorer:  # nearer the exposure songs than the known ones: that much more unknown
            score = score + np.maximum(0.0, _kth_similarity(Z, scorer["exposure_reference"], scorer["k"]) - near)
        return score
    known = distances(Z, scorer["means"], scorer["precision"])
    score = known
    if method == "relative-mahalanobis":
        score = score - distances(Z, np.asarray(scorer["background_mean"])[None], scorer["background_precision"])
    if "exposure_means" in scorer:
        score = score + np.maximum(0.0, known - distances(Z, scorer["exposure_means"], scorer["precision"]))
    return score


# --- the threshold ---------------------------------------------------------------------------------
def conformal_threshold(scores: np.ndarray, rate: float) -> float:
    """The ``ceil((n + 1)(1 - rate))``-th smallest of ``n`` known songs' ``scores``.

    Split conformal prediction (Vovk, Gammerman & Shafer 2005; Angelopoulos & Bates 2023): a new
    score exchangeable with these exceeds it with probability at most ``rate``. Below
    ``n = 1/rate - 1`` songs (19 for 5%) that rank lies past the largest score; the largest is
    used, and the bound becomes ``1/(n + 1)``.
    """
    ordered = np.sort(np.asarray(scores, dtype=np.float64))
    if not len(ordered):
        raise ParameterError("no known songs to set a threshold on")
    rank = int(np.ceil((len(ordered) + 1) * (1.0 - rate)))
    return float(ordered[min(rank, len(ordered)) - 1])


def check_rate(rate) -> float:
    """``rate`` as a share of known songs to call unknown, strictly between 0 and 1."""
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not math.isfinite(rate) or not 0 < rate < 1:
        raise ParameterError(f"the false-unknown rate must be a number strictly between 0 and 1, found {rate!r}")
    return float(rate)


# --- what a bundle stores ----------------------------------------------------------------------------
def _stored(value):
    if isinstance(value, np.ndarray):
        return np.round(value, 8).tolist()
    if isinstance(value, dict):
        return {key: _stored(v) for key, v in value.items()}
    return value


def unknown_fields(oof: np.ndarray, scorer: dict, rate: float, how: str, rows: str = "features") -> dict:
    """A bundle's stored ``unknown``: the fitted ``scorer``, the sorted out-of-fold scores ``oof`` of the
    known training songs and the threshold at their conformal rank for ``rate``."""
    oof = np.round(np.sort(np.asarray(oof, dtype=np.float64)), 8)  # the threshold is one of the stored scores
    return {**_stored(scorer), "false_unknown_rate": rate, "threshold": conformal_threshold(oof, rate),
            "oof_scores": oof.tolist(), "fitted_on": how,
            **({"rows": rows} if rows != "features" else {})}


def out_of_fold_scores(method: str, X: np.ndarray, y: np.ndarray, labels, *, groups: np.ndarray | None = None,
                       seed: int = 0, folds: int = FOLDS, **params) -> tuple[np.ndarray, int]:
    """Each song's score under ``method`` fitted without its fold (``folds`` folds grouped by ``groups``;
    ``None``: by song); a genre absent from a fold's training part is left out of that fit.
    Returns the scores and the number of folds used."""
    from sklearn.model_selection import GroupKFold

    X = np.asarray(X, dtype=np.float64)
    Y = indicator(y, labels)
    groups = np.arange(len(X)) if groups is None else np.asarray(groups)
    n_splits = max(2, min(folds, len(set(groups.tolist()))))
    scores = np.zeros(len(X))
    for train, held in GroupKFold(n_splits, shuffle=True, random_state=seed).split(X, groups=groups):
        present = [j for j in range(len(labels)) if Y[train, j].any()]
        fitted = fit_scorer(method, X[train], Y[train][:, present], [labels[j] for j in present], **params)
        scores[held] = score_rows(fitted, X[held])
    return scores, n_splits


def unknown_decision(X: np.ndarray, y: np.ndarray, labels, *, groups: np.ndarray | None = None,
                     grouped_by: str = "track", rate: float = FALSE_UNKNOWN_RATE, seed: int = 0,
                     folds: int = FOLDS, rows: str = "features", songs: str = "training songs",
                     method: str | None = None, **params) -> dict:
    """The stored ``unknown`` of songs' rows ``X`` (one per song) with genres ``y`` (labels, or an
    indicator matrix for several genres per song), without a classifier.

    Parameters
    ----------
    groups : artist (or album) of each song; the out-of-fold scores never mix a group across folds
    rows : one of :data:`UNKNOWN_ROWS`, what ``X`` is, recorded in the bundle
    songs : what the songs are, for the bundle's ``fitted_on`` line
    method : one of :data:`SCORERS`; ``None``: :data:`DEFAULT_SCORER`, or :data:`EXPOSURE_SCORER` when
        exposure songs are given
    params : passed to :func:`fit_scorer` (``components``, ``k``, ``exposure`` rows and ``exposure_labels``:
        the exposure songs serve every fold, being never known songs)
    """
    check_rate(rate)
    if method is None:
        exposed = params.get("exposure") is not None and len(params["exposure"]) > 0
        method = EXPOSURE_SCORER if exposed else DEFAULT_SCORER
    X = np.asarray(X, dtype=np.float64)
    oof, n_splits = out_of_fold_scores(method, X, y, labels, groups=groups, seed=seed, folds=folds, **params)
    scorer = fit_scorer(method, X, y, labels, **params)
    how = f"{n_splits}-fold cross-validation grouped by {grouped_by} on the {len(X)} {songs}"
    if params.get("exposure") is not None and len(params["exposure"]):
        how += f", with {len(params['exposure'])} songs of other genres as outlier exposure"
    return unknown_fields(oof, scorer, rate, how, rows)


class UnknownDetector:
    """A bundle's stored ``unknown`` decision.

    :meth:`assess` gives a song's ``(unknown, unknown_score)`` from its input rows (one per window);
    ``rate`` moves the operating point where the bundle stores its out-of-fold scores.
    """

    def __init__(self, meta: dict) -> None:
        self.meta = meta
        self.method = meta.get("method", "mahalanobis")
        self.threshold = float(meta["threshold"])
        self.rate = float(meta["false_unknown_rate"])
        oof = meta.get("oof_scores")
        self.oof_scores = None if oof is None else np.sort(np.asarray(oof, dtype=np.float64))
        # the stored scorer with its arrays as arrays (check_unknown has checked their shapes)
        self.scorer = {key: self._arrays(value) for key, value in meta.items() if key in SCORER_FIELDS}
        self.scorer["method"] = self.method

    @staticmethod
    def _arrays(value):
        if isinstance(value, dict):
            return {key: np.asarray(v, dtype=np.float64) for key, v in value.items()}
        return np.asarray(value, dtype=np.float64) if isinstance(value, list) else value

    @property
    def movable(self) -> bool:
        """Whether the operating point can be moved (the bundle stores its out-of-fold scores)."""
        return self.oof_scores is not None and len(self.oof_scores) > 0

    def score(self, rows: np.ndarray) -> float:
        """The song's score: its rows' mean (one row per window) under the stored scorer."""
        return float(score_rows(self.scorer, np.asarray(rows, dtype=np.float64).mean(axis=0))[0])

    def unknown_score(self, score: float) -> float | None:
        """One minus the conformal p-value of ``score``: the share of the ``n`` known training songs'
        out-of-fold scores below it, counted as ``1 - (1 + #{≥ score}) / (n + 1)``; ``None`` when the
        bundle stores no out-of-fold scores."""
        if not self.movable:
            return None
        n = len(self.oof_scores)
        at_least = n - int(np.searchsorted(self.oof_scores, score, side="left"))
        return float(1.0 - (1 + at_least) / (n + 1))

    def threshold_at(self, rate: float | None = None) -> float:
        """The threshold for ``rate`` (``None``: the stored one)."""
        if rate is None or rate == self.rate:
            return self.threshold
        if not self.movable:
            raise ParameterError("this model stores no out-of-fold unknown scores, so its false-unknown rate "
                                 f"stays at the {self.rate:g} it was fitted for; retrain it to move it")
        return conformal_threshold(self.oof_scores, check_rate(rate))

    def assess(self, rows: np.ndarray, rate: float | None = None) -> tuple[bool, float | None]:
        """``(unknown, unknown_score)`` of a song's input rows, at ``rate`` (``None``: the stored rate)."""
        score = self.score(rows)
        return bool(score > self.threshold_at(rate)), self.unknown_score(score)

    def is_unknown(self, rows: np.ndarray, rate: float | None = None) -> bool:
        return self.assess(rows, rate)[0]


def log_rows(proba: np.ndarray) -> np.ndarray:
    """The rows a ``"log_probabilities"`` decision measures: the log of each window's probabilities."""
    return np.log(np.clip(np.asarray(proba, dtype=np.float64), EPS, 1.0))


# --- checking a stored decision (bundles come from elsewhere) -------------------------------------------
def _array(value, shape, name):
    try:
        a = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        return None, f"unknown.{name} must be an array of numbers"
    if a.shape != shape or not np.isfinite(a).all():
        return None, f"unknown.{name} must be {' x '.join(map(str, shape))} finite numbers, found shape {a.shape}"
    return a, None


def check_unknown(unknown, n_labels: int, n_features: int, rows: str | None = None) -> str | None:
    """What is wrong with a bundle's ``unknown`` field (``None``: nothing); ``rows``: what it must measure
    (one of :data:`UNKNOWN_ROWS`; ``None``: either). Every array's shape is checked before use, and
    sizes are bounded, so a crafted bundle cannot make scoring fail or allocate without limit."""
    if not isinstance(unknown, dict) or unknown.get("method") not in SCORERS:
        return f"unknown.method must be one of {', '.join(SCORERS)}"
    for key in ("threshold", "false_unknown_rate"):
        v = unknown.get(key)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            return f"unknown.{key} must be a number, found {v!r}"  # scores may be negative (knn, exposure)
    if not 0 < unknown["false_unknown_rate"] < 1:
        return "unknown.false_unknown_rate must lie strictly between 0 and 1"
    space = unknown.get("rows", "features")
    if space not in UNKNOWN_ROWS or (rows is not None and space != rows):
        return f"unknown.rows must be {rows or ' or '.join(UNKNOWN_ROWS)!r} for this bundle, found {space!r}"
    d = n_labels if space == "log_probabilities" else n_features
    oof = unknown.get("oof_scores")
    if oof is not None:
        if not isinstance(oof, list) or not 0 < len(oof) <= MAX_STORED:
            return f"unknown.oof_scores must be a list of 1 to {MAX_STORED} numbers"
        if _array(oof, (len(oof),), "oof_scores")[1]:
            return "unknown.oof_scores must be finite numbers"
    method = unknown["method"]
    space_d = d
    if method != "mahalanobis":
        transform = unknown.get("transform")
        if not isinstance(transform, dict):
            return "unknown.transform must be an object"
        for key in ("center", "scale"):
            problem = _array(transform.get(key), (d,), f"transform.{key}")[1]
            if problem:
                return problem
        if "components" in transform:
            comp = transform["components"]
            m = len(comp) if isinstance(comp, list) else 0
            if not 1 <= m <= d:
                return f"unknown.transform.components must be 1 to {d} rows"
            for key, shape in (("components", (m, d)), ("pca_mean", (d,))):
                problem = _array(transform.get(key), shape, f"transform.{key}")[1]
                if problem:
                    return problem
            space_d = m
        elif method != "knn":
            return f"unknown.transform.components is needed by the {method} scorer"
    if method == "knn":
        k, ref = unknown.get("k"), unknown.get("reference")
        if not isinstance(ref, list) or not 1 <= len(ref) <= MAX_STORED:
            return f"unknown.reference must be 1 to {MAX_STORED} rows"
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= len(ref):
            return f"unknown.k must be a whole number from 1 to {len(ref)}"
        problem = _array(ref, (len(ref), space_d), "reference")[1]
        exp = unknown.get("exposure_reference")
        if problem or exp is None:
            return problem
        if not isinstance(exp, list) or not 1 <= len(exp) <= MAX_STORED:
            return f"unknown.exposure_reference must be 1 to {MAX_STORED} rows"
        return _array(exp, (len(exp), space_d), "exposure_reference")[1]
    for key, shape in (("means", (n_labels, space_d)), ("precision", (space_d, space_d))):
        problem = _array(unknown.get(key), shape, key)[1]
        if problem:
            return problem
    if method == "relative-mahalanobis":
        for key, shape in (("background_mean", (space_d,)), ("background_precision", (space_d, space_d))):
            problem = _array(unknown.get(key), shape, key)[1]
            if problem:
                return problem
    exp = unknown.get("exposure_means")
    if exp is not None:
        if not isinstance(exp, list) or not 1 <= len(exp) <= MAX_STORED:
            return f"unknown.exposure_means must be 1 to {MAX_STORED} rows"
        return _array(exp, (len(exp), space_d), "exposure_means")[1]
    return None
