"""``genrekit report``: one self-contained HTML page of experiment runs and clusterings."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from genrekit.commands.common import output_option
from genrekit.errors import CommandError


def report_arguments(p: argparse.ArgumentParser) -> None:
    """Add ``genrekit report``'s arguments to ``p``."""
    p.add_argument("runs", nargs="*", metavar="RUN_DIR", type=Path,
                   help="run folders of `genrekit train` or CNN training (holding results.json); a folder "
                        "without results.json stands for every run found below it")
    p.add_argument("--cluster", "-c", action="append", default=[], metavar="FILE", type=Path,
                   help="a `genrekit cluster --out` JSON file: PCA map and cluster × genre table (repeatable; default none)")
    output_option(p, "--out", "-o", required=True, metavar="FILE",
                   help="the HTML file to write (plotly.js embedded: it opens without a network)")
    p.add_argument("--title", metavar="TEXT", help="page title (default: genrekit experiment report)")


def _expand(paths: list[Path]) -> list[tuple[Path, str | None]]:
    """Run folders to read: a folder without results.json expands to the runs below it."""
    from genrekit.errors import ReportError
    from genrekit.report.build import find_runs
    from genrekit.training.run_folder import RESULTS_JSON

    out: list[tuple[Path, str | None]] = []
    for path in paths:
        if path.is_dir() and not (path / RESULTS_JSON).is_file():
            found = find_runs(path)
            if not found:
                raise ReportError(f"{path}: no results.json in it or below it (is it a run folder?)")
            out += [(folder, f"{path.name}/{name}") for name, folder in found.items()]
        else:
            out.append((path, None))
    return out


def report_run(args: argparse.Namespace) -> int:
    from genrekit._io import write_bytes_atomic
    from genrekit.errors import ReportError
    from genrekit.report.build import build_report, load_cluster, load_run
    from genrekit.report.page import render_html

    if not args.runs and not args.cluster:
        args.parser.error("give at least one RUN_DIR or --cluster FILE")
    try:
        runs = [load_run(folder, name) for folder, name in _expand(args.runs)]
        clusters = [load_cluster(path) for path in args.cluster]
        page = render_html(build_report(runs, clusters, title=args.title))
    except ReportError as exc:
        raise CommandError(str(exc)) from exc
    try:
        write_bytes_atomic(args.out, page.encode("utf-8"))
    except OSError as exc:
        raise CommandError(f"cannot write {args.out}: {exc}") from exc
    leaky = [r["name"] for r in runs if r["leaky"]]
    print(f"report: {len(runs)} run(s), {len(clusters)} clustering(s) -> {args.out} "
          f"({len(page.encode('utf-8')) / 1e6:.1f} MB, opens offline)", file=sys.stderr)
    if leaky:
        print(f"report: flagged as leaky protocol: {', '.join(leaky)}", file=sys.stderr)
    return 0
