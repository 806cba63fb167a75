"""``genrekit similar``: the songs of a classified library that sound most like a given one.

The library is a results store written by ``genrekit classify FOLDER --out results.sqlite``
(or ``.jsonl``) with a backbone model (the default): it holds each song's embedding. See
:mod:`genrekit.library.similar` for how songs are compared.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

FORMATS = ("table", "json")


def similar_arguments(p: argparse.ArgumentParser) -> None:
    """Add ``genrekit similar``'s arguments to ``p``."""
    from genrekit.commands.common import add_model_argument, add_names_argument, positive_int

    p.add_argument("song", metavar="SONG", type=Path,
                   help="an audio file: one of the library's (found by content), or a new one (analysed first)")
    p.add_argument("--library", "-l", metavar="RESULTS", type=Path, required=True,
                   help="results of genrekit classify --out (.sqlite, .db or .jsonl) holding the library's embeddings")
    p.add_argument("--top", "-k", metavar="K", type=positive_int, default=10,
                   help="how many similar songs to list (default 10)")
    add_model_argument(p, what="model the library was classified with (to analyse a new song)")
    p.add_argument("--format", "-f", choices=FORMATS, default="table", help="output format (default table)")
    add_names_argument(p, "the genre column shows them (JSON: each song's name beside its label)")


def similar_run(args: argparse.Namespace) -> int:
    from genrekit._io import dumps
    from genrekit.errors import CommandError
    from genrekit.errors import AudioError, BundleError, SimilarityError, TagError
    from genrekit.library.similar import SimilarityIndex
    from genrekit.output import printable
    from genrekit.tagging.names import load_names

    try:
        names = load_names(args.names)
        index = SimilarityIndex.from_results(args.library)
        if index.warning:
            print(f"warning: {index.warning}", file=sys.stderr)
        found = index.query_file(args.song, model=args.model, top=args.top)
    except (SimilarityError, AudioError, BundleError, TagError) as exc:
        raise CommandError(str(exc)) from exc
    except OSError as exc:
        raise CommandError(f"{args.song}: cannot read: {exc.strerror or exc}") from exc
    if args.format == "json":
        sys.stdout.write(dumps([{**f, "name": names.display(f["label"]), "score": round(f["score"], 4)}
                                for f in found]))
        return 0
    # genres by their display names, as every other table shows them
    shown = [(printable(f["path"]), f["score"], printable(names.display(f["label"]))) for f in found]
    width = max([len("path")] + [len(p) for p, _, _ in shown])
    lines = [f"{'path':<{width}}  similarity  genre"]
    lines += [f"{p:<{width}}  {score:>10.3f}  {label}" for p, score, label in shown]
    sys.stdout.write("\n".join(lines) + "\n")
    print(f"{len(found)} of {len(index)} songs in {printable(args.library)}", file=sys.stderr)
    return 0
