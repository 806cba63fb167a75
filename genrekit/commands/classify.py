"""``genrekit classify``: the genres of songs and whole libraries, as a table, JSON, CSV or JSON lines.

Where results go:

- no ``--out``: stdout, in ``--format`` (default ``table``), in input order
  (``jsonl`` streams one line per file as each finishes);
- ``--out results.jsonl`` / ``--out results.sqlite`` (``.db``): a results store,
  written as each file finishes; a rerun skips files already classified with the
  same model, a killed run resumes (see :mod:`genrekit.library`). Nothing goes to
  stdout unless ``--format`` is also given;
- ``--out FILE`` of any other kind: written whole at the end (atomically), in
  ``--format`` or the format its suffix names (``.json``, ``.csv``; else a table).

The summary (done / skipped / failed, with each failure's reason) and tag changes
go to stderr. Exit status 1 when a file failed or a tag could not be written.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
import warnings
from pathlib import Path

FORMATS = ("table", "json", "csv", "jsonl")
#: Genres listed per file in a table when ``--top`` is not given.
TABLE_TOP = 3


def classify_arguments(p: argparse.ArgumentParser) -> None:
    """Add ``genrekit classify``'s arguments to ``p``."""
    from ..cli import _add_engine_arguments, _add_jobs_argument, _positive_int

    p.add_argument("paths", nargs="*", metavar="PATH",
                   help="audio files and folders (folders are searched recursively; hidden files skipped)")
    p.add_argument("--demo", action="store_true",
                   help="also classify a 60-s song genrekit synthesises (drums and bass, then chords): "
                        "a first try with no music at hand")
    p.add_argument("--model", "-m", metavar="BUNDLE", type=Path,
                   help="model bundle folder (default: the model bundled with genrekit)")
    p.add_argument("--format", "-f", choices=FORMATS,
                   help="output format (default: table; with --out, from its suffix)")
    p.add_argument("--timeline", action="store_true",
                   help="also give every window's probabilities, [{start, end, probabilities}] (not in csv)")
    p.add_argument("--top", metavar="K", type=_positive_int,
                   help=f"list the K most likely genres per file (table: default {TABLE_TOP}; json: default all)")
    p.add_argument("--out", "-o", metavar="FILE", type=Path,
                   help="write results to FILE; .jsonl or .sqlite/.db keep results as each file finishes, "
                        "and a rerun skips files already classified with the same model")
    _add_jobs_argument(p)
    _add_engine_arguments(p)
    tags = p.add_argument_group("tags")
    tags.add_argument("--write-tags", action="store_true",
                      help="write the top genre into each file's tags (ID3 TCON, Vorbis GENRE, MP4 \u00a9gen)")
    tags.add_argument("--dry-run", action="store_true",
                      help="with --write-tags: show what would change (old -> new), touch no file")


def _plan(args: argparse.Namespace) -> tuple[str, str | None]:
    """``(destination, format)``: destination ``stdout``, ``store`` or ``file``; format None = print nothing."""
    from ..library import STORE_SUFFIXES

    error = args.parser.error
    if args.dry_run and not args.write_tags:
        error("--dry-run: only with --write-tags (it shows the tag changes without making them)")
    if args.out is None:
        dest, fmt = "stdout", args.format or "table"
    elif args.out.suffix.lower() in STORE_SUFFIXES:
        dest, fmt = "store", args.format
        if args.out.exists() and args.out.is_dir():
            error(f"--out {args.out}: is a folder")
    else:
        suffix = args.out.suffix.lower().lstrip(".")
        dest, fmt = "file", args.format or (suffix if suffix in ("json", "csv") else "table")
    if fmt == "csv" and args.timeline:
        error("--timeline: not available in csv (one row per file); use --format json or jsonl")
    if fmt == "csv" and args.top is not None:
        error("--top: not available in csv (it has one column per genre)")
    return dest, fmt


def classify_run(args: argparse.Namespace) -> int:
    """Run ``genrekit classify``; return the exit status."""
    from ..cli import _engine

    with _engine(args) as engine:
        return _classify_job(args, engine)


def _classify_job(args: argparse.Namespace, engine) -> int:
    from .._io import write_bytes_atomic
    from ..cli import CommandError
    from ..files import AUDIO_EXTENSIONS, collect_audio_files
    from ..library import LibraryRun, ResultsError, open_results
    from ..models.bundle import BundleError
    from ..predict import DEFAULT_MODEL, load_model

    dest, fmt = _plan(args)
    if not args.paths and not args.demo:
        args.parser.error("give audio files or folders (or --demo)")
    paths = collect_audio_files(args.paths) if args.paths else []
    if args.demo:
        import tempfile

        from ..demo import write_demo

        import atexit
        import shutil

        demo_dir = tempfile.mkdtemp(prefix="genrekit-demo-")
        atexit.register(shutil.rmtree, demo_dir, ignore_errors=True)
        paths.append(write_demo(Path(demo_dir) / "genrekit-demo.wav"))
    if not paths:
        raise CommandError(f"no audio files found in {', '.join(map(str, args.paths))} "
                           f"(looked for {' '.join(sorted(AUDIO_EXTENSIONS))})")
    try:
        clf = load_model(args.model)
    except BundleError as exc:
        hint = "" if args.model is not None else (
            f" (no default model is installed at {DEFAULT_MODEL}; give one with --model BUNDLE)")
        raise CommandError(f"cannot load the model: {exc}{hint}") from exc

    store = None
    if dest == "store":
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                store = open_results(args.out)
        except (ResultsError, OSError) as exc:
            raise CommandError(f"cannot open the results file {args.out}: {exc}") from exc
        for w in caught:  # a repaired or partly foreign results file: say so plainly
            print(f"warning: {w.message}", file=sys.stderr)
    top = args.top if args.top is not None else (TABLE_TOP if fmt == "table" else None)
    try:
        run = LibraryRun(paths, clf, store=store, engine=engine, write_tags=args.write_tags,
                         dry_run=args.dry_run)
        stream = fmt == "jsonl" and dest != "file"
        results = []
        for result in run:
            if stream:
                # Streamed as each file finishes: a pipe gets results while the run goes on.
                print(json_line(result.public(timeline=args.timeline, top=top)), flush=True)
            elif fmt is not None:  # kept for the output in input order (a store alone needs nothing kept)
                results.append(result)
    finally:
        if store is not None:
            store.close()
    results.sort(key=lambda r: r.index)

    text = None
    if fmt is not None and not stream:
        text = render(results, fmt, labels=clf.labels, timeline=args.timeline, top=top)
    if dest == "file":
        try:
            write_bytes_atomic(args.out, text.encode("utf-8"))
        except OSError as exc:
            run.summary.print()
            raise CommandError(f"cannot write {args.out}: {exc}") from exc
    elif text is not None:
        sys.stdout.write(text)
        sys.stdout.flush()

    tags_ok = _report_tags(run.tags, args.dry_run)
    if dest != "stdout":
        print(f"results in {args.out}", file=sys.stderr)
    run.summary.print()
    return 1 if run.summary.failed or not tags_ok else 0


def _report_tags(changes, dry_run: bool) -> bool:
    """Print tag changes and a count line to stderr; ``False`` if any tag could not be written."""
    from ..tags import FAILED, READ_ONLY, UNCHANGED, UNSUPPORTED, WOULD_WRITE, WRITTEN

    if not changes:
        return True
    for change in sorted(changes, key=lambda c: c.path):
        if change.status != UNCHANGED:
            print(change, file=sys.stderr)
    counts = {s: sum(c.status == s for c in changes) for s in
              (WOULD_WRITE if dry_run else WRITTEN, UNCHANGED, UNSUPPORTED, READ_ONLY, FAILED)}
    print(f"tags{' (dry run, nothing written)' if dry_run else ''}: "
          + ", ".join(f"{n} {status}" for status, n in counts.items()), file=sys.stderr)
    return all(c.ok for c in changes)


# --- formats ------------------------------------------------------------------------------
def json_line(obj: dict) -> str:
    """One compact, strict JSON line."""
    from .._io import jsonable

    return json.dumps(jsonable(obj), ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def render(results, fmt: str, *, labels: list[str], timeline: bool = False, top: int | None = None) -> str:
    """The text of ``results`` (:class:`genrekit.library.FileResult`, in order) in ``fmt``."""
    if fmt == "json":
        from .._io import dumps

        return dumps([r.public(timeline=timeline, top=top) for r in results])
    if fmt == "jsonl":
        return "".join(json_line(r.public(timeline=timeline, top=top)) + "\n" for r in results)
    if fmt == "csv":
        return render_csv(results, labels)
    return render_table(results, top=top or TABLE_TOP, timeline=timeline)


def render_csv(results, labels: list[str]) -> str:
    """``path,label,<one column per genre, the model's order>,duration,error``."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["path", "label", *labels, "duration", "error"])
    for r in results:
        rec = r.record
        probs = rec.get("probabilities") or {}
        writer.writerow([rec["path"], rec.get("label") or "", *(_num(probs.get(g)) for g in labels),
                         _num(rec.get("duration")), rec.get("error") or ""])
    return buf.getvalue()


def _num(value) -> str:
    return "" if value is None else repr(float(value))


def render_table(results, *, top: int = TABLE_TOP, timeline: bool = False) -> str:
    """Aligned columns: path, top genre, its score, the next ``top - 1`` genres with scores."""
    rows = []
    for r in results:
        rec = r.record
        if rec.get("error") is not None:
            rows.append((rec["path"], "error:", "", rec["error"], []))
            continue
        ranked = sorted(rec["probabilities"].items(), key=lambda kv: (-kv[1], kv[0]))
        label, score = ranked[0]
        nxt = ", ".join(f"{g} {p:.3f}" for g, p in ranked[1:top])
        windows = []
        if timeline:
            for w in rec.get("timeline") or []:
                g, p = max(w["probabilities"].items(), key=lambda kv: (kv[1], kv[0]))
                windows.append(f"  {_clock(w['start'])}-{_clock(w['end'])}  {g} {p:.3f}")
        rows.append((rec["path"], label, f"{score:.3f}", nxt, windows))
    header = ("path", "genre", "score", "next" if top > 1 else "")
    w_path = max([len(header[0])] + [len(row[0]) for row in rows])
    w_genre = max([len(header[1])] + [len(row[1]) for row in rows])
    lines = [f"{header[0]:<{w_path}}  {header[1]:<{w_genre}}  {header[2]:>5}  {header[3]}".rstrip()]
    for path, genre, score, rest, windows in rows:
        if genre == "error:":
            lines.append(f"{path:<{w_path}}  error: {rest}")
        else:
            lines.append(f"{path:<{w_path}}  {genre:<{w_genre}}  {score:>5}  {rest}".rstrip())
        lines.extend(windows)
    return "\n".join(lines) + "\n"


def _clock(seconds: float) -> str:
    minutes, secs = divmod(float(seconds), 60)
    return f"{int(minutes)}:{secs:04.1f}"
