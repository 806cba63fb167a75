"""``genrekit serve``: the web page and JSON API (FastAPI on uvicorn).

The port is bound first (a busy one fails at once, saying so, before anything is
announced), then the model is loaded, so a bad ``--model`` fails with exit status 1
before the server accepts a connection. The options become one
:class:`genrekit.web.settings.WebSettings` for :func:`genrekit.web.app.create_app`
(see :mod:`genrekit.web.app` for the routes); ``--host``, ``--allow-host`` and
``--header-timeout`` are the connection's (:mod:`genrekit.web.connections`).
"""

from __future__ import annotations

import argparse
import errno
import socket
import sys
from pathlib import Path

from genrekit.commands.common import add_model_argument, add_names_argument, add_unknown_rate_argument, at_unknown_rate, megabytes, model_path, positive_int, seconds, tcp_port
from genrekit.errors import CommandError
from genrekit.web.connections import HEADER_TIMEOUT
from genrekit.web.settings import (DEFAULT_BODY_TIMEOUT, DEFAULT_MAX_DURATION, DEFAULT_MAX_UPLOAD_MB,
                                   DEFAULT_MAX_UPLOADS)


#: Ports tried, after a busy ``--port``, for a free one to suggest.
SUGGEST_RANGE = 20


def _minutes(text: str) -> float:
    value = float(text)
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number of minutes, got {text}")
    return value


def serve_arguments(p: argparse.ArgumentParser) -> None:
    """Add ``genrekit serve``'s arguments to ``p``."""
    p.add_argument("--host", default="127.0.0.1", metavar="ADDRESS",
                   help="address to listen on (default 127.0.0.1: this machine only; the API has no authentication)")
    p.add_argument("--port", type=tcp_port, default=8000, metavar="PORT", help="TCP port (default 8000)")
    add_model_argument(p, what="default model of the page and API")
    p.add_argument("--max-upload-mb", metavar="MB", type=megabytes, default=DEFAULT_MAX_UPLOAD_MB,
                   help=f"largest upload accepted, in MB (default {DEFAULT_MAX_UPLOAD_MB:g}); bigger ones are refused "
                        "with 413 while streaming")
    p.add_argument("--runs", metavar="DIR", type=Path,
                   help="a folder of training runs: their reports at /reports, their models in /api/models "
                        "(default: none)")
    p.add_argument("--library", metavar="RESULTS", type=Path,
                   help="results of genrekit classify --out (.sqlite/.jsonl, default model): the page also shows "
                        "the most similar songs there (default: none)")
    add_names_argument(p, "the genres' display names")
    add_unknown_rate_argument(p, "uploaded songs (a request's unknown_rate field overrides it)")
    p.add_argument("--workers", metavar="N", type=positive_int,
                   help="analyses run at the same time (default: one per CPU)")
    limits = p.add_argument_group("limits")
    limits.add_argument("--max-duration", metavar="MINUTES", type=_minutes, default=DEFAULT_MAX_DURATION / 60,
                        help="longest audio analysed, in minutes of decoded audio "
                             f"(default {DEFAULT_MAX_DURATION / 60:g}); longer uploads get 413 as soon as that is known")
    limits.add_argument("--max-uploads", metavar="N", type=positive_int, default=DEFAULT_MAX_UPLOADS,
                        help=f"uploads in progress at once (default {DEFAULT_MAX_UPLOADS}); more get 503 with Retry-After")
    limits.add_argument("--header-timeout", metavar="SECONDS", type=seconds, default=HEADER_TIMEOUT,
                        help="a new connection that has not sent its request headers in this time is closed "
                             f"(default {HEADER_TIMEOUT:g})")
    p.add_argument("--allow-host", metavar="NAME", action="append", default=[],
                   help="a Host name the server answers to besides 127.0.0.1, localhost, [::1] and --host "
                        "(repeatable; others get 400, against DNS rebinding; '*' answers any; default: none)")
    limits.add_argument("--body-timeout", metavar="SECONDS", type=seconds, default=DEFAULT_BODY_TIMEOUT,
                        help="an upload that stalls this long, or trickles in slower than 8 KB/s after "
                             f"it, gets 408 (default {DEFAULT_BODY_TIMEOUT:g})")
    p.add_argument("--log-level", choices=("critical", "error", "warning", "info", "debug"), default="info",
                   help="server log level (default info; warning hides the access log)")


def listen_socket(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port``, or :class:`CommandError` saying why not and what to do.

    Bound here, before anything is announced, and handed to uvicorn, so that no other
    program can take the port between the check and the server starting.
    """
    try:
        family, _, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as exc:
        raise CommandError(f"--host {host}: not an address this machine can listen on ({exc.strerror})") from exc
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does: restart without waiting
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            free = _free_port(host, port)
            hint = f", e.g. --port {free}" if free else ""
            raise CommandError(f"port {port} on {host} is busy (another program, or another genrekit serve, "
                               f"is listening there): choose another with --port{hint}") from exc
        if exc.errno == errno.EACCES:
            raise CommandError(f"port {port}: permission denied (ports below 1024 need administrator "
                               f"rights): choose another with --port, e.g. --port 8000") from exc
        if exc.errno == errno.EADDRNOTAVAIL:
            raise CommandError(f"--host {host}: not an address of this machine") from exc
        raise CommandError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    sock.set_inheritable(True)
    return sock


def _free_port(host: str, busy: int) -> int | None:
    """A port after ``busy`` that can be bound now (a suggestion; it may be taken later)."""
    for port in range(busy + 1, min(busy + 1 + SUGGEST_RANGE, 65536)):
        try:
            family, _, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
            with socket.socket(family, socket.SOCK_STREAM) as probe:
                probe.bind(address)
            return port
        except OSError:
            continue
    return None


def serve_run(args: argparse.Namespace) -> int:
    from genrekit.errors import GenrekitError, TagError
    from genrekit.tagging.names import load_names
    from genrekit.web.app import create_app
    from genrekit.web.settings import WebSettings

    model = model_path(args.model)
    try:
        names = load_names(args.names)
    except TagError as exc:
        raise CommandError(str(exc)) from exc
    sock = listen_socket(args.host, args.port)
    try:
        try:
            settings = WebSettings(model=model, max_upload_mb=args.max_upload_mb, runs_dir=args.runs,
                                   library=args.library, names=names, workers=args.workers,
                                   max_duration=args.max_duration * 60, max_uploads=args.max_uploads,
                                   body_timeout=args.body_timeout, unknown_rate=args.unknown_rate,
                                   warm_up=True)  # workers load the model before the first upload
            app = create_app(settings)
        except (GenrekitError, OSError) as exc:  # a bad --model, --runs or --library
            raise CommandError(f"cannot start: {exc}") from exc
        import uvicorn

        from genrekit.output import printable

        for warning in app.state.web.library.warnings:  # rows of --library skipped, named
            print(f"genrekit serve: warning: {printable(warning, limit=None)}", file=sys.stderr)
        default = at_unknown_rate(args, app.state.web.models.default)  # a model that cannot move: exit 2
        host = f"[{args.host}]" if ":" in args.host else args.host
        print(f"genrekit serve: model '{default.name}' ({len(default.labels)} genres), "
              f"uploads up to {args.max_upload_mb:g} MB, {settings.analysis_workers} analysis worker(s)\n"
              f"  page: http://{host}:{args.port}/   API docs: http://{host}:{args.port}/docs   (Ctrl-C stops)",
              file=sys.stderr, flush=True)
        from genrekit.web.connections import HostAllowList, protocol_class

        _raise_file_limit()
        served = app if "*" in args.allow_host else HostAllowList(app, [args.host, *args.allow_host])
        if args.host in ("0.0.0.0", "::") and not args.allow_host:
            print("genrekit serve: listening on every address; requests are answered for Host 127.0.0.1, "
                  "localhost and [::1] only: add --allow-host NAME for the names clients use", file=sys.stderr)
        config = uvicorn.Config(served, host=args.host, port=args.port, log_level=args.log_level,
                                access_log=args.log_level in ("info", "debug"), timeout_graceful_shutdown=5,
                                server_header=False, http=protocol_class(args.header_timeout),
                                timeout_keep_alive=5, limit_concurrency=MAX_CONNECTIONS,
                                h11_max_incomplete_event_size=16 * 1024)
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()
    return 0


#: Connections and tasks at once; past it uvicorn answers 503 to new requests.
MAX_CONNECTIONS = 4096


def _raise_file_limit() -> None:
    """Raise the soft limit on open files to the hard one: each connection is a descriptor."""
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if hard == resource.RLIM_INFINITY or hard > soft:
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 1 << 20) if hard != resource.RLIM_INFINITY
                                                        else 1 << 20, hard))
    except (ImportError, ValueError, OSError):
        pass
