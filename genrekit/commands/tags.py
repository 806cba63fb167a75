"""``genrekit tags``: undo a tag-writing run, list the runs that can be undone.

``genrekit tags undo [JOURNAL]`` puts back the files a run changed, byte for byte with their
mtimes (default: the last run not undone yet); a file changed since is reported and left
alone. The undo keeps its own journal, so ``tags undo UNDO-JOURNAL`` takes it back.
``genrekit tags history`` lists the journals (:mod:`genrekit.tagging.journal`,
:mod:`genrekit.tagging.undo`). Everything a journal says is shown through
:func:`genrekit.output.printable`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def tags_arguments(p: argparse.ArgumentParser) -> None:
    """Add ``genrekit tags``'s sub-commands to ``p``."""
    sub = p.add_subparsers(dest="tags_action", metavar="ACTION", required=True)
    undo = sub.add_parser("undo", help="restore the files a run changed, byte for byte (default: the last run)")
    undo.add_argument("journal", nargs="?", metavar="JOURNAL", type=Path,
                      help="a journal file (from `genrekit tags history`, or RESULTS.tag-journals/); "
                           "default: the last run not undone")
    undo.add_argument("--dry-run", action="store_true", help="say what would be restored, change nothing")
    sub.add_parser("history", help="list tag-writing runs: when, how many files, undone or not")


def tags_run(args: argparse.Namespace) -> int:
    from genrekit.errors import CommandError, TagError
    from functools import partial

    from genrekit.output import SHOWN_MAX, printable
    from genrekit.tagging import journal as journals
    from genrekit.tagging import undo as undoing

    if args.tags_action == "history":
        skipped: list[str] = []
        infos = journals.history(skipped=skipped)
        for info in infos:
            print(info.describe(partial(printable, limit=SHOWN_MAX)))  # names, times, modes, models
        for why in skipped:
            print(f"skipped {printable(why)}", file=sys.stderr)
        print(f"{len(infos)} journal(s) in {printable(journals.journal_dir())}", file=sys.stderr)
        return 0
    try:
        path = args.journal if args.journal is not None else journals.last_journal()
        results = undoing.undo(path, dry_run=args.dry_run)
    except TagError as exc:
        raise CommandError(str(exc)) from exc
    for r in results:
        if r.status != undoing.ALREADY:
            print(r.describe(printable), file=sys.stderr)
    counts = {s: sum(r.status == s for r in results) for s in undoing.OUTCOMES}
    head = "undo (dry run, nothing changed)" if args.dry_run else "undo"
    print(f"{head} {printable(path)}: " + ", ".join(f"{n} {s}" for s, n in counts.items()), file=sys.stderr)
    return 1 if counts[undoing.UNDO_FAILED] or counts[undoing.CHANGED_SINCE] else 0
