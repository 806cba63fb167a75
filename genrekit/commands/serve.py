"""``genrekit serve``: the web page and JSON API (FastAPI on uvicorn).

The model is loaded before the server starts listening, so a bad ``--model`` fails at once
with exit status 1. See :mod:`genrekit.web.app` for the routes.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _megabytes(text: str) -> float:
    value = float(text)
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number of MB, got {text}")
    return value


def _port(text: str) -> int:
    value = int(text)
    if not 0 < value < 65536:
        raise argparse.ArgumentTypeError(f"expected a TCP port (1-65535), got {text}")
    return value


def _minutes(text: str) -> float:
    value = float(text)
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number of minutes, got {text}")
    return value


def _seconds_arg(text: str) -> float:
    value = float(text)
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text}")
    return value


def serve_arguments(p: argparse.ArgumentParser) -> None:
    """Add ``genrekit serve``'s arguments to ``p``."""
    from ..cli import _positive_int

    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only; the API has no authentication)")
    p.add_argument("--port", type=_port, default=8000, help="TCP port (default 8000)")
    p.add_argument("--model", "-m", metavar="BUNDLE", type=Path,
                   help="model bundle folder (default: the model bundled with genrekit)")
    p.add_argument("--max-upload-mb", metavar="MB", type=_megabytes, default=50.0,
                   help="largest upload accepted, in MB (default 50); bigger ones are refused with 413 while streaming")
    p.add_argument("--runs", metavar="DIR", type=Path,
                   help="a folder of training runs: their reports at /reports, their models in /api/models")
    p.add_argument("--workers", metavar="N", type=_positive_int,
                   help="analyses run at the same time (default: CPUs, at most 4)")
    limits = p.add_argument_group("limits")
    limits.add_argument("--max-duration", metavar="MINUTES", type=_minutes, default=30.0,
                        help="longest audio analysed, in minutes of decoded audio (default 30); longer "
                             "uploads get 413 as soon as that is known")
    limits.add_argument("--max-uploads", metavar="N", type=_positive_int, default=16,
                        help="uploads in progress at once (default 16); more get 503 with Retry-After")
    limits.add_argument("--body-timeout", metavar="SECONDS", type=_seconds_arg, default=30.0,
                        help="an upload that stalls this long, or trickles in slower than 8 KB/s after "
                             "it, gets 408 (default 30)")
    p.add_argument("--log-level", choices=("critical", "error", "warning", "info", "debug"), default="info",
                   help="server log level (default info; warning hides the access log)")


def serve_run(args: argparse.Namespace) -> int:
    from ..cli import CommandError
    from ..models.bundle import BundleError
    from ..web.app import create_app

    try:
        app = create_app(args.model, max_upload_mb=args.max_upload_mb, runs_dir=args.runs, workers=args.workers,
                         max_duration=args.max_duration * 60, max_uploads=args.max_uploads,
                         body_timeout=args.body_timeout)
        app.state.web.warm_on_start = True  # workers load the model before the first upload
    except (BundleError, ValueError, OSError) as exc:
        raise CommandError(f"cannot start: {exc}") from exc
    import uvicorn

    state = app.state.web
    host = f"[{args.host}]" if ":" in args.host else args.host
    print(f"genrekit serve: model '{state.default.name}' ({len(state.default.labels)} genres), "
          f"uploads up to {args.max_upload_mb:g} MB, {state.workers} analysis worker(s)\n"
          f"  page: http://{host}:{args.port}/   API docs: http://{host}:{args.port}/docs",
          file=sys.stderr, flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level,
                access_log=args.log_level in ("info", "debug"), timeout_graceful_shutdown=5,
                server_header=False)
    return 0
