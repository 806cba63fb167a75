"""Train and compare classical models on one split of a feature table: the job behind ``genrekit train``.

>>> from genrekit.training.classical import ClassicalTrainer, ExperimentConfig   # doctest: +SKIP
>>> ClassicalTrainer(table, ExperimentConfig(models=["logreg", "svm-rbf"], valid_size=0.2)).train("runs/a")

For a single split (random, random-rows, artist, fault-filtered) every model is fitted
on the training rows (hyper-parameters searched by cross-validation inside them when
asked), evaluated on the validation and test rows at window and track level, and saved
as a bundle in ``RUN_DIR/<model>/``. With a validation set, ``results.json`` names the
model chosen by validation accuracy; test figures choose nothing. For ``kfold`` every
model is fitted once per fold and scored on the held-out fold; the pooled out-of-fold
predictions give the figures, and no bundle is written (there is no single model).

Each model's entry is saved as soon as it is done (``RUN_DIR/.done/<model>.json``,
keyed by the run's configuration), so an interrupted run started again with the same
arguments skips the models it finished. The run folder's layout is
:mod:`genrekit.training.run_folder`'s.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from genrekit._version import __version__
from genrekit._io import write_json_atomic
from genrekit.datasets.feature_table import FeatureTable
from genrekit.datasets.splits import make_splits
from genrekit.datasets.gtzan import read_artist_index
from genrekit.errors import ParameterError, TrainingError
from genrekit.evaluation.metrics import evaluate, model_entry, results_json, split_summary
from genrekit.models.classical import MODEL_NAMES, fit_model
from genrekit.training.base import RunSummary, Trainer
from genrekit.training.run_folder import done_path, model_folder, write_results

LEAK_WARNING = ("random-rows puts windows of the same track on both sides of the split: its figures are "
                "optimistic (they leak) and are not comparable with track-grouped splits")


@dataclass(frozen=True)
class ExperimentConfig:
    """The classical trainer's options: everything that decides a run's numbers (its hash keys
    the resume checkpoints; ``results.json`` records it as ``"config"``)."""

    models: list[str]
    split: str = "random"
    test_size: float = 0.25
    valid_size: float = 0.0
    seed: int = 0
    artists: str | None = None
    split_dir: str | None = None
    folds: int = 5
    search: bool = False
    n_iter: int = 20
    cv: int = 5
    params: dict = field(default_factory=dict)

    def key(self, table: FeatureTable) -> str:
        payload = dict(asdict(self), models=None, source=table.source, shape=list(table.X.shape),
                       genrekit=__version__)
        return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


def expand_models(names: list[str]) -> list[str]:
    """``["all"]`` → every classical model; otherwise the names, checked."""
    out: list[str] = []
    for name in names:
        for part in name.split(","):
            part = part.strip()
            if part == "all":
                out += [m for m in MODEL_NAMES if m not in out]
            elif part in MODEL_NAMES:
                if part not in out:
                    out.append(part)
            else:
                raise ParameterError(f"unknown model {part!r}; expected one of {', '.join(MODEL_NAMES)} or all")
    return out


def _groups(table: FeatureTable, artists: str | None) -> np.ndarray:
    """Search-CV groups: artists when known (no artist in two folds), else tracks."""
    if artists is None:
        return np.asarray(table.tracks)
    index = read_artist_index(artists)
    return np.array([index.get(t, f"?{t}") for t in table.tracks])


class ClassicalTrainer(Trainer):
    """Fits, evaluates and (for single splits) saves every model of ``config`` (see the module docstring).

    Parameters
    ----------
    table : FeatureTable
    config : ExperimentConfig
    command : str
        The command line, recorded in model cards and ``results.json``.
    n_jobs : int
        Parallel jobs of hyper-parameter searches.
    progress : callable or None
        Called with a short message as each model finishes.

    :meth:`train` also takes ``out=None``: everything is then kept in memory (no bundle, no
    checkpoint), for studies that only need the figures. A model scikit-learn refuses to fit
    raises :class:`~genrekit.errors.TrainingError`; unusable split settings
    :class:`~genrekit.errors.DatasetError`.
    """

    name = "classical"

    def __init__(self, table: FeatureTable, config: ExperimentConfig, *, command: str = "", n_jobs: int = 1,
                 progress=None) -> None:
        self.table, self.config = table, config
        self.command, self.n_jobs, self.progress = command, n_jobs, progress

    def train(self, out: str | Path | None) -> RunSummary:
        """Train every model into the run folder ``out`` (``None``: in memory); the summary holds ``results.json``."""
        table, config, progress = self.table, self.config, self.progress
        splits = make_splits(
            table, config.split, test_size=config.test_size, valid_size=config.valid_size, seed=config.seed,
            artists=config.artists, split_dir=config.split_dir, folds=config.folds,
        )
        groups = _groups(table, config.artists)
        labels = sorted(set(np.asarray(table.labels).astype(str)) - {""})
        key = config.key(table)
        out = Path(out) if out is not None else None

        entries: dict[str, dict] = {}
        for name in config.models:
            checkpoint = done_path(out, name) if out is not None else None
            if checkpoint is not None and checkpoint.exists():
                saved = json.loads(checkpoint.read_text())
                if saved.get("key") == key:
                    entries[name] = saved["entry"]
                    if progress:
                        progress(f"{name}: done in an earlier run, kept")
                    continue
            started = time.perf_counter()
            try:
                if len(splits) == 1:
                    entry = _fit_one_split(table, splits[0], name, config, groups, labels, out, self.command,
                                           self.n_jobs)
                else:
                    entry = _fit_folds(table, splits, name, config, groups, labels, self.n_jobs)
            except ValueError as exc:
                # scikit-learn refuses data it cannot fit with a ValueError, and its words alone do not say
                # which model, nor that the data is the likely cause.
                n_train = len(splits[0].train)
                raise TrainingError(f"model {name} could not be fitted on {n_train} training rows: {exc} "
                                    f"(the models finished so far are kept: run again without {name} in "
                                    f"--model to go on from them)") from exc
            entry["seconds"] = round(time.perf_counter() - started, 2)
            entries[name] = entry
            if checkpoint is not None:
                write_json_atomic(checkpoint, {"key": key, "entry": entry})
            if progress:
                progress(_one_line(name, entry))

        split_info = split_summary(splits[0], table) if len(splits) == 1 else _folds_summary(splits, table)
        results = results_json(split_info, entries)
        results["data"] = {"source": table.source, "n_rows": int(len(table.X)), "n_tracks": int(table.n_tracks),
                           "n_features": int(table.X.shape[1]), "feature_set": table.feature_set}
        results["config"] = asdict(config)
        results["command"] = self.command
        if results["leaky"]:
            results["warning"] = LEAK_WARNING
        if out is not None:
            write_results(out, results)
        return RunSummary(out, results)


def _fit_one_split(table, split, name, config, groups, labels, out, command, n_jobs) -> dict:
    train = table.subset(split.train)
    model, info = fit_model(name, train.X, train.labels, groups=groups[split.train], search=config.search,
                            n_iter=config.n_iter, cv=config.cv, random_state=config.seed, n_jobs=n_jobs,
                            params=config.params.get(name))
    classes = [str(c) for c in model.classes_]
    figures = {}
    for side in ("valid", "test"):
        rows = getattr(split, side)
        if rows is not None and len(rows):
            part = table.subset(rows)
            figures[side] = evaluate(_proba(model, part.X, classes, labels), part, labels, seed=config.seed)
    entry = model_entry(valid=figures.get("valid"), test=figures.get("test"), params=info.get("params"),
                        search=info.get("search"), search_cv=info.get("cv"))
    if out is not None and not split.leaky and table.feature_set is not None:
        unknown = _unknown(train, classes, groups[split.train], config.seed)
        _save(model_folder(out, name), model, table, split, name, info, figures, classes, command, unknown)
        entry["bundle"] = name
    elif out is not None:
        # A bundle must be able to compute its own inputs from audio; a leaky model is not one to ship.
        entry["bundle"] = None
        entry["no_bundle_because"] = ("the split leaks" if split.leaky else
                                      "the table's features are not a genrekit feature set")
    return entry


def _fit_folds(table, splits, name, config, groups, labels, n_jobs) -> dict:
    oof = np.zeros((len(table.X), len(labels)))
    seen = np.zeros(len(table.X), dtype=bool)
    fold_acc = []
    for split in splits:
        train = table.subset(split.train)
        model, _ = fit_model(name, train.X, train.labels, groups=groups[split.train], search=config.search,
                             n_iter=config.n_iter, cv=config.cv, random_state=config.seed, n_jobs=n_jobs,
                             params=config.params.get(name))
        part = table.subset(split.test)
        proba = _proba(model, part.X, [str(c) for c in model.classes_], labels)
        oof[split.test] = proba
        seen[split.test] = True
        fold_acc.append(evaluate(proba, part, labels, seed=config.seed)["track"]["accuracy"])
    covered = np.flatnonzero(seen)
    pooled = evaluate(oof[covered], table.subset(covered), labels, seed=config.seed)
    cv = {"folds": len(splits), "fold_track_accuracy": fold_acc, "mean_track_accuracy": float(np.mean(fold_acc)),
          "std_track_accuracy": float(np.std(fold_acc)), "pooled": pooled}
    return model_entry(cv=cv, params=config.params.get(name) or {}, search=config.search)


def _proba(model, X, classes, labels) -> np.ndarray:
    """Probabilities with one column per label of the whole table (a class absent from training gets 0)."""
    proba = model.predict_proba(X)
    out = np.zeros((len(X), len(labels)))
    for j, c in enumerate(classes):
        out[:, labels.index(c)] = proba[:, j]
    return out


def _unknown(train: FeatureTable, classes, groups, seed: int) -> dict | None:
    """The bundle's "none of these" decision (:func:`genrekit.models.unknown.unknown_decision`), fitted on the
    training tracks' mean rows as a song is measured when classified; ``None`` with too few tracks to fold."""
    from genrekit.models.calibration import song_means
    from genrekit.models.unknown import unknown_decision

    _, rows, first = song_means(train.X, np.asarray(train.tracks).astype(str))
    if len(rows) < 4:
        return None
    y = np.asarray(train.labels).astype(str)[first]
    return unknown_decision(rows, y, list(classes), groups=np.asarray(groups)[first], grouped_by="group",
                            seed=seed, songs="training tracks")


def _save(folder: Path, model, table, split, name, info, figures, classes, command, unknown=None) -> None:
    from genrekit.models.bundle_save import save_bundle

    fs = table.feature_set
    window = fs.get("window")
    card = {
        "model": name,
        "params": info.get("params", {}),
        "data": f"{table.source}: {len(table.X)} rows, {table.n_tracks} tracks, {table.X.shape[1]} features",
        "split": split.description,
        "figures": {side: {"track_accuracy": f["track"]["accuracy"], "n_tracks": f["n_tracks"]}
                    for side, f in figures.items()},
        "command": command,
    }
    save_bundle(folder, model, labels=classes, feature_set=fs,
                feature_names=table.feature_names, window=window,
                hop=(window / 2 if window else None), metrics=figures, card=card,
                sample=table.X[: min(256, len(table.X))], calibration={"unknown": unknown} if unknown else None)


def _folds_summary(splits, table) -> dict:
    tracks = np.asarray(table.tracks)
    first = splits[0]
    return {
        "name": first.name,
        "description": first.description,
        "leaky": bool(first.leaky),
        "fold": None,
        "folds": len(splits),
        "sizes": {"test": [int(len(np.unique(tracks[s.test]))) for s in splits]},
    }


def _one_line(name: str, entry: dict) -> str:
    parts = [name]
    for side in ("valid", "test"):
        fig = entry.get(side)
        if fig:
            t = fig["track"]
            parts.append(f"{side} {t['accuracy']:.3f} [{t['accuracy_ci'][0]:.3f}, {t['accuracy_ci'][1]:.3f}] "
                         f"({fig['n_tracks']} tracks)")
    cv = entry.get("cv")
    if cv:
        parts.append(f"{cv['folds']}-fold {cv['mean_track_accuracy']:.3f} ± {cv['std_track_accuracy']:.3f} "
                     f"({cv['pooled']['n_tracks']} tracks)")
    parts.append(f"{entry.get('seconds', 0):.1f} s")
    return "  ".join(parts)
