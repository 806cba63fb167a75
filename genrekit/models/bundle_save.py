"""Writing model bundles: a fitted scikit-learn pipeline converted to ONNX, checked, and written atomically.

:func:`save_bundle` converts with skl2onnx (opsets :data:`TARGET_OPSET`), checks that onnxruntime
gives the pipeline's probabilities within :data:`TOLERANCE` on probe rows, validates the
``bundle.json`` it is about to write by the loader's own rules (:func:`bundle_meta_text`), and
replaces the folder in one step. :func:`add_calibration` stores calibration and the unknown
decision in an existing bundle without touching its weights.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import warnings
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from genrekit._version import __version__
from genrekit._io import current_umask, dumps, fsync_dir
from genrekit.errors import BundleError, ParameterError
from genrekit.features.sets import FeatureSet
from genrekit.models.bundle import Bundle, load_bundle
from genrekit.models.bundle_json import (BUNDLE_JSON, FORMAT, FORMAT_VERSION, INPUT_NAME, MODEL_CARD, OUTPUT_NAME,
                                       TARGET_OPSET, TOLERANCE, WEIGHTS_FILE, parse_meta, read_bundle_meta)
from genrekit.models.model_card import model_card_markdown


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
        raise ParameterError(
            f"pipeline.classes_ {classes} differ from labels {labels}; probability columns would be mislabelled"
        )
    n_in = getattr(pipeline, "n_features_in_", len(feature_names))
    if n_in != len(feature_names):
        raise ParameterError(f"pipeline was fitted on {n_in} features, {len(feature_names)} feature names given")
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
    parse_meta(Path(directory) / BUNDLE_JSON, text.encode("utf-8"))  # never write a bundle we would refuse
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
        raise ParameterError(f"converted model has outputs {outputs}, expected {OUTPUT_NAME!r}")
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
        raise ParameterError(
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


def add_calibration(directory: str | os.PathLike, fields: dict) -> Bundle:
    """Store ``fields`` (``calibration`` and ``unknown``, :func:`~genrekit.models.calibration.fit_calibration`;
    ``tag_genres``, :mod:`genrekit.models.tag_genres`) in an existing bundle's ``bundle.json`` and card;
    the weights are not touched. Checked by the loader's rules before anything is written; written
    atomically."""
    from genrekit._io import write_bytes_atomic

    directory = Path(directory)
    meta = read_bundle_meta(directory)
    meta.update({k: v for k, v in fields.items() if k in ("calibration", "unknown", "tag_genres")})
    text = dumps(meta)
    meta = parse_meta(directory / BUNDLE_JSON, text.encode("utf-8"))
    write_bytes_atomic(directory / BUNDLE_JSON, text.encode("utf-8"))
    write_bytes_atomic(directory / MODEL_CARD, model_card_markdown(meta).encode("utf-8"))
    return load_bundle(directory)
