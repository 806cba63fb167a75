"""``genrekit classify``: the genres of songs and whole libraries, as a table, JSON, CSV or JSON lines.

Where results go:

- no ``--out``: stdout, in ``--format`` (default ``table``), in input order
  (``jsonl`` streams one line per file as each finishes);
- ``--out results.jsonl`` / ``--out results.sqlite`` (``.db``): a results store,
  written as each file finishes; a rerun skips files already classified with the
  same model, a killed run resumes (see :mod:`genrekit.library.run`). Nothing goes to
  stdout unless ``--format`` is also given;
- ``--out FILE`` of any other kind: written whole at the end (atomically), in
  ``--format`` or the format its suffix names (``.json``, ``.csv``; else a table).

The summary (done / skipped / failed, with each failure's reason, and the songs of none of
the model's genres) and tag changes go to stderr. Exit status 1 when a file failed or a tag could not be written.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from genrekit.commands.common import add_engine_arguments, add_jobs_argument, add_model_argument, add_names_argument, add_unknown_rate_argument, at_unknown_rate, engine_from_args, fraction, model_path, no_audio_error, output_option, positive_int
from genrekit.errors import CommandError

from genrekit.output import FORMATS, LINE_MAX, PRECISION, TABLE_TOP, json_line, printable, public, render
from genrekit.tagging.formats import ID3V23_SEP
from genrekit.tagging.plan import MODES


def classify_arguments(p: argparse.ArgumentParser) -> None:
    """Add ``genrekit classify``'s arguments to ``p``."""
    p.add_argument("paths", nargs="*", metavar="PATH",
                   help="audio files and folders (folders are searched recursively; hidden files skipped)")
    p.add_argument("--demo", action="store_true",
                   help="also classify a 60-s song genrekit synthesises, one genre then another "
                        "(see --timeline): a first try with no music at hand")
    p.add_argument("--keep", metavar="FILE", type=Path,
                   help="with --demo: write the demo song to FILE (.wav, .flac, .ogg) and keep it "
                        "(default: a temporary file, deleted at the end)")
    add_model_argument(p)
    add_unknown_rate_argument(p)
    p.add_argument("--format", "-f", choices=FORMATS,
                   help="output format (default: table; with --out, from its suffix)")
    p.add_argument("--precision", metavar="DIGITS", type=positive_int, default=None,
                   help=f"decimals of the probabilities (default {PRECISION}; seconds always have 3)")
    p.add_argument("--timeline", action="store_true",
                   help="also give every window's probabilities, [{start, end, probabilities}] (not in csv; "
                        "default: the song's only)")
    p.add_argument("--top", metavar="K", type=positive_int,
                   help=f"list the K most likely genres per file (table: default {TABLE_TOP}; json: default all)")
    output_option(p, "--out", "-o", metavar="FILE",
                   help="write results to FILE; .jsonl or .sqlite/.db keep results as each file finishes, "
                        "and a rerun skips files already classified with the same model (default: stdout)")
    add_jobs_argument(p)
    add_engine_arguments(p)
    tags = p.add_argument_group("tags")
    tags.add_argument("--write-tags", action="store_true",
                      help="write genres into each file's tags (ID3 TCON, Vorbis GENRE, MP4 \u00a9gen); by default "
                           "only files without a genre (--tag-mode fill); undo with `genrekit tags undo`")
    tags.add_argument("--tag-mode", choices=MODES, default="fill",
                      help="fill (default): only files without a genre, the others are kept and listed; merge: "
                           "append genrekit's genres not already there; replace: overwrite the file's genres")
    tags.add_argument("--genres", metavar="K", type=positive_int, default=1,
                      help="with --write-tags: write up to K genres (best first) scoring at least --min-score "
                           "(default 1)")
    add_names_argument(tags, "the genres written (a list writes several, \"\" never writes that label) and shown")
    tags.add_argument("--with-style", action="store_true",
                      help="with --write-tags: a genre that is a style in the genre tree (FMA's taxonomy) is written "
                           "after its top-level genre, as beets' discogs plugin appends styles: Electronic; House")
    tags.add_argument("--id3v23-sep", metavar="SEP", default=ID3V23_SEP,
                      help=f"how ID3v2.3 tags join several genres, reading and writing (default {ID3V23_SEP!r})")
    tags.add_argument("--dry-run", action="store_true",
                      help="with --write-tags: show what would change (old -> new), touch no file, keep no journal")
    tags.add_argument("--min-score", metavar="P", type=fraction, default=0.0,
                      help="with --write-tags: only write genres scoring at least P; files with none are left "
                           "untouched and listed (default 0)")


def _plan(args: argparse.Namespace) -> tuple[str, str | None]:
    """``(destination, format)``: destination ``stdout``, ``store`` or ``file``; format None = print nothing."""
    from genrekit.library.results import STORE_SUFFIXES

    error = args.parser.error
    if args.dry_run and not args.write_tags:
        error("--dry-run: only with --write-tags (it shows the tag changes without making them)")
    if args.min_score and not args.write_tags:
        error("--min-score: only with --write-tags (it skips files whose top score is below it)")
    for option, given in (("--tag-mode", args.tag_mode != "fill"), ("--genres", args.genres != 1),
                          ("--id3v23-sep", args.id3v23_sep != ID3V23_SEP), ("--with-style", args.with_style)):
        if given and not args.write_tags:
            error(f"{option}: only with --write-tags")
    if args.keep is not None and not args.demo:
        error("--keep: only with --demo (it keeps the synthesised demo song)")
    if args.out is None:
        dest, fmt = "stdout", args.format or "table"
    elif args.out.suffix.lower() in STORE_SUFFIXES:
        dest, fmt = "store", args.format  # --out was checked before the verb ran (common.check_outputs)
    else:
        suffix = args.out.suffix.lower().lstrip(".")
        dest, fmt = "file", args.format or (suffix if suffix in ("json", "csv") else "table")
    if fmt == "csv" and args.timeline:
        error("--timeline: not available in csv (one row per file); use --format json or jsonl")
    if fmt == "csv" and args.top is not None:
        error("--top: not available in csv (it has one column per genre)")
    return dest, fmt


#: The name the demo song goes by in outputs when it is not kept (--keep FILE names it).
DEMO_NAME = "(demo song)"


def _demo_path(args: argparse.Namespace) -> Path:
    """Write the demo song where ``--keep`` says, or to a temporary folder removed at exit."""
    from genrekit.audio.demo import write_demo

    if args.keep is not None:
        try:
            return write_demo(args.keep)
        except (OSError, RuntimeError, ValueError) as exc:  # soundfile: unknown format, unwritable folder
            raise CommandError(f"--keep {args.keep}: cannot write the demo song: {exc}") from exc
    import atexit
    import shutil
    import tempfile

    demo_dir = tempfile.mkdtemp(prefix="genrekit-demo-")
    atexit.register(shutil.rmtree, demo_dir, ignore_errors=True)
    return write_demo(Path(demo_dir) / "genrekit-demo.wav")


def classify_run(args: argparse.Namespace) -> int:
    """Run ``genrekit classify``; return the exit status."""

    with engine_from_args(args) as engine:
        return _classify_job(args, engine)


def _classify_job(args: argparse.Namespace, engine) -> int:
    from genrekit._io import TEXT_ERRORS, write_bytes_atomic
    from genrekit.engines.batch import Failure
    from genrekit.audio.files import collect_audio_files
    from genrekit.errors import ResultsError
    from genrekit.library.run import LibraryRun
    from genrekit.library.results import open_results
    from genrekit.errors import BundleError
    from genrekit.output import relative_names
    from genrekit.models.registry import load_model

    dest, fmt = _plan(args)
    if not args.paths and not args.demo:
        args.parser.error("give audio files or folders (or --demo)")
    model = model_path(args.model)
    paths = collect_audio_files(args.paths) if args.paths else []
    names = relative_names(paths, args.paths)
    if args.demo:
        demo = _demo_path(args)
        paths.append(demo)
        names[demo] = str(args.keep) if args.keep is not None else DEMO_NAME
    if not paths:
        raise no_audio_error(args.paths)
    try:
        clf = load_model(model)
    except BundleError as exc:
        raise CommandError(f"cannot load the model: {exc}") from exc
    clf = at_unknown_rate(args, clf)
    genre_names = _genre_names(args)

    store = None
    if dest == "store":
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                store = open_results(args.out)
        except ResultsError as exc:  # its message names the file
            raise CommandError(f"cannot open the results file: {exc}") from exc
        except OSError as exc:
            raise CommandError(f"cannot open the results file {args.out}: {exc}") from exc
        for w in caught:  # a repaired or partly foreign results file: say so plainly
            print(f"warning: {printable(str(w.message), LINE_MAX)}", file=sys.stderr)
        args.kept = f"every finished file's result is in {args.out}; rerun the same command to classify the rest"
    elif dest == "file":
        args.kept = f"nothing was written to {args.out} (it is written at the end)"
    else:
        args.kept = "results already printed stay printed; nothing was saved (--out FILE.jsonl keeps results)"
    top = args.top if args.top is not None else (TABLE_TOP if fmt == "table" else None)
    view = {"timeline": args.timeline, "top": top, "precision": args.precision}
    tagger = _tagger(args, clf, genre_names, dest)
    try:
        run = LibraryRun(paths, clf, store=store, engine=engine, tagger=tagger, timeline=args.timeline)
        stream = fmt == "jsonl" and dest != "file"
        results = []
        for result in run:
            if stream:
                # Streamed as each file finishes: a pipe gets results while the run goes on.
                print(json_line(public(result.prediction, name=names.get(result.path), names=genre_names, **view)),
                      flush=True)
            elif fmt is not None:  # kept for the output in input order (a store alone needs nothing kept)
                results.append(result)
    finally:
        if store is not None:
            store.close()
        if tagger is not None and tagger.journal is not None:
            tagger.journal.discard()  # a run that changed no file keeps no journal (stopped early or not)
    results.sort(key=lambda r: r.index)

    text = None
    if fmt is not None and not stream:
        text = render([r.prediction for r in results], fmt, labels=clf.labels,
                      names={str(path): name for path, name in names.items()}, genre_names=genre_names, **view)
    if dest == "file":
        try:
            write_bytes_atomic(args.out, text.encode("utf-8", TEXT_ERRORS))
        except OSError as exc:
            run.summary.print()
            raise CommandError(f"cannot write {args.out}: {exc}") from exc
    elif text is not None:
        sys.stdout.write(text)
        sys.stdout.flush()

    tags_ok = _report_tags(run.tags, args.dry_run)
    if tagger is not None and tagger.journal is not None and tagger.journal.count:
        print(f"tag changes journalled in {tagger.journal.path}; `genrekit tags undo` restores them",
              file=sys.stderr)
    if dest != "stdout":
        print(f"results in {args.out}", file=sys.stderr)
    if args.demo and args.keep is not None:
        print(f"demo song kept in {args.keep}", file=sys.stderr)
    # Failures named as the results name them: relative to the folder given.
    run.summary.failed = [Failure(names.get(Path(f.item), f.item), f.reason) for f in run.summary.failed]
    run.summary.unknown = [(names.get(Path(item), item), genre_names.display(label), score)
                           for item, label, score in run.summary.unknown]
    run.summary.print()
    return 1 if run.summary.failed or not tags_ok else 0


def _genre_names(args: argparse.Namespace):
    """The name map: the shipped names, overridden by ``--names FILE``."""
    from genrekit.errors import TagError
    from genrekit.tagging.names import load_names

    try:
        names = load_names(args.names)
    except TagError as exc:
        raise CommandError(str(exc)) from exc
    if getattr(args, "with_style", False):
        import dataclasses

        names = dataclasses.replace(names, styles=True)
    return names


def _tagger(args: argparse.Namespace, clf, genre_names, dest: str):
    """The tag plan of ``--write-tags`` (``None`` without it), with its undo journal."""
    if not args.write_tags:
        return None
    from genrekit.tagging.journal import Journal, journal_dir
    from genrekit.tagging.plan import TagPlan

    journal = None
    if not args.dry_run:
        folders = [journal_dir()]
        if dest == "store":
            folders.append(args.out.with_name(args.out.name + ".tag-journals"))
        journal = Journal({"model": clf.name, "mode": args.tag_mode, "genres": args.genres,
                           "min_score": args.min_score, "names": None if args.names is None else str(args.names),
                           "command": "classify"}, folders)
    return TagPlan(genre_names, count=args.genres, min_score=args.min_score, mode=args.tag_mode,
                   id3v23_sep=args.id3v23_sep, dry_run=args.dry_run, journal=journal)


def _report_tags(changes, dry_run: bool) -> bool:
    """Print tag changes and a count line to stderr; ``False`` if any tag could not be written."""
    from genrekit.tagging.plan import UNCHANGED, summary_line

    if not changes:
        return True
    for change in sorted(changes, key=lambda c: c.path):
        if change.status != UNCHANGED:
            print(change.describe(printable), file=sys.stderr)
    print(summary_line(changes, dry_run), file=sys.stderr)
    return all(c.ok for c in changes)
