"""Calibrated probabilities and the "none of these" decision of a classical bundle.

Both are fitted on the training data only, by cross-validation grouped by artist (or by
track when artists are unknown), and stored in ``bundle.json`` beside the untouched
weights:

- ``calibration``: a map of the model's probabilities fitted by minimising the negative
  log-likelihood of out-of-fold probabilities, so a score of 0.8 means right about 80% of
  the time. Three methods (:data:`CALIBRATION_METHODS`): **temperature** scaling (Guo et
  al. 2017), ``p ∝ exp(log p / T)``, one number, never changes the top genre; **vector**
  scaling, ``p ∝ exp(w ⊙ log p + b)``, a weight and a bias per genre; per-genre **platt**
  scaling (Platt 1999), ``q_k = σ(a_k logit p_k + b_k)`` one-vs-rest, renormalised. Which
  one a bundle uses is chosen on training data (see ``scripts/calibrate_shipped.py``).
- ``unknown``: whether a song lies outside what the model knows, from the **Mahalanobis
  distance** of the song's input row (the mean of its windows' rows) to the nearest
  genre's mean, with one shared covariance shrunk by Ledoit & Wolf (2004) (Lee et al.
  2018). The threshold is the split-conformal rank of the out-of-fold distances of the ``n``
  known training songs, the ``ceil((n + 1)(1 - rate))``-th smallest (:func:`conformal_threshold`),
  so a new known song like them is wrongly called unknown with probability at most ``rate``,
  even for a library of a few dozen songs (a plain quantile promises that only for large
  ``n``). On GTZAN's
  taggrams with two genres held out, this distance separates unknown from known songs
  better than the top probability does (see ``docs/RESULTS.md``).

  The same decision serves every kind of bundle (:func:`unknown_decision`): a model of
  several genres per song takes each genre's mean over the songs carrying it (a song of
  two genres counts for both); a CNN, whose input is a spectrogram rather than a table
  row, is measured on its *output*: ``rows`` is then ``"log_probabilities"``, the mean over
  a song's windows of the log of the network's probabilities, fitted on the validation
  songs of its training part (never the test songs).

References
----------
J. Platt, "Probabilistic outputs for support vector machines", 1999.
C. Guo, G. Pleiss, Y. Sun, K. Q. Weinberger, "On calibration of modern neural networks", ICML 2017.
K. Lee, K. Lee, H. Lee, J. Shin, "A simple unified framework for detecting out-of-distribution
samples and adversarial attacks", NeurIPS 2018.
O. Ledoit, M. Wolf, "A well-conditioned estimator for large-dimensional covariance matrices", 2004.
V. Vovk, A. Gammerman, G. Shafer, "Algorithmic learning in a random world", Springer 2005.
A. N. Angelopoulos, S. Bates, "Conformal prediction: a gentle introduction", Foundations and Trends
in Machine Learning 16(4), 2023.
"""

from __future__ import annotations

import math

import numpy as np

from genrekit.errors import ParameterError

#: Default share of known songs wrongly called unknown.
FALSE_UNKNOWN_RATE = 0.05
#: Folds of the cross-validation that fits calibration and the unknown threshold.
FOLDS = 5
#: Probabilities are clipped here before taking logs.
EPS = 1e-12
CALIBRATION_METHODS = ("temperature", "vector", "platt")
UNKNOWN_METHODS = ("mahalanobis",)
#: What a stored ``unknown`` decision measures: ``"features"``, the model's input row (the default
#: when absent); ``"log_probabilities"``, the log of the model's own probabilities (CNN bundles).
UNKNOWN_ROWS = ("features", "log_probabilities")


# --- applying what a bundle stores ----------------------------------------------------------
def apply_temperature(proba: np.ndarray, temperature: float) -> np.ndarray:
    """Rows of ``proba`` (each summing to 1) scaled by ``temperature`` (> 1 softens, < 1 sharpens)."""
    proba = np.asarray(proba, dtype=np.float64)
    if temperature == 1.0 or len(proba) == 0:
        return proba
    logits = np.log(np.clip(proba, EPS, 1.0)) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    scaled = np.exp(logits)
    return scaled / scaled.sum(axis=1, keepdims=True)


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, EPS, 1.0 - 1e-9)
    return np.log(p) - np.log1p(-p)


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def apply_calibration(proba: np.ndarray, calibration: dict | None) -> np.ndarray:
    """Rows of ``proba`` mapped by a bundle's stored ``calibration`` (``None``: unchanged)."""
    proba = np.asarray(proba, dtype=np.float64)
    if not calibration or len(proba) == 0:
        return proba
    method = calibration["method"]
    if method == "temperature":
        return apply_temperature(proba, float(calibration["temperature"]))
    if method == "vector":
        w, b = np.asarray(calibration["weights"], dtype=np.float64), np.asarray(calibration["biases"], dtype=np.float64)
        return _softmax(np.log(np.clip(proba, EPS, 1.0)) * w + b)
    if method == "platt":
        a, b = np.asarray(calibration["slopes"], dtype=np.float64), np.asarray(calibration["intercepts"], dtype=np.float64)
        q = 1.0 / (1.0 + np.exp(-(_logit(proba) * a + b)))
        return q / np.clip(q.sum(axis=1, keepdims=True), EPS, None)
    raise ParameterError(f"unknown calibration method {method!r}")


def distances(rows: np.ndarray, means: np.ndarray, precision: np.ndarray) -> np.ndarray:
    """Squared Mahalanobis distance of each row to the nearest of ``means`` (shape ``(n_rows,)``)."""
    rows = np.atleast_2d(np.asarray(rows, dtype=np.float64))
    diff = rows[:, None, :] - np.asarray(means, dtype=np.float64)[None, :, :]
    return np.einsum("rkf,fg,rkg->rk", diff, np.asarray(precision, dtype=np.float64), diff).min(axis=1)


class UnknownDetector:
    """A bundle's stored ``unknown`` decision: :meth:`is_unknown` of a song's input rows."""

    def __init__(self, meta: dict) -> None:
        self.meta = meta
        self.means = np.asarray(meta["means"], dtype=np.float64)
        self.precision = np.asarray(meta["precision"], dtype=np.float64)
        self.threshold = float(meta["threshold"])
        self.rate = float(meta["false_unknown_rate"])

    def score(self, rows: np.ndarray) -> float:
        """The song's distance: its rows' mean (one row per window) to the nearest genre."""
        return float(distances(np.asarray(rows, dtype=np.float64).mean(axis=0), self.means, self.precision)[0])

    def is_unknown(self, rows: np.ndarray) -> bool:
        return self.score(rows) > self.threshold


def log_rows(proba: np.ndarray) -> np.ndarray:
    """The rows a ``"log_probabilities"`` decision measures: the log of each window's probabilities."""
    return np.log(np.clip(np.asarray(proba, dtype=np.float64), EPS, 1.0))


def check_meta(calibration, unknown, n_labels: int, n_features: int, rows: str | None = None) -> str | None:
    """What is wrong with a bundle's ``calibration`` and ``unknown`` fields (``None``: nothing).

    ``rows``: what the bundle's ``unknown`` must measure (one of :data:`UNKNOWN_ROWS`; ``None``: either).
    A ``"log_probabilities"`` decision has one column per genre, a ``"features"`` one ``n_features``.
    """
    if calibration is not None:
        if not isinstance(calibration, dict) or calibration.get("method") not in CALIBRATION_METHODS:
            return f"calibration.method must be one of {', '.join(CALIBRATION_METHODS)}"
        if calibration["method"] == "temperature":
            t = calibration.get("temperature")
            if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t) or not 0.01 <= t <= 100:
                return f"calibration.temperature must be a number between 0.01 and 100, found {t!r}"
        else:
            keys = ("weights", "biases") if calibration["method"] == "vector" else ("slopes", "intercepts")
            for key in keys:
                try:
                    v = np.asarray(calibration.get(key), dtype=np.float64)
                except (TypeError, ValueError):
                    return f"calibration.{key} must be an array of numbers"
                if v.shape != (n_labels,) or not np.isfinite(v).all():
                    return f"calibration.{key} must be {n_labels} finite numbers, found shape {v.shape}"
    if unknown is not None:
        if not isinstance(unknown, dict) or unknown.get("method") not in UNKNOWN_METHODS:
            return f"unknown.method must be one of {', '.join(UNKNOWN_METHODS)}"
        for key in ("threshold", "false_unknown_rate"):
            v = unknown.get(key)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
                return f"unknown.{key} must be a non-negative number, found {v!r}"
        space = unknown.get("rows", "features")
        if space not in UNKNOWN_ROWS or (rows is not None and space != rows):
            return f"unknown.rows must be {rows or ' or '.join(UNKNOWN_ROWS)!r} for this bundle, found {space!r}"
        if space == "log_probabilities":
            n_features = n_labels
        means, precision = unknown.get("means"), unknown.get("precision")
        try:
            means = np.asarray(means, dtype=np.float64)
            precision = np.asarray(precision, dtype=np.float64)
        except (TypeError, ValueError):
            return "unknown.means and unknown.precision must be arrays of numbers"
        if means.shape != (n_labels, n_features) or precision.shape != (n_features, n_features):
            return (f"unknown.means must be {n_labels} x {n_features} and unknown.precision "
                    f"{n_features} x {n_features}, found {means.shape} and {precision.shape}")
        if not (np.isfinite(means).all() and np.isfinite(precision).all()):
            return "unknown.means and unknown.precision must be finite"
    return None


# --- fitting (training data only) -----------------------------------------------------------
def fit_temperature(proba: np.ndarray, y: np.ndarray) -> float:
    """The temperature minimising the negative log-likelihood of ``proba`` for integer labels ``y``."""
    from scipy.optimize import minimize_scalar

    logp = np.log(np.clip(np.asarray(proba, dtype=np.float64), EPS, 1.0))
    y = np.asarray(y)

    def nll(log_t):
        z = logp / math.exp(log_t)
        z -= z.max(axis=1, keepdims=True)
        return float(-(z[np.arange(len(y)), y] - np.log(np.exp(z).sum(axis=1))).mean())

    return float(math.exp(minimize_scalar(nll, bounds=(math.log(0.05), math.log(20.0)), method="bounded").x))


def _minimise(nll, x0: np.ndarray) -> np.ndarray:
    from scipy.optimize import minimize

    return minimize(nll, x0, method="L-BFGS-B").x


def fit_calibrator(method: str, proba: np.ndarray, y: np.ndarray) -> dict:
    """The stored ``calibration`` of ``method`` fitted to out-of-fold ``proba`` with integer labels ``y``.

    Vector and Platt parameters carry a weak L2 pull (1e-3 per parameter) towards the identity
    map so that a genre with few songs cannot push them to infinity.
    """
    proba = np.asarray(proba, dtype=np.float64)
    y = np.asarray(y)
    n, k = proba.shape
    if method == "temperature":
        return {"method": "temperature", "temperature": round(fit_temperature(proba, y), 6)}
    logp = np.log(np.clip(proba, EPS, 1.0))
    onehot = np.eye(k)[y]
    if method == "vector":
        def nll(theta):
            w, b = theta[:k], theta[k:]
            z = logp * w + b
            z = z - z.max(axis=1, keepdims=True)
            lse = np.log(np.exp(z).sum(axis=1))
            return float(-(z[np.arange(n), y] - lse).mean() + 1e-3 * (((w - 1) ** 2).sum() + (b ** 2).sum()))

        theta = _minimise(nll, np.concatenate([np.ones(k), np.zeros(k)]))
        return {"method": "vector", "weights": np.round(theta[:k], 6).tolist(), "biases": np.round(theta[k:], 6).tolist()}
    if method == "platt":
        lg = _logit(proba)
        slopes, intercepts = [], []
        for c in range(k):
            x, t = lg[:, c], onehot[:, c]

            def nll(theta, x=x, t=t):
                z = theta[0] * x + theta[1]
                return float(np.mean(np.logaddexp(0, z) - t * z) + 1e-3 * ((theta[0] - 1) ** 2 + theta[1] ** 2))

            a, b = _minimise(nll, np.array([1.0, 0.0]))
            slopes.append(round(float(a), 6))
            intercepts.append(round(float(b), 6))
        return {"method": "platt", "slopes": slopes, "intercepts": intercepts}
    raise ParameterError(f"unknown calibration method {method!r}; expected one of {', '.join(CALIBRATION_METHODS)}")


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


def song_means(rows: np.ndarray, song_of_row: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each song's mean row, as a song is measured when classified (the mean of its windows' rows).

    Returns ``(songs, means, first)``: the sorted song ids, their mean rows, and each song's first
    row index (to read per-song values such as its genre or group from the row arrays).
    """
    rows = np.asarray(rows, dtype=np.float64)
    songs, first, inverse = np.unique(np.asarray(song_of_row), return_index=True, return_inverse=True)
    means = np.zeros((len(songs), rows.shape[1]))
    np.add.at(means, inverse, rows)
    return songs, means / np.bincount(inverse)[:, None], first


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


def unknown_fields(dist: np.ndarray, means: np.ndarray, precision: np.ndarray, rate: float, how: str,
                   rows: str = "features") -> dict:
    """A bundle's stored ``unknown``: threshold at the conformal rank (:func:`conformal_threshold`) of
    known songs' out-of-fold distances ``dist``; genres' ``means`` and the shared ``precision`` fitted
    on all of them."""
    return {"method": "mahalanobis", "false_unknown_rate": rate, "threshold": conformal_threshold(dist, rate),
            "fitted_on": how, **({"rows": rows} if rows != "features" else {}),
            "means": np.round(means, 8).tolist(), "precision": np.round(precision, 8).tolist()}


def unknown_decision(X: np.ndarray, y: np.ndarray, labels, *, groups: np.ndarray | None = None,
                     grouped_by: str = "track", rate: float = FALSE_UNKNOWN_RATE, seed: int = 0,
                     folds: int = FOLDS, rows: str = "features", songs: str = "training songs") -> dict:
    """The stored ``unknown`` of songs' rows ``X`` (one per song) with genres ``y`` (labels, or an
    indicator matrix for several genres per song), without a classifier.

    The distances that set the threshold are out-of-fold: ``folds`` folds grouped by ``groups``
    (artist or album; ``None``: by song), each fold's songs measured against the means and
    covariance of the other folds (genres absent there are left out, as in :func:`out_of_fold`).

    Parameters
    ----------
    rows : one of :data:`UNKNOWN_ROWS`, what ``X`` is, recorded in the bundle
    songs : what the songs are, for the bundle's ``fitted_on`` line
    """
    from sklearn.model_selection import GroupKFold

    X = np.asarray(X, dtype=np.float64)
    Y = indicator(y, labels)
    groups = np.arange(len(X)) if groups is None else np.asarray(groups)
    n_splits = max(2, min(folds, len(set(groups.tolist()))))
    dist = np.zeros(len(X))
    for train, held in GroupKFold(n_splits, shuffle=True, random_state=seed).split(X, groups=groups):
        present = [j for j in range(len(labels)) if Y[train, j].any()]
        means, precision = class_gaussians(X[train], Y[train][:, present], [labels[j] for j in present])
        dist[held] = distances(X[held], means, precision)
    means, precision = class_gaussians(X, Y, labels)
    how = f"{n_splits}-fold cross-validation grouped by {grouped_by} on the {len(X)} {songs}"
    return unknown_fields(dist, means, precision, rate, how, rows)


def out_of_fold(model, X: np.ndarray, y: np.ndarray, groups: np.ndarray | None, labels, *, seed: int = 0,
                folds: int = FOLDS) -> tuple[np.ndarray, np.ndarray]:
    """Out-of-fold probabilities (columns in ``labels`` order) and Mahalanobis distances of ``model``'s
    clones fitted on ``folds`` grouped folds of the training rows (groups: artists, else rows)."""
    from sklearn.base import clone
    from sklearn.model_selection import StratifiedGroupKFold

    X = np.asarray(X)
    y = np.asarray(y)
    groups = np.arange(len(y)) if groups is None else np.asarray(groups)
    n_splits = max(2, min(folds, len(set(groups.tolist())), int(np.bincount(np.unique(y, return_inverse=True)[1]).min())))
    proba = np.zeros((len(y), len(labels)))
    dist = np.zeros(len(y))
    for train, held in StratifiedGroupKFold(n_splits, shuffle=True, random_state=seed).split(X, y, groups):
        fitted = clone(model).fit(X[train], y[train])
        cols = [list(fitted.classes_).index(label) if label in fitted.classes_ else None for label in labels]
        p = fitted.predict_proba(X[held])
        proba[held] = np.stack([p[:, c] if c is not None else np.zeros(len(held)) for c in cols], axis=1)
        present = [label for label in labels if np.any(y[train] == label)]
        means, precision = class_gaussians(X[train], y[train], present)
        dist[held] = distances(X[held], means, precision)
    return proba, dist


def fit_calibration(model, X: np.ndarray, y: np.ndarray, labels, *, groups: np.ndarray | None = None,
                    grouped_by: str = "track", rate: float = FALSE_UNKNOWN_RATE, seed: int = 0,
                    method: str = "temperature", song_of_row: np.ndarray | None = None) -> dict:
    """``{"calibration": ..., "unknown": ...}`` for a bundle of ``model`` fitted on rows ``X`` with labels ``y``.

    Parameters
    ----------
    model : scikit-learn classifier (unfitted or fitted; it is cloned per fold)
    X, y : the training rows (one per song) and their genres
    labels : the bundle's genres, in column order
    groups : artist (or album) of each row; ``None`` groups by row
    grouped_by : what ``groups`` are, recorded in the bundle
    rate : share of known songs wrongly called unknown (0 < rate < 1)
    method : one of :data:`CALIBRATION_METHODS`
    song_of_row : the song of each row where songs have several rows (windows): the calibration is
        fitted on rows, as it is applied, and the unknown decision on songs' mean rows
        (:func:`song_means`, :func:`unknown_decision`), as songs are measured when classified
    """
    labels = [str(v) for v in labels]
    y = np.asarray(y).astype(str)
    proba, dist = out_of_fold(model, X, y, groups, labels, seed=seed)
    truth = np.array([labels.index(v) for v in y])
    calibration = fit_calibrator(method, proba, truth)
    means, precision = class_gaussians(X, y, labels)
    if song_of_row is None:
        how = f"{FOLDS}-fold cross-validation grouped by {grouped_by} on the {len(y)} training songs"
    else:  # rows are windows: count the songs, then their windows
        how = (f"{FOLDS}-fold cross-validation grouped by {grouped_by} on the {len(np.unique(song_of_row))} "
               f"training songs ({len(y)} windows)")
    return {
        "calibration": {
            **calibration, "fitted_on": how,
            "oof_ece_before": round(ece(proba, truth), 6),
            "oof_ece_after": round(ece(apply_calibration(proba, calibration), truth), 6),
        },
        "unknown": (unknown_fields(dist, means, precision, rate, how) if song_of_row is None else
                    _song_unknown(X, y, labels, song_of_row, groups, grouped_by, rate, seed)),
    }


def _song_unknown(X, y, labels, song_of_row, groups, grouped_by, rate, seed) -> dict:
    # per-window distances spread wider than songs' means: a long song would rarely be called unknown
    _, rows, first = song_means(X, song_of_row)
    return unknown_decision(rows, np.asarray(y)[first], labels, groups=None if groups is None else
                            np.asarray(groups)[first], grouped_by=grouped_by, rate=rate, seed=seed)


def ece(proba: np.ndarray, truth: np.ndarray, bins: int = 15) -> float:
    """Expected calibration error of the top genre's probability (``bins`` equal-width bins on [0, 1]).

    Naeini, Cooper & Hauskrecht (2015); Guo et al. (2017): the mean over bins, weighted by how many
    predictions fall in each, of |accuracy - mean confidence|.
    """
    return reliability(proba, truth, bins)["ece"]


def reliability(proba: np.ndarray, truth: np.ndarray, bins: int = 15) -> dict:
    """``{"ece", "bins": [{"low", "high", "n", "confidence", "accuracy"}, ...]}`` of the top genre's probability."""
    proba = np.asarray(proba, dtype=np.float64)
    truth = np.asarray(truth)
    if len(proba) == 0:
        return {"ece": 0.0, "bins": []}
    conf = proba.max(axis=1)
    hit = proba.argmax(axis=1) == truth
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.searchsorted(edges, conf, side="left") - 1, 0, bins - 1)  # (low, high] bins
    rows, total = [], 0.0
    for b in range(bins):
        inside = which == b
        n = int(inside.sum())
        if n:
            c, a = float(conf[inside].mean()), float(hit[inside].mean())
            total += n / len(conf) * abs(a - c)
            rows.append({"low": float(edges[b]), "high": float(edges[b + 1]), "n": n, "confidence": c, "accuracy": a})
    return {"ece": float(total), "bins": rows}
