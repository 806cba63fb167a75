"""``genrekit evaluate``: score a model bundle on a labelled table or audio folder.

An audio folder's genres come from its sub-folders (``<genre>/<file>``), or with ``--labels tags``
(``--labels FILE.csv``) from each file's genre tags (a CSV), read as ``genrekit train`` reads them
(:func:`genrekit.training.own_genres.labels_from_tags`, through the ``--names`` map). A model of one genre
per song reports accuracy, macro-F1 and the expected calibration error; a model of several genres
per song (``bundle.multilabel``) per-genre F1, subset accuracy and mean average precision
(:func:`genrekit.training.own_genres.multilabel_metrics`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from genrekit.commands.common import add_model_argument, model_path, output_option
from genrekit.errors import CommandError

from genrekit.commands.table_data import (data_argument, split_arguments, or_default, cache_arguments, load_data, labels_arguments,
                         read_labelled)
from genrekit.output import printable


def evaluate_arguments(p: argparse.ArgumentParser) -> None:
    add_model_argument(p, required=True, what="model to score")
    data_argument(p)
    labels_arguments(p, "scoring")
    p.add_argument("--side", choices=("all", "train", "valid", "test"), default="all",
                   help="evaluate on these rows of --split (default all rows of --data)")
    split_arguments(p)
    output_option(p, "--out", "-o", metavar="FILE", help="also write the metrics as JSON (default: print them only)")
    cache_arguments(p)


def evaluate_run(args) -> int:
    import numpy as np

    from genrekit._io import write_json_atomic
    from genrekit.datasets.splits import make_splits
    from genrekit.evaluation.metrics import evaluate
    from genrekit.errors import BundleError
    from genrekit.models.bundle import load_bundle

    if args.labels == "folders" and args.names is not None:
        args.parser.error("--names: only with --labels tags or --labels FILE.csv")
    if args.labels != "folders" and args.side != "all":
        args.parser.error(f"--side {args.side} with --labels {args.labels}: a folder labelled by tags is scored "
                          f"whole; give it files the model did not learn from")
    try:
        bundle = load_bundle(model_path(args.model))
    except BundleError as exc:
        raise CommandError(str(exc)) from exc
    if args.labels != "folders":
        return _tagged_run(args, bundle)
    if bundle.multilabel:
        raise CommandError(f"{args.model}: a model of several genres per song is scored on files labelled with "
                           f"several genres: add --labels tags (or --labels FILE.csv)")
    if bundle.kind == "cnn" or not bundle.feature_set.tabular:
        table = _song_table(args, bundle)  # one row per file: the model's own song probabilities
    else:
        # Audio is analysed the way the model was trained: its own feature set and window.
        fs = bundle.feature_set.with_params(window=bundle.window) if bundle.feature_set.name == "gtzan57" \
            else bundle.feature_set
        # Before the work: a model whose inputs its own feature set cannot give is refused at once.
        absent = [f for f in bundle.feature_names if fs.columns and f not in fs.columns]
        if absent:
            raise CommandError(f"{args.model}: its inputs are not columns of the {fs.name} feature set "
                               f"(e.g. {', '.join(absent[:5])}); the bundle is inconsistent")
        table = load_data(args, fs)
    expected = bundle.feature_names if bundle.kind != "cnn" else list(bundle.labels)
    if expected and list(table.feature_names) != expected:
        missing = [f for f in expected if f not in table.feature_names]
        if missing:
            raise CommandError(f"{args.data}: its features do not match the model's inputs "
                               f"(missing {', '.join(missing[:5])})")
        # Columns are picked by name: a head on msd_musicnn reads 50 of the table's 250 columns.
        table = _columns(table, expected)
    rows = np.arange(len(table.X))
    description = "all rows"
    if args.side != "all":
        split = make_splits(table, args.split, test_size=or_default(args.test_size, 0.25),
                            valid_size=or_default(args.valid_size, 0.0), seed=args.seed,
                            artists=args.artists, split_dir=args.split_dir, folds=args.folds)[0]
        rows = getattr(split, args.side)
        if rows is None:
            raise CommandError(f"the {args.split} split has no {args.side} side")
        description = f"{args.side} side of: {split.description}"
    part = table.subset(rows)
    unknown = sorted(set(part.labels) - set(bundle.labels))
    if unknown:
        counts = {label: int(np.sum(part.labels == label)) for label in unknown}
        # An audio file whose folder names no genre has the label "": say so, not an empty name.
        named = [f"{label} ({counts[label]})" if label else
                 f"none, for {counts[label]} files whose folder names no genre (label them with --labels FILE.csv)"
                 for label in unknown]
        raise CommandError(f"{args.data}: labels the model does not know: {'; '.join(named)}")
    proba = part.X if bundle.kind == "cnn" else bundle.predict_proba(part.X.astype(np.float32))
    figures = evaluate(proba, part, bundle.labels, seed=args.seed)
    figures["data"] = {"source": table.source, "rows": description}
    figures["model"] = str(args.model)
    for level in ("track", "window"):
        print(_figures_line(level, figures[level]))
    print(f"({figures['n_tracks']} tracks, {figures['n_windows']} windows; {description})")
    if args.out:
        write_json_atomic(args.out, figures)
    return 0


def _figures_line(level: str, f: dict) -> str:
    """One level's figures as evaluate prints them, with their bootstrap intervals."""
    return (f"{level:>6}: accuracy {f['accuracy']:.3f} [{f['accuracy_ci'][0]:.3f}, {f['accuracy_ci'][1]:.3f}]  "
            f"balanced {f['balanced_accuracy']:.3f}  macro-F1 {f['macro_f1']:.3f}  "
            f"ece {f['ece']:.3f} [{f['ece_ci'][0]:.3f}, {f['ece_ci'][1]:.3f}]")


def _columns(table, names: list[str]):
    """``table`` with only the columns ``names``, in that order."""
    import dataclasses

    index = {name: i for i, name in enumerate(table.feature_names)}
    return dataclasses.replace(table, X=table.X[:, [index[n] for n in names]], feature_names=list(names))


def _song_table(args, bundle):
    """For models whose input is not a table row (CNNs): classify every file of the ``--data`` audio
    folder with the model, one row per file holding its song probabilities (columns: the labels)."""
    import numpy as np

    from genrekit.datasets.feature_table import FeatureTable
    from genrekit.audio.files import collect_audio_files
    from genrekit.datasets.gtzan import gtzan_label

    folder = Path(args.data)
    if not folder.is_dir():
        raise CommandError(f"{args.data}: a {bundle.kind} model on {bundle.feature_set.name} input is scored on a "
                           f"folder of audio (<genre>/<file>), not on a feature table")
    paths = list(collect_audio_files([folder]))
    proba, names, labels = _classify_files(args, bundle, paths, [gtzan_label(p) for p in paths])
    tracks = [n.rsplit(".", 1)[0] for n in names]
    return FeatureTable(proba, np.asarray(labels), np.asarray(tracks), np.asarray(names),
                        list(bundle.labels), f"{folder} (audio folder: {len(proba)} files classified by the model)")


def _tagged_run(args, bundle) -> int:
    """``--labels tags|FILE.csv``: classify every labelled file of the ``--data`` folder and score the songs."""
    import numpy as np

    from genrekit._io import write_json_atomic
    from genrekit.datasets.feature_table import FeatureTable
    from genrekit.evaluation.metrics import evaluate

    labelled = read_labelled(args, "evaluate")
    known = list(bundle.labels)
    files, truth, foreign = [], [], {}
    for path, genres in zip(labelled.files, labelled.genres):
        mine = [g for g in genres if g in known]
        if mine:
            files.append(path)
            truth.append(mine)
        else:
            for g in genres:
                foreign[g] = foreign.get(g, 0) + 1
    if foreign:
        print(f"evaluate: {len(labelled.files) - len(files)} file(s) skipped, none of their genres is the model's: "
              + ", ".join(f"{printable(g)} ({n})" for g, n in sorted(foreign.items(), key=lambda kv: (-kv[1], kv[0]))),
              file=sys.stderr)
    if not files:
        raise CommandError(f"{args.data}: no file has a genre the model knows ({', '.join(known)}); "
                           f"merge spellings with --names")
    proba, names, truth = _classify_files(args, bundle, files, truth)
    description = f"{len(names)} audio files labelled from {labelled.source}"
    data = {"source": str(args.data), "rows": description, "labels": labelled.summary(),
            "skipped_other_genres": len(labelled.files) - len(files), "failed": len(files) - len(names)}
    if bundle.multilabel:
        from genrekit.training.own_genres import multilabel_metrics

        indicator = np.array([[g in t for g in known] for t in truth], dtype=int)
        figures = multilabel_metrics(indicator, proba, bundle.multilabel["thresholds"], known)
        figures.update({"labels": known, "thresholds": dict(zip(known, bundle.multilabel["thresholds"]))})
        for g, f in figures["per_genre"].items():
            print(f"{printable(g):>16}: F1 {f['f1']:.3f}  ({f['support']} tracks)")
        ap = figures["mean_average_precision"]
        print(f"subset accuracy {figures['subset_accuracy']:.3f}  macro-F1 {figures['macro_f1']:.3f}  "
              f"mean average precision " + ("–" if ap is None else f"{ap:.3f}"))
        print(f"({figures['n_tracks']} tracks; {description}; a track's genres: every genre at or above its threshold)")
    else:
        several = sum(len(t) > 1 for t in truth)
        if several:
            print(f"evaluate: {several} files carry several of the model's genres; a model of one genre per song "
                  f"is scored on the first", file=sys.stderr)
        stems = np.asarray(names)
        table = FeatureTable(proba, np.asarray([t[0] for t in truth]), stems, stems, known, description)
        figures = evaluate(proba, table, known, seed=args.seed)
        print(_figures_line("track", figures["track"]))
        print(f"({figures['n_tracks']} tracks; {description}; one row per song: window figures equal track figures)")
    figures["data"] = data
    figures["model"] = str(args.model)
    if args.out:
        write_json_atomic(args.out, figures)
    return 0


def _classify_files(args, bundle, files, truth):
    """Song probabilities (rows in ``files`` order, columns the model's labels) of the files that decode;
    their names relative to ``--data``, and their labels. Failures are skipped and said on stderr."""
    import numpy as np

    from genrekit.errors import AudioError, ParameterError
    from genrekit.models.registry import classifier

    clf = classifier(bundle, Path(bundle.path).name)
    rows, names, kept, failed = [], [], [], []
    for path, genres in zip(files, truth):
        try:
            prediction = clf.classify_file(path)
        except (AudioError, ParameterError) as exc:
            failed.append(f"{path}: {getattr(exc, 'problem', exc)}")
            continue
        rows.append([prediction.probabilities[g] for g in bundle.labels])
        names.append(Path(path).relative_to(args.data).as_posix())
        kept.append(genres)
    for line in failed:
        print(f"skipped {printable(line)}", file=sys.stderr)
    if not rows:
        raise CommandError(f"{args.data}: no file could be classified")
    return np.asarray(rows, dtype=np.float64), names, kept
