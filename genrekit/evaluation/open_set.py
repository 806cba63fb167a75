"""How well the "none of these" decision finds songs of genres a model never saw.

:func:`held_out_genres` holds some genres out of training entirely and runs a grouped
cross-validation over the other genres' songs. In each fold the head and its unknown
decision are fitted on the training folds only, the way a bundle gets them
(:func:`genrekit.models.calibration.fit_calibration`: the Mahalanobis distance to the
nearest genre mean, its threshold the conformal rank of out-of-fold distances of known
training songs), and scored on the held-out fold's known songs plus *every* song of the
held-out genres:

- AUROC of the distance (unknown songs should lie farther), and, for comparison, of
  ``1 - max probability`` (the calibrated top probability, as a bundle reports it);
- the share of known songs called unknown, and of unknown songs called known, at the
  stored threshold.

References
----------
K. Lee, K. Lee, H. Lee, J. Shin, "A simple unified framework for detecting out-of-distribution
samples and adversarial attacks", NeurIPS 2018.
"""

from __future__ import annotations

import warnings

import numpy as np

from genrekit.models.calibration import apply_calibration, fit_calibration
from genrekit.models.unknown import FALSE_UNKNOWN_RATE, FOLDS, UnknownDetector


def auroc(known: np.ndarray, unknown: np.ndarray) -> float:
    """Probability that an unknown song's score exceeds a known song's (ties count half)."""
    from sklearn.metrics import roc_auc_score

    truth = np.r_[np.zeros(len(known)), np.ones(len(unknown))]
    return float(roc_auc_score(truth, np.r_[known, unknown]))


def held_out_genres(model, X: np.ndarray, y: np.ndarray, groups: np.ndarray, held_out, *, folds: int = FOLDS,
                    seed: int = 0, rate: float = FALSE_UNKNOWN_RATE) -> dict:
    """Open-set figures of ``model`` with the genres ``held_out`` left out of training.

    Parameters
    ----------
    model : scikit-learn classifier
        Cloned for every fit (the head and its calibration's out-of-fold copies).
    X, y, groups : np.ndarray
        One row per song, its genre and its group (artist); groups never straddle a fold.
    held_out : iterable of str
        Genres never trained on: their songs are the unknown ones.
    folds : int
        Folds of the cross-validation over the known genres' songs (stratified, grouped).
    seed : int
        Seeds the folds (and the calibration's inner folds).
    rate : float
        Share of known training songs the threshold calls unknown (a bundle's ``false_unknown_rate``).

    Returns
    -------
    dict
        Per-fold lists and their means: ``auroc_distance``, ``auroc_max_probability``,
        ``known_called_unknown``, ``unknown_called_known``; ``n_known`` (songs scored over all
        folds), ``n_unknown`` (songs of the held-out genres, scored in every fold).
    """
    from sklearn.base import clone
    from sklearn.model_selection import StratifiedGroupKFold

    X, y, groups = np.asarray(X, dtype=np.float64), np.asarray(y).astype(str), np.asarray(groups)
    unknown = np.isin(y, list(held_out))
    Xk, yk, gk, Xu = X[~unknown], y[~unknown], groups[~unknown], X[unknown]
    labels = sorted(set(yk.tolist()))
    per_fold = {"auroc_distance": [], "auroc_max_probability": [], "known_called_unknown": [],
                "unknown_called_known": []}
    for train, held in StratifiedGroupKFold(folds, shuffle=True, random_state=seed).split(Xk, yk, gk):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # convergence chatter of small folds
            head = clone(model).fit(Xk[train], yk[train])
            fields = fit_calibration(model, Xk[train], yk[train], labels, groups=gk[train], rate=rate, seed=seed)
        detector = UnknownDetector(fields["unknown"])
        cols = [list(head.classes_).index(g) for g in labels]

        def scores(rows):
            distance = np.array([detector.score(row[None]) for row in rows])  # one row per song
            top = apply_calibration(head.predict_proba(rows)[:, cols], fields["calibration"]).max(axis=1)
            return distance, 1.0 - top

        (dk, pk), (du, pu) = scores(Xk[held]), scores(Xu)
        per_fold["auroc_distance"].append(auroc(dk, du))
        per_fold["auroc_max_probability"].append(auroc(pk, pu))
        per_fold["known_called_unknown"].append(float(np.mean(dk > detector.threshold)))
        per_fold["unknown_called_known"].append(float(np.mean(du <= detector.threshold)))
    out = {key: float(np.mean(values)) for key, values in per_fold.items()}
    out.update({"per_fold": per_fold, "held_out": sorted(held_out), "n_known": int(len(yk)),
                "n_unknown": int(len(Xu)), "folds": folds})
    return out
