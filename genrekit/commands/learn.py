"""``genrekit train``, ``genrekit evaluate`` and ``genrekit cluster``: models on feature tables."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

SPLITS = ("random", "random-rows", "artist", "fault-filtered", "kfold", "folds")


def _data_argument(p: argparse.ArgumentParser, flag: str = "--data") -> None:
    p.add_argument(flag, dest="data", required=True, type=Path, metavar="TABLE_OR_DIR",
                   help="a Kaggle-layout table (.csv/.parquet, 30-s or 3-s), a Marsyas .arff, genrekit "
                        "features output, or a GTZAN-style audio folder (<genre>/<file>; features via the cache)")


def _split_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("split (windows of one track always stay on one side, except random-rows)")
    g.add_argument("--split", choices=SPLITS, default="random",
                   help="random: stratified by track; random-rows: the seeds' leaky row split (flagged); "
                        "artist: grouped by artist (--artists); fault-filtered: Kereliuk/Sturm lists (--split-dir); "
                        "kfold: K folds (--folds), grouped by artist when --artists is given")
    g.add_argument("--test-size", type=float, default=0.25, help="random/artist: test share of tracks (0.25)")
    g.add_argument("--valid-size", type=float, default=0.0,
                   help="random/artist: validation share of all tracks, taken from training (default none)")
    g.add_argument("--seed", type=int, default=0, help="seed of the split, the models and the search")
    g.add_argument("--artists", type=Path, metavar="FILE",
                   help="artist index: GTZANindex.txt format (file ::: artist ::: title) or CSV filename,artist")
    g.add_argument("--split-dir", type=Path, metavar="DIR",
                   help="fault-filtered: folder with train_filtered.txt, valid_filtered.txt, test_filtered.txt")
    g.add_argument("--folds", type=int, default=5, help="kfold: number of folds (5)")


def _cache_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cache", type=Path, metavar="DIR", help="feature cache for audio folders")
    p.add_argument("--jobs", "-j", type=int, default=None, metavar="N",
                   help="worker processes (default 1; audio folders with --engine ray: every CPU Ray has)")
    from ..cli import _add_engine_arguments

    _add_engine_arguments(p)


def _load(args):
    from ..cli import CommandError, _engine
    from ..datasets import DatasetError, load_table

    with _engine(args) as engine:  # used only for an audio folder, started only if files need computing
        try:
            return load_table(args.data, cache=args.cache, engine=engine, progress=sys.stderr.isatty())
        except (DatasetError, OSError) as exc:
            raise CommandError(str(exc)) from exc


# --- train ----------------------------------------------------------------------------------------
def train_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", "-m", default="all", metavar="NAME",
                   help="logreg, knn, tree, forest, svm-linear, svm-poly, svm-rbf, mlp, gboost, a comma list, "
                        "all (default), or cnn (needs genrekit[train]; see --arch)")
    _data_argument(p)
    _split_arguments(p)
    p.add_argument("--search", action="store_true",
                   help="randomized hyper-parameter search, cross-validated inside the training part only "
                        "(folds grouped by artist with --artists, else by track)")
    p.add_argument("--n-iter", type=int, default=20, help="search candidates per model (20)")
    p.add_argument("--out", "-o", type=Path, metavar="RUN_DIR", required=True,
                   help="run folder: results.json and one bundle per model")
    _cache_arguments(p)
    from ..models.cnn_options import add_cnn_arguments  # no PyTorch import: the parser stays light

    add_cnn_arguments(p.add_argument_group("cnn (--model cnn; needs genrekit[train])"))


def train_run(args) -> int:
    from ..cli import CommandError
    from ..experiment import ExperimentConfig, expand_models, run_experiment

    if args.model == "cnn":
        try:
            from ..models.train_cnn import run_from_args
        except ImportError as exc:
            raise CommandError(f"--model cnn needs PyTorch: pip install 'genrekit[train]' ({exc})") from exc
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
        models=models, split=args.split, test_size=args.test_size, valid_size=args.valid_size, seed=args.seed,
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
    return 0


# --- evaluate ------------------------------------------------------------------------------------------
def evaluate_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", "-m", required=True, type=Path, metavar="BUNDLE", help="a model bundle or run folder")
    _data_argument(p)
    p.add_argument("--side", choices=("all", "train", "valid", "test"), default="all",
                   help="evaluate on these rows of --split (default all rows of --data)")
    _split_arguments(p)
    p.add_argument("--out", "-o", type=Path, metavar="FILE", help="write the metrics as JSON")
    _cache_arguments(p)


def evaluate_run(args) -> int:
    import numpy as np

    from .._io import write_json_atomic
    from ..cli import CommandError
    from ..datasets import make_splits
    from ..evaluate import evaluate
    from ..models.bundle import BundleError, load_bundle
    from ..predict import bundle_folder

    try:
        bundle = load_bundle(bundle_folder(args.model))
    except BundleError as exc:
        raise CommandError(str(exc)) from exc
    table = _load(args)
    expected = bundle.feature_names
    if expected and list(table.feature_names) != expected:
        missing = [f for f in expected if f not in table.feature_names]
        raise CommandError(f"{args.data}: its features do not match the model's inputs"
                           + (f" (missing {', '.join(missing[:5])})" if missing else " (different order)"))
    rows = np.arange(len(table.X))
    description = "all rows"
    if args.side != "all":
        split = make_splits(table, args.split, test_size=args.test_size, valid_size=args.valid_size, seed=args.seed,
                            artists=args.artists, split_dir=args.split_dir, folds=args.folds)[0]
        rows = getattr(split, args.side)
        if rows is None:
            raise CommandError(f"the {args.split} split has no {args.side} side")
        description = f"{args.side} side of: {split.description}"
    part = table.subset(rows)
    unknown = sorted(set(part.labels) - set(bundle.labels))
    if unknown:
        raise CommandError(f"{args.data}: labels the model does not know: {', '.join(unknown)}")
    figures = evaluate(bundle.predict_proba(part.X.astype(np.float32)), part, bundle.labels, seed=args.seed)
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


# --- cluster ---------------------------------------------------------------------------------------------
def cluster_arguments(p: argparse.ArgumentParser) -> None:
    _data_argument(p, "--features")
    p.add_argument("--k", type=int, help="number of clusters (default: the number of genres)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", "-o", type=Path, metavar="FILE",
                   help="JSON with the metrics, the cluster x genre table and the 3-D PCA coordinates")
    p.add_argument("--table-out", type=Path, metavar="FILE", help="the cluster x genre table as CSV")
    _cache_arguments(p)


def cluster_run(args) -> int:
    from .._io import write_bytes_atomic, write_json_atomic
    from ..cli import CommandError
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
