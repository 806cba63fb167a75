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
    p.add_argument("--root", metavar="DIR", type=Path, default=None,
                   help="the library folder: only songs inside it are listed (default: the folder holding RESULTS)")
    add_names_argument(p, "playlists are named by them")


def playlists_run(args: argparse.Namespace) -> int:
    from genrekit.errors import CommandError
    from genrekit.errors import ResultsError, TagError
    from genrekit.library.playlists import write_playlists
    from genrekit.library.records import NAMED_MAX
    from genrekit.commands.common import read_results_store
    from genrekit.output import printable
    from genrekit.tagging.names import load_names

    root = args.root if args.root is not None else args.results.absolute().parent
    records = read_results_store(args.results)
    if not root.is_dir():
        raise CommandError(f"--root {root}: not a folder")
    try:
        names = load_names(args.names)
        playlists, left_out = write_playlists(records, args.out, root=root, min_score=args.min_score, names=names)
    except (ResultsError, TagError) as exc:
        raise CommandError(str(exc)) from exc
    except OSError as exc:
        raise CommandError(f"cannot write the playlists in {args.out}: {exc.strerror or exc}") from exc
    if left_out:
        named = "; ".join(f"{printable(path)}: {printable(why)}" for path, why in left_out[:NAMED_MAX])
        more = f"; and {len(left_out) - NAMED_MAX} more" if len(left_out) > NAMED_MAX else ""
        hint = "; --root DIR lists the songs below another folder" if args.root is None and any(
            why.startswith("outside the library folder") for _, why in left_out) else ""
        print(f"warning: left out {len(left_out)} song(s) ({named}{more}){hint}", file=sys.stderr)
    for playlist in playlists:
        print(f"{printable(playlist.path, limit=None)}  {len(playlist.entries)} song(s)")
    print(f"{len(playlists)} playlist(s) in {printable(args.out, limit=None)}", file=sys.stderr)
    return 0
