"""The ``genrekit`` command: one subcommand (verb) per job.

Adding a verb: write ``_<verb>_arguments(parser)`` and ``_<verb>_run(args) -> int``
(or import them from the module that does the job) and add one :class:`Verb` line to
:data:`VERBS`. Handlers raise :class:`CommandError` for failures that are not about
one input file; usage mistakes go through ``args.parser.error`` (exit status 2).

Exit status: 0 success, 1 some input failed or the job could not finish, 2 usage
error, 130 interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sqlite3
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from . import __version__
from .commands import learn
from .commands.classify import classify_arguments, classify_run
from .commands.explain import explain_arguments, explain_run
from .commands.report import report_arguments, report_run
from .commands.serve import serve_arguments, serve_run


class CommandError(Exception):
    """A verb could not do its job (unreadable cache, unwritable output...): exit status 1."""


@dataclass(frozen=True)
class Verb:
    """A subcommand: its name, one-line help, argument setup and handler."""

    name: str
    help: str
    arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


# --- argument types -------------------------------------------------------------
def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def _jobs(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected 0 (one per CPU) or more, got {text}")
    return value


def _seconds(text: str) -> float:
    value = float(text)
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text}")
    return value


def _add_cache_arguments(p: argparse.ArgumentParser) -> None:
    group = p.add_mutually_exclusive_group()
    group.add_argument("--cache", metavar="DIR", type=Path,
                       help="feature cache folder (default: $GENREKIT_CACHE or ~/.cache/genrekit)")
    group.add_argument("--no-cache", action="store_true",
                       help="compute everything; neither read nor fill the cache")


def _add_jobs_argument(p: argparse.ArgumentParser) -> None:
    # Default None, not 1: with --engine ray an unset --jobs means every CPU Ray has.
    p.add_argument("--jobs", "-j", metavar="N", type=_jobs, default=None,
                   help="worker processes (default 1; 0 = one per CPU; --engine ray: every CPU Ray has)")


# --- engines (genrekit.engines): where the work of one file runs ----------------------
def _add_engine_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("engine")
    g.add_argument("--engine", choices=("local", "ray"), default="local",
                   help="local: this machine's processes (default); ray: a Ray instance or cluster "
                        "(pip install 'genrekit[ray]'; same results, same resume)")
    g.add_argument("--address", metavar="ADDR",
                   help="--engine ray: the cluster to join, HOST:PORT or auto (the one started here with "
                        "`ray start`); default: start a Ray instance on this machine")


@contextlib.contextmanager
def _engine(args: argparse.Namespace):
    """The engine ``--engine``/``--address``/``--jobs`` ask for, closed on exit.

    Fails at once (exit 1) when it cannot be used at all, e.g. Ray is not installed;
    errors from starting it or from its start-up checks become :class:`CommandError`.
    """
    from .engines import EngineError, make_engine

    try:
        engine = make_engine(args.engine, address=args.address, jobs=args.jobs)
    except ValueError as exc:
        args.parser.error(str(exc))
    try:
        with engine:
            engine.check()
            yield engine
    except EngineError as exc:
        raise CommandError(str(exc)) from None


def _open_store(args: argparse.Namespace):
    """The cache named by ``--cache``/``--no-cache`` (``None`` for no cache)."""
    from .store import FeatureStore, default_cache_dir

    if args.no_cache:
        return None
    directory = args.cache if args.cache is not None else default_cache_dir()
    try:
        return FeatureStore(directory)
    except (OSError, sqlite3.Error, RuntimeError) as exc:
        raise CommandError(
            f"cannot open the feature cache in {directory}: {exc} (use --cache DIR or --no-cache)"
        ) from exc


# --- features ---------------------------------------------------------------------
_SPECTRAL_OPTIONS = {  # option -> FeatureSet parameter, for logmel/mfcc only
    "sr": "sample_rate", "n_fft": "n_fft", "hop_length": "hop_length", "n_mels": "n_mels", "n_mfcc": "n_mfcc",
}


def _features_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="+", metavar="PATH",
                   help="audio files and folders (folders are searched recursively)")
    p.add_argument("--set", dest="set_name", choices=("gtzan57", "logmel", "mfcc"), default="gtzan57",
                   help="feature set (default gtzan57: the 57-column Kaggle GTZAN table)")
    p.add_argument("--window", metavar="SECONDS", type=_seconds,
                   help="gtzan57: one table row per window of this length (default 30; 3 = the 3-sec table)")
    p.add_argument("--out", "-o", metavar="FILE", type=Path,
                   help="gtzan57: .csv or .parquet (default: CSV on stdout); "
                        "logmel/mfcc: a folder of .npy files or a .npz file (required)")
    spectral = p.add_argument_group("logmel / mfcc parameters")
    spectral.add_argument("--sr", metavar="HZ", type=_positive_int, help="sample rate (default 22050)")
    spectral.add_argument("--n-fft", metavar="N", type=_positive_int, help="STFT frame length in samples (default 2048)")
    spectral.add_argument("--hop-length", metavar="N", type=_positive_int, help="STFT hop in samples (default 512)")
    spectral.add_argument("--n-mels", metavar="N", type=_positive_int, help="mel bands (default 128)")
    spectral.add_argument("--n-mfcc", metavar="N", type=_positive_int, help="mfcc only: coefficients (default 20)")
    _add_jobs_argument(p)
    _add_engine_arguments(p)
    _add_cache_arguments(p)


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
    if fs.name == "gtzan57":
        if out is None:
            return "stdout"
        if suffix not in (".csv", ".parquet"):
            error(f"--out {out}: the gtzan57 table is written to a .csv or .parquet file")
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


def _features_run(args: argparse.Namespace) -> int:
    with _engine(args) as engine:
        return _features_job(args, engine)


def _features_job(args: argparse.Namespace, engine) -> int:
    from .extract import Extraction, extract
    from .features import export
    from .files import AUDIO_EXTENSIONS, collect_audio_files, common_root

    fs = _features_set(args)
    kind = _features_output(args, fs)
    paths = collect_audio_files(args.paths)
    if not paths:
        raise CommandError(
            f"no audio files found in {', '.join(map(str, args.paths))} "
            f"(looked for {' '.join(sorted(AUDIO_EXTENSIONS))})"
        )
    root = common_root(args.paths)

    store = _open_store(args)
    try:
        if kind == "npy":
            try:
                folder = export.NpyFolder(args.out, fs, paths, root)
            except ValueError as exc:
                raise CommandError(str(exc)) from exc
            run = Extraction(paths, fs, store=store, engine=engine)
            # Written as they arrive: memory stays flat however many files there are.
            for result in run:
                folder.write(result)
            summary, wrote = run.summary, f"wrote {folder.written} arrays to {args.out}{os.sep}"
        else:
            results, summary = extract(paths, fs, store=store, engine=engine)
            try:
                if kind == "stdout":
                    export.write_csv(results, fs, sys.stdout)
                    sys.stdout.flush()
                    wrote = None
                elif kind == "npz":
                    n = export.write_npz(results, fs, args.out, root)
                    wrote = f"wrote {n} arrays to {args.out}"
                else:
                    n = export.write_table(results, fs, args.out)
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
    Verb("serve", "the web page and JSON API: drop a song, see its genres", serve_arguments, serve_run),
)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with one subparser per entry of :data:`VERBS`."""
    parser = argparse.ArgumentParser(
        prog="genrekit", description="Tell the genre of a piece of music from its audio."
    )
    parser.add_argument("--version", action="version", version=f"genrekit {__version__}")
    sub = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    for verb in VERBS:
        p = sub.add_parser(verb.name, help=verb.help, description=verb.help)
        verb.arguments(p)
        p.set_defaults(run=verb.run, parser=p)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run ``genrekit`` with ``argv`` (default ``sys.argv[1:]``); return the exit status."""
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except CommandError as exc:
        print(f"genrekit {args.verb}: error: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # The reader of stdout went away (``| head``): stop quietly, as Unix tools do.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except KeyboardInterrupt:
        print(f"genrekit {args.verb}: interrupted (finished files are kept in the cache)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
