"""``genrekit train``, ``genrekit evaluate`` and ``genrekit cluster``: models on feature tables."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from .common import (TORCH_HINT, CommandError, add_engine_arguments, add_model_argument, engine_from_args,
                     jobs_count, model_path, open_fraction, positive_int)

SPLITS = ("random", "random-rows", "artist", "fault-filtered", "kfold", "folds")


#: What ``--artists`` without a FILE stands for: the artist index of the ``--data`` dataset.
DATASET_ARTISTS = "<dataset>"


def _data_argument(p: argparse.ArgumentParser, flag: str = "--data") -> None:
    p.add_argument(flag, dest="data", required=True, type=Path, metavar="TABLE_OR_DIR_OR_NAME",
                   help="a Kaggle-layout table (.csv/.parquet, 30-s or 3-s), a Marsyas .arff, genrekit "
                        "features output, a GTZAN-style audio folder (<genre>/<file>; features via the cache), "
                        "or the name of a downloaded dataset (gtzan, fma-small, ballroom...: genrekit datasets)")
    p.add_argument("--data-root", type=Path, metavar="DIR",
                   help="where named datasets are (default: $GENREKIT_DATA or ~/genrekit-data)")


def _split_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("split (windows of one track always stay on one side, except random-rows)")
    g.add_argument("--split", choices=SPLITS, default="random",
                   help="random: stratified by track; random-rows: the seeds' leaky row split (flagged); "
                        "artist: grouped by artist (--artists); fault-filtered: Kereliuk/Sturm lists (--split-dir); "
                        "kfold: K folds (--folds), grouped by artist when --artists is given (default random)")
    g.add_argument("--test-size", type=open_fraction, default=None, metavar="SHARE",
                   help="random/artist: test share of tracks (default 0.25; --model cnn: 0.2)")
    g.add_argument("--valid-size", type=float, default=None, metavar="SHARE",
                   help="random/artist: validation share of all tracks, taken from training; a run with one "
                        "selects its model on it (default 0: none; --model cnn: 0.1)")
    g.add_argument("--seed", type=int, default=0, metavar="N",
                   help="seed of the split, the models and the search (default 0)")
    g.add_argument("--artists", type=Path, metavar="FILE", nargs="?", const=DATASET_ARTISTS,
                   help="artist index: GTZANindex.txt format (file ::: artist ::: title) or CSV filename,artist; "
                        "without FILE (or with --split artist), the index of the --data dataset (default: none)")
    g.add_argument("--split-dir", type=Path, metavar="DIR",
                   help="fault-filtered: folder with train_filtered.txt, valid_filtered.txt, test_filtered.txt "
                        "(default for --data gtzan: its downloaded lists; otherwise needed by --split fault-filtered)")
    g.add_argument("--folds", type=positive_int, default=5, metavar="K", help="kfold: number of folds (default 5)")


def _or(value, default):
    """An option's value, or its default when not given (defaults differ between classical and cnn)."""
    return default if value is None else value


def _cache_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cache", type=Path, metavar="DIR",
                   help="feature cache for audio folders (default: $GENREKIT_CACHE or ~/.cache/genrekit)")
    p.add_argument("--jobs", "-j", type=jobs_count, default=None, metavar="N",
                   help="worker processes (default 1; audio folders with --engine ray: every CPU Ray has)")
    add_engine_arguments(p)


def _resolve_name(args):
    """When ``--data`` names a downloaded dataset: resolve it, and fill in its split lists and artist index.

    Returns the :class:`~genrekit.datasets.resolve.Resolved` dataset, or ``None`` for a path.
    """
    from ..datasets import DatasetError
    from ..datasets.registry import is_dataset_name

    if getattr(args, "resolved", None) is not None:
        return args.resolved
    split = getattr(args, "split", None)
    if args.data.exists() or not is_dataset_name(str(args.data)):
        if _dataset_artists(getattr(args, "artists", None)):
            args.parser.error("--artists without FILE needs --data NAME, a downloaded dataset with an artist index")
        return None
    from ..datasets.resolve import resolve

    try:
        resolved = resolve(str(args.data), args.data_root)
        if split == "fault-filtered" and args.split_dir is None:
            args.split_dir = resolved.split_dir("fault-filtered")
        artists = getattr(args, "artists", None)
        if _dataset_artists(artists) or (artists is None and split == "artist"):
            args.artists = resolved.artist_index()
    except DatasetError as exc:
        raise CommandError(str(exc)) from exc
    args.resolved = resolved
    return resolved


def _dataset_artists(value) -> bool:
    # argparse passes a string const through type=Path, so compare the text.
    return value is not None and str(value) == DATASET_ARTISTS


def _load(args, feature_set=None):
    """The table ``--data`` names; audio is analysed with ``feature_set`` (default: gtzan57 30-s rows)."""
    from ..datasets import DatasetError, load_audio_files, load_table

    resolved = _resolve_name(args)
    with engine_from_args(args) as engine:  # used only for audio, started only if files need computing
        try:
            if resolved is not None:
                ds = resolved.dataset
                return load_audio_files(resolved.files, resolved.audio_root, audio_feature_set=feature_set,
                                        cache=args.cache, engine=engine, progress=sys.stderr.isatty(),
                                        description=f"dataset {ds.name}, {ds.title}")
            return load_table(args.data, audio_feature_set=feature_set, cache=args.cache, engine=engine,
                              progress=sys.stderr.isatty())
        except (DatasetError, OSError) as exc:
            raise CommandError(str(exc)) from exc


# --- train ----------------------------------------------------------------------------------------
def train_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", "-m", default="all", metavar="NAME",
                   help="logreg, knn, tree, forest, svm-linear, svm-poly, svm-rbf, mlp, gboost, a comma list, "
                        f"all (default), or cnn (needs PyTorch: {TORCH_HINT}; see --arch)")
    _data_argument(p)
    _split_arguments(p)
    p.add_argument("--search", action="store_true",
                   help="randomized hyper-parameter search, cross-validated inside the training part only "
                        "(folds grouped by artist with --artists, else by track; default: each model's "
                        "fixed parameters)")
    p.add_argument("--n-iter", type=positive_int, default=20, metavar="N",
                   help="with --search: candidates per model (default 20)")
    p.add_argument("--out", "-o", type=Path, metavar="RUN_DIR", required=True,
                   help="run folder: results.json and one bundle per model")
    _cache_arguments(p)
    from ..models.cnn_options import add_cnn_arguments  # no PyTorch import: the parser stays light

    add_cnn_arguments(p.add_argument_group(f"cnn (--model cnn; needs PyTorch: {TORCH_HINT})"))


def train_run(args) -> int:
    from ..experiment import ExperimentConfig, expand_models, run_experiment

    if args.model == "cnn":
        try:
            from ..models.train_cnn import run_from_args
        except ImportError as exc:
            raise CommandError(f"--model cnn needs PyTorch, which is not installed ({exc}): {TORCH_HINT} "
                               f"(pinned: a bare `torch` brings gigabytes of CUDA packages)") from exc
        resolved = _resolve_name(args)
        if resolved is not None:
            args.data = _manifest(resolved)
        if args.engine != "local" or args.address is not None:
            args.parser.error("--engine/--address: not for --model cnn (its features are computed locally)")
        args.jobs = 1 if args.jobs is None else args.jobs
        return run_from_args(args)
    try:
        models = expand_models([args.model])
    except ValueError as exc:
        args.parser.error(str(exc))
    table = _load(args)
    config = ExperimentConfig(
        models=models, split=args.split, test_size=_or(args.test_size, 0.25), valid_size=_or(args.valid_size, 0.0),
        seed=args.seed,
        artists=str(args.artists) if args.artists else None,
        split_dir=str(args.split_dir) if args.split_dir else None,
        folds=args.folds, search=args.search, n_iter=args.n_iter,
    )
    command = "genrekit " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    print(f"train: {table.source}; {len(table.X)} rows, {table.n_tracks} tracks; split {args.split}", file=sys.stderr)
    try:
        results = run_experiment(table, config, args.out, command=command, n_jobs=args.jobs if args.jobs is not None else 1,
                                 progress=lambda line: print("  " + line, file=sys.stderr))
    except ValueError as exc:
        raise CommandError(str(exc)) from exc
    if results.get("warning"):
        print(f"train: WARNING: {results['warning']}", file=sys.stderr)
    if results.get("selected"):
        print(f"train: selected by {results['selected_by']}: {results['selected']}", file=sys.stderr)
    print(f"train: wrote {args.out / 'results.json'}", file=sys.stderr)
    bundles = [name for name, entry in results.get("models", {}).items() if entry.get("bundle")]
    if results.get("selected") in bundles or len(bundles) == 1:
        print(f"train: classify with it: genrekit classify SONG --model {args.out}", file=sys.stderr)
    elif bundles:
        # No validation set chose one: say how to name a model (--model RUN_DIR alone is refused).
        print(f"train: classify with one: genrekit classify SONG --model {args.out / bundles[0]} "
              f"(`genrekit models {args.out}` lists all {len(bundles)})", file=sys.stderr)
    return 0


def _manifest(resolved) -> Path:
    """A ``path,label`` CSV of a resolved dataset (what the CNN trainer reads), kept in its .genrekit folder."""
    import csv
    import io

    from .._io import write_bytes_atomic
    from ..datasets.install import META

    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["path", "label"])
    writer.writerows((str(path), label) for path, label in resolved.files)
    path = resolved.folder / META / resolved.dataset.name / "manifest.csv"
    write_bytes_atomic(path, buf.getvalue().encode("utf-8"))
    return path


# --- evaluate ------------------------------------------------------------------------------------------
def evaluate_arguments(p: argparse.ArgumentParser) -> None:
    add_model_argument(p, required=True, what="model to score")
    _data_argument(p)
    p.add_argument("--side", choices=("all", "train", "valid", "test"), default="all",
                   help="evaluate on these rows of --split (default all rows of --data)")
    _split_arguments(p)
    p.add_argument("--out", "-o", type=Path, metavar="FILE", help="also write the metrics as JSON (default: print them only)")
    _cache_arguments(p)


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
        table = _load(args, fs)
    expected = bundle.feature_names if bundle.kind != "cnn" else list(bundle.labels)
    if expected and list(table.feature_names) != expected:
        missing = [f for f in expected if f not in table.feature_names]
        raise CommandError(f"{args.data}: its features do not match the model's inputs"
                           + (f" (missing {', '.join(missing[:5])})" if missing else " (different order)"))
    rows = np.arange(len(table.X))
    description = "all rows"
    if args.side != "all":
        split = make_splits(table, args.split, test_size=_or(args.test_size, 0.25),
                            valid_size=_or(args.valid_size, 0.0), seed=args.seed,
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
              f"balanced {f['balanced_accuracy']:.3f}  macro-F1 {f['macro_f1']:.3f}")
    print(f"({figures['n_tracks']} tracks, {figures['n_windows']} windows; {description})")
    if args.out:
        write_json_atomic(args.out, figures)
    return 0


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
        print(f"skipped {line}", file=sys.stderr)
    if not rows:
        raise CommandError(f"{folder}: no file could be classified")
    tracks = [n.rsplit(".", 1)[0] for n in names]
    return FeatureTable(np.asarray(rows), np.asarray(labels), np.asarray(tracks), np.asarray(names),
                        list(bundle.labels), f"{folder} (audio folder: {len(rows)} files classified by the model)")


# --- cluster ---------------------------------------------------------------------------------------------
def cluster_arguments(p: argparse.ArgumentParser) -> None:
    _data_argument(p, "--features")
    p.add_argument("--k", type=positive_int, metavar="K", help="number of clusters (default: the number of genres)")
    p.add_argument("--seed", type=int, default=0, metavar="N", help="k-means seed (default 0)")
    p.add_argument("--out", "-o", type=Path, metavar="FILE",
                   help="JSON with the metrics, the cluster x genre table and the 3-D PCA coordinates (default: none)")
    p.add_argument("--table-out", type=Path, metavar="FILE", help="the cluster x genre table as CSV (default: none)")
    _cache_arguments(p)


def cluster_run(args) -> int:
    from .._io import write_bytes_atomic, write_json_atomic
    from ..cluster import cluster

    table = _load(args)
    try:
        result = cluster(table.X, table.labels, k=args.k, seed=args.seed, rows=table.rows, tracks=table.tracks,
                         source=table.source)
    except ValueError as exc:
        raise CommandError(str(exc)) from exc
    print(f"k-means, k={result.k}, on {len(table.X)} rows ({table.n_tracks} tracks) of {table.source}")
    print(f"ARI {result.ari:.3f}  NMI {result.nmi:.3f}  purity {result.purity:.3f}")
    print(result.table_text())
    if args.out:
        write_json_atomic(args.out, result.to_dict())
    if args.table_out:
        lines = ["cluster," + ",".join(result.genres)]
        lines += [f"{c}," + ",".join(str(n) for n in row) for c, row in enumerate(result.counts)]
        write_bytes_atomic(args.table_out, ("\n".join(lines) + "\n").encode())
    return 0
