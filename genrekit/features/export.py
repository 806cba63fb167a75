"""Writing extracted features to files: the Kaggle GTZAN table, ``.npy`` folders, ``.npz`` archives.

- ``gtzan57`` → a table laid out exactly like Kaggle's ``features_30_sec.csv`` /
  ``features_3_sec.csv``: ``filename, length, <57 features>, label``, one row per
  analysis window, as ``.csv`` (floats at full precision) or ``.parquet``.
- ``logmel`` / ``mfcc`` → one ``.npy`` per file in a folder that mirrors the inputs,
  plus ``feature_set.json``; or one ``.npz`` holding an array per file and the
  recipe under ``__feature_set__``. Nothing is pickled.

Every file is written atomically (temporary file in the same folder, fsync,
``os.replace``): a reader sees the old file or the complete new one, never a part.

The writers take any objects with ``path``, ``array`` and ``n_samples`` attributes,
such as :class:`genrekit.features.extract.FileFeatures`.
"""

from __future__ import annotations

import csv
import json
import os
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from genrekit._io import atomic_write
from genrekit.audio.files import relative_name
from genrekit.audio.windows import window_bounds
from genrekit.datasets.gtzan import gtzan_label
from genrekit.errors import ParameterError
from genrekit.features.sets import IMPLEMENTATION_VERSION, FeatureSet

#: Length of a GTZAN clip; windows at least this long give one row per clip, named by file.
KAGGLE_CLIP_SECONDS = 30.0

FEATURE_SET_JSON = "feature_set.json"
NPZ_FEATURE_SET_KEY = "__feature_set__"

_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)  # fixed entry time: equal arrays give byte-equal archives


def feature_set_json(fs: FeatureSet) -> str:
    """The recipe as written beside exported arrays: parameters, key and implementation version."""
    data = dict(fs.to_dict(), key=fs.key, implementation_version=IMPLEMENTATION_VERSION)
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


# --- the GTZAN table ------------------------------------------------------------
def table_header(fs: FeatureSet) -> list[str]:
    """``["filename", "length", <57 feature names>, "label"]``, Kaggle's column order."""
    _require_table(fs)
    return ["filename", "length", *fs.columns, "label"]


def window_names(path: str | os.PathLike, n_windows: int, window: float | None) -> list[str]:
    """Row names of a file's windows, following Kaggle's two GTZAN tables.

    One window of at least a GTZAN clip (30 s, or the whole signal) is named by the
    file's base name (``blues.00000.wav``, the 30-sec table). Otherwise windows are
    numbered from 0 between stem and extension (``blues.00000.0.wav``,
    ``blues.00000.1.wav``, ..., the 3-sec table), even when a short file yields a
    single window, so every row of one table is named the same way.
    """
    name = Path(path).name
    if n_windows == 1 and (window is None or window >= KAGGLE_CLIP_SECONDS):
        return [name]
    stem, ext = os.path.splitext(name)
    return [f"{stem}.{i}{ext}" for i in range(n_windows)]


def table_rows(results: Iterable[Any], fs: FeatureSet, names: dict | None = None, labels=None) -> Iterator[list]:
    """Rows ``[filename, length, *57 floats, label]``, one per window of each file.

    ``length`` is the window's size in samples (``stop - start`` of
    :func:`genrekit.audio.windows.window_bounds`), ``label`` the genre folder
    (:func:`genrekit.datasets.gtzan.gtzan_label`, ``""`` when the layout does not say), or
    ``labels[path]`` when a ``{path: label}`` mapping is given (a dataset by name).
    """
    _require_table(fs)
    for r in results:
        bounds = window_bounds(r.n_samples, fs.sample_rate, fs.window)
        array = np.asarray(r.array)
        if array.shape != (len(bounds), len(fs.columns)):
            raise ParameterError(
                f"{r.path}: features of shape {array.shape} do not match "
                f"{len(bounds)} windows x {len(fs.columns)} columns"
            )
        label = gtzan_label(r.path) if labels is None else labels.get(Path(r.path), "")
        rows = window_names(r.path, len(bounds), fs.window)
        folder = os.path.dirname((names or {}).get(Path(r.path), ""))  # POSIX names: "a/x.wav" -> "a"
        if folder:
            rows = [f"{folder}/{row}" for row in rows]
        for name, (start, stop), values in zip(rows, bounds, array):
            yield [name, stop - start, *(float(v) for v in values), label]


def write_csv(results: Iterable[Any], fs: FeatureSet, out: str | os.PathLike | TextIO,
              names: dict | None = None, labels=None) -> int:
    """Write the table as CSV to a path (atomically) or an open text stream; return the row count.

    ``names`` (path -> name) replaces the files' base names (:func:`table_names`). Floats are written with ``repr``: the shortest text that reads back to the same
    double, so a round trip through the CSV loses nothing.
    """
    if isinstance(out, (str, os.PathLike)):
        with atomic_write(out, "w") as f:
            return write_csv(results, fs, f, names, labels)
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(table_header(fs))
    n = 0
    for row in table_rows(results, fs, names, labels):
        writer.writerow([repr(v) if isinstance(v, float) else v for v in row])
        n += 1
    return n


def require_pyarrow() -> None:
    """Raise ``ImportError`` with the install command when pyarrow is missing."""
    try:
        import pyarrow  # noqa: F401
        import pyarrow.parquet  # noqa: F401
    except ImportError as exc:
        raise ImportError(
            'writing .parquet needs pyarrow: pip install "genrekit[parquet]"'
        ) from exc


def write_parquet(results: Iterable[Any], fs: FeatureSet, out: str | os.PathLike, names: dict | None = None,
                  labels=None) -> int:
    """Write the table as Parquet (atomically); return the row count.

    Same columns and values as :func:`write_csv`; features as float64, ``length`` as int64.
    """
    require_pyarrow()
    import pyarrow as pa
    import pyarrow.parquet as pq

    header = table_header(fs)
    columns = list(zip(*table_rows(results, fs, names, labels))) or [()] * len(header)
    types = [pa.string(), pa.int64(), *[pa.float64()] * len(fs.columns), pa.string()]
    table = pa.table(
        {name: pa.array(list(col), type=t) for name, col, t in zip(header, columns, types)}
    )
    with atomic_write(out, "wb") as f:
        pq.write_table(table, f)
    return table.num_rows


def write_table(results: Iterable[Any], fs: FeatureSet, out: str | os.PathLike, names: dict | None = None,
                labels=None) -> int:
    """Write the table to ``.csv`` or ``.parquet`` by the file's extension; return the row count.

    ``names``: optional ``{path: relative name}``; ``labels``: optional ``{path: label}``
    (default: the genre folder of each file).
    """
    suffix = Path(out).suffix.lower()
    if suffix == ".csv":
        return write_csv(results, fs, out, names, labels)
    if suffix == ".parquet":
        return write_parquet(results, fs, out, names, labels)
    raise ParameterError(f"{out}: a gtzan57 table is written to .csv or .parquet")


def _require_table(fs: FeatureSet) -> None:
    if not fs.columns:
        raise ParameterError(f"feature set {fs.name!r} gives arrays, not table rows; write .npy or .npz")


# --- arrays: .npy folders and .npz archives ---------------------------------------
def table_names(paths: Iterable[str | os.PathLike], root: str | os.PathLike) -> dict[Path, str] | None:
    """Row names for a table: ``None`` (base names, as Kaggle's tables) unless two files share one.

    When two inputs share a base name (``a/x.ogg``, ``b/x.ogg``) every file is named by
    its path relative to ``root``, so that no two rows of different files look alike.
    """
    paths = [Path(p) for p in paths]
    if len({p.name for p in paths}) == len(paths):
        return None
    return relative_names(paths, root)


def relative_names(paths: Iterable[str | os.PathLike], root: str | os.PathLike) -> dict[Path, str]:
    """Each file's path relative to ``root``, as a POSIX string (:func:`genrekit.audio.files.relative_name`)."""
    return {Path(p): relative_name(p, root) for p in paths}


def npy_names(paths: Sequence[str | os.PathLike], root: str | os.PathLike) -> dict[Path, str]:
    """Relative ``.npy`` names: the audio extension replaced (``blues/blues.00000.npy``).

    Files that would share a name (``song.wav`` and ``song.mp3``) keep their
    extension instead (``song.wav.npy``, ``song.mp3.npy``), so none is overwritten.
    """
    rel = relative_names(paths, root)
    short = {p: os.path.splitext(r)[0] + ".npy" for p, r in rel.items()}
    taken: dict[str, int] = {}
    for name in short.values():
        taken[name] = taken.get(name, 0) + 1
    return {p: (short[p] if taken[short[p]] == 1 else rel[p] + ".npy") for p in rel}


class NpyFolder:
    """A folder of one ``.npy`` per file plus ``feature_set.json``, written as results arrive.

    Creating it writes ``feature_set.json`` first, so a folder always says what it
    holds, and refuses a folder that already holds another feature set's arrays.

    Parameters
    ----------
    directory : path
        Output folder, created as needed.
    fs : FeatureSet
        The recipe of the arrays.
    paths : sequence of path
        Every input file (names are fixed up front so that clashes are seen).
    root : path
        Folder the inputs are named relative to (:func:`genrekit.audio.files.common_root`).
    """

    def __init__(self, directory, fs: FeatureSet, paths: Sequence, root) -> None:
        self.directory = Path(directory)
        self.fs = fs
        self.names = npy_names(paths, root)
        if self.directory.exists() and not self.directory.is_dir():
            raise ParameterError(f"{self.directory} exists and is not a folder")
        meta = self.directory / FEATURE_SET_JSON
        if meta.exists():
            try:
                old_key = json.loads(meta.read_text()).get("key")
            except (OSError, ValueError):
                old_key = None
            if old_key != fs.key:
                raise ParameterError(
                    f"{self.directory} already holds features of another feature set "
                    f"(key {old_key}, this run {fs.key}); choose a new folder"
                )
        with atomic_write(meta, "w") as f:
            f.write(feature_set_json(fs))
        self.written = 0

    def write(self, result: Any) -> Path:
        """Write one file's array; return where it went."""
        target = self.directory / self.names[Path(result.path)]
        with atomic_write(target, "wb") as f:
            np.save(f, np.asarray(result.array), allow_pickle=False)
        self.written += 1
        return target


def write_npz(
    results: Iterable[Any], fs: FeatureSet, out: str | os.PathLike, root: str | os.PathLike
) -> int:
    """Write one ``.npz`` holding an array per file, keyed by its path relative to ``root``.

    The recipe (:func:`feature_set_json`) is stored under ``__feature_set__`` as a
    0-d unicode array; ``np.load(out, allow_pickle=False)`` reads everything. Entries
    carry a fixed timestamp, so equal arrays give byte-identical archives. Returns
    the number of arrays written.
    """
    results = list(results)
    keys = relative_names([r.path for r in results], root)
    n = 0
    with atomic_write(out, "wb") as f, zipfile.ZipFile(f, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
        _zip_array(zf, NPZ_FEATURE_SET_KEY, np.array(feature_set_json(fs)))
        for r in results:
            _zip_array(zf, keys[Path(r.path)], np.asarray(r.array))
            n += 1
    return n


def _zip_array(zf: zipfile.ZipFile, key: str, array: np.ndarray) -> None:
    info = zipfile.ZipInfo(key + ".npy", date_time=_ZIP_EPOCH)
    info.external_attr = 0o644 << 16
    with zf.open(info, "w", force_zip64=True) as entry:
        np.lib.format.write_array(entry, array, allow_pickle=False)
