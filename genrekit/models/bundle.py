"""The model bundle: a folder that carries everything prediction needs, and loads without running code.

Layout::

    my-model/
      bundle.json    labels, feature-set recipe, input columns, window/hop, metrics, model card data
      model.onnx     the weights, as an ONNX graph (scikit-learn models through skl2onnx)
      MODEL_CARD.md  a human-readable card generated from bundle.json

:func:`load_bundle` reads JSON and ONNX only: no pickle, no joblib, no ``eval``. The
weights are checked against the SHA-256 in ``bundle.json`` and handed to onnxruntime as
bytes, so nothing else on disk (an ONNX "external data" path, for one) is followed. A
bundle from elsewhere is data, not a program.

``bundle.json`` (``format_version`` 1)::

    {"format": "genrekit-bundle", "format_version": 1, "kind": "classical",
     "labels": ["blues", ...],
     "feature_set": {...FeatureSet.to_dict()}, "feature_set_key": "0123456789abcdef",
     "input": {"name": "features", "features": [column, ...], "dtype": "float32", "shape": [null, n]},
     "output": {"name": "probabilities"},
     "window": 30.0, "hop": 15.0, "aggregate": "mean",
     "weights": {"file": "model.onnx", "sha256": "..."},
     "metrics": {...}, "card": {"model": ..., "params": ..., "data": ..., "split": ...,
                                "figures": {...}, "command": ..., "created": ..., "genrekit_version": ...}}

``window`` and ``hop`` are seconds (``null`` window: the whole signal is one window);
``aggregate`` says how window probabilities become a track's (``mean``).

Two optional fields, fitted on training data only (:mod:`genrekit.models.calibration`),
leave the weights untouched: ``calibration`` (``{"method": "temperature", "temperature":
T, ...}``, or ``"vector"`` with ``weights``/``biases``, or ``"platt"`` with
``slopes``/``intercepts``, one per genre; applied to every probability the bundle gives) and ``unknown``
(``{"method": "mahalanobis", "means", "precision", "threshold", "false_unknown_rate", ...}``,
whether a song lies outside the genres the model knows; a CNN bundle's has ``"rows":
"log_probabilities"``: it measures the network's output, one column per genre).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
import tempfile
import threading
import warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from genrekit._version import __version__
from genrekit._io import current_umask, dumps, fsync_dir
from genrekit.errors import BundleError
from genrekit.features.sets import FeatureSet

FORMAT = "genrekit-bundle"
FORMAT_VERSION = 1
KINDS = ("classical", "cnn")
AGGREGATES = ("mean",)
BUNDLE_JSON = "bundle.json"
MODEL_CARD = "MODEL_CARD.md"
WEIGHTS_FILE = "model.onnx"
INPUT_NAME = "features"
OUTPUT_NAME = "probabilities"
#: Opsets written by :func:`save_bundle`; pinned so a bundle loads on older onnxruntimes too.
TARGET_OPSET = {"": 17, "ai.onnx.ml": 3}
#: Largest |onnxruntime - scikit-learn| probability accepted when saving.
TOLERANCE = 1e-4

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


# --- the loaded bundle ---------------------------------------------------------------
class Bundle:
    """A loaded model bundle: metadata plus an onnxruntime session.

    Attributes
    ----------
    path : pathlib.Path
        The bundle folder.
    kind : str
        ``"classical"``.
    labels : list of str
        Genre names; the columns of :meth:`predict_proba`.
    feature_set : FeatureSet
        The recipe the model's input features must be computed with.
    feature_names : list of str
        Input columns, in order.
    window, hop : float or None
        Analysis window and hop in seconds.
    aggregate : str
        How window probabilities combine into a track's (``"mean"``).
    metrics, card : dict
        As written by :func:`save_bundle`.
    sha256 : str
        Checksum of the weights file.
    meta : dict
        The whole parsed ``bundle.json``.
    """

    def __init__(self, path: Path, meta: dict, session) -> None:
        self.path = path
        self.meta = meta
        self.kind: str = meta["kind"]
        self.labels: list[str] = list(meta["labels"])
        self.feature_set = FeatureSet.from_dict(meta["feature_set"])
        self.feature_names: list[str] = list(meta["input"].get("features", []))  # none for "cnn"
        self.input_shape: list = list(meta["input"]["shape"])
        self.window: float | None = meta["window"]
        self.hop: float | None = meta["hop"]
        self.aggregate: str = meta["aggregate"]
        self.metrics: dict = meta["metrics"]
        self.card: dict = meta["card"]
        self.sha256: str = meta["weights"]["sha256"]
        self.calibration: dict | None = meta.get("calibration")
        self.unknown: dict | None = meta.get("unknown")
        #: ``{"thresholds": [...]}`` for a several-genres-per-song model, else ``None``.
        self.multilabel: dict | None = meta.get("multilabel")
        self._input_name: str = meta["input"]["name"]
        self._output_name: str = meta["output"]["name"]
        self._session = session

    def __repr__(self) -> str:
        return f"Bundle({str(self.path)!r}, model={self.card.get('model')!r}, labels={len(self.labels)})"

    def unknown_detector(self):
        """The stored "none of these" decision (:class:`~genrekit.models.calibration.UnknownDetector`), or ``None``."""
        from genrekit.models.calibration import UnknownDetector

        return UnknownDetector(self.unknown) if self.unknown else None

    def predict_proba(self, X, *, calibrated: bool = True) -> np.ndarray:
        """Genre probabilities of feature rows (calibrated by the stored temperature unless ``calibrated=False``).

        Parameters
        ----------
        X : array-like or DataFrame, shape (n_windows, n_features)
            Rows of features computed with :attr:`feature_set`, columns in
            :attr:`feature_names` order (a DataFrame is reordered by column name).

        Returns
        -------
        ndarray of float64, shape (n_windows, n_labels)
            Columns in :attr:`labels` order; each row sums to 1.
        """
        if hasattr(X, "columns"):  # a DataFrame: select by name, so column order cannot mislead
            missing = [c for c in self.feature_names if c not in X.columns]
            if missing:
                raise ValueError(f"input lacks the model's feature columns: {', '.join(missing[:5])}")
            X = X[self.feature_names].to_numpy()
        X = np.asarray(X, dtype=np.float32)
        n = len(self.feature_names)
        if self.kind == "cnn":  # log-mel patches (n_windows, 1, n_mels, n_frames)
            if list(X.shape[1:]) != self.input_shape[1:]:
                raise ValueError(f"expected input of shape (n_windows, {', '.join(map(str, self.input_shape[1:]))}), got {X.shape}")
        elif X.ndim != 2 or X.shape[1] != n:
            raise ValueError(f"expected features of shape (n_windows, {n}), got {X.shape}")
        if len(X) == 0:
            return np.zeros((0, len(self.labels)))
        if not np.isfinite(X).all():
            raise ValueError("features contain NaN or infinity")
        (proba,) = self._session.run([self._output_name], {self._input_name: np.ascontiguousarray(X)})
        proba = np.asarray(proba, dtype=np.float64)
        sums = proba.sum(axis=1, keepdims=True) if proba.ndim == 2 else None
        if (sums is None or proba.shape[1] != len(self.labels) or not np.isfinite(proba).all()
                or (proba < -1e-6).any() or not (sums > 0).all()):
            # A graph that outputs NaN would otherwise name a genre with null probabilities.
            raise BundleError(self.path, "the model gave not finite probabilities (NaN, infinity, negative or "
                                         "all zero) for finite inputs: its weights are broken")
        if self.multilabel:  # independent per-genre probabilities: nothing to renormalise or calibrate
            return proba
        # float32 sums drift by ~1e-7; renormalise so rows sum to 1 exactly as documented
        proba = proba / sums
        if calibrated and self.calibration:
            from genrekit.models.calibration import apply_calibration

            proba = apply_calibration(proba, self.calibration)
        return proba

    def describe(self) -> str:
        """A few lines saying what this model is, what it expects and how well it did."""
        card = self.card
        fs = self.feature_set
        lines = [
            f"{card.get('model', '?')} genre model ({self.kind}) at {self.path}",
            f"  labels ({len(self.labels)}): {', '.join(self.labels)}",
            f"  features: {fs.name} (key {fs.key}), "
            f"{f'input {self.input_shape[1:]}' if self.kind == 'cnn' else f'{len(self.feature_names)} columns'}, "
            f"{fs.sample_rate} Hz",
            f"  windows: {_seconds(self.window)}, hop {_seconds(self.hop)}, aggregate {self.aggregate}",
        ]
        for row in _headline(self.metrics):
            lines.append("  " + row)
        for key in ("data", "split", "created"):
            if card.get(key):
                lines.append(f"  {key}: {card[key]}")
        return "\n".join(lines)


def _seconds(value: float | None) -> str:
    return "whole signal" if value is None else f"{value:g} s"


# --- loading ---------------------------------------------------------------------------
_CACHE: dict[tuple[str, str, str], Bundle] = {}
_CACHE_LOCK = threading.Lock()


def clear_cache() -> None:
    """Forget every loaded bundle (the next :func:`load_bundle` re-reads from disk)."""
    with _CACHE_LOCK:
        _CACHE.clear()


def load_bundle(path: str | os.PathLike) -> Bundle:
    """Load a model bundle folder, checking everything before trusting anything.

    Loading the same unchanged bundle twice in one process returns the same object
    (the cache is keyed by the folder's real path and the checksums of ``bundle.json``
    and the weights).

    Parameters
    ----------
    path : str or path-like
        The bundle folder (or its ``bundle.json``).

    Returns
    -------
    Bundle

    Raises
    ------
    BundleError
        Naming the file and what is wrong: missing files, malformed JSON, an unknown
        format or version, invalid fields, a weights file outside the folder, a checksum
        mismatch, or weights that are not a valid ONNX model.
    """
    path = Path(path)
    if path.name == BUNDLE_JSON and path.is_file():
        path = path.parent
    if not path.is_dir():
        raise BundleError(path, "no such bundle folder" if not path.exists() else "not a folder")
    json_path = path / BUNDLE_JSON
    try:
        with open(json_path, "rb") as fh:
            raw = fh.read(MAX_JSON_BYTES + 1)
        if len(raw) > MAX_JSON_BYTES:
            raise BundleError(json_path, f"larger than {MAX_JSON_BYTES // 2**20} MB: not a genrekit bundle.json")
    except FileNotFoundError:
        raise BundleError(json_path, "missing: not a genrekit model bundle") from None
    except OSError as e:
        raise BundleError(json_path, f"cannot read: {e.strerror or e}") from None
    meta = _parse_meta(json_path, raw)

    weights_path = _weights_path(path, json_path, meta["weights"]["file"])
    try:
        weights = weights_path.read_bytes()
    except OSError as e:
        raise BundleError(weights_path, f"cannot read weights: {e.strerror or e}") from None
    return _bundle(path, meta, raw, weights_path, weights, os.path.realpath(path))


def bundle_from_bytes(files: dict[str, bytes], label: str) -> Bundle:
    """A bundle from its files' bytes (``bundle.json`` and the weights, by name), checked exactly as
    :func:`load_bundle` checks a folder; nothing is written to disk.

    ``label`` names the bundle in errors and in :attr:`Bundle.path` (workers that received a
    model's bytes from a job: :class:`genrekit.models.registry.PackedModel`).
    """
    path = Path(f"<{label}>")
    json_path = path / BUNDLE_JSON
    raw = files.get(BUNDLE_JSON)
    if raw is None:
        raise BundleError(json_path, "missing: not a genrekit model bundle")
    if len(raw) > MAX_JSON_BYTES:
        raise BundleError(json_path, f"larger than {MAX_JSON_BYTES // 2**20} MB: not a genrekit bundle.json")
    meta = _parse_meta(json_path, raw)
    name = meta["weights"]["file"]
    weights = files.get(name) if Path(name).name == name else None
    if weights is None:
        raise BundleError(json_path, f"weights file {name!r} is not among the bundle's files")
    return _bundle(path, meta, raw, path / name, weights, str(path))


def _bundle(path: Path, meta: dict, raw: bytes, weights_path: Path, weights: bytes, where: str) -> Bundle:
    """The :class:`Bundle` of checked metadata and weights bytes (checksum, ONNX, signature), cached
    by ``where``, the JSON's and the weights' checksums."""
    if hashlib.sha256(weights).hexdigest() != meta["weights"]["sha256"]:
        raise BundleError(
            weights_path, f"weights file does not match the checksum in {BUNDLE_JSON} — replaced or corrupted"
        )
    key = (where, hashlib.sha256(raw).hexdigest(), meta["weights"]["sha256"])
    with _CACHE_LOCK:
        cached = _CACHE.get(key)
    if cached is not None:
        return cached
    session = _session(weights_path, weights)
    _check_signature(weights_path, session, meta)
    bundle = Bundle(path, meta, session)
    with _CACHE_LOCK:
        return _CACHE.setdefault(key, bundle)


#: Deepest nesting of bundle.json accepted (the real ones need 6): deeper is refused before
#: parsing, so a hostile file cannot exhaust the parser's recursion.
MAX_JSON_DEPTH = 32
#: Largest bundle.json read (bytes); real ones are tens of kilobytes.
MAX_JSON_BYTES = 16 * 2**20
#: Bounds of a bundle's window and hop (seconds): a hop of 0.0001 s would cut a song
#: into millions of windows.
MIN_WINDOW, MAX_WINDOW, MIN_HOP = 0.1, 600.0, 0.25


def json_depth(raw: bytes) -> int:
    """Deepest nesting of arrays and objects in JSON text (strings skipped), without parsing it."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in raw:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            deepest = max(deepest, depth)
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return deepest


def read_bundle_meta(path: str | os.PathLike) -> dict:
    """A bundle folder's ``bundle.json``, read and checked as :func:`load_bundle` does, weights not loaded.

    Raises :class:`BundleError` naming the file and the problem.
    """
    json_path = Path(path) / BUNDLE_JSON
    try:
        with open(json_path, "rb") as fh:
            raw = fh.read(MAX_JSON_BYTES + 1)
    except FileNotFoundError:
        raise BundleError(json_path, "missing: not a genrekit model bundle") from None
    except OSError as e:
        raise BundleError(json_path, f"cannot read: {e.strerror or e}") from None
    if len(raw) > MAX_JSON_BYTES:
        raise BundleError(json_path, f"larger than {MAX_JSON_BYTES // 2**20} MB: not a genrekit bundle.json")
    meta = _parse_meta(json_path, raw)
    _weights_path(json_path.parent, json_path, meta["weights"]["file"])  # where load_bundle would read them
    return meta


#: Longest integer literal accepted in bundle.json (digits): real ones are counts and seeds.
MAX_INT_DIGITS = 30


class _HostileNumber(Exception):
    """A number in bundle.json no bundle holds (private: becomes a BundleError naming the file)."""


def _bounded_int(text: str) -> int:
    digits = len(text.lstrip("-"))
    if digits > MAX_INT_DIGITS:
        raise _HostileNumber(f"an integer of {digits} digits; a bundle's integers have at most {MAX_INT_DIGITS}")
    return int(text)


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _HostileNumber(f"{text[:40]!r} is not a finite number (float overflow)")
    return value


def _no_constant(text: str):
    raise _HostileNumber(f"{text} is not a finite number (strict JSON has no NaN or Infinity)")


def _parse_meta(json_path: Path, raw: bytes) -> dict:
    def fail(problem: str):
        raise BundleError(json_path, problem)

    depth = json_depth(raw)
    if depth > MAX_JSON_DEPTH:
        fail(f"JSON nested {depth} levels deep; a bundle needs at most {MAX_JSON_DEPTH}")
    try:
        meta = json.loads(raw.decode("utf-8"), parse_int=_bounded_int, parse_float=_finite_float,
                          parse_constant=_no_constant)
    except _HostileNumber as e:
        fail(str(e))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:  # JSONDecodeError is a ValueError
        fail(f"malformed JSON: {e}")
    if not isinstance(meta, dict):
        fail(f"expected a JSON object, found {type(meta).__name__}")
    if meta.get("format") != FORMAT:
        fail(f"not a genrekit model bundle (format is {meta.get('format')!r}, expected {FORMAT!r})")
    version = meta.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool):
        fail(f"format_version must be an integer, found {version!r}")
    if version != FORMAT_VERSION:
        newer = " (made by a newer genrekit)" if version > FORMAT_VERSION else ""
        fail(f"format_version {version}{newer}; this genrekit reads version {FORMAT_VERSION}")
    for field in ("kind", "labels", "feature_set", "feature_set_key", "input", "output",
                  "window", "hop", "aggregate", "weights", "metrics", "card"):
        if field not in meta:
            fail(f"missing field {field!r}")
    if meta["kind"] not in KINDS:
        fail(f"unknown kind {meta['kind']!r}; expected one of {', '.join(KINDS)}")

    labels = meta["labels"]
    if not isinstance(labels, list) or not labels or not all(isinstance(x, str) and x for x in labels):
        fail("labels must be a non-empty list of non-empty strings")
    if len(set(labels)) != len(labels):
        fail("labels contain duplicates")

    if not isinstance(meta["feature_set"], dict):
        fail("feature_set must be an object")
    try:
        fs = FeatureSet.from_dict(meta["feature_set"])
    except (TypeError, ValueError, OverflowError) as e:
        fail(f"invalid feature_set: {e}")
    if meta["feature_set_key"] != fs.key:
        fail(
            f"feature_set_key {meta['feature_set_key']!r} does not match this genrekit's key "
            f"{fs.key!r} for the same recipe: the features would be computed differently now"
        )

    inp = meta["input"]
    if not isinstance(inp, dict):
        fail("input must be an object")
    feats = inp.get("features")
    if not isinstance(inp.get("name"), str) or not inp["name"]:
        fail("input.name must be a non-empty string")
    if inp.get("dtype") != "float32":
        fail(f"input.dtype must be 'float32', found {inp.get('dtype')!r}")
    if meta["kind"] == "cnn":
        # spectrogram patches: [null, 1, bands, n_frames], no named feature columns
        from genrekit.models.cnn_inputs import CNN_INPUTS, input_bands

        shape = inp.get("shape")
        ok = (isinstance(shape, list) and len(shape) == 4 and shape[0] is None and shape[1] == 1
              and all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape[2:]))
        if fs.name not in CNN_INPUTS or not ok or shape[2] != input_bands(fs):
            fail(f"a cnn bundle needs a {'/'.join(CNN_INPUTS)} feature set and input.shape "
                 f"[null, 1, bands={input_bands(fs)}, n_frames], found {fs.name!r} and {shape!r}")
        feats = []
    elif not isinstance(feats, list) or not feats or not all(isinstance(c, str) for c in feats):
        fail("input.features must be a non-empty list of column names")
    elif inp.get("shape") != [None, len(feats)]:
        fail(f"input.shape must be [null, {len(feats)}] (one row per window), found {inp.get('shape')!r}")
    unknown = [c for c in feats if fs.columns and c not in fs.columns]
    if unknown:
        fail(f"input.features not produced by feature set {fs.name!r}: {', '.join(unknown[:5])}")
    out = meta["output"]
    if not isinstance(out, dict) or not isinstance(out.get("name"), str) or not out["name"]:
        fail("output.name must be a non-empty string")

    for field in ("window", "hop"):
        value = meta[field]
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0
        ):
            fail(f"{field} must be positive seconds or null, found {value!r}")
    if meta["window"] is not None and not MIN_WINDOW <= meta["window"] <= MAX_WINDOW:
        fail(f"window must be between {MIN_WINDOW:g} and {MAX_WINDOW:g} seconds, found {meta['window']!r}")
    if meta["hop"] is not None and not MIN_HOP <= meta["hop"] <= MAX_WINDOW:
        fail(f"hop must be between {MIN_HOP:g} and {MAX_WINDOW:g} seconds (it sets how many windows a "
             f"song is cut into), found {meta['hop']!r}")
    if fs.window is not None and meta["window"] != fs.window:
        fail(f"window {meta['window']!r} differs from the feature set's analysis window {fs.window!r}")
    if meta["aggregate"] not in AGGREGATES:
        fail(f"aggregate must be one of {', '.join(AGGREGATES)}, found {meta['aggregate']!r}")

    weights = meta["weights"]
    if not isinstance(weights, dict) or not isinstance(weights.get("file"), str):
        fail("weights.file must be a file name")
    if not isinstance(weights.get("sha256"), str) or not _SHA256.match(weights["sha256"]):
        fail("weights.sha256 must be 64 lower-case hex digits")
    for field in ("metrics", "card"):
        if not isinstance(meta[field], dict):
            fail(f"{field} must be an object")
    multilabel = meta.get("multilabel")
    if multilabel is not None:
        thresholds = multilabel.get("thresholds") if isinstance(multilabel, dict) else None
        if (not isinstance(thresholds, list) or len(thresholds) != len(labels)
                or not all(isinstance(t, (int, float)) and not isinstance(t, bool) and 0 <= t <= 1 for t in thresholds)):
            fail(f"multilabel.thresholds must be {len(labels)} numbers between 0 and 1, one per label")
    if meta.get("calibration") is not None or meta.get("unknown") is not None:
        from genrekit.models.calibration import check_meta

        problem = check_meta(meta.get("calibration"), meta.get("unknown"), len(labels), len(feats),
                             rows="log_probabilities" if meta["kind"] == "cnn" else "features")
        if problem:
            fail(problem)
    return meta


def _weights_path(folder: Path, json_path: Path, name: str) -> Path:
    """The weights file, which must be a plain file name inside ``folder`` (no escape by path or link)."""
    plain = (
        name not in ("", ".", "..")
        and "/" not in name and "\\" not in name and "\x00" not in name
        and not os.path.isabs(name)
    )
    if not plain:
        raise BundleError(json_path, f"weights.file {name!r} must be a plain file name inside the bundle folder")
    target = folder / name
    if os.path.islink(target) or os.path.dirname(os.path.realpath(target)) != os.path.realpath(folder):
        raise BundleError(
            target, "weights file is a link; a bundle's weights must be a regular file inside its folder"
        )
    if not target.is_file():
        problem = "weights file missing" if not target.exists() else "weights path is not a regular file"
        raise BundleError(target, problem)
    return target


def _session(weights_path: Path, weights: bytes):
    import onnxruntime as ort

    from genrekit.onnx_sessions import session_options

    options = session_options()  # one thread, no spinning: one worker per core (genrekit.onnx_sessions)
    try:
        # From bytes, not a path: onnxruntime then refuses external-data references.
        return ort.InferenceSession(weights, sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises several private exception types
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise BundleError(weights_path, f"not a valid ONNX model ({first[:200]})") from None


def _check_signature(weights_path: Path, session, meta: dict) -> None:
    inputs = session.get_inputs()
    want = meta["input"]
    if len(inputs) != 1 or inputs[0].name != want["name"]:
        names = ", ".join(i.name for i in inputs)
        raise BundleError(weights_path, f"model inputs are [{names}], {BUNDLE_JSON} declares {want['name']!r}")
    if inputs[0].type != "tensor(float)":
        raise BundleError(weights_path, f"model input is {inputs[0].type}, {BUNDLE_JSON} declares float32")
    shape = inputs[0].shape
    if meta["kind"] == "cnn":
        if len(shape) != 4 or any(isinstance(d, int) and d != w for d, w in zip(shape[1:], want["shape"][1:])):
            raise BundleError(weights_path, f"model input shape {shape} does not match {want['shape']}")
    elif len(shape) != 2 or (isinstance(shape[1], int) and shape[1] != len(want["features"])):
        raise BundleError(weights_path, f"model input shape {shape} does not match {len(want['features'])} features")
    outputs = {o.name: o for o in session.get_outputs()}
    out = outputs.get(meta["output"]["name"])
    if out is None:
        raise BundleError(weights_path, f"model has no output {meta['output']['name']!r} (has {', '.join(outputs)})")
    if len(out.shape) != 2 or (isinstance(out.shape[1], int) and out.shape[1] != len(meta["labels"])):
        raise BundleError(weights_path, f"model output shape {out.shape} does not match {len(meta['labels'])} labels")


# --- saving ----------------------------------------------------------------------------
def save_bundle(
    directory: str | os.PathLike,
    pipeline,
    *,
    labels,
    feature_set: FeatureSet | dict,
    feature_names,
    window: float | None,
    hop: float | None,
    metrics: dict,
    card: dict,
    sample: np.ndarray | None = None,
    aggregate: str = "mean",
    calibration: dict | None = None,
    multilabel: dict | None = None,
) -> Bundle:
    """Convert a fitted scikit-learn pipeline to ONNX and write it as a bundle folder.

    The conversion is checked before anything is written: onnxruntime's probabilities
    must equal ``pipeline.predict_proba`` within :data:`TOLERANCE` on ``sample``. The
    folder is written next to its destination and moved into place, so a reader sees
    the old bundle or the complete new one. An existing folder is replaced only if it
    is a bundle (or empty).

    Parameters
    ----------
    directory : str or path-like
        The bundle folder to create or replace.
    pipeline : fitted scikit-learn classifier
        With ``predict_proba``; ``pipeline.classes_`` must equal ``labels``.
    labels : sequence of str
        Genre names in probability-column order.
    feature_set : FeatureSet or dict
        The recipe the input features were computed with.
    feature_names : sequence of str
        Input columns, in the order the pipeline was fitted on.
    window, hop : float or None
        Analysis window and hop in seconds (``window=None``: whole signal).
    metrics : dict
        Evaluation figures (for example ``{"valid": ..., "test": ...}`` from
        :func:`genrekit.evaluation.metrics.evaluate`).
    card : dict
        Model-card fields: ``model``, ``params``, ``data``, ``split``, ``figures``,
        ``command``; ``created`` and ``genrekit_version`` are filled in if absent.
    sample : ndarray, shape (n, n_features), optional
        Rows to check the conversion on; real held-out rows are best. By default rows
        are drawn around the scaler's statistics or the trees' split thresholds.
    aggregate : {"mean"}
        How window probabilities combine into a track's.
    calibration : dict, optional
        ``{"calibration": ..., "unknown": ...}`` from :func:`genrekit.models.calibration.fit_calibration`.

    Returns
    -------
    Bundle
        The bundle as loaded back from disk.
    """
    directory = Path(directory)
    labels = [str(x) for x in labels]
    feature_names = [str(c) for c in feature_names]
    fs = feature_set if isinstance(feature_set, FeatureSet) else FeatureSet.from_dict(feature_set)
    classes = [str(c) for c in getattr(pipeline, "classes_", [])]
    if multilabel is not None:  # one-vs-rest on an indicator matrix: classes_ are column numbers
        classes = [labels[int(c)] for c in classes] if len(classes) == len(labels) else classes
    if classes != labels:
        raise ValueError(
            f"pipeline.classes_ {classes} differ from labels {labels}; probability columns would be mislabelled"
        )
    n_in = getattr(pipeline, "n_features_in_", len(feature_names))
    if n_in != len(feature_names):
        raise ValueError(f"pipeline was fitted on {n_in} features, {len(feature_names)} feature names given")
    _check_destination(directory)

    onnx_bytes = _to_onnx(pipeline, len(feature_names))
    if sample is None:
        sample = _probe_rows(pipeline, len(feature_names))
    _verify_conversion(pipeline, onnx_bytes, np.asarray(sample, dtype=np.float32))

    text = bundle_meta_text(
        directory, onnx_bytes, kind="classical", labels=labels, feature_set=fs,
        input={"name": INPUT_NAME, "features": feature_names, "dtype": "float32",
               "shape": [None, len(feature_names)]},
        window=window, hop=hop, metrics=metrics, card=card, aggregate=aggregate,
        extra={**(calibration or {}), "multilabel": multilabel},
    )
    meta = json.loads(text)  # exactly what a reader will see
    _write_folder(directory, {
        WEIGHTS_FILE: onnx_bytes,
        BUNDLE_JSON: text.encode("utf-8"),
        MODEL_CARD: model_card_markdown(meta).encode("utf-8"),
    })
    return load_bundle(directory)


def bundle_meta_text(directory, onnx_bytes: bytes, *, kind: str, labels, feature_set: FeatureSet, input: dict,
                     window, hop, metrics: dict, card: dict, aggregate: str = "mean",
                     extra: dict | None = None) -> str:
    """The ``bundle.json`` text for ONNX weights, checked by the loader's own rules before anything is written.

    Shared by classical and CNN bundles; ``card`` gets ``created`` and ``genrekit_version``
    when it lacks them.
    """
    card = dict(card)
    card.setdefault("created", datetime.now(timezone.utc).isoformat(timespec="seconds"))
    card.setdefault("genrekit_version", __version__)
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "kind": kind,
        "labels": list(labels),
        "feature_set": feature_set.to_dict(),
        "feature_set_key": feature_set.key,
        "input": input,
        "output": {"name": OUTPUT_NAME},
        "window": None if window is None else float(window),
        "hop": None if hop is None else float(hop),
        "aggregate": aggregate,
        "weights": {"file": WEIGHTS_FILE, "sha256": hashlib.sha256(onnx_bytes).hexdigest()},
        "metrics": metrics,
        "card": card,
    }
    for key in ("calibration", "unknown", "multilabel"):
        if (extra or {}).get(key) is not None:
            meta[key] = extra[key]
    text = dumps(meta)
    _parse_meta(Path(directory) / BUNDLE_JSON, text.encode("utf-8"))  # never write a bundle we would refuse
    return text


def _to_onnx(pipeline, n_features: int) -> bytes:
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType

    with warnings.catch_warnings():
        # skl2onnx's SVC converter reads probA_/probB_, deprecated in scikit-learn 1.9;
        # our SVMs are calibrated outside SVC, so those attributes are unused.
        warnings.filterwarnings("ignore", message=r"Attribute `prob[AB]_` was deprecated", category=FutureWarning)
        model = to_onnx(
            pipeline,
            initial_types=[(INPUT_NAME, FloatTensorType([None, n_features]))],
            options={"zipmap": False},  # a plain (n, n_labels) tensor, not a list of dicts
            target_opset=TARGET_OPSET,
        )
    outputs = [o.name for o in model.graph.output]
    if OUTPUT_NAME not in outputs:
        raise ValueError(f"converted model has outputs {outputs}, expected {OUTPUT_NAME!r}")
    return model.SerializeToString()


def _probe_rows(pipeline, n_features: int, n: int = 256, seed: int = 0) -> np.ndarray:
    """Synthetic rows that exercise the model: around the scaler's statistics, or the trees' thresholds."""
    rng = np.random.default_rng(seed)
    steps = getattr(pipeline, "steps", [(None, pipeline)])
    first, last = steps[0][1], steps[-1][1]
    if hasattr(first, "mean_") and hasattr(first, "scale_"):
        return first.mean_ + first.scale_ * rng.standard_normal((n, n_features))
    trees = [last] if hasattr(last, "tree_") else list(np.ravel(getattr(last, "estimators_", [])))
    rows = rng.standard_normal((n, n_features))
    for j in range(n_features):
        cuts = np.concatenate([t.tree_.threshold[t.tree_.feature == j] for t in trees] or [np.zeros(0)])
        if len(cuts):
            # a random threshold nudged to either side: rows fall on both branches of splits
            spread = max(float(np.ptp(cuts)), 1e-3)
            rows[:, j] = rng.choice(cuts, n) + rng.uniform(-0.05, 0.05, n) * spread
    return rows


def _verify_conversion(pipeline, onnx_bytes: bytes, sample: np.ndarray) -> None:
    import onnxruntime as ort

    from genrekit.onnx_sessions import session_options

    session = ort.InferenceSession(onnx_bytes, session_options(), providers=["CPUExecutionProvider"])
    (got,) = session.run([OUTPUT_NAME], {INPUT_NAME: np.ascontiguousarray(sample)})
    want = pipeline.predict_proba(sample)
    worst = float(np.max(np.abs(np.asarray(got, dtype=np.float64) - want))) if len(sample) else 0.0
    if not worst <= TOLERANCE:
        raise ValueError(
            f"ONNX conversion disagrees with scikit-learn: probabilities differ by up to {worst:.2g} "
            f"(tolerance {TOLERANCE:g}); this model cannot be bundled faithfully"
        )


def _is_bundle_folder(directory: Path) -> bool:
    try:
        if not any(directory.iterdir()):
            return True  # an empty folder: nothing to lose
        meta = json.loads((directory / BUNDLE_JSON).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(meta, dict) and meta.get("format") == FORMAT


def _check_destination(directory: Path) -> None:
    if directory.is_symlink():
        raise BundleError(directory, "is a symbolic link; refusing to write a bundle through it")
    if directory.exists():
        if not directory.is_dir():
            raise BundleError(directory, "exists and is not a folder; refusing to overwrite it")
        if not _is_bundle_folder(directory):
            raise BundleError(directory, "exists and is not a genrekit bundle; refusing to overwrite it")


def _write_folder(directory: Path, files: dict[str, bytes]) -> None:
    """Write ``files`` into a fresh sibling folder, then swap it into place."""
    parent = directory.resolve().parent
    parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=parent, prefix=f".{directory.name}.tmp-"))
    old = None
    try:
        for name, data in files.items():
            with open(tmp / name, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
        os.chmod(tmp, 0o777 & ~current_umask())  # mkdtemp makes 0700; a bundle is meant to be shared
        fsync_dir(tmp)
        _check_destination(directory)  # again: it may have changed while we converted
        if directory.exists():
            # rename() cannot replace a non-empty folder: move the old one aside first
            old = Path(tempfile.mkdtemp(dir=parent, prefix=f".{directory.name}.old-"))
            os.replace(directory, old / "bundle")
        try:
            os.replace(tmp, directory)
        except BaseException:
            if old is not None:
                os.replace(old / "bundle", directory)
            raise
        fsync_dir(parent)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


# --- the model card ----------------------------------------------------------------------
def _fmt(value: Any, digits: int = 3) -> str:
    if isinstance(value, bool) or value is None:
        return "–" if value is None else str(value)
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _ci(level: dict, key: str) -> str:
    ci = level.get(f"{key}_ci")
    value = _fmt(level.get(key))
    if isinstance(ci, list) and len(ci) == 2 and None not in ci:
        return f"{value} [{_fmt(ci[0])}, {_fmt(ci[1])}]"
    return value


def _evaluations(metrics: dict) -> list[tuple[str, dict]]:
    """``(set name, evaluate() result)`` pairs found in ``metrics``, test first."""
    found = [(name, metrics[name]) for name in ("test", "valid") if isinstance(metrics.get(name), dict)]
    return [(name, ev) for name, ev in found if any(isinstance(ev.get(lv), dict) for lv in ("track", "window"))]


def _headline(metrics: dict) -> list[str]:
    lines = []
    for name, ev in _evaluations(metrics):
        for level in ("track", "window"):
            figs = ev.get(level)
            if isinstance(figs, dict) and "accuracy" in figs:
                lines.append(
                    f"{name} {level} accuracy {_ci(figs, 'accuracy')}, macro-F1 {_fmt(figs.get('macro_f1'))} "
                    f"({ev.get('n_tracks', '?')} tracks)"
                )
    return lines


def model_card_markdown(meta: dict) -> str:
    """The human-readable ``MODEL_CARD.md`` of a parsed ``bundle.json``."""
    card, metrics = meta.get("card", {}), meta.get("metrics", {})
    fs = meta["feature_set"]
    out = [f"# Model card: {card.get('model', 'genre model')}", ""]
    out.append(
        f"A {meta['kind']} music-genre classifier over {len(meta['labels'])} genres: "
        f"{', '.join(meta['labels'])}. Generated from `{BUNDLE_JSON}`; edit that, not this file."
    )
    out += ["", "## Input", ""]
    out.append(f"- Feature set: `{fs['name']}` (key `{meta['feature_set_key']}`), {fs['sample_rate']} Hz")
    if meta["kind"] == "cnn":
        out.append(f"- Log-mel patches of shape {meta['input']['shape'][1:]} (channel, bands, frames) per window, "
                   f"float32, input `{meta['input']['name']}`")
    else:
        out.append(f"- {len(meta['input']['features'])} features per window, float32, input `{meta['input']['name']}`")
    out.append(f"- Window {_seconds(meta['window'])}, hop {_seconds(meta['hop'])}; "
               f"a track's probabilities are the {meta['aggregate']} of its windows'")
    out += ["", "## Training", ""]
    for key, label in (("data", "Data"), ("split", "Split"), ("command", "Command"),
                       ("created", "Created"), ("genrekit_version", "genrekit")):
        if card.get(key):
            value = f"`{card[key]}`" if key == "command" else card[key]
            out.append(f"- {label}: {value}")
    if card.get("params"):
        params = ", ".join(f"`{k}={v}`" for k, v in card["params"].items())
        out.append(f"- Hyper-parameters: {params}")
    if metrics.get("leaky") or card.get("leaky"):
        out += ["", "**Leaky protocol**: windows or artists shared between training and test make "
                "these figures optimistic; they are for comparison with published numbers only."]

    evaluations = _evaluations(metrics)
    if evaluations:
        out += ["", "## Results", "",
                "Accuracy with a 95% bootstrap interval (tracks resampled).", "",
                "| set | level | accuracy | balanced acc. | macro-F1 | tracks | windows |",
                "| --- | --- | --- | --- | --- | --- | --- |"]
        for name, ev in evaluations:
            for level in ("track", "window"):
                figs = ev.get(level)
                if isinstance(figs, dict):
                    out.append(
                        f"| {name} | {level} | {_ci(figs, 'accuracy')} | {_fmt(figs.get('balanced_accuracy'))} | "
                        f"{_ci(figs, 'macro_f1')} | {ev.get('n_tracks', '–')} | {ev.get('n_windows', '–')} |"
                    )
        name, ev = evaluations[0]
        figs = ev.get("track") or ev.get("window")
        per = figs.get("per_genre") if isinstance(figs, dict) else None
        if isinstance(per, dict) and per:
            out += ["", f"Per genre ({name} set, {'track' if ev.get('track') else 'window'} level):", "",
                    "| genre | precision | recall | F1 | support |", "| --- | --- | --- | --- | --- |"]
            for genre, g in per.items():
                out.append(f"| {genre} | {_fmt(g.get('precision'))} | {_fmt(g.get('recall'))} | "
                           f"{_fmt(g.get('f1'))} | {g.get('support', '–')} |")
        conf = figs.get("confusion") if isinstance(figs, dict) else None
        if isinstance(conf, list) and len(conf) == len(meta["labels"]):
            out += ["", "Confusion matrix (rows: true genre, columns: predicted):", "",
                    "| | " + " | ".join(meta["labels"]) + " |",
                    "| --- " * (len(meta["labels"]) + 1) + "|"]
            for genre, row in zip(meta["labels"], conf):
                out.append(f"| **{genre}** | " + " | ".join(str(v) for v in row) + " |")
    cal, unk = meta.get("calibration"), meta.get("unknown")
    if cal or unk:
        out += ["", "## Calibration and unknown songs", ""]
        if cal:
            how = (f"scaled by temperature {_fmt(cal.get('temperature'))}" if cal.get("method") == "temperature"
                   else f"mapped by {cal.get('method')} scaling")
            out.append(f"- Probabilities {how}, fitted on "
                       f"{cal.get('fitted_on', 'training data')} (out-of-fold ECE {_fmt(cal.get('oof_ece_before'))} "
                       f"before, {_fmt(cal.get('oof_ece_after'))} after)")
        if unk:
            what = ("mean log-probability over its windows" if unk.get("rows") == "log_probabilities"
                    else "mean input row")
            out.append(f"- A song is called unknown when the Mahalanobis distance of its {what} to the nearest genre exceeds "
                       f"{_fmt(unk.get('threshold'))}: about {_fmt(100 * unk.get('false_unknown_rate', 0), 0)}% of "
                       f"known songs, set on {unk.get('fitted_on', 'training data')}")
    figures = card.get("figures")
    if isinstance(figures, dict) and figures:
        out += ["", "## Figures", ""]
        for name, value in figures.items():
            if isinstance(value, str):  # a file next to the bundle
                out.append(f"![{name}]({value})")
            elif isinstance(value, dict):
                out.append(f"- {name}: " + ", ".join(f"{k} {_fmt(v)}" for k, v in value.items()))
            else:
                out.append(f"- {name}: {_fmt(value)}")
    out += ["", "## Files", "",
            f"- `{meta['weights']['file']}` (ONNX), SHA-256 `{meta['weights']['sha256']}`",
            f"- `{BUNDLE_JSON}`: everything above, machine-readable"]
    return "\n".join(out) + "\n"


def add_calibration(directory: str | os.PathLike, fields: dict) -> Bundle:
    """Store ``fields`` (``calibration`` and ``unknown``, :func:`~genrekit.models.calibration.fit_calibration`)
    in an existing bundle's ``bundle.json`` and card; the weights are not touched. Checked by the loader's
    rules before anything is written; written atomically."""
    from genrekit._io import write_bytes_atomic

    directory = Path(directory)
    meta = read_bundle_meta(directory)
    meta.update({k: v for k, v in fields.items() if k in ("calibration", "unknown")})
    text = dumps(meta)
    meta = _parse_meta(directory / BUNDLE_JSON, text.encode("utf-8"))
    write_bytes_atomic(directory / BUNDLE_JSON, text.encode("utf-8"))
    write_bytes_atomic(directory / MODEL_CARD, model_card_markdown(meta).encode("utf-8"))
    return load_bundle(directory)
