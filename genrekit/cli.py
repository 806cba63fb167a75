"""The ``genrekit`` command: one subcommand (verb) per job.

Adding a verb: write ``_<verb>_arguments(parser)`` and ``_<verb>_run(args) -> int``
(or import them from the module that does the job) and add one :class:`Verb` line to
:data:`VERBS`. Handlers raise :class:`~genrekit.errors.CommandError` for failures
that are not about one input file; any :class:`~genrekit.errors.GenrekitError` a handler lets
through is printed as one line too (exit status 1); usage mistakes go through ``args.parser.error``
(exit status 2). Shared argument types and options live in :mod:`genrekit.commands.common`.

Exit status: 0 success, 1 some input failed or the job could not finish, 2 usage
error, 130 interrupted.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ._version import __version__
from .commands import learn
from .commands.common import (Parser, add_cache_arguments, add_engine_arguments, add_jobs_argument,
                              engine_from_args, error_line, jobs_count, no_audio_error, open_store, positive_int,
                              seconds)
from .commands.classify import classify_arguments, classify_run
from .commands.datasets import datasets_arguments, datasets_run
from .commands.explain import explain_arguments, explain_run
from .commands.models import models_arguments, models_run
from .commands.report import report_arguments, report_run
from .commands.serve import serve_arguments, serve_run
from .commands.similar import similar_arguments, similar_run
from .errors import CommandError, GenrekitError


@dataclass(frozen=True)
class Verb:
    """A subcommand: its name, one-line help, argument setup and handler.

    ``runs_bare``: the verb does something useful with no arguments (``serve``,
    ``models``); any other verb given alone prints its help.
    """

    name: str
    help: str
    arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]
    runs_bare: bool = False


# Old names, for code written before they moved to genrekit.commands.common.
_positive_int, _jobs, _seconds = positive_int, jobs_count, seconds
_add_cache_arguments, _add_jobs_argument, _open_store = add_cache_arguments, add_jobs_argument, open_store
_add_engine_arguments, _engine = add_engine_arguments, engine_from_args


# --- features ---------------------------------------------------------------------
_SPECTRAL_OPTIONS = {  # option -> FeatureSet parameter, for logmel/mfcc only
    "sr": "sample_rate", "n_fft": "n_fft", "hop_length": "hop_length", "n_mels": "n_mels", "n_mfcc": "n_mfcc",
}


def _features_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="+", metavar="PATH",
                   help="audio files and folders (folders are searched recursively), or the name of one "
                        "downloaded dataset (gtzan, fma-small...: its clips, labelled as the dataset says)")
    p.add_argument("--data-root", type=Path, metavar="DIR",
                   help="where named datasets are (default: $GENREKIT_DATA or ~/genrekit-data)")
    p.add_argument("--set", dest="set_name", choices=("gtzan57", "logmel", "mfcc", "musicnn"), default="gtzan57",
                   help="feature set (default gtzan57: the 57-column Kaggle GTZAN table; musicnn: the pretrained "
                        "MSD-musicnn network's 50 tags + 200-d embedding per 3-s patch)")
    p.add_argument("--window", metavar="SECONDS", type=seconds,
                   help="gtzan57: one table row per window of this length (default 30; 3 = the 3-sec table); "
                        "musicnn: one table row per window, the mean of its patches (default: a row per patch)")
    p.add_argument("--out", "-o", metavar="FILE", type=Path,
                   help="gtzan57 (and musicnn with --window): .csv or .parquet (default: CSV on stdout); "
                        "logmel/mfcc/musicnn: a folder of .npy files or a .npz file (required)")
    spectral = p.add_argument_group("logmel / mfcc parameters")
    spectral.add_argument("--sr", metavar="HZ", type=positive_int, help="sample rate (default 22050)")
    spectral.add_argument("--n-fft", metavar="N", type=positive_int, help="STFT frame length in samples (default 2048)")
    spectral.add_argument("--hop-length", metavar="N", type=positive_int, help="STFT hop in samples (default 512)")
    spectral.add_argument("--n-mels", metavar="N", type=positive_int, help="mel bands (default 128)")
    spectral.add_argument("--n-mfcc", metavar="N", type=positive_int, help="mfcc only: coefficients (default 20)")
    add_jobs_argument(p)
    add_engine_arguments(p)
    add_cache_arguments(p)


def _features_set(args: argparse.Namespace):
    """The FeatureSet the options describe; refuses options that do not apply to it."""
    from .features import feature_set

    error = args.parser.error
    given = {opt: getattr(args, opt) for opt in _SPECTRAL_OPTIONS if getattr(args, opt) is not None}
    if args.set_name == "gtzan57":
        if given:
            flags = ", ".join("--" + o.replace("_", "-") for o in given)
            error(f"{flags}: only for --set logmel/mfcc (the gtzan57 table has fixed parameters)")
        params = {"window": args.window if args.window is not None else 30.0}
    elif args.set_name == "musicnn":
        if given:
            flags = ", ".join("--" + o.replace("_", "-") for o in given)
            error(f"{flags}: only for --set logmel/mfcc (musicnn's front end is fixed by its weights)")
        params = {"window": args.window}
    else:
        if args.window is not None:
            error("--window: only for --set gtzan57")
        if args.set_name != "mfcc" and "n_mfcc" in given:
            error("--n-mfcc: only for --set mfcc")
        params = {_SPECTRAL_OPTIONS[o]: v for o, v in given.items()}
    try:
        return feature_set(args.set_name, **params)
    except ValueError as exc:
        error(str(exc))


def _features_output(args: argparse.Namespace, fs) -> str:
    """What ``--out`` asks for: ``stdout``, ``csv``, ``parquet``, ``npz`` or ``npy`` (a folder)."""
    error = args.parser.error
    out = args.out
    suffix = out.suffix.lower() if out is not None else ""
    if fs.name == "gtzan57" or (fs.name == "musicnn" and fs.window is not None):
        if out is None:
            return "stdout"
        if suffix not in (".csv", ".parquet"):
            error(f"--out {out}: the {fs.name} table is written to a .csv or .parquet file")
        if suffix == ".parquet":
            from .features.export import require_pyarrow

            try:
                require_pyarrow()
            except ImportError as exc:
                error(str(exc))
        return suffix[1:]
    if out is None:
        error(f"--set {fs.name} gives one array per file: --out DIR (a .npy per file) or --out FILE.npz is required")
    if suffix == ".npz":
        return "npz"
    if suffix in (".csv", ".parquet", ".npy"):
        error(f"--out {out}: {fs.name} arrays go to a folder or a .npz file")
    if out.exists() and not out.is_dir():
        error(f"--out {out}: exists and is not a folder")
    return "npy"


def _features_dataset(args: argparse.Namespace):
    """The resolved dataset when the only PATH is the name of one (and no such file exists), else ``None``."""
    from .datasets import DatasetError
    from .datasets.registry import is_dataset_name

    if len(args.paths) != 1 or Path(args.paths[0]).exists() or not is_dataset_name(args.paths[0]):
        return None
    from .datasets.resolve import resolve

    try:
        return resolve(args.paths[0], args.data_root)
    except DatasetError as exc:
        raise CommandError(str(exc)) from exc


def _features_run(args: argparse.Namespace) -> int:
    with _engine(args) as engine:
        return _features_job(args, engine)


def _features_job(args: argparse.Namespace, engine) -> int:
    from .extract import Extraction, extract
    from .features import export
    from .files import collect_audio_files, common_root

    fs = _features_set(args)
    kind = _features_output(args, fs)
    named = _features_dataset(args)
    labels = named.labels if named is not None else None
    paths = list(labels) if named is not None else collect_audio_files(args.paths)
    if not paths:
        raise no_audio_error(args.paths)
    root = named.audio_root if named is not None else common_root(args.paths)
    if args.out is not None:
        from ._io import check_writable

        try:
            check_writable(args.out, folder=kind == "npy")
        except OSError as exc:  # before any work: a read-only --out must not lose a whole run
            raise CommandError(f"cannot write --out {args.out}: {exc.strerror or exc}") from exc

    store = open_store(args)
    if store is not None:
        args.kept = f"the features of finished files are kept in the cache {store.path}; a rerun computes only the rest"
    try:
        if kind == "npy":
            try:
                folder = export.NpyFolder(args.out, fs, paths, root)
            except ValueError as exc:
                raise CommandError(str(exc)) from exc
            run = Extraction(paths, fs, store=store, engine=engine)
            args.kept = (f"the arrays of finished files are in {args.out}{os.sep}"
                         + (f" and the cache {store.path}" if store is not None else ""))
            # Written as they arrive: memory stays flat however many files there are.
            for result in run:
                folder.write(result)
            summary, wrote = run.summary, f"wrote {folder.written} arrays to {args.out}{os.sep}"
        else:
            results, summary = extract(paths, fs, store=store, engine=engine)
            names = export.table_names(paths, root)  # relative paths only where base names collide
            try:
                if kind == "stdout":
                    export.write_csv(results, fs, sys.stdout, names, labels)
                    sys.stdout.flush()
                    wrote = None
                elif kind == "npz":
                    n = export.write_npz(results, fs, args.out, root)
                    wrote = f"wrote {n} arrays to {args.out}"
                else:
                    n = export.write_table(results, fs, args.out, names, labels)
                    wrote = f"wrote {n} rows to {args.out}"
            except BrokenPipeError:
                raise
            except OSError as exc:
                summary.print()
                raise CommandError(f"cannot write {args.out or 'stdout'}: {exc}") from exc
    finally:
        if store is not None:
            store.close()

    if wrote:
        print(wrote, file=sys.stderr)
    summary.print()
    return 1 if summary.failed else 0


# --- the command ----------------------------------------------------------------
#: Every subcommand, in the order ``genrekit --help`` lists them.
VERBS: tuple[Verb, ...] = (
    Verb("features", "extract features (GTZAN 57-column table, log-mel, MFCC) from audio files",
         _features_arguments, _features_run),
    Verb("classify", "tell the genres of songs and whole music folders (table, JSON, CSV; tags; resumable)",
         classify_arguments, classify_run),
    Verb("similar", "the songs of a classified library that sound most like a given one",
         similar_arguments, similar_run),
    Verb("train", "train and compare models on a feature table or audio folder, on a leak-free split",
         learn.train_arguments, learn.train_run),
    Verb("evaluate", "score a model bundle on a labelled table or audio folder",
         learn.evaluate_arguments, learn.evaluate_run),
    Verb("cluster", "k-means clusters of a feature table against its genres, with a 3-D PCA map",
         learn.cluster_arguments, learn.cluster_run),
    Verb("report", "one self-contained HTML page of training runs and clusterings (charts, no network needed)",
         report_arguments, report_run),
    Verb("explain", "what a CNN's filters respond to, and where in a song its evidence lies",
         explain_arguments, explain_run),
    Verb("serve", "the web page and JSON API: drop a song, see its genres", serve_arguments, serve_run,
         runs_bare=True),
    Verb("models", "list the shipped models and those in a folder of runs: data, split, honest accuracy",
         models_arguments, models_run, runs_bare=True),
    Verb("datasets", "list, download, verify and validate the public genre datasets (GTZAN, FMA, Ballroom)",
         datasets_arguments, datasets_run),
)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with one subparser per entry of :data:`VERBS`."""
    parser = Parser(
        prog="genrekit", description="Tell the genre of a piece of music from its audio.",
        epilog="`genrekit VERB --help` gives a verb's options. Exit status: 0 done, 1 something failed "
               "(the message says what), 2 usage error, 130 interrupted.",
    )
    parser.add_argument("--version", action="version", version=f"genrekit {__version__}")
    sub = parser.add_subparsers(dest="verb", metavar="VERB", required=True, title="verbs")
    for verb in VERBS:
        p = sub.add_parser(verb.name, help=verb.help, description=verb.help)
        verb.arguments(p)
        p.set_defaults(run=verb.run, parser=p, runs_bare=verb.runs_bare)
    return parser


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _bare(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.ArgumentParser | None:
    """The (sub)command parser ``argv`` names when it holds nothing but command names, else ``None``."""
    for token in argv:
        parser = _subcommands(parser).get(token)
        if parser is None:
            return None
    return parser


def _needs_arguments(parser: argparse.ArgumentParser) -> bool:
    """Whether a command cannot run without some argument (``datasets list`` can; ``classify`` cannot)."""
    for action in parser._actions:
        if action.required or (not action.option_strings and action.nargs not in ("?", "*", argparse.SUPPRESS)):
            return True
    return False


def main(argv: list[str] | None = None) -> int:
    """Run ``genrekit`` with ``argv`` (default ``sys.argv[1:]``); return the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    bare = _bare(parser, argv)
    if bare is not None and not bare.get_default("runs_bare") and (_subcommands(bare) or _needs_arguments(bare)):
        # `genrekit`, `genrekit explain`, `genrekit train`: what the command can do, not one missing argument.
        bare.print_help(sys.stderr)
        return 2
    args, extra = parser.parse_known_args(argv)
    if extra:
        # Reported by the verb's parser, so that the usage shown is the verb's own.
        args.parser.error(f"unrecognized arguments: {' '.join(extra)}")
    _terminate_like_ctrl_c()
    try:
        return args.run(args)
    except GenrekitError as exc:
        # Raised on purpose: its message is the whole story (a verb's CommandError, a bad file, a bad cache...).
        print(error_line(args.parser.prog, str(exc)), file=sys.stderr)
        return 1
    except BrokenPipeError:
        # The reader of stdout went away (``| head``): stop quietly, as Unix tools do.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except KeyboardInterrupt:
        kept = getattr(args, "kept", None) or "nothing was saved"
        print(f"{args.parser.prog}: interrupted; {kept}", file=sys.stderr)
        return 130


def _terminate_like_ctrl_c() -> None:
    """SIGTERM (``kill``, a service manager stopping us) ends a run as Ctrl-C does: workers
    stopped, temp files removed, finished results kept, exit status 130."""
    import signal
    import threading

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, interrupt)


if __name__ == "__main__":
    sys.exit(main())
