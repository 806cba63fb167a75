"""``genrekit results RESULTS``: print or export a results store (what ``classify --out`` kept),
without classifying anything again. The store is opened read-only: no byte of it changes."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def results_arguments(p: argparse.ArgumentParser) -> None:
    """Add ``genrekit results``'s arguments to ``p``."""
    from genrekit.commands.common import add_names_argument, output_option, positive_int
    from genrekit.output import FORMATS

    p.add_argument("results", metavar="RESULTS", type=Path,
                   help="results of genrekit classify --out (.jsonl, .sqlite or .db)")
    p.add_argument("--format", "-f", choices=FORMATS, default="table",
                   help="table (default), json, jsonl or csv: the same outputs as classify's")
    p.add_argument("--timeline", action="store_true", help="add each song's timeline, where it was stored")
    p.add_argument("--top", metavar="K", type=positive_int,
                   help="keep each song's K best genres (default: every genre, as stored)")
    p.add_argument("--model", metavar="NAME",
                   help="only the songs classified by this model (a store may hold several models' results; "
                        "default: every song)")
    output_option(p, "--out", "-o", metavar="FILE",
                  help="write the export to FILE (atomically; default: standard output)")
    add_names_argument(p, "genres are shown by them")


def results_run(args: argparse.Namespace) -> int:
    from genrekit._io import atomic_write
    from genrekit.commands.common import read_results_store
    from genrekit.errors import CommandError, TagError
    from genrekit.output import printable, render
    from genrekit.prediction import Prediction
    from genrekit.tagging.names import load_names

    records = read_results_store(args.results)
    try:
        names = load_names(args.names)
    except TagError as exc:
        raise CommandError(str(exc)) from exc
    models = sorted({str(r.get("model") or "") for r in records})
    if args.model is not None:
        records = [r for r in records if r.get("model") == args.model]
        if not records:
            raise CommandError(f"{args.results}: no song classified by model {printable(args.model)} "
                               f"(it holds: {', '.join(printable(m) for m in models) or 'no song'})")
    predictions = sorted((Prediction.from_record(r) for r in records), key=lambda p: str(p.path))
    labels = sorted({g for p in predictions for g in (p.probabilities or {})})  # CSV columns: every stored genre
    text = render(predictions, args.format, labels=labels, timeline=args.timeline, top=args.top, genre_names=names)
    if args.out is not None:
        with atomic_write(args.out, "w") as fh:
            fh.write(text)
    else:
        sys.stdout.write(text)
    held = f" of {len(models)} models" if len(models) > 1 and args.model is None else ""
    print(f"results: {len(predictions)} song(s){held} in {printable(args.results)}"
          + (f", written to {printable(args.out)}" if args.out is not None else ""), file=sys.stderr)
    return 0
