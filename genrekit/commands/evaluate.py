"""``genrekit evaluate``: score a model bundle on a labelled table or audio folder.

An audio folder's genres come from its sub-folders (``<genre>/<file>``), or with ``--labels tags``
(``--labels FILE.csv``) from each file's genre tags (a CSV), read as ``genrekit train`` reads them
(:func:`genrekit.training.own_genres.labels_from_tags`, through the ``--names`` map). A model of one genre
per song reports accuracy, macro-F1 and the expected calibration error; a model of several genres
per song (``bundle.multilabel``) per-genre F1, subset accuracy and mean average precision
(:func:`genrekit.training.own_genres.multilabel_metrics`).

With ``--label-map FILE`` the dataset's labels are another vocabulary than the model's, mapped by the file
(:mod:`genrekit.evaluation.label_map`): every file is classified and scored through the map, songs of a
label mapped to ``none`` counting as right when flagged unknown. Every run also says how many songs the
model flagged unknown ("none of these").
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from genrekit.commands.common import (add_model_argument, add_unknown_rate_argument, at_unknown_rate, model_path,
                                     output_option)
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
    p.add_argument("--label-map", metavar="FILE|NAME", default=None,
                   help="score through a map between the dataset's labels and the model's: a CSV of "
                        "dataset_label,model_label rows (model_label 'none': the model lacks it; right when "
                        "flagged unknown) or a JSON object, or a ready-made map's name (emotify-gtzan, "
                        "emotify-electronic); every file is classified (default: labels must be the model's)")
    add_unknown_rate_argument(p)
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
    from genrekit.models.registry import classifier

    at_unknown_rate(args, classifier(bundle, Path(bundle.path).name))  # a usage error where it cannot move
    if args.label_map is not None:
        return _mapped_run(args, bundle)
    if args.labels != "folders":
        return _tagged_run(args, bundle)
    if bundle.multilabel:
        raise CommandError(f"{args.model}: a model of several genres per song is scored on files labelled with "
                           f"several genres: add --labels tags (or --labels FILE.csv)")
    flags = None  # each track's unknown flag where the model already said it (songs classified whole)
    if bundle.kind == "cnn" or not bundle.feature_set.tabular:
        table, flags = _song_table(args, bundle)  # one row per file: the model's own song probabilities
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
    figures["flagged_unknown"] = _table_unknown(bundle, part, proba, flags, args.unknown_rate)
    for level in ("track", "window"):
        print(_figures_line(level, figures[level]))
    print(f"({figures['n_tracks']} tracks, {figures['n_windows']} windows; {description})")
    print(_unknown_line(figures["flagged_unknown"], figures["n_tracks"]))
    if args.out:
        write_json_atomic(args.out, figures)
    return 0


def _table_unknown(bundle, part, proba, flags=None, rate: float | None = None) -> dict:
    """How many of ``part``'s tracks the model flags unknown (:func:`_count_flagged`): from ``flags``
    (track -> flag) where given, else the bundle's stored decision on each track's rows, as the model
    decides it for a song (the mean of its input rows, or of its windows' log probabilities), at
    false-unknown rate ``rate`` (``None``: the bundle's)."""
    import numpy as np

    tracks = np.asarray(part.tracks)
    order = list(dict.fromkeys(tracks.tolist()))
    if flags is not None:
        return _count_flagged([flags.get(t) for t in order])
    detector = bundle.unknown_detector()
    if detector is None:
        return _count_flagged([None] * len(order))
    from genrekit.models.unknown import log_rows

    measured = log_rows(proba) if detector.meta.get("rows", "features") == "log_probabilities" else part.X
    return _count_flagged([detector.is_unknown(measured[tracks == t], rate) for t in order])


def _count_flagged(flags) -> dict:
    """``{"songs", "flagged"}`` of songs' unknown flags; ``flagged`` is ``None`` when the model has no
    unknown decision."""
    decided = [f for f in flags if f is not None]
    return {"songs": len(flags), "flagged": sum(bool(f) for f in decided) if decided or not flags else None}


def _unknown_line(counted: dict, n: int) -> str:
    """The line evaluate prints about the "none of these" decision."""
    if counted["flagged"] is None:
        return "flagged unknown: the model has no unknown decision"
    return (f"flagged unknown: {counted['flagged']} of {n} songs (counted by the genre named, right or wrong; "
            f"--label-map counts them right where a label maps to none)")


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
    proba, names, labels, said = _classify_files(args, bundle, paths, [gtzan_label(p) for p in paths])
    tracks = [n.rsplit(".", 1)[0] for n in names]
    table = FeatureTable(proba, np.asarray(labels), np.asarray(tracks), np.asarray(names),
                         list(bundle.labels), f"{folder} (audio folder: {len(proba)} files classified by the model)")
    return table, {t: u for t, (_, u) in zip(tracks, said)}


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
    proba, names, truth, said = _classify_files(args, bundle, files, truth)
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
    figures["flagged_unknown"] = _count_flagged([u for _, u in said])
    print(_unknown_line(figures["flagged_unknown"], len(names)))
    figures["data"] = data
    figures["model"] = str(args.model)
    if args.out:
        write_json_atomic(args.out, figures)
    return 0


def _classify_files(args, bundle, files, truth):
    """Song probabilities (rows in ``files`` order, columns the model's labels) of the files that decode;
    their names relative to ``--data``, their labels, and what the model said of each: (the genre it
    named, whether it flagged the song unknown; ``None``: it has no such decision). Failures are skipped
    and said on stderr."""
    import numpy as np

    from genrekit.errors import AudioError, ParameterError
    from genrekit.models.registry import classifier

    clf = classifier(bundle, Path(bundle.path).name).at_unknown_rate(args.unknown_rate)
    rows, names, kept, failed, said = [], [], [], [], []
    for path, genres in zip(files, truth):
        try:
            prediction = clf.classify_file(path)
        except (AudioError, ParameterError) as exc:
            failed.append(f"{path}: {getattr(exc, 'problem', exc)}")
            continue
        rows.append([prediction.probabilities[g] for g in bundle.labels])
        names.append(Path(path).relative_to(args.data).as_posix())
        kept.append(genres)
        said.append((prediction.label, prediction.unknown))
    for line in failed:
        print(f"skipped {printable(line)}", file=sys.stderr)
    if not rows:
        raise CommandError(f"{args.data}: no file could be classified")
    return np.asarray(rows, dtype=np.float64), names, kept, said


def _label_map_path(value: str) -> Path:
    """``--label-map``'s file: a path, or the name of a ready-made map."""
    from genrekit.errors import ParameterError
    from genrekit.evaluation.label_map import shipped_map

    path = Path(value)
    if path.suffix.lower() in (".csv", ".json") or path.exists():
        return path
    try:
        return shipped_map(value)
    except ParameterError as exc:
        raise CommandError(f"--label-map {printable(value)}: not a file; {exc}") from None


def _folder_label(path: Path, root: Path) -> str:
    """The label a file's folder gives it under ``--label-map``: the name of the folder holding it
    (``""`` for a file directly in ``--data``)."""
    return path.parent.name if path.parent != root else ""


def _mapped_run(args, bundle) -> int:
    """``--label-map``: classify every labelled file of ``--data`` and score the songs through the map."""
    from genrekit._io import write_json_atomic
    from genrekit.audio.files import collect_audio_files
    from genrekit.errors import ParameterError
    from genrekit.evaluation.label_map import map_figures, read_label_map

    if args.side != "all":
        args.parser.error(f"--side {args.side} with --label-map: a folder in another vocabulary is scored whole")
    if bundle.multilabel:
        raise CommandError(f"{args.model}: --label-map scores a model of one genre per song")
    if not args.data.is_dir():
        args.parser.error("--label-map needs --data DIR, a folder of audio files")
    try:
        label_map = read_label_map(_label_map_path(args.label_map))
    except ParameterError as exc:
        raise CommandError(str(exc)) from None
    if args.labels == "folders":
        files = sorted(collect_audio_files([args.data]))
        truth = [_folder_label(Path(f), args.data) for f in files]
        source = f"{len(files)} audio files labelled by their folders"
    else:
        labelled = read_labelled(args, "evaluate")
        files, truth = labelled.files, [g[0] for g in labelled.genres]
        several = sum(len(g) > 1 for g in labelled.genres)
        if several:
            print(f"evaluate: {several} files carry several labels; scored on the first", file=sys.stderr)
        source = f"{len(files)} audio files labelled from {labelled.source}"
    if not files:
        raise CommandError(f"{args.data}: no labelled audio file to score")
    try:  # refused before any file is classified
        label_map = label_map.resolve(bundle.labels, set(truth))
    except ParameterError as exc:
        raise CommandError(str(exc)) from None
    _, names, truth, said = _classify_files(args, bundle, files, truth)
    figures = map_figures(truth, [n for n, _ in said], [u for _, u in said], label_map, seed=args.seed)
    _print_mapped(figures)
    figures.update(model=str(args.model), labels=list(bundle.labels),
                   data={"source": str(args.data), "rows": source, "failed": len(files) - len(names)},
                   songs=[{"file": n, "label": t, "named": g, "unknown": u}
                          for n, t, (g, u) in zip(names, truth, said)])
    if args.out:
        write_json_atomic(args.out, figures)
    return 0


def _print_mapped(f: dict) -> None:
    """The report of a ``--label-map`` run: overall and per dataset label, the unknown flags, the confusion."""
    def ci(block):
        return f"{block['accuracy']:.3f} [{block['accuracy_ci'][0]:.3f}, {block['accuracy_ci'][1]:.3f}]"

    print(f"accuracy {ci(f)}  ({f['right']} of {f['n']} songs right through the label map {f['map']})")
    width = max(len(printable(label, limit=24)) for label in f["per_label"])
    for label, b in f["per_label"].items():
        print(f"  {printable(label, limit=24):<{width}}  n {b['n']:>4}  right {b['right']:>4}  {ci(b)}  "
              f"right when: {printable(b['counts_as'], limit=120)}")
    if not f["unknown_decision"]:
        print("flagged unknown: the model has no unknown decision (a label mapped to none is right only when "
              "named by a genre the map allows)")
    else:
        print(f"flagged unknown: {f['flagged_unknown']} of {f['n']} songs; {f['right_by_unknown']} counted right "
              f"because their label maps to none, the other {f['flagged_unknown'] - f['right_by_unknown']} "
              f"scored by the genre named")
    print("confusion (dataset label: what the model named):")
    for label, counts in f["confusion"].items():
        print(f"  {printable(label, limit=24)}: " + ", ".join(f"{printable(g, limit=40)} {n}" for g, n in counts.items()))
