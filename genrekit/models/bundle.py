"""The model bundle: a folder that carries everything prediction needs, and loads without running code.

Layout::

    my-model/
      bundle.json    labels, feature-set recipe, input columns, window/hop, metrics, model card data
      model.onnx     the weights, as an ONNX graph (scikit-learn models through skl2onnx)
      MODEL_CARD.md  a human-readable card generated from bundle.json

This module loads bundles; :mod:`genrekit.models.bundle_json` reads ``bundle.json`` as untrusted
data, :mod:`genrekit.models.bundle_save` writes bundles and :mod:`genrekit.models.model_card` their
cards. :func:`load_bundle` reads JSON and ONNX only: no pickle, no joblib, no ``eval``. The
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

A bundle on MSD-musicnn's tags may also store ``tag_genres``: genres beyond ``labels`` that the
backbone's tags give evidence for, each with its tags, threshold and evidence
(:mod:`genrekit.models.tag_genres`); they are added to a prediction's ``genres``.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import threading
from pathlib import Path

import numpy as np

from genrekit.errors import BundleError, ParameterError
from genrekit.features.sets import FeatureSet
from genrekit.models.bundle_json import BUNDLE_JSON, MAX_JSON_BYTES, checked_weights_path, parse_meta
from genrekit.models.model_card import headline, seconds_text
from genrekit.onnx_sessions import run_session


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
        #: Genres the backbone's tags give evidence for beyond ``labels`` (:mod:`genrekit.models.tag_genres`), or ``None``.
        self.tag_genres: list[dict] | None = meta.get("tag_genres")
        self._input_name: str = meta["input"]["name"]
        self._output_name: str = meta["output"]["name"]
        self._session = session

    def __repr__(self) -> str:
        return f"Bundle({str(self.path)!r}, model={self.card.get('model')!r}, labels={len(self.labels)})"

    @functools.cached_property
    def decision_sha256(self) -> str | None:
        """SHA-256 of what the bundle decides with besides its weights (calibration, "none of these"
        decision, several-genre thresholds, genres from tags), ``None`` when it stores none; computed once
        per bundle."""
        decided = {"calibration": self.calibration, "unknown": self.unknown, "multilabel": self.multilabel}
        if self.tag_genres is not None:  # only then, so that older bundles keep their keys
            decided["tag_genres"] = self.tag_genres
        if all(v is None for v in decided.values()):
            return None
        text = json.dumps(decided, sort_keys=True, separators=(",", ":"), allow_nan=False)
        return hashlib.sha256(text.encode()).hexdigest()

    def unknown_detector(self):
        """The stored "none of these" decision (:class:`~genrekit.models.unknown.UnknownDetector`), or ``None``."""
        from genrekit.models.unknown import UnknownDetector

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
                raise ParameterError(f"input lacks the model's feature columns: {', '.join(missing[:5])}")
            X = X[self.feature_names].to_numpy()
        X = np.asarray(X, dtype=np.float32)
        n = len(self.feature_names)
        if self.kind == "cnn":  # log-mel patches (n_windows, 1, n_mels, n_frames)
            if list(X.shape[1:]) != self.input_shape[1:]:
                raise ParameterError(f"expected input of shape (n_windows, {', '.join(map(str, self.input_shape[1:]))}), got {X.shape}")
        elif X.ndim != 2 or X.shape[1] != n:
            raise ParameterError(f"expected features of shape (n_windows, {n}), got {X.shape}")
        if len(X) == 0:
            return np.zeros((0, len(self.labels)))
        if not np.isfinite(X).all():
            raise ParameterError("features contain NaN or infinity")
        (proba,) = run_session(self._session, [self._output_name], {self._input_name: np.ascontiguousarray(X)},
                               model_path=self.path)
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
            f"  windows: {seconds_text(self.window)}, hop {seconds_text(self.hop)}, aggregate {self.aggregate}",
        ]
        for row in headline(self.metrics):
            lines.append("  " + row)
        for key in ("data", "split", "created"):
            if card.get(key):
                lines.append(f"  {key}: {card[key]}")
        return "\n".join(lines)


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
    meta = parse_meta(json_path, raw)

    weights_path = checked_weights_path(path, json_path, meta["weights"]["file"])
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
    meta = parse_meta(json_path, raw)
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
