"""``genrekit features``: feature tables and arrays of audio files (gtzan57, log-mel, MFCC, musicnn).

Tables (gtzan57, and musicnn with ``--window``) go to CSV or Parquet (stdout: CSV);
arrays (log-mel, MFCC, musicnn per patch) to a folder of ``.npy`` files or one ``.npz``.
Finished files' features are kept in the cache, so a rerun computes only the rest.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from genrekit.commands.common import add_cache_arguments, add_data_root_argument, add_engine_arguments, add_jobs_argument, engine_from_args, no_audio_error, open_store, output_option, positive_int, seconds
from genrekit.errors import CommandError

_SPECTRAL_OPTIONS = {  # option -> FeatureSet parameter, for logmel/mfcc only
    "sr": "sample_rate", "n_fft": "n_fft", "hop_length": "hop_length", "n_mels": "n_mels", "n_mfcc": "n_mfcc",
}


def features_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="+", metavar="PATH",
                   help="audio files and folders (folders are searched recursively), or the name of one "
                        "downloaded dataset (gtzan, fma-small...: its clips, labelled as the dataset says)")
    add_data_root_argument(p)
    p.add_argument("--set", dest="set_name", choices=("gtzan57", "logmel", "mfcc", "msd_musicnn", "musicnn"), default="gtzan57",
                   help="feature set (default gtzan57: the 57-column Kaggle GTZAN table; musicnn: the pretrained "
                        "MSD-musicnn network's 50 tags + 200-d embedding per 3-s patch)")
    p.add_argument("--window", metavar="SECONDS", type=seconds,
                   help="gtzan57: one table row per window of this length (default 30; 3 = the 3-sec table); "
                        "musicnn: one table row per window, the mean of its patches (default: a row per patch)")
    output_option(p, "--out", "-o", kind="any", metavar="FILE",
                   help="gtzan57 (and musicnn with --window): .csv or .parquet (default: CSV on stdout); "
                        "logmel/mfcc/musicnn: a folder of .npy files or a .npz file (required)")
    spectral = p.add_argument_group("logmel / mfcc parameters")
    spectral.add_argument("--sr", metavar="HZ", type=positive_int, help="sample rate (default 22050)")
    spectral.add_argument("--n-fft", metavar="N", type=positive_int, help="STFT frame length in samples (default 2048)")
    spectral.add_argument("--hop-length", metavar="N", type=positive_int, help="STFT hop in samples (default 512)")
    spectral.add_argument("--n-mels", metavar="N", type=positive_int, help="mel bands (default 128)")
    spectral.add_argument("--n-mfcc", metavar="N", type=positive_int, help="mfcc only: coefficients (default 20)")
    add_jobs_argument(p)
    add_engine_arguments(p)
    add_cache_arguments(p)


def _features_set(args: argparse.Namespace):
    """The FeatureSet the options describe; refuses options that do not apply to it."""
    from genrekit.errors import ParameterError
    from genrekit.features.sets import feature_set

    error = args.parser.error
    given = {opt: getattr(args, opt) for opt in _SPECTRAL_OPTIONS if getattr(args, opt) is not None}
    if args.set_name == "gtzan57":
        if given:
            flags = ", ".join("--" + o.replace("_", "-") for o in given)
            error(f"{flags}: only for --set logmel/mfcc (the gtzan57 table has fixed parameters)")
        params = {"window": args.window if args.window is not None else 30.0}
    elif args.set_name in ("msd_musicnn", "musicnn"):  # musicnn: its former name
        if given:
            flags = ", ".join("--" + o.replace("_", "-") for o in given)
            error(f"{flags}: only for --set logmel/mfcc (musicnn's front end is fixed by its weights)")
        params = {"window": args.window}
    else:
        if args.window is not None:
            error("--window: only for --set gtzan57")
        if args.set_name != "mfcc" and "n_mfcc" in given:
            error("--n-mfcc: only for --set mfcc")
        params = {_SPECTRAL_OPTIONS[o]: v for o, v in given.items()}
    try:
        return feature_set(args.set_name, **params)
    except ParameterError as exc:
        error(str(exc))


def _features_output(args: argparse.Namespace, fs) -> str:
    """What ``--out`` asks for: ``stdout``, ``csv``, ``parquet``, ``npz`` or ``npy`` (a folder)."""
    error = args.parser.error
    out = args.out
    suffix = out.suffix.lower() if out is not None else ""
    if fs.name == "gtzan57" or (fs.name == "msd_musicnn" and fs.window is not None):
        if out is None:
            return "stdout"
        if suffix not in (".csv", ".parquet"):
            error(f"--out {out}: the {fs.name} table is written to a .csv or .parquet file")
        if out.is_dir():
            raise CommandError(f"--out {out}: is a folder; the {fs.name} table is written to a file")
        if suffix == ".parquet":
            from genrekit.features.export import require_pyarrow

            try:
                require_pyarrow()
            except ImportError as exc:
                error(str(exc))
        return suffix[1:]
    if out is None:
        error(f"--set {fs.name} gives one array per file: --out DIR (a .npy per file) or --out FILE.npz is required")
    if suffix == ".npz":
        if out.is_dir():
            raise CommandError(f"--out {out}: is a folder; give a file name (or a folder without .npz)")
        return "npz"
    if suffix in (".csv", ".parquet", ".npy"):
        error(f"--out {out}: {fs.name} arrays go to a folder or a .npz file")
    if out.exists() and not out.is_dir():
        error(f"--out {out}: exists and is not a folder")
    return "npy"


def _features_dataset(args: argparse.Namespace):
    """The resolved dataset when the only PATH is the name of one (and no such file exists), else ``None``."""
    from genrekit.datasets.registry import is_dataset_name
    from genrekit.errors import DatasetError

    if len(args.paths) != 1 or Path(args.paths[0]).exists() or not is_dataset_name(args.paths[0]):
        return None
    from genrekit.datasets.resolve import resolve

    try:
        return resolve(args.paths[0], args.data_root)
    except DatasetError as exc:
        raise CommandError(str(exc)) from exc


def features_run(args: argparse.Namespace) -> int:
    with engine_from_args(args) as engine:
        return _features_job(args, engine)


def _features_job(args: argparse.Namespace, engine) -> int:
    from genrekit.errors import ParameterError
    from genrekit.features.extract import Extraction, extract
    from genrekit.features import export
    from genrekit.audio.files import collect_audio_files, common_root

    fs = _features_set(args)
    kind = _features_output(args, fs)
    named = _features_dataset(args)
    labels = named.labels if named is not None else None
    paths = list(labels) if named is not None else collect_audio_files(args.paths)
    if not paths:
        raise no_audio_error(args.paths)
    root = named.audio_root if named is not None else common_root(args.paths)

    store = open_store(args)
    if store is not None:
        args.kept = f"the features of finished files are kept in the cache {store.path}; a rerun computes only the rest"
    try:
        if kind == "npy":
            try:
                folder = export.NpyFolder(args.out, fs, paths, root)
            except ParameterError as exc:  # a folder holding another feature set's arrays
                raise CommandError(str(exc)) from exc
            run = Extraction(paths, fs, store=store, engine=engine)
            args.kept = (f"the arrays of finished files are in {args.out}{os.sep}"
                         + (f" and the cache {store.path}" if store is not None else ""))
            # Written as they arrive: memory stays flat however many files there are.
            for result in run:
                folder.write(result)
            summary, wrote = run.summary, f"wrote {folder.written} arrays to {args.out}{os.sep}"
        else:
            results, summary = extract(paths, fs, store=store, engine=engine)
            names = export.table_names(paths, root)  # relative paths only where base names collide
            try:
                if kind == "stdout":
                    export.write_csv(results, fs, sys.stdout, names, labels)
                    sys.stdout.flush()
                    wrote = None
                elif kind == "npz":
                    n = export.write_npz(results, fs, args.out, root)
                    wrote = f"wrote {n} arrays to {args.out}"
                else:
                    n = export.write_table(results, fs, args.out, names, labels)
                    wrote = f"wrote {n} rows to {args.out}"
            except BrokenPipeError:
                raise
            except OSError as exc:
                summary.print()
                raise CommandError(f"cannot write {args.out or 'stdout'}: {exc}") from exc
    finally:
        if store is not None:
            store.close()

    if wrote:
        print(wrote, file=sys.stderr)
    summary.print()
    return 1 if summary.failed else 0
