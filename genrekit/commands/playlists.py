"""``genrekit playlists RESULTS --out DIR``: one extended M3U8 per genre from a results store
(:mod:`genrekit.library.playlists`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def playlists_arguments(p: argparse.ArgumentParser) -> None:
    """Add ``genrekit playlists``'s arguments to ``p``."""
    from genrekit.commands.common import add_names_argument, fraction

    p.add_argument("results", metavar="RESULTS", type=Path,
                   help="results of genrekit classify --out (.jsonl, .sqlite or .db)")
    p.add_argument("--out", "-o", metavar="DIR", type=Path, required=True,
                   help="folder of the playlists (created); entries are relative to it where possible")
    p.add_argument("--min-score", metavar="P", type=fraction, default=0.0,
                   help="leave out songs whose top score is below P (default 0)")
    add_names_argument(p, "playlists are named by them")


def playlists_run(args: argparse.Namespace) -> int:
    from genrekit.errors import CommandError
    from genrekit.errors import ResultsError, TagError
    from genrekit.library.playlists import write_playlists
    from genrekit.library.results import open_results
    from genrekit.tagging.names import load_names

    if not args.results.is_file():
        raise CommandError(f"{args.results}: no such results file")
    try:
        names = load_names(args.names)
        with open_results(args.results) as store:
            records = store.records()
        playlists = write_playlists(records, args.out, min_score=args.min_score, names=names)
    except (ResultsError, TagError) as exc:
        raise CommandError(str(exc)) from exc
    except OSError as exc:
        raise CommandError(f"cannot write the playlists in {args.out}: {exc.strerror or exc}") from exc
    for playlist in playlists:
        print(f"{playlist.path}  {len(playlist.entries)} song(s)")
    print(f"{len(playlists)} playlist(s) in {args.out}", file=sys.stderr)
    return 0
