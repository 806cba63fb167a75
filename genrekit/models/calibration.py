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
- ``unknown``: whether a song lies outside what the model knows, and its unknown score, fitted
  on the same training songs by :func:`genrekit.models.unknown.unknown_decision` (see that module:
  the scorers, the conformal threshold, the stored out-of-fold scores).

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
from genrekit.models.unknown import EPS, FALSE_UNKNOWN_RATE, FOLDS, check_unknown, unknown_decision

CALIBRATION_METHODS = ("temperature", "vector", "platt")


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


def check_meta(calibration, unknown, n_labels: int, n_features: int, rows: str | None = None) -> str | None:
    """What is wrong with a bundle's ``calibration`` and ``unknown`` fields (``None``: nothing).

    ``rows``: what the bundle's ``unknown`` must measure (:func:`genrekit.models.unknown.check_unknown`).
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
        return check_unknown(unknown, n_labels, n_features, rows)
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


def out_of_fold(model, X: np.ndarray, y: np.ndarray, groups: np.ndarray | None, labels, *, seed: int = 0,
                folds: int = FOLDS) -> np.ndarray:
    """Out-of-fold probabilities (columns in ``labels`` order) of ``model``'s clones fitted on ``folds``
    grouped folds of the training rows (groups: artists, else rows)."""
    from sklearn.base import clone
    from sklearn.model_selection import StratifiedGroupKFold

    X = np.asarray(X)
    y = np.asarray(y)
    groups = np.arange(len(y)) if groups is None else np.asarray(groups)
    n_splits = max(2, min(folds, len(set(groups.tolist())), int(np.bincount(np.unique(y, return_inverse=True)[1]).min())))
    proba = np.zeros((len(y), len(labels)))
    for train, held in StratifiedGroupKFold(n_splits, shuffle=True, random_state=seed).split(X, y, groups):
        fitted = clone(model).fit(X[train], y[train])
        cols = [list(fitted.classes_).index(label) if label in fitted.classes_ else None for label in labels]
        p = fitted.predict_proba(X[held])
        proba[held] = np.stack([p[:, c] if c is not None else np.zeros(len(held)) for c in cols], axis=1)
    return proba


def fit_calibration(model, X: np.ndarray, y: np.ndarray, labels, *, groups: np.ndarray | None = None,
                    grouped_by: str = "track", rate: float = FALSE_UNKNOWN_RATE, seed: int = 0,
                    method: str = "temperature", song_of_row: np.ndarray | None = None,
                    exposure: np.ndarray | None = None, exposure_labels=None) -> dict:
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
    exposure, exposure_labels : rows (one per song) of songs known to be of none of ``labels``, and
        their own genres: the unknown decision's outlier exposure (:func:`unknown_decision`)
    """
    labels = [str(v) for v in labels]
    y = np.asarray(y).astype(str)
    proba = out_of_fold(model, X, y, groups, labels, seed=seed)
    truth = np.array([labels.index(v) for v in y])
    calibration = fit_calibrator(method, proba, truth)
    exposed = {} if exposure is None else {"exposure": exposure, "exposure_labels": exposure_labels}
    if song_of_row is None:
        how = f"{FOLDS}-fold cross-validation grouped by {grouped_by} on the {len(y)} training songs"
        unknown = unknown_decision(X, y, labels, groups=groups, grouped_by=grouped_by, rate=rate, seed=seed,
                                   **exposed)
    else:  # rows are windows: count the songs, then their windows
        how = (f"{FOLDS}-fold cross-validation grouped by {grouped_by} on the {len(np.unique(song_of_row))} "
               f"training songs ({len(y)} windows)")
        # per-window scores spread wider than songs' means: a long song would rarely be called unknown
        _, rows, first = song_means(X, song_of_row)
        unknown = unknown_decision(rows, y[first], labels, groups=None if groups is None else np.asarray(groups)[first],
                                   grouped_by=grouped_by, rate=rate, seed=seed, **exposed)
    return {
        "calibration": {
            **calibration, "fitted_on": how,
            "oof_ece_before": round(ece(proba, truth), 6),
            "oof_ece_after": round(ece(apply_calibration(proba, calibration), truth), 6),
        },
        "unknown": unknown,
    }


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
