"""Readers of feature-table files: Kaggle-layout CSV and parquet, Marsyas ARFF, musicnn taggram archives.

Each turns one file into a :class:`~genrekit.datasets.feature_table.FeatureTable`, refusing a
malformed one with a :class:`~genrekit.errors.DatasetError` that names the file, the row and
the problem; :func:`genrekit.datasets.tables.load_table` picks the reader by suffix.
"""

from __future__ import annotations

import csv
import re
import warnings
from pathlib import Path

import numpy as np

from genrekit.audio.windows import TAIL_TOLERANCE
from genrekit.errors import DatasetError
from genrekit.datasets.feature_table import FeatureTable, track_of_file

#: Sample rate of the Kaggle tables' ``length`` column (and of every gtzan57 set).
KAGGLE_SR = 22050

_NAME_COL, _LENGTH_COL, _LABEL_COL = "filename", "length", "label"
#: Longest row a 30-s window gives (``window_bounds`` absorbs a tail of up to 5 %).
_LONGEST_30S_ROW = round(30 * KAGGLE_SR) * (1 + TAIL_TOLERANCE)
#: A window index as genrekit and Kaggle write it: unpadded, between stem and extension.
#: GTZAN's own numbers are zero-padded (``00000``), so ``blues.00000.wav`` is not a window.
_WINDOW_ROW = re.compile(r"^(?P<track>.+)\.(?P<k>0|[1-9]\d*)$")


def read_taggram_npz(path: Path) -> FeatureTable:
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
    tracks = np.array([track_of_file(c.split("/")[-1]) for c in clips])
    source = (f"{path} (musicnn taggrams: {len(X)} patches of {len(clips)} clips, "
              f"{counts.min()}-{counts.max()} patches a clip; one row per clip, the mean of its tags)")
    fs = feature_set("msd_musicnn", window=30.0)
    return FeatureTable(rows, labels.astype(str), tracks, np.array([c.split("/")[-1] for c in clips]),
                        list(TAG_COLUMNS), source, fs.to_dict())


def _row_tracks(rows) -> tuple[np.ndarray, bool]:
    """Track id of each row name, and whether the rows are numbered windows.

    The table is *windowed* when every row's stem ends in an unpadded window index
    (``blues.00000.3.wav`` → track ``blues.00000``, window 3), as Kaggle's 3-sec table
    and genrekit's windowed output name rows. Otherwise each row is a whole file
    (``blues.00000.wav`` → ``blues.00000``). Deciding per table, not per row, keeps
    a file that happens to be named ``take.1.wav`` from being read as a window.
    """
    stems = [track_of_file(r) for r in rows]
    matches = [_WINDOW_ROW.match(s) for s in stems]
    if stems and all(matches):
        return np.array([m["track"] for m in matches], dtype=str), True
    return np.array(stems, dtype=str), False


# --- Kaggle layout: CSV and parquet ---------------------------------------------
def read_csv(path: Path) -> tuple[list[str], dict[str, np.ndarray]]:
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


def read_parquet(path: Path) -> tuple[list[str], dict[str, np.ndarray]]:
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


def kaggle_table(path: Path, header: list[str], columns: dict[str, np.ndarray]) -> FeatureTable:
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
            fs = gtzan57_set(30.0).to_dict()  # one row per clip: Kaggle's 30-sec table
        elif windowed and length is not None:
            values, counts = np.unique(length, return_counts=True)
            # The common length is the window (a file's last window may be longer); Kaggle's
            # 3-sec rows are 66149 samples, 3.000 s to the millisecond at 22050 Hz.
            fs = gtzan57_set(round(float(values[counts.argmax()]) / KAGGLE_SR, 3)).to_dict()
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


def gtzan57_set(window: float | None):
    from genrekit.features.sets import feature_set

    return feature_set("gtzan57", window=window)


# --- Marsyas ARFF ---------------------------------------------------------------
_ARFF_ATTRIBUTE = re.compile(r"""^@attribute\s+('[^']*'|"[^"]*"|\S+)\s+(.+)$""", re.I)
_ARFF_NUMERIC = {"real", "numeric", "integer"}


def read_arff(path: Path) -> FeatureTable:
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
