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
import contextlib
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass

from genrekit._version import __version__
from genrekit.commands.common import (Parser, add_cache_arguments, check_outputs, add_engine_arguments, add_jobs_argument,
                              engine_from_args, error_line, jobs_count, open_store, positive_int,
                              seconds)
from genrekit.commands.classify import classify_arguments, classify_run
from genrekit.commands.cluster import cluster_arguments, cluster_run
from genrekit.commands.datasets import datasets_arguments, datasets_run
from genrekit.commands.evaluate import evaluate_arguments, evaluate_run
from genrekit.commands.explain import explain_arguments, explain_run
from genrekit.commands.features import features_arguments, features_run
from genrekit.commands.models import models_arguments, models_run
from genrekit.commands.report import report_arguments, report_run
from genrekit.commands.serve import serve_arguments, serve_run
from genrekit.commands.similar import similar_arguments, similar_run
from genrekit.commands.playlists import playlists_arguments, playlists_run
from genrekit.commands.results import results_arguments, results_run
from genrekit.commands.tags import tags_arguments, tags_run
from genrekit.commands.train import train_arguments, train_run
from genrekit.errors import GenrekitError


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


# --- the command ----------------------------------------------------------------
#: Every subcommand, in the order ``genrekit --help`` lists them.
VERBS: tuple[Verb, ...] = (
    Verb("features", "extract features (GTZAN 57-column table, log-mel, MFCC) from audio files",
         features_arguments, features_run),
    Verb("classify", "tell the genres of songs and whole music folders (table, JSON, CSV; tags; resumable)",
         classify_arguments, classify_run),
    Verb("tags", "undo a run's tag writing (tags undo), list the runs that wrote tags (tags history)",
         tags_arguments, tags_run),
    Verb("results", "print or export what classify --out kept (table, JSON, CSV), without classifying again",
         results_arguments, results_run),
    Verb("playlists", "one M3U8 playlist per genre from classify's results, best-scoring songs first",
         playlists_arguments, playlists_run),
    Verb("similar", "the songs of a classified library that sound most like a given one",
         similar_arguments, similar_run),
    Verb("train", "train and compare models on a feature table or audio folder, on a leak-free split",
         train_arguments, train_run),
    Verb("evaluate", "score a model bundle on a labelled table or audio folder",
         evaluate_arguments, evaluate_run),
    Verb("cluster", "k-means clusters of a feature table against its genres, with a 3-D PCA map",
         cluster_arguments, cluster_run),
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
    for stream in (sys.stdout, sys.stderr):  # a file name that is not UTF-8 must not end the run
        with contextlib.suppress(AttributeError, ValueError):
            stream.reconfigure(errors="backslashreplace")
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
        check_outputs(args)  # before any work: no device, FIFO or folder mix-up, no missing parent
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
        if args.verb == "serve":  # stopping is how a server ends: there was nothing to save
            print(f"{args.parser.prog}: stopped", file=sys.stderr)
            return 130
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
