"""``genrekit train``: train and compare models on a feature table, audio folder or dataset, on a leak-free split.

The options choose one trainer (:mod:`genrekit.training.base`): classical models on a table
(:class:`~genrekit.training.classical.ClassicalTrainer`), a head on the backbone from the
files' own genres (``--labels tags`` or ``FILE.csv``:
:class:`~genrekit.training.own_genres.OwnGenresTrainer`), or a CNN (``--model cnn``:
:class:`~genrekit.training.cnn.trainer.CnnTrainer`, options in :mod:`genrekit.commands.train_cnn`).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from genrekit.commands.common import TORCH_HINT, engine_from_args, output_option, positive_int
from genrekit.errors import CommandError
from genrekit.output import printable

from genrekit.commands.table_data import (data_argument, split_arguments, or_default, cache_arguments, resolve_dataset_name, load_data,
                         labels_arguments, read_labelled)
from genrekit.commands.train_cnn import add_cnn_arguments, cnn_options  # no PyTorch import: the parser stays light
from genrekit.errors import DatasetError, ParameterError, TagError, TrainingError
from genrekit.training.run_folder import DONE_DIR, model_folder, read_results, results_path


def train_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", "-m", default=None, metavar="NAME",
                   help="logreg, knn, tree, forest, svm-linear, svm-poly, svm-rbf, mlp, gboost, a comma list, "
                        f"all (default), or cnn (needs PyTorch: {TORCH_HINT}; see --arch); with --labels tags "
                        "or FILE.csv: one classical family on the backbone's tags, or (not given) the shipped "
                        "default's kind of head")
    data_argument(p)
    labels_arguments(p, "training")
    p.add_argument("--no-refit", action="store_true",
                   help="with --labels tags or FILE.csv: keep the model the test figures measured, fitted on "
                        "the split's training part (default: after the test, refit on every labelled song)")
    p.add_argument("--no-exposure", action="store_true",
                   help="with --labels tags or FILE.csv: fit the unknown decision without the files whose "
                        "genres --names leaves out (default: they are its outlier exposure, songs known to be "
                        "of none of the model's genres; never training or test songs)")
    p.add_argument("--leave-out-rare", action="store_true",
                   help="with --labels tags or FILE.csv: leave out genres on too few files for the split "
                        "instead of refusing them; files left without a genre join those --names leaves out")
    split_arguments(p)
    p.add_argument("--search", action="store_true",
                   help="randomized hyper-parameter search, cross-validated inside the training part only "
                        "(folds grouped by artist with --artists, else by track; default: each model's "
                        "fixed parameters)")
    p.add_argument("--n-iter", type=positive_int, default=20, metavar="N",
                   help="with --search: candidates per model (default 20)")
    output_option(p, "--out", "-o", kind="folder", metavar="RUN_DIR", required=True,
                   help="run folder: results.json and one bundle per model")
    p.add_argument("--overwrite", action="store_true",
                   help="replace a finished run of another experiment in --out (its results.json, checkpoints "
                        "and model bundles are removed first; default: refuse, so two runs never mix in one "
                        "folder; the same command again keeps its finished models)")
    cache_arguments(p)
    add_cnn_arguments(p.add_argument_group(f"cnn (--model cnn; needs PyTorch: {TORCH_HINT})"))


def train_run(args) -> int:
    from genrekit.training.classical import ClassicalTrainer, ExperimentConfig, expand_models

    if args.labels != "folders":
        return own_genres_run(args)
    if args.names is not None:
        args.parser.error("--names: only with --labels tags or --labels FILE.csv")
    if args.no_refit:
        args.parser.error("--no-refit: only with --labels tags or --labels FILE.csv")
    for flag in ("no_exposure", "leave_out_rare"):
        if getattr(args, flag):
            args.parser.error(f"--{flag.replace('_', '-')}: only with --labels tags or --labels FILE.csv")
    args.model = args.model or "all"
    if args.model == "cnn":
        try:
            from genrekit.training.cnn.trainer import CnnTrainer
        except ImportError as exc:
            raise CommandError(f"--model cnn needs PyTorch, which is not installed ({exc}): {TORCH_HINT} "
                               f"(pinned: a bare `torch` brings gigabytes of CUDA packages)") from exc
        resolved = resolve_dataset_name(args)
        if resolved is not None:
            args.data = _manifest(resolved)
        if args.engine != "local" or args.address is not None:
            args.parser.error("--engine/--address: not for --model cnn (its features are computed locally)")
        args.jobs = 1 if args.jobs is None else args.jobs
        CnnTrainer(args.data, cnn_options(args)).train(args.out)
        return 0
    try:
        models = expand_models([args.model])
    except ParameterError as exc:
        args.parser.error(str(exc))
    table = load_data(args)  # before the config: a dataset named by --data sets args.split_dir/artists
    config = ExperimentConfig(
        models=models, split=args.split, test_size=or_default(args.test_size, 0.25), valid_size=or_default(args.valid_size, 0.0),
        seed=args.seed,
        artists=str(args.artists) if args.artists else None,
        split_dir=str(args.split_dir) if args.split_dir else None,
        folds=args.folds, search=args.search, n_iter=args.n_iter,
    )
    _claim_run_folder(args.out, config, args.overwrite)
    command = "genrekit " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    print(f"train: {table.source}; {len(table.X)} rows, {table.n_tracks} tracks; split {args.split}", file=sys.stderr)
    trainer = ClassicalTrainer(table, config, command=command, n_jobs=args.jobs if args.jobs is not None else 1,
                               progress=lambda line: print("  " + line, file=sys.stderr))
    try:
        results = trainer.train(args.out).results
    except (DatasetError, TrainingError) as exc:
        raise CommandError(str(exc)) from exc
    if results.get("warning"):
        print(f"train: WARNING: {results['warning']}", file=sys.stderr)
    if results.get("selected"):
        print(f"train: selected by {results['selected_by']}: {results['selected']}", file=sys.stderr)
    print(f"train: wrote {results_path(args.out)}", file=sys.stderr)
    bundles = [name for name, entry in results.get("models", {}).items() if entry.get("bundle")]
    if results.get("selected") in bundles or len(bundles) == 1:
        print(f"train: classify with it: genrekit classify SONG --model {args.out}", file=sys.stderr)
    elif bundles:
        # No validation set chose one: say how to name a model (--model RUN_DIR alone is refused).
        print(f"train: classify with one: genrekit classify SONG --model {model_folder(args.out, bundles[0])} "
              f"(`genrekit models {args.out}` lists all {len(bundles)})", file=sys.stderr)
    return 0


def own_genres_run(args) -> int:
    """``--labels tags`` / ``--labels FILE.csv``: the default recipe on the backbone (:mod:`genrekit.training.own_genres`)."""
    from genrekit.models.classical import MODEL_NAMES
    from genrekit.training.own_genres import DEFAULT_HEAD, OwnGenresOptions, OwnGenresTrainer

    if args.model is not None and args.model not in (*MODEL_NAMES, DEFAULT_HEAD):
        args.parser.error(f"--model {args.model} with --labels {args.labels}: one of {', '.join(MODEL_NAMES)} "
                          f"(a head on the backbone's tags), or leave --model out for the default head")
    labelled = read_labelled(args, "train", "several on some files (one-vs-rest)")
    try:
        command = "genrekit " + " ".join(shlex.quote(a) for a in sys.argv[1:])
        options = OwnGenresOptions(model=args.model, seed=args.seed, test_size=or_default(args.test_size, 0.25),
                                   cache=args.cache, refit=not args.no_refit, exposure=not args.no_exposure,
                                   leave_out_rare=args.leave_out_rare)
        with engine_from_args(args) as engine:
            trainer = OwnGenresTrainer(labelled, args.data, options, engine=engine, command=command,
                                       progress=lambda line: print("  " + line, file=sys.stderr))
            results = trainer.train(args.out).results
    except (DatasetError, TagError, OSError) as exc:
        raise CommandError(str(exc)) from exc
    figures = results["models"]["own-genres"]["figures"]
    print("train: test (" + ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}"
                                      for k, v in figures.items()) + ")", file=sys.stderr)
    labels = results["labels"]
    print(f"train: the model saved was refitted on all {labels['fitted_songs']} labelled songs after the test"
          if labels["refit"] else f"train: --no-refit: the model saved is the one tested, fitted on "
                                  f"{labels['fitted_songs']} songs", file=sys.stderr)
    if labels["left_out_rare"]:
        print("train: --leave-out-rare: left out " + ", ".join(f"{printable(label)} ({n} files)" for label, n
                                                               in labels["left_out_rare"].items()), file=sys.stderr)
    exposure = labels["exposure"]
    if exposure["songs"]:
        print(f"train: the unknown decision was fitted with {exposure['songs']} songs of genres --names leaves "
              f"out as outlier exposure", file=sys.stderr)
    elif labelled.dropped and not exposure["used"]:
        print(f"train: --no-exposure: the {len(labelled.dropped)} songs --names leaves out were not used",
              file=sys.stderr)
    print(f"train: wrote {results_path(args.out)}", file=sys.stderr)
    print(f"train: classify with it: genrekit classify SONG --model {args.out}", file=sys.stderr)
    return 0


def _manifest(resolved) -> Path:
    """A ``path,label`` CSV of a resolved dataset (what the CNN trainer reads), kept in its .genrekit folder."""
    import csv
    import io

    from genrekit._io import write_bytes_atomic
    from genrekit.datasets.install import META

    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["path", "label"])
    writer.writerows((str(path), label) for path, label in resolved.files)
    path = resolved.folder / META / resolved.dataset.name / "manifest.csv"
    write_bytes_atomic(path, buf.getvalue().encode("utf-8"))
    return path


def _claim_run_folder(out: Path, config, overwrite: bool) -> None:
    """Refuse a folder holding another experiment's finished run unless ``overwrite``, which removes it.

    Checked once the data is loaded (a dataset named by ``--data`` completes the settings) and
    before any model is fitted.

    A finished run (``results.json``) whose bundles stayed beside a new run's would list models
    of two different splits. The same experiment (same models, split and settings) run again
    goes on from its checkpoints, as before: finished models are kept.
    """
    import json
    import shutil
    from dataclasses import asdict

    from genrekit.models.registry import find_bundles

    if not results_path(out).is_file():
        return
    try:
        same = read_results(out).get("config") == json.loads(json.dumps(asdict(config)))
    except AttributeError:  # unreadable, or not an object
        same = False
    if same and not overwrite:
        return
    bundles = [b for b in find_bundles(out, max_depth=1) if b != out]
    if not overwrite:
        raise CommandError(f"--out {out}: already holds a finished training run of other models or settings "
                           f"({len(bundles)} model bundle(s)); give a new folder, or add --overwrite to replace it")
    for bundle in bundles:
        shutil.rmtree(bundle)
    shutil.rmtree(out / DONE_DIR, ignore_errors=True)
    results_path(out).unlink()
    print(f"train: --overwrite: removed the earlier run in {out} ({len(bundles)} bundle(s))", file=sys.stderr)
