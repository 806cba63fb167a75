"""Options and data loading shared by the verbs that learn from or score on a table: ``train``,
``evaluate`` and ``cluster`` (``--data`` a table, audio folder or dataset name; splits; the cache;
where an audio folder's genres come from: ``--labels``, ``--names``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from genrekit.output import printable
from genrekit.commands.common import add_cache_arguments, add_data_root_argument, add_engine_arguments, add_names_argument, engine_from_args, jobs_count, open_fraction, positive_int
from genrekit.errors import CommandError

SPLITS = ("random", "random-rows", "artist", "fault-filtered", "kfold", "folds")


#: What ``--artists`` without a FILE stands for: the artist index of the ``--data`` dataset.
DATASET_ARTISTS = "<dataset>"


def data_argument(p: argparse.ArgumentParser, flag: str = "--data") -> None:
    p.add_argument(flag, dest="data", required=True, type=Path, metavar="TABLE_OR_DIR_OR_NAME",
                   help="a Kaggle-layout table (.csv/.parquet, 30-s or 3-s), a Marsyas .arff, genrekit "
                        "features output, a GTZAN-style audio folder (<genre>/<file>; features via the cache), "
                        "or the name of a downloaded dataset (gtzan, fma-small, ballroom...: genrekit datasets)")
    add_data_root_argument(p)


def split_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("split (windows of one track always stay on one side, except random-rows)")
    g.add_argument("--split", choices=SPLITS, default="random",
                   help="random: stratified by track; random-rows: the seeds' leaky row split (flagged); "
                        "artist: grouped by artist (--artists); fault-filtered: Kereliuk/Sturm lists (--split-dir); "
                        "kfold: K folds (--folds), grouped by artist when --artists is given (default random)")
    g.add_argument("--test-size", type=open_fraction, default=None, metavar="SHARE",
                   help="random/artist: test share of tracks (default 0.25; --model cnn: 0.2)")
    g.add_argument("--valid-size", type=float, default=None, metavar="SHARE",
                   help="random/artist: validation share of all tracks, taken from training; a run with one "
                        "selects its model on it (default 0: none; --model cnn: 0.1)")
    g.add_argument("--seed", type=int, default=0, metavar="N",
                   help="seed of the split, the models and the search (default 0)")
    g.add_argument("--artists", type=Path, metavar="FILE", nargs="?", const=DATASET_ARTISTS,
                   help="artist index: GTZANindex.txt format (file ::: artist ::: title) or CSV filename,artist; "
                        "without FILE (or with --split artist), the index of the --data dataset (default: none)")
    g.add_argument("--split-dir", type=Path, metavar="DIR",
                   help="fault-filtered: folder with train_filtered.txt, valid_filtered.txt, test_filtered.txt "
                        "(default for --data gtzan: its downloaded lists; otherwise needed by --split fault-filtered)")
    g.add_argument("--folds", type=positive_int, default=5, metavar="K", help="kfold: number of folds (default 5)")


def or_default(value, default):
    """An option's value, or its default when not given (defaults differ between classical and cnn)."""
    return default if value is None else value


def cache_arguments(p: argparse.ArgumentParser) -> None:
    add_cache_arguments(p, no_cache=False,
                        help="feature cache for audio folders (default: $GENREKIT_CACHE or ~/.cache/genrekit)")
    p.add_argument("--jobs", "-j", type=jobs_count, default=None, metavar="N",
                   help="worker processes (default 1; audio folders with --engine ray: every CPU Ray has)")
    add_engine_arguments(p)


def resolve_dataset_name(args):
    """When ``--data`` names a downloaded dataset: resolve it, and fill in its split lists and artist index.

    Returns the :class:`~genrekit.datasets.resolve.Resolved` dataset, or ``None`` for a path.
    """
    from genrekit.errors import DatasetError
    from genrekit.datasets.registry import is_dataset_name

    if getattr(args, "resolved", None) is not None:
        return args.resolved
    split = getattr(args, "split", None)
    if args.data.exists() or not is_dataset_name(str(args.data)):
        if dataset_artists(getattr(args, "artists", None)):
            args.parser.error("--artists without FILE needs --data NAME, a downloaded dataset with an artist index")
        return None
    from genrekit.datasets.resolve import resolve

    try:
        resolved = resolve(str(args.data), args.data_root)
        if split == "fault-filtered" and args.split_dir is None:
            args.split_dir = resolved.split_dir("fault-filtered")
        artists = getattr(args, "artists", None)
        if dataset_artists(artists) or (artists is None and split == "artist"):
            args.artists = resolved.artist_index()
    except DatasetError as exc:
        raise CommandError(str(exc)) from exc
    args.resolved = resolved
    return resolved


def dataset_artists(value) -> bool:
    # argparse passes a string const through type=Path, so compare the text.
    return value is not None and str(value) == DATASET_ARTISTS


def load_data(args, feature_set=None):
    """The table ``--data`` names; audio is analysed with ``feature_set`` (default: gtzan57 30-s rows)."""
    from genrekit.datasets.tables import load_audio_files, load_table
    from genrekit.errors import DatasetError

    resolved = resolve_dataset_name(args)
    with engine_from_args(args) as engine:  # used only for audio, started only if files need computing
        try:
            if resolved is not None:
                ds = resolved.dataset
                return load_audio_files(resolved.files, resolved.audio_root, audio_feature_set=feature_set,
                                        cache=args.cache, engine=engine, progress=sys.stderr.isatty(),
                                        description=f"dataset {ds.name}, {ds.title}")
            return load_table(args.data, audio_feature_set=feature_set, cache=args.cache, engine=engine,
                              progress=sys.stderr.isatty())
        except (DatasetError, OSError) as exc:
            raise CommandError(str(exc)) from exc


# --- where an audio folder's genres come from (train, evaluate) ---------------------------------------
def labels_arguments(p: argparse.ArgumentParser, what: str) -> None:
    """``--labels tags|folders|FILE.csv`` and ``--names FILE``; ``what``: what the labels are for."""
    p.add_argument("--labels", default="folders", metavar="tags|folders|FILE.csv",
                   help="where each audio file's genres come from: its genre tags (several values: a "
                        "several-genres model), its folder (default), or a CSV path,label (several labels "
                        "separated by ';'); files without one are skipped and counted")
    add_names_argument(p, f"with --labels tags/FILE.csv, genre values are merged and renamed by it before {what}")


def read_labelled(args, verb: str, several: str = "several on some files"):
    """The files of the ``--data`` folder and their genres from ``--labels tags`` or ``--labels FILE.csv``
    through the ``--names`` map (:class:`genrekit.training.own_genres.LabelledFiles`); one line on stderr says
    how many were labelled and skipped (``verb:`` first; ``several`` said when some files have several genres)."""
    from genrekit.errors import DatasetError, TagError
    from genrekit.training.own_genres import labels_from_csv, labels_from_tags
    from genrekit.tagging.names import load_names

    if not args.data.is_dir():
        args.parser.error(f"--labels {args.labels} needs --data DIR, a folder of audio files")
    try:
        names = load_names(args.names) if args.names is not None else None
        if args.labels == "tags":
            labelled = labels_from_tags(args.data, names)
        else:
            labelled = labels_from_csv(args.labels, args.data, names)
    except (DatasetError, TagError, OSError) as exc:
        raise CommandError(str(exc)) from exc
    for path, problem in labelled.unreadable:  # each named, as a batch names every file it skips
        print(f"{verb}: skipped {printable(str(path))}: tags not readable: {printable(problem)}", file=sys.stderr)
    print(f"{verb}: {len(labelled.files)} files labelled from {labelled.source}; "
          f"{len(labelled.skipped)} without a genre skipped"
          + (f"; {len(labelled.unreadable)} whose tags could not be read" if labelled.unreadable else "")
          + (f"; {len(labelled.dropped)} left out (only genres --names drops)" if labelled.dropped else "")
          + f"; {len(labelled.counts)} genres"
          + (f", {several}" if labelled.multilabel else ""), file=sys.stderr)
    return labelled
