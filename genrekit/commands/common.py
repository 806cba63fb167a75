"""What every ``genrekit`` verb shares: its parser class, argument types, ``--model``, errors.

The verbs' modules (:mod:`genrekit.commands`) and :mod:`genrekit.cli` import from here;
nothing here imports them, so the dependency goes one way.

Conventions
-----------
- Usage mistakes (a bad option, a missing argument, options that do not go together)
  go through ``args.parser.error``: the verb's own usage, then
  ``genrekit VERB: error: ...`` on stderr, exit status 2.
- Failures that are not about the command line (a model that cannot be loaded, an
  unwritable output) raise :class:`CommandError`: ``genrekit VERB: error: ...``,
  exit status 1.
- Every option's help says its default, and every option taking a value has a
  metavar of our choosing (``tests/test_cli_help.py`` checks both).
"""

from __future__ import annotations

import argparse
import contextlib
import sqlite3
import sys
from pathlib import Path

from genrekit.errors import CommandError

#: How to get PyTorch without the gigabytes of CUDA packages a bare ``torch`` brings (README).
TORCH_HINT = 'pip install torch==2.13.0 "genrekit[train]"'


def output_option(parser, *flags: str, kind: str = "file", **kwargs) -> argparse.Action:
    """Add an output-path option, checked by :func:`genrekit._io.check_out` before the verb runs.

    ``kind`` is ``"file"``, ``"folder"`` or ``"any"`` (the verb decides from the suffix later).
    :func:`genrekit.cli.main` checks every option declared this way, so no verb can forget to.
    """
    action = parser.add_argument(*flags, type=Path, **kwargs)
    kinds = dict(parser.get_default("output_kinds") or {})
    kinds[action.dest] = (kind, max(action.option_strings, key=len))
    parser.set_defaults(output_kinds=kinds)
    return action


def check_outputs(args: argparse.Namespace) -> None:
    """Run :func:`genrekit._io.check_out` on every output option given (see :func:`output_option`)."""
    from genrekit._io import check_out

    for dest, (kind, option) in (getattr(args, "output_kinds", None) or {}).items():
        value = getattr(args, dest, None)
        if value is not None:
            check_out(value, kind=kind, option=option)


def error_line(prog: str, message: str) -> str:
    """The one error format of the command line: ``genrekit VERB: error: message`` (one line,
    control characters of the names it quotes escaped by :func:`genrekit.output.printable`)."""
    from genrekit.output import LINE_MAX, printable

    return f"{prog}: error: {printable(message, LINE_MAX)}"


class Parser(argparse.ArgumentParser):
    """``argparse`` with genrekit's error format, used for the command and every verb.

    A usage error prints this parser's usage (the verb's, not the top-level one) and
    :func:`error_line`, and exits with status 2.
    """

    def error(self, message: str):  # noqa: D102 (argparse's signature)
        self.print_usage(sys.stderr)
        self.exit(2, error_line(self.prog, message + _did_you_mean(message)) + "\n")


def _did_you_mean(message: str) -> str:
    """``"; did you mean 'classify'?"`` for argparse's invalid-choice message of a near miss."""
    import difflib
    import re

    match = re.match(r"argument .*?: invalid choice: '?([^' ]+)'? \(choose from (.*)\)", message)
    if not match:
        return ""
    close = difflib.get_close_matches(match.group(1), re.findall(r"[\w.-]+", match.group(2)), n=1)
    return f"; did you mean '{close[0]}'?" if close else ""


# --- argument types ----------------------------------------------------------------------
def positive_int(text: str) -> int:
    """An integer > 0."""
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def jobs_count(text: str) -> int:
    """Worker processes: 0 (one per CPU) or more."""
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected 0 (one per CPU) or more, got {text}")
    return value


def seconds(text: str) -> float:
    """A positive, finite number of seconds."""
    value = float(text)
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text}")
    return value


def fraction(text: str) -> float:
    """A number in [0, 1] (a share, a probability)."""
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number from 0 to 1, got {text}")
    return value


def open_fraction(text: str) -> float:
    """A number strictly between 0 and 1 (a test share, a false-unknown rate)."""
    try:
        value = float(text)
    except ValueError:  # argparse would name this function ("invalid open_fraction value")
        value = float("nan")
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"expected a number between 0 and 1, got {text}")
    return value


def tcp_port(text: str) -> int:
    """A TCP port, 1-65535."""
    value = int(text)
    if not 0 < value < 65536:
        raise argparse.ArgumentTypeError(f"expected a TCP port (1-65535), got {text}")
    return value


def megabytes(text: str) -> float:
    """A positive, finite number of MB."""
    value = float(text)
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number of MB, got {text}")
    return value


# --- shared options --------------------------------------------------------------------------
def add_cache_arguments(p: argparse.ArgumentParser, *, no_cache: bool = True,
                        help: str = "feature cache folder (default: $GENREKIT_CACHE or ~/.cache/genrekit)") -> None:
    """``--cache DIR`` (and, with ``no_cache``, ``--no-cache``), read by :func:`open_store`: every verb that
    computes features declares the cache here."""
    group = p.add_mutually_exclusive_group() if no_cache else p
    group.add_argument("--cache", metavar="DIR", type=Path, help=help)
    if no_cache:
        group.add_argument("--no-cache", action="store_true",
                           help="compute everything; neither read nor fill the cache (default: use the cache)")


def add_data_root_argument(p: argparse.ArgumentParser, *aliases: str) -> None:
    """``--data-root DIR`` (read as ``args.data_root``): where named datasets are, for every verb that takes one."""
    p.add_argument("--data-root", *aliases, dest="data_root", type=Path, metavar="DIR",
                   help="where named datasets are (default: $GENREKIT_DATA or ~/genrekit-data)")


def add_jobs_argument(p: argparse.ArgumentParser) -> None:
    # Default None, not 1: with --engine ray an unset --jobs means every CPU Ray has.
    p.add_argument("--jobs", "-j", metavar="N", type=jobs_count, default=None,
                   help="worker processes (default 1; 0 = one per CPU; --engine ray: every CPU Ray has)")


def add_engine_arguments(p: argparse.ArgumentParser) -> None:
    """``--engine local|ray`` and ``--address``: where the work of one file runs (:mod:`genrekit.engines`)."""
    g = p.add_argument_group("engine")
    g.add_argument("--engine", choices=("local", "ray"), default="local",
                   help="local: this machine's processes (default); ray: a Ray instance or cluster "
                        "(pip install 'genrekit[ray]'; same results, same resume)")
    g.add_argument("--address", metavar="ADDR",
                   help="--engine ray: the cluster to join, HOST:PORT or auto (the one started here with "
                        "`ray start`); default: start a Ray instance on this machine")


@contextlib.contextmanager
def engine_from_args(args: argparse.Namespace):
    """The engine ``--engine``/``--address``/``--jobs`` ask for, closed on exit.

    Fails at once (exit 1) when it cannot be used at all, e.g. Ray is not installed;
    errors from starting it or from its start-up checks become :class:`CommandError`.
    """
    from genrekit.engines import make_engine
    from genrekit.errors import EngineError, ParameterError

    try:
        engine = make_engine(args.engine, address=args.address, jobs=args.jobs)
    except ParameterError as exc:
        args.parser.error(str(exc))
    try:
        with engine:
            engine.check()
            yield engine
    except EngineError as exc:
        raise CommandError(str(exc)) from None


def add_names_argument(p, use: str) -> None:
    """``--names FILE``, the genre-names file (:mod:`genrekit.tagging.names`), with what this verb uses it for."""
    p.add_argument("--names", metavar="FILE|tree", type=Path,
                   help=f"TOML file of genre names (hiphop = \"Hip-Hop\"; [aliases] \"Rap\" = \"Hip-Hop\"; "
                        f"\"*\" = \"tree\" rolls styles up the genre tree), or tree: the shipped names, styles "
                        f"rolled up to top-level genres (\"Alternative Rock\" -> Rock); default: the shipped names: {use}")


def add_model_argument(p: argparse.ArgumentParser, *, required: bool = False, what: str = "model") -> None:
    """``--model MODEL``: a shipped model's name, a bundle folder or a run folder (:func:`model_path`)."""
    from genrekit.models.registry import DEFAULT_MODEL_NAME

    default = "required" if required else f"default: {DEFAULT_MODEL_NAME}, shipped with genrekit"
    p.add_argument("--model", "-m", metavar="MODEL", required=required,
                   help=f"the {what}: a shipped model's name, a bundle folder or a training run folder "
                        f"(`genrekit models` lists them; {default})")


def add_unknown_rate_argument(p: argparse.ArgumentParser, what: str = "songs") -> None:
    """``--unknown-rate P``: the "none of these" decision's false-unknown rate (:func:`at_unknown_rate`)."""
    p.add_argument("--unknown-rate", metavar="P", type=open_fraction, default=None,
                   help=f"call {what} unknown (\"none of these\") when their unknown score reaches 1 - P, so that "
                        f"about a share P of songs of the model's own genres are wrongly called so (0 < P < 1; "
                        f"default: the rate the model was fitted for, 0.05 for new models)")


def at_unknown_rate(args: argparse.Namespace, clf):
    """``clf`` deciding "none of these" at ``--unknown-rate`` (a usage error, exit 2, where it cannot)."""
    from genrekit.errors import ParameterError

    try:
        return clf.at_unknown_rate(args.unknown_rate)
    except ParameterError as exc:
        args.parser.error(f"--unknown-rate {args.unknown_rate:g}: {exc}")


def model_path(spec) -> Path:
    """The bundle folder ``--model`` names (:func:`genrekit.models.registry.resolve_model`); :class:`CommandError` if none."""
    from genrekit.errors import BundleError
    from genrekit.models.registry import resolve_model

    try:
        return resolve_model(spec)
    except BundleError as exc:
        raise CommandError(str(exc)) from exc


def open_store(args: argparse.Namespace):
    """The cache named by ``--cache``/``--no-cache`` (``None`` for no cache)."""
    from genrekit.features.cache import FeatureStore, _NewerCache, default_cache_dir

    if args.no_cache:
        return None
    directory = args.cache if args.cache is not None else default_cache_dir()
    try:
        return FeatureStore(directory)
    except (OSError, sqlite3.Error, _NewerCache) as exc:  # a damaged cache's StoreError says it all itself
        raise CommandError(
            f"cannot open the feature cache in {directory}: {exc} (use --cache DIR or --no-cache)"
        ) from exc


def no_audio_error(paths) -> CommandError:
    """The error for inputs holding no audio file."""
    from genrekit.audio.files import AUDIO_EXTENSIONS

    return CommandError(f"no audio files found in {', '.join(map(str, paths))} "
                        f"(looked for {' '.join(sorted(AUDIO_EXTENSIONS))})")


def read_results_store(path: Path) -> list[dict]:
    """The records of the results store ``path``, opened read-only (a verb that only reads one:
    ``results``, ``playlists``), with a warning line for records skipped as not genrekit results.

    Raises :class:`~genrekit.errors.CommandError` naming the file when it is missing, not a
    genrekit results store, or unreadable.
    """
    import os

    from genrekit.errors import CommandError, ResultsError
    from genrekit.library.results import open_results
    from genrekit.output import printable

    if not os.path.lexists(path):
        raise CommandError(f"{path}: no such results file")
    try:
        with open_results(path, mode="r") as store:
            records = store.records()
            warning = store.skipped_warning()
    except ResultsError as exc:
        raise CommandError(str(exc)) from exc
    except OSError as exc:
        raise CommandError(f"{path}: cannot read it: {exc.strerror or exc}") from exc
    if warning:
        print(f"warning: {printable(warning)}", file=sys.stderr)
    return records
