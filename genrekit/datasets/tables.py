"""Feature tables: the rows every model trains on, read from a file or computed from audio.

:func:`load_table` reads

- a Kaggle-layout table, ``.csv`` or ``.parquet`` (``filename, length, <features>, label``):
  Kaggle's ``features_30_sec.csv`` (one row per clip, ``blues.00000.wav``) and
  ``features_3_sec.csv`` (one row per 3-s window, ``blues.00000.3.wav``), or the same
  layout written by ``genrekit features --out table.csv``;
- a Marsyas ``bextract`` table, ``.arff`` (one row per clip, each row preceded by a
  ``% filename genres/<genre>/<genre>.NNNNN.au`` comment);
- a musicnn taggram archive, ``.npz`` with arrays ``X`` (patches × 50 tag probabilities),
  ``Y`` (genre index, GTZAN's alphabetical order) and ``IDS`` (the clip of each patch), as
  the musicnn authors published for GTZAN's fault-filtered split: one row per clip, the mean
  of its patches' tags (the ``musicnn`` feature set's window row);
- a folder of audio files in GTZAN's ``<genre>/<file>`` layout, analysed through
  genrekit's feature cache.

Every row belongs to a *track* (all windows of one clip share its id, ``blues.00000``),
so that splits can keep a track's windows on one side (see :mod:`genrekit.datasets.splits`).
"""

from __future__ import annotations

import csv
import os
import re
import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from genrekit.audio.windows import TAIL_TOLERANCE
from genrekit.errors import DatasetError

#: Sample rate of the Kaggle tables' ``length`` column (and of every gtzan57 set).
KAGGLE_SR = 22050

_NAME_COL, _LENGTH_COL, _LABEL_COL = "filename", "length", "label"
#: Longest row a 30-s window gives (``window_bounds`` absorbs a tail of up to 5 %).
_LONGEST_30S_ROW = round(30 * KAGGLE_SR) * (1 + TAIL_TOLERANCE)
#: A window index as genrekit and Kaggle write it: unpadded, between stem and extension.
#: GTZAN's own numbers are zero-padded (``00000``), so ``blues.00000.wav`` is not a window.
_WINDOW_ROW = re.compile(r"^(?P<track>.+)\.(?P<k>0|[1-9]\d*)$")


@dataclass
class FeatureTable:
    """Feature rows with their labels and the track each row comes from.

    Attributes
    ----------
    X : np.ndarray [shape=(n_rows, n_features), dtype=float64]
    labels : np.ndarray [shape=(n_rows,), dtype=str]
        Genre of each row; ``""`` when unknown. All rows of a track share one label.
    tracks : np.ndarray [shape=(n_rows,), dtype=str]
        Track id of each row (``blues.00000``); all windows of a track share it.
    rows : np.ndarray [shape=(n_rows,), dtype=str]
        Row names, unique (``blues.00000.3.wav`` or ``blues.00000.wav``).
    feature_names : list of str
    source : str
        Where the table came from and what it is, for model cards.
    feature_set : dict or None
        :meth:`genrekit.features.sets.FeatureSet.to_dict` of the recipe when known
        (so a model trained on the table can compute the same features from audio).
    """

    X: np.ndarray
    labels: np.ndarray
    tracks: np.ndarray
    rows: np.ndarray
    feature_names: list[str]
    source: str
    feature_set: dict | None = None

    def __post_init__(self) -> None:
        self.X = np.asarray(self.X, dtype=np.float64)
        if self.X.ndim != 2:
            raise DatasetError(f"{self.source}: X must be 2-D (rows, features), got shape {self.X.shape}")
        n = self.X.shape[0]
        for attr in ("labels", "tracks", "rows"):
            value = np.asarray(getattr(self, attr), dtype=str)
            if value.shape != (n,):
                raise DatasetError(f"{self.source}: {attr} has shape {value.shape}, expected ({n},)")
            setattr(self, attr, value)
        self.feature_names = [str(f) for f in self.feature_names]
        if len(self.feature_names) != self.X.shape[1]:
            raise DatasetError(
                f"{self.source}: {len(self.feature_names)} feature names for {self.X.shape[1]} columns"
            )
        uniq, first, inverse = np.unique(self.tracks, return_index=True, return_inverse=True)
        mixed = np.flatnonzero(self.labels != self.labels[first][inverse])
        if mixed.size:
            t = self.tracks[mixed[0]]
            found = sorted({str(v) for v in self.labels[self.tracks == t]})
            raise DatasetError(f"{self.source}: track {t} has rows labelled {', '.join(map(repr, found))}")

    def __len__(self) -> int:
        return self.X.shape[0]

    @property
    def n_tracks(self) -> int:
        """Number of distinct tracks."""
        return len(np.unique(self.tracks))

    def track_labels(self) -> tuple[np.ndarray, np.ndarray]:
        """The distinct track ids (sorted) and the label of each."""
        uniq, first = np.unique(self.tracks, return_index=True)
        return uniq, self.labels[first]

    def subset(self, idx) -> "FeatureTable":
        """The rows ``idx`` (indices or a boolean mask) as a new table with the same metadata."""
        idx = np.asarray(idx)
        return FeatureTable(
            self.X[idx], self.labels[idx], self.tracks[idx], self.rows[idx],
            list(self.feature_names), self.source, self.feature_set,
        )

    def __repr__(self) -> str:
        return (
            f"FeatureTable({len(self)} rows, {self.n_tracks} tracks, "
            f"{len(self.feature_names)} features, source={self.source!r})"
        )


def load_table(
    path: str | os.PathLike,
    *,
    audio_feature_set=None,
    cache=None,
    jobs: int = 1,
    engine=None,
    progress: bool = False,
) -> FeatureTable:
    """Load a feature table from a table file or a folder of audio.

    Parameters
    ----------
    path : str or path-like
        ``.csv`` / ``.parquet`` (Kaggle layout), ``.arff`` (Marsyas), or a folder of
        audio files (GTZAN layout ``<genre>/<file>``; labels from the folders).
    audio_feature_set : FeatureSet, optional
        Folders only: the recipe, a table-valued set (default
        ``feature_set("gtzan57", window=30)``, one row per 30-s window).
    cache : FeatureStore, path, None or False
        Folders only: the feature cache. ``None`` opens the default cache
        (``$GENREKIT_CACHE`` or ``~/.cache/genrekit``), a path opens the cache in that
        folder, ``False`` computes without caching.
    jobs : int
        Folders only: worker processes (``0``: one per CPU), when no ``engine`` is given.
    engine : genrekit.engines.Engine, optional
        Folders only: where features are computed (default: the local engine with ``jobs``).
    progress : bool
        Folders only: draw a progress bar on stderr when it is a terminal.

    Returns
    -------
    FeatureTable

    Raises
    ------
    DatasetError
        If the path is missing or of an unknown kind, or the table is malformed
        (missing columns, non-numeric or missing values, no labels column...).
    """
    path = Path(path)
    if path.is_dir():
        return _load_audio_folder(path, audio_feature_set, cache, jobs, progress, engine)
    if not path.exists():
        raise DatasetError(f"{path}: no such file or folder")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _kaggle_table(path, *_read_csv(path))
    if suffix in (".parquet", ".pq"):
        return _kaggle_table(path, *_read_parquet(path))
    if suffix == ".arff":
        return _read_arff(path)
    if suffix == ".npz":
        return _read_taggram_npz(path)
    raise DatasetError(
        f"{path}: unknown table kind {suffix or '(no extension)'}; expected .csv or .parquet "
        "(Kaggle layout), .arff (Marsyas), .npz (musicnn taggrams) or a folder of audio"
    )


def _read_taggram_npz(path: Path) -> FeatureTable:
    """A musicnn taggram archive: patches grouped by clip, one row per clip (mean over its patches)."""
    from genrekit.backbones.msd_musicnn import TAG_COLUMNS
    from genrekit.features.sets import feature_set
    from genrekit.datasets.gtzan import GENRES

    try:
        with np.load(path, allow_pickle=False) as z:  # never unpickle: the file is data
            missing = [k for k in ("X", "Y", "IDS") if k not in z.files]
            if missing:
                raise DatasetError(f"{path}: not a musicnn taggram archive (no array {', '.join(missing)}; "
                                   f"it holds {', '.join(z.files) or 'nothing'})")
            X, Y, ids = np.asarray(z["X"], np.float64), np.asarray(z["Y"]), np.asarray(z["IDS"]).astype(str)
    except DatasetError:
        raise
    except Exception as e:  # OSError, ValueError (pickled arrays refused), zipfile.BadZipFile, EOFError
        raise DatasetError(f"{path}: cannot read the archive: {e}") from None
    if X.ndim != 2 or X.shape[1] != len(TAG_COLUMNS) or len(Y) != len(X) or len(ids) != len(X):
        raise DatasetError(f"{path}: expected X of shape (patches, {len(TAG_COLUMNS)}) with one Y and IDS per patch, "
                           f"found X {X.shape}, Y {Y.shape}, IDS {ids.shape}")
    if not np.isfinite(X).all() or X.min() < 0 or X.max() > 1:
        raise DatasetError(f"{path}: X holds values outside [0, 1] or non-finite: not tag probabilities")
    if Y.dtype.kind in "iu":
        if Y.min() < 0 or Y.max() >= len(GENRES):
            raise DatasetError(f"{path}: genre indices outside 0-{len(GENRES) - 1}")
        names = np.asarray(GENRES)[Y.astype(int)]
    else:
        names = Y.astype(str)
    clips, inverse = np.unique(ids, return_inverse=True)
    counts = np.bincount(inverse)
    rows = np.zeros((len(clips), X.shape[1]))
    np.add.at(rows, inverse, X)
    rows /= counts[:, None]
    labels = np.empty(len(clips), dtype=object)
    for i, clip in enumerate(clips):
        found = set(names[inverse == i])
        if len(found) != 1:
            raise DatasetError(f"{path}: clip {clip} has patches labelled {', '.join(sorted(found))}")
        labels[i] = found.pop()
    tracks = np.array([_strip_extension(c.split("/")[-1]) for c in clips])
    source = (f"{path} (musicnn taggrams: {len(X)} patches of {len(clips)} clips, "
              f"{counts.min()}-{counts.max()} patches a clip; one row per clip, the mean of its tags)")
    fs = feature_set("msd_musicnn", window=30.0)
    return FeatureTable(rows, labels.astype(str), tracks, np.array([c.split("/")[-1] for c in clips]),
                        list(TAG_COLUMNS), source, fs.to_dict())


# --- track ids ------------------------------------------------------------------
def _strip_extension(name: str) -> str:
    # An all-digit suffix is part of the name (``blues.00000``), not an extension.
    stem, ext = os.path.splitext(name)
    return stem if ext and not ext[1:].isdigit() else name


def _row_tracks(rows) -> tuple[np.ndarray, bool]:
    """Track id of each row name, and whether the rows are numbered windows.

    The table is *windowed* when every row's stem ends in an unpadded window index
    (``blues.00000.3.wav`` → track ``blues.00000``, window 3), as Kaggle's 3-sec table
    and genrekit's windowed output name rows. Otherwise each row is a whole file
    (``blues.00000.wav`` → ``blues.00000``). Deciding per table, not per row, keeps
    a file that happens to be named ``take.1.wav`` from being read as a window.
    """
    stems = [_strip_extension(r) for r in rows]
    matches = [_WINDOW_ROW.match(s) for s in stems]
    if stems and all(matches):
        return np.array([m["track"] for m in matches], dtype=str), True
    return np.array(stems, dtype=str), False


# --- Kaggle layout: CSV and parquet ---------------------------------------------
def _read_csv(path: Path) -> tuple[list[str], dict[str, np.ndarray]]:
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if header is None:
                raise DatasetError(f"{path}: empty file (no header line)")
            body = [row for row in reader if row]
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{path}: not a UTF-8 text table ({exc.reason} at byte {exc.start})") from None
    except csv.Error as exc:
        raise DatasetError(f"{path}: malformed CSV: {exc}") from None
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read: {exc.strerror or exc}") from None
    header = [h.strip() for h in header]
    for n, row in enumerate(body):
        if len(row) != len(header):
            raise DatasetError(
                f"{path}: data row {n + 1} has {len(row)} fields, the header has {len(header)}"
            )
    cells = np.array(body, dtype=str).reshape(len(body), len(header))
    return header, {name: cells[:, j] for j, name in enumerate(header)}


def _read_parquet(path: Path) -> tuple[list[str], dict[str, np.ndarray]]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise DatasetError(f'{path}: reading .parquet needs pyarrow: pip install "genrekit[parquet]"') from None
    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises several types for a bad file
        raise DatasetError(f"{path}: not a readable parquet file: {exc}") from None
    import pyarrow as pa

    columns = {}
    for name in table.column_names:
        col = table.column(name)
        # Numeric columns as float (nulls -> NaN, caught later); others as Python objects.
        if pa.types.is_integer(col.type) or pa.types.is_floating(col.type):
            columns[name] = col.to_numpy(zero_copy_only=False).astype(np.float64)
        else:
            columns[name] = np.array(col.to_pylist(), dtype=object)
    return list(table.column_names), columns


def _kaggle_table(path: Path, header: list[str], columns: dict[str, np.ndarray]) -> FeatureTable:
    dupes = sorted({h for h in header if header.count(h) > 1})
    if dupes:
        raise DatasetError(f"{path}: column {dupes[0]!r} appears more than once")
    for required in (_NAME_COL, _LABEL_COL):
        if required not in columns:
            raise DatasetError(
                f"{path}: missing column {required!r} "
                f"(expected the Kaggle layout: filename, length, <features>, label)"
            )
    rows = np.array(["" if v is None else str(v).strip() for v in columns[_NAME_COL]], dtype=str)
    if not len(rows):
        raise DatasetError(f"{path}: the table has no rows")
    empty = np.flatnonzero(rows == "")
    if empty.size:
        raise DatasetError(f"{path}: column 'filename' is empty in data row {empty[0] + 1}")
    uniq, counts = np.unique(rows, return_counts=True)
    if (counts > 1).any():
        raise DatasetError(f"{path}: row {str(uniq[counts > 1][0])!r} appears {counts.max()} times")
    labels = np.array(["" if v is None else str(v).strip() for v in columns[_LABEL_COL]], dtype=str)
    # 'nan' is what a float-typed empty label column reads as.
    labels[np.char.lower(labels) == "nan"] = ""

    names = [h for h in header if h not in (_NAME_COL, _LENGTH_COL, _LABEL_COL)]
    if not names:
        raise DatasetError(f"{path}: no feature columns besides filename, length and label")
    X = np.column_stack([_numeric(path, name, columns[name], rows) for name in names])
    tracks, windowed = _row_tracks(rows)

    from genrekit.features.gtzan57 import COLUMNS

    fs = None
    if names == list(COLUMNS):
        length = _numeric(path, _LENGTH_COL, columns[_LENGTH_COL], rows) if _LENGTH_COL in columns else None
        if not windowed and (length is None or length.max() <= _LONGEST_30S_ROW):
            fs = _gtzan57(30.0).to_dict()  # one row per clip: Kaggle's 30-sec table
        elif windowed and length is not None:
            values, counts = np.unique(length, return_counts=True)
            # The common length is the window (a file's last window may be longer); Kaggle's
            # 3-sec rows are 66149 samples, 3.000 s to the millisecond at 22050 Hz.
            fs = _gtzan57(round(float(values[counts.argmax()]) / KAGGLE_SR, 3)).to_dict()
        # Else one row per file longer than 30 s: whole-file analysis or a longer window,
        # which the table cannot tell apart, so the recipe is unknown.

    what = (
        f"{'windows' if windowed else 'one row per track'}"
        + (f" of {fs['window']:g} s" if fs and windowed else "")
    )
    source = (
        f"{path} (Kaggle-layout table: {len(rows)} rows, {len(np.unique(tracks))} tracks, "
        f"{what}, {len(names)} features)"
    )
    return FeatureTable(X, labels, tracks, rows, names, source, fs)


def _numeric(path: Path, name: str, values: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """A column as float64, refusing text, missing values, NaN and infinities."""
    if values.dtype.kind in "fiub":
        out = values.astype(np.float64)
    else:
        out = np.empty(len(values), dtype=np.float64)
        for i, v in enumerate(values):
            text = "" if v is None else str(v).strip()
            if not text:
                out[i] = np.nan
                continue
            try:
                out[i] = float(text)
            except ValueError:
                raise DatasetError(
                    f"{path}: column {name!r} is not numeric: {text!r} in row {str(rows[i])!r} "
                    f"(data row {i + 1})"
                ) from None
    bad = np.flatnonzero(~np.isfinite(out))
    if bad.size:
        i = bad[0]
        what = "missing or NaN" if np.isnan(out[i]) else "infinite"
        raise DatasetError(
            f"{path}: column {name!r} has {bad.size} missing, NaN or infinite value(s); "
            f"first in row {str(rows[i])!r} (data row {i + 1}, {what})"
        )
    return out


def _gtzan57(window: float | None):
    from genrekit.features.sets import feature_set

    return feature_set("gtzan57", window=window)


# --- Marsyas ARFF ---------------------------------------------------------------
_ARFF_ATTRIBUTE = re.compile(r"""^@attribute\s+('[^']*'|"[^"]*"|\S+)\s+(.+)$""", re.I)
_ARFF_NUMERIC = {"real", "numeric", "integer"}


def _read_arff(path: Path) -> FeatureTable:
    """A Marsyas ``bextract`` ARFF table (dense ARFF: numeric attributes, nominal class last).

    A class declared ``{0,...,9}`` is GTZAN's genre numbering (:data:`GENRES` order);
    it is checked against the genre folder of each row's ``% filename`` comment.
    """
    from genrekit.datasets.gtzan import GENRES, track_id  # here, not at the top: gtzan imports DatasetError from us

    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read: {exc.strerror or exc}") from None

    attributes: list[tuple[str, str]] = []
    relation = ""
    data_line = None
    for n, line in enumerate(lines, start=1):
        s = line.strip()
        if not s or s.startswith("%"):
            continue
        low = s.lower()
        if low.startswith("@relation"):
            relation = s.split(None, 1)[1].strip("'\"") if len(s.split(None, 1)) > 1 else ""
        elif low.startswith("@attribute"):
            m = _ARFF_ATTRIBUTE.match(s)
            if not m:
                raise DatasetError(f"{path}: line {n}: malformed @attribute declaration")
            attributes.append((m[1].strip("'\""), m[2].strip()))
        elif low.startswith("@data"):
            data_line = n
            break
        else:
            raise DatasetError(f"{path}: line {n}: unexpected text before @data: {s[:60]!r}")
    if data_line is None or not attributes:
        raise DatasetError(f"{path}: not an ARFF table (no @attribute declarations and @data section)")

    class_name, class_type = attributes[-1]
    if not class_type.startswith("{"):
        raise DatasetError(f"{path}: the last attribute {class_name!r} is not a nominal class {{...}}")
    classes = [c.strip().strip("'\"") for c in class_type.strip("{}").split(",")]
    features = attributes[:-1]
    for name, kind in features:
        if kind.lower() not in _ARFF_NUMERIC:
            raise DatasetError(f"{path}: attribute {name!r} is {kind}, only numeric features are supported")
    # Marsyas numbers the genres 0-9 in GTZAN's order; any other class names are used as written.
    numbered = classes == [str(i) for i in range(len(GENRES))]
    class_names = list(GENRES) if numbered else classes

    values, labels, files = [], [], []
    filename = None
    for n, line in enumerate(lines[data_line:], start=data_line + 1):
        s = line.strip()
        if s.startswith("%"):
            parts = s[1:].split(None, 1)
            if len(parts) == 2 and parts[0].lower() == "filename":
                filename = parts[1].strip()
            continue
        if not s:
            continue
        if s.startswith("{"):
            raise DatasetError(f"{path}: line {n}: sparse ARFF rows are not supported")
        cells = [c.strip() for c in s.split(",")]
        if len(cells) != len(attributes):
            raise DatasetError(f"{path}: line {n} has {len(cells)} values, {len(attributes)} attributes declared")
        try:
            row = [float(c) for c in cells[:-1]]
        except ValueError:
            bad = next(j for j, c in enumerate(cells[:-1]) if not _is_float(c))
            raise DatasetError(
                f"{path}: line {n}: attribute {features[bad][0]!r} is not numeric: {cells[bad]!r}"
            ) from None
        label = cells[-1].strip("'\"")
        if label not in classes:
            raise DatasetError(f"{path}: line {n}: class {label!r} is not one of {class_type}")
        values.append(row)
        labels.append(class_names[classes.index(label)])
        files.append(filename)
        filename = None  # each row has its own comment; never reuse a previous one

    if not values:
        raise DatasetError(f"{path}: no data rows after @data")
    feature_names = [name for name, _ in features]
    X = np.array(values, dtype=np.float64)
    bad = np.argwhere(~np.isfinite(X))
    if bad.size:
        i, j = bad[0]
        raise DatasetError(f"{path}: attribute {feature_names[j]!r} is NaN or infinite in data row {i + 1}")

    if all(files):
        tracks = [track_id(f) for f in files]
        for f, label in zip(files, labels):
            folder = f.replace("\\", "/").split("/")[-2:-1]
            if numbered and folder and folder[0] in GENRES and folder[0] != label:
                raise DatasetError(
                    f"{path}: {f} is labelled {label} but lies in the {folder[0]} folder; "
                    "the class numbers do not follow GTZAN's genre order"
                )
        # Rows are named as the GTZAN .wav clips, so split lists and artist indexes apply.
        rows = [f"{t}.wav" for t in tracks]
    else:
        missing = sum(1 for f in files if not f)
        warnings.warn(
            f"{path}: {missing} rows have no '% filename' comment; rows are named row00000, ... "
            "and each is its own track",
            stacklevel=3,
        )
        rows = tracks = [f"row{i:05d}" for i in range(len(values))]
    if len(set(rows)) != len(rows):
        dup = next(r for r in rows if rows.count(r) > 1)
        raise DatasetError(f"{path}: {dup} appears more than once")
    source = (
        f"{path} (Marsyas ARFF table {relation!r}: {len(rows)} rows, one per track, "
        f"{len(feature_names)} features)"
    )
    return FeatureTable(X, np.array(labels), np.array(tracks), np.array(rows), feature_names, source, None)


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


# --- a folder of audio ------------------------------------------------------------
def _load_audio_folder(folder: Path, fs, cache, jobs: int, progress: bool, engine=None) -> FeatureTable:
    from genrekit.audio.files import collect_audio_files, gtzan_label

    paths = collect_audio_files([folder])
    if not paths:
        raise DatasetError(f"{folder}: no audio files found")
    return load_audio_files([(p, gtzan_label(p)) for p in paths], folder, audio_feature_set=fs, cache=cache,
                            jobs=jobs, progress=progress, engine=engine)


def load_audio_files(files, root: str | os.PathLike, *, audio_feature_set=None, cache=None, jobs: int = 1,
                     progress: bool = False, description: str = "audio folder", engine=None) -> FeatureTable:
    """A feature table of the given audio files and labels, analysed through the feature cache.

    The job of :func:`load_table` for a folder, for files whose labels do not come from
    their folders (a dataset by name: FMA's labels are in ``tracks.csv``).

    Parameters
    ----------
    files : list of (path, str)
        Each audio file and its label (``""`` when unknown).
    root : path-like
        The folder the files lie under (names the table; disambiguates equal file stems).
    audio_feature_set, cache, jobs, progress, engine
        As for :func:`load_table`.
    description : str
        What the files are, for the table's ``source``.
    """
    from genrekit.features.extract import extract
    from genrekit.features.export import window_names
    from genrekit.features.cache import FeatureStore, default_cache_dir

    folder = Path(root)
    fs = audio_feature_set if audio_feature_set is not None else _gtzan57(30.0)
    if fs.name == "msd_musicnn" and fs.window is None:
        fs = fs.with_params(window=30.0)  # table rows are window means, not single patches
    if not fs.columns:
        raise DatasetError(
            f"{folder}: feature set {fs.name!r} gives arrays, not table rows; use a table set such as gtzan57"
        )
    label_of = {Path(p): label for p, label in files}
    paths = list(label_of)
    if not paths:
        raise DatasetError(f"{folder}: no audio files found")

    own_store = not isinstance(cache, FeatureStore) and cache is not False
    if cache is False:
        store = None
    elif isinstance(cache, FeatureStore):
        store = cache
    else:
        directory = default_cache_dir() if cache is None else Path(cache)
        try:
            store = FeatureStore(directory)
        except Exception as exc:  # sqlite3.Error, OSError, RuntimeError (newer schema)
            raise DatasetError(f"cannot open the feature cache in {directory}: {exc}") from exc
    try:
        results, summary = extract(paths, fs, store=store, jobs=jobs, engine=engine, progress=progress)
    finally:
        if own_store and store is not None:
            store.close()
    if not results:
        reasons = "; ".join(str(f) for f in summary.failed[:3])
        raise DatasetError(f"{folder}: no file could be analysed ({reasons})")
    if summary.failed:
        # One bad file (GTZAN's jazz.00054 is one) should not sink a whole dataset; say so loudly.
        warnings.warn(
            f"{folder}: {len(summary.failed)} of {len(paths)} files left out: "
            + "; ".join(str(f) for f in summary.failed[:5]),
            stacklevel=3,
        )

    # Track id = file stem, unless two files share one (two albums' "01 Intro.mp3"):
    # then the folder below the root is kept in both track id and row names.
    stems = [_strip_extension(r.path.name) for r in results]
    clash = {s for s, n in Counter(stems).items() if n > 1}
    X, labels, tracks, rows = [], [], [], []
    for r, stem in zip(results, stems):
        array = np.atleast_2d(np.asarray(r.array, dtype=np.float64))
        names = window_names(r.path, len(array), fs.window)
        if stem in clash:
            parent = r.path.parent.relative_to(folder).as_posix()
            stem, names = f"{parent}/{stem}", [f"{parent}/{n}" for n in names]
        X.append(array)
        labels += [label_of.get(Path(r.path), "")] * len(array)
        tracks += [stem] * len(array)
        rows += names
    failed = f", {len(summary.failed)} files failed" if summary.failed else ""
    window = f"{fs.window:g}-s windows" if fs.window else "whole files"
    source = (
        f"{folder} ({description}: {len(results)} files{failed}; {fs.name} features, {window}, "
        f"feature set {fs.key})"
    )
    return FeatureTable(np.vstack(X), np.array(labels), np.array(tracks), np.array(rows),
                        list(fs.columns), source, fs.to_dict())
