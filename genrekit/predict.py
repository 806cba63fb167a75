"""Classify audio with a model bundle: per-window probabilities, song-level genres, timelines.

>>> from genrekit import classify, load_model
>>> classify("song.mp3")[:2]
[{'label': 'jazz', 'score': 0.71}, {'label': 'blues', 'score': 0.12}]
>>> model = load_model()                 # the bundled default model
>>> model.predict_proba(y, sr)           # (n_labels,) mean over the song's windows
>>> model.timeline(y, sr)                # [{'start': 0.0, 'end': 30.0, 'probabilities': {...}}, ...]

A song is cut into the bundle's windows (:func:`genrekit.audio.window_bounds` with
``cover_end=True``, so the windows cover the whole song; a song shorter than one window
is one window); the model gives probabilities per window, and the song's probabilities
are their mean. Everything a prediction needs (labels, feature set, window, hop) comes
from the bundle.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import audio

#: Bundles shipped inside the package, one folder per model name.
SHIPPED_MODELS = Path(__file__).resolve().parent / "models" / "shipped"
#: The shipped model used when no model is named.
DEFAULT_MODEL_NAME = "gtzan57"
DEFAULT_MODEL = SHIPPED_MODELS / DEFAULT_MODEL_NAME


def shipped_models() -> list[str]:
    """Names of the models shipped with genrekit (folders of :data:`SHIPPED_MODELS`)."""
    return sorted(p.parent.name for p in SHIPPED_MODELS.glob("*/bundle.json"))


@dataclass
class Prediction:
    """The genres of one song."""

    path: str | None
    label: str
    probabilities: dict[str, float]
    duration: float
    model: str
    timeline: list[dict] | None = None
    windows: int = 0

    def top(self, k: int | None = None) -> list[dict]:
        """``[{"label", "score"}, ...]`` sorted by score, the first ``k`` (all when ``None``)."""
        ranked = sorted(self.probabilities.items(), key=lambda kv: (-kv[1], kv[0]))
        return [{"label": label, "score": score} for label, score in ranked[:k]]

    def to_dict(self) -> dict:
        out = {"path": self.path, "label": self.label, "probabilities": self.probabilities,
               "duration": self.duration, "model": self.model}
        if self.timeline is not None:
            out["timeline"] = self.timeline
        return out


@dataclass
class GenreClassifier:
    """A loaded bundle that turns audio into genre probabilities.

    Use :func:`load_model` rather than building one: it loads each bundle once per process.
    """

    bundle: object
    name: str
    _inputs: object = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._inputs = _input_maker(self.bundle)

    # --- what the bundle says ------------------------------------------------------
    @property
    def labels(self) -> list[str]:
        return list(self.bundle.labels)

    @property
    def sample_rate(self) -> int:
        return self.bundle.feature_set.sample_rate

    @property
    def window(self) -> float:
        return float(self.bundle.window)

    @property
    def hop(self) -> float:
        return float(self.bundle.hop)

    @property
    def min_samples(self) -> int:
        return self.bundle.feature_set.min_samples

    # --- prediction ------------------------------------------------------------------
    def window_bounds(self, n_samples: int) -> list[tuple[int, int]]:
        """Sample ranges of the windows a signal of ``n_samples`` (at :attr:`sample_rate`) is cut into."""
        return audio.window_bounds(n_samples, self.sample_rate, self.window, self.hop, cover_end=True)

    def window_probabilities(self, y: np.ndarray, sr: int | None = None) -> tuple[list[tuple[int, int]], np.ndarray]:
        """Window bounds (samples at :attr:`sample_rate`) and probabilities, shape ``(n_windows, n_labels)``."""
        y = self._at_model_rate(y, sr)
        bounds = self.window_bounds(len(y))
        return bounds, self.bundle.predict_proba(self._inputs(y, bounds))

    def predict_proba(self, y: np.ndarray, sr: int | None = None) -> np.ndarray:
        """Song-level probabilities (mean over windows), shape ``(n_labels,)`` in :attr:`labels` order."""
        _, proba = self.window_probabilities(y, sr)
        return proba.mean(axis=0)

    def timeline(self, y: np.ndarray, sr: int | None = None) -> list[dict]:
        """``[{"start", "end", "probabilities"}, ...]`` covering the whole signal (seconds)."""
        bounds, proba = self.window_probabilities(y, sr)
        return self._timeline(bounds, proba)

    def classify_signal(self, y: np.ndarray, sr: int | None = None, *, path: str | None = None,
                        timeline: bool = False) -> Prediction:
        y = self._at_model_rate(y, sr)
        bounds, proba = self.window_probabilities(y)
        mean = proba.mean(axis=0)
        return Prediction(
            path=path,
            label=self.labels[int(np.argmax(mean))],
            probabilities={label: float(p) for label, p in zip(self.labels, mean)},
            duration=len(y) / self.sample_rate,
            model=self.name,
            timeline=self._timeline(bounds, proba) if timeline else None,
            windows=len(bounds),
        )

    def classify_file(self, path: str | os.PathLike, *, timeline: bool = False) -> Prediction:
        """Decode ``path`` (raises :class:`genrekit.audio.AudioError`) and classify it."""
        y = audio.load(path, sr=self.sample_rate, min_samples=self.min_samples)
        return self.classify_signal(y, path=str(path), timeline=timeline)

    # --- helpers -------------------------------------------------------------------------
    def _timeline(self, bounds, proba) -> list[dict]:
        sr = self.sample_rate
        return [
            {"start": round(start / sr, 3), "end": round(stop / sr, 3),
             "probabilities": {label: float(p) for label, p in zip(self.labels, row)}}
            for (start, stop), row in zip(bounds, proba)
        ]

    def _at_model_rate(self, y: np.ndarray, sr: int | None) -> np.ndarray:
        y = np.asarray(y, dtype=np.float32)
        if y.ndim == 2:  # (channels, samples), as librosa and soundfile(always_2d=False).T give
            y = y.mean(axis=0 if y.shape[0] < y.shape[1] else 1).astype(np.float32)
        if y.ndim != 1:
            raise ValueError(f"expected a mono signal or (channels, samples), got shape {y.shape}")
        if sr is not None and sr != self.sample_rate:
            import soxr

            y = soxr.resample(y, sr, self.sample_rate, quality="HQ").astype(np.float32)
        if len(y) < self.min_samples:
            raise ValueError(f"signal of {len(y)} samples at {self.sample_rate} Hz is shorter than one "
                             f"analysis frame ({self.min_samples} samples)")
        return y


def _input_maker(bundle):
    """The function turning a signal and window bounds into the bundle's network input."""
    fs = bundle.feature_set
    kind = getattr(bundle, "kind", "classical")
    if kind == "cnn":
        from .models.cnn_data import bundle_inputs

        return lambda y, bounds: bundle_inputs(bundle, y, bounds)
    if fs.name == "gtzan57":
        from .features.gtzan57 import COLUMNS, gtzan57_windows

        # A model may use a subset of the 57 columns, in its own order.
        names = list(bundle.feature_names) or list(COLUMNS)
        columns = [COLUMNS.index(name) for name in names]
        return lambda y, bounds: gtzan57_windows(y, fs.sample_rate, bounds)[:, columns].astype(np.float32)
    raise ValueError(f"{bundle.path}: a classical model on '{fs.name}' features cannot classify audio "
                     f"(only gtzan57 rows can be computed per window)")


_MODELS: dict[tuple[str, int], GenreClassifier] = {}
_LOCK = threading.Lock()


def load_model(path: str | os.PathLike | None = None) -> GenreClassifier:
    """Load a model bundle once per process (``None``: the bundled default model).

    ``path`` is a bundle folder, or a run folder holding one bundle. Raises
    :class:`genrekit.models.bundle.BundleError` for anything that is not a valid bundle.
    """
    from .models.bundle import load_bundle

    folder = Path(path) if path is not None else DEFAULT_MODEL
    folder = bundle_folder(folder)
    key = (str(folder.resolve()), _mtime(folder))
    with _LOCK:
        if key not in _MODELS:
            bundle = load_bundle(folder)
            name = "default" if path is None else folder.name
            _MODELS[key] = GenreClassifier(bundle, name=name)
        return _MODELS[key]


class PackedModel:
    """A model bundle's files as bytes, to send to workers that may not see this machine's files.

    Pickled once per job and sent to each worker once (the Ray engine puts it in Ray's
    object store); :meth:`load` rebuilds the model from the bytes, once per process.
    Loading checks everything :func:`genrekit.models.bundle.load_bundle` checks
    (checksum, signature): the bytes are trusted no more than a folder would be.

    Parameters
    ----------
    files : dict of str to bytes
        ``bundle.json`` and the weights file, by name.
    name : str
        The model's name (:attr:`GenreClassifier.name`).
    """

    def __init__(self, files: dict[str, bytes], name: str) -> None:
        import hashlib

        self.files = dict(files)
        self.name = name
        digest = hashlib.sha256()
        for file_name in sorted(self.files):
            digest.update(file_name.encode() + b"\0" + hashlib.sha256(self.files[file_name]).digest())
        self.digest = digest.hexdigest()

    @classmethod
    def of(cls, clf: GenreClassifier) -> "PackedModel":
        """Pack the files of a loaded model; raises ``BundleError`` if they changed since it was loaded."""
        from .models.bundle import BUNDLE_JSON, BundleError

        folder = Path(clf.bundle.path)
        weights_name = clf.bundle.meta["weights"]["file"]
        try:
            files = {BUNDLE_JSON: (folder / BUNDLE_JSON).read_bytes(), weights_name: (folder / weights_name).read_bytes()}
        except OSError as exc:
            raise BundleError(folder, f"cannot read the bundle to send it to workers: {exc.strerror or exc}") from None
        import hashlib

        if hashlib.sha256(files[weights_name]).hexdigest() != clf.bundle.sha256:
            raise BundleError(folder, "the model bundle changed on disk since it was loaded")
        return cls(files, clf.name)

    def load(self) -> GenreClassifier:
        """The model, rebuilt from the bytes once per process (a private folder, removed at once)."""
        import shutil
        import tempfile

        from .models.bundle import load_bundle

        with _LOCK:
            clf = _PACKED.get(self.digest)
        if clf is not None:
            return clf
        folder = Path(tempfile.mkdtemp(prefix="genrekit-model-"))
        try:
            for file_name, data in self.files.items():
                (folder / Path(file_name).name).write_bytes(data)
            bundle = load_bundle(folder)  # the weights are read into memory: the folder can go
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        with _LOCK:
            return _PACKED.setdefault(self.digest, GenreClassifier(bundle, name=self.name))

    def __repr__(self) -> str:
        return f"PackedModel({self.name!r}, {sum(map(len, self.files.values()))} bytes)"


_PACKED: dict[str, GenreClassifier] = {}


def bundle_folder(folder: Path) -> Path:
    """The bundle a path names: the folder itself, or the one bundle inside a run folder."""
    if (folder / "bundle.json").exists() or not folder.is_dir():
        return folder
    found = sorted(p.parent for p in folder.glob("*/bundle.json"))
    if len(found) == 1:
        return found[0]
    selected = folder / "selected"
    if (selected / "bundle.json").exists():
        return selected
    return folder


def _mtime(folder: Path) -> int:
    try:
        return (folder / "bundle.json").stat().st_mtime_ns
    except OSError:
        return 0


def classify(inputs, model: str | os.PathLike | GenreClassifier | None = None, *, sr: int | None = None,
             top_k: int | None = None):
    """Genres of a song, Hugging Face pipeline style.

    Parameters
    ----------
    inputs : path, numpy array, or a list of paths
        A file to decode, or a signal (then give ``sr``).
    model : bundle path, a loaded model, or None for the bundled default.
    top_k : int or None
        Keep the ``top_k`` best labels.

    Returns
    -------
    ``[{"label": ..., "score": ...}, ...]`` sorted by score (a list of such lists for a list of paths).
    """
    clf = model if isinstance(model, GenreClassifier) else load_model(model)
    if isinstance(inputs, (list, tuple)):
        return [classify(item, clf, sr=sr, top_k=top_k) for item in inputs]
    if isinstance(inputs, np.ndarray):
        if sr is None:
            raise ValueError("give sr= (the signal's sample rate in Hz) with an array input")
        return clf.classify_signal(inputs, sr).top(top_k)
    return clf.classify_file(inputs).top(top_k)
