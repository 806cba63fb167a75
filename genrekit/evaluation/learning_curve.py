"""Accuracy against the number of training examples per genre, under grouped cross-validation.

How many songs of each genre must a user tag before their own-genres head is worth using?
:func:`learning_curve` answers it on labelled rows (one per song): outer folds hold whole
groups (artists) out; inside each outer training part, ``k`` songs of every genre are drawn
at random (the draws are nested: the 3 songs of ``k=3`` include the one of ``k=1``), the
model is fitted on them alone and scored on the held-out fold. Repeats reshuffle both the
folds and the draws. Nothing is chosen from the figures.
"""

from __future__ import annotations

import warnings

import numpy as np

#: Folds of the outer cross-validation and repeats (reshuffled folds and draws) by default.
FOLDS, REPEATS = 5, 5


def draw_per_genre(y: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """A random order of each genre's row indices; the first ``k`` of each are a nested draw of ``k``."""
    y = np.asarray(y)
    return {g: rng.permutation(np.flatnonzero(y == g)) for g in np.unique(y)}


def first_k(order: dict[str, np.ndarray], k: int | None) -> np.ndarray:
    """The first ``k`` rows of every genre of :func:`draw_per_genre`'s ``order`` (``None``: all), sorted."""
    return np.sort(np.concatenate([rows if k is None else rows[:k] for rows in order.values()]))


def learning_curve(model, X: np.ndarray, y: np.ndarray, groups: np.ndarray, ks, *, small_model=None,
                   min_per_genre: int = 1, folds: int = FOLDS, repeats: int = REPEATS) -> dict:
    """Held-out accuracy of ``model`` fitted on ``k`` songs per genre, for each ``k`` of ``ks``.

    Parameters
    ----------
    model : scikit-learn classifier
        Cloned for every fit.
    X, y : np.ndarray
        One row per song and its genre.
    groups : np.ndarray
        Each song's group (artist): a group is never on both sides of a fold.
    ks : iterable of int or None
        Songs per genre to train on; ``None``: every training song.
    small_model : scikit-learn classifier, optional
        Fitted instead of ``model`` when ``k < min_per_genre`` (a recipe whose inner
        cross-validation needs more songs than that).
    min_per_genre : int
        The fewest songs per genre ``model`` can be fitted on.
    folds, repeats : int
        Outer folds (stratified by genre, grouped) and repeats of the whole procedure; repeat
        ``r`` seeds both its folds and its draws with ``r``.

    Returns
    -------
    dict
        ``{str(k) or "all": {"accuracy": [one per fold and repeat], "n_test": [songs scored per
        fold], "n_train": [songs fitted per fold], "small_model": bool}}``.
    """
    from sklearn.base import clone
    from sklearn.model_selection import StratifiedGroupKFold

    X, y, groups = np.asarray(X), np.asarray(y).astype(str), np.asarray(groups)
    ks = list(ks)
    out = {("all" if k is None else str(k)): {"accuracy": [], "n_test": [], "n_train": [],
                                              "small_model": k is not None and k < min_per_genre}
           for k in ks}
    for r in range(repeats):
        rng = np.random.default_rng(r)
        for train, held in StratifiedGroupKFold(folds, shuffle=True, random_state=r).split(X, y, groups):
            order = draw_per_genre(y[train], rng)
            for k in ks:
                key = "all" if k is None else str(k)
                rows = train[first_k(order, k)]
                chosen = small_model if out[key]["small_model"] else model
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # convergence chatter on a handful of rows
                    fitted = clone(chosen).fit(X[rows], y[rows])
                out[key]["accuracy"].append(float(np.mean(fitted.predict(X[held]) == y[held])))
                out[key]["n_test"].append(int(len(held)))
                out[key]["n_train"].append(int(len(rows)))
    return out


def summary(scores: list[float]) -> dict:
    """Mean, standard deviation (ddof 1) and the 2.5th and 97.5th percentiles of per-fold ``scores``."""
    a = np.asarray(scores, dtype=np.float64)
    return {"mean": float(a.mean()), "std": float(a.std(ddof=1)) if len(a) > 1 else 0.0,
            "range95": [float(np.percentile(a, 2.5)), float(np.percentile(a, 97.5))], "n_scores": int(len(a))}
