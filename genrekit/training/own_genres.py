"""Your own genres: a head on the backbone trained from the genre tags a library already has.

``genrekit train --data DIR --labels tags`` (issue 19). Each audio file's genre values are
read by the tag-writing rules of each format (:func:`genrekit.tagging.formats.read_genres`),
merged and renamed by a name map (:class:`genrekit.tagging.names.NameMap`: a value the map
knows becomes its label, other values are kept, spellings that differ only in case and
punctuation are one genre), and become the labels of the shipped default's kind of head:
a soft vote of logistic regression (C=0.05) and an RBF SVM (C=1.0) on the per-window means of
MSD-musicnn's 50 tags (:data:`genrekit.models.shipped` ``gtzan-musicnn``; see
``scripts/build_musicnn_model.py``), computed once through the feature cache, so a second
training run on the same library takes seconds.

- **One genre per file**: softmax probabilities, calibrated by temperature scaling and given
  the "none of these" decision, both fitted by cross-validation on the training part only
  (:func:`genrekit.models.calibration.fit_calibration`).
- **Several genres on some files**: one-vs-rest (one vote per genre on an indicator matrix);
  every genre whose probability reaches its own threshold is reported. Thresholds maximise
  each genre's F1 on out-of-fold probabilities of the training part. The "none of these"
  decision is fitted as for one genre, each genre's mean over the training songs carrying it
  (:func:`genrekit.models.unknown.unknown_decision`: one row per song, its windows' mean,
  as songs are measured when classified, for one genre per song as for several).

The split keeps every album (else every artist, else every file) on one side, from the
files' album and artist tags, so no album is in both training and test.

Files whose genres ``--names`` all leaves out (``""``; with ``--leave-out-rare``, also those of genres
on too few files) are neither training nor test songs: they are the "none of these" decision's
outlier exposure (:mod:`genrekit.training.exposure`; ``--no-exposure`` turns it off).

The trainer is :class:`OwnGenresTrainer` (:mod:`genrekit.training.base`'s contract), told
what to do by :class:`OwnGenresOptions`; the labels come from :func:`labels_from_tags` or
:func:`labels_from_csv`.
"""

from __future__ import annotations

import csv
import io
import math
import os
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from genrekit.errors import DatasetError, TagError
from genrekit.audio.files import collect_audio_files, open_regular
from genrekit.tagging.names import LABEL_MAX, NameMap, label_problem, name_key
from genrekit.training.base import RunSummary, Trainer
from genrekit.training.run_folder import model_folder, write_results

#: Share of files (by group) held out for the test figures.
TEST_SIZE = 0.25
#: Window and hop of the head's rows (seconds) and patches per window, as the shipped default.
WINDOW, HOP, MAX_PATCHES = 30.0, 15.0, 32
#: Separator of several labels in one cell of a ``--labels FILE.csv``.
CSV_SEPARATOR = ";"
#: The model's name in ``results.json`` and its bundle's folder in the run folder.
MODEL = "own-genres"


def min_files(test_size: float = TEST_SIZE) -> int:
    """Files a label needs: some held out for testing, and enough left that every fold of the
    calibration's cross-validation still trains the SVM (its probabilities come from an inner
    3-fold calibration, which needs 3 files of each genre)."""
    return max(8, math.ceil(2.0 / test_size))


@dataclass
class LabelledFiles:
    """Audio files and their genres, with what grouping tags they carry.

    Attributes
    ----------
    files : list of Path
    genres : list of list of str
        Each file's labels (after the name map), in the file's order; never empty.
    groups : list of str
        Each file's split group: its album (``artist / album``), else its artist, else itself.
    grouped_by : str
        ``"album"``, ``"artist"`` or ``"file"``.
    source : str
        Where the labels came from: ``"tags"``, ``"folders"`` or the CSV's path.
    skipped : list of Path
        Files without a genre.
    unreadable : list of (Path, str)
        Files whose tags could not be read, and why.
    dropped : list of Path
        Files whose only genres the name map drops (``genre = ""`` in ``--names``): left out of
        the classifier, and the "none of these" decision's outlier exposure (:mod:`genrekit.training.exposure`).
    dropped_genres : list of list of str
        The genres the name map dropped from each of ``dropped``, in its order.
    names : str or None
        The name map's file (``None``: the shipped map).
    """

    files: list[Path]
    genres: list[list[str]]
    groups: list[str]
    grouped_by: str
    source: str
    skipped: list[Path] = field(default_factory=list)
    unreadable: list[tuple[Path, str]] = field(default_factory=list)
    names: str | None = None
    dropped: list[Path] = field(default_factory=list)
    dropped_genres: list[list[str]] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        """Files per label, most first."""
        counts = Counter(g for genres in self.genres for g in genres)
        return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))

    @property
    def multilabel(self) -> bool:
        return any(len(g) > 1 for g in self.genres)

    def summary(self) -> dict:
        """What the run folder and the bundle record about the labels."""
        return {"source": self.source, "names": self.names, "n_files": len(self.files),
                "skipped_without_genre": len(self.skipped), "unreadable": len(self.unreadable),
                "left_out_dropped_genres": len(self.dropped),
                "grouped_by": self.grouped_by, "multilabel": self.multilabel, "counts": self.counts}


class _Canon:
    """Tag values to labels: the name map's label, else the first spelling met of the same key.

    A label the map gives ``""`` (never written) is dropped: training leaves it out."""

    def __init__(self, names: NameMap | None) -> None:
        self.names = names or NameMap.default()
        self.seen: dict[str, str] = {}
        self.dropped: list[str] = []  # the labels the last call dropped

    def __call__(self, values, where) -> list[str]:
        """The labels of one file's genre ``values`` (``where``: the file, or the CSV row, for errors),
        less those the name map drops (:attr:`dropped` lists them).

        Raises :class:`DatasetError` for a value unfit as a label (:func:`label_problem`: a control
        character, over :data:`LABEL_MAX` characters, no letter or digit), naming it.
        """
        out: list[str] = []
        self.dropped = []
        for value in values:
            label = self.names.canonical(value)
            if label is not None and self.names.names.get(label, None) == ():  # `label = ""`: leave it out
                if label not in self.dropped:
                    self.dropped.append(label)
                continue
            if label is None:
                problem = label_problem(value.strip())
                if problem is not None:
                    shown = repr(value[:60]) + (f"… ({len(value) - 60} more characters)" if len(value) > 60 else "")
                    raise DatasetError(f"{where}: the genre {shown} {problem}; a label needs a letter or digit, "
                                       f"no control characters and at most {LABEL_MAX} characters: fix or remove it")
                label = self.seen.setdefault(name_key(value), value.strip())
            if label and label not in out:
                out.append(label)
        return out


def _grouping(path: Path) -> tuple[str | None, str | None]:
    """The file's (artist, album) tags, ``None`` where absent or unreadable."""
    import mutagen

    try:
        f = mutagen.File(os.fspath(path), easy=True)
    except Exception:  # noqa: BLE001 (mutagen raises many kinds for a damaged file; grouping is optional)
        return None, None
    if f is None or f.tags is None:
        return None, None

    def first(key):
        try:
            values = f.tags.get(key) or []
        except (KeyError, ValueError):
            return None
        return str(values[0]).strip() or None if values else None

    return first("albumartist") or first("artist"), first("album")


def _with_groups(files, genres, source, *, skipped=(), unreadable=(), dropped=(), dropped_genres=(),
                 names=None) -> LabelledFiles:
    tags = [_grouping(p) for p in files]
    if any(album for _, album in tags):
        grouped_by = "album"
        groups = [f"{artist or ''} / {album}" if album else f"file:{p}" for p, (artist, album) in zip(files, tags)]
    elif any(artist for artist, _ in tags):
        grouped_by = "artist"
        groups = [artist if artist else f"file:{p}" for p, (artist, _) in zip(files, tags)]
    else:
        grouped_by, groups = "file", [f"file:{p}" for p in files]
    return LabelledFiles(list(files), genres, groups, grouped_by, source, list(skipped), list(unreadable), names,
                         list(dropped), list(dropped_genres))


def labels_from_tags(folder: str | os.PathLike, names: NameMap | None = None) -> LabelledFiles:
    """Every audio file under ``folder`` with the genres its tags hold (files without one: ``skipped``)."""
    from genrekit.tagging.formats import read_genres

    canon = _Canon(names)
    files, genres, skipped, unreadable, dropped, dropped_genres = [], [], [], [], [], []
    for path in collect_audio_files([folder]):
        try:
            values = canon(read_genres(path), path)
        except TagError as exc:
            unreadable.append((path, str(exc)))
            continue
        if values:
            files.append(path)
            genres.append(values)
        elif canon.dropped:
            dropped.append(path)
            dropped_genres.append(canon.dropped)
        else:
            skipped.append(path)
    return _with_groups(files, genres, "tags", skipped=skipped, unreadable=unreadable, dropped=dropped,
                        dropped_genres=dropped_genres, names=None if names is None else names.source)


def labels_from_csv(path: str | os.PathLike, root: str | os.PathLike, names: NameMap | None = None) -> LabelledFiles:
    """Files and labels from a CSV with columns ``path,label`` (paths relative to ``root``; several
    labels in one cell separated by ``;``; an empty cell: skipped)."""
    canon = _Canon(names)
    files, genres, skipped, dropped, dropped_genres = [], [], [], [], []
    try:
        with io.TextIOWrapper(open_regular(path), newline="", encoding="utf-8") as fh:  # never a FIFO or device
            rows = list(csv.DictReader(fh))
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read the labels file: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, csv.Error) as exc:
        raise DatasetError(f"{path}: cannot read the labels file: {exc}") from None
    if rows and not {"path", "label"} <= set(rows[0]):
        raise DatasetError(f"{path}: a labels file needs the columns path,label; found {', '.join(rows[0])}")
    for number, row in enumerate(rows, start=1):
        file = Path(root) / (row.get("path") or "")
        values = canon((v for v in (row.get("label") or "").split(CSV_SEPARATOR) if v.strip()),
                       f"{path}, row {number}")
        if values:
            files.append(file)
            genres.append(values)
        elif canon.dropped:
            dropped.append(file)
            dropped_genres.append(canon.dropped)
        else:
            skipped.append(file)
    return _with_groups(files, genres, str(path), skipped=skipped, dropped=dropped, dropped_genres=dropped_genres,
                        names=None if names is None else names.source)


def check_counts(labelled: LabelledFiles, minimum: int) -> None:
    """Refuse, in one line naming them and their counts, labels with fewer than ``minimum`` files."""
    if not labelled.files:
        raise DatasetError(f"no file has a genre to learn from ({len(labelled.skipped)} files without one)")
    few = [(label, n) for label, n in labelled.counts.items() if n < minimum]
    if few:
        few = sorted(few, key=lambda kv: (kv[1], kv[0]))
        listed = ", ".join(f"{label} ({n})" for label, n in few)
        raise DatasetError(f"labels with too few files for the split (each needs {minimum}): {listed}; "
                           f"tag more files, merge them with --names, or leave them out "
                           f"(--names FILE with {_quoted_label(few[0][0])} = \"\") or add --leave-out-rare")
    if len(labelled.counts) < 2:
        raise DatasetError(f"only one genre ({next(iter(labelled.counts))}) among {len(labelled.files)} files: "
                           f"a model needs at least two")


def _quoted_label(label: str) -> str:
    """``label`` as a TOML key (a bare key where it can be)."""
    import json
    import re

    return label if re.fullmatch(r"[A-Za-z0-9_-]+", label) else json.dumps(label, ensure_ascii=False)


def recipe(seed: int = 0, svm_folds: int = 3):
    """The shipped default's head: soft vote of logistic regression and an RBF SVM whose probabilities
    come from a ``svm_folds``-fold inner calibration (the shipped head's 3; one-vs-rest heads use 2,
    so a genre on few files still trains)."""
    from sklearn.ensemble import VotingClassifier

    from genrekit.models.classical import make_model

    return VotingClassifier([("logreg", make_model("logreg", random_state=seed, C=0.05)),
                             ("svm-rbf", make_model("svm-rbf", random_state=seed, C=1.0, clf__cv=svm_folds))],
                            voting="soft", flatten_transform=False)


#: What ``--model`` names besides the classical families: the default head (:func:`recipe`).
DEFAULT_HEAD = "default"


def head(model: str | None = None, seed: int = 0, svm_folds: int = 3):
    """The estimator trained on the backbone's rows: :func:`recipe` for ``None`` or :data:`DEFAULT_HEAD`,
    else the classical family ``model`` (:data:`genrekit.models.classical.MODEL_NAMES`) with its fixed
    parameters; an SVM's probabilities then come from a ``svm_folds``-fold inner calibration."""
    if model in (None, DEFAULT_HEAD):
        return recipe(seed, svm_folds)
    from genrekit.models.classical import make_model

    return make_model(model, random_state=seed, **({"clf__cv": svm_folds} if model.startswith("svm") else {}))


def head_description(model: str | None = None) -> str:
    """What the bundle's card says the head is."""
    if model in (None, DEFAULT_HEAD):
        return "vote(logreg(C=0.05) + svm-rbf(C=1.0))"
    return f"{model} (fixed parameters)"


def backbone_table(labelled: LabelledFiles, root, *, cache=None, engine=None, progress: bool = False):
    """The files' window rows of MSD-musicnn's tag means, through the feature cache; and each row's file index."""
    from genrekit.datasets.tables import load_audio_files
    from genrekit.features.sets import feature_set

    fs = feature_set("msd_musicnn", window=WINDOW, max_patches=MAX_PATCHES)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # failures are counted below instead
        table = load_audio_files([(p, str(i)) for i, p in enumerate(labelled.files)], root, audio_feature_set=fs,
                                 cache=cache, engine=engine, progress=progress, description="labelled audio")
    return table, table.labels.astype(int)


def _split(file_ids, labelled: LabelledFiles, seed: int, test_size: float):
    """Training and test file indices, every group on one side, stratified by each file's first genre."""
    from sklearn.model_selection import StratifiedGroupKFold

    files = np.unique(file_ids)
    groups = np.array([labelled.groups[i] for i in files])
    y = np.array([labelled.genres[i][0] for i in files])
    n = max(2, round(1.0 / test_size))
    train, test = next(StratifiedGroupKFold(n, shuffle=True, random_state=seed).split(files, y, groups))
    return files[train], files[test]


@dataclass(frozen=True)
class OwnGenresOptions:
    """The own-genres trainer's options.

    Parameters
    ----------
    model : str, optional
        The head: ``None`` or :data:`DEFAULT_HEAD` for the default recipe (:func:`recipe`),
        else a classical family (:data:`genrekit.models.classical.MODEL_NAMES`) with its fixed parameters.
    seed : int
        Seed of the split and the head.
    test_size : float
        Share of files (by group) held out for the test figures.
    cache : FeatureStore, path or None
        Feature cache of the backbone's rows (``None``: the default one).
    refit : bool
        After the test, fit the head (and its calibration, thresholds and "none of these" decision)
        again on every labelled song, the model saved (default); ``False`` saves the split's model,
        the one the test figures measured.
    exposure : bool
        Fit the "none of these" decision with the files ``--names`` leaves out as outlier exposure
        (:mod:`genrekit.training.exposure`; default); ``False`` (``--no-exposure``): without them.
    leave_out_rare : bool
        Leave out labels on fewer than :func:`min_files` files instead of refusing them
        (``--leave-out-rare``): files left without a label join those ``--names`` leaves out.
    """

    model: str | None = None
    seed: int = 0
    test_size: float = TEST_SIZE
    cache: Any = None
    refit: bool = True
    exposure: bool = True
    leave_out_rare: bool = False


class OwnGenresTrainer(Trainer):
    """Trains a head on the backbone from ``labelled`` files' own genres and writes a run folder
    (``results.json`` and the bundle ``own-genres/``).

    Parameters
    ----------
    labelled : LabelledFiles
        The files and their genres (:func:`labels_from_tags`, :func:`labels_from_csv`).
    root : path
        The folder they were found in, for the model card.
    options : OwnGenresOptions, optional
    engine : Engine, optional
        Where the backbone's rows of files not yet cached are computed (default: this process).
    command : str
        The command line, recorded in the model card and ``results.json``.
    progress : callable or None
        Called with a line on what was analysed.

    :meth:`train` raises :class:`~genrekit.errors.DatasetError` for labels with too few files
    (:func:`check_counts`) or files that cannot be analysed.
    """

    name = "own-genres"

    def __init__(self, labelled: LabelledFiles, root, options: OwnGenresOptions | None = None, *, engine=None,
                 command: str = "", progress=None) -> None:
        self.labelled, self.root = labelled, root
        self.options = options if options is not None else OwnGenresOptions()
        self.engine, self.command, self.progress = engine, command, progress

    def train(self, out: str | os.PathLike) -> RunSummary:
        """Train the head, write its bundle and then ``results.json`` in ``out``; the summary holds ``results.json``."""
        from genrekit._io import jsonable

        labelled, root, command = self.labelled, self.root, self.command
        model, seed, test_size = self.options.model, self.options.seed, self.options.test_size
        say = self.progress or (lambda line: None)
        from genrekit.training.exposure import exposure_songs, leave_out_rare, no_exposure

        rare = []
        if self.options.leave_out_rare:
            labelled, rare = leave_out_rare(labelled, min_files(test_size))
            if rare:
                say(f"left out, on fewer than {min_files(test_size)} files: "
                    + ", ".join(f"{label} ({n})" for label, n in rare))
        check_counts(labelled, min_files(test_size))
        table, file_of_row = backbone_table(labelled, root, cache=self.options.cache, engine=self.engine)
        analysed = sorted(set(file_of_row.tolist()))
        failed = len(labelled.files) - len(analysed)
        say(f"{len(analysed)} files analysed ({failed} failed), {len(table.X)} windows of {WINDOW:g} s; "
            f"grouped by {labelled.grouped_by}")
        def analyse(files, genres):  # the left-out files, measured as the labelled ones
            songs = LabelledFiles(files, genres, [str(p) for p in files], "file", labelled.source)
            return backbone_table(songs, root, cache=self.options.cache, engine=self.engine)

        exposure = exposure_songs(labelled, analyse) if self.options.exposure else no_exposure()
        if exposure.listed:
            say(f"{exposure.n} songs of genres --names leaves out as outlier exposure of the unknown decision"
                + (f" ({exposure.failed} failed)" if exposure.failed else ""))
        train_files, test_files = _split(file_of_row, labelled, seed, test_size)
        train_rows, test_rows = np.isin(file_of_row, train_files), np.isin(file_of_row, test_files)
        labels = sorted({g for i in analysed for g in labelled.genres[i]})
        missing = [g for g in labels if not any(g in labelled.genres[i] for i in train_files)]
        if missing:
            raise DatasetError(f"labels with no file left for training after the {labelled.grouped_by}-grouped "
                               f"split: {', '.join(missing)}; tag more files of them")
        summary = labelled.summary()
        summary.update({"analysed": len(analysed), "failed": failed,
                        "train_files": len(train_files), "test_files": len(test_files),
                        "exposure": {"used": self.options.exposure, **exposure.summary()},
                        "left_out_rare": dict(rare)})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # convergence chatter of small folds
            try:
                fit = _multilabel if labelled.multilabel else _single
                entry, bundle_args = fit(table, file_of_row, labelled, labels, train_rows, test_rows, seed, model,
                                         refit=self.options.refit, exposure=exposure.params())
            except ValueError as exc:  # scikit-learn's refusal of too little data, said as ours
                raise DatasetError(f"the head could not be fitted on {len(train_files)} training files "
                                   f"({', '.join(f'{g} {n}' for g, n in labelled.counts.items())}): {exc}; "
                                   f"tag more files of the rarest genres") from None
        name = MODEL
        n_train, n_all = len(train_files), len(train_files) + len(test_files)
        if self.options.refit:
            fitted = (f"the test figures are the split's model's ({n_train} training songs, {len(test_files)} held "
                      f"out); this model was then refitted on all {n_all} labelled songs")
        else:
            fitted = (f"this is the split's model (--no-refit): fitted on {n_train} of the {n_all} labelled songs, "
                      f"tested on the {len(test_files)} held out")
        summary.update({"refit": self.options.refit, "fitted_songs": n_all if self.options.refit else n_train})
        card = {
            "model": head_description(model) + (" one-vs-rest" if labelled.multilabel else ""),
            "params": {"C_logreg": 0.05, "C_svm": 1.0} if model in (None, DEFAULT_HEAD) else {"model": model},
            "data": (f"{root}: {len(analysed)} files labelled from {labelled.source} "
                     f"({len(labelled.skipped)} without a genre skipped"
                     + (f", {len(labelled.dropped)} with only genres --names drops left out" if labelled.dropped else "")
                     + (f", {exposure.n} of them the unknown decision's outlier exposure" if exposure.n else "")
                     + "); MSD-musicnn tag means of "
                     f"{WINDOW:g}-s windows"),
            "split": (f"{1 - test_size:.0%}/{test_size:.0%} of files, grouped by {labelled.grouped_by} "
                      f"(no {labelled.grouped_by} on both sides), seed {seed}"),
            "fitted": fitted, "labels": summary, "figures": {"test": entry["figures"]}, "command": command,
        }
        from genrekit.models.bundle_save import save_bundle

        save_bundle(model_folder(out, name), card=card, feature_set=table.feature_set,
                    feature_names=table.feature_names, window=WINDOW, hop=HOP, sample=table.X[: min(256, len(table.X))],
                    **bundle_args)
        results = jsonable({
            "split": {"name": labelled.grouped_by, "description": card["split"], "leaky": False,
                      "sizes": {"train": len(train_files), "test": len(test_files)}},
            "models": {name: {**entry, "bundle": name}}, "selected": name, "selected_by": "the only model",
            "labels": summary, "data": {"source": table.source, "n_rows": int(len(table.X)),
                                        "n_tracks": len(analysed), "feature_set": table.feature_set},
            "command": command,
        })
        write_results(out, results)
        return RunSummary(Path(out), results)


def _single(table, file_of_row, labelled, labels, train_rows, test_rows, seed, name=None, *, refit=True,
            exposure=None):
    from genrekit.datasets.feature_table import FeatureTable
    from genrekit.evaluation.metrics import evaluate
    from genrekit.models.calibration import apply_calibration, fit_calibration

    y = np.array([labelled.genres[i][0] for i in file_of_row])
    groups = np.array([labelled.groups[i] for i in file_of_row])

    def fit(rows):
        model = head(name, seed).fit(table.X[rows], y[rows])
        fields = fit_calibration(head(name, seed), table.X[rows], y[rows], labels, groups=groups[rows],
                                 grouped_by=labelled.grouped_by, seed=seed, song_of_row=file_of_row[rows],
                                 **(exposure or {}))
        return model, fields

    model, fields = fit(train_rows)
    part = FeatureTable(table.X[test_rows], y[test_rows], table.tracks[test_rows], table.rows[test_rows],
                        table.feature_names, table.source, table.feature_set)
    proba = model.predict_proba(part.X)[:, [list(model.classes_).index(g) for g in labels]]
    test = evaluate(apply_calibration(proba, fields["calibration"]), part, labels, seed=seed)
    figures = {"track_accuracy": test["track"]["accuracy"], "ece": test["track"].get("ece"), "n_tracks": test["n_tracks"]}
    if refit:  # the test is done: every labelled song now trains the model that is saved
        model, fields = fit(train_rows | test_rows)
    return ({"test": test, "figures": figures, "params": {"model": name or DEFAULT_HEAD}},
            {"pipeline": model, "labels": labels, "metrics": {"test": test}, "calibration": fields})


def multilabel_metrics(truth: np.ndarray, proba: np.ndarray, thresholds, labels) -> dict:
    """Per-genre F1, subset accuracy and mean average precision of songs' indicator ``truth``
    and probabilities ``proba`` (one row per song, one column per genre of ``labels``)."""
    from sklearn.metrics import average_precision_score, f1_score

    pred = proba >= np.asarray(thresholds)[None, :]
    per = {g: {"f1": float(f1_score(truth[:, j], pred[:, j], zero_division=0)), "support": int(truth[:, j].sum())}
           for j, g in enumerate(labels)}
    scored = [j for j in range(len(labels)) if 0 < truth[:, j].sum() < len(truth)]
    ap = [float(average_precision_score(truth[:, j], proba[:, j])) for j in scored]
    return {"n_tracks": int(len(truth)), "subset_accuracy": float(np.mean((pred == truth.astype(bool)).all(axis=1))),
            "mean_average_precision": float(np.mean(ap)) if ap else None,
            "macro_f1": float(np.mean([v["f1"] for v in per.values()])), "per_genre": per}


def _multilabel(table, file_of_row, labelled, labels, train_rows, test_rows, seed, name=None, *, refit=True,
                exposure=None):
    from sklearn.base import clone
    from sklearn.model_selection import GroupKFold
    from sklearn.multiclass import OneVsRestClassifier

    from genrekit.models.calibration import song_means
    from genrekit.models.unknown import unknown_decision

    Y = np.array([[g in labelled.genres[i] for g in labels] for i in file_of_row], dtype=int)
    groups = np.array([labelled.groups[i] for i in file_of_row])

    def fit(rows):
        model = OneVsRestClassifier(head(name, seed, svm_folds=2)).fit(table.X[rows], Y[rows])
        # thresholds: each genre's best F1 on out-of-fold song probabilities of these rows
        Xt, Yt, gt, ft = table.X[rows], Y[rows], groups[rows], file_of_row[rows]
        oof = np.zeros(Yt.shape)
        for tr, va in GroupKFold(min(3, len(set(gt)))).split(Xt, Yt, gt):
            oof[va] = clone(model).fit(Xt[tr], Yt[tr]).predict_proba(Xt[va])
        songs, oof_songs, first = song_means(oof, ft)
        truth_songs = Yt[first]
        thresholds = [_best_threshold(truth_songs[:, j], oof_songs[:, j]) for j in range(len(labels))]
        # "none of these": genre means over the songs carrying each genre (a song of two counts
        # for both), threshold from their out-of-fold distances, folds grouped as the split is
        _, song_rows, _ = song_means(Xt, ft)  # a song is scored by its windows' mean
        unknown = unknown_decision(song_rows, truth_songs, labels, groups=np.array([labelled.groups[i] for i in songs]),
                                   grouped_by=labelled.grouped_by, seed=seed, **(exposure or {}))
        return model, thresholds, unknown

    model, thresholds, unknown = fit(train_rows)
    _, proba, first = song_means(model.predict_proba(table.X[test_rows]), file_of_row[test_rows])
    truth = Y[test_rows][first]
    test = multilabel_metrics(truth, proba, thresholds, labels)
    figures = {"subset_accuracy": test["subset_accuracy"], "mean_average_precision": test["mean_average_precision"],
               "macro_f1": test["macro_f1"], "n_tracks": test["n_tracks"]}
    entry = {"test": test, "figures": figures, "params": {"model": name or DEFAULT_HEAD},
             "thresholds": dict(zip(labels, thresholds))}
    if refit:  # the test is done: every labelled song now trains the model that is saved
        model, thresholds, unknown = fit(train_rows | test_rows)
        entry["refit_thresholds"] = dict(zip(labels, thresholds))
    return (entry,
            {"pipeline": model, "labels": labels, "metrics": {"test": test}, "calibration": {"unknown": unknown},
             "multilabel": {"thresholds": thresholds, "fitted_on": "best F1 per genre on out-of-fold songs"}})


def _best_threshold(truth: np.ndarray, score: np.ndarray) -> float:
    from sklearn.metrics import f1_score

    if truth.sum() == 0:
        return 0.5
    candidates = np.unique(np.round(score, 4))
    best = max(candidates, key=lambda t: (f1_score(truth, score >= t, zero_division=0), -abs(t - 0.5)))
    return float(round(min(max(best, 0.0), 1.0), 4))
