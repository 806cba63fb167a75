"""``genrekit tags``: undo a tag-writing run, list the runs that can be undone.

``genrekit tags undo [JOURNAL]`` restores the genre tags a run changed (default: the
last run not undone yet) exactly as they were, and removes genrekit's field; a file
whose tags changed since is reported and left alone. ``genrekit tags history`` lists
the journals (:mod:`genrekit.tagging.journal`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def tags_arguments(p: argparse.ArgumentParser) -> None:
    """Add ``genrekit tags``'s sub-commands to ``p``."""
    sub = p.add_subparsers(dest="tags_action", metavar="ACTION", required=True)
    undo = sub.add_parser("undo", help="restore the genre tags a run wrote (default: the last run)")
    undo.add_argument("journal", nargs="?", metavar="JOURNAL", type=Path,
                      help="a journal file (from `genrekit tags history`, or RESULTS.tag-journals/); "
                           "default: the last run not undone")
    undo.add_argument("--dry-run", action="store_true", help="say what would be restored, change nothing")
    sub.add_parser("history", help="list tag-writing runs: when, how many files, undone or not")


def tags_run(args: argparse.Namespace) -> int:
    from genrekit.errors import CommandError
    from genrekit.errors import TagError
    from genrekit.tagging import journal as journals

    if args.tags_action == "history":
        infos = journals.history()
        for info in infos:
            print(info)
        print(f"{len(infos)} journal(s) in {journals.journal_dir()}", file=sys.stderr)
        return 0
    try:
        path = args.journal if args.journal is not None else journals.last_journal()
        results = journals.undo(path, dry_run=args.dry_run)
    except TagError as exc:
        raise CommandError(str(exc)) from exc
    for r in results:
        if r.status != journals.ALREADY:
            print(r, file=sys.stderr)
    counts = {s: sum(r.status == s for r in results) for s in
              (journals.RESTORED, journals.ALREADY, journals.CHANGED_SINCE, journals.UNDO_FAILED)}
    head = "undo (dry run, nothing changed)" if args.dry_run else "undo"
    print(f"{head} {path}: " + ", ".join(f"{n} {s}" for s, n in counts.items()), file=sys.stderr)
    return 1 if counts[journals.UNDO_FAILED] or counts[journals.CHANGED_SINCE] else 0
