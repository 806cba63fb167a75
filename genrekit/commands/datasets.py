"""``genrekit datasets list | info NAME | download NAME | validate NAME``: public datasets by name."""

from __future__ import annotations

import argparse
import sys
import textwrap
from pathlib import Path

from genrekit.commands.common import add_data_root_argument

_SHOWN = 50  # missing/corrupt paths listed before "... and N more" (--all lists every file)


def datasets_arguments(p: argparse.ArgumentParser) -> None:
    from genrekit.commands.common import Parser

    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True, parser_class=Parser)

    def root(q):
        add_data_root_argument(q, "--root")

    q = sub.add_parser("list", help="the datasets genrekit can download, and which are here")
    root(q)
    q = sub.add_parser("info", help="size, tracks, genres, licence, citation, known faults and files of one")
    q.add_argument("name", metavar="NAME", help="a dataset name, as `genrekit datasets list` shows")
    root(q)
    q = sub.add_parser("download", help="download, check and unpack one (resumes an interrupted download)")
    q.add_argument("name", metavar="NAME", help="a dataset name, as `genrekit datasets list` shows")
    root(q)
    q.add_argument("--mirror", metavar="BASE_URL",
                   help="fetch each file as BASE_URL/<file name> instead (checksums are still enforced; "
                        "default: the publishers' own URLs)")
    q.add_argument("--force", action="store_true",
                   help="replace files already in the dataset folder (default: refuse to touch them)")
    q.add_argument("--only", metavar="RESOURCE[,RESOURCE]",
                   help="only these resources (see info), e.g. --only split-train,split-valid,split-test,artists "
                        "(default: all of them)")
    q.add_argument("--retries", type=int, default=3, metavar="N",
                   help="resumed attempts after a dropped connection (default 3)")
    q = sub.add_parser("validate", help="check every file against its checksum; exit 1 if any is missing or corrupt, "
                                           "or cannot be checked file by file")
    q.add_argument("name", metavar="NAME", help="a dataset name, as `genrekit datasets list` shows")
    root(q)
    q.add_argument("--all", action="store_true", help="list every file, present ones too")


def datasets_run(args: argparse.Namespace) -> int:
    from genrekit.errors import CommandError
    from genrekit.errors import DatasetError

    try:
        return {"list": _list, "info": _info, "download": _download, "validate": _validate}[args.action](args)
    except KeyboardInterrupt:
        if args.action == "download":
            print("genrekit datasets: interrupted; the partial download is kept and the same command resumes it",
                  file=sys.stderr)
            return 130
        raise
    except DatasetError as exc:
        raise CommandError(str(exc)) from exc
    except OSError as exc:
        raise CommandError(f"{getattr(exc, 'filename', '') or ''}: {exc.strerror or exc}") from exc


def _root(args) -> Path:
    from genrekit.datasets.registry import default_root

    return args.data_root if getattr(args, "data_root", None) is not None else default_root()


def _list(args) -> int:
    from genrekit.datasets.install import installed
    from genrekit.datasets.registry import all_datasets

    root = _root(args)
    rows = [("NAME", "TRACKS", "SIZE", "HERE", "TITLE")]
    for ds in all_datasets().values():
        here = "yes" if installed(ds, root) else "-"
        rows.append((ds.name, f"{ds.tracks:,}" if ds.tracks else "?", ds.size_text or "?", here, ds.title))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r[:4], widths)) + "  " + r[4])
    print(f"(data root: {root}; genrekit datasets info NAME for details)")
    return 0


def _info(args) -> int:
    from genrekit.datasets.registry import get_dataset

    ds = get_dataset(args.name)
    wrap = lambda text, indent="  ": textwrap.fill(text, 100, initial_indent=indent,  # noqa: E731
                                                   subsequent_indent=indent + "  ")
    print(f"{ds.name}: {ds.title}")
    if ds.summary:
        print(wrap(ds.summary))
    print(f"  tracks: {ds.tracks:,}" if ds.tracks else "  tracks: ?")
    print(f"  size: {ds.size_text or '?'}")
    if ds.genres:
        print(wrap(f"genres ({len(ds.genres)}): {', '.join(ds.genres)}"))
    print(wrap(f"licence: {ds.licence or 'not stated'}"))
    print(wrap(f"citation: {ds.citation or '-'}"))
    if ds.requires:
        print(f"  requires: {', '.join(ds.requires)} (downloaded with it)")
    if ds.faults:
        print("  known faults:")
        for fault in ds.faults:
            print(wrap("- " + fault, "    "))
    print(wrap(f"sources: {ds.sources}"))
    print("  files:")
    for r in ds.resources:
        print(f"    {r.name}: {r.filename}" + (f" ({r.size_text})" if r.size_text else "")
              + f" -> {ds.folder}/" + ("" if r.target == "." else r.target))
        print(f"      {r.url}")
        print(f"      {r.checksum or 'NO PUBLISHED CHECKSUM'}  [{r.origin}]")
    _taxonomy(ds, _root(args))
    if ds.splits or ds.artists:
        uses = [f"--split {k}" for k in ds.splits] + (["--artists / --split artist"] if ds.artists else [])
        print(f"  with --data {ds.name}: {', '.join(uses)} need no paths once downloaded")
    return 0


def _taxonomy(ds, root) -> None:
    """FMA: the genre tree of the downloaded genres.csv, in one line per top-level genre."""
    from genrekit.datasets.install import dataset_folder
    from genrekit.datasets.resolve import read_fma_genres

    path = dataset_folder(ds, root) / "fma_metadata" / "genres.csv"
    if ds.labels != "fma" or not path.is_file():
        return
    genres = read_fma_genres(path)
    tops = [g for g in genres if g["parent"] == 0]
    print(f"  taxonomy (genres.csv): {len(genres)} genres under {len(tops)} top-level genres")
    for top in sorted(tops, key=lambda g: -g["tracks"]):
        n = sum(1 for g in genres if g["top_level"] == top["genre_id"] and g is not top)
        print(f"    {top['title']}: {top['tracks']:,} tracks, {n} sub-genres")


def _download(args) -> int:
    from genrekit.datasets.install import download
    from genrekit.datasets.registry import get_dataset

    ds = get_dataset(args.name)
    if args.retries < 0:
        args.parser.error("--retries: expected 0 or more")
    only = [n.strip() for n in args.only.split(",") if n.strip()] if args.only else None
    root = _root(args)
    steps = download(ds, root, mirror=args.mirror, force=args.force, only=only, retries=args.retries,
                     progress=sys.stderr.isatty(), log=lambda line: print(line, file=sys.stderr))
    fetched = sum(s.action == "downloaded" for s in steps)
    kept = sum(s.action == "kept" for s in steps)
    print(f"{ds.name}: {fetched} files downloaded and checked, {kept} already there, in "
          f"{root / ds.folder}; genrekit datasets validate {ds.name} checks every file")
    return 0


def _validate(args) -> int:
    from genrekit.datasets.install import validate
    from genrekit.datasets.registry import get_dataset

    ds = get_dataset(args.name)
    result = validate(ds, _root(args), progress=sys.stderr.isatty())
    for note in result.notes:
        print(f"note: {note}")
    for r in ds.resources:
        if r.name in result.skipped:
            print(f"{r.name:>12}: {result.skipped[r.name]}")
            continue
        c = result.counts(r.name)
        print(f"{r.name:>12}: {c['present']} present, {c['missing']} missing, {c['corrupt']} corrupt")
    for ch in result.unchecked:
        print(f"unchecked: {ch.path} ({ch.detail})")
    for status in (("present",) if args.all else ()) + ("missing", "corrupt"):
        paths = [ch for ch in result.checks if ch.status == status]
        limit = len(paths) if args.all else _SHOWN
        for ch in paths[:limit]:
            print(f"{status}: {ch.path}" + (f" ({ch.detail})" if ch.detail else ""))
        if len(paths) > limit:
            print(f"{status}: ... and {len(paths) - limit} more (--all lists them)")
    c = result.counts()
    verdict = "INCOMPLETE" if not result.ok else "NOT CHECKED file by file (see the note)" if result.unchecked \
        else "complete"
    print(f"{ds.name} in {result.folder}: {c['present']} present, {c['missing']} missing, "
          f"{c['corrupt']} corrupt: {verdict}")
    return 0 if result.ok and not result.unchecked else 1
