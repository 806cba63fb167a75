"""``genrekit evaluate``: score a model bundle on a labelled table or audio folder."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .common import CommandError, add_model_argument, model_path, output_option

from .table_data import data_argument, split_arguments, or_default, cache_arguments, load_data
from ..output import printable


def evaluate_arguments(p: argparse.ArgumentParser) -> None:
    add_model_argument(p, required=True, what="model to score")
    data_argument(p)
    p.add_argument("--side", choices=("all", "train", "valid", "test"), default="all",
                   help="evaluate on these rows of --split (default all rows of --data)")
    split_arguments(p)
    output_option(p, "--out", "-o", metavar="FILE", help="also write the metrics as JSON (default: print them only)")
    cache_arguments(p)


def evaluate_run(args) -> int:
    import numpy as np

    from .._io import write_json_atomic
    from ..datasets import make_splits
    from ..evaluate import evaluate
    from ..models.bundle import BundleError, load_bundle

    try:
        bundle = load_bundle(model_path(args.model))
    except BundleError as exc:
        raise CommandError(str(exc)) from exc
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
        raise CommandError(f"{args.data}: labels the model does not know: {', '.join(unknown)}")
    proba = part.X if bundle.kind == "cnn" else bundle.predict_proba(part.X.astype(np.float32))
    figures = evaluate(proba, part, bundle.labels, seed=args.seed)
    figures["data"] = {"source": table.source, "rows": description}
    figures["model"] = str(args.model)
    for level in ("track", "window"):
        f = figures[level]
        print(f"{level:>6}: accuracy {f['accuracy']:.3f} [{f['accuracy_ci'][0]:.3f}, {f['accuracy_ci'][1]:.3f}]  "
              f"balanced {f['balanced_accuracy']:.3f}  macro-F1 {f['macro_f1']:.3f}  ece {f['ece']:.3f}")
    print(f"({figures['n_tracks']} tracks, {figures['n_windows']} windows; {description})")
    if args.out:
        write_json_atomic(args.out, figures)
    return 0


def _columns(table, names: list[str]):
    """``table`` with only the columns ``names``, in that order."""
    import dataclasses

    index = {name: i for i, name in enumerate(table.feature_names)}
    return dataclasses.replace(table, X=table.X[:, [index[n] for n in names]], feature_names=list(names))


def _song_table(args, bundle):
    """For models whose input is not a table row (CNNs): classify every file of the ``--data`` audio
    folder with the model, one row per file holding its song probabilities (columns: the labels)."""
    import numpy as np

    from ..audio import AudioError
    from ..datasets import FeatureTable
    from ..files import collect_audio_files, gtzan_label
    from ..models.registry import classifier

    folder = Path(args.data)
    if not folder.is_dir():
        raise CommandError(f"{args.data}: a {bundle.kind} model on {bundle.feature_set.name} input is scored on a "
                           f"folder of audio (<genre>/<file>), not on a feature table")
    clf = classifier(bundle, Path(bundle.path).name)
    rows, labels, names, failed = [], [], [], []
    for path in collect_audio_files([folder]):
        try:
            prediction = clf.classify_file(path)
        except (AudioError, ValueError) as exc:
            failed.append(f"{path}: {getattr(exc, 'problem', exc)}")
            continue
        rows.append([prediction.probabilities[g] for g in bundle.labels])
        labels.append(gtzan_label(path))
        names.append(path.relative_to(folder).as_posix())
    for line in failed:
        print(f"skipped {printable(line)}", file=sys.stderr)
    if not rows:
        raise CommandError(f"{folder}: no file could be classified")
    tracks = [n.rsplit(".", 1)[0] for n in names]
    return FeatureTable(np.asarray(rows), np.asarray(labels), np.asarray(tracks), np.asarray(names),
                        list(bundle.labels), f"{folder} (audio folder: {len(rows)} files classified by the model)")
